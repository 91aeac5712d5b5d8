package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"syscall"
	"time"
)

// net/http closes a connection whose request headers did not arrive within
// ReadHeaderTimeout without a word: the client sees the connection end and
// cannot tell a slow network from a server that is gone. headerTimeoutListener
// wraps plain-HTTP connections so that a request cut off half-way through
// its headers is answered "408 Request Timeout" with the reason, in the
// X-OpenMPNS-Error header and the body, as every other refusal is. An idle
// keep-alive connection (nothing of a next request read) is still closed
// quietly, as HTTP expects.
//
// A connection is "in the middle of a request head" when bytes of a next
// request have been read and no handler runs now; handlers mark themselves
// through trackHandlers. After a handler, net/http may still read (and
// drain) the rest of its request body; the next request begins when it sets
// the idle or header deadline, so reads count only from the first
// SetReadDeadline to a time in the future after a handler ended. Upgraded (WebSocket) connections stop
// being watched before the upgrade. TLS connections are not wrapped (a
// plain-text answer cannot be written under TLS, and net/http needs the
// *tls.Conn itself).
type headerTimeoutListener struct {
	net.Listener
	timeout time.Duration
}

func (l headerTimeoutListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &headerTimeoutConn{Conn: c, timeout: l.timeout, counting: true}, nil
}

// headerTimeoutConn is one watched connection.
type headerTimeoutConn struct {
	net.Conn
	timeout time.Duration

	mu        sync.Mutex
	partial   bool // bytes of a next request read
	counting  bool // reads are of a next request (see above)
	inHandler bool
	upgraded  bool
}

// SetReadDeadline notes when net/http starts waiting for a next request.
func (c *headerTimeoutConn) SetReadDeadline(t time.Time) error {
	if t.After(time.Now()) {
		c.mu.Lock()
		c.counting = true
		c.mu.Unlock()
	}
	return c.Conn.SetReadDeadline(t)
}

// SetDeadline is SetReadDeadline and SetWriteDeadline.
func (c *headerTimeoutConn) SetDeadline(t time.Time) error {
	if err := c.SetReadDeadline(t); err != nil {
		return err
	}
	return c.Conn.SetWriteDeadline(t)
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

func (c *headerTimeoutConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.mu.Lock()
	if c.upgraded {
		c.mu.Unlock()
		return n, err
	}
	if n > 0 && c.counting && !c.inHandler {
		c.partial = true
	}
	answer := false
	var ne net.Error
	if err != nil && errors.As(err, &ne) && ne.Timeout() && c.partial && !c.inHandler {
		answer, c.partial = true, false
	}
	c.mu.Unlock()
	if answer {
		c.answerTimeout()
	}
	return n, err
}

func (c *headerTimeoutConn) answerTimeout() {
	reason := fmt.Sprintf("the request headers did not arrive in time (the server waits %s)", c.timeout)
	msg := fmt.Sprintf("HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Type: text/plain; charset=utf-8\r\nX-OpenMPNS-Error: %s\r\nContent-Length: %d\r\n\r\n%s\n",
		reason, len(reason)+1, reason)
	c.Conn.SetWriteDeadline(time.Now().Add(time.Second))
	c.Conn.Write([]byte(msg)) // best effort: the connection closes next either way
}

// handlerStarted marks a request handed to a handler; an upgrade request
// stops the watch for good.
func (c *headerTimeoutConn) handlerStarted(upgrade bool) {
	c.mu.Lock()
	c.inHandler, c.partial = true, false
	if upgrade {
		c.upgraded = true
	}
	c.mu.Unlock()
}

func (c *headerTimeoutConn) handlerEnded() {
	c.mu.Lock()
	c.inHandler, c.partial, c.counting = false, false, false
	c.mu.Unlock()
}

type headerTimeoutKey struct{}

// connContext remembers the watched connection in each request's context.
func connContext(ctx context.Context, c net.Conn) context.Context {
	if hc, ok := c.(*headerTimeoutConn); ok {
		return context.WithValue(ctx, headerTimeoutKey{}, hc)
	}
	return ctx
}

// trackHandlers tells the watched connection when a handler runs.
func trackHandlers(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hc, _ := r.Context().Value(headerTimeoutKey{}).(*headerTimeoutConn)
		if hc == nil {
			next.ServeHTTP(w, r)
			return
		}
		hc.handlerStarted(r.Header.Get("Upgrade") != "")
		defer hc.handlerEnded()
		next.ServeHTTP(w, r)
	})
}
