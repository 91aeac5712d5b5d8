//go:build !linux

package store

import (
	"errors"
	"os"
)

// dataSync makes f's written data durable: File.Sync, which on macOS asks
// the drive to flush its cache too (F_FULLFSYNC), as fdatasync does on
// Linux.
func dataSync(f *os.File) error { return f.Sync() }

// allocate is not done here: the log's writes grow the segment, and each
// sync writes its new size too.
func allocate(*os.File, int64) error {
	return errors.New("preallocation is only done on Linux")
}
