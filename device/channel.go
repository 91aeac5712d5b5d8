package device

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"weak"

	"github.com/openmpns/openmpns/shared/wire"
)

// Channel is an app's push channel, shaped like HttpNotificationChannel.
// Bindings made while offline are sent when the device next connects.
//
// Channel objects of one app and name (from Find, or NewChannel and Open)
// are handles on the one channel the device keeps for the app, as
// HttpNotificationChannel objects are: a bind or a getter through any of
// them acts on that channel, and each raises the channel's events with
// the handlers set on it (see SetEvents), until the channel is closed
// (through any of them) or the object is disposed (Dispose), or the
// program no longer references it (the device holds its objects weakly).
type Channel struct {
	d       *Device
	app     string
	name    string
	service string
	// st is the channel the object stands for once opened or found (nil
	// before, and once disposed); it stands for none once st is no longer
	// the device's channel of the app (closed, dropped, or replaced by a
	// channel of another name). Guarded by d.mu.
	st       *channelState
	events   ChannelEvents // guarded by d.mu
	disposed bool          // guarded by d.mu
}

// channelState is the device's one record of an app's open channel: what
// the state file keeps, and every connect restores. The Channel objects
// that stand for it share it.
type channelState struct {
	rec channelRecord // guarded by d.mu
	// objs are the objects that stand for the channel and are not
	// disposed, in the order they were opened or found: each raises the
	// channel's events. They are weak pointers: the device does not keep
	// an object the program dropped, so that it raises no more events
	// and is freed (an app that calls Find at each launch and drops what
	// it got would otherwise pile up objects, each running its stale
	// handlers); one whose object was collected is taken out at the
	// next event raised on the channel or object attached to it
	// (liveLocked). Nothing the device keeps for the channel references
	// an object strongly, so a handler that captures its own object does
	// not keep it either: the object's handlers are in the object
	// (Channel.events), which only the object and the program reference.
	// Guarded by d.mu.
	objs []weak.Pointer[Channel]
}

// liveLocked takes the objects that were collected out of st.objs and
// returns the weak pointers that are left (st.objs itself: not to be kept
// past d.mu); d.mu is held.
func (st *channelState) liveLocked() []weak.Pointer[Channel] {
	st.objs = slices.DeleteFunc(st.objs, func(w weak.Pointer[Channel]) bool { return w.Value() == nil })
	return st.objs
}

// SetEvents sets the object's event handlers (HttpNotificationChannel's
// events), replacing any set on it before. Set them before Open to see the
// first ChannelURIUpdated.
//
// Every object that stands for the app's channel raises its events, each
// with its own handlers, in the order the objects were opened (or found),
// after the device-level Handlers: an app that opens a second object for
// its channel (NewChannel and Open, where Find would have returned the
// first), or holds the object an earlier Find returned, hears the events
// on each object whose handlers it set, as it hears them on
// HttpNotificationChannel objects. An object stops raising them when its
// channel is closed (through any object), dropped, or replaced by a
// channel of another name, and when it is disposed (Dispose): an app that
// no longer wants an object's events disposes it, or sets none.
//
// The device holds the objects weakly: an object the program no longer
// references raises no events once the garbage collector has found it
// unreachable (until then it may still raise them: Dispose stops them at
// once), even if its handlers reference it; it is freed, and Find returns
// another object for the channel. So a program keeps the object whose
// events it wants (in a variable it uses later, or a field), as an app
// keeps its HttpNotificationChannel; one that only waits for the events
// keeps it with runtime.KeepAlive. The device-level Handlers need no
// object.
func (ch *Channel) SetEvents(ev ChannelEvents) {
	ch.d.mu.Lock()
	defer ch.d.mu.Unlock()
	ch.events = ev
}

