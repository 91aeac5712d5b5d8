package handset

import (
	"image/color"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"github.com/openmpns/openmpns/emulator/ui/controls"
	"github.com/openmpns/openmpns/emulator/ui/wptheme"
)

// The push connection states the status bar knows how to draw. Any other
// string is shown as it is, like Offline.
const (
	Connected  = "connected"  // the push client's session is up
	Connecting = "connecting" // dialling or waiting to retry
	Offline    = "offline"    // no session (server unreachable, refused)
	Airplane   = "airplane"   // the user turned airplane mode on
)

// statusBar is the system tray across the top of the screen: signal bars (or
// a plane in airplane mode) and the push connection state at the left; the
// battery saver mark, the battery and the time at the right.
type statusBar struct {
	widget.BaseWidget
	controls.Scaled

	time       string
	connection string
	saver      bool
}

func newStatusBar() *statusBar {
	s := &statusBar{connection: Offline}
	s.ExtendBaseWidget(s)
	return s
}

func (s *statusBar) SetPhoneScale(k float32) {
	if s.Rescale(k) {
		s.Refresh()
	}
}

// height is the bar's height at its scale.
func (s *statusBar) height() float32 { return controls.StatusBarHeight * s.Scale() }

func (s *statusBar) MinSize() fyne.Size {
	return fyne.NewSize(controls.ScreenWidth*s.Scale(), s.height())
}

const (
	barCount     = 5
	barWidth     = 3
	barGap       = 2
	statusLeft   = 12
	statusRight  = 12
	statusText   = 15
	timeText     = 18
	batteryW     = 24
	batteryH     = 12
	statusMiddle = controls.StatusBarHeight / 2
)

func (s *statusBar) CreateRenderer() fyne.WidgetRenderer {
	r := &statusRenderer{s: s}
	for i := range r.bars {
		r.bars[i] = canvas.NewRectangle(color.Transparent)
		r.objects = append(r.objects, r.bars[i])
	}
	// The plane: fuselage, wings and tail plane, pointing up.
	for i := range r.plane {
		r.plane[i] = canvas.NewRectangle(color.Transparent)
		r.plane[i].CornerRadius = 1
		r.objects = append(r.objects, r.plane[i])
	}
	r.dot = canvas.NewCircle(color.Transparent)
	r.state = controls.NewText("", statusText, theme.ColorNameForeground)
	r.saver = controls.NewText("saver", statusText, theme.ColorNameForeground)
	r.battery = canvas.NewRectangle(color.Transparent)
	r.level = canvas.NewRectangle(color.Transparent)
	r.nub = canvas.NewRectangle(color.Transparent)
	r.time = controls.NewText("", timeText, theme.ColorNameForeground)
	r.objects = append(r.objects, r.dot, r.state, r.saver, r.battery, r.level, r.nub, r.time)
	r.Refresh()
	return r
}

type statusRenderer struct {
	s       *statusBar
	bars    [barCount]*canvas.Rectangle
	plane   [3]*canvas.Rectangle
	dot     *canvas.Circle
	state   *controls.TextBlock
	saver   *controls.TextBlock
	battery *canvas.Rectangle
	level   *canvas.Rectangle
	nub     *canvas.Rectangle
	time    *controls.TextBlock
	objects []fyne.CanvasObject
}

func (r *statusRenderer) Destroy()                     {}
func (r *statusRenderer) MinSize() fyne.Size           { return r.s.MinSize() }
func (r *statusRenderer) Objects() []fyne.CanvasObject { return r.objects }

