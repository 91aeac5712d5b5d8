package device

import (
	"bytes"
	"strings"
	"testing"

	"github.com/gorilla/websocket"

	"github.com/openmpns/openmpns/shared/wire"
)

// TestReadFrameReusesNoFrame: readFrame decodes messages of every size
// (smaller than its pooled buffers, larger, larger than it keeps) into
// frames that later reads, which reuse the buffers, leave as they were; a
// message that is not a frame is a decoding error, and the end of the
// connection a read error.
func TestReadFrameReusesNoFrame(t *testing.T) {
	sizes := []int{1, 300, 600, 3000, 9000, 2}
	srv := ServeWebSocket(t, func(ws *websocket.Conn) {
		for i, n := range sizes {
			b, _ := wire.Encode(&wire.Frame{Type: wire.TypeNotify, NID: strings.Repeat(string(rune('a'+i)), 8), App: "com.example.app",
				Channel: "tok", Kind: "raw", Class: 3, Payload: bytes.Repeat([]byte{byte(i)}, n)})
			ws.WriteMessage(websocket.TextMessage, b)
		}
		ws.WriteMessage(websocket.TextMessage, []byte(`{"type":"notify","nid":`))
		ws.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, "bye"))
		ws.ReadMessage() // until the device hangs up
	})
	ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	ws.SetReadLimit(wire.MaxFrameBytes)
	c := &conn{ws: ws}
	var frames []*wire.Frame
	for range sizes {
		f, err, bad := c.readFrame()
		if err != nil || bad != nil {
			t.Fatalf("frame %d: read error %v, decoding error %v", len(frames), err, bad)
		}
		frames = append(frames, f)
	}
	for i, f := range frames {
		if want := strings.Repeat(string(rune('a'+i)), 8); f.NID != want || !bytes.Equal(f.Payload, bytes.Repeat([]byte{byte(i)}, sizes[i])) {
			t.Errorf("frame %d changed after later reads: nid %q (want %q), payload of %d bytes", i, f.NID, want, len(f.Payload))
		}
	}
	if f, err, bad := c.readFrame(); bad == nil || err != nil || f != nil {
		t.Errorf("a broken message: frame %v, read error %v, decoding error %v; want a decoding error", f, err, bad)
	}
	if f, err, bad := c.readFrame(); closeCode(err) != websocket.CloseNormalClosure || bad != nil || f != nil {
		t.Errorf("the close: frame %v, read error %v, decoding error %v; want the close frame's error", f, err, bad)
	}
}
