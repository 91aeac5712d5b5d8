package settings

import (
	"image/color"
	"slices"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"github.com/openmpns/openmpns/emulator/accent"
	"github.com/openmpns/openmpns/emulator/tile"
	"github.com/openmpns/openmpns/emulator/ui/controls"
	"github.com/openmpns/openmpns/emulator/ui/wptheme"
)

// AccentOrder lists the accent colours (emulator/accent names) in the order
// Windows Phone 8's accent picker shows them.
var AccentOrder = []string{
	"lime", "green", "emerald", "teal", "cyan", "cobalt", "indigo", "violet", "pink", "magenta",
	"crimson", "red", "orange", "amber", "yellow", "brown", "olive", "steel", "mauve", "taupe",
}

// LockApp is an app that can show on the lock screen (it has a lock icon).
type LockApp struct {
	ID   string
	Name string
}

// AppSwitch is an app on the settings page with its notification switch.
type AppSwitch struct {
	ID   string
	Name string
	On   bool
}

// Settings is the emulator's settings page: a notification switch per app,
// airplane mode, battery saver, the theme's background (dark or light) and
// accent colour, and "reset device", which asks first.
//
// A control the user changes calls its callback at once; the page shows
// the new value without waiting for the controller. The Set methods change
// what is shown without calling back.
type Settings struct {
	widget.BaseWidget

	// OnAppNotifications is called when the user switched an app's
	// notifications on or off.
	OnAppNotifications func(appID string, on bool)
	// OnAirplane is called when the user switched airplane mode.
	OnAirplane func(on bool)
	// OnBatterySaver is called when the user switched battery saver.
	OnBatterySaver func(on bool)
	// OnDark is called when the user picked the dark (true) or light
	// background.
	OnDark func(dark bool)
	// OnAccent is called with the name of the accent colour the user picked.
	OnAccent func(name string)
	// OnProfile is called with the name of the screen the user picked (a
	// tile.Profile's) and the "show more tiles" switch.
	OnProfile func(name string, moreTiles bool)
	// OnLock is called with the lock screen's apps the user chose: the
	// detailed status app ("" for none) and the quick status apps, in the
	// order the page lists them.
	OnLock func(detailed string, quick []string)
	// OnReset is called when the user confirmed "reset device".
	OnReset func()

	page       *controls.Page
	apps       *fyne.Container
	appToggles map[string]*controls.Toggle
	noApps     *controls.TextBlock
	airplane   *controls.Toggle
	saver      *controls.Toggle
	background *listPicker
	accent     *accentPicker
	screen     *listPicker
	moreTiles  *controls.Toggle
	profiles   []tile.Profile
	lockApps   []LockApp
	detailed   *listPicker
	detailedAt *fyne.Container // holds the detailed status picker (rebuilt with the apps)
	quick      *fyne.Container
	quickOn    map[string]*controls.Toggle
	noLock     *controls.TextBlock
	reset      *controls.Button
	confirm    *controls.MessageBox
	stack      *fyne.Container
	controls.Scaled
}

var _ controls.BackHandler = (*Settings)(nil)

