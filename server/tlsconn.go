package server

import (
	"crypto/tls"
	"net"
	"sync/atomic"
	"syscall"
	"time"
)

// tlsListener is tls.NewListener with one difference: under each *tls.Conn
// sits a pollConn, so that once a device's WebSocket is up the gateway can
// read its TLS records whenever the poller reports the socket readable,
// without a goroutine waiting on the connection.
type tlsListener struct {
	net.Listener
	config *tls.Config
}

func (l tlsListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return tls.Server(&pollConn{Conn: c}, l.config), nil
}

// pollConn is the TCP connection under a *tls.Conn. It reads as any
// net.Conn does (waiting for bytes) until the gateway takes the connection
// over after the WebSocket upgrade (setNonblocking). From then on a read
// returns what the socket holds, or errWouldBlock when it holds nothing: the
// *tls.Conn above keeps a record it has read only in part (errWouldBlock is
// a temporary net.Error) and goes on with it at the next read.
type pollConn struct {
	net.Conn
	raw      syscall.RawConn // set before nonblock
	nonblock atomic.Bool
	// writeTimeout, once set (a device's WebSocket): each write's own
	// deadline, in nanoseconds. The *tls.Conn above writes while it reads
	// too (the answer to a TLS 1.3 KeyUpdate that asks for one), under
	// whatever deadline the last frame's write left, usually long past;
	// that write would fail, and crypto/tls keeps the error for every
	// write after it.
	writeTimeout atomic.Int64
	// deadline is the write deadline last set (monoNow's scale; 0: none).
	deadline atomic.Int64
}

// deadlineEachWrite gives every later write whose deadline is past (or
// unset) a deadline of d from its start; a deadline its caller set and
// that is still ahead (a frame's write, a close's second) is kept.
func (c *pollConn) deadlineEachWrite(d time.Duration) { c.writeTimeout.Store(int64(d)) }

func (c *pollConn) SetWriteDeadline(t time.Time) error {
	var at int64
	if !t.IsZero() {
		at = monoAt(t)
	}
	c.deadline.Store(at)
	return c.Conn.SetWriteDeadline(t)
}

func (c *pollConn) SetDeadline(t time.Time) error {
	if err := c.SetWriteDeadline(t); err != nil {
		return err
	}
	return c.Conn.SetReadDeadline(t)
}

func (c *pollConn) Write(p []byte) (int, error) {
	if d := c.writeTimeout.Load(); d > 0 {
		if now := time.Now(); monoAt(now) >= c.deadline.Load() {
			c.SetWriteDeadline(now.Add(time.Duration(d)))
		}
	}
	return c.Conn.Write(p)
}

// setNonblocking makes every later read return at once; it returns the
// descriptor for the poller. No read may be in progress.
func (c *pollConn) setNonblocking() (int, syscall.RawConn, error) {
	fd, raw, err := connFD(c.Conn)
	if err != nil {
		return -1, nil, err
	}
	c.raw = raw
	c.nonblock.Store(true)
	return fd, raw, nil
}

func (c *pollConn) Read(p []byte) (int, error) {
	if c.nonblock.Load() {
		return readNow(c.raw, p)
	}
	return c.Conn.Read(p)
}

// wouldBlock is the error of a read that found nothing to read. It is a
// temporary net.Error because crypto/tls keeps a connection usable after a
// temporary read error only (it tests with a type assertion, so the error
// must not be wrapped).
type wouldBlock struct{}

func (wouldBlock) Error() string   { return "read would block" }
func (wouldBlock) Timeout() bool   { return true }
func (wouldBlock) Temporary() bool { return true }

// errWouldBlock: nothing more to read now.
var errWouldBlock error = wouldBlock{}

var _ net.Error = wouldBlock{}
