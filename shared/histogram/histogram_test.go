package histogram

import (
	"encoding/json"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"
)

func TestBucketsAreContiguous(t *testing.T) {
	for i := 1; i < buckets; i++ {
		if lower(i) != upper(i-1)+1 {
			t.Fatalf("bucket %d starts at %d, previous ends at %d", i, lower(i), upper(i-1))
		}
	}
	for _, v := range []uint64{0, 1, 127, 128, 129, 255, 256, 1e6, 1<<40 + 12345, 1<<63 - 1} {
		i := index(v)
		if v < lower(i) || v > upper(i) {
			t.Fatalf("%d in bucket %d [%d, %d]", v, i, lower(i), upper(i))
		}
		if w := upper(i) - lower(i); v >= sub && w > lower(i)/half {
			t.Fatalf("bucket %d is %d wide for %d", i, w, v)
		}
	}
}

// Quantiles agree with the exact ones from a sorted slice within the
// bucket width (under 1.6 %).
func TestQuantilesMatchExact(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var h Histogram
	vals := make([]time.Duration, 100000)
	for i := range vals {
		vals[i] = time.Duration(r.ExpFloat64() * float64(time.Millisecond))
		h.Record(vals[i])
	}
	slices.Sort(vals)
	s := h.Snapshot()
	for _, q := range []float64{0.5, 0.9, 0.95, 0.99, 0.999, 1} {
		exact := vals[int(q*float64(len(vals)))-1]
		got := s.Quantile(q)
		if got < exact || float64(got-exact) > float64(exact)/64+1 {
			t.Errorf("q%.3f: %v, exact %v", q, got, exact)
		}
	}
	if s.Max != uint64(vals[len(vals)-1]) || s.Min != uint64(vals[0]) || s.Count != uint64(len(vals)) {
		t.Fatalf("max %d min %d count %d", s.Max, s.Min, s.Count)
	}
}

func TestMergeEqualsOneHistogram(t *testing.T) {
	var a, b, all Histogram
	for i := 0; i < 5000; i++ {
		d := time.Duration(i*i) * time.Microsecond
		all.Record(d)
		if i%3 == 0 {
			a.Record(d)
		} else {
			b.Record(d)
		}
	}
	m := a.Snapshot()
	m.Merge(b.Snapshot())
	want := all.Snapshot()
	if !slices.Equal(m.Buckets, want.Buckets) || m.Count != want.Count || m.Sum != want.Sum || m.Max != want.Max || m.Min != want.Min {
		t.Fatalf("merged %+v\nwant %+v", m.Summary(), want.Summary())
	}
	var empty Snapshot
	empty.Merge(m)
	if empty.Summary() != want.Summary() {
		t.Fatalf("merge into empty: %v", empty.Summary())
	}
}

func TestConcurrentRecord(t *testing.T) {
	var h Histogram
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 1000; i++ {
				h.Record(time.Duration(g*1000+i) * time.Microsecond)
			}
		}()
	}
	wg.Wait()
	s := h.Snapshot()
	if s.Count != 8000 || s.Min != 0 || s.Max != uint64(7999*time.Microsecond) {
		t.Fatalf("count %d min %d max %d", s.Count, s.Min, s.Max)
	}
}

func TestJSONRoundTripAndDamage(t *testing.T) {
	var h Histogram
	h.Record(3 * time.Millisecond)
	h.Record(-time.Second)
	b, err := json.Marshal(h.Snapshot())
	if err != nil {
		t.Fatal(err)
	}
	var s Snapshot
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatal(err)
	}
	if s.Count != 2 || s.Min != 0 || s.Quantile(1) != 3*time.Millisecond {
		t.Fatalf("round trip: %+v", s)
	}
	for _, bad := range []string{
		`{"count":1,"buckets":[[999999,1]]}`,
		`{"count":2,"buckets":[[5,1],[4,1]]}`,
		`{"count":3,"buckets":[[5,1]]}`,
		`{"count":"x"}`,
	} {
		if err := json.Unmarshal([]byte(bad), &s); err == nil {
			t.Errorf("accepted %s", bad)
		}
	}
}

func BenchmarkRecord(b *testing.B) {
	var h Histogram
	b.RunParallel(func(pb *testing.PB) {
		d := time.Duration(0)
		for pb.Next() {
			d += 997
			h.Record(d % (10 * time.Millisecond))
		}
	})
}

// A Snapshot taken while a Record is under way reads as JSON again: a
// fleet worker takes its report while notifications arrive, and the main
// process refused the report whose Count held a Record its buckets did
// not (the merged report then lacked the worker's figures).
func TestSnapshotDuringRecordReadsBack(t *testing.T) {
	var h Histogram
	h.Record(time.Millisecond)
	afterBuckets = func() { h.Record(2 * time.Millisecond) }
	s := h.Snapshot()
	afterBuckets = nil
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	var back Snapshot
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatalf("a snapshot taken during a Record does not read back: %v", err)
	}
	if back.Count != 1 || back.Quantile(1) > 2*time.Millisecond {
		t.Fatalf("count %d, max quantile %v: want the Record before the snapshot only", back.Count, back.Quantile(1))
	}
	if s := h.Snapshot(); s.Count != 2 {
		t.Fatalf("count %d after both Records, want 2", s.Count)
	}
}

// Snapshots taken while many goroutines record all read back, and count
// what the buckets hold.
func TestSnapshotsWhileRecordingReadBack(t *testing.T) {
	var h Histogram
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for g := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				h.Record(time.Duration(g*5000+i%5000) * time.Microsecond)
			}
		}()
	}
	defer wg.Wait()
	defer close(stop)
	for range 50 {
		b, err := json.Marshal(h.Snapshot())
		if err != nil {
			t.Fatal(err)
		}
		var back Snapshot
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatalf("a snapshot taken while recording does not read back: %v", err)
		}
	}
}
