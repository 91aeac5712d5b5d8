package proccpu

import (
	"fmt"
	"syscall"
	"time"
)

// Time is the CPU time the process has used so far: GetProcessTimes.
func Time() (time.Duration, error) {
	h, err := syscall.GetCurrentProcess()
	if err != nil {
		return 0, fmt.Errorf("proccpu: %w", err)
	}
	var created, exited, kernel, user syscall.Filetime
	if err := syscall.GetProcessTimes(h, &created, &exited, &kernel, &user); err != nil {
		return 0, fmt.Errorf("proccpu: GetProcessTimes: %w", err)
	}
	return span(kernel) + span(user), nil
}

// span is a FILETIME that holds a duration, in units of 100 ns.
func span(f syscall.Filetime) time.Duration {
	return time.Duration(int64(f.HighDateTime)<<32|int64(f.LowDateTime)) * 100
}
