package server

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/openmpns/openmpns/server/backend"
	"github.com/openmpns/openmpns/shared/clock"
	"github.com/openmpns/openmpns/shared/payload"
	"github.com/openmpns/openmpns/shared/sender"
	"github.com/openmpns/openmpns/shared/wire"
)

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
	// ByCertificate: the sender presented a TLS client certificate (mutual
	// TLS, MPNS's way), with or without a bearer token.
	ByCertificate bool
}

// PushResult is a push answered with 200: Received, QueueFull or
// Suppressed, with the MPNS headers. Refusals are *PushError.
type PushResult struct {
	Notification string
	Subscription string
	Connection   string
	// Reason explains anything but Received.
	Reason string
}

// DeviceTokens issues and checks the signed identity tokens of devices.
type DeviceTokens interface {
	IssueDeviceToken(deviceID string, now time.Time) (string, error)
	VerifyDeviceToken(token, deviceID string) error
}

// Conn is a device's connection as the engine sees it.
type Conn interface {
	// Notify queues a notification frame; it never blocks, because the
	// engine never has more than Config.InFlight notifications outstanding
	// on one connection.
	Notify(f *wire.Frame)
	// Kick closes the connection with a close code and reason.
	Kick(code int, reason string)
}

// Engine routes notifications from senders to devices. Its state lives in
// a backend.Backend; the engine itself keeps only the devices connected to
// this node: their connection, the queue as this node has sent it, and
// what is in flight.
//
// Locking: Engine.mu guards conns; each deviceState.mu guards that
// connection's state. Engine.mu is taken before a device's mu, never after,
// and neither is held while calling the backend, except that a device's
// pushLock is held across its Append and Hand, so that this node hands a
// device's notifications over in Seq order.
type Engine struct {
	cfg   *Config
	be    backend.Backend
	clk   clock.Clock
	log   *slog.Logger
	met   *metrics
	state atomic.Int32 // 0 running, 1 draining
	// pending counts pushes between admission and their store write's
	// outcome; Config.MaxPendingPushes bounds it.
	pending atomic.Int64
	// tokens signs device identities; nil falls back to random secrets.
	tokens DeviceTokens
	// origin is the scheme and host of Channel URIs, known once serving.
	origin atomic.Pointer[string]

	pushLocks [256]sync.Mutex
	seed      maphash.Seed
	// background counts the resyncs and hands retried after a failure;
	// Stop waits for them, and Drain closes quit, which ends them.
	background sync.WaitGroup
	quit       chan struct{}
	drainOnce  sync.Once
	// acked signals a push waiting for its notification's write that the
	// device has acknowledged it: the sender hears Received at once,
	// whichever comes first.
	acked ackWaits

	mu    sync.RWMutex
	conns map[string]*deviceState // devices connected to this node

	// use is the service's size for the server-wide caps (capacity.go).
	use usage
	// reaper deletes devices Inactive past InactiveGrace (reap.go).
	reaper reaper

	// The expiry sweep (see sweepTick); sweepMu keeps a sweep from
	// running once Stop has returned.
	sweepMu      sync.Mutex
	sweepTimer   clock.Timer
	sweepStopped bool
}

// deviceState is a device connected to this node.
type deviceState struct {
	id    string
	claim uint64

	mu   sync.Mutex
	conn Conn
	gone bool // the connection ended or was replaced
	// loading: Attach has not merged the queue yet; what is handed over
	// meanwhile is kept (not sent), with the Seqs it replaced, so that the
	// device gets everything once, in Seq order.
	loading  bool
	replaced map[uint64]bool
	// queue holds the device's unacknowledged notifications known to this
	// node, in Seq order; inflight marks those sent on the connection
	// (nil until the first is sent).
	queue    []*backend.Notification
	inflight map[uint64]bool
	// wake is the timer set for the next batched notification due; nil
	// when none waits (an idle device's state is smaller without it).
	wake *wakeTimer
}

// wakeTimer is a device's timer for its next notification due.
type wakeTimer struct {
	t  clock.Timer
	at time.Time
}

var _ backend.Inbox = (*Engine)(nil)

// NewEngine starts an engine on be. Call Stop to end its timers.
func NewEngine(cfg *Config, be backend.Backend, met *metrics) *Engine {
	e := &Engine{
		cfg: cfg, be: be, clk: cfg.Clock, log: cfg.Logger, met: met,
		seed: maphash.MakeSeed(), conns: make(map[string]*deviceState), quit: make(chan struct{}),
	}
	e.use = usage{be: be, clk: e.clk}
	be.Listen(e)
	e.startReaper()
	e.sweepMu.Lock()
	e.sweepTimer = e.clk.AfterFunc(e.sweepInterval(), e.sweepTick)
	e.sweepMu.Unlock()
	return e
}

