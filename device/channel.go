package device

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/openmpns/openmpns/shared/wire"
)

// Channel is an app's push channel, shaped like HttpNotificationChannel.
// Bindings made while offline are sent when the device next connects.
// Channels of one app and name (from Find, or NewChannel and Open) are
// handles on the one channel the device keeps for the app, as
// HttpNotificationChannel objects are: a bind or a getter through any of
// them acts on that channel.
type Channel struct {
	d      *Device
	rec    channelRecord // guarded by d.mu
	open   bool          // guarded by d.mu
	events ChannelEvents // guarded by d.mu
}

// SetEvents sets the channel's event handlers (HttpNotificationChannel's
// events), replacing any set before. Set them before Open to see the first
// ChannelURIUpdated. A channel that Open finds already open on the device
// (the same app and name, say from the device's saved state) keeps the
// events it had unless this channel has some.
func (ch *Channel) SetEvents(ev ChannelEvents) {
	ch.d.mu.Lock()
	defer ch.d.mu.Unlock()
	ch.events = ev
}

// Find returns the app's channel if it has one open (HttpNotificationChannel.Find).
func (d *Device) Find(app, name string) *Channel {
	d.mu.Lock()
	defer d.mu.Unlock()
	ch := d.channels[app]
	if ch == nil || !ch.open || ch.rec.Name != name {
		return nil
	}
	return ch
}

// NewChannel returns an unopened channel for app, like
// new HttpNotificationChannel(name, serviceName); service may be "".
func (d *Device) NewChannel(app, name, service string) *Channel {
	return &Channel{d: d, rec: channelRecord{App: app, Name: name, Service: service}}
}

// Channels returns the open channels.
func (d *Device) Channels() []*Channel {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]*Channel, 0, len(d.channels))
	for _, ch := range d.channels {
		if ch.open {
			out = append(out, ch)
		}
	}
	slices.SortFunc(out, func(a, b *Channel) int {
		if a.rec.App < b.rec.App {
			return -1
		}
		if a.rec.App > b.rec.App {
			return 1
		}
		return 0
	})
	return out
}

// App returns the channel's app id.
func (ch *Channel) App() string { return ch.rec.App }

// Name returns the channel name.
func (ch *Channel) Name() string { return ch.rec.Name }

// Service returns the service name the channel was opened with.
func (ch *Channel) Service() string { return ch.rec.Service }

// current returns the Channel whose record ch stands for, nil when ch
// stands for no open channel; d.mu is held.
//
// On the phone an HttpNotificationChannel is a handle on the one channel
// the push client keeps for an app (mpns-protocol.md section 6: one
// channel per app, which Find hands out again), and an open under the name
// of the app's channel finds that channel, with its URI and bindings
// (docs/protocol.md 4.1). So a second object opened under the same app
// and name is the same channel, and the first object still is too: it
// goes on acting on the device's current record of the channel (the one
// record per app that reconnects restore), for its binds as for its
// getters, as Close already did. Marking the first object closed instead
// would tell an app that holds on to it that an open channel is closed.
// A Channel whose channel was closed (through any of its objects),
// dropped, or replaced by a channel of another name stands for none: it
// reports no URI and no bindings, and its binds and Close return
// ErrNotOpen.
func (ch *Channel) current() *Channel {
	live := ch.d.channels[ch.rec.App]
	if ch.open && live != nil && live.open && live.rec.Name == ch.rec.Name {
		return live
	}
	return nil
}

// view returns the record ch's getters report; d.mu is held.
func (ch *Channel) view() channelRecord {
	if cur := ch.current(); cur != nil {
		return cur.rec
	}
	return channelRecord{App: ch.rec.App, Name: ch.rec.Name, Service: ch.rec.Service}
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
// of an open one adopts that channel, and both objects stand for it. When the server refuses the channel
// (ErrChannelExists, ErrChannelQuota), Open returns the error and
// ErrorOccurred fires with ChannelOpenFailed.
func (ch *Channel) Open(ctx context.Context) error {
	d := ch.d
	d.mu.Lock()
	if cur := d.channels[ch.rec.App]; cur != nil && cur != ch && cur.open {
		if cur.rec.Name != ch.rec.Name {
			d.mu.Unlock()
			return fmt.Errorf("%w: %s has %q", ErrChannelExists, ch.rec.App, cur.rec.Name)
		}
		ch.rec, ch.open = cur.rec, true
		if ch.events.none() {
			ch.events = cur.events
		}
		d.channels[ch.rec.App] = ch
	}
	d.mu.Unlock()
	c, err := d.waitConn(ctx)
	if err != nil {
		return err
	}
	if err := ch.sync(ctx, c); err != nil {
		d.raiseFor(ch, &ChannelError{Type: ChannelOpenFailed, App: ch.rec.App, Message: err.Error()})
		return err
	}
	return d.save()
}

// errChannelRefused: the server refused to open a channel as the device
// has it, its app id, name or service (bad_frame). A channel saved so (by
// an older version, or in a state file edited since) would be refused at
// every connect: connect drops it, as a channel refused with
// ErrChannelExists or ErrChannelQuota.
var errChannelRefused = errors.New("device: the server refuses the channel's app id, name or service")

// sync opens the channel on c and re-applies its bindings. A binding the
// server refuses (bad_frame) is that channel's problem, not the device's:
// the channel takes the binding the server has, ErrorOccurred tells the
// app, and sync goes on.
func (ch *Channel) sync(ctx context.Context, c *conn) error {
	d := ch.d
	d.mu.Lock()
	rec := ch.rec
	d.mu.Unlock()
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
			d.raiseFor(ch, &ChannelError{Type: ChannelOpenFailed, App: rec.App,
				Message: fmt.Sprintf("the server refused the saved %s binding (%s); the channel keeps the one the server has (bound: %v): bind it again", b.target, se.msg, b.have)})
		}
	}
	d.mu.Lock()
	for _, target := range refused {
		// Unless the app bound again meanwhile.
		if on, domains := bindingOf(rec, target); hasBinding(ch.rec, target, on, domains) {
			on, domains := bindingOf(channelRecord{Toast: r.Toast, Tile: r.Tile, Domains: slices.Clone(r.Domains)}, target)
			setBinding(&ch.rec, target, on, domains)
		}
	}
	changed := ch.rec.URI != r.URI
	ch.rec.URI = r.URI
	ch.open = true
	d.channels[rec.App] = ch
	d.mu.Unlock()
	if len(refused) > 0 {
		if err := d.save(); err != nil {
			d.log.Warn("save device state", "err", err)
		}
	}
	if changed {
		d.uriUpdated(ch, rec.App, rec.Name, r.URI)
	}
	return nil
}

