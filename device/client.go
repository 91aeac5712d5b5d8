package device

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/openmpns/openmpns/shared/clock"
	"github.com/openmpns/openmpns/shared/payload"
	"github.com/openmpns/openmpns/shared/wire"
)

// Config configures a Device.
type Config struct {
	// Server is the server's base URL, e.g. http://127.0.0.1:8080.
	Server string
	// Servers are more base URLs of the same service (the nodes of a
	// cluster). When its connection is lost or a connect fails, the device
	// tries the next URL in turn, with the usual backoff; it keeps its
	// identity and channels, and its Channel URIs when the nodes share a
	// public URL.
	Servers []string
	// StateDir keeps the identity, channels and recent notification ids
	// across restarts; "" keeps them in memory only.
	StateDir string
	// Handlers receive events.
	Handlers Handlers
	// MinBackoff and MaxBackoff bound the reconnect delay (defaults 250 ms, 30 s).
	MinBackoff, MaxBackoff time.Duration
	// Client names this client in hello (default "openmpns-device").
	Client string
	// Logger; nil means slog.Default().
	Logger *slog.Logger
	// Clock; nil means the system clock.
	Clock clock.Clock
	// Dialer; nil means a dialer with a 10 s handshake timeout.
	Dialer *websocket.Dialer
}

// Errors returned by Device and Channel methods.
var (
	ErrClosed        = errors.New("device: closed")
	ErrNotOpen       = errors.New("device: channel is not open")
	ErrChannelExists = errors.New("device: the app already has a channel under another name")
	ErrChannelQuota  = errors.New("device: the device has the maximum number of channels")
)

// Device is one emulated phone's push client.
type Device struct {
	cfg    Config
	wsURLs []string // the gateway of each server, in turn
	next   int      // which wsURLs the next connect dials (connectLoop's own)
	log    *slog.Logger
	clk    clock.Clock
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup // connect loop
	events *eventQueue

	saveMu sync.Mutex // serializes save; guards final
	final  bool       // Close's last save is done: state is no longer written

	mu       sync.Mutex
	st       persisted
	seen     *seenSet
	channels map[string]*Channel // by app
	apps     map[string]AppState
	conn     *conn
	connCh   chan struct{} // closed and replaced when conn changes
	status   ConnectionStatus
	closed   bool
	offline  bool          // airplane mode: no connection until SetOnline(true)
	wake     chan struct{} // cuts a reconnect wait short
}

// AppState is whether an app runs and is in the foreground.
type AppState struct {
	Running    bool
	Foreground bool
}

// New loads the device's state and starts connecting in the background.
func New(cfg Config) (*Device, error) {
	bases := cfg.Servers
	if cfg.Server != "" || len(bases) == 0 {
		bases = append([]string{cfg.Server}, bases...)
	}
	var wsURLs []string
	for _, s := range bases {
		u, err := gatewayURL(s)
		if err != nil {
			return nil, err
		}
		if !slices.Contains(wsURLs, u) {
			wsURLs = append(wsURLs, u)
		}
	}
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = 250 * time.Millisecond
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = 30 * time.Second
	}
	if cfg.Client == "" {
		cfg.Client = "openmpns-device"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.System{}
	}
	if cfg.Dialer == nil {
		cfg.Dialer = &websocket.Dialer{HandshakeTimeout: 10 * time.Second, Proxy: http.ProxyFromEnvironment,
			ReadBufferSize: 1024, WriteBufferSize: 1024, Subprotocols: []string{wire.Subprotocol}}
	}
	st, err := loadState(cfg.StateDir)
	if err != nil {
		return nil, err
	}
	if st.Power == "" {
		st.Power = PowerNormal
	}
	ctx, cancel := context.WithCancel(context.Background())
	d := &Device{
		cfg: cfg, wsURLs: wsURLs, log: cfg.Logger, clk: cfg.Clock, ctx: ctx, cancel: cancel,
		st: st, seen: newSeenSet(st.Seen), channels: map[string]*Channel{}, apps: map[string]AppState{},
		connCh: make(chan struct{}), status: Disconnected, wake: make(chan struct{}, 1),
	}
	for _, r := range st.Channels {
		d.channels[r.App] = &Channel{d: d, rec: r, open: true}
	}
	d.events = newEventQueue()
	d.wg.Add(1)
	go func() { defer d.wg.Done(); d.connectLoop() }()
	return d, nil
}

