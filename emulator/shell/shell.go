// Package shell is the emulator's controller: it wires the phone model
// (emulator/phone) to the views (emulator/ui), the start screen's live tiles
// to their images, the toast queue to the banner, the inspector's composer
// to the real MPNS HTTP API. What the program starts (an embedded server,
// the window, the clock) is cmd/openmpns-emulator's run.
//
// Threading: the phone reports changes from any goroutine; Handle queues
// them and applies them on fyne's UI goroutine (fyne.Do) under the shell's
// UI lock. Everything that touches the views holds that lock: fyne's test
// driver runs fyne.Do on the calling goroutine, so the lock is what keeps
// tests race-free; under the real driver it is never contended.
package shell

import (
	"context"
	"fmt"
	"image/color"
	"strings"
	"sync"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"

	"github.com/openmpns/openmpns/emulator/accent"
	"github.com/openmpns/openmpns/emulator/apps"
	"github.com/openmpns/openmpns/emulator/images"
	"github.com/openmpns/openmpns/emulator/phone"
	"github.com/openmpns/openmpns/emulator/tile"
	"github.com/openmpns/openmpns/emulator/ui"
	"github.com/openmpns/openmpns/emulator/ui/applist"
	"github.com/openmpns/openmpns/emulator/ui/apppage"
	"github.com/openmpns/openmpns/emulator/ui/controls"
	"github.com/openmpns/openmpns/emulator/ui/handset"
	"github.com/openmpns/openmpns/emulator/ui/inspector"
	"github.com/openmpns/openmpns/emulator/ui/lockscreen"
	"github.com/openmpns/openmpns/emulator/ui/optin"
	"github.com/openmpns/openmpns/emulator/ui/settings"
	"github.com/openmpns/openmpns/emulator/ui/start"
	"github.com/openmpns/openmpns/emulator/ui/tileview"
	"github.com/openmpns/openmpns/emulator/ui/wptheme"
	"github.com/openmpns/openmpns/shared/payload"
	"github.com/openmpns/openmpns/shared/sender"
)

// Shell is the emulator's controller.
type Shell struct {
	app    fyne.App
	clip   fyne.Clipboard
	man    *apps.Manifest
	loader *images.Loader
	ctx    context.Context
	cancel context.CancelFunc
	// bg counts the shell's own goroutines (composer sends, battery saver,
	// reset), which Close waits for.
	bg sync.WaitGroup

	// ph is set by Attach; the views exist before it.
	mu sync.Mutex
	ph *phone.Phone

	// uiMu is held while the views are touched; queue holds changes not yet
	// applied (qmu guards it).
	uiMu  sync.Mutex
	qmu   sync.Mutex
	queue []phone.Change

	// UI-goroutine state.
	view      *handset.Phone
	start     *start.StartScreen
	appList   *applist.AppList
	settings  *settings.Settings
	inspector *inspector.Inspector
	optIn     *optin.OptIn
	lock      *lockscreen.Lock
	lockIcons map[string]fyne.Resource
	optInApp  string
	pages     map[string]*apppage.AppPage
	tiles     map[string]*tileview.Tile
	sources   map[string]*images.Source
	icons     map[string]fyne.Resource
	toastAt   time.Time // deadline of the toast on screen: identifies it
	toastT    *time.Timer
	content   fyne.CanvasObject
}

// New builds the views. Call Attach with the phone before showing them.
func New(a fyne.App, clip fyne.Clipboard, man *apps.Manifest, loader *images.Loader) *Shell {
	s := &Shell{app: a, clip: clip, man: man, loader: loader, lockIcons: map[string]fyne.Resource{},
		pages: map[string]*apppage.AppPage{}, tiles: map[string]*tileview.Tile{}, sources: map[string]*images.Source{}, icons: map[string]fyne.Resource{}}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	for _, ap := range man.Apps {
		if b, err := ap.IconData(); err == nil {
			s.icons[ap.ID] = fyne.NewStaticResource(ap.ID+".png", b)
		}
		if b, err := ap.LockIconData(); err == nil {
			s.lockIcons[ap.ID] = fyne.NewStaticResource(ap.ID+"-lock.png", b)
		}
	}
	s.start = start.NewStartScreen()
	s.view = handset.NewPhone(s.start)
	s.appList = applist.NewAppList()
	s.settings = settings.NewSettings()
	s.inspector = inspector.NewInspector()
	s.optIn = optin.NewOptIn("")
	s.lock = lockscreen.New()
	// The phone takes the room the inspector leaves and grows into it.
	s.content = container.NewBorder(nil, nil, nil, s.inspector, s.view)
	return s
}

