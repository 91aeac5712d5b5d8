// Package phone is the emulated phone's brain, without a screen: the apps
// installed on it, the user's notification consent, the live tiles of the
// start screen, the toast queue, the app pages' data, settings, and an
// inspector log of every notification, all on top of the device runtime.
//
// The UI (emulator/ui, wired by emulator/shell) reads this state and calls
// its methods; Phone reports every change through Config.OnChange,
// from any goroutine, so the UI can refresh what changed (inside fyne.Do).
package phone

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/openmpns/openmpns/device"
	"github.com/openmpns/openmpns/emulator/tile"
	"github.com/openmpns/openmpns/emulator/toast"
	"github.com/openmpns/openmpns/shared/atomicfile"
	"github.com/openmpns/openmpns/shared/clock"
	"github.com/openmpns/openmpns/shared/payload"
	"github.com/openmpns/openmpns/shared/sender"
)

// App is an installed app as the phone needs it.
type App struct {
	ID, Name string
	// Channel and Service name the app's push channel; Channel "" means no push.
	Channel, Service string
	// WantsToast: the app asks for toasts (and so shows the opt-in prompt).
	WantsToast bool
	// Domains are the remote image domains allowed on its tiles.
	Domains []string
	// Handoff is where the app POSTs its Channel URI; "" for none.
	Handoff string
	// HandoffSecret is the app's secret sent with every handoff; "" for
	// none. With each handoff goes a device key of this phone for the app
	// (see device.LoadHandoffKey; the key is kept in
	// StateDir/handoff.key), so that its backend can refuse another
	// phone's handoff for this device and app.
	HandoffSecret string
	// Lock: the app has a lock screen icon, so the user can choose it for
	// the lock screen's detailed or quick status.
	Lock bool
	// Tile is the primary tile's template, default fields and size.
	Template     payload.Template
	TileDefaults map[string]string
	TileSize     tile.Size
}

// ChangeKind says what changed.
type ChangeKind int

// Changes reported through Config.OnChange.
const (
	TileChanged       ChangeKind = iota + 1 // Change.Tile changed (state or size), or appeared
	TileImagesChanged                       // a remote image of Change.Tile arrived: reload images
	ToastChanged                            // the toast on screen changed
	ConsentNeeded                           // Change.App wants the opt-in prompt
	AppChanged                              // Change.App's page data changed
	ConnectionChanged                       // the push connection or airplane/battery state changed
	InspectorChanged                        // a notification was logged
	SettingsChanged                         // consent, theme, accent or sizes changed
	PinsChanged                             // a tile was pinned or unpinned: Tiles changed
)

// Change is one change report.
type Change struct {
	Kind ChangeKind
	App  string
	Tile string
}

// Config configures a Phone.
type Config struct {
	// Server is the OpenMPNS server's base URL.
	Server string
	// Servers are more base URLs of the same service (other nodes of a
	// cluster), which the device fails over to (device.Config.Servers).
	Servers []string
	// StateDir keeps the device identity and the phone's settings.
	StateDir string
	Apps     []App
	// AutoConsent, if set, answers every opt-in prompt with its value.
	AutoConsent *bool
	// OnChange receives change reports, from any goroutine. Required.
	OnChange func(Change)
	// Prefetch loads a remote tile image, checking the app's domains; an
	// error keeps the tile's default image and raises MessageBadContent.
	// Nil refuses every remote image. The phone is the one that decides
	// about remote images: it calls Prefetch for every remote image a tile
	// update (or a tile kept from the last run) names, and reports
	// TileImagesChanged when one arrived; the UI reads the image from
	// wherever Prefetch put it (emulator/images' Loader cache).
	Prefetch func(ctx context.Context, ref string, domains []string) error
	// ToastDuration is how long a toast shows (default 10 s).
	ToastDuration time.Duration
	Clock         clock.Clock
	Logger        *slog.Logger
	// Sender sends the composer's notifications (default: a new client).
	Sender *sender.Client
	// MinBackoff shortens the device's reconnect backoff (tests).
	MinBackoff time.Duration
	// Profile, if not "", is the screen the phone starts with (a
	// tile.Profile name), whatever it had last time; the user can change it
	// in Settings.
	Profile string
}

