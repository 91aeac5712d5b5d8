// Package load sends notifications to many Channel URIs through the real
// MPNS HTTP API, as a cloud service under load would: open loop at a target
// rate, or closed loop with a number of concurrent senders, with a mix of
// toast, tile and raw, over keep-alive connections. It counts the answers
// (HTTP status and X-NotificationStatus) and the round-trip time in a
// histogram.
package load

import (
	"bufio"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/openmpns/openmpns/shared/histogram"
	"github.com/openmpns/openmpns/shared/payload"
	"github.com/openmpns/openmpns/shared/sender"
)

// Target is a Channel URI to send to.
type Target struct {
	URI string `json:"uri"`
	App string `json:"app,omitempty"`
	// Device is the index of the channel's device in its fleet, if known
	// (fleet's channel files carry it); it picks the node a push goes to
	// when pushes are spread over a cluster's nodes.
	Device int `json:"device,omitempty"`
}

// Mix is the relative weight of each kind of notification.
type Mix struct{ Toast, Tile, Raw int }

// ParseMix reads "toast=60,tile=30,raw=10" (any subset, any order).
func ParseMix(s string) (Mix, error) {
	var m Mix
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		k, v, ok := strings.Cut(part, "=")
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if !ok || err != nil || n < 0 {
			return Mix{}, fmt.Errorf("load: mix %q: want kind=weight, e.g. toast=60", part)
		}
		switch strings.TrimSpace(k) {
		case "toast":
			m.Toast = n
		case "tile":
			m.Tile = n
		case "raw":
			m.Raw = n
		default:
			return Mix{}, fmt.Errorf("load: mix %q: the kinds are toast, tile and raw", part)
		}
	}
	if m.Toast+m.Tile+m.Raw == 0 {
		return Mix{}, errors.New("load: the mix sends nothing; give a weight above 0")
	}
	return m, nil
}

func (m Mix) String() string { return fmt.Sprintf("toast=%d,tile=%d,raw=%d", m.Toast, m.Tile, m.Raw) }

// kind returns the kind of the i-th notification: the mix is followed
// exactly over every run of Toast+Tile+Raw notifications.
func (m Mix) kind(i uint64) payload.Kind {
	n := i % uint64(m.Toast+m.Tile+m.Raw)
	switch {
	case n < uint64(m.Toast):
		return payload.KindToast
	case n < uint64(m.Toast+m.Tile):
		return payload.KindTile
	default:
		return payload.KindRaw
	}
}

// ReadTargets reads a channels file: JSON lines (as `openmpns fleet
// --channels-out x.jsonl` writes) or CSV with a header naming a "uri"
// column (as `--channels-out x.csv` writes).
//
// A fleet writes a line for every Channel URI as it appears, and another
// when a channel's URI changes (the device re-registered, its channel was
// opened again): the file keeps the old line. ReadTargets returns only
// each channel's current URI, in the order of the lines it keeps, and how
// many lines it left out (replaced) because a later one replaces them:
// a line whose uri a later line names in its "replaces" field (or column),
// and a line whose device_id, app and channel (all three given) a later
// line has too. Lines without a device_id and not named by a "replaces"
// are all kept.
func ReadTargets(r io.Reader) (targets []Target, replaced int, err error) {
	br := bufio.NewReader(r)
	first, err := br.Peek(1)
	if err != nil {
		return nil, 0, errors.New("load: the channels file is empty")
	}
	var lines []channelLine
	if first[0] == '{' {
		dec := json.NewDecoder(br)
		for n := 1; ; n++ {
			var l channelLine
			if err := dec.Decode(&l); err == io.EOF {
				break
			} else if err != nil {
				return nil, 0, fmt.Errorf("load: channels file, record %d: %w", n, err)
			}
			if l.URI == "" {
				return nil, 0, fmt.Errorf("load: channels file, record %d: no uri", n)
			}
			lines = append(lines, l)
		}
	} else {
		cr := csv.NewReader(br)
		head, err := cr.Read()
		if err != nil {
			return nil, 0, fmt.Errorf("load: channels file: %w", err)
		}
		col := func(name string) int { return slices.Index(head, name) }
		uri, app, dev, id, ch, repl := col("uri"), col("app"), col("device"), col("device_id"), col("channel"), col("replaces")
		if uri < 0 {
			return nil, 0, errors.New(`load: channels file: the CSV header has no "uri" column`)
		}
		field := func(rec []string, i int) string {
			if i < 0 {
				return ""
			}
			return rec[i]
		}
		for {
			rec, err := cr.Read()
			if err == io.EOF {
				break
			}
			if err != nil {
				return nil, 0, fmt.Errorf("load: channels file: %w", err)
			}
			l := channelLine{Target: Target{URI: rec[uri], App: field(rec, app)},
				DeviceID: field(rec, id), Channel: field(rec, ch), Replaces: field(rec, repl)}
			if d := field(rec, dev); d != "" {
				if l.Device, err = strconv.Atoi(d); err != nil || l.Device < 0 {
					return nil, 0, fmt.Errorf("load: channels file: device %q is not an index", d)
				}
			}
			lines = append(lines, l)
		}
	}
	if len(lines) == 0 {
		return nil, 0, errors.New("load: the channels file lists no channels")
	}
	targets, replaced = current(lines) // the last line is always current: never none
	return targets, replaced, nil
}

