// Package proccpu reads the CPU time the running process has used, user
// and system, all threads: what the benchmarks divide by the work they
// did, and what the emulator's frame statistics report.
package proccpu

import "errors"

// ErrUnsupported is Time's error where the system does not tell.
var ErrUnsupported = errors.New("proccpu: process CPU time is not known on this system")
