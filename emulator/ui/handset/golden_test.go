package handset_test

import (
	"testing"

	"github.com/openmpns/openmpns/emulator/internal/golden"
	"github.com/openmpns/openmpns/emulator/ui/handset"
	"github.com/openmpns/openmpns/emulator/ui/internal/phonetest"
	"github.com/openmpns/openmpns/emulator/ui/internal/uitest"
	"github.com/openmpns/openmpns/emulator/ui/start"
	"github.com/openmpns/openmpns/shared/payload"
)

// TestGoldenToast: a toast slid in over the start screen, while the phone
// connects.
func TestGoldenToast(t *testing.T) {
	uitest.App(t, true)
	s := start.NewStartScreen()
	for _, k := range uitest.SampleTiles() {
		s.Pin(k.Key, k.Tile)
	}
	p := phonetest.Phone(s)
	p.SetConnection(handset.Connecting)
	p.ShowToast(payload.Toast{Text1: "Breaking", Text2: "Markets rally on push news"}, uitest.Icon())
	w := uitest.Window(t, p, phonetest.Size)
	golden.Assert(t, "toast_dark.png", uitest.Capture(w))
}