// setOrigin sets the scheme and host of Channel URIs.
func (e *Engine) setOrigin(o string) { e.origin.Store(&o) }

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

// sweep drops the queued notifications past their expiry: without it, a
// device that never comes back would keep them in the store, the queue
// depth and its channels' QueueFull counts forever.
func (e *Engine) sweep(now time.Time) {
	n, err := e.be.Sweep(context.Background(), now)
	if err != nil {
		e.log.Warn("expiry sweep", "err", err)
	}
	if n > 0 {
		e.met.expired.Add(float64(n))
	}
}

// SetDeviceTokens makes new devices get signed identity tokens and checks
// the signature at every hello. Call it before serving.
func (e *Engine) SetDeviceTokens(t DeviceTokens) { e.tokens = t }

// Drain makes the engine refuse new pushes (503) and connections, and ends
// its background retries.
func (e *Engine) Drain() {
	e.state.Store(1)
	e.drainOnce.Do(func() { close(e.quit) })
}

func (e *Engine) draining() bool { return e.state.Load() != 0 }

// connStatus is the device connection status for a push, from the
// device's presence (ok false: none recorded, its LastSeen tells).
func (e *Engine) connStatus(dev backend.Device, p backend.Presence, ok bool, now time.Time) (status string, since time.Time) {
	if ok && p.Connected {
		return ConnConnected, p.Since
	}
	since = dev.LastSeen
	if ok {
		since = p.Since
	}
	switch off := now.Sub(since); {
	case off < e.cfg.TempDisconnected:
		return ConnTempDisconnected, since
	case off < e.cfg.InactiveAfter:
		return ConnDisconnected, since
	}
	return ConnInactive, since
}

// status reads the device's presence for a push's answer.
func (e *Engine) status(ctx context.Context, dev backend.Device) (string, time.Time, error) {
	p, ok, err := e.be.Presence(ctx, dev.ID)
	if err != nil {
		return "", time.Time{}, unavailable(err)
	}
	st, since := e.connStatus(dev, p, ok, e.clk.Now())
	return st, since, nil
}

// Push accepts, suppresses or refuses a notification, as MPNS did. A
// refusal is a *PushError.
func (e *Engine) Push(ctx context.Context, r *PushRequest) (PushResult, error) {
	if err := e.admit(); err != nil {
		return PushResult{}, err
	}
	defer e.unadmit()
	t, err := e.check(ctx, r)
	if err != nil {
		return PushResult{}, err
	}
	if why := suppressed(t.dev.Power, t.ch, r.Kind); why != "" {
		st, _, err := e.status(ctx, t.dev)
		if err != nil {
			return PushResult{}, err
		}
		e.met.pushes.WithLabelValues(r.Kind.String(), StatusSuppress).Inc()
		return PushResult{Notification: StatusSuppress, Subscription: SubActive, Connection: st, Reason: why}, nil
	}
	if why := e.roomForBytes(ctx, len(r.Body)); why != "" {
		st, _, err := e.status(ctx, t.dev)
		if err != nil {
			return PushResult{}, err
		}
		e.met.pushes.WithLabelValues(r.Kind.String(), StatusQueueFull).Inc()
		return PushResult{Notification: StatusQueueFull, Subscription: SubActive, Connection: st, Reason: why}, nil
	}
	full, st, err := e.commit(ctx, r, t)
	if err == nil && full == "" {
		e.use.add(0, 0, int64(len(r.Body)))
	}
	switch {
	case err != nil:
		return PushResult{}, err
	case full != "":
		e.met.pushes.WithLabelValues(r.Kind.String(), StatusQueueFull).Inc()
		return PushResult{Notification: StatusQueueFull, Subscription: SubActive, Connection: st, Reason: full}, nil
	}
	e.met.receivedCounter(r.Kind).Inc()
	return PushResult{Notification: StatusReceived, Subscription: SubActive, Connection: st}, nil
}

