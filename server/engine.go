package server

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/openmpns/openmpns/server/store"
	"github.com/openmpns/openmpns/shared/clock"
	"github.com/openmpns/openmpns/shared/payload"
	"github.com/openmpns/openmpns/shared/sender"
	"github.com/openmpns/openmpns/shared/wire"
)

// Store is what the engine needs from durable storage. Every write returns
// once durable. Writes are applied in the order they are submitted: a write
// submitted after Enqueue returned is applied after that Enqueue.
type Store interface {
	PutDevice(store.Device) error
	Devices() ([]store.Device, error)
	PutChannel(store.Channel) error
	Channels() ([]store.Channel, error)
	DeleteChannel(token string, queued []uint64) error
	// Enqueue submits n (and the deletion of replace, if non-zero) and
	// returns at once; the channel yields the outcome once it is durable.
	Enqueue(n *store.Notification, replace uint64) <-chan error
	Remove(seqs []uint64) error
	// RemoveLater removes without waiting; a crash before it is written
	// brings the notifications back (devices drop what they have seen).
	RemoveLater(seqs []uint64)
	Queued() ([]*store.Notification, error)
	Close() error
}

// Status header values (reference §3); the one spelling is shared/sender's.
const (
	StatusReceived  = sender.StatusReceived
	StatusQueueFull = sender.StatusQueueFull
	StatusSuppress  = sender.StatusSuppressed
	StatusDropped   = sender.StatusDropped

	SubActive  = sender.SubscriptionActive
	SubExpired = sender.SubscriptionExpired

	ConnConnected        = sender.DeviceConnected
	ConnTempDisconnected = sender.DeviceTempDisconnected
	ConnDisconnected     = sender.DeviceDisconnected
	ConnInactive         = sender.DeviceInactive
)

// PushRequest is a validated notification from a sender.
type PushRequest struct {
	Token     string
	Kind      payload.Kind
	Class     int
	MessageID string
	Body      []byte
	// TileID is the secondary tile id of a tile update.
	TileID string
	// Service is the service the sender authenticated as; "" for an
	// unauthenticated sender.
	Service string
}

// PushResult is the answer to a push, as HTTP status and MPNS headers.
type PushResult struct {
	HTTPStatus   int
	Notification string
	Subscription string
	Connection   string
	// Reason is a human-readable explanation for anything but 200 Received.
	Reason string
}

// DeviceTokens issues and checks the signed identity tokens of devices.
type DeviceTokens interface {
	IssueDeviceToken(deviceID string, now time.Time) (string, error)
	VerifyDeviceToken(token, deviceID string) error
}

// deviceConn is a connected device session as the engine sees it.
type deviceConn interface {
	// notify queues a notification frame; it never blocks, because the
	// engine never has more than Config.InFlight notifications outstanding
	// on one connection.
	notify(f *wire.Frame)
	// kick closes the connection with a reason.
	kick(code int, reason string)
}

// Engine routes notifications from senders to devices: it owns the in-memory
// view of devices, channels and queues, and writes through to the Store.
//
// Locking: Engine.mu guards the maps; each deviceState.mu guards that device,
// its channels and its queue. Engine.mu is taken before a device's mu, never
// after.
type Engine struct {
	cfg   *Config
	st    Store
	clk   clock.Clock
	log   *slog.Logger
	met   *metrics
	seq   atomic.Uint64
	state atomic.Int32 // 0 running, 1 draining
	// pending counts pushes between admission and their store write's
	// outcome; Config.MaxPendingPushes bounds it.
	pending atomic.Int64
	// tokens signs device identities; nil falls back to random secrets.
	tokens DeviceTokens

	mu       sync.RWMutex
	devices  map[string]*deviceState
	channels map[string]*channelState // by token

	// The expiry sweep (see sweep); sweepMu keeps a sweep from running
	// once Stop has returned.
	sweepMu      sync.Mutex
	sweepTimer   clock.Timer
	sweepStopped bool
}

