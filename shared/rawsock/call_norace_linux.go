//go:build !race

package rawsock

import (
	"syscall"
	"unsafe"
)

// rawCall makes the system call trap (SYS_READ or SYS_WRITE) on fd with p,
// raw: without the runtime's entersyscall.
func rawCall(trap, fd uintptr, p []byte) (uintptr, syscall.Errno) {
	n, _, e := syscall.RawSyscall(trap, fd, uintptr(unsafe.Pointer(unsafe.SliceData(p))), uintptr(len(p)))
	return n, e
}
