package ui

import (
	"fmt"
	"image"
	"math"
	"testing"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/test"
	"fyne.io/fyne/v2/theme"

	"github.com/openmpns/openmpns/shared/payload"
)

// textOf returns the first line of t as drawn.
func textOf(t *TextBlock) *canvas.Text {
	return test.WidgetRenderer(t).(*textRenderer).texts[0]
}

// canvasTexts returns the canvas.Text objects drawn by o and the widgets in
// it (a fyne Label draws through a RichText).
func canvasTexts(o fyne.CanvasObject) []*canvas.Text {
	switch v := o.(type) {
	case *canvas.Text:
		return []*canvas.Text{v}
	case *fyne.Container:
		var out []*canvas.Text
		for _, c := range v.Objects {
			out = append(out, canvasTexts(c)...)
		}
		return out
	case fyne.Widget:
		var out []*canvas.Text
		for _, c := range test.WidgetRenderer(v).Objects() {
			out = append(out, canvasTexts(c)...)
		}
		return out
	}
	return nil
}

// box is where an object is on the phone's screen (relative to the screen
// under the status bar) and how large it is.
type box struct{ pos, size fyne.Position }

func boxOf(p *Phone, o fyne.CanvasObject) box {
	d := fyne.CurrentApp().Driver()
	at := d.AbsolutePositionForObject(o).Subtract(d.AbsolutePositionForObject(p.screens))
	return box{at, fyne.NewPos(o.Size().Width, o.Size().Height)}
}

// near reports whether got is want within tol units in both directions.
func near(got, want fyne.Position, tol float32) bool {
	return math.Abs(float64(got.X-want.X)) <= float64(tol) && math.Abs(float64(got.Y-want.Y)) <= float64(tol)
}

// inkBox returns the bounds of the pixels of img inside r that are not the
// colour of r's top left pixel (the background): where a text's glyphs are.
func inkBox(img image.Image, r image.Rectangle) image.Rectangle {
	bg := img.At(r.Min.X, r.Min.Y)
	br, bgG, bb, _ := bg.RGBA()
	var ink image.Rectangle
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			cr, cg, cb, _ := img.At(x, y).RGBA()
			if absDiff(cr, br)+absDiff(cg, bgG)+absDiff(cb, bb) > 3*0x3000 {
				ink = ink.Union(image.Rect(x, y, x+1, y+1))
			}
		}
	}
	return ink
}

func absDiff(a, b uint32) uint32 {
	if a > b {
		return a - b
	}
	return b - a
}

// screenRect is o's bounds in the window's pixels (the test canvas draws
// one pixel per unit).
func screenRect(o fyne.CanvasObject) image.Rectangle {
	at := fyne.CurrentApp().Driver().AbsolutePositionForObject(o)
	return image.Rect(int(at.X), int(at.Y), int(at.X+o.Size().Width), int(at.Y+o.Size().Height))
}

