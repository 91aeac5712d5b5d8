package device

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"time"

	"github.com/openmpns/openmpns/device/internal/backoff"
	"github.com/openmpns/openmpns/shared/clock"
)

// HandoffRecord is what an app POSTs to its cloud service when its Channel
// URI is new or changed (the "handoff").
type HandoffRecord struct {
	DeviceID string `json:"device_id"`
	App      string `json:"app"`
	Channel  string `json:"channel"`
	URI      string `json:"uri"`
	// Secret is the app's handoff secret, which its cloud service checks
	// (the manifest's handoff_secret in the emulator); "" for none.
	Secret string `json:"secret,omitempty"`
	// DeviceKey is a secret of this device for this app, the same at every
	// handoff, so that the cloud service can refuse a later handoff for the
	// same device and app from someone else; "" for none.
	DeviceKey string `json:"device_key,omitempty"`
}

// Handoff posts Channel URIs to an app's cloud service, as a real app does.
type Handoff struct {
	// URL is the cloud service's endpoint.
	URL string
	// Client defaults to a client with a 10 s timeout. Send uses a copy
	// of it with its own redirect policy (see Send).
	Client *http.Client
	// Attempts bounds the tries (default 8); MinBackoff and MaxBackoff bound
	// the delay between them (defaults 500 ms and 30 s).
	Attempts               int
	MinBackoff, MaxBackoff time.Duration
	// Clock defaults to the system clock.
	Clock clock.Clock
	// Stop, if not nil, ends Send once it is closed: Send makes no further
	// try (a wait between tries ends at once) and returns an error
	// wrapping ErrHandoffStopped. A try under way is not cut short: the
	// service may have taken the record already, and only its answer
	// says so. An app closes it when its Channel URI changed, so that
	// the old URI's handoff does not land after the new one's.
	Stop <-chan struct{}
}

// ErrHandoffStopped is the error of a handoff that Handoff.Stop ended
// before the service took it.
var ErrHandoffStopped = errors.New("handoff stopped")

// HandoffRefusedError is the error of a handoff the cloud service refused
// with a 4xx answer other than 429 (which is retried): 401 for a missing or
// wrong handoff secret and 409 for a device key it does not hold, with
// openmpns demo-backend. Such a handoff is not tried again.
type HandoffRefusedError struct {
	// URL is the cloud service's endpoint.
	URL string
	// Status is the HTTP status of the answer.
	Status int
	// Message is the first line of the answer's body, at most 200 bytes of
	// printable ASCII (other bytes are dropped); "" when there was none.
	Message string
}

func (e *HandoffRefusedError) Error() string {
	s := fmt.Sprintf("handoff to %s: the service refused it with %d", e.URL, e.Status)
	if e.Message != "" {
		s += ": " + e.Message
	}
	return s
}

// Send posts r, retrying with exponential backoff and jitter on transport
// errors and 5xx or 429 answers. It returns the last HTTP status (0 if the
// service was never reached) and an error unless the service answered 2xx:
// a *HandoffRefusedError for another 4xx, which is not retried. A redirect
// is followed only when it keeps the POST and its body (307, 308) and does
// not go from https to http; any other redirect ends Send at once with an
// error that says why (the service did not get the record). attempt, if
// not nil, is called after each try with its status and transport error
// (nil when the service answered, whatever the status).
func (h *Handoff) Send(ctx context.Context, r HandoffRecord, attempt func(n, status int, err error)) (int, error) {
	body, err := json.Marshal(r)
	if err != nil {
		return 0, fmt.Errorf("handoff: encode: %w", err)
	}
	client := &http.Client{Timeout: 10 * time.Second}
	if h.Client != nil {
		c := *h.Client // the caller's client is not changed
		client = &c
	}
	client.CheckRedirect = keepPOST
	attempts, minB, maxB, clk := h.Attempts, h.MinBackoff, h.MaxBackoff, h.Clock
	if attempts <= 0 {
		attempts = 8
	}
	if minB <= 0 {
		minB = 500 * time.Millisecond
	}
	if maxB <= 0 {
		maxB = 30 * time.Second
	}
	if clk == nil {
		clk = clock.System{}
	}
	var (
		status int
		msg    string
	)
	for n := 0; n < attempts; n++ {
		if n > 0 {
			done := make(chan struct{})
			t := clk.AfterFunc(backoff.Delay(n-1, minB, maxB, rand.Int64N), func() { close(done) })
			select {
			case <-done:
			case <-ctx.Done():
				t.Stop()
				return status, fmt.Errorf("handoff to %s: %w", h.URL, ctx.Err())
			case <-h.Stop:
				t.Stop()
			}
		}
		select {
		case <-h.Stop:
			return status, fmt.Errorf("handoff to %s: %w after %d attempts", h.URL, ErrHandoffStopped, n)
		default:
		}
		status, msg, err = h.post(ctx, client, body)
		if attempt != nil {
			attempt(n+1, status, err)
		}
		switch {
		case err == nil && status/100 == 2:
			return status, nil
		case err == nil && status/100 == 4 && status != http.StatusTooManyRequests:
			return status, &HandoffRefusedError{URL: h.URL, Status: status, Message: msg}
		case err == nil && status/100 == 3:
			// A redirect that was not followed (see keepPOST): the service
			// did not get the record, and would not at the next try.
			return status, fmt.Errorf("handoff to %s: not delivered: %s", h.URL, msg)
		}
	}
	if err == nil {
		err = fmt.Errorf("the service answered %d", status)
	}
	return status, fmt.Errorf("handoff to %s failed after %d attempts: %w", h.URL, attempts, err)
}

