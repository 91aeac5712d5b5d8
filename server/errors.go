package server

import (
	"errors"
	"fmt"
	"net/http"
	"time"
)

// PushError is a push refused with an HTTP status other than 200. It
// carries everything the answer needs: the status, the MPNS headers that
// go with it (reference §3) and a reason that tells the sender what to do,
// sent in X-OpenMPNS-Error and the body.
type PushError struct {
	Status       int
	Notification string // X-NotificationStatus, or ""
	Subscription string // X-SubscriptionStatus, or ""
	Connection   string // X-DeviceConnectionStatus, or ""
	Reason       string
	// err is the failure behind a refusal (a backend's error behind a
	// 503): logged for the operator, never told to the sender, who may be
	// anyone who knows a Channel URI. Its words are the backend's (file
	// paths, NATS addresses and buckets).
	err error
}

func (e *PushError) Error() string {
	if e.err != nil {
		return fmt.Sprintf("push refused: %d %s: %s: %v", e.Status, http.StatusText(e.Status), e.Reason, e.err)
	}
	return fmt.Sprintf("push refused: %d %s: %s", e.Status, http.StatusText(e.Status), e.Reason)
}

// Unwrap returns the failure behind the refusal, if any.
func (e *PushError) Unwrap() error { return e.err }

// Push refusals that need no detail. Each is a value: compare with
// errors.Is, read with errors.As.
var (
	errShuttingDown = &PushError{Status: http.StatusServiceUnavailable, Reason: "the server is shutting down; retry with backoff"}
	errNoChannel    = &PushError{Status: http.StatusNotFound, Notification: StatusDropped, Subscription: SubExpired,
		Reason: "no such channel: it was closed or never existed; stop sending to this URI"}
	errNotStored = &PushError{Status: http.StatusServiceUnavailable, Reason: "the server could not store the notification; retry with backoff"}
)

func badRequest(format string, args ...any) *PushError {
	return &PushError{Status: http.StatusBadRequest, Reason: fmt.Sprintf(format, args...)}
}

func overloaded(limit int) *PushError {
	return &PushError{Status: http.StatusServiceUnavailable,
		Reason: fmt.Sprintf("the server is overloaded (%d notifications waiting to be stored); retry with backoff", limit)}
}

// unavailable is the 503 of a push the backend failed (err, which the push
// handler logs and the sender is not told).
func unavailable(err error) *PushError {
	return &PushError{Status: http.StatusServiceUnavailable,
		Reason: "the service's state is unavailable; retry with backoff", err: err}
}

func unauthenticated() *PushError {
	return &PushError{Status: http.StatusUnauthorized,
		Reason: "this channel accepts only authenticated notifications: send credentials"}
}

// wrongCertificate is MPNS's answer to a client certificate for another
// service name than the channel's: 401.
func wrongCertificate(svc string, open bool) *PushError {
	return &PushError{Status: http.StatusUnauthorized,
		Reason: fmt.Sprintf("the client certificate is for service %q, but %s", svc, whoseChannel(open))}
}

// whoseChannel says why a service's credentials do not reach a channel:
// open, a channel its app opened without a service.
func whoseChannel(open bool) string {
	if open {
		return "this channel was opened without a service: send no credentials"
	}
	return "this channel belongs to another service"
}

// wrongService is WNS's answer to a bearer token for another app than the
// channel's: 403.
func wrongService(svc string, open bool) *PushError {
	return &PushError{Status: http.StatusForbidden,
		Reason: fmt.Sprintf("authenticated as service %q, but %s", svc, whoseChannel(open))}
}

func inactive(since time.Time) *PushError {
	return &PushError{Status: http.StatusPreconditionFailed, Notification: StatusDropped, Connection: ConnInactive,
		Reason: fmt.Sprintf("the device has been offline since %s; retry at most once an hour", since.UTC().Format(time.RFC3339))}
}

func overQuota(quota int) *PushError {
	return &PushError{Status: http.StatusNotAcceptable, Notification: StatusDropped, Subscription: SubActive,
		Reason: fmt.Sprintf("unauthenticated senders may push %d notifications per channel per day; retry in an hour or authenticate", quota)}
}

// Errors the gateway maps to wire error codes.
var (
	errUnauthorized = errors.New("unknown device or wrong device token")
	errNotFound     = errors.New("no channel for this app")
	errDraining     = errors.New("the server is shutting down")
	errServerFull   = errors.New("the server holds as many devices as it may; retry later")
	errDeviceGone   = errors.New("the device was deleted while it connected")
)

// channelError is a refused channel request with its wire error code.
type channelError struct {
	code string
	msg  string
}

func (e *channelError) Error() string { return e.msg }
