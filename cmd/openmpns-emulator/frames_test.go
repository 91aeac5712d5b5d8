package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"fyne.io/fyne/v2/test"
)

func TestSummarise(t *testing.T) {
	ms := time.Millisecond
	tests := []struct {
		name                string
		costs               []time.Duration
		mean, p50, p99, max time.Duration
	}{
		{"none", nil, 0, 0, 0, 0},
		{"one", []time.Duration{3 * ms}, 3 * ms, 3 * ms, 3 * ms, 3 * ms},
		{"unsorted", []time.Duration{4 * ms, 1 * ms, 3 * ms, 2 * ms}, 2500 * time.Microsecond, 2 * ms, 4 * ms, 4 * ms},
		{"hundred", func() []time.Duration {
			var c []time.Duration
			for i := 100; i >= 1; i-- {
				c = append(c, time.Duration(i)*ms)
			}
			return c
		}(), 50500 * time.Microsecond, 50 * ms, 99 * ms, 100 * ms},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := summarise(tt.costs, tt.costs, 120, 0, 2*time.Second, time.Second)
			if s.Mean != tt.mean || s.P50 != tt.p50 || s.P99 != tt.p99 || s.Max != tt.max || s.GapP99 != tt.p99 || s.Painted != len(tt.costs) {
				t.Errorf("got %+v", s)
			}
			if s.CPUPercent() != 50 {
				t.Errorf("CPU %v%%, want 50", s.CPUPercent())
			}
		})
	}
}

// TestFrameSampler drives the sampler the way fyne's loop does, on a fake
// clock: a tick that repaints is measured, one that does not only counted.
func TestFrameSampler(t *testing.T) {
	test.NewTempApp(t)
	clock := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	now := func() time.Time { return clock }
	cpu := time.Duration(0)
	s := NewFrameSampler(now, func() time.Duration { return cpu })
	w := test.NewWindow(s.Probe)
	defer w.Close()
	s.Start() // the test driver ticks the animation once: no repaint seen

	// A repainted frame of 4 ms.
	t0 := s.begin()
	test.WidgetRenderer(s.Probe.(*frameProbe)).Objects() // fyne painting
	clock = clock.Add(4 * time.Millisecond)
	s.end(t0)
	// An idle tick.
	clock = clock.Add(12 * time.Millisecond)
	t0 = s.begin()
	clock = clock.Add(time.Millisecond)
	s.end(t0)

	// A frame whose queued function runs after the next frame began: it
	// ends there.
	clock = clock.Add(15 * time.Millisecond)
	late := s.begin()
	s.Probe.(*frameProbe).s.paintedNow()
	clock = clock.Add(30 * time.Millisecond)
	t0 = s.begin()
	clock = clock.Add(time.Millisecond)
	s.end(late) // too late: already counted, 30 ms
	s.end(t0)   // not painted

	clock = clock.Add(937 * time.Millisecond)
	cpu = 250 * time.Millisecond
	st := s.Stop()
	if st.Ticks != 5 || st.Painted != 2 || st.Overran != 1 || st.Mean != 17*time.Millisecond || st.Max != 30*time.Millisecond || st.GapP99 != 30*time.Millisecond || st.Wall != time.Second || st.CPUPercent() != 25 {
		t.Fatalf("stats %+v", st)
	}
	var out bytes.Buffer
	out.WriteString(st.String())
	if !strings.Contains(out.String(), "p99 30.00 ms") || !strings.Contains(out.String(), "CPU 25.0%") {
		t.Errorf("String() = %s", out.String())
	}
}
