package procs

import (
	"errors"
	"flag"
	"math"
	"os"
	"runtime"
	"runtime/metrics"
	"sync"
	"testing"
	"time"

	"github.com/openmpns/openmpns/shared/clock"
)

// rig is an adapter on a fake clock and a fake CPU: the test says how
// busy the process is during each interval, and sees every move.
type rig struct {
	t    *testing.T
	clk  *clock.Fake
	cpu  time.Duration
	wait time.Duration
	// byDefault is what the runtime's default is, for SetProcs(0).
	byDefault int
	moves     []int
	a         *adapter
}

func newRig(t *testing.T, cfg Config) *rig {
	t.Helper()
	r := &rig{t: t, clk: clock.NewFake(time.Unix(1e9, 0))}
	cfg.Clock = r.clk
	cfg.CPU = func() (time.Duration, error) { return r.cpu, nil }
	cfg.Waiting = func() time.Duration { return r.wait }
	cfg.SetProcs = func(n int) int {
		r.moves = append(r.moves, n)
		if n == 0 {
			return r.byDefault // the runtime's default
		}
		return n
	}
	if cfg.Max == 0 {
		cfg.Max = 4
	}
	a, err := newAdapter(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if a.byDefault {
		a.max, a.procs = 4, 4 // whatever this test process runs on (go test -cpu 1, say)
	}
	r.a = a
	a.start()
	return r
}

// busy runs the clock through n intervals at use cores.
func (r *rig) busy(use float64, n int) {
	for range n {
		r.cpu += time.Duration(use * float64(r.a.interval))
		r.clk.Advance(r.a.interval)
	}
}

func (r *rig) wantMoves(want ...int) {
	r.t.Helper()
	if len(r.moves) != len(want) {
		r.t.Fatalf("moves %v, want %v", r.moves, want)
	}
	for i := range want {
		if r.moves[i] != want[i] {
			r.t.Fatalf("moves %v, want %v", r.moves, want)
		}
	}
}

func TestQuietProcessComesDownAfterDownAfter(t *testing.T) {
	r := newRig(t, Config{}) // 100 ms readings, down after 2 s under 0.25 cores
	r.busy(0.9, 30)
	r.wantMoves() // busy: stays on 4
	r.busy(0.1, 19)
	r.wantMoves() // quiet for 1.9 s
	r.busy(0.1, 1)
	r.wantMoves(1) // quiet for 2 s
	r.busy(0.1, 50)
	r.wantMoves(1)
}

func TestOneBusyReadingBringsTheProcessorsBack(t *testing.T) {
	r := newRig(t, Config{})
	r.busy(0, 20)
	r.wantMoves(1)
	r.busy(0.49, 10)
	r.wantMoves(1) // under Up
	r.busy(0.5, 1)
	r.wantMoves(1, 4)
}

func TestGoroutinesWaitingForTheOneProcessorBringTheOthersBack(t *testing.T) {
	// A busy host gives the one processor a third of a core, under Up,
	// while the work queues behind it.
	r := newRig(t, Config{})
	r.busy(0, 20)
	r.wantMoves(1)
	r.wait += 40 * time.Millisecond // 0.4 goroutines waiting over 100 ms
	r.busy(0.33, 1)
	r.wantMoves(1)
	r.wait += 50 * time.Millisecond
	r.busy(0.33, 1)
	r.wantMoves(1, 4)
}

func TestSetProcsRestoresTheRuntimesDefault(t *testing.T) {
	if os.Getenv("GOMAXPROCS") != "" || flag.Lookup("test.cpu").Value.String() != "" {
		t.Skip("GOMAXPROCS or -cpu is set: the runtime's default is not what this process runs on")
	}
	before := runtime.GOMAXPROCS(0)
	setProcs(1)
	if n := setProcs(0); n != before || runtime.GOMAXPROCS(0) != before {
		t.Fatalf("back to the default: %d, GOMAXPROCS %d, want %d", n, runtime.GOMAXPROCS(0), before)
	}
}

func TestWaitingOfCountsEachBucketAtItsMiddle(t *testing.T) {
	h := &metrics.Float64Histogram{
		Buckets: []float64{math.Inf(-1), 0, 1e-6, 3e-6, 1e-3, math.Inf(1)},
		Counts:  []uint64{5, 10, 2, 0, 3},
	}
	// 5 at 0 (open below), 10 at 0.5 µs, 2 at 2 µs, 3 at 1 ms (open above).
	want := 10*0.5e-6 + 2*2e-6 + 3*1e-3
	if got := waitingOf(h); math.Abs(got-want) > 1e-12 {
		t.Fatalf("waitingOf = %g, want %g", got, want)
	}
	// The runtime samples one scheduling in eight: what the sample stands for.
	if got, want := waited(h), time.Duration(8*want*1e9); got < want-time.Nanosecond || got > want+time.Nanosecond {
		t.Fatalf("waited = %v, want %v", got, want)
	}
}

func TestSchedWaitingMeasuresGoroutinesWaiting(t *testing.T) {
	// Three goroutines that only yield, on one processor: while one runs
	// two wait, and while the scheduler switches all three do, so two to
	// three wait on average. The runtime samples one transition in eight;
	// newSchedWaiting scales it back (unscaled, this is about 0.37). The upper
	// bound is loose: on a loaded host a stall of the thread counts for
	// each goroutine waiting through it, and with one transition in eight
	// sampled a few long stalls weigh heavily (11 was seen beside a build).
	//
	// On a host so busy that the thread stalls, the stalls that fall on
	// unsampled waits go unseen and a reading can come out low (0.8 was
	// seen with six busy loops beside it): up to three tries.
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	w := newSchedWaiting()
	var readings []float64
	for range 3 {
		w0, t0 := w(), time.Now()
		var wg sync.WaitGroup
		for range 3 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range 100000 {
					runtime.Gosched()
				}
			}()
		}
		wg.Wait()
		waiting := float64(w()-w0) / float64(time.Since(t0))
		if waiting >= 1.5 && waiting <= 30 {
			t.Logf("%.2f goroutines waiting on average", waiting)
			return
		}
		readings = append(readings, waiting)
	}
	t.Fatalf("goroutines waiting on average: %.2f, want about two to three", readings)
}

