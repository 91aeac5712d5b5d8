//go:build unix

package test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/openmpns/openmpns/device"
	"github.com/openmpns/openmpns/server"
	"github.com/openmpns/openmpns/shared/wire"
)

// logWatch is a slog handler that closes a channel when a record with the
// given message is logged: a test waits for a server event without polling.
type logWatch struct {
	msg  string
	once *sync.Once
	hit  chan struct{}
}

func (h logWatch) Enabled(context.Context, slog.Level) bool { return true }
func (h logWatch) Handle(_ context.Context, r slog.Record) error {
	if r.Message == h.msg {
		h.once.Do(func() { close(h.hit) })
	}
	return nil
}
func (h logWatch) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h logWatch) WithGroup(string) slog.Handler      { return h }

// TestFaultSlowConsumer: a device that stops reading is cut off after the
// server's write timeout; meanwhile pushes to it are still answered at
// once, another device keeps getting its notifications, and everything
// queued for the slow device arrives, exactly once, when it reconnects.
func TestFaultSlowConsumer(t *testing.T) {
	cut := logWatch{msg: "device write failed", once: &sync.Once{}, hit: make(chan struct{})}
	srv := startServer(t, server.Config{
		WriteTimeout: 2 * time.Second, InFlight: 1500, QueueLimit: 2000, DailyQuota: -1,
		Logger: slog.New(cut),
	})
	slow := newPhone(t, srv.URL(), "")
	const app = "com.example.slow"
	slowURI := slow.openChannel(t, app, "", false, false).ChannelURI()
	slow.Close()
	fast := newPhone(t, srv.URL(), "")
	fastURI := fast.openChannel(t, "com.example.fast", "", true, false).ChannelURI()

	// The slow device comes back as a client that says hello and then never
	// reads, over a socket with a small receive buffer.
	var st struct {
		DeviceID    string `json:"device_id"`
		DeviceToken string `json:"device_token"`
	}
	b, err := os.ReadFile(filepath.Join(slow.dir, "device.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatal(err)
	}
	nd := &net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		c.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
		return serr
	}}
	dialer := &websocket.Dialer{NetDialContext: nd.DialContext, HandshakeTimeout: waitLimit}
	ws, _, err := dialer.Dial(strings.Replace(srv.URL(), "http://", "ws://", 1)+"/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	hello, _ := wire.Encode(&wire.Frame{Type: wire.TypeHello, Version: wire.ProtocolVersion, DeviceID: st.DeviceID, DeviceToken: st.DeviceToken})
	if err := ws.WriteMessage(websocket.TextMessage, hello); err != nil {
		t.Fatal(err)
	}
	if _, m, err := ws.ReadMessage(); err != nil || !strings.Contains(string(m), `"welcome"`) {
		t.Fatalf("welcome: %q %v", m, err)
	}
	// From here on the client reads nothing.

	// ~5 MB of notification frames: more than the socket buffers hold.
	const n = 1200
	body := []byte(strings.Repeat("x", 3000))
	var wg sync.WaitGroup
	sem := make(chan struct{}, 16)
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if a := post(t, "POST", slowURI, "", "", fmt.Sprintf("slow-%d", i), body); a.code != 200 || a.notif != "Received" {
				t.Errorf("push %d to the slow device: %+v", i, a)
			}
		}()
	}
	wg.Wait()
	// Another device is not held up.
	for i := range 20 {
		if a := post(t, "POST", fastURI, toastT, "", "", toastXML(fmt.Sprint("fast ", i), "", "")); !a.is(200, "Received", "Active", "Connected") {
			t.Fatalf("push to the fast device: %+v", a)
		}
	}
	fast.rec.waitN(t, 20, "shelltoast")
	select {
	case <-cut.hit:
		t.Log("the slow device was cut off before the fast device had its 20 notifications")
	default:
		t.Log("the fast device had its 20 notifications while the slow device was still stuck")
	}
	// The slow device is cut off after the write timeout.
	select {
	case <-cut.hit:
	case <-time.After(waitLimit):
		t.Fatal("the slow device was never cut off")
	}
	ws.Close()
	// Its notifications stayed queued: a reading device gets them all, once.
	back := newPhone(t, srv.URL(), slow.dir)
	back.SetAppState(app, device.AppState{Running: true})
	got := back.rec.waitN(t, n, "raw", "rawdropped")
	seen := map[string]bool{}
	for _, e := range got {
		if seen[e.meta.MessageID] {
			t.Fatalf("%s delivered twice", e.meta.MessageID)
		}
		seen[e.meta.MessageID] = true
	}
	if len(seen) != n {
		t.Fatalf("%d distinct notifications after reconnecting, want %d", len(seen), n)
	}
}
