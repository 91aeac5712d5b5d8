package device

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/gorilla/websocket"

	"github.com/openmpns/openmpns/shared/wire"
)

// TestWriteFramesAcks: writeFrames sends the frames, then the acks in
// frames of at most wire.MaxAckIDs, ids Encode must escape included, and
// each message as one whole frame the server decodes.
func TestWriteFramesAcks(t *testing.T) {
	got := make(chan []*wire.Frame, 1)
	srv := ServeWebSocket(t, func(ws *websocket.Conn) {
		var frames []*wire.Frame
		for len(frames) < 3 {
			_, b, err := ws.ReadMessage()
			if err != nil {
				break
			}
			f, err := wire.Decode(b)
			if err != nil {
				t.Errorf("the device wrote %q: %v", b, err)
				break
			}
			frames = append(frames, f)
		}
		got <- frames
	})
	ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	c := &conn{ws: ws, wmu: make(chan struct{}, 1)}
	var ids []string
	for i := range wire.MaxAckIDs + 10 {
		ids = append(ids, fmt.Sprint("n", i))
	}
	ids[3] = "caf\u00e9 \"x\"" // not printable ASCII: encoding/json's
	want := slices.Clone(ids)
	if err := c.writeFrames([]*wire.Frame{{Type: wire.TypePower, ID: 7, Power: wire.PowerLow}}, ids); err != nil {
		t.Fatal(err)
	}
	frames := <-got
	if len(frames) != 3 || frames[0].Type != wire.TypePower || frames[0].ID != 7 ||
		frames[1].Type != wire.TypeAck || frames[2].Type != wire.TypeAck {
		t.Fatalf("the server read %d frames, want power, ack, ack", len(frames))
	}
	if len(frames[1].NIDs) != wire.MaxAckIDs || !slices.Equal(append(frames[1].NIDs, frames[2].NIDs...), want) {
		t.Fatalf("acked %d + %d ids, want %d + 10, in order", len(frames[1].NIDs), len(frames[2].NIDs), wire.MaxAckIDs)
	}
}

// TestWriteMessageFrames: writeMessage frames messages of every length
// (the three sizes of a length field, every tail of the mask) as a
// client must, masked, so that gorilla's server reads them back; after a
// close frame, it writes nothing more.
func TestWriteMessageFrames(t *testing.T) {
	sizes := []int{0, 1, 2, 3, 5, 7, 8, 9, 15, 16, 17, 125, 126, 127, 1000, 65535, 65536, 70001}
	got := make(chan []byte, len(sizes)+1)
	srv := ServeWebSocket(t, func(ws *websocket.Conn) {
		ws.SetReadLimit(1 << 20)
		for {
			typ, b, err := ws.ReadMessage()
			if err != nil {
				close(got)
				return
			}
			if typ != websocket.TextMessage {
				t.Errorf("message type %d, want text", typ)
			}
			got <- b
		}
	})
	ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	c := &conn{ws: ws, wmu: make(chan struct{}, 1)}
	msg := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte('a' + i%26)
		}
		return b
	}
	for _, n := range sizes {
		if err := c.writeMessage(append(make([]byte, frameHeadroom), msg(n)...)); err != nil {
			t.Fatalf("%d bytes: %v", n, err)
		}
		if b := <-got; string(b) != string(msg(n)) {
			t.Fatalf("%d bytes: the server read %d bytes: %.40q", n, len(b), b)
		}
	}
	c.sendClose(websocket.FormatCloseMessage(websocket.CloseNormalClosure, "bye"))
	if err := c.writeMessage(append(make([]byte, frameHeadroom), "late"...)); err != websocket.ErrCloseSent {
		t.Errorf("a message after the close frame: %v, want ErrCloseSent", err)
	}
	if b, ok := <-got; ok {
		t.Errorf("the server read %q after the close frame", b)
	}
}