// gatewayURL is the WebSocket URL of the gateway of the server at base.
func gatewayURL(base string) (string, error) {
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("device: server URL %q: want http://host:port or https://host:port", base)
	}
	u.Scheme = map[string]string{"http": "ws", "https": "wss"}[u.Scheme]
	u.Path = strings.TrimSuffix(u.Path, "/") + "/ws"
	return u.String(), nil
}

// ID returns the device id, "" until the server has issued one.
func (d *Device) ID() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.st.DeviceID
}

// ConnectionStatus reports whether the push connection is up.
func (d *Device) ConnectionStatus() ConnectionStatus {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.status
}

// SetAppState records whether app runs and is in the foreground; raw data
// reaches only running apps, and toasts for a foreground app go to the app.
func (d *Device) SetAppState(app string, s AppState) {
	if s.Foreground {
		s.Running = true
	}
	d.mu.Lock()
	d.apps[app] = s
	d.mu.Unlock()
}

func (d *Device) appState(app string) AppState {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.apps[app]
}

// PowerLevel returns the reported power level.
func (d *Device) PowerLevel() PowerLevel {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.st.Power
}

// SetPowerLevel reports a new power level to the server (now, or when next
// connected) and raises PowerLevelChanged on every channel's app.
func (d *Device) SetPowerLevel(ctx context.Context, p PowerLevel) error {
	switch p {
	case PowerNormal, PowerLow, PowerCriticallyLow:
	default:
		return fmt.Errorf("device: unknown power level %q", p)
	}
	d.mu.Lock()
	d.st.Power = p
	apps := make([]string, 0, len(d.channels))
	for app := range d.channels {
		apps = append(apps, app)
	}
	d.mu.Unlock()
	if err := d.save(); err != nil {
		return err
	}
	for _, app := range apps {
		d.raise(&ChannelError{Type: ErrPowerLevelChanged, App: app, Message: "power level is now " + string(p)})
	}
	c := d.currentConn()
	if c == nil {
		return nil // sent in the next hello's follow-up
	}
	_, err := c.request(ctx, &wire.Frame{Type: wire.TypePower, Power: string(p)})
	return err
}

// Close stops the device: the connection is closed, state saved, and every
// goroutine has ended when Close returns.
func (d *Device) Close() error {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return nil
	}
	d.closed = true
	c := d.conn
	d.mu.Unlock()
	d.cancel()
	if c != nil {
		c.close()
	}
	d.wg.Wait()
	// Events raised while disconnecting (the last status change) are still
	// delivered before Close returns.
	d.events.close()
	d.events.wait()
	err := d.save()
	d.saveMu.Lock()
	d.final = true
	d.saveMu.Unlock()
	return err
}

// save writes the state. Saves are serialized so that an older snapshot
// never overwrites a newer one, and after Close's last save nothing is
// written: a call still in flight when the device closed (an Open or a bind
// answered just before) must not bring back a state directory its owner has
// removed since.
func (d *Device) save() error {
	d.saveMu.Lock()
	defer d.saveMu.Unlock()
	if d.final {
		return nil
	}
	d.mu.Lock()
	p := d.st
	p.Seen = d.seen.list()
	p.Channels = p.Channels[:0:0]
	for _, ch := range d.channels {
		if ch.open {
			p.Channels = append(p.Channels, ch.rec)
		}
	}
	d.mu.Unlock()
	return saveState(d.cfg.StateDir, &p)
}

func (d *Device) raise(e *ChannelError) {
	if h := d.cfg.Handlers.Error; h != nil {
		d.events.push(func() { h(e) })
	}
}

func (d *Device) currentConn() *conn {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.conn
}

// waitConn returns the connection, waiting for one if needed.
func (d *Device) waitConn(ctx context.Context) (*conn, error) {
	for {
		d.mu.Lock()
		c, ch, closed := d.conn, d.connCh, d.closed
		d.mu.Unlock()
		if closed {
			return nil, ErrClosed
		}
		if c != nil {
			return c, nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, fmt.Errorf("device: waiting for the push connection: %w", ctx.Err())
		case <-d.ctx.Done():
			return nil, ErrClosed
		}
	}
}

