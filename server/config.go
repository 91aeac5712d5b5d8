package server

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	"github.com/openmpns/openmpns/server/backend"
	"github.com/openmpns/openmpns/server/store"
	"github.com/openmpns/openmpns/shared/clock"
)

// Defaults for Config. Each is documented in docs/server.md.
const (
	DefaultListen           = "127.0.0.1:8080"
	DefaultDataDir          = "./data"
	DefaultMaxPayloadBytes  = 3072
	DefaultMaxHeaderBytes   = 1024
	DefaultQueueLimit       = 100
	DefaultQueueTTL         = 24 * time.Hour
	DefaultTempDisconnected = 15 * time.Minute
	DefaultInactiveAfter    = 30 * 24 * time.Hour
	DefaultDailyQuota       = 500
	DefaultMaxChannels      = 30
	DefaultHeartbeat        = 30 * time.Second
	DefaultInFlight         = 64
	DefaultMaxConnsPerIP    = 256
	DefaultMaxAttaching     = 128
	DefaultWriteTimeout     = 10 * time.Second
	DefaultBatchWindow450   = 450 * time.Second
	DefaultBatchWindow900   = 900 * time.Second
	DefaultTimeScale        = 1.0
	DefaultShutdownGrace    = 5 * time.Second
	DefaultMaxPendingPushes = 1024
	DefaultCommitLinger     = store.DefaultCommitLinger

	DefaultNewDevicesPerMinute   = 10
	DefaultNewDeviceBurst        = 20
	DefaultChannelOpensPerMinute = 60
	DefaultChannelOpenBurst      = 120
	DefaultForwardedHeader       = "X-Forwarded-For"
	DefaultMaxDevices            = 1_000_000
	DefaultMaxTotalChannels      = 3_000_000
	DefaultMaxQueuedBytes        = 512 << 20
	DefaultInactiveGrace         = 30 * 24 * time.Hour

	DefaultReadHeaderTimeout = 10 * time.Second
	DefaultReadTimeout       = 30 * time.Second
	DefaultIdleTimeout       = 120 * time.Second
	DefaultHelloTimeout      = 10 * time.Second
)

// MaxPayloadLimit is the largest MaxPayloadBytes allowed: a payload travels
// base64-encoded inside a JSON frame of at most wire.MaxFrameBytes.
const MaxPayloadLimit = 8192