// Settings are the user's choices, kept in StateDir/phone.json.
type Settings struct {
	// Consent maps app id to the answer of its opt-in prompt.
	Consent      map[string]bool      `json:"consent,omitempty"`
	Sizes        map[string]tile.Size `json:"sizes,omitempty"`
	Airplane     bool                 `json:"airplane,omitempty"`
	BatterySaver bool                 `json:"battery_saver,omitempty"`
	Light        bool                 `json:"light,omitempty"`
	Accent       string               `json:"accent,omitempty"`
	// Profile names the screen (tile.Profile.Name): "wvga", "wxga",
	// "720p", "1080p"; "" is tile.DefaultProfile.
	Profile string `json:"profile,omitempty"`
	// MoreTiles is Windows Phone 8.1's "show more tiles": six columns of
	// small tiles on the smaller screens (1080p always has them).
	MoreTiles bool `json:"more_tiles,omitempty"`
	// LockSet is true once the user chose the lock screen's apps; until
	// then the defaults apply (see Phone.LockApps).
	LockSet bool `json:"lock_set,omitempty"`
	// LockDetailed is the app whose text the lock screen shows ("" none).
	LockDetailed string `json:"lock_detailed,omitempty"`
	// LockQuick are the apps whose count the lock screen shows, at most
	// tile.LockQuickApps, in order.
	LockQuick []string           `json:"lock_quick,omitempty"`
	Tiles     map[string]tileRec `json:"tiles,omitempty"`
	// Unpinned lists the apps whose primary tile the user unpinned.
	Unpinned []string `json:"unpinned,omitempty"`
	// Order is the start screen's order of tile keys once the user pinned
	// or unpinned a tile; tiles not in it follow, as they came.
	Order []string `json:"order,omitempty"`
}

type tileRec struct {
	App      string            `json:"app"`
	ID       string            `json:"id,omitempty"`
	Template payload.Template  `json:"template,omitempty"`
	Fields   map[string]string `json:"fields,omitempty"`
}

// Tile is a pinned tile as the start screen shows it.
type Tile struct {
	// Key identifies the tile: the app id, plus "#" and the secondary id.
	Key   string
	App   string
	Name  string
	Size  tile.Size
	State *tile.State // a copy
}

// Entry is one notification in the inspector.
type Entry struct {
	Time      time.Time
	App       string
	Kind      string // toast, tile, raw, or "error"
	Class     int
	MessageID string
	ID        string
	Latency   time.Duration
	Headers   map[string]string
	Payload   []byte
	// Note says what the phone did with it ("shown by the shell", ...).
	Note string
}

// AppPage is what an app's page shows.
type AppPage struct {
	App        App
	State      string // channel state in words
	URI        string
	Handoff    string // the last handoff result
	Raws       []Entry
	Toasts     []Entry
	Errors     []string
	Toast      bool // toast bound
	TileBound  bool
	Consent    *bool
	Foreground bool
	// Param is the page a tapped toast opened the app at ("" otherwise).
	Param string
}

const maxLog = 500

// MaxSecondaryTiles is the most secondary tiles the phone pins for one
// app. A real phone pins one only when the app asks (ShellTile.Create);
// the emulator pins one for each new Id a tile update names, so that a
// developer sees it at once, and this bounds what a sender can pin.
const MaxSecondaryTiles = 32

// Phone is one emulated phone.
type Phone struct {
	cfg    Config
	log    *slog.Logger
	clk    clock.Clock
	toasts *toast.Queue
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	// handoffKey makes the device key of each app's handoffs.
	handoffKey device.HandoffKey
	// saveMu serialises saveSettings and Reset's removal of phone.json;
	// it is taken before mu, never while mu is held.
	saveMu sync.Mutex

	mu         sync.Mutex
	dev        *device.Device
	set        Settings
	apps       map[string]*appState
	order      []string // tile keys in start-screen order
	tiles      map[string]*tileState
	inspector  []Entry
	foreground string
	status     device.ConnectionStatus
}

