package test

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// requestHead is the start of a push to uri, up to and including the
// blank line, announcing a body of n bytes.
func requestHead(t *testing.T, uri string, n int) string {
	t.Helper()
	u, err := url.Parse(uri)
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("POST %s HTTP/1.1\r\nHost: %s\r\nX-WindowsPhone-Target: toast\r\nContent-Type: text/xml\r\nContent-Length: %d\r\n\r\n", u.Path, u.Host, n)
}

// cutOff checks that the server ended c: a read reaches the end of the
// connection, having received nothing, or net/http's plain answer to a
// request it could not read (a 400 that closes the connection). It returns
// what the client saw, for the log.
func cutOff(t *testing.T, c io.Reader) string {
	t.Helper()
	b, err := io.ReadAll(c)
	if len(b) == 0 {
		return fmt.Sprintf("closed without an answer (%v)", err)
	}
	resp, perr := http.ReadResponse(bufio.NewReader(strings.NewReader(string(b))), nil)
	if perr != nil || resp.StatusCode != 400 || !resp.Close {
		t.Fatalf("got %q, want the connection closed, at most with a 400", b)
	}
	return "400 and closed: " + strings.ReplaceAll(string(b), "\r\n", " | ")
}

// TestSlowlorisHTTP holds connections open the way slowloris does: request
// headers sent a few bytes and then never finished, a body announced and
// never finished, and an idle keep-alive connection. The server cuts each
// off after its timeout (ReadHeaderTimeout, ReadTimeout, IdleTimeout),
// answers unfinished headers with a 408 and the unfinished body with a 400,
// each with a reason, closes the idle connection quietly, queues nothing,
// and serves a device and its sender meanwhile and afterwards.
func TestSlowlorisHTTP(t *testing.T) {
	srv := startServer(t, hostileConfig())
	by := newBystander(t, srv)

	// Twenty connections with half-sent headers, of a push and of a
	// device's WebSocket upgrade.
	var heads []io.Reader
	for i := range 20 {
		c := dialRaw(t, srv)
		if i%2 == 0 {
			write(t, c, requestHead(t, by.uri, 10)[:40])
		} else {
			write(t, c, "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Up")
		}
		heads = append(heads, c)
	}
	// A push whose body never arrives in full.
	body := toastXML("never", "finished", "")
	slowBody := dialRaw(t, srv)
	write(t, slowBody, requestHead(t, by.uri, len(body))+string(body[:len(body)/2]))
	// An idle keep-alive connection, after one complete request.
	idle := dialRaw(t, srv)
	write(t, idle, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
	idleR := bufio.NewReader(idle)
	resp, err := http.ReadResponse(idleR, nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("healthz on the keep-alive connection: %v %v", resp, err)
	}
	io.Copy(io.Discard, resp.Body)

	by.check(t) // during the attack

	t.Run("headers trickled", func(t *testing.T) {
		for i, c := range heads {
			b, err := io.ReadAll(c)
			resp, perr := http.ReadResponse(bufio.NewReader(strings.NewReader(string(b))), nil)
			if perr != nil {
				t.Fatalf("connection %d: %q (%v), want a 408 with a reason", i, b, err)
			}
			reason, _ := io.ReadAll(resp.Body)
			want := "the request headers did not arrive in time (the server waits 300ms)"
			if resp.StatusCode != http.StatusRequestTimeout || !resp.Close || resp.Header.Get("X-OpenMPNS-Error") != want ||
				strings.TrimSpace(string(reason)) != want {
				t.Fatalf("connection %d: %d %q, body %q; want 408 saying %q", i, resp.StatusCode, resp.Header.Get("X-OpenMPNS-Error"), reason, want)
			}
			if i < 2 {
				t.Logf("connection %d sees: %d %s", i, resp.StatusCode, reason)
			}
		}
	})
	t.Run("body trickled", func(t *testing.T) {
		resp, err := http.ReadResponse(bufio.NewReader(slowBody), nil)
		if err != nil {
			t.Fatalf("no answer to the unfinished body: %v", err)
		}
		reason, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 400 || !strings.Contains(resp.Header.Get("X-OpenMPNS-Error"), "the request body did not arrive within 1s") ||
			strings.TrimSpace(string(reason)) != resp.Header.Get("X-OpenMPNS-Error") {
			t.Fatalf("answer %d %q, body %q; want 400 saying the body did not arrive in time", resp.StatusCode, resp.Header.Get("X-OpenMPNS-Error"), reason)
		}
		t.Logf("client sees: %d %s", resp.StatusCode, reason)
		if resp.Header.Get("X-NotificationStatus") != "" {
			t.Fatalf("refused push has X-NotificationStatus %q", resp.Header.Get("X-NotificationStatus"))
		}
	})
	t.Run("idle keep-alive", func(t *testing.T) {
		t.Logf("client sees: %s", cutOff(t, idleR))
	})

	by.check(t) // after: and nothing of the unfinished push was delivered
}

// TestOversizedHeaders: headers over the MPNS 1 KB limit get a 400 with a
// reason; headers over the HTTP server's 16 KiB limit get net/http's 431.
// Either way nothing is queued and the server goes on.
func TestOversizedHeaders(t *testing.T) {
	srv := startServer(t, hostileConfig())
	by := newBystander(t, srv)
	body := toastXML("too", "big", "")
	a := post(t, "POST", by.uri, toastT, "", "", body, "X-Padding", strings.Repeat("p", 2000))
	if a.code != 400 || !strings.Contains(a.reason, "more than the 1024-byte limit") {
		t.Fatalf("2 KB of headers: %+v", a)
	}
	c := dialRaw(t, srv)
	head := requestHead(t, by.uri, len(body))
	write(t, c, head[:len(head)-2]+"X-Padding: "+strings.Repeat("p", 20<<10)+"\r\n\r\n"+string(body))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil || resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("20 KB of headers: %v %v, want 431", resp, err)
	}
	by.check(t)
}