func TestSchedWaitingGrows(t *testing.T) {
	// Real scheduling latencies: goroutines made runnable by the hundred.
	w := newSchedWaiting()
	before := w()
	for range 100 {
		done := make(chan struct{})
		go func() { close(done) }()
		<-done
	}
	if after := w(); after <= before {
		t.Fatalf("the time waited went from %v to %v over 100 goroutines", before, after)
	}
}

func TestALoadThatComesAndGoesWaitsLongerToComeDown(t *testing.T) {
	r := newRig(t, Config{MaxDownAfter: 6 * time.Second})
	r.busy(0, 20)
	r.wantMoves(1) // down after 2 s
	r.busy(0.9, 1)
	r.wantMoves(1, 4) // up within a minute of coming down: 4 s next time
	r.busy(0, 39)
	r.wantMoves(1, 4)
	r.busy(0, 1)
	r.wantMoves(1, 4, 1)
	r.busy(0.9, 1)
	r.busy(0, 59) // 6 s, the most
	r.wantMoves(1, 4, 1, 4)
	r.busy(0, 1)
	r.wantMoves(1, 4, 1, 4, 1)
	r.busy(0, 600) // settled on one processor for a minute
	r.busy(0.9, 1)
	r.busy(0, 20) // 2 s again
	r.wantMoves(1, 4, 1, 4, 1, 4, 1)
}

func TestALoadBetweenDownAndUpDoesNotFlap(t *testing.T) {
	r := newRig(t, Config{})
	r.busy(0.4, 100) // on 4: above Down, stays
	r.wantMoves()
	r.busy(0.1, 20)
	r.wantMoves(1)
	r.busy(0.4, 100) // on 1: under Up, stays
	r.wantMoves(1)
}

func TestABusyReadingRestartsTheQuietTime(t *testing.T) {
	r := newRig(t, Config{})
	r.busy(0.1, 15)
	r.busy(0.3, 1) // above Down: the 1.5 quiet seconds no longer count
	r.busy(0.1, 19)
	r.wantMoves()
	r.busy(0.1, 1)
	r.wantMoves(1)
}

func TestStopLeavesMaxProcessorsAndNoTimer(t *testing.T) {
	r := newRig(t, Config{})
	r.busy(0, 20)
	r.wantMoves(1)
	r.a.stop()
	r.wantMoves(1, 4)
	if n := r.clk.Pending(); n != 0 {
		t.Fatalf("%d timers left after stop", n)
	}
	r.busy(1, 10)
	r.wantMoves(1, 4)
}

func TestOnTheRuntimesDefaultItGoesUpToTheDefault(t *testing.T) {
	// Max 0: up is the runtime's default (n 0), read again each time:
	// a container's CPU limit may have changed it.
	r := newRig(t, Config{Max: -1})
	r.byDefault = 3
	r.busy(0, 20)
	r.wantMoves(1)
	r.busy(0.9, 1)
	r.wantMoves(1, 0)
	if r.a.procs != 3 || r.a.max != 3 {
		t.Fatalf("on %d processors, max %d, after going up to a default of 3", r.a.procs, r.a.max)
	}
	r.busy(0, 40)
	r.wantMoves(1, 0, 1)
	r.byDefault = 2
	r.a.stop()
	r.wantMoves(1, 0, 1, 0)
	if r.a.procs != 2 {
		t.Fatalf("on %d processors after stop, want the default, 2", r.a.procs)
	}
}

// handClock is a clock whose one timer the test fires by hand, and whose
// Stop fails, as a timer's does once its function has begun.
type handClock struct {
	now time.Time
	f   func()
	n   int // timers armed
}

func (c *handClock) Now() time.Time { return c.now }
func (c *handClock) AfterFunc(d time.Duration, f func()) clock.Timer {
	c.f = f
	c.n++
	return handTimer{}
}

type handTimer struct{}

func (handTimer) Stop() bool { return false }

