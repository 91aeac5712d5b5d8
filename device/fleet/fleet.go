// Package fleet runs many headless emulated phones in one process, for QA
// runs against a backend and for load tests of an OpenMPNS server.
//
// Each device is a real device.Device with its own WebSocket: it opens one
// channel per app, binds tile (and toast unless it opted out), hands its
// Channel URI to a cloud service when asked, and counts what it receives:
// notifications by kind, redeliveries it dropped as duplicates, deliveries
// that arrived out of the order the server accepted them in, and the delay
// from the server's accept to its own receipt, in a histogram.
package fleet

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/openmpns/openmpns/device"
	"github.com/openmpns/openmpns/device/internal/backoff"
	"github.com/openmpns/openmpns/shared/clock"
	"github.com/openmpns/openmpns/shared/histogram"
	"github.com/openmpns/openmpns/shared/payload"
	"github.com/openmpns/openmpns/shared/sender"
)

// ChannelName is the name every fleet device gives its channels.
const ChannelName = "main"

// Config describes a fleet.
type Config struct {
	// Servers are the OpenMPNS base URLs; devices are spread over them in
	// turn, and each fails over to the others (the nodes of a cluster).
	Servers []string
	// Devices is how many phones to run.
	Devices int
	// Apps are the app ids each device opens a channel for.
	Apps []string
	// ConnectRate is how many devices start per second; 0 starts them all at once.
	ConnectRate float64
	// MaxPending bounds the devices started but not yet registered
	// (default 1000): when the server is slower than ConnectRate, the fleet
	// waits for it instead of piling up connections that time out.
	MaxPending int
	// OptOut is the share (0..1) of devices that refuse toasts: their channels
	// are bound to tile only, so the server answers toasts Suppressed.
	OptOut float64
	// Airplane is the share of devices that go offline once registered.
	Airplane float64
	// LowPower is the share of devices reporting a low battery (raw only).
	LowPower float64
	// Churn is the share of devices per minute that drop their connection
	// and come back 1 to 10 s later, as phones coming and going do.
	Churn float64
	// StateDir keeps each device's identity and channels under
	// StateDir/NNNNNN; "" keeps them in memory.
	StateDir string
	// Handoff, if set, is the cloud service each device POSTs its Channel
	// URIs to, as `openmpns device --handoff` does. Every handoff carries
	// a device key of the device for the app (device.HandoffKey.DeviceKey),
	// the same at every handoff of that device and app: with a StateDir,
	// from the handoff key kept in the device's directory
	// (StateDir/NNNNNN/handoff.key, as the emulator's phones and `openmpns
	// device` keep theirs), so it lasts as long as the device's identity;
	// without, from one random key the fleet holds in memory and the
	// device's id (a device in memory is a new phone at every start).
	//
	// A device hands off its current URI, as a phone's app does: when a
	// channel's URI changes while the old one's handoff waits in the
	// queue or to be tried again, the old one is not sent (again) and
	// counts as superseded; one being sent is not cut short, and the new
	// URI's handoff goes out only once it has ended, so the service never
	// gets an older URI of a channel after a newer one.
	Handoff string
	// HandoffConcurrency bounds the handoffs in flight at once in this
	// fleet (default DefaultHandoffConcurrency): each holds a connection
	// to the cloud service (an open file) until the service answers, or
	// waits to be tried again. The others wait in a queue, oldest first,
	// and are never dropped (but for an older URI of a channel, see
	// Handoff): with a slow backend and thousands of devices the handoffs
	// queue instead of piling up as connections towards the process's
	// limit of open files. The handoffs share one HTTP client, which
	// keeps this many idle connections to the service for the next ones.
	HandoffConcurrency int
	// HandoffTimeout bounds each try of a handoff, from the connection to
	// the end of the answer (default DefaultHandoffTimeout); a try that
	// takes longer is given up and tried again, as after a 503.
	HandoffTimeout time.Duration
	// HandoffSecrets maps an app id to the handoff secret its handoffs
	// carry (device.HandoffRecord.Secret), as an apps manifest's
	// handoff_secret does in the emulator; an app not in it sends none.
	HandoffSecrets map[string]string
	// OnChannel is called (from many goroutines) for every Channel URI as
	// soon as it exists, and again when it changes. It must return
	// promptly and not wait for the fleet: a change is reported from the
	// device's handler, which runs on its connection's reader
	// (device.Config.PromptHandlers).
	OnChannel func(Channel)
	// Seed makes the choice of opted-out, airplane and low-power devices
	// repeatable; two fleets with the same seed choose the same devices.
	Seed uint64
	// FirstIndex numbers this fleet's devices from here (for shards).
	FirstIndex int
	// MinBackoff and MaxBackoff bound each device's reconnect delay.
	MinBackoff, MaxBackoff time.Duration
	// SourceAddrs, when the servers are on loopback, spreads connections
	// over this many local addresses (127.0.0.1, .2, ...) so that more than
	// the ~28,000 ephemeral ports of one address can connect. Default 1.
	SourceAddrs int
	Logger      *slog.Logger
	Clock       clock.Clock
}

// DefaultHandoffConcurrency is Config.HandoffConcurrency's default: a few
// hundred connections to the cloud service beside a process's 15,000
// devices (cmd/openmpns's --per-process), well under its 20,000 open files.
const DefaultHandoffConcurrency = 256

// DefaultHandoffTimeout is Config.HandoffTimeout's default, that of
// device.Handoff.
const DefaultHandoffTimeout = 10 * time.Second

