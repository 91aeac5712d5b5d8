package server

import (
	"math/rand/v2"
	"testing"
	"time"
)

// Every session is in one slot from add to remove, whatever the order of
// adds and removes; a heartbeat's slots, looked at in any steps, hold
// each once.
func TestPingSlotsHoldEachSessionOnce(t *testing.T) {
	var p pingSlots
	live := map[*session]bool{}
	var all []*session
	rnd := rand.New(rand.NewPCG(1, 2))
	for i := range 6000 {
		s := &session{slotAt: -1}
		p.add(s)
		live[s] = true
		all = append(all, s)
		if i%3 == 0 { // remove one at random, sometimes one removed already
			v := all[rnd.IntN(len(all))]
			p.remove(v)
			delete(live, v)
		}
	}
	p.remove(&session{slotAt: -1}) // never added: nothing happens
	if p.n != len(live) {
		t.Fatalf("%d sessions counted, %d live", p.n, len(live))
	}
	seen := map[*session]int{}
	var batch []*session
	for done := 0; done < pingSlotCount; {
		due := min(done+1+rnd.IntN(100), pingSlotCount)
		batch = p.span(done, due, batch[:0])
		for _, s := range batch {
			seen[s]++
		}
		done = due
	}
	if len(seen) != len(live) {
		t.Fatalf("a heartbeat pings %d sessions, want %d", len(seen), len(live))
	}
	for s, n := range seen {
		if n != 1 || !live[s] {
			t.Fatalf("a session pinged %d times (live %v)", n, live[s])
		}
	}
	for k := range p.slots { // each knows where it is
		for i, s := range p.slots[k] {
			if int(s.slot) != k || int(s.slotAt) != i {
				t.Fatalf("slot %d holds at %d a session that says %d, %d", k, i, s.slot, s.slotAt)
			}
		}
	}
}

// Slot k is due k/pingSlotCount of the way into a heartbeat, the first at
// once, all of them by its end.
func TestSlotsDue(t *testing.T) {
	hb := 30 * time.Second
	for _, c := range []struct {
		elapsed time.Duration
		want    int
	}{{0, 1}, {hb / 1024, 2}, {hb / 2, 513}, {hb - 1, 1024}, {hb, 1024}, {5 * hb, 1024}} {
		if got := slotsDue(c.elapsed, hb); got != c.want {
			t.Errorf("slotsDue(%v) = %d, want %d", c.elapsed, got, c.want)
		}
	}
}

// The pinger looks often enough for a look to ping about pingBatch
// sessions: 16 looks a heartbeat at least, 1,024 at most, one a
// millisecond at most.
func TestPingEvery(t *testing.T) {
	hb := 30 * time.Second
	for _, c := range []struct {
		n    int
		hb   time.Duration
		want time.Duration
	}{
		{0, hb, hb / 16}, {256, hb, hb / 16}, {1000, hb, hb / 63}, {10000, hb, hb / 625},
		{100000, hb, hb / 1024}, {10000, 50 * time.Millisecond, time.Millisecond},
	} {
		if got := pingEvery(c.n, c.hb); got != c.want {
			t.Errorf("pingEvery(%d, %v) = %v, want %v", c.n, c.hb, got, c.want)
		}
	}
}
