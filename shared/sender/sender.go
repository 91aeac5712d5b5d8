// Package sender is a Go client for cloud services that send notifications
// to MPNS Channel URIs, as OpenMPNS (or Microsoft's service) serves them.
//
// A Request is one POST to a Channel URI; Client.Send turns it into the
// headers the service expects (X-WindowsPhone-Target, X-NotificationClass,
// X-MessageID, Content-Type) and returns the service's answer as a
// Response. Any HTTP status is a Response, not an error: Response's
// helpers say what a sender should do next (stop, retry with backoff, retry
// in an hour, fix the request), following the MPNS response table.
//
// Example:
//
//	toast := &payload.Toast{Text1: "New message", Text2: "Lunch at 1?", Param: "/Chat.xaml?id=42"}
//	req, err := sender.NewToast(channelURI, toast, sender.Immediate)
//	if err != nil {
//		return err // the toast does not validate
//	}
//	var c sender.Client // the zero Client uses a shared default HTTP client
//	resp, err := c.Send(ctx, req)
//	switch {
//	case err != nil:
//		// transport failure: retry with backoff
//	case resp.Delivered():
//		// accepted and queued for the phone
//	case resp.ShouldStop():
//		// the subscription is gone: delete the Channel URI
//	case resp.Retryable():
//		// wait resp.RetryAfter() (or back off exponentially) and resend
//	default:
//		log.Printf("refused: %v", resp) // e.g. 400 with resp.Reason
//	}
//
// An authenticated sender configures Client.HTTP with a TLS client
// certificate, or passes "Authorization: Bearer ..." in Request.Header.
package sender

import (
	"bytes"
	"context"
	cryptorand "crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/openmpns/openmpns/shared/payload"
)

// Request and response headers of the MPNS protocol.
const (
	HeaderTarget                 = "X-WindowsPhone-Target"
	HeaderClass                  = "X-NotificationClass"
	HeaderMessageID              = "X-MessageID"
	HeaderNotificationStatus     = "X-NotificationStatus"
	HeaderSubscriptionStatus     = "X-SubscriptionStatus"
	HeaderDeviceConnectionStatus = "X-DeviceConnectionStatus"
	// HeaderError is OpenMPNS's own: the human-readable reason of a refusal.
	HeaderError = "X-OpenMPNS-Error"
)

// X-WindowsPhone-Target values; a raw notification sends no target.
const (
	TargetToast = "toast"
	TargetTile  = "token"
)

// Content types Send uses.
const (
	ContentTypeXML = "text/xml"
	ContentTypeRaw = "application/octet-stream"
)

// X-NotificationStatus values.
const (
	StatusReceived   = "Received"
	StatusQueueFull  = "QueueFull"
	StatusSuppressed = "Suppressed"
	StatusDropped    = "Dropped"
)

// X-SubscriptionStatus values.
const (
	SubscriptionActive  = "Active"
	SubscriptionExpired = "Expired"
)

// X-DeviceConnectionStatus values.
const (
	DeviceConnected        = "Connected"
	DeviceTempDisconnected = "TempDisconnected"
	DeviceDisconnected     = "Disconnected"
	DeviceInactive         = "Inactive"
)

// Interval is the batching interval a sender asks for; with the kind of
// notification it makes the X-NotificationClass value (see ClassFor).
type Interval int

// The batching intervals. The zero value is Immediate.
const (
	Immediate Interval = iota // deliver at once
	Within450                 // deliver within 450 seconds
	Within900                 // deliver within 900 seconds
)

// String returns "immediate", "450s" or "900s".
func (iv Interval) String() string {
	switch iv {
	case Immediate:
		return "immediate"
	case Within450:
		return "450s"
	case Within900:
		return "900s"
	}
	return "interval(" + strconv.Itoa(int(iv)) + ")"
}

// ClassFor returns the X-NotificationClass value for a notification of
// kind sent with interval iv: tile 1/11/21, toast 2/12/22, raw 3/13/23 for
// Immediate/Within450/Within900. It returns 0 (no header) for an unknown
// kind or interval.
func ClassFor(kind payload.Kind, iv Interval) int {
	var base int
	switch kind {
	case payload.KindTile:
		base = 1
	case payload.KindToast:
		base = 2
	case payload.KindRaw:
		base = 3
	default:
		return 0
	}
	if iv < Immediate || iv > Within900 {
		return 0
	}
	return base + 10*int(iv)
}