// NewSettings returns the settings page with no apps, everything off, the
// dark background and accent.Default.
func NewSettings() *Settings {
	s := &Settings{appToggles: map[string]*controls.Toggle{}}
	s.noApps = controls.NewParagraph("No app has asked to send notifications yet.", controls.FontNormal, wptheme.ColorNameSubtle, controls.PageWidth, 0)
	s.apps = controls.NewColumn(s.noApps)
	s.airplane = controls.NewToggle("airplane mode", false, func(on bool) { call(s.OnAirplane, on) })
	s.saver = controls.NewToggle("battery saver", false, func(on bool) { call(s.OnBatterySaver, on) })
	s.background = newListPicker("background", []string{"dark", "light"}, 0, func(i int) { call(s.OnDark, i == 0) })
	s.accent = newAccentPicker(func(name string) { call(s.OnAccent, name) })
	s.profiles = tile.Profiles()
	var screens []string
	for _, p := range s.profiles {
		screens = append(screens, p.String())
	}
	s.screen = newListPicker("resolution", screens, 0, func(int) { s.profileChanged() })
	s.moreTiles = controls.NewToggle("show more tiles", false, func(bool) { s.profileChanged() })
	s.noLock = controls.NewParagraph("No app can show on the lock screen: an app declares a lock_icon in its manifest.", controls.FontNormal, wptheme.ColorNameSubtle, controls.PageWidth, 0)
	s.detailedAt = controls.NewColumn()
	s.quick = controls.NewColumn(s.noLock)
	s.quickOn = map[string]*controls.Toggle{}
	s.reset = controls.NewButton("reset device", s.ConfirmReset)
	content := controls.NewColumn(
		controls.SectionTitle("notifications"), controls.Gap(8), s.apps, controls.Gap(24),
		controls.SectionTitle("phone"), controls.Gap(8), s.airplane, s.saver, controls.Gap(24),
		controls.SectionTitle("theme"), controls.Gap(8), s.background, controls.Gap(16), s.accent, controls.Gap(24),
		controls.SectionTitle("screen"), controls.Gap(8), s.screen, s.moreTiles, controls.Gap(24),
		controls.SectionTitle("lock screen"), controls.Gap(8), s.detailedAt, controls.Gap(8), s.quick, controls.Gap(32),
		container.NewHBox(s.reset),
	)
	s.page = controls.NewPage("openmpns emulator", "settings", content)
	s.background.relayout = s.page.Scroll.Refresh
	s.accent.relayout = s.page.Scroll.Refresh
	s.screen.relayout = s.page.Scroll.Refresh
	s.confirm = controls.NewMessageBox("reset device?",
		"This removes every push channel, pinned tile and notification permission from the emulated phone, and gives it a new identity.",
		"reset", "cancel", func(ok bool) {
			s.hideConfirm()
			if ok && s.OnReset != nil {
				s.OnReset()
			}
		})
	s.confirm.Hide()
	s.stack = container.NewStack(s.page, s.confirm)
	s.ExtendBaseWidget(s)
	return s
}

func call[T any](f func(T), v T) {
	if f != nil {
		f(v)
	}
}

// SetApps replaces the list of apps and their switches.
func (s *Settings) SetApps(apps []AppSwitch) {
	objs := []fyne.CanvasObject{s.noApps}
	s.noApps.Hidden = len(apps) > 0
	seen := map[string]bool{}
	for _, a := range apps {
		t := s.appToggles[a.ID]
		if t == nil {
			id := a.ID
			t = controls.NewToggle(a.Name, a.On, func(on bool) {
				if s.OnAppNotifications != nil {
					s.OnAppNotifications(id, on)
				}
			})
			t.Scaled = s.Scaled
			s.appToggles[a.ID] = t
		}
		t.SetTitle(a.Name)
		t.SetOn(a.On)
		t.Refresh()
		seen[a.ID] = true
		objs = append(objs, t)
	}
	for id := range s.appToggles {
		if !seen[id] {
			delete(s.appToggles, id)
		}
	}
	s.apps.Objects = objs
	s.apps.Refresh()
}

// SetAppNotifications sets one app's switch.
func (s *Settings) SetAppNotifications(appID string, on bool) {
	if t := s.appToggles[appID]; t != nil {
		t.SetOn(on)
	}
}

// SetAirplane sets the airplane mode switch.
func (s *Settings) SetAirplane(on bool) { s.airplane.SetOn(on) }

// SetBatterySaver sets the battery saver switch.
func (s *Settings) SetBatterySaver(on bool) { s.saver.SetOn(on) }

// SetDark shows the dark (true) or light background as chosen.
func (s *Settings) SetDark(dark bool) {
	i := 1
	if dark {
		i = 0
	}
	s.background.set(i)
}

