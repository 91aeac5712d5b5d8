package demobackend

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/openmpns/openmpns/device"
	"github.com/openmpns/openmpns/shared/payload"
	"github.com/openmpns/openmpns/shared/sender"
)

// post sends body to the backend's /handoff/news with a content type and
// returns the status.
func post(t *testing.T, hs *httptest.Server, contentType string, body []byte) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, hs.URL+"/handoff/news", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

func jsonOf(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestHandoffRefusesAnAttacker plays a web page and a stranger who know
// the backend's address and the (public) app secret, against a backend
// paired with a real push server: they try to make the backend POST to a
// local service, to fill it, and to take a phone's pushes. The local
// service must get nothing, and the phone must keep its pushes.
func TestHandoffRefusesAnAttacker(t *testing.T) {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	srv := pushServer(t)
	var victimHits atomic.Int32
	victim := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { victimHits.Add(1) }))
	defer victim.Close()

	b := &Backend{Sender: &sender.Client{}, Log: quiet, PushServers: origins(t, srv.URL()), Secrets: testSecrets, MaxRegistrations: 3}
	hs := httptest.NewServer(b.Handler())
	defer hs.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	// openPhone makes a device with the news app's channel bound to tiles.
	openPhone := func(got chan<- string, name string) (*device.Device, string) {
		dev, err := device.New(device.Config{Server: srv.URL(), Logger: quiet, Handlers: device.Handlers{
			Tile: func(device.Meta, *payload.Tile, []string) { got <- name },
		}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { dev.Close() })
		ch := dev.NewChannel("com.openmpns.news", "main", "")
		if err := ch.Open(ctx); err != nil {
			t.Fatal(err)
		}
		if err := ch.BindToShellTile(ctx); err != nil {
			t.Fatal(err)
		}
		return dev, ch.ChannelURI()
	}
	got := make(chan string, 16)
	phone, phoneURI := openPhone(got, "phone")
	_, thiefURI := openPhone(got, "thief")

	legit := record(phone.ID(), "com.openmpns.news", phoneURI)
	if s := post(t, hs, "application/json", jsonOf(t, legit)); s != http.StatusCreated {
		t.Fatalf("the phone's handoff: %d", s)
	}

	aimed := func(uri string) []byte {
		r := record("attacker", "com.openmpns.news", uri)
		return jsonOf(t, r)
	}
	// The phone's Channel URI with the local service's port in place of
	// the push server's.
	otherPort := strings.Replace(phoneURI, srv.URL(), victim.URL, 1)
	tests := []struct {
		name        string
		contentType string
		body        []byte
		want        int
	}{
		// A web page can send these cross-origin without a preflight.
		{"text/plain from a web page", "text/plain", aimed(phoneURI), http.StatusUnsupportedMediaType},
		{"text/plain with charset", "text/plain; charset=utf-8", aimed(phoneURI), http.StatusUnsupportedMediaType},
		{"a form", "application/x-www-form-urlencoded", aimed(phoneURI), http.StatusUnsupportedMediaType},
		{"a multipart form", "multipart/form-data; boundary=x", aimed(phoneURI), http.StatusUnsupportedMediaType},
		{"no content type", "", aimed(phoneURI), http.StatusUnsupportedMediaType},
		// Without the app's secret.
		{"no secret", "application/json", []byte(`{"device_id":"a","app":"com.openmpns.news","uri":"` + phoneURI + `","device_key":"k"}`), http.StatusUnauthorized},
		{"wrong secret", "application/json", jsonOf(t, device.HandoffRecord{DeviceID: "a", App: "com.openmpns.news", URI: phoneURI, Secret: "guess", DeviceKey: "k"}), http.StatusUnauthorized},
		{"another app's secret", "application/json", jsonOf(t, device.HandoffRecord{DeviceID: "a", App: "com.openmpns.news", URI: phoneURI, Secret: testSecrets["com.openmpns.mail"], DeviceKey: "k"}), http.StatusUnauthorized},
		// Aimed at something other than the push server.
		{"a local service", "application/json", aimed(victim.URL + "/push/abc"), http.StatusUnprocessableEntity},
		{"a local service's path", "application/json", aimed(victim.URL + "/admin/delete"), http.StatusUnprocessableEntity},
		{"the push server's host on another port", "application/json", aimed(otherPort), http.StatusUnprocessableEntity},
		{"the push server over https", "application/json", aimed(strings.Replace(phoneURI, "http://", "https://", 1)), http.StatusUnprocessableEntity},
		{"the push server's other paths", "application/json", aimed(srv.URL() + "/metrics"), http.StatusUnprocessableEntity},
		{"a user in the URI", "application/json", aimed(strings.Replace(phoneURI, "http://", "http://u:p@", 1)), http.StatusUnprocessableEntity},
		{"a query", "application/json", aimed(phoneURI + "?x=1"), http.StatusUnprocessableEntity},
		{"a dot segment", "application/json", aimed(srv.URL() + "/push/../metrics"), http.StatusUnprocessableEntity},
		{"not http", "application/json", aimed("file:///etc/passwd"), http.StatusUnprocessableEntity},
		// Too large.
		{"a body over the limit", "application/json", append(aimed(phoneURI)[:1], append([]byte(`"pad":"`+strings.Repeat("x", MaxHandoffBytes)+`",`), aimed(phoneURI)[1:]...)...), http.StatusRequestEntityTooLarge},
		// Another handoff for the phone's (device, app), to take its pushes.
		{"the phone's device and app with another key", "application/json", jsonOf(t, device.HandoffRecord{DeviceID: phone.ID(), App: "com.openmpns.news", URI: thiefURI, Secret: testSecrets["com.openmpns.news"], DeviceKey: "thief"}), http.StatusConflict},
		{"a device id that would write to the operator's terminal", "application/json", jsonOf(t, device.HandoffRecord{DeviceID: "\x1b]0;owned\a", App: "com.openmpns.news", URI: phoneURI, Secret: testSecrets["com.openmpns.news"], DeviceKey: "k"}), http.StatusBadRequest},
		{"the phone's device and app without a key", "application/json", jsonOf(t, device.HandoffRecord{DeviceID: phone.ID(), App: "com.openmpns.news", URI: thiefURI, Secret: testSecrets["com.openmpns.news"]}), http.StatusBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if s := post(t, hs, tt.contentType, tt.body); s != tt.want {
				t.Errorf("status %d, want %d", s, tt.want)
			}
		})
	}

	// The cap: the phone's registration plus two more; the next is refused,
	// while a registration already held may still be renewed.
	for i, want := range []int{http.StatusCreated, http.StatusCreated, http.StatusServiceUnavailable} {
		r := record("filler"+string(rune('a'+i)), "com.openmpns.news", phoneURI)
		if s := post(t, hs, "application/json", jsonOf(t, r)); s != want {
			t.Errorf("registration %d: %d, want %d", i+2, s, want)
		}
	}
	if s := post(t, hs, "application/json", jsonOf(t, legit)); s != http.StatusCreated {
		t.Errorf("the phone's renewal at the cap: %d", s)
	}
	if n := len(b.Registrations()); n != 3 {
		t.Errorf("%d registrations, want the cap of 3", n)
	}

	// One round: the phone gets its push, the thief nothing, the local
	// service nothing.
	b.mu.Lock()
	for k, r := range b.regs {
		if strings.HasPrefix(r.DeviceID, "filler") {
			delete(b.regs, k) // only the phone's pushes matter here
		}
	}
	b.mu.Unlock()
	if n := b.Round(ctx); n != 1 {
		t.Fatalf("round: %d received, want 1", n)
	}
	select {
	case who := <-got:
		if who != "phone" {
			t.Fatalf("the push went to the %s", who)
		}
	case <-ctx.Done():
		t.Fatal("the phone got no push")
	}
	if n := victimHits.Load(); n != 0 {
		t.Fatalf("the local service got %d requests from the backend", n)
	}

	// The listing names no Channel URI.
	resp, err := http.Get(hs.URL + "/registrations")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if bytes.Contains(body, []byte("/push/")) || bytes.Contains(body, []byte(`"uri"`)) || bytes.Contains(body, []byte(srv.URL())) {
		t.Fatalf("GET /registrations shows Channel URIs: %s", body)
	}
	if !bytes.Contains(body, []byte(`"last_status":"200 `)) {
		t.Fatalf("GET /registrations: %s", body)
	}
}

// TestRegistrationsTellNothingOfUnreachableServices: a push that fails
// leaves no error text in the listing (which would tell a stranger what
// listens where).
func TestRegistrationsTellNothingOfUnreachableServices(t *testing.T) {
	dead := httptest.NewServer(http.NotFoundHandler())
	deadURL := dead.URL
	dead.Close()
	b := &Backend{Sender: &sender.Client{}, Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		PushServers: origins(t, deadURL), Secrets: testSecrets}
	hs := httptest.NewServer(b.Handler())
	defer hs.Close()
	if s := post(t, hs, "application/json", jsonOf(t, record("d", "com.openmpns.news", deadURL+"/push/abc"))); s != http.StatusCreated {
		t.Fatalf("handoff: %d", s)
	}
	b.Round(context.Background())
	resp, err := http.Get(hs.URL + "/registrations")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, leak := range []string{"refused", "dial", "connect", deadURL, "/push/"} {
		if bytes.Contains(body, []byte(leak)) {
			t.Errorf("GET /registrations says %q: %s", leak, body)
		}
	}
}
