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
	mu        sync.Mutex
	got       map[string]int // X-MessageID → times an app handler saw it
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
	Server                 string
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
		d := &Dev{Index: i, App: fmt.Sprintf("com.example.chaos%05d", i), f: f, got: map[string]int{}}
		dev, err := device.New(device.Config{Server: cfg.Server, Handlers: d.handlers(), Logger: cfg.Logger,
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
		d.mu.Lock()
		d.got[m.MessageID]++
		d.mu.Unlock()
	}
	d.f.signal()
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
}

// Sender pushes notifications to a fleet and keeps the ledger.
type Sender struct {
	// Pad, if positive, pads raw payloads to this many bytes.
	Pad    int
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
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.URI, bytes.NewReader(body))
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

// Report is the verdict of Check.
type Report struct {
	Pushes      int // every push sent
	Checked     int // answered 200 Received
	Delivered   int // Received ones that arrived exactly once
	Lost        int // Received and never arrived
	Duplicates  int // arrived more than once (any outcome)
	Spurious    int // arrived although refused, or never sent
	Refused     int // QueueFull, 4xx
	Unknown     int // no answer or 503
	UnknownSeen int // of those, arrived (once)
	Expired     int // Received, not arrived, and past its TTL
	Examples    []string
}

func (r Report) String() string {
	return fmt.Sprintf("pushes %d, checked (200 Received) %d, delivered exactly once %d, lost %d, duplicates %d, spurious %d, refused %d, unanswered/503 %d (of which arrived once %d), expired %d",
		r.Pushes, r.Checked, r.Delivered, r.Lost, r.Duplicates, r.Spurious, r.Refused, r.Unknown, r.UnknownSeen, r.Expired)
}

// Check compares the ledger with what the apps saw. ttl is the server's
// queue TTL: a Received push not delivered counts as expired only when
// it was answered more than ttl before now.
func (s *Sender) Check(f *Fleet, ttl time.Duration, answeredBefore time.Time) Report {
	var r Report
	ledger := s.Ledger()
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
		switch x.Outcome {
		case Received:
			r.Checked++
			switch {
			case n == 1:
				r.Delivered++
			case n == 0 && ttl > 0 && time.Since(answeredBefore) > ttl:
				r.Expired++
			case n == 0:
				r.Lost++
				ex("%s (class %d) to device %d answered Received, never arrived", x.ID, x.Class, x.Dev.Index)
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