// SetAccent shows the accent colour called name as chosen.
func (s *Settings) SetAccent(name string) { s.accent.set(name) }

// SetProfile shows the screen called name (a tile.Profile's) and the "show
// more tiles" switch as chosen; the switch is hidden on 1080p, which always
// shows six columns.
func (s *Settings) SetProfile(name string, moreTiles bool) {
	for i, p := range s.profiles {
		if p.Name == name {
			s.screen.set(i)
		}
	}
	s.moreTiles.SetOn(moreTiles)
	s.showMoreTiles()
}

// SetLockApps lists the apps that can show on the lock screen and shows
// the user's choice: the detailed status app ("" for none), picked from
// "none" and the apps, and a "quick status" switch per app, at most
// tile.LockQuickApps of them on (a sixth switched on goes back off).
func (s *Settings) SetLockApps(apps []LockApp, detailed string, quick []string) {
	names := []string{"none"}
	sel := 0
	for i, a := range apps {
		names = append(names, a.Name)
		if a.ID == detailed {
			sel = i + 1
		}
	}
	if !slices.Equal(apps, s.lockApps) || s.detailed == nil {
		s.lockApps = slices.Clone(apps)
		s.detailed = newListPicker("detailed status", names, sel, func(int) { s.lockChanged() })
		s.detailed.relayout = s.page.Scroll.Refresh
		s.detailed.SetPhoneScale(s.Scale())
		s.detailedAt.Objects = []fyne.CanvasObject{s.detailed}
		objs := []fyne.CanvasObject{s.noLock}
		s.quickOn = map[string]*controls.Toggle{}
		for _, a := range apps {
			id := a.ID
			t := controls.NewToggle(a.Name+" quick status", false, func(on bool) { s.quickChanged(id, on) })
			t.SetPhoneScale(s.Scale())
			s.quickOn[id] = t
			objs = append(objs, t)
		}
		s.quick.Objects = objs
		s.noLock.Hidden = len(apps) > 0
		controls.SetVisible(s.detailed, len(apps) > 0)
	}
	s.detailed.set(sel)
	for id, t := range s.quickOn {
		t.SetOn(slices.Contains(quick, id))
	}
	s.detailedAt.Refresh()
	s.quick.Refresh()
	s.page.Scroll.Refresh()
}

// LockApps returns the lock screen's apps as the page shows them chosen.
func (s *Settings) LockApps() (detailed string, quick []string) {
	if s.detailed != nil && s.detailed.selected > 0 {
		detailed = s.lockApps[s.detailed.selected-1].ID
	}
	for _, a := range s.lockApps {
		if t := s.quickOn[a.ID]; t != nil && t.On() {
			quick = append(quick, a.ID)
		}
	}
	return detailed, quick
}

func (s *Settings) quickChanged(id string, on bool) {
	if _, quick := s.LockApps(); on && len(quick) > tile.LockQuickApps {
		s.quickOn[id].SetOn(false) // the lock screen has room for five
		return
	}
	s.lockChanged()
}

func (s *Settings) lockChanged() {
	if s.OnLock != nil {
		s.OnLock(s.LockApps())
	}
}

// Profile returns the screen shown as chosen and the "show more tiles"
// switch.
func (s *Settings) Profile() (name string, moreTiles bool) {
	return s.profiles[s.screen.selected].Name, s.moreTiles.On()
}

func (s *Settings) showMoreTiles() {
	controls.SetVisible(s.moreTiles, s.profiles[s.screen.selected].Name != tile.HD1080.Name)
	s.page.Scroll.Refresh()
}

func (s *Settings) profileChanged() {
	s.showMoreTiles()
	if s.OnProfile != nil {
		s.OnProfile(s.Profile())
	}
}

// ConfirmReset asks "reset device?", as the "reset device" button does.
func (s *Settings) ConfirmReset() {
	s.confirm.Show()
	s.confirm.Refresh()
}

