package main

import (
	"fmt"
	"io"
	"slices"
	"sync"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/widget"
)

// FrameWarmUp is how long a frame sampler waits after the window starts
// before it measures: the first frames upload every tile's textures.
const FrameWarmUp = 5 * time.Second

// FrameStats summarises the frames a FrameSampler saw.
type FrameStats struct {
	// Ticks is the number of ticks of fyne's 60 Hz event loop measured;
	// Painted is the number of those in which the window was repainted
	// (the others had nothing to redraw).
	Ticks, Painted int
	// Overran is the number of painted frames that ran into the next tick
	// (measured up to the next frame's start).
	Overran int
	// Mean, P50, P99 and Max are the cost of the painted frames: the time
	// from fyne ticking the animations to the main loop being free again
	// (the repaint, the buffer swap to the display, and any wait for a CPU
	// or the X server on the way).
	Mean, P50, P99, Max time.Duration
	// GapP99 is the 99th percentile of the time between two ticks of the
	// event loop: 16.7 ms while it keeps up with 60 frames a second.
	GapP99 time.Duration
	// Wall is the time measured; CPU the process's CPU time (user and
	// system, all threads, GL included) in it, 0 where unknown.
	Wall, CPU time.Duration
}

// CPUPercent is the process's CPU time over the wall time, in percent of
// one core.
func (s FrameStats) CPUPercent() float64 {
	if s.Wall <= 0 {
		return 0
	}
	return 100 * float64(s.CPU) / float64(s.Wall)
}

// String formats the stats on one line.
func (s FrameStats) String() string {
	return fmt.Sprintf("frames: %d ticks, %d painted (%d into the next tick) in %.1f s; frame cost mean %.2f ms, p50 %.2f ms, p99 %.2f ms, max %.2f ms; tick gap p99 %.2f ms; CPU %.1f%% of one core",
		s.Ticks, s.Painted, s.Overran, s.Wall.Seconds(), ms(s.Mean), ms(s.P50), ms(s.P99), ms(s.Max), ms(s.GapP99), s.CPUPercent())
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// summarise computes the stats of painted frame costs and tick gaps.
func summarise(costs, gaps []time.Duration, ticks, overran int, wall, cpu time.Duration) FrameStats {
	s := FrameStats{Ticks: ticks, Painted: len(costs), Overran: overran, Wall: wall, CPU: cpu}
	s.GapP99 = percentile(gaps, 99)
	if len(costs) == 0 {
		return s
	}
	var sum time.Duration
	for _, c := range costs {
		sum += c
	}
	s.Mean = sum / time.Duration(len(costs))
	s.P50 = percentile(costs, 50)
	s.P99 = percentile(costs, 99)
	s.Max = percentile(costs, 100)
	return s
}

// percentile returns the p-th percentile (nearest rank) of ds, 0 for none.
func percentile(ds []time.Duration, p int) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	sorted := slices.Clone(ds)
	slices.Sort(sorted)
	return sorted[max(1, (len(sorted)*p+99)/100)-1]
}

// FrameSampler measures the cost of the frames fyne's GL driver paints. It
// needs no hook in fyne: on every tick of the event loop fyne ticks the
// running animations, then repaints the windows whose content changed, then
// runs the functions queued with fyne.Do. The sampler runs an endless
// animation whose tick notes the time and queues a function that notes it
// again: the difference is the rest of the animation ticks and the repaint.
// When a frame overruns its 16.7 ms tick, fyne may start the next frame
// before it runs the queued function: the frame then ends where the next
// begins. A probe widget in the window, which draws nothing, tells the
// ticks that repainted (fyne walks its renderer's objects when it paints)
// from those that did not.
//
// Add Probe to the window's content, call Start on the UI goroutine.
type FrameSampler struct {
	// Probe is the invisible widget to put in the window.
	Probe fyne.CanvasObject

	now func() time.Time
	cpu func() time.Duration

	mu      sync.Mutex
	painted bool
	open    bool // a frame begun at last has not ended yet
	ticks   int
	overran int
	costs   []time.Duration
	gaps    []time.Duration
	last    time.Time // the previous tick
	anim    *fyne.Animation
	started time.Time
	cpu0    time.Duration
}

