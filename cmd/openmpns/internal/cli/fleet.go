package cli

import (
	"bufio"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/openmpns/openmpns/device"
	"github.com/openmpns/openmpns/device/fleet"
)

// perProcessDefault is how many devices one fleet process runs before the
// fleet shards itself: a process may hold at most 20,000 open files here.
const perProcessDefault = 15000

// workerEnv names the executable that fleet workers run (tests set it to
// their own binary); default os.Executable().
const workerEnv = "OPENMPNS_FLEET_EXE"

// workerSecretsEnv hands the apps' handoff secrets to fleet workers, as a
// JSON object of app id to secret.
const workerSecretsEnv = "OPENMPNS_FLEET_HANDOFF_SECRETS"

type fleetOpts struct {
	servers                          []string
	devices, perProcess, sourceAddrs int
	maxPending, handoffConcurrency   int
	apps                             []string
	connectRate                      float64
	optOut, airplane, lowPower       float64
	churn                            float64
	state                            string
	handoff                          *handoffPlan
	channelsOut, report, htmlReport  string
	duration                         time.Duration
	untilReceived                    int64
	seed                             uint64
	progress                         time.Duration
	minBackoff, maxBackoff           time.Duration
	handoffTimeout                   time.Duration
	worker                           bool
	firstIndex                       int
	logLevel                         string // the workers log at the main process's level
}

