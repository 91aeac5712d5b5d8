package device

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/openmpns/openmpns/shared/wire"
)

// ServeWebSocket starts a test server that upgrades each request to a
// websocket connection and hands it to handle, which scripts the server's
// side; the connection is closed when handle returns, and the server when
// the test ends (tb's cleanup). It is exported, in a test file, for the
// tests of package device_test as well.
func ServeWebSocket(tb testing.TB, handle func(ws *websocket.Conn)) *httptest.Server {
	up := websocket.Upgrader{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer ws.Close()
		handle(ws)
	}))
	tb.Cleanup(srv.Close)
	return srv
}

// ReadFrame reads the device's next frame on a scripted server's side; a
// message that is not a frame is reported on tb. false: the connection
// ended, or the frame was bad.
func ReadFrame(tb testing.TB, ws *websocket.Conn) (*wire.Frame, bool) {
	_, m, err := ws.ReadMessage()
	if err != nil {
		return nil, false
	}
	f, err := wire.Decode(m)
	if err != nil {
		tb.Errorf("device sent a bad frame: %v", err)
		return nil, false
	}
	return f, true
}

// WriteFrame sends f to the device, one text message.
func WriteFrame(ws *websocket.Conn, f *wire.Frame) error {
	m, _ := wire.Encode(f)
	return ws.WriteMessage(websocket.TextMessage, m)
}

// SetupAnswer is what a scripted server answers to a device's setup
// frame: a welcome as device d1 (with heartbeat) to hello, ok to power,
// opened with Channel URI http://x/push/tok to open; nil to anything else.
func SetupAnswer(f *wire.Frame, heartbeat time.Duration) *wire.Frame {
	switch f.Type {
	case wire.TypeHello:
		return &wire.Frame{Type: wire.TypeWelcome, Version: wire.ProtocolVersion, DeviceID: "d1", DeviceToken: "t1", Heartbeat: heartbeat.Milliseconds()}
	case wire.TypePower:
		return &wire.Frame{Type: wire.TypeOK, Re: f.ID}
	case wire.TypeOpen:
		return &wire.Frame{Type: wire.TypeOpened, Re: f.ID, App: f.App, Channel: f.Channel, URI: "http://x/push/tok"}
	}
	return nil
}

// ObjectsOf returns how many objects the device keeps for app's channel:
// live ones, and collected ones not taken out yet (0: no channel).
func (d *Device) ObjectsOf(app string) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	if st := d.channels[app]; st != nil {
		return len(st.objs)
	}
	return 0
}
