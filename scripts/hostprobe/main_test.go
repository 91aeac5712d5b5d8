//go:build linux

package main

import (
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// A short probe measures every figure as positive and finite, and the
// line the scripts print names them. No figure is compared with another
// or with a time: the machine is shared.
func TestProbeMeasuresAll(t *testing.T) {
	checkReading(t, 2000, 100, 5)
}

// On one processor the echoing thread still runs (the runtime hands the
// processor on while the other sleeps in read or in its pause): no
// deadlock.
func TestProbeOnOneProcessor(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	checkReading(t, 200, 50, 3)
}

func checkReading(t *testing.T, calls, trips, pauses int) {
	t.Helper()
	r, err := probe(calls, trips, 2, pauses)
	if err != nil {
		t.Fatal(err)
	}
	figures := map[string]float64{"system call": r.SyscallNS, "wake-up": r.WakeUS}
	wants := []string{"system call", "ns (getppid)", "wake-up round trip", "µs (pipes)"}
	if r.IdleWake == "" {
		figures["wake-up of an idle core"] = r.IdleWakeUS
		wants = append(wants, "µs to a core idle for 1 ms")
	} else if r.IdleWake != "one core" {
		t.Errorf("idle core not measured: %q, want it measured (or one core only)", r.IdleWake)
	}
	for name, v := range figures {
		if !(v > 0) || math.IsInf(v, 0) {
			t.Errorf("%s: %v, want a positive figure", name, v)
		}
	}
	line := r.String()
	for _, want := range wants {
		if !strings.Contains(line, want) {
			t.Errorf("line %q lacks %q", line, want)
		}
	}
}

// With -pauses 0 the line says the third figure was not measured, and
// why.
func TestProbeWithoutPauses(t *testing.T) {
	r, err := probe(100, 10, 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	if line := r.String(); !strings.Contains(line, "not measured to an idle core (-pauses 0)") {
		t.Errorf("line %q does not say the idle core was not measured", line)
	}
}

// A thread that may run on one core only measures no round trip to an
// idle core, and says so instead of pinning both threads to that core.
func TestIdleTripsOnOneCore(t *testing.T) {
	type out struct {
		us  float64
		why string
		err error
	}
	done := make(chan out, 1)
	go func() {
		// This goroutine ends locked: its thread, pinned below, ends too.
		first, err := allowedCores(1)
		if err == nil {
			err = pin(first[0])
		}
		if err != nil {
			done <- out{err: err}
			return
		}
		us, why, err := idleTrips(3, 0)
		done <- out{us, why, err}
	}()
	o := <-done
	if o.err != nil {
		t.Fatal(o.err)
	}
	if o.why != "one core" || o.us != 0 {
		t.Errorf("idleTrips on one core: %v µs, %q; want nothing measured, \"one core\"", o.us, o.why)
	}
}

// The threads idleTrips pins end with it: once they are gone, every thread
// of the process that runs goroutines may run on the cores it could
// before, and none of the runtime's pooled threads keeps a one-core mask
// for the goroutines it runs next.
func TestIdleTripsLeavesNoPinnedThread(t *testing.T) {
	before, err := threadCores()
	if err != nil {
		t.Fatal(err)
	}
	all := before[unix.Gettid()]
	if cores, err := allowedCores(2); err != nil {
		t.Fatal(err)
	} else if len(cores) < 2 {
		t.Skip("one core: nothing is pinned")
	}
	us, why, err := idleTrips(3, 100*time.Microsecond)
	if err != nil {
		t.Fatal(err)
	}
	if why != "" || !(us > 0) {
		t.Errorf("idleTrips: %v µs, %q; want a positive figure", us, why)
	}
	// A pinned thread ends after its goroutine returns, which nothing
	// signals: look until none is left, within a bound far past what
	// ending a thread takes.
	var pinned map[int]string
	for deadline := time.Now().Add(10 * time.Second); ; runtime.Gosched() {
		now, err := threadCores()
		if err != nil {
			t.Fatal(err)
		}
		pinned = map[int]string{}
		for tid, cores := range now {
			// The main thread cannot end: when a pinned goroutine ran
			// there, the runtime parks the thread for good instead (it
			// runs no goroutine again), and it keeps its mask.
			if cores != all && tid != os.Getpid() {
				pinned[tid] = cores
			}
		}
		if len(pinned) == 0 || time.Now().After(deadline) {
			break
		}
	}
	if len(pinned) > 0 {
		t.Errorf("threads left on fewer cores than %s: %v", all, pinned)
	}
}

// threadCores returns each thread's Cpus_allowed_list, by thread id.
func threadCores() (map[int]string, error) {
	dir := "/proc/self/task"
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	cores := map[int]string{}
	for _, e := range ents {
		tid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name(), "status"))
		if err != nil {
			continue // the thread ended meanwhile
		}
		for line := range strings.Lines(string(b)) {
			if v, ok := strings.CutPrefix(line, "Cpus_allowed_list:"); ok {
				cores[tid] = strings.TrimSpace(v)
			}
		}
	}
	return cores, nil
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
