package clock

import (
	"testing"
	"time"
)

func TestFakeRunsTimersInOrderAtTheirTime(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	c := NewFake(start)
	var got []time.Duration
	record := func() { got = append(got, c.Now().Sub(start)) }
	c.AfterFunc(3*time.Second, record)
	c.AfterFunc(time.Second, record)
	stopped := c.AfterFunc(2*time.Second, record)
	if !stopped.Stop() || stopped.Stop() {
		t.Fatal("Stop should report true once")
	}
	c.Advance(1500 * time.Millisecond)
	if len(got) != 1 || got[0] != time.Second {
		t.Fatalf("after 1.5s: %v", got)
	}
	// A timer scheduled by a timer runs in the same Advance if it falls due.
	c.AfterFunc(time.Second, func() { record(); c.AfterFunc(100*time.Millisecond, record) })
	c.Advance(2 * time.Second)
	want := []time.Duration{time.Second, 2500 * time.Millisecond, 2600 * time.Millisecond, 3 * time.Second}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("got %v, want %v", got, want)
		}
	}
	if c.Now().Sub(start) != 3500*time.Millisecond || c.Pending() != 0 {
		t.Fatalf("now %v pending %d", c.Now().Sub(start), c.Pending())
	}
}
