package shell

import (
	"image/color"
	"io/fs"
	"strings"
	"sync"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"

	"github.com/openmpns/openmpns/emulator/accent"
	"github.com/openmpns/openmpns/emulator/images"
	"github.com/openmpns/openmpns/emulator/phone"
	"github.com/openmpns/openmpns/emulator/tile"
	"github.com/openmpns/openmpns/emulator/ui"
	"github.com/openmpns/openmpns/emulator/ui/applist"
	"github.com/openmpns/openmpns/emulator/ui/apppage"
	"github.com/openmpns/openmpns/emulator/ui/handset"
	"github.com/openmpns/openmpns/emulator/ui/lockscreen"
	"github.com/openmpns/openmpns/emulator/ui/optin"
	"github.com/openmpns/openmpns/emulator/ui/settings"
	"github.com/openmpns/openmpns/emulator/ui/start"
	"github.com/openmpns/openmpns/emulator/ui/tileview"
	"github.com/openmpns/openmpns/emulator/ui/wptheme"
	"github.com/openmpns/openmpns/shared/payload"
)

// Device is the controller of one emulated phone in the window: its
// handset and screens, wired to its phone model. A Shell holds one per
// phone; each is a whole device (its own identity, state, consent,
// settings, profile and theme).
type Device struct {
	sh   *Shell
	name string

	// ph is set by Attach; the views exist before it.
	mu sync.Mutex
	ph *phone.Phone

	// UI-goroutine state.
	view     *handset.Phone
	themed   *container.ThemeOverride // the phone in its own theme
	start    *start.StartScreen
	appList  *applist.AppList
	settings *settings.Settings
	optIn    *optin.OptIn
	lock     *lockscreen.Lock
	optInApp string
	pages    map[string]*apppage.AppPage
	tiles    map[string]*tileview.Tile
	sources  map[string]*images.Source
	toastAt  time.Time // deadline of the toast on screen: identifies it
	toastT   *time.Timer
	look     look // the theme applied, once looked
	looked   bool
	// The rows of the screens that grow, when they were last given the
	// phone's theme (own).
	settingsRows [2]int
	appRows      int
	pageRows     map[string][3]int
}

// look is what a phone's theme is made of.
type look struct {
	dark   bool
	accent color.Color
}

func newDevice(sh *Shell, name string) *Device {
	d := &Device{sh: sh, name: name,
		pages: map[string]*apppage.AppPage{}, pageRows: map[string][3]int{}, tiles: map[string]*tileview.Tile{}, sources: map[string]*images.Source{}}
	d.start = start.NewStartScreen()
	d.view = handset.NewPhone(d.start)
	d.themed = container.NewThemeOverride(d.view, wptheme.New(true, accent.Default))
	d.appList = applist.NewAppList()
	d.settings = settings.NewSettings()
	d.optIn = optin.NewOptIn("")
	d.lock = lockscreen.New()
	return d
}

// Name is the phone's name in the window and the inspector ("phone 2").
func (d *Device) Name() string { return d.name }

// Phone returns the attached phone model.
func (d *Device) Phone() *phone.Phone {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.ph
}

// Handle takes a change report of this device's phone, from any
// goroutine: it is the phone's Config.OnChange.
func (d *Device) Handle(c phone.Change) { d.sh.enqueue(d, c) }

// Attach connects the views to the phone and fills them.
func (d *Device) Attach(p *phone.Phone) {
	d.mu.Lock()
	d.ph = p
	d.mu.Unlock()
	d.sh.Update(func() { d.attach(p) })
}

