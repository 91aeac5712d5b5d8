package load

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"
)

// fakeSleeper sleeps on the test's clock: it moves the clock on by d.
type fakeSleeper struct {
	clock  *time.Duration
	slept  *[]time.Duration
	end    bool // the feed ends during the next sleep
	closed *int
}

func (s *fakeSleeper) sleep(d time.Duration) bool {
	if s.end {
		return false
	}
	*s.slept = append(*s.slept, d)
	*s.clock += d
	return true
}

func (s *fakeSleeper) close() { *s.closed++ }

// An open-loop sender takes each notification in turn, sleeps until it is
// due when it is early, and sends late (and counts it) one that fell due
// while it was sending; its first can never be late: it was not busy.
func TestTakePacesOnItsOwnTimerAndCountsLate(t *testing.T) {
	t0 := time.Date(2026, 12, 6, 9, 0, 0, 0, time.UTC)
	var clock time.Duration // since t0
	var slept []time.Duration
	closed := 0
	r := &run{cfg: Config{Count: 6}, start: t0, interval: 10 * time.Millisecond,
		until:      func(due time.Time) time.Duration { return due.Sub(t0.Add(clock)) },
		newSleeper: func(context.Context) sleeper { return &fakeSleeper{clock: &clock, slept: &slept, closed: &closed} }}
	// How long each send takes: the second outlasts the next two due times.
	service := []time.Duration{5, 25, 1, 1, 1, 1}
	var sentAt, dues []time.Duration
	r.take(context.Background(), nil, nil, func(j job) {
		if j.seq != uint64(len(sentAt)) {
			t.Fatalf("took %d after %d", j.seq, len(sentAt))
		}
		sentAt = append(sentAt, clock)
		dues = append(dues, j.due.Sub(t0))
		clock += service[j.seq] * time.Millisecond
	})
	ms := func(v ...time.Duration) []time.Duration { return inUnits(time.Millisecond, v) }
	if want := ms(0, 10, 20, 30, 40, 50); !slices.Equal(dues, want) {
		t.Errorf("due times %v, want %v", dues, want)
	}
	if want := ms(0, 10, 35, 36, 40, 50); !slices.Equal(sentAt, want) {
		t.Errorf("sent at %v, want %v", sentAt, want)
	}
	if want := ms(5, 3, 9); !slices.Equal(slept, want) {
		t.Errorf("slept %v, want %v", slept, want)
	}
	if r.late.Load() != 2 || closed != 1 {
		t.Errorf("late %d (want 2), sleeper closed %d times", r.late.Load(), closed)
	}

	// Behind from the start: the first is not late, the rest are.
	clock = time.Hour
	r = &run{cfg: Config{Count: 3}, start: t0, interval: time.Millisecond,
		until: func(due time.Time) time.Duration { return due.Sub(t0.Add(clock)) }}
	r.take(context.Background(), nil, nil, func(job) {})
	if r.late.Load() != 2 {
		t.Errorf("late %d, want 2", r.late.Load())
	}
}

// Above 1,000/s a sender sleeps until the end of the millisecond its
// notification falls due in, so the notifications due within one
// millisecond are woken together; each keeps its own due time.
func TestTakeWakesOnTheMillisecond(t *testing.T) {
	t0 := time.Date(2026, 12, 6, 9, 0, 0, 0, time.UTC)
	var clock time.Duration
	var slept []time.Duration
	closed := 0
	r := &run{cfg: Config{Count: 6}, start: t0, interval: 400 * time.Microsecond, grid: time.Millisecond,
		until:      func(due time.Time) time.Duration { return due.Sub(t0.Add(clock)) },
		newSleeper: func(context.Context) sleeper { return &fakeSleeper{clock: &clock, slept: &slept, closed: &closed} }}
	var sentAt, dues []time.Duration
	r.take(context.Background(), nil, nil, func(j job) {
		sentAt = append(sentAt, clock)
		dues = append(dues, j.due.Sub(t0))
	})
	us := func(v ...time.Duration) []time.Duration { return inUnits(time.Microsecond, v) }
	if want := us(0, 400, 800, 1200, 1600, 2000); !slices.Equal(dues, want) {
		t.Errorf("due times %v, want %v", dues, want)
	}
	if want := us(0, 1000, 1000, 2000, 2000, 2000); !slices.Equal(sentAt, want) {
		t.Errorf("sent at %v, want %v", sentAt, want)
	}
	if want := us(1000, 1000); !slices.Equal(slept, want) || r.late.Load() != 0 {
		t.Errorf("slept %v (want %v), %d late", slept, want, r.late.Load())
	}
}

