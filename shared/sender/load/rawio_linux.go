package load

import (
	"io"
	"os"
	"syscall"
	"unsafe"
)

// rawIO reads and writes a non-blocking file descriptor (a socket, a
// timerfd) with raw system calls, leaving the waiting to the runtime's
// network poller (syscall.RawConn). The syscall package's system calls
// enter runtime.entersyscall, which wakes the runtime's monitor thread
// (sysmon) if it sleeps, as it does whenever the process is idle: between
// every two paced notifications. Woken that way, sysmon polls every 20 µs
// until the process is idle again: about two thread wake-ups per paced
// notification for nothing (docs/benchmarks.md, issue 10, session 7). On a
// non-blocking descriptor the calls return at once, so they need no
// entersyscall.
type rawIO struct {
	rc      syscall.RawConn
	p       []byte
	n       int
	errno   syscall.Errno
	readFn  func(fd uintptr) bool
	writeFn func(fd uintptr) bool
}

// newRawIO returns c's descriptor read and written with raw system calls,
// or c itself if it has none.
func newRawIO(c io.ReadWriter) io.ReadWriter {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return c
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return c
	}
	r := &rawIO{rc: rc}
	r.readFn, r.writeFn = r.read, r.write
	return r
}

// sys makes the system call trap (SYS_READ or SYS_WRITE) on fd with r.p,
// again whenever a signal interrupts it, and returns the bytes it moved;
// ready is false if fd is not ready (EAGAIN), to ask the poller to wait.
// Any other error is left in r.errno, with no bytes moved.
func (r *rawIO) sys(trap, fd uintptr) (n int, ready bool) {
	for {
		n, _, e := syscall.RawSyscall(trap, fd, uintptr(unsafe.Pointer(unsafe.SliceData(r.p))), uintptr(len(r.p)))
		switch e {
		case 0:
			return int(n), true
		case syscall.EINTR:
		case syscall.EAGAIN:
			return 0, false
		default:
			r.errno = e
			return 0, true
		}
	}
}

// read is one try at reading into r.p; false asks the poller to wait.
func (r *rawIO) read(fd uintptr) bool {
	n, ready := r.sys(syscall.SYS_READ, fd)
	r.n = n
	return ready
}

func (r *rawIO) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	r.p, r.n, r.errno = p, 0, 0
	err := r.rc.Read(r.readFn)
	r.p = nil
	switch {
	case err != nil:
		return 0, err
	case r.errno != 0:
		return 0, os.NewSyscallError("read", r.errno)
	case r.n == 0:
		return 0, io.EOF
	}
	return r.n, nil
}

// write is one try at writing what is left of r.p, until it is all written
// or an error is left in r.errno; false asks the poller to wait until the
// socket takes more.
func (r *rawIO) write(fd uintptr) bool {
	for len(r.p) > 0 && r.errno == 0 {
		n, ready := r.sys(syscall.SYS_WRITE, fd)
		if !ready {
			return false
		}
		r.p = r.p[n:]
		r.n += n
	}
	return true
}

func (r *rawIO) Write(p []byte) (int, error) {
	r.p, r.n, r.errno = p, 0, 0
	err := r.rc.Write(r.writeFn)
	r.p = nil
	if err == nil && r.errno != 0 {
		err = os.NewSyscallError("write", r.errno)
	}
	return r.n, err
}