// TestPagesScaleWithThePhone shows pages in a phone at its minimum size and
// in a window twice as large: at scale 2 every text is drawn at twice its
// size (the glyphs on screen too), and every part of the page is twice as
// large and twice as far from the screen's corner, so the page looks as it
// does at scale 1, twice as large. Rows and switches added at scale 2 are
// drawn at scale 2; back at scale 1 everything is as it was.
func TestPagesScaleWithThePhone(t *testing.T) {
	big := fyne.NewSize(2*PhoneWidth, 2*PhoneHeight)

	// Positions and sizes that come from text measures may be off by a
	// fraction of a unit at scale 2 (glyph metrics are not exactly
	// linear), and positions add several of them.
	const tol = 2

	type probe struct {
		name string
		obj  fyne.CanvasObject
	}
	type text struct {
		name string
		get  func() *canvas.Text
	}
	check := func(t *testing.T, w fyne.Window, p *Phone, probes []probe, texts []text) {
		t.Helper()
		at1 := map[string]box{}
		size1 := map[string]float32{}
		for _, pr := range probes {
			at1[pr.name] = boxOf(p, pr.obj)
		}
		for _, tx := range texts {
			size1[tx.name] = tx.get().TextSize
		}
		w.Resize(big)
		if p.Scale() != 2 {
			t.Fatalf("phone scale %v, want 2", p.Scale())
		}
		for _, tx := range texts {
			if got, want := tx.get().TextSize, 2*size1[tx.name]; got != want {
				t.Errorf("%s: text size %v at scale 2, want %v", tx.name, got, want)
			}
		}
		for _, pr := range probes {
			b1, b2 := at1[pr.name], boxOf(p, pr.obj)
			if !near(b2.pos, b1.pos.Add(b1.pos), tol) || !near(b2.size, b1.size.Add(b1.size), tol) {
				t.Errorf("%s: at %v size %v at scale 2; at scale 1 %v size %v", pr.name, b2.pos, b2.size, b1.pos, b1.size)
			}
		}
		w.Resize(phoneSize)
		for _, tx := range texts {
			if got := tx.get().TextSize; got != size1[tx.name] {
				t.Errorf("%s: text size %v back at scale 1, want %v", tx.name, got, size1[tx.name])
			}
		}
		for _, pr := range probes {
			if got := boxOf(p, pr.obj); got != at1[pr.name] {
				t.Errorf("%s: %v back at scale 1, want %v", pr.name, got, at1[pr.name])
			}
		}
	}

	t.Run("app page", func(t *testing.T) {
		a := newTestApp(t, true)
		ap := testAppPage(a.Clipboard())
		p := testPhone(ap)
		w := newTestWindow(t, p, phoneSize)
		label := canvasTexts(ap.uri.label)
		if len(label) == 0 {
			t.Fatal("no text in the Channel URI's label")
		}
		check(t, w, p, []probe{
			{"app name", ap.page.app}, {"title", ap.page.title}, {"channel state", ap.state},
			{"URI field", ap.uri}, {"URI label", ap.uri.label}, {"copy button", ap.uri.copy},
			{"handoff", ap.handoff}, {"errors", ap.errors}, {"raw notifications", ap.raws},
			{"toasts", ap.toasts}, {"scroll", ap.page.scroll},
		}, []text{
			{"app name", func() *canvas.Text { return textOf(ap.page.app) }},
			{"title", func() *canvas.Text { return textOf(ap.page.title) }},
			{"handoff", func() *canvas.Text { return textOf(ap.handoff) }},
			{"raw row", func() *canvas.Text { return textOf(ap.raws.pool[1]) }},
			{"URI label (fyne)", func() *canvas.Text { return canvasTexts(ap.uri.label)[0] }},
			{"copy button", func() *canvas.Text { return test.WidgetRenderer(ap.uri.copy).(*buttonRenderer).text }},
		})
	})

	t.Run("settings", func(t *testing.T) {
		newTestApp(t, true)
		s := testSettings()
		p := testPhone(s)
		w := newTestWindow(t, p, phoneSize)
		airplane := func() *canvas.Text { return textOf(test.WidgetRenderer(s.airplane).(*toggleRenderer).title) }
		check(t, w, p, []probe{
			{"title", s.page.title}, {"news switch", s.appToggles["news"]}, {"airplane mode", s.airplane},
			{"battery saver", s.saver}, {"background picker", s.background}, {"accent picker", s.accent},
			{"accent swatch", s.accent.swatch}, {"reset", s.reset},
		}, []text{
			{"airplane mode", airplane},
			{"background", func() *canvas.Text { return textOf(s.background.caption) }},
		})
	})

	t.Run("opt-in prompt", func(t *testing.T) {
		newTestApp(t, true)
		p := testPhone(nil)
		o := NewOptIn("News")
		p.ShowDialog(o)
		w := newTestWindow(t, p, phoneSize)
		check(t, w, p, []probe{
			{"title", o.box.title}, {"message", o.box.message}, {"allow", o.box.ok}, {"don't allow", o.box.cancel},
		}, []text{
			{"title", func() *canvas.Text { return textOf(o.box.title) }},
			{"message", func() *canvas.Text { return textOf(o.box.message) }},
		})
	})

	t.Run("app list", func(t *testing.T) {
		newTestApp(t, true)
		l := NewAppList()
		l.SetApps([]App{{ID: "news", Name: "News", Unpinned: true}, {ID: "mail", Name: "Mail"}})
		l.OpenMenu("news")
		p := testPhone(l)
		w := newTestWindow(t, p, phoneSize)
		check(t, w, p, []probe{
			{"first row", l.pool[0]}, {"second row", l.pool[1]}, {"pin to start", l.pool[1].pin},
		}, []text{
			{"app name", func() *canvas.Text { return textOf(l.pool[0].name) }},
		})
	})
}

// TestPagesShrinkWithThePhone: below scale 1 too, down to MinScale, the
// pages are drawn smaller, text and all.
func TestPagesShrinkWithThePhone(t *testing.T) {
	a := newTestApp(t, true)
	ap := testAppPage(a.Clipboard())
	p := testPhone(ap)
	newTestWindow(t, p, fyne.NewSize(MinScale*PhoneWidth, MinScale*PhoneHeight))
	if p.Scale() != MinScale {
		t.Fatalf("phone scale %v, want %v", p.Scale(), MinScale)
	}
	if got, want := textOf(ap.page.title).TextSize, float32(FontTitle*MinScale); got != want {
		t.Errorf("title at %v, want %v", got, want)
	}
	if got, want := ap.uri.Size().Width, float32(PageWidth*MinScale); got != want {
		t.Errorf("Channel URI field %v wide, want %v", got, want)
	}
	if got, want := p.status.Size().Height, float32(StatusBarHeight*MinScale); got != want {
		t.Errorf("status bar %v high, want %v", got, want)
	}
}