// channelLine is one line of a channels file.
type channelLine struct {
	Target
	DeviceID string `json:"device_id"`
	Channel  string `json:"channel"`
	// Replaces is the Channel URI this line replaces (the same device's
	// app and channel had it until then); "" for a channel's first.
	Replaces string `json:"replaces"`
}

// current returns the targets of the lines that no later line replaces
// (see ReadTargets), and how many it left out. It reads the lines from
// the last, so that only a later line replaces one: a URI that comes back
// (A, then B replacing A, then A replacing B) is current on its last line.
func current(lines []channelLine) ([]Target, int) {
	type key struct{ device, app, channel string }
	replacedURI := map[string]bool{} // URIs a later line replaces
	later := map[key]bool{}          // channels a later line has
	keep := make([]bool, len(lines))
	n := 0
	for i, l := range slices.Backward(lines) {
		k, full := key{l.DeviceID, l.App, l.Channel}, l.DeviceID != "" && l.App != "" && l.Channel != ""
		if keep[i] = !replacedURI[l.URI] && !(full && later[k]); keep[i] {
			n++
		}
		if full {
			later[k] = true
		}
		if l.Replaces != "" && l.Replaces != l.URI {
			replacedURI[l.Replaces] = true
		}
	}
	out := make([]Target, 0, n)
	for i, l := range lines {
		if keep[i] {
			out = append(out, l.Target)
		}
	}
	return out, len(lines) - n
}

// Config describes a run. Give Rate (open loop) or Concurrency alone
// (closed loop), and Count or Duration.
type Config struct {
	Targets []Target
	// Rate is notifications per second (open loop). The round-trip time is
	// measured from when each send was due, so a server that falls behind
	// shows in the latency instead of hiding it.
	Rate float64
	// Concurrency is the number of senders: the whole load in closed loop,
	// the most requests in flight in open loop (default 512 there).
	Concurrency int
	// Count stops after this many notifications; Duration after this long
	// from the start of the clock, once the senders are ready.
	Count    int
	Duration time.Duration
	Mix      Mix
	Interval sender.Interval
	// RawSize, if above 0, is the size in bytes of every raw
	// notification's payload; 0 sends a short JSON object.
	RawSize int
	// Header is added to every request (e.g. Authorization).
	Header http.Header
	// HTTP is the client for net/http; nil means sender.NewHTTPClient
	// sized to the concurrency. By default plain-http Channel URIs are sent
	// without net/http (see NetHTTP); giving HTTP sends everything through it.
	HTTP *http.Client
	// NetHTTP sends through net/http (HTTP) even when every Channel URI is
	// plain http. Otherwise those go out on the tool's own keep-alive
	// HTTP/1.1 connections, one set per sender, which cost the sending
	// machine a fraction of the CPU (docs/benchmarks.md, issue 10).
	NetHTTP bool
	// Progress, if set, gets the counters every ProgressEvery (default 1 s).
	Progress      func(Progress)
	ProgressEvery time.Duration
	// Ready, if set, is called when the senders are ready and the clock
	// starts, with how many senders there are and how long they took.
	Ready func(senders int, took time.Duration)
}

