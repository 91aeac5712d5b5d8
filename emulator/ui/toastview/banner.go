// Package toastview draws toast notifications the way a Windows Phone 8
// does: Banner, the strip across the top of the screen with the app's icon,
// Text1 in bold and Text2 after it, in white on the accent colour. What the
// line says (toast.Line) and how long a toast stays (toast.Queue) are the
// toast package's, which has no UI.
package toastview

import (
	"image/color"
	"strings"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/widget"

	"github.com/openmpns/openmpns/emulator/accent"
	"github.com/openmpns/openmpns/emulator/toast"
	"github.com/openmpns/openmpns/shared/payload"
)

// Geometry of the banner in fyne logical units, for a phone screen
// PhoneWidth units wide (a WVGA phone's pixels). A banner drawn at a scale
// (SetScale) multiplies them all by it.
const (
	// PhoneWidth is the width of the emulated phone's screen.
	PhoneWidth = 480
	// BannerHeight is the height of the toast strip.
	BannerHeight = 62
	// DismissDistance is how far right a drag must go to flick a toast away.
	DismissDistance = 60

	iconSide  = 24
	iconLeft  = 14
	textLeft  = iconLeft + iconSide + 12
	textSize  = 18
	textRight = 10
)

const ellipsis = toast.Ellipsis

// Banner is a toast on screen: a strip the width of the phone with the app's
// icon, Text1 in bold and Text2 after it on the same line, in white on the
// accent colour. A tap calls OnTapped (the phone opens the app at the
// toast's Param); a flick to the right calls OnDismissed.
//
// The banner is drawn for a PhoneWidth-unit screen; on a phone drawn k times
// larger, SetScale(k) makes its height, icon, text and margins k times
// larger too.
type Banner struct {
	widget.BaseWidget

	// OnTapped, if set, is called when the user taps the banner.
	OnTapped func()
	// OnDismissed, if set, is called when the user flicks the banner away.
	OnDismissed func()

	toast  payload.Toast
	accent color.Color
	icon   fyne.Resource
	drag   float32 // how far the banner follows a drag to the right
	scale  float32 // 0: 1
}

var (
	_ fyne.Widget    = (*Banner)(nil)
	_ fyne.Tappable  = (*Banner)(nil)
	_ fyne.Draggable = (*Banner)(nil)
)

// NewBanner returns a banner showing t in the default accent colour, without
// an icon.
func NewBanner(t payload.Toast) *Banner {
	b := &Banner{toast: t}
	b.ExtendBaseWidget(b)
	return b
}

// Toast returns the toast the banner shows.
func (b *Banner) Toast() payload.Toast { return b.toast }

// SetToast shows t.
func (b *Banner) SetToast(t payload.Toast) {
	b.toast, b.drag = t, 0
	b.Refresh()
}

// SetAccent sets the banner's background colour; nil means accent.Default.
func (b *Banner) SetAccent(c color.Color) {
	b.accent = c
	b.Refresh()
}

// SetScale draws the banner k times larger than on a PhoneWidth-unit
// screen: BannerHeight×k high, the icon, text and margins k times larger,
// and a flick must go DismissDistance×k. k ≤ 0 means 1.
func (b *Banner) SetScale(k float32) {
	if k <= 0 {
		k = 1
	}
	if k == b.Scale() {
		return
	}
	b.scale = k
	b.Refresh()
}

// Scale returns the factor set by SetScale, 1 by default.
func (b *Banner) Scale() float32 {
	if b.scale == 0 {
		return 1
	}
	return b.scale
}

// Height is the banner's height at its scale: BannerHeight×Scale.
func (b *Banner) Height() float32 { return BannerHeight * b.Scale() }

// SetIcon sets the app icon drawn at the left (the app's small tile icon);
// nil draws none.
func (b *Banner) SetIcon(icon fyne.Resource) {
	b.icon = icon
	b.Refresh()
}

// Tapped calls OnTapped.
func (b *Banner) Tapped(*fyne.PointEvent) {
	if b.OnTapped != nil {
		b.OnTapped()
	}
}

// Dragged moves the banner's content with a drag to the right.
func (b *Banner) Dragged(e *fyne.DragEvent) {
	b.drag = max(0, b.drag+e.Dragged.DX)
	b.Refresh()
}

// DragEnd calls OnDismissed when the drag went DismissDistance (times the
// scale) or more to the right, and puts the content back otherwise.
func (b *Banner) DragEnd() {
	flicked := b.drag >= DismissDistance*b.Scale()
	b.drag = 0
	b.Refresh()
	if flicked && b.OnDismissed != nil {
		b.OnDismissed()
	}
}

