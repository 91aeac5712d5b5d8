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
	c := &conn{ws: ws}
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