type appState struct {
	App
	ch *device.Channel
	// obj is the object the phone opens the app's channel with on objDev:
	// one per app and device, so that opens at once (the start's, and the
	// user's answer in Settings while offline) do not make two objects,
	// each raising every notification.
	obj     *device.Channel
	objDev  *device.Device
	uri     string
	handoff string
	raws    []Entry
	toasts  []Entry
	errors  []string
	state   string
	param   string
}

type tileState struct {
	key, app string
	st       *tile.State
}

// New loads the phone's settings and starts its device runtime. Apps that
// need no prompt open their channels at once; the others wait for Launch.
func New(cfg Config) (*Phone, error) {
	if cfg.OnChange == nil {
		return nil, errors.New("phone: Config.OnChange is required")
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.System{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Sender == nil {
		cfg.Sender = &sender.Client{}
	}
	p := &Phone{cfg: cfg, log: cfg.Logger, clk: cfg.Clock, apps: map[string]*appState{}, tiles: map[string]*tileState{}}
	p.toasts = toast.NewQueue(cfg.Clock, cfg.ToastDuration)
	p.ctx, p.cancel = context.WithCancel(context.Background())
	if err := p.loadSettings(); err != nil {
		return nil, err
	}
	var err error
	if p.handoffKey, err = device.LoadHandoffKey(cfg.StateDir); err != nil {
		return nil, err
	}
	if cfg.Profile != "" {
		pr, err := tile.LookupProfile(cfg.Profile)
		if err != nil {
			return nil, fmt.Errorf("phone: %w", err)
		}
		p.set.Profile = pr.Name
	}
	for _, a := range cfg.Apps {
		if _, dup := p.apps[a.ID]; dup {
			return nil, fmt.Errorf("phone: app %s listed twice", a.ID)
		}
		p.apps[a.ID] = &appState{App: a, state: "no push channel"}
		key := a.ID
		st := tile.NewState("", a.Template, a.TileDefaults)
		if rec, ok := p.set.Tiles[key]; ok && rec.App == a.ID && rec.ID == "" {
			st.Apply(&payload.Tile{Template: rec.Template, Fields: rec.Fields})
		}
		p.tiles[key] = &tileState{key: key, app: a.ID, st: st}
		if !slices.Contains(p.set.Unpinned, key) {
			p.order = append(p.order, key)
		}
	}
	primaries := len(p.order)
	secondaries := map[string]int{}
	for _, key := range slices.Sorted(maps.Keys(p.set.Tiles)) { // secondary tiles made by notifications
		rec := p.set.Tiles[key]
		if rec.ID == "" || p.apps[rec.App] == nil || secondaries[rec.App] >= MaxSecondaryTiles {
			continue
		}
		if key != secondaryKey(rec.App, rec.ID) || p.tiles[key] != nil {
			// Another tile's key (an app id with "#" in it: written by a
			// build that did not check, or by hand): forget the record.
			delete(p.set.Tiles, key)
			continue
		}
		secondaries[rec.App]++
		st := tile.NewState(rec.ID, rec.Template, nil)
		st.Apply(&payload.Tile{ID: rec.ID, Template: rec.Template, Fields: rec.Fields})
		p.tiles[key] = &tileState{key: key, app: rec.App, st: st}
		p.order = append(p.order, key)
	}
	slices.SortStableFunc(p.order[primaries:], strings.Compare)
	p.order = arrange(p.order, p.set.Order)
	if err := p.startDevice(); err != nil {
		return nil, err
	}
	// Tiles kept from the last run may show remote images: fetch them
	// again, with the domains the app binds its tile with.
	for key, ts := range p.tiles {
		p.fetchRemote(key, ts.app, ts.st.Fields, p.apps[ts.app].Domains)
	}
	return p, nil
}

func (p *Phone) settingsPath() string { return filepath.Join(p.cfg.StateDir, "phone.json") }

func (p *Phone) loadSettings() error {
	p.set = Settings{Consent: map[string]bool{}, Sizes: map[string]tile.Size{}, Tiles: map[string]tileRec{}}
	if p.cfg.StateDir == "" {
		return nil
	}
	b, err := os.ReadFile(p.settingsPath())
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("phone: read settings: %w", err)
	}
	if err := json.Unmarshal(b, &p.set); err != nil {
		return fmt.Errorf("phone: settings file %s is damaged (%w); move it away to start afresh", p.settingsPath(), err)
	}
	if p.set.Consent == nil {
		p.set.Consent = map[string]bool{}
	}
	if p.set.Sizes == nil {
		p.set.Sizes = map[string]tile.Size{}
	}
	if p.set.Tiles == nil {
		p.set.Tiles = map[string]tileRec{}
	}
	return nil
}

// saveSettings writes the settings to phone.json. Saves are serialised
// (saveMu, held from the snapshot to the rename), so that when the device's
// goroutine (a tile update) and the UI's (a setting) save at once, each
// file is written whole and the later snapshot is the one that stays; the
// file is replaced atomically (atomicfile), so a crash leaves the old or
// the new one. p.mu must not be held.
func (p *Phone) saveSettings() {
	if p.cfg.StateDir == "" {
		return
	}
	p.saveMu.Lock()
	defer p.saveMu.Unlock()
	p.mu.Lock()
	b, err := json.MarshalIndent(&p.set, "", "  ")
	p.mu.Unlock()
	if err == nil {
		err = os.MkdirAll(p.cfg.StateDir, 0o700)
	}
	if err == nil {
		err = atomicfile.WriteFile(p.settingsPath(), b, 0o600)
	}
	if err != nil {
		p.log.Warn("save phone settings", "err", err)
	}
}

func (p *Phone) notify(c Change) { p.cfg.OnChange(c) }

func (p *Phone) startDevice() error {
	devDir := ""
	if p.cfg.StateDir != "" {
		devDir = filepath.Join(p.cfg.StateDir, "device")
	}
	dev, err := device.New(device.Config{
		Server: p.cfg.Server, Servers: p.cfg.Servers, StateDir: devDir, Logger: p.log, Clock: p.clk, MinBackoff: p.cfg.MinBackoff,
		MaxBackoff: 5 * time.Second, Client: "openmpns-emulator",
		// The shell's handlers. What an app hears (its Channel URI, toasts
		// while it is in the foreground, raw data) comes through its
		// channel's events, set in open, as on a phone.
		Handlers: device.Handlers{
			ConnectionStatusChanged: p.onStatus,
			Error:                   p.onError,
			ShellToast:              p.onShellToast,
			Tile:                    p.onTile,
			RawDropped: func(m device.Meta) {
				p.logEntry(m, "raw", nil, "dropped: the app is not running")
			},
		},
	})
	if err != nil {
		return err
	}
	p.mu.Lock()
	p.dev = dev
	airplane, saver := p.set.Airplane, p.set.BatterySaver
	p.mu.Unlock()
	if airplane {
		dev.SetOnline(false)
	}
	if saver {
		if err := dev.SetPowerLevel(p.ctx, device.PowerLow); err != nil {
			p.log.Warn("battery saver", "err", err)
		}
	}
	for _, a := range p.cfg.Apps {
		if a.Channel == "" {
			continue
		}
		p.mu.Lock()
		consent, known := p.set.Consent[a.ID]
		p.mu.Unlock()
		switch {
		case !a.WantsToast:
			p.openAsync(a.ID, false)
		case known:
			p.openAsync(a.ID, consent)
		case p.cfg.AutoConsent != nil:
			p.Answer(a.ID, *p.cfg.AutoConsent)
		default:
			p.setAppState(a.ID, "waiting for the user's consent (launch the app)")
		}
	}
	return nil
}

func (p *Phone) setAppState(app, state string) {
	p.mu.Lock()
	if a := p.apps[app]; a != nil {
		a.state = state
	}
	p.mu.Unlock()
	p.notify(Change{Kind: AppChanged, App: app})
}

// openAsync opens the app's channel and binds it in the background: tile
// always, toast when allowed.
func (p *Phone) openAsync(app string, toastOn bool) {
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		p.mu.Lock()
		dev := p.dev
		p.mu.Unlock()
		if err := p.open(dev, app, toastOn); err != nil && p.ctx.Err() == nil && p.current(dev) {
			p.setAppState(app, "channel failed: "+err.Error())
		}
	}()
}