// Content is the window's content: the phone and the inspector beside it.
func (s *Shell) Content() fyne.CanvasObject { return s.content }

// WindowSize is the size the window opens at: the phone at scale 1 beside
// the inspector (the content's minimum is the phone at controls.MinScale). Call
// it on the UI goroutine.
func (s *Shell) WindowSize() fyne.Size {
	m := s.content.MinSize()
	body := s.view.BodySize()
	return fyne.NewSize(m.Width+body.Width*(1-controls.MinScale), max(m.Height, body.Height))
}

// Phone returns the attached phone model.
func (s *Shell) Phone() *phone.Phone {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ph
}

// Attach connects the views to the phone and fills them.
func (s *Shell) Attach(p *phone.Phone) {
	s.mu.Lock()
	s.ph = p
	s.mu.Unlock()
	s.Update(func() { s.attach(p) })
}

func (s *Shell) attach(p *phone.Phone) {
	var pushApps []ui.App
	for _, a := range p.Apps() {
		if a.Channel != "" {
			pushApps = append(pushApps, ui.App{ID: a.ID, Name: a.Name, Icon: s.icons[a.ID]})
		}
	}
	s.inspector.SetApps(pushApps)

	s.start.OnTileTapped = func(key string) { s.launch(appOf(key)) }
	s.start.OnTileResized = func(key string, size tile.Size) {
		// The start screen offers only the sizes a tile allows; the
		// built-in settings tile is the start screen's, not the phone's.
		_ = p.SetTileSize(key, size)
	}
	s.start.OnTileUnpinned = func(key string) { p.Unpin(key) }
	s.appList.OnPinTapped = func(app string) {
		if p.Pin(app) {
			s.view.Home()
		}
	}
	s.start.OnAppList = func() { s.view.Push(s.appList) }
	s.start.OnSettings = func() { s.view.Push(s.settings) }
	s.appList.OnAppTapped = s.launch
	s.view.OnNavigate = func(screen fyne.CanvasObject) {
		if _, isPage := screen.(*apppage.AppPage); !isPage {
			p.Leave()
		}
	}
	s.view.OnToastTapped = func(payload.Toast) {
		if app, param, ok := p.TapToast(); ok {
			s.launch(app)
			p.OpenedAt(app, param)
		}
	}
	s.view.OnToastDismissed = func(payload.Toast) { p.DismissToast() }
	s.optIn.OnAnswer = func(allowed bool) {
		s.view.HideDialog()
		if s.optInApp != "" {
			p.Answer(s.optInApp, allowed)
			s.optInApp = ""
		}
	}
	s.settings.OnAppNotifications = p.SetNotifications
	s.settings.OnAirplane = p.SetAirplane
	s.settings.OnBatterySaver = func(on bool) {
		s.bg.Go(func() {
			if err := p.SetBatterySaver(s.ctx, on); err != nil {
				fyne.Do(func() { s.Update(func() { s.view.SetConnection("battery saver: " + err.Error()) }) })
			}
		})
	}
	s.settings.OnDark = func(dark bool) {
		set := p.Settings()
		p.SetLook(!dark, set.Accent)
	}
	s.settings.OnAccent = func(name string) {
		set := p.Settings()
		p.SetLook(set.Light, name)
	}
	s.settings.OnProfile = func(name string, more bool) {
		// The picker offers only the profiles there are.
		_ = p.SetProfile(name, more)
	}
	s.settings.OnLock = func(detailed string, quick []string) {
		// The page offers only apps with a lock icon, five quick at most.
		_ = p.SetLockApps(detailed, quick)
	}
	s.view.OnPower = s.Power
	s.lock.OnUnlock = s.Power
	s.settings.OnReset = func() {
		s.bg.Go(func() {
			if err := p.Reset(); err != nil {
				fyne.Do(func() { s.Update(func() { s.view.SetConnection("reset failed: " + err.Error()) }) })
			}
		})
	}
	s.inspector.OnSend = s.compose

	s.refreshLook()
	s.refreshSettings()
	s.refreshTiles()
	s.refreshAppList()
	s.refreshConnection()
	s.refreshInspector()
	s.refreshLock()
	s.Tick(time.Now())
}

