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

// ChannelURI returns the Channel URI, "" until opened.
func (ch *Channel) ChannelURI() string {
	ch.d.mu.Lock()
	defer ch.d.mu.Unlock()
	return ch.rec.URI
}

// IsShellToastBound reports the toast binding.
func (ch *Channel) IsShellToastBound() bool {
	ch.d.mu.Lock()
	defer ch.d.mu.Unlock()
	return ch.rec.Toast
}

// IsShellTileBound reports the tile binding.
func (ch *Channel) IsShellTileBound() bool {
	ch.d.mu.Lock()
	defer ch.d.mu.Unlock()
	return ch.rec.Tile
}

// Domains returns the allowed remote image domains of the tile binding.
func (ch *Channel) Domains() []string {
	ch.d.mu.Lock()
	defer ch.d.mu.Unlock()
	return slices.Clone(ch.rec.Domains)
}

// ConnectionStatus is the device's push connection status.
func (ch *Channel) ConnectionStatus() ConnectionStatus { return ch.d.ConnectionStatus() }

// Open registers the channel with the server and waits for its Channel URI
// (waiting for the connection if the device is offline, until ctx ends).
// ChannelURIUpdated fires when the URI is new or changed. Opening a channel
// that is open returns its URI. When the server refuses the channel
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

// sync opens the channel on c and re-applies its bindings.
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
			}
		}
		return fmt.Errorf("device: open channel %s/%s: %w", rec.App, rec.Name, err)
	}
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
		if b.target == wire.BindTile {
			f.Domains = rec.Domains
		}
		if _, err := c.request(ctx, f); err != nil {
			return fmt.Errorf("device: restore %s binding of %s: %w", b.target, rec.App, err)
		}
	}
	d.mu.Lock()
	changed := ch.rec.URI != r.URI
	ch.rec.URI = r.URI
	ch.open = true
	d.channels[rec.App] = ch
	d.mu.Unlock()
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
	live := d.channels[app]
	open := ch.open && live != nil && live.open && live.rec.Name == ch.rec.Name
	d.mu.Unlock()
	if !open {
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

func (ch *Channel) bind(ctx context.Context, target string, on bool, domains []string) error {
	d := ch.d
	d.mu.Lock()
	if !ch.open {
		d.mu.Unlock()
		return fmt.Errorf("%w: %s/%s", ErrNotOpen, ch.rec.App, ch.rec.Name)
	}
	if target == wire.BindToast {
		ch.rec.Toast = on
	} else {
		ch.rec.Tile = on
		ch.rec.Domains = slices.Clone(domains)
	}
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
	if _, err := c.request(ctx, &wire.Frame{Type: typ, App: ch.rec.App, Target: target, Domains: domains}); err != nil {
		return fmt.Errorf("device: %s %s: %w", typ, target, err)
	}
	return nil
}
