package device_test

import (
	"bytes"
	"strconv"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/openmpns/openmpns/device"
	"github.com/openmpns/openmpns/shared/wire"
)

// TestNotificationsHandedOnKeepTheirFrames: notifications sent back to
// back, which the reader decodes into one frame of its own while the event
// goroutine handles those before them, reach the handlers each with its
// own id, payload and message id, in order, and are each acknowledged.
func TestNotificationsHandedOnKeepTheirFrames(t *testing.T) {
	for _, prompt := range []bool{false, true} {
		t.Run("PromptHandlers="+strconv.FormatBool(prompt), func(t *testing.T) {
			const n = 300
			got := make(chan device.Meta, n)
			payloads := make(chan []byte, n)
			_, ws := scriptedDevice(t, device.Config{PromptHandlers: prompt, BufferSize: 512,
				Handlers: device.Handlers{Raw: func(m device.Meta, p []byte) { got <- m; payloads <- p }}})
			acked := make(chan error, 1)
			go func() {
				for i := 0; i < n; {
					_, m, err := ws.ReadMessage()
					if err != nil {
						acked <- err
						return
					}
					f, err := wire.Decode(m)
					if err != nil || f.Type != wire.TypeAck {
						acked <- err
						return
					}
					i += len(f.NIDs)
				}
				acked <- nil
			}()
			for i := range n {
				nid := strconv.Itoa(i)
				b, _ := wire.Encode(&wire.Frame{Type: wire.TypeNotify, NID: nid, App: "com.example.bench", Channel: "tok", Kind: "raw", Class: 3,
					MessageID: "m" + nid, Payload: []byte("payload " + nid), AcceptedAt: int64(i + 1)})
				if err := ws.WriteMessage(websocket.TextMessage, b); err != nil {
					t.Fatal(err)
				}
			}
			timeout := time.After(20 * time.Second)
			for i := range n {
				select {
				case m := <-got:
					p := <-payloads
					nid := strconv.Itoa(i)
					if m.ID != nid || m.MessageID != "m"+nid || m.AcceptedAt.UnixNano() != int64(i+1) || !bytes.Equal(p, []byte("payload "+nid)) {
						t.Fatalf("notification %d: got id %q, message id %q, accepted at %d, payload %q", i, m.ID, m.MessageID, m.AcceptedAt.UnixNano(), p)
					}
				case <-timeout:
					t.Fatalf("%d of %d notifications handled", i, n)
				}
			}
			select {
			case err := <-acked:
				if err != nil {
					t.Fatalf("reading the acks: %v", err)
				}
			case <-timeout:
				t.Fatal("not every notification was acknowledged")
			}
		})
	}
}