// Channel is one device's channel for one app.
type Channel struct {
	Device   int    `json:"device"`
	DeviceID string `json:"device_id"`
	App      string `json:"app"`
	Channel  string `json:"channel"`
	URI      string `json:"uri"`
	Toast    bool   `json:"toast"`
	// Replaces, in what OnChannel reports, is the Channel URI this one
	// replaces: the device's channel for the app had it until now (the
	// device re-registered, the server forgot the channel, the device
	// restarted without its state). "" for the channel's first URI, and
	// in Channels.
	Replaces string `json:"replaces,omitempty"`
}

// Kinds of notification the fleet counts.
const (
	Toast = iota
	Tile
	Raw
	kinds
)

// KindNames are the names of the kinds, in report order.
var KindNames = [kinds]string{"toast", "tile", "raw"}

// Fleet is a running set of devices.
type Fleet struct {
	cfg      Config
	log      *slog.Logger
	clk      clock.Clock
	ctx      context.Context
	cancel   context.CancelFunc
	wg       sync.WaitGroup // registrations, handoffs, churn
	launchWG sync.WaitGroup // the launcher
	start    time.Time
	appIdx   map[string]int

	members []*member

	connected, registered, started atomic.Int64
	reconnects, redelivered, order atomic.Int64
	duplicates                     atomic.Int64
	rawDropped                     atomic.Int64
	byKind                         [kinds]atomic.Int64
	latency                        histogram.Histogram
	sendLatency                    histogram.Histogram // from a timed X-MessageID
	sendToAccept                   histogram.Histogram // from a timed X-MessageID to the server's accept
	errMu                          sync.Mutex
	errs                           map[string]int64
	lastErr                        string
	refused                        map[int]int64 // handoffs refused, by HTTP status; under errMu
	handoffs                       atomic.Int64
	handoffFailures                atomic.Int64
	// handoffKey makes the device keys of devices without a StateDir.
	handoffKey device.HandoffKey
	// firstRx and lastRx are the first and last receipt times (Unix ns, 0
	// for none), for the received rate.
	firstRx, lastRx atomic.Int64
	// handoffsStarted counts the handoffs begun: those neither done,
	// failed nor superseded are unfinished (queued, in flight, or cut
	// short by Close).
	handoffsStarted    atomic.Int64
	handoffsSuperseded atomic.Int64
	// hoClient sends every handoff of the fleet: one transport, whose
	// idle connections the next handoffs reuse.
	hoClient *http.Client
	// hoMu guards the channels waiting for a worker (hoQueue, oldest first
	// from hoHead), every member's hoChannel, the workers sending them (at
	// most HandoffConcurrency), how many of those are sending one now and
	// how many handoffs wait to be sent.
	hoMu       sync.Mutex
	hoQueue    []*hoChannel
	hoHead     int
	hoWorkers  int
	hoInFlight int
	hoPending  int
}

// hoChannel is the handoff state of one device's channel for one app,
// under Fleet.hoMu. A channel has at most one handoff being sent and one
// waiting (its newest URI): a newer URI replaces the one waiting, and
// stops the one being sent from being tried again.
type hoChannel struct {
	m *member
	// next is the URI to hand off when pending; pending is true from the
	// publication of a URI until a worker takes it.
	next    Channel
	pending bool
	// queued: the channel is in Fleet.hoQueue (pending, none being sent).
	queued bool
	// sending: a worker is sending one of the channel's URIs; stop, until
	// closed, lets it be tried again (closed when a newer URI comes).
	sending bool
	stop    chan struct{}
}

type member struct {
	f        *Fleet
	idx      int
	server   string
	optOut   bool
	airplane bool
	lowPower bool
	dev      atomic.Pointer[device.Device]
	up       atomic.Bool
	ever     atomic.Bool
	offline  atomic.Bool
	ready    atomic.Bool
	counts   []atomic.Int32 // [app*kinds+kind]
	// last accepted time per (app, class), and the last notification ids
	// and timed message ids the apps saw; touched only on the device's
	// event goroutine.
	last       []lastAccepted
	recent     idRing   // notification ids
	recentSent idRing   // timed X-MessageIDs
	uris       sync.Map // app → uri
	// objs holds each app's channel object (by index in Config.Apps), as
	// an app holds its HttpNotificationChannel: the device holds its
	// objects weakly, and one nothing references raises no events.
	objs []atomic.Pointer[device.Channel]
	// handoffKey is the device's key from its state directory, loaded at
	// its first start when the fleet hands off and keeps state; nil
	// otherwise (Fleet.handoffKey serves).
	handoffKey device.HandoffKey
	// pubMu orders the publications of the device's URIs: the record of
	// the current URI, OnChannel and the handoff's place.
	pubMu sync.Mutex
	// ho is each app's handoff state (by index in Config.Apps), when
	// the fleet hands off.
	ho []hoChannel
}

