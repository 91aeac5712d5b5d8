//go:build !unix && !windows

package proccpu

import "time"

// Time is not known here.
func Time() (time.Duration, error) { return 0, ErrUnsupported }
