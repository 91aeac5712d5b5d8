package device_test

import (
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/openmpns/openmpns/device"
	"github.com/openmpns/openmpns/shared/wire"
)

// TestCloseRateLimitedBacksOff: a connection the server closes with 4029
// (too many new devices or channels from this address) is followed by the
// long, equal-jittered backoff of attempt 4 (16 to 32 × MinBackoff),
// not the short one that follows a plain close. The server is scripted:
// it welcomes the device, answers its power report, and closes.
func TestCloseRateLimitedBacksOff(t *testing.T) {
	const min = 10 * time.Millisecond
	for _, c := range []struct {
		name         string
		code         int
		lowest, most time.Duration
	}{
		{"4029", wire.CloseRateLimited, 16 * min, 32 * min},
		{"1000", websocket.CloseNormalClosure, min / 2, 2 * min},
	} {
		t.Run(c.name, func(t *testing.T) {
			srv := device.ServeWebSocket(t, func(ws *websocket.Conn) {
				for {
					_, b, err := ws.ReadMessage()
					if err != nil {
						return
					}
					f, err := wire.Decode(b)
					if err != nil {
						return
					}
					var out *wire.Frame
					switch f.Type {
					case wire.TypeHello:
						out = &wire.Frame{Type: wire.TypeWelcome, Version: wire.ProtocolVersion, DeviceID: "d1", DeviceToken: "t1", Heartbeat: 30000}
					case wire.TypePower:
						out = &wire.Frame{Type: wire.TypeOK, Re: f.ID}
					}
					if out != nil {
						b, _ := wire.Encode(out)
						ws.WriteMessage(websocket.TextMessage, b)
					}
					if f.Type == wire.TypePower {
						ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(c.code, "bye"), time.Now().Add(time.Second))
					}
				}
			})
			clk := &waitsClock{waits: make(chan time.Duration, 4)}
			d, err := device.New(device.Config{Server: srv.URL, StateDir: t.TempDir(), Logger: quietLogger(), Clock: clk,
				MinBackoff: min, MaxBackoff: time.Hour})
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			select {
			case w := <-clk.waits:
				if w < c.lowest || w > c.most {
					t.Fatalf("after close %d the device waits %v, want between %v and %v", c.code, w, c.lowest, c.most)
				}
			case <-time.After(20 * time.Second):
				t.Fatal("the device never waited to reconnect")
			}
		})
	}
}