// inUnits returns v, each of its numbers multiplied by unit (in place).
func inUnits(unit time.Duration, v []time.Duration) []time.Duration {
	for i := range v {
		v[i] *= unit
	}
	return v
}

func TestPacing(t *testing.T) {
	for _, c := range []struct {
		rate           float64
		interval, grid time.Duration
	}{{10, 100 * time.Millisecond, 0}, {1000, time.Millisecond, 0}, {2500, 400 * time.Microsecond, time.Millisecond}} {
		if i, g := pacing(c.rate); i != c.interval || g != c.grid {
			t.Errorf("pacing(%v) = %v, %v; want %v, %v", c.rate, i, g, c.interval, c.grid)
		}
	}
}

// A sleeping sender whose feed ends stops without sending.
func TestTakeStopsWhenTheFeedEndsDuringASleep(t *testing.T) {
	var clock time.Duration
	var slept []time.Duration
	closed := 0
	t0 := time.Unix(0, 0)
	r := &run{cfg: Config{Count: 10}, start: t0, interval: time.Second,
		until: func(due time.Time) time.Duration { return due.Sub(t0.Add(clock)) },
		newSleeper: func(context.Context) sleeper {
			return &fakeSleeper{clock: &clock, slept: &slept, end: true, closed: &closed}
		}}
	sent := 0
	r.take(context.Background(), nil, nil, func(job) { sent++ })
	if sent != 1 || closed != 1 {
		t.Fatalf("sent %d (want the first only), sleeper closed %d times", sent, closed)
	}
}

// Closed loop: senders take numbers until Count, each exactly once, or
// until the feed ends.
func TestTakeClosedLoop(t *testing.T) {
	r := &run{cfg: Config{Count: 1000}}
	var mu sync.Mutex
	seen := map[uint64]int{}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			r.take(context.Background(), nil, nil, func(j job) {
				mu.Lock()
				seen[j.seq]++
				mu.Unlock()
			})
		})
	}
	wg.Wait()
	if len(seen) != 1000 {
		t.Fatalf("%d numbers taken, want 1000", len(seen))
	}
	for seq, n := range seen {
		if seq >= 1000 || n != 1 {
			t.Fatalf("number %d taken %d times", seq, n)
		}
	}

	feed, cancel := context.WithCancel(context.Background())
	defer cancel()
	r = &run{} // no Count: until the feed ends
	sent := 0
	r.take(feed, nil, nil, func(j job) {
		if sent++; j.seq == 10 {
			cancel()
		}
	})
	if sent != 11 {
		t.Fatalf("sent %d after the feed ended at the 11th", sent)
	}
}

// Each sleeper sleeps, and ends a sleep under way, and every later one,
// when its feed ends.
func TestSleepersEndWithTheFeed(t *testing.T) {
	for name, mk := range map[string]func(context.Context) sleeper{
		"default": newSleeper, "timer": func(ctx context.Context) sleeper { return newTimerSleeper(ctx) }} {
		t.Run(name, func(t *testing.T) {
			feed, cancel := context.WithCancel(context.Background())
			defer cancel()
			s := mk(feed)
			defer s.close()
			for range 3 {
				if !s.sleep(time.Microsecond) {
					t.Fatal("a short sleep ended early")
				}
			}
			done := make(chan bool)
			go func() { done <- s.sleep(time.Hour) }()
			cancel()
			if <-done {
				t.Fatal("a sleep went on after its feed ended")
			}
			if s.sleep(time.Hour) {
				t.Fatal("a sleep after its feed ended")
			}
		})
	}
}
