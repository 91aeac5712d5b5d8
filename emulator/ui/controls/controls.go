package controls

import (
	"image/color"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"github.com/openmpns/openmpns/emulator/ui/wptheme"
)

// The phone's controls are drawn the Windows Phone way, not fyne's: square
// buttons with a thick border, switches with a sliding bar, no shadows and
// no rounded corners. They read their colours from the theme on Refresh.

// Button is a Windows Phone Button: lowercase text in a 3-unit border.
type Button struct {
	widget.BaseWidget
	Scaled

	OnTapped func()

	label string
	// Width is the button's fixed width at scale 1; 0 fits the text.
	Width float32
}

var _ fyne.Tappable = (*Button)(nil)

const (
	ButtonHeight = 52 // a Button's height at scale 1
	buttonBorder = 3
)

func NewButton(label string, tapped func()) *Button {
	b := &Button{label: label, OnTapped: tapped}
	b.ExtendBaseWidget(b)
	return b
}

func (b *Button) Tapped(*fyne.PointEvent) {
	if b.OnTapped != nil {
		b.OnTapped()
	}
}

func (b *Button) SetPhoneScale(k float32) {
	if b.Rescale(k) {
		b.Refresh()
	}
}

func (b *Button) MinSize() fyne.Size {
	k := b.Scale()
	w := b.Width * k
	if w <= 0 {
		w = fyne.MeasureText(b.label, FontNormal*k, fyne.TextStyle{}).Width + 48*k
	}
	return fyne.NewSize(w, ButtonHeight*k)
}

func (b *Button) CreateRenderer() fyne.WidgetRenderer {
	r := &buttonRenderer{b: b, border: canvas.NewRectangle(color.Transparent), text: canvas.NewText(b.label, nil)}
	r.text.Alignment = fyne.TextAlignCenter
	r.Refresh()
	return r
}

type buttonRenderer struct {
	b      *Button
	border *canvas.Rectangle
	text   *canvas.Text
}

func (r *buttonRenderer) Destroy()           {}
func (r *buttonRenderer) MinSize() fyne.Size { return r.b.MinSize() }
func (r *buttonRenderer) Objects() []fyne.CanvasObject {
	return []fyne.CanvasObject{r.border, r.text}
}

func (r *buttonRenderer) Layout(size fyne.Size) {
	r.border.Resize(size)
	h := r.text.MinSize().Height
	r.text.Move(fyne.NewPos(0, (size.Height-h)/2-r.b.Scale()))
	r.text.Resize(fyne.NewSize(size.Width, h))
}

func (r *buttonRenderer) Refresh() {
	k := r.b.Scale()
	r.border.StrokeWidth = buttonBorder * k
	r.border.StrokeColor = theme.ColorForWidget(theme.ColorNameForeground, r.b)
	r.text.TextSize = FontNormal * k
	r.text.Color = r.border.StrokeColor
	r.text.Text = r.b.label
	r.border.Refresh()
	r.text.Refresh()
	r.Layout(r.b.Size())
}

// Toggle is a row with a title, "On" or "Off" under it and a switch at the
// right, like the ToggleSwitch of the Windows Phone toolkit. A tap anywhere on
// the row flips it and calls OnChanged.
type Toggle struct {
	widget.BaseWidget
	Scaled

	OnChanged func(on bool)

	title string
	on    bool
}

var _ fyne.Tappable = (*Toggle)(nil)

const (
	toggleHeight  = 76
	switchWidth   = 76
	switchHeight  = 30
	switchThumb   = 14
	switchBorder  = 2
	switchPadding = 4
)

// SetTitle changes the toggle's title.
func (t *Toggle) SetTitle(title string) {
	if t.title == title {
		return
	}
	t.title = title
	t.Refresh()
}

func NewToggle(title string, on bool, changed func(bool)) *Toggle {
	t := &Toggle{title: title, on: on, OnChanged: changed}
	t.ExtendBaseWidget(t)
	return t
}

// On reports whether the switch is on.
func (t *Toggle) On() bool { return t.on }