func runFleet(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "fleet", "--devices N --apps a,b,c [--server URL[,URL...]] [--connect-rate R] [--opt-out P] [--churn P/min] [--airplane P] [--low-power P] [--state DIR] [--channels-out FILE] [--handoff URL [--handoff-secret S | --handoff-manifest FILE] [--handoff-concurrency N] [--handoff-timeout D]] [--report FILE] [--report-html FILE] [--duration D] [--until-received K]\n       openmpns fleet --scenario FILE.yaml [--junit FILE] [--report FILE] [--report-html FILE] [--server URL] [--state DIR]")
	var o fleetOpts
	servers := fs.String("server", "http://127.0.0.1:8080", "OpenMPNS server base URL; several, comma-separated, share the devices, and each device fails over to the next")
	fs.IntVar(&o.devices, "devices", 100, "number of emulated phones")
	apps := fs.String("apps", "com.example.app", "comma-separated app ids: each device opens and binds one channel per app")
	fs.Float64Var(&o.connectRate, "connect-rate", 1000, "devices started per second (0: all at once)")
	fs.IntVar(&o.maxPending, "max-pending", 1000, "devices connecting at once, per process: a slower server slows the connect rate instead of timing out")
	optOut := fs.String("opt-out", "0", "share of devices that deny toasts (tile only): 0.1 or 10%")
	churn := fs.String("churn", "0", "share of devices per minute that drop off and come back 1-10 s later: 0.05 or 5%/min")
	airplane := fs.String("airplane", "0", "share of devices that go offline (airplane mode) once registered")
	lowPower := fs.String("low-power", "0", "share of devices in battery saver (raw only)")
	fs.StringVar(&o.state, "state", "", "keep each device's identity and channels under this directory; one fleet at a time uses it (default: in memory)")
	fs.StringVar(&o.channelsOut, "channels-out", "", "write every Channel URI, as it appears, to this file: .csv, or JSON lines otherwise (device, device_id, app, channel, uri, toast, replaces); a URI that changes gets a new line whose replaces is the old URI (openmpns load --channels sends to the current ones only)")
	hf := addHandoffFlags(fs, "each device")
	fs.IntVar(&o.handoffConcurrency, "handoff-concurrency", fleet.DefaultHandoffConcurrency, "with --handoff: the most handoffs in flight at once, per process (each holds a connection to the backend until it answers); the others wait in a queue, oldest first, and are sent as those end, never dropped (the progress lines and the report count them); a handoff whose channel's URI changed meanwhile is not sent, or not tried again, and counts as superseded")
	fs.DurationVar(&o.handoffTimeout, "handoff-timeout", fleet.DefaultHandoffTimeout, "with --handoff: how long one try of a handoff may take, from the connection to the end of the backend's answer; a try that takes longer is given up and tried again")
	fs.StringVar(&o.report, "report", "", "write the JSON report to this file at the end")
	fs.StringVar(&o.htmlReport, "report-html", "", "write a self-contained HTML report (summary, latency, deliveries and connections over time, scenario verdicts) to this file at the end")
	fs.DurationVar(&o.duration, "duration", 0, "stop after this long (default: until Ctrl-C or --until-received)")
	fs.Int64Var(&o.untilReceived, "until-received", 0, "stop once the fleet has received this many notifications")
	fs.IntVar(&o.perProcess, "per-process", perProcessDefault, "devices per process; above, the fleet runs worker processes of itself and merges their reports")
	fs.IntVar(&o.sourceAddrs, "source-addrs", 0, "spread loopback connections over 127.0.0.1..N to pass one address's ~28,000 ports (default: as needed)")
	fs.Uint64Var(&o.seed, "seed", 1, "seed for choosing the opted-out, airplane and low-power devices")
	fs.DurationVar(&o.progress, "progress", time.Second, "how often to print progress")
	fs.DurationVar(&o.minBackoff, "min-backoff", 250*time.Millisecond, "smallest reconnect delay")
	fs.DurationVar(&o.maxBackoff, "max-backoff", 30*time.Second, "largest reconnect delay")
	fs.BoolVar(&o.worker, "worker", false, "internal: run as one shard of a larger fleet, speaking JSON lines")
	fs.IntVar(&o.firstIndex, "first-index", 0, "internal: number of this shard's first device")
	logLevel := fs.String("log-level", "warn", "log level: debug, info, warn, error")
	pprofAddr := fs.String("pprof", "", "serve Go's profiler on this address, e.g. 127.0.0.1:6061 (off by default)")
	scenarioFile := fs.String("scenario", "", "run a YAML scenario (see assets/scenarios/); the file sets the fleet, so only --server, --state, --junit, --report, --report-html, --log-level and --pprof go with it; exits 0 only when every phase ran and passed, 1 when a phase failed or the run was interrupted, 2 when the file is invalid")
	junit := fs.String("junit", "", "with --scenario: write the results as JUnit XML to this file")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *pprofAddr != "" {
		stop, addr, err := servePprof(*pprofAddr)
		if err != nil {
			return fmt.Errorf("--pprof: %w", err)
		}
		defer stop()
		fmt.Fprintf(e.stderr, "fleet: profiler on http://%s/debug/pprof/\n", addr)
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if *scenarioFile != "" {
		for _, name := range sortedKeys(set) {
			if !scenarioFlags[name] {
				return badUsage("--%s does not go with --scenario: the scenario file describes the fleet and its phases (see assets/scenarios/)", name)
			}
		}
		override := ""
		if set["server"] {
			override = *servers
		}
		log, err := newLogger(e.stderr, *logLevel, "text")
		if err != nil {
			return &usageError{err}
		}
		if o.state != "" {
			unlock, err := lockStateDir(o.state, "fleet")
			if err != nil {
				return err
			}
			defer unlock()
		}
		return runScenario(ctx, e, scenarioRun{file: *scenarioFile, serverURL: override, state: o.state,
			junit: *junit, report: o.report, htmlReport: o.htmlReport}, log)
	}
	if set["junit"] {
		return badUsage("--junit goes with --scenario")
	}
	switch {
	case o.progress <= 0:
		return badUsage("--progress %v: want a positive interval, such as 1s", o.progress)
	case o.duration < 0:
		return badUsage("--duration %v: want a positive time, or none to run until Ctrl-C", o.duration)
	case o.untilReceived < 0:
		return badUsage("--until-received %d: want a positive count", o.untilReceived)
	case o.connectRate < 0 || math.IsNaN(o.connectRate):
		return badUsage("--connect-rate %v: want devices per second, or 0 for all at once", o.connectRate)
	case o.handoffConcurrency <= 0:
		return badUsage("--handoff-concurrency %d: want a positive number of handoffs in flight", o.handoffConcurrency)
	case o.handoffTimeout <= 0:
		return badUsage("--handoff-timeout %v: want a positive time, such as 10s", o.handoffTimeout)
	}
	var err error
	for _, p := range []struct {
		flag string
		in   string
		out  *float64
	}{{"opt-out", *optOut, &o.optOut}, {"churn", *churn, &o.churn}, {"airplane", *airplane, &o.airplane}, {"low-power", *lowPower, &o.lowPower}} {
		if *p.out, err = parseShare(p.in); err != nil {
			fmt.Fprintf(e.stderr, "openmpns fleet: --%s: %v\n", p.flag, err)
			return errUsage
		}
	}
	o.servers = splitList(*servers)
	o.apps = splitList(*apps)
	if o.devices <= 0 || len(o.apps) == 0 || len(o.servers) == 0 || o.perProcess <= 0 {
		fmt.Fprintln(e.stderr, "openmpns fleet: --devices, --per-process, --apps and --server need values")
		return errUsage
	}
	log, err := newLogger(e.stderr, *logLevel, "text")
	if err != nil {
		return &usageError{err}
	}
	o.logLevel = *logLevel
	if o.worker {
		// The main process checked the flags; the secrets come through the
		// environment, off the process list.
		o.handoff = &handoffPlan{url: *hf.url}
		if v := os.Getenv(workerSecretsEnv); v != "" && o.handoff.url != "" {
			if err := json.Unmarshal([]byte(v), &o.handoff.secrets); err != nil {
				return fmt.Errorf("fleet worker: $%s: %w", workerSecretsEnv, err)
			}
		}
	} else if o.handoff, err = hf.plan(o.apps, "handoff-concurrency", "handoff-timeout"); err != nil {
		return err
	}
	if o.sourceAddrs == 0 {
		o.sourceAddrs = defaultSourceAddrs(o.servers, o.devices)
	}
	if o.worker {
		return runFleetWorker(ctx, e, o, log) // in a directory of the main process's, which holds the lock
	}
	if o.state != "" {
		unlock, err := lockStateDir(o.state, "fleet")
		if err != nil {
			return err
		}
		defer unlock()
		if err := adoptShardState(e, o.state); err != nil {
			return err
		}
	}
	return runFleetMain(ctx, e, o, log)
}

