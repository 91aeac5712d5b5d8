package server_test

import (
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/openmpns/openmpns/internal/servertest"
	"github.com/openmpns/openmpns/server"
	"github.com/openmpns/openmpns/shared/wire"
)

// closedWith reads until the server closes the connection and returns the close code.
func closedWith(t *testing.T, ws *websocket.Conn) int {
	t.Helper()
	for {
		_, _, err := ws.ReadMessage()
		if err != nil {
			if ce, ok := err.(*websocket.CloseError); ok {
				return ce.Code
			}
			t.Fatalf("connection ended without a close frame: %v", err)
		}
	}
}

func TestGatewayRefusesBadSessions(t *testing.T) {
	srv := servertest.Start(t, server.Config{})
	cases := []struct {
		name     string
		send     []byte
		wantCode string
		close    int
	}{
		{"frame before hello", []byte(`{"type":"open","id":1,"app":"a","channel":"c"}`), wire.CodeHelloRequired, websocket.ClosePolicyViolation},
		{"unknown type", []byte(`{"type":"launch","id":1}`), wire.CodeBadFrame, websocket.ClosePolicyViolation},
		{"not json", []byte(`{{{`), wire.CodeBadFrame, websocket.ClosePolicyViolation},
		{"wrong version", []byte(`{"type":"hello","version":9}`), wire.CodeBadFrame, websocket.ClosePolicyViolation},
		{"someone else's identity", []byte(`{"type":"hello","version":1,"device_id":"abc","device_token":"guess"}`), wire.CodeUnauthorized, wire.CloseUnauthorized},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ws := servertest.DialWS(t, srv)
			ws.WriteMessage(websocket.TextMessage, c.send)
			if f := servertest.ReadFrame(t, ws); f.Type != wire.TypeError || f.Code != c.wantCode {
				t.Fatalf("got %+v, want error %s", f, c.wantCode)
			}
			if code := closedWith(t, ws); code != c.close {
				t.Fatalf("close code %d, want %d", code, c.close)
			}
		})
	}
	t.Run("oversized frame", func(t *testing.T) {
		ws := servertest.DialWS(t, srv)
		ws.WriteMessage(websocket.TextMessage, []byte(`{"type":"hello","version":1,"client":"`+strings.Repeat("x", wire.MaxFrameBytes)+`"}`))
		if code := closedWith(t, ws); code != websocket.CloseMessageTooBig {
			t.Fatalf("close code %d, want %d", code, websocket.CloseMessageTooBig)
		}
	})
}

func TestGatewaySessionFramesAndLimits(t *testing.T) {
	srv := servertest.Start(t, server.Config{MaxChannels: 2})
	ws := servertest.DialWS(t, srv)
	servertest.SendFrame(t, ws, &wire.Frame{Type: wire.TypeHello, Version: wire.ProtocolVersion})
	w := servertest.ReadFrame(t, ws)
	if w.Type != wire.TypeWelcome || w.DeviceID == "" || len(w.DeviceToken) < 40 || w.Heartbeat <= 0 {
		t.Fatalf("welcome %+v", w)
	}
	req := func(f *wire.Frame) *wire.Frame {
		t.Helper()
		servertest.SendFrame(t, ws, f)
		r := servertest.ReadFrame(t, ws)
		if r.Re != f.ID {
			t.Fatalf("answer to %d has re %d", f.ID, r.Re)
		}
		return r
	}
	o := req(&wire.Frame{Type: wire.TypeOpen, ID: 1, App: "a.one", Channel: "main"})
	token := o.URI[strings.LastIndex(o.URI, "/")+1:]
	if o.Type != wire.TypeOpened || len(token) != 27 {
		t.Fatalf("opened %+v", o)
	}
	if again := req(&wire.Frame{Type: wire.TypeOpen, ID: 2, App: "a.one", Channel: "main"}); again.URI != o.URI {
		t.Fatalf("reopen gave %q, want %q", again.URI, o.URI)
	}
	if r := req(&wire.Frame{Type: wire.TypeOpen, ID: 3, App: "a.one", Channel: "other"}); r.Code != wire.CodeChannelExists {
		t.Fatalf("second channel for one app: %+v", r)
	}
	req(&wire.Frame{Type: wire.TypeOpen, ID: 4, App: "a.two", Channel: "main"})
	if r := req(&wire.Frame{Type: wire.TypeOpen, ID: 5, App: "a.three", Channel: "main"}); r.Code != wire.CodeChannelQuota {
		t.Fatalf("channel over the quota: %+v", r)
	}
	if r := req(&wire.Frame{Type: wire.TypeBind, ID: 6, App: "a.one", Target: wire.BindToast}); r.Type != wire.TypeOpened || !r.Toast {
		t.Fatalf("bind: %+v", r)
	}
	if r := req(&wire.Frame{Type: wire.TypeBind, ID: 7, App: "nope", Target: wire.BindTile}); r.Code != wire.CodeNotFound {
		t.Fatalf("bind unknown app: %+v", r)
	}
	// Acks for unknown ids are ignored; the session goes on.
	servertest.SendFrame(t, ws, &wire.Frame{Type: wire.TypeAck, NIDs: []string{"ffff", "zz"}})
	if r := req(&wire.Frame{Type: wire.TypePower, ID: 8, Power: wire.PowerLow}); r.Type != wire.TypeOK {
		t.Fatalf("power: %+v", r)
	}
	// A second device cannot touch the first one's channel: it has none of its own.
	ws2 := servertest.DialWS(t, srv)
	servertest.SendFrame(t, ws2, &wire.Frame{Type: wire.TypeHello, Version: wire.ProtocolVersion})
	servertest.ReadFrame(t, ws2)
	servertest.SendFrame(t, ws2, &wire.Frame{Type: wire.TypeClose, ID: 1, App: "a.one"})
	if r := servertest.ReadFrame(t, ws2); r.Code != wire.CodeNotFound {
		t.Fatalf("other device closed a.one: %+v", r)
	}
	// Shutdown: a goaway frame, then a 1001 close.
	go srv.Close()
	if f := servertest.ReadFrame(t, ws); f.Type != wire.TypeGoAway {
		t.Fatalf("got %+v, want goaway", f)
	}
	if code := closedWith(t, ws); code != websocket.CloseGoingAway {
		t.Fatalf("close code %d, want 1001", code)
	}
}

