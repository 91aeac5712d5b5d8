package toast

import (
	"sync"
	"testing"
	"time"

	"github.com/openmpns/openmpns/shared/payload"
)

// fakeClock is a Clock the test moves by hand.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func toastN(n string) payload.Toast { return payload.Toast{Text1: n, Param: "/Page.xaml?n=" + n} }

// step is one thing done to the queue, then what should be on screen.
type step struct {
	advance time.Duration
	push    string // push toastN(push) when not ""
	dismiss bool
	tap     bool

	wantOK      bool   // result of Dismiss or Tap
	wantParam   string // result of Tap
	wantCurrent string // Text1 on screen, "" for none
	wantPending int
}

func TestQueue(t *testing.T) {
	tests := []struct {
		name  string
		steps []step
	}{
		{"empty queue shows nothing", []step{
			{wantCurrent: ""},
			{advance: time.Hour, wantCurrent: ""},
		}},
		{"push to an idle queue shows at once", []step{
			{push: "a", wantCurrent: "a"},
		}},
		{"a toast stays about ten seconds", []step{
			{push: "a", wantCurrent: "a"},
			{advance: 9999 * time.Millisecond, wantCurrent: "a"},
			{advance: time.Millisecond, wantCurrent: ""},
		}},
		{"one at a time, in order of arrival", []step{
			{push: "a", wantCurrent: "a"},
			{push: "b", wantCurrent: "a", wantPending: 1},
			{push: "c", wantCurrent: "a", wantPending: 2},
			{advance: 10 * time.Second, wantCurrent: "b", wantPending: 1},
			{advance: 10 * time.Second, wantCurrent: "c"},
			{advance: 10 * time.Second, wantCurrent: ""},
		}},
		{"a late look still shows the next toast in full", []step{
			{push: "a", wantCurrent: "a"}, {push: "b", wantCurrent: "a", wantPending: 1},
			{advance: 25 * time.Second, wantCurrent: "b"},
			{advance: 9 * time.Second, wantCurrent: "b"},
			{advance: time.Second, wantCurrent: ""},
		}},
		{"dismiss shows the next", []step{
			{push: "a", wantCurrent: "a"}, {push: "b", wantCurrent: "a", wantPending: 1},
			{advance: 3 * time.Second, dismiss: true, wantOK: true, wantCurrent: "b"},
			{advance: 9 * time.Second, wantCurrent: "b"}, // b got its full time from the dismissal
			{advance: time.Second, wantCurrent: ""},
		}},
		{"dismiss with nothing on screen", []step{
			{dismiss: true, wantOK: false, wantCurrent: ""},
		}},
		{"dismiss after expiry finds nothing", []step{
			{push: "a", wantCurrent: "a"},
			{advance: 10 * time.Second, dismiss: true, wantOK: false, wantCurrent: ""},
		}},
		{"tap returns the param and shows the next", []step{
			{push: "a", wantCurrent: "a"}, {push: "b", wantCurrent: "a", wantPending: 1},
			{tap: true, wantOK: true, wantParam: "/Page.xaml?n=a", wantCurrent: "b"},
			{tap: true, wantOK: true, wantParam: "/Page.xaml?n=b", wantCurrent: ""},
			{tap: true, wantOK: false, wantParam: "", wantCurrent: ""},
		}},
		{"push after idle starts a fresh ten seconds", []step{
			{push: "a", wantCurrent: "a"},
			{advance: time.Minute, wantCurrent: ""},
			{push: "b", wantCurrent: "b"},
			{advance: 9 * time.Second, wantCurrent: "b"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := &fakeClock{now: time.Date(2013, 5, 1, 9, 0, 0, 0, time.UTC)}
			q := NewQueue(clock, 0)
			for i, s := range tt.steps {
				clock.Advance(s.advance)
				if s.push != "" {
					q.Push(toastN(s.push))
				}
				if s.dismiss {
					if ok := q.Dismiss(); ok != s.wantOK {
						t.Errorf("step %d: Dismiss() = %v, want %v", i, ok, s.wantOK)
					}
				}
				if s.tap {
					param, ok := q.Tap()
					if param != s.wantParam || ok != s.wantOK {
						t.Errorf("step %d: Tap() = %q, %v; want %q, %v", i, param, ok, s.wantParam, s.wantOK)
					}
				}
				cur, ok := q.Current()
				if ok != (s.wantCurrent != "") || cur.Text1 != s.wantCurrent {
					t.Errorf("step %d: Current() = %q, %v; want %q", i, cur.Text1, ok, s.wantCurrent)
				}
				if got := q.Pending(); got != s.wantPending {
					t.Errorf("step %d: Pending() = %d, want %d", i, got, s.wantPending)
				}
			}
		})
	}
}

func TestQueueDeadline(t *testing.T) {
	start := time.Date(2013, 5, 1, 9, 0, 0, 0, time.UTC)
	clock := &fakeClock{now: start}
	q := NewQueue(clock, 4*time.Second)
	if _, ok := q.Deadline(); ok {
		t.Error("Deadline() on an empty queue reports a toast")
	}
	q.Push(toastN("a"))
	q.Push(toastN("b"))
	if d, ok := q.Deadline(); !ok || !d.Equal(start.Add(4*time.Second)) {
		t.Errorf("Deadline() = %v, %v; want %v", d, ok, start.Add(4*time.Second))
	}
	clock.Advance(5 * time.Second)
	if d, ok := q.Deadline(); !ok || !d.Equal(start.Add(9*time.Second)) {
		t.Errorf("Deadline() for the second toast = %v, %v; want %v", d, ok, start.Add(9*time.Second))
	}
}

func TestQueueConcurrentPush(t *testing.T) {
	clock := &fakeClock{now: time.Unix(0, 0)}
	q := NewQueue(clock, time.Second)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 50 {
				q.Push(toastN(string(rune('a' + i))))
			}
		}()
	}
	wg.Wait()
	if got := q.Pending(); got != 8*50-1 {
		t.Errorf("Pending() = %d after 400 pushes, want 399", got)
	}
	shown := 0
	for q.Dismiss() {
		shown++
	}
	if shown != 400 {
		t.Errorf("dismissed %d toasts, want 400", shown)
	}
}

func TestNewQueueDefaults(t *testing.T) {
	q := NewQueue(nil, -1)
	if q.duration != DefaultDuration {
		t.Errorf("duration %v, want DefaultDuration", q.duration)
	}
	before := time.Now()
	q.Push(toastN("a"))
	d, ok := q.Deadline()
	if !ok || d.Before(before.Add(DefaultDuration)) {
		t.Errorf("system clock: Deadline() = %v, %v; want at least %v", d, ok, before.Add(DefaultDuration))
	}
}