// maxRedirects bounds the redirects a handoff follows, as net/http's
// default policy does.
const maxRedirects = 10

// keepPOST is the handoff client's redirect policy: a handoff follows only
// the redirects that send the same POST again, body included, to the new
// URL (307 and 308), and none from https to http, which would send the
// app's handoff secret in the clear. net/http would follow a 301, 302 or
// 303 with a GET without the body, whose 200 would count as a delivered
// handoff although the service never got the Channel URI. The redirect
// not followed is returned as the answer (post explains it).
func keepPOST(req *http.Request, via []*http.Request) error {
	switch {
	case len(via) >= maxRedirects,
		req.Response == nil,
		req.Response.StatusCode != http.StatusTemporaryRedirect && req.Response.StatusCode != http.StatusPermanentRedirect,
		via[len(via)-1].URL.Scheme == "https" && req.URL.Scheme != "https":
		return http.ErrUseLastResponse
	}
	return nil
}

// post sends body once and returns the answer's status and, for a 4xx,
// the first line of its body (see HandoffRefusedError.Message), or, for a
// 3xx (a redirect keepPOST did not follow), why it was not followed.
func (h *Handoff) post(ctx context.Context, client *http.Client, body []byte) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.URL, bytes.NewReader(body))
	if err != nil {
		return 0, "", fmt.Errorf("handoff: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	var msg string
	if resp.StatusCode/100 == 3 {
		msg = redirectNotFollowed(resp)
	}
	if resp.StatusCode/100 == 4 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		msg = firstLine(b, 200)
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	return resp.StatusCode, msg, nil
}

// firstLine returns the first line of b, without bytes other than
// printable ASCII and spaces (the service is not trusted to print to a
// terminal), trimmed and cut to at most limit bytes.
func firstLine(b []byte, limit int) string {
	if i := bytes.IndexAny(b, "\r\n"); i >= 0 {
		b = b[:i]
	}
	out := make([]byte, 0, min(len(b), limit))
	for _, c := range b {
		if c >= ' ' && c <= '~' && len(out) < limit {
			out = append(out, c)
		}
	}
	return strings.TrimSpace(string(out))
}

// redirectNotFollowed explains why a handoff stopped at the redirect resp.
func redirectNotFollowed(resp *http.Response) string {
	code := resp.StatusCode
	loc, err := resp.Location()
	if err != nil {
		return fmt.Sprintf("the service answered %d without a usable Location", code)
	}
	to := firstLine([]byte(loc.String()), 200)
	switch {
	case code != http.StatusTemporaryRedirect && code != http.StatusPermanentRedirect:
		return fmt.Sprintf("the service answered %d, a redirect to %s that would send the handoff as a GET without its body; only 307 and 308 are followed: give the handoff URL as %s", code, to, to)
	case resp.Request != nil && resp.Request.URL.Scheme == "https" && loc.Scheme != "https":
		return fmt.Sprintf("the service answered %d, a redirect from https to %s, which would send the handoff (and the app's secret) in the clear; it is not followed", code, to)
	default:
		return fmt.Sprintf("the service answered %d, a redirect to %s, after %d redirects", code, to, maxRedirects)
	}
}
