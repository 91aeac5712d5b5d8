package cli

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"runtime/pprof"
	"slices"
	"strings"
	"time"

	"github.com/openmpns/openmpns/device/fleet"
	"github.com/openmpns/openmpns/shared/sender/load"
)

// waitRegistered waits until every device of fl is registered, for at
// most within, printing progress every interval, with the latest error
// once devices fail to connect: a fleet that cannot reach its server
// says so at once instead of waiting in silence.
func waitRegistered(ctx context.Context, fl *fleet.Fleet, within, interval time.Duration, w io.Writer, prefix string) error {
	wctx, cancel := context.WithTimeout(ctx, within)
	defer cancel()
	lastErr := ""
	for {
		tctx, tcancel := context.WithTimeout(wctx, interval)
		err := fl.WaitRegistered(tctx)
		tcancel()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("interrupted while the devices connected (%s)", fl.Stats())
		}
		if wctx.Err() != nil {
			return fmt.Errorf("the devices did not all register within %v (%s)", within, fl.Stats())
		}
		s := fl.Stats()
		fmt.Fprintf(w, "%s: %d/%d devices connected, %d registered, %d errors\n", prefix, s.Connected, s.Devices, s.Registered, s.ErrorCount())
		if s.LastError != "" && s.LastError != lastErr {
			lastErr = s.LastError
			fmt.Fprintf(w, "%s: last error: %s (the devices keep retrying)\n", prefix, s.LastError)
		}
	}
}

// loadReport is what `openmpns load --report` writes: the sender's view
// and, when it ran its own fleet, the devices' view.
type loadReport struct {
	Load  *load.Report  `json:"load"`
	Fleet *fleet.Report `json:"fleet,omitempty"`
}