type deviceState struct {
	mu           sync.Mutex
	rec          store.Device
	conn         deviceConn
	offlineSince time.Time
	channels     map[string]*channelState // by app
	// queue holds every unacknowledged notification of the device, in Seq
	// order; inflight marks those sent on the current connection.
	queue    []*store.Notification
	inflight map[uint64]bool
	timer    clock.Timer
	timerAt  time.Time
}

type channelState struct {
	rec    store.Channel
	dev    *deviceState
	queued int
	closed bool
	// daily quota of unauthenticated senders
	quotaDay   int64
	quotaCount int
}

// NewEngine loads the store into memory.
func NewEngine(cfg *Config, st Store, met *metrics) (*Engine, error) {
	e := &Engine{
		cfg: cfg, st: st, clk: cfg.Clock, log: cfg.Logger, met: met,
		devices:  make(map[string]*deviceState),
		channels: make(map[string]*channelState),
	}
	devs, err := st.Devices()
	if err != nil {
		return nil, err
	}
	for _, d := range devs {
		e.devices[d.ID] = &deviceState{rec: d, offlineSince: d.LastSeen, channels: map[string]*channelState{}, inflight: map[uint64]bool{}}
	}
	chans, err := st.Channels()
	if err != nil {
		return nil, err
	}
	for _, c := range chans {
		d := e.devices[c.DeviceID]
		if d == nil {
			return nil, fmt.Errorf("engine: channel %s belongs to unknown device %s: the data file is inconsistent", c.Token, c.DeviceID)
		}
		cs := &channelState{rec: c, dev: d}
		d.channels[c.App] = cs
		e.channels[c.Token] = cs
	}
	queued, err := st.Queued()
	if err != nil {
		return nil, err
	}
	maxSeq := uint64(e.clk.Now().UnixNano())
	var orphans []uint64
	for _, n := range queued {
		maxSeq = max(maxSeq, n.Seq)
		cs := e.channels[n.Channel]
		if cs == nil {
			orphans = append(orphans, n.Seq)
			continue
		}
		cs.queued++
		cs.dev.queue = append(cs.dev.queue, n) // Queued returns Seq order
	}
	if err := st.Remove(orphans); err != nil {
		return nil, err
	}
	e.seq.Store(maxSeq)
	met.channels.Set(float64(len(e.channels)))
	met.queueDepth.Set(float64(len(queued) - len(orphans)))
	e.sweepMu.Lock()
	e.sweepTimer = e.clk.AfterFunc(e.sweepInterval(), e.sweepTick)
	e.sweepMu.Unlock()
	return e, nil
}

// sweepInterval is how often queued notifications past their expiry are
// dropped for devices that stay away: a quarter of the queue TTL, between
// 1 s and 1 min.
func (e *Engine) sweepInterval() time.Duration {
	return min(max(e.cfg.QueueTTL/4, time.Second), time.Minute)
}

func (e *Engine) sweepTick() {
	e.sweepMu.Lock()
	defer e.sweepMu.Unlock()
	if e.sweepStopped {
		return
	}
	e.sweep(e.clk.Now())
	e.sweepTimer = e.clk.AfterFunc(e.sweepInterval(), e.sweepTick)
}

// sweep drops the queued notifications past their expiry of every device.
// Dispatch expires a connected device's queue as it goes; without the
// sweep, a device that never comes back would keep its expired
// notifications in the store, the queue depth and the channel's QueueFull
// count forever.
func (e *Engine) sweep(now time.Time) {
	e.mu.RLock()
	devs := make([]*deviceState, 0, len(e.devices))
	for _, d := range e.devices {
		devs = append(devs, d)
	}
	e.mu.RUnlock()
	for _, d := range devs {
		d.mu.Lock()
		if len(d.queue) > 0 {
			e.expire(d, now)
		}
		d.mu.Unlock()
	}
}

// SetDeviceTokens makes new devices get signed identity tokens and checks
// the signature at every hello. Call it before serving.
func (e *Engine) SetDeviceTokens(t DeviceTokens) { e.tokens = t }

// Drain makes the engine refuse new pushes (503) and connections.
func (e *Engine) Drain() { e.state.Store(1) }

func (e *Engine) draining() bool { return e.state.Load() != 0 }

