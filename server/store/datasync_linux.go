package store

import (
	"os"

	"golang.org/x/sys/unix"
)

// dataSync makes f's written data durable: fdatasync, which skips the
// metadata a later read does not need (the segment is preallocated, so
// its size does not change as records are written).
func dataSync(f *os.File) error { return unix.Fdatasync(int(f.Fd())) }

// allocate reserves size bytes of f on the disk (zeros).
func allocate(f *os.File, size int64) error { return unix.Fallocate(int(f.Fd()), 0, 0, size) }