func (s *Settings) hideConfirm() { s.confirm.Hide() }

// HandleBack closes the confirmation or an open picker.
func (s *Settings) HandleBack() bool {
	switch {
	case s.confirm.Visible():
		s.hideConfirm()
	case s.background.open:
		s.background.setOpen(false)
	case s.accent.open:
		s.accent.setOpen(false)
	case s.screen.open:
		s.screen.setOpen(false)
	case s.detailed != nil && s.detailed.open:
		s.detailed.setOpen(false)
	default:
		return false
	}
	return true
}

func (s *Settings) SetPhoneScale(k float32) {
	if !s.Rescale(k) {
		return
	}
	s.page.SetPhoneScale(k)
	s.confirm.SetPhoneScale(k)
	if s.detailed != nil {
		s.detailed.SetPhoneScale(k)
	}
	for _, t := range s.quickOn {
		t.SetPhoneScale(k)
	}
}

// CreateRenderer is part of fyne.Widget.
func (s *Settings) CreateRenderer() fyne.WidgetRenderer { return widget.NewSimpleRenderer(s.stack) }

// listPicker is the Windows Phone toolkit's ListPicker with few items: a
// caption and a bordered box with the chosen item; a tap opens the box in
// place to list every item, and a tap on one chooses it.
type listPicker struct {
	widget.BaseWidget
	controls.Scaled

	items    []string
	selected int
	open     bool
	changed  func(i int)
	relayout func() // re-stacks the page when the picker opens or closes

	caption *controls.TextBlock
	border  *canvas.Rectangle
	texts   []*controls.TextBlock
}

var _ fyne.Tappable = (*listPicker)(nil)

const pickerRow = 44

func newListPicker(caption string, items []string, selected int, changed func(int)) *listPicker {
	p := &listPicker{items: items, selected: selected, changed: changed}
	p.caption = controls.NewText(caption, controls.FontNormal, wptheme.ColorNameSubtle)
	p.border = canvas.NewRectangle(color.Transparent)
	for _, it := range items {
		p.texts = append(p.texts, controls.NewText(it, controls.FontNormal, theme.ColorNameForeground))
	}
	p.ExtendBaseWidget(p)
	return p
}

func (p *listPicker) SetPhoneScale(k float32) {
	if !p.Rescale(k) {
		return
	}
	p.caption.Scaled = p.Scaled
	for _, t := range p.texts {
		t.Scaled = p.Scaled
	}
	p.Refresh()
}

func (p *listPicker) set(i int) {
	if i == p.selected || i < 0 || i >= len(p.items) {
		return
	}
	p.selected = i
	p.Refresh()
}

func (p *listPicker) setOpen(open bool) {
	p.open = open
	p.Refresh()
	if p.relayout != nil { // the picker's height changed
		p.relayout()
	}
}

func (p *listPicker) Tapped(e *fyne.PointEvent) {
	if !p.open {
		p.setOpen(true)
		return
	}
	i := int((e.Position.Y - p.boxTop()) / (pickerRow * p.Scale()))
	p.setOpen(false)
	if i >= 0 && i < len(p.items) && i != p.selected {
		p.selected = i
		p.Refresh()
		if p.changed != nil {
			p.changed(i)
		}
	}
}

func (p *listPicker) boxTop() float32 { return p.caption.MinSize().Height + 4*p.Scale() }

func (p *listPicker) MinSize() fyne.Size {
	n := 1
	if p.open {
		n = len(p.items)
	}
	k := p.Scale()
	return fyne.NewSize(controls.PageWidth*k, p.boxTop()+float32(n)*pickerRow*k+8*k)
}

func (p *listPicker) CreateRenderer() fyne.WidgetRenderer {
	r := &pickerRenderer{p: p}
	r.Refresh()
	return r
}

type pickerRenderer struct{ p *listPicker }

