package handset

import (
	"image/color"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/layout"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"github.com/openmpns/openmpns/emulator/tile"
	"github.com/openmpns/openmpns/emulator/ui/controls"
	"github.com/openmpns/openmpns/emulator/ui/toastview"
	"github.com/openmpns/openmpns/shared/payload"
)

// ToastSlide is how long a toast takes to slide in or out.
const ToastSlide = 250 * time.Millisecond

// Colours of the phone's body, the same in both themes.
var (
	bezelColor  = color.NRGBA{R: 0x16, G: 0x16, B: 0x16, A: 0xFF}
	bezelEdge   = color.NRGBA{R: 0x3A, G: 0x3A, B: 0x3A, A: 0xFF}
	bezelDetail = color.NRGBA{R: 0x30, G: 0x30, B: 0x30, A: 0xFF}
	keyColor    = color.NRGBA{R: 0xDD, G: 0xDD, B: 0xDD, A: 0xFF}
)

// Phone is the emulated handset: a black body with the 480×800 screen and
// the three hardware keys (back, start, search) under it. The screen shows
// the status bar, one screen at a time with a back stack, an optional dialog
// over the screen (the opt-in prompt, a confirmation) and the toast slot at
// the top, where a toastview.Banner slides in and out.
//
// The Phone keeps its shape: in whatever room it gets it grows or shrinks,
// keeping its aspect ratio, to the largest body that fits, centred: k times
// PhoneWidth×PhoneHeight, k no smaller than controls.MinScale. All of it is drawn k
// times larger: the bezel and keys, the status bar, the toast banner, and
// the screen on top and the dialog, whose text, margins and controls are
// given the scale (the start screen scales its tiles to its width). At 2×
// the phone looks as it does at 1×, twice as large. Scale() reports the
// factor. fyne's own scale (FYNE_SCALE, --scale) multiplies all of that,
// the inspector's included. See doc.go.
//
// All methods must be called on the fyne UI goroutine (fyne.Do).
type Phone struct {
	widget.BaseWidget

	// OnNavigate, if set, is called with the screen on top after Push,
	// Back or Home changed it (the controller learns which app is in the
	// foreground from it).
	OnNavigate func(screen fyne.CanvasObject)
	// OnStart, if set, is called when the user pressed the start key; the
	// phone has already gone back to its home screen.
	OnStart func()
	// OnSearch, if set, is called when the user pressed the search key.
	OnSearch func()
	// OnPower, if set, is called when the user pressed the power button on
	// the right side of the body (the controller locks or unlocks the
	// phone: ShowLock, HideLock).
	OnPower func()
	// OnToastTapped, if set, is called when the user tapped the toast on
	// screen (the phone opens the app at the toast's Param). The banner is
	// already gone.
	OnToastTapped func(t payload.Toast)
	// OnToastDismissed, if set, is called when the user flicked the toast
	// away to the right.
	OnToastDismissed func(t payload.Toast)

	status  *statusBar
	stack   []fyne.CanvasObject
	content *fyne.Container // holds the screen on top of the stack
	screens *container.Clip // clips the screen to the phone's display
	dialog  fyne.CanvasObject
	dialogs *fyne.Container // holds the dialog, if any
	lock    fyne.CanvasObject
	locks   *fyne.Container // holds the lock screen while the phone is locked
	power   *controls.TapArea

	banner     *toastview.Banner
	toastLayer *fyne.Container // the banner, moved by hand
	toastClip  *container.Clip
	toastOn    bool
	toastX     float32 // the banner's offset during a slide
	toastY     float32
	toastAnim  *fyne.Animation

	keys [3]*controls.TapArea // back, start, search

	scale   float32      // body size / BodySize at scale 1, at least controls.MinScale
	profile tile.Profile // the screen: its height in logical units
	screen  fyne.Size    // the screen's size at that scale
}

