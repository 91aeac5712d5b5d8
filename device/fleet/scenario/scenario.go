// Package scenario runs repeatable QA scenarios against a fleet: a YAML
// file lists the fleet and phases (connect, send, expect, airplane, churn,
// restart, wait); expectations such as "every opted-in device shows 3
// toasts within 10 s" or "no duplicates" pass or fail, and the result can
// be written as JUnit XML for CI.
//
// The server a scenario runs against is named by the file: a base URL, or
// "embedded" or "process" for one the caller starts (Options.Server):
// openmpns fleet --scenario runs "embedded" in its own process and
// "process" as a child `openmpns serve`, which a restart phase with kill
// set ends with SIGKILL, so that a scenario can prove that what the server
// accepted survives a crash.
package scenario

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/openmpns/openmpns/device/fleet"
	"github.com/openmpns/openmpns/shared/sender/load"
)

// Scenario is a parsed scenario file.
type Scenario struct {
	Name string `yaml:"name"`
	// Server is a base URL, or "embedded" (the default) or "process" for
	// the server the caller runs (Options.Server): in its own process, or
	// as a child process that a restart phase may kill. Only those two can
	// be restarted by a phase.
	Server   string   `yaml:"server"`
	Devices  int      `yaml:"devices"`
	Apps     []string `yaml:"apps"`
	OptOut   Share    `yaml:"opt_out"`
	LowPower Share    `yaml:"low_power"`
	Seed     uint64   `yaml:"seed"`
	Phases   []Phase  `yaml:"phases"`
}

// Share is a fraction, written 0.1 or 10%.
type Share float64

// UnmarshalYAML reads 0.1 or "10%".
func (s *Share) UnmarshalYAML(n *yaml.Node) error {
	v := strings.TrimSpace(n.Value)
	pct := strings.HasSuffix(v, "%")
	f, err := strconv.ParseFloat(strings.TrimSuffix(v, "%"), 64)
	if err != nil {
		return fmt.Errorf("line %d: %q is not a share (0.1 or 10%%)", n.Line, v)
	}
	if pct {
		f /= 100
	}
	if f < 0 || f > 1 {
		return fmt.Errorf("line %d: share %q is not between 0 and 100%%", n.Line, v)
	}
	*s = Share(f)
	return nil
}

// Duration is a time.Duration written as "10s".
type Duration time.Duration

// UnmarshalYAML reads a Go duration.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := time.ParseDuration(n.Value)
	if err != nil || v < 0 {
		return fmt.Errorf("line %d: %q is not a duration such as 10s", n.Line, n.Value)
	}
	*d = Duration(v)
	return nil
}

// Phase is one step; exactly one field is set.
type Phase struct {
	Connect  *Connect  `yaml:"connect"`
	Send     *Send     `yaml:"send"`
	Expect   *Expect   `yaml:"expect"`
	Airplane *Airplane `yaml:"airplane"`
	Churn    *Churn    `yaml:"churn"`
	Restart  *Restart  `yaml:"restart"`
	Wait     *Duration `yaml:"wait"`
}

// Connect starts the fleet and waits until every device is registered.
type Connect struct {
	Rate   float64  `yaml:"rate"`
	Within Duration `yaml:"within"`
}

// Send sends Count notifications of Kind to every channel of App (all apps
// when empty), through the real HTTP API.
type Send struct {
	App         string  `yaml:"app"`
	Kind        string  `yaml:"kind"`
	Count       int     `yaml:"count"`
	Rate        float64 `yaml:"rate"`
	Concurrency int     `yaml:"concurrency"`
}

// Expect checks the fleet, retrying until Within has passed.
type Expect struct {
	Name string `yaml:"name"`
	// Devices is which devices the counts apply to: all, opted-in,
	// opted-out, low-power, online, offline (default all).
	Devices string `yaml:"devices"`
	App     string `yaml:"app"`
	// Toasts, Tiles and Raws are exact counts per device (and app); nil
	// means not checked.
	Toasts *int `yaml:"toasts"`
	Tiles  *int `yaml:"tiles"`
	Raws   *int `yaml:"raws"`
	// NoDuplicates and InOrder check the whole fleet.
	NoDuplicates bool `yaml:"no_duplicates"`
	InOrder      bool `yaml:"in_order"`
	// AllDelivered: every notification the server answered Received so far
	// has arrived.
	AllDelivered bool     `yaml:"all_delivered"`
	Within       Duration `yaml:"within"`
}