// status reports the device's connection status. d.mu must be held.
func (e *Engine) status(d *deviceState, now time.Time) string {
	if d.conn != nil {
		return ConnConnected
	}
	off := now.Sub(d.offlineSince)
	switch {
	case off < e.cfg.TempDisconnected:
		return ConnTempDisconnected
	case off < e.cfg.InactiveAfter:
		return ConnDisconnected
	}
	return ConnInactive
}

// Push accepts, suppresses or refuses a notification, as MPNS did.
func (e *Engine) Push(r *PushRequest) PushResult {
	if e.draining() {
		return PushResult{HTTPStatus: http.StatusServiceUnavailable, Reason: "the server is shutting down; retry with backoff"}
	}
	// Overload: every admitted push holds its body in memory until its store
	// write is durable; past the bound, refuse at once rather than queue
	// without limit.
	if n := e.pending.Add(1); e.cfg.MaxPendingPushes > 0 && n > int64(e.cfg.MaxPendingPushes) {
		e.pending.Add(-1)
		e.met.overload.Inc()
		return PushResult{HTTPStatus: http.StatusServiceUnavailable,
			Reason: fmt.Sprintf("the server is overloaded (%d notifications waiting to be stored); retry with backoff", e.cfg.MaxPendingPushes)}
	}
	e.met.pending.Inc()
	defer func() { e.pending.Add(-1); e.met.pending.Dec() }()
	e.mu.RLock()
	cs := e.channels[r.Token]
	e.mu.RUnlock()
	if cs == nil {
		return PushResult{HTTPStatus: http.StatusNotFound, Notification: StatusDropped, Subscription: SubExpired,
			Reason: "no such channel: it was closed or never existed; stop sending to this URI"}
	}
	d := cs.dev
	d.mu.Lock()
	// The accept time is read under the device's lock, as the sequence
	// number is: a device's notifications are accepted, numbered and
	// delivered in one order, so accepted_at never goes backwards between
	// two deliveries to a channel (fleets count that as out of order).
	now := e.clk.Now()
	if cs.closed {
		d.mu.Unlock()
		return PushResult{HTTPStatus: http.StatusNotFound, Notification: StatusDropped, Subscription: SubExpired,
			Reason: "the channel was closed; stop sending to this URI"}
	}
	conn := e.status(d, now)
	res := PushResult{HTTPStatus: http.StatusOK, Subscription: SubActive, Connection: conn}
	if conn == ConnInactive {
		d.mu.Unlock()
		return PushResult{HTTPStatus: http.StatusPreconditionFailed, Notification: StatusDropped, Connection: ConnInactive,
			Reason: fmt.Sprintf("the device has been offline since %s; retry at most once an hour", d.offlineSince.UTC().Format(time.RFC3339))}
	}
	switch {
	case r.Service == "" && cs.rec.Service != "":
		d.mu.Unlock()
		return PushResult{HTTPStatus: http.StatusUnauthorized,
			Reason: fmt.Sprintf("this channel was opened for service %q and accepts only that service's authenticated notifications", cs.rec.Service)}
	case r.Service != "" && r.Service != cs.rec.Service:
		// A service's credentials never reach another service's channels,
		// nor channels opened without a service.
		d.mu.Unlock()
		return PushResult{HTTPStatus: http.StatusForbidden,
			Reason: fmt.Sprintf("authenticated as service %q, but this channel belongs to another service", r.Service)}
	}
	if r.Service == "" && e.cfg.DailyQuota > 0 {
		day := now.UTC().Unix() / 86400
		if cs.quotaDay != day {
			cs.quotaDay, cs.quotaCount = day, 0
		}
		if cs.quotaCount >= e.cfg.DailyQuota {
			d.mu.Unlock()
			return PushResult{HTTPStatus: http.StatusNotAcceptable, Notification: StatusDropped, Subscription: SubActive,
				Reason: fmt.Sprintf("unauthenticated senders may push %d notifications per channel per day; retry in an hour or authenticate", e.cfg.DailyQuota)}
		}
		cs.quotaCount++
	}
	if why := suppressed(cs, d.rec.Power, r.Kind); why != "" {
		d.mu.Unlock()
		res.Notification, res.Reason = StatusSuppress, why
		e.met.pushes.WithLabelValues(r.Kind.String(), StatusSuppress).Inc()
		return res
	}
	e.expire(d, now)
	var replaced *store.Notification
	if r.Kind == payload.KindTile {
		for _, q := range d.queue {
			if q.Channel == cs.rec.Token && q.Kind == "tile" && q.TileID == r.TileID && !d.inflight[q.Seq] {
				replaced = q
				break
			}
		}
	}
	if replaced == nil && cs.queued >= e.cfg.QueueLimit {
		d.mu.Unlock()
		res.Notification = StatusQueueFull
		res.Reason = fmt.Sprintf("the channel has %d notifications queued, the limit; retry later with exponential backoff", cs.queued)
		e.met.pushes.WithLabelValues(r.Kind.String(), StatusQueueFull).Inc()
		return res
	}
	n := &store.Notification{
		Seq: e.seq.Add(1), DeviceID: d.rec.ID, Channel: cs.rec.Token, App: cs.rec.App,
		Kind: r.Kind.String(), Class: r.Class, MessageID: r.MessageID, TileID: r.TileID,
		Payload: r.Body, AcceptedAt: now, DeliverAt: now, ExpiresAt: now.Add(e.cfg.QueueTTL),
	}
	if w := e.cfg.BatchWindow(r.Class); w > 0 {
		n.DeliverAt = now.Truncate(w).Add(w)
	}
	var replaceSeq uint64
	if replaced != nil {
		replaceSeq = replaced.Seq
		d.drop(replaced.Seq)
	}
	// Submit the write before the notification can reach the device, so
	// that the device's ack (a later write) is applied after it. Deliver
	// while the write is in flight; answer once it is durable.
	done := e.st.Enqueue(n, replaceSeq)
	d.insert(n)
	cs.queued++
	e.dispatch(d, now)
	d.mu.Unlock()

	if err := <-done; err != nil {
		e.log.Error("persist notification", "channel", cs.rec.Token, "err", err)
		d.mu.Lock()
		if !d.inflight[n.Seq] {
			d.drop(n.Seq)
		}
		d.mu.Unlock()
		return PushResult{HTTPStatus: http.StatusServiceUnavailable, Reason: "the server could not store the notification; retry with backoff"}
	}
	if replaced != nil {
		e.met.queueDepth.Dec()
	}
	e.met.queueDepth.Inc()
	e.met.pushes.WithLabelValues(r.Kind.String(), StatusReceived).Inc()
	res.Notification = StatusReceived
	return res
}