// NewPhone returns a phone showing home (the start screen) under an empty
// status bar, "offline".
func NewPhone(home fyne.CanvasObject) *Phone {
	p := &Phone{status: newStatusBar(), scale: 1, profile: tile.DefaultProfile}
	p.screen = p.screenAt(1)
	p.content = container.NewStack()
	p.screens = newClip(p.content)
	p.dialogs = container.NewStack()
	p.dialogs.Hide()
	p.locks = container.NewStack()
	p.locks.Hide()
	p.power = controls.NewTapArea(fyne.NewSize(bezelSide, powerLength), func() {
		if p.OnPower != nil {
			p.OnPower()
		}
	})

	p.banner = toastview.NewBanner(payload.Toast{})
	p.banner.OnTapped = p.toastTapped
	p.banner.OnDismissed = p.toastFlicked
	p.toastLayer = container.NewWithoutLayout(p.banner)
	p.toastClip = newClip(p.toastLayer)
	p.toastClip.Hide()

	p.keys[0] = controls.NewTapArea(fyne.NewSize(120, bezelBottom), func() { p.Back() })
	p.keys[1] = controls.NewTapArea(fyne.NewSize(120, bezelBottom), p.startPressed)
	p.keys[2] = controls.NewTapArea(fyne.NewSize(120, bezelBottom), func() {
		if p.OnSearch != nil && p.lock == nil {
			p.OnSearch()
		}
	})

	p.ExtendBaseWidget(p)
	if home == nil {
		home = layout.NewSpacer()
	}
	p.stack = []fyne.CanvasObject{home}
	p.content.Objects = []fyne.CanvasObject{home}
	return p
}

// SetTime sets the clock at the right of the status bar ("12:38").
func (p *Phone) SetTime(s string) {
	if p.status.time == s {
		return
	}
	p.status.time = s
	p.status.Refresh()
}

// SetConnection sets the push connection state drawn at the left of the
// status bar: Connected, Connecting, Offline or Airplane.
func (p *Phone) SetConnection(state string) {
	if p.status.connection == state {
		return
	}
	p.status.connection = state
	p.status.Refresh()
}

// SetBatterySaver shows or hides the battery saver mark.
func (p *Phone) SetBatterySaver(on bool) {
	if p.status.saver == on {
		return
	}
	p.status.saver = on
	p.status.Refresh()
}

// Current returns the screen on top of the back stack.
func (p *Phone) Current() fyne.CanvasObject { return p.stack[len(p.stack)-1] }

// Depth returns the number of screens on the back stack, home included.
func (p *Phone) Depth() int { return len(p.stack) }

// Push puts screen on top of the back stack and shows it. Pushing the
// screen already on top does nothing.
func (p *Phone) Push(screen fyne.CanvasObject) {
	if screen == nil || screen == p.Current() {
		return
	}
	p.stack = append(p.stack, screen)
	p.showCurrent()
}

// Back does what the back key does: it closes the dialog if one is open
// (after offering the key to it, see controls.BackHandler), else offers the key to
// the screen on top, else goes back to the previous screen. It reports
// whether anything happened: false on the home screen, where a real phone
// would leave the emulator's shell.
func (p *Phone) Back() bool {
	if p.lock != nil {
		return true // the lock screen keeps the key
	}
	if p.dialog != nil {
		if h, ok := p.dialog.(controls.BackHandler); !ok || !h.HandleBack() {
			p.HideDialog()
		}
		return true
	}
	if h, ok := p.Current().(controls.BackHandler); ok && h.HandleBack() {
		return true
	}
	if len(p.stack) == 1 {
		return false
	}
	p.stack[len(p.stack)-1] = nil
	p.stack = p.stack[:len(p.stack)-1]
	p.showCurrent()
	return true
}

// Home goes back to the home screen, emptying the back stack and closing
// any dialog.
func (p *Phone) Home() {
	p.HideDialog()
	if len(p.stack) == 1 {
		return
	}
	clear(p.stack[1:])
	p.stack = p.stack[:1]
	p.showCurrent()
}

func (p *Phone) showCurrent() {
	cur := p.Current()
	controls.ScaleTree(cur, p.scale)
	p.content.Objects[0] = cur
	p.content.Refresh()
	if p.OnNavigate != nil {
		p.OnNavigate(cur)
	}
}

func (p *Phone) startPressed() {
	if p.lock != nil {
		return
	}
	p.Home()
	if p.OnStart != nil {
		p.OnStart()
	}
}

// ShowDialog shows d over the screen, under the status bar; it replaces
// any dialog shown. d gets the whole screen below the status bar and draws
// its own veil (see OptIn). The back key closes it (see Back).
func (p *Phone) ShowDialog(d fyne.CanvasObject) {
	if d == nil {
		p.HideDialog()
		return
	}
	p.dialog = d
	controls.ScaleTree(d, p.scale)
	p.dialogs.Objects = []fyne.CanvasObject{d}
	p.dialogs.Show()
	p.dialogs.Refresh()
}