// adoptShardState moves the device directories an older fleet run in
// worker processes left under dir/shard-K (dir/shard-K/NNNNNN) to dir/NNNNNN,
// where every device's state now is whatever the sharding, so that those
// devices keep their identities and Channel URIs.
//
// A device that has a directory in both places keeps the one whose
// device.json was written last (the one in dir/NNNNNN when they tie or
// neither has one); the other is moved to dir/replaced (dir/replaced/NNNNNN,
// or dir/replaced/shard-K/NNNNNN), out of the way of later starts. What was
// done is said in one line, once: a later start finds nothing left to move.
//
// Each step is one rename, under the lock of dir the caller holds: a crash
// between the two renames that put a shard's copy in the place of the one
// in dir leaves dir/NNNNNN missing, and the next start moves the shard's
// copy there.
func adoptShardState(e *env, dir string) error {
	shards, err := filepath.Glob(filepath.Join(dir, "shard-*"))
	if err != nil {
		return fmt.Errorf("state directory: %w", err)
	}
	replaced := filepath.Join(dir, "replaced")
	moved, both, shardWon := 0, 0, 0
	for _, shard := range shards {
		devs, err := os.ReadDir(shard)
		if err != nil {
			continue // not a directory
		}
		for _, d := range devs {
			if !d.IsDir() {
				continue
			}
			if _, err := strconv.Atoi(d.Name()); err != nil {
				continue
			}
			from, to := filepath.Join(shard, d.Name()), filepath.Join(dir, d.Name())
			if _, err := os.Lstat(to); err == nil {
				both++
				if stateWritten(from).After(stateWritten(to)) {
					// The shard's copy is newer: the one in dir goes aside,
					// and the shard's takes its place below.
					if err := moveAside(to, filepath.Join(replaced, d.Name())); err != nil {
						return err
					}
					shardWon++
				} else {
					if err := moveAside(from, filepath.Join(replaced, filepath.Base(shard), d.Name())); err != nil {
						return err
					}
					continue
				}
			} else {
				moved++
			}
			if err := os.Rename(from, to); err != nil {
				return fmt.Errorf("state directory: moving an older fleet's device state: %w", err)
			}
		}
		os.Remove(shard) // once empty
	}
	var said []string
	if moved > 0 {
		said = append(said, fmt.Sprintf("moved %d devices' state from %s to %s (a device's state no longer depends on --per-process)",
			moved, filepath.Join(dir, "shard-*"), dir))
	}
	if both > 0 {
		said = append(said, fmt.Sprintf("%d devices had state both in %s and in %s: kept the copy whose device.json was written last (%d of them from %s), "+
			"moved the other to %s; check the devices, then delete %s",
			both, filepath.Join(dir, "shard-*"), dir, shardWon, filepath.Join(dir, "shard-*"), replaced, replaced))
	}
	if len(said) > 0 {
		fmt.Fprintf(e.stderr, "fleet: %s\n", strings.Join(said, "; "))
	}
	return nil
}

