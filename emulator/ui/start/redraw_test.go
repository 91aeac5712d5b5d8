package start

import (
	"testing"
	"time"

	"fyne.io/fyne/v2"

	"github.com/openmpns/openmpns/emulator/tile"
	"github.com/openmpns/openmpns/emulator/ui/internal/phonetest"
	"github.com/openmpns/openmpns/emulator/ui/internal/uitest"
	"github.com/openmpns/openmpns/shared/payload"
)

// renders is every tile's draw count, by key.
func renders(s *StartScreen) map[string]int {
	out := map[string]int{SettingsKey: s.Tile(SettingsKey).Renders()}
	for _, p := range s.Tiles() {
		out[p.Key] = p.Tile.Renders()
	}
	return out
}

// drawnSince lists the tiles drawn since before, with how many times.
func drawnSince(s *StartScreen, before map[string]int) map[string]int {
	out := map[string]int{}
	for k, n := range renders(s) {
		if d := n - before[k]; d != 0 {
			out[k] = d
		}
	}
	return out
}

// TestOnlyChangedTilesRedraw counts the draws of 30 live tiles: an update
// draws its tile alone, an update or a re-pin that changes nothing draws
// none, edit mode draws none, and a tick draws exactly the tiles it turned
// over or moved on, once per step of their animation.
func TestOnlyChangedTilesRedraw(t *testing.T) {
	uitest.App(t, true)
	s := NewStartScreen()
	tiles := thirtyTiles()
	s.SetTiles(tiles)
	// A window tall enough to show every tile: tiles out of sight wait
	// for their turn (TestStartTickOnlyWhatIsSeen).
	uitest.Window(t, s, fyne.NewSize(phonetest.Size.Width, 4000))
	for _, p := range tiles {
		if p.Tile.Renders() == 0 {
			t.Fatalf("tile %s was never drawn", p.Key)
		}
	}
	expect := func(what string, before map[string]int, want map[string]int) {
		t.Helper()
		got := drawnSince(s, before)
		if len(got) != len(want) {
			t.Errorf("%s: tiles drawn %v, want %v", what, got, want)
			return
		}
		for k, n := range want {
			if got[k] != n {
				t.Errorf("%s: tiles drawn %v, want %v", what, got, want)
				return
			}
		}
	}

	// An update draws its tile alone.
	key := tiles[3].Key
	tl := s.Tile(key)
	before := renders(s)
	st := tl.State().Clone()
	st.Apply(&payload.Tile{Template: st.Template, Fields: map[string]string{payload.Count: "42"}})
	tl.SetState(st)
	expect("an update", before, map[string]int{key: 1})

	// The same state again (the controller hands out fresh copies), the
	// same tiles pinned again, the same size, scale and accent: nothing.
	before = renders(s)
	for _, p := range tiles {
		p.Tile.SetState(p.Tile.State().Clone())
		p.Tile.SetTileSize(p.Tile.TileSize())
		p.Tile.SetAccent(p.Tile.Accent())
		p.Tile.Refresh()
	}
	s.SetTiles(s.Tiles())
	expect("nothing changed", before, nil)

	// Edit mode dims the screen; the tiles are not drawn again.
	before = renders(s)
	s.Edit(tiles[0].Key)
	s.Edit("")
	expect("edit mode", before, nil)

	// A tick: the flips it starts are stepped frame by frame; each step
	// draws its tile, and only the tiles that moved are drawn.
	var anims []*fyne.Animation
	owner := map[*fyne.Animation]string{}
	for _, p := range s.Tiles() {
		p.Tile.Animate = func(a *fyne.Animation) { anims = append(anims, a); owner[a] = p.Key }
	}
	now := time.Now()
	s.Tick(now) // the tiles' first turns
	before = renders(s)
	s.Tick(now.Add(FlipEvery))
	if len(anims) == 0 {
		t.Fatal("no tile flipped in a whole FlipEvery")
	}
	want := map[string]int{}
	const steps = 10
	for _, a := range anims {
		for i := 1; i <= steps; i++ {
			a.Tick(float32(i) / steps)
		}
		want[owner[a]] = steps
	}
	for _, p := range s.Tiles() {
		tl := p.Tile
		if !tl.HasBack() && tl.State().Template == payload.TemplateCycle && len(tl.State().CycleImages()) > 1 && tl.TileSize() != tile.Small {
			want[p.Key] = 1 // moved on to its next image
		}
	}
	expect("a tick", before, want)
	for _, p := range tiles {
		if p.Tile.Flipping() {
			t.Errorf("tile %s still flipping after its last step", p.Key)
		}
	}
}
