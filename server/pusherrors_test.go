package server

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/openmpns/openmpns/server/backend"
	"github.com/openmpns/openmpns/server/store"
)

// failingLookups is a backend whose channel lookups and quota counters
// fail, saying where, as a NATS backend's or a full disk's errors do.
type failingLookups struct {
	*store.Embedded
	failTarget bool
}

func (b failingLookups) Target(ctx context.Context, token string) (backend.Channel, backend.Device, error) {
	if b.failTarget {
		return backend.Channel{}, backend.Device{}, errors.New("nats: kv get openmpns-secret-bucket at 10.9.8.7:4222: timeout")
	}
	return b.Embedded.Target(ctx, token)
}

func (failingLookups) Take(context.Context, string, int64, time.Duration) (bool, error) {
	return false, errors.New("read /var/lib/openmpns/secret-path: input/output error")
}

// A push the backend fails is answered 503 "retry with backoff", as MPNS
// did: the backend's own words (paths, addresses, bucket names) are logged
// for the operator, not told to the sender, who may be anyone who knows a
// Channel URI (the gateway's hello keeps them from devices likewise).
func TestABackendErrorIsLoggedNotToldToTheSender(t *testing.T) {
	for _, failTarget := range []bool{true, false} {
		var logged syncBuffer
		srv := startServer(t, Config{Backend: failingLookups{openEmbedded(t), failTarget},
			Logger: slog.New(slog.NewTextHandler(&logged, nil))})
		tok := strings.Repeat("A", 27)
		if !failTarget { // a channel, so that the push reaches the quota
			dev, _, err := srv.eng.Authenticate("", "")
			if err != nil {
				t.Fatal(err)
			}
			ch, err := srv.eng.Open(dev, "com.example.app", "main", "", nil)
			if err != nil {
				t.Fatal(err)
			}
			tok = ch.Token
		}
		resp, err := http.Post(srv.URL()+PushPath+tok, "text/xml", strings.NewReader("raw"))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		reason := resp.Header.Get(HeaderError)
		if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(reason, "retry with backoff") {
			t.Fatalf("failing Target %v: %d %q, want 503 saying to retry with backoff", failTarget, resp.StatusCode, reason)
		}
		for _, secret := range []string{"secret", "10.9.8.7", "nats"} {
			if strings.Contains(reason, secret) || strings.Contains(string(body), secret) {
				t.Errorf("failing Target %v: the sender is told %q (body %q)", failTarget, reason, body)
			}
		}
		if !strings.Contains(logged.String(), "secret") {
			t.Errorf("failing Target %v: the backend's error was not logged:\n%s", failTarget, logged.String())
		}
	}
}

// A push refused before its target was read (headers over the limit, an
// unknown X-WindowsPhone-Target) counts under kind "unknown" in
// openmpns_notifications_total, as one refused before its channel URI was
// read does, not under the label "kind(0)".
func TestAPushRefusedBeforeItsKindCountsAsUnknown(t *testing.T) {
	srv := startServer(t, Config{})
	uri := srv.URL() + PushPath + strings.Repeat("A", 27)
	for _, h := range [][2]string{{"X-Padding", strings.Repeat("p", 2000)}, {"X-WindowsPhone-Target", "bogus"}} {
		req, _ := http.NewRequest("POST", uri, strings.NewReader("raw"))
		req.Header.Set(h[0], h[1])
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("%s: %d, want 400", h[0], resp.StatusCode)
		}
	}
	resp, err := http.Get(srv.URL() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if strings.Contains(string(b), `kind="kind(`) {
		t.Errorf("/metrics has a kind label that is no kind:\n%s", grepLines(string(b), "openmpns_notifications_total{"))
	}
	if !strings.Contains(string(b), `openmpns_notifications_total{kind="unknown",status="400"} 2`) {
		t.Errorf("want the two refusals under kind unknown:\n%s", grepLines(string(b), "openmpns_notifications_total{"))
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// A backend outage logs a line a second, not one per push: each line
// counts the refusals since the one before.
func TestBackendFailuresAreLoggedOnceASecond(t *testing.T) {
	var l failLog
	t0 := time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC)
	var got []int
	for _, at := range []time.Duration{0, 10 * time.Millisecond, 500 * time.Millisecond, 999 * time.Millisecond,
		time.Second, 1500 * time.Millisecond, 3 * time.Second} {
		if n, ok := l.note(t0.Add(at)); ok {
			got = append(got, n)
		}
	}
	if want := []int{1, 4, 2}; !slices.Equal(got, want) {
		t.Fatalf("lines counting %v refusals, want %v", got, want)
	}
}