func TestAReadingThatRunsAfterStopDoesNothing(t *testing.T) {
	// The timer fired, and its reading waits for the lock stop holds.
	c := &handClock{now: time.Unix(1e9, 0)}
	moves := 0
	a, err := newAdapter(Config{Max: 2, Clock: c, CPU: func() (time.Duration, error) { return 0, nil },
		Waiting: func() time.Duration { return 0 }, SetProcs: func(n int) int { moves++; return n }})
	if err != nil {
		t.Fatal(err)
	}
	a.start()
	a.stop()
	c.now = c.now.Add(time.Hour) // quiet for an hour: a reading would move it down
	c.f()
	if moves != 0 || c.n != 1 {
		t.Fatalf("a reading after stop made %d moves and armed %d more timers", moves, c.n-1)
	}
}

func TestAFailedReadingIsSkipped(t *testing.T) {
	// A reading whose CPU time cannot be read moves nothing, and the next
	// ones go on: the quiet time is counted from the last good one.
	r := newRig(t, Config{})
	fail := true
	r.a.cpu = func() (time.Duration, error) {
		if fail {
			return 0, errors.New("no rusage")
		}
		return r.cpu, nil
	}
	r.busy(0, 5)
	r.wantMoves()
	fail = false
	r.busy(0, 20)
	r.wantMoves(1)
}

func TestADefaultOfOneProcessorIsNoMove(t *testing.T) {
	// The runtime's default became one processor (a container's limit):
	// going up is no move, and does not lengthen the wait to come down.
	r := newRig(t, Config{Max: -1})
	r.byDefault = 2
	r.busy(0, 20)
	r.wantMoves(1)
	r.byDefault = 1
	r.busy(0.9, 3)
	if r.a.procs != 1 || r.a.hold != r.a.downAfter {
		t.Fatalf("on %d processors, wait to come down %v, after going up to a default of 1", r.a.procs, r.a.hold)
	}
}

func TestStopOnMaxMovesNothing(t *testing.T) {
	r := newRig(t, Config{})
	r.busy(1, 5)
	r.a.stop()
	r.wantMoves()
}

func TestConfigErrors(t *testing.T) {
	bad := errors.New("no rusage")
	_, err := newAdapter(Config{CPU: func() (time.Duration, error) { return 0, bad }})
	if !errors.Is(err, bad) {
		t.Fatalf("CPU error: got %v", err)
	}
	if _, err = Start(Config{Max: 2, CPU: func() (time.Duration, error) { return 0, bad }}); !errors.Is(err, bad) {
		t.Fatalf("Start: got %v", err)
	}
	stop, err := Start(Config{Max: 2}) // the failed Start left nothing running
	if err != nil {
		t.Fatal(err)
	}
	stop()
	if _, err = newAdapter(Config{Up: 0.2, Down: 0.3}); err == nil {
		t.Fatal("Down above Up accepted")
	}
	if _, err = newAdapter(Config{DownAfter: 5 * time.Second, MaxDownAfter: 3 * time.Second}); err == nil {
		t.Fatal("MaxDownAfter below DownAfter accepted")
	}
}

func TestOnOneProcessorThereIsNothingToDo(t *testing.T) {
	set := 0
	clk := clock.NewFake(time.Unix(1e9, 0))
	stop, err := Start(Config{Max: 1, Clock: clk, SetProcs: func(n int) int { set++; return n }})
	if err != nil {
		t.Fatal(err)
	}
	if n := clk.Pending(); n != 0 {
		t.Fatalf("%d readings armed on one processor", n)
	}
	stop()
	if set != 0 {
		t.Fatalf("%d moves on one processor", set)
	}
}

// TestStartMovesTheRuntime runs the real thing on this process: the
// system clock, getrusage, the scheduler's latencies and
// runtime.GOMAXPROCS. A test process waiting on a channel is quiet, so it
// comes down to one processor; after stop it is back on all of them.
func TestStartMovesTheRuntime(t *testing.T) {
	max := runtime.GOMAXPROCS(0)
	if max < 2 {
		t.Skip("one processor: nothing to adapt")
	}
	moved := make(chan int, 1)
	stop, err := Start(Config{
		Max: max, Interval: time.Millisecond, DownAfter: 5 * time.Millisecond, Down: 0.9, Up: 1.9,
		Waiting: func() time.Duration { return 0 }, // a busy host does not bring it back up
		SetProcs: func(n int) int {
			n = setProcs(n)
			select {
			case moved <- n:
			default:
			}
			return n
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if n := <-moved; n != 1 {
		t.Fatalf("first move to %d processors, want 1", n)
	}
	if n := runtime.GOMAXPROCS(0); n != 1 {
		t.Fatalf("GOMAXPROCS %d after the move to 1", n)
	}
	if _, err := Start(Config{}); !errors.Is(err, ErrRunning) {
		t.Fatalf("a second Start at once: %v, want ErrRunning", err)
	}
	stop()
	stop() // once is enough; twice does no harm
	if n := runtime.GOMAXPROCS(0); n != max {
		t.Fatalf("GOMAXPROCS %d after stop, want %d", n, max)
	}
	stop, err = Start(Config{}) // stopped: another may start
	if err != nil {
		t.Fatal(err)
	}
	stop()
}