// TestRefusedBodyLeftUnreadGetsOneAnswer: a push announcing a body over
// the limit is refused at once; net/http then reads (drains) what the
// sender goes on sending. A sender that stalls in the middle of that body
// must not get a second answer (a 408 for "headers" that are the refused
// body): one 400 with its reason, then the connection ends.
func TestRefusedBodyLeftUnreadGetsOneAnswer(t *testing.T) {
	srv := startServer(t, hostileConfig())
	by := newBystander(t, srv)
	c := dialRaw(t, srv)
	write(t, c, requestHead(t, by.uri, 100_000)+strings.Repeat("x", 3000))
	b, _ := io.ReadAll(c)
	br := bufio.NewReader(strings.NewReader(string(b)))
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("no answer: %q (%v)", b, err)
	}
	reason, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 400 || !strings.Contains(string(reason), "more than the") {
		t.Fatalf("answer %d %q, want 400 for the size", resp.StatusCode, reason)
	}
	if rest, _ := io.ReadAll(br); len(rest) > 0 {
		t.Fatalf("after the 400 the connection carried %q, want nothing", rest)
	}
	by.check(t)
}

// TestThe408OnlyForAStalledHead: the 408 answers a request head that
// stalls, on a new connection or a kept-alive one, and nothing else: not
// the CRLF that HTTP allows between requests on an idle connection (nor
// the four a POST may be followed by), not a
// body net/http reads for itself (OPTIONS *), and the connection of a
// refused large body still ends with a FIN after the answer, not a reset.
func TestThe408OnlyForAStalledHead(t *testing.T) {
	srv := startServer(t, hostileConfig())
	healthz := "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
	answer := func(t *testing.T, br *bufio.Reader) *http.Response {
		t.Helper()
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		return resp
	}
	t.Run("stray CRLF on an idle connection", func(t *testing.T) {
		c := dialRaw(t, srv)
		br := bufio.NewReader(c)
		write(t, c, healthz)
		answer(t, br)
		write(t, c, "\r\n")
		if rest, _ := io.ReadAll(br); len(rest) > 0 {
			t.Fatalf("the idle connection got %q, want a quiet close", rest)
		}
	})
	t.Run("stray line breaks after a POST net/http served", func(t *testing.T) {
		// After a POST net/http waits for four bytes and skips the line
		// breaks among them; four of them are still not a request's head.
		// The idle timeout is long, so that the line breaks come before
		// it however slow the machine: the close is the head's timeout.
		cfg := hostileConfig()
		cfg.IdleTimeout = time.Minute
		srv := startServer(t, cfg)
		c := dialRaw(t, srv)
		br := bufio.NewReader(c)
		write(t, c, "POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\nx")
		answer(t, br)
		write(t, c, "\r\n\r\n")
		if rest, _ := io.ReadAll(br); len(rest) > 0 {
			t.Fatalf("the idle connection got %q, want a quiet close", rest)
		}
	})
	t.Run("stalled head on a kept-alive connection", func(t *testing.T) {
		c := dialRaw(t, srv)
		br := bufio.NewReader(c)
		write(t, c, healthz)
		answer(t, br)
		write(t, c, "GET /healthz HTTP/1.1\r\nHos")
		if resp := answer(t, br); resp.StatusCode != http.StatusRequestTimeout {
			t.Fatalf("stalled second head: %d, want 408", resp.StatusCode)
		}
	})
	t.Run("OPTIONS * with a stalled body", func(t *testing.T) {
		c := dialRaw(t, srv)
		br := bufio.NewReader(c)
		write(t, c, "OPTIONS * HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc")
		if resp := answer(t, br); resp.StatusCode != 200 {
			t.Fatalf("OPTIONS *: %d", resp.StatusCode)
		}
		if rest, _ := io.ReadAll(br); len(rest) > 0 {
			t.Fatalf("after the 200 the connection carried %q", rest)
		}
	})
	t.Run("refused large body ends with a FIN", func(t *testing.T) {
		c := dialRaw(t, srv)
		write(t, c, requestHead(t, "http://"+srv.Addr()+"/push/x", 1<<20)+strings.Repeat("x", 200<<10))
		b, err := io.ReadAll(c)
		if err != nil {
			t.Fatalf("after %d bytes of answer: %v, want the end of the stream (a FIN, not a reset)", len(b), err)
		}
		if !strings.HasPrefix(string(b), "HTTP/1.1 400") {
			t.Fatalf("answer %.80q, want a 400", b)
		}
	})
}
