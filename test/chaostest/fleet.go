//go:build linux

package chaostest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/openmpns/openmpns/device"
	"github.com/openmpns/openmpns/server"
	"github.com/openmpns/openmpns/shared/payload"
)

// Dev is one device of a fleet with one channel, counting what its app saw.
type Dev struct {
	*device.Device
	Index int
	App   string
	URI   string

	f         *Fleet
	connected atomic.Bool
	// gate is held for reading by every push to the device and for writing
	// by SetOnline, so that a push lies wholly before, inside or after an
	// offline spell.
	gate sync.RWMutex
	mu   sync.Mutex
	got  map[string]int       // X-MessageID → times an app handler saw it
	at   map[string]time.Time // X-MessageID → when an app handler first saw it
	// spells are the times the device was offline (airplane mode), in
	// order: From is taken once the connection is closed, To before the
	// device may reconnect.
	spells []Span
}

// Span is a stretch of time; a zero To: not over yet.
type Span struct{ From, To time.Time }

// end is s.To, or now while s is not over.
func (s Span) end(now time.Time) time.Time {
	if s.To.IsZero() {
		return now
	}
	return s.To
}

// Fleet is a set of real devices, each with one open channel bound to toast
// and its app running (raw notifications reach it).
type Fleet struct {
	Devs []*Dev

	mu      sync.Mutex
	changed chan struct{}
	stray   int // notifications without a message id
}

// FleetConfig configures NewFleet.
type FleetConfig struct {
	Server string
	// Servers are more nodes of the service; each device fails over to
	// the next (device.Config.Servers).
	Servers                []string
	N                      int
	MinBackoff, MaxBackoff time.Duration
	// Parallel bounds how many devices are set up at once (default 32).
	Parallel int
	Logger   *slog.Logger
}

// NewFleet starts n devices and opens their channels; they are closed at
// the end of the test.
func NewFleet(t testing.TB, cfg FleetConfig) *Fleet {
	t.Helper()
	if cfg.Parallel <= 0 {
		cfg.Parallel = 32
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	f := &Fleet{Devs: make([]*Dev, cfg.N), changed: make(chan struct{})}
	t.Cleanup(f.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	sem := make(chan struct{}, cfg.Parallel)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs []error
	for i := range cfg.N {
		d := &Dev{Index: i, App: fmt.Sprintf("com.example.chaos%05d", i), f: f, got: map[string]int{}, at: map[string]time.Time{}}
		dev, err := device.New(device.Config{Server: cfg.Server, Servers: cfg.Servers, Handlers: d.handlers(), Logger: cfg.Logger,
			MinBackoff: cfg.MinBackoff, MaxBackoff: cfg.MaxBackoff, Client: "chaostest"})
		if err != nil {
			t.Fatal(err)
		}
		d.Device = dev
		d.SetAppState(d.App, device.AppState{Running: true})
		f.Devs[i] = d
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			ch := d.NewChannel(d.App, "main", "")
			err := ch.Open(ctx)
			if err == nil {
				err = ch.BindToShellToast(ctx)
			}
			if err != nil {
				mu.Lock()
				errs = append(errs, fmt.Errorf("device %d: %w", i, err))
				mu.Unlock()
				return
			}
			d.URI = ch.ChannelURI()
		}()
	}
	wg.Wait()
	if len(errs) > 0 {
		t.Fatalf("fleet set-up: %d devices failed, first: %v", len(errs), errs[0])
	}
	return f
}

func (d *Dev) handlers() device.Handlers {
	return device.Handlers{
		ConnectionStatusChanged: func(s device.ConnectionStatus) {
			d.connected.Store(s == device.Connected)
			d.f.signal()
		},
		ShellToast: func(m device.Meta, _ *payload.Toast) { d.record(m) },
		AppToast:   func(m device.Meta, _ *payload.Toast) { d.record(m) },
		Tile:       func(m device.Meta, _ *payload.Tile, _ []string) { d.record(m) },
		Raw:        func(m device.Meta, _ []byte) { d.record(m) },
		RawDropped: func(m device.Meta) { d.record(m) },
	}
}

func (d *Dev) record(m device.Meta) {
	if m.MessageID == "" {
		d.f.mu.Lock()
		d.f.stray++
		d.f.mu.Unlock()
	} else {
		now := time.Now()
		d.mu.Lock()
		if d.got[m.MessageID]++; d.got[m.MessageID] == 1 {
			d.at[m.MessageID] = now
		}
		d.mu.Unlock()
	}
	d.f.signal()
}

// SetOnline switches airplane mode off (true) or on (false), as
// device.Device.SetOnline does, and records the offline spells that Check
// judges expiry by. It waits for the pushes to the device in progress, and
// pushes wait for it.
func (d *Dev) SetOnline(on bool) {
	d.gate.Lock()
	defer d.gate.Unlock()
	d.mu.Lock()
	n := len(d.spells)
	offline := n > 0 && d.spells[n-1].To.IsZero()
	if on && offline {
		d.spells[n-1].To = time.Now() // before the device can reconnect
	}
	d.mu.Unlock()
	d.Device.SetOnline(on)
	if !on && !offline {
		now := time.Now() // the connection is closed
		d.mu.Lock()
		d.spells = append(d.spells, Span{From: now})
		d.mu.Unlock()
	}
}

// Got reports how many times the app saw the notification with message id.
func (d *Dev) Got(id string) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.got[id]
}

