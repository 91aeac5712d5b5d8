package rawsock

import (
	"io"
	"os"
	"sync"
	"syscall"
)

// rawIO reads and writes one descriptor with raw system calls. Each
// direction has its own state: a Read and a Write may run at once, and
// two Writes (or Reads) at once take turns, as on a net.Conn (a device's
// pong, written by gorilla, and its acks, written by the device, do).
type rawIO struct {
	r, w op
}

// op is one direction's call: its buffer and result, and the function the
// runtime's poller calls (made once: no closure per call).
type op struct {
	mu    sync.Mutex // held for a whole Read or Write: o's fields are the caller's
	rc    syscall.RawConn
	p     []byte
	n     int
	errno syscall.Errno
	fn    func(fd uintptr) bool
}

// newIO returns c's descriptor as a rawIO, nil if c has none.
func newIO(c any) *rawIO {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	x := &rawIO{}
	x.r.rc, x.w.rc = rc, rc
	x.r.fn, x.w.fn = x.r.read, x.w.write
	return x
}

// Call makes the system call trap (SYS_READ or SYS_WRITE) on the
// non-blocking descriptor fd with p, again whenever a signal interrupts
// it, for a caller that does its own waiting (the server's epoll poller):
// raw, or under the race detector through the syscall package (see
// rawCall). It returns the bytes moved, or -1 and the errno (EAGAIN: not
// ready). Raw, the server's calls no longer woke sysmon: about 6 of its 13
// context switches per notification at a steady 1,000/s before
// (docs/benchmarks.md).
func Call(trap, fd uintptr, p []byte) (int, error) {
	for {
		n, e := rawCall(trap, fd, p)
		switch e {
		case 0:
			return int(n), nil
		case syscall.EINTR:
		default:
			return -1, e
		}
	}
}

// sys makes the system call trap (SYS_READ or SYS_WRITE) on fd with o.p,
// again whenever a signal interrupts it, and returns the bytes it moved;
// ready is false if fd is not ready (EAGAIN), to ask the poller to wait.
// Any other error is left in o.errno, with no bytes moved.
func (o *op) sys(trap, fd uintptr) (n int, ready bool) {
	n, err := Call(trap, fd, o.p)
	switch {
	case err == nil:
		return n, true
	case err == syscall.EAGAIN:
		return 0, false
	}
	o.errno = err.(syscall.Errno) // Call's errors are all Errnos
	return 0, true
}

// read is one try at reading into o.p; false asks the poller to wait.
func (o *op) read(fd uintptr) bool {
	n, ready := o.sys(syscall.SYS_READ, fd)
	o.n = n
	return ready
}

// write is one try at writing what is left of o.p, until it is all
// written or an error is left in o.errno; false asks the poller to wait
// until the descriptor takes more.
func (o *op) write(fd uintptr) bool {
	for len(o.p) > 0 && o.errno == 0 {
		n, ready := o.sys(syscall.SYS_WRITE, fd)
		if !ready {
			return false
		}
		o.p = o.p[n:]
		o.n += n
	}
	return true
}

// Read implements io.Reader: one read, waiting (within the descriptor's
// deadline) until there is something; io.EOF once the peer has closed.
func (x *rawIO) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	o := &x.r
	o.mu.Lock()
	defer o.mu.Unlock()
	o.p, o.n, o.errno = p, 0, 0
	err := o.rc.Read(o.fn)
	o.p = nil
	switch {
	case err != nil:
		return 0, err
	case o.errno != 0:
		return 0, os.NewSyscallError("read", o.errno)
	case o.n == 0:
		return 0, io.EOF
	}
	return o.n, nil
}

// Write implements io.Writer: all of p, waiting (within the descriptor's
// deadline) while the descriptor takes no more, or an error.
func (x *rawIO) Write(p []byte) (int, error) {
	o := &x.w
	o.mu.Lock()
	defer o.mu.Unlock()
	o.p, o.n, o.errno = p, 0, 0
	err := o.rc.Write(o.fn)
	o.p = nil
	if err == nil && o.errno != 0 {
		err = os.NewSyscallError("write", o.errno)
	}
	return o.n, err
}
