package device_test

import (
	"context"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/openmpns/openmpns/device"
	"github.com/openmpns/openmpns/shared/wire"
)

// smallReadBuffer dials with a socket receive buffer of 64 KB, so that
// what the device leaves unread stays in the server's writes, not in the
// kernel's buffers (loopback's grow to megabytes).
func smallReadBuffer(ctx context.Context, network, addr string) (net.Conn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetReadBuffer(64 << 10)
	}
	return c, nil
}

// TestNotificationFloodWaitsInTheSocket: a server that ignores the
// in-flight window and streams notifications while the app's handler is
// busy does not make the device hold them all in memory: once a bounded
// number wait for the handler, the device reads nothing more and the
// server's writes stall. Airplane mode, while the reader waits so and the
// handler is still busy, ends the connection at once (SetOnline returns
// once its reader has ended); Close, once the handler returns, ends every
// goroutine of the device.
func TestNotificationFloodWaitsInTheSocket(t *testing.T) {
	const n = 5000 // 10 MB
	payload := []byte(strings.Repeat("x", 2000))
	stalled := make(chan int, 1) // how many notifications the server wrote before a write stalled
	hungUp := make(chan struct{})
	srv := device.ServeWebSocket(t, func(ws *websocket.Conn) {
		ws.NetConn().(*net.TCPConn).SetWriteBuffer(64 << 10)
		for {
			f, ok := device.ReadFrame(t, ws)
			if !ok {
				return
			}
			if out := device.SetupAnswer(f, 30*time.Second); out != nil {
				device.WriteFrame(ws, out)
			}
			if f.Type != wire.TypeOpen {
				continue
			}
			go func() { // acks, until the device hangs up
				defer close(hungUp)
				for {
					if _, _, err := ws.ReadMessage(); err != nil {
						return
					}
				}
			}()
			i := 0
			for ; i < n; i++ {
				ws.SetWriteDeadline(time.Now().Add(2 * time.Second))
				if device.WriteFrame(ws, &wire.Frame{Type: wire.TypeNotify, NID: "n" + strconv.Itoa(i), App: f.App, Channel: "tok", Kind: "raw", Class: 3, Payload: payload}) != nil {
					break
				}
			}
			stalled <- i
			<-hungUp
			return
		}
	})
	block := make(chan struct{})
	d, err := device.New(device.Config{Server: srv.URL, Logger: quietLogger(), NetDial: smallReadBuffer,
		Handlers: device.Handlers{Raw: func(device.Meta, []byte) { <-block }}})
	if err != nil {
		t.Fatal(err)
	}
	d.SetAppState("com.example.app", device.AppState{Running: true})
	opened := make(chan error, 1)
	go func() { opened <- d.NewChannel("com.example.app", "main", "").Open(t.Context()) }()
	select {
	case i := <-stalled:
		if i == n {
			t.Fatalf("the server wrote all %d notifications (%d MB) while the device's handler was blocked: the device buffers them without bound", n, n*len(payload)*4/3/1e6)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("the server's writes neither ended nor stalled")
	}
	if err := <-opened; err != nil {
		t.Fatal(err)
	}
	offline := make(chan struct{})
	go func() {
		d.SetOnline(false)
		close(offline)
	}()
	within(t, offline, 20*time.Second, "airplane mode while the reader waits for the busy handler")
	within(t, hungUp, 20*time.Second, "hanging up in airplane mode")
	close(block)
	closed := make(chan struct{})
	go func() {
		d.Close()
		close(closed)
	}()
	within(t, closed, 20*time.Second, "Close, once the handler returned")
	buf := make([]byte, 1<<20)
	if stacks := string(buf[:runtime.Stack(buf, true)]); strings.Contains(stacks, "openmpns/device.(*conn)") {
		t.Fatalf("a goroutine of the device's connection outlived Close:\n%s", stacks)
	}
}

// TestNotificationsWithBadIDsAreIgnored: a notification whose id the
// protocol does not allow (empty, or longer than wire.MaxIDStringLen) is
// neither delivered, nor acknowledged (the ack would be a bad frame), nor
// remembered in the state file; ids of that kind a state file already holds
// are forgotten. A valid notification after them is handled as usual.
func TestNotificationsWithBadIDsAreIgnored(t *testing.T) {
	huge := strings.Repeat("n", 15000)
	acks := make(chan []string, 16)
	srv := device.ServeWebSocket(t, func(ws *websocket.Conn) {
		for {
			_, m, err := ws.ReadMessage()
			if err != nil {
				return
			}
			f, err := wire.Decode(m)
			if err != nil {
				acks <- []string{"a bad frame: " + err.Error()} // as the real server, which would close the connection
				return
			}
			if f.Type == wire.TypeAck {
				acks <- f.NIDs
			}
			if out := device.SetupAnswer(f, 30*time.Second); out != nil {
				device.WriteFrame(ws, out)
			}
			if f.Type == wire.TypeOpen {
				notify := func(nid string) {
					device.WriteFrame(ws, &wire.Frame{Type: wire.TypeNotify, NID: nid, App: f.App, Channel: "tok", Kind: "raw", Class: 3, Payload: []byte("x")})
				}
				notify("")
				notify(strings.Repeat("n", wire.MaxIDStringLen+1))
				for i := range 200 {
					notify(strconv.Itoa(i) + huge)
				}
				notify("ok")
			}
		}
	})
	dir := t.TempDir()
	state := `{"device_id":"d1","device_token":"t1","seen":["old",""` + `,"` + huge + `"]}`
	if err := os.WriteFile(filepath.Join(dir, "device.json"), []byte(state), 0o600); err != nil {
		t.Fatal(err)
	}
	got := make(chan string, 256)
	d, err := device.New(device.Config{Server: srv.URL, StateDir: dir, Logger: quietLogger(),
		Handlers: device.Handlers{Raw: func(m device.Meta, _ []byte) { got <- m.ID }}})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	d.SetAppState("com.example.app", device.AppState{Running: true})
	if err := d.NewChannel("com.example.app", "main", "").Open(t.Context()); err != nil {
		t.Fatal(err)
	}
	// Notifications are handled in order: once "ok" is acknowledged, every
	// one before it was read.
	select {
	case nids := <-acks:
		if !slices.Equal(nids, []string{"ok"}) {
			t.Fatalf("the device acknowledged %d ids (%.60q); want only ok", len(nids), nids)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("no ack")
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if id := <-got; id != "ok" || len(got) != 0 {
		t.Fatalf("delivered %.60q and %d more; want only ok", id, len(got))
	}
	b, err := os.ReadFile(filepath.Join(dir, "device.json"))
	if err != nil {
		t.Fatal(err)
	}
	var saved struct{ Seen []string }
	if err := json.Unmarshal(b, &saved); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(saved.Seen, []string{"old", "ok"}) || len(b) > 4<<10 {
		t.Fatalf("state file of %d bytes remembers %d ids (%.60q); want old and ok", len(b), len(saved.Seen), saved.Seen)
	}
}