// Dispose releases the object (HttpNotificationChannel.Dispose): it raises
// no more events and stands for no channel, as a closed one: it reports no
// URI and no bindings, and its binds, Close and Open return ErrNotOpen (an
// Open waiting for its answer when the object is disposed returns
// ErrNotOpen too, the channel opened). The channel itself stays open on
// the device, and its other objects with it; Find returns another object
// for it. Disposing again does nothing. An object the program drops
// without disposing it stops raising events too, but only once the
// garbage collector has found it unreachable (see SetEvents).
//
// Events are raised on the device's event goroutine: Dispose called from
// one of its handlers takes effect at once (no handler of the object runs
// after it); called from another goroutine, a handler of the object that
// the event goroutine was starting at that moment may still run, once.
func (ch *Channel) Dispose() {
	d := ch.d
	d.mu.Lock()
	defer d.mu.Unlock()
	ch.detachLocked()
	ch.disposed = true
}

// attachLocked makes ch an object of st; d.mu is held.
func (ch *Channel) attachLocked(st *channelState) {
	if ch.st == st {
		return
	}
	ch.detachLocked()
	ch.st = st
	st.objs = append(st.liveLocked(), weak.Make(ch))
}

// detachLocked makes ch stand for no channel; d.mu is held.
func (ch *Channel) detachLocked() {
	if ch.st != nil {
		w := weak.Make(ch)
		ch.st.objs = slices.DeleteFunc(ch.st.objs, func(o weak.Pointer[Channel]) bool { return o == w })
		ch.st = nil
	}
}

// handleLocked returns the object Find hands out for st: the one last
// opened or found that the program still references, or a new one when it
// has none (a channel restored from the device's saved state, or whose
// objects were all disposed or collected); d.mu is held.
func (st *channelState) handleLocked(d *Device) *Channel {
	for _, w := range slices.Backward(st.liveLocked()) {
		if ch := w.Value(); ch != nil {
			return ch
		}
	}
	ch := &Channel{d: d, app: st.rec.App, name: st.rec.Name, service: st.rec.Service}
	ch.attachLocked(st)
	return ch
}

// Find returns the app's channel if it has one open under name
// (HttpNotificationChannel.Find): the object last opened or found for it,
// or a new object for a channel that has none (one the device restored
// from its saved state, or whose objects the program dropped: see
// SetEvents).
func (d *Device) Find(app, name string) *Channel {
	d.mu.Lock()
	defer d.mu.Unlock()
	st := d.channels[app]
	if st == nil || st.rec.Name != name {
		return nil
	}
	return st.handleLocked(d)
}

// NewChannel returns an unopened channel for app, like
// new HttpNotificationChannel(name, serviceName); service may be "".
func (d *Device) NewChannel(app, name, service string) *Channel {
	return &Channel{d: d, app: app, name: name, service: service}
}

// Channels returns the open channels, one object each (as Find), by app.
func (d *Device) Channels() []*Channel {
	d.mu.Lock()
	defer d.mu.Unlock()
	sts := d.openChannelsLocked()
	out := make([]*Channel, len(sts))
	for i, st := range sts {
		out[i] = st.handleLocked(d)
	}
	return out
}

// App returns the channel's app id.
func (ch *Channel) App() string { return ch.app }

// Name returns the channel name.
func (ch *Channel) Name() string { return ch.name }

// Service returns the service name the channel was opened with: that of
// the device's channel the object stands for (an object that Open made
// stand for an open channel reports that channel's), or the one it was
// made with.
func (ch *Channel) Service() string {
	ch.d.mu.Lock()
	defer ch.d.mu.Unlock()
	return ch.view().Service
}

// current returns the channel ch stands for, nil when it stands for none;
// d.mu is held.
//
// On the phone an HttpNotificationChannel is a handle on the one channel
// the push client keeps for an app (mpns-protocol.md section 6: one
// channel per app, which Find hands out again), and an open under the name
// of the app's channel finds that channel, with its URI and bindings
// (docs/protocol.md 4.1). So a second object opened under the same app
// and name is the same channel, and the first object still is too: both
// act on the device's record of the channel (the one record per app that
// reconnects restore), for their binds as for their getters and events.
// Marking the first object closed instead would tell an app that holds on
// to it that an open channel is closed. A Channel whose channel was closed
// (through any of its objects), dropped, or replaced by a channel of
// another name, and a disposed one, stands for none: it reports no URI and
// no bindings, and its binds and Close return ErrNotOpen.
func (ch *Channel) current() *channelState {
	if ch.st != nil && ch.d.channels[ch.app] == ch.st {
		return ch.st
	}
	return nil
}

