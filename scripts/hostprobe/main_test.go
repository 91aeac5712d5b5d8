//go:build linux

package main

import (
	"math"
	"strings"
	"testing"
)

// A short probe measures both figures as positive and finite, and the
// line the scripts print names them.
func TestProbeMeasuresBoth(t *testing.T) {
	r, err := probe(2000, 200)
	if err != nil {
		t.Fatal(err)
	}
	for name, v := range map[string]float64{"system call": r.SyscallNS, "wake-up": r.WakeUS} {
		if !(v > 0) || math.IsInf(v, 0) {
			t.Errorf("%s: %v, want a positive figure", name, v)
		}
	}
	// A round trip makes four system calls: it cannot cost less than one.
	if r.WakeUS*1e3 <= r.SyscallNS {
		t.Errorf("round trip %.2f µs not above one system call of %.0f ns", r.WakeUS, r.SyscallNS)
	}
	line := r.String()
	for _, want := range []string{"system call", "ns (getppid)", "wake-up round trip", "µs (pipes)"} {
		if !strings.Contains(line, want) {
			t.Errorf("line %q lacks %q", line, want)
		}
	}
}