// Start starts the fleet: devices start at ConnectRate in the background.
// Close stops them all.
func Start(ctx context.Context, cfg Config) (*Fleet, error) {
	if len(cfg.Servers) == 0 {
		return nil, errors.New("fleet: no server")
	}
	if cfg.Devices <= 0 {
		return nil, errors.New("fleet: the number of devices must be positive")
	}
	if len(cfg.Apps) == 0 {
		return nil, errors.New("fleet: no apps")
	}
	for _, s := range []struct {
		name string
		v    float64
	}{{"opt-out", cfg.OptOut}, {"airplane", cfg.Airplane}, {"low-power", cfg.LowPower}} {
		if s.v < 0 || s.v > 1 {
			return nil, fmt.Errorf("fleet: %s share %v is not between 0 and 1", s.name, s.v)
		}
	}
	if cfg.Churn < 0 || cfg.Churn > 1 {
		return nil, fmt.Errorf("fleet: churn %v per minute is not between 0 and 1", cfg.Churn)
	}
	if len(cfg.HandoffSecrets) > 0 && cfg.Handoff == "" {
		return nil, errors.New("fleet: handoff secrets without a Handoff URL to send them to")
	}
	for _, s := range cfg.Servers {
		if u, err := url.Parse(s); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("fleet: server %q is not an http(s) URL", s)
		}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.System{}
	}
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = 250 * time.Millisecond
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = 30 * time.Second
	}
	cfg.SourceAddrs = max(cfg.SourceAddrs, 1)
	if cfg.MaxPending <= 0 {
		cfg.MaxPending = 1000
	}
	if cfg.HandoffConcurrency <= 0 {
		cfg.HandoffConcurrency = DefaultHandoffConcurrency
	}
	if cfg.HandoffTimeout <= 0 {
		cfg.HandoffTimeout = DefaultHandoffTimeout
	}
	var hk device.HandoffKey
	if cfg.Handoff != "" && cfg.StateDir == "" {
		var err error
		if hk, err = device.NewHandoffKey(); err != nil {
			return nil, fmt.Errorf("fleet: %w", err)
		}
	}
	cctx, cancel := context.WithCancel(ctx)
	f := &Fleet{cfg: cfg, log: cfg.Logger, clk: cfg.Clock, ctx: cctx, cancel: cancel,
		start: cfg.Clock.Now(), appIdx: map[string]int{}, errs: map[string]int64{}, refused: map[int]int64{}, handoffKey: hk}
	if cfg.Handoff != "" {
		f.hoClient = newHandoffClient(cfg.HandoffConcurrency, cfg.HandoffTimeout)
	}
	for i, a := range cfg.Apps {
		if _, dup := f.appIdx[a]; dup {
			cancel()
			return nil, fmt.Errorf("fleet: app %q listed twice", a)
		}
		f.appIdx[a] = i
	}
	// The choice of devices depends only on the seed and the device's index.
	f.members = make([]*member, cfg.Devices)
	for i := range f.members {
		idx := cfg.FirstIndex + i
		r := rand.New(rand.NewPCG(cfg.Seed, uint64(idx)))
		f.members[i] = &member{f: f, idx: idx, server: cfg.Servers[idx%len(cfg.Servers)],
			optOut: r.Float64() < cfg.OptOut, airplane: r.Float64() < cfg.Airplane, lowPower: r.Float64() < cfg.LowPower,
			counts: make([]atomic.Int32, len(cfg.Apps)*kinds), objs: make([]atomic.Pointer[device.Channel], len(cfg.Apps))}
		if cfg.Handoff != "" {
			m := f.members[i]
			m.ho = make([]hoChannel, len(cfg.Apps))
			for a := range m.ho {
				m.ho[a].m = m
			}
		}
	}
	f.launchWG.Add(1)
	go func() { defer f.launchWG.Done(); f.launch() }()
	if cfg.Churn > 0 {
		f.wg.Add(1)
		go func() { defer f.wg.Done(); f.churn() }()
	}
	return f, nil
}

// launch starts the devices, paced at ConnectRate.
func (f *Fleet) launch() {
	rate := f.cfg.ConnectRate
	begin := f.clk.Now()
	pending := make(chan struct{}, f.cfg.MaxPending)
	for i, m := range f.members {
		select {
		case pending <- struct{}{}:
		case <-f.ctx.Done():
			return
		}
		if rate > 0 {
			due := begin.Add(time.Duration(float64(i) / rate * float64(time.Second)))
			if d := due.Sub(f.clk.Now()); d > 0 {
				select {
				case <-f.after(d):
				case <-f.ctx.Done():
					return
				}
			}
		}
		if f.ctx.Err() != nil {
			return
		}
		if err := m.startDevice(); err != nil {
			f.countError("start", err)
			<-pending
			continue
		}
		f.started.Add(1)
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			m.register()
			<-pending
		}()
	}
}

// netDial returns the TCP dialer of device idx: bound to one of the local
// loopback addresses when the fleet spreads over several, nil otherwise.
func (f *Fleet) netDial(idx int) func(ctx context.Context, network, addr string) (net.Conn, error) {
	n := f.cfg.SourceAddrs
	if n <= 1 {
		return nil
	}
	local := &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(1+idx%n))}
	nd := &net.Dialer{LocalAddr: local, Timeout: 30 * time.Second}
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		if host, _, err := net.SplitHostPort(addr); err == nil {
			if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() && ip.To4() != nil {
				return nd.DialContext(ctx, network, addr)
			}
		}
		return (&net.Dialer{Timeout: 30 * time.Second}).DialContext(ctx, network, addr)
	}
}