// uriUpdated raises ChannelURIUpdated, device-level and on ch.
func (d *Device) uriUpdated(ch *Channel, app, name, uri string) {
	h := d.cfg.Handlers.ChannelURIUpdated
	d.events.push(func() {
		if h != nil {
			h(app, name, uri)
		}
		if f := ch.eventSet().ChannelURIUpdated; f != nil {
			f(uri)
		}
	})
}

// none reports whether no event has a handler.
func (ev ChannelEvents) none() bool {
	return ev.ChannelURIUpdated == nil && ev.HTTPNotificationReceived == nil && ev.ShellToastNotificationReceived == nil &&
		ev.ErrorOccurred == nil && ev.ConnectionStatusChanged == nil
}

// eventSet returns the channel's events.
func (ch *Channel) eventSet() ChannelEvents {
	ch.d.mu.Lock()
	defer ch.d.mu.Unlock()
	return ch.events
}

// uriChanged handles an unasked opened frame: the server moved a channel.
func (d *Device) uriChanged(f *wire.Frame) {
	d.mu.Lock()
	ch := d.channels[f.App]
	if ch == nil || ch.rec.URI == f.URI {
		d.mu.Unlock()
		return
	}
	ch.rec.URI = f.URI
	name := ch.rec.Name
	d.mu.Unlock()
	d.uriUpdated(ch, f.App, name, f.URI)
}

// Close closes the channel: the server forgets it and later pushes to its
// URI get 404 Expired. Closing a channel that is not open (never opened,
// or closed already) returns ErrNotOpen and changes nothing, on the device
// or on the server.
func (ch *Channel) Close(ctx context.Context) error {
	d := ch.d
	d.mu.Lock()
	app := ch.rec.App
	// Another Channel of the same app and name that Open adopted stands for
	// the same channel; a channel of another name, or none, is not this one.
	live := ch.current()
	d.mu.Unlock()
	if live == nil {
		return fmt.Errorf("%w: %s/%s", ErrNotOpen, app, ch.rec.Name)
	}
	c, err := d.waitConn(ctx)
	if err != nil {
		return err
	}
	if _, err := c.request(ctx, &wire.Frame{Type: wire.TypeClose, App: app}); err != nil {
		var se *serverError
		if !errors.As(err, &se) || se.code != wire.CodeNotFound {
			return fmt.Errorf("device: close channel of %s: %w", app, err)
		}
	}
	d.mu.Lock()
	ch.open, live.open = false, false
	ch.rec.URI, live.rec.URI = "", ""
	if d.channels[app] == live {
		delete(d.channels, app)
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
// record is the device's current one of the channel ch stands for (see
// current), also when ch is an object another Channel's Open adopted.
func (ch *Channel) bind(ctx context.Context, target string, on bool, domains []string) error {
	d := ch.d
	if !on || target != wire.BindTile {
		domains = nil
	}
	if err := wire.CheckDomains(domains); err != nil {
		return fmt.Errorf("device: bind tile of %s: %w", ch.rec.App, err)
	}
	domains = slices.Clone(domains)
	d.mu.Lock()
	cur := ch.current()
	if cur == nil {
		d.mu.Unlock()
		return fmt.Errorf("%w: %s/%s", ErrNotOpen, ch.rec.App, ch.rec.Name)
	}
	app, before := cur.rec.App, cur.rec
	setBinding(&cur.rec, target, on, domains)
	d.mu.Unlock()
	if err := d.save(); err != nil {
		return err
	}
	c := d.currentConn()
	if c == nil {
		return nil // applied when the device reconnects
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