// admit refuses a push while draining or overloaded: every admitted push
// holds its body until its write is durable, so past the bound pushes are
// refused at once rather than queued without limit.
// An admitted push calls unadmit once it is answered (a release function
// returned per push was a closure allocated per push).
func (e *Engine) admit() error {
	if e.draining() {
		return errShuttingDown
	}
	if n := e.pending.Add(1); e.cfg.MaxPendingPushes > 0 && n > int64(e.cfg.MaxPendingPushes) {
		e.pending.Add(-1)
		e.met.overload.Inc()
		return overloaded(e.cfg.MaxPendingPushes)
	}
	e.met.pending.Inc()
	return nil
}

// unadmit ends an admitted push.
func (e *Engine) unadmit() {
	e.pending.Add(-1)
	e.met.pending.Dec()
}

type target struct {
	ch  backend.Channel
	dev backend.Device
}

// check finds the push's channel and device and applies every refusal
// that comes before the queue: the sender first (a stranger learns nothing
// of the device), then the device's status (Inactive), then the daily
// quota.
func (e *Engine) check(ctx context.Context, r *PushRequest) (target, error) {
	ch, dev, err := e.be.Target(ctx, r.Token)
	if errors.Is(err, backend.ErrNotFound) {
		return target{}, errNoChannel
	} else if err != nil {
		return target{}, unavailable(err)
	}
	switch {
	case r.Service == "" && ch.Service != "":
		return target{}, unauthenticated()
	case r.Service != "" && r.Service != ch.Service:
		// A service's credentials never reach another service's channels,
		// nor channels opened without a service. A certificate for
		// another service name is MPNS's 401; a token for another app,
		// WNS's 403 (reference §4).
		if r.ByCertificate {
			return target{}, wrongCertificate(r.Service, ch.Service == "")
		}
		return target{}, wrongService(r.Service, ch.Service == "")
	}
	now := e.clk.Now()
	// A device seen within InactiveAfter cannot be Inactive: its presence
	// is read once, after the notification is queued (commit). Only a
	// device not seen for that long is looked up now: it may be connected
	// since (LastSeen is written when a connection ends).
	if now.Sub(dev.LastSeen) >= e.cfg.InactiveAfter {
		st, since, err := e.status(ctx, dev)
		if err != nil {
			return target{}, err
		}
		if st == ConnInactive {
			return target{}, inactive(since)
		}
	}
	if r.Service == "" && e.cfg.DailyQuota > 0 {
		day := now.UTC().Unix() / 86400
		key := "quota." + ch.Token + "." + strconv.FormatInt(day, 10)
		ok, err := e.be.Take(ctx, key, int64(e.cfg.DailyQuota), 48*time.Hour)
		if err != nil {
			return target{}, unavailable(err)
		}
		if !ok {
			return target{}, overQuota(e.cfg.DailyQuota)
		}
	}
	return target{ch, dev}, nil
}

