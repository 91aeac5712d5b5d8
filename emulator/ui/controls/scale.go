package controls

import (
	"image/color"
	"sync/atomic"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"
)

// The phone's scale. Everything on the phone's screen is designed in
// Windows Phone 8's logical units for a 480×800 screen; when the Phone is
// drawn k times larger, its views draw every size k times larger: type,
// margins, gaps, borders, controls. There are two halves to it:
//
//   - The emulator's own widgets (textBlock, button, toggle, the pages, the
//     status bar) hold their scale (scaled) and multiply their sizes by
//     it. The Phone gives the scale to its status bar, the toast banner, the
//     screen on top and the dialog (scaleTree); a view gives it to its parts,
//     and to the parts it makes later (rows, switches) when it makes them.
//   - fyne's own widgets on a page (the Channel URI's label, the scroll
//     bars) take their sizes from the theme: a page holds them in a
//     container.ThemeOverride whose theme (ScaledTheme) is the page's own
//     theme (its phone's) with every size times k.
//
// Scales are given, not looked up through the theme, because fyne applies a
// ThemeOverride to the objects that are in its tree when it is refreshed:
// a row or a switch added to a page afterwards would not see it.
//
// At scale 1 every size is the design size itself (multiplied by 1, in the
// same order of operations), so the drawing is the same as without
// scaling, pixel for pixel: the golden images hold.
//
// A new widget for the phone's screen embeds scaled, multiplies each of its
// sizes (text, margins, strokes, MinSize) by scale(), implements setScale
// (rescale, then give k to its parts and Refresh), and gives its scale to
// any part it makes later.

// Scaler is a view or a widget that draws itself k times larger than on a
// 480-unit screen.
type Scaler interface {
	SetPhoneScale(k float32)
}

// Scaled is the scale of a widget on the phone's screen. The zero value is
// scale 1.
type Scaled struct{ k float32 }

// Scale returns the factor, 1 when unset.
func (s *Scaled) Scale() float32 {
	if s.k == 0 {
		return 1
	}
	return s.k
}

// Rescale sets the factor and reports whether it changed.
func (s *Scaled) Rescale(k float32) bool {
	if k <= 0 {
		k = 1
	}
	if k == s.Scale() {
		return false
	}
	s.k = k
	return true
}

// ScaleTree gives k to o and, through containers and scrolls, to every
// scaler under it; containers whose children changed size are laid out
// again. Objects that do not scale (the start screen, which scales itself
// to its width) are left alone.
func ScaleTree(o fyne.CanvasObject, k float32) {
	switch v := o.(type) {
	case Scaler:
		v.SetPhoneScale(k)
	case *fyne.Container:
		for _, c := range v.Objects {
			ScaleTree(c, k)
		}
		if v.Layout != nil {
			v.Layout.Layout(v.Objects, v.Size())
		}
	case *container.Scroll:
		ScaleTree(v.Content, k)
		v.Refresh()
	}
}

// ScaledTheme is a theme with every size k times larger: the theme of
// fyne's widgets on a page drawn at scale k. Colours, fonts and icons are
// those of the theme Of is drawn in (the phone's, through its
// container.ThemeOverride), looked up at each call, so the page follows a
// change of its phone's theme; with Of nil or not themed, the app's.
type ScaledTheme struct {
	Scaled
	// Of is the widget whose theme is scaled: the page.
	Of fyne.CanvasObject

	busy atomic.Bool // looking up Of's theme: a theme that leads back here is not followed
}

var _ fyne.Theme = (*ScaledTheme)(nil)

// base is the theme of Of, or the app's theme (not theme.Current, which is
// this theme while a ThemeOverride lays out its content).
func (t *ScaledTheme) base() fyne.Theme {
	if t.Of != nil && t.busy.CompareAndSwap(false, true) {
		th := theme.CurrentForWidget(t.Of)
		t.busy.Store(false)
		if th != nil && th != fyne.Theme(t) && th != theme.Current() {
			return th
		}
	}
	if a := fyne.CurrentApp(); a != nil {
		if th := a.Settings().Theme(); th != nil {
			return th
		}
	}
	return theme.DefaultTheme()
}

func (t *ScaledTheme) Color(n fyne.ThemeColorName, v fyne.ThemeVariant) color.Color {
	return t.base().Color(n, v)
}

func (t *ScaledTheme) Font(s fyne.TextStyle) fyne.Resource { return t.base().Font(s) }

func (t *ScaledTheme) Icon(n fyne.ThemeIconName) fyne.Resource { return t.base().Icon(n) }

func (t *ScaledTheme) Size(n fyne.ThemeSizeName) float32 { return t.base().Size(n) * t.Scale() }

// GapBox is empty vertical space in a column, h units high at scale 1.
type GapBox struct {
	widget.BaseWidget
	Scaled
	h float32
}

// Gap is vertical space of h units in a column.
func Gap(h float32) *GapBox {
	g := &GapBox{h: h}
	g.ExtendBaseWidget(g)
	return g
}

func (g *GapBox) SetPhoneScale(k float32) {
	if g.Rescale(k) {
		g.Refresh()
	}
}

func (g *GapBox) MinSize() fyne.Size { return fyne.NewSize(0, g.h*g.Scale()) }

func (g *GapBox) CreateRenderer() fyne.WidgetRenderer { return &gapRenderer{g: g} }

type gapRenderer struct{ g *GapBox }

func (r *gapRenderer) Destroy()                     {}
func (r *gapRenderer) Layout(fyne.Size)             {}
func (r *gapRenderer) MinSize() fyne.Size           { return r.g.MinSize() }
func (r *gapRenderer) Objects() []fyne.CanvasObject { return nil }
func (r *gapRenderer) Refresh()                     {}

// BackHandler is implemented by screens and dialogs that use the back key
// themselves: a start screen in edit mode leaves it, an open picker closes.
// HandleBack reports whether it used the key; if not, the phone goes back.
type BackHandler interface {
	HandleBack() bool
}