// stateWritten is when the device state in dir was last written: its
// device.json's modification time, or the zero time without one.
func stateWritten(dir string) time.Time {
	st, err := os.Stat(filepath.Join(dir, "device.json"))
	if err != nil {
		return time.Time{}
	}
	return st.ModTime()
}

// moveAside renames from to to, or to to.2, to.3 ... when to is taken.
func moveAside(from, to string) error {
	if err := os.MkdirAll(filepath.Dir(to), 0o700); err != nil {
		return fmt.Errorf("state directory: %w", err)
	}
	name := to
	for n := 2; ; n++ {
		if _, err := os.Lstat(name); errors.Is(err, os.ErrNotExist) {
			break
		} else if err != nil {
			return fmt.Errorf("state directory: %w", err)
		}
		name = fmt.Sprintf("%s.%d", to, n)
	}
	if err := os.Rename(from, name); err != nil {
		return fmt.Errorf("state directory: moving aside an older copy of a device's state: %w", err)
	}
	return nil
}

// scenarioFlags are the flags that go with --scenario.
var scenarioFlags = map[string]bool{"scenario": true, "server": true, "state": true, "junit": true, "report": true,
	"report-html": true, "log-level": true, "pprof": true}

func sortedKeys(m map[string]bool) []string { return slices.Sorted(maps.Keys(m)) }

// parseShare reads 0.1, 10% or 10%/min as a share between 0 and 1.
func parseShare(s string) (float64, error) {
	s = strings.TrimSuffix(strings.TrimSpace(s), "/min")
	pct := strings.HasSuffix(s, "%")
	v, err := strconv.ParseFloat(strings.TrimSuffix(s, "%"), 64)
	if err != nil {
		return 0, fmt.Errorf("%q: want a share such as 0.1 or 10%%", s)
	}
	if pct {
		v /= 100
	}
	if v < 0 || v > 1 {
		return 0, fmt.Errorf("%q is not between 0 and 100%%", s)
	}
	return v, nil
}

func splitList(s string) []string {
	var out []string
	for p := range strings.SplitSeq(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// defaultSourceAddrs gives every loopback server about 20,000 connections
// per local address, below the ~28,000 ephemeral ports.
func defaultSourceAddrs(servers []string, devices int) int {
	for _, s := range servers {
		u, err := url.Parse(s)
		if err != nil {
			return 1
		}
		if ip := net.ParseIP(u.Hostname()); ip == nil || !ip.IsLoopback() || ip.To4() == nil {
			return 1
		}
	}
	perServer := (devices + len(servers) - 1) / len(servers)
	return min(max(1, (perServer+19999)/20000), 250)
}

// shard is one process's part of a fleet: this process's own, or a worker.
type shard interface {
	stats() fleet.Stats
	// signalStop asks the shard to stop without waiting.
	signalStop()
	// lost says, once, that the shard ended during the run without its
	// report (a worker killed), and why; "" otherwise.
	lost() string
	// stop ends the shard and returns its final report, and an error when
	// it did not end well: a report may come with an error (devices whose
	// state could not be saved).
	stop() (*fleet.Report, error)
}

type localShard struct{ f *fleet.Fleet }

func (l localShard) stats() fleet.Stats { return l.f.Stats() }
func (l localShard) signalStop()        {}
func (l localShard) lost() string       { return "" }
func (l localShard) stop() (*fleet.Report, error) {
	r := l.f.Report()
	return r, l.f.Close()
}

// channelWriter writes Channel URIs to a file as they appear.
type channelWriter struct {
	mu   sync.Mutex
	f    *os.File
	csv  *csv.Writer
	n    int
	werr error
}

func newChannelWriter(path string) (*channelWriter, error) {
	// Channel URIs are capabilities: whoever reads them can push. Only the
	// owner may read the file (an existing one is made so too).
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("--channels-out: %w", err)
	}
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return nil, fmt.Errorf("--channels-out: %w", err)
	}
	w := &channelWriter{f: f}
	if strings.EqualFold(filepath.Ext(path), ".csv") {
		w.csv = csv.NewWriter(f)
		w.csv.Write([]string{"device", "device_id", "app", "channel", "uri", "toast", "replaces"})
		w.csv.Flush()
	}
	return w, nil
}

