package device_test

import (
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/openmpns/openmpns/device"
	"github.com/openmpns/openmpns/shared/wire"
)

// TestSilentServerIsLeftAfterTwoAndAHalfHeartbeats: while notifications
// flow, the device keeps its connection for longer than its read deadline
// (each message pushes it out); once the server falls silent without
// closing, the device gives up on the connection no sooner than 2.5
// heartbeats after the last message, and not much later.
func TestSilentServerIsLeftAfterTwoAndAHalfHeartbeats(t *testing.T) {
	const hb = 200 * time.Millisecond
	lastSent := make(chan time.Time, 1)
	var notified atomic.Bool // the first connection is
	srv := device.ServeWebSocket(t, func(ws *websocket.Conn) {
		send := func(f *wire.Frame) bool { return device.WriteFrame(ws, f) == nil }
		for {
			f, ok := device.ReadFrame(t, ws)
			if !ok {
				return
			}
			if out := device.SetupAnswer(f, hb); out != nil {
				send(out)
			}
			if f.Type == wire.TypeOpen {
				if notified.Swap(true) {
					continue // a reconnect: nothing more to say
				}
				// Notifications, each once the last is acknowledged, for
				// longer than the read deadline; then silence.
				start := time.Now()
				var sent time.Time // when the last notification was about to be sent
				for n := 1; time.Since(start) < 3*hb; n++ {
					sent = time.Now()
					if !send(&wire.Frame{Type: wire.TypeNotify, NID: strconv.Itoa(n), App: f.App, Channel: "tok", Kind: "raw", Class: 3, Payload: []byte("x")}) {
						t.Errorf("the connection failed while notifications flowed, %v after the first", time.Since(start))
						return
					}
					if _, _, err := ws.ReadMessage(); err != nil { // the ack
						t.Errorf("the connection failed while notifications flowed, %v after the first: %v", time.Since(start), err)
						return
					}
				}
				lastSent <- sent
			}
		}
	})
	disconnected := make(chan time.Time, 4)
	d, err := device.New(device.Config{Server: srv.URL, Logger: quietLogger(), MinBackoff: time.Millisecond, MaxBackoff: time.Millisecond,
		PromptHandlers: true,
		Handlers: device.Handlers{
			Raw: func(device.Meta, []byte) {},
			ConnectionStatusChanged: func(s device.ConnectionStatus) {
				if s == device.Disconnected {
					disconnected <- time.Now()
				}
			},
		}})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	d.SetAppState("com.example.app", device.AppState{Running: true})
	go d.NewChannel("com.example.app", "main", "").Open(t.Context())
	var last, gone time.Time
	timeout := time.After(30 * time.Second)
	for gone.IsZero() {
		select {
		case last = <-lastSent:
		case at := <-disconnected:
			if last.IsZero() {
				t.Fatalf("the device left the connection while notifications flowed")
			}
			gone = at
		case <-timeout:
			t.Fatal("the device did not leave a silent connection")
		}
	}
	if waited := gone.Sub(last); waited < hb*5/2 || waited > hb*4 {
		t.Errorf("the device left the silent connection %v after the last message; want 2.5 heartbeats (%v) and not much more", waited, hb*5/2)
	}
}