// ShowLock shows the lock screen l over everything but the status bar and
// the toasts (a toast shows on the lock screen too). While it is up the
// keys under the screen do nothing and the back key is kept; the screens
// and any dialog wait under it.
func (p *Phone) ShowLock(l fyne.CanvasObject) {
	if l == nil {
		p.HideLock()
		return
	}
	p.lock = l
	controls.ScaleTree(l, p.scale)
	p.locks.Objects = []fyne.CanvasObject{l}
	p.locks.Show()
	p.locks.Refresh()
}

// HideLock takes the lock screen away, if it is up.
func (p *Phone) HideLock() {
	if p.lock == nil {
		return
	}
	p.lock = nil
	p.locks.Objects = nil
	p.locks.Hide()
}

// Locked reports whether the lock screen is up.
func (p *Phone) Locked() bool { return p.lock != nil }

// HideDialog removes the dialog, if any.
func (p *Phone) HideDialog() {
	if p.dialog == nil {
		return
	}
	p.dialog = nil
	p.dialogs.Objects = nil
	p.dialogs.Hide()
}

// Dialog returns the dialog shown, or nil.
func (p *Phone) Dialog() fyne.CanvasObject { return p.dialog }

// ShowToast shows t in the toast slot with the app's icon (nil for none):
// the banner slides down from the top of the screen over the status bar.
// A toast shown while another is on screen replaces it in place. The
// banner stays until HideToast, a tap or a flick: the controller's
// toast.Queue decides how long a toast stays.
func (p *Phone) ShowToast(t payload.Toast, icon fyne.Resource) {
	p.banner.SetToast(t)
	p.banner.SetIcon(icon)
	p.banner.SetAccent(theme.ColorForWidget(theme.ColorNamePrimary, p))
	if p.toastOn {
		return
	}
	p.toastOn = true
	p.toastClip.Show()
	p.slideToast(0, -p.banner.Height(), 0, 0, nil)
}

// HideToast slides the toast on screen back up and out of sight.
func (p *Phone) HideToast() {
	if !p.toastOn {
		return
	}
	p.toastOn = false
	p.slideToast(0, p.toastY, 0, -p.banner.Height(), p.toastGone)
}

// Toast returns the toast on screen and true, or false when the slot is
// empty (or the last toast is sliding out).
func (p *Phone) Toast() (payload.Toast, bool) {
	if !p.toastOn {
		return payload.Toast{}, false
	}
	return p.banner.Toast(), true
}

func (p *Phone) toastTapped() {
	if !p.toastOn {
		return
	}
	t := p.banner.Toast()
	p.toastOn = false
	p.stopToastAnim()
	p.toastGone()
	if p.OnToastTapped != nil {
		p.OnToastTapped(t)
	}
}

// toastFlicked slides the banner off to the right, the way it was flicked.
func (p *Phone) toastFlicked() {
	if !p.toastOn {
		return
	}
	t := p.banner.Toast()
	p.toastOn = false
	p.slideToast(0, 0, p.screen.Width, 0, p.toastGone)
	if p.OnToastDismissed != nil {
		p.OnToastDismissed(t)
	}
}

func (p *Phone) toastGone() {
	p.toastClip.Hide()
	p.toastX, p.toastY = 0, -p.banner.Height()
	p.placeBanner()
}

// slideToast moves the banner from (x0, y0) to (x1, y1) in ToastSlide and
// then calls done (if not nil). A slide started while another runs replaces
// it from where the banner is.
func (p *Phone) slideToast(x0, y0, x1, y1 float32, done func()) {
	p.stopToastAnim()
	var a *fyne.Animation
	a = fyne.NewAnimation(ToastSlide, func(f float32) {
		if p.toastAnim != a {
			return
		}
		p.toastX, p.toastY = x0+(x1-x0)*f, y0+(y1-y0)*f
		p.placeBanner()
		if f >= 1 {
			p.toastAnim = nil
			if done != nil {
				done()
			}
		}
	})
	a.Curve = fyne.AnimationEaseOut
	p.toastAnim = a
	p.toastX, p.toastY = x0, y0
	p.placeBanner()
	a.Start()
}

func (p *Phone) stopToastAnim() {
	if a := p.toastAnim; a != nil {
		p.toastAnim = nil
		a.Stop()
	}
}

func (p *Phone) placeBanner() {
	p.banner.Move(fyne.NewPos(p.toastX, p.toastY))
	p.banner.Resize(fyne.NewSize(p.screen.Width, p.banner.Height()))
}

// ScreenArea is the part of the screen under the status bar where the
// screens and dialogs are shown: what a screen's position is measured from.
func (p *Phone) ScreenArea() fyne.CanvasObject { return p.screens }