func (w *channelWriter) write(c fleet.Channel) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.n++
	if w.csv != nil {
		w.csv.Write([]string{strconv.Itoa(c.Device), c.DeviceID, c.App, c.Channel, c.URI, strconv.FormatBool(c.Toast), c.Replaces})
		w.csv.Flush()
		if err := w.csv.Error(); err != nil && w.werr == nil {
			w.werr = err
		}
		return
	}
	b, _ := json.Marshal(c)
	if _, err := w.f.Write(append(b, '\n')); err != nil && w.werr == nil {
		w.werr = err
	}
}

func (w *channelWriter) close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.f.Close(); err != nil && w.werr == nil {
		w.werr = err
	}
	if w.werr != nil {
		return fmt.Errorf("--channels-out: %w", w.werr)
	}
	return nil
}

func (o *fleetOpts) config(log *slog.Logger, onChannel func(fleet.Channel)) fleet.Config {
	return fleet.Config{Servers: o.servers, Devices: o.devices, Apps: o.apps, ConnectRate: o.connectRate,
		OptOut: o.optOut, Airplane: o.airplane, LowPower: o.lowPower, Churn: o.churn, StateDir: o.state,
		Handoff: o.handoff.url, HandoffSecrets: o.handoff.secrets, OnChannel: onChannel, Seed: o.seed, FirstIndex: o.firstIndex, MaxPending: o.maxPending,
		HandoffConcurrency: o.handoffConcurrency, HandoffTimeout: o.handoffTimeout, MinBackoff: o.minBackoff, MaxBackoff: o.maxBackoff, SourceAddrs: o.sourceAddrs, Logger: log}
}

