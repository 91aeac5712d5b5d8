package server

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/openmpns/openmpns/shared/wire"
)

// With edge-triggered epoll, a peer's FIN that comes with its last bytes
// brings no edge of its own: the read that returns the bytes comes back
// short, and only the next one says end of file. These tests close the
// writing side right after the last bytes, many times over, and want the
// server to close its side at once, not at a timeout (here minutes away).

// A sender that pushes and half-closes at once is closed once answered.
func TestPushFrontSeesAFinThatCameWithThePush(t *testing.T) {
	ft := newFrontTarget(t, false, func(c *Config) {
		c.IdleTimeout, c.ReadHeaderTimeout = 10*time.Minute, 10*time.Minute
	})
	for i := range 20 {
		c := ft.dial(t)
		io.WriteString(c, strings.ReplaceAll(push("", "x"), "{TOKEN}", ft.tok))
		c.(*net.TCPConn).CloseWrite()
		br := bufio.NewReader(c)
		resp, err := http.ReadResponse(br, nil)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("push %d: %v %v", i, resp, err)
		}
		io.Copy(io.Discard, resp.Body)
		c.SetReadDeadline(time.Now().Add(hupWait))
		if _, err := br.ReadByte(); err != io.EOF {
			t.Fatalf("connection %d: %v after the answer, want the server's close (EOF)", i, err)
		}
		c.Close()
	}
}

// A device that sends a frame and half-closes at once is disconnected.
func TestGatewaySeesAFinThatCameWithAFrame(t *testing.T) {
	srv := startServer(t, Config{DailyQuota: -1, Heartbeat: 10 * time.Minute})
	for i := range 10 {
		ws, _, err := websocket.DefaultDialer.Dial("ws://"+srv.Addr()+GatewayPath, nil)
		if err != nil {
			t.Fatal(err)
		}
		hello, _ := json.Marshal(&wire.Frame{Type: wire.TypeHello, ID: 1, Version: wire.ProtocolVersion})
		if err := ws.WriteMessage(websocket.TextMessage, hello); err != nil {
			t.Fatal(err)
		}
		ws.SetReadDeadline(time.Now().Add(hupWait))
		if _, b, err := ws.ReadMessage(); err != nil || !strings.Contains(string(b), `"welcome"`) {
			t.Fatalf("device %d: %s %v, want welcome", i, b, err)
		}
		// The session is idle, its socket watched: a masked ping, then FIN.
		nc := ws.NetConn()
		nc.Write([]byte{0x89, 0x82, 1, 2, 3, 4, 'h' ^ 1, 'i' ^ 2})
		nc.(*net.TCPConn).CloseWrite()
		nc.SetReadDeadline(time.Now().Add(hupWait))
		if _, err := io.ReadAll(nc); err != nil {
			t.Fatalf("device %d: %v, want the server to close the connection", i, err)
		}
		nc.Close()
	}
}

// hupWait bounds the wait for the server's close: a failure, never a
// pause.
const hupWait = 20 * time.Second
