package load

import (
	"context"
	"errors"
	"io"
	"os"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/openmpns/openmpns/shared/rawsock"
)

// fdSleeper is a sleeper on a timerfd read through the runtime's network
// poller: the sender wakes where the poller finds it, on the thread that
// polled. A Go timer's expiry instead readies the goroutine from the
// timer code, which wakes a second thread to look for work
// (runtime.wakep) that finds none and sleeps again: two more thread
// wake-ups per paced send (docs/benchmarks.md, issue 10, session 7). A
// timerfd also fires at the nanosecond it is set to; the runtime polls
// with a timeout in whole milliseconds, so a Go timer fires up to a
// millisecond late.
type fdSleeper struct {
	fd   int
	f    *os.File
	rd   io.Reader // f through raw system calls (rawsock)
	stop func() bool
	spec unix.ItimerSpec
	buf  [8]byte
	// slow sleeps on a Go timer if the timerfd fails (it should not).
	slow *timerSleeper
}

// newSleeper returns a sleeper whose sleeps end, false, when feed ends.
func newSleeper(feed context.Context) sleeper {
	slow := newTimerSleeper(feed)
	fd, err := unix.TimerfdCreate(unix.CLOCK_MONOTONIC, unix.TFD_NONBLOCK|unix.TFD_CLOEXEC)
	if err != nil {
		return slow
	}
	f := os.NewFile(uintptr(fd), "timerfd")
	s := &fdSleeper{fd: fd, f: f, rd: rawsock.ReadWriter(f), slow: slow}
	// A read deadline in the past ends the read under way and every later one.
	s.stop = context.AfterFunc(feed, func() { s.f.SetReadDeadline(time.Unix(1, 0)) })
	return s
}

func (s *fdSleeper) sleep(d time.Duration) bool {
	// timerfd_settime, raw as rawsock's calls are: it does not block.
	s.spec.Value = unix.NsecToTimespec(int64(d))
	if _, _, e := unix.RawSyscall6(unix.SYS_TIMERFD_SETTIME, uintptr(s.fd), 0, uintptr(unsafe.Pointer(&s.spec)), 0, 0, 0); e != 0 {
		return s.slow.sleep(d)
	}
	if _, err := s.rd.Read(s.buf[:]); err != nil {
		if errors.Is(err, os.ErrDeadlineExceeded) || s.slow.feed.Err() != nil {
			return false
		}
		return s.slow.sleep(d) // not expected: the timerfd broke; sleep on
	}
	return true
}

func (s *fdSleeper) close() {
	s.stop()
	s.f.Close()
	s.slow.close()
}
