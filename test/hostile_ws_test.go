package test

import (
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/openmpns/openmpns/internal/servertest"
	"github.com/openmpns/openmpns/server"
	"github.com/openmpns/openmpns/shared/wire"
)

// helloed is a raw WebSocket session past hello.
func helloed(t *testing.T, srv *server.Server) *websocket.Conn {
	t.Helper()
	ws := servertest.DialWS(t, srv)
	servertest.SendFrame(t, ws, &wire.Frame{Type: wire.TypeHello, Version: wire.ProtocolVersion})
	if w := servertest.ReadFrame(t, ws); w.Type != wire.TypeWelcome {
		t.Fatalf("hello answered %+v", w)
	}
	return ws
}

// TestHostileDeviceSessionsAreClosedWithAReason drives one misbehaving
// WebSocket session per attack against a real server, checks the error
// frame (code and re) and the close frame (code and reason) the client
// receives, and checks that a well-behaved device is served while the
// attacks are open and after each one ends.
func TestHostileDeviceSessionsAreClosedWithAReason(t *testing.T) {
	srv := startServer(t, hostileConfig())
	by := newBystander(t, srv)
	big := `{"type":"hello","version":1,"client":"` + strings.Repeat("x", wire.MaxFrameBytes) + `"}`
	cases := []struct {
		name    string
		hello   bool   // send hello first
		msgType int    // websocket.TextMessage or BinaryMessage; 0 sends nothing
		send    string // the hostile message
		errCode string // the error frame expected before the close ("" for none)
		errRe   uint64
		close   int
		reason  string
	}{
		{"upgrade then no hello", false, 0, "", "", 0, websocket.ClosePolicyViolation, "no hello within 300ms"},
		{"frame before hello", false, websocket.TextMessage, `{"type":"open","id":7,"app":"a","channel":"c"}`, wire.CodeHelloRequired, 7, websocket.ClosePolicyViolation, "hello required"},
		{"ack before hello", false, websocket.TextMessage, `{"type":"ack","nids":["1"]}`, wire.CodeHelloRequired, 0, websocket.ClosePolicyViolation, "hello required"},
		{"unknown type before hello", false, websocket.TextMessage, `{"type":"launch","id":3}`, wire.CodeBadFrame, 3, websocket.ClosePolicyViolation, "bad frame"},
		{"unknown type after hello", true, websocket.TextMessage, `{"type":"launch","id":4}`, wire.CodeBadFrame, 4, websocket.ClosePolicyViolation, "bad frame"},
		{"server frame type", true, websocket.TextMessage, `{"type":"welcome","id":5}`, wire.CodeUnsupported, 5, websocket.ClosePolicyViolation, "unexpected frame type"},
		{"garbage JSON", false, websocket.TextMessage, `{"type":"hello",,,`, wire.CodeBadFrame, 0, websocket.ClosePolicyViolation, "bad frame"},
		{"garbage JSON after hello", true, websocket.TextMessage, "\x00\x01 not json", wire.CodeBadFrame, 0, websocket.ClosePolicyViolation, "bad frame"},
		{"text not in UTF-8 after hello", true, websocket.TextMessage, "\x00\xff not json", wire.CodeBadFrame, 0, websocket.CloseInvalidFramePayloadData, "text message not UTF-8"},
		{"JSON that is not an object", true, websocket.TextMessage, `[1,2,3]`, wire.CodeBadFrame, 0, websocket.ClosePolicyViolation, "bad frame"},
		{"request without an id", true, websocket.TextMessage, `{"type":"open","app":"a","channel":"c"}`, wire.CodeBadFrame, 0, websocket.ClosePolicyViolation, "bad frame"},
		{"binary frame", false, websocket.BinaryMessage, `{"type":"hello","version":1}`, wire.CodeBadFrame, 0, websocket.CloseUnsupportedData, "binary message"},
		{"binary frame after hello", true, websocket.BinaryMessage, "\x00\x01\x02", wire.CodeBadFrame, 0, websocket.CloseUnsupportedData, "binary message"},
		{"oversized frame", false, websocket.TextMessage, big, "", 0, websocket.CloseMessageTooBig, "frame larger than the limit"},
		{"oversized frame after hello", true, websocket.TextMessage, big, "", 0, websocket.CloseMessageTooBig, "frame larger than the limit"},
	}
	// Open every attack at once, then check the bystander while they are
	// all pending, then read what each attacker got.
	conns := make([]*websocket.Conn, len(cases))
	for i, c := range cases {
		var ws *websocket.Conn
		if c.hello {
			ws = helloed(t, srv)
		} else {
			ws = servertest.DialWS(t, srv)
		}
		if c.msgType != 0 {
			if err := ws.WriteMessage(c.msgType, []byte(c.send)); err != nil {
				t.Fatalf("%s: write: %v", c.name, err)
			}
		}
		conns[i] = ws
	}
	by.check(t)
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ws := conns[i]
			if c.errCode != "" {
				f := servertest.ReadFrame(t, ws)
				if f.Type != wire.TypeError || f.Code != c.errCode || f.Re != c.errRe || f.Message == "" {
					t.Fatalf("got %+v, want error %s with re %d and a message", f, c.errCode, c.errRe)
				}
				t.Logf("error frame: code %s, re %d: %s", f.Code, f.Re, f.Message)
			}
			ce := closeOf(t, ws)
			if ce.Code != c.close || ce.Text != c.reason {
				t.Fatalf("closed with %d %q, want %d %q", ce.Code, ce.Text, c.close, c.reason)
			}
			t.Logf("close frame: %d %q", ce.Code, ce.Text)
			by.check(t)
		})
	}
}