func (m *member) startDevice() error {
	f := m.f
	dir := ""
	if f.cfg.StateDir != "" {
		dir = filepath.Join(f.cfg.StateDir, fmt.Sprintf("%06d", m.idx))
	}
	if dir != "" && f.cfg.Handoff != "" && m.handoffKey == nil {
		// Once: a restart of the device finds the same file.
		k, err := device.LoadHandoffKey(dir)
		if err != nil {
			return err
		}
		m.handoffKey = k
	}
	dev, err := device.New(device.Config{
		Server: m.server, Servers: f.cfg.Servers, StateDir: dir, Client: "openmpns-fleet", Logger: f.log, Clock: f.clk,
		MinBackoff: f.cfg.MinBackoff, MaxBackoff: f.cfg.MaxBackoff,
		HandshakeTimeout: 30 * time.Second, BufferSize: 512, NetDial: f.netDial(m.idx),
		// The handlers below count and hand off in the background: they
		// never wait for the device, so a notification is handled on the
		// reader, with no goroutine started for it.
		PromptHandlers: true,
		// The fleet watches the device and plays its shell; each app
		// listens on its own channel (register).
		Handlers: device.Handlers{
			ConnectionStatusChanged: m.onStatus,
			ConnectFailed:           func(err error, _ time.Duration) { f.countError("connect", err) },
			Error: func(e *device.ChannelError) {
				if e.Type != device.PowerLevelChanged {
					f.countError(string(e.Type), errors.New(e.Message))
				}
			},
			ShellToast: func(md device.Meta, _ *payload.Toast) { m.received(md, Toast) },
			Tile:       func(md device.Meta, _ *payload.Tile, _ []string) { m.received(md, Tile) },
			RawDropped: func(device.Meta) { f.rawDropped.Add(1) },
			Duplicate:  func(device.Meta) { f.redelivered.Add(1) },
		},
	})
	if err != nil {
		return err
	}
	m.dev.Store(dev)
	return nil
}

// register opens and binds every app's channel, then applies the device's
// power level and airplane mode. A step cut short by a lost connection is
// counted as an error and tried again once the device has reconnected, as
// an app would, until the fleet stops.
func (m *member) register() {
	f, dev := m.f, m.dev.Load()
	for i, app := range f.cfg.Apps {
		dev.SetAppState(app, device.AppState{Running: true})
		var ch *device.Channel
		if !f.retry("register", func() error {
			if ch = dev.Find(app, ChannelName); ch == nil {
				ch = dev.NewChannel(app, ChannelName, "")
			}
			m.objs[i].Store(ch)
			ch.SetEvents(device.ChannelEvents{
				ChannelURIUpdated:              func(uri string) { m.onURI(app, uri) },
				HTTPNotificationReceived:       func(md device.Meta, _ []byte) { m.received(md, Raw) },
				ShellToastNotificationReceived: func(md device.Meta, _ *payload.Toast) { m.received(md, Toast) },
			})
			err := ch.Open(f.ctx)
			if err == nil {
				err = ch.BindToShellTile(f.ctx)
			}
			if err == nil && !m.optOut {
				err = ch.BindToShellToast(f.ctx)
			}
			return err
		}) {
			return
		}
		m.publish(app, ch.ChannelURI())
	}
	if m.lowPower && !f.retry("power", func() error { return dev.SetPowerLevel(f.ctx, device.PowerLow) }) {
		return
	}
	m.ready.Store(true)
	f.registered.Add(1)
	if m.airplane {
		m.offline.Store(true)
		dev.SetOnline(false)
	}
}

// publish reports a Channel URI once per value and hands it off.
func (m *member) publish(app, uri string) {
	if uri == "" {
		return
	}
	m.pubMu.Lock()
	defer m.pubMu.Unlock()
	old, loaded := m.uris.Swap(app, uri)
	if loaded && old.(string) == uri {
		return
	}
	f := m.f
	c := Channel{Device: m.idx, DeviceID: m.dev.Load().ID(), App: app, Channel: ChannelName, URI: uri, Toast: !m.optOut}
	if loaded {
		c.Replaces = old.(string)
	}
	if f.cfg.OnChannel != nil {
		f.cfg.OnChannel(c)
	}
	if f.cfg.Handoff == "" {
		return
	}
	f.handoffsStarted.Add(1)
	f.queueHandoff(&m.ho[f.appIdx[app]], c)
}

// newHandoffClient returns the HTTP client of a fleet's handoffs: one
// transport for them all, keeping as many idle connections to the cloud
// service as there are handoffs in flight at most, so that each handoff
// reuses the connection of one that ended (Go's default transport keeps
// 2 a host: the others were closed after one use, leaving sockets in
// TIME_WAIT). Fleet.Close closes the idle ones.
func newHandoffClient(concurrency int, timeout time.Duration) *http.Client {
	var tr *http.Transport
	if dt, ok := http.DefaultTransport.(*http.Transport); ok {
		tr = dt.Clone()
	} else {
		tr = &http.Transport{Proxy: http.ProxyFromEnvironment, ForceAttemptHTTP2: true}
	}
	tr.MaxIdleConns = concurrency
	tr.MaxIdleConnsPerHost = concurrency
	return &http.Client{Transport: tr, Timeout: timeout}
}

// queueHandoff makes c the URI h hands off next. The URI waiting before,
// if any, is superseded: it is not sent. When one of h's URIs is being
// sent, it is not tried again, and its worker goes on with c once it has
// ended; otherwise h is queued (unless it is already), and a worker
// started unless HandoffConcurrency of them are at work already (one of
// those takes it when it is done with its own).
func (f *Fleet) queueHandoff(h *hoChannel, c Channel) {
	f.hoMu.Lock()
	defer f.hoMu.Unlock()
	if h.pending {
		f.handoffsSuperseded.Add(1)
	} else {
		f.hoPending++
	}
	h.next, h.pending = c, true
	if h.sending {
		if h.stop != nil {
			close(h.stop)
			h.stop = nil
		}
		return
	}
	if h.queued {
		return
	}
	h.queued = true
	f.hoQueue = append(f.hoQueue, h)
	if f.hoWorkers < f.cfg.HandoffConcurrency && f.ctx.Err() == nil {
		f.hoWorkers++
		f.wg.Add(1)
		go f.handoffWorker()
	}
}