// Airplane switches a share of devices into or out of airplane mode.
type Airplane struct {
	Share Share `yaml:"share"`
	On    bool  `yaml:"on"`
}

// Churn drops the connection of a share of devices for a while (default
// 2 s); they reconnect by themselves.
type Churn struct {
	Share Share    `yaml:"share"`
	For   Duration `yaml:"for"`
}

// Restart reboots a share of devices (from their state), or the server
// (embedded or process) on the same address and data directory.
type Restart struct {
	Devices Share `yaml:"devices"`
	Server  bool  `yaml:"server"`
	// Kill, with server, ends the server without letting it shut down
	// (SIGKILL, a crash) instead of stopping it; needs server: process.
	Kill bool `yaml:"kill"`
}

// Parse reads and checks a scenario.
func Parse(b []byte) (*Scenario, error) {
	var s Scenario
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&s); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("scenario: the file is empty")
		}
		return nil, fmt.Errorf("scenario: %w", err)
	}
	if s.Name == "" {
		s.Name = "scenario"
	}
	if s.Server == "" {
		s.Server = "embedded"
	}
	if s.Devices <= 0 {
		return nil, errors.New("scenario: devices must be a positive number")
	}
	if len(s.Apps) == 0 {
		return nil, errors.New("scenario: apps must list at least one app id")
	}
	if len(s.Phases) == 0 || s.Phases[0].Connect == nil {
		return nil, errors.New("scenario: the first phase must be connect")
	}
	for i, p := range s.Phases {
		set := 0
		for _, ok := range []bool{p.Connect != nil, p.Send != nil, p.Expect != nil, p.Airplane != nil, p.Churn != nil, p.Restart != nil, p.Wait != nil} {
			if ok {
				set++
			}
		}
		if set != 1 {
			return nil, fmt.Errorf("scenario: phase %d: give exactly one of connect, send, expect, airplane, churn, restart, wait", i+1)
		}
		if i > 0 && p.Connect != nil {
			return nil, fmt.Errorf("scenario: phase %d: connect only comes first", i+1)
		}
		if p.Send != nil {
			if _, err := kindMix(p.Send.Kind); err != nil {
				return nil, fmt.Errorf("scenario: phase %d: %w", i+1, err)
			}
			if p.Send.Count <= 0 {
				return nil, fmt.Errorf("scenario: phase %d: send needs a count per channel", i+1)
			}
			if p.Send.App != "" && !contains(s.Apps, p.Send.App) {
				return nil, fmt.Errorf("scenario: phase %d: app %q is not in apps", i+1, p.Send.App)
			}
		}
		if e := p.Expect; e != nil {
			switch e.Devices {
			case "", "all", "opted-in", "opted-out", "low-power", "online", "offline":
			default:
				return nil, fmt.Errorf("scenario: phase %d: devices %q: want all, opted-in, opted-out, low-power, online or offline", i+1, e.Devices)
			}
			if e.App != "" && !contains(s.Apps, e.App) {
				return nil, fmt.Errorf("scenario: phase %d: app %q is not in apps", i+1, e.App)
			}
			if e.Toasts == nil && e.Tiles == nil && e.Raws == nil && !e.NoDuplicates && !e.InOrder && !e.AllDelivered {
				return nil, fmt.Errorf("scenario: phase %d: expect checks nothing", i+1)
			}
		}
		if p.Restart != nil && p.Restart.Server && s.Server != "embedded" && s.Server != "process" {
			return nil, fmt.Errorf("scenario: phase %d: only an embedded or process server can be restarted, not %s", i+1, s.Server)
		}
		if p.Restart != nil && p.Restart.Kill && (!p.Restart.Server || s.Server != "process") {
			return nil, fmt.Errorf("scenario: phase %d: kill restarts the server with SIGKILL: it needs server: true and the scenario's server: process", i+1)
		}
	}
	return &s, nil
}

