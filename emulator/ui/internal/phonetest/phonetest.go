// Package phonetest frames a screen in the emulated handset for the
// screens' tests, and checks that a screen scales with it. It is imported
// by tests only.
package phonetest

import (
	"image"
	"math"
	"testing"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"

	"github.com/openmpns/openmpns/emulator/ui/handset"
)

// Size is the handset's size at scale 1.
var Size = fyne.NewSize(handset.PhoneWidth, handset.PhoneHeight)

// Phone frames screen in a handset at the golden images' time (12:38),
// connected.
func Phone(screen fyne.CanvasObject) *handset.Phone {
	p := handset.NewPhone(screen)
	p.SetTime("12:38")
	p.SetConnection(handset.Connected)
	return p
}

// Box is where an object is on the phone's screen (relative to the screen
// under the status bar) and how large it is.
type Box struct{ Pos, Size fyne.Position }

// BoxOf is o's box on p's screen.
func BoxOf(p *handset.Phone, o fyne.CanvasObject) Box {
	d := fyne.CurrentApp().Driver()
	at := d.AbsolutePositionForObject(o).Subtract(d.AbsolutePositionForObject(p.ScreenArea()))
	return Box{at, fyne.NewPos(o.Size().Width, o.Size().Height)}
}

// Near reports whether got is want within tol units in both directions.
func Near(got, want fyne.Position, tol float32) bool {
	return math.Abs(float64(got.X-want.X)) <= float64(tol) && math.Abs(float64(got.Y-want.Y)) <= float64(tol)
}

// Probes names the parts of a screen to measure.
type Probes map[string]fyne.CanvasObject

// Texts names the texts a screen draws, each with a function that finds
// it (it may be a new object after a rescale).
type Texts map[string]func() *canvas.Text

// CheckScales resizes w, which shows p at scale 1, to twice the phone's
// size and back: at scale 2 every text must be drawn at twice its size and
// every probe twice as large and twice as far from the screen's corner, so
// the screen looks as it does at scale 1, twice as large; back at scale 1
// everything must be as it was. Positions and sizes that come from text
// measures may be off by a fraction of a unit at scale 2 (glyph metrics are
// not exactly linear), and positions add several of them: they are allowed
// 2 units.
func CheckScales(t *testing.T, w fyne.Window, p *handset.Phone, probes Probes, texts Texts) {
	t.Helper()
	const tol = 2
	at1 := map[string]Box{}
	size1 := map[string]float32{}
	for name, o := range probes {
		at1[name] = BoxOf(p, o)
	}
	for name, get := range texts {
		size1[name] = get().TextSize
	}
	w.Resize(fyne.NewSize(2*Size.Width, 2*Size.Height))
	if p.Scale() != 2 {
		t.Fatalf("phone scale %v, want 2", p.Scale())
	}
	for name, get := range texts {
		if got, want := get().TextSize, 2*size1[name]; got != want {
			t.Errorf("%s: text size %v at scale 2, want %v", name, got, want)
		}
	}
	for name, o := range probes {
		b1, b2 := at1[name], BoxOf(p, o)
		if !Near(b2.Pos, b1.Pos.Add(b1.Pos), tol) || !Near(b2.Size, b1.Size.Add(b1.Size), tol) {
			t.Errorf("%s: at %v size %v at scale 2; at scale 1 %v size %v", name, b2.Pos, b2.Size, b1.Pos, b1.Size)
		}
	}
	w.Resize(Size)
	for name, get := range texts {
		if got := get().TextSize; got != size1[name] {
			t.Errorf("%s: text size %v back at scale 1, want %v", name, got, size1[name])
		}
	}
	for name, o := range probes {
		if got := BoxOf(p, o); got != at1[name] {
			t.Errorf("%s: %v back at scale 1, want %v", name, got, at1[name])
		}
	}
}

// CheckTwice checks that ink2, the bounds of a text's glyphs at scale 2
// measured from the screen's corner, is about twice ink1, the same at
// scale 1. Glyphs are hinted and anti-aliased at each size: the text at 2×
// is not exactly twice the pixels of the text at 1×, but within a few
// pixels of it (unscaled text would be half of it).
func CheckTwice(t *testing.T, ink1, ink2 image.Rectangle) {
	t.Helper()
	if ink1.Empty() {
		t.Fatal("no ink at scale 1")
	}
	twice := func(got, at1 image.Point) bool {
		return abs(got.X-2*at1.X) <= 4+got.X/30 && abs(got.Y-2*at1.Y) <= 4+got.Y/30
	}
	if d1, d2 := ink1.Size(), ink2.Size(); !twice(d2, d1) {
		t.Errorf("glyphs %v at scale 2, want about twice %v", d2, d1)
	}
	if o1, o2 := ink1.Min, ink2.Min; !twice(o2, o1) {
		t.Errorf("glyphs start at %v from the screen's corner at scale 2, want about twice %v", o2, o1)
	}
}

func abs(n int) int {
	if n < 0 {
		return -n
	}
	return n
}
