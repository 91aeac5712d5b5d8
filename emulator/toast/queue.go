// Package toast is what a Windows Phone 8 does with toast notifications,
// without a screen: a Queue that shows one toast at a time for about ten
// seconds and keeps the others in order of arrival (a bounded number of
// them, and of each app's), and Line, what the
// banner's one line says of Text1 and Text2. It has no UI: the banner is
// emulator/ui/toastview's.
//
// The Queue is plain Go, safe for concurrent use, and reads time only from
// the Clock it is given, so it can be tested with a fake clock.
package toast

import (
	"slices"
	"sync"
	"time"

	"github.com/openmpns/openmpns/shared/payload"
)

// DefaultDuration is how long the phone shows a toast that is left alone.
const DefaultDuration = 10 * time.Second

// Bounds of the toasts waiting behind the one on screen. Each waits its
// turn of about ten seconds, and a stranger holding a Channel URI may send
// it 500 notifications a day: kept all, they are 83 minutes of banners with
// every other app's toasts behind them. Past a bound, PushFor drops a
// waiting toast of the app that has the most (Dropped): a flood drops its
// own toasts, never another app's.
const (
	// MaxWaiting is the most toasts waiting on one phone (one Queue):
	// at most about two and a half minutes of banners.
	MaxWaiting = 16
	// MaxWaitingPerApp is the most toasts of one app (one key) waiting:
	// a new one past it drops that app's oldest waiting toast.
	MaxWaitingPerApp = 4
)

// Clock tells the Queue the time.
type Clock interface {
	Now() time.Time
}

// ClockFunc adapts a function to Clock: ClockFunc(time.Now) is the system
// clock.
type ClockFunc func() time.Time

// Now calls f.
func (f ClockFunc) Now() time.Time { return f() }

// Queue holds the toasts waiting to be shown and the one on screen. A toast
// is shown from the moment the Queue hands it out (Current, or Push to an idle
// queue) for the Queue's duration, or until it is dismissed or tapped; then
// the next toast in order of arrival is shown, each for its full duration,
// however late the caller asks. The Queue has no timer: the UI asks
// Current when Deadline passes, and on Push.
type Queue struct {
	clock    Clock
	duration time.Duration

	mu      sync.Mutex
	pending []entry
	current entry
	showing bool
	until   time.Time
}

// NewQueue returns an empty queue that reads the time from clock (the system
// clock when nil) and shows each toast for show (DefaultDuration when 0 or
// less).
func NewQueue(clock Clock, show time.Duration) *Queue {
	if clock == nil {
		clock = ClockFunc(time.Now)
	}
	if show <= 0 {
		show = DefaultDuration
	}
	return &Queue{clock: clock, duration: show}
}

// Push adds t to the end of the queue; on an idle queue it is shown at once.
// It is PushFor with the key "": past MaxWaitingPerApp, the oldest waiting
// toast is dropped.
func (q *Queue) Push(t payload.Toast) { q.PushFor("", t) }

// entry is a queued toast and the key (the app) it belongs to.
type entry struct {
	key   string
	toast payload.Toast
}

// Dropped is a waiting toast that PushFor dropped, never shown, to keep the
// queue within its bounds.
type Dropped struct {
	// Key is the app it was pushed for.
	Key   string
	Toast payload.Toast
	// AppFull is true when Key had MaxWaitingPerApp toasts waiting (the
	// oldest made room for Key's new one), false when the phone had
	// MaxWaiting waiting and Key the most of them (its oldest made room).
	AppFull bool
}

