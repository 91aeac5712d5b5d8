package fleet

import (
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/openmpns/openmpns/device"
	"github.com/openmpns/openmpns/shared/clock"
	"github.com/openmpns/openmpns/shared/histogram"
)

// rowsOf returns the report's rows by name.
func rowsOf(r *Report) map[string]string {
	out := map[string]string{}
	for _, row := range r.Rows() {
		out[row[0]] = row[1]
	}
	return out
}

// A latency without samples is not 0 ms: a run in which nothing arrived,
// or whose notifications did not carry openmpns load's timed X-MessageID
// (a user's own backend, openmpns send), showed "POST to device p50 / p99
// 0.00 ms / 0.00 ms", a perfect figure for what was never measured.
func TestReportRowsSayWhenALatencyWasNotMeasured(t *testing.T) {
	var h histogram.Histogram
	for _, d := range []time.Duration{time.Millisecond, 2 * time.Millisecond, 3 * time.Millisecond} {
		h.Record(d)
	}
	r := &Report{Notifications: map[string]int64{"raw": 3}, Latency: h.Snapshot(), SendLatency: (&histogram.Histogram{}).Snapshot(), Elapsed: time.Second}
	r.Finish()
	rows := rowsOf(r)
	if got := rows["accept to device p50"]; !strings.HasPrefix(got, "2.0") || !strings.HasSuffix(got, " ms") {
		t.Errorf("accept to device p50 %q, want 2.0x ms", got)
	}
	for _, name := range []string{"POST to device p50 / p99", "  of which POST to accept p50 / p99"} {
		if got := rows[name]; strings.Contains(got, "0.00 ms") || !strings.Contains(got, "not measured") {
			t.Errorf("%s with no timed message id: %q", name, got)
		}
	}
	empty := &Report{}
	empty.Finish()
	rows = rowsOf(empty)
	for _, name := range []string{"accept to device p50", "accept to device p95", "accept to device p99", "accept to device max", "POST to device p50 / p99"} {
		if got := rows[name]; strings.Contains(got, "0.00 ms") || !strings.Contains(got, "not measured") {
			t.Errorf("%s of a run that received nothing: %q", name, got)
		}
	}
}

// receiver is a fleet of one device on a fake clock, taking notifications
// through the path a real device's handlers take.
func receiver(clk *clock.Fake) (*Fleet, *member) {
	f := &Fleet{appIdx: map[string]int{"a": 0}, clk: clk, start: clk.Now(), errs: map[string]int64{}, refused: map[int]int64{}}
	return f, &member{f: f, counts: make([]atomic.Int32, kinds)}
}

// rateRow returns the value of the report's received-per-second row.
func rateRow(t *testing.T, r *Report) string {
	t.Helper()
	for _, row := range r.Rows() {
		if strings.HasPrefix(row[0], "received per second") {
			return row[1]
		}
	}
	t.Fatalf("no received per second row in %v", r.Rows())
	return ""
}

// The received rate is over the deliveries, from the first to the last:
// it was the count over the whole run, connecting and idle time included,
// so a 2-minute fleet that took 20 s of notifications at 1,000/s reported
// 167/s.
func TestReceivedRateIsOverTheDeliveries(t *testing.T) {
	clk := clock.NewFake(time.Unix(1_000_000, 0))
	f, m := receiver(clk)
	clk.Advance(50 * time.Second) // connecting
	for i := range 3 {
		if i > 0 {
			clk.Advance(time.Second)
		}
		m.received(device.Meta{ID: strconv.Itoa(i), App: "a", ReceivedAt: clk.Now()}, Raw)
	}
	clk.Advance(8 * time.Second) // idle until the end
	r := f.Report()
	if got := rateRow(t, r); got != "1" {
		t.Errorf("3 notifications 1 s apart in a 60 s run: %q per second, want 1", got)
	}
	// The shards of one fleet: 3 from 50 s to 52 s, and 3 from 51 s to 55 s.
	clk2 := clock.NewFake(time.Unix(1_000_000, 0))
	f2, m2 := receiver(clk2)
	clk2.Advance(51 * time.Second)
	for i := range 3 {
		if i > 0 {
			clk2.Advance(2 * time.Second)
		}
		m2.received(device.Meta{ID: strconv.Itoa(i), App: "a", ReceivedAt: clk2.Now()}, Raw)
	}
	var merged Report
	merged.Merge(r)
	merged.Merge(f2.Report())
	if got := rateRow(t, &merged); got != "1" {
		t.Errorf("6 notifications over 5 s in two shards: %q per second, want 1", got)
	}
	// One notification, or none, has no rate.
	clk3 := clock.NewFake(time.Unix(1_000_000, 0))
	f3, m3 := receiver(clk3)
	clk3.Advance(time.Second)
	if got := rateRow(t, f3.Report()); got == "0" || got == "NaN" {
		t.Errorf("no notification: %q per second", got)
	}
	m3.received(device.Meta{ID: "x", App: "a", ReceivedAt: clk3.Now()}, Raw)
	if got := rateRow(t, f3.Report()); got == "1" || got == "NaN" || got == "+Inf" {
		t.Errorf("one notification: %q per second", got)
	}
}
