package optin

import (
	"testing"

	"github.com/openmpns/openmpns/emulator/internal/golden"
	"github.com/openmpns/openmpns/emulator/ui/internal/phonetest"
	"github.com/openmpns/openmpns/emulator/ui/internal/uitest"
	"github.com/openmpns/openmpns/emulator/ui/start"
)

// sampleStart is a start screen with uitest's sample tiles.
func sampleStart() *start.StartScreen {
	s := start.NewStartScreen()
	for _, k := range uitest.SampleTiles() {
		s.Pin(k.Key, k.Tile)
	}
	return s
}

func TestGolden(t *testing.T) {
	uitest.App(t, true)
	p := phonetest.Phone(sampleStart())
	p.ShowDialog(NewOptIn("News"))
	w := uitest.Window(t, p, phonetest.Size)
	golden.Assert(t, "optin_dark.png", uitest.Capture(w))
}