// commit queues the notification, hands it to the node holding its device
// and waits until it is durable. It returns a QueueFull reason or a
// refusal, and the device connection status to answer with.
func (e *Engine) commit(ctx context.Context, r *PushRequest, t target) (queueFull, status string, err error) {
	ch := t.ch
	lock := &e.pushLocks[maphash.String(e.seed, ch.DeviceID)%uint64(len(e.pushLocks))]
	lock.Lock()
	// The accept time is read under the device's push lock, as its Seq is
	// given: a device's notifications are accepted, numbered and handed
	// over in one order, so accepted_at never goes backwards between two
	// deliveries to a channel (fleets count that as out of order).
	now := e.clk.Now()
	n := &backend.Notification{
		DeviceID: ch.DeviceID, Channel: ch.Token, App: ch.App,
		Kind: r.Kind.String(), Class: r.Class, MessageID: r.MessageID, TileID: r.TileID,
		Payload: r.Body, AcceptedAt: now, DeliverAt: now, ExpiresAt: now.Add(e.cfg.QueueTTL),
	}
	if w := e.cfg.BatchWindow(r.Class); w > 0 {
		n.DeliverAt = now.Truncate(w).Add(w)
	}
	a, err := e.be.Append(ctx, n, e.cfg.QueueLimit)
	if err != nil {
		lock.Unlock()
		if errors.Is(err, backend.ErrNotFound) {
			return "", "", errNoChannel // closed meanwhile
		}
		if errors.Is(err, backend.ErrQueueFull) {
			st, _, serr := e.status(ctx, t.dev)
			if serr != nil {
				return "", "", serr
			}
			return fmt.Sprintf("the channel has %d notifications queued, the limit; retry later with exponential backoff", e.cfg.QueueLimit), st, nil
		}
		return "", "", unavailable(err) // logged by the push handler
	}
	// Handed over while the write is in flight: the device may have it
	// before it is durable; the sender hears Received once it is durable
	// or once the device has acknowledged it, whichever comes first (an
	// acknowledged notification needs no record: the backend may then
	// skip its write). The presence is read after the Append, so a device
	// that moved meanwhile gets it either by this hand or from the queue
	// when it attached.
	ackc := e.acked.add(n.Seq)
	defer e.acked.done(n.Seq, ackc)
	p, ok, herr := e.be.Hand(ctx, n, a.Replaced)
	lock.Unlock()
	if herr != nil {
		// The notification is queued, but the node holding the device
		// (which may stay connected) was not told: hand it over again in
		// the background until that works.
		e.log.Debug("hand notification over", "device", ch.DeviceID, "err", herr)
		e.background.Add(1)
		go func() {
			defer e.background.Done()
			e.handAgain(n, a.Replaced)
		}()
	}
	status, _ = e.connStatus(t.dev, p, ok && herr == nil, e.clk.Now())
	if herr != nil {
		status = ConnTempDisconnected // unknown: it was queued, and goes out when it can
	}
	select {
	case err := <-a.Durable:
		if err != nil {
			e.log.Error("persist notification", "channel", ch.Token, "err", err)
			e.forget(ch.DeviceID, n.Seq)
			if a.Replaced != 0 {
				// The tile update it replaced is queued again: send it
				// (in the background: the sender's 503 does not wait).
				e.background.Add(1)
				dev := ch.DeviceID // not ch: captured, it would live on the heap for every push
				go func() {
					defer e.background.Done()
					e.resync(context.Background(), dev)
				}()
			}
			return "", "", errNotStored
		}
		// An acknowledgement that comes before the commit also settles
		// the write (no write is needed): both may be ready, and select
		// picks either.
		select {
		case <-ackc:
			e.met.ackedFirst.Inc()
		default:
		}
	case <-ackc:
		e.met.ackedFirst.Inc()
	}
	return "", status, nil
}

// handAgain retries a hand that failed, with backoff, for up to a minute
// (or until the engine drains): a lost hand to a device that stays
// connected would leave the notification in the queue until it
// reconnects.
func (e *Engine) handAgain(n *backend.Notification, replaced uint64) {
	deadline := time.Now().Add(time.Minute)
	for wait := 100 * time.Millisecond; ; wait = min(2*wait, 5*time.Second) {
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-e.quit:
			t.Stop()
			return
		}
		_, _, err := e.be.Hand(context.Background(), n, replaced)
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			e.log.Warn("hand notification over: giving up; the device gets it when it reconnects", "device", n.DeviceID, "err", err)
			return
		}
	}
}

// forget drops a notification whose write failed from the local view,
// unless it is already on its way.
func (e *Engine) forget(devID string, seq uint64) {
	d := e.conn(devID)
	if d == nil {
		return
	}
	d.mu.Lock()
	if !d.inflight[seq] {
		d.drop(seq)
	}
	d.mu.Unlock()
}

// suppressed says why a notification is dropped on arrival, or "".
func suppressed(power string, ch backend.Channel, k payload.Kind) string {
	switch power {
	case wire.PowerCriticallyLow:
		return "the device's battery is critically low: no notifications are delivered"
	case wire.PowerLow:
		if k != payload.KindRaw {
			return "the device is saving power: only raw notifications are delivered"
		}
	}
	switch {
	case k == payload.KindToast && !ch.Toast:
		return "the channel is not bound to toast notifications (the user may have turned them off)"
	case k == payload.KindTile && !ch.Tile:
		return "the channel is not bound to tile notifications"
	}
	return ""
}

