package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/openmpns/openmpns/server"
	"github.com/openmpns/openmpns/shared/procs"
)

func runServe(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "serve", "[--listen ADDR] [--data DIR | --nats URLS --public-url URL] [--public-url URL] [--time-scale N]")
	var cfg server.Config
	var nf natsFlags
	nf.add(fs, true)
	fs.StringVar(&cfg.Listen, "listen", server.DefaultListen, "address of the HTTP listener (push API, device gateway /ws, /healthz, /metrics)")
	fs.StringVar(&cfg.DataDir, "data", server.DefaultDataDir, "data directory (holds "+server.DBFile+" and the admin socket; with --nats only the admin socket)")
	fs.StringVar(&cfg.AdminSocket, "admin", "", "`PATH` of the Unix socket of the admin API, where openmpns service and openmpns identity reach this server (default: "+server.AdminSocketFile+" in --data; - for none)")
	fs.StringVar(&cfg.PublicURL, "public-url", "", "origin used in Channel URIs (default http://<listen>)")
	fs.Float64Var(&cfg.TimeScale, "time-scale", server.DefaultTimeScale, "divide the 450 s and 900 s batching windows by this, to preview batched delivery")
	fs.IntVar(&cfg.QueueLimit, "queue-limit", server.DefaultQueueLimit, "notifications one channel may have queued before senders get QueueFull")
	fs.DurationVar(&cfg.QueueTTL, "queue-ttl", server.DefaultQueueTTL, "how long an undelivered notification is kept")
	fs.IntVar(&cfg.DailyQuota, "daily-quota", server.DefaultDailyQuota, "notifications per channel per day for unauthenticated senders (-1: no quota)")
	fs.IntVar(&cfg.MaxPayloadBytes, "max-payload", server.DefaultMaxPayloadBytes, "largest notification body in bytes")
	fs.IntVar(&cfg.MaxHeaderBytes, "max-headers", server.DefaultMaxHeaderBytes, "largest request headers in bytes (Authorization not counted)")
	fs.DurationVar(&cfg.TempDisconnected, "temp-disconnected", server.DefaultTempDisconnected, "offline time reported as TempDisconnected; longer is Disconnected")
	fs.DurationVar(&cfg.InactiveAfter, "inactive-after", server.DefaultInactiveAfter, "offline time after which a device is Inactive (pushes get 412)")
	fs.IntVar(&cfg.MaxAttaching, "max-attaching", server.DefaultMaxAttaching, "hellos handled at once; past it a hello waits up to 2 s, then the device is told to retry later (close 1013) and backs off, so a reconnect storm costs quick refusals (-1: no limit)")
	fs.IntVar(&cfg.MaxConnsPerIP, "max-conns-per-ip", server.DefaultMaxConnsPerIP, "device connections allowed from one address, an IPv6 /64 counting as one (loopback exempt unless --limit-loopback; -1: no limit)")
	fs.Float64Var(&cfg.NewDevicesPerMinute, "new-devices-per-minute", server.DefaultNewDevicesPerMinute, "new device identities one address may register per minute; past it close 4029 and the device backs off (-1: no limit)")
	fs.IntVar(&cfg.NewDeviceBurst, "new-device-burst", server.DefaultNewDeviceBurst, "new device identities one address may register at once before --new-devices-per-minute applies")
	fs.Float64Var(&cfg.ChannelOpensPerMinute, "channel-opens-per-minute", server.DefaultChannelOpensPerMinute, "new channels one address may open per minute (reopening one is not counted); past it close 4029 (-1: no limit)")
	fs.IntVar(&cfg.ChannelOpenBurst, "channel-open-burst", server.DefaultChannelOpenBurst, "new channels one address may open at once before --channel-opens-per-minute applies")
	fs.BoolVar(&cfg.LimitLoopback, "limit-loopback", false, "apply the per-address limits to loopback too (by default loopback is exempt, so that local fleets run)")
	trustedProxies := fs.String("trusted-proxy", "", "comma-separated addresses and CIDRs of reverse proxies whose --forwarded-header names the client (the rightmost hop not itself a trusted proxy); others' headers are ignored")
	fs.StringVar(&cfg.ForwardedHeader, "forwarded-header", server.DefaultForwardedHeader, "the header trusted proxies name clients in: X-Forwarded-For or Forwarded")
	fs.IntVar(&cfg.MaxDevices, "max-devices", server.DefaultMaxDevices, "devices the service keeps; past it new devices are refused (server_full, close 1013; -1: no cap)")
	fs.IntVar(&cfg.MaxTotalChannels, "max-total-channels", server.DefaultMaxTotalChannels, "channels of all devices together; past it new channels are refused (server_full; -1: no cap)")
	fs.Int64Var(&cfg.MaxQueuedBytes, "max-queued-bytes", server.DefaultMaxQueuedBytes, "bytes of notifications queued in the whole service; past it pushes get 200 QueueFull (-1: no cap)")
	fs.DurationVar(&cfg.InactiveGrace, "inactive-grace", server.DefaultInactiveGrace, "how long a device stays Inactive before it is deleted with its channels (pushes then get 404; -1s: never)")
	fs.DurationVar(&cfg.Heartbeat, "heartbeat", server.DefaultHeartbeat, "WebSocket ping interval")
	fs.DurationVar(&cfg.WriteTimeout, "write-timeout", server.DefaultWriteTimeout, "a device that does not take a frame within this is cut off (slow consumer)")
	fs.DurationVar(&cfg.HelloTimeout, "hello-timeout", server.DefaultHelloTimeout, "time a device has after the WebSocket upgrade to send hello")
	fs.DurationVar(&cfg.ReadHeaderTimeout, "read-header-timeout", server.DefaultReadHeaderTimeout, "time to read a request's headers (slowloris guard)")
	fs.DurationVar(&cfg.ReadTimeout, "read-timeout", server.DefaultReadTimeout, "time to read a whole push request, body included")
	fs.DurationVar(&cfg.IdleTimeout, "idle-timeout", server.DefaultIdleTimeout, "how long an idle keep-alive HTTP connection is kept")
	fs.DurationVar(&cfg.CommitLinger, "commit-linger", server.DefaultCommitLinger, "how long a group commit of the notification log waits, from its first notification, before writing (not with --nats): a notification its device acknowledges meanwhile is never written (its sender hears Received at the acknowledgement); a push to a device that does not acknowledge is answered that much later (0: commit at once)")
	fs.IntVar(&cfg.MaxPendingPushes, "max-pending-pushes", server.DefaultMaxPendingPushes, "pushes waiting to be stored; beyond, senders get 503 at once (overload bound; -1: no limit)")
	fs.StringVar(&cfg.TLSCert, "tls-cert", "", "PEM certificate: serve HTTPS/WSS (Channel URIs become https)")
	fs.StringVar(&cfg.TLSKey, "tls-key", "", "PEM private key of --tls-cert")
	fs.StringVar(&cfg.ClientCA, "client-ca", "", "PEM CA of senders' client certificates (mutual TLS: the certificate's CN is the service)")
	fs.BoolVar(&cfg.ReaderGoroutines, "reader-goroutines", false, "a reader goroutine per device connection instead of one epoll poller for all (Linux): more memory per idle device")
	fs.BoolVar(&cfg.NetHTTPPushes, "net-http-pushes", false, "serve every push through Go's net/http instead of the push front, which serves a push that arrives whole on plain HTTP itself (Linux): more CPU per push")
	adapt := fs.Bool("adapt-procs", false, "run on one processor while lightly loaded (under a quarter of a core for 2 s) and on all of them under load: about a fifth less CPU per push at a steady 1,000/s, a longer tail (p99) while on one processor (ignored when GOMAXPROCS is set)")
	pprofAddr := fs.String("pprof", "", "serve Go's profiler (net/http/pprof) on this separate address, e.g. 127.0.0.1:6060 (off by default)")
	level := fs.String("log-level", "info", "log level: debug, info, warn, error")
	format := fs.String("log-format", "text", "log format: text or json")
	flagsUsage := fs.Usage
	fs.Usage = func() {
		flagsUsage()
		fmt.Fprint(fs.Output(), "\nLimits and times take positive values: 0 is refused (but --commit-linger 0 commits at once),\n"+
			"and -1 (-1s) means no limit or never only where a flag says so.\n")
	}
	if err := parse(fs, args); err != nil {
		return err
	}
	log, err := newLogger(e.stderr, *level, *format)
	if err != nil {
		return &usageError{err}
	}
	if err := refuseZeros(fs); err != nil {
		return err
	}
	cfg.Logger = log
	if cfg.CommitLinger == 0 {
		cfg.CommitLinger = -1 // in Config, 0 is the default
	}
	if cfg.TrustedProxies, err = server.ParseTrustedProxies(*trustedProxies); err != nil {
		return &usageError{fmt.Errorf("--trusted-proxy: %w", err)}
	}
	// The values are checked before anything opens: a bad one is a usage
	// error (server.New checks them again, and fills in nothing more).
	if err := cfg.Normalize(); err != nil {
		return &usageError{oneLine{err}}
	}
	if nf.set() {
		if cfg.PublicURL == "" {
			return fmt.Errorf("--nats needs --public-url: every node puts the same origin (the load balancer's or DNS name's) in Channel URIs and tokens")
		}
		ttl := cfg.QueueTTL
		if ttl == 0 {
			ttl = server.DefaultQueueTTL
		}
		fmt.Fprintf(e.stdout, "joining the service in NATS at %s (prefix %s)\n", nf.urls, nf.prefix)
		octx, cancel := context.WithTimeout(ctx, time.Minute)
		be, err := nf.open(octx, log, ttl)
		cancel()
		if err != nil {
			return err
		}
		cfg.Backend = be
	}
	srv, err := server.New(cfg)
	if err != nil {
		return err
	}
	if err := srv.Start(); err != nil {
		srv.Close()
		return err
	}
	if *pprofAddr != "" {
		stop, addr, err := servePprof(*pprofAddr)
		if err != nil {
			srv.Close()
			return fmt.Errorf("--pprof: %w", err)
		}
		defer stop()
		fmt.Fprintf(e.stdout, "profiler on http://%s/debug/pprof/\n", addr)
	}
	stopAdapting := func() {}
	if *adapt && !gomaxprocsSet() {
		stop, err := procs.Start(procs.Config{Logger: log})
		switch {
		case errors.Is(err, procs.ErrRunning): // another server in this process (tests)
			log.Debug("not adapting processors to the load", "err", err)
		case err != nil:
			log.Warn("not adapting processors to the load", "err", err)
		default:
			stopAdapting = stop
			defer stop()
		}
	}
	fmt.Fprintf(e.stdout, "openmpns server on %s (devices connect to %s/ws; Channel URIs look like %s/push/...)\n", srv.Addr(), srv.URL(), srv.URL())
	select {
	case <-ctx.Done():
		log.Info("shutting down: draining devices and requests")
	case err := <-srv.Done():
		srv.Close()
		return fmt.Errorf("http server stopped: %w", err)
	}
	stopAdapting() // the drain gets every processor at once
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return srv.Shutdown(sctx)
}

