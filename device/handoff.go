package device

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
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
	// Client defaults to a client with a 10 s timeout.
	Client *http.Client
	// Attempts bounds the tries (default 8); MinBackoff and MaxBackoff bound
	// the delay between them (defaults 500 ms and 30 s).
	Attempts               int
	MinBackoff, MaxBackoff time.Duration
	// Clock defaults to the system clock.
	Clock clock.Clock
}

// Send posts r, retrying with exponential backoff and jitter on transport
// errors and 5xx or 429 answers. It returns the last HTTP status (0 if the
// service was never reached) and an error unless the service answered 2xx.
// attempt, if not nil, is called after each try.
func (h *Handoff) Send(ctx context.Context, r HandoffRecord, attempt func(n, status int, err error)) (int, error) {
	body, err := json.Marshal(r)
	if err != nil {
		return 0, fmt.Errorf("handoff: encode: %w", err)
	}
	client := h.Client
	if client == nil {
		client = &http.Client{Timeout: 10 * time.Second}
	}
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
	var status int
	for n := 0; n < attempts; n++ {
		if n > 0 {
			done := make(chan struct{})
			t := clk.AfterFunc(backoff.Delay(n-1, minB, maxB, rand.Int64N), func() { close(done) })
			select {
			case <-done:
			case <-ctx.Done():
				t.Stop()
				return status, fmt.Errorf("handoff to %s: %w", h.URL, ctx.Err())
			}
		}
		status, err = h.post(ctx, client, body)
		if attempt != nil {
			attempt(n+1, status, err)
		}
		switch {
		case err == nil && status/100 == 2:
			return status, nil
		case err == nil && status/100 == 4 && status != http.StatusTooManyRequests:
			return status, fmt.Errorf("handoff to %s: the service refused it with %d", h.URL, status)
		}
	}
	if err == nil {
		err = fmt.Errorf("the service answered %d", status)
	}
	return status, fmt.Errorf("handoff to %s failed after %d attempts: %w", h.URL, attempts, err)
}

func (h *Handoff) post(ctx context.Context, client *http.Client, body []byte) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.URL, bytes.NewReader(body))
	if err != nil {
		return 0, fmt.Errorf("handoff: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	return resp.StatusCode, nil
}