// SetOn sets the switch without calling OnChanged.
func (t *Toggle) SetOn(on bool) {
	if on == t.on {
		return
	}
	t.on = on
	t.Refresh()
}

func (t *Toggle) Tapped(*fyne.PointEvent) {
	t.on = !t.on
	t.Refresh()
	if t.OnChanged != nil {
		t.OnChanged(t.on)
	}
}

func (t *Toggle) SetPhoneScale(k float32) {
	if t.Rescale(k) {
		t.Refresh()
	}
}

func (t *Toggle) MinSize() fyne.Size {
	k := t.Scale()
	return fyne.NewSize(PageWidth*k, toggleHeight*k)
}

func (t *Toggle) CreateRenderer() fyne.WidgetRenderer {
	r := &toggleRenderer{
		t:     t,
		title: NewText(t.title, FontMediumLarge, theme.ColorNameForeground),
		state: NewText("", FontNormal, wptheme.ColorNameSubtle),
		track: canvas.NewRectangle(color.Transparent),
		fill:  canvas.NewRectangle(color.Transparent),
		thumb: canvas.NewRectangle(color.Transparent),
	}
	r.Refresh()
	return r
}

type toggleRenderer struct {
	t                  *Toggle
	title, state       *TextBlock
	track, fill, thumb *canvas.Rectangle
}

func (r *toggleRenderer) Destroy()           {}
func (r *toggleRenderer) MinSize() fyne.Size { return r.t.MinSize() }
func (r *toggleRenderer) Objects() []fyne.CanvasObject {
	return []fyne.CanvasObject{r.title, r.state, r.track, r.fill, r.thumb}
}

func (r *toggleRenderer) Layout(size fyne.Size) {
	k := r.t.Scale()
	r.title.Move(fyne.NewPos(0, 6*k))
	r.title.Resize(r.title.MinSize())
	r.state.Move(fyne.NewPos(0, 6*k+r.title.MinSize().Height))
	r.state.Resize(r.state.MinSize())

	sw, sh := switchWidth*k, switchHeight*k
	x := size.Width - sw
	y := (size.Height - sh) / 2
	r.track.Move(fyne.NewPos(x, y))
	r.track.Resize(fyne.NewSize(sw, sh))
	inner := (switchBorder + switchPadding) * k
	r.fill.Move(fyne.NewPos(x+inner, y+inner))
	r.fill.Resize(fyne.NewSize(sw-2*inner, sh-2*inner))
	tx := x
	if r.t.on {
		tx = x + sw - switchThumb*k
	}
	r.thumb.Move(fyne.NewPos(tx, y))
	r.thumb.Resize(fyne.NewSize(switchThumb*k, sh))
}

func (r *toggleRenderer) Refresh() {
	t := r.t
	r.title.Scaled, r.state.Scaled = t.Scaled, t.Scaled
	r.track.StrokeWidth = switchBorder * t.Scale()
	fg := theme.ColorForWidget(theme.ColorNameForeground, t)
	r.title.SetText(t.title)
	state := "Off"
	r.fill.FillColor = color.Transparent
	if t.on {
		state = "On"
		r.fill.FillColor = theme.ColorForWidget(theme.ColorNamePrimary, t)
	}
	r.state.SetText(state)
	r.track.StrokeColor = theme.ColorForWidget(wptheme.ColorNameBorder, t)
	r.thumb.FillColor = fg
	r.title.Refresh()
	r.state.Refresh()
	r.track.Refresh()
	r.fill.Refresh()
	r.thumb.Refresh()
	r.Layout(t.Size())
}

// Glyph is a line drawing inside a square box: the arrows and hardware key
// symbols the phone needs, drawn with canvas lines so they scale cleanly.
type Glyph int

const (
	GlyphArrowRight Glyph = iota // app list arrow on the start screen
	GlyphResize                  // the resize arrow on a tile being edited
	GlyphBack                    // hardware back key
	GlyphSearch                  // hardware search key
	GlyphUnpin                   // the unpin pin on a tile being edited
)