// Connected reports the device's last connection status event.
func (d *Dev) Connected() bool { return d.connected.Load() }

func (f *Fleet) signal() {
	f.mu.Lock()
	close(f.changed)
	f.changed = make(chan struct{})
	f.mu.Unlock()
}

// WaitFor waits, without polling, until cond holds (it is re-checked on
// every device event) or ctx ends.
func (f *Fleet) WaitFor(ctx context.Context, cond func() bool) error {
	for {
		f.mu.Lock()
		ch := f.changed
		f.mu.Unlock()
		if cond() {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("chaostest: waiting: %w", ctx.Err())
		}
	}
}

// ConnectedCount counts devices whose connection is up.
func (f *Fleet) ConnectedCount() int {
	n := 0
	for _, d := range f.Devs {
		if d.Connected() {
			n++
		}
	}
	return n
}

// Close closes every device, in parallel.
func (f *Fleet) Close() {
	var wg sync.WaitGroup
	sem := make(chan struct{}, 256)
	for _, d := range f.Devs {
		if d == nil || d.Device == nil {
			continue
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() { defer wg.Done(); defer func() { <-sem }(); d.Close() }()
	}
	wg.Wait()
}

// Outcome is what a push's answer says about delivery.
type Outcome int

// Outcomes.
const (
	// Refused: the server did not take the notification (4xx, QueueFull,
	// Suppressed): it must never arrive.
	Refused Outcome = iota
	// Received: 200 Received: it must arrive exactly once.
	Received
	// Unknown: no answer (the server died mid-request) or 503 (it could not
	// store it, possibly after sending it): it may arrive, at most once.
	Unknown
)

// Sent is one push in the ledger.
type Sent struct {
	ID      string
	Dev     *Dev
	Outcome Outcome
	Status  string // HTTP status and X-NotificationStatus, or the error
	Class   int
	// Start is read just before the request is sent (so before the server
	// accepted it), Answered just after the answer came (so after): the
	// server's expiry time lies between Start+TTL and Answered+TTL.
	Start, Answered time.Time
}

// Sender pushes notifications to a fleet and keeps the ledger.
type Sender struct {
	// Pad, if positive, pads raw payloads to this many bytes.
	Pad int
	// Route, if set, gives the URL a push for a Channel URI goes to (a
	// cluster's load balancer: which node takes it). Set it before pushing.
	Route  func(uri string) string
	client *http.Client
	seq    atomic.Uint64

	mu      sync.Mutex
	ledger  []*Sent
	counts  map[string]int
	changed chan struct{} // closed and replaced at every answer
}

// NewSender returns a sender with its own HTTP transport.
func NewSender() *Sender {
	tr := &http.Transport{MaxIdleConns: 512, MaxIdleConnsPerHost: 512, IdleConnTimeout: 30 * time.Second}
	return &Sender{client: &http.Client{Transport: tr, Timeout: 30 * time.Second}, counts: map[string]int{}, changed: make(chan struct{})}
}

// WaitAnswers waits until the sender has had n answers (errors included)
// in all, or ctx ends.
func (s *Sender) WaitAnswers(ctx context.Context, n int) error {
	for {
		s.mu.Lock()
		have, ch := len(s.ledger), s.changed
		s.mu.Unlock()
		if have >= n {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("chaostest: waiting for %d answers, have %d: %w", n, have, ctx.Err())
		}
	}
}

// Answered is how many pushes have been answered (errors included).
func (s *Sender) Answered() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.ledger)
}

