package load

import (
	"context"
	"time"
)

// A sleeper is one sender's own timer in open loop: sleep waits d (above
// 0) and says false if the feed ended first; close releases it.
type sleeper interface {
	sleep(d time.Duration) bool
	close()
}

// timerSleeper sleeps on a Go timer.
type timerSleeper struct {
	feed context.Context
	t    *time.Timer
}

func newTimerSleeper(feed context.Context) *timerSleeper { return &timerSleeper{feed: feed} }

func (s *timerSleeper) sleep(d time.Duration) bool {
	if s.t == nil {
		s.t = time.NewTimer(d)
	} else {
		s.t.Reset(d)
	}
	select {
	case <-s.t.C:
		return true
	case <-s.feed.Done():
		return false
	}
}

func (s *timerSleeper) close() {
	if s.t != nil {
		s.t.Stop()
	}
}