// Request is one notification to POST to a Channel URI.
type Request struct {
	// URI is the Channel URI the phone's app handed to the cloud service.
	URI string
	// Kind sets X-WindowsPhone-Target: toast, token (tile), or no header
	// for raw; and Content-Type: text/xml for toast and tile,
	// application/octet-stream for raw.
	Kind payload.Kind
	// Class is the X-NotificationClass value (see ClassFor); 0 omits the
	// header, which the service reads as immediate.
	Class int
	// MessageID is sent as X-MessageID (the service echoes it); "" omits it.
	MessageID string
	// Body is the payload: XML for toast and tile, any bytes for raw.
	Body []byte
	// Header holds extra headers (e.g. Authorization). They are set after
	// the ones above and replace them, so a test can send, say, a
	// Content-Type of its own or X-WindowsPhone-Target: Tile. May be nil.
	Header http.Header
}

// NewToast returns the request that sends toast t to uri with interval iv,
// after validating and encoding it.
func NewToast(uri string, t *payload.Toast, iv Interval) (Request, error) {
	if err := t.Validate(); err != nil {
		return Request{}, err
	}
	return Request{URI: uri, Kind: payload.KindToast, Class: ClassFor(payload.KindToast, iv), Body: t.Encode()}, nil
}

// NewTile returns the request that sends tile t to uri with interval iv,
// after validating and encoding it.
func NewTile(uri string, t *payload.Tile, iv Interval) (Request, error) {
	if err := t.Validate(); err != nil {
		return Request{}, err
	}
	return Request{URI: uri, Kind: payload.KindTile, Class: ClassFor(payload.KindTile, iv), Body: t.Encode()}, nil
}

// NewRaw returns the request that sends body as a raw notification to uri
// with interval iv.
func NewRaw(uri string, body []byte, iv Interval) Request {
	return Request{URI: uri, Kind: payload.KindRaw, Class: ClassFor(payload.KindRaw, iv), Body: body}
}

// Response is the service's answer to a Request.
type Response struct {
	// StatusCode is the HTTP status.
	StatusCode int
	// NotificationStatus is X-NotificationStatus: Received, QueueFull,
	// Suppressed, Dropped, or "".
	NotificationStatus string
	// SubscriptionStatus is X-SubscriptionStatus: Active, Expired, or "".
	SubscriptionStatus string
	// DeviceConnectionStatus is X-DeviceConnectionStatus: Connected,
	// TempDisconnected, Disconnected, Inactive, or "".
	DeviceConnectionStatus string
	// MessageID is the X-MessageID the service echoed.
	MessageID string
	// Reason is the X-OpenMPNS-Error header: OpenMPNS's human-readable
	// reason for a 4xx or 5xx ("" from services that do not send it).
	Reason string
	// RetryAfterHeader is the Retry-After header as sent, if any.
	RetryAfterHeader string
}

// Advice is what a sender should do after a Response, per the MPNS
// response table.
type Advice int

// The possible advice.
const (
	// AdviceDone: the notification was accepted (Received), or accepted and
	// then dropped by the phone's settings (Suppressed). Do not resend.
	AdviceDone Advice = iota
	// AdviceBackoff: the channel's queue is full (QueueFull) or the service
	// is unavailable (503, other 5xx, 429): retry with exponential backoff.
	AdviceBackoff
	// AdviceRetryHourly: the daily quota is used up (406) or the device is
	// inactive (412): retry at most once an hour.
	AdviceRetryHourly
	// AdviceStop: the subscription is gone (404, Expired): stop sending and
	// delete the Channel URI.
	AdviceStop
	// AdviceFix: the request itself is wrong (400, 401, 403, 405, 413, other
	// 4xx, unexpected statuses): resending it unchanged will not help.
	AdviceFix
)

