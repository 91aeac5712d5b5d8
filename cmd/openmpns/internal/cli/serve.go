package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
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
	fs.StringVar(&cfg.AdminSocket, "admin", "", "Unix socket of the admin API, where `openmpns service` reaches this server (default: "+server.AdminSocketFile+" in --data; - for none)")
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
	fs.IntVar(&cfg.MaxPendingPushes, "max-pending-pushes", server.DefaultMaxPendingPushes, "pushes waiting to be stored; beyond, senders get 503 at once (overload bound)")
	fs.StringVar(&cfg.TLSCert, "tls-cert", "", "PEM certificate: serve HTTPS/WSS (Channel URIs become https)")
	fs.StringVar(&cfg.TLSKey, "tls-key", "", "PEM private key of --tls-cert")
	fs.StringVar(&cfg.ClientCA, "client-ca", "", "PEM CA of senders' client certificates (mutual TLS: the certificate's CN is the service)")
	fs.BoolVar(&cfg.ReaderGoroutines, "reader-goroutines", false, "a reader goroutine per device connection instead of one epoll poller for all (Linux): more memory per idle device")
	fs.BoolVar(&cfg.NetHTTPPushes, "net-http-pushes", false, "serve every push through Go's net/http instead of the push front, which serves a push that arrives whole on plain HTTP itself (Linux): more CPU per push")
	adapt := fs.Bool("adapt-procs", false, "run on one processor while lightly loaded (under a quarter of a core for 2 s) and on all of them under load: about a fifth less CPU per push at a steady 1,000/s, a longer tail (p99) while on one processor (ignored when GOMAXPROCS is set)")
	pprofAddr := fs.String("pprof", "", "serve Go's profiler (net/http/pprof) on this separate address, e.g. 127.0.0.1:6060 (off by default)")
	level := fs.String("log-level", "info", "log level: debug, info, warn, error")
	format := fs.String("log-format", "text", "log format: text or json")
	if err := parse(fs, args); err != nil {
		return err
	}
	log, err := newLogger(e.stderr, *level, *format)
	if err != nil {
		return err
	}
	cfg.Logger = log
	if cfg.CommitLinger == 0 {
		cfg.CommitLinger = -1 // in Config, 0 is the default
	}
	if cfg.TrustedProxies, err = server.ParseTrustedProxies(*trustedProxies); err != nil {
		return &usageError{fmt.Errorf("--trusted-proxy: %w", err)}
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
