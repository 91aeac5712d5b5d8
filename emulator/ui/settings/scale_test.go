package settings

import (
	"image"
	"testing"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"

	"github.com/openmpns/openmpns/emulator/ui/controls"
	"github.com/openmpns/openmpns/emulator/ui/handset"
	"github.com/openmpns/openmpns/emulator/ui/internal/phonetest"
	"github.com/openmpns/openmpns/emulator/ui/internal/uitest"
)

// TestSettingsScaleWithThePhone shows the settings page in a phone at scale
// 1 and in a window twice as large (see phonetest.CheckScales).
func TestSettingsScaleWithThePhone(t *testing.T) {
	uitest.App(t, true)
	s := testSettings()
	p := phonetest.Phone(s)
	w := uitest.Window(t, p, phonetest.Size)
	phonetest.CheckScales(t, w, p, phonetest.Probes{
		"title": s.page.Title(), "news switch": s.appToggles["news"], "airplane mode": s.airplane,
		"battery saver": s.saver, "background picker": s.background, "accent picker": s.accent,
		"accent swatch": s.accent.swatch, "reset": s.reset,
	}, phonetest.Texts{
		"airplane mode": func() *canvas.Text { return uitest.FirstText(t, s.airplane) },
		"background":    func() *canvas.Text { return uitest.FirstText(t, s.background.caption) },
	})
}

// TestLabelGlyphsScale looks at the pixels: a switch's label covers twice
// the width and height on screen at scale 2.
func TestLabelGlyphsScale(t *testing.T) {
	uitest.App(t, true)
	s := testSettings()
	p := phonetest.Phone(s)
	w := uitest.Window(t, p, phonetest.Size)
	label := uitest.FirstText(t, s.airplane)
	ink := func() image.Rectangle {
		return uitest.InkBox(uitest.Capture(w), uitest.ScreenRect(label)).Sub(uitest.ScreenRect(p.ScreenArea()).Min)
	}
	ink1 := ink()
	w.Resize(fyne.NewSize(2*handset.PhoneWidth, 2*handset.PhoneHeight))
	label = uitest.FirstText(t, s.airplane)
	phonetest.CheckTwice(t, ink1, ink())
}

// TestSwitchesAddedLaterScale: a switch made after the phone was scaled is
// drawn at the phone's scale.
func TestSwitchesAddedLaterScale(t *testing.T) {
	uitest.App(t, true)
	at1 := controls.NewToggle("News", true, nil).MinSize()
	p := phonetest.Phone(nil)
	uitest.Window(t, p, fyne.NewSize(2*handset.PhoneWidth, 2*handset.PhoneHeight))
	s := NewSettings()
	p.Push(s) // pushed after the phone was scaled
	s.SetApps([]AppSwitch{{ID: "news", Name: "News", On: true}})
	news := s.appToggles["news"]
	if got, want := news.MinSize(), fyne.NewSize(2*at1.Width, 2*at1.Height); got != want {
		t.Errorf("news switch %v, want %v", got, want)
	}
	if got := uitest.FirstText(t, news).TextSize; got != 2*controls.FontMediumLarge {
		t.Errorf("news switch title at %v, want %v", got, 2*controls.FontMediumLarge)
	}
}