// view returns the record ch's getters report; d.mu is held.
func (ch *Channel) view() channelRecord {
	if cur := ch.current(); cur != nil {
		return cur.rec
	}
	return channelRecord{App: ch.app, Name: ch.name, Service: ch.service}
}

// ChannelURI returns the Channel URI, "" until opened and once closed.
func (ch *Channel) ChannelURI() string {
	ch.d.mu.Lock()
	defer ch.d.mu.Unlock()
	return ch.view().URI
}

// IsShellToastBound reports the toast binding.
func (ch *Channel) IsShellToastBound() bool {
	ch.d.mu.Lock()
	defer ch.d.mu.Unlock()
	return ch.view().Toast
}

// IsShellTileBound reports the tile binding.
func (ch *Channel) IsShellTileBound() bool {
	ch.d.mu.Lock()
	defer ch.d.mu.Unlock()
	return ch.view().Tile
}

// Domains returns the allowed remote image domains of the tile binding.
func (ch *Channel) Domains() []string {
	ch.d.mu.Lock()
	defer ch.d.mu.Unlock()
	return slices.Clone(ch.view().Domains)
}

// ConnectionStatus is the device's push connection status.
func (ch *Channel) ConnectionStatus() ConnectionStatus { return ch.d.ConnectionStatus() }

// Open registers the channel with the server and waits for its Channel URI
// (waiting for the connection if the device is offline, until ctx ends).
// ChannelURIUpdated fires when the URI is new or changed. Opening a channel
// that is open returns its URI; opening a new Channel of the app and name
// of an open one makes it stand for that channel too, and both objects
// raise its events (see SetEvents). When the server refuses the channel
// (ErrChannelExists, ErrChannelQuota), Open returns the error and
// ErrorOccurred fires with ChannelOpenFailed, on this object and on those
// of the app's channel. A disposed object returns ErrNotOpen.
func (ch *Channel) Open(ctx context.Context) error {
	d := ch.d
	d.mu.Lock()
	if ch.disposed {
		d.mu.Unlock()
		return fmt.Errorf("%w: %s/%s: disposed", ErrNotOpen, ch.app, ch.name)
	}
	rec := channelRecord{App: ch.app, Name: ch.name, Service: ch.service}
	st := d.channels[ch.app]
	if st != nil {
		if st.rec.Name != ch.name {
			d.mu.Unlock()
			return fmt.Errorf("%w: %s has %q", ErrChannelExists, ch.app, st.rec.Name)
		}
		ch.attachLocked(st)
		rec = st.rec
	}
	d.mu.Unlock()
	c, err := d.waitConn(ctx)
	if err != nil {
		return err
	}
	if err := d.sync(ctx, c, st, rec, ch); err != nil {
		d.raiseFor(st, ch, &ChannelError{Type: ChannelOpenFailed, App: ch.app, Message: err.Error()})
		return err
	}
	if err := d.save(); err != nil {
		return err
	}
	d.mu.Lock()
	disposed := ch.disposed
	d.mu.Unlock()
	if disposed {
		return fmt.Errorf("%w: %s/%s: disposed while it opened (the channel is open: Find returns it)", ErrNotOpen, ch.app, ch.name)
	}
	return nil
}

// errChannelRefused: the server refused to open a channel as the device
// has it, its app id, name or service (bad_frame). A channel saved so (by
// an older version, or in a state file edited since) would be refused at
// every connect: connect drops it, as a channel refused with
// ErrChannelExists or ErrChannelQuota.
var errChannelRefused = errors.New("device: the server refuses the channel's app id, name or service")