// MinSize is a strip BannerHeight high (times the scale); it takes the
// width its container gives it, PhoneWidth on the phone.
func (b *Banner) MinSize() fyne.Size {
	k := b.Scale()
	return fyne.NewSize((textLeft+textRight+80)*k, BannerHeight*k)
}

// CreateRenderer is part of fyne.Widget.
func (b *Banner) CreateRenderer() fyne.WidgetRenderer {
	r := &bannerRenderer{
		b:     b,
		bg:    canvas.NewRectangle(accent.Or(b.accent)),
		icon:  &canvas.Image{FillMode: canvas.ImageFillContain},
		text1: canvas.NewText("", color.White),
		text2: canvas.NewText("", color.White),
	}
	r.text1.TextStyle.Bold = true
	r.objects = []fyne.CanvasObject{r.bg, r.icon, r.text1, r.text2}
	r.Refresh()
	return r
}

type bannerRenderer struct {
	b       *Banner
	bg      *canvas.Rectangle
	icon    *canvas.Image
	text1   *canvas.Text
	text2   *canvas.Text
	objects []fyne.CanvasObject
}

func (r *bannerRenderer) Destroy() {}

func (r *bannerRenderer) Objects() []fyne.CanvasObject { return r.objects }

func (r *bannerRenderer) MinSize() fyne.Size { return r.b.MinSize() }

func (r *bannerRenderer) Refresh() {
	b := r.b
	if bg := accent.Or(b.accent); r.bg.FillColor != bg {
		r.bg.FillColor = bg
		r.bg.Refresh()
	}
	if r.icon.Resource != b.icon {
		r.icon.Resource = b.icon
		r.icon.Refresh()
	}
	r.Layout(b.Size())
}

// Layout places the icon and the line, cutting the text to toast.LineChars
// characters and then to the width there is.
func (r *bannerRenderer) Layout(size fyne.Size) {
	b := r.b
	k := b.Scale()
	r.bg.Resize(size)
	dx := b.drag

	r.icon.Hidden = b.icon == nil
	r.icon.Move(fyne.NewPos(dx+iconLeft*k, (size.Height-iconSide*k)/2))
	r.icon.Resize(fyne.NewSize(iconSide*k, iconSide*k))

	ts := textSize * k
	if r.text1.TextSize != ts {
		r.text1.TextSize, r.text2.TextSize = ts, ts
		r.text1.Refresh()
		r.text2.Refresh()
	}
	t1, t2 := toast.Line(b.toast.Text1, b.toast.Text2, toast.LineChars)
	avail := size.Width - textLeft*k - textRight*k
	t1, t2 = fitLine(t1, t2, r.text1.TextStyle, r.text2.TextStyle, ts, avail)
	setText(r.text1, t1)
	setText(r.text2, t2)

	h := r.text1.MinSize().Height
	y := (size.Height - h) / 2
	r.text1.Move(fyne.NewPos(dx+textLeft*k, y))
	r.text1.Resize(r.text1.MinSize())
	x := dx + textLeft*k + r.text1.MinSize().Width
	if t1 != "" {
		x += fyne.MeasureText(" ", ts, fyne.TextStyle{}).Width
	}
	r.text2.Move(fyne.NewPos(x, y))
	r.text2.Resize(r.text2.MinSize())
}

func setText(t *canvas.Text, s string) {
	t.Hidden = s == ""
	if t.Text != s {
		t.Text = s
		t.Refresh()
	}
}

// fitLine shortens the texts further, with an ellipsis, until text1, a space
// and text2, in text of the given size, fit maxW logical units.
func fitLine(t1, t2 string, s1, s2 fyne.TextStyle, size, maxW float32) (string, string) {
	width := func(a, b string) float32 {
		w := fyne.MeasureText(a, size, s1).Width
		if b != "" {
			w += fyne.MeasureText(" "+b, size, s2).Width
		}
		return w
	}
	for width(t1, t2) > maxW {
		switch {
		case t2 != "":
			t2 = shorten(t2)
		case t1 != "":
			t1 = shorten(t1)
		default:
			return "", ""
		}
	}
	return t1, t2
}

// shorten drops the last character before the ellipsis (adding one), and
// gives "" once nothing but the ellipsis would be left.
func shorten(s string) string {
	r := []rune(strings.TrimSuffix(s, ellipsis))
	if len(r) <= 1 {
		return ""
	}
	return strings.TrimRight(string(r[:len(r)-1]), " ") + ellipsis
}