// Close releases idle connections.
func (s *Sender) Close() { s.client.CloseIdleConnections() }

// Push sends one notification to d: a toast or raw, of the given class
// (2, 12, 22 toast; 3, 13, 23 raw), and records the outcome.
func (s *Sender) Push(ctx context.Context, d *Dev, class int) *Sent {
	id := fmt.Sprintf("chaos-%d", s.seq.Add(1))
	var body []byte
	target := ""
	if class%10 == 2 {
		target = "toast"
		body = (&payload.Toast{Text1: "chaos", Text2: id}).Encode()
	} else {
		body = []byte("raw " + id)
		if len(body) < s.Pad {
			body = append(body, bytes.Repeat([]byte{'.'}, s.Pad-len(body))...)
		}
	}
	sent := &Sent{ID: id, Dev: d, Class: class, Outcome: Unknown}
	d.gate.RLock()
	defer d.gate.RUnlock()
	sent.Start = time.Now()
	uri := d.URI
	if s.Route != nil {
		uri = s.Route(uri)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, uri, bytes.NewReader(body))
	if err != nil {
		panic(err)
	}
	req.Header.Set("Content-Type", "text/xml")
	if target != "" {
		req.Header.Set("X-WindowsPhone-Target", target)
	}
	req.Header.Set("X-NotificationClass", fmt.Sprint(class))
	req.Header.Set("X-MessageID", id)
	resp, err := s.client.Do(req)
	if err != nil {
		sent.Status = "error"
	} else {
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		ns := resp.Header.Get("X-NotificationStatus")
		sent.Status = fmt.Sprintf("%d %s", resp.StatusCode, ns)
		switch {
		case resp.StatusCode == http.StatusOK && ns == "Received":
			sent.Outcome = Received
		case resp.StatusCode >= 500:
			sent.Outcome = Unknown
		default:
			sent.Outcome = Refused
		}
	}
	sent.Answered = time.Now()
	s.mu.Lock()
	s.ledger = append(s.ledger, sent)
	s.counts[strings.TrimSpace(sent.Status)]++
	close(s.changed)
	s.changed = make(chan struct{})
	s.mu.Unlock()
	return sent
}

// Ledger returns every push so far.
func (s *Sender) Ledger() []*Sent {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*Sent(nil), s.ledger...)
}

// Answers summarises the answers by status.
func (s *Sender) Answers() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	keys := make([]string, 0, len(s.counts))
	for k := range s.counts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%s: %d; ", k, s.counts[k])
	}
	return strings.TrimSuffix(b.String(), "; ")
}

// AllReceivedArrived reports whether every Received push has reached its app.
func (s *Sender) AllReceivedArrived() bool {
	for _, x := range s.Ledger() {
		if x.Outcome == Received && x.Dev.Got(x.ID) == 0 {
			return false
		}
	}
	return true
}

// AllDueArrived returns a condition for Fleet.WaitFor: every Received push
// that must arrive under e (see Check) has reached its app.
func (s *Sender) AllDueArrived(e Expiry) func() bool {
	return func() bool {
		now := time.Now()
		out := s.serverOut(e)
		for _, x := range s.Ledger() {
			if x.Outcome == Received && x.Dev.Got(x.ID) == 0 {
				if exp, _, _, _ := x.Dev.expect(x, e, out, now); exp == mustArrive {
					return false
				}
			}
		}
		return true
	}
}

// Expiry is how Check judges a push whose device was offline, or could
// not be reached for another reason. The server sets a notification's
// expiry time when it accepts it, between the push's Start and Answered, so
// it lies in [Start+TTL, Answered+TTL].
type Expiry struct {
	// TTL is the server's QueueTTL; 0: nothing expires, every Received push
	// must arrive.
	TTL time.Duration
	// ExpireMargin: a push sent while its device was offline must have
	// expired, and must never arrive, if the device stayed offline for more
	// than TTL+ExpireMargin after the answer. The server can only send it
	// once the device is back, past its expiry time; the margin covers
	// clock noise only.
	ExpireMargin time.Duration
	// DeliverWithin is how long a device needs, online with the server up,
	// to get every notification that is due (reconnect and dispatch). A
	// push must arrive if, once it is due (answered, past its batching
	// window, its device back), the device was online and the server up
	// for DeliverWithin before Start+TTL.
	DeliverWithin time.Duration
	// TimeScale is the server's: it gives the batching windows.
	TimeScale float64
	// ServerDown, if set, returns the times the server was down
	// (Proc.Downtime).
	ServerDown func() []Span
	// SlowAnswer, if positive: a push answered more slowly than this shows
	// that the server stalled (a slow fsync, a starved CPU) while it
	// waited; that time counts as down too.
	SlowAnswer time.Duration
}