// current reports whether dev is still the phone's device (Reset replaces it).
func (p *Phone) current(dev *device.Device) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.dev == dev
}

// open opens and binds the app's channel on dev. When a Reset replaced dev
// meanwhile, the result is dropped: the new device opens its own channel.
func (p *Phone) open(dev *device.Device, app string, toastOn bool) error {
	p.mu.Lock()
	a := p.apps[app]
	if a == nil || a.Channel == "" {
		p.mu.Unlock()
		return fmt.Errorf("phone: %s has no push channel", app)
	}
	ch := a.obj
	if ch == nil || a.objDev != dev {
		if ch = dev.Find(app, a.Channel); ch == nil {
			ch = dev.NewChannel(app, a.Channel, a.Service)
		}
		a.obj, a.objDev = ch, dev
	}
	p.mu.Unlock()
	p.setAppState(app, "opening channel")
	name := a.Channel
	ch.SetEvents(device.ChannelEvents{
		ChannelURIUpdated:              func(uri string) { p.onURI(app, name, uri) },
		ShellToastNotificationReceived: p.onAppToast,
		HTTPNotificationReceived:       p.onRaw,
	})
	if err := ch.Open(p.ctx); err != nil {
		return err
	}
	// A channel the device restored from its state may have got its URI
	// before these events were set: the app learns it now.
	if uri := ch.ChannelURI(); uri != "" {
		p.onURI(app, name, uri)
	}
	if err := ch.BindToShellTile(p.ctx, a.Domains...); err != nil {
		return err
	}
	var err error
	if toastOn {
		err = ch.BindToShellToast(p.ctx)
	} else if ch.IsShellToastBound() {
		err = ch.UnbindToShellToast(p.ctx)
	}
	if err != nil {
		return err
	}
	p.mu.Lock()
	if p.dev != dev {
		p.mu.Unlock()
		return nil
	}
	a.ch = ch
	a.uri = ch.ChannelURI()
	p.mu.Unlock()
	if toastOn {
		p.setAppState(app, "open: toast and tile bound")
	} else {
		p.setAppState(app, "open: tile bound, toasts off")
	}
	return nil
}

