package main

import (
	"errors"
	"fmt"
	"math"
	"runtime"
	"slices"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// probe times n batches of calls raw getppid system calls, and n batches
// of trips round trips of a byte between two threads through two blocking
// pipes: each leg wakes a thread asleep in read, as a socket's data wakes
// its reader. It returns the cheapest batch of each, per call and per
// trip; then, unless pauses is 0, the median of pauses round trips to a
// core that idled for pause before each (idleTrips).
func probe(calls, trips, n, pauses int) (reading, error) {
	r := reading{SyscallNS: math.Inf(1), WakeUS: math.Inf(1), IdleWake: "-pauses 0"}
	for range n {
		start := time.Now()
		for range calls {
			syscall.RawSyscall(syscall.SYS_GETPPID, 0, 0, 0)
		}
		r.SyscallNS = min(r.SyscallNS, float64(time.Since(start).Nanoseconds())/float64(calls))
	}
	for range n {
		us, err := roundTrips(trips)
		if err != nil {
			return r, err
		}
		r.WakeUS = min(r.WakeUS, us)
	}
	if pauses == 0 {
		return r, nil
	}
	us, why, err := idleTrips(pauses, pause)
	if err != nil {
		return r, err
	}
	r.IdleWakeUS, r.IdleWake = us, why
	return r, nil
}

// idleTrips returns the median µs of trips round trips between two
// threads pinned to two cores, the first two the calling thread may run
// on; before each, the sending thread spins for pause on its own core, so
// that the echoing thread's core has had nothing of ours to run for that
// long. Where there is one such core, it measures nothing and says why.
// The pinned threads end with their goroutines (locked, never unlocked),
// so no thread of the runtime's pool keeps their one-core mask.
func idleTrips(trips int, pause time.Duration) (us float64, why string, err error) {
	cores, err := allowedCores(2)
	if err != nil {
		return 0, "", err
	}
	if len(cores) < 2 {
		return 0, "one core", nil
	}
	ping, pong, err := pipes()
	if err != nil {
		return 0, "", err
	}
	echoed := make(chan error, 1)
	go func() {
		err := pin(cores[1])
		if err == nil {
			err = relay(ping[0], pong[1], trips)
		}
		closeAll(ping[0], pong[1])
		echoed <- err
	}()
	type result struct {
		took []time.Duration
		err  error
	}
	sent := make(chan result, 1)
	go func() {
		var r result
		if r.err = pin(cores[0]); r.err == nil {
			r.took, r.err = pausedTrips(ping[1], pong[0], trips, pause)
		}
		closeAll(ping[1], pong[0])
		sent <- r
	}()
	r := <-sent
	if err := errors.Join(r.err, <-echoed); err != nil {
		return 0, "", err
	}
	slices.Sort(r.took)
	return float64(r.took[len(r.took)/2].Nanoseconds()) / 1e3, "", nil
}

// allowedCores returns the first n cores the calling thread may run on
// (fewer where it may run on fewer).
func allowedCores(n int) ([]int, error) {
	var allowed unix.CPUSet
	if err := unix.SchedGetaffinity(0, &allowed); err != nil {
		return nil, fmt.Errorf("sched_getaffinity: %w", err)
	}
	var cores []int
	for c := 0; c < len(allowed)*64 && len(cores) < n; c++ {
		if allowed.IsSet(c) {
			cores = append(cores, c)
		}
	}
	return cores, nil
}

// pin locks the calling goroutine to its thread, for good, and the thread
// to core c.
func pin(c int) error {
	runtime.LockOSThread()
	var one unix.CPUSet
	one.Set(c)
	if err := unix.SchedSetaffinity(0, &one); err != nil {
		return fmt.Errorf("sched_setaffinity to core %d: %w", c, err)
	}
	return nil
}

// pausedTrips is send with a pause before each trip; it returns each
// trip's time. The pause spins instead of sleeping: a sleep ends with a
// wake-up by another of the runtime's threads, which may run on the
// echoing thread's core just before the trip and leave it not idle.
func pausedTrips(out, in, trips int, pause time.Duration) ([]time.Duration, error) {
	took := make([]time.Duration, 0, trips)
	b := []byte{1}
	for i := range trips {
		for t := time.Now(); time.Since(t) < pause; {
		}
		start := time.Now()
		if err := trip(out, in, b, i); err != nil {
			return nil, err
		}
		took = append(took, time.Since(start))
	}
	return took, nil
}

// roundTrips returns the µs a round trip took over trips of them.
func roundTrips(trips int) (float64, error) {
	ping, pong, err := pipes()
	if err != nil {
		return 0, err
	}
	// Each side closes the ends it uses, when it is done with them: the
	// other then reads end of file instead of waiting for ever, and no
	// descriptor is closed while the other thread uses it.
	echoed := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		err := relay(ping[0], pong[1], trips)
		closeAll(ping[0], pong[1])
		echoed <- err
	}()
	us, err := send(ping[1], pong[0], trips)
	closeAll(ping[1], pong[0])
	return us, errors.Join(err, <-echoed)
}

// pipes opens the two pipes of a round trip: ping carries the byte out,
// pong brings it back.
func pipes() (ping, pong [2]int, err error) {
	if err := syscall.Pipe2(ping[:], syscall.O_CLOEXEC); err != nil {
		return ping, pong, fmt.Errorf("pipe: %w", err)
	}
	if err := syscall.Pipe2(pong[:], syscall.O_CLOEXEC); err != nil {
		closeAll(ping[:]...)
		return ping, pong, fmt.Errorf("pipe: %w", err)
	}
	return ping, pong, nil
}

func closeAll(fds ...int) {
	for _, fd := range fds {
		syscall.Close(fd)
	}
}

// send writes a byte on out and reads it back on in, trips times, on a
// thread of its own, and returns the µs a round trip took. Its blocking
// reads go through the syscall package, so the runtime may hand the
// goroutine's processor to another thread while it sleeps (sysmon does,
// after 20 µs or more): with GOMAXPROCS=1 the echoing thread still runs,
// later.
func send(out, in, trips int) (float64, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	b := []byte{1}
	start := time.Now()
	for i := range trips {
		if err := trip(out, in, b, i); err != nil {
			return 0, err
		}
	}
	return float64(time.Since(start).Nanoseconds()) / float64(trips) / 1e3, nil
}

// trip writes b on out and reads it back on in: round trip i.
func trip(out, in int, b []byte, i int) error {
	if _, err := syscall.Write(out, b); err != nil {
		return fmt.Errorf("trip %d: write: %w", i, err)
	}
	if err := readByte(in, b); err != nil {
		return fmt.Errorf("trip %d: %w", i, err)
	}
	return nil
}

// relay sends back each of n bytes read from in on out.
func relay(in, out, n int) error {
	b := []byte{0}
	for i := range n {
		if err := readByte(in, b); err != nil {
			return fmt.Errorf("echo %d: %w", i, err)
		}
		if _, err := syscall.Write(out, b); err != nil {
			return fmt.Errorf("echo %d: write: %w", i, err)
		}
	}
	return nil
}

// readByte reads one byte into b.
func readByte(fd int, b []byte) error {
	n, err := syscall.Read(fd, b)
	switch {
	case err != nil:
		return fmt.Errorf("read: %w", err)
	case n == 0:
		return errors.New("read: end of file (the other side quit)")
	}
	return nil
}