// serverOut returns the times the server was down or seen stalled, by
// start.
func (s *Sender) serverOut(e Expiry) []Span {
	var out []Span
	if e.ServerDown != nil {
		out = e.ServerDown()
	}
	if e.SlowAnswer > 0 {
		for _, x := range s.Ledger() {
			if x.Answered.Sub(x.Start) > e.SlowAnswer {
				out = append(out, Span{From: x.Start, To: x.Answered})
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].From.Before(out[j].From) })
	return out
}

// expectation is what Check requires of a Received push.
type expectation int

const (
	mustArrive expectation = iota // exactly once
	mustExpire                    // never
	nearTTL                       // too close to the TTL to say: at most once
)

// expect says what the ledger requires of x, from the device's offline
// spells and the times the server was out (serverOut). waited tells that
// x was sent while the device was offline; from is when the device could
// first take it (the answer, or the end of that spell); reach is when,
// once x was due, the device and the server were both up for
// DeliverWithin.
func (d *Dev) expect(x *Sent, e Expiry, out []Span, now time.Time) (exp expectation, waited bool, from, reach time.Time) {
	d.mu.Lock()
	spells := append([]Span(nil), d.spells...)
	d.mu.Unlock()
	// The gate puts x wholly before, inside or after each spell.
	from, next := x.Answered, len(spells)
	for i, s := range spells {
		if s.From.After(x.Answered) {
			next = i
			break
		}
		if s.From.Before(x.Start) && s.end(now).After(x.Answered) {
			waited, from, next = true, s.end(now), i+1
			break
		}
	}
	if e.TTL <= 0 {
		return mustArrive, waited, from, from
	}
	if waited && from.Sub(x.Answered) > e.TTL+e.ExpireMargin {
		return mustExpire, waited, from, from
	}
	scale := e.TimeScale
	if scale <= 0 {
		scale = 1
	}
	reach = from
	if due := x.Answered.Add((&server.Config{TimeScale: scale}).BatchWindow(x.Class)); due.After(reach) {
		reach = due
	}
	// The first window of DeliverWithin from reach on with the device
	// online and the server up.
	blocks := append(spells[next:], out...)
	sort.Slice(blocks, func(i, j int) bool { return blocks[i].From.Before(blocks[j].From) })
	for _, b := range blocks {
		if !b.end(now).After(reach) {
			continue
		}
		if b.From.Sub(reach) >= e.DeliverWithin {
			break
		}
		reach = b.end(now)
	}
	if reach.Add(e.DeliverWithin).Before(x.Start.Add(e.TTL)) {
		return mustArrive, waited, from, reach
	}
	return nearTTL, waited, from, reach
}

// Report is the verdict of Check.
type Report struct {
	Pushes    int // every push sent
	Checked   int // answered 200 Received
	Delivered int // Received ones that must arrive and arrived exactly once
	Waited    int // of those, sent while the device was offline (it came back within the TTL)
	// LongestWait is the longest a Delivered one waited for its device,
	// from the answer.
	LongestWait time.Duration
	Lost        int // Received, must arrive, never arrived
	Duplicates  int // arrived more than once (any outcome)
	Spurious    int // arrived although refused, or never sent
	Refused     int // QueueFull, 4xx
	Unknown     int // no answer or 503
	UnknownSeen int // of those, arrived (once)
	// Expired: Received, the device offline for longer than TTL+margin
	// after the answer, and not arrived, as it must.
	Expired int
	// ExpiredUnknown: unanswered or 503 pushes in the same case (they may
	// have been stored: they must not arrive either).
	ExpiredUnknown int
	// Late: arrived although the device was offline for longer than
	// TTL+margin after the answer: delivered after expiry (any outcome).
	Late int
	// NearTTL: Received, the device back too close to the TTL to say;
	// NearTTLSeen of them arrived (once).
	NearTTL, NearTTLSeen int
	// Slowest is the longest time, among the Delivered ones, from reach
	// (see expect) to the arrival, if after it: DeliverWithin must exceed
	// it by far for the ledger to be sound.
	Slowest time.Duration
	// SlowestAnswer is the longest a push answered Received waited for
	// its answer.
	SlowestAnswer time.Duration
	Examples      []string
}