func appOf(key string) string {
	app, _, _ := strings.Cut(key, "#")
	return app
}

// Handle takes a phone change report from any goroutine. Reports that
// arrive after Close are dropped.
func (s *Shell) Handle(c phone.Change) {
	if s.ctx.Err() != nil {
		return
	}
	s.qmu.Lock()
	s.queue = append(s.queue, c)
	s.qmu.Unlock()
	fyne.Do(s.drain)
}

// drain applies queued changes unless someone holds the UI lock, in which
// case that holder applies them before it lets go (see Update).
func (s *Shell) drain() {
	if !s.uiMu.TryLock() {
		return
	}
	s.drainLocked()
	s.uiMu.Unlock()
	if s.pending() {
		fyne.Do(s.drain)
	}
}

func (s *Shell) pending() bool {
	s.qmu.Lock()
	defer s.qmu.Unlock()
	return len(s.queue) > 0
}

func (s *Shell) drainLocked() {
	for {
		s.qmu.Lock()
		if len(s.queue) == 0 {
			s.qmu.Unlock()
			return
		}
		c := s.queue[0]
		s.queue = s.queue[1:]
		s.qmu.Unlock()
		s.apply(c)
	}
}

// Update runs f with the UI lock held, then applies the changes f caused.
// Use it on the UI goroutine (inside fyne.Do from other goroutines) for
// anything that touches the views from outside an event callback (timers,
// tests).
func (s *Shell) Update(f func()) {
	func() {
		s.uiMu.Lock()
		defer s.uiMu.Unlock()
		f()
		s.drainLocked()
	}()
	// A change queued after drainLocked looked, whose drain found the lock
	// taken, would otherwise wait for the next one.
	if s.pending() {
		fyne.Do(s.drain)
	}
}

func (s *Shell) apply(c phone.Change) {
	if s.Phone() == nil {
		return
	}
	switch c.Kind {
	case phone.TileChanged:
		s.refreshTile(c.Tile)
		s.refreshLock()
	case phone.TileImagesChanged:
		if t := s.tiles[c.Tile]; t != nil {
			t.ReloadImages()
		}
	case phone.ToastChanged:
		s.refreshToast()
	case phone.ConsentNeeded:
		s.askConsent(c.App)
	case phone.AppChanged:
		s.refreshPage(c.App)
	case phone.ConnectionChanged:
		s.refreshConnection()
	case phone.InspectorChanged:
		s.refreshInspector()
	case phone.SettingsChanged:
		s.refreshLook()
		s.refreshSettings()
		s.refreshTiles()
		s.refreshAppList()
		s.refreshLock()
	case phone.PinsChanged:
		s.refreshTiles()
		s.refreshAppList()
	}
}

// Tick moves the clock of the status bar and the live tiles; call it about
// once a second on the UI goroutine.
func (s *Shell) Tick(now time.Time) {
	s.view.SetTime(now.Format("15:04"))
	s.lock.SetTime(now)
	s.start.Tick(now)
}

// Power does what the phone's power button does (and the emulator's F12
// key): it locks the phone, showing the lock screen, or unlocks it.
func (s *Shell) Power() {
	if s.view.Locked() {
		s.view.HideLock()
		return
	}
	s.refreshLock()
	s.view.ShowLock(s.lock)
}

// Locked reports whether the lock screen is up.
func (s *Shell) Locked() bool { return s.view.Locked() }

// refreshLock shows on the lock screen what the phone's apps put there.
func (s *Shell) refreshLock() {
	ls := s.Phone().LockScreen()
	s.lock.SetDetailed(ls.Detailed.Text)
	quick := make([]lockscreen.Quick, 0, len(ls.Quick))
	for _, q := range ls.Quick {
		quick = append(quick, lockscreen.Quick{Icon: s.lockIcons[q.App], Count: q.Count})
	}
	s.lock.SetQuick(quick)
}