// onURI hands a new Channel URI to the app's cloud service.
// onURI is the app's channel's ChannelURIUpdated: the app records the
// URI and hands it to its cloud service, once per URI.
func (p *Phone) onURI(app, channel, uri string) {
	p.mu.Lock()
	a := p.apps[app]
	dev := p.dev
	if a == nil || a.uri == uri {
		p.mu.Unlock()
		return
	}
	a.uri = uri
	p.mu.Unlock()
	p.notify(Change{Kind: AppChanged, App: app})
	if a.Handoff == "" {
		return
	}
	rec := device.HandoffRecord{DeviceID: dev.ID(), App: app, Channel: channel, URI: uri,
		Secret: a.HandoffSecret, DeviceKey: p.handoffKey.DeviceKey(dev.ID(), app)}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		h := &device.Handoff{URL: a.Handoff, Clock: p.clk, MinBackoff: time.Second}
		status, err := h.Send(p.ctx, rec, nil)
		res := fmt.Sprintf("POST %s → %d", a.Handoff, status)
		if err != nil {
			res = fmt.Sprintf("POST %s failed: %v", a.Handoff, err)
		}
		p.mu.Lock()
		a.handoff = res
		p.mu.Unlock()
		p.notify(Change{Kind: AppChanged, App: app})
	}()
}

