package applist

import (
	"testing"

	"github.com/openmpns/openmpns/emulator/internal/golden"
	"github.com/openmpns/openmpns/emulator/ui"
	"github.com/openmpns/openmpns/emulator/ui/handset"
	"github.com/openmpns/openmpns/emulator/ui/internal/phonetest"
	"github.com/openmpns/openmpns/emulator/ui/internal/uitest"
	"github.com/openmpns/openmpns/shared/payload"
)

// TestGolden: the app list, offline in battery saver, under a toast with
// no icon.
func TestGolden(t *testing.T) {
	uitest.App(t, false)
	l := NewAppList()
	l.SetApps([]ui.App{{ID: "weather", Name: "Contoso Weather"}, {ID: "news", Name: "News", Icon: uitest.Icon()}, {ID: "mail", Name: "mail client"}})
	p := phonetest.Phone(l)
	p.SetConnection(handset.Offline)
	p.SetBatterySaver(true)
	p.ShowToast(payload.Toast{Text1: "Alice", Text2: "Lunch at noon?"}, nil)
	w := uitest.Window(t, p, phonetest.Size)
	golden.Assert(t, "applist_toast_light.png", uitest.Capture(w))
}