// segment is a line of a glyph in fractions of its box.
type segment struct{ x1, y1, x2, y2 float32 }

var glyphSegments = map[Glyph][]segment{
	GlyphArrowRight: {{0.28, 0.5, 0.72, 0.5}, {0.52, 0.32, 0.72, 0.5}, {0.52, 0.68, 0.72, 0.5}},
	GlyphResize: {{0.32, 0.32, 0.68, 0.68}, {0.32, 0.32, 0.56, 0.32}, {0.32, 0.32, 0.32, 0.56},
		{0.68, 0.68, 0.44, 0.68}, {0.68, 0.68, 0.68, 0.44}},
	GlyphBack:   {{0.18, 0.5, 0.82, 0.5}, {0.18, 0.5, 0.4, 0.28}, {0.18, 0.5, 0.4, 0.72}},
	GlyphSearch: {{0.62, 0.62, 0.84, 0.84}},
	// A push pin: head, shank, collar and needle.
	GlyphUnpin: {{0.38, 0.24, 0.62, 0.24}, {0.43, 0.24, 0.43, 0.5}, {0.57, 0.24, 0.57, 0.5},
		{0.3, 0.52, 0.7, 0.52}, {0.5, 0.52, 0.5, 0.8}},
}

// GlyphIcon draws a glyph in its box, in ink (the theme's foreground when
// ink is nil).
type GlyphIcon struct {
	widget.BaseWidget

	g      Glyph
	stroke float32
	ink    color.Color
}

func NewGlyph(g Glyph, stroke float32, ink color.Color) *GlyphIcon {
	i := &GlyphIcon{g: g, stroke: stroke, ink: ink}
	i.ExtendBaseWidget(i)
	return i
}

// SetStroke sets the width of the glyph's lines.
func (i *GlyphIcon) SetStroke(w float32) {
	if i.stroke == w {
		return
	}
	i.stroke = w
	i.Refresh()
}

func (i *GlyphIcon) SetInk(c color.Color) {
	if i.ink == c {
		return
	}
	i.ink = c
	i.Refresh()
}

func (i *GlyphIcon) CreateRenderer() fyne.WidgetRenderer {
	r := &glyphRenderer{i: i}
	for range glyphSegments[i.g] {
		r.lines = append(r.lines, canvas.NewLine(color.Transparent))
	}
	for _, l := range r.lines {
		r.objects = append(r.objects, l)
	}
	if i.g == GlyphSearch {
		r.ring = canvas.NewCircle(color.Transparent)
		r.objects = append(r.objects, r.ring)
	}
	r.Refresh()
	return r
}

type glyphRenderer struct {
	i       *GlyphIcon
	lines   []*canvas.Line
	ring    *canvas.Circle // the lens of the search glyph
	objects []fyne.CanvasObject
}

func (r *glyphRenderer) Destroy()                     {}
func (r *glyphRenderer) MinSize() fyne.Size           { return fyne.NewSize(16, 16) }
func (r *glyphRenderer) Objects() []fyne.CanvasObject { return r.objects }

func (r *glyphRenderer) Layout(size fyne.Size) {
	d := min(size.Width, size.Height)
	ox, oy := (size.Width-d)/2, (size.Height-d)/2
	for n, s := range glyphSegments[r.i.g] {
		l := r.lines[n]
		l.Position1 = fyne.NewPos(ox+s.x1*d, oy+s.y1*d)
		l.Position2 = fyne.NewPos(ox+s.x2*d, oy+s.y2*d)
	}
	if r.ring != nil {
		r.ring.Move(fyne.NewPos(ox+0.16*d, oy+0.16*d))
		r.ring.Resize(fyne.NewSize(0.5*d, 0.5*d))
	}
}