// Deliver implements backend.Inbox: a notification just queued for a
// device connected here.
func (e *Engine) Deliver(devID string, n *backend.Notification, replaced uint64) {
	d := e.conn(devID)
	if d == nil {
		return // it went away; it gets n from the queue when it is back
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.gone {
		return
	}
	if replaced != 0 && !d.inflight[replaced] {
		d.drop(replaced)
		if d.loading {
			if d.replaced == nil {
				d.replaced = make(map[uint64]bool)
			}
			d.replaced[replaced] = true
		}
	}
	d.insert(n)
	if !d.loading {
		e.dispatch(d, e.clk.Now())
	}
}

// TakenOver implements backend.Inbox: the device connected to another
// node, so a connection here with an older claim is closed.
func (e *Engine) TakenOver(devID string, claim uint64) {
	d := e.conn(devID)
	if d == nil || d.claim >= claim {
		return
	}
	d.mu.Lock()
	c := d.conn
	// A hand that raced the takeover (a node whose view of presence was a
	// moment old) may have reached this connection rather than the new
	// one: what this connection still holds is handed over again. The
	// device drops ids it has seen.
	again := slices.Clone(d.queue)
	d.mu.Unlock()
	c.Kick(wire.CloseReplaced, "replaced by a newer connection of the same device")
	if len(again) == 0 {
		return
	}
	e.background.Add(1)
	go func() {
		defer e.background.Done()
		for _, n := range again {
			if _, _, err := e.be.Hand(context.Background(), n, 0); err != nil {
				e.log.Debug("hand over again after a takeover", "device", devID, "err", err)
			}
		}
	}()
}

// insert adds n to the queue keeping Seq order; a Seq already there is
// not added twice. d.mu must be held.
func (d *deviceState) insert(n *backend.Notification) {
	d.queue, _ = backend.InsertBySeq(d.queue, n)
}

// drop removes seq from the queue and from in-flight, and returns it; nil
// if it was not queued. d.mu must be held.
func (d *deviceState) drop(seq uint64) *backend.Notification {
	delete(d.inflight, seq)
	i := slices.IndexFunc(d.queue, func(q *backend.Notification) bool { return q.Seq == seq })
	if i < 0 {
		return nil
	}
	q := d.queue[i]
	d.queue = slices.Delete(d.queue, i, i+1)
	return q
}

// expire drops the notifications past their expiry from the local view
// (the backend drops them from the queue). d.mu must be held.
func (e *Engine) expire(d *deviceState, now time.Time) {
	d.queue = slices.DeleteFunc(d.queue, func(q *backend.Notification) bool {
		return !d.inflight[q.Seq] && !now.Before(q.ExpiresAt)
	})
}

// dispatch sends what is due to the device and arms a timer for what is
// due later. d.mu must be held.
func (e *Engine) dispatch(d *deviceState, now time.Time) {
	if d.gone {
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
		if d.inflight == nil {
			d.inflight = make(map[uint64]bool)
		}
		d.inflight[q.Seq] = true
		d.conn.Notify(&wire.Frame{
			Type: wire.TypeNotify, NID: q.ID(), App: q.App, Channel: q.Channel,
			Kind: q.Kind, Class: q.Class, MessageID: q.MessageID, Payload: q.Payload,
			AcceptedAt: q.AcceptedAt.UnixNano(),
		})
	}
	if next.IsZero() || (d.wake != nil && !d.wake.at.After(next)) {
		return
	}
	if d.wake != nil {
		d.wake.t.Stop()
	}
	w := &wakeTimer{at: next}
	w.t = e.clk.AfterFunc(next.Sub(now), func() {
		d.mu.Lock()
		defer d.mu.Unlock()
		if d.wake == w {
			d.wake = nil
		}
		e.dispatch(d, e.clk.Now())
	})
	d.wake = w
}

// stop ends the state's timer and marks it gone. d.mu must be held.
func (d *deviceState) stop() {
	d.gone = true
	if d.wake != nil {
		d.wake.t.Stop()
		d.wake = nil
	}
}

// Authenticate checks a device's credentials, or creates a device when id
// is empty. It returns the device id and, for a new device, its token.
func (e *Engine) Authenticate(id, token string) (devID, newToken string, err error) {
	if e.draining() {
		return "", "", errDraining
	}
	ctx := context.Background()
	if id == "" {
		if err := e.roomForDevice(ctx); err != nil {
			return "", "", err
		}
		now := e.clk.Now()
		id, newToken = randomID(16), randomToken(32)
		if e.tokens != nil {
			if newToken, err = e.tokens.IssueDeviceToken(id, now); err != nil {
				return "", "", err
			}
		}
		h := sha256.Sum256([]byte(newToken))
		rec := backend.Device{ID: id, TokenHash: h[:], CreatedAt: now, LastSeen: now, Power: wire.PowerNormal}
		if _, err := e.be.PutDevice(ctx, rec); err != nil {
			return "", "", err
		}
		e.use.add(1, 0, 0)
		return id, newToken, nil
	}
	d, err := e.be.Device(ctx, id)
	if errors.Is(err, backend.ErrNotFound) {
		return "", "", errUnauthorized
	} else if err != nil {
		return "", "", err
	}
	h := sha256.Sum256([]byte(token))
	if subtle.ConstantTimeCompare(h[:], d.TokenHash) != 1 {
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

// Attach makes conn the device's connection here, replacing an older one
// (here, or through the backend on another node), and sends it what is
// queued. claimed (when not nil) is called once the device's claim is
// written, before anything is sent to conn: the gateway welcomes a known
// device there, so a device that hears it and connects again (here or on
// another node) makes a claim newer than this one, and the older
// connection is the one closed. A failed claim returns its error without
// calling it. A device deleted since its hello is closed 4003 here, and
// errDeviceGone returned.
func (e *Engine) Attach(devID string, conn Conn, claimed func()) error {
	ctx := context.Background()
	now := e.clk.Now()
	claim, err := e.be.Claim(ctx, devID, now)
	if err != nil {
		return err
	}
	if claimed != nil {
		// Before conn is registered: nothing can be sent to it yet.
		claimed()
	}
	// The maps are made when first written: an idle device has none.
	d := &deviceState{id: devID, claim: claim, conn: conn, loading: true}
	// Registered before the queue is read: what is handed over meanwhile
	// is not missed; it is held until the queue is merged (loading).
	e.mu.Lock()
	old := e.conns[devID]
	if old != nil && old.claim > claim {
		// A newer connection of this device attached first: this one is
		// the older, and goes.
		e.mu.Unlock()
		conn.Kick(wire.CloseReplaced, "replaced by a newer connection of the same device")
		return nil
	}
	e.conns[devID] = d
	e.mu.Unlock()
	if old != nil {
		old.mu.Lock()
		old.stop()
		oc := old.conn
		old.mu.Unlock()
		oc.Kick(wire.CloseReplaced, "replaced by a newer connection of the same device")
	} else {
		e.met.connections.Inc()
	}
	// The device is seen now: its LastSeen is what a restart, or another
	// node, falls back on when no presence is known.
	if errors.Is(e.touch(ctx, devID, now), backend.ErrNotFound) {
		// Deleted since its hello (the reaper read it offline for good
		// before its claim, or it was revoked): as for a revoked device,
		// its identity is refused, and the runtime registers again.
		conn.Kick(wire.CloseUnauthorized, "device deleted")
		return errDeviceGone
	}
	// Another node may have claimed the device between our claim and our
	// registration; its TakenOver then found nothing to close here.
	if p, ok, err := e.be.Presence(ctx, devID); err == nil && ok && p.Claim > claim {
		conn.Kick(wire.CloseReplaced, "replaced by a newer connection of the same device")
	}
	return e.load(ctx, d)
}

// load merges the device's queue into d and sends what is due; d.loading
// holds back what is handed over until then.
func (e *Engine) load(ctx context.Context, d *deviceState) error {
	queued, err := e.be.Pending(ctx, d.id, e.clk.Now())
	if err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, n := range queued {
		if !d.replaced[n.Seq] {
			d.insert(n)
		}
	}
	d.loading, d.replaced = false, nil
	e.dispatch(d, e.clk.Now())
	return nil
}

// resync merges the device's queue again: a notification may have been
// handed over and lost (the backend's connection broke), or taken out of
// the local view when a write failed. What is in flight or already here
// stays as it is. A read that fails (the backend electing leaders, say) is
// tried again with backoff while the device stays connected here, for up
// to a minute.
func (e *Engine) resync(ctx context.Context, devID string) {
	deadline := time.Now().Add(time.Minute)
	for wait := 100 * time.Millisecond; ; wait = min(2*wait, 5*time.Second) {
		d := e.conn(devID)
		if d == nil || e.draining() {
			return
		}
		queued, err := e.be.Pending(ctx, devID, e.clk.Now())
		if err == nil {
			d.mu.Lock()
			if !d.gone && !d.loading {
				for _, n := range queued {
					d.insert(n)
				}
				e.dispatch(d, e.clk.Now())
			}
			d.mu.Unlock()
			return
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			e.log.Warn("resync device queue: giving up until the device reconnects", "device", devID, "err", err)
			return
		}
		e.log.Debug("resync device queue", "device", devID, "err", err, "retry_in", wait)
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return
		case <-e.quit:
			t.Stop()
			return
		}
	}
}

// Resync implements backend.Inbox: hands may have been lost, so every
// device connected here merges its queue again (in parallel, a few at a
// time).
func (e *Engine) Resync() {
	e.mu.RLock()
	ids := make([]string, 0, len(e.conns))
	for id := range e.conns {
		ids = append(ids, id)
	}
	e.mu.RUnlock()
	sem := make(chan struct{}, 16)
	var wg sync.WaitGroup
	for _, id := range ids {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			e.resync(context.Background(), id)
		}()
	}
	wg.Wait()
}

// touch writes the device's LastSeen; it returns the error of reading or
// writing the device (logged here unless the device is gone).
func (e *Engine) touch(ctx context.Context, devID string, now time.Time) error {
	err := e.updateDevice(ctx, devID, func(d *backend.Device) bool {
		if now.Sub(d.LastSeen) < lastSeenResolution && !now.Before(d.LastSeen) {
			return false // seen a moment ago (a new device, a quick reconnect): no write
		}
		d.LastSeen = now
		return true
	})
	if err != nil && !errors.Is(err, backend.ErrNotFound) {
		e.log.Warn("record device seen", "device", devID, "err", err)
	}
	return err
}

// lastSeenResolution: a device's LastSeen is not written again at attach
// when it is more recent than this (it serves Inactive, counted in days;
// on a cluster each write is replicated, and reconnect storms write many).
const lastSeenResolution = time.Minute

// updateDevice applies change to the device's record (unless change says
// there is nothing to write), again on a newer revision when another write
// came first.
func (e *Engine) updateDevice(ctx context.Context, devID string, change func(*backend.Device) bool) error {
	for {
		d, err := e.be.Device(ctx, devID)
		if err != nil {
			return err
		}
		if !change(&d) {
			return nil
		}
		if _, err = e.be.PutDevice(ctx, d); !errors.Is(err, backend.ErrConflict) {
			return err
		}
	}
}

// Disconnect detaches conn from its device, if it is still attached.
func (e *Engine) Disconnect(devID string, conn Conn) {
	e.mu.Lock()
	d := e.conns[devID]
	if d == nil || d.conn != conn {
		e.mu.Unlock()
		return
	}
	delete(e.conns, devID)
	e.mu.Unlock()
	d.mu.Lock()
	d.stop()
	d.mu.Unlock()
	e.met.connections.Dec()
	if err := e.be.Release(context.Background(), devID, d.claim, e.clk.Now()); err != nil {
		e.log.Warn("record device offline", "device", devID, "err", err)
	}
}

func (e *Engine) conn(id string) *deviceState {
	e.mu.RLock()
	defer e.mu.RUnlock()
	return e.conns[id]
}

// channelOf returns the device's channel for app, or errNotFound.
func (e *Engine) channelOf(ctx context.Context, devID, app string) (backend.Channel, []backend.Channel, error) {
	chans, err := e.be.Channels(ctx, devID)
	if err != nil {
		return backend.Channel{}, nil, err
	}
	for _, c := range chans {
		if c.App == app {
			return c, chans, nil
		}
	}
	return backend.Channel{}, chans, errNotFound
}

// Open opens the app's channel or returns the one it has. admit (if not
// nil) is asked before a new channel is created; its error refuses it.
func (e *Engine) Open(devID, app, name, service string, admit func() error) (backend.Channel, error) {
	ctx := context.Background()
	c, chans, err := e.channelOf(ctx, devID, app)
	switch {
	case err == nil && c.Name != name:
		return backend.Channel{}, &channelError{wire.CodeChannelExists,
			fmt.Sprintf("app %s already has channel %q: one channel per app; close it first", app, c.Name)}
	case err == nil:
		return e.current(c), nil
	case !errors.Is(err, errNotFound):
		return backend.Channel{}, err
	case len(chans) >= e.cfg.MaxChannels:
		return backend.Channel{}, &channelError{wire.CodeChannelQuota,
			fmt.Sprintf("the device already has %d channels, the most a device may have", len(chans))}
	}
	if err := e.roomForChannel(ctx); err != nil {
		return backend.Channel{}, err
	}
	if admit != nil {
		if err := admit(); err != nil {
			return backend.Channel{}, err
		}
	}
	tok := randomToken(20) // 160 random bits
	c = backend.Channel{Token: tok, DeviceID: devID, App: app, Name: name, Service: service,
		URI: e.channelURI(tok), CreatedAt: e.clk.Now()}
	c, err = e.be.PutChannel(ctx, c)
	if errors.Is(err, backend.ErrExists) {
		return e.Open(devID, app, name, service, nil) // opened meanwhile
	}
	if err == nil {
		e.use.add(0, 1, 0)
	}
	return c, err
}

func (e *Engine) channelURI(token string) string {
	if o := e.origin.Load(); o != nil {
		return *o + PushPath + token
	}
	return PushPath + token
}

// Bind binds or unbinds the app's channel to toast or tile.
func (e *Engine) Bind(devID, app, target string, on bool, domains []string) (backend.Channel, error) {
	ctx := context.Background()
	for {
		c, _, err := e.channelOf(ctx, devID, app)
		if err != nil {
			return backend.Channel{}, err
		}
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
		c, err = e.be.PutChannel(ctx, c)
		if errors.Is(err, backend.ErrConflict) {
			continue
		}
		if err != nil {
			return backend.Channel{}, err
		}
		return e.current(c), nil
	}
}

// current returns c with its Channel URI under the server's present
// origin: when the server moves (another port, another --public-url),
// devices learn the new URI the next time they open their channels, and
// apps hand it off again, as Channel URIs changed from time to time on MPNS.
func (e *Engine) current(c backend.Channel) backend.Channel {
	c.URI = e.channelURI(c.Token)
	return c
}

// CloseChannel closes the app's channel and drops what was queued for it.
func (e *Engine) CloseChannel(devID, app string) error {
	ctx := context.Background()
	for {
		c, _, err := e.channelOf(ctx, devID, app)
		if err != nil {
			return err
		}
		err = e.be.DeleteChannel(ctx, c)
		if errors.Is(err, backend.ErrConflict) {
			continue
		}
		if err != nil {
			return err
		}
		if d := e.conn(devID); d != nil {
			d.mu.Lock()
			d.queue = slices.DeleteFunc(d.queue, func(q *backend.Notification) bool {
				if q.Channel != c.Token {
					return false
				}
				delete(d.inflight, q.Seq)
				return true
			})
			e.dispatch(d, e.clk.Now())
			d.mu.Unlock()
		}
		return nil
	}
}

// SetPower records the device's power level.
func (e *Engine) SetPower(devID, level string) error {
	err := e.updateDevice(context.Background(), devID, func(d *backend.Device) bool {
		if d.Power == level {
			return false
		}
		d.Power = level
		return true
	})
	if errors.Is(err, backend.ErrNotFound) {
		return errUnauthorized
	}
	return err
}

// Ack removes acknowledged notifications and sends what is next. Ids that
// are unknown (already acked, expired, from an old connection) are ignored.
func (e *Engine) Ack(devID string, conn Conn, nids []string) {
	d := e.conn(devID)
	if d == nil {
		return
	}
	now := e.clk.Now()
	d.mu.Lock()
	if d.conn != conn || d.gone {
		d.mu.Unlock()
		return
	}
	var done []uint64
	for _, id := range nids {
		seq, err := backend.ParseID(id)
		if err != nil || !d.inflight[seq] {
			continue
		}
		q := d.drop(seq)
		if q == nil {
			continue
		}
		e.met.latency.Observe(now.Sub(q.AcceptedAt).Seconds())
		e.met.deliveredCounter(q.Kind).Inc()
		done = append(done, seq)
		e.acked.signal(seq)
	}
	if len(done) == 0 {
		d.mu.Unlock()
		return
	}
	e.dispatch(d, now)
	d.mu.Unlock()
	// An acknowledged notification is gone from the local view at once;
	// the backend may remove it lazily. A crash before that delivers it
	// again, and the device drops it as already seen.
	if err := e.be.Remove(context.Background(), devID, done); err != nil {
		e.log.Warn("remove acknowledged notifications", "device", devID, "err", err)
	}
}

// removeWaiter is a backend that tells whether its Remove may wait: the
// embedded store's never does (the removal rides on its next commit).
type removeWaiter interface{ RemoveWaits() bool }

// AckWaits implements DeviceRouter: Ack waits for nothing but the
// backend's Remove, which may wait unless the backend says it never does.
func (e *Engine) AckWaits() bool {
	rw, ok := e.be.(removeWaiter)
	return !ok || rw.RemoveWaits()
}

// Stop cancels timers and waits for background resyncs (which end once
// their device is gone). The backend is closed by its owner.
func (e *Engine) Stop() {
	e.drainOnce.Do(func() { close(e.quit) })
	defer e.background.Wait()
	e.stopReaper()
	e.sweepMu.Lock()
	e.sweepStopped = true
	if e.sweepTimer != nil {
		e.sweepTimer.Stop()
	}
	e.sweepMu.Unlock()
	e.mu.RLock()
	defer e.mu.RUnlock()
	for _, d := range e.conns {
		d.mu.Lock()
		if d.wake != nil {
			d.wake.t.Stop()
			d.wake = nil
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