// StatusBar is the status bar across the top of the screen.
func (p *Phone) StatusBar() fyne.CanvasObject { return p.status }

// SetProfile gives the phone the screen of profile p: 480×800 logical
// units on a 15:9 screen (WVGA, WXGA), 480×853 on a 16:9 one (720p, 1080p).
// The body grows or shrinks with it; the screens are laid out again.
func (p *Phone) SetProfile(pr tile.Profile) {
	if pr.LogicalHeight() == p.profile.LogicalHeight() && pr == p.profile {
		return
	}
	p.profile = pr
	p.screen = p.screenAt(p.scale)
	p.Refresh()
}

// Profile returns the screen the phone has.
func (p *Phone) Profile() tile.Profile { return p.profile }

// BodySize is the phone's size at scale 1, bezel included, for its
// profile: PhoneWidth×PhoneHeight with a 15:9 screen.
func (p *Phone) BodySize() fyne.Size { return bodySize(p.profile) }

// screenAt is the screen's size at scale k.
func (p *Phone) screenAt(k float32) fyne.Size {
	return fyne.NewSize(controls.ScreenWidth*k, p.profile.LogicalHeight()*k)
}

// Scale returns how much larger than PhoneWidth×PhoneHeight the phone is
// drawn in the room it was given: controls.MinScale at its minimum size, 1 in a
// room of PhoneWidth×PhoneHeight.
func (p *Phone) Scale() float32 { return p.scale }

// ScreenSize returns the size of the phone's screen (status bar included)
// in the room it was given: ScreenWidth×ScreenHeight times Scale.
func (p *Phone) ScreenSize() fyne.Size { return p.screen }

// setScale gives the phone's parts scale k: the status bar, the toast
// banner, the screen on top and the dialog. Screens further down the back
// stack get it when they are shown again.
func (p *Phone) SetPhoneScale(k float32) {
	p.scale = k
	p.screen = p.screenAt(k)
	p.status.SetPhoneScale(k)
	p.banner.SetScale(k)
	if !p.toastOn && p.toastAnim == nil { // out of sight, above the screen
		p.toastY = -p.banner.Height()
	}
	controls.ScaleTree(p.Current(), k)
	if p.dialog != nil {
		controls.ScaleTree(p.dialog, k)
	}
	if p.lock != nil {
		controls.ScaleTree(p.lock, k)
	}
}

// fitScale is the largest factor by which the phone's body fits in size,
// and at least controls.MinScale.
func (p *Phone) fitScale(size fyne.Size) float32 {
	body := p.BodySize()
	return max(controls.MinScale, min(size.Width/body.Width, size.Height/body.Height))
}

// MinSize is the phone's body at controls.MinScale.
func (p *Phone) MinSize() fyne.Size {
	body := p.BodySize()
	return fyne.NewSize(body.Width*controls.MinScale, body.Height*controls.MinScale)
}

// CreateRenderer is part of fyne.Widget.
func (p *Phone) CreateRenderer() fyne.WidgetRenderer {
	r := &phoneRenderer{p: p, screen: canvas.NewRectangle(color.Black)}
	for i := range r.body {
		r.body[i] = canvas.NewRectangle(bezelColor)
	}
	for _, b := range r.body[:2] { // the ends: rounded corners, outlined
		b.StrokeColor, b.StrokeWidth = bezelEdge, 1
	}
	for i := range r.edge {
		r.edge[i] = canvas.NewLine(bezelEdge)
		r.edge[i].StrokeWidth = 1
	}
	for i := range r.seam {
		r.seam[i] = canvas.NewRectangle(color.Black)
	}
	r.earpiece = canvas.NewRectangle(bezelDetail)
	r.earpiece.CornerRadius = 3
	r.camera = canvas.NewCircle(bezelDetail)
	r.back = controls.NewGlyph(controls.GlyphBack, 2.5, keyColor)
	r.search = controls.NewGlyph(controls.GlyphSearch, 2.5, keyColor)
	for i := range r.logo {
		r.logo[i] = canvas.NewRectangle(keyColor)
	}
	r.powerKey = canvas.NewRectangle(bezelEdge)
	r.objects = []fyne.CanvasObject{r.body[0], r.body[1], r.body[2], r.body[3], r.edge[0], r.edge[1],
		r.earpiece, r.camera, r.powerKey, r.screen, r.seam[0], r.seam[1], r.seam[2], r.seam[3], p.screens, p.dialogs, p.locks, p.status, p.toastClip, r.back, r.search}
	for _, l := range r.logo {
		r.objects = append(r.objects, l)
	}
	for _, k := range p.keys {
		r.objects = append(r.objects, k)
	}
	r.objects = append(r.objects, p.power)
	r.Refresh()
	return r
}