// suppressed says why a notification is dropped on arrival, or "".
func suppressed(cs *channelState, power string, k payload.Kind) string {
	switch power {
	case wire.PowerCriticallyLow:
		return "the device's battery is critically low: no notifications are delivered"
	case wire.PowerLow:
		if k != payload.KindRaw {
			return "the device is saving power: only raw notifications are delivered"
		}
	}
	switch {
	case k == payload.KindToast && !cs.rec.Toast:
		return "the channel is not bound to toast notifications (the user may have turned them off)"
	case k == payload.KindTile && !cs.rec.Tile:
		return "the channel is not bound to tile notifications"
	}
	return ""
}

// insert adds n to the queue keeping Seq order. d.mu must be held.
func (d *deviceState) insert(n *store.Notification) {
	i, _ := slices.BinarySearchFunc(d.queue, n.Seq, func(q *store.Notification, s uint64) int {
		switch {
		case q.Seq < s:
			return -1
		case q.Seq > s:
			return 1
		}
		return 0
	})
	d.queue = slices.Insert(d.queue, i, n)
}

// drop removes seq from the queue (and from in-flight) and from its
// channel's count, and returns it; nil if it was not queued.
func (d *deviceState) drop(seq uint64) *store.Notification {
	i := slices.IndexFunc(d.queue, func(q *store.Notification) bool { return q.Seq == seq })
	if i < 0 {
		return nil
	}
	q := d.queue[i]
	d.queue = slices.Delete(d.queue, i, i+1)
	delete(d.inflight, seq)
	d.uncount(q)
	return q
}

