package controls

import (
	"image/color"

	"fyne.io/fyne/v2/theme"
)

// IsCanvasBackground reports whether c is the colour a canvas is cleared
// to before anything is drawn on it: the app theme's background, which
// fyne's GL painter clears the window to and its software painter fills
// an opaque canvas with. A full-size rectangle of that colour (a phone's
// screen, the inspector's panel) need not be drawn: under a software GL
// every pixel drawn costs, and such a rectangle cost a window's worth of
// them per frame. (A transparent canvas, such as openmpns render's, is
// not cleared: what is drawn on one must not rely on this.)
func IsCanvasBackground(c color.Color) bool {
	if c == nil {
		return false
	}
	r1, g1, b1, a1 := c.RGBA()
	r2, g2, b2, a2 := theme.Color(theme.ColorNameBackground).RGBA()
	return a1 == 0xFFFF && r1 == r2 && g1 == g2 && b1 == b2 && a1 == a2
}
