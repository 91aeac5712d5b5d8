// Package backoff computes reconnect and retry delays for the device
// runtime and the fleet: exponential, jittered, bounded.
package backoff

import "time"

// Delay returns the delay before attempt n (0-based): full jitter over an
// exponential ceiling, with a floor of min/2 and a cap of max:
//
//	ceiling(n) = min(max, min × 2^(n+1))
//	delay(n)   = min/2 + random(0 … ceiling(n) − min/2)
//
// Every delay is jittered, the first one included (attempt 0 spreads over
// [min/2, 2×min]), so that thousands of devices cut off together by a server
// restart do not all come back at the same instant. rnd(k) returns a value
// in [0, k).
func Delay(n int, min, max time.Duration, rnd func(int64) int64) time.Duration {
	floor := min / 2
	if floor <= 0 {
		floor = 1
	}
	return floor + jitter(ceiling(n, min, max)-floor, rnd)
}

// Replaced returns the delay before reconnecting after the server closed
// the connection because another connection of the same identity took over
// (4001), n being the attempt. It jitters over the upper half of Delay's
// ceiling only ("equal jitter"): two instances sharing an identity must
// wait long every time, not only on average, or they knock each other off
// in a tight loop.
func Replaced(n int, min, max time.Duration, rnd func(int64) int64) time.Duration {
	ceil := ceiling(n, min, max)
	return ceil/2 + jitter(ceil-ceil/2, rnd)
}

// ceiling is min(max, min × 2^(n+1)).
func ceiling(n int, min, max time.Duration) time.Duration {
	if n < 30 {
		if c := min << (n + 1); c > 0 && c < max {
			return c
		}
	}
	return max
}

// jitter returns a random duration in [0, span], 0 if span is not positive.
func jitter(span time.Duration, rnd func(int64) int64) time.Duration {
	if span <= 0 {
		return 0
	}
	return time.Duration(rnd(int64(span) + 1))
}