// uncount takes q off its channel's queued count.
func (d *deviceState) uncount(q *store.Notification) {
	if cs := d.channels[q.App]; cs != nil && cs.rec.Token == q.Channel {
		cs.queued--
	}
}

// expire drops queued notifications past their expiry. d.mu must be held.
func (e *Engine) expire(d *deviceState, now time.Time) {
	var gone []uint64
	d.queue = slices.DeleteFunc(d.queue, func(q *store.Notification) bool {
		if d.inflight[q.Seq] || now.Before(q.ExpiresAt) {
			return false
		}
		gone = append(gone, q.Seq)
		d.uncount(q)
		return true
	})
	if len(gone) > 0 {
		e.met.expired.Add(float64(len(gone)))
		e.met.queueDepth.Sub(float64(len(gone)))
		e.st.RemoveLater(gone)
	}
}

// dispatch sends what is due to the connected device and arms a timer for
// what is due later. d.mu must be held.
func (e *Engine) dispatch(d *deviceState, now time.Time) {
	if d.conn == nil {
		return
	}
	e.expire(d, now)
	var next time.Time
	for _, q := range d.queue {
		if d.inflight[q.Seq] {
			continue
		}
		if q.DeliverAt.After(now) {
			if next.IsZero() || q.DeliverAt.Before(next) {
				next = q.DeliverAt
			}
			continue
		}
		if len(d.inflight) >= e.cfg.InFlight {
			break
		}
		d.inflight[q.Seq] = true
		d.conn.notify(&wire.Frame{
			Type: wire.TypeNotify, NID: q.ID(), App: q.App, Channel: q.Channel,
			Kind: q.Kind, Class: q.Class, MessageID: q.MessageID, Payload: q.Payload,
			AcceptedAt: q.AcceptedAt.UnixNano(),
		})
	}
	if next.IsZero() || (d.timer != nil && !d.timerAt.After(next)) {
		return
	}
	if d.timer != nil {
		d.timer.Stop()
	}
	d.timerAt = next
	d.timer = e.clk.AfterFunc(next.Sub(now), func() {
		d.mu.Lock()
		defer d.mu.Unlock()
		d.timer, d.timerAt = nil, time.Time{}
		e.dispatch(d, e.clk.Now())
	})
}

// Errors the gateway maps to wire error codes.
var (
	errUnauthorized = errors.New("unknown device or wrong device token")
	errNotFound     = errors.New("no channel for this app")
	errDraining     = errors.New("the server is shutting down")
)

type channelError struct {
	code string
	msg  string
}

func (e *channelError) Error() string { return e.msg }

// Authenticate checks a device's credentials, or creates a device when id
// is empty. It returns the device id and, for a new device, its token.
func (e *Engine) Authenticate(id, token string) (devID, newToken string, err error) {
	if e.draining() {
		return "", "", errDraining
	}
	if id == "" {
		now := e.clk.Now()
		id, newToken = randomID(16), randomToken(32)
		if e.tokens != nil {
			if newToken, err = e.tokens.IssueDeviceToken(id, now); err != nil {
				return "", "", err
			}
		}
		h := sha256.Sum256([]byte(newToken))
		d := &deviceState{
			rec:      store.Device{ID: id, TokenHash: h[:], CreatedAt: now, LastSeen: now, Power: wire.PowerNormal},
			channels: map[string]*channelState{}, inflight: map[uint64]bool{}, offlineSince: now,
		}
		if err := e.st.PutDevice(d.rec); err != nil {
			return "", "", err
		}
		e.mu.Lock()
		e.devices[id] = d
		e.mu.Unlock()
		return id, newToken, nil
	}
	d := e.device(id)
	h := sha256.Sum256([]byte(token))
	if d == nil || subtle.ConstantTimeCompare(h[:], d.rec.TokenHash) != 1 {
		return "", "", errUnauthorized
	}
	// The stored hash binds the token to this device (and lets one device be
	// revoked); the signature proves the server issued it.
	if e.tokens != nil {
		if err := e.tokens.VerifyDeviceToken(token, id); err != nil {
			return "", "", fmt.Errorf("%w: %w", errUnauthorized, err)
		}
	}
	return id, "", nil
}

