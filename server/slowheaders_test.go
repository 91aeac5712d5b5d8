package server

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// A request line cut off half-way gets the one 408 with its reason and
// nothing after it: net/http reads the half line it was given as a whole
// one, finds it malformed and writes its own "400 Bad Request", which
// followed the 408 on the same connection as a second answer to one
// request. Both the push front's hand-over and net/http alone.
func TestAStalledRequestLineGetsOneAnswer(t *testing.T) {
	for _, netHTTP := range []bool{false, true} {
		srv := startServer(t, Config{ReadHeaderTimeout: 300 * time.Millisecond, NetHTTPPushes: netHTTP})
		for _, sent := range []string{"POS", "GET /healthz HTTP/1.1\r", "POST /push/" + strings.Repeat("A", 27) + " HTTP/1.1\r\nHo"} {
			c, err := net.Dial("tcp", srv.Addr())
			if err != nil {
				t.Fatal(err)
			}
			c.SetDeadline(time.Now().Add(10 * time.Second))
			if _, err := c.Write([]byte(sent)); err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(c)
			c.Close()
			br := bufio.NewReader(strings.NewReader(string(b)))
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatalf("net/http pushes %v, sent %q: no answer: %q (%v)", netHTTP, sent, b, err)
			}
			reason, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != http.StatusRequestTimeout || !strings.Contains(string(reason), "did not arrive in time") {
				t.Fatalf("net/http pushes %v, sent %q: %d %q, want 408 saying the headers did not arrive in time", netHTTP, sent, resp.StatusCode, reason)
			}
			if rest, _ := io.ReadAll(br); len(rest) > 0 {
				t.Errorf("net/http pushes %v, sent %q: after the 408 the connection carried %q, want nothing", netHTTP, sent, rest)
			}
		}
	}
}