func contains(list []string, v string) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

func kindMix(kind string) (load.Mix, error) {
	switch kind {
	case "toast":
		return load.Mix{Toast: 1}, nil
	case "tile":
		return load.Mix{Tile: 1}, nil
	case "raw":
		return load.Mix{Raw: 1}, nil
	}
	return load.Mix{}, fmt.Errorf("kind %q: want toast, tile or raw", kind)
}

// Result is the outcome of one phase.
type Result struct {
	Phase   string
	Failure string // an expectation did not hold
	Error   string // the phase could not run
	// Skipped says why the phase did not run (an earlier one made it
	// pointless, such as a failed connect, or the run was interrupted).
	Skipped string
	// Interrupted says that the run was interrupted (its context ended:
	// Ctrl-C, SIGTERM) while the phase ran, so that it did not finish; its
	// Failure says so and what it had done.
	Interrupted bool
	// Start is when the phase began, from the start of the run.
	Start    time.Duration
	Duration time.Duration
}

// Failed reports whether the phase failed or could not run.
func (r Result) Failed() bool { return r.Failure != "" || r.Error != "" }

// Verdict is PASS, FAIL, ERROR or SKIP.
func (r Result) Verdict() string {
	switch {
	case r.Failure != "":
		return "FAIL"
	case r.Error != "":
		return "ERROR"
	case r.Skipped != "":
		return "SKIP"
	}
	return "PASS"
}

// Outcome is a whole run.
type Outcome struct {
	Name    string
	Results []Result
	Report  *fleet.Report
	// Timeline is the fleet's counters sampled through the run.
	Timeline []fleet.Sample
	Elapsed  time.Duration
	// Interrupted says that the run's context ended before its last phase
	// did (Ctrl-C, SIGTERM): the phase it cut short failed and the later
	// ones were skipped.
	Interrupted bool
	// CloseError says why closing the fleet at the end of the run failed:
	// devices whose state (StateDir) could not be saved, how many and the
	// first one's reason (fleet.Fleet.Close); "" when it did not. A run
	// with a CloseError did not pass, whatever its phases did.
	CloseError string
}

// ClosePhase names the closing of the fleet where a run's results list
// it as a step of its own (JUnit, the HTML report): only when it failed.
const ClosePhase = "close the fleet (save the devices' state)"

// Failed counts the failed phases.
func (o *Outcome) Failed() int {
	n := 0
	for _, r := range o.Results {
		if r.Failed() {
			n++
		}
	}
	return n
}

// Skipped counts the phases that did not run.
func (o *Outcome) Skipped() int {
	n := 0
	for _, r := range o.Results {
		if r.Skipped != "" {
			n++
		}
	}
	return n
}

// Passed reports whether every phase ran and passed and the fleet closed
// well: a run with a phase failed, cut short or skipped (an interrupted
// run), or whose devices' state could not be saved, did not pass.
func (o *Outcome) Passed() bool { return o.Failed() == 0 && o.Skipped() == 0 && o.CloseError == "" }

// Server is the push server of a scenario whose file says server:
// embedded or process. The caller starts it before Run and stops it after;
// the package does not import the server, so that device/ never depends on
// server/.
type Server interface {
	// URL is the server's base URL, such as http://127.0.0.1:8080.
	URL() string
	// Restart stops the server and starts it again on the same address and
	// data, so that the devices' Channel URIs stay valid; a restart phase
	// calls it.
	Restart(ctx context.Context) error
}

// Killer is a Server that can also crash: Kill ends it without letting it
// shut down (SIGKILL) and starts it again on the same address and data. A
// restart phase with kill set calls it.
type Killer interface {
	Server
	Kill(ctx context.Context) error
}

// Options are the run's surroundings.
type Options struct {
	// Server is the server to run against when the scenario's server is
	// "embedded" or "process"; required then. For "process", and for
	// restart phases with kill, it must be a Killer.
	Server Server
	// SampleEvery is how often the fleet's counters are sampled for
	// Outcome.Timeline (default 1 s).
	SampleEvery time.Duration
	// StateDir keeps the devices' state (needed for device restarts to keep
	// their URIs); "" keeps it in memory.
	StateDir string
	Logger   *slog.Logger
	// Progress receives a line per phase as it starts and ends.
	Progress io.Writer
}