// gomaxprocsSet reports whether the environment sets the processors (a
// GOMAXPROCS the runtime takes: a positive number).
func gomaxprocsSet() bool {
	n, err := strconv.ParseInt(os.Getenv("GOMAXPROCS"), 10, 32) // as the runtime reads it
	return err == nil && n > 0
}

// zeroRefused are the flags of serve whose 0 server.Config would take as
// "the default" (what the flag's default already is), with what they take
// instead: 0 is refused rather than silently read as the default, which
// is not what anyone writing 0 means (--daily-quota 0 was 500 a day).
var zeroRefused = map[string]string{
	"time-scale":               "want 1 to 1000000 (1: real time)",
	"queue-limit":              "want at least 1",
	"queue-ttl":                "want a positive time",
	"daily-quota":              "want at least 1, or -1 for no quota",
	"max-payload":              fmt.Sprintf("want 1 to %d bytes", server.MaxPayloadLimit),
	"max-headers":              "want a positive size in bytes",
	"temp-disconnected":        "want a positive time",
	"inactive-after":           "want a positive time",
	"max-attaching":            "want at least 1, or -1 for no limit",
	"max-conns-per-ip":         "want at least 1, or -1 for no limit",
	"new-devices-per-minute":   "want a positive rate, or -1 for no limit",
	"new-device-burst":         "want at least 1",
	"channel-opens-per-minute": "want a positive rate, or -1 for no limit",
	"channel-open-burst":       "want at least 1",
	"max-devices":              "want at least 1, or -1 for no cap",
	"max-total-channels":       "want at least 1, or -1 for no cap",
	"max-queued-bytes":         "want a positive size in bytes, or -1 for no cap",
	"inactive-grace":           "want a positive time, or -1s for never",
	"heartbeat":                "want a positive time",
	"write-timeout":            "want a positive time",
	"hello-timeout":            "want a positive time",
	"read-header-timeout":      "want a positive time",
	"read-timeout":             "want a positive time",
	"idle-timeout":             "want a positive time",
	"max-pending-pushes":       "want at least 1, or -1 for no limit",
}

// refuseZeros refuses a 0 given to a flag of zeroRefused.
func refuseZeros(fs *flag.FlagSet) error {
	var err error
	fs.Visit(func(f *flag.Flag) {
		want, ok := zeroRefused[f.Name]
		if !ok || err != nil {
			return
		}
		g, _ := f.Value.(flag.Getter)
		if g == nil {
			return
		}
		zero := false
		switch v := g.Get().(type) {
		case int:
			zero = v == 0
		case int64:
			zero = v == 0
		case float64:
			zero = v == 0
		case time.Duration:
			zero = v == 0
		}
		if zero {
			err = badUsage("--%s %s: %s", f.Name, f.Value, want)
		}
	})
	return err
}

// oneLine is an error of several lines (errors.Join) said on one.
type oneLine struct{ error }

func (o oneLine) Error() string { return strings.ReplaceAll(o.error.Error(), "\n", "; ") }
func (o oneLine) Unwrap() error { return o.error }
