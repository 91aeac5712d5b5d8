//go:build !linux

package rawsock

import "errors"

// rawIO is Linux's (rawsock_linux.go); elsewhere newIO makes none.
type rawIO struct{}

func (*rawIO) Read([]byte) (int, error)  { return 0, errors.ErrUnsupported }
func (*rawIO) Write([]byte) (int, error) { return 0, errors.ErrUnsupported }

// newIO returns nil: raw system calls are for Linux.
func newIO(any) *rawIO { return nil }