// Run runs the scenario, then closes its fleet. It returns an error only
// when the run could not start; failed expectations are in the Outcome,
// and so is a fleet that could not save its devices' state as it closed
// (Outcome.CloseError).
func Run(ctx context.Context, s *Scenario, opt Options) (*Outcome, error) {
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if opt.Progress == nil {
		opt.Progress = io.Discard
	}
	if opt.SampleEvery <= 0 {
		opt.SampleEvery = time.Second
	}
	r := &runner{s: s, opt: opt, out: &Outcome{Name: s.Name}, accepted: 0}
	start := time.Now()
	r.start = start
	base := s.Server
	if base == "embedded" || base == "process" {
		if opt.Server == nil {
			return nil, fmt.Errorf("scenario: the scenario's server is %q: Options.Server is needed", base)
		}
		if _, ok := opt.Server.(Killer); base == "process" && !ok {
			return nil, errors.New("scenario: server: process needs a server that can be killed (Options.Server must be a Killer)")
		}
		base = opt.Server.URL()
	}
	r.base = base
	stopSampling := make(chan struct{})
	sampled := make(chan struct{})
	go func() { defer close(sampled); r.sample(stopSampling) }()
	closed := false
	defer func() {
		if r.fl != nil && !closed { // a panic's way out
			r.fl.Close()
		}
	}()
	skip := ""
	for i, p := range s.Phases {
		name, run := r.phase(i, p)
		res := Result{Phase: fmt.Sprintf("%d %s", i+1, name), Start: time.Since(start)}
		if skip != "" {
			res.Skipped = skip
			r.out.Results = append(r.out.Results, res)
			fmt.Fprintf(opt.Progress, "scenario %q: phase %d: %s: skipped (%s)\n", s.Name, i+1, name, skip)
			continue
		}
		fmt.Fprintf(opt.Progress, "scenario %q: phase %d: %s\n", s.Name, i+1, name)
		t0 := time.Now()
		if err := run(ctx); err != nil {
			var fe *failure
			switch {
			case ctx.Err() != nil:
				// Cut short: whatever the phase says went wrong, the
				// reason is the interruption.
				res.Interrupted = true
				res.Failure = "interrupted before the phase finished"
				if bare := errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded); !bare || errors.As(err, &fe) {
					res.Failure += ": " + err.Error() // what it had done
				}
			case errors.As(err, &fe):
				res.Failure = fe.msg
			default:
				res.Error = err.Error()
			}
		}
		res.Duration = time.Since(t0)
		r.out.Results = append(r.out.Results, res)
		status := "ok"
		if res.Failure != "" {
			status = "FAILED: " + res.Failure
		} else if res.Error != "" {
			status = "ERROR: " + res.Error
		}
		fmt.Fprintf(opt.Progress, "scenario %q: phase %d: %s (%v)\n", s.Name, i+1, status, res.Duration.Round(time.Millisecond))
		switch {
		case ctx.Err() != nil:
			skip = "the run was interrupted"
			r.out.Interrupted = true
		case p.Connect != nil && res.Failed():
			// Every later phase would fail for the same reason.
			skip = "the connect phase failed"
		case res.Error != "" && r.fl == nil:
			skip = "no fleet: an earlier phase could not run"
		}
	}
	close(stopSampling)
	<-sampled
	if r.fl != nil {
		r.out.Report = r.fl.Report()
		r.out.Timeline = append(r.out.Timeline, fleet.SampleOf(time.Since(start), r.fl.Stats()))
		closed = true
		if err := r.fl.Close(); err != nil {
			r.out.CloseError = err.Error()
			fmt.Fprintf(opt.Progress, "scenario %q: %s: ERROR: %s\n", s.Name, ClosePhase, r.out.CloseError)
		}
	}
	r.out.Elapsed = time.Since(start)
	return r.out, nil
}