// handoffWorker sends the queued channels' handoffs, oldest first, one at
// a time, until none is left or the fleet closes (what is left then stays
// queued, and unfinished in the report). A channel whose URI changed while
// its handoff was being sent is handed off again at once, with the new
// URI.
func (f *Fleet) handoffWorker() {
	defer f.wg.Done()
	f.hoMu.Lock()
	var h *hoChannel
	for f.ctx.Err() == nil {
		if h == nil {
			if f.hoHead == len(f.hoQueue) {
				break
			}
			h = f.popHandoffLocked()
		}
		c, stop := h.next, make(chan struct{})
		h.pending, h.sending, h.stop = false, true, stop
		f.hoPending--
		f.hoInFlight++
		f.hoMu.Unlock()
		f.sendHandoff(h.m, c, stop)
		f.hoMu.Lock()
		f.hoInFlight--
		h.sending, h.stop = false, nil
		if !h.pending {
			h = nil
		}
	}
	f.hoWorkers--
	f.hoMu.Unlock()
}

// popHandoffLocked takes the oldest channel off the queue (not empty).
func (f *Fleet) popHandoffLocked() *hoChannel {
	h := f.hoQueue[f.hoHead]
	f.hoQueue[f.hoHead] = nil
	f.hoHead++
	if f.hoHead == len(f.hoQueue) {
		f.hoQueue, f.hoHead = f.hoQueue[:0], 0
	} else if f.hoHead >= 1024 && f.hoHead*2 >= len(f.hoQueue) {
		// Reuse the space of the handoffs sent.
		n := copy(f.hoQueue, f.hoQueue[f.hoHead:])
		clear(f.hoQueue[n:])
		f.hoQueue, f.hoHead = f.hoQueue[:n], 0
	}
	h.queued = false
	return h
}

// sendHandoff POSTs c's Channel URI to the cloud service, trying again as
// device.Handoff does until stop is closed (a newer URI of the channel
// came), and counts the outcome: done, failed, or superseded when stop
// was closed before the service took it.
func (f *Fleet) sendHandoff(m *member, c Channel, stop chan struct{}) {
	h := &device.Handoff{URL: f.cfg.Handoff, Client: f.hoClient, Clock: f.clk, Stop: stop}
	rec := device.HandoffRecord{DeviceID: c.DeviceID, App: c.App, Channel: c.Channel, URI: c.URI,
		Secret: f.cfg.HandoffSecrets[c.App], DeviceKey: m.deviceKey(c.DeviceID, c.App)}
	if _, err := h.Send(f.ctx, rec, nil); err != nil {
		if f.ctx.Err() != nil {
			return
		}
		select {
		case <-stop:
			// A newer URI came meanwhile: whatever this one's last try
			// met, the channel's handoff goes on with the newer.
			f.handoffsSuperseded.Add(1)
			return
		default:
		}
		f.handoffFailures.Add(1)
		var refused *device.HandoffRefusedError
		if errors.As(err, &refused) {
			f.errMu.Lock()
			f.refused[refused.Status]++
			f.errMu.Unlock()
		}
		f.countError("handoff", err)
		return
	}
	f.handoffs.Add(1)
}

// handoffsWaiting returns how many handoffs are queued (waiting for a
// worker, or for the end of an older URI's of the same channel) and how
// many are being sent (or wait to be tried again) now.
func (f *Fleet) handoffsWaiting() (queued, inFlight int64) {
	f.hoMu.Lock()
	defer f.hoMu.Unlock()
	return int64(f.hoPending), int64(f.hoInFlight)
}

// deviceKey is the device key of the device's handoffs for app.
func (m *member) deviceKey(deviceID, app string) string {
	if m.handoffKey != nil {
		return m.handoffKey.DeviceKey(deviceID, app)
	}
	return m.f.handoffKey.DeviceKey(deviceID, app)
}

func (m *member) onURI(app, uri string) {
	// The first URI is published by register once the channel is bound; a
	// later change (the server forgot the channel) is published here.
	if m.ready.Load() {
		m.publish(app, uri)
	}
}

func (m *member) onStatus(s device.ConnectionStatus) {
	f := m.f
	if s == device.Connected {
		if !m.up.Swap(true) {
			f.connected.Add(1)
			if m.ever.Swap(true) {
				f.reconnects.Add(1)
			}
		}
	} else if m.up.Swap(false) {
		f.connected.Add(-1)
	}
}

func (m *member) received(md device.Meta, kind int) {
	f := m.f
	f.byKind[kind].Add(1)
	f.receivedAt(md.ReceivedAt.UnixNano())
	a, ok := f.appIdx[md.App]
	if !ok {
		return
	}
	m.counts[a*kinds+kind].Add(1)
	dup := m.recent.seenBefore(md.ID)
	if sent, ok := sender.TimeOfMessageID(md.MessageID); ok {
		// A timed message id is unique to one push: the same one under
		// another notification id is the push delivered twice.
		if m.recentSent.seenBefore(md.MessageID) {
			dup = true
		}
		f.sendLatency.Record(md.ReceivedAt.Sub(sent))
		if md.AcceptedAt.UnixNano() > 0 {
			f.sendToAccept.Record(md.AcceptedAt.Sub(sent))
		}
	}
	if dup {
		f.duplicates.Add(1)
	}
	if at := md.AcceptedAt.UnixNano(); at > 0 {
		f.latency.Record(md.ReceivedAt.Sub(md.AcceptedAt))
		// Within one app and class the server delivers in accept order;
		// a delivery accepted before the last one seen came out of order.
		if l := m.lastAccepted(a, md.Class); at < *l {
			f.order.Add(1)
		} else {
			*l = at
		}
	}
}

