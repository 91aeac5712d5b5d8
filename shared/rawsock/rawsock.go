// Package rawsock reads and writes non-blocking descriptors (sockets,
// timerfds) with raw system calls, the waiting left to the Go runtime's
// network poller (syscall.RawConn).
//
// The syscall package's read and write enter runtime.entersyscall, which
// wakes the runtime's monitor thread (sysmon) if it sleeps, and lets sysmon
// take the thread's processor away if the call lasts more than 20 µs: on
// two cores shared by a server, a fleet and a sender, the kernel often
// deschedules a thread inside a write, sysmon hands its processor to
// another thread and back, and keeps polling every 20 µs meanwhile. On a
// non-blocking descriptor the calls return at once (EAGAIN when not
// ready, and the poller then waits), so they need none of that
// bookkeeping. Measured in docs/benchmarks.md (issue 10: the load tool in
// session 7, the fleet in session 11).
//
// Raw system calls are used on Linux; elsewhere Wrap and ReadWriter return
// their argument.
package rawsock

import (
	"io"
	"net"
)

// conn is a net.Conn read and written with raw system calls; deadlines,
// Close and the addresses are the wrapped connection's.
type conn struct {
	net.Conn
	io *rawIO
}

func (c *conn) Read(p []byte) (int, error) {
	n, err := c.io.Read(p)
	if err != nil && err != io.EOF {
		err = c.opError("read", err)
	}
	return n, err
}

func (c *conn) Write(p []byte) (int, error) {
	n, err := c.io.Write(p)
	if err != nil {
		err = c.opError("write", err)
	}
	return n, err
}

// opError gives err the shape a net.Conn's errors have: a *net.OpError
// naming the operation and the addresses ("read tcp 127.0.0.1:5->...:
// connection reset by peer"), where the runtime's poller says "raw-read"
// and a system call's error has no addresses at all.
func (c *conn) opError(op string, err error) error {
	if oe, ok := err.(*net.OpError); ok {
		if oe.Op == "raw-"+op {
			e := *oe
			e.Op = op
			return &e
		}
		return err
	}
	local, remote := c.LocalAddr(), c.RemoteAddr()
	e := &net.OpError{Op: op, Source: local, Addr: remote, Err: err}
	if local != nil {
		e.Net = local.Network()
	}
	return e
}

// Wrap returns c read and written with raw system calls, or c itself where
// it cannot be (not a *net.TCPConn or *net.UnixConn, or not Linux). As on
// any net.Conn, methods may be called at once: a Read and a Write run
// together, two Writes (or two Reads) take turns, each Write written
// whole. Reads and writes keep c's deadlines, and Close ends a Read or
// Write that waits.
func Wrap(c net.Conn) net.Conn {
	switch c.(type) {
	case *net.TCPConn, *net.UnixConn:
	default:
		// Another type (a Config.NetDial's own, say) may embed one of
		// these, SyscallConn with it, and read or write through methods
		// of its own, which raw calls would go around.
		return c
	}
	x := newIO(c)
	if x == nil {
		return c
	}
	return &conn{Conn: c, io: x}
}

// ReadWriter returns c (a socket, or an *os.File of a non-blocking
// descriptor) read and written with raw system calls, or c itself where it
// cannot be; as with Wrap, a Read and a Write run together, two Writes
// (or Reads) take turns.
func ReadWriter(c io.ReadWriter) io.ReadWriter {
	if x := newIO(c); x != nil {
		return x
	}
	return c
}

// Raw reports whether rw, returned by Wrap or ReadWriter, makes raw system
// calls.
func Raw(rw any) bool {
	switch rw.(type) {
	case *conn, *rawIO:
		return true
	}
	return false
}
