package applist

import (
	"testing"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"

	"github.com/openmpns/openmpns/emulator/ui"
	"github.com/openmpns/openmpns/emulator/ui/handset"
	"github.com/openmpns/openmpns/emulator/ui/internal/phonetest"
	"github.com/openmpns/openmpns/emulator/ui/internal/uitest"
)

// TestListScalesWithThePhone shows the app list, a menu open, in a phone
// at scale 1 and in a window twice as large (see phonetest.CheckScales).
func TestListScalesWithThePhone(t *testing.T) {
	uitest.App(t, true)
	l := NewAppList()
	l.SetApps([]ui.App{{ID: "news", Name: "News", Unpinned: true}, {ID: "mail", Name: "Mail"}})
	l.OpenMenu("news")
	p := phonetest.Phone(l)
	w := uitest.Window(t, p, phonetest.Size)
	phonetest.CheckScales(t, w, p, phonetest.Probes{
		"first row": l.pool[0], "second row": l.pool[1], "pin to start": l.pool[1].pin,
	}, phonetest.Texts{
		"app name": func() *canvas.Text { return uitest.FirstText(t, l.pool[0].name) },
	})
}

// TestRowsAddedLaterScale: an app row made after the phone was scaled is
// drawn at the phone's scale.
func TestRowsAddedLaterScale(t *testing.T) {
	uitest.App(t, true)
	l := NewAppList()
	p := phonetest.Phone(l)
	uitest.Window(t, p, fyne.NewSize(2*handset.PhoneWidth, 2*handset.PhoneHeight))
	l.SetApps([]ui.App{{ID: "news", Name: "News"}})
	if got := l.pool[0].MinSize().Height; got != 2*appRowH {
		t.Errorf("app row %v high, want %v", got, 2*appRowH)
	}
}
