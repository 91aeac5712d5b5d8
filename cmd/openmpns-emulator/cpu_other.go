//go:build !unix

package main

import "time"

// processCPU is unknown here: frame stats report 0 CPU.
func processCPU() time.Duration { return 0 }
