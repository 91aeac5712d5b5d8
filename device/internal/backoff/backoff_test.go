package backoff

import (
	"math/rand/v2"
	"testing"
	"time"
)

func TestDelayGrowsWithinBounds(t *testing.T) {
	min, max := 100*time.Millisecond, 5*time.Second
	top := func(n int64) int64 { return n - 1 } // the largest draw
	low := func(int64) int64 { return 0 }
	prev := time.Duration(0)
	for n := 0; n < 40; n++ {
		hi := Delay(n, min, max, top)
		if hi < min/2 || hi > max {
			t.Fatalf("attempt %d: %v outside [%v, %v]", n, hi, min/2, max)
		}
		if hi < prev {
			t.Fatalf("attempt %d: ceiling shrank from %v to %v", n, prev, hi)
		}
		prev = hi
		if lo := Delay(n, min, max, low); lo != min/2 {
			t.Fatalf("attempt %d: lowest draw %v, want the floor %v", n, lo, min/2)
		}
	}
	if prev != max {
		t.Fatalf("ceiling never reached max: %v", prev)
	}
}

// TestFirstDelayIsJittered: attempt 0 is spread over [min/2, 2×min], so
// devices cut off together by a restart do not come back together.
func TestFirstDelayIsJittered(t *testing.T) {
	min, max := 250*time.Millisecond, 30*time.Second
	r := rand.New(rand.NewPCG(1, 2))
	seen := map[time.Duration]bool{}
	lo, hi := max, time.Duration(0)
	for range 1000 {
		d := Delay(0, min, max, r.Int64N)
		if d < min/2 || d > 2*min {
			t.Fatalf("attempt 0 delay %v outside [%v, %v]", d, min/2, 2*min)
		}
		seen[d] = true
		lo, hi = mn(lo, d), mx(hi, d)
	}
	// 1000 draws over a 375 ms range: distinct values and a wide spread.
	if len(seen) < 900 || hi-lo < min {
		t.Fatalf("attempt 0 is not jittered: %d distinct delays in [%v, %v]", len(seen), lo, hi)
	}
}

func mn(a, b time.Duration) time.Duration { return min(a, b) }
func mx(a, b time.Duration) time.Duration { return max(a, b) }

// TestReplacedBounds: the upper half of the ceiling, whatever the random
// draw, capped by max.
func TestReplacedBounds(t *testing.T) {
	min, max := 250*time.Millisecond, 30*time.Second
	lowest := func(int64) int64 { return 0 }
	highest := func(k int64) int64 { return k - 1 }
	for n, want := range map[int][2]time.Duration{
		0:  {250 * time.Millisecond, 500 * time.Millisecond},
		4:  {4 * time.Second, 8 * time.Second},
		6:  {15 * time.Second, 30 * time.Second}, // 16 s–32 s, capped at 30 s
		40: {15 * time.Second, 30 * time.Second},
	} {
		if lo, hi := Replaced(n, min, max, lowest), Replaced(n, min, max, highest); lo != want[0] || hi != want[1] {
			t.Errorf("Replaced(%d) spans [%v, %v], want [%v, %v]", n, lo, hi, want[0], want[1])
		}
	}
}
