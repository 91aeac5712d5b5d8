// Package scenario runs repeatable QA scenarios against a fleet: a YAML
// file lists the fleet and phases (connect, send, expect, airplane, churn,
// restart, wait); expectations such as "every opted-in device shows 3
// toasts within 10 s" or "no duplicates" pass or fail, and the result can
// be written as JUnit XML for CI.
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
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/openmpns/openmpns/device/fleet"
	"github.com/openmpns/openmpns/shared/sender/load"
)

// Scenario is a parsed scenario file.
type Scenario struct {
	Name string `yaml:"name"`
	// Server is a base URL, or "embedded" (the default) for the server the
	// caller runs in this process (Options.Embedded); only an embedded
	// server can be restarted by a phase.
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

// Restart reboots a share of devices (from their state), or the embedded
// server on the same data directory.
type Restart struct {
	Devices Share `yaml:"devices"`
	Server  bool  `yaml:"server"`
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
		if p.Restart != nil && p.Restart.Server && s.Server != "embedded" {
			return nil, fmt.Errorf("scenario: phase %d: only an embedded server can be restarted", i+1)
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
	Phase    string
	Failure  string // an expectation did not hold
	Error    string // the phase could not run
	Duration time.Duration
}

// Failed reports whether the phase failed or could not run.
func (r Result) Failed() bool { return r.Failure != "" || r.Error != "" }

// Outcome is a whole run.
type Outcome struct {
	Name    string
	Results []Result
	Report  *fleet.Report
	Elapsed time.Duration
}

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

// Server is the push server of a scenario whose file says server:
// embedded. The caller starts it before Run and stops it after; the package
// does not import the server, so that device/ never depends on server/.
type Server interface {
	// URL is the server's base URL, such as http://127.0.0.1:8080.
	URL() string
	// Restart stops the server and starts it again on the same address and
	// data, so that the devices' Channel URIs stay valid; a restart phase
	// calls it.
	Restart(ctx context.Context) error
}

// Options are the run's surroundings.
type Options struct {
	// Embedded is the server to run against when the scenario's server is
	// "embedded"; required then.
	Embedded Server
	// StateDir keeps the devices' state (needed for device restarts to keep
	// their URIs); "" keeps it in memory.
	StateDir string
	Logger   *slog.Logger
	// Progress receives a line per phase as it starts and ends.
	Progress io.Writer
}

// Run runs the scenario. It returns an error only when the run could not
// start; failed expectations are in the Outcome.
func Run(ctx context.Context, s *Scenario, opt Options) (*Outcome, error) {
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if opt.Progress == nil {
		opt.Progress = io.Discard
	}
	r := &runner{s: s, opt: opt, out: &Outcome{Name: s.Name}, accepted: 0}
	start := time.Now()
	base := s.Server
	if base == "embedded" {
		if opt.Embedded == nil {
			return nil, errors.New("scenario: an embedded server is needed (Options.Embedded)")
		}
		base = opt.Embedded.URL()
	}
	r.base = base
	defer func() {
		if r.fl != nil {
			r.fl.Close()
		}
	}()
	for i, p := range s.Phases {
		name, run := r.phase(i, p)
		fmt.Fprintf(opt.Progress, "scenario %q: phase %d: %s\n", s.Name, i+1, name)
		t0 := time.Now()
		res := Result{Phase: fmt.Sprintf("%d %s", i+1, name)}
		if err := run(ctx); err != nil {
			var fe *failure
			if errors.As(err, &fe) {
				res.Failure = fe.msg
			} else {
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
		if res.Error != "" && r.fl == nil {
			break // without a fleet nothing else can run
		}
		if ctx.Err() != nil {
			break
		}
	}
	if r.fl != nil {
		r.out.Report = r.fl.Report()
	}
	r.out.Elapsed = time.Since(start)
	return r.out, nil
}

type failure struct{ msg string }

func (f *failure) Error() string { return f.msg }

type runner struct {
	s        *Scenario
	opt      Options
	out      *Outcome
	base     string
	fl       *fleet.Fleet
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
			r.fl = fl
			wctx, cancel := context.WithTimeout(ctx, within(c.Within, time.Minute))
			defer cancel()
			if err := fl.WaitRegistered(wctx); err != nil {
				return &failure{fmt.Sprintf("not every device registered: %v", err)}
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
	case p.Restart != nil && p.Restart.Server:
		return "restart the server", func(ctx context.Context) error {
			if err := r.opt.Embedded.Restart(ctx); err != nil {
				return fmt.Errorf("scenario: restarting the embedded server: %w", err)
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
			return &failure{msg + " (interrupted)"}
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