// receivedAt notes a receipt at Unix time at (ns) in firstRx and lastRx.
func (f *Fleet) receivedAt(at int64) {
	for {
		v := f.firstRx.Load()
		if (v != 0 && v <= at) || f.firstRx.CompareAndSwap(v, at) {
			break
		}
	}
	for {
		v := f.lastRx.Load()
		if v >= at || f.lastRx.CompareAndSwap(v, at) {
			break
		}
	}
}

// lastAccepted is the accept time of the last delivery of an (app, class).
type lastAccepted struct {
	app, class int
	at         int64
}

// lastAccepted returns where the accept time of the last delivery of
// (app, class) is kept, 0 if none came yet. A device sees a few of them:
// a list searched in order costs less than a map's hashing.
func (m *member) lastAccepted(app, class int) *int64 {
	for i := range m.last {
		if l := &m.last[i]; l.app == app && l.class == class {
			return &l.at
		}
	}
	m.last = append(m.last, lastAccepted{app: app, class: class})
	return &m.last[len(m.last)-1].at
}

// after returns a channel that is closed once d has passed on the fleet's
// clock. Waiters also watch the fleet's context; the timer itself runs out.
func (f *Fleet) after(d time.Duration) <-chan struct{} {
	ch := make(chan struct{})
	f.clk.AfterFunc(d, func() { close(ch) })
	return ch
}

// retry runs step until it succeeds, counting each failure as an error of
// kind and waiting a jittered backoff before the next try. It returns false
// when the fleet or the device closed first.
func (f *Fleet) retry(kind string, step func() error) bool {
	for attempt := 0; ; attempt++ {
		err := step()
		if err == nil {
			return true
		}
		if f.ctx.Err() != nil || errors.Is(err, device.ErrClosed) {
			return false
		}
		f.countError(kind, err)
		select {
		case <-f.after(backoff.Delay(attempt, f.cfg.MinBackoff, f.cfg.MaxBackoff, rand.Int64N)):
		case <-f.ctx.Done():
			return false
		}
	}
}

// recentIDs is how many ids per device the fleet remembers to catch an app
// seeing a push twice: by notification id (the device's own dedupe should
// make that impossible; this checks it from the outside), and by timed
// X-MessageID (a push the server delivered under two notification ids).
const recentIDs = 128

// idRing holds the hashes of the last recentIDs ids of one kind that a
// device's apps saw.
type idRing struct {
	sums []uint64
	next int
}

// seenBefore reports whether id is among the ring's, and remembers it.
func (r *idRing) seenBefore(id string) bool {
	sum := fnv64a(id)
	if r.sums == nil {
		r.sums = make([]uint64, recentIDs)
	}
	for _, v := range r.sums {
		if v == sum {
			return true
		}
	}
	r.sums[r.next] = sum
	r.next = (r.next + 1) % recentIDs
	return false
}

// fnv64a is the 64-bit FNV-1a hash of s (hash/fnv's New64a, without its
// allocations: it runs for every notification).
func fnv64a(s string) uint64 {
	const offset, prime = 14695981039346656037, 1099511628211
	h := uint64(offset)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= prime
	}
	return h
}

// countError counts an error of kind and logs the first few of each kind.
// What goes wrong once the fleet is stopping (a channel open or a connect
// cut short by Ctrl-C or Close) is the stop, not an error of the run, and
// is not counted.
func (f *Fleet) countError(kind string, err error) {
	if f.ctx.Err() != nil {
		return
	}
	f.errMu.Lock()
	f.errs[kind]++
	n := f.errs[kind]
	if err != nil {
		f.lastErr = kind + ": " + err.Error()
	}
	f.errMu.Unlock()
	if err != nil && (n <= 3 || n&(n-1) == 0) { // log the first few, then sparsely
		f.log.Warn("fleet device error", "type", kind, "count", n, "err", err)
	}
}

// churn drops the connection of Churn×Devices devices per minute, each for
// 1 to 10 s.
func (f *Fleet) churn() {
	r := rand.New(rand.NewPCG(f.cfg.Seed, 0xc4))
	perSec := f.cfg.Churn * float64(f.cfg.Devices) / 60
	owed := 0.0
	for {
		select {
		case <-f.after(time.Second):
		case <-f.ctx.Done():
			return
		}
		owed += perSec
		n := int(owed)
		owed -= float64(n)
		f.churnSome(r, n)
	}
}

// churnSome drops the connection of n devices picked at random among
// those that can drop (registered and online), each for 1 to 10 s, and
// returns how many it dropped: fewer than n only when no more could.
func (f *Fleet) churnSome(r *rand.Rand, n int) int {
	dropped := 0
	for range n {
		// The first that can drop from a random place on: a pick that
		// falls on a device in airplane mode or away already is not lost.
		start, picked := r.IntN(len(f.members)), (*member)(nil)
		for i := range f.members {
			m := f.members[(start+i)%len(f.members)]
			if m.ready.Load() && m.offline.CompareAndSwap(false, true) {
				picked = m
				break
			}
		}
		if picked == nil {
			return dropped
		}
		f.offlineFor(picked, time.Second+time.Duration(r.Int64N(int64(9*time.Second))))
		dropped++
	}
	return dropped
}

// offlineFor takes m (already marked offline) off the network now and
// brings it back after away, unless the fleet closes first.
func (f *Fleet) offlineFor(m *member, away time.Duration) {
	dev := m.dev.Load()
	dev.SetOnline(false)
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		select {
		case <-f.after(away):
		case <-f.ctx.Done():
			return
		}
		m.offline.Store(false)
		dev.SetOnline(true)
	}()
}