// Attach makes conn the device's connection, replacing an older one, and
// sends it what is queued.
func (e *Engine) Attach(devID string, conn deviceConn) {
	d := e.device(devID)
	if d == nil {
		return
	}
	now := e.clk.Now()
	d.mu.Lock()
	if old := d.conn; old != nil {
		old.kick(wire.CloseReplaced, "replaced by a newer connection of the same device")
	} else {
		e.met.connections.Inc()
	}
	d.conn = conn
	clear(d.inflight)
	d.rec.LastSeen = now
	rec := d.rec
	e.dispatch(d, now)
	d.mu.Unlock()
	e.persistDevice(rec)
}

// persistDevice writes a device record; a failure is logged, not returned:
// the record only carries LastSeen and Power, which the next write repairs.
func (e *Engine) persistDevice(rec store.Device) {
	if err := e.st.PutDevice(rec); err != nil {
		e.log.Warn("persist device", "device", rec.ID, "err", err)
	}
}

// Disconnect detaches conn from its device, if it is still attached.
func (e *Engine) Disconnect(id string, conn deviceConn) {
	d := e.device(id)
	if d == nil {
		return
	}
	d.mu.Lock()
	if d.conn != conn {
		d.mu.Unlock()
		return
	}
	now := e.clk.Now()
	d.conn = nil
	clear(d.inflight)
	if d.timer != nil {
		d.timer.Stop()
		d.timer, d.timerAt = nil, time.Time{}
	}
	d.offlineSince = now
	d.rec.LastSeen = now
	rec := d.rec
	d.mu.Unlock()
	e.met.connections.Dec()
	e.persistDevice(rec)
}

func (e *Engine) device(id string) *deviceState {
	e.mu.RLock()
	defer e.mu.RUnlock()
	return e.devices[id]
}