func runLoad(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "load", "(--channels FILE | --fleet N [--server URL] [--apps a,b]) (--rate R | --concurrency C) (--count N | --duration D) [--mix toast=60,tile=30,raw=10] [--report FILE]")
	channels := fs.String("channels", "", "channels file from openmpns fleet --channels-out (CSV or JSON lines); of a channel whose URI changed, only the latest line's URI is sent to")
	fleetN := fs.Int("fleet", 0, "instead of --channels: start this many devices in this process and send to their channels; reports end-to-end latency")
	srvURL := fs.String("server", "http://127.0.0.1:8080", "server for --fleet; several, comma-separated (a cluster's nodes), share the devices")
	cross := fs.Bool("cross-node", false, "with --fleet and several --server nodes: POST each Channel URI to a node other than the one its device connects to (a cluster's worst case)")
	via := fs.String("via", "", "POST each Channel URI to one of these base URLs (a cluster's nodes, comma-separated) instead of the URI's own host: device i's to the i-th modulo their number")
	apps := fs.String("apps", "com.example.app", "apps for --fleet, comma-separated")
	rate := fs.Float64("rate", 0, "open loop: notifications per second")
	conc := fs.Int("concurrency", 0, "closed loop: concurrent senders (with --rate: the most requests in flight, default 512)")
	count := fs.Int("count", 0, "stop after this many notifications")
	duration := fs.Duration("duration", 0, "stop after this long (from when the senders are ready)")
	mixFlag := fs.String("mix", "toast=60,tile=30,raw=10", "relative weights of toast, tile and raw")
	rawSize := fs.Int("raw-size", 0, "payload size in bytes of each raw notification (0: a short JSON object)")
	netHTTP := fs.Bool("net-http", false, "send through Go's net/http client even to plain-http Channel URIs (by default the tool's own keep-alive HTTP/1.1 connections, a fraction of the CPU); https always uses net/http")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the sending (not of the device start-up) to this file")
	interval := fs.String("class", "immediate", "batching interval: immediate, 450 (within 450 s) or 900")
	token := fs.String("token", "", "bearer access token for an authenticated sender (Authorization: Bearer)")
	report := fs.String("report", "", "write the JSON report to this file")
	htmlReport := fs.String("report-html", "", "write a self-contained HTML report to this file (with --fleet: latency distribution, deliveries and connections over time)")
	drain := fs.Duration("drain", 30*time.Second, "with --fleet: how long to wait for the devices to receive what was accepted")
	connectWithin := fs.Duration("connect-within", 5*time.Minute, "with --fleet: how long the devices may take to connect and register")
	logLevel := fs.String("log-level", "warn", "log level on stderr: debug, info, warn, error")
	flagsUsage := fs.Usage
	fs.Usage = func() {
		flagsUsage()
		fmt.Fprint(fs.Output(), "\nExit status: 0 when at least one notification was accepted (200 Received or Suppressed;\n"+
			"the others are counted in the table, and a line says how many and why), 1 when none was\n"+
			"(every send refused, failing or answered otherwise), or with --fleet when not every\n"+
			"accepted notification arrived; 2 for a usage error.\n")
	}
	if err := parse(fs, args); err != nil {
		return err
	}
	log, err := newLogger(e.stderr, *logLevel, "text")
	if err != nil {
		return &usageError{err}
	}
	mix, err := load.ParseMix(*mixFlag)
	if err != nil {
		fmt.Fprintf(e.stderr, "openmpns load: --mix: %v\n", err)
		return errUsage
	}
	iv, err := parseInterval(*interval)
	if err != nil {
		fmt.Fprintf(e.stderr, "openmpns load: --class: %v\n", err)
		return errUsage
	}
	if (*channels == "") == (*fleetN == 0) || (*rate <= 0 && *conc <= 0) || (*count <= 0 && *duration <= 0) {
		fmt.Fprintln(e.stderr, "openmpns load: give --channels or --fleet, --rate or --concurrency, and --count or --duration")
		fs.Usage()
		return errUsage
	}
	// The reports are created first: a path that cannot be written is
	// found now, not at the end of the run.
	reportOut, err := createOutput("--report", *report)
	if err != nil {
		return err
	}
	defer reportOut.discard()
	htmlOut, err := createOutput("--report-html", *htmlReport)
	if err != nil {
		return err
	}
	defer htmlOut.discard()
	var targets []load.Target
	var fl *fleet.Fleet
	if *channels != "" {
		f, err := os.Open(*channels)
		if err != nil {
			return err
		}
		var replaced int
		targets, replaced, err = load.ReadTargets(f)
		f.Close()
		if err != nil {
			return fmt.Errorf("%s: %w", *channels, err)
		}
		if replaced > 0 {
			fmt.Fprintf(e.stderr, "load: %s: %d lines hold a Channel URI that a later line replaces (the channel's URI changed: the device re-registered or its channel was opened again); sending to the %d current ones only\n",
				*channels, replaced, len(targets))
		}
	} else {
		servers := splitList(*srvURL)
		fl, err = fleet.Start(ctx, fleet.Config{Servers: servers, Devices: *fleetN, Apps: splitList(*apps),
			ConnectRate: 0, Logger: log, SourceAddrs: defaultSourceAddrs(servers, *fleetN)})
		if err != nil {
			return err
		}
		defer fl.Close()
		fmt.Fprintf(e.stderr, "load: starting %d devices against %s...\n", *fleetN, *srvURL)
		if err := waitRegistered(ctx, fl, *connectWithin, time.Second, e.stderr, "load"); err != nil {
			return err
		}
		for _, c := range fl.Channels() {
			targets = append(targets, load.Target{URI: c.URI, App: c.App, Device: c.Device})
		}
		if *cross && len(servers) > 1 && *via == "" {
			// Device i connects to servers[i % n] (fleet.Config.Servers):
			// its pushes go to the next one.
			*via = strings.Join(append(servers[1:], servers[0]), ",")
		}
	}
	if *via != "" {
		nodes := splitList(*via)
		for i := range targets {
			if targets[i].URI, err = rebase(targets[i].URI, nodes[targets[i].Device%len(nodes)]); err != nil {
				return err
			}
		}
	}
	cfg := load.Config{Targets: targets, Rate: *rate, Concurrency: *conc, Count: *count, Duration: *duration, Mix: mix, Interval: iv,
		RawSize: *rawSize, NetHTTP: *netHTTP,
		Progress: func(p load.Progress) {
			fmt.Fprintf(e.stderr, "load %5.1fs: %d sent (%.0f/s), %d errors\n", p.Elapsed.Seconds(), p.Sent, float64(p.Sent)/p.Elapsed.Seconds(), p.Errors)
		},
		Ready: func(senders int, took time.Duration) {
			fmt.Fprintf(e.stderr, "load: %d senders ready in %v; the clock starts\n", senders, took.Round(time.Millisecond))
		}}
	if *token != "" {
		cfg.Header = http.Header{"Authorization": {"Bearer " + *token}}
	}
	mode := fmt.Sprintf("%d senders", *conc)
	if *rate > 0 {
		mode = fmt.Sprintf("%.0f/s", *rate)
	}
	fmt.Fprintf(e.stderr, "load: sending to %d channels at %s, mix %s (getting the senders ready first)\n", len(targets), mode, mix)
	var timeline []fleet.Sample
	stopSampling := func() {}
	if fl != nil && *htmlReport != "" {
		stopSampling = sampleFleet(fl, time.Second, &timeline)
		defer stopSampling()
	}
	stopProfile, err := startCPUProfile(*cpuProfile)
	if err != nil {
		return err
	}
	rep, err := load.Run(ctx, cfg)
	if perr := stopProfile(); err == nil && perr != nil {
		err = perr
	}
	if err != nil {
		return err
	}
	out := loadReport{Load: rep}
	rep.WriteTable(e.stdout)
	verdict := acceptance(rep)
	if verdict == nil && rep.Sent > rep.Received+rep.Answers[suppressedAnswer] {
		fmt.Fprintf(e.stderr, "load: %s\n", notAccepted(rep))
	}
	if fl != nil {
		fmt.Fprintf(e.stderr, "load: waiting up to %v for the devices to receive %d notifications...\n", *drain, rep.Received)
		wctx, cancel := context.WithTimeout(ctx, *drain)
		werr := fl.Wait(wctx, func(s fleet.Stats) bool { return s.Total() >= rep.Received })
		cancel()
		stopSampling()
		out.Fleet = fl.Report()
		out.Fleet.Timeline = timeline
		fmt.Fprintf(e.stdout, "devices received %d of %d accepted; end to end (accept → device): %s; POST → device: %s; POST → accept: %s\n",
			out.Fleet.Total(), rep.Received, out.Fleet.LatencySummary, out.Fleet.SendLatencySummary, out.Fleet.SendToAcceptSummary)
		if werr != nil {
			err = errors.Join(err, fmt.Errorf("not every accepted notification arrived: %w", werr))
		}
	}
	// The reason a run failed comes first: a failed drain follows from it.
	errs := []error{verdict, err}
	if reportOut != nil {
		errs = append(errs, writeJSONReport(e, "load", reportOut, out))
	}
	if htmlOut != nil {
		errs = append(errs, reportWritten(e, "load", htmlOut, writeLoadHTML(htmlOut, rep, out.Fleet, timeline)))
	}
	return errors.Join(errs...)
}

