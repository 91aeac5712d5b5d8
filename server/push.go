package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/openmpns/openmpns/server/auth"
	"github.com/openmpns/openmpns/shared/payload"
	"github.com/openmpns/openmpns/shared/sender"
)

// PushPath is the path prefix of Channel URIs.
const PushPath = "/push/"

// MPNS request and response headers; the one spelling is shared/sender's.
const (
	HeaderTarget             = sender.HeaderTarget
	HeaderClass              = sender.HeaderClass
	HeaderMessageID          = sender.HeaderMessageID
	HeaderNotificationStatus = sender.HeaderNotificationStatus
	HeaderSubscriptionStatus = sender.HeaderSubscriptionStatus
	HeaderConnectionStatus   = sender.HeaderDeviceConnectionStatus
	// HeaderError carries the human-readable reason of a refusal (OpenMPNS's own).
	HeaderError = sender.HeaderError
)

// tokenLen is the length of a channel token: 20 random bytes, base64url.
const tokenLen = 27

// Pusher is what the HTTP push API needs from the routing engine. Push
// keeps nothing of r once it returns: the handler reuses it (what a
// notification keeps, its body and strings, Push may keep).
type Pusher interface {
	Push(ctx context.Context, r *PushRequest) (PushResult, error)
}

// pushRequests are the requests the handler parses pushes into.
var pushRequests = sync.Pool{New: func() any { return new(PushRequest) }}

var _ Pusher = (*Engine)(nil)

// Authenticator tells which service sent a request. It returns "" and no
// error when the request carries no credentials (an unauthenticated
// sender), and an error when it carries credentials that do not hold.
type Authenticator interface {
	Authenticate(r *http.Request, now time.Time) (service string, err error)
}

// pushHandler serves POSTs to Channel URIs.
type pushHandler struct {
	cfg    *Config
	pusher Pusher
	met    *metrics
	// auth identifies senders; nil treats every sender as unauthenticated.
	auth Authenticator
	// failed limits the log of pushes the backend failed (503).
	failed failLog
}

// failLog limits the log of pushes refused because the backend failed to a
// line a second: an outage would otherwise log every push, thousands of
// lines a second. Each line counts the refusals it stands for.
type failLog struct {
	mu   sync.Mutex
	last time.Time
	held int // refusals since the last line
}

// note counts a refusal at now, and reports whether to log it and how many
// refusals (this one included) the line stands for.
func (l *failLog) note(now time.Time) (int, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.held++
	if !l.last.IsZero() && now.Sub(l.last) < time.Second {
		return 0, false
	}
	n := l.held
	l.held, l.last = 0, now
	return n, true
}

func (h *pushHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if msgIDs := r.Header[keyMessageID]; len(msgIDs) > 0 && msgIDs[0] != "" && len(msgIDs[0]) <= 256 {
		w.Header()[HeaderMessageID] = msgIDs[:1:1] // the request's own: no copy
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		h.refuse(w, "", &PushError{Status: http.StatusMethodNotAllowed, Reason: fmt.Sprintf("method %s not allowed: send notifications with POST", r.Method)})
		return
	}
	req, perr := h.parse(r)
	if req != nil {
		defer func() {
			*req = PushRequest{}
			pushRequests.Put(req)
		}()
	}
	if perr != nil {
		kind := "" // refused before its target was read: "unknown"
		if req != nil && req.Kind != 0 {
			kind = req.Kind.String()
		}
		h.refuse(w, kind, perr)
		return
	}
	if h.auth != nil {
		svc, err := h.auth.Authenticate(r, h.cfg.Clock.Now())
		if err != nil {
			w.Header().Set("WWW-Authenticate", auth.Challenge(err))
			h.refuse(w, req.Kind.String(), &PushError{Status: http.StatusUnauthorized, Reason: err.Error()})
			return
		}
		req.Service = svc
		req.ByCertificate = svc != "" && r.TLS != nil && len(r.TLS.PeerCertificates) > 0
	}
	res, err := h.pusher.Push(r.Context(), req)
	if err != nil {
		var pe *PushError
		if !errors.As(err, &pe) {
			pe = unavailable(err)
		}
		if pe.err != nil {
			if n, ok := h.failed.note(h.cfg.Clock.Now()); ok {
				h.cfg.Logger.Error("push refused: the backend failed", "status", pe.Status, "channel", req.Token, "err", pe.err,
					"refused", n) // since the last such line, at most a second ago, this one included
			}
		}
		h.refuse(w, req.Kind.String(), pe)
		return
	}
	hd := w.Header()
	hd[HeaderNotificationStatus] = headerValue(res.Notification)
	hd[HeaderSubscriptionStatus] = headerValue(res.Subscription)
	hd[HeaderConnectionStatus] = headerValue(res.Connection)
	if res.Reason != "" {
		hd.Set(HeaderError, headerSafe(res.Reason))
	}
	w.WriteHeader(http.StatusOK)
}