// Config is everything a Server needs. The zero value of each field means its
// default; Normalize fills them in and checks the rest.
type Config struct {
	// Listen is the address of the HTTP listener (push API, device gateway,
	// health and metrics).
	Listen string
	// PublicURL is the origin put in Channel URIs, e.g. https://push.example.com.
	// Empty means http://<Listen>.
	PublicURL string
	// DataDir holds the bbolt file (openmpns.db) of the embedded backend.
	DataDir string
	// AdminSocket is the Unix socket of the admin API (services without a
	// restart), created 0600: "" means admin.sock in DataDir, "-" none.
	AdminSocket string
	// Backend holds the service's state (devices, channels, queues,
	// presence, counters, services); nil opens the embedded backend in
	// DataDir. The server closes it at Shutdown.
	Backend backend.Backend

	// MaxPayloadBytes bounds a notification body, raw included.
	MaxPayloadBytes int
	// MaxHeaderBytes bounds the request headers of a push, Authorization not counted.
	MaxHeaderBytes int
	// QueueLimit is how many notifications one channel may have queued;
	// beyond it senders get QueueFull.
	QueueLimit int
	// QueueTTL is how long an undelivered notification is kept.
	QueueTTL time.Duration
	// TempDisconnected is how long a device may be offline and still be
	// reported TempDisconnected; after that it is Disconnected.
	TempDisconnected time.Duration
	// InactiveAfter is how long a device may be offline before it is Inactive
	// and pushes to it get 412.
	InactiveAfter time.Duration
	// DailyQuota is how many notifications an unauthenticated sender may push
	// to one channel per day (UTC); beyond it 406. Negative disables the quota.
	DailyQuota int
	// MaxChannels is how many channels one device may open.
	MaxChannels int
	// Heartbeat is the WebSocket ping interval; a device that answers no ping
	// within two intervals is disconnected.
	Heartbeat time.Duration
	// InFlight is how many notifications a device may have unacknowledged.
	InFlight int
	// WriteTimeout bounds each WebSocket write; a device that does not read is
	// cut off after it.
	WriteTimeout time.Duration
	// MaxAttaching bounds the hellos a node handles at once (a device's
	// credentials checked or created, its connection claimed, its queue
	// read); past it a hello waits up to 2 s for a place, then is refused
	// with server_full and close 1013, and the device backs off. A reconnect storm beyond what the
	// backend can take then costs quick refusals, not timeouts after the
	// work was done (which devices retry, and which on a cluster took the
	// goodput to nothing). Negative: no limit.
	MaxAttaching int
	// MaxConnsPerIP bounds the device connections from one source address
	// (loopback addresses are exempt: fleets run there). Negative: no limit.
	MaxConnsPerIP int
	// NewDevicesPerMinute bounds the new identities (a hello without
	// credentials) one source address may create, with bursts of
	// NewDeviceBurst; past it the hello is refused with close code 4029
	// (wire.CloseRateLimited). Negative: no limit. Loopback is exempt
	// unless LimitLoopback; an IPv6 /64 counts as one address.
	NewDevicesPerMinute float64
	NewDeviceBurst      int
	// ChannelOpensPerMinute bounds the channels one source address may
	// create (opening a channel the device already has is not counted),
	// with bursts of ChannelOpenBurst; past it the open is refused and the
	// connection closed with 4029. Negative: no limit.
	ChannelOpensPerMinute float64
	ChannelOpenBurst      int
	// LimitLoopback applies the per-address limits (MaxConnsPerIP and the
	// rates above) to loopback addresses too; by default they are exempt,
	// so that local fleets can run.
	LimitLoopback bool
	// TrustedProxies are the proxies whose ForwardedHeader is believed: a
	// connection from one of them is counted against the client address
	// the header names (the rightmost hop that is not a trusted proxy).
	TrustedProxies []netip.Prefix
	// ForwardedHeader is the header trusted proxies name the client in:
	// X-Forwarded-For (default) or Forwarded (RFC 7239). Only one is read,
	// so a client cannot slip in the other.
	ForwardedHeader string
	// MaxDevices caps the devices the service keeps; past it a new
	// identity is refused (error server_full, close 1013). Negative: no cap.
	MaxDevices int
	// MaxTotalChannels caps the channels of all devices; past it opening a
	// new channel is refused (error server_full). Negative: no cap.
	MaxTotalChannels int
	// MaxQueuedBytes caps the queued notifications of the whole service
	// (Stats.QueuedBytes); past it pushes get 200 QueueFull, as a full
	// channel does. Negative: no cap.
	MaxQueuedBytes int64
	// InactiveGrace is how long a device stays Inactive (offline longer
	// than InactiveAfter) before it is deleted with its channels; pushes
	// to them then get 404 Dropped/Expired. Negative: never deleted.
	InactiveGrace time.Duration

	// MaxPendingPushes bounds the pushes accepted by the engine and waiting
	// for their store write; beyond it senders get 503 at once (overload).
	// Negative: no limit.
	MaxPendingPushes int
	// RemoveDelay bounds how long the deletion of an acknowledged or
	// expired notification waits for a commit to ride on before it is
	// written on its own (default 100 ms). A crash within it delivers the
	// notification again, and the device drops it as already seen.
	RemoveDelay time.Duration
	// CommitLinger is how long the embedded backend's group commit waits,
	// from the arrival of its first notification, before writing it: a
	// notification its device acknowledges meanwhile is never written nor
	// fdatasynced (its sender hears Received at the acknowledgement), and
	// notifications arriving meanwhile share the commit. A push to a
	// connected device that does not acknowledge it in time is answered
	// that much later; one to a device not connected (or in a later batch)
	// does not linger. Default 5 ms; negative: commit at once.
	CommitLinger time.Duration
	// TimeScale divides the batching windows (450 s, 900 s) so a developer
	// can preview batched delivery: 100 makes them 4.5 s and 9 s.
	TimeScale float64
	// ShutdownGrace is how long Shutdown waits for in-flight requests.
	ShutdownGrace time.Duration

	// ReadHeaderTimeout bounds reading a request's headers (a push, or a
	// device's WebSocket upgrade); a client that trickles them is cut off.
	ReadHeaderTimeout time.Duration
	// ReadTimeout bounds reading a whole push request, body included; a
	// body still incomplete after it is refused with 400.
	ReadTimeout time.Duration
	// IdleTimeout is how long a keep-alive HTTP connection may sit idle
	// between requests before the server closes it.
	IdleTimeout time.Duration
	// ReaderGoroutines gives every device connection a reader goroutine
	// instead of watching all of them with one epoll instance (Linux): about
	// 12 KiB instead of 6 KiB per idle connection. Elsewhere it is always so.
	ReaderGoroutines bool
	// NetHTTPPushes serves every push through net/http, as on systems
	// without epoll, instead of the push front, which serves a push that
	// arrives whole on plain HTTP itself (Linux; see docs/server.md).
	NetHTTPPushes bool
	// HelloTimeout is how long a device has after the WebSocket upgrade to
	// send hello; past it the server closes the connection (1008).
	HelloTimeout time.Duration

	// TLSCert and TLSKey (PEM files) make the server serve HTTPS (and WSS);
	// Channel URIs are then https. ClientCA (PEM) enables mutual TLS: a
	// sender presenting a certificate signed by it is authenticated as the
	// service named by the certificate's subject CN.
	TLSCert, TLSKey, ClientCA string
	// Authenticator identifies senders; nil treats every sender as
	// unauthenticated.
	Authenticator Authenticator

	// parkAfter, when set, is how long the push front keeps an idle
	// sender's connection's goroutine (tests; see defaultParkAfter).
	parkAfter time.Duration

	// sweepEvery, when set, is how often the push front's sweeper looks
	// for connections to park or close (tests: parking often without
	// timeouts short enough to close a connection whose sender a loaded
	// machine keeps from pushing at once); by default a quarter of the
	// shorter of ReadHeaderTimeout and IdleTimeout, within [10 ms, 5 s].
	sweepEvery time.Duration

	// Logger receives structured logs; nil means slog.Default().
	Logger *slog.Logger
	// Clock is the time source; nil means the system clock.
	Clock clock.Clock
}

