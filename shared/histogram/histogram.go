// Package histogram records durations in an HDR-style log-linear histogram:
// fixed memory (about 30 KiB) whatever the number of samples, a relative
// error under 1 %, safe for concurrent recording, and mergeable, so that
// the reports of several processes add up to one.
package histogram

import (
	"encoding/json"
	"fmt"
	"math"
	"math/bits"
	"sync/atomic"
	"time"
)

// Values below 2^subBits are counted exactly; above, each power of two is
// split into 2^(subBits-1) equal buckets, so a bucket is at most 1/64 of
// its lower bound wide.
const (
	subBits = 7
	sub     = 1 << subBits
	half    = sub / 2
	buckets = (64-subBits)*half + sub
)

func index(v uint64) int {
	if v < sub {
		return int(v)
	}
	e := bits.Len64(v) - subBits
	return e*half + int(v>>e)
}

// lower returns the smallest value counted in bucket i.
func lower(i int) uint64 {
	if i < sub {
		return uint64(i)
	}
	e := i/half - 1
	return uint64(i%half+half) << e
}

// upper returns the largest value counted in bucket i.
func upper(i int) uint64 {
	if i+1 >= buckets {
		return math.MaxInt64
	}
	return lower(i+1) - 1
}

// Histogram counts durations (negative ones count as zero). The zero value
// is ready to use; Record may be called from many goroutines.
type Histogram struct {
	counts [buckets]atomic.Uint64
	sum    atomic.Uint64
	max    atomic.Uint64
	min    atomic.Uint64 // stored as value+1 so that zero means "none yet"
}

// Record counts one duration.
func (h *Histogram) Record(d time.Duration) {
	v := uint64(0)
	if d > 0 {
		v = uint64(d)
	}
	// The bucket last: a Snapshot that counts v has it in Sum, Max and Min.
	h.sum.Add(v)
	for {
		m := h.max.Load()
		if v <= m || h.max.CompareAndSwap(m, v) {
			break
		}
	}
	for {
		m := h.min.Load()
		if (m != 0 && v+1 >= m) || h.min.CompareAndSwap(m, v+1) {
			break
		}
	}
	h.counts[index(v)].Add(1)
}

// afterBuckets, when set (by tests), is called by Snapshot once it has
// read the buckets: a Record there is one under way during a Snapshot.
var afterBuckets func()

// Snapshot returns a copy of the counts so far. It may be taken while
// Record is called, and always passes UnmarshalJSON's check: its Count is
// the sum of the bucket counts it read (a fleet worker's report, taken
// while notifications arrive, was refused by the main process when Count
// was read apart and held a Record the buckets did not). A Record under
// way may be in Sum, Max and Min without being counted.
func (h *Histogram) Snapshot() *Snapshot {
	s := &Snapshot{}
	for i := range h.counts {
		if c := h.counts[i].Load(); c > 0 {
			s.Buckets = append(s.Buckets, [2]uint64{uint64(i), c})
			s.Count += c
		}
	}
	if afterBuckets != nil {
		afterBuckets()
	}
	s.Sum, s.Max = h.sum.Load(), h.max.Load()
	if m := h.min.Load(); m > 0 {
		s.Min = m - 1
	}
	return s
}

// Snapshot is a histogram's counts at one moment, in a form that travels as
// JSON (only the non-empty buckets) and merges.
type Snapshot struct {
	Count   uint64      `json:"count"`
	Sum     uint64      `json:"sum_ns"`
	Min     uint64      `json:"min_ns"`
	Max     uint64      `json:"max_ns"`
	Buckets [][2]uint64 `json:"buckets"` // [bucket index, count], ascending
}