func (d *Device) attach(p *phone.Phone) {
	d.sh.refreshApps()

	d.start.OnTileTapped = func(key string) {
		if t, ok := p.TileByKey(key); ok {
			d.launch(t.App)
		}
	}
	d.start.OnTileResized = func(key string, size tile.Size) {
		// The start screen offers only the sizes a tile allows; the
		// built-in settings tile is the start screen's, not the phone'd.
		_ = p.SetTileSize(key, size)
	}
	d.start.OnTileUnpinned = func(key string) { p.Unpin(key) }
	d.appList.OnPinTapped = func(app string) {
		if p.Pin(app) {
			d.view.Home()
		}
	}
	d.start.OnAppList = func() { d.view.Push(d.appList) }
	d.start.OnSettings = func() { d.view.Push(d.settings) }
	d.appList.OnAppTapped = d.launch
	d.view.OnNavigate = func(screen fyne.CanvasObject) {
		if _, isPage := screen.(*apppage.AppPage); !isPage {
			p.Leave()
		}
	}
	d.view.OnToastTapped = func(payload.Toast) {
		if app, param, ok := p.TapToast(); ok {
			d.launch(app)
			p.OpenedAt(app, param)
		}
	}
	d.view.OnToastDismissed = func(payload.Toast) { p.DismissToast() }
	d.optIn.OnAnswer = func(allowed bool) {
		d.view.HideDialog()
		if d.optInApp != "" {
			p.Answer(d.optInApp, allowed)
			d.optInApp = ""
		}
	}
	d.settings.OnAppNotifications = p.SetNotifications
	d.settings.OnAirplane = p.SetAirplane
	d.settings.OnBatterySaver = func(on bool) {
		d.sh.bg.Go(func() {
			if err := p.SetBatterySaver(d.sh.ctx, on); err != nil {
				fyne.Do(func() { d.sh.Update(func() { d.view.SetConnection("battery saver: " + err.Error()) }) })
			}
		})
	}
	d.settings.OnDark = func(dark bool) {
		set := p.Settings()
		p.SetLook(!dark, set.Accent)
	}
	d.settings.OnAccent = func(name string) {
		set := p.Settings()
		p.SetLook(set.Light, name)
	}
	d.settings.OnProfile = func(name string, more bool) {
		// The picker offers only the profiles there are.
		_ = p.SetProfile(name, more)
	}
	d.settings.OnLock = func(detailed string, quick []string) {
		// The page offers only apps with a lock icon, five quick at most.
		_ = p.SetLockApps(detailed, quick)
	}
	d.view.OnPower = d.Power
	d.lock.OnUnlock = d.Power
	d.settings.OnReset = func() {
		d.sh.bg.Go(func() {
			if err := p.Reset(); err != nil {
				fyne.Do(func() { d.sh.Update(func() { d.view.SetConnection("reset failed: " + err.Error()) }) })
			}
		})
	}

	d.refreshLook()
	d.refreshSettings()
	d.refreshTiles()
	d.refreshAppList()
	d.refreshConnection()
	d.sh.refreshInspector()
	d.refreshLock()
	d.ownAll()
	d.Tick(time.Now())
}

// own gives o and everything under it now the phone's theme. The phone's
// ThemeOverride reaches only what is in its tree when it is refreshed,
// but screens come and go (the app list, settings, app pages, dialogs,
// the lock screen) and fill themselves later (rows, tiles): whatever the
// controller adds to a phone it owns here, or fyne's widgets in it (and
// the emulator's) would take the window's theme, the first phone's.
func (d *Device) own(o fyne.CanvasObject) {
	if o != nil {
		container.NewThemeOverride(o, d.themed.Theme)
	}
}

// ownAll gives every screen of the phone, shown or not, the phone's theme.
func (d *Device) ownAll() {
	d.themed.Refresh()
	for _, o := range []fyne.CanvasObject{d.start, d.appList, d.settings, d.optIn, d.lock} {
		d.own(o)
	}
	for _, pg := range d.pages {
		d.own(pg)
	}
}

func (d *Device) apply(c phone.Change) {
	if d.Phone() == nil {
		return
	}
	switch c.Kind {
	case phone.TileChanged:
		d.refreshTile(c.Tile)
		d.refreshLock()
	case phone.TileImagesChanged:
		if t := d.tiles[c.Tile]; t != nil {
			t.ReloadImages()
		}
	case phone.ToastChanged:
		d.refreshToast()
	case phone.ConsentNeeded:
		d.askConsent(c.App)
	case phone.AppChanged:
		d.refreshPage(c.App)
	case phone.ConnectionChanged:
		d.refreshConnection()
	case phone.InspectorChanged:
		d.sh.refreshInspector()
	case phone.SettingsChanged:
		d.refreshLook()
		d.refreshSettings()
		d.refreshTiles()
		d.refreshAppList()
		d.refreshLock()
	case phone.PinsChanged:
		d.refreshTiles()
		d.refreshAppList()
	}
}

// Tick moves the clock of the status bar and the live tiles; call it about
// once a second on the UI goroutine.
func (d *Device) Tick(now time.Time) {
	d.view.SetTime(now.Format("15:04"))
	d.lock.SetTime(now)
	d.start.Tick(now)
}

// Power does what the phone's power button does (and the emulator's F12
// key): it locks the phone, showing the lock screen, or unlocks it.
func (d *Device) Power() {
	if d.view.Locked() {
		d.view.HideLock()
		return
	}
	d.refreshLock()
	d.view.ShowLock(d.lock)
}

// Locked reports whether the lock screen is up.
func (d *Device) Locked() bool { return d.view.Locked() }