// suppressedAnswer is the Report.Answers key of 200 Suppressed: accepted,
// then dropped by the phone's settings, a normal outcome for a sender.
const suppressedAnswer = "200 Suppressed"

// acceptance is the error of a run in which not one notification was
// accepted (answered 200 Received or 200 Suppressed), saying why in one
// line; nil when at least one was. A run in which some were accepted and
// some not passes: pushing a server to its limits, QueueFull and 503 are
// results, and the table counts them.
func acceptance(rep *load.Report) error {
	if rep.Sent == 0 {
		return errors.New("no notification was sent")
	}
	if rep.Received+rep.Answers[suppressedAnswer] > 0 {
		return nil
	}
	return errors.New("no notification was accepted: " + notAccepted(rep))
}

// notAccepted says how many sends were not accepted and the commonest
// reasons, such as "5 of 5 not accepted: connection refused (5)".
func notAccepted(rep *load.Report) string {
	type reason struct {
		what string
		n    int64
	}
	var rs []reason
	var n int64
	for k, v := range rep.Answers {
		if k != "200 Received" && k != suppressedAnswer {
			rs = append(rs, reason{"answered " + k, v})
			n += v
		}
	}
	for k, v := range rep.Errors {
		rs = append(rs, reason{k, v})
		n += v
	}
	slices.SortFunc(rs, func(a, b reason) int { return cmp.Or(cmp.Compare(b.n, a.n), strings.Compare(a.what, b.what)) })
	var parts []string
	for i, r := range rs {
		if i == 3 {
			parts = append(parts, "...")
			break
		}
		parts = append(parts, fmt.Sprintf("%s (%d)", r.what, r.n))
	}
	return fmt.Sprintf("%d of %d not accepted: %s", n, rep.Sent, strings.Join(parts, ", "))
}

// rebase is the Channel URI uri at the node with base URL base: the same
// path, another scheme and host (what a load balancer does).
func rebase(uri, base string) (string, error) {
	u, err := url.Parse(uri)
	if err != nil {
		return "", fmt.Errorf("channel URI %q: %w", uri, err)
	}
	b, err := url.Parse(base)
	if err != nil {
		return "", fmt.Errorf("server %q: %w", base, err)
	}
	u.Scheme, u.Host = b.Scheme, b.Host
	return u.String(), nil
}

// sampleFleet records fl's counters every interval into *timeline until
// the returned stop is called (which waits for the sampler to end).
func sampleFleet(fl *fleet.Fleet, interval time.Duration, timeline *[]fleet.Sample) (stop func()) {
	start := time.Now()
	done, ended := make(chan struct{}), make(chan struct{})
	*timeline = append(*timeline, fleet.SampleOf(0, fl.Stats()))
	go func() {
		defer close(ended)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-done:
				*timeline = append(*timeline, fleet.SampleOf(time.Since(start), fl.Stats()))
				return
			case now := <-t.C:
				*timeline = append(*timeline, fleet.SampleOf(now.Sub(start), fl.Stats()))
			}
		}
	}()
	var once bool
	return func() {
		if !once {
			once = true
			close(done)
			<-ended
		}
	}
}

// startCPUProfile starts a CPU profile written to path ("" profiles
// nothing); stop ends it and closes the file.
func startCPUProfile(path string) (stop func() error, err error) {
	if path == "" {
		return func() error { return nil }, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("--cpuprofile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("--cpuprofile: %w", err)
	}
	return func() error {
		pprof.StopCPUProfile()
		if err := f.Close(); err != nil {
			return fmt.Errorf("--cpuprofile: %w", err)
		}
		return nil
	}, nil
}