type phoneRenderer struct {
	p *Phone
	// body is the phone's body around the screen, in four pieces (top and
	// bottom with the rounded corners, then the sides) and edge its outline
	// along the sides: one rounded rectangle behind the screen would be
	// shaded over the whole phone at every frame, most of it hidden, and
	// under a software GL that was a fifth of a frame's cost.
	body [4]*canvas.Rectangle
	edge [2]*canvas.Line
	// seam covers, in the screen's colour, where the body's pieces reach
	// under the screen, when the screen itself is not drawn (it is the
	// colour the canvas is cleared to: controls.IsCanvasBackground).
	seam     [4]*canvas.Rectangle
	earpiece *canvas.Rectangle
	camera   *canvas.Circle
	powerKey *canvas.Rectangle
	screen   *canvas.Rectangle
	back     *controls.GlyphIcon
	search   *controls.GlyphIcon
	logo     [4]*canvas.Rectangle
	objects  []fyne.CanvasObject
}

func (r *phoneRenderer) Destroy()                     {}
func (r *phoneRenderer) MinSize() fyne.Size           { return r.p.MinSize() }
func (r *phoneRenderer) Objects() []fyne.CanvasObject { return r.objects }

func (r *phoneRenderer) Refresh() {
	p := r.p
	r.screen.FillColor = theme.ColorForWidget(theme.ColorNameBackground, p)
	// The canvas is cleared in the app theme's background before anything
	// is drawn (fyne's GL painter and its software one alike): a screen of
	// that colour is not drawn again, which under a software GL saved a
	// twentieth of a frame per phone.
	r.screen.Hidden = controls.IsCanvasBackground(r.screen.FillColor)
	r.screen.Refresh()
	for _, sm := range r.seam {
		sm.FillColor, sm.Hidden = r.screen.FillColor, !r.screen.Hidden
		sm.Refresh()
	}
	p.banner.SetAccent(theme.ColorForWidget(theme.ColorNamePrimary, p))
	p.status.Refresh()
	p.screens.Refresh()
	p.dialogs.Refresh()
	p.locks.Refresh()
	r.Layout(p.Size())
}

// Layout fits the body in size, keeping its shape (see fitScale), and
// centres it. Everything on the body scales with it: the status bar, the
// toast and the screens are given the scale (setScale) and the scaled
// screen.
func (r *phoneRenderer) Layout(size fyne.Size) {
	p := r.p
	k := p.fitScale(size)
	if k != p.scale {
		p.SetPhoneScale(k)
	}
	body := p.BodySize()
	bw, bh := body.Width*k, body.Height*k
	sw, sh := p.screenAt(k).Width, p.screenAt(k).Height
	p.screen = fyne.NewSize(sw, sh)
	ox := max(0, (size.Width-bw)/2)
	oy := max(0, (size.Height-bh)/2)
	top, side, bottom := bezelTop*k, bezelSide*k, bezelBottom*k
	r.layoutBody(ox, oy, bw, bh, top, side, bottom, 40*k)
	r.earpiece.Move(fyne.NewPos(ox+bw/2-40*k, oy+top/2-3*k))
	r.earpiece.Resize(fyne.NewSize(80*k, 6*k))
	r.camera.Move(fyne.NewPos(ox+bw/2+70*k, oy+top/2-4*k))
	r.camera.Resize(fyne.NewSize(8*k, 8*k))

	sx, sy := ox+side, oy+top
	r.screen.Move(fyne.NewPos(sx, sy))
	r.screen.Resize(p.screen)
	bar := controls.StatusBarHeight * k
	p.status.Move(fyne.NewPos(sx, sy))
	p.status.Resize(fyne.NewSize(sw, bar))
	p.screens.Move(fyne.NewPos(sx, sy+bar))
	p.screens.Resize(fyne.NewSize(sw, sh-bar))
	p.dialogs.Move(fyne.NewPos(sx, sy+bar))
	p.dialogs.Resize(fyne.NewSize(sw, sh-bar))
	p.locks.Move(fyne.NewPos(sx, sy+bar))
	p.locks.Resize(fyne.NewSize(sw, sh-bar))
	// The power button: a bar along the right edge of the body.
	r.powerKey.Move(fyne.NewPos(ox+bw-side/2-2*k, oy+powerTop*k))
	r.powerKey.Resize(fyne.NewSize(4*k, powerLength*k))
	r.powerKey.CornerRadius = 2 * k
	p.power.Move(fyne.NewPos(ox+bw-side, oy+powerTop*k))
	p.power.Resize(fyne.NewSize(side, powerLength*k))
	p.toastClip.Move(fyne.NewPos(sx, sy))
	p.toastClip.Resize(fyne.NewSize(sw, p.banner.Height()))
	p.placeBanner()

	// The keys: back, start, search, centred on thirds of the screen width.
	ky := sy + sh
	kw := 120 * k
	for i, key := range p.keys {
		key.Move(fyne.NewPos(sx+float32(i)*sw/3+(sw/3-kw)/2, ky))
		key.Resize(fyne.NewSize(kw, bottom))
	}
	g := 30 * k // glyph box
	gy := ky + (bottom-g)/2
	r.back.SetStroke(2.5 * k)
	r.search.SetStroke(2.5 * k)
	r.back.Move(fyne.NewPos(sx+sw/6-g/2, gy))
	r.back.Resize(fyne.NewSize(g, g))
	r.search.Move(fyne.NewPos(sx+5*sw/6-g/2, gy))
	r.search.Resize(fyne.NewSize(g, g))
	// The Windows logo: four panes.
	pane, gap := 11*k, 2*k
	lx, ly := sx+sw/2-pane-gap/2, ky+bottom/2-pane-gap/2
	for i, l := range r.logo {
		l.Move(fyne.NewPos(lx+float32(i%2)*(pane+gap), ly+float32(i/2)*(pane+gap)))
		l.Resize(fyne.NewSize(pane, pane))
	}
}