func (r Report) String() string {
	return fmt.Sprintf("pushes %d, checked (200 Received) %d, delivered exactly once %d (%d of them after waiting for an offline device, up to %v), lost %d, duplicates %d, spurious %d, "+
		"refused %d, unanswered/503 %d (of which arrived once %d), expired %d (and %d unanswered/503), delivered after expiry %d, near the TTL %d (of which arrived %d), slowest delivery %v, slowest answer %v",
		r.Pushes, r.Checked, r.Delivered, r.Waited, r.LongestWait.Round(time.Millisecond), r.Lost, r.Duplicates, r.Spurious,
		r.Refused, r.Unknown, r.UnknownSeen, r.Expired, r.ExpiredUnknown, r.Late, r.NearTTL, r.NearTTLSeen, r.Slowest.Round(time.Millisecond), r.SlowestAnswer.Round(time.Millisecond))
}

// Check compares the ledger with what the apps saw, judging expiry by e.
// Call it once every device that should be is online again and what must
// arrive has arrived (AllDueArrived).
func (s *Sender) Check(f *Fleet, e Expiry) Report {
	var r Report
	now := time.Now()
	ledger := s.Ledger()
	out := s.serverOut(e)
	known := map[string]bool{}
	ex := func(format string, a ...any) {
		if len(r.Examples) < 10 {
			r.Examples = append(r.Examples, fmt.Sprintf(format, a...))
		}
	}
	for _, x := range ledger {
		known[x.ID] = true
		r.Pushes++
		n := x.Dev.Got(x.ID)
		if n > 1 {
			r.Duplicates++
			ex("%s (%s) to device %d arrived %d times", x.ID, x.Status, x.Dev.Index, n)
		}
		exp, waited, from, reach := x.Dev.expect(x, e, out, now)
		if exp == mustExpire && n > 0 && x.Outcome != Refused {
			r.Late++
			ex("%s (class %d, %s) to device %d arrived after expiry: the device was offline for %v after the answer, TTL %v",
				x.ID, x.Class, x.Status, x.Dev.Index, from.Sub(x.Answered).Round(time.Millisecond), e.TTL)
		}
		switch x.Outcome {
		case Received:
			r.Checked++
			r.SlowestAnswer = max(r.SlowestAnswer, x.Answered.Sub(x.Start))
			switch {
			case exp == mustExpire:
				if n == 0 {
					r.Expired++
				}
			case exp == nearTTL:
				r.NearTTL++
				if n > 0 {
					r.NearTTLSeen++
				}
			case n == 1:
				r.Delivered++
				if waited {
					r.Waited++
					r.LongestWait = max(r.LongestWait, from.Sub(x.Answered))
				}
				x.Dev.mu.Lock()
				at := x.Dev.at[x.ID]
				x.Dev.mu.Unlock()
				r.Slowest = max(r.Slowest, at.Sub(reach))
			case n == 0:
				r.Lost++
				ex("%s (class %d) to device %d answered Received, never arrived (sent while offline: %v; device and server up from %v after it was sent, TTL %v)",
					x.ID, x.Class, x.Dev.Index, waited, reach.Sub(x.Start).Round(time.Millisecond), e.TTL)
			}
		case Refused:
			r.Refused++
			if n > 0 {
				r.Spurious++
				ex("%s to device %d answered %q, arrived", x.ID, x.Dev.Index, x.Status)
			}
		case Unknown:
			r.Unknown++
			if n > 0 {
				r.UnknownSeen++
			}
			if exp == mustExpire && n == 0 {
				r.ExpiredUnknown++
			}
		}
	}
	for _, d := range f.Devs {
		d.mu.Lock()
		for id := range d.got {
			if !known[id] {
				r.Spurious++
				ex("%s arrived at device %d, never sent", id, d.Index)
			}
		}
		d.mu.Unlock()
	}
	f.mu.Lock()
	r.Spurious += f.stray
	f.mu.Unlock()
	return r
}