// PushFor queues t for the app named key; Shown reports the key back. The
// new toast is always kept: when key already has MaxWaitingPerApp toasts
// waiting, key's oldest waiting toast is dropped; when MaxWaiting toasts
// wait, the oldest waiting toast of the app with the most waiting (the
// first to arrive among ties) is dropped. PushFor returns the toast it
// dropped, and true, or false when it dropped none.
func (q *Queue) PushFor(key string, t payload.Toast) (Dropped, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	now := q.clock.Now()
	q.advance(now) // the toast on screen whose time is up makes room first
	var d Dropped
	victim := -1
	if n := q.waiting(key); n >= MaxWaitingPerApp {
		victim, d.AppFull = q.oldest(key), true
	} else if len(q.pending) >= MaxWaiting {
		victim = q.oldest(q.flooding())
	}
	if victim >= 0 {
		d.Key, d.Toast = q.pending[victim].key, q.pending[victim].toast
		q.pending = slices.Delete(q.pending, victim, victim+1)
	}
	q.pending = append(q.pending, entry{key, t})
	q.advance(now)
	return d, victim >= 0
}

// waiting counts key's waiting toasts. q.mu is held.
func (q *Queue) waiting(key string) int {
	n := 0
	for _, e := range q.pending {
		if e.key == key {
			n++
		}
	}
	return n
}

// oldest returns the index of key's first waiting toast, -1 if none. q.mu
// is held.
func (q *Queue) oldest(key string) int {
	return slices.IndexFunc(q.pending, func(e entry) bool { return e.key == key })
}

// flooding returns the key with the most toasts waiting; among ties, the
// one whose oldest toast came first. q.mu is held and a toast is waiting.
func (q *Queue) flooding() string {
	counts := make(map[string]int, len(q.pending))
	for _, e := range q.pending {
		counts[e.key]++
	}
	best := q.pending[0].key
	for _, e := range q.pending {
		if counts[e.key] > counts[best] {
			best = e.key
		}
	}
	return best
}

// Current returns the toast on screen now and true, or false when none is.
// It is what the UI draws.
func (q *Queue) Current() (payload.Toast, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.advance(q.clock.Now())
	return q.current.toast, q.showing
}

// Shown returns the toast on screen with the key it was pushed for.
func (q *Queue) Shown() (key string, t payload.Toast, ok bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.advance(q.clock.Now())
	return q.current.key, q.current.toast, q.showing
}

// Deadline returns when the toast on screen goes away if left alone, and
// false when no toast is on screen. The UI schedules its next look at
// Current for then.
func (q *Queue) Deadline() (time.Time, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.advance(q.clock.Now())
	return q.until, q.showing
}

// Pending returns the number of toasts waiting behind the one on screen.
func (q *Queue) Pending() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.advance(q.clock.Now())
	return len(q.pending)
}

// Dismiss removes the toast on screen (the user flicked it away) and shows
// the next one. It reports whether there was a toast to dismiss.
func (q *Queue) Dismiss() bool {
	_, ok := q.take()
	return ok
}

// TapFor is Tap that also returns the key the toast was pushed for.
func (q *Queue) TapFor() (key, param string, ok bool) {
	e, ok := q.take()
	return e.key, e.toast.Param, ok
}

// Tap removes the toast on screen (the user tapped it, which opens the app)
// and shows the next one. It returns the toast's Param, the page the app
// opens at ("" for the app's main page), and false when no toast was on
// screen.
func (q *Queue) Tap() (param string, ok bool) {
	e, ok := q.take()
	return e.toast.Param, ok
}

func (q *Queue) take() (entry, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	now := q.clock.Now()
	q.advance(now)
	if !q.showing {
		return entry{}, false
	}
	e := q.current
	q.showing, q.current = false, entry{}
	q.advance(now)
	return e, true
}

// advance retires the toast on screen once its time is up and shows the next.
func (q *Queue) advance(now time.Time) {
	if q.showing && !now.Before(q.until) {
		q.showing, q.current = false, entry{}
	}
	if !q.showing && len(q.pending) > 0 {
		q.current, q.showing, q.until = q.pending[0], true, now.Add(q.duration)
		q.pending[0] = entry{}
		q.pending = q.pending[1:]
	}
}