// sync opens the channel rec on c and re-applies its bindings, and makes
// the device's record of the app's channel what the server answered. st
// is the channel rec is the record of (nil: a channel being opened anew);
// opener is the object being opened (nil: a connect restoring st), which
// then stands for the channel. A binding the server refuses (bad_frame)
// is that channel's problem, not the device's: the channel takes the
// binding the server has, ErrorOccurred tells the app, and sync goes on.
func (d *Device) sync(ctx context.Context, c *conn, st *channelState, rec channelRecord, opener *Channel) error {
	r, err := c.request(ctx, &wire.Frame{Type: wire.TypeOpen, App: rec.App, Channel: rec.Name, Service: rec.Service})
	if err != nil {
		var se *serverError
		if errors.As(err, &se) {
			switch se.code {
			case wire.CodeChannelExists:
				return fmt.Errorf("%w: %s", ErrChannelExists, se.msg)
			case wire.CodeChannelQuota:
				return fmt.Errorf("%w: %s", ErrChannelQuota, se.msg)
			case wire.CodeRateLimited:
				return fmt.Errorf("%w: %s", ErrRateLimited, se.msg)
			case wire.CodeServerFull:
				return fmt.Errorf("%w: %s", ErrServerFull, se.msg)
			case wire.CodeBadFrame:
				return fmt.Errorf("%w: %s", errChannelRefused, se.msg)
			}
		}
		return fmt.Errorf("device: open channel %s/%s: %w", rec.App, rec.Name, err)
	}
	var refused []string // targets whose binding the server refused
	for _, b := range []struct {
		target string
		want   bool
		have   bool
	}{{wire.BindToast, rec.Toast, r.Toast}, {wire.BindTile, rec.Tile, r.Tile}} {
		if b.want == b.have && (b.target != wire.BindTile || slices.Equal(rec.Domains, r.Domains)) {
			continue
		}
		typ := wire.TypeBind
		if !b.want {
			typ = wire.TypeUnbind
		}
		f := &wire.Frame{Type: typ, App: rec.App, Target: b.target}
		if b.target == wire.BindTile && b.want {
			f.Domains = rec.Domains
		}
		if _, err := c.request(ctx, f); err != nil {
			var se *serverError
			if !errors.As(err, &se) || se.code != wire.CodeBadFrame {
				return fmt.Errorf("device: restore %s binding of %s: %w", b.target, rec.App, err)
			}
			refused = append(refused, b.target)
			d.log.Warn("the server refused a saved binding; the channel keeps the server's", "app", rec.App, "target", b.target, "err", err)
			d.raiseFor(st, opener, &ChannelError{Type: ChannelOpenFailed, App: rec.App,
				Message: fmt.Sprintf("the server refused the saved %s binding (%s); the channel keeps the one the server has (bound: %v): bind it again", b.target, se.msg, b.have)})
		}
	}
	d.mu.Lock()
	cur := d.channels[rec.App]
	if st == nil || cur != st {
		if opener == nil {
			// Restoring a channel closed (or dropped) meanwhile: it is
			// not brought back.
			d.mu.Unlock()
			return nil
		}
		// A channel opened anew, or again after it was closed meanwhile
		// through another object: the app's channel is now this one,
		// unless another object opened it under this name meanwhile.
		if cur == nil || cur.rec.Name != rec.Name {
			cur = &channelState{rec: channelRecord{App: rec.App, Name: rec.Name, Service: rec.Service,
				Toast: rec.Toast, Tile: rec.Tile, Domains: slices.Clone(rec.Domains)}}
			d.channels[rec.App] = cur
		}
	}
	for _, target := range refused {
		// Unless the app bound again meanwhile.
		if on, domains := bindingOf(rec, target); hasBinding(cur.rec, target, on, domains) {
			on, domains := bindingOf(channelRecord{Toast: r.Toast, Tile: r.Tile, Domains: slices.Clone(r.Domains)}, target)
			setBinding(&cur.rec, target, on, domains)
		}
	}
	changed := cur.rec.URI != r.URI
	cur.rec.URI = r.URI
	if opener != nil && !opener.disposed {
		// An opener disposed while it waited stands for nothing (Open
		// tells its caller); the channel is open for the other objects
		// and for Find.
		opener.attachLocked(cur)
	}
	d.mu.Unlock()
	if len(refused) > 0 {
		if err := d.save(); err != nil {
			d.log.Warn("save device state", "err", err)
		}
	}
	if changed {
		d.uriUpdated(cur, rec.App, rec.Name, r.URI)
	}
	return nil
}