func (s *Shell) launch(app string) {
	p := s.Phone()
	need, err := p.Launch(app)
	if err != nil {
		return
	}
	s.view.Push(s.page(app))
	s.refreshPage(app)
	if need {
		s.askConsent(app)
	}
}

func (s *Shell) askConsent(app string) {
	pg, ok := s.Phone().Page(app)
	if !ok || s.optInApp == app {
		return
	}
	s.optInApp = app
	s.optIn.SetApp(pg.App.Name)
	s.view.ShowDialog(s.optIn)
}

func (s *Shell) page(app string) *apppage.AppPage {
	if pg := s.pages[app]; pg != nil {
		return pg
	}
	pg, _ := s.Phone().Page(app)
	v := apppage.NewAppPage(strings.ToLower(pg.App.Name), s.clip)
	s.pages[app] = v
	return v
}

func (s *Shell) refreshPage(app string) {
	v := s.pages[app]
	if v == nil {
		return
	}
	pg, ok := s.Phone().Page(app)
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
}

// accentOf returns an app's own accent, or nil for an app without one,
// whose tiles follow the theme (the user's accent).
func (s *Shell) accentOf(app string) color.Color {
	if a, ok := s.man.App(app); ok {
		if c, ok := a.AccentColor(); ok {
			return c
		}
	}
	return nil
}

func (s *Shell) phoneAccent() color.Color {
	if c, ok := accent.Lookup(s.Phone().Settings().Accent); ok {
		return c
	}
	return accent.Default
}

func (s *Shell) refreshLook() {
	p := s.Phone()
	set := p.Settings()
	s.app.Settings().SetTheme(wptheme.New(!set.Light, s.phoneAccent()))
	pr := p.Profile()
	s.view.SetProfile(pr)
	s.start.SetProfile(pr)
}

func (s *Shell) refreshSettings() {
	p := s.Phone()
	set := p.Settings()
	var sw []settings.AppSwitch
	for _, a := range p.Apps() {
		if a.WantsToast && a.Channel != "" {
			sw = append(sw, settings.AppSwitch{ID: a.ID, Name: a.Name, On: set.Consent[a.ID]})
		}
	}
	s.settings.SetApps(sw)
	s.settings.SetAirplane(set.Airplane)
	s.settings.SetBatterySaver(set.BatterySaver)
	s.settings.SetDark(!set.Light)
	name := set.Accent
	if name == "" {
		name = "cobalt"
	}
	s.settings.SetAccent(name)
	pr := p.Profile()
	s.settings.SetProfile(pr.Name, set.MoreTiles)
	var lockApps []settings.LockApp
	for _, a := range p.Apps() {
		if a.Lock {
			lockApps = append(lockApps, settings.LockApp{ID: a.ID, Name: a.Name})
		}
	}
	detailed, quick := p.LockApps()
	s.settings.SetLockApps(lockApps, detailed, quick)
}

// refreshAppList lists the installed apps, marking those whose tile is not
// pinned (the list offers to pin them).
func (s *Shell) refreshAppList() {
	p := s.Phone()
	uiApps := make([]ui.App, 0, len(s.man.Apps))
	for _, a := range s.man.Apps {
		uiApps = append(uiApps, ui.App{ID: a.ID, Name: a.Name, Icon: s.icons[a.ID], Unpinned: !p.Pinned(a.ID)})
	}
	s.appList.SetApps(uiApps)
}

// refreshTiles makes the start screen match the phone's pinned tiles.
func (s *Shell) refreshTiles() {
	tiles := s.Phone().Tiles()
	pinned := make([]start.Pinned, 0, len(tiles))
	seen := map[string]bool{}
	for _, t := range tiles {
		seen[t.Key] = true
		pinned = append(pinned, start.Pinned{Key: t.Key, Tile: s.tileWidget(t)})
	}
	for key := range s.tiles {
		if !seen[key] {
			delete(s.tiles, key)
			delete(s.sources, key)
		}
	}
	s.start.SetTiles(pinned)
}

func (s *Shell) tileWidget(t phone.Tile) *tileview.Tile {
	w := s.tiles[t.Key]
	if w == nil {
		w = tileview.New(t.State, t.Size)
		s.tiles[t.Key] = w
		w.SetImages(s.source(t.Key))
	} else {
		w.SetState(t.State)
		w.SetTileSize(t.Size)
	}
	w.SetAccent(s.accentOf(t.App))
	return w
}