// String returns a short description of a.
func (a Advice) String() string {
	switch a {
	case AdviceDone:
		return "done"
	case AdviceBackoff:
		return "retry with backoff"
	case AdviceRetryHourly:
		return "retry in an hour"
	case AdviceStop:
		return "stop: subscription expired"
	case AdviceFix:
		return "fix the request"
	}
	return "advice(" + strconv.Itoa(int(a)) + ")"
}

// Advice returns what the sender should do next.
func (r *Response) Advice() Advice {
	switch r.StatusCode {
	case http.StatusOK:
		switch r.NotificationStatus {
		case StatusQueueFull:
			return AdviceBackoff
		case StatusReceived, StatusSuppressed:
			return AdviceDone
		}
		// A 200 without a known status is not the protocol; treat it as
		// accepted rather than resend a possibly delivered notification.
		return AdviceDone
	case http.StatusNotFound:
		return AdviceStop
	case http.StatusNotAcceptable, http.StatusPreconditionFailed:
		return AdviceRetryHourly
	case http.StatusTooManyRequests:
		return AdviceBackoff
	}
	if r.SubscriptionStatus == SubscriptionExpired {
		return AdviceStop
	}
	if r.StatusCode >= 500 && r.StatusCode <= 599 {
		return AdviceBackoff
	}
	return AdviceFix
}

// Delivered reports whether the service accepted the notification and
// queued it for the phone (200 Received). "Received" means accepted, not
// yet shown on the phone.
func (r *Response) Delivered() bool {
	return r.StatusCode == http.StatusOK && r.NotificationStatus == StatusReceived
}

// Suppressed reports whether the service accepted the notification and
// then dropped it because the channel is not bound for its kind, the user
// opted out, or the phone saves power (200 Suppressed). Resending will not
// help until the app binds the channel again.
func (r *Response) Suppressed() bool {
	return r.StatusCode == http.StatusOK && r.NotificationStatus == StatusSuppressed
}

// QueueFull reports whether the channel's queue is full (200 QueueFull).
func (r *Response) QueueFull() bool {
	return r.StatusCode == http.StatusOK && r.NotificationStatus == StatusQueueFull
}

// ShouldStop reports whether the subscription is gone (404 Expired): the
// sender should stop sending to this Channel URI and delete it.
func (r *Response) ShouldStop() bool { return r.Advice() == AdviceStop }

// Retryable reports whether sending the same request again later may
// succeed: QueueFull, 503 (and other 5xx, 429), 406 and 412. See
// RetryAfter for how long to wait.
func (r *Response) Retryable() bool {
	a := r.Advice()
	return a == AdviceBackoff || a == AdviceRetryHourly
}

// RetryAfter returns the least time to wait before retrying a Retryable
// response: the Retry-After header if the service sent one (in seconds or
// as an HTTP date), else one hour for 406 and 412, else 0, meaning "use
// exponential backoff". It returns 0 for responses that are not Retryable.
func (r *Response) RetryAfter() time.Duration {
	if !r.Retryable() {
		return 0
	}
	if d, ok := parseRetryAfter(r.RetryAfterHeader, time.Now()); ok {
		return d
	}
	if r.Advice() == AdviceRetryHourly {
		return time.Hour
	}
	return 0
}

func parseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs < 0 {
			return 0, false
		}
		if secs > 7*24*3600 {
			secs = 7 * 24 * 3600
		}
		return time.Duration(secs) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		d := t.Sub(now)
		if d < 0 {
			d = 0
		}
		return d, true
	}
	return 0, false
}

