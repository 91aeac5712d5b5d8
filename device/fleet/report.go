package fleet

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"text/tabwriter"
	"time"

	"github.com/openmpns/openmpns/shared/histogram"
)

// Report is what a fleet saw, written as JSON at the end of a run. Reports
// of the shards of one fleet merge into one.
type Report struct {
	Devices         int64            `json:"devices"`
	Connected       int64            `json:"connected"`
	Registered      int64            `json:"registered"`
	Channels        int64            `json:"channels"`
	Notifications   map[string]int64 `json:"notifications"` // by kind
	RawDropped      int64            `json:"raw_dropped"`   // raw for an app not running
	Duplicates      int64            `json:"duplicates"`    // notifications an app saw twice
	Redelivered     int64            `json:"redelivered"`   // sent again by the server, dropped by the device's dedupe
	OutOfOrder      int64            `json:"out_of_order"`  // delivered before one accepted earlier
	Reconnects      int64            `json:"reconnects"`
	Handoffs        int64            `json:"handoffs"`
	HandoffFailures int64            `json:"handoff_failures"`
	// HandoffsSuperseded are the handoffs not sent, or not tried again,
	// because their channel's URI changed meanwhile: the newer URI was
	// handed off instead (a device hands off its current URI only).
	HandoffsSuperseded int64 `json:"handoffs_superseded"`
	// HandoffsUnfinished are the handoffs the cloud service had not
	// answered (or that waited to be tried again) when the report was made:
	// a slow backend's, or ones cut short by the end of the run.
	HandoffsUnfinished int64 `json:"handoffs_unfinished"`
	// HandoffsQueued are those of the unfinished that were not sent yet:
	// waiting for one of the Config.HandoffConcurrency handoffs in flight
	// to end.
	HandoffsQueued int64            `json:"handoffs_queued"`
	Errors         map[string]int64 `json:"errors"`
	// Latency is from the server's accept to the device's receipt (the two
	// clocks must agree: same machine, or NTP).
	Latency        *histogram.Snapshot `json:"latency_histogram"`
	LatencySummary histogram.Summary   `json:"latency"`
	// SendLatency is from the sender's POST to the device's receipt, for
	// notifications whose X-MessageID carries the send time (openmpns load
	// sends such ids); same-clock caveat as Latency.
	SendLatency        *histogram.Snapshot `json:"send_latency_histogram,omitempty"`
	SendLatencySummary histogram.Summary   `json:"send_latency"`
	// SendToAccept is the part of SendLatency before the server's accept:
	// the sender's HTTP request and the server reading it.
	SendToAccept        *histogram.Snapshot `json:"send_to_accept_histogram,omitempty"`
	SendToAcceptSummary histogram.Summary   `json:"send_to_accept"`
	Elapsed             time.Duration       `json:"elapsed_ns"`
	// FirstReceived and LastReceived are when the first and the last
	// notification arrived (zero when none did): the received rate is over
	// that span, not over the whole run with its connecting and idle time.
	FirstReceived time.Time `json:"first_received,omitzero"`
	LastReceived  time.Time `json:"last_received,omitzero"`
	Shards        int       `json:"shards,omitempty"`
	// Timeline is the fleet's counters sampled through the run, when the
	// program running it sampled them (openmpns fleet does, every
	// --progress interval).
	Timeline []Sample `json:"timeline,omitempty"`
}

// Sample is a fleet's counters at one moment of a run.
type Sample struct {
	// At is the time since the run started.
	At         time.Duration `json:"at_ns"`
	Started    int64         `json:"started"`
	Connected  int64         `json:"connected"`
	Registered int64         `json:"registered"`
	Received   int64         `json:"received"` // all kinds, since the start
	Reconnects int64         `json:"reconnects"`
	Errors     int64         `json:"errors"`
}

// SampleOf is the sample of s taken at at.
func SampleOf(at time.Duration, s Stats) Sample {
	return Sample{At: at, Started: s.Started, Connected: s.Connected, Registered: s.Registered,
		Received: s.Total(), Reconnects: s.Reconnects, Errors: s.ErrorCount()}
}

// Finish fills the derived fields (the latency summary).
func (r *Report) Finish() {
	if r.Notifications == nil {
		r.Notifications = map[string]int64{}
	}
	if r.Errors == nil {
		r.Errors = map[string]int64{}
	}
	r.LatencySummary = r.Latency.Summary()
	r.SendLatencySummary = r.SendLatency.Summary()
	r.SendToAcceptSummary = r.SendToAccept.Summary()
}

// Total is the number of notifications received.
func (r *Report) Total() int64 {
	var n int64
	for _, v := range r.Notifications {
		n += v
	}
	return n
}