// source is the image source of one tile: the app's own images, and the
// remote ones the phone fetched (see images.Source).
func (s *Shell) source(key string) *images.Source {
	if src := s.sources[key]; src != nil {
		return src
	}
	a, _ := s.man.App(appOf(key))
	var local = s.man.FS
	var domains []string
	if a != nil {
		if a.FS != nil {
			local = a.FS
		}
		domains = a.ImageDomains
	}
	src := s.loader.Source(local, domains)
	s.sources[key] = src
	return src
}

// refreshTile updates one tile without rebuilding the grid.
func (s *Shell) refreshTile(key string) {
	t, ok := s.Phone().TileByKey(key)
	if !ok {
		return
	}
	w := s.tiles[key]
	if w == nil {
		s.refreshTiles()
		return
	}
	w.SetState(t.State)
	if w.TileSize() != t.Size {
		s.start.SetTileSize(key, t.Size)
	}
}

func (s *Shell) refreshToast() {
	p := s.Phone()
	app, t, ok := p.ShownToast()
	until, _ := p.ToastDeadline()
	if !ok {
		if _, showing := s.view.Toast(); showing {
			s.view.HideToast()
		}
		s.toastAt = time.Time{}
		return
	}
	if until.Equal(s.toastAt) {
		return // already on screen
	}
	s.toastAt = until
	s.view.ShowToast(t, s.icons[app])
	if s.toastT != nil {
		s.toastT.Stop()
	}
	s.toastT = time.AfterFunc(time.Until(until)+10*time.Millisecond, func() {
		s.Handle(phone.Change{Kind: phone.ToastChanged})
	})
}

func (s *Shell) refreshConnection() {
	status, airplane, saver := s.Phone().Connection()
	state := handset.Connecting
	switch {
	case airplane:
		state = handset.Airplane
	case status == "connected":
		state = handset.Connected
	}
	s.view.SetConnection(state)
	s.view.SetBatterySaver(saver)
}

func (s *Shell) refreshInspector() {
	log := s.Phone().Inspector()
	names := map[string]string{}
	for _, a := range s.man.Apps {
		names[a.ID] = a.Name
	}
	ns := make([]inspector.Notification, 0, len(log))
	for _, e := range log {
		n := inspector.Notification(e)
		if name, ok := names[e.App]; ok {
			n.App = name
		}
		ns = append(ns, n)
	}
	s.inspector.SetNotifications(ns)
}

// compose sends the inspector's notification through the HTTP API.
func (s *Shell) compose(r inspector.ComposeRequest) {
	p := s.Phone()
	s.bg.Go(func() {
		ctx, cancel := context.WithTimeout(s.ctx, 30*time.Second)
		defer cancel()
		resp, err := p.Compose(ctx, r.App, sender.Request{Kind: r.Kind, Class: r.Class(), MessageID: r.MessageID, Body: r.Body()})
		fyne.Do(func() { s.Update(func() { s.showResult(resp, err) }) })
	})
}

func (s *Shell) showResult(resp *sender.Response, err error) {
	if err != nil {
		s.inspector.SetResult("not sent: "+err.Error(), nil)
		return
	}
	h := map[string]string{}
	for k, v := range map[string]string{
		"X-NotificationStatus":     resp.NotificationStatus,
		"X-SubscriptionStatus":     resp.SubscriptionStatus,
		"X-DeviceConnectionStatus": resp.DeviceConnectionStatus,
		"X-MessageID":              resp.MessageID,
		"X-OpenMPNS-Error":         resp.Reason,
	} {
		if v != "" {
			h[k] = v
		}
	}
	s.inspector.SetResult(fmt.Sprintf("HTTP %d %s", resp.StatusCode, resp.NotificationStatus), h)
}

// Close stops the shell's background work (image fetches, toast timer,
// composer sends) and waits for its goroutines; changes reported after it
// are dropped. Call it after the window's event loop has ended.
func (s *Shell) Close() {
	s.cancel()
	s.bg.Wait()
	// A drain that started before cancel finishes before Close returns.
	s.uiMu.Lock()
	defer s.uiMu.Unlock()
	if s.toastT != nil {
		s.toastT.Stop()
	}
}
