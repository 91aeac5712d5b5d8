package phone

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/openmpns/openmpns/device"
	"github.com/openmpns/openmpns/emulator/tile"
	"github.com/openmpns/openmpns/shared/payload"
	"github.com/openmpns/openmpns/shared/sender"
)

// Launch brings app to the foreground (its page is open). It reports whether
// the opt-in prompt must be shown first: the app wants toasts and the user
// has not answered yet. The previous foreground app stops running.
func (p *Phone) Launch(app string) (needsConsent bool, err error) {
	p.mu.Lock()
	a := p.apps[app]
	if a == nil {
		p.mu.Unlock()
		return false, fmt.Errorf("phone: no app %s", app)
	}
	prev := p.foreground
	p.foreground = app
	a.param = "" // a launch from a toast sets it right after (OpenedAt)
	_, known := p.set.Consent[app]
	dev := p.dev
	p.mu.Unlock()
	if prev != "" && prev != app {
		dev.SetAppState(prev, device.AppState{})
	}
	dev.SetAppState(app, device.AppState{Running: true, Foreground: true})
	p.notify(Change{Kind: AppChanged, App: app})
	if a.WantsToast && a.Channel != "" && !known {
		p.notify(Change{Kind: ConsentNeeded, App: app})
		return true, nil
	}
	return false, nil
}

// OpenedAt records the page (a toast's Param) the app was opened at.
func (p *Phone) OpenedAt(app, param string) {
	p.mu.Lock()
	if a := p.apps[app]; a != nil {
		a.param = param
	}
	p.mu.Unlock()
	p.notify(Change{Kind: AppChanged, App: app})
}

// Leave closes the foreground app's page: it stops running.
func (p *Phone) Leave() {
	p.mu.Lock()
	prev := p.foreground
	p.foreground = ""
	dev := p.dev
	p.mu.Unlock()
	if prev != "" {
		dev.SetAppState(prev, device.AppState{})
		p.notify(Change{Kind: AppChanged, App: prev})
	}
}

// Answer records the user's answer to app's opt-in prompt and opens its
// channel: allow binds toast and tile, deny binds tile only (the server then
// answers toasts Suppressed).
func (p *Phone) Answer(app string, allow bool) {
	p.mu.Lock()
	p.set.Consent[app] = allow
	p.mu.Unlock()
	p.saveSettings()
	p.notify(Change{Kind: SettingsChanged, App: app})
	p.openAsync(app, allow)
}

// SetNotifications changes an app's toast consent from Settings.
func (p *Phone) SetNotifications(app string, on bool) { p.Answer(app, on) }

// SetAirplane turns airplane mode on (the push connection drops; senders
// see TempDisconnected) or off.
func (p *Phone) SetAirplane(on bool) {
	p.mu.Lock()
	p.set.Airplane = on
	dev := p.dev
	p.mu.Unlock()
	dev.SetOnline(!on)
	p.saveSettings()
	p.notify(Change{Kind: ConnectionChanged})
}

// SetBatterySaver reports a low power level (only raw notifications are
// delivered) or back to normal.
func (p *Phone) SetBatterySaver(ctx context.Context, on bool) error {
	p.mu.Lock()
	p.set.BatterySaver = on
	dev := p.dev
	p.mu.Unlock()
	level := device.PowerNormal
	if on {
		level = device.PowerLow
	}
	err := dev.SetPowerLevel(ctx, level)
	p.saveSettings()
	p.notify(Change{Kind: ConnectionChanged})
	return err
}

// SetLook sets the theme (light or dark) and accent name.
func (p *Phone) SetLook(light bool, accent string) {
	p.mu.Lock()
	p.set.Light, p.set.Accent = light, accent
	p.mu.Unlock()
	p.saveSettings()
	p.notify(Change{Kind: SettingsChanged})
}

// SetProfile gives the phone the screen called name (a tile.Profile) and
// Windows Phone 8.1's "show more tiles" setting.
func (p *Phone) SetProfile(name string, moreTiles bool) error {
	pr, err := tile.LookupProfile(name)
	if err != nil {
		return fmt.Errorf("phone: %w", err)
	}
	p.mu.Lock()
	p.set.Profile, p.set.MoreTiles = pr.Name, moreTiles
	p.mu.Unlock()
	p.saveSettings()
	p.notify(Change{Kind: SettingsChanged})
	return nil
}

// Profile returns the phone's screen, "show more tiles" applied.
func (p *Phone) Profile() tile.Profile {
	p.mu.Lock()
	defer p.mu.Unlock()
	pr, err := tile.LookupProfile(p.set.Profile)
	if err != nil {
		pr = tile.DefaultProfile
	}
	return pr.MoreTiles(p.set.MoreTiles)
}

