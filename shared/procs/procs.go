// Package procs runs a Go process on one processor (GOMAXPROCS 1) while it
// is lightly loaded, and on all of its processors under load.
//
// A server readies a goroutine or two per message: a connection's reader
// woken by the network poller, a push woken by its acknowledgement. While
// a processor is idle, each of those makes the runtime wake a thread to
// look for work, which usually finds none and sleeps again (a futex call
// and two context switches). At a steady 1,000 notifications a second that
// was a third of the server's CPU (docs/benchmarks.md, issue 10); on one
// processor there is no idle processor to wake a thread for. Under load
// the processors are busy, those wake-ups are rare, and the second
// processor is worth having. Start reads the process's CPU time every
// Interval and moves between the two.
package procs

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"runtime"
	"runtime/metrics"
	"sync"
	"sync/atomic"
	"time"

	"github.com/openmpns/openmpns/shared/clock"
	"github.com/openmpns/openmpns/shared/proccpu"
)

// Defaults of Config.
const (
	DefaultInterval  = 100 * time.Millisecond
	DefaultUp        = 0.5
	DefaultDown      = 0.25
	DefaultDownAfter = 2 * time.Second

	DefaultMaxDownAfter = time.Minute
)

// settled is how long a process stays on one processor before its wait
// to come down is DownAfter again.
const settled = time.Minute

// Config says when to move. The zero value is the defaults, for the
// running process.
type Config struct {
	// Max is the processors under load, which must be those the process
	// runs on at Start (stop leaves it there). Zero (the default) is the runtime's own choice: the process
	// goes up with runtime.SetDefaultGOMAXPROCS, which also turns Go's
	// updates of it (a container's CPU limit that changes) back on while
	// the process is under load. That choice ignores a GOMAXPROCS in the
	// environment: give Max where there is one. With Max 1 there is
	// nothing to adapt.
	Max int
	// Interval is how often the process's CPU time is read (default
	// DefaultInterval). A load that grows waits one or two intervals for
	// the other processors: the first reading may take in a quiet part.
	Interval time.Duration
	// Up is the CPU use, in cores over one Interval, at which a process on
	// one processor goes to Max (default DefaultUp). Below a core, so that
	// the one processor is never the bottleneck for long: at half a core
	// a goroutine made runnable already waits, on average, as long as one
	// runs.
	Up float64
	// Down is the CPU use, in cores, under which a process on Max
	// processors goes back to one once it has stayed under it for
	// DownAfter (defaults DefaultDown and DefaultDownAfter). Below Up, and
	// the process uses less CPU on one processor than on several for the
	// same work, so a load between the two does not flap. A process that
	// has to go up again within a minute of coming down (a load that
	// comes and goes, a host whose other processes take the cores in
	// spells) waits twice as long to come down the next time, up to
	// MaxDownAfter (default DefaultMaxDownAfter); once it stays down for
	// a minute, the wait is DownAfter again.
	Down         float64
	DownAfter    time.Duration
	MaxDownAfter time.Duration
	// Clock runs the readings (default clock.System).
	Clock clock.Clock
	// CPU is the process's CPU time so far (default proccpu.Time).
	CPU func() (time.Duration, error)
	// Waiting is the time goroutines have spent runnable, waiting for a
	// processor, so far (default: from the runtime's scheduling
	// latencies). On a host whose cores other processes keep busy, one
	// processor may get less than Up cores however much work waits for
	// it: a process on one processor whose goroutines spent half the last
	// interval waiting, summed, goes to Max too.
	Waiting func() time.Duration
	// SetProcs sets the processors to n, or to the runtime's default for
	// n 0, and returns how many the process now runs on (default:
	// runtime.GOMAXPROCS or runtime.SetDefaultGOMAXPROCS, which stop the
	// world for a moment; called only on a move).
	SetProcs func(n int) int
	// Logger gets a debug line at each move (default: none).
	Logger *slog.Logger
}

// ErrRunning is Start's error while another Start adapts the process.
var ErrRunning = errors.New("procs: the processors are adapted already (one at a time in a process)")

// running is whether the process is adapted: by one adapter at a time, or
// each would take the other's moves for its Max.
var running atomic.Bool

