package device

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"reflect"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/openmpns/openmpns/device/internal/backoff"
	"github.com/openmpns/openmpns/shared/clock"
	"github.com/openmpns/openmpns/shared/payload"
	"github.com/openmpns/openmpns/shared/rawsock"
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
	// HandshakeTimeout bounds the WebSocket upgrade (default 10 s).
	HandshakeTimeout time.Duration
	// BufferSize is the size of the connection's read and write buffers
	// (default 1024 bytes; write buffers are pooled between writes). A
	// fleet of thousands of devices saves memory with smaller ones; frames
	// larger than the buffer are still read and written whole.
	BufferSize int
	// NetDial, if set, opens the TCP connection to the server (for
	// example from a chosen local address); nil means net.Dialer.
	NetDial func(ctx context.Context, network, addr string) (net.Conn, error)
	// TLSConfig is used for https:// servers; nil means the system's roots.
	TLSConfig *tls.Config
	// PromptHandlers promises that every handler returns promptly and
	// never waits for the device: none calls a method that waits for the
	// server or for the connection to end (Open, the Bind and Unbind
	// methods, Channel.Close, SetPowerLevel, SetOnline(false), Close) or
	// blocks for long. A notification that arrives while no event runs is
	// then handled on the connection's reader goroutine, which reads
	// nothing more until its handlers (and the events queued meanwhile)
	// have returned, instead of on a goroutine started for it: a fleet of
	// thousands of devices saves a goroutine's start and a thread's
	// wake-up per notification. Events still run one at a time, in order,
	// and a notification is still acknowledged once its handler returned.
	// A handler that breaks the promise deadlocks its device.
	PromptHandlers bool
}

// Errors returned by Device and Channel methods; test with errors.Is.
var (
	// ErrClosed: the Device was closed.
	ErrClosed = errors.New("device: closed")
	// ErrNotOpen: the channel is not open (never opened, or closed).
	ErrNotOpen = errors.New("device: channel is not open")
	// ErrChannelExists: the server refused to open the channel because the
	// app has a channel under another name (the server's channel_exists).
	ErrChannelExists = errors.New("device: the app already has a channel under another name")
	// ErrChannelQuota: the server refused to open the channel because the
	// device has the maximum number of channels (the server's channel_quota).
	ErrChannelQuota = errors.New("device: the device has the maximum number of channels")
	// ErrRateLimited: the server refused because too many devices or
	// channels were created from this device's address (rate_limited);
	// the device backs off before it connects again, and the app may open
	// the channel again later.
	ErrRateLimited = errors.New("device: the server limits new devices and channels from this address; retry later")
	// ErrServerFull: the server holds as many channels as it may
	// (server_full); retry later.
	ErrServerFull = errors.New("device: the server is full; retry later")
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
	dialer *websocket.Dialer

	saveMu sync.Mutex // serializes save; guards final
	final  bool       // Close's last save is done: state is no longer written

	mu       sync.Mutex
	st       persisted
	seen     *seenSet
	channels map[string]*channelState // the open channels, by app
	apps     map[string]AppState
	conn     *conn
	connCh   chan struct{} // closed and replaced when conn changes
	status   ConnectionStatus
	closed   bool
	offline  bool          // airplane mode: no connection until SetOnline(true)
	wake     chan struct{} // cuts a reconnect wait short

	// restoreGen counts the changes to what a connection restores on the
	// server (the power level, a channel's bindings) made while the device
	// had no connection to send them on: a connection being set up may
	// have read the state before them (see attach).
	restoreGen uint64

	// cancelConnect cuts short the connection attempt in progress (nil:
	// none); airplane mode going on calls it.
	cancelConnect context.CancelCauseFunc
	// queued holds a token for each notification a reader handed to the
	// event queue and not yet handled: at most maxQueuedNotifications.
	queued chan struct{}
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
	if cfg.HandshakeTimeout <= 0 {
		cfg.HandshakeTimeout = 10 * time.Second
	}
	if cfg.BufferSize <= 0 {
		cfg.BufferSize = 1024
	}
	dialer := &websocket.Dialer{HandshakeTimeout: cfg.HandshakeTimeout, Proxy: http.ProxyFromEnvironment,
		ReadBufferSize: cfg.BufferSize, WriteBufferSize: cfg.BufferSize, WriteBufferPool: writePool(cfg.BufferSize),
		Subprotocols: []string{wire.Subprotocol}, NetDialContext: rawDial(cfg.NetDial), TLSClientConfig: cfg.TLSConfig}
	st, err := loadState(cfg.StateDir, cfg.Logger)
	if err != nil {
		return nil, err
	}
	if st.Power == "" {
		st.Power = PowerNormal
	}
	// Ids the protocol does not allow, which an older version kept, are
	// forgotten: the state file is rewritten at every save.
	st.Seen = slices.DeleteFunc(st.Seen, func(id string) bool { return !validNID(id) })
	ctx, cancel := context.WithCancel(context.Background())
	d := &Device{
		cfg: cfg, dialer: dialer, wsURLs: wsURLs, log: cfg.Logger, clk: cfg.Clock, ctx: ctx, cancel: cancel,
		st: st, seen: newSeenSet(st.Seen), channels: map[string]*channelState{}, apps: map[string]AppState{},
		connCh: make(chan struct{}), status: Disconnected, wake: make(chan struct{}, 1),
		queued: make(chan struct{}, maxQueuedNotifications),
	}
	for _, r := range st.Channels {
		d.channels[r.App] = &channelState{rec: r}
	}
	d.events = newEventQueue()
	d.wg.Add(1)
	go func() { defer d.wg.Done(); d.connectLoop() }()
	return d, nil
}

