package main

import (
	"fmt"
	"runtime"
	"syscall"
	"time"
)

// probe times calls raw getppid system calls, then trips round trips of a
// byte between two threads through two blocking pipes: each leg wakes a
// thread that sleeps in read, as a socket's data wakes its reader.
func probe(calls, trips int) (reading, error) {
	var r reading
	start := time.Now()
	for range calls {
		syscall.RawSyscall(syscall.SYS_GETPPID, 0, 0, 0)
	}
	r.SyscallNS = float64(time.Since(start).Nanoseconds()) / float64(calls)

	var ping, pong [2]int
	if err := syscall.Pipe2(ping[:], syscall.O_CLOEXEC); err != nil {
		return r, fmt.Errorf("pipe: %w", err)
	}
	defer syscall.Close(ping[0])
	defer syscall.Close(ping[1])
	if err := syscall.Pipe2(pong[:], syscall.O_CLOEXEC); err != nil {
		return r, fmt.Errorf("pipe: %w", err)
	}
	defer syscall.Close(pong[0])
	defer syscall.Close(pong[1])

	// The echoing thread: blocking reads in syscall.Read hand the
	// goroutine's processor back to the runtime while the thread sleeps.
	echoed := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		echoed <- relay(ping[0], pong[1], trips)
	}()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	b := []byte{1}
	start = time.Now()
	for i := range trips {
		if _, err := syscall.Write(ping[1], b); err != nil {
			return r, fmt.Errorf("trip %d: write: %w", i, err)
		}
		if n, err := syscall.Read(pong[0], b); err != nil || n != 1 {
			return r, fmt.Errorf("trip %d: read %d: %v", i, n, err)
		}
	}
	r.WakeUS = float64(time.Since(start).Nanoseconds()) / float64(trips) / 1e3
	if err := <-echoed; err != nil {
		return r, err
	}
	return r, nil
}

// relay sends back each of n bytes read from in on out.
func relay(in, out, n int) error {
	b := []byte{0}
	for i := range n {
		if k, err := syscall.Read(in, b); err != nil || k != 1 {
			return fmt.Errorf("echo %d: read %d: %v", i, k, err)
		}
		if _, err := syscall.Write(out, b); err != nil {
			return fmt.Errorf("echo %d: write: %w", i, err)
		}
	}
	return nil
}