// Start adapts the processors until stop is called; stop leaves the
// process on Max processors. Start returns an error, and changes nothing,
// where the process's CPU time cannot be read, or (ErrRunning) while
// another Start's adapter runs. The readings run on the clock's timers:
// Start leaves no goroutine of its own.
func Start(cfg Config) (stop func(), err error) {
	if !running.CompareAndSwap(false, true) {
		return nil, ErrRunning
	}
	a, err := newAdapter(cfg)
	if err != nil {
		running.Store(false)
		return nil, err
	}
	if a.max > 1 {
		a.start()
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			a.stop()
			running.Store(false)
		})
	}, nil
}

// adapter is Start's state: the readings run on the clock's timers, one at
// a time (mu), each arming the next.
type adapter struct {
	interval, downAfter, maxDownAfter time.Duration
	up, down                          float64
	max                               int  // the processors under load
	byDefault                         bool // max is the runtime's default
	clk                               clock.Clock
	cpu                               func() (time.Duration, error)
	waiting                           func() time.Duration
	set                               func(int) int
	log                               *slog.Logger

	mu       sync.Mutex
	stopped  bool
	timer    clock.Timer
	procs    int           // what the process runs on now
	lastAt   time.Time     // the last reading
	lastCPU  time.Duration // the CPU time it read
	lastWait time.Duration // and the time goroutines had waited
	lowSince time.Time     // on max processors: when the use went under down (zero: it is not)
	hold     time.Duration // how long the use stays under down before the process comes down
	downAt   time.Time     // when it last came down
}

func newAdapter(cfg Config) (*adapter, error) {
	a := &adapter{
		interval: cfg.Interval, downAfter: cfg.DownAfter, maxDownAfter: cfg.MaxDownAfter, up: cfg.Up, down: cfg.Down,
		max: cfg.Max, clk: cfg.Clock, cpu: cfg.CPU, waiting: cfg.Waiting, set: cfg.SetProcs, log: cfg.Logger,
	}
	if a.interval <= 0 {
		a.interval = DefaultInterval
	}
	if a.downAfter <= 0 {
		a.downAfter = DefaultDownAfter
	}
	switch {
	case a.maxDownAfter == 0:
		a.maxDownAfter = max(a.downAfter, DefaultMaxDownAfter)
	case a.maxDownAfter < a.downAfter:
		return nil, fmt.Errorf("procs: MaxDownAfter (%v) must not be below DownAfter (%v)", a.maxDownAfter, a.downAfter)
	}
	if a.up <= 0 {
		a.up = DefaultUp
	}
	if a.down <= 0 {
		a.down = DefaultDown
	}
	if a.down >= a.up {
		return nil, fmt.Errorf("procs: Down (%g cores) must be below Up (%g cores)", a.down, a.up)
	}
	if a.max <= 0 {
		a.max, a.byDefault = runtime.GOMAXPROCS(0), true
	}
	if a.clk == nil {
		a.clk = clock.System{}
	}
	if a.cpu == nil {
		a.cpu = proccpu.Time
	}
	if a.waiting == nil {
		a.waiting = newSchedWaiting()
	}
	if a.set == nil {
		a.set = setProcs
	}
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	cpu, err := a.cpu()
	if err != nil {
		return nil, fmt.Errorf("procs: reading the process's CPU time: %w", err)
	}
	a.procs, a.lastAt, a.lastCPU, a.lastWait = a.max, a.clk.Now(), cpu, a.waiting()
	a.hold = a.downAfter
	return a, nil
}

// start arms the first reading. The process starts on max processors and
// comes down once it has been quiet for downAfter.
func (a *adapter) start() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.timer = a.clk.AfterFunc(a.interval, a.tick)
}

// stop ends the readings and leaves the process on max processors.
func (a *adapter) stop() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.stopped = true
	if a.timer != nil {
		a.timer.Stop()
	}
	if a.procs != a.max {
		a.goUp()
	}
}

// goUp moves the process to max processors: the runtime's default, when
// that is what max is, read again.
func (a *adapter) goUp() {
	if a.byDefault {
		a.procs = a.set(0)
		a.max = a.procs
		return
	}
	a.procs = a.set(a.max)
}

