package device_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/openmpns/openmpns/device"
	"github.com/openmpns/openmpns/shared/wire"
)

// TestServerRefusingAChannelOrBindingKeepsTheDeviceOnline: a server that
// answers bad_frame to re-opening one saved channel, or to restoring one
// saved binding (a server with stricter rules than the device's, or state
// saved under looser ones), refuses it at every connect. That is the
// channel's problem, not the device's: the channel is dropped, or keeps
// the binding the server has, ErrorOccurred tells its app, and the device
// comes online with its other apps. A bind the server answers bad_frame
// is not kept in the record either. The server is scripted, because the
// real one refuses nothing the device now saves.
func TestServerRefusingAChannelOrBindingKeepsTheDeviceOnline(t *testing.T) {
	const (
		keep    = "com.example.keep"
		badOpen = "com.example.badopen"
		badTile = "com.example.badtile"
		refused = "refused.example.com" // a sound domain this server refuses
	)
	srv := device.ServeWebSocket(t, func(ws *websocket.Conn) {
		toast := map[string]bool{}
		for {
			f, ok := device.ReadFrame(t, ws)
			if !ok {
				return
			}
			out := device.SetupAnswer(f, 30*time.Second)
			switch {
			case f.Type == wire.TypeOpen && f.App == badOpen,
				f.Type == wire.TypeBind && f.Target == wire.BindTile && (f.App == badTile || strings.Contains(strings.Join(f.Domains, " "), refused)):
				out = &wire.Frame{Type: wire.TypeError, Re: f.ID, Code: wire.CodeBadFrame, Message: "wire: " + f.Type + " frame: refused here"}
			case f.Type == wire.TypeOpen:
				out.Toast = toast[f.App]
			case f.Type == wire.TypeBind || f.Type == wire.TypeUnbind:
				if f.Target == wire.BindToast {
					toast[f.App] = f.Type == wire.TypeBind
				}
				out = &wire.Frame{Type: wire.TypeOpened, Re: f.ID, App: f.App, Channel: "main", URI: "http://x/push/tok", Toast: toast[f.App]}
			}
			if out != nil && device.WriteFrame(ws, out) != nil {
				return
			}
		}
	})
	dir := t.TempDir()
	state := `{"channels":[
		{"app":"` + keep + `","name":"main","toast":true},
		{"app":"` + badOpen + `","name":"main","toast":true},
		{"app":"` + badTile + `","name":"main","tile":true,"domains":["img.example.com"]}]}`
	if err := os.WriteFile(filepath.Join(dir, "device.json"), []byte(state), 0o600); err != nil {
		t.Fatal(err)
	}
	connected := make(chan struct{}, 1)
	errs := make(chan *device.ChannelError, 10)
	d, err := device.New(device.Config{Server: srv.URL, StateDir: dir, Logger: quietLogger(), MinBackoff: 5 * time.Millisecond, MaxBackoff: 50 * time.Millisecond,
		Handlers: device.Handlers{
			ConnectionStatusChanged: func(s device.ConnectionStatus) {
				if s == device.Connected {
					select {
					case connected <- struct{}{}:
					default:
					}
				}
			},
			Error: func(e *device.ChannelError) { errs <- e }}})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	deadline := time.NewTimer(20 * time.Second)
	defer deadline.Stop()
	select {
	case <-connected:
	case <-deadline.C:
		t.Fatal("the device never connects: one channel's refused open or binding keeps every app offline")
	}
	for range 2 {
		select {
		case e := <-errs:
			if e.Type != device.ChannelOpenFailed || (e.App != badOpen && e.App != badTile) {
				t.Errorf("error %+v", e)
			}
		case <-deadline.C:
			t.Fatal("no ErrorOccurred for a refused channel or binding")
		}
	}
	if d.Find(badOpen, "main") != nil {
		t.Error("the channel the server refuses to open is still there")
	}
	if ch := d.Find(badTile, "main"); ch == nil || ch.IsShellTileBound() || len(ch.Domains()) != 0 {
		t.Error("the channel whose tile binding the server refuses: want it open, without the binding")
	}
	ch := d.Find(keep, "main")
	if ch == nil || !ch.IsShellToastBound() {
		t.Fatal("the sound channel was not restored")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := ch.BindToShellTile(ctx, refused); err == nil {
		t.Error("a bind the server answered bad_frame succeeded")
	}
	if ch.IsShellTileBound() || len(ch.Domains()) != 0 {
		t.Errorf("a bind the server refused is in the record: tile bound %v to %q", ch.IsShellTileBound(), ch.Domains())
	}
	d.Close()
	b, err := os.ReadFile(filepath.Join(dir, "device.json"))
	if err != nil {
		t.Fatal(err)
	}
	if s := string(b); strings.Contains(s, badOpen) || strings.Contains(s, "img.example.com") || strings.Contains(s, refused) || !strings.Contains(s, keep) {
		t.Errorf("saved state: %s", s)
	}
}