func (r *statusRenderer) Refresh() {
	s := r.s
	k := s.Scale()
	r.state.Scaled, r.saver.Scaled, r.time.Scaled = s.Scaled, s.Scaled, s.Scaled
	r.dot.StrokeWidth, r.battery.StrokeWidth = 1.5*k, 1.5*k
	for _, p := range r.plane {
		p.CornerRadius = k
	}
	fg := theme.ColorForWidget(theme.ColorNameForeground, s)
	subtle := theme.ColorForWidget(wptheme.ColorNameSubtle, s)

	airplane := s.connection == Airplane
	for i, b := range r.bars {
		b.Hidden = airplane
		b.FillColor = fg
		if s.connection != Connected && i > 0 {
			b.FillColor = subtle
		}
		b.Refresh()
	}
	for _, p := range r.plane {
		p.Hidden = !airplane
		p.FillColor = fg
		p.Refresh()
	}

	var text string
	r.dot.FillColor, r.dot.StrokeColor = color.Transparent, fg
	switch s.connection {
	case Connected:
		text, r.dot.FillColor = "connected", fg
	case Connecting:
		text = "connecting…"
	case Airplane:
		text = "airplane mode"
	case "":
		text = Offline
	default:
		text = s.connection
	}
	r.dot.Refresh()
	r.state.SetText(text)
	r.state.Refresh()

	r.saver.Hidden = !s.saver
	r.saver.Refresh()
	r.battery.StrokeColor = fg
	r.battery.Refresh()
	r.level.FillColor = fg
	if s.saver {
		r.level.FillColor = theme.ColorForWidget(theme.ColorNamePrimary, s)
	}
	r.level.Refresh()
	r.nub.FillColor = fg
	r.nub.Refresh()
	r.time.SetText(s.time)
	r.time.Refresh()
	r.Layout(s.Size())
}

func (r *statusRenderer) Layout(size fyne.Size) {
	k := r.s.Scale()
	mid := statusMiddle * k
	// Signal bars, growing to the right, bottoms aligned.
	base := (statusMiddle + 8) * k
	for i, b := range r.bars {
		h := float32(4+3*i) * k
		b.Move(fyne.NewPos((statusLeft+float32(i)*(barWidth+barGap))*k, base-h))
		b.Resize(fyne.NewSize(barWidth*k, h))
	}
	// The plane in the same 23×16 box.
	cx := (statusLeft + 11) * k
	r.plane[0].Move(fyne.NewPos(cx-1.5*k, mid-9*k))
	r.plane[0].Resize(fyne.NewSize(3*k, 18*k))
	r.plane[1].Move(fyne.NewPos(cx-10*k, mid-2*k))
	r.plane[1].Resize(fyne.NewSize(20*k, 3*k))
	r.plane[2].Move(fyne.NewPos(cx-5*k, mid+6*k))
	r.plane[2].Resize(fyne.NewSize(10*k, 2*k))

	x := (statusLeft + barCount*(barWidth+barGap) + 12) * k
	r.dot.Move(fyne.NewPos(x, mid-4*k))
	r.dot.Resize(fyne.NewSize(8*k, 8*k))
	x += 14 * k
	sh := r.state.MinSize()
	r.state.Move(fyne.NewPos(x, mid-sh.Height/2))
	r.state.Resize(sh)

	// From the right: time, battery, saver.
	tm := r.time.MinSize()
	x = size.Width - statusRight*k - tm.Width
	r.time.Move(fyne.NewPos(x, mid-tm.Height/2))
	r.time.Resize(tm)
	x -= (10 + 2) * k
	r.nub.Move(fyne.NewPos(x, mid-3*k))
	r.nub.Resize(fyne.NewSize(2*k, 6*k))
	x -= batteryW * k
	r.battery.Move(fyne.NewPos(x, mid-batteryH*k/2))
	r.battery.Resize(fyne.NewSize(batteryW*k, batteryH*k))
	r.level.Move(fyne.NewPos(x+3*k, mid-batteryH*k/2+3*k))
	r.level.Resize(fyne.NewSize((batteryW-6)*0.7*k, (batteryH-6)*k))
	sv := r.saver.MinSize()
	r.saver.Move(fyne.NewPos(x-8*k-sv.Width, mid-sv.Height/2))
	r.saver.Resize(sv)
}
