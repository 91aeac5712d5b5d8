package test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/openmpns/openmpns/device"
	"github.com/openmpns/openmpns/internal/servertest"
	"github.com/openmpns/openmpns/server"
	"github.com/openmpns/openmpns/shared/payload"
)

// waitLimit bounds every wait for an event; tests never sleep.
const waitLimit = servertest.WaitLimit

func quietLogger() *slog.Logger { return servertest.QuietLogger() }

// startServer runs a real server on a loopback port with a data directory
// (servertest.Start).
func startServer(tb testing.TB, cfg server.Config) *server.Server {
	tb.Helper()
	return servertest.Start(tb, cfg)
}

// event is anything a device reported.
type event struct {
	kind  string // uri, status, error, shelltoast, apptoast, tile, raw, rawdropped, duplicate
	meta  device.Meta
	toast *payload.Toast
	tile  *payload.Tile
	raw   []byte
	text  string
}

// recorder collects a device's events and lets a test wait for them.
type recorder struct {
	mu      sync.Mutex
	events  []event
	changed chan struct{}
}

func newRecorder() *recorder { return &recorder{changed: make(chan struct{})} }

func (r *recorder) add(e event) {
	r.mu.Lock()
	r.events = append(r.events, e)
	close(r.changed)
	r.changed = make(chan struct{})
	r.mu.Unlock()
}

func (r *recorder) handlers() device.Handlers {
	return device.Handlers{
		ChannelURIUpdated:       func(app, ch, uri string) { r.add(event{kind: "uri", text: uri}) },
		ConnectionStatusChanged: func(s device.ConnectionStatus) { r.add(event{kind: "status", text: string(s)}) },
		Error:                   func(e *device.ChannelError) { r.add(event{kind: "error", text: string(e.Type) + ": " + e.Message}) },
		ShellToast:              func(m device.Meta, t *payload.Toast) { r.add(event{kind: "shelltoast", meta: m, toast: t}) },
		AppToast:                func(m device.Meta, t *payload.Toast) { r.add(event{kind: "apptoast", meta: m, toast: t}) },
		Tile:                    func(m device.Meta, t *payload.Tile, _ []string) { r.add(event{kind: "tile", meta: m, tile: t}) },
		Raw:                     func(m device.Meta, b []byte) { r.add(event{kind: "raw", meta: m, raw: b}) },
		RawDropped:              func(m device.Meta) { r.add(event{kind: "rawdropped", meta: m}) },
		Duplicate:               func(m device.Meta) { r.add(event{kind: "duplicate", meta: m}) },
	}
}

// of returns the events of the given kinds.
func (r *recorder) of(kinds ...string) []event {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []event
	for _, e := range r.events {
		for _, k := range kinds {
			if e.kind == k {
				out = append(out, e)
			}
		}
	}
	return out
}

// waitN waits until at least n events of the kinds have arrived and returns them.
func (r *recorder) waitN(t *testing.T, n int, kinds ...string) []event {
	t.Helper()
	deadline := time.NewTimer(waitLimit)
	defer deadline.Stop()
	for {
		r.mu.Lock()
		ch := r.changed
		r.mu.Unlock()
		if got := r.of(kinds...); len(got) >= n {
			return got
		}
		select {
		case <-ch:
		case <-deadline.C:
			t.Fatalf("waited %v for %d %v events; have %d: %+v", waitLimit, n, kinds, len(r.of(kinds...)), r.of(kinds...))
		}
	}
}

// waitStatus waits until the latest status event is s.
func (r *recorder) waitStatus(t *testing.T, s device.ConnectionStatus) {
	t.Helper()
	deadline := time.NewTimer(waitLimit)
	defer deadline.Stop()
	for {
		r.mu.Lock()
		ch := r.changed
		r.mu.Unlock()
		if st := r.of("status"); len(st) > 0 && st[len(st)-1].text == string(s) {
			return
		}
		select {
		case <-ch:
		case <-deadline.C:
			t.Fatalf("device never became %s", s)
		}
	}
}

// phone is a device runtime with a recorder.
type phone struct {
	*device.Device
	rec *recorder
	dir string
}

// newPhone starts a phone on serverURL with its state in stateDir (a new
// directory when empty). The apps named in running are running before the
// phone first connects:
// a device starts connecting in device.New, and a raw notification queued
// for an app not yet running when it arrives is dropped.
func newPhone(t *testing.T, serverURL, stateDir string, running ...string) *phone {
	t.Helper()
	if stateDir == "" {
		stateDir = t.TempDir()
	}
	rec := newRecorder()
	cfg := device.Config{Server: serverURL, StateDir: stateDir, Handlers: rec.handlers(),
		MinBackoff: 5 * time.Millisecond, MaxBackoff: 100 * time.Millisecond, Logger: quietLogger()}
	var ready chan struct{}
	if len(running) > 0 {
		ready = make(chan struct{})
		cfg.NetDial = func(ctx context.Context, network, addr string) (net.Conn, error) {
			select {
			case <-ready:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		}
	}
	d, err := device.New(cfg)
	if err != nil {
		t.Fatalf("device.New: %v", err)
	}
	t.Cleanup(func() { d.Close() })
	for _, app := range running {
		d.SetAppState(app, device.AppState{Running: true})
	}
	if ready != nil {
		close(ready)
	}
	return &phone{Device: d, rec: rec, dir: stateDir}
}

// openChannel opens app's channel and binds it as asked.
func (p *phone) openChannel(t *testing.T, app, service string, toast, tile bool) *device.Channel {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	ch := p.NewChannel(app, "main", service)
	if err := ch.Open(ctx); err != nil {
		t.Fatalf("open channel of %s: %v", app, err)
	}
	if toast {
		if err := ch.BindToShellToast(ctx); err != nil {
			t.Fatalf("bind toast: %v", err)
		}
	}
	if tile {
		if err := ch.BindToShellTile(ctx, "images.example.com"); err != nil {
			t.Fatalf("bind tile: %v", err)
		}
	}
	return ch
}

// answer is a push response's status line and MPNS headers.
type answer struct {
	code                    int
	notif, sub, conn, msgID string
	reason                  string
	challenge               string // WWW-Authenticate
}

// post sends a notification as a cloud service would.
func post(t *testing.T, method, uri, target, class, msgID string, body []byte, extra ...string) answer {
	t.Helper()
	req, err := http.NewRequest(method, uri, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "text/xml")
	if target != "" {
		req.Header.Set("X-WindowsPhone-Target", target)
	}
	if class != "" {
		req.Header.Set("X-NotificationClass", class)
	}
	if msgID != "" {
		req.Header.Set("X-MessageID", msgID)
	}
	for i := 0; i+1 < len(extra); i += 2 {
		req.Header.Set(extra[i], extra[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, uri, err)
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	return answer{
		code: resp.StatusCode, notif: resp.Header.Get("X-NotificationStatus"), sub: resp.Header.Get("X-SubscriptionStatus"),
		conn: resp.Header.Get("X-DeviceConnectionStatus"), msgID: resp.Header.Get("X-MessageID"), reason: resp.Header.Get("X-OpenMPNS-Error"),
		challenge: resp.Header.Get("WWW-Authenticate"),
	}
}

func (a answer) is(code int, notif, sub, conn string) bool {
	return a.code == code && a.notif == notif && a.sub == sub && a.conn == conn
}

func toastXML(text1, text2, param string) []byte {
	return (&payload.Toast{Text1: text1, Text2: text2, Param: param}).Encode()
}