func runFleetMain(ctx context.Context, e *env, o fleetOpts, log *slog.Logger) error {
	// The reports are created first: a path that cannot be written is
	// found now, not at the end of the run.
	report, err := createOutput("--report", o.report)
	if err != nil {
		return err
	}
	defer report.discard()
	htmlReport, err := createOutput("--report-html", o.htmlReport)
	if err != nil {
		return err
	}
	defer htmlReport.discard()
	var cw *channelWriter
	if o.channelsOut != "" {
		if cw, err = newChannelWriter(o.channelsOut); err != nil {
			return err
		}
	}
	onChannel := func(c fleet.Channel) {
		if cw != nil {
			cw.write(c)
		}
	}
	nShards := (o.devices + o.perProcess - 1) / o.perProcess
	pace := fmt.Sprintf("%g connects/s", o.connectRate)
	if o.connectRate == 0 {
		pace = "all at once"
	}
	fmt.Fprintf(e.stderr, "fleet: %d devices × %d apps against %s, %s", o.devices, len(o.apps), strings.Join(o.servers, ", "), pace)
	if nShards > 1 {
		fmt.Fprintf(e.stderr, ", in %d worker processes", nShards)
	}
	fmt.Fprintln(e.stderr)
	if o.handoff.url != "" {
		keys := "a device key per device and app derived from a key held in memory and the device's id (without --state the devices are new phones at every run)"
		if o.state != "" {
			keys = "a device key per device and app from the handoff.key kept with each device's state under " + o.state
		}
		fmt.Fprintf(e.stderr, "fleet: %s\n", o.handoff.describe(keys))
	}
	refusalsTold := map[int]bool{}
	tellRefusals := func(s fleet.Stats) {
		for _, status := range slices.Sorted(maps.Keys(s.HandoffRefused)) {
			if refusalsTold[status] {
				continue
			}
			refusalsTold[status] = true
			err := &device.HandoffRefusedError{URL: o.handoff.url, Status: status}
			msg := fmt.Sprintf("fleet: %s refuses handoffs with %d", o.handoff.url, status)
			if hint := o.handoff.refusalHint(err, ""); hint != "" {
				msg += ": " + hint
			}
			fmt.Fprintln(e.stderr, msg)
		}
	}
	var shards []shard
	stopAll := func() (*fleet.Report, error) {
		total := &fleet.Report{}
		var errs []error
		// Tell every shard first, so that they all stop together.
		for _, s := range shards {
			s.signalStop()
		}
		for _, s := range shards {
			r, err := s.stop()
			if err != nil {
				errs = append(errs, err)
			}
			if r != nil {
				total.Merge(r)
			}
		}
		if nShards == 1 {
			total.Shards = 0
		}
		return total, errors.Join(errs...)
	}
	if nShards == 1 {
		f, err := fleet.Start(ctx, o.config(log, onChannel))
		if err != nil {
			return err
		}
		shards = append(shards, localShard{f})
	} else {
		exe := os.Getenv(workerEnv)
		if exe == "" {
			var err error
			if exe, err = os.Executable(); err != nil {
				return fmt.Errorf("finding this program to run workers: %w", err)
			}
		}
		for i := 0; i < nShards; i++ {
			wo := o
			wo.firstIndex = i * o.perProcess
			wo.devices = min(o.perProcess, o.devices-wo.firstIndex)
			// Each worker connects at its share of the rate.
			wo.connectRate = o.connectRate * float64(wo.devices) / float64(o.devices)
			w, err := startWorker(ctx, exe, wo, onChannel, e.stderr)
			if err != nil {
				stopAll()
				return fmt.Errorf("starting fleet worker %d: %w", i, err)
			}
			shards = append(shards, w)
		}
	}
	merged := func() fleet.Stats {
		var s fleet.Stats
		for _, sh := range shards {
			s.Merge(sh.stats())
		}
		return s
	}
	// Run until the duration, the received count or Ctrl-C.
	start := time.Now()
	var deadline <-chan time.Time
	if o.duration > 0 {
		t := time.NewTimer(o.duration)
		defer t.Stop()
		deadline = t.C
	}
	tick := time.NewTicker(o.progress)
	defer tick.Stop()
	last, lastAt := int64(0), start
	lastErr := ""
	var timeline []fleet.Sample
	why := "interrupted"
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case <-deadline:
			why = "duration reached"
			break loop
		case now := <-tick.C:
			s := merged()
			for _, sh := range shards {
				if why := sh.lost(); why != "" {
					fmt.Fprintf(e.stderr, "fleet: %s; its devices no longer count as connected or registered\n", why)
				}
			}
			timeline = append(timeline, fleet.SampleOf(now.Sub(start), s))
			rate := float64(s.Total()-last) / now.Sub(lastAt).Seconds()
			last, lastAt = s.Total(), now
			handoffs := ""
			if o.handoff.url != "" {
				handoffs = fmt.Sprintf(", handoffs %d done, %d in flight, %d queued, %d superseded", s.HandoffsDone, s.HandoffsInFlight, s.HandoffsQueued, s.HandoffsSuperseded)
			}
			fmt.Fprintf(e.stderr, "fleet %6.1fs: %d/%d started, %d connected, %d registered, %d received (%.0f/s), %d reconnects, %d errors%s\n",
				now.Sub(start).Seconds(), s.Started, o.devices, s.Connected, s.Registered, s.Total(), rate, s.Reconnects, s.ErrorCount(), handoffs)
			if s.LastError != "" && s.LastError != lastErr {
				lastErr = s.LastError
				fmt.Fprintf(e.stderr, "fleet: last error: %s\n", s.LastError)
			}
			tellRefusals(s)
			if o.untilReceived > 0 && s.Total() >= o.untilReceived {
				why = "received " + strconv.FormatInt(o.untilReceived, 10)
				break loop
			}
		}
	}
	fmt.Fprintf(e.stderr, "fleet: stopping (%s)\n", why)
	final := merged()
	tellRefusals(final)
	if len(final.HandoffRefused) > 0 {
		var by []string
		for _, status := range slices.Sorted(maps.Keys(final.HandoffRefused)) {
			by = append(by, fmt.Sprintf("%d with %d", final.HandoffRefused[status], status))
		}
		fmt.Fprintf(e.stderr, "fleet: handoffs refused by %s: %s\n", o.handoff.url, strings.Join(by, ", "))
	}
	rep, err := stopAll()
	if rep.Elapsed <= 0 {
		rep.Elapsed = time.Since(start)
	}
	rep.Timeline = append(timeline, fleet.SampleOf(time.Since(start), final))
	if cw != nil {
		if cerr := cw.close(); cerr != nil && err == nil {
			err = cerr
		}
		fmt.Fprintf(e.stderr, "fleet: %d Channel URIs written to %s\n", cw.n, o.channelsOut)
	}
	rep.WriteTable(e.stdout)
	// A fleet none of whose devices ever connected tested nothing: a
	// wrong --server, a server down or refusing every device.
	errs := []error{neverConnected(rep.Timeline, o.servers, final.LastError), err}
	if report != nil {
		errs = append(errs, writeJSONReport(e, "fleet", report, rep))
	}
	if htmlReport != nil {
		errs = append(errs, reportWritten(e, "fleet", htmlReport, writeFleetHTML(htmlReport, rep)))
	}
	return errors.Join(errs...)
}