// writePools share write buffers of one size between the connections of
// every device in the process (a fleet runs thousands).
var writePools sync.Map // int → *sync.Pool

func writePool(size int) *sync.Pool {
	p, _ := writePools.LoadOrStore(size, &sync.Pool{})
	return p.(*sync.Pool)
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
	chans := d.openChannelsLocked()
	c := d.conn
	if c == nil {
		d.restoreGen++ // sent by the next connection, or the one being set up (attach)
	}
	d.mu.Unlock()
	if err := d.save(); err != nil {
		return err
	}
	for _, st := range chans {
		d.raiseFor(st, nil, &ChannelError{Type: PowerLevelChanged, App: st.rec.App, Message: "power level is now " + string(p)})
	}
	if c == nil {
		return nil
	}
	_, err := c.request(ctx, &wire.Frame{Type: wire.TypePower, Power: string(p)})
	return err
}

// Close stops the device: the connection is closed, state saved, and every
// goroutine has ended when Close returns. Events raised before Close (the
// last status change among them) are still delivered, and Close waits for
// them, except when a handler calls it: then Close returns without waiting
// for the event goroutine (it is the caller's), which ends once the handler
// has returned and the events queued before Close have run. Close cannot
// tell this device's handlers from another device's (it keeps no goroutine
// identity per event: a fleet delivers thousands a second), so the same
// holds when a handler of another device calls Close while one of this
// device's handlers runs: Close returns without waiting for that handler
// and the events queued after it. Calls after the first return nil at once.
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
	d.events.close()
	if !d.events.mayBeOnEventGoroutine() {
		d.events.wait()
	}
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
	for _, st := range d.channels {
		p.Channels = append(p.Channels, st.rec)
	}
	d.mu.Unlock()
	return saveState(d.cfg.StateDir, &p)
}

// raise raises e: device-level, and on the objects of the channel of
// e.App if it has one.
func (d *Device) raise(e *ChannelError) {
	var st *channelState
	if e.App != "" {
		d.mu.Lock()
		st = d.channels[e.App]
		d.mu.Unlock()
	}
	d.raiseFor(st, nil, e)
}

