package server

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// net/http closes a connection whose request headers did not arrive within
// ReadHeaderTimeout without a word: the client sees the connection end and
// cannot tell a slow network from a server that is gone. headerTimeoutListener
// wraps plain-HTTP connections so that a request cut off half-way through
// its headers is answered "408 Request Timeout" with the reason, in the
// X-OpenMPNS-Error header and the body, as every other refusal is. An idle
// keep-alive connection is still closed quietly, as HTTP expects, even when
// it carried a stray CRLF (which HTTP allows between requests). TLS
// connections are not wrapped (a plain-text answer cannot be written under
// TLS, and net/http needs the *tls.Conn itself).
//
// The watch follows net/http's own steps on a connection (net/http/server.go,
// conn.serve):
//
//   - a new connection: a read deadline of ReadHeaderTimeout, then the head;
//   - from the end of the head to the end of the answer, the connection is
//     "active" (ConnState), and a handler (or net/http itself) answers;
//   - back to "idle" (ConnState): a read deadline of IdleTimeout (or none),
//     a peek at the first bytes of a next request, then a read deadline of
//     ReadHeaderTimeout for its head (Go 1.26; earlier versions cleared the
//     deadline and set the head's in readRequest, which this also follows);
//   - or hijacked for a WebSocket, or closed.
//
// Only a read timeout while reading a head, after some of it arrived, gets
// the 408: an idle timeout after a stray CRLF does not.
type headerTimeoutListener struct {
	net.Listener
	timeout time.Duration
}

func (l headerTimeoutListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return watchHeaders(c, l.timeout), nil
}

// watchHeaders wraps a new connection: its request heads get timeout.
func watchHeaders(c net.Conn, timeout time.Duration) *headerTimeoutConn {
	return &headerTimeoutConn{Conn: c, timeout: timeout, phase: awaitHead}
}

// Phases of a watched connection.
const (
	awaitHead = iota // new: the next read deadline is the head's
	head             // reading a request head
	active           // a request is being answered (ConnState active)
	idle             // between requests: the next read deadline is the idle one
	idleWait         // waiting (peeking) for a next request
	unwatched        // hijacked or closed
)

// headerTimeoutConn is one watched connection.
type headerTimeoutConn struct {
	net.Conn
	timeout time.Duration

	mu      sync.Mutex
	phase   int
	partial bool // bytes of a next request have been read (not only line breaks)

	// answered is set once the 408 went out: what net/http writes after
	// it is dropped. A head cut off in the middle of a line reaches
	// net/http as a whole line (bufio returns the bytes before the
	// timeout without the error), which it finds malformed and answers
	// with its own "400 Bad Request": a second answer to one request.
	answered atomic.Bool
}

// watchConnState is the server's ConnState hook: it moves a watched
// connection between phases.
func watchConnState(c net.Conn, st http.ConnState) {
	hc, ok := c.(*headerTimeoutConn)
	if !ok {
		return
	}
	hc.mu.Lock()
	defer hc.mu.Unlock()
	switch st {
	case http.StateActive:
		hc.phase, hc.partial = active, false
	case http.StateIdle:
		hc.phase, hc.partial = idle, false
	case http.StateHijacked, http.StateClosed:
		hc.phase = unwatched
	}
}

// SetReadDeadline follows net/http from idle to reading a head. (A
// deadline in the past aborts a read; it starts nothing.)
func (c *headerTimeoutConn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	if t.IsZero() || t.After(time.Now()) {
		switch c.phase {
		case idle:
			c.phase = idleWait
		case idleWait, awaitHead:
			c.phase = head // the peek found a next request, or a new connection
		}
	}
	c.mu.Unlock()
	return c.Conn.SetReadDeadline(t)
}

// SetDeadline is SetReadDeadline and SetWriteDeadline.
func (c *headerTimeoutConn) SetDeadline(t time.Time) error {
	if err := c.SetReadDeadline(t); err != nil {
		return err
	}
	return c.Conn.SetWriteDeadline(t)
}

func (c *headerTimeoutConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.mu.Lock()
	if n > 0 && c.phase != active && c.phase != unwatched && !c.partial && !onlyLineBreaks(p[:n]) {
		c.partial = true
	}
	answer := false
	var ne net.Error
	if err != nil && c.phase == head && c.partial && errors.As(err, &ne) && ne.Timeout() {
		answer, c.partial = true, false
	}
	c.mu.Unlock()
	if answer {
		c.answerTimeout()
	}
	return n, err
}

// onlyLineBreaks reports whether b holds nothing but CR and LF: the line
// breaks HTTP allows between requests (net/http discards up to four after
// a POST) are not the start of one.
func onlyLineBreaks(b []byte) bool {
	for _, x := range b {
		if x != '\r' && x != '\n' {
			return false
		}
	}
	return true
}

func (c *headerTimeoutConn) answerTimeout() {
	c.answered.Store(true)
	reason := fmt.Sprintf("the request headers did not arrive in time (the server waits %s)", c.timeout)
	msg := fmt.Sprintf("HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Type: text/plain; charset=utf-8\r\nX-OpenMPNS-Error: %s\r\nContent-Length: %d\r\n\r\n%s\n",
		reason, len(reason)+1, reason)
	c.Conn.SetWriteDeadline(time.Now().Add(time.Second))
	c.Conn.Write([]byte(msg)) // best effort: the connection closes next either way
}

// Write writes p, unless the 408 was answered: the connection then takes
// nothing more (see answered).
func (c *headerTimeoutConn) Write(p []byte) (int, error) {
	if c.answered.Load() {
		return len(p), nil
	}
	return c.Conn.Write(p)
}

// SyscallConn gives the WebSocket gateway the descriptor of the connection
// under the wrapper (its epoll poller watches it directly).
func (c *headerTimeoutConn) SyscallConn() (syscall.RawConn, error) {
	sc, ok := c.Conn.(syscall.Conn)
	if !ok {
		return nil, errors.New("server: connection has no descriptor")
	}
	return sc.SyscallConn()
}

// CloseWrite half-closes the connection, as net/http does before it closes
// a connection whose request it refused (so the client reads the answer and
// then the end, not a reset).
func (c *headerTimeoutConn) CloseWrite() error { return closeWrite(c.Conn) }

// closeWrite half-closes c if it can.
func closeWrite(c net.Conn) error {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// ReadFrom keeps net/http's sendfile path.
func (c *headerTimeoutConn) ReadFrom(r io.Reader) (int64, error) {
	if rf, ok := c.Conn.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	return io.Copy(struct{ io.Writer }{c.Conn}, r)
}