// Merge adds a shard's report to r.
func (r *Report) Merge(o *Report) {
	r.Devices += o.Devices
	r.Connected += o.Connected
	r.Registered += o.Registered
	r.Channels += o.Channels
	r.RawDropped += o.RawDropped
	r.Duplicates += o.Duplicates
	r.Redelivered += o.Redelivered
	r.OutOfOrder += o.OutOfOrder
	r.Reconnects += o.Reconnects
	r.Handoffs += o.Handoffs
	r.HandoffFailures += o.HandoffFailures
	r.HandoffsSuperseded += o.HandoffsSuperseded
	r.HandoffsUnfinished += o.HandoffsUnfinished
	r.HandoffsQueued += o.HandoffsQueued
	if r.Notifications == nil {
		r.Notifications = map[string]int64{}
	}
	for k, v := range o.Notifications {
		r.Notifications[k] += v
	}
	if r.Errors == nil {
		r.Errors = map[string]int64{}
	}
	for k, v := range o.Errors {
		r.Errors[k] += v
	}
	if r.Latency == nil {
		r.Latency = &histogram.Snapshot{}
	}
	r.Latency.Merge(o.Latency)
	if o.SendLatency != nil {
		if r.SendLatency == nil {
			r.SendLatency = &histogram.Snapshot{}
		}
		r.SendLatency.Merge(o.SendLatency)
	}
	if o.SendToAccept != nil {
		if r.SendToAccept == nil {
			r.SendToAccept = &histogram.Snapshot{}
		}
		r.SendToAccept.Merge(o.SendToAccept)
	}
	r.Elapsed = max(r.Elapsed, o.Elapsed)
	if !o.FirstReceived.IsZero() && (r.FirstReceived.IsZero() || o.FirstReceived.Before(r.FirstReceived)) {
		r.FirstReceived = o.FirstReceived
	}
	if o.LastReceived.After(r.LastReceived) {
		r.LastReceived = o.LastReceived
	}
	r.Shards += max(o.Shards, 1)
	r.Finish()
}

// Rows are the report's figures as (name, value) rows, for people: the
// table WriteTable prints, and the summary of an HTML report.
func (r *Report) Rows() [][2]string {
	ms := func(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d)/1e6) }
	// A latency without samples was not measured: not 0 ms.
	const none = "not measured: nothing received"
	lat := func(s histogram.Summary, d time.Duration) string {
		if s.Count == 0 {
			return none
		}
		return ms(d)
	}
	pair := func(s histogram.Summary, why string) string {
		if s.Count == 0 {
			return why
		}
		return ms(s.P50) + " / " + ms(s.P99)
	}
	untimed := none
	if r.Total() > 0 {
		untimed = "not measured: no timed X-MessageID" // openmpns load sends them
	}
	// n deliveries from the first to the last are n-1 intervals.
	rate := "not measured: under 2 received"
	if span := r.LastReceived.Sub(r.FirstReceived); r.Total() >= 2 && !r.FirstReceived.IsZero() && span > 0 {
		rate = fmt.Sprintf("%.0f", float64(r.Total()-1)/span.Seconds())
	}
	rows := [][2]string{
		{"devices", fmt.Sprint(r.Devices)},
		{"connected at the end", fmt.Sprint(r.Connected)},
		{"registered", fmt.Sprint(r.Registered)},
		{"channels", fmt.Sprint(r.Channels)},
	}
	for _, k := range KindNames {
		rows = append(rows, [2]string{"received " + k, fmt.Sprint(r.Notifications[k])})
	}
	rows = append(rows,
		[2]string{"received per second, first to last", rate},
		[2]string{"raw dropped (app not running)", fmt.Sprint(r.RawDropped)},
		[2]string{"duplicates seen by apps", fmt.Sprint(r.Duplicates)},
		[2]string{"redelivered (dropped by dedupe)", fmt.Sprint(r.Redelivered)},
		[2]string{"out of order", fmt.Sprint(r.OutOfOrder)},
		[2]string{"accept to device p50", lat(r.LatencySummary, r.LatencySummary.P50)},
		[2]string{"accept to device p95", lat(r.LatencySummary, r.LatencySummary.P95)},
		[2]string{"accept to device p99", lat(r.LatencySummary, r.LatencySummary.P99)},
		[2]string{"accept to device max", lat(r.LatencySummary, r.LatencySummary.Max)},
		[2]string{"POST to device p50 / p99", pair(r.SendLatencySummary, untimed)},
		[2]string{"  of which POST to accept p50 / p99", pair(r.SendToAcceptSummary, untimed)},
		[2]string{"reconnects", fmt.Sprint(r.Reconnects)},
		[2]string{"handoffs done / failed / superseded / unfinished", fmt.Sprintf("%d / %d / %d / %d", r.Handoffs, r.HandoffFailures, r.HandoffsSuperseded, r.HandoffsUnfinished)},
		[2]string{"  of the unfinished, queued (not sent yet)", fmt.Sprint(r.HandoffsQueued)},
	)
	for _, k := range slices.Sorted(maps.Keys(r.Errors)) {
		rows = append(rows, [2]string{"errors: " + k, fmt.Sprint(r.Errors[k])})
	}
	return append(rows, [2]string{"elapsed", r.Elapsed.Round(time.Millisecond).String()})
}

// WriteTable prints the report as a table for people.
func (r *Report) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	for _, row := range r.Rows() {
		fmt.Fprintf(tw, "%s\t%s\t\n", row[0], row[1])
	}
	return tw.Flush()
}