// refreshLock shows on the lock screen what the phone's apps put there.
func (d *Device) refreshLock() {
	ls := d.Phone().LockScreen()
	d.lock.SetDetailed(ls.Detailed.Text)
	quick := make([]lockscreen.Quick, 0, len(ls.Quick))
	for _, q := range ls.Quick {
		quick = append(quick, lockscreen.Quick{Icon: d.sh.lockIcons[q.App], Count: q.Count})
	}
	d.lock.SetQuick(quick)
}

func (d *Device) launch(app string) {
	p := d.Phone()
	need, err := p.Launch(app)
	if err != nil {
		return
	}
	d.view.Push(d.page(app))
	d.refreshPage(app)
	if need {
		d.askConsent(app)
	}
}

func (d *Device) askConsent(app string) {
	pg, ok := d.Phone().Page(app)
	if !ok || d.optInApp == app {
		return
	}
	d.optInApp = app
	d.optIn.SetApp(pg.App.Name)
	d.view.ShowDialog(d.optIn)
}

func (d *Device) page(app string) *apppage.AppPage {
	if pg := d.pages[app]; pg != nil {
		return pg
	}
	pg, _ := d.Phone().Page(app)
	v := apppage.NewAppPage(strings.ToLower(pg.App.Name), d.sh.clip)
	d.pages[app] = v
	d.own(v)
	return v
}

func (d *Device) refreshPage(app string) {
	v := d.pages[app]
	if v == nil {
		return
	}
	pg, ok := d.Phone().Page(app)
	if !ok {
		return
	}
	state := pg.State
	if pg.Foreground {
		state += " · running in the foreground"
	}
	if pg.Param != "" {
		state += " · opened from a toast at " + pg.Param
	}
	v.SetChannelState(state)
	v.SetChannelURI(pg.URI)
	v.SetHandoff(pg.Handoff)
	raws := make([]apppage.RawNotification, 0, len(pg.Raws))
	for _, r := range pg.Raws {
		raws = append(raws, apppage.RawNotification{Time: r.Time, Data: r.Payload})
	}
	v.SetRaws(raws)
	toasts := make([]apppage.ReceivedToast, 0, len(pg.Toasts))
	for _, e := range pg.Toasts {
		t, err := payload.ParseToast(e.Payload)
		if err == nil {
			toasts = append(toasts, apppage.ReceivedToast{Time: e.Time, Toast: *t})
		}
	}
	v.SetToasts(toasts)
	v.SetErrors(pg.Errors)
	if rows := [3]int{len(raws), len(toasts), len(pg.Errors)}; rows != d.pageRows[app] {
		d.pageRows[app] = rows
		d.own(v) // the rows it added
	}
}

// accentOf returns an app's own accent, or nil for an app without one,
// whose tiles follow the theme (the user's accent).
func (d *Device) accentOf(app string) color.Color {
	if a, ok := d.sh.man.App(app); ok {
		if c, ok := a.AccentColor(); ok {
			return c
		}
	}
	return nil
}

func (d *Device) phoneAccent() color.Color {
	if c, ok := accent.Lookup(d.Phone().Settings().Accent); ok {
		return c
	}
	return accent.Default
}

// refreshLook gives the phone its theme and screen profile. A theme is
// applied only when it changed: applying one walks every widget of the
// phone and draws them all again.
func (d *Device) refreshLook() {
	p := d.Phone()
	set := p.Settings()
	look := look{dark: !set.Light, accent: d.phoneAccent()}
	if !d.looked || look != d.look {
		d.looked, d.look = true, look
		th := wptheme.New(look.dark, look.accent)
		d.themed.Theme = th
		d.ownAll()
		if d.sh.first() == d {
			// The inspector beside the phones takes the first phone's.
			d.sh.app.Settings().SetTheme(th)
		}
	}
	pr := p.Profile()
	d.view.SetProfile(pr)
	d.start.SetProfile(pr)
}

func (d *Device) refreshSettings() {
	p := d.Phone()
	set := p.Settings()
	var sw []settings.AppSwitch
	for _, a := range p.Apps() {
		if a.WantsToast && a.Channel != "" {
			sw = append(sw, settings.AppSwitch{ID: a.ID, Name: a.Name, On: set.Consent[a.ID]})
		}
	}
	d.settings.SetApps(sw)
	d.settings.SetAirplane(set.Airplane)
	d.settings.SetBatterySaver(set.BatterySaver)
	d.settings.SetDark(!set.Light)
	name := set.Accent
	if name == "" {
		name = "cobalt"
	}
	d.settings.SetAccent(name)
	pr := p.Profile()
	d.settings.SetProfile(pr.Name, set.MoreTiles)
	var lockApps []settings.LockApp
	for _, a := range p.Apps() {
		if a.Lock {
			lockApps = append(lockApps, settings.LockApp{ID: a.ID, Name: a.Name})
		}
	}
	detailed, quick := p.LockApps()
	d.settings.SetLockApps(lockApps, detailed, quick)
	if rows := [2]int{len(sw), len(lockApps)}; rows != d.settingsRows {
		d.settingsRows = rows
		d.own(d.settings) // the rows it added
	}
}

