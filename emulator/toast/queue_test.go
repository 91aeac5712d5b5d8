package toast

import (
	"fmt"
	"strings"
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
	var mu sync.Mutex
	dropped := 0
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 50 {
				if _, ok := q.PushFor(fmt.Sprint(i), toastN(string(rune('a'+i)))); ok {
					mu.Lock()
					dropped++
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	// 8 apps of MaxWaitingPerApp waiting fill MaxWaiting: every push past
	// it dropped one.
	want := min(8*MaxWaitingPerApp, MaxWaiting)
	if got := q.Pending(); got != want || dropped != 8*50-1-want {
		t.Errorf("Pending() = %d and %d dropped after 400 pushes, want %d and %d", got, dropped, want, 8*50-1-want)
	}
	shown := 0
	for q.Dismiss() {
		shown++
	}
	if shown != want+1 {
		t.Errorf("dismissed %d toasts, want %d", shown, want+1)
	}
}

// TestAFloodingAppCannotHoldUpOtherAppsToasts: an unauthenticated sender
// may send 500 notifications a day to a Channel URI. Kept all, its toasts
// are 83 minutes of banners, with every other app's toast (and the
// queue's memory) behind them. The queue keeps MaxWaitingPerApp of an
// app's toasts waiting, its newest, dropping its oldest for each new one:
// another app's toast waits behind at most that many.
func TestAFloodingAppCannotHoldUpOtherAppsToasts(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	clock := &fakeClock{now: now}
	q := NewQueue(clock, 0)
	for i := range 500 {
		q.PushFor("com.example.spam", payload.Toast{Text1: "spam", Text2: fmt.Sprint(i)})
	}
	q.PushFor("com.example.mail", payload.Toast{Text1: "Ana", Text2: "lunch?"})
	if n := q.Pending(); n != MaxWaitingPerApp+1 {
		t.Fatalf("%d toasts wait behind the one on screen; the mail toast shows after %v; want %d waiting", n, time.Duration(n)*DefaultDuration, MaxWaitingPerApp+1)
	}
	// Spam 0 went on screen at once; of the others, the newest waited.
	var order []string
	for range MaxWaitingPerApp + 2 {
		_, tt, ok := q.Shown()
		if !ok {
			t.Fatal("the queue ran out early")
		}
		order = append(order, tt.Text2)
		clock.Advance(DefaultDuration)
	}
	if got, want := strings.Join(order, ","), "0,496,497,498,499,lunch?"; got != want {
		t.Errorf("shown in the order %s, want %s", got, want)
	}
}

// TestPushForReportsWhatItDrops: each toast pushed past an app's bound
// drops (and PushFor returns) that app's oldest waiting toast, never
// another app's, and a toast the phone has room for drops nothing.
func TestPushForReportsWhatItDrops(t *testing.T) {
	q := NewQueue(&fakeClock{now: time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)}, 0)
	q.PushFor("com.example.mail", payload.Toast{Text1: "Ana", Text2: "on screen"})
	q.PushFor("com.example.mail", payload.Toast{Text1: "Ana", Text2: "waiting"})
	var dropped []string
	for i := range 50 {
		d, ok := q.PushFor("com.example.spam", payload.Toast{Text1: "spam", Text2: fmt.Sprint(i)})
		switch {
		case i < MaxWaitingPerApp && ok:
			t.Fatalf("push %d dropped %+v; the app was within its bound", i, d)
		case i >= MaxWaitingPerApp && (!ok || d.Key != "com.example.spam" || !d.AppFull):
			t.Fatalf("push %d dropped %+v, %v; want a spam toast, for its app's bound", i, d, ok)
		case ok:
			dropped = append(dropped, d.Toast.Text2)
		}
	}
	want := make([]string, 0, 50-MaxWaitingPerApp)
	for i := range 50 - MaxWaitingPerApp {
		want = append(want, fmt.Sprint(i))
	}
	if got := strings.Join(dropped, ","); got != strings.Join(want, ",") {
		t.Errorf("dropped %s, want the oldest first: %s", got, strings.Join(want, ","))
	}
}

// TestAFullQueueDropsTheOldestOfTheAppWithTheMost: when MaxWaiting toasts
// of several apps wait, a new one (of any app) drops the oldest waiting
// toast of the app with the most waiting, the first to arrive among ties.
func TestAFullQueueDropsTheOldestOfTheAppWithTheMost(t *testing.T) {
	clock := &fakeClock{now: time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)}
	q := NewQueue(clock, 0)
	q.PushFor("screen", toastN("on screen"))
	// MaxWaiting/MaxWaitingPerApp apps fill the queue, MaxWaitingPerApp
	// toasts each, a0's first.
	apps := MaxWaiting / MaxWaitingPerApp
	for a := range apps {
		for i := range MaxWaitingPerApp {
			if d, ok := q.PushFor(fmt.Sprintf("a%d", a), toastN(fmt.Sprintf("a%d-%d", a, i))); ok {
				t.Fatalf("dropped %+v before the queue was full", d)
			}
		}
	}
	if n := q.Pending(); n != MaxWaiting {
		t.Fatalf("%d waiting, want %d", n, MaxWaiting)
	}
	// All apps tie: the first to arrive (a0) loses its oldest.
	d, ok := q.PushFor("new", toastN("new-0"))
	if !ok || d.Key != "a0" || d.Toast.Text1 != "a0-0" || d.AppFull {
		t.Fatalf("a new app's toast in a full queue dropped %+v, %v; want a0-0, for the phone's bound", d, ok)
	}
	// Now a1, a2, a3 have the most; a1's came first.
	d, ok = q.PushFor("a0", toastN("a0-4"))
	if !ok || d.Key != "a1" || d.Toast.Text1 != "a1-0" || d.AppFull {
		t.Fatalf("a0's toast in a full queue dropped %+v, %v; want a1-0", d, ok)
	}
	// A toast of an app at its own bound drops that app's oldest.
	d, ok = q.PushFor("a2", toastN("a2-4"))
	if !ok || d.Key != "a2" || d.Toast.Text1 != "a2-0" || !d.AppFull {
		t.Fatalf("a2's fifth toast dropped %+v, %v; want a2-0, for its app's bound", d, ok)
	}
	if n := q.Pending(); n != MaxWaiting {
		t.Fatalf("%d waiting, want %d", n, MaxWaiting)
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
