//go:build unix

package proccpu

import (
	"fmt"
	"syscall"
	"time"
)

// Time is the CPU time the process has used so far: getrusage(2).
func Time() (time.Duration, error) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, fmt.Errorf("proccpu: getrusage: %w", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), nil
}
