package demobackend

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/openmpns/openmpns/device"
	"github.com/openmpns/openmpns/server"
	"github.com/openmpns/openmpns/shared/payload"
	"github.com/openmpns/openmpns/shared/sender"
)

// Secrets of the apps the tests hand off.
var testSecrets = map[string]string{
	"com.openmpns.mail":   "mail-secret-0123456789",
	"com.openmpns.news":   "news-secret-0123456789",
	"com.example.news":    "example-news-secret-01",
	"com.example.weather": "weather-secret-0123456",
}

// record is a handoff of app's uri by device, with its secret and a
// device key.
func record(deviceID, app, uri string) device.HandoffRecord {
	return device.HandoffRecord{DeviceID: deviceID, App: app, Channel: "main", URI: uri,
		Secret: testSecrets[app], DeviceKey: "key-of-" + deviceID}
}

// pushServer starts a real server on loopback.
func pushServer(t *testing.T) *server.Server {
	t.Helper()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	srv, err := server.New(server.Config{Listen: "127.0.0.1:0", DataDir: t.TempDir(), Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv
}

func origins(t *testing.T, urls ...string) []string {
	t.Helper()
	var out []string
	for _, u := range urls {
		o, err := ParseOrigin(u)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, o)
	}
	return out
}

func TestHandoffThenPushesReachThePhone(t *testing.T) {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	srv, err := server.New(server.Config{Listen: "127.0.0.1:0", DataDir: t.TempDir(), Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer srv.Close()

	b := &Backend{Sender: &sender.Client{}, Log: quiet, PushServers: origins(t, srv.URL()), Secrets: testSecrets,
		Images: fstest.MapFS{"photo1.png": {Data: []byte("png")}}}
	hs := httptest.NewServer(b.Handler())
	defer hs.Close()
	b.Base = hs.URL

	var mu sync.Mutex
	var tiles []*payload.Tile
	var toasts []*payload.Toast
	got := make(chan struct{}, 16)
	dev, err := device.New(device.Config{Server: srv.URL(), Logger: quiet, Handlers: device.Handlers{
		Tile: func(_ device.Meta, tl *payload.Tile, _ []string) {
			mu.Lock()
			tiles = append(tiles, tl)
			mu.Unlock()
			got <- struct{}{}
		},
		ShellToast: func(_ device.Meta, tt *payload.Toast) {
			mu.Lock()
			toasts = append(toasts, tt)
			mu.Unlock()
			got <- struct{}{}
		},
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ch := dev.NewChannel("com.openmpns.mail", "main", "")
	if err := ch.Open(ctx); err != nil {
		t.Fatal(err)
	}
	ch.BindToShellToast(ctx)
	ch.BindToShellTile(ctx)

	h := &device.Handoff{URL: hs.URL + "/handoff/mail"}
	if status, err := h.Send(ctx, record(dev.ID(), "com.openmpns.mail", ch.ChannelURI()), nil); err != nil || status != 201 {
		t.Fatalf("handoff: %d %v", status, err)
	}
	if regs := b.Registrations(); len(regs) != 1 || regs[0].Kind != "mail" || regs[0].URI != ch.ChannelURI() {
		t.Fatalf("registrations %+v", regs)
	}
	if n := b.Round(ctx); n != 2 {
		t.Fatalf("round: %d received, want 2 (iconic tile and toast)", n)
	}
	for range 2 {
		select {
		case <-got:
		case <-ctx.Done():
			t.Fatal("the phone did not get the pushes")
		}
	}
	mu.Lock()
	if len(tiles) != 1 || tiles[0].Template != payload.TemplateIconic || tiles[0].Fields[payload.WideContent1] != "Alice Smith" || len(toasts) != 1 {
		t.Fatalf("tiles %+v toasts %+v", tiles, toasts)
	}
	mu.Unlock()

	// Images are served for the photo tiles.
	resp, err := http.Get(hs.URL + "/images/photo1.png")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("image: %v %v", resp, err)
	}
	resp.Body.Close()

	// A closed channel is answered 404 Expired, and the backend forgets it.
	if err := ch.Close(ctx); err != nil {
		t.Fatal(err)
	}
	b.Round(ctx)
	if regs := b.Registrations(); len(regs) != 0 {
		t.Fatalf("registration kept after 404: %+v", regs)
	}
}

func TestHandoffRefusesBadInput(t *testing.T) {
	b := &Backend{PushServers: origins(t, "http://x"), Secrets: testSecrets}
	hs := httptest.NewServer(b.Handler())
	defer hs.Close()
	for _, c := range []struct {
		path, body string
		want       int
	}{
		{"/handoff/news", `{`, 400},
		{"/handoff/news", `{"app":"a","uri":"http://x"}`, 400},
		{"/handoff", `{"device_id":"d","app":"com.example.weather","uri":"http://x/push/y","secret":"weather-secret-0123456","device_key":"k"}`, 422},
		{"/handoff", `{"device_id":"d","app":"com.example.news","uri":"http://x/push/y","secret":"example-news-secret-01"}`, 400},
		{"/handoff", `{"device_id":"d","app":"com.example.news","uri":"http://x/push/y","secret":"example-news-secret-01","device_key":"k"} {}`, 400},
		{"/handoff", `{"device_id":"d","app":"com.example.news","uri":"http://x/push/y","secret":"example-news-secret-01","device_key":"k"}`, 201},
	} {
		resp, err := http.Post(hs.URL+c.path, "application/json", strings.NewReader(c.body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != c.want {
			t.Errorf("%s %s: %d, want %d", c.path, c.body, resp.StatusCode, c.want)
		}
	}
}

func TestUnreachablePushServiceIsForgotten(t *testing.T) {
	dead := httptest.NewServer(http.NotFoundHandler())
	deadURL := dead.URL
	dead.Close() // nothing listens there any more
	b := &Backend{Sender: &sender.Client{}, Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		PushServers: origins(t, deadURL), Secrets: testSecrets}
	hs := httptest.NewServer(b.Handler())
	defer hs.Close()
	resp, err := http.Post(hs.URL+"/handoff/news", "application/json",
		strings.NewReader(`{"device_id":"d","app":"com.example.news","uri":"`+deadURL+`/push/x","secret":"example-news-secret-01","device_key":"k"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	for i := 1; i <= maxFailures; i++ {
		if regs := b.Registrations(); len(regs) != 1 {
			t.Fatalf("round %d: registration dropped too early", i)
		}
		b.Round(context.Background())
	}
	if regs := b.Registrations(); len(regs) != 0 {
		t.Fatalf("kept after %d failed rounds: %+v", maxFailures, regs)
	}
}

// TestPushesReachEveryPhone: two phones (two devices) hand off the same
// app; one round pushes to both, as the two-phone demo shows.
func TestPushesReachEveryPhone(t *testing.T) {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	srv, err := server.New(server.Config{Listen: "127.0.0.1:0", DataDir: t.TempDir(), Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	b := &Backend{Sender: &sender.Client{}, Log: quiet, PushServers: origins(t, srv.URL()), Secrets: testSecrets}
	hs := httptest.NewServer(b.Handler())
	defer hs.Close()
	b.Base = hs.URL

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	got := make(chan string, 16)
	for i := range 2 {
		dev, err := device.New(device.Config{Server: srv.URL(), Logger: quiet, Handlers: device.Handlers{
			Tile: func(m device.Meta, _ *payload.Tile, _ []string) { got <- fmt.Sprint("phone ", i) },
		}})
		if err != nil {
			t.Fatal(err)
		}
		defer dev.Close()
		ch := dev.NewChannel("com.openmpns.news", "main", "")
		if err := ch.Open(ctx); err != nil {
			t.Fatal(err)
		}
		if err := ch.BindToShellTile(ctx); err != nil {
			t.Fatal(err)
		}
		h := &device.Handoff{URL: hs.URL + "/handoff/news"}
		if status, err := h.Send(ctx, record(dev.ID(), "com.openmpns.news", ch.ChannelURI()), nil); err != nil || status != 201 {
			t.Fatalf("handoff %d: %d %v", i, status, err)
		}
	}
	if regs := b.Registrations(); len(regs) != 2 {
		t.Fatalf("registrations %+v, want one per phone", regs)
	}
	b.Round(ctx)
	seen := map[string]bool{}
	for len(seen) < 2 {
		select {
		case p := <-got:
			seen[p] = true
		case <-ctx.Done():
			t.Fatalf("tiles reached %v, want both phones", seen)
		}
	}
}

// A phone's device key stays pinned after its registration is forgotten
// (its push service unreachable for maxFailures rounds): a stranger who
// learned the device id (GET /registrations lists it) cannot take its
// place and lock the phone out; the phone hands off again as before.
func TestAForgottenRegistrationKeepsItsDeviceKey(t *testing.T) {
	dead := httptest.NewServer(http.NotFoundHandler())
	deadURL := dead.URL
	dead.Close()
	b := &Backend{Sender: &sender.Client{}, Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		PushServers: origins(t, deadURL), Secrets: testSecrets}
	hs := httptest.NewServer(b.Handler())
	defer hs.Close()
	handoff := func(key string) int {
		body := `{"device_id":"d","app":"com.example.news","uri":"` + deadURL + `/push/x","secret":"example-news-secret-01","device_key":"` + key + `"}`
		return post(t, hs, "application/json", []byte(body))
	}
	if s := handoff("phone"); s != http.StatusCreated {
		t.Fatalf("the phone's handoff: %d", s)
	}
	if s := handoff("thief"); s != http.StatusConflict {
		t.Fatalf("a stranger's handoff while registered: %d, want 409", s)
	}
	for range maxFailures {
		b.Round(context.Background())
	}
	if regs := b.Registrations(); len(regs) != 0 {
		t.Fatalf("still registered: %+v", regs)
	}
	if s := handoff("thief"); s != http.StatusConflict {
		t.Fatalf("a stranger's handoff once forgotten: %d, want 409", s)
	}
	if s := handoff("phone"); s != http.StatusCreated {
		t.Fatalf("the phone's handoff once forgotten: %d, want 201", s)
	}
}

// Pins are bounded: past four times the registrations' cap the oldest
// pins of registrations no longer held are forgotten, and a held one's
// never is.
func TestPinsAreBounded(t *testing.T) {
	b := &Backend{MaxRegistrations: 2}
	b.regs = map[string]*Registration{"held": {}}
	b.pin("held", [32]byte{1}, 2)
	for i := range 20 {
		b.pin(strconv.Itoa(i), [32]byte{2}, 2)
	}
	if len(b.pins) > 8 {
		t.Fatalf("%d pins, want at most 8", len(b.pins))
	}
	if _, ok := b.pins["held"]; !ok {
		t.Fatal("a held registration lost its pin")
	}
	if _, ok := b.pins["19"]; !ok {
		t.Fatal("the newest pin was forgotten")
	}
}
