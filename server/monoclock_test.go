package server

import (
	"strings"
	"testing"
	"time"
)

// The server's idle and silence times are read on the monotonic clock:
// monoBase carries a monotonic reading (Time.String shows it as "m="),
// without which time.Since would read the wall clock, and a reading of 0
// (never) is a day or more before any reading now.
func TestMonoClockIsMonotonic(t *testing.T) {
	if !strings.Contains(monoBase.String(), " m=") {
		t.Fatalf("monoBase %v has no monotonic reading", monoBase)
	}
	a := monoNow()
	b := monoAt(time.Now())
	c := monoNow()
	if a < int64(24*time.Hour) || b < a || c < b {
		t.Fatalf("readings %d, %d, %d: want at least a day, in order", a, b, c)
	}
}