// neverConnected is the error of a run in which no device ever connected
// (no sample of the timeline has a device connected, registered or
// reconnected, or a notification received), with the last error the
// devices had; nil when one did.
func neverConnected(timeline []fleet.Sample, servers []string, lastErr string) error {
	for _, s := range timeline {
		if s.Connected > 0 || s.Registered > 0 || s.Reconnects > 0 || s.Received > 0 {
			return nil
		}
	}
	msg := "no device ever connected to " + strings.Join(servers, ", ")
	if lastErr != "" {
		msg += "; last error: " + lastErr
	}
	return errors.New(msg)
}

// writeJSONReport writes v as indented JSON to out and says where.
func writeJSONReport(e *env, prefix string, out *outputFile, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		out.discard()
		return fmt.Errorf("%s: %w", out.flag, err)
	}
	return reportWritten(e, prefix, out, out.commit(append(b, '\n')))
}

// reportWritten says on stderr where out was written, unless err says it
// was not; it returns err.
func reportWritten(e *env, prefix string, out *outputFile, err error) error {
	if err == nil {
		fmt.Fprintf(e.stderr, "%s: %s written to %s\n", prefix, out.what(), out.path)
	}
	return err
}

// workerLine is one line a worker writes on its stdout.
type workerLine struct {
	Stats   *fleet.Stats   `json:"stats,omitempty"`
	Channel *fleet.Channel `json:"channel,omitempty"`
	Report  *fleet.Report  `json:"report,omitempty"`
	Error   string         `json:"error,omitempty"`
}

// runFleetWorker runs one shard, reporting stats, channels and the final
// report as JSON lines on stdout; it stops when stdin closes or ctx ends.
func runFleetWorker(ctx context.Context, e *env, o fleetOpts, log *slog.Logger) error {
	var mu sync.Mutex
	enc := json.NewEncoder(e.stdout)
	emit := func(l workerLine) {
		mu.Lock()
		defer mu.Unlock()
		enc.Encode(l)
	}
	f, err := fleet.Start(ctx, o.config(log, func(c fleet.Channel) { emit(workerLine{Channel: &c}) }))
	if err != nil {
		emit(workerLine{Error: err.Error()})
		return err
	}
	stdinDone := make(chan struct{})
	go func() {
		io.Copy(io.Discard, e.stdin)
		close(stdinDone)
	}()
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for done := false; !done; {
		select {
		case <-ctx.Done():
			done = true
		case <-stdinDone:
			done = true
		case <-tick.C:
			s := f.Stats()
			emit(workerLine{Stats: &s})
		}
	}
	r := f.Report()
	l := workerLine{Report: r}
	if err := f.Close(); err != nil {
		l.Error = err.Error()
	}
	emit(l)
	return nil
}

// workerShard is a fleet worker process.
type workerShard struct {
	cmd         *exec.Cmd
	stdin       io.WriteCloser
	first, last int // its devices, by index in the whole fleet
	mu          sync.Mutex
	live        fleet.Stats // from its last stats line
	report      *fleet.Report
	err         string
	stopping    bool   // signalStop was called
	lostWhy     string // why it ended during the run, until lost says it
	unread      string // why the first line of its output that could not be read was not
	done        chan struct{}
}