func (r *pickerRenderer) Destroy()           {}
func (r *pickerRenderer) MinSize() fyne.Size { return r.p.MinSize() }
func (r *pickerRenderer) Objects() []fyne.CanvasObject {
	objs := []fyne.CanvasObject{r.p.caption, r.p.border}
	for _, t := range r.p.texts {
		objs = append(objs, t)
	}
	return objs
}

func (r *pickerRenderer) Layout(size fyne.Size) {
	p := r.p
	k := p.Scale()
	p.caption.Resize(p.caption.MinSize())
	top := p.boxTop()
	n := 1
	if p.open {
		n = len(p.items)
	}
	rowH := pickerRow * k
	p.border.Move(fyne.NewPos(0, top))
	p.border.Resize(fyne.NewSize(size.Width, float32(n)*rowH))
	row := 0
	for i, t := range p.texts {
		t.Hidden = !p.open && i != p.selected
		if t.Hidden {
			continue
		}
		h := t.MinSize().Height
		t.Move(fyne.NewPos(12*k, top+float32(row)*rowH+(rowH-h)/2))
		t.Resize(t.MinSize())
		row++
	}
}

func (r *pickerRenderer) Refresh() {
	p := r.p
	p.border.StrokeWidth = 2 * p.Scale()
	p.border.StrokeColor = theme.ColorForWidget(wptheme.ColorNameBorder, p)
	p.border.Refresh()
	p.caption.Refresh()
	for i, t := range p.texts {
		c := theme.ColorNameForeground
		if p.open && i == p.selected {
			c = theme.ColorNamePrimary
		}
		t.SetColor(c)
		t.Refresh()
	}
	r.Layout(p.Size())
}

// accentPicker shows the accent colour as a swatch and its name; a tap
// opens the grid of the twenty accents, four to a row like tiles, and a tap
// on one chooses it.
type accentPicker struct {
	widget.BaseWidget
	controls.Scaled

	name     string
	open     bool
	changed  func(name string)
	relayout func()

	caption *controls.TextBlock
	border  *canvas.Rectangle
	swatch  *canvas.Rectangle
	label   *controls.TextBlock
	grid    []*canvas.Rectangle
	mark    *canvas.Rectangle
}

var _ fyne.Tappable = (*accentPicker)(nil)

const (
	swatchSide = 99 // a small tile
	swatchGap  = 12
)

func newAccentPicker(changed func(string)) *accentPicker {
	p := &accentPicker{name: defaultAccentName(), changed: changed}
	p.caption = controls.NewText("accent color", controls.FontNormal, wptheme.ColorNameSubtle)
	p.border = canvas.NewRectangle(color.Transparent)
	p.swatch = canvas.NewRectangle(accent.Default)
	p.label = controls.NewText(p.name, controls.FontNormal, theme.ColorNameForeground)
	for _, n := range AccentOrder {
		c, _ := accent.Lookup(n)
		p.grid = append(p.grid, canvas.NewRectangle(c))
	}
	p.mark = canvas.NewRectangle(color.Transparent)
	p.ExtendBaseWidget(p)
	return p
}

func defaultAccentName() string {
	for _, n := range AccentOrder {
		if c, _ := accent.Lookup(n); c == accent.Default {
			return n
		}
	}
	return AccentOrder[0]
}

func (p *accentPicker) SetPhoneScale(k float32) {
	if !p.Rescale(k) {
		return
	}
	p.caption.Scaled, p.label.Scaled = p.Scaled, p.Scaled
	p.Refresh()
}

func (p *accentPicker) set(name string) {
	if _, ok := accent.Lookup(name); !ok || name == p.name {
		return
	}
	p.name = name
	p.Refresh()
}

func (p *accentPicker) setOpen(open bool) {
	p.open = open
	p.Refresh()
	if p.relayout != nil { // the picker's height changed
		p.relayout()
	}
}