// setProcs is SetProcs's default.
func setProcs(n int) int {
	if n == 0 {
		runtime.SetDefaultGOMAXPROCS()
		return runtime.GOMAXPROCS(0)
	}
	runtime.GOMAXPROCS(n)
	return n
}

func (a *adapter) tick() {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.stopped {
		return
	}
	if cpu, err := a.cpu(); err == nil {
		a.observe(a.clk.Now(), cpu, a.waiting())
	}
	a.timer = a.clk.AfterFunc(a.interval, a.tick)
}

// observe takes a reading: cpu, the process's CPU time at now, and
// waiting, the time its goroutines have waited for a processor. It moves
// the process when the use since the last reading says so.
func (a *adapter) observe(now time.Time, cpu, waiting time.Duration) {
	dt := now.Sub(a.lastAt)
	if dt <= 0 {
		return
	}
	use := float64(cpu-a.lastCPU) / float64(dt)         // cores
	queued := float64(waiting-a.lastWait) / float64(dt) // goroutines waiting, on average
	from := a.lastAt
	a.lastAt, a.lastCPU, a.lastWait = now, cpu, waiting
	switch {
	case a.procs == 1:
		if use >= a.up || queued >= saturated {
			hold := a.downAfter
			if now.Sub(a.downAt) < settled {
				hold = min(2*a.hold, a.maxDownAfter)
			}
			if a.moved(use, queued, a.goUp) {
				a.hold = hold
			}
		}
	case use >= a.down:
		a.lowSince = time.Time{}
	default: // on max processors, and quiet since from at least
		if a.lowSince.IsZero() {
			a.lowSince = from
		}
		if now.Sub(a.lowSince) >= a.hold {
			a.downAt = now
			a.moved(use, queued, func() { a.procs = a.set(1) })
		}
	}
}

// saturated is how many goroutines may wait for the one processor, on
// average over an interval, before it counts as too few whatever CPU it
// got.
const saturated = 0.5

// moved makes a move and logs it; false when the process did not move
// (up, to a runtime default that is one processor now).
func (a *adapter) moved(use, queued float64, move func()) bool {
	from := a.procs
	a.lowSince = time.Time{}
	move()
	if a.procs == from {
		return false
	}
	a.log.Debug("processors", "from", from, "to", a.procs, "cpu_cores", round2(use),
		"waiting_goroutines", round2(queued), "next_down_after", a.hold)
	return true
}

func round2(x float64) float64 { return math.Round(x*100) / 100 }

// trackingPeriod is how many of a goroutine's scheduling transitions the
// runtime's /sched/latencies:seconds records one of (the runtime's
// gTrackingPeriod): the histogram's counts are a sample, not scaled up.
const trackingPeriod = 8

// newSchedWaiting returns Config.Waiting's default, which reads into one
// sample again and again: the time this process's goroutines have spent
// runnable, waiting for a processor, since it started. That is the
// runtime's scheduling latencies (/sched/latencies:seconds), each counted
// at the middle of its histogram bucket, times trackingPeriod.
func newSchedWaiting() func() time.Duration {
	s := []metrics.Sample{{Name: "/sched/latencies:seconds"}}
	return func() time.Duration {
		metrics.Read(s)
		if s[0].Value.Kind() != metrics.KindFloat64Histogram {
			return 0 // not in this runtime
		}
		return waited(s[0].Value.Float64Histogram())
	}
}

// waited is the time goroutines waited that h, a sample of the runtime's
// scheduling latencies, stands for.
func waited(h *metrics.Float64Histogram) time.Duration {
	return time.Duration(trackingPeriod * waitingOf(h) * float64(time.Second))
}

// waitingOf is the sum of the latencies h counts, in seconds, each at the
// middle of its bucket (the edge that is finite, for a bucket open on one
// side).
func waitingOf(h *metrics.Float64Histogram) float64 {
	var sum float64
	for i, n := range h.Counts {
		if n == 0 {
			continue
		}
		lo, hi := h.Buckets[i], h.Buckets[i+1]
		mid := (lo + hi) / 2
		switch {
		case math.IsInf(lo, -1):
			mid = hi
		case math.IsInf(hi, 1):
			mid = lo
		}
		sum += float64(n) * mid
	}
	return sum
}