// layoutBody lays the body's pieces out around the screen, for a body of
// bw×bh at (ox, oy) with the given bezels and corner radius. Each piece
// reaches a few units under the screen, which is drawn over them, so that
// the outline the ends draw along their inner edge is hidden (under the
// screen, or under the sides, drawn after the ends), and no seam shows.
func (r *phoneRenderer) layoutBody(ox, oy, bw, bh, top, side, bottom, radius float32) {
	ends, sides := r.body[:2], r.body[2:]
	ends[0].Move(fyne.NewPos(ox, oy))
	ends[0].Resize(fyne.NewSize(bw, top+under))
	ends[0].TopLeftCornerRadius, ends[0].TopRightCornerRadius = radius, radius
	ends[1].Move(fyne.NewPos(ox, oy+bh-bottom-under))
	ends[1].Resize(fyne.NewSize(bw, bottom+under))
	ends[1].BottomLeftCornerRadius, ends[1].BottomRightCornerRadius = radius, radius
	h := bh - top - bottom
	sides[0].Move(fyne.NewPos(ox, oy+top))
	sides[1].Move(fyne.NewPos(ox+bw-side-under, oy+top))
	for _, s := range sides {
		s.Resize(fyne.NewSize(side+under, h))
	}
	r.edge[0].Position1, r.edge[0].Position2 = fyne.NewPos(ox+0.5, oy+top), fyne.NewPos(ox+0.5, oy+top+h)
	r.edge[1].Position1, r.edge[1].Position2 = fyne.NewPos(ox+bw-0.5, oy+top), fyne.NewPos(ox+bw-0.5, oy+top+h)

	// The seams: the band of the screen the pieces reach under, and a
	// unit more for the antialiased edge of the ends' outline.
	const band = under + 1
	sx, sy, sw := ox+side, oy+top, bw-2*side
	r.seam[0].Move(fyne.NewPos(sx, sy))
	r.seam[0].Resize(fyne.NewSize(sw, band))
	r.seam[1].Move(fyne.NewPos(sx, sy+h-band))
	r.seam[1].Resize(fyne.NewSize(sw, band))
	r.seam[2].Move(fyne.NewPos(sx, sy))
	r.seam[3].Move(fyne.NewPos(sx+sw-band, sy))
	for _, sm := range r.seam[2:] {
		sm.Resize(fyne.NewSize(band, h))
	}
}

// under is how far, in logical units, the body's pieces reach under the
// screen (see layoutBody).
const under = 4

// newClip is container.NewClip, ready to be laid out before it is first
// drawn (NewClip leaves the widget unextended until its renderer is made,
// and a Resize before that would not reach its content).
func newClip(content fyne.CanvasObject) *container.Clip {
	c := container.NewClip(content)
	c.ExtendBaseWidget(c)
	return c
}
