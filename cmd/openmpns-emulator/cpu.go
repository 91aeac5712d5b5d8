package main

import (
	"time"

	"github.com/openmpns/openmpns/shared/proccpu"
)

// processCPU returns the CPU time the process has used, user and system,
// all threads; 0 where the system does not tell (frame stats then report
// no CPU).
func processCPU() time.Duration {
	d, err := proccpu.Time()
	if err != nil {
		return 0
	}
	return d
}