func (p *Phone) onStatus(s device.ConnectionStatus) {
	p.mu.Lock()
	p.status = s
	p.mu.Unlock()
	p.notify(Change{Kind: ConnectionChanged})
}

func (p *Phone) onError(e *device.ChannelError) {
	p.raise(e.App, string(e.Type)+": "+e.Message)
}

func (p *Phone) raise(app, msg string) {
	p.mu.Lock()
	if a := p.apps[app]; a != nil {
		a.errors = appendBounded(a.errors, msg)
	}
	p.inspector = appendBounded(p.inspector, Entry{Time: p.clk.Now(), App: app, Kind: "error", Note: msg})
	p.mu.Unlock()
	p.notify(Change{Kind: AppChanged, App: app})
	p.notify(Change{Kind: InspectorChanged})
}

func appendBounded[T any](s []T, v T) []T {
	if len(s) >= maxLog {
		s = slices.Delete(s, 0, len(s)-maxLog+1)
	}
	return append(s, v)
}

// logEntry records a notification in the inspector and returns it.
func (p *Phone) logEntry(m device.Meta, kind string, body []byte, note string) Entry {
	target := map[string]string{"toast": "toast", "tile": "token"}[kind]
	h := map[string]string{"X-NotificationClass": fmt.Sprint(m.Class)}
	if target != "" {
		h["X-WindowsPhone-Target"] = target
	}
	if m.MessageID != "" {
		h["X-MessageID"] = m.MessageID
	}
	e := Entry{Time: m.ReceivedAt, App: m.App, Kind: kind, Class: m.Class, MessageID: m.MessageID, ID: m.ID,
		Latency: m.ReceivedAt.Sub(m.AcceptedAt), Headers: h, Payload: body, Note: note}
	p.mu.Lock()
	p.inspector = appendBounded(p.inspector, e)
	p.mu.Unlock()
	p.notify(Change{Kind: InspectorChanged})
	return e
}

// onShellToast queues a toast for the shell's banner. A waiting toast the
// queue drops to stay within its bounds (toast.MaxWaiting,
// toast.MaxWaitingPerApp) is logged in the inspector.
func (p *Phone) onShellToast(m device.Meta, t *payload.Toast) {
	p.logEntry(m, "toast", t.Encode(), "shown by the shell")
	if d, ok := p.toasts.PushFor(m.App, *t); ok {
		note := fmt.Sprintf("dropped before it was shown: %d toasts were waiting, the most the phone keeps, and this app had the most of them; its oldest made room", toast.MaxWaiting)
		if d.AppFull {
			note = fmt.Sprintf("dropped before it was shown: the app had %d toasts waiting, the most the phone keeps for an app; its oldest made room for its newest", toast.MaxWaitingPerApp)
		}
		p.mu.Lock()
		p.inspector = appendBounded(p.inspector, Entry{Time: p.clk.Now(), App: d.Key, Kind: "toast", Payload: d.Toast.Encode(), Note: note})
		p.mu.Unlock()
		p.notify(Change{Kind: InspectorChanged})
	}
	p.notify(Change{Kind: ToastChanged, App: m.App})
}

func (p *Phone) onAppToast(m device.Meta, t *payload.Toast) {
	e := p.logEntry(m, "toast", t.Encode(), "delivered to the app in the foreground")
	p.mu.Lock()
	if a := p.apps[m.App]; a != nil {
		a.toasts = appendBounded(a.toasts, e)
	}
	p.mu.Unlock()
	p.notify(Change{Kind: AppChanged, App: m.App})
}

func (p *Phone) onRaw(m device.Meta, b []byte) {
	e := p.logEntry(m, "raw", b, "delivered to the running app")
	p.mu.Lock()
	if a := p.apps[m.App]; a != nil {
		a.raws = appendBounded(a.raws, e)
	}
	p.mu.Unlock()
	p.notify(Change{Kind: AppChanged, App: m.App})
}