// sample records the fleet's counters every SampleEvery until stop closes.
func (r *runner) sample(stop <-chan struct{}) {
	t := time.NewTicker(r.opt.SampleEvery)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		r.mu.Lock()
		fl := r.fl
		r.mu.Unlock()
		if fl != nil {
			s := fleet.SampleOf(time.Since(r.start), fl.Stats())
			r.mu.Lock()
			r.out.Timeline = append(r.out.Timeline, s)
			r.mu.Unlock()
		}
	}
}

type failure struct{ msg string }

func (f *failure) Error() string { return f.msg }

type runner struct {
	s        *Scenario
	opt      Options
	out      *Outcome
	base     string
	start    time.Time
	mu       sync.Mutex   // guards fl and out.Timeline against the sampler
	fl       *fleet.Fleet // set once, by the connect phase
	accepted int64
}

func within(d Duration, def time.Duration) time.Duration {
	if d > 0 {
		return time.Duration(d)
	}
	return def
}

func (r *runner) phase(i int, p Phase) (string, func(context.Context) error) {
	switch {
	case p.Connect != nil:
		c := p.Connect
		return fmt.Sprintf("connect %d devices", r.s.Devices), func(ctx context.Context) error {
			fl, err := fleet.Start(context.Background(), fleet.Config{Servers: []string{r.base}, Devices: r.s.Devices,
				Apps: r.s.Apps, ConnectRate: c.Rate, OptOut: float64(r.s.OptOut), LowPower: float64(r.s.LowPower),
				Seed: r.s.Seed, StateDir: r.opt.StateDir, Logger: r.opt.Logger, MinBackoff: 50 * time.Millisecond, MaxBackoff: 2 * time.Second})
			if err != nil {
				return err
			}
			r.mu.Lock()
			r.fl = fl
			r.mu.Unlock()
			wctx, cancel := context.WithTimeout(ctx, within(c.Within, time.Minute))
			defer cancel()
			if err := fl.WaitRegistered(wctx); err != nil {
				s := fl.Stats()
				return &failure{fmt.Sprintf("not every device registered (%d of %d): %v", s.Registered, s.Devices, err)}
			}
			return nil
		}
	case p.Send != nil:
		sd := p.Send
		what := sd.App
		if what == "" {
			what = "every app"
		}
		return fmt.Sprintf("send %d %s to each channel of %s", sd.Count, sd.Kind, what), func(ctx context.Context) error {
			var targets []load.Target
			for _, c := range r.fl.Channels() {
				if sd.App == "" || c.App == sd.App {
					targets = append(targets, load.Target{URI: c.URI, App: c.App})
				}
			}
			if len(targets) == 0 {
				return errors.New("no registered channel to send to")
			}
			mix, _ := kindMix(sd.Kind)
			cfg := load.Config{Targets: targets, Count: sd.Count * len(targets), Mix: mix, Rate: sd.Rate, Concurrency: sd.Concurrency}
			if cfg.Rate == 0 && cfg.Concurrency == 0 {
				cfg.Concurrency = 16
			}
			rep, err := load.Run(ctx, cfg)
			if err != nil {
				return err
			}
			r.accepted += rep.Received
			if rep.Sent < int64(cfg.Count) && ctx.Err() != nil {
				return &failure{fmt.Sprintf("%d of %d notifications sent", rep.Sent, cfg.Count)}
			}
			if len(rep.Errors) > 0 {
				return &failure{fmt.Sprintf("%d sends failed: %v", rep.Sent-int64(sumAnswers(rep)), rep.Errors)}
			}
			return nil
		}
	case p.Expect != nil:
		e := p.Expect
		name := e.Name
		if name == "" {
			name = "expect"
		}
		return name, func(ctx context.Context) error { return r.expect(ctx, e) }
	case p.Airplane != nil:
		a := p.Airplane
		state := "off"
		if a.On {
			state = "on"
		}
		return fmt.Sprintf("airplane mode %s for %.0f%% of devices", state, float64(a.Share)*100), func(context.Context) error {
			r.fl.SetAirplane(float64(a.Share), a.On)
			return nil
		}
	case p.Churn != nil:
		c := p.Churn
		away := within(c.For, 2*time.Second)
		return fmt.Sprintf("churn: %.0f%% of devices drop off for %v", float64(c.Share)*100, away), func(context.Context) error {
			r.fl.Churn(float64(c.Share), away)
			return nil
		}
	case p.Restart != nil && p.Restart.Server && p.Restart.Kill:
		return "kill the server (SIGKILL) and start it again", func(ctx context.Context) error {
			k, ok := r.opt.Server.(Killer)
			if !ok {
				return errors.New("scenario: this server cannot be killed")
			}
			if err := k.Kill(ctx); err != nil {
				return fmt.Errorf("scenario: killing and restarting the server: %w", err)
			}
			return nil
		}
	case p.Restart != nil && p.Restart.Server:
		return "restart the server", func(ctx context.Context) error {
			if err := r.opt.Server.Restart(ctx); err != nil {
				return fmt.Errorf("scenario: restarting the server: %w", err)
			}
			return nil
		}
	case p.Restart != nil:
		share := float64(p.Restart.Devices)
		return fmt.Sprintf("restart %.0f%% of devices", share*100), func(ctx context.Context) error {
			wctx, cancel := context.WithTimeout(ctx, time.Minute)
			defer cancel()
			_, err := r.fl.Restart(wctx, share)
			return err
		}
	default:
		d := time.Duration(*p.Wait)
		return "wait " + d.String(), func(ctx context.Context) error {
			t := time.NewTimer(d)
			defer t.Stop()
			select {
			case <-t.C:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}
}

func sumAnswers(r *load.Report) int64 {
	var n int64
	for _, v := range r.Answers {
		n += v
	}
	return n
}

// expect retries the check until it holds or Within (default 10 s) passes.
func (r *runner) expect(ctx context.Context, e *Expect) error {
	deadline := time.Now().Add(within(e.Within, 10*time.Second))
	for {
		msg := r.check(e)
		if msg == "" {
			return nil
		}
		if time.Now().After(deadline) {
			return &failure{msg}
		}
		t := time.NewTimer(50 * time.Millisecond)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return &failure{msg}
		}
	}
}

// check returns "" when e holds, or what is wrong.
func (r *runner) check(e *Expect) string {
	rep := r.fl.Report()
	if e.NoDuplicates && rep.Duplicates > 0 {
		return fmt.Sprintf("%d duplicate deliveries", rep.Duplicates)
	}
	if e.InOrder && rep.OutOfOrder > 0 {
		return fmt.Sprintf("%d deliveries out of order", rep.OutOfOrder)
	}
	if e.AllDelivered && rep.Total() != r.accepted {
		return fmt.Sprintf("the devices received %d notifications, the server accepted %d", rep.Total(), r.accepted)
	}
	if e.Toasts == nil && e.Tiles == nil && e.Raws == nil {
		return ""
	}
	var bad []string
	checked := 0
	for _, d := range r.fl.Devices() {
		switch e.Devices {
		case "opted-in":
			if d.OptedOut {
				continue
			}
		case "opted-out":
			if !d.OptedOut {
				continue
			}
		case "low-power":
			if !d.LowPower {
				continue
			}
		case "online":
			if d.Offline {
				continue
			}
		case "offline":
			if !d.Offline {
				continue
			}
		}
		for _, app := range r.s.Apps {
			if e.App != "" && app != e.App {
				continue
			}
			checked++
			c := d.Counts[app]
			for k, want := range []*int{e.Toasts, e.Tiles, e.Raws} {
				if want != nil && c[k] != *want {
					bad = append(bad, fmt.Sprintf("device %d %s: %d %ss, want %d", d.Index, app, c[k], fleet.KindNames[k], *want))
				}
			}
		}
	}
	if checked == 0 {
		return "no device matches"
	}
	if len(bad) > 0 {
		more := ""
		if len(bad) > 3 {
			more = fmt.Sprintf(" (and %d more)", len(bad)-3)
			bad = bad[:3]
		}
		return strings.Join(bad, "; ") + more
	}
	return ""
}