// refreshAppList lists the installed apps, marking those whose tile is not
// pinned (the list offers to pin them).
func (d *Device) refreshAppList() {
	p := d.Phone()
	uiApps := make([]ui.App, 0, len(d.sh.man.Apps))
	for _, a := range d.sh.man.Apps {
		uiApps = append(uiApps, ui.App{ID: a.ID, Name: a.Name, Icon: d.sh.icons[a.ID], Unpinned: !p.Pinned(a.ID)})
	}
	d.appList.SetApps(uiApps)
	if len(uiApps) != d.appRows {
		d.appRows = len(uiApps)
		d.own(d.appList) // the rows it added
	}
}

// refreshTiles makes the start screen match the phone's pinned tiles.
func (d *Device) refreshTiles() {
	tiles := d.Phone().Tiles()
	pinned := make([]start.Pinned, 0, len(tiles))
	seen := map[string]bool{}
	for _, t := range tiles {
		seen[t.Key] = true
		pinned = append(pinned, start.Pinned{Key: t.Key, Tile: d.tileWidget(t)})
	}
	for key := range d.tiles {
		if !seen[key] {
			delete(d.tiles, key)
			delete(d.sources, key)
		}
	}
	d.start.SetTiles(pinned)
}

func (d *Device) tileWidget(t phone.Tile) *tileview.Tile {
	w := d.tiles[t.Key]
	if w == nil {
		w = tileview.New(t.State, t.Size)
		d.tiles[t.Key] = w
		d.own(w)
		w.SetImages(d.source(t.Key, t.App))
	} else {
		w.SetState(t.State)
		w.SetTileSize(t.Size)
	}
	w.SetAccent(d.accentOf(t.App))
	// A tile that follows the theme's accent takes a new one here; any
	// other tile that did not change is not drawn again (Tile.Renders).
	w.Refresh()
	return w
}

// source is the image source of tile key of app: the app's own images,
// and the remote ones the phone fetched (see images.Source).
func (d *Device) source(key, app string) *images.Source {
	if src := d.sources[key]; src != nil {
		return src
	}
	a, _ := d.sh.man.App(app)
	var local fs.FS // an app's own files, never the whole manifest's directory
	var domains []string
	if a != nil {
		local, domains = a.FS, a.ImageDomains
	}
	src := d.sh.loader.Source(local, domains)
	d.sources[key] = src
	return src
}

// refreshTile updates one tile without rebuilding the grid.
func (d *Device) refreshTile(key string) {
	t, ok := d.Phone().TileByKey(key)
	if !ok {
		return
	}
	d.showTile(t)
}

// showTile shows t's new state and size on its tile widget.
func (d *Device) showTile(t phone.Tile) {
	key := t.Key
	w := d.tiles[key]
	if w == nil {
		d.refreshTiles()
		return
	}
	w.SetState(t.State)
	if w.TileSize() != t.Size {
		d.start.SetTileSize(key, t.Size)
	}
}

func (d *Device) refreshToast() {
	p := d.Phone()
	app, t, ok := p.ShownToast()
	until, _ := p.ToastDeadline()
	if !ok {
		if _, showing := d.view.Toast(); showing {
			d.view.HideToast()
		}
		d.toastAt = time.Time{}
		return
	}
	if until.Equal(d.toastAt) {
		return // already on screen
	}
	d.toastAt = until
	d.view.ShowToast(t, d.sh.icons[app])
	if d.toastT != nil {
		d.toastT.Stop()
	}
	d.toastT = time.AfterFunc(time.Until(until)+10*time.Millisecond, func() {
		d.Handle(phone.Change{Kind: phone.ToastChanged})
	})
}

func (d *Device) refreshConnection() {
	status, airplane, saver := d.Phone().Connection()
	state := handset.Connecting
	switch {
	case airplane:
		state = handset.Airplane
	case status == "connected":
		state = handset.Connected
	}
	d.view.SetConnection(state)
	d.view.SetBatterySaver(saver)
}

// stop stops the device's toast timer. The UI lock is held.
func (d *Device) stop() {
	if d.toastT != nil {
		d.toastT.Stop()
	}
}