// TestDeviceCannotResumeAnotherIdentity: device tokens are signed by the
// server and bound to their device; another device's token does not work.
func TestDeviceCannotResumeAnotherIdentity(t *testing.T) {
	srv := servertest.Start(t, server.Config{})
	hello := func(id, tok string) *wire.Frame {
		ws := servertest.DialWS(t, srv)
		servertest.SendFrame(t, ws, &wire.Frame{Type: wire.TypeHello, Version: wire.ProtocolVersion, DeviceID: id, DeviceToken: tok})
		return servertest.ReadFrame(t, ws)
	}
	a, b := hello("", ""), hello("", "")
	if strings.Count(a.DeviceToken, ".") != 2 {
		t.Fatalf("device token %q is not a signed JWT", a.DeviceToken)
	}
	if w := hello(a.DeviceID, a.DeviceToken); w.Type != wire.TypeWelcome || w.DeviceID != a.DeviceID {
		t.Fatalf("own identity refused: %+v", w)
	}
	for name, c := range map[string][2]string{
		"B's token for A": {a.DeviceID, b.DeviceToken},
		"A's token for B": {b.DeviceID, a.DeviceToken},
		"unknown device":  {"0123456789abcdef0123456789abcdef", a.DeviceToken},
		"altered token":   {a.DeviceID, a.DeviceToken + "x"},
	} {
		if f := hello(c[0], c[1]); f.Type != wire.TypeError || f.Code != wire.CodeUnauthorized {
			t.Errorf("%s: %+v", name, f)
		}
	}
}

// A device that answers pings stays connected however long it is idle: the
// server pings it every heartbeat and neither side times out. (The poller
// once kept a read deadline from hello, and every idle device was cut off
// after two heartbeats.)
func TestIdleDeviceThatAnswersPingsStaysConnected(t *testing.T) {
	// A pong has about one heartbeat to arrive before the pinger finds two
	// heartbeats of silence: 100 ms leaves room for a loaded machine. (At
	// 40 ms, under a load average of 60 on 2 cores, the test found the
	// pinger blaming devices for its own stalls: see pinger.)
	const hb = 100 * time.Millisecond
	srv := servertest.Start(t, server.Config{Heartbeat: hb})
	ws := servertest.DialWS(t, srv)
	servertest.SendFrame(t, ws, &wire.Frame{Type: wire.TypeHello, ID: 1, Version: wire.ProtocolVersion})
	if f := servertest.ReadFrame(t, ws); f.Type != wire.TypeWelcome {
		t.Fatalf("got %+v", f)
	}
	pings := make(chan struct{}, 100)
	ws.SetPingHandler(func(data string) error {
		pings <- struct{}{}
		return ws.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(time.Second))
	})
	done := make(chan error, 1)
	go func() {
		_, _, err := ws.ReadMessage() // handles pings; returns only when the connection ends
		done <- err
	}()
	// Ten pings is five times the silence limit (two heartbeats).
	for i := 0; i < 10; i++ {
		select {
		case <-pings:
		case err := <-done:
			t.Fatalf("connection ended after %d pings: %v", i, err)
		case <-time.After(servertest.WaitLimit):
			t.Fatalf("no ping %d", i+1)
		}
	}
}

// A frame over the limit gets the close frame first (1009 with its reason,
// no error frame before it), with the poller and with a reader goroutine
// alike, as docs/protocol.md says.
func TestGatewayOversizedFrameClosesWithoutErrorFrame(t *testing.T) {
	srv := servertest.Start(t, server.Config{})
	ws := servertest.DialWS(t, srv)
	big := `{"type":"hello","id":1,"client":"` + strings.Repeat("x", wire.MaxFrameBytes) + `"}`
	if err := ws.WriteMessage(websocket.TextMessage, []byte(big)); err != nil {
		t.Fatal(err)
	}
	_, b, err := ws.ReadMessage()
	ce, ok := err.(*websocket.CloseError)
	if !ok || ce.Code != websocket.CloseMessageTooBig || ce.Text != "frame larger than the limit" {
		t.Fatalf("first read: %q, %v", b, err)
	}
}