// Progress is a running count.
type Progress struct {
	Sent, Errors int64
	Elapsed      time.Duration
}

// Report is what a run did.
type Report struct {
	Mode        string  `json:"mode"` // "rate" or "concurrency"
	TargetRate  float64 `json:"target_rate,omitempty"`
	Concurrency int     `json:"concurrency"`
	Channels    int     `json:"channels"`
	Mix         string  `json:"mix"`
	Sent        int64   `json:"sent"`
	// Answers counts "HTTP-status NotificationStatus", e.g. "200 Received".
	Answers map[string]int64 `json:"answers"`
	// Errors counts transport errors by message.
	Errors   map[string]int64 `json:"errors"`
	ByKind   map[string]int64 `json:"by_kind"`
	Received int64            `json:"received"` // answered 200 Received
	// Late counts open-loop sends that could not start on time because
	// every sender was busy.
	Late int64 `json:"late"`
	// Ready is how long the senders took to get ready before the clock
	// started (their timers, and their connections on the plain-HTTP
	// path); Elapsed and the round trips do not count it.
	Ready        time.Duration       `json:"ready_ns"`
	Elapsed      time.Duration       `json:"elapsed_ns"`
	AchievedRate float64             `json:"achieved_rate"`
	RTT          *histogram.Snapshot `json:"rtt_histogram"`
	RTTSummary   histogram.Summary   `json:"rtt"`
}

// WriteTable prints the report for people.
func (r *Report) WriteTable(w io.Writer) {
	fmt.Fprintf(w, "sent %d to %d channels in %v: %.0f/s (%s", r.Sent, r.Channels, r.Elapsed.Round(time.Millisecond), r.AchievedRate, r.Mode)
	if r.Mode == "rate" {
		fmt.Fprintf(w, " target %.0f/s, %d late", r.TargetRate, r.Late)
	}
	fmt.Fprintf(w, ", %d senders)\n", r.Concurrency)
	fmt.Fprintf(w, "  senders ready in %v before the clock started\n", r.Ready.Round(time.Microsecond))
	for _, k := range slices.Sorted(maps.Keys(r.Answers)) {
		fmt.Fprintf(w, "  %-28s %d\n", k, r.Answers[k])
	}
	for _, k := range slices.Sorted(maps.Keys(r.Errors)) {
		fmt.Fprintf(w, "  error: %-21s %d\n", k, r.Errors[k])
	}
	fmt.Fprintf(w, "  round trip: %s\n", r.RTTSummary)
}

type job struct {
	seq uint64
	due time.Time
}

// userAgent is the User-Agent of every request.
const userAgent = "openmpns-load/1"

type run struct {
	cfg    Config
	client *sender.Client
	fast   *fastPlan // nil: through net/http
	bodies [4][]byte
	rtt    histogram.Histogram
	sent   atomic.Int64
	errs   atomic.Int64
	late   atomic.Int64

	// next is the number of the next notification to send; in open loop
	// it is due at start + next×interval.
	next       atomic.Uint64
	start      time.Time
	interval   time.Duration                 // 0: closed loop
	grid       time.Duration                 // open loop: senders wake on its multiples (0: at each due time)
	until      func(time.Time) time.Duration // time.Until; tests give their own clock
	newSleeper func(feed context.Context) sleeper

	mu      sync.Mutex
	answers map[string]int64
	errors  map[string]int64
	byKind  map[string]int64
}

