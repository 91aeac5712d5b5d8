package applist

import (
	"testing"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/test"

	"github.com/openmpns/openmpns/emulator/ui"
	"github.com/openmpns/openmpns/emulator/ui/internal/phonetest"
	"github.com/openmpns/openmpns/emulator/ui/internal/uitest"
)

func TestMain(m *testing.M) { uitest.Main(m) }

func TestAppListPinToStart(t *testing.T) {
	uitest.App(t, true)
	l := NewAppList()
	l.SetApps([]ui.App{{ID: "news", Name: "News"}, {ID: "mail", Name: "Mail", Unpinned: true}})
	w := uitest.Window(t, phonetest.Phone(l), phonetest.Size)
	var launched, pinned []string
	l.OnAppTapped = func(id string) { launched = append(launched, id) }
	l.OnPinTapped = func(id string) { pinned = append(pinned, id) }
	row := func(id string) *appRow {
		for _, o := range l.rows.Objects {
			if r := o.(*appRow); r.app.ID == id {
				return r
			}
		}
		t.Fatalf("no row for %s", id)
		return nil
	}

	// A pinned app has nothing to offer.
	test.TapSecondaryAt(row("news"), fyne.NewPos(100, 30))
	if l.Menu() != "" {
		t.Fatalf("menu opened for a pinned app")
	}
	// An unpinned one: "pin to start" under it, which the back key closes.
	mail := row("mail")
	test.TapSecondaryAt(mail, fyne.NewPos(100, 30))
	if l.Menu() != "mail" || !mail.pin.Visible() || mail.Size().Height <= appRowH {
		t.Fatalf("menu %q, pin visible %v, row %v", l.Menu(), mail.pin.Visible(), mail.Size())
	}
	if !l.HandleBack() || l.Menu() != "" || mail.pin.Visible() {
		t.Fatal("back did not close the menu")
	}
	// With the menu open a tap closes it rather than launching the app.
	l.OpenMenu("mail")
	test.TapCanvas(w.Canvas(), uitest.AbsPos(row("news"), 100, 30))
	if l.Menu() != "" || len(launched) != 0 {
		t.Fatalf("tap with the menu open: menu %q, launched %v", l.Menu(), launched)
	}
	l.OpenMenu("mail")
	test.TapCanvas(w.Canvas(), uitest.AbsPos(mail.pin, 20, 20))
	if len(pinned) != 1 || pinned[0] != "mail" || l.Menu() != "" {
		t.Fatalf("pin to start: OnPinTapped got %v, menu %q", pinned, l.Menu())
	}
	// Once pinned (the controller says so), the menu is not offered.
	l.SetApps([]ui.App{{ID: "news", Name: "News"}, {ID: "mail", Name: "Mail"}})
	l.OpenMenu("mail")
	if l.Menu() != "" {
		t.Error("menu opened for an app pinned again")
	}
	test.TapCanvas(w.Canvas(), uitest.AbsPos(row("news"), 100, 30))
	if len(launched) != 1 || launched[0] != "news" {
		t.Errorf("OnAppTapped got %v", launched)
	}
}
