package test

import (
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/openmpns/openmpns/server"
)

// hostileConfig is a server configuration with short timeouts, so that
// attacks that wait for a timeout end quickly. No test asserts how long
// anything took: a test only waits (bounded by waitLimit) for the server
// to act.
func hostileConfig() server.Config {
	return server.Config{
		ReadHeaderTimeout: 300 * time.Millisecond,
		ReadTimeout:       time.Second,
		IdleTimeout:       300 * time.Millisecond,
		HelloTimeout:      300 * time.Millisecond,
	}
}

// bystander is a well-behaved device with a channel bound to toast. check
// proves the server still serves everyone else: a POST to its channel is
// answered 200 Received and the toast, and nothing else, reaches the phone.
type bystander struct {
	p   *phone
	uri string
	n   int
}

func newBystander(t *testing.T, srv *server.Server) *bystander {
	t.Helper()
	p := newPhone(t, srv.URL(), "")
	return &bystander{p: p, uri: p.openChannel(t, "com.example.bystander", "", true, false).ChannelURI()}
}

func (b *bystander) check(t *testing.T) {
	t.Helper()
	b.n++
	text := fmt.Sprintf("still here %d", b.n)
	if a := post(t, "POST", b.uri, toastT, "", "", toastXML(text, "", "")); a.code != 200 || a.notif != "Received" {
		t.Fatalf("bystander's push answered %+v, want 200 Received", a)
	}
	got := b.p.rec.waitN(t, b.n, "shelltoast")
	if len(got) != b.n || got[b.n-1].toast.Text1 != text {
		t.Fatalf("bystander got %d toasts, the last %+v; want exactly %d, the last %q", len(got), got[len(got)-1].toast, b.n, text)
	}
}

// closeOf reads until the server closes ws and returns the close frame the
// client received; it fails if the connection ended without one.
func closeOf(t *testing.T, ws *websocket.Conn) *websocket.CloseError {
	t.Helper()
	ws.SetReadDeadline(time.Now().Add(waitLimit))
	for {
		_, _, err := ws.ReadMessage()
		if err == nil {
			continue
		}
		var ce *websocket.CloseError
		if errors.As(err, &ce) {
			return ce
		}
		t.Fatalf("connection ended without a close frame: %v", err)
	}
}

// dialRaw opens a plain TCP connection to the server.
func dialRaw(t *testing.T, srv *server.Server) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(waitLimit))
	return c
}

// write sends s on c.
func write(t *testing.T, c net.Conn, s string) {
	t.Helper()
	if _, err := c.Write([]byte(s)); err != nil {
		t.Fatalf("write: %v", err)
	}
}