// Open opens the app's channel or returns the one it has.
func (e *Engine) Open(devID, app, name, service string) (store.Channel, error) {
	d := e.device(devID)
	if d == nil {
		return store.Channel{}, errUnauthorized
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if cs := d.channels[app]; cs != nil {
		if cs.rec.Name != name {
			return store.Channel{}, &channelError{wire.CodeChannelExists,
				fmt.Sprintf("app %s already has channel %q: one channel per app; close it first", app, cs.rec.Name)}
		}
		return e.current(cs.rec), nil
	}
	if len(d.channels) >= e.cfg.MaxChannels {
		return store.Channel{}, &channelError{wire.CodeChannelQuota,
			fmt.Sprintf("the device already has %d channels, the most a device may have", len(d.channels))}
	}
	tok := randomToken(20) // 160 random bits
	c := store.Channel{Token: tok, DeviceID: devID, App: app, Name: name, Service: service,
		URI: e.channelURI(tok), CreatedAt: e.clk.Now()}
	if err := e.st.PutChannel(c); err != nil {
		return store.Channel{}, err
	}
	cs := &channelState{rec: c, dev: d}
	d.channels[app] = cs
	e.mu.Lock()
	e.channels[tok] = cs
	n := len(e.channels)
	e.mu.Unlock()
	e.met.channels.Set(float64(n))
	return c, nil
}

func (e *Engine) channelURI(token string) string {
	return e.cfg.origin() + PushPath + token
}

// Bind binds or unbinds the app's channel to toast or tile.
func (e *Engine) Bind(devID, app, target string, on bool, domains []string) (store.Channel, error) {
	d := e.device(devID)
	if d == nil {
		return store.Channel{}, errUnauthorized
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	cs := d.channels[app]
	if cs == nil {
		return store.Channel{}, errNotFound
	}
	c := cs.rec
	switch target {
	case wire.BindToast:
		c.Toast = on
	case wire.BindTile:
		c.Tile = on
		c.Domains = nil
		if on {
			c.Domains = slices.Clone(domains)
		}
	}
	if err := e.st.PutChannel(c); err != nil {
		return store.Channel{}, err
	}
	cs.rec = c
	return e.current(c), nil
}

// current returns c with its Channel URI under the server's present
// origin: when the server moves (another port, another --public-url),
// devices learn the new URI the next time they open their channels, and
// apps hand it off again, as Channel URIs changed from time to time on MPNS.
func (e *Engine) current(c store.Channel) store.Channel {
	c.URI = e.channelURI(c.Token)
	return c
}

// CloseChannel closes the app's channel and drops what was queued for it.
func (e *Engine) CloseChannel(devID, app string) error {
	d := e.device(devID)
	if d == nil {
		return errUnauthorized
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	cs := d.channels[app]
	if cs == nil {
		return errNotFound
	}
	var seqs []uint64
	for _, q := range d.queue {
		if q.Channel == cs.rec.Token {
			seqs = append(seqs, q.Seq)
		}
	}
	if err := e.st.DeleteChannel(cs.rec.Token, seqs); err != nil {
		return err
	}
	for _, s := range seqs {
		d.drop(s)
	}
	e.met.queueDepth.Sub(float64(len(seqs)))
	cs.closed = true
	delete(d.channels, app)
	e.mu.Lock()
	delete(e.channels, cs.rec.Token)
	n := len(e.channels)
	e.mu.Unlock()
	e.met.channels.Set(float64(n))
	return nil
}

// SetPower records the device's power level.
func (e *Engine) SetPower(devID, level string) error {
	d := e.device(devID)
	if d == nil {
		return errUnauthorized
	}
	d.mu.Lock()
	d.rec.Power = level
	rec := d.rec
	d.mu.Unlock()
	return e.st.PutDevice(rec)
}

// Ack removes acknowledged notifications and sends what is next. Ids that
// are unknown (already acked, expired, from an old connection) are ignored.
func (e *Engine) Ack(devID string, conn deviceConn, nids []string) {
	d := e.device(devID)
	if d == nil {
		return
	}
	now := e.clk.Now()
	d.mu.Lock()
	if d.conn != conn {
		d.mu.Unlock()
		return
	}
	var done []uint64
	for _, id := range nids {
		seq, err := store.ParseID(id)
		if err != nil || !d.inflight[seq] {
			continue
		}
		q := d.drop(seq)
		e.met.latency.Observe(now.Sub(q.AcceptedAt).Seconds())
		e.met.delivered.WithLabelValues(q.Kind).Inc()
		done = append(done, seq)
	}
	if len(done) == 0 {
		d.mu.Unlock()
		return
	}
	e.met.queueDepth.Sub(float64(len(done)))
	e.dispatch(d, now)
	d.mu.Unlock()
	// An acknowledged notification is gone from the queue at once; its
	// record rides on the next commit. A crash before that delivers it
	// again, and the device drops it as already seen.
	e.st.RemoveLater(done)
}

// Kick closes every device connection, for shutdown.
func (e *Engine) Kick(code int, reason string) {
	e.mu.RLock()
	var conns []deviceConn
	for _, d := range e.devices {
		d.mu.Lock()
		if d.conn != nil {
			conns = append(conns, d.conn)
		}
		d.mu.Unlock()
	}
	e.mu.RUnlock()
	for _, c := range conns {
		c.kick(code, reason)
	}
}

// Stop cancels timers. The store is closed by the owner.
func (e *Engine) Stop() {
	e.sweepMu.Lock()
	e.sweepStopped = true
	if e.sweepTimer != nil {
		e.sweepTimer.Stop()
	}
	e.sweepMu.Unlock()
	e.mu.RLock()
	defer e.mu.RUnlock()
	for _, d := range e.devices {
		d.mu.Lock()
		if d.timer != nil {
			d.timer.Stop()
			d.timer = nil
		}
		d.mu.Unlock()
	}
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("crypto/rand: %v", err)) // never happens on supported platforms
	}
	return b
}

func randomID(n int) string    { return hex.EncodeToString(randomBytes(n)) }
func randomToken(n int) string { return base64.RawURLEncoding.EncodeToString(randomBytes(n)) }