// uriUpdated raises ChannelURIUpdated, device-level and on st's objects.
func (d *Device) uriUpdated(st *channelState, app, name, uri string) {
	h := d.cfg.Handlers.ChannelURIUpdated
	d.events.push(func() {
		if h != nil {
			h(app, name, uri)
		}
		d.eachObject(st, nil, func(ev ChannelEvents) {
			if ev.ChannelURIUpdated != nil {
				ev.ChannelURIUpdated(uri)
			}
		})
	})
}

// eachObject calls f with the handlers of each object of st (st nil:
// none), in order, and of also when it is not one of them (an object whose
// Open failed before it stood for the channel). Each object's handlers are
// read just before its call, and an object disposed or collected by then
// is skipped (a Dispose from another goroutine between that read and the
// call does not stop the call: see Dispose).
//
// The objects of st are taken as weak pointers, each made strong only to
// read its handlers: raising an event keeps no object alive while a
// handler runs, so one the program dropped, and the collector found
// unreachable meanwhile, is not called. also is held strongly, by the
// event being raised, until it is raised: an object whose Open failed
// hears why, once.
func (d *Device) eachObject(st *channelState, also *Channel, f func(ChannelEvents)) {
	var one [1]weak.Pointer[Channel] // mostly, a channel has one object
	objs := one[:0]
	d.mu.Lock()
	if st != nil {
		objs = append(objs, st.liveLocked()...)
	}
	alsoToo := also != nil && (st == nil || also.st != st)
	d.mu.Unlock()
	for _, w := range objs {
		d.mu.Lock()
		var ev ChannelEvents
		o := w.Value()
		ok := o != nil && !o.disposed && (o.st == st || o == also)
		if ok {
			ev = o.events
		}
		d.mu.Unlock()
		if ok {
			f(ev)
		}
	}
	if alsoToo {
		d.mu.Lock()
		ev, ok := also.events, !also.disposed
		d.mu.Unlock()
		if ok {
			f(ev)
		}
	}
}

// uriChanged handles an unasked opened frame: the server moved a channel.
func (d *Device) uriChanged(f *wire.Frame) {
	d.mu.Lock()
	st := d.channels[f.App]
	if st == nil || st.rec.URI == f.URI {
		d.mu.Unlock()
		return
	}
	st.rec.URI = f.URI
	name := st.rec.Name
	d.mu.Unlock()
	d.uriUpdated(st, f.App, name, f.URI)
}

// Close closes the channel: the server forgets it and later pushes to its
// URI get 404 Expired; every object of the channel stands for none from
// then on. Closing a channel that is not open (never opened, or closed
// already) returns ErrNotOpen and changes nothing, on the device or on
// the server.
func (ch *Channel) Close(ctx context.Context) error {
	d := ch.d
	d.mu.Lock()
	// Another Channel of the same app and name that Open made stand for
	// it stands for the same channel; a channel of another name, or none,
	// is not this one.
	live := ch.current()
	d.mu.Unlock()
	if live == nil {
		return fmt.Errorf("%w: %s/%s", ErrNotOpen, ch.app, ch.name)
	}
	c, err := d.waitConn(ctx)
	if err != nil {
		return err
	}
	if _, err := c.request(ctx, &wire.Frame{Type: wire.TypeClose, App: ch.app}); err != nil {
		var se *serverError
		if !errors.As(err, &se) || se.code != wire.CodeNotFound {
			return fmt.Errorf("device: close channel of %s: %w", ch.app, err)
		}
	}
	d.mu.Lock()
	if d.channels[ch.app] == live {
		delete(d.channels, ch.app)
	}
	d.mu.Unlock()
	return d.save()
}

