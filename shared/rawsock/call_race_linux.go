//go:build race

package rawsock

import (
	"errors"
	"syscall"
)

// rawCall makes the system call trap (SYS_READ or SYS_WRITE) on fd with p.
// Under the race detector it goes through the syscall package, whose Read
// and Write tell the detector what they did: a read is ordered after the
// writes before it (as on a net.Conn, so that a client and a server in one
// test process race on nothing), and the bytes moved count as accesses.
func rawCall(trap, fd uintptr, p []byte) (uintptr, syscall.Errno) {
	var n int
	var err error
	if trap == syscall.SYS_READ {
		n, err = syscall.Read(int(fd), p)
	} else {
		n, err = syscall.Write(int(fd), p)
	}
	var e syscall.Errno
	if err != nil && !errors.As(err, &e) {
		e = syscall.EIO
	}
	return uintptr(max(n, 0)), e
}
