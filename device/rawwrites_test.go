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

// The device writes its messages (acks here) straight to the connection
// (conn.writeMessage, under wmu) while its reader answers the server's
// pings with gorilla's WriteControl (not under wmu): two Writes on the
// net.Conn at once, which a net.Conn allows. Every ack must arrive, in
// whole WebSocket frames, while the server pings all along.
func TestAcksAndPongsWrittenAtOnceStayWhole(t *testing.T) {
	_, ws := scriptedDevice(t, device.Config{BufferSize: 512,
		Handlers: device.Handlers{Raw: func(device.Meta, []byte) {}}})
	var pongs atomic.Int64
	ws.SetPongHandler(func(string) error { pongs.Add(1); return nil })
	const n = 3000
	stop := make(chan struct{})
	defer close(stop)
	go func() { // pings, as fast as they go
		for {
			select {
			case <-stop:
				return
			default:
			}
			if ws.WriteControl(websocket.PingMessage, []byte("ping"), time.Now().Add(time.Second)) != nil {
				return
			}
		}
	}()
	go func() {
		payload := make([]byte, 16)
		for i := range n {
			m, _ := wire.Encode(&wire.Frame{Type: wire.TypeNotify, NID: strconv.Itoa(i), App: "com.example.bench", Channel: "tok", Kind: "raw", Class: 3,
				MessageID: "9f3a1c2e-0000-4000-8000-000000000001", Payload: payload, AcceptedAt: time.Now().UnixNano()})
			if ws.WriteMessage(websocket.TextMessage, m) != nil {
				return
			}
		}
	}()
	acked := map[string]bool{}
	ws.SetReadDeadline(time.Now().Add(20 * time.Second))
	for len(acked) < n {
		_, m, err := ws.ReadMessage()
		if err != nil {
			t.Fatalf("after %d of %d acks and %d pongs: %v", len(acked), n, pongs.Load(), err)
		}
		f, err := wire.Decode(m)
		if err != nil || f.Type != wire.TypeAck {
			t.Fatalf("after %d acks: the device wrote %q (%v)", len(acked), m, err)
		}
		for _, id := range f.NIDs {
			acked[id] = true
		}
	}
	t.Logf("%d acks, %d pongs", len(acked), pongs.Load())
}
