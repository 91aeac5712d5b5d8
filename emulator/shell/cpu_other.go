//go:build !unix

package shell

import "time"

// processCPU is unknown here: frame stats report 0 CPU.
func processCPU() time.Duration { return 0 }