func startWorker(ctx context.Context, exe string, o fleetOpts, onChannel func(fleet.Channel), stderr io.Writer) (*workerShard, error) {
	args := []string{"fleet", "--worker",
		"--server", strings.Join(o.servers, ","), "--devices", strconv.Itoa(o.devices), "--first-index", strconv.Itoa(o.firstIndex),
		"--apps", strings.Join(o.apps, ","), "--connect-rate", fmt.Sprint(o.connectRate),
		"--opt-out", fmt.Sprint(o.optOut), "--churn", fmt.Sprint(o.churn), "--airplane", fmt.Sprint(o.airplane),
		"--low-power", fmt.Sprint(o.lowPower), "--seed", fmt.Sprint(o.seed), "--source-addrs", strconv.Itoa(o.sourceAddrs),
		"--max-pending", strconv.Itoa(o.maxPending), "--min-backoff", o.minBackoff.String(), "--max-backoff", o.maxBackoff.String(), "--per-process", strconv.Itoa(o.devices), "--log-level", o.logLevel}
	if o.state != "" {
		// Each device has its own directory, named by its index in the
		// whole fleet, so the shards share the main process's (which holds
		// its lock): a device keeps its identity whatever the sharding.
		args = append(args, "--state", o.state)
	}
	if o.handoff.url != "" {
		args = append(args, "--handoff", o.handoff.url, "--handoff-concurrency", strconv.Itoa(o.handoffConcurrency),
			"--handoff-timeout", o.handoffTimeout.String())
	}
	cmd := exec.Command(exe, args...)
	if len(o.handoff.secrets) > 0 {
		b, err := json.Marshal(o.handoff.secrets)
		if err != nil {
			return nil, err
		}
		cmd.Env = append(os.Environ(), workerSecretsEnv+"="+string(b))
	}
	cmd.Stderr = stderr
	dieWithParent(cmd)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	w := &workerShard{cmd: cmd, stdin: stdin, first: o.firstIndex, last: o.firstIndex + o.devices - 1, done: make(chan struct{})}
	go func() {
		defer close(w.done)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64<<10), 64<<20) // the final report carries a histogram
		for sc.Scan() {
			var l workerLine
			if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
				w.mu.Lock()
				if w.unread == "" {
					w.unread = err.Error()
				}
				w.mu.Unlock()
				continue
			}
			switch {
			case l.Channel != nil:
				onChannel(*l.Channel)
			case l.Stats != nil:
				w.mu.Lock()
				w.live = *l.Stats
				w.mu.Unlock()
			case l.Report != nil, l.Error != "":
				// The final report may come with an error (Close's).
				w.mu.Lock()
				if l.Report != nil {
					w.report = l.Report
				}
				if l.Error != "" {
					w.err = l.Error
				}
				w.mu.Unlock()
			}
		}
		io.Copy(io.Discard, stdout) // a worker must never block writing
		cmd.Wait()
		w.mu.Lock()
		if w.report == nil && !w.stopping {
			// Its devices are gone with it.
			w.live.Connected, w.live.Registered = 0, 0
			why := cmd.ProcessState.String()
			if w.err != "" {
				why = w.err
			}
			w.lostWhy = fmt.Sprintf("the worker process of devices %d-%d ended during the run (%s)", w.first, w.last, why)
		}
		w.mu.Unlock()
	}()
	return w, nil
}

func (w *workerShard) stats() fleet.Stats {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.live
}

func (w *workerShard) lost() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	why := w.lostWhy
	w.lostWhy = ""
	return why
}

func (w *workerShard) signalStop() {
	w.mu.Lock()
	w.stopping = true
	w.mu.Unlock()
	w.stdin.Close()
}

func (w *workerShard) stop() (*fleet.Report, error) {
	w.signalStop()
	select {
	case <-w.done:
	case <-time.After(2 * time.Minute):
		w.cmd.Process.Kill()
		<-w.done
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.report == nil {
		msg := w.err
		if msg == "" {
			msg = "no report (" + w.cmd.ProcessState.String() + ")"
		}
		if w.unread != "" {
			// A report it wrote may be the line that could not be read.
			msg += "; a line it wrote could not be read: " + w.unread
		}
		return nil, fmt.Errorf("fleet worker %d: %s", w.cmd.Process.Pid, msg)
	}
	if w.err != "" {
		return w.report, fmt.Errorf("fleet worker %d: %s", w.cmd.Process.Pid, w.err)
	}
	return w.report, nil
}