// setConn makes c the device's connection (nil: none). It refuses a
// connection once the device is closed, so that none outlives Close.
func (d *Device) setConn(c *conn) bool {
	d.mu.Lock()
	if c != nil && d.closed {
		d.mu.Unlock()
		return false
	}
	d.conn = c
	close(d.connCh)
	d.connCh = make(chan struct{})
	st := Disconnected
	if c != nil {
		st = Connected
	}
	changed := d.status != st
	d.status = st
	d.mu.Unlock()
	if h := d.cfg.Handlers.ConnectionStatusChanged; changed && h != nil {
		d.events.push(func() { h(st) })
	}
	return true
}

// Backoff returns the delay before reconnect attempt n (0-based): full
// jitter over an exponential ceiling, with a floor of min/2 and a cap of max:
//
//	ceiling(n) = min(max, min × 2^(n+1))
//	delay(n)   = min/2 + random(0 … ceiling(n) − min/2)
//
// Every delay is jittered, the first one included (attempt 0 spreads over
// [min/2, 2×min]), so that thousands of devices cut off together by a server
// restart do not all come back at the same instant. rnd(k) returns a value
// in [0, k).
func Backoff(n int, min, max time.Duration, rnd func(int64) int64) time.Duration {
	floor := min / 2
	if floor <= 0 {
		floor = 1
	}
	return floor + jitter(backoffCeiling(n, min, max)-floor, rnd)
}

// ReplacedBackoff returns the delay before reconnecting after the server
// closed the connection because another connection of the same identity
// took over (4001), n being the backoff attempt. It jitters over the upper
// half of Backoff's ceiling only ("equal jitter"): two instances sharing an
// identity must wait long every time, not only on average, or they knock
// each other off in a tight loop.
func ReplacedBackoff(n int, min, max time.Duration, rnd func(int64) int64) time.Duration {
	ceil := backoffCeiling(n, min, max)
	return ceil/2 + jitter(ceil-ceil/2, rnd)
}

// backoffCeiling is min(max, min × 2^(n+1)).
func backoffCeiling(n int, min, max time.Duration) time.Duration {
	if n < 30 {
		if c := min << (n + 1); c > 0 && c < max {
			return c
		}
	}
	return max
}

// jitter returns a random duration in [0, span], 0 if span is not positive.
func jitter(span time.Duration, rnd func(int64) int64) time.Duration {
	if span <= 0 {
		return 0
	}
	return time.Duration(rnd(int64(span) + 1))
}

// replacedBackoff is the attempt number a connection closed with 4001
// (replaced by another connection presenting this device's identity) backs
// off from: two client instances sharing one identity would otherwise knock
// each other off in a tight loop. Each further 4001 or failed connect in a
// row backs off more; a connection that lasted longer than MaxBackoff starts
// the count again.
const replacedBackoff = 4

// closeCode returns the WebSocket close code that ended a connection, 0 if
// it did not end with a close frame.
func closeCode(err error) int {
	var ce *websocket.CloseError
	if errors.As(err, &ce) {
		return ce.Code
	}
	return 0
}