// String describes r on one line, e.g. "200 Received/Active/Connected" or
// "400: invalid payload: Count: ...".
func (r *Response) String() string {
	var b strings.Builder
	b.WriteString(strconv.Itoa(r.StatusCode))
	if r.NotificationStatus != "" || r.SubscriptionStatus != "" || r.DeviceConnectionStatus != "" {
		b.WriteByte(' ')
		b.WriteString(orDash(r.NotificationStatus))
		b.WriteByte('/')
		b.WriteString(orDash(r.SubscriptionStatus))
		b.WriteByte('/')
		b.WriteString(orDash(r.DeviceConnectionStatus))
	} else if text := http.StatusText(r.StatusCode); text != "" {
		b.WriteByte(' ')
		b.WriteString(text)
	}
	if r.Reason != "" {
		b.WriteString(": ")
		b.WriteString(r.Reason)
	}
	return b.String()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// Client sends Requests. The zero Client is ready to use.
type Client struct {
	// HTTP is the client used for requests; nil means DefaultHTTPClient().
	// Give one with a TLS client certificate for an authenticated sender.
	HTTP *http.Client
	// UserAgent is sent as User-Agent; "" means "openmpns-sender/1".
	UserAgent string
}

// DefaultUserAgent is the User-Agent a Client sends unless told otherwise.
const DefaultUserAgent = "openmpns-sender/1"

// maxDrain is how much of a response body Send reads (and discards) so the
// connection can be reused; longer bodies close the connection instead.
const maxDrain = 64 << 10

var defaultHTTP = sync.OnceValue(func() *http.Client { return NewHTTPClient(64) })

// NewHTTPClient returns a client like DefaultHTTPClient's that keeps up to
// perHost idle connections to each host: a sender with many concurrent
// requests (a load test) sizes it to its concurrency.
func NewHTTPClient(perHost int) *http.Client {
	dialer := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	return &http.Client{
		Timeout: 30 * time.Second,
		Transport: &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			DialContext:           dialer.DialContext,
			ForceAttemptHTTP2:     true,
			TLSClientConfig:       &tls.Config{MinVersion: tls.VersionTLS12},
			TLSHandshakeTimeout:   10 * time.Second,
			ResponseHeaderTimeout: 20 * time.Second,
			ExpectContinueTimeout: time.Second,
			MaxIdleConns:          max(256, 4*perHost),
			MaxIdleConnsPerHost:   perHost,
			IdleConnTimeout:       90 * time.Second,
		},
		// A Channel URI that redirects is not MPNS; report the 3xx.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// DefaultHTTPClient returns the shared client a Client with nil HTTP uses:
// 30 s overall timeout (10 s to connect, 10 s for TLS, 20 s for the
// response headers), keep-alive with up to 64 idle connections per host,
// TLS 1.2 or later, proxies from the environment, and redirects not
// followed (a 3xx is returned as a Response).
func DefaultHTTPClient() *http.Client { return defaultHTTP() }

// Send POSTs r and returns the service's answer. Any HTTP status is a
// Response; the error is non-nil only when r cannot be sent (bad URI,
// unknown Kind) or the transport fails (connection refused, timeout,
// context cancelled), in which case the notification may or may not have
// been received. The response body is read (up to 64 KiB) and discarded so
// that the connection can be reused.
func (c *Client) Send(ctx context.Context, r Request) (*Response, error) {
	req, err := c.newHTTPRequest(ctx, r)
	if err != nil {
		return nil, err
	}
	hc := c.HTTP
	if hc == nil {
		hc = defaultHTTP()
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("sender: POST %s: %w", redact(r.URI), unwrapURLError(err))
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxDrain))
	h := resp.Header
	return &Response{
		StatusCode:             resp.StatusCode,
		NotificationStatus:     h.Get(HeaderNotificationStatus),
		SubscriptionStatus:     h.Get(HeaderSubscriptionStatus),
		DeviceConnectionStatus: h.Get(HeaderDeviceConnectionStatus),
		MessageID:              h.Get(HeaderMessageID),
		Reason:                 h.Get(HeaderError),
		RetryAfterHeader:       h.Get("Retry-After"),
	}, nil
}

func (c *Client) newHTTPRequest(ctx context.Context, r Request) (*http.Request, error) {
	u, err := url.Parse(r.URI)
	if err != nil {
		return nil, errors.New("sender: bad Channel URI: not a URI")
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return nil, errors.New("sender: bad Channel URI: want an absolute http or https URI")
	}
	var target, ctype string
	switch r.Kind {
	case payload.KindToast:
		target, ctype = TargetToast, ContentTypeXML
	case payload.KindTile:
		target, ctype = TargetTile, ContentTypeXML
	case payload.KindRaw:
		ctype = ContentTypeRaw
	default:
		return nil, fmt.Errorf("sender: unknown notification kind %v", r.Kind)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.URI, bytesReader(r.Body))
	if err != nil {
		return nil, fmt.Errorf("sender: %w", err)
	}
	req.ContentLength = int64(len(r.Body))
	h := req.Header
	h.Set("Content-Type", ctype)
	if target != "" {
		h.Set(HeaderTarget, target)
	}
	if r.Class != 0 {
		h.Set(HeaderClass, strconv.Itoa(r.Class))
	}
	if r.MessageID != "" {
		h.Set(HeaderMessageID, r.MessageID)
	}
	ua := c.UserAgent
	if ua == "" {
		ua = DefaultUserAgent
	}
	h.Set("User-Agent", ua)
	for k, vs := range r.Header {
		h[http.CanonicalHeaderKey(k)] = append([]string(nil), vs...)
	}
	return req, nil
}

// bytesReader returns the body as a *bytes.Reader (http.NoBody when
// empty), for which NewRequest sets GetBody: the transport can then resend
// the request on a keep-alive connection the server closed meanwhile.
func bytesReader(b []byte) io.Reader {
	if len(b) == 0 {
		return http.NoBody
	}
	return bytes.NewReader(b)
}

// redact keeps only the scheme and host of a Channel URI for error
// messages: the rest of a Channel URI is a capability (whoever knows it
// may send to the phone) and does not belong in logs.
func redact(uri string) string {
	u, err := url.Parse(uri)
	if err != nil || u.Host == "" {
		return "(Channel URI)"
	}
	return u.Scheme + "://" + u.Host + "/..."
}

// unwrapURLError drops the *url.Error wrapper (which repeats the URI,
// query included) while keeping the cause matchable with errors.Is.
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// NewMessageID returns a random (version 4) UUID for X-MessageID.
func NewMessageID() string {
	var b [16]byte
	cryptorand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

// timedMark is the fourth group of a timed message id ("10ad": load).
const timedMark = "10ad"

// NewTimedMessageID returns a UUID-shaped X-MessageID that carries the
// send time t (in nanoseconds) and a sequence number, so that a device on
// the same clock can measure the delay from the sender's POST to its own
// receipt (`openmpns load` sends these; `openmpns fleet` reads them).
func NewTimedMessageID(t time.Time, seq uint64) string {
	var b [36]byte
	return string(AppendTimedMessageID(b[:0], t, seq))
}

// AppendTimedMessageID appends NewTimedMessageID(t, seq) to dst, for
// senders that build their requests without allocating.
func AppendTimedMessageID(dst []byte, t time.Time, seq uint64) []byte {
	n := uint64(t.UnixNano())
	dst = appendHex(dst, n>>32, 8)
	dst = append(dst, '-')
	dst = appendHex(dst, (n>>16)&0xffff, 4)
	dst = append(dst, '-')
	dst = appendHex(dst, n&0xffff, 4)
	dst = append(dst, '-')
	dst = append(dst, timedMark...)
	dst = append(dst, '-')
	return appendHex(dst, seq&0xffffffffffff, 12)
}

// appendHex appends the width lowest hex digits of v, zero-padded.
func appendHex(dst []byte, v uint64, width int) []byte {
	const digits = "0123456789abcdef"
	for i := width - 1; i >= 0; i-- {
		dst = append(dst, digits[(v>>(4*uint(i)))&0xf])
	}
	return dst
}

// TimeOfMessageID returns the send time a NewTimedMessageID id carries;
// false for any other id.
func TimeOfMessageID(id string) (time.Time, bool) {
	if len(id) != 36 || id[8] != '-' || id[13] != '-' || id[18] != '-' || id[23] != '-' || id[19:23] != timedMark {
		return time.Time{}, false
	}
	var n uint64
	for _, c := range id[0:8] + id[9:13] + id[14:18] {
		var v uint64
		switch {
		case c >= '0' && c <= '9':
			v = uint64(c - '0')
		case c >= 'a' && c <= 'f':
			v = uint64(c-'a') + 10
		default:
			return time.Time{}, false
		}
		n = n<<4 | v
	}
	return time.Unix(0, int64(n)), true
}