// TestPageGlyphsScale looks at the pixels: the app page's title and a
// settings label cover twice the width and height on screen at scale 2.
func TestPageGlyphsScale(t *testing.T) {
	newTestApp(t, true)
	ap := NewAppPage("News", nil)
	s := testSettings()
	label := test.WidgetRenderer(s.airplane).(*toggleRenderer).title
	for _, tt := range []struct {
		name   string
		screen fyne.CanvasObject
		text   fyne.CanvasObject
		above  fyne.CanvasObject // text whose box overlaps the top of text's
	}{
		{"app page title", ap, ap.page.title, ap.page.app},
		{"settings label", s, label, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := testPhone(tt.screen)
			w := newTestWindow(t, p, phoneSize)
			// The glyphs' bounds, from the corner of the screen.
			ink := func() image.Rectangle {
				r := screenRect(tt.text)
				if tt.above != nil {
					r.Min.Y = max(r.Min.Y, screenRect(tt.above).Max.Y)
				}
				return inkBox(capture(w), r).Sub(screenRect(p.screens).Min)
			}
			ink1 := ink()
			w.Resize(fyne.NewSize(2*PhoneWidth, 2*PhoneHeight))
			ink2 := ink()
			if ink1.Empty() {
				t.Fatal("no ink at scale 1")
			}
			// Glyphs are hinted and anti-aliased at each size: the
			// text at 2× is not exactly twice the pixels of the text at
			// 1×, but within a few pixels of it (unscaled text would be
			// half of it).
			twice := func(got, at1 image.Point) bool {
				return abs(got.X-2*at1.X) <= 4+got.X/30 && abs(got.Y-2*at1.Y) <= 4+got.Y/30
			}
			if d1, d2 := ink1.Size(), ink2.Size(); !twice(d2, d1) {
				t.Errorf("glyphs %v at scale 2, want about twice %v", d2, d1)
			}
			if o1, o2 := ink1.Min, ink2.Min; !twice(o2, o1) {
				t.Errorf("glyphs start at %v from the screen's corner at scale 2, want about twice %v", o2, o1)
			}
		})
	}
}

func abs(n int) int {
	if n < 0 {
		return -n
	}
	return n
}

// TestScaledPartsAddedLater: rows, switches and apps that a page makes after
// the phone was scaled are drawn at the phone's scale.
func TestScaledPartsAddedLater(t *testing.T) {
	newTestApp(t, true)
	ap := NewAppPage("News", nil)
	s := NewSettings()
	l := NewAppList()
	p := testPhone(ap)
	newTestWindow(t, p, fyne.NewSize(2*PhoneWidth, 2*PhoneHeight))

	raws := make([]RawNotification, 3)
	for i := range raws {
		raws[i] = RawNotification{Time: testTime, Data: []byte(fmt.Sprintf("raw %d", i))}
	}
	ap.SetRaws(raws)
	ap.SetToasts([]ReceivedToast{{Time: testTime, Toast: payload.Toast{Text1: "Alice", Text2: "Lunch?"}}})
	for i, row := range ap.raws.pool {
		if got, want := textOf(row).TextSize, 2*row.size; got != want {
			t.Errorf("raw row line %d: text size %v, want %v", i, got, want)
		}
	}
	if got := ap.raws.box.Objects[3]; got.MinSize().Height != 20 { // the gap between rows
		t.Errorf("gap between rows %v high, want 20", got.MinSize().Height)
	}

	p.Push(s) // pushed after the phone was scaled
	s.SetApps([]AppSwitch{{ID: "news", Name: "News", On: true}})
	news := s.appToggles["news"]
	if got, want := news.MinSize(), fyne.NewSize(2*PageWidth, 2*toggleHeight); got != want {
		t.Errorf("news switch %v, want %v", got, want)
	}
	title := test.WidgetRenderer(news).(*toggleRenderer).title
	if got := textOf(title).TextSize; got != 2*FontMediumLarge {
		t.Errorf("news switch title at %v, want %v", got, 2*FontMediumLarge)
	}

	p.Push(l)
	l.SetApps([]App{{ID: "news", Name: "News"}})
	if got := l.pool[0].MinSize().Height; got != 2*appRowH {
		t.Errorf("app row %v high, want %v", got, 2*appRowH)
	}
}

// TestScaledThemeFollowsTheApp: the theme of fyne's widgets on a page is the
// app's theme, sizes times the scale, colours as they are.
func TestScaledThemeFollowsTheApp(t *testing.T) {
	a := newTestApp(t, false)
	th := &ScaledTheme{}
	th.Rescale(3)
	base := a.Settings().Theme()
	if got, want := th.Size(theme.SizeNameText), 3*base.Size(theme.SizeNameText); got != want {
		t.Errorf("text size %v, want %v", got, want)
	}
	if th.Color(theme.ColorNameForeground, theme.VariantDark) != base.Color(theme.ColorNameForeground, theme.VariantDark) {
		t.Error("foreground colour differs from the app's")
	}
	newTestApp(t, true) // the app's theme changes: so does the page's
	if th.Color(theme.ColorNameBackground, theme.VariantDark) != a.Settings().Theme().Color(theme.ColorNameBackground, theme.VariantDark) {
		t.Error("background colour did not follow the app's theme")
	}
}
