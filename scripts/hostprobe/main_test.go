//go:build linux

package main

import (
	"math"
	"runtime"
	"strings"
	"testing"
)

// A short probe measures both figures as positive and finite, and the
// line the scripts print names them. No figure is compared with another
// or with a time: the machine is shared.
func TestProbeMeasuresBoth(t *testing.T) {
	checkReading(t, 2000, 100)
}

// On one processor the echoing thread still runs (the runtime hands the
// processor on while the other sleeps in read): no deadlock.
func TestProbeOnOneProcessor(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	checkReading(t, 200, 50)
}

func checkReading(t *testing.T, calls, trips int) {
	t.Helper()
	r, err := probe(calls, trips, 2)
	if err != nil {
		t.Fatal(err)
	}
	for name, v := range map[string]float64{"system call": r.SyscallNS, "wake-up": r.WakeUS} {
		if !(v > 0) || math.IsInf(v, 0) {
			t.Errorf("%s: %v, want a positive figure", name, v)
		}
	}
	line := r.String()
	for _, want := range []string{"system call", "ns (getppid)", "wake-up round trip", "µs (pipes)"} {
		if !strings.Contains(line, want) {
			t.Errorf("line %q lacks %q", line, want)
		}
	}
}

// When the echoing side quits early, the sender fails at the next trip
// (its write finds the pipe broken, or its read the end of the file)
// instead of waiting for ever.
func TestSendSeesTheOtherSideQuit(t *testing.T) {
	ping, pong, err := pipes()
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		err := relay(ping[0], pong[1], 1) // echoes one byte of three, then quits
		closeAll(ping[0], pong[1])
		done <- err
	}()
	_, err = send(ping[1], pong[0], 3)
	closeAll(ping[1], pong[0])
	if err == nil || !strings.HasPrefix(err.Error(), "trip 1: ") {
		t.Errorf("send: %v, want trip 1 to fail", err)
	}
	if err := <-done; err != nil {
		t.Errorf("relay: %v", err)
	}
}
