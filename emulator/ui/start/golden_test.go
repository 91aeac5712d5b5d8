package start

import (
	"testing"

	"fyne.io/fyne/v2"

	"github.com/openmpns/openmpns/emulator/internal/golden"
	"github.com/openmpns/openmpns/emulator/ui/internal/phonetest"
	"github.com/openmpns/openmpns/emulator/ui/internal/uitest"
)

// sampleTiles is uitest's realistic start screen, pinned.
func sampleTiles() []Pinned {
	var out []Pinned
	for _, k := range uitest.SampleTiles() {
		out = append(out, Pinned{Key: k.Key, Tile: k.Tile})
	}
	return out
}

// sampleStart is a start screen with the sample tiles.
func sampleStart() *StartScreen {
	s := NewStartScreen()
	s.SetTiles(sampleTiles())
	return s
}

func TestGolden(t *testing.T) {
	tests := []struct {
		name  string
		dark  bool
		build func() *StartScreen
		after func(s *StartScreen) // once the window has laid it out
	}{
		{"start_dark", true, func() *StartScreen {
			s := sampleStart()
			s.Tile("weather").SetFace(true)
			return s
		}, nil},
		{"start_edit_light", false, func() *StartScreen {
			s := sampleStart()
			s.Edit("weather")
			return s
		}, func(s *StartScreen) { s.scroll.ScrollToBottom() }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			uitest.App(t, tt.dark)
			s := tt.build()
			w := uitest.Window(t, phonetest.Phone(s), phonetest.Size)
			if tt.after != nil {
				tt.after(s)
			}
			golden.Assert(t, tt.name+".png", uitest.Capture(w))
		})
	}
}

var _ fyne.CanvasObject = (*StartScreen)(nil)
