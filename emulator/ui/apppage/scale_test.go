package apppage

import (
	"fmt"
	"image"
	"testing"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"

	"github.com/openmpns/openmpns/emulator/ui/controls"
	"github.com/openmpns/openmpns/emulator/ui/handset"
	"github.com/openmpns/openmpns/emulator/ui/internal/phonetest"
	"github.com/openmpns/openmpns/emulator/ui/internal/uitest"
	"github.com/openmpns/openmpns/shared/payload"
)

// TestPageScalesWithThePhone shows the app page in a phone at scale 1 and
// in a window twice as large (see phonetest.CheckScales).
func TestPageScalesWithThePhone(t *testing.T) {
	a := uitest.App(t, true)
	ap := testAppPage(a.Clipboard())
	p := phonetest.Phone(ap)
	w := uitest.Window(t, p, phonetest.Size)
	if len(uitest.Texts(ap.uri.label)) == 0 {
		t.Fatal("no text in the Channel URI's label")
	}
	text := func(o fyne.CanvasObject) func() *canvas.Text {
		return func() *canvas.Text { return uitest.FirstText(t, o) }
	}
	phonetest.CheckScales(t, w, p, phonetest.Probes{
		"app name": ap.page.App(), "title": ap.page.Title(), "channel state": ap.state,
		"URI field": ap.uri, "URI label": ap.uri.label, "copy button": ap.uri.copy,
		"handoff": ap.handoff, "errors": ap.errors, "raw notifications": ap.raws,
		"toasts": ap.toasts, "scroll": ap.page.Scroll,
	}, phonetest.Texts{
		"app name":         text(ap.page.App()),
		"title":            text(ap.page.Title()),
		"handoff":          text(ap.handoff),
		"raw row":          text(ap.raws.pool[1]),
		"URI label (fyne)": text(ap.uri.label),
		"copy button":      text(ap.uri.copy),
	})
}

// TestPageShrinksWithThePhone: below scale 1 too, down to controls.MinScale, the
// page is drawn smaller, text and all.
func TestPageShrinksWithThePhone(t *testing.T) {
	a := uitest.App(t, true)
	ap := testAppPage(a.Clipboard())
	p := phonetest.Phone(ap)
	uitest.Window(t, p, fyne.NewSize(controls.MinScale*handset.PhoneWidth, controls.MinScale*handset.PhoneHeight))
	if p.Scale() != controls.MinScale {
		t.Fatalf("phone scale %v, want %v", p.Scale(), controls.MinScale)
	}
	if got, want := uitest.FirstText(t, ap.page.Title()).TextSize, float32(controls.FontTitle*controls.MinScale); got != want {
		t.Errorf("title at %v, want %v", got, want)
	}
	if got, want := ap.uri.Size().Width, float32(controls.PageWidth*controls.MinScale); got != want {
		t.Errorf("Channel URI field %v wide, want %v", got, want)
	}
	if got, want := p.StatusBar().Size().Height, float32(controls.StatusBarHeight*controls.MinScale); got != want {
		t.Errorf("status bar %v high, want %v", got, want)
	}
}

// TestTitleGlyphsScale looks at the pixels: the page's title covers twice
// the width and height on screen at scale 2.
func TestTitleGlyphsScale(t *testing.T) {
	uitest.App(t, true)
	ap := NewAppPage("News", nil)
	p := phonetest.Phone(ap)
	w := uitest.Window(t, p, phonetest.Size)
	ink := func() image.Rectangle {
		r := uitest.ScreenRect(ap.page.Title())
		r.Min.Y = max(r.Min.Y, uitest.ScreenRect(ap.page.App()).Max.Y) // the app name overlaps its top
		return uitest.InkBox(uitest.Capture(w), r).Sub(uitest.ScreenRect(p.ScreenArea()).Min)
	}
	ink1 := ink()
	w.Resize(fyne.NewSize(2*handset.PhoneWidth, 2*handset.PhoneHeight))
	phonetest.CheckTwice(t, ink1, ink())
}

// TestRowsAddedLaterScale: rows the page makes after the phone was scaled
// are drawn at the phone's scale.
func TestRowsAddedLaterScale(t *testing.T) {
	uitest.App(t, true)
	ap := NewAppPage("News", nil)
	p := phonetest.Phone(ap)
	uitest.Window(t, p, fyne.NewSize(2*handset.PhoneWidth, 2*handset.PhoneHeight))
	raws := make([]RawNotification, 3)
	for i := range raws {
		raws[i] = RawNotification{Time: uitest.Time, Data: []byte(fmt.Sprintf("raw %d", i))}
	}
	ap.SetRaws(raws)
	ap.SetToasts([]ReceivedToast{{Time: uitest.Time, Toast: payload.Toast{Text1: "Alice", Text2: "Lunch?"}}})
	for i, row := range ap.raws.pool {
		if got, want := uitest.FirstText(t, row).TextSize, 2*row.FontSize(); got != want {
			t.Errorf("raw row line %d: text size %v, want %v", i, got, want)
		}
	}
	if got := ap.raws.box.Objects[3]; got.MinSize().Height != 20 { // the gap between rows
		t.Errorf("gap between rows %v high, want 20", got.MinSize().Height)
	}
}
