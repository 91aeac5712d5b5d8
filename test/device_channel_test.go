package test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/openmpns/openmpns/device"
	"github.com/openmpns/openmpns/server"
	"github.com/openmpns/openmpns/shared/payload"
)

// TestChannelEvents: each channel raises HttpNotificationChannel's events
// for its own app only: ChannelURIUpdated, HTTPNotificationReceived (raw),
// ShellToastNotificationReceived (a toast while the app is in the
// foreground), ErrorOccurred and ConnectionStatusChanged.
func TestChannelEvents(t *testing.T) {
	srv := startServer(t, server.Config{})
	p := newPhone(t, srv.URL(), "")
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	type ev struct{ app, kind, text string }
	events := make(chan ev, 64)
	open := func(app string) *device.Channel {
		ch := p.NewChannel(app, "main", "")
		ch.SetEvents(device.ChannelEvents{
			ChannelURIUpdated:        func(uri string) { events <- ev{app, "uri", uri} },
			HTTPNotificationReceived: func(_ device.Meta, b []byte) { events <- ev{app, "raw", string(b)} },
			ShellToastNotificationReceived: func(_ device.Meta, tt *payload.Toast) {
				events <- ev{app, "toast", tt.Text1}
			},
			ErrorOccurred:           func(e *device.ChannelError) { events <- ev{app, "error", string(e.Type)} },
			ConnectionStatusChanged: func(s device.ConnectionStatus) { events <- ev{app, "status", string(s)} },
		})
		if err := ch.Open(ctx); err != nil {
			t.Fatal(err)
		}
		if err := ch.BindToShellToast(ctx); err != nil {
			t.Fatal(err)
		}
		return ch
	}
	next := func(want ev) {
		t.Helper()
		select {
		case got := <-events:
			if got.app != want.app || got.kind != want.kind || (want.text != "" && got.text != want.text) {
				t.Fatalf("event %+v, want %+v", got, want)
			}
		case <-ctx.Done():
			t.Fatalf("no event %+v", want)
		}
	}
	news := open("com.example.news")
	next(ev{"com.example.news", "uri", news.ChannelURI()})
	mail := open("com.example.mail")
	next(ev{"com.example.mail", "uri", mail.ChannelURI()})

	p.SetAppState("com.example.news", device.AppState{Foreground: true})
	if a := post(t, "POST", news.ChannelURI(), "toast", "", "", toastXML("Hi", "", "")); a.code != 200 {
		t.Fatalf("toast: %+v", a)
	}
	next(ev{"com.example.news", "toast", "Hi"})
	p.SetAppState("com.example.mail", device.AppState{Running: true})
	if a := post(t, "POST", mail.ChannelURI(), "", "", "", []byte("data")); a.code != 200 {
		t.Fatalf("raw: %+v", a)
	}
	next(ev{"com.example.mail", "raw", "data"})

	if err := p.SetPowerLevel(ctx, device.PowerLow); err != nil {
		t.Fatal(err)
	}
	next(ev{"com.example.mail", "error", string(device.PowerLevelChanged)}) // in app order
	next(ev{"com.example.news", "error", string(device.PowerLevelChanged)})
	p.SetOnline(false)
	next(ev{"com.example.mail", "status", string(device.Disconnected)})
	next(ev{"com.example.news", "status", string(device.Disconnected)})
	select {
	case e := <-events:
		t.Fatalf("unexpected event %+v", e)
	default:
	}
	runtime.KeepAlive(news) // the device holds its objects weakly
	runtime.KeepAlive(mail)
}