// SetTileSize changes a tile's size. It fails for a tile the phone does not
// have and for a size the tile's template does not allow (tile.Allows: a
// WP7.5 tile is never wide).
func (p *Phone) SetTileSize(key string, s tile.Size) error {
	p.mu.Lock()
	ts := p.tiles[key]
	if ts == nil {
		p.mu.Unlock()
		return fmt.Errorf("phone: no tile %s", key)
	}
	if !tile.Allows(ts.st.Template, s) {
		p.mu.Unlock()
		return fmt.Errorf("phone: tile %s: a %s tile cannot be %s", key, templateName(ts.st.Template), s)
	}
	p.set.Sizes[key] = s
	p.mu.Unlock()
	p.saveSettings()
	p.notify(Change{Kind: TileChanged, Tile: key})
	return nil
}

// templateName names a template in messages.
func templateName(t payload.Template) string {
	if t == payload.TemplateDefault {
		return "WP7.5"
	}
	return string(t)
}

// Unpin removes the tile with key from the start screen. An app's primary
// tile keeps its state (updates still reach it) and comes back with Pin; a
// secondary tile is deleted with its state and size (a later notification
// with its Id makes a new one). It reports whether a tile was unpinned.
func (p *Phone) Unpin(key string) bool {
	p.mu.Lock()
	i := slices.Index(p.order, key)
	ts := p.tiles[key]
	if i < 0 || ts == nil {
		p.mu.Unlock()
		return false
	}
	p.order = slices.Delete(p.order, i, i+1)
	if ts.st.ID != "" {
		delete(p.tiles, key)
		delete(p.set.Tiles, key)
		delete(p.set.Sizes, key)
	} else if !slices.Contains(p.set.Unpinned, key) {
		p.set.Unpinned = append(p.set.Unpinned, key)
	}
	p.set.Order = slices.Clone(p.order)
	p.mu.Unlock()
	p.saveSettings()
	p.notify(Change{Kind: PinsChanged, App: ts.app, Tile: key})
	return true
}

// Pin puts app's primary tile back on the start screen, at the end, as
// "pin to start" in the app list does. It reports whether the tile was
// unpinned before.
func (p *Phone) Pin(app string) bool {
	p.mu.Lock()
	if p.tiles[app] == nil || slices.Contains(p.order, app) {
		p.mu.Unlock()
		return false
	}
	p.order = append(p.order, app)
	p.set.Unpinned = slices.DeleteFunc(p.set.Unpinned, func(k string) bool { return k == app })
	p.set.Order = slices.Clone(p.order)
	p.mu.Unlock()
	p.saveSettings()
	p.notify(Change{Kind: PinsChanged, App: app, Tile: app})
	return true
}

// Pinned reports whether the tile with key is on the start screen.
func (p *Phone) Pinned(key string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Contains(p.order, key)
}

// arrange orders keys as in order; keys not in it keep their relative
// order after those that are.
func arrange(keys, order []string) []string {
	if len(order) == 0 {
		return keys
	}
	rank := make(map[string]int, len(order))
	for i, k := range order {
		rank[k] = i
	}
	slices.SortStableFunc(keys, func(a, b string) int {
		ra, oka := rank[a]
		rb, okb := rank[b]
		switch {
		case oka && okb:
			return ra - rb
		case oka:
			return -1
		case okb:
			return 1
		}
		return 0
	})
	return keys
}

// Settings returns a copy of the user's settings.
func (p *Phone) Settings() Settings {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := p.set
	s.Consent = cloneMap(p.set.Consent)
	s.Sizes = cloneMap(p.set.Sizes)
	s.Tiles = nil
	s.Unpinned = slices.Clone(p.set.Unpinned)
	s.Order = slices.Clone(p.set.Order)
	s.LockQuick = slices.Clone(p.set.LockQuick)
	return s
}

func cloneMap[K comparable, V any](m map[K]V) map[K]V {
	out := make(map[K]V, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// Connection returns the push connection status and whether airplane mode
// and battery saver are on.
func (p *Phone) Connection() (status device.ConnectionStatus, airplane, saver bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.status, p.set.Airplane, p.set.BatterySaver
}

// Apps returns the installed apps in manifest order.
func (p *Phone) Apps() []App { return slices.Clone(p.cfg.Apps) }

// Tiles returns the pinned tiles in start-screen order.
func (p *Phone) Tiles() []Tile {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]Tile, 0, len(p.order))
	for _, key := range p.order {
		out = append(out, p.tileLocked(key))
	}
	return out
}

// TileByKey returns one pinned tile; false if there is no such tile or it
// is not pinned.
func (p *Phone) TileByKey(key string) (Tile, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.tiles[key] == nil || !slices.Contains(p.order, key) {
		return Tile{}, false
	}
	return p.tileLocked(key), true
}