// The request headers' keys as net/http (and the push front) store them:
// canonical.
var (
	keyMessageID = http.CanonicalHeaderKey(HeaderMessageID)
	keyTarget    = http.CanonicalHeaderKey(HeaderTarget)
	keyClass     = http.CanonicalHeaderKey(HeaderClass)
)

// The answer's MPNS headers (X-NotificationStatus, X-SubscriptionStatus,
// X-DeviceConnectionStatus, X-MessageID) are put in the header map under
// their MPNS spelling, not with Header.Set: net/http and the push front
// write a key as it is in the map, and Set would make it Go's canonical
// X-Notificationstatus. Header names are case-insensitive in HTTP, but
// sender libraries written against MPNS look them up by the exact name
// MPNS sent (the PHP class most tutorials copied keys its result by it).
// A test reading such an answer's header map with Get does not find
// them; read the map by the MPNS name, or parse the answer from the wire.

// first is a header's first value, as Header.Get gives it, for a key
// already canonical (Get makes the canonical key again at every call).
func first(vs []string) string {
	if len(vs) == 0 {
		return ""
	}
	return vs[0]
}

// headerValues are the answer's status header values, made once: net/http
// only reads them (and a handler that added to one would copy it: each has
// no room to grow).
var headerValues = func() map[string][]string {
	m := map[string][]string{}
	for _, v := range []string{StatusReceived, StatusQueueFull, StatusSuppress, StatusDropped, SubActive, SubExpired,
		ConnConnected, ConnTempDisconnected, ConnDisconnected, ConnInactive} {
		m[v] = []string{v}
	}
	return m
}()

// headerValue is v as a header's values, without an allocation for the
// usual ones.
func headerValue(v string) []string {
	if vs, ok := headerValues[v]; ok {
		return vs
	}
	return []string{v}
}

// parse reads and validates a push. On failure it returns a 400 (and the
// request so far, for metrics).
func (h *pushHandler) parse(r *http.Request) (*PushRequest, *PushError) {
	token := strings.TrimPrefix(r.URL.Path, PushPath)
	if len(token) != tokenLen || !isTokenChars(token) {
		return nil, badRequest("malformed channel URI: the path must be %s followed by the channel's 27-character token", PushPath)
	}
	req := pushRequests.Get().(*PushRequest)
	req.Token = token
	if n := headerBytes(r.Header); n > h.cfg.MaxHeaderBytes {
		return req, badRequest("request headers are %d bytes, more than the %d-byte limit", n, h.cfg.MaxHeaderBytes)
	}
	switch t := strings.ToLower(strings.TrimSpace(first(r.Header[keyTarget]))); t {
	case "toast":
		req.Kind = payload.KindToast
	case "token", "tile":
		req.Kind = payload.KindTile
	case "", "raw":
		// Published sender libraries send "raw" for raw notifications;
		// MPNS took it, in any case.
		req.Kind = payload.KindRaw
	default:
		return req, badRequest("%s %q: want toast, token (tile), raw or no header (raw)", HeaderTarget, t)
	}
	class, err := parseClass(first(r.Header[keyClass]), req.Kind)
	if err != nil {
		return req, badRequest("%s", err)
	}
	req.Class = class
	if id := first(r.Header[keyMessageID]); id != "" {
		if len(id) > 256 {
			return req, badRequest("%s is %d bytes; at most 256", HeaderMessageID, len(id))
		}
		// Its own copy: the notification keeps it while queued, and the
		// push front's header values are parts of the whole request head.
		req.MessageID = strings.Clone(id)
	}
	max := int64(h.cfg.MaxPayloadBytes)
	if r.ContentLength > max {
		return req, badRequest("payload is %d bytes, more than the %d-byte limit", r.ContentLength, max)
	}
	body, err := readBody(r, max)
	if err != nil {
		if ne := net.Error(nil); errors.As(err, &ne) && ne.Timeout() {
			return req, badRequest("the request body did not arrive within %v: send it in one go", h.cfg.ReadTimeout)
		}
		return req, badRequest("could not read the request body: %v", err)
	}
	if int64(len(body)) > max {
		return req, badRequest("payload is more than the %d-byte limit", max)
	}
	if len(body) == 0 && req.Kind != payload.KindRaw {
		// An empty raw notification is a wake-up signal some senders
		// use: it is delivered as it is.
		return req, badRequest("empty payload: send the %s XML in the request body", req.Kind)
	}
	req.Body = body
	switch req.Kind {
	case payload.KindToast:
		if _, err := payload.ParseToast(body); err != nil {
			return req, badRequest("%s", reasonOf(err))
		}
	case payload.KindTile:
		t, err := payload.ParseTile(body)
		if err != nil {
			return req, badRequest("%s", reasonOf(err))
		}
		req.TileID = t.ID
	}
	return req, nil
}