// onTile applies a tile update: the primary tile, or a secondary tile that
// the update creates if it does not exist yet (up to MaxSecondaryTiles for
// the app; past that, the update is logged and dropped). Remote images are
// checked and fetched in the background.
func (p *Phone) onTile(m device.Meta, t *payload.Tile, domains []string) {
	key := m.App
	if t.ID != "" {
		key = secondaryKey(m.App, t.ID)
	}
	p.mu.Lock()
	ts := p.tiles[key]
	if ts != nil && (ts.app != m.App || ts.st.ID != t.ID) {
		p.mu.Unlock()
		p.logEntry(m, "tile", t.Encode(), fmt.Sprintf("dropped: its key %s is another tile's (app %s, Id %q): an app id with \"#\" in it", key, ts.app, ts.st.ID))
		return
	}
	if ts == nil && t.ID != "" && p.secondaryTiles(m.App) >= MaxSecondaryTiles {
		p.mu.Unlock()
		p.logEntry(m, "tile", t.Encode(), fmt.Sprintf("dropped: the app has %d secondary tiles pinned, the most the emulator pins for an app; unpin one first", MaxSecondaryTiles))
		return
	}
	if ts == nil {
		ts = &tileState{key: key, app: m.App, st: tile.NewState(t.ID, t.Template, nil)}
		p.tiles[key] = ts
		p.order = append(p.order, key)
	}
	ts.st.Apply(t)
	p.set.Tiles[key] = tileRec{App: m.App, ID: t.ID, Template: ts.st.Template, Fields: ts.st.Fields}
	p.mu.Unlock()
	p.logEntry(m, "tile", t.Encode(), "applied to the tile")
	p.saveSettings()
	p.notify(Change{Kind: TileChanged, App: m.App, Tile: key})
	p.fetchRemote(key, m.App, t.Fields, domains)
}

// secondaryKey is the key of app's secondary tile id: the app id, "#" and
// the Id. An app id with "#" in it (which the manifest refuses) could make
// another tile's key: whoever uses a key checks the tile's app and Id.
func secondaryKey(app, id string) string { return app + "#" + id }

// secondaryTiles counts app's secondary tiles. p.mu is held.
func (p *Phone) secondaryTiles(app string) int {
	n := 0
	for _, ts := range p.tiles {
		if ts.app == app && ts.st.ID != "" {
			n++
		}
	}
	return n
}

// fetchRemote fetches the remote images among fields, the elements of tile
// key, in the background (see fetchImage).
func (p *Phone) fetchRemote(key, app string, fields map[string]string, domains []string) {
	for name, ref := range fields {
		if tile.IsRemote(ref) {
			p.fetchImage(key, app, name, ref, domains)
		}
	}
}

// fetchImage loads a remote image; on failure the element goes back to its
// default and the app gets MessageBadContent.
func (p *Phone) fetchImage(key, app, name, ref string, domains []string) {
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		err := errors.New("remote images are not enabled")
		if p.cfg.Prefetch != nil {
			ctx, cancel := context.WithTimeout(p.ctx, 60*time.Second)
			err = p.cfg.Prefetch(ctx, ref, domains)
			cancel()
		}
		if err == nil {
			p.notify(Change{Kind: TileImagesChanged, App: app, Tile: key})
			return
		}
		if p.ctx.Err() != nil {
			return
		}
		p.mu.Lock()
		if ts := p.tiles[key]; ts != nil && ts.st.Get(name) == ref {
			ts.st.Apply(&payload.Tile{ID: ts.st.ID, Template: ts.st.Template, Cleared: []string{name}})
		}
		p.mu.Unlock()
		p.raise(app, fmt.Sprintf("%s: %s: %v; the tile keeps its default image", device.MessageBadContent, ref, err))
		p.notify(Change{Kind: TileChanged, App: app, Tile: key})
	}()
}

// Close stops the phone and its device runtime.
func (p *Phone) Close() error {
	p.cancel()
	p.mu.Lock()
	dev := p.dev
	p.mu.Unlock()
	err := dev.Close()
	p.wg.Wait()
	p.saveSettings()
	return err
}