func (r *glyphRenderer) Refresh() {
	ink := r.i.ink
	if ink == nil {
		ink = theme.ColorForWidget(theme.ColorNameForeground, r.i)
	}
	for _, l := range r.lines {
		l.StrokeColor, l.StrokeWidth = ink, r.i.stroke
		l.Refresh()
	}
	if r.ring != nil {
		r.ring.StrokeColor, r.ring.StrokeWidth = ink, r.i.stroke
		r.ring.Refresh()
	}
	r.Layout(r.i.Size())
}

// RoundButton is a circle with a glyph, like the app list arrow under the
// start screen's tiles. With filled set it is a solid circle with the glyph
// in the background colour (the resize handle of a tile being edited). Its
// lines are 2 units wide when it is side units wide, and thicken in
// proportion when it is drawn larger.
type RoundButton struct {
	widget.BaseWidget

	OnTapped func()

	glyph  Glyph
	side   float32
	filled bool
}

var _ fyne.Tappable = (*RoundButton)(nil)

func NewRoundButton(g Glyph, side float32, filled bool, tapped func()) *RoundButton {
	b := &RoundButton{glyph: g, side: side, filled: filled, OnTapped: tapped}
	b.ExtendBaseWidget(b)
	return b
}

func (b *RoundButton) Tapped(*fyne.PointEvent) {
	if b.OnTapped != nil {
		b.OnTapped()
	}
}

func (b *RoundButton) MinSize() fyne.Size { return fyne.NewSize(b.side, b.side) }

func (b *RoundButton) CreateRenderer() fyne.WidgetRenderer {
	r := &roundRenderer{b: b, circle: canvas.NewCircle(color.Transparent), icon: NewGlyph(b.glyph, 2, nil)}
	r.Refresh()
	return r
}

type roundRenderer struct {
	b      *RoundButton
	circle *canvas.Circle
	icon   *GlyphIcon
}

func (r *roundRenderer) Destroy()           {}
func (r *roundRenderer) MinSize() fyne.Size { return r.b.MinSize() }
func (r *roundRenderer) Objects() []fyne.CanvasObject {
	return []fyne.CanvasObject{r.circle, r.icon}
}

// scale is how much larger than its side the button is drawn.
func (r *roundRenderer) scale(size fyne.Size) float32 {
	if r.b.side <= 0 || size.Width <= 0 {
		return 1
	}
	return size.Width / r.b.side
}

func (r *roundRenderer) Layout(size fyne.Size) {
	k := r.scale(size)
	if w := 2 * k; r.circle.StrokeWidth != w {
		r.circle.StrokeWidth = w
		r.circle.Refresh()
	}
	r.icon.SetStroke(2 * k)
	r.circle.Move(fyne.NewPos(k, k))
	r.circle.Resize(fyne.NewSize(size.Width-2*k, size.Height-2*k))
	r.icon.Resize(size)
}

func (r *roundRenderer) Refresh() {
	r.circle.StrokeWidth = 2 * r.scale(r.b.Size())
	fg := theme.ColorForWidget(theme.ColorNameForeground, r.b)
	r.circle.StrokeColor = fg
	r.circle.FillColor = color.Transparent
	ink := fg
	if r.b.filled {
		r.circle.FillColor = fg
		ink = theme.ColorForWidget(theme.ColorNameBackground, r.b)
	}
	r.circle.Refresh()
	r.icon.SetInk(ink)
	r.Layout(r.b.Size())
}

// TapArea is an invisible tappable box (a row of a list, a swatch's
// surround); it calls OnTapped.
type TapArea struct {
	widget.BaseWidget
	OnTapped func()
	min      fyne.Size
}

func NewTapArea(min fyne.Size, tapped func()) *TapArea {
	a := &TapArea{min: min, OnTapped: tapped}
	a.ExtendBaseWidget(a)
	return a
}

func (a *TapArea) Tapped(*fyne.PointEvent) {
	if a.OnTapped != nil {
		a.OnTapped()
	}
}

func (a *TapArea) MinSize() fyne.Size { return a.min }

func (a *TapArea) CreateRenderer() fyne.WidgetRenderer {
	return widget.NewSimpleRenderer(canvas.NewRectangle(color.Transparent))
}