// TestForgivableFramesKeepTheSession: acks for ids the server never sent,
// a second hello, and a request of a known type that fails its checks are
// answered (or, for acks, ignored) without ending the session; an invalid
// request is answered with re = its id.
func TestForgivableFramesKeepTheSession(t *testing.T) {
	srv := startServer(t, hostileConfig())
	by := newBystander(t, srv)
	ws := helloed(t, srv)
	send := func(s string) {
		t.Helper()
		if err := ws.WriteMessage(websocket.TextMessage, []byte(s)); err != nil {
			t.Fatal(err)
		}
	}
	expect := func(typ, code string, re uint64) {
		t.Helper()
		f := servertest.ReadFrame(t, ws)
		if f.Type != typ || f.Code != code || f.Re != re {
			t.Fatalf("got %+v, want %s %s re %d", f, typ, code, re)
		}
	}
	send(`{"type":"ack","nids":["ffffffffffffffff","not-an-id","` + strings.Repeat("9", 128) + `"]}`)
	send(`{"type":"ack","id":1,"nids":["1"]}`)
	send(`{"type":"power","id":2,"power":"normal"}`)
	expect(wire.TypeOK, "", 2)
	send(`{"type":"hello","version":1,"id":3}`)
	expect(wire.TypeError, wire.CodeBadFrame, 3)
	send(`{"type":"open","id":4,"app":"has space","channel":"main"}`)
	expect(wire.TypeError, wire.CodeBadFrame, 4)
	send(`{"type":"bind","id":5,"app":"a","target":"sms"}`)
	expect(wire.TypeError, wire.CodeBadFrame, 5)
	send(`{"type":"power","id":6,"power":"full"}`)
	expect(wire.TypeError, wire.CodeBadFrame, 6)
	send(`{"type":"ack","id":7,"nids":[]}`)
	expect(wire.TypeError, wire.CodeBadFrame, 7)
	send(`{"type":"open","id":8,"app":"com.example.ok","channel":"main"}`)
	if f := servertest.ReadFrame(t, ws); f.Type != wire.TypeOpened || f.Re != 8 {
		t.Fatalf("the session did not go on: %+v", f)
	}
	by.check(t)
}

// TestSilentDeviceIsClosedWithAReason: a device that sends hello and then
// nothing, not even a pong, is closed after two heartbeats with 1000 and a
// reason; a device that answers pings is kept.
func TestSilentDeviceIsClosedWithAReason(t *testing.T) {
	cfg := hostileConfig()
	cfg.Heartbeat = 200 * time.Millisecond
	srv := startServer(t, cfg)
	by := newBystander(t, srv)
	ws := helloed(t, srv)
	ws.SetPingHandler(func(string) error { return nil }) // no pongs
	ce := closeOf(t, ws)
	if ce.Code != websocket.CloseNormalClosure || ce.Text != "timeout: nothing from the device for 2 heartbeats" {
		t.Fatalf("closed with %d %q", ce.Code, ce.Text)
	}
	by.check(t)
}