// Run sends until Count or Duration is reached or ctx ends, and reports.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if len(cfg.Targets) == 0 {
		return nil, errors.New("load: no channels to send to")
	}
	if cfg.Rate <= 0 && cfg.Concurrency <= 0 {
		return nil, errors.New("load: give a rate (open loop) or a concurrency (closed loop)")
	}
	if cfg.Rate > 1e7 {
		return nil, errors.New("load: a rate above 10,000,000/s is not a rate this tool can pace")
	}
	if cfg.Rate < 0 || cfg.Concurrency < 0 || cfg.Count < 0 || cfg.Duration < 0 || cfg.RawSize < 0 {
		return nil, errors.New("load: rate, concurrency, count, duration and raw size must not be negative")
	}
	if cfg.Count == 0 && cfg.Duration == 0 {
		return nil, errors.New("load: give a count or a duration")
	}
	if cfg.Mix == (Mix{}) {
		cfg.Mix = Mix{Toast: 60, Tile: 30, Raw: 10}
	}
	mode := "concurrency"
	if cfg.Rate > 0 {
		mode = "rate"
		if cfg.Concurrency == 0 {
			cfg.Concurrency = 512
		}
	}
	useNetHTTP := cfg.NetHTTP || cfg.HTTP != nil
	if cfg.HTTP == nil {
		cfg.HTTP = sender.NewHTTPClient(cfg.Concurrency)
	}
	if cfg.ProgressEvery <= 0 {
		cfg.ProgressEvery = time.Second
	}
	r := &run{cfg: cfg, client: &sender.Client{HTTP: cfg.HTTP, UserAgent: userAgent}, until: time.Until, newSleeper: newSleeper,
		answers: map[string]int64{}, errors: map[string]int64{}, byKind: map[string]int64{}}
	r.bodies[payload.KindToast] = (&payload.Toast{Text1: "OpenMPNS load", Text2: "a toast from openmpns load", Param: "/Load.xaml"}).Encode()
	r.bodies[payload.KindTile] = (&payload.Tile{Template: payload.TemplateFlip, Fields: map[string]string{
		payload.Title: "Load", payload.Count: "7", payload.BackContent: "openmpns load"}}).Encode()
	r.bodies[payload.KindRaw] = []byte(`{"from":"openmpns load"}`)
	if cfg.RawSize > 0 {
		r.bodies[payload.KindRaw] = rawBody(cfg.RawSize)
	}
	if !useNetHTTP {
		p, ok, err := planFast(&cfg, &r.bodies)
		if err != nil {
			return nil, err
		}
		if ok {
			r.fast = p
		}
	}

	// feed stops handing out work at the deadline (Duration after the
	// clock starts); requests in flight then still finish (and count)
	// under ctx.
	feed, endFeed := context.WithCancel(ctx)
	defer endFeed()
	if mode == "rate" {
		r.interval, r.grid = pacing(cfg.Rate)
	}
	senders := cfg.Concurrency
	if cfg.Count > 0 {
		senders = min(senders, cfg.Count) // a sender with nothing to send would only open connections
	}
	// The senders get ready (their timers; on the plain-HTTP path a
	// connection to each server) before the clock starts: what a run
	// measures is the sending, not the set-up. Set up on the clock, 512
	// senders' first sends each paid a connection and their set-up held
	// the sends of the first half second back by up to 25 ms, most of the
	// paced tail of a short run (docs/benchmarks.md, issue 10, session 10).
	prepared := time.Now()
	var ready sync.WaitGroup
	go1 := make(chan struct{}) // closed when the clock starts
	var wg sync.WaitGroup
	for range senders {
		ready.Add(1)
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.sender(ctx, feed, &ready, go1)
		}()
	}
	ready.Wait()
	start := time.Now()
	r.start = start
	readyTook := start.Sub(prepared)
	close(go1)
	if cfg.Ready != nil {
		cfg.Ready(senders, readyTook)
	}
	if cfg.Duration > 0 {
		t := time.AfterFunc(cfg.Duration, endFeed)
		defer t.Stop()
	}
	stopProgress := make(chan struct{})
	var pwg sync.WaitGroup
	if cfg.Progress != nil {
		pwg.Add(1)
		go func() {
			defer pwg.Done()
			t := time.NewTicker(cfg.ProgressEvery)
			defer t.Stop()
			for {
				select {
				case <-t.C:
					cfg.Progress(Progress{Sent: r.sent.Load(), Errors: r.errs.Load(), Elapsed: time.Since(start)})
				case <-stopProgress:
					return
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	close(stopProgress)
	pwg.Wait()

	rep := &Report{Mode: mode, TargetRate: cfg.Rate, Concurrency: senders, Channels: len(cfg.Targets),
		Mix: cfg.Mix.String(), Sent: r.sent.Load(), Answers: r.answers, Errors: r.errors, ByKind: r.byKind,
		Received: r.answers["200 Received"], Late: r.late.Load(), Ready: readyTook, Elapsed: elapsed, RTT: r.rtt.Snapshot()}
	if elapsed > 0 {
		rep.AchievedRate = float64(rep.Sent) / elapsed.Seconds()
	}
	rep.RTTSummary = rep.RTT.Summary()
	return rep, nil
}

// pacing returns the time between two notifications at rate and the grid
// the senders wake on. Above 1,000/s the notifications due within a
// millisecond are woken together at its end, as the 1 ms ticker that paced
// them before released them: one wake-up of the process for several
// notifications, not one each.
func pacing(rate float64) (interval, grid time.Duration) {
	interval = time.Duration(float64(time.Second) / rate)
	if interval < time.Millisecond {
		grid = time.Millisecond
	}
	return interval, grid
}

// take is one sender's loop: it takes the next notification as soon as it
// is free (a number shared by every sender, so Count is exact and the mix
// followed in order) and sends it with send, until Count is reached or
// feed ends. In open loop each notification is due at start + seq×interval
// and is sent then (above 1,000/s at the end of the millisecond it falls
// due in: see grid): a sender that takes one earlier sleeps on its own timer
// until then, so a send costs one wake-up of its sender and no hand-off
// between goroutines; one taken later, by a sender that was busy sending
// then, counts late (every sender was busy). The round trip is measured
// from the due time all the same. At most Concurrency sends are in flight,
// one per sender.
func (r *run) take(feed context.Context, sl sleeper, first *uint64, send func(job)) {
	defer func() {
		if sl != nil {
			sl.close()
		}
	}()
	for busy := false; feed.Err() == nil; busy = true {
		var seq uint64
		if first != nil { // taken before the clock started (sender)
			seq, first = *first, nil
		} else {
			seq = r.next.Add(1) - 1
		}
		if r.cfg.Count > 0 && seq >= uint64(r.cfg.Count) {
			return
		}
		j := job{seq: seq}
		if r.interval > 0 {
			at := time.Duration(seq) * r.interval
			j.due = r.start.Add(at)
			if r.grid > 0 {
				at = (at + r.grid - 1) / r.grid * r.grid
			}
			switch wait := r.until(r.start.Add(at)); {
			case wait > 0:
				if sl == nil {
					sl = r.newSleeper(feed)
				}
				if !sl.sleep(wait) {
					return
				}
			case wait < 0 && busy:
				r.late.Add(1)
			}
		}
		send(j)
	}
}

// sender is one of the run's senders. It gets ready, says so on ready,
// waits for start and sends what it takes (take). Getting ready is making
// its timer (open loop) and, on the plain-HTTP path, its connections to
// the servers: at once in closed loop; in open loop once its first
// notification is at most connectAhead away, which it takes before the
// clock starts (a connection opened long before its first request would
// meet the server's header timeout: openmpns serve closes one silent for
// 10 s). On the plain-HTTP path it sends on connections of its own,
// counts in a tally of its own and adds the tally to the run's at the end.
func (r *run) sender(ctx, feed context.Context, ready *sync.WaitGroup, start <-chan struct{}) {
	var sl sleeper
	if r.interval > 0 {
		sl = r.newSleeper(feed)
	}
	if r.fast == nil {
		ready.Done()
		<-start
		r.take(feed, sl, nil, func(j job) { r.send(ctx, j) })
		return
	}
	s := &h1sender{plan: r.fast, t: newTally(), conns: map[string]*h1conn{}, buf: make([]byte, 0, 1024)}
	stop := context.AfterFunc(ctx, s.closeAll) // a cancelled run ends its requests at once
	defer func() {
		stop()
		s.closeAll()
		r.merge(s.t)
	}()
	var first *uint64
	var firstAt time.Duration // after the start
	if r.interval > 0 {
		seq := r.next.Add(1) - 1
		first, firstAt = &seq, time.Duration(seq)*r.interval
	}
	early := firstAt <= connectAhead
	if early {
		s.connect(ctx)
	}
	ready.Done()
	<-start
	if !early {
		if wait := r.until(r.start.Add(firstAt - connectAhead)); wait > 0 && !sl.sleep(wait) {
			return
		}
		s.connect(ctx)
	}
	r.take(feed, sl, first, func(j job) { r.sendFast(ctx, s, j) })
}

// connectAhead is how long before its first notification is due an
// open-loop sender connects (sender).
var connectAhead = 2 * time.Second

func (r *run) sendFast(ctx context.Context, s *h1sender, j job) {
	t := &s.plan.targets[j.seq%uint64(len(s.plan.targets))]
	kind := r.cfg.Mix.kind(j.seq)
	now := time.Now()
	s.buf = append(s.buf[:0], t.head...)
	s.buf = append(s.buf, s.plan.kind[kind]...)
	// The message id carries the send time: a fleet on this clock measures
	// from here to its receipt.
	s.buf = sender.AppendTimedMessageID(s.buf, now, j.seq)
	s.buf = append(s.buf, "\r\n\r\n"...)
	s.buf = append(s.buf, r.bodies[kind]...)
	begin := j.due
	if begin.IsZero() {
		begin = now
	}
	code, status, err := s.roundTrip(ctx, t.addr, now)
	if err != nil && ctx.Err() != nil {
		return // the run ended while this was in flight: not counted
	}
	r.rtt.Record(time.Since(begin))
	r.sent.Add(1)
	s.t.byKind[kind]++
	if err != nil {
		r.errs.Add(1)
		msg := err.Error()
		if i := strings.LastIndex(msg, ": "); i >= 0 {
			msg = msg[i+2:] // the cause, as the net/http path counts it
		}
		s.t.errors[msg]++
		return
	}
	s.t.answers[answerKey{code, status}]++
}

// merge adds a sender's tally to the run's counts.
func (r *run) merge(t *tally) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for k, n := range t.answers {
		key := strconv.Itoa(k.code)
		if k.status != "" {
			key += " " + k.status
		}
		r.answers[key] += n
	}
	for k, n := range t.errors {
		r.errors[k] += n
	}
	for k, n := range t.byKind {
		if n > 0 {
			r.byKind[payload.Kind(k).String()] += n
		}
	}
}

// rawBody returns n bytes of printable payload.
func rawBody(n int) []byte {
	const pattern = "openmpns load raw payload "
	b := make([]byte, n)
	for i := range b {
		b[i] = pattern[i%len(pattern)]
	}
	return b
}

func (r *run) send(ctx context.Context, j job) {
	t := r.cfg.Targets[j.seq%uint64(len(r.cfg.Targets))]
	kind := r.cfg.Mix.kind(j.seq)
	now := time.Now()
	// The message id carries the send time: a fleet on this clock measures
	// from here to its receipt.
	req := sender.Request{URI: t.URI, Kind: kind, Class: sender.ClassFor(kind, r.cfg.Interval), Body: r.bodies[kind],
		Header: r.cfg.Header, MessageID: sender.NewTimedMessageID(now, j.seq)}
	begin := j.due
	if begin.IsZero() {
		begin = now
	}
	resp, err := r.client.Send(ctx, req)
	if err != nil && ctx.Err() != nil {
		return // the run ended while this was in flight: not counted
	}
	r.rtt.Record(time.Since(begin))
	r.sent.Add(1)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.byKind[kind.String()]++
	if err != nil {
		r.errs.Add(1)
		msg := err.Error()
		if i := strings.LastIndex(msg, ": "); i >= 0 {
			msg = msg[i+2:] // the cause, without the per-URI prefix
		}
		r.errors[msg]++
		return
	}
	key := strconv.Itoa(resp.StatusCode)
	if resp.NotificationStatus != "" {
		key += " " + resp.NotificationStatus
	}
	r.answers[key]++
}
