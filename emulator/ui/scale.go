package ui

import (
	"image/color"

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
//     container.ThemeOverride whose theme (scaledTheme) is the app's theme
//     with every size times k.
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

// scaler is a view or a widget that draws itself k times larger than on a
// 480-unit screen.
type scaler interface {
	setScale(k float32)
}

// scaled is the scale of a widget on the phone's screen. The zero value is
// scale 1.
type scaled struct{ k float32 }

// scale returns the factor, 1 when unset.
func (s *scaled) scale() float32 {
	if s.k == 0 {
		return 1
	}
	return s.k
}

// rescale sets the factor and reports whether it changed.
func (s *scaled) rescale(k float32) bool {
	if k <= 0 {
		k = 1
	}
	if k == s.scale() {
		return false
	}
	s.k = k
	return true
}

// scaleTree gives k to o and, through containers and scrolls, to every
// scaler under it; containers whose children changed size are laid out
// again. Objects that do not scale (the start screen, which scales itself
// to its width) are left alone.
func scaleTree(o fyne.CanvasObject, k float32) {
	switch v := o.(type) {
	case scaler:
		v.setScale(k)
	case *fyne.Container:
		for _, c := range v.Objects {
			scaleTree(c, k)
		}
		if v.Layout != nil {
			v.Layout.Layout(v.Objects, v.Size())
		}
	case *container.Scroll:
		scaleTree(v.Content, k)
		v.Refresh()
	}
}

// scaledTheme is the app's current theme with every size k times larger:
// the theme of fyne's widgets on a page drawn at scale k. Colours, fonts
// and icons are the app theme's, looked up at each call, so the page
// follows a change of the app's theme.
type scaledTheme struct{ scaled }

var _ fyne.Theme = (*scaledTheme)(nil)

// base is the app's theme (not theme.Current, which is this theme while a
// ThemeOverride lays out its content).
func (t *scaledTheme) base() fyne.Theme {
	if a := fyne.CurrentApp(); a != nil {
		if th := a.Settings().Theme(); th != nil {
			return th
		}
	}
	return theme.DefaultTheme()
}

func (t *scaledTheme) Color(n fyne.ThemeColorName, v fyne.ThemeVariant) color.Color {
	return t.base().Color(n, v)
}

func (t *scaledTheme) Font(s fyne.TextStyle) fyne.Resource { return t.base().Font(s) }

func (t *scaledTheme) Icon(n fyne.ThemeIconName) fyne.Resource { return t.base().Icon(n) }

func (t *scaledTheme) Size(n fyne.ThemeSizeName) float32 { return t.base().Size(n) * t.scale() }

// gapBox is empty vertical space in a column, h units high at scale 1.
type gapBox struct {
	widget.BaseWidget
	scaled
	h float32
}

// gap is vertical space of h units in a column.
func gap(h float32) *gapBox {
	g := &gapBox{h: h}
	g.ExtendBaseWidget(g)
	return g
}

func (g *gapBox) setScale(k float32) {
	if g.rescale(k) {
		g.Refresh()
	}
}

func (g *gapBox) MinSize() fyne.Size { return fyne.NewSize(0, g.h*g.scale()) }

func (g *gapBox) CreateRenderer() fyne.WidgetRenderer { return &gapRenderer{g: g} }

type gapRenderer struct{ g *gapBox }

func (r *gapRenderer) Destroy()                     {}
func (r *gapRenderer) Layout(fyne.Size)             {}
func (r *gapRenderer) MinSize() fyne.Size           { return r.g.MinSize() }
func (r *gapRenderer) Objects() []fyne.CanvasObject { return nil }
func (r *gapRenderer) Refresh()                     {}