// raiseFor raises e device-level and on the objects of st and on also
// (either may be nil; see eachObject).
func (d *Device) raiseFor(st *channelState, also *Channel, e *ChannelError) {
	h := d.cfg.Handlers.Error
	if h == nil && st == nil && also == nil {
		return
	}
	d.events.push(func() {
		if h != nil {
			h(e)
		}
		d.eachObject(st, also, func(ev ChannelEvents) {
			if ev.ErrorOccurred != nil {
				ev.ErrorOccurred(e)
			}
		})
	})
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

// errStale is a connection that has not restored a change made since it
// began to (see attach).
var errStale = errors.New("device: the device's state changed while the connection restored it")

// setConn makes c the device's connection (nil: none). It refuses a
// connection once the device is closed (ErrClosed), so that none outlives
// Close; while airplane mode is on (errOffline), so that none is up then
// (SetOnline found no connection to close); and one that has not restored
// a change made since it began to (errStale: see attach; c.restored is
// brought up to date, for the restore again).
func (d *Device) setConn(c *conn) error {
	d.mu.Lock()
	if c != nil {
		var err error
		switch {
		case d.closed:
			err = ErrClosed
		case d.offline:
			err = errOffline
		case c.restored != d.restoreGen:
			c.restored = d.restoreGen
			err = errStale
		}
		if err != nil {
			d.mu.Unlock()
			return err
		}
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
	var chans []*channelState
	if changed {
		chans = d.openChannelsLocked()
	}
	d.mu.Unlock()
	if !changed {
		return nil
	}
	h := d.cfg.Handlers.ConnectionStatusChanged
	d.events.push(func() {
		if h != nil {
			h(st)
		}
		for _, c := range chans {
			d.eachObject(c, nil, func(ev ChannelEvents) {
				if ev.ConnectionStatusChanged != nil {
					ev.ConnectionStatusChanged(st)
				}
			})
		}
	})
	return nil
}

// attach makes c, which connect set up, the device's connection. What
// connect restored on c (the power level, every channel with its
// bindings) it read before: a bind or power level set since found no
// connection to send it on (bind, SetPowerLevel) and was left to this one,
// whose restore may have read the record before the change (a fleet device
// whose connection dropped while it registered kept a toast binding the
// server never had, until its next reconnect). So while such a change came
// meanwhile, c restores again; the check and the hand-over are one step
// (setConn, under mu), so that a change made after it finds c and is sent
// on it. Otherwise attach returns setConn's refusal (c is not taken), or
// the error of a restore that failed (c is closed).
func (d *Device) attach(c *conn) error {
	ctx, cancel := context.WithTimeout(d.ctx, connectTimeout)
	defer cancel()
	for {
		if err := d.setConn(c); !errors.Is(err, errStale) {
			return err
		}
		if err := d.restore(ctx, c); err != nil {
			c.close()
			return err
		}
	}
}

// openChannelsLocked returns the open channels, by app; d.mu is held.
func (d *Device) openChannelsLocked() []*channelState {
	out := make([]*channelState, 0, len(d.channels))
	for _, st := range d.channels {
		out = append(out, st)
	}
	slices.SortFunc(out, func(a, b *channelState) int { return strings.Compare(a.rec.App, b.rec.App) })
	return out
}

// replacedBackoff is the attempt number a connection closed with 4001
// (replaced by another connection presenting this device's identity) backs
// off from: two client instances sharing one identity would otherwise knock
// each other off in a tight loop. Each further 4001 or failed connect in a
// row backs off more; a connection that lasted longer than MaxBackoff starts
// the count again.
const replacedBackoff = 4

// rateLimitedBackoff is the attempt number a device refused by the
// server's per-address rates (error rate_limited, close 4029) backs off
// from, with the long, equal-jittered delays of a replaced connection: a
// fleet behind one address that comes back at once would be refused again.
const rateLimitedBackoff = 4

// rateLimited reports whether err is the server's per-address rate
// refusing this device: a hello or an open answered rate_limited, or a
// connection closed with 4029.
func rateLimited(err error) bool {
	var se *serverError
	return closeCode(err) == wire.CloseRateLimited || errors.Is(err, ErrRateLimited) ||
		(errors.As(err, &se) && se.code == wire.CodeRateLimited)
}

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
	refusedNew := false // a hello without credentials was refused (unauthorized) since the last connection was set up
	for d.waitOnline() {
		limited := false
		c, err := d.connect()
		if err == nil && !d.isOnline() {
			c.close() // airplane mode was switched on while connecting
			continue
		}
		var began time.Time
		if err == nil {
			began = d.clk.Now() // before the status change announces the connection
			err = d.attach(c)
			switch {
			case errors.Is(err, ErrClosed):
				c.close() // Close ran while connect was handing this connection over
				return
			case errors.Is(err, errOffline):
				c.close() // airplane mode was switched on meanwhile
				continue
			}
		}
		if err == nil {
			refusedNew = false
			err = c.wait()
			d.setConn(nil)
			if d.ctx.Err() != nil {
				return
			}
			if d.clk.Now().Sub(began) > d.cfg.MaxBackoff {
				// This connection held: what ends it starts the count
				// again. One that ended sooner counts as one more attempt
				// in a row, so that a server dropping every connection
				// right after set-up (a crash on a queued notification, a
				// frame too large) sees the delays grow as after failed
				// connects, not a reconnect every MinBackoff.
				replaced, attempt = 0, 0
			}
			if rateLimited(err) {
				limited = true
				attempt = max(attempt, rateLimitedBackoff)
				d.log.Warn("the server limits this address (too many new devices or channels); backing off")
			} else if closeCode(err) == wire.CloseReplaced {
				// Another instance holds this identity: back off for long,
				// and longer each time, instead of taking the connection
				// back at once. Attempts go on growing while the takeovers
				// (or failed connects) follow each other.
				replaced++
				attempt = max(attempt, replacedBackoff)
				d.log.Warn("push connection replaced by another connection of this device's identity; backing off", "in_a_row", replaced)
			} else {
				replaced = 0
				d.next++ // another node may hold the service meanwhile
				d.log.Debug("push connection lost", "err", err)
			}
			if !d.isOnline() {
				continue
			}
		} else {
			if d.ctx.Err() != nil {
				return // Close cut the attempt short
			}
			if errors.Is(err, errOffline) {
				continue // airplane mode cut it short: no failure
			}
			d.next++
			if rateLimited(err) {
				limited = true
				attempt = max(attempt, rateLimitedBackoff)
			}
			var ue *unauthorizedError
			if errors.As(err, &ue) {
				if ue.credentials {
					// The server no longer knows this identity: forget it
					// and come back at once as a new device (protocol.md
					// section 8).
					d.log.Debug("push connection failed", "attempt", attempt, "err", err)
					d.raise(&ChannelError{Type: ChannelOpenFailed, Message: "the server no longer knows this device; registering as a new device (Channel URIs will change)"})
					d.mu.Lock()
					d.st.DeviceID, d.st.DeviceToken = "", ""
					d.mu.Unlock()
					continue
				}
				// Refused as a new device too: coming back at once would
				// be refused again. The device waits as after any failed
				// attempt, and the app hears of it once until a
				// connection is set up.
				if !refusedNew {
					refusedNew = true
					d.raise(&ChannelError{Type: ChannelOpenFailed, Message: "the server refuses this device as a new device (unauthorized: " + ue.msg + "); retrying with backoff"})
				}
			}
		}
		delay := backoff.Delay
		if replaced > 0 || limited {
			delay = backoff.Replaced
		}
		wait := delay(attempt, d.cfg.MinBackoff, d.cfg.MaxBackoff, rand.Int64N)
		var ra *retryAfterError
		if errors.As(err, &ra) && ra.after > wait {
			wait = ra.after // the server said when to come back (429)
		}
		if failed := err != nil && closeCode(err) == 0 && !errors.Is(err, errConnClosed); failed || ra != nil || limited {
			d.connectFailed(attempt, err, wait)
		}
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

// connectFailed reports a failed connection attempt: logged (at info level
// for the first failure in a row and then sparsely, debug otherwise: a
// fleet runs thousands of devices on one logger) and passed to
// Handlers.ConnectFailed, which a program uses to tell its user.
func (d *Device) connectFailed(attempt int, err error, retryIn time.Duration) {
	lvl := slog.LevelDebug
	if attempt == 0 || attempt&(attempt-1) == 0 {
		lvl = slog.LevelInfo
	}
	d.log.Log(d.ctx, lvl, "cannot connect to the push server; retrying", "attempt", attempt+1, "retry_in", retryIn.Round(time.Millisecond), "err", err)
	if h := d.cfg.Handlers.ConnectFailed; h != nil {
		d.events.push(func() { h(err, retryIn) })
	}
}

// SetOnline switches the push connection on or off, as airplane mode does:
// off closes the connection, or cuts short the attempt to open one, and
// keeps it closed (senders see the device TempDisconnected, then
// Disconnected); on reconnects at once.
func (d *Device) SetOnline(on bool) {
	d.mu.Lock()
	d.offline = !on
	c := d.conn
	if !on && d.cancelConnect != nil {
		d.cancelConnect(errOffline)
	}
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

// unauthorizedError is a hello refused with unauthorized; credentials
// says whether it carried the device's identity.
type unauthorizedError struct {
	msg         string
	credentials bool
}

func (e *unauthorizedError) Error() string { return "device: unauthorized: " + e.msg }

// errOffline is a connection attempt cut short by airplane mode.
var errOffline = errors.New("device: airplane mode went on")

// connect dials, says hello, and reopens the device's channels.
func (d *Device) connect() (_ *conn, err error) {
	// The attempt ends with the device (Close), or with errOffline when
	// airplane mode goes on (SetOnline cancels it).
	attempt, cut := context.WithCancelCause(d.ctx)
	defer cut(nil)
	ctx, cancel := context.WithTimeout(attempt, connectTimeout)
	defer cancel()
	d.mu.Lock()
	if d.offline {
		cut(errOffline)
	}
	d.cancelConnect = cut
	d.mu.Unlock()
	defer func() {
		d.mu.Lock()
		d.cancelConnect = nil
		d.mu.Unlock()
		if err != nil && context.Cause(attempt) == errOffline {
			err = errOffline
		}
	}()
	wsURL := d.wsURLs[d.next%len(d.wsURLs)]
	ws, resp, err := d.dialer.DialContext(ctx, wsURL, nil)
	if err != nil {
		return nil, dialError(wsURL, resp, err, d.clk.Now())
	}
	ws.SetReadLimit(wire.MaxFrameBytes)
	d.mu.Lock()
	hello := &wire.Frame{Type: wire.TypeHello, Version: wire.ProtocolVersion, DeviceID: d.st.DeviceID, DeviceToken: d.st.DeviceToken, Client: d.cfg.Client}
	d.mu.Unlock()
	w, err := exchangeHello(ctx, ws, hello)
	if err != nil {
		ws.Close()
		return nil, err
	}
	if w.Type == wire.TypeError {
		ws.Close()
		if w.Code == wire.CodeUnauthorized {
			return nil, &unauthorizedError{msg: w.Message, credentials: hello.DeviceToken != ""}
		}
		return nil, fmt.Errorf("device: server refused hello: %w", &serverError{code: w.Code, msg: w.Message})
	}
	if w.Type != wire.TypeWelcome {
		ws.Close()
		return nil, fmt.Errorf("device: expected welcome, got %s", w.Type)
	}
	d.mu.Lock()
	if w.DeviceToken != "" {
		d.st.DeviceID, d.st.DeviceToken = w.DeviceID, w.DeviceToken
	}
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
	// the connection (attach).
	d.mu.Lock()
	c.restored = d.restoreGen
	d.mu.Unlock()
	if err := d.restore(ctx, c); err != nil {
		c.close()
		return nil, err
	}
	return c, nil
}

// connectTimeout bounds setting up a connection: dial, hello, and
// restoring the device's state on the server (connect, attach).
const connectTimeout = 15 * time.Second

// restore brings the server's view of this device up to date on c: the
// power level, then every channel with its bindings, as the device has
// them now.
func (d *Device) restore(ctx context.Context, c *conn) error {
	d.mu.Lock()
	power := d.st.Power
	d.mu.Unlock()
	if _, err := c.request(ctx, &wire.Frame{Type: wire.TypePower, Power: string(power)}); err != nil {
		return err
	}
	d.mu.Lock()
	chans := d.openChannelsLocked()
	d.mu.Unlock()
	for _, st := range chans {
		d.mu.Lock()
		rec := st.rec
		d.mu.Unlock()
		err := d.sync(ctx, c, st, rec, nil)
		if errors.Is(err, ErrChannelExists) || errors.Is(err, ErrChannelQuota) || errors.Is(err, errChannelRefused) {
			// The server refuses this saved channel, and would at every
			// connect: the app hears of it and the channel goes, and the
			// device and its other apps stay online.
			d.dropRefused(st, err)
			continue
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// exchangeHello sends hello on ws and reads the server's answer. Each is
// bounded by a deadline of 10 s, and both by ctx: a watch closes the
// connection when ctx ends, so that Close or airplane mode does not wait
// for a server slow to answer. The watch ends with the exchange, and no
// goroutine of it outlives the call (a connection keeps no watch for its
// life: see setConn).
func exchangeHello(ctx context.Context, ws *websocket.Conn, hello *wire.Frame) (w *wire.Frame, err error) {
	cut := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		ws.NetConn().Close()
		close(cut)
	})
	defer func() {
		if !stop() {
			<-cut // the watch closed the connection
			w, err = nil, fmt.Errorf("device: hello: %w", ctx.Err())
		}
	}()
	ws.SetWriteDeadline(time.Now().Add(10 * time.Second))
	b, _ := wire.Encode(hello)
	if err := ws.WriteMessage(websocket.TextMessage, b); err != nil {
		return nil, fmt.Errorf("device: send hello: %w", err)
	}
	ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, b, err = ws.ReadMessage()
	if err != nil {
		return nil, fmt.Errorf("device: read welcome: %w", err)
	}
	return wire.Decode(b)
}

// dropRefused forgets a saved channel the server refused to open again,
// and raises ChannelOpenFailed on its objects.
func (d *Device) dropRefused(st *channelState, err error) {
	d.mu.Lock()
	app := st.rec.App
	if d.channels[app] == st {
		delete(d.channels, app)
	}
	d.mu.Unlock()
	d.log.Warn("the server refused a saved channel; the app must open it again", "app", app, "err", err)
	d.raiseFor(st, nil, &ChannelError{Type: ChannelOpenFailed, App: app, Message: err.Error() + "; the channel was dropped: open it again"})
	if serr := d.save(); serr != nil {
		d.log.Warn("save device state", "err", serr)
	}
}

// retryAfterError is a refused upgrade whose answer said when to try again:
// 429 with Retry-After (the server's per-address connection limit).
type retryAfterError struct {
	status int
	after  time.Duration
	msg    string
}

func (e *retryAfterError) Error() string {
	return fmt.Sprintf("the server refused the connection with %d (%s); it asks to retry after %v", e.status, e.msg, e.after)
}

// dialError explains a failed dial. An HTTP answer instead of an upgrade
// is named with its status and text; a 429 or 503 with Retry-After
// becomes a retryAfterError.
func dialError(wsURL string, resp *http.Response, err error, now time.Time) error {
	if resp == nil {
		return fmt.Errorf("device: dial %s: %w", wsURL, err)
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	resp.Body.Close()
	msg := strings.TrimSpace(string(body))
	if msg == "" {
		msg = http.StatusText(resp.StatusCode)
	}
	if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable {
		if after, ok := parseRetryAfter(resp.Header.Get("Retry-After"), now); ok {
			return fmt.Errorf("device: dial %s: %w", wsURL, &retryAfterError{status: resp.StatusCode, after: after, msg: msg})
		}
	}
	return fmt.Errorf("device: dial %s: the server answered %d (%s): %w", wsURL, resp.StatusCode, msg, err)
}

// parseRetryAfter reads a Retry-After value: seconds, or an HTTP date.
func parseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n < 0 {
			return 0, false
		}
		return time.Duration(min(n, 24*3600)) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0), true
	}
	return 0, false
}

// deliver handles a notify frame on the event goroutine. The caller acks
// the notification afterwards, whatever happened to it (handled, dropped
// as a duplicate or for a closed channel, or unparseable).
func (d *Device) deliver(f *wire.Frame, received time.Time) {
	m := Meta{ID: f.NID, App: f.App, Channel: f.Channel, Class: f.Class, MessageID: f.MessageID,
		AcceptedAt: time.Unix(0, f.AcceptedAt), ReceivedAt: received}
	d.mu.Lock()
	fresh := d.seen.add(f.NID)
	st := d.channels[f.App]
	app := d.apps[f.App]
	var domains []string
	if st != nil {
		domains = st.rec.Domains
	}
	d.mu.Unlock()
	if !fresh && d.cfg.Handlers.Duplicate != nil {
		d.cfg.Handlers.Duplicate(m)
	}
	if !fresh || st == nil {
		return // a duplicate, or for a channel closed since
	}
	h := d.cfg.Handlers
	switch f.Kind {
	case "toast":
		t, err := payload.ParseToast(f.Payload)
		if err != nil {
			d.raiseFor(st, nil, &ChannelError{Type: PayloadFormatError, App: f.App, Message: err.Error()})
			return
		}
		if app.Foreground {
			if h.AppToast != nil {
				h.AppToast(m, t)
			}
			d.eachObject(st, nil, func(ev ChannelEvents) {
				if ev.ShellToastNotificationReceived != nil {
					ev.ShellToastNotificationReceived(m, t)
				}
			})
		} else if h.ShellToast != nil {
			h.ShellToast(m, t)
		}
	case "tile":
		t, err := payload.ParseTile(f.Payload)
		if err != nil {
			d.raiseFor(st, nil, &ChannelError{Type: PayloadFormatError, App: f.App, Message: err.Error()})
			return
		}
		if h.Tile != nil {
			h.Tile(m, t, domains)
		}
	case "raw":
		if app.Running {
			if h.Raw != nil {
				h.Raw(m, f.Payload)
			}
			d.eachObject(st, nil, func(ev ChannelEvents) {
				if ev.HTTPNotificationReceived != nil {
					ev.HTTPNotificationReceived(m, f.Payload)
				}
			})
		} else if h.RawDropped != nil {
			h.RawDropped(m)
		}
	default:
		d.raiseFor(st, nil, &ChannelError{Type: UnknownError, App: f.App, Message: "unknown notification kind " + f.Kind})
	}
}

// eventQueue runs functions one at a time, in order, on one goroutine.
type eventQueue struct {
	mu        sync.Mutex
	q         []func()
	running   bool // a goroutine is draining q
	inHandler bool // that goroutine is running one of the functions
	closed    bool
	wg        sync.WaitGroup // the draining goroutine
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

// claim makes the caller the queue's runner when the queue is idle (no
// goroutine runs it, nothing waits in it) and open: the caller runs its
// event itself, then calls run, which runs what was queued meanwhile and
// gives the queue up. It reports false when the event must be pushed.
func (e *eventQueue) claim() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed || e.running || len(e.q) > 0 {
		return false
	}
	e.running = true
	e.inHandler = true
	e.wg.Add(1)
	return true
}

// close refuses further events; wait then waits for those queued.
func (e *eventQueue) close() {
	e.mu.Lock()
	e.closed = true
	e.mu.Unlock()
}

func (e *eventQueue) wait() { e.wg.Wait() }

// mayBeOnEventGoroutine reports whether the caller may be the goroutine
// running this queue's events (a handler), where waiting for the queue
// would wait for itself. It is true when one of the queue's functions is
// running and the caller runs on an event goroutine (its stack starts in
// run): this queue's, or another device's, which it cannot tell apart.
// Nothing is recorded per event to answer it (a fleet delivers thousands
// of events a second); the caller's stack is walked here, on the rare path.
func (e *eventQueue) mayBeOnEventGoroutine() bool {
	e.mu.Lock()
	busy := e.inHandler
	e.mu.Unlock()
	return busy && onAnEventGoroutine()
}

// runName is the name of eventQueue.run, the function every event
// goroutine starts in.
var runName = runtime.FuncForPC(reflect.ValueOf((*eventQueue).run).Pointer()).Name()

// onAnEventGoroutine reports whether the caller runs on the goroutine of
// some device's event queue: whether eventQueue.run is on its stack (as a
// frame of its own or inlined into the goroutine's first function).
func onAnEventGoroutine() bool {
	pcs := make([]uintptr, 64)
	for {
		n := runtime.Callers(2, pcs)
		if n < len(pcs) {
			pcs = pcs[:n]
			break
		}
		pcs = make([]uintptr, 2*len(pcs))
	}
	frames := runtime.CallersFrames(pcs)
	for {
		f, more := frames.Next()
		if f.Function == runName {
			return true
		}
		if !more {
			return false
		}
	}
}

func (e *eventQueue) run() {
	defer e.wg.Done()
	for {
		e.mu.Lock()
		if len(e.q) == 0 {
			e.running = false
			e.inHandler = false
			e.q = nil // an idle device keeps no backing array
			e.mu.Unlock()
			return
		}
		f := e.q[0]
		e.q[0] = nil
		e.q = e.q[1:]
		e.inHandler = true
		e.mu.Unlock()
		f()
	}
}

// rawDial wraps dial (nil: a net.Dialer's) so that the connections it makes
// are read and written with raw system calls (shared/rawsock): a fleet's
// devices share two cores with a server and a sender, and the runtime's
// bookkeeping of ordinary system calls (sysmon taking a descheduled
// thread's processor, and polling every 20 µs after) cost the fleet about
// 15 % of its CPU per notification in the closed loop and half of it at a
// steady 1,000/s (docs/benchmarks.md, session 11). A connection of another
// type than the standard library's (a Config.NetDial's own) is used as it
// is.
func rawDial(dial func(ctx context.Context, network, addr string) (net.Conn, error)) func(ctx context.Context, network, addr string) (net.Conn, error) {
	if dial == nil {
		var d net.Dialer
		dial = d.DialContext
	}
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return rawsock.Wrap(c), nil
	}
}
