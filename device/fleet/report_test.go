package fleet

import (
	"strings"
	"testing"
	"time"

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