func (d *Device) connectLoop() {
	attempt, replaced := 0, 0
	for d.waitOnline() {
		c, err := d.connect()
		if err == nil && !d.isOnline() {
			c.close() // airplane mode was switched on while connecting
			continue
		}
		if err == nil {
			if !d.setConn(c) {
				c.close() // Close ran while connect was handing this connection over
				return
			}
			began := d.clk.Now()
			err = c.wait()
			d.setConn(nil)
			if d.ctx.Err() != nil {
				return
			}
			if closeCode(err) == wire.CloseReplaced {
				// Another instance holds this identity: back off for long,
				// and longer each time, instead of taking the connection
				// back at once. Attempts go on growing while the takeovers
				// (or failed connects) follow each other.
				if d.clk.Now().Sub(began) > d.cfg.MaxBackoff {
					replaced, attempt = 0, 0 // not in a row: this connection held
				}
				replaced++
				attempt = max(attempt, replacedBackoff)
				d.log.Warn("push connection replaced by another connection of this device's identity; backing off", "in_a_row", replaced)
			} else {
				replaced, attempt = 0, 0
				d.next++ // another node may hold the service meanwhile
				d.log.Debug("push connection lost", "err", err)
			}
			if !d.isOnline() {
				continue
			}
		} else {
			d.next++
			d.log.Debug("push connection failed", "attempt", attempt, "err", err)
			var ue *unauthorizedError
			if errors.As(err, &ue) {
				d.raise(&ChannelError{Type: ErrChannelOpenFailed, Message: "the server no longer knows this device; registering as a new device (Channel URIs will change)"})
				d.mu.Lock()
				d.st.DeviceID, d.st.DeviceToken = "", ""
				d.mu.Unlock()
				continue
			}
		}
		backoff := Backoff
		if replaced > 0 {
			backoff = ReplacedBackoff
		}
		wait := backoff(attempt, d.cfg.MinBackoff, d.cfg.MaxBackoff, rand.Int64N)
		attempt++
		done := make(chan struct{})
		t := d.clk.AfterFunc(wait, func() { close(done) })
		select {
		case <-done:
		case <-d.wake:
			t.Stop()
		case <-d.ctx.Done():
			t.Stop()
			return
		}
	}
}

// SetOnline switches the push connection on or off, as airplane mode does:
// off closes the connection and keeps it closed (senders see the device
// TempDisconnected, then Disconnected); on reconnects at once.
func (d *Device) SetOnline(on bool) {
	d.mu.Lock()
	d.offline = !on
	c := d.conn
	d.mu.Unlock()
	if !on && c != nil {
		c.close()
	}
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

func (d *Device) isOnline() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return !d.offline
}

// waitOnline blocks while the device is offline; false once it is closed.
func (d *Device) waitOnline() bool {
	for {
		if d.ctx.Err() != nil {
			return false
		}
		if d.isOnline() {
			return true
		}
		select {
		case <-d.wake:
		case <-d.ctx.Done():
			return false
		}
	}
}

type unauthorizedError struct{ msg string }

func (e *unauthorizedError) Error() string { return "device: unauthorized: " + e.msg }

// connect dials, says hello, and reopens the device's channels.
func (d *Device) connect() (*conn, error) {
	ctx, cancel := context.WithTimeout(d.ctx, 15*time.Second)
	defer cancel()
	wsURL := d.wsURLs[d.next%len(d.wsURLs)]
	ws, _, err := d.cfg.Dialer.DialContext(ctx, wsURL, nil)
	if err != nil {
		return nil, fmt.Errorf("device: dial %s: %w", wsURL, err)
	}
	ws.SetReadLimit(wire.MaxFrameBytes)
	d.mu.Lock()
	hello := &wire.Frame{Type: wire.TypeHello, Version: wire.ProtocolVersion, DeviceID: d.st.DeviceID, DeviceToken: d.st.DeviceToken, Client: d.cfg.Client}
	d.mu.Unlock()
	ws.SetWriteDeadline(time.Now().Add(10 * time.Second))
	b, _ := wire.Encode(hello)
	if err := ws.WriteMessage(websocket.TextMessage, b); err != nil {
		ws.Close()
		return nil, fmt.Errorf("device: send hello: %w", err)
	}
	ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, b, err = ws.ReadMessage()
	if err != nil {
		ws.Close()
		return nil, fmt.Errorf("device: read welcome: %w", err)
	}
	w, err := wire.Decode(b)
	if err != nil {
		ws.Close()
		return nil, err
	}
	if w.Type == wire.TypeError {
		ws.Close()
		if w.Code == wire.CodeUnauthorized {
			return nil, &unauthorizedError{w.Message}
		}
		return nil, fmt.Errorf("device: server refused hello: %s: %s", w.Code, w.Message)
	}
	if w.Type != wire.TypeWelcome {
		ws.Close()
		return nil, fmt.Errorf("device: expected welcome, got %s", w.Type)
	}
	d.mu.Lock()
	if w.DeviceToken != "" {
		d.st.DeviceID, d.st.DeviceToken = w.DeviceID, w.DeviceToken
	}
	power := d.st.Power
	d.mu.Unlock()
	if w.DeviceToken != "" {
		if err := d.save(); err != nil {
			d.log.Warn("save device identity", "err", err)
		}
	}
	hb := time.Duration(w.Heartbeat) * time.Millisecond
	if hb <= 0 {
		hb = 30 * time.Second
	}
	c := newConn(d, ws, hb)
	// Bring the server's view of this device up to date before announcing
	// the connection: power level, then every channel with its bindings.
	if _, err := c.request(ctx, &wire.Frame{Type: wire.TypePower, Power: string(power)}); err != nil {
		c.close()
		return nil, err
	}
	d.mu.Lock()
	chans := make([]*Channel, 0, len(d.channels))
	for _, ch := range d.channels {
		if ch.open {
			chans = append(chans, ch)
		}
	}
	d.mu.Unlock()
	for _, ch := range chans {
		if err := ch.sync(ctx, c); err != nil {
			c.close()
			return nil, err
		}
	}
	return c, nil
}