func (p *Phone) tileLocked(key string) Tile {
	ts := p.tiles[key]
	a := p.apps[ts.app]
	size, ok := p.set.Sizes[key]
	if !ok {
		size = tile.Medium
		if ts.st.ID == "" {
			size = a.TileSize
		}
	}
	if !tile.Allows(ts.st.Template, size) {
		// An update switched a wide tile to the WP7.5 template.
		size = tile.Medium
	}
	name := a.Name
	if ts.st.ID != "" {
		name = a.Name + " " + ts.st.ID
	}
	return Tile{Key: key, App: ts.app, Name: name, Size: size, State: ts.st.Clone()}
}

// Page returns what app's page shows.
func (p *Phone) Page(app string) (AppPage, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	a := p.apps[app]
	if a == nil {
		return AppPage{}, false
	}
	pg := AppPage{App: a.App, State: a.state, URI: a.uri, Handoff: a.handoff,
		Raws: slices.Clone(a.raws), Toasts: slices.Clone(a.toasts), Errors: slices.Clone(a.errors),
		Foreground: p.foreground == app, Param: a.param}
	if a.ch != nil {
		pg.Toast, pg.TileBound = a.ch.IsShellToastBound(), a.ch.IsShellTileBound()
	}
	if c, ok := p.set.Consent[app]; ok {
		pg.Consent = &c
	}
	return pg, true
}

// Inspector returns the notification log, oldest first.
func (p *Phone) Inspector() []Entry {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.inspector)
}

// ShownToast returns the toast on screen and its app.
func (p *Phone) ShownToast() (app string, t payload.Toast, ok bool) { return p.toasts.Shown() }

// DismissToast removes the toast on screen (a click or flick).
func (p *Phone) DismissToast() {
	if p.toasts.Dismiss() {
		p.notify(Change{Kind: ToastChanged})
	}
}

// TapToast opens the toast's app at its Param; it returns the app and Param.
func (p *Phone) TapToast() (app, param string, ok bool) {
	app, param, ok = p.toasts.TapFor()
	if ok {
		p.notify(Change{Kind: ToastChanged})
	}
	return app, param, ok
}

// ToastDeadline is when the toast on screen goes away by itself; the UI
// arms a timer for it and asks ShownToast again then.
func (p *Phone) ToastDeadline() (time.Time, bool) { return p.toasts.Deadline() }

// Compose sends a notification to app's channel through the real MPNS HTTP
// API, as a cloud service would, and returns the server's answer.
func (p *Phone) Compose(ctx context.Context, app string, req sender.Request) (*sender.Response, error) {
	p.mu.Lock()
	a := p.apps[app]
	var uri string
	if a != nil {
		uri = a.uri
	}
	p.mu.Unlock()
	if uri == "" {
		return nil, fmt.Errorf("%s has no Channel URI yet", app)
	}
	req.URI = uri
	return p.cfg.Sender.Send(ctx, req)
}

// Reset forgets the device identity, consent and tiles, as a factory reset:
// the apps get new Channel URIs and hand them off again.
func (p *Phone) Reset() error {
	p.mu.Lock()
	dev := p.dev
	p.mu.Unlock()
	if err := dev.Close(); err != nil {
		p.log.Warn("reset: close device", "err", err)
	}
	// Under saveMu, so that a save in flight (a tile update's) cannot put
	// the forgotten settings back after phone.json is removed.
	p.saveMu.Lock()
	if p.cfg.StateDir != "" {
		os.RemoveAll(filepath.Join(p.cfg.StateDir, "device"))
		os.Remove(p.settingsPath())
	}
	p.mu.Lock()
	p.set = Settings{Consent: map[string]bool{}, Sizes: map[string]tile.Size{}, Tiles: map[string]tileRec{}}
	p.order = p.order[:0]
	for _, a := range p.cfg.Apps {
		p.tiles[a.ID] = &tileState{key: a.ID, app: a.ID, st: tile.NewState("", a.Template, a.TileDefaults)}
		p.order = append(p.order, a.ID)
		as := p.apps[a.ID]
		as.ch, as.uri, as.handoff, as.raws, as.toasts, as.errors, as.state = nil, "", "", nil, nil, nil, "no push channel"
		as.obj, as.objDev = nil, nil
	}
	for key, ts := range p.tiles {
		if ts.st.ID != "" {
			delete(p.tiles, key)
		}
	}
	p.inspector = nil
	p.foreground = ""
	p.mu.Unlock()
	p.saveMu.Unlock()
	for _, a := range p.cfg.Apps {
		p.notify(Change{Kind: AppChanged, App: a.ID})
	}
	p.notify(Change{Kind: SettingsChanged})
	return p.startDevice()
}