// readBody reads a request body of at most max bytes (max+1 tell that
// there was more). A body of a known length is read into a buffer of that
// size; one of unknown length (chunked) grows as io.ReadAll does.
func readBody(r *http.Request, max int64) ([]byte, error) {
	if n := r.ContentLength; n >= 0 && n <= max {
		// net/http's body yields exactly ContentLength bytes, or an
		// error (io.ErrUnexpectedEOF for a short one).
		body := make([]byte, n)
		if _, err := io.ReadFull(r.Body, body); err != nil {
			return nil, err
		}
		return body, nil
	}
	return io.ReadAll(io.LimitReader(r.Body, max+1))
}

func reasonOf(err error) string {
	var pe *payload.Error
	if errors.As(err, &pe) {
		return "invalid payload: " + strings.TrimPrefix(pe.Error(), "payload: ")
	}
	return "invalid payload: " + err.Error()
}

// parseClass checks X-NotificationClass against the target (reference §2).
func parseClass(v string, k payload.Kind) (int, error) {
	base := map[payload.Kind]int{payload.KindTile: 1, payload.KindToast: 2, payload.KindRaw: 3}[k]
	v = strings.TrimSpace(v)
	if v == "" {
		return base, nil
	}
	c, err := strconv.Atoi(v)
	if err != nil {
		return 0, fmt.Errorf("%s %q is not a number: want %d, %d or %d for a %s", HeaderClass, v, base, base+10, base+20, k)
	}
	switch c {
	case base, base + 10, base + 20:
		return c, nil
	}
	return 0, fmt.Errorf("%s %d does not fit a %s notification: want %d (immediate), %d (within 450 s) or %d (within 900 s)", HeaderClass, c, k, base, base+10, base+20)
}

// headerBytes counts the request headers as sent (name, ": ", value, CRLF),
// Authorization excepted: bearer tokens are long and are not the sender's payload.
func headerBytes(h http.Header) int {
	n := 0
	for k, vs := range h {
		if k == "Authorization" {
			continue
		}
		for _, v := range vs {
			n += len(k) + len(v) + 4
		}
	}
	return n
}

func isTokenChars[T string | []byte](s T) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// refuse answers a refused push with its status, MPNS headers and reason.
func (h *pushHandler) refuse(w http.ResponseWriter, kind string, e *PushError) {
	if kind == "" {
		kind = "unknown"
	}
	label := e.Notification
	if label == "" {
		label = strconv.Itoa(e.Status)
	}
	h.met.pushes.WithLabelValues(kind, label).Inc()
	hd := w.Header()
	if e.Notification != "" {
		hd[HeaderNotificationStatus] = headerValue(e.Notification)
	}
	if e.Subscription != "" {
		hd[HeaderSubscriptionStatus] = headerValue(e.Subscription)
	}
	if e.Connection != "" {
		hd[HeaderConnectionStatus] = headerValue(e.Connection)
	}
	if e.Status == http.StatusUnauthorized && hd.Get("WWW-Authenticate") == "" {
		// Every 401 names the scheme (RFC 9110 section 15.5.2), also the
		// engine's for a service's channel pushed to without credentials.
		hd.Set("WWW-Authenticate", auth.Challenge(nil))
	}
	h.writeReason(w, e.Status, e.Reason)
}

func (h *pushHandler) writeReason(w http.ResponseWriter, status int, reason string) {
	w.Header().Set(HeaderError, headerSafe(reason))
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(status)
	io.WriteString(w, reason+"\n")
}

// headerSafe makes s fit in one header line.
func headerSafe(s string) string {
	return strings.Map(func(r rune) rune {
		if r < ' ' || r > '~' {
			return ' '
		}
		return r
	}, s)
}
