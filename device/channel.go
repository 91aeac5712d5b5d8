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
	d    *Device
	rec  channelRecord // guarded by d.mu
	open bool          // guarded by d.mu
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
// that is open returns its URI.
func (ch *Channel) Open(ctx context.Context) error {
	d := ch.d
	d.mu.Lock()
	if cur := d.channels[ch.rec.App]; cur != nil && cur != ch && cur.open {
		if cur.rec.Name != ch.rec.Name {
			d.mu.Unlock()
			return fmt.Errorf("%w: %s has %q", ErrChannelExists, ch.rec.App, cur.rec.Name)
		}
		ch.rec, ch.open = cur.rec, true
		d.channels[ch.rec.App] = ch
	}
	d.mu.Unlock()
	c, err := d.waitConn(ctx)
	if err != nil {
		return err
	}
	if err := ch.sync(ctx, c); err != nil {
		d.raise(&ChannelError{Type: ErrChannelOpenFailed, App: ch.rec.App, Message: err.Error()})
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
	if h := d.cfg.Handlers.ChannelURIUpdated; changed && h != nil {
		d.events.push(func() { h(rec.App, rec.Name, r.URI) })
	}
	return nil
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
	d.mu.Unlock()
	if h := d.cfg.Handlers.ChannelURIUpdated; h != nil {
		d.events.push(func() { h(f.App, f.Channel, f.URI) })
	}
}

// Close closes the channel: the server forgets it and later pushes to its
// URI get 404 Expired.
func (ch *Channel) Close(ctx context.Context) error {
	d := ch.d
	c, err := d.waitConn(ctx)
	if err != nil {
		return err
	}
	if _, err := c.request(ctx, &wire.Frame{Type: wire.TypeClose, App: ch.rec.App}); err != nil {
		var se *serverError
		if !errors.As(err, &se) || se.code != wire.CodeNotFound {
			return fmt.Errorf("device: close channel of %s: %w", ch.rec.App, err)
		}
	}
	d.mu.Lock()
	ch.open = false
	ch.rec.URI = ""
	if d.channels[ch.rec.App] == ch {
		delete(d.channels, ch.rec.App)
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
		return ErrNotOpen
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