// NewFrameSampler returns a sampler reading time from now (time.Now when
// nil) and the process's CPU time from cpu (processCPU when nil).
func NewFrameSampler(now func() time.Time, cpu func() time.Duration) *FrameSampler {
	if now == nil {
		now = time.Now
	}
	if cpu == nil {
		cpu = processCPU
	}
	s := &FrameSampler{now: now, cpu: cpu}
	p := &frameProbe{s: s}
	p.ExtendBaseWidget(p)
	s.Probe = p
	return s
}

// Start begins measuring.
func (s *FrameSampler) Start() {
	s.mu.Lock()
	s.started, s.cpu0 = s.now(), s.cpu()
	s.mu.Unlock()
	a := fyne.NewAnimation(time.Second, func(float32) { s.tick() })
	a.RepeatCount = fyne.AnimationRepeatForever
	a.Curve = fyne.AnimationLinear
	s.anim = a
	a.Start()
}

// tick runs among the animation ticks: the rest of the frame follows it,
// then the function queued here.
func (s *FrameSampler) tick() {
	t0 := s.begin()
	fyne.Do(func() { s.end(t0) })
}

// begin notes the start of a frame, which ends the previous one if its
// queued function has not run yet.
func (s *FrameSampler) begin() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.now()
	if !s.last.IsZero() {
		s.gaps = append(s.gaps, t.Sub(s.last))
	}
	if s.open {
		if s.painted {
			s.overran++
		}
		s.finish(t)
	}
	s.ticks++
	s.open, s.painted, s.last = true, false, t
	return t
}

// end notes the end of the frame begun at t0, unless the next one began.
func (s *FrameSampler) end(t0 time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.open && s.last.Equal(t0) {
		s.finish(s.now())
	}
}

// finish ends the open frame at t, keeping its cost if it painted.
func (s *FrameSampler) finish(t time.Time) {
	if s.painted {
		s.costs = append(s.costs, t.Sub(s.last))
	}
	s.open = false
}

func (s *FrameSampler) paintedNow() {
	s.mu.Lock()
	s.painted = true
	s.mu.Unlock()
}

// Stop ends measuring and returns the stats.
func (s *FrameSampler) Stop() FrameStats {
	if s.anim != nil {
		s.anim.Stop()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return summarise(s.costs, s.gaps, s.ticks, s.overran, s.now().Sub(s.started), s.cpu()-s.cpu0)
}

// SampleFrames measures frames from FrameWarmUp after it is called for d,
// then writes the stats to out and calls done (both on the UI goroutine).
// Call it with s.Probe in the window; the returned function cancels it.
func SampleFrames(s *FrameSampler, d time.Duration, out io.Writer, done func()) (cancel func()) {
	var mu sync.Mutex
	var stopped bool
	var timer *time.Timer
	after := func(d time.Duration, f func()) {
		mu.Lock()
		defer mu.Unlock()
		if !stopped {
			timer = time.AfterFunc(d, func() { fyne.Do(f) })
		}
	}
	after(FrameWarmUp, func() {
		s.Start()
		after(d, func() {
			fmt.Fprintln(out, s.Stop())
			if done != nil {
				done()
			}
		})
	})
	return func() {
		mu.Lock()
		defer mu.Unlock()
		stopped = true
		timer.Stop()
	}
}

// frameProbe draws nothing; its renderer's Objects is called whenever
// fyne paints the window.
type frameProbe struct {
	widget.BaseWidget
	s *FrameSampler
}

func (p *frameProbe) CreateRenderer() fyne.WidgetRenderer { return &probeRenderer{p: p} }

type probeRenderer struct{ p *frameProbe }

func (r *probeRenderer) Destroy()           {}
func (r *probeRenderer) Layout(fyne.Size)   {}
func (r *probeRenderer) MinSize() fyne.Size { return fyne.NewSize(0, 0) }
func (r *probeRenderer) Refresh()           {}
func (r *probeRenderer) Objects() []fyne.CanvasObject {
	r.p.s.paintedNow()
	return nil
}