// BindToShellToast lets the shell show this app's toasts.
func (ch *Channel) BindToShellToast(ctx context.Context) error {
	return ch.bind(ctx, wire.BindToast, true, nil)
}

// UnbindToShellToast stops toasts: the server answers them Suppressed.
func (ch *Channel) UnbindToShellToast(ctx context.Context) error {
	return ch.bind(ctx, wire.BindToast, false, nil)
}

// BindToShellTile lets tile updates reach the app's tiles; remote images are
// allowed only from domains.
func (ch *Channel) BindToShellTile(ctx context.Context, domains ...string) error {
	return ch.bind(ctx, wire.BindTile, true, domains)
}

// UnbindToShellTile stops tile updates.
func (ch *Channel) UnbindToShellTile(ctx context.Context) error {
	return ch.bind(ctx, wire.BindTile, false, nil)
}

// bind binds or unbinds the channel's target. Tile domains are checked
// with the server's rules (wire.CheckDomains) before anything is saved: a
// binding the server refuses must not enter the record, which every
// connect restores. A binding the server refuses all the same (bad_frame:
// a server with stricter rules) is taken out of the record again. The
// record is the device's one of the channel ch stands for (see current),
// shared by all the channel's objects.
func (ch *Channel) bind(ctx context.Context, target string, on bool, domains []string) error {
	d := ch.d
	if !on || target != wire.BindTile {
		domains = nil
	}
	if err := wire.CheckDomains(domains); err != nil {
		return fmt.Errorf("device: bind tile of %s: %w", ch.app, err)
	}
	domains = slices.Clone(domains)
	d.mu.Lock()
	cur := ch.current()
	if cur == nil {
		d.mu.Unlock()
		return fmt.Errorf("%w: %s/%s", ErrNotOpen, ch.app, ch.name)
	}
	app, before := cur.rec.App, cur.rec
	setBinding(&cur.rec, target, on, domains)
	c := d.conn
	if c == nil {
		// Applied by the next connection, or by the one being set up,
		// which may have read the record already (attach).
		d.restoreGen++
	}
	d.mu.Unlock()
	if err := d.save(); err != nil {
		return err
	}
	if c == nil {
		return nil
	}
	typ := wire.TypeBind
	if !on {
		typ = wire.TypeUnbind
	}
	if _, err := c.request(ctx, &wire.Frame{Type: typ, App: app, Target: target, Domains: domains}); err != nil {
		var se *serverError
		if errors.As(err, &se) && se.code == wire.CodeBadFrame {
			d.mu.Lock()
			if hasBinding(cur.rec, target, on, domains) {
				on, domains := bindingOf(before, target)
				setBinding(&cur.rec, target, on, domains)
			}
			d.mu.Unlock()
			if serr := d.save(); serr != nil {
				d.log.Warn("save device state", "err", serr)
			}
		}
		return fmt.Errorf("device: %s %s: %w", typ, target, err)
	}
	return nil
}

// setBinding sets r's binding of target.
func setBinding(r *channelRecord, target string, on bool, domains []string) {
	if target == wire.BindToast {
		r.Toast = on
		return
	}
	r.Tile, r.Domains = on, domains
}

// bindingOf returns r's binding of target: bound or not, and for tile its domains.
func bindingOf(r channelRecord, target string) (bool, []string) {
	if target == wire.BindToast {
		return r.Toast, nil
	}
	return r.Tile, r.Domains
}

// hasBinding reports whether r's binding of target is on with domains.
func hasBinding(r channelRecord, target string, on bool, domains []string) bool {
	have, haveDomains := bindingOf(r, target)
	return have == on && slices.Equal(haveDomains, domains)
}
