package start

import (
	"testing"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/driver/software"

	"github.com/openmpns/openmpns/emulator/internal/golden"
	"github.com/openmpns/openmpns/emulator/tile"
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

// TestGoldenProfiles draws the phone with the sample tiles on each screen
// at that screen's pixels (WXGA: the screen is 768×1280 pixels of the
// image): four columns, six on 1080p and with "show more tiles", a taller
// 16:9 screen on 720p and 1080p.
func TestGoldenProfiles(t *testing.T) {
	profiles := append(tile.Profiles(), tile.WVGA.MoreTiles(true))
	for _, pr := range profiles {
		name := "start_" + pr.Name
		if pr.Columns == 6 && pr != tile.HD1080 {
			name += "_more"
		}
		t.Run(name, func(t *testing.T) {
			uitest.App(t, true)
			s := sampleStart()
			s.SetProfile(pr)
			p := phonetest.Phone(s)
			p.SetProfile(pr)
			c := software.NewCanvas()
			c.SetPadded(false)
			c.SetScale(pr.Scale)
			c.SetContent(p)
			c.Resize(p.BodySize())
			if got, want := p.ScreenSize().Height, pr.LogicalHeight(); got != want {
				t.Errorf("screen %v units high, want %v", got, want)
			}
			if got := s.Columns(); got != pr.Columns {
				t.Errorf("%d columns, want %d", got, pr.Columns)
			}
			golden.Assert(t, name+".png", c.Capture())
		})
	}
}