// Normalize fills in defaults and validates c.
func (c *Config) Normalize() error {
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	defD := func(v *time.Duration, d time.Duration) {
		if *v == 0 {
			*v = d
		}
	}
	if c.Listen == "" {
		c.Listen = DefaultListen
	}
	if c.DataDir == "" {
		c.DataDir = DefaultDataDir
	}
	def(&c.MaxPayloadBytes, DefaultMaxPayloadBytes)
	def(&c.MaxHeaderBytes, DefaultMaxHeaderBytes)
	def(&c.QueueLimit, DefaultQueueLimit)
	def(&c.DailyQuota, DefaultDailyQuota)
	def(&c.MaxChannels, DefaultMaxChannels)
	def(&c.InFlight, DefaultInFlight)
	def(&c.MaxConnsPerIP, DefaultMaxConnsPerIP)
	def(&c.MaxAttaching, DefaultMaxAttaching)
	def(&c.MaxPendingPushes, DefaultMaxPendingPushes)
	def(&c.NewDeviceBurst, DefaultNewDeviceBurst)
	def(&c.ChannelOpenBurst, DefaultChannelOpenBurst)
	def(&c.MaxDevices, DefaultMaxDevices)
	def(&c.MaxTotalChannels, DefaultMaxTotalChannels)
	if c.NewDevicesPerMinute == 0 {
		c.NewDevicesPerMinute = DefaultNewDevicesPerMinute
	}
	if c.ChannelOpensPerMinute == 0 {
		c.ChannelOpensPerMinute = DefaultChannelOpensPerMinute
	}
	if c.MaxQueuedBytes == 0 {
		c.MaxQueuedBytes = DefaultMaxQueuedBytes
	}
	if c.ForwardedHeader == "" {
		c.ForwardedHeader = DefaultForwardedHeader
	}
	defD(&c.InactiveGrace, DefaultInactiveGrace)
	defD(&c.QueueTTL, DefaultQueueTTL)
	defD(&c.TempDisconnected, DefaultTempDisconnected)
	defD(&c.InactiveAfter, DefaultInactiveAfter)
	defD(&c.Heartbeat, DefaultHeartbeat)
	defD(&c.WriteTimeout, DefaultWriteTimeout)
	defD(&c.ShutdownGrace, DefaultShutdownGrace)
	defD(&c.ReadHeaderTimeout, DefaultReadHeaderTimeout)
	defD(&c.ReadTimeout, DefaultReadTimeout)
	defD(&c.IdleTimeout, DefaultIdleTimeout)
	defD(&c.HelloTimeout, DefaultHelloTimeout)
	defD(&c.CommitLinger, DefaultCommitLinger)
	if c.TimeScale == 0 {
		c.TimeScale = DefaultTimeScale
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Clock == nil {
		c.Clock = clock.System{}
	}
	var errs []error
	if c.TimeScale < 1 || c.TimeScale > 1e6 {
		errs = append(errs, fmt.Errorf("time scale %v: must be between 1 and 1000000", c.TimeScale))
	}
	if c.MaxPayloadBytes > MaxPayloadLimit {
		errs = append(errs, fmt.Errorf("max payload %d bytes: at most %d, so a notification fits in one device frame", c.MaxPayloadBytes, MaxPayloadLimit))
	}
	// Limits and times for which a negative value means nothing (where it
	// means "no limit" or "never", the field's comment says so): each is
	// named as its flag of openmpns serve names it.
	for _, l := range []struct {
		name string
		v    int
	}{{"max-payload", c.MaxPayloadBytes}, {"max-headers", c.MaxHeaderBytes}, {"queue-limit", c.QueueLimit},
		{"max channels", c.MaxChannels}, {"in-flight", c.InFlight}, {"new-device-burst", c.NewDeviceBurst}, {"channel-open-burst", c.ChannelOpenBurst}} {
		if l.v < 0 {
			errs = append(errs, fmt.Errorf("%s %d: must not be negative", l.name, l.v))
		}
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"queue-ttl", c.QueueTTL}, {"temp-disconnected", c.TempDisconnected}, {"inactive-after", c.InactiveAfter},
		{"heartbeat", c.Heartbeat}, {"write-timeout", c.WriteTimeout}, {"hello-timeout", c.HelloTimeout},
		{"read-header-timeout", c.ReadHeaderTimeout}, {"read-timeout", c.ReadTimeout}, {"idle-timeout", c.IdleTimeout},
		{"shutdown grace", c.ShutdownGrace}, {"remove delay", c.RemoveDelay}} {
		if d.v < 0 {
			errs = append(errs, fmt.Errorf("%s %v: must not be negative", d.name, d.v))
		}
	}
	if h := http.CanonicalHeaderKey(c.ForwardedHeader); h != "X-Forwarded-For" && h != "Forwarded" {
		errs = append(errs, fmt.Errorf("forwarded header %q: want X-Forwarded-For or Forwarded", c.ForwardedHeader))
	}
	if c.InactiveAfter <= c.TempDisconnected && c.InactiveAfter >= 0 && c.TempDisconnected >= 0 {
		errs = append(errs, fmt.Errorf("inactive-after (%v) must be longer than temp-disconnected (%v)", c.InactiveAfter, c.TempDisconnected))
	}
	if c.PublicURL != "" {
		u, err := url.Parse(c.PublicURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
			errs = append(errs, fmt.Errorf("public URL %q: want an origin such as https://push.example.com", c.PublicURL))
		}
		c.PublicURL = strings.TrimSuffix(c.PublicURL, "/")
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		errs = append(errs, errors.New("--tls-cert and --tls-key go together"))
	}
	if c.ClientCA != "" && c.TLSCert == "" {
		errs = append(errs, errors.New("--client-ca needs --tls-cert and --tls-key: mutual TLS is TLS"))
	}
	c.DataDir = filepath.Clean(c.DataDir)
	return errors.Join(errs...)
}

// adminSocket is the admin socket's path.
func (c *Config) adminSocket() string {
	if c.AdminSocket == "" {
		return filepath.Join(c.DataDir, AdminSocketFile)
	}
	return c.AdminSocket
}

// BatchWindow returns the batching window of a notification class after
// TimeScale: 0 for immediate classes.
func (c *Config) BatchWindow(class int) time.Duration {
	var w time.Duration
	switch class {
	case 11, 12, 13:
		w = DefaultBatchWindow450
	case 21, 22, 23:
		w = DefaultBatchWindow900
	default:
		return 0
	}
	return time.Duration(float64(w) / c.TimeScale)
}

// originFor is the scheme and host of Channel URIs for a server
// listening on addr.
func (c *Config) originFor(addr string) string {
	if c.PublicURL != "" {
		return c.PublicURL
	}
	if c.TLSCert != "" {
		return "https://" + addr
	}
	return "http://" + addr
}