// each offers registered devices to take, in index order, until take has
// taken share of the fleet; it returns how many were taken. The same share
// picks the same devices.
func (f *Fleet) each(share float64, take func(*member) bool) int {
	n := int(share*float64(len(f.members)) + 0.5)
	taken := 0
	for _, m := range f.members {
		if taken >= n {
			break
		}
		if m.ready.Load() && take(m) {
			taken++
		}
	}
	return taken
}

// SetAirplane switches the given share of registered devices into (on) or
// out of (off) airplane mode and returns how many it switched. Devices are
// taken in index order, so the same share picks the same devices.
func (f *Fleet) SetAirplane(share float64, on bool) int {
	return f.each(share, func(m *member) bool {
		if !m.offline.CompareAndSwap(!on, on) {
			return false
		}
		m.dev.Load().SetOnline(!on)
		return true
	})
}

// Churn drops the connection of the given share of registered, online
// devices, each coming back after away (phones losing their network for a
// while); it returns how many it dropped. Devices are taken in index order.
func (f *Fleet) Churn(share float64, away time.Duration) int {
	return f.each(share, func(m *member) bool {
		if !m.offline.CompareAndSwap(false, true) {
			return false
		}
		f.offlineFor(m, away)
		return true
	})
}

// Restart closes the given share of devices and starts them again from
// their state (a phone reboot). Without a StateDir a restarted device is a
// new phone with new Channel URIs. It returns when the restarted devices
// are registered again or ctx ends.
func (f *Fleet) Restart(ctx context.Context, share float64) (int, error) {
	var picked []*member
	f.each(share, func(m *member) bool {
		picked = append(picked, m)
		return true
	})
	for _, m := range picked {
		m.ready.Store(false)
		m.ever.Store(false) // a reboot is not a reconnect
		f.registered.Add(-1)
		if err := m.dev.Load().Close(); err != nil {
			f.countError("restart", err)
		}
		if m.up.Swap(false) {
			f.connected.Add(-1)
		}
		m.offline.Store(false)
		if err := m.startDevice(); err != nil {
			return 0, fmt.Errorf("fleet: restart device %d: %w", m.idx, err)
		}
		f.wg.Add(1)
		go func() { defer f.wg.Done(); m.register() }()
	}
	err := f.WaitRegistered(ctx)
	return len(picked), err
}

// WaitRegistered blocks until every device has its channels registered (or
// ctx ends), polling ten times a second.
func (f *Fleet) WaitRegistered(ctx context.Context) error {
	return f.Wait(ctx, func(s Stats) bool { return s.Registered == int64(len(f.members)) })
}

// Wait blocks until cond holds for the fleet's stats or ctx ends.
func (f *Fleet) Wait(ctx context.Context, cond func(Stats) bool) error {
	for {
		if cond(f.Stats()) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("fleet: %w (%s)", ctx.Err(), f.Stats())
		case <-f.ctx.Done():
			return errors.New("fleet: closed")
		case <-f.after(100 * time.Millisecond):
		}
	}
}

// Channels returns every registered channel.
func (f *Fleet) Channels() []Channel {
	var out []Channel
	for _, m := range f.members {
		if !m.ready.Load() {
			continue
		}
		for _, app := range f.cfg.Apps {
			if u, ok := m.uris.Load(app); ok {
				out = append(out, Channel{Device: m.idx, DeviceID: m.dev.Load().ID(), App: app, Channel: ChannelName, URI: u.(string), Toast: !m.optOut})
			}
		}
	}
	return out
}

// DeviceState is what a scenario checks about one device.
type DeviceState struct {
	Index    int
	OptedOut bool
	Offline  bool
	LowPower bool
	// Counts[app][kind] is how many notifications the app received.
	Counts map[string][kinds]int
}

// Devices returns every device's state.
func (f *Fleet) Devices() []DeviceState {
	out := make([]DeviceState, len(f.members))
	for i, m := range f.members {
		d := DeviceState{Index: m.idx, OptedOut: m.optOut, Offline: m.offline.Load(), LowPower: m.lowPower,
			Counts: make(map[string][kinds]int, len(f.cfg.Apps))}
		for a, app := range f.cfg.Apps {
			var c [kinds]int
			for k := range c {
				c[k] = int(m.counts[a*kinds+k].Load())
			}
			d.Counts[app] = c
		}
		out[i] = d
	}
	return out
}

// Stats is a live view of the fleet.
type Stats struct {
	Devices    int64            `json:"devices"`
	Started    int64            `json:"started"`
	Connected  int64            `json:"connected"`
	Registered int64            `json:"registered"`
	Received   [kinds]int64     `json:"received"` // toast, tile, raw
	Reconnects int64            `json:"reconnects"`
	Errors     map[string]int64 `json:"errors,omitempty"`
	// LastError is the latest error with its type, such as "connect:
	// device: dial ws://...: connection refused", for telling a user what
	// goes wrong.
	LastError string `json:"last_error,omitempty"`
	// HandoffRefused counts the handoffs the cloud service refused, by HTTP
	// status (device.HandoffRefusedError): 401 from openmpns demo-backend
	// means a missing or wrong handoff secret, 409 another device key.
	HandoffRefused map[int]int64 `json:"handoff_refused,omitempty"`
	// HandoffsDone counts the handoffs the cloud service took;
	// HandoffsInFlight those being sent or waiting to be tried again, at
	// most Config.HandoffConcurrency per fleet; HandoffsQueued those
	// waiting for their turn; HandoffsSuperseded those not sent (or not
	// tried again) because their channel's URI changed meanwhile, the
	// newer URI being handed off instead.
	HandoffsDone       int64 `json:"handoffs_done,omitempty"`
	HandoffsInFlight   int64 `json:"handoffs_in_flight,omitempty"`
	HandoffsQueued     int64 `json:"handoffs_queued,omitempty"`
	HandoffsSuperseded int64 `json:"handoffs_superseded,omitempty"`
}