// TestCloseFromAHandler: the package doc says handlers may call any method;
// Close called from a channel's event handler returns, and the device
// stops.
func TestCloseFromAHandler(t *testing.T) {
	srv := startServer(t, server.Config{})
	p := newPhone(t, srv.URL(), "")
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	p.SetAppState("com.example.app", device.AppState{Running: true})
	ch := p.NewChannel("com.example.app", "main", "")
	closed := make(chan error, 1)
	ch.SetEvents(device.ChannelEvents{HTTPNotificationReceived: func(device.Meta, []byte) { closed <- p.Close() }})
	if err := ch.Open(ctx); err != nil {
		t.Fatal(err)
	}
	if a := post(t, "POST", ch.ChannelURI(), "raw", "", "", []byte("stop")); a.code != 200 {
		t.Fatalf("raw: %+v", a)
	}
	select {
	case err := <-closed:
		if err != nil {
			t.Fatalf("Close from a handler: %v", err)
		}
	case <-ctx.Done():
		t.Fatal("Close called from a handler did not return (deadlock)")
	}
	if err := ch.BindToShellTile(ctx); !errors.Is(err, device.ErrClosed) && err != nil {
		t.Fatalf("bind after Close: %v", err)
	}
	if err := p.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

// TestClosingAnUnopenedChannel: Close on a Channel that was never opened
// returns ErrNotOpen and leaves the app's live channel alone: its URI still
// takes pushes and Find still returns it.
func TestClosingAnUnopenedChannel(t *testing.T) {
	srv := startServer(t, server.Config{})
	p := newPhone(t, srv.URL(), "")
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	live := p.openChannel(t, "com.example.app", "", true, false)
	for _, name := range []string{"main", "other"} {
		stray := p.NewChannel("com.example.app", name, "")
		if err := stray.Close(ctx); !errors.Is(err, device.ErrNotOpen) {
			t.Fatalf("Close of a never-opened channel %q: %v, want ErrNotOpen", name, err)
		}
	}
	if a := post(t, "POST", live.ChannelURI(), "toast", "", "", toastXML("still", "here", "")); !a.is(200, "Received", "Active", "Connected") {
		t.Fatalf("the live channel was touched: %+v", a)
	}
	if p.Find("com.example.app", "main") != live {
		t.Fatal("Find no longer returns the live channel")
	}
	if err := live.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := live.Close(ctx); !errors.Is(err, device.ErrNotOpen) {
		t.Fatalf("second Close: %v, want ErrNotOpen", err)
	}
}

// TestRefusedSavedChannelIsDropped: a channel in the device's saved state
// that the server refuses to open again (channel_exists: another instance
// of the identity renamed it; channel_quota: the device is full) raises
// ErrorOccurred on that app's channel and is dropped, and the device comes
// online with its other apps, instead of retrying forever offline.
func TestRefusedSavedChannelIsDropped(t *testing.T) {
	for _, c := range []struct {
		name   string
		cfg    server.Config
		refuse func(ctx context.Context, twin *phone) error
	}{
		{"channel_exists", server.Config{}, func(ctx context.Context, twin *phone) error {
			if err := twin.Find("com.example.x", "main").Close(ctx); err != nil {
				return err
			}
			return twin.NewChannel("com.example.x", "renamed", "").Open(ctx)
		}},
		{"channel_quota", server.Config{MaxChannels: 2}, func(ctx context.Context, twin *phone) error {
			if err := twin.Find("com.example.x", "main").Close(ctx); err != nil {
				return err
			}
			return twin.NewChannel("com.example.z", "main", "").Open(ctx)
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
			defer cancel()
			cfg := c.cfg
			cfg.DataDir = t.TempDir()
			srv := startServer(t, cfg)
			addr := srv.Addr()
			dir := t.TempDir()
			first := newPhone(t, srv.URL(), dir)
			first.openChannel(t, "com.example.x", "", false, false)
			y := first.openChannel(t, "com.example.y", "", false, false).ChannelURI()
			first.Close()
			// Another instance of the same identity (a copy of the state)
			// changes the device's channels on the server.
			twinDir := t.TempDir()
			b, err := os.ReadFile(filepath.Join(dir, "device.json"))
			if err != nil {
				t.Fatal(err)
			}
			os.WriteFile(filepath.Join(twinDir, "device.json"), b, 0o600)
			twin := newPhone(t, srv.URL(), twinDir)
			if err := c.refuse(ctx, twin); err != nil {
				t.Fatal(err)
			}
			twin.Close()
			// The first instance comes back while the server is down, so
			// that the app listens on its saved channel before it connects.
			srv.Close()
			again := newPhone(t, srv.URL(), dir)
			x := again.Find("com.example.x", "main")
			if x == nil {
				t.Fatal("the saved channel was not loaded")
			}
			refused := make(chan *device.ChannelError, 1)
			x.SetEvents(device.ChannelEvents{ErrorOccurred: func(e *device.ChannelError) { refused <- e }})
			startServer(t, server.Config{Listen: addr, DataDir: cfg.DataDir, MaxChannels: cfg.MaxChannels})
			select {
			case e := <-refused:
				if e.Type != device.ChannelOpenFailed || e.App != "com.example.x" {
					t.Fatalf("ErrorOccurred %+v", e)
				}
			case <-ctx.Done():
				t.Fatal("no ErrorOccurred for the refused channel")
			}
			runtime.KeepAlive(x) // the device holds its objects weakly
			again.rec.waitStatus(t, device.Connected)
			if again.Find("com.example.x", "main") != nil {
				t.Fatal("the refused channel is still there")
			}
			if a := post(t, "POST", y, "raw", "", "", []byte("y")); !a.is(200, "Received", "Active", "Connected") {
				t.Fatalf("the other app's channel: %+v", a)
			}
			// The dropped channel is gone from the saved state too.
			again.Close()
			b, _ = os.ReadFile(filepath.Join(dir, "device.json"))
			if st := string(b); !strings.Contains(st, "com.example.y") || strings.Contains(st, "com.example.x") {
				t.Fatalf("saved state: %s", st)
			}
		})
	}
}

// TestRefusedTileDomainsAreNotSaved: domains the server refuses (a space
// in one) passed to BindToShellTile are refused at once, online and
// offline, and never enter the channel's record: it keeps its binding, and
// the device reconnects (every app online), also after a restart, instead
// of failing every connect at the binding's restore.
func TestRefusedTileDomainsAreNotSaved(t *testing.T) {
	srv := startServer(t, server.Config{})
	p := newPhone(t, srv.URL(), "")
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	other := p.openChannel(t, "com.example.other", "", true, false)
	ch := p.openChannel(t, "com.example.tiles", "", false, true)
	kept := func(when string) {
		t.Helper()
		if d := ch.Domains(); !ch.IsShellTileBound() || len(d) != 1 || d[0] != "images.example.com" {
			t.Errorf("%s: the tile binding is %v with domains %q; want the one made before, images.example.com", when, ch.IsShellTileBound(), d)
		}
	}
	if err := ch.BindToShellTile(ctx, "bad domain.example.com"); err == nil {
		t.Error("BindToShellTile took a domain with a space")
	}
	kept("after a refused bind")
	p.rec.waitStatus(t, device.Connected)
	p.SetOnline(false)
	p.rec.waitStatus(t, device.Disconnected)
	if err := ch.BindToShellTile(ctx, "images.example.com", "bad domain.example.com"); err == nil {
		t.Error("BindToShellTile took a domain with a space while offline")
	}
	kept("after a refused bind offline")
	p.SetOnline(true)
	p.rec.waitStatus(t, device.Connected)
	tile := (&payload.Tile{Fields: map[string]string{payload.Title: "t"}}).Encode()
	if a := post(t, "POST", ch.ChannelURI(), tileT, "", "", tile); !a.is(200, "Received", "Active", "Connected") {
		t.Fatalf("a tile after the reconnect: %+v", a)
	}
	if a := post(t, "POST", other.ChannelURI(), "toast", "", "", toastXML("a", "", "")); !a.is(200, "Received", "Active", "Connected") {
		t.Fatalf("the other app's toast after the reconnect: %+v", a)
	}
	p.Close()
	again := newPhone(t, srv.URL(), p.dir)
	again.rec.waitStatus(t, device.Connected)
	ch = again.Find("com.example.tiles", "main")
	if ch == nil {
		t.Fatal("the channel is gone after a restart")
	}
	kept("after a restart")
}

// TestBindThroughAnAdoptedChannelObjectLasts: Open of a second Channel of
// the same app and name adopts the first's channel; both objects stand for
// that one channel, as HttpNotificationChannel handles do. A bind through
// the first acts on the device's current record (so a reconnect restores
// it, and toasts are Received, not Suppressed), both report it, and once
// the channel is closed through one, the other reports it closed.
func TestBindThroughAnAdoptedChannelObjectLasts(t *testing.T) {
	srv := startServer(t, server.Config{})
	p := newPhone(t, srv.URL(), "")
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	first := p.openChannel(t, "com.example.app", "", false, false)
	second := p.NewChannel("com.example.app", "main", "")
	if err := second.Open(ctx); err != nil {
		t.Fatal(err)
	}
	if err := first.BindToShellToast(ctx); err != nil {
		t.Fatalf("bind on the first channel object: %v", err)
	}
	if !first.IsShellToastBound() || !second.IsShellToastBound() {
		t.Errorf("after a bind through the first object: first bound %v, second bound %v", first.IsShellToastBound(), second.IsShellToastBound())
	}
	if a := post(t, "POST", first.ChannelURI(), "toast", "", "", toastXML("a", "", "")); a.notif != "Received" {
		t.Fatalf("before reconnect: %+v", a)
	}
	p.SetOnline(false)
	p.rec.waitStatus(t, device.Disconnected)
	p.SetOnline(true)
	p.rec.waitStatus(t, device.Connected)
	if a := post(t, "POST", first.ChannelURI(), "toast", "", "", toastXML("b", "", "")); a.notif != "Received" {
		t.Fatalf("a toast binding that Bind accepted was undone by the reconnect: %s (first bound %v, live bound %v)", a.notif, first.IsShellToastBound(), second.IsShellToastBound())
	}
	if err := second.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := first.BindToShellTile(ctx); !errors.Is(err, device.ErrNotOpen) {
		t.Errorf("bind through the other object of a closed channel: %v, want ErrNotOpen", err)
	}
	if uri, bound := first.ChannelURI(), first.IsShellToastBound(); uri != "" || bound {
		t.Errorf("the other object of a closed channel reports URI %q, toast bound %v", uri, bound)
	}
}

// TestEveryLiveChannelObjectRaisesEvents: every Channel object that stands
// for an app's channel raises its events with its own handlers (oldest
// object first), also the first one after a second NewChannel and Open
// made the second stand for the channel too, and also handlers set on the
// first after that: an app that holds an HttpNotificationChannel hears its
// events. A disposed object hears none and stands for no channel, while
// the channel stays open for the other; once the channel is closed no
// object hears more.
func TestEveryLiveChannelObjectRaisesEvents(t *testing.T) {
	srv := startServer(t, server.Config{})
	p := newPhone(t, srv.URL(), "")
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	const app = "com.example.app"
	type ev struct{ obj, kind, text string }
	events := make(chan ev, 64)
	handlers := func(obj string) device.ChannelEvents {
		return device.ChannelEvents{
			ChannelURIUpdated:        func(uri string) { events <- ev{obj, "uri", uri} },
			HTTPNotificationReceived: func(_ device.Meta, b []byte) { events <- ev{obj, "raw", string(b)} },
			ShellToastNotificationReceived: func(_ device.Meta, tt *payload.Toast) {
				events <- ev{obj, "toast", tt.Text1}
			},
			ErrorOccurred:           func(e *device.ChannelError) { events <- ev{obj, "error", string(e.Type)} },
			ConnectionStatusChanged: func(s device.ConnectionStatus) { events <- ev{obj, "status", string(s)} },
		}
	}
	next := func(want ...ev) {
		t.Helper()
		for _, w := range want {
			select {
			case got := <-events:
				if got != w {
					t.Fatalf("event %+v, want %+v", got, w)
				}
			case <-ctx.Done():
				t.Fatalf("no event %+v", w)
			}
		}
	}
	first := p.NewChannel(app, "main", "")
	first.SetEvents(handlers("first"))
	if err := first.Open(ctx); err != nil {
		t.Fatal(err)
	}
	uri := first.ChannelURI()
	next(ev{"first", "uri", uri})
	second := p.NewChannel(app, "main", "")
	second.SetEvents(handlers("second"))
	if err := second.Open(ctx); err != nil {
		t.Fatal(err)
	}
	if second.ChannelURI() != uri {
		t.Fatalf("the second object's URI %q, want the channel's %q", second.ChannelURI(), uri)
	}
	if p.Find(app, "main") != second {
		t.Fatal("Find does not return the object last opened")
	}
	// Handlers set on the first object after the second was opened.
	first.SetEvents(handlers("first again"))
	if err := first.BindToShellToast(ctx); err != nil {
		t.Fatal(err)
	}
	p.SetAppState(app, device.AppState{Foreground: true, Running: true})
	if a := post(t, "POST", uri, "toast", "", "", toastXML("hi", "", "")); a.code != 200 {
		t.Fatalf("toast: %+v", a)
	}
	next(ev{"first again", "toast", "hi"}, ev{"second", "toast", "hi"})
	if a := post(t, "POST", uri, "", "", "", []byte("data")); a.code != 200 {
		t.Fatalf("raw: %+v", a)
	}
	next(ev{"first again", "raw", "data"}, ev{"second", "raw", "data"})
	if err := p.SetPowerLevel(ctx, device.PowerLow); err != nil {
		t.Fatal(err)
	}
	next(ev{"first again", "error", string(device.PowerLevelChanged)}, ev{"second", "error", string(device.PowerLevelChanged)})
	if err := p.SetPowerLevel(ctx, device.PowerNormal); err != nil {
		t.Fatal(err)
	}
	next(ev{"first again", "error", string(device.PowerLevelChanged)}, ev{"second", "error", string(device.PowerLevelChanged)})
	p.SetOnline(false)
	next(ev{"first again", "status", string(device.Disconnected)}, ev{"second", "status", string(device.Disconnected)})
	p.SetOnline(true)
	next(ev{"first again", "status", string(device.Connected)}, ev{"second", "status", string(device.Connected)})

	// Disposed: no events, no channel; the channel stays open for the other.
	first.Dispose()
	if err := first.BindToShellTile(ctx); !errors.Is(err, device.ErrNotOpen) {
		t.Fatalf("bind through a disposed object: %v, want ErrNotOpen", err)
	}
	if first.ChannelURI() != "" || first.IsShellToastBound() {
		t.Fatalf("a disposed object reports URI %q, toast bound %v", first.ChannelURI(), first.IsShellToastBound())
	}
	if err := first.Open(ctx); !errors.Is(err, device.ErrNotOpen) {
		t.Fatalf("Open of a disposed object: %v, want ErrNotOpen", err)
	}
	if a := post(t, "POST", uri, "", "", "", []byte("after dispose")); !a.is(200, "Received", "Active", "Connected") {
		t.Fatalf("raw after the other object was disposed: %+v", a)
	}
	next(ev{"second", "raw", "after dispose"})
	if !second.IsShellToastBound() || p.Find(app, "main") != second {
		t.Fatal("disposing one object touched the channel")
	}
	if err := second.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if p.Find(app, "main") != nil {
		t.Fatal("Find returns a closed channel")
	}
	p.SetOnline(false)
	p.rec.waitStatus(t, device.Disconnected)
	select {
	case e := <-events:
		t.Fatalf("unexpected event %+v", e)
	default:
	}
}

// TestFindOnEachLaunchRaisesEvents: an app that calls Find at each launch
// (on the channel the device restored from its saved state, then again)
// gets the same object while it holds it, whose events fire with the
// handlers of the last launch only.
func TestFindOnEachLaunchRaisesEvents(t *testing.T) {
	srv := startServer(t, server.Config{})
	dir := t.TempDir()
	const app = "com.example.app"
	before := newPhone(t, srv.URL(), dir)
	uri := before.openChannel(t, app, "", false, false).ChannelURI()
	before.Close()
	p := newPhone(t, srv.URL(), dir, app)
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	got := make(chan string, 8)
	launch := func(name string) *device.Channel {
		ch := p.Find(app, "main")
		if ch == nil {
			t.Fatalf("%s: Find found no channel", name)
		}
		ch.SetEvents(device.ChannelEvents{HTTPNotificationReceived: func(_ device.Meta, b []byte) { got <- name + ": " + string(b) }})
		return ch
	}
	raw := func(body, want string) {
		t.Helper()
		if a := post(t, "POST", uri, "", "", "", []byte(body)); a.code != 200 {
			t.Fatalf("raw: %+v", a)
		}
		select {
		case g := <-got:
			if g != want {
				t.Fatalf("got %q, want %q", g, want)
			}
		case <-ctx.Done():
			t.Fatalf("no event %q", want)
		}
	}
	one := launch("launch 1")
	p.rec.waitStatus(t, device.Connected)
	raw("a", "launch 1: a")
	if two := launch("launch 2"); two != one {
		t.Fatal("Find at the second launch returned another object")
	}
	raw("b", "launch 2: b")
	select {
	case g := <-got:
		t.Fatalf("unexpected event %q", g)
	default:
	}
	runtime.KeepAlive(one) // the device holds its objects weakly
}