// deliver handles a notify frame on the event goroutine and reports whether
// to acknowledge it (always, once handled or dropped).
func (d *Device) deliver(f *wire.Frame, received time.Time) {
	m := Meta{ID: f.NID, App: f.App, Channel: f.Channel, Class: f.Class, MessageID: f.MessageID,
		AcceptedAt: time.Unix(0, f.AcceptedAt), ReceivedAt: received}
	d.mu.Lock()
	fresh := d.seen.add(f.NID)
	ch := d.channels[f.App]
	var domains []string
	if ch != nil {
		domains = ch.rec.Domains
	}
	d.mu.Unlock()
	if !fresh && d.cfg.Handlers.Duplicate != nil {
		d.cfg.Handlers.Duplicate(m)
	}
	if !fresh || ch == nil {
		return // a duplicate, or for a channel closed since
	}
	h := d.cfg.Handlers
	switch f.Kind {
	case "toast":
		t, err := payload.ParseToast(f.Payload)
		if err != nil {
			d.raise(&ChannelError{Type: ErrPayloadFormat, App: f.App, Message: err.Error()})
			return
		}
		if d.appState(f.App).Foreground {
			if h.AppToast != nil {
				h.AppToast(m, t)
			}
		} else if h.ShellToast != nil {
			h.ShellToast(m, t)
		}
	case "tile":
		t, err := payload.ParseTile(f.Payload)
		if err != nil {
			d.raise(&ChannelError{Type: ErrPayloadFormat, App: f.App, Message: err.Error()})
			return
		}
		if h.Tile != nil {
			h.Tile(m, t, domains)
		}
	case "raw":
		if d.appState(f.App).Running {
			if h.Raw != nil {
				h.Raw(m, f.Payload)
			}
		} else if h.RawDropped != nil {
			h.RawDropped(m)
		}
	default:
		d.raise(&ChannelError{Type: ErrUnknown, App: f.App, Message: "unknown notification kind " + f.Kind})
	}
}

// eventQueue runs functions one at a time, in order, on one goroutine.
type eventQueue struct {
	mu      sync.Mutex
	q       []func()
	running bool // a goroutine is draining q
	closed  bool
	wg      sync.WaitGroup // the draining goroutine
}

func newEventQueue() *eventQueue { return &eventQueue{} }

// push queues f and starts a goroutine to run the queue unless one runs:
// an idle device holds no goroutine for its events (a fleet runs thousands
// of devices). Events run one at a time, in order.
func (e *eventQueue) push(f func()) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return
	}
	e.q = append(e.q, f)
	if !e.running {
		e.running = true
		e.wg.Add(1)
		go e.run()
	}
}

// close refuses further events; wait then waits for those queued.
func (e *eventQueue) close() {
	e.mu.Lock()
	e.closed = true
	e.mu.Unlock()
}

func (e *eventQueue) wait() { e.wg.Wait() }

func (e *eventQueue) run() {
	defer e.wg.Done()
	for {
		e.mu.Lock()
		if len(e.q) == 0 {
			e.running = false
			e.q = nil // an idle device keeps no backing array
			e.mu.Unlock()
			return
		}
		f := e.q[0]
		e.q[0] = nil
		e.q = e.q[1:]
		e.mu.Unlock()
		f()
	}
}