func (p *accentPicker) boxTop() float32 { return p.caption.MinSize().Height + 4*p.Scale() }

func (p *accentPicker) Tapped(e *fyne.PointEvent) {
	if !p.open {
		p.setOpen(true)
		return
	}
	name := p.nameAt(e.Position)
	p.setOpen(false)
	if name != "" && name != p.name {
		p.name = name
		p.Refresh()
		if p.changed != nil {
			p.changed(name)
		}
	}
}

// nameAt returns the accent whose swatch is at pos in the open grid, "".
func (p *accentPicker) nameAt(pos fyne.Position) string {
	for i, r := range p.grid {
		rp, rs := r.Position(), r.Size()
		if pos.X >= rp.X && pos.Y >= rp.Y && pos.X < rp.X+rs.Width && pos.Y < rp.Y+rs.Height {
			return AccentOrder[i]
		}
	}
	return ""
}

func (p *accentPicker) MinSize() fyne.Size {
	h := float32(pickerRow)
	if p.open {
		rows := (len(AccentOrder) + 3) / 4
		h = float32(rows)*(swatchSide+swatchGap) - swatchGap
	}
	k := p.Scale()
	return fyne.NewSize(controls.PageWidth*k, p.boxTop()+h*k+8*k)
}

func (p *accentPicker) CreateRenderer() fyne.WidgetRenderer {
	r := &accentRenderer{p: p}
	r.Refresh()
	return r
}

type accentRenderer struct{ p *accentPicker }

func (r *accentRenderer) Destroy()           {}
func (r *accentRenderer) MinSize() fyne.Size { return r.p.MinSize() }
func (r *accentRenderer) Objects() []fyne.CanvasObject {
	p := r.p
	objs := []fyne.CanvasObject{p.caption, p.border, p.swatch, p.label}
	for _, g := range p.grid {
		objs = append(objs, g)
	}
	return append(objs, p.mark)
}

func (r *accentRenderer) Layout(size fyne.Size) {
	p := r.p
	k := p.Scale()
	p.caption.Resize(p.caption.MinSize())
	top := p.boxTop()
	p.border.Hidden, p.swatch.Hidden, p.label.Hidden = p.open, p.open, p.open
	for _, g := range p.grid {
		g.Hidden = !p.open
	}
	p.mark.Hidden = !p.open
	row := pickerRow * k
	p.border.Move(fyne.NewPos(0, top))
	p.border.Resize(fyne.NewSize(size.Width, row))
	p.swatch.Move(fyne.NewPos(10*k, top+10*k))
	p.swatch.Resize(fyne.NewSize(row-20*k, row-20*k))
	lh := p.label.MinSize().Height
	p.label.Move(fyne.NewPos(row+4*k, top+(row-lh)/2))
	p.label.Resize(p.label.MinSize())
	side, step := swatchSide*k, (swatchSide+swatchGap)*k
	for i, g := range p.grid {
		pos := fyne.NewPos(float32(i%4)*step, top+float32(i/4)*step)
		g.Move(pos)
		g.Resize(fyne.NewSize(side, side))
		if AccentOrder[i] == p.name {
			p.mark.Move(pos)
			p.mark.Resize(fyne.NewSize(side, side))
		}
	}
}

func (r *accentRenderer) Refresh() {
	p := r.p
	p.border.StrokeWidth, p.mark.StrokeWidth = 2*p.Scale(), 4*p.Scale()
	p.border.StrokeColor = theme.ColorForWidget(wptheme.ColorNameBorder, p)
	p.mark.StrokeColor = theme.ColorForWidget(theme.ColorNameForeground, p)
	if c, ok := accent.Lookup(p.name); ok {
		p.swatch.FillColor = c
	}
	p.label.SetText(p.name)
	for _, o := range []fyne.CanvasObject{p.caption, p.border, p.swatch, p.label, p.mark} {
		o.Refresh()
	}
	r.Layout(p.Size())
}
