// Package render draws the emulator's tiles and toasts into images without a
// display, through fyne's software painter. It needs no cgo and no OpenGL:
// it backs `openmpns render`, which turns a tile payload into a PNG.
//
// The package links fyne's test driver (the software painter is built on
// it), whose init installs an in-memory fyne app when none is current. Use it
// from headless programs and tests, not from the GUI emulator, and from one
// goroutine at a time: fyne's state is global.
package render

import (
	"image"
	"image/color"
	"image/png"
	"io"
	"math"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/driver/software"

	"github.com/openmpns/openmpns/emulator/accent"
	"github.com/openmpns/openmpns/emulator/tile"
	"github.com/openmpns/openmpns/emulator/ui/tileview"
	"github.com/openmpns/openmpns/emulator/ui/toastview"
	"github.com/openmpns/openmpns/shared/payload"
)

// Option changes how a tile or toast is drawn.
type Option func(*options)

type options struct {
	profile *tile.Profile
	accent  color.Color
	images  tileview.ImageSource
	icon    fyne.Resource
	cycle   int
}

// WithAccent draws with accent colour c instead of accent.Default.
func WithAccent(c color.Color) Option { return func(o *options) { o.accent = c } }

// WithImages resolves a tile's image references through src; without it a
// tile shows no images.
func WithImages(src tileview.ImageSource) Option { return func(o *options) { o.images = src } }

// WithProfile draws at the pixels of screen p: a tile at the size it has
// on p's start screen (p.TilePixels), a toast across p's width. Without it
// a tile is drawn at the tile design's own pixels (Microsoft's WXGA
// figures: 159, 336, 691×336) and a toast 480 pixels wide.
func WithProfile(p tile.Profile) Option { return func(o *options) { o.profile = &p } }

// WithCycleImage shows the n-th (from 0) set cycle image of a CycleTile.
func WithCycleImage(n int) Option { return func(o *options) { o.cycle = n } }

// WithIcon draws icon as the app's icon on a toast.
func WithIcon(icon fyne.Resource) Option { return func(o *options) { o.icon = icon } }

func collect(opts []Option) options {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	return o
}

// Tile draws s at size, on its back face if back is true and it has one.
// scale multiplies the output's pixels: 1 gives the tile design's own 159,
// 336 or 691×336 pixels, or with WithProfile the pixels the tile covers on
// that screen (p.TilePixels).
func Tile(s *tile.State, size tile.Size, back bool, scale float32, opts ...Option) image.Image {
	o := collect(opts)
	t := tileview.New(s, size)
	t.SetAccent(accent.Or(o.accent))
	t.SetImages(o.images)
	for range o.cycle {
		t.NextImage()
	}
	t.SetFace(back)
	if o.profile != nil {
		// The tile's extent on the profile's grid, in whole pixels: the
		// tile lays itself out in any box, so it is drawn one unit a pixel.
		w, h := o.profile.TilePixels(size)
		return Object(t, fyne.NewSize(float32(math.Round(float64(w)*float64(scale))), float32(math.Round(float64(h)*float64(scale)))), 1)
	}
	return Object(t, t.MinSize(), scale/tileview.DefaultScale)
}

// TilePNG writes Tile's image to w as a PNG.
func TilePNG(w io.Writer, s *tile.State, size tile.Size, back bool, scale float32, opts ...Option) error {
	return png.Encode(w, Tile(s, size, back, scale, opts...))
}

// Toast draws t as the phone's toast banner, toastview.PhoneWidth logical
// units wide, at scale output pixels per logical unit (1 gives a 480 pixel
// wide strip, the width of a WVGA phone; WithProfile multiplies it by the
// profile's pixels per unit).
func Toast(t payload.Toast, scale float32, opts ...Option) image.Image {
	o := collect(opts)
	if o.profile != nil {
		scale *= o.profile.Scale
	}
	b := toastview.NewBanner(t)
	b.SetAccent(o.accent)
	b.SetIcon(o.icon)
	return Object(b, fyne.NewSize(toastview.PhoneWidth, b.MinSize().Height), scale)
}

// ToastPNG writes Toast's image to w as a PNG.
func ToastPNG(w io.Writer, t payload.Toast, scale float32, opts ...Option) error {
	return png.Encode(w, Toast(t, scale, opts...))
}

// Object draws obj at size logical units on a transparent canvas of the
// given scale (output pixels per logical unit).
func Object(obj fyne.CanvasObject, size fyne.Size, scale float32) image.Image {
	c := software.NewTransparentCanvas()
	c.SetPadded(false)
	c.SetScale(scale)
	c.SetContent(obj)
	c.Resize(size)
	return c.Capture()
}
