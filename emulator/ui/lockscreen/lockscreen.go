// Package lockscreen draws the Windows Phone 8 lock screen: the clock and
// the date, one app's detailed status text under them, and up to five apps'
// quick status (the app's 38×38 lock icon, white on transparent, with its
// count) along the bottom. What it shows comes from the apps' primary tiles
// (tile.State.LockText and LockCount, gathered by phone.Phone.LockScreen);
// which apps, from the user's choice in Settings.
//
// The lock screen is always drawn light on dark, whatever the theme (it is
// drawn over the lock screen's picture). A tap, or a drag upwards, unlocks
// the phone (OnUnlock); the back key does nothing while it is up.
package lockscreen

import (
	"image/color"
	"slices"
	"strconv"
	"time"

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

// Quick is one app's quick status: its lock icon (nil draws none) and its
// count.
type Quick struct {
	Icon  fyne.Resource
	Count int
}

// Geometry of the lock screen at scale 1, in logical units.
const (
	marginLeft  = 24
	marginBelow = 24
	clockSize   = 104 // the time, thin
	dateSize    = controls.FontLarge
	textSize    = controls.FontMediumLarge
	iconSide    = 38.0 / 1.6 // a lock icon is 38 WXGA pixels
	quickGap    = 22         // between one app's count and the next icon
	countSize   = controls.FontMediumLarge
	// UnlockDistance is how far up a drag must go to unlock.
	UnlockDistance = 80
	// textWidth is the width of a line of detailed status text.
	textWidth = controls.ScreenWidth - 2*marginLeft
)

// Background colours: the lock screen's picture, a dusk gradient.
var (
	skyTop    = color.NRGBA{R: 0x1B, G: 0x2A, B: 0x4A, A: 0xFF}
	skyBottom = color.NRGBA{R: 0x05, G: 0x07, B: 0x0C, A: 0xFF}
)

// Lock is the lock screen, for the handset's lock slot (Phone.ShowLock).
// All methods must be called on the fyne UI goroutine.
type Lock struct {
	widget.BaseWidget
	controls.Scaled

	// OnUnlock, if set, is called when the user tapped or swiped up.
	OnUnlock func()

	bg     *canvas.LinearGradient
	clock  *controls.TextBlock
	date   *controls.TextBlock
	lines  [tile.LockLines]*controls.TextBlock
	icons  [tile.LockQuickApps]*canvas.Image
	counts [tile.LockQuickApps]*controls.TextBlock
	quick  []Quick
	drag   float32
	themed *container.ThemeOverride
	layer  *fyne.Container
}

var (
	_ fyne.Widget          = (*Lock)(nil)
	_ fyne.Tappable        = (*Lock)(nil)
	_ fyne.Draggable       = (*Lock)(nil)
	_ controls.BackHandler = (*Lock)(nil)
	_ controls.Scaler      = (*Lock)(nil)
)

// New returns a lock screen at midnight with no app status.
func New() *Lock {
	l := &Lock{
		bg:    canvas.NewVerticalGradient(skyTop, skyBottom),
		clock: controls.NewLightText("0:00", clockSize, theme.ColorNameForeground),
		date:  controls.NewLightText("", dateSize, theme.ColorNameForeground),
	}
	objs := []fyne.CanvasObject{l.clock, l.date}
	for i := range l.lines {
		size := float32(controls.FontNormal)
		if i == 0 {
			size = textSize
		}
		// One line, cut with an ellipsis where it would run past the
		// screen's edge.
		l.lines[i] = controls.NewParagraph("", size, theme.ColorNameForeground, textWidth, 1)
		objs = append(objs, l.lines[i])
	}
	for i := range l.icons {
		l.icons[i] = &canvas.Image{FillMode: canvas.ImageFillContain}
		l.counts[i] = controls.NewText("", countSize, theme.ColorNameForeground)
		objs = append(objs, l.icons[i], l.counts[i])
	}
	l.layer = container.NewWithoutLayout(objs...)
	// White text on the picture in either theme: the dark theme's colours.
	l.themed = container.NewThemeOverride(l.layer, wptheme.New(true, accent.Default))
	l.ExtendBaseWidget(l)
	return l
}

// SetTime shows now on the clock ("12:38", "1:38") and its date
// ("Monday, October 21").
func (l *Lock) SetTime(now time.Time) {
	l.clock.SetText(strconv.Itoa(now.Hour()) + now.Format(":04"))
	l.date.SetText(now.Format("Monday, January 2"))
}

// SetDetailed shows the detailed status text, at most tile.LockLines
// lines; nil shows none. A line wider than the screen is cut, at a word
// where it can be, and ends with an ellipsis. The text already shown does
// nothing (the controller calls it after every tile update).
func (l *Lock) SetDetailed(lines []string) {
	changed := false
	for i, t := range l.lines {
		s := ""
		if i < len(lines) {
			s = lines[i]
		}
		if t.Text() != s {
			t.SetText(s)
			changed = true
		}
	}
	if changed {
		l.Refresh()
	}
}

// SetQuick shows the quick statuses, at most tile.LockQuickApps, left to
// right; an app with a count of 0 should not be passed (it shows nothing).
//
// The statuses already shown do nothing.
func (l *Lock) SetQuick(q []Quick) {
	q = q[:min(len(q), len(l.icons))]
	if slices.Equal(q, l.quick) {
		return
	}
	l.quick = append(l.quick[:0], q...)
	for i := range l.icons {
		var res fyne.Resource
		text := ""
		if i < len(l.quick) {
			res, text = l.quick[i].Icon, strconv.Itoa(l.quick[i].Count)
		}
		if l.icons[i].Resource != res {
			l.icons[i].Resource = res
			l.icons[i].Refresh()
		}
		l.counts[i].SetText(text)
	}
	l.Refresh()
}

// Detailed returns the detailed status lines shown.
func (l *Lock) Detailed() []string {
	var out []string
	for _, t := range l.lines {
		if t.Text() != "" {
			out = append(out, t.Text())
		}
	}
	return out
}

// QuickShown returns the number of quick statuses shown.
func (l *Lock) QuickShown() int { return len(l.quick) }

// Tapped unlocks.
func (l *Lock) Tapped(*fyne.PointEvent) { l.unlock() }

// Dragged follows a drag upwards.
func (l *Lock) Dragged(e *fyne.DragEvent) {
	l.drag = min(0, l.drag+e.Dragged.DY)
	l.Refresh()
}

// DragEnd unlocks when the drag went UnlockDistance (times the scale) up,
// and puts the screen back otherwise.
func (l *Lock) DragEnd() {
	up := -l.drag >= UnlockDistance*l.Scale()
	l.drag = 0
	l.Refresh()
	if up {
		l.unlock()
	}
}

func (l *Lock) unlock() {
	if l.OnUnlock != nil {
		l.OnUnlock()
	}
}

// HandleBack keeps the back key: it does not unlock the phone.
func (l *Lock) HandleBack() bool { return true }

// SetPhoneScale draws the lock screen k times larger than on a 480-unit
// screen.
func (l *Lock) SetPhoneScale(k float32) {
	if !l.Rescale(k) {
		return
	}
	l.clock.SetPhoneScale(k)
	l.date.SetPhoneScale(k)
	for i := range l.lines {
		l.lines[i].SetPhoneScale(k)
	}
	for i := range l.counts {
		l.counts[i].SetPhoneScale(k)
	}
	l.Refresh()
}

// MinSize is nothing: the lock screen takes the screen it is given.
func (l *Lock) MinSize() fyne.Size { return fyne.NewSize(0, 0) }

// CreateRenderer is part of fyne.Widget.
func (l *Lock) CreateRenderer() fyne.WidgetRenderer {
	return &renderer{l: l, objects: []fyne.CanvasObject{l.bg, l.themed}}
}

type renderer struct {
	l       *Lock
	objects []fyne.CanvasObject
}

func (r *renderer) Destroy()                     {}
func (r *renderer) Objects() []fyne.CanvasObject { return r.objects }
func (r *renderer) MinSize() fyne.Size           { return r.l.MinSize() }

func (r *renderer) Refresh() {
	r.l.bg.Refresh()
	r.l.themed.Refresh()
	r.Layout(r.l.Size())
}

// Layout stacks the parts from the bottom up: the quick statuses, the
// detailed status text, the date, the clock; a drag lifts all of them.
func (r *renderer) Layout(size fyne.Size) {
	l := r.l
	k := l.Scale()
	l.bg.Resize(size)
	l.themed.Resize(size)
	l.layer.Resize(size)
	x := float32(marginLeft) * k
	y := size.Height - marginBelow*k + l.drag

	rowH := max(iconSide*k, l.counts[0].MinSize().Height)
	if len(l.quick) > 0 {
		y -= rowH
		qx := x
		for i := range l.icons {
			shown := i < len(l.quick)
			controls.SetVisible(l.icons[i], shown && l.icons[i].Resource != nil)
			controls.SetVisible(l.counts[i], shown)
			if !shown {
				continue
			}
			l.icons[i].Move(fyne.NewPos(qx, y+(rowH-iconSide*k)/2))
			l.icons[i].Resize(fyne.NewSize(iconSide*k, iconSide*k))
			qx += iconSide*k + 6*k
			c := l.counts[i].MinSize()
			l.counts[i].Move(fyne.NewPos(qx, y+(rowH-c.Height)/2))
			l.counts[i].Resize(c)
			qx += c.Width + quickGap*k
		}
		y -= 20 * k
	} else {
		for i := range l.icons {
			l.icons[i].Hide()
			l.counts[i].Hide()
		}
	}
	width := size.Width - 2*x
	for i := len(l.lines) - 1; i >= 0; i-- {
		t := l.lines[i]
		if t.Text() == "" && !between(l.lines[:], i) {
			t.Hide()
			continue
		}
		t.Show()
		h := t.MinSize().Height
		y -= h
		t.Move(fyne.NewPos(x, y))
		t.Resize(fyne.NewSize(width, h))
	}
	h := l.date.MinSize().Height
	y -= h
	l.date.Move(fyne.NewPos(x, y))
	l.date.Resize(fyne.NewSize(width, h))
	h = l.clock.MinSize().Height
	y -= h - 16*k // the thin clock's line box is tall: tuck the date under it
	l.clock.Move(fyne.NewPos(x-6*k, y))
	l.clock.Resize(fyne.NewSize(width, h))
}

// between reports whether lines before and after lines[i] hold text: an
// empty line between two of text keeps its place.
func between(lines []*controls.TextBlock, i int) bool {
	has := func(ls []*controls.TextBlock) bool {
		for _, t := range ls {
			if t.Text() != "" {
				return true
			}
		}
		return false
	}
	return has(lines[:i]) && has(lines[i+1:])
}
