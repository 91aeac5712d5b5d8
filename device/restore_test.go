package device_test

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/openmpns/openmpns/device"
	"github.com/openmpns/openmpns/shared/wire"
)

// TestChangesWhileConnectingReachTheServer: a bind or a power level set
// while the device is setting up a connection (after welcome, while it
// restores its channels) finds no connection to send it on, and is left
// to the connection being set up. That connection's restore may already
// have read the channel's record: the change must still reach the server
// once the connection is up, not wait for the next reconnect (a fleet
// device whose connection dropped during its registration kept a toast
// binding the server never had, and every toast was answered Suppressed).
// The server holds its answer to the restore's open until the changes are
// made.
func TestChangesWhileConnectingReachTheServer(t *testing.T) {
	const app = "com.example.news"
	opening := make(chan struct{})
	var held atomic.Bool
	release := make(chan struct{})
	var once sync.Once
	free := func() { once.Do(func() { close(release) }) }
	t.Cleanup(free) // before the server's (cleanups run last first): its handler may hold
	got := make(chan *wire.Frame, 16)
	srv := device.ServeWebSocket(t, func(ws *websocket.Conn) {
		toast := false
		for {
			f, ok := device.ReadFrame(t, ws)
			if !ok {
				return
			}
			out := device.SetupAnswer(f, 30*time.Second)
			switch f.Type {
			case wire.TypeOpen:
				if held.CompareAndSwap(false, true) { // the first open only
					close(opening)
					<-release
				}
				out.Toast = toast
			case wire.TypeBind, wire.TypeUnbind:
				if f.Target == wire.BindToast {
					toast = f.Type == wire.TypeBind
				}
				out = &wire.Frame{Type: wire.TypeOpened, Re: f.ID, App: f.App, Channel: "main", URI: "http://x/push/tok", Toast: toast}
				got <- f
			case wire.TypePower:
				got <- f
			}
			if out != nil && device.WriteFrame(ws, out) != nil {
				return
			}
		}
	})
	dir := t.TempDir()
	state := `{"device_id":"d1","device_token":"t1","channels":[{"app":"` + app + `","name":"main"}]}`
	if err := os.WriteFile(filepath.Join(dir, "device.json"), []byte(state), 0o600); err != nil {
		t.Fatal(err)
	}
	connected := make(chan struct{}, 1)
	d, err := device.New(device.Config{Server: srv.URL, StateDir: dir, Logger: quietLogger(), MinBackoff: 5 * time.Millisecond, MaxBackoff: 50 * time.Millisecond,
		Handlers: device.Handlers{ConnectionStatusChanged: func(s device.ConnectionStatus) {
			if s == device.Connected {
				select {
				case connected <- struct{}{}:
				default:
				}
			}
		}}})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	deadline := time.NewTimer(20 * time.Second) // a failure, never a pause
	defer deadline.Stop()
	select {
	case <-opening:
	case <-deadline.C:
		t.Fatal("the device never restored its saved channel")
	}
	// The restore has read the channel's record and waits for the open.
	ch := d.Find(app, "main")
	if ch == nil {
		t.Fatal("the saved channel is not open on the device")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := ch.BindToShellToast(ctx); err != nil {
		t.Fatalf("bind while connecting: %v", err)
	}
	if err := d.SetPowerLevel(ctx, device.PowerLow); err != nil {
		t.Fatalf("power level while connecting: %v", err)
	}
	free()
	bound, low := false, false
	for !bound || !low {
		select {
		case f := <-got:
			switch {
			case f.Type == wire.TypeBind && f.Target == wire.BindToast && f.App == app:
				bound = true
			case f.Type == wire.TypePower && f.Power == string(device.PowerLow):
				low = true
			case f.Type == wire.TypePower:
			default:
				t.Fatalf("unexpected %s %s", f.Type, f.Target)
			}
		case <-deadline.C:
			t.Fatalf("connected, the server has toast bound %v, power low %v: a change made while the device connected was lost", bound, low)
		}
	}
	select {
	case <-connected:
	case <-deadline.C:
		t.Fatal("the device never announced the connection")
	}
	if !ch.IsShellToastBound() || d.PowerLevel() != device.PowerLow {
		t.Fatalf("on the device: toast bound %v, power %s", ch.IsShellToastBound(), d.PowerLevel())
	}
}