// Merge adds o's counts to s.
func (s *Snapshot) Merge(o *Snapshot) {
	if o == nil || o.Count == 0 {
		return
	}
	if s.Count == 0 || o.Min < s.Min {
		s.Min = o.Min
	}
	s.Max = max(s.Max, o.Max)
	s.Count += o.Count
	s.Sum += o.Sum
	merged := make([][2]uint64, 0, len(s.Buckets)+len(o.Buckets))
	a, b := s.Buckets, o.Buckets
	for len(a) > 0 || len(b) > 0 {
		switch {
		case len(b) == 0 || (len(a) > 0 && a[0][0] < b[0][0]):
			merged, a = append(merged, a[0]), a[1:]
		case len(a) == 0 || b[0][0] < a[0][0]:
			merged, b = append(merged, b[0]), b[1:]
		default:
			merged, a, b = append(merged, [2]uint64{a[0][0], a[0][1] + b[0][1]}), a[1:], b[1:]
		}
	}
	s.Buckets = merged
}

// Quantile returns the value at quantile q (0..1): the upper bound of the
// bucket holding it, never above the largest value recorded.
func (s *Snapshot) Quantile(q float64) time.Duration {
	if s == nil || s.Count == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(s.Count)))
	rank = max(rank, 1)
	var seen uint64
	for _, b := range s.Buckets {
		seen += b[1]
		if seen >= rank {
			return time.Duration(min(upper(int(b[0])), s.Max))
		}
	}
	return time.Duration(s.Max)
}

// UpperBound returns the largest value counted in the bucket with index i
// (Buckets[k][0]), never above the largest value recorded: for drawing a
// distribution from the buckets.
func (s *Snapshot) UpperBound(i uint64) time.Duration {
	if i >= buckets {
		return time.Duration(s.Max)
	}
	return time.Duration(min(upper(int(i)), s.Max))
}

// Mean returns the mean value.
func (s *Snapshot) Mean() time.Duration {
	if s == nil || s.Count == 0 {
		return 0
	}
	return time.Duration(s.Sum / s.Count)
}

// Summary is the usual figures of a snapshot, for reports.
type Summary struct {
	Count uint64        `json:"count"`
	Mean  time.Duration `json:"mean_ns"`
	P50   time.Duration `json:"p50_ns"`
	P95   time.Duration `json:"p95_ns"`
	P99   time.Duration `json:"p99_ns"`
	P999  time.Duration `json:"p999_ns"`
	Max   time.Duration `json:"max_ns"`
}

// Summary returns count, mean, p50, p95, p99, p99.9 and max.
func (s *Snapshot) Summary() Summary {
	if s == nil {
		return Summary{}
	}
	return Summary{Count: s.Count, Mean: s.Mean(), P50: s.Quantile(0.50), P95: s.Quantile(0.95),
		P99: s.Quantile(0.99), P999: s.Quantile(0.999), Max: time.Duration(s.Max)}
}

// String formats the summary for people.
func (m Summary) String() string {
	if m.Count == 0 {
		return "no samples"
	}
	r := func(d time.Duration) string { return d.Round(time.Microsecond).String() }
	return fmt.Sprintf("n=%d p50=%s p95=%s p99=%s max=%s", m.Count, r(m.P50), r(m.P95), r(m.P99), r(m.Max))
}

// UnmarshalJSON reads a snapshot and checks its buckets, so that a damaged
// report cannot make Quantile index out of range or go backwards.
func (s *Snapshot) UnmarshalJSON(b []byte) error {
	type plain Snapshot
	var p plain
	if err := json.Unmarshal(b, &p); err != nil {
		return fmt.Errorf("histogram: %w", err)
	}
	var total uint64
	for i, bk := range p.Buckets {
		if bk[0] >= buckets || (i > 0 && bk[0] <= p.Buckets[i-1][0]) {
			return fmt.Errorf("histogram: bucket %d out of order or range", bk[0])
		}
		total += bk[1]
	}
	if total != p.Count {
		return fmt.Errorf("histogram: buckets hold %d samples, count says %d", total, p.Count)
	}
	*s = Snapshot(p)
	return nil
}