// Total is the number of notifications received.
func (s Stats) Total() int64 { return s.Received[0] + s.Received[1] + s.Received[2] }

// ErrorCount is the number of errors of every type.
func (s Stats) ErrorCount() int64 {
	var n int64
	for _, v := range s.Errors {
		n += v
	}
	return n
}

func (s Stats) String() string {
	out := fmt.Sprintf("%d/%d devices connected, %d registered, %d notifications, %d errors",
		s.Connected, s.Devices, s.Registered, s.Total(), s.ErrorCount())
	if s.LastError != "" {
		out += "; last error: " + s.LastError
	}
	return out
}

// Merge adds o to s (for the shards of one fleet).
func (s *Stats) Merge(o Stats) {
	s.Devices += o.Devices
	s.Started += o.Started
	s.Connected += o.Connected
	s.Registered += o.Registered
	for k := range s.Received {
		s.Received[k] += o.Received[k]
	}
	s.Reconnects += o.Reconnects
	s.HandoffsDone += o.HandoffsDone
	s.HandoffsInFlight += o.HandoffsInFlight
	s.HandoffsQueued += o.HandoffsQueued
	s.HandoffsSuperseded += o.HandoffsSuperseded
	if o.LastError != "" {
		s.LastError = o.LastError
	}
	for k, v := range o.Errors {
		if s.Errors == nil {
			s.Errors = map[string]int64{}
		}
		s.Errors[k] += v
	}
	for k, v := range o.HandoffRefused {
		if s.HandoffRefused == nil {
			s.HandoffRefused = map[int]int64{}
		}
		s.HandoffRefused[k] += v
	}
}

// Stats returns the fleet's counters now.
func (f *Fleet) Stats() Stats {
	s := Stats{Devices: int64(len(f.members)), Started: f.started.Load(), Connected: f.connected.Load(),
		Registered: f.registered.Load(), Reconnects: f.reconnects.Load(), HandoffsDone: f.handoffs.Load(),
		HandoffsSuperseded: f.handoffsSuperseded.Load()}
	s.HandoffsQueued, s.HandoffsInFlight = f.handoffsWaiting()
	for k := range s.Received {
		s.Received[k] = f.byKind[k].Load()
	}
	f.errMu.Lock()
	s.LastError = f.lastErr
	if len(f.errs) > 0 {
		s.Errors = make(map[string]int64, len(f.errs))
		for k, v := range f.errs {
			s.Errors[k] = v
		}
	}
	if len(f.refused) > 0 {
		s.HandoffRefused = make(map[int]int64, len(f.refused))
		for k, v := range f.refused {
			s.HandoffRefused[k] = v
		}
	}
	f.errMu.Unlock()
	return s
}

// Report returns the fleet's report so far.
func (f *Fleet) Report() *Report {
	s := f.Stats()
	// Done, failed and superseded first, then queued: each was started
	// before, so the started count read after is never below their sum,
	// and the queued are never more than the unfinished.
	done, failed, superseded := f.handoffs.Load(), f.handoffFailures.Load(), f.handoffsSuperseded.Load()
	queued, _ := f.handoffsWaiting()
	r := &Report{
		Devices: s.Devices, Connected: s.Connected, Registered: s.Registered,
		Channels:      s.Registered * int64(len(f.cfg.Apps)),
		Notifications: map[string]int64{}, Duplicates: f.duplicates.Load(), Redelivered: f.redelivered.Load(), OutOfOrder: f.order.Load(),
		RawDropped: f.rawDropped.Load(), Reconnects: s.Reconnects, Errors: s.Errors,
		Handoffs: done, HandoffFailures: failed, HandoffsSuperseded: superseded,
		HandoffsUnfinished: f.handoffsStarted.Load() - done - failed - superseded, HandoffsQueued: queued,
		Latency: f.latency.Snapshot(), SendLatency: f.sendLatency.Snapshot(), SendToAccept: f.sendToAccept.Snapshot(), Elapsed: f.clk.Now().Sub(f.start),
	}
	if first, last := f.firstRx.Load(), f.lastRx.Load(); first != 0 {
		r.FirstReceived, r.LastReceived = time.Unix(0, first), time.Unix(0, last)
	}
	for k, name := range KindNames {
		r.Notifications[name] = s.Received[k]
	}
	r.Finish()
	return r
}

// Close stops every device and waits for them. The launcher stops first,
// then the devices (so that no event starts new work), then the rest,
// and the handoffs' idle connections are closed. A device saves its
// state as it closes: Close returns an error saying how many devices'
// state could not be saved, with the first one's reason.
func (f *Fleet) Close() error {
	f.cancel()
	f.launchWG.Wait()
	defer func() {
		f.wg.Wait()
		if f.hoClient != nil {
			f.hoClient.CloseIdleConnections()
		}
	}()
	members := f.members
	// Closing devices in parallel: each waits for its connection to end.
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		failed   int
		firstIdx int
		first    error
	)
	sem := make(chan struct{}, 256)
	for _, m := range members {
		dev := m.dev.Load()
		if dev == nil {
			continue
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := dev.Close(); err != nil {
				mu.Lock()
				failed++
				if first == nil || m.idx < firstIdx {
					first, firstIdx = err, m.idx
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if failed > 0 {
		return fmt.Errorf("fleet: closing %d device(s) failed (their state may not be saved); device %d: %w", failed, firstIdx, first)
	}
	return nil
}
