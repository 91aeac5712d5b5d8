package start

import (
	"fmt"
	"image/color"
	"testing"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/test"

	"github.com/openmpns/openmpns/emulator/accent"
	"github.com/openmpns/openmpns/emulator/tile"
	"github.com/openmpns/openmpns/emulator/ui/handset"
	"github.com/openmpns/openmpns/emulator/ui/internal/phonetest"
	"github.com/openmpns/openmpns/emulator/ui/internal/uitest"
	"github.com/openmpns/openmpns/shared/payload"
)

func newTestStart(t *testing.T) (*StartScreen, fyne.Window) {
	t.Helper()
	uitest.App(t, true)
	s := NewStartScreen()
	s.SetTiles(sampleTiles())
	w := uitest.Window(t, handset.NewPhone(s), phonetest.Size)
	return s, w
}

func TestStartTapTile(t *testing.T) {
	s, w := newTestStart(t)
	var keys []string
	settings, apps := 0, 0
	s.OnTileTapped = func(k string) { keys = append(keys, k) }
	s.OnSettings = func() { settings++ }
	s.OnAppList = func() { apps++ }

	test.TapCanvas(w.Canvas(), uitest.AbsPos(s.Tile("messaging"), 50, 50))
	test.TapCanvas(w.Canvas(), uitest.AbsPos(s.Tile("store"), 20, 20))
	if len(keys) != 2 || keys[0] != "messaging" || keys[1] != "store" {
		t.Errorf("OnTileTapped got %v, want [messaging store]", keys)
	}
	s.scroll.ScrollToBottom()
	test.TapCanvas(w.Canvas(), uitest.AbsPos(s.Tile(SettingsKey), 50, 50))
	test.TapCanvas(w.Canvas(), uitest.AbsPos(s.grid.arrow, 24, 24))
	if settings != 1 || apps != 1 {
		t.Errorf("OnSettings called %d times, OnAppList %d times; want 1 and 1", settings, apps)
	}
	if len(keys) != 2 {
		t.Errorf("the settings tile reached OnTileTapped: %v", keys)
	}
}

func TestStartResize(t *testing.T) {
	s, w := newTestStart(t)
	type resize struct {
		key  string
		size tile.Size
	}
	var got []resize
	s.OnTileResized = func(k string, size tile.Size) { got = append(got, resize{k, size}) }
	tapped := 0
	s.OnTileTapped = func(string) { tapped++ }

	// A right click (a long press on a touch screen) enters edit mode.
	mail := s.Tile("mail")
	test.TapSecondaryAt(s.grid, mail.Position().Add(fyne.NewPos(30, 30)))
	if s.Editing() != "mail" || !s.grid.dim.Visible() {
		t.Fatalf("editing %q after a secondary tap on mail", s.Editing())
	}
	// The arrow cycles medium → small → wide → medium.
	for _, want := range []tile.Size{tile.Small, tile.Wide, tile.Medium} {
		test.TapCanvas(w.Canvas(), uitest.AbsPos(s.grid.resize, resizeSide/2, resizeSide/2))
		if mail.TileSize() != want {
			t.Fatalf("after the arrow: %v, want %v", mail.TileSize(), want)
		}
	}
	want := []resize{{"mail", tile.Small}, {"mail", tile.Wide}, {"mail", tile.Medium}}
	if len(got) != len(want) {
		t.Fatalf("OnTileResized got %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("OnTileResized #%d = %v, want %v", i, got[i], want[i])
		}
	}
	// The layout follows the new size.
	test.TapCanvas(w.Canvas(), uitest.AbsPos(s.grid.resize, resizeSide/2, resizeSide/2)) // small
	if w, h := s.grid.geo.Extent(tile.Small); mail.Size() != fyne.NewSize(w, h) {
		t.Errorf("a small tile is drawn %v", mail.Size())
	}
	// Tapping a tile in edit mode edits it instead of opening the app.
	test.TapCanvas(w.Canvas(), uitest.AbsPos(s.Tile("messaging"), 50, 50))
	if s.Editing() != "messaging" || tapped != 0 {
		t.Errorf("editing %q, OnTileTapped called %d times", s.Editing(), tapped)
	}
	// The back key leaves edit mode.
	if !s.HandleBack() || s.Editing() != "" || s.grid.dim.Visible() {
		t.Error("back did not leave edit mode")
	}
	if s.HandleBack() {
		t.Error("back outside edit mode was kept by the start screen")
	}
}

func TestStartSetTileSizeRepacks(t *testing.T) {
	s, _ := newTestStart(t)
	mail, messaging := s.Tile("mail"), s.Tile("messaging")
	if messaging.Position().X <= mail.Position().X {
		t.Fatal("messaging should start right of mail")
	}
	s.SetTileSize("mail", tile.Wide)
	if messaging.Position().Y <= mail.Position().Y {
		t.Errorf("messaging at %v did not move under the wide mail tile at %v", messaging.Position(), mail.Position())
	}
	if s.Tile("mail") != mail {
		t.Error("resizing replaced the tile widget")
	}
}

func TestStartUpdateOneTile(t *testing.T) {
	s, _ := newTestStart(t)
	before := map[string]fyne.Position{}
	for _, p := range s.Tiles() {
		before[p.Key] = p.Tile.Position()
	}
	s.Tile("news").Apply(&payload.Tile{Template: payload.TemplateFlip, Fields: map[string]string{payload.Count: "13"}})
	if got := s.Tile("news").State().Count(); got != 13 {
		t.Errorf("count %d after the update, want 13", got)
	}
	for _, p := range s.Tiles() {
		if p.Tile.Position() != before[p.Key] {
			t.Errorf("%s moved from %v to %v on another tile's update", p.Key, before[p.Key], p.Tile.Position())
		}
	}
}

func TestStartPinUnpin(t *testing.T) {
	s, _ := newTestStart(t)
	n := len(s.Tiles())
	extra := uitest.NewTile(payload.TemplateFlip, tile.Small, map[string]string{payload.Title: "Extra"})
	s.Pin("extra", extra)
	if len(s.Tiles()) != n+1 || s.Tile("extra") != extra {
		t.Fatal("Pin did not add the tile")
	}
	s.Pin(SettingsKey, extra) // reserved
	s.Edit("extra")
	s.Unpin("extra")
	if len(s.Tiles()) != n || s.Tile("extra") != nil || s.Editing() != "" {
		t.Error("Unpin did not remove the tile (or left edit mode on it)")
	}
	keys := s.grid.pins
	if keys[len(keys)-1].Key != SettingsKey {
		t.Error("the settings tile is not last")
	}
}

func TestStartTick(t *testing.T) {
	s, _ := newTestStart(t)
	news, photos := s.Tile("news"), s.Tile("photos")
	now := uitest.Time
	s.Tick(now) // schedules
	if news.Back() {
		t.Fatal("a tile flipped on the first tick")
	}
	s.Tick(now.Add(FlipEvery)) // every tile's first turn has come
	if !news.Back() {
		t.Error("the news tile did not flip")
	}
	if photos.CycleIndex() != 1 {
		t.Errorf("the photos tile shows image %d, want 1", photos.CycleIndex())
	}
	s.Tick(now.Add(FlipEvery + time.Second)) // too early for the next
	if !news.Back() {
		t.Error("the news tile flipped back too early")
	}
	s.Tick(now.Add(3 * FlipEvery))
	if news.Back() {
		t.Error("the news tile did not flip back")
	}
}

func TestStartUnpin(t *testing.T) {
	s, w := newTestStart(t)
	var unpinned []string
	s.OnTileUnpinned = func(key string) { unpinned = append(unpinned, key) }
	n := len(s.Tiles())
	mail := s.Tile("mail")

	// A right click reaches the tile itself under the GL driver.
	test.TapSecondary(mail)
	if s.Editing() != "mail" {
		t.Fatalf("editing %q after a secondary tap on mail", s.Editing())
	}
	// The pin sits on the tile's top right corner.
	if pin, tp := s.grid.unpin.Position(), mail.Position(); pin.X < tp.X || pin.Y > tp.Y {
		t.Errorf("unpin button at %v, tile at %v", pin, tp)
	}
	test.TapCanvas(w.Canvas(), uitest.AbsPos(s.grid.unpin, resizeSide/2, resizeSide/2))
	if len(unpinned) != 1 || unpinned[0] != "mail" {
		t.Fatalf("OnTileUnpinned got %v", unpinned)
	}
	if s.Tile("mail") != nil || len(s.Tiles()) != n-1 || s.Editing() != "" {
		t.Errorf("after unpinning: mail %v, %d tiles, editing %q", s.Tile("mail"), len(s.Tiles()), s.Editing())
	}

	// The settings tile can be resized but not unpinned.
	s.Edit(SettingsKey)
	for _, o := range test.WidgetRenderer(s.grid).Objects() {
		if o == s.grid.unpin {
			t.Fatal("the settings tile offers to unpin itself")
		}
	}
	s.grid.unpinEditing()
	if s.grid.index[SettingsKey] != len(s.grid.pins)-1 || len(unpinned) != 1 {
		t.Error("the settings tile was unpinned")
	}
}

// TestStartTilesKeepTheirOwnAccent shows a tile the caller painted in its
// app's accent next to one that follows the phone's: the first keeps its
// colour when the start screen shows it and when the theme changes, the
// second follows the theme.
func TestStartTilesKeepTheirOwnAccent(t *testing.T) {
	uitest.App(t, true)
	own := uitest.NewTile(payload.TemplateFlip, tile.Medium, map[string]string{payload.Title: "News"})
	own.SetAccent(accent.Crimson)
	plain := uitest.NewTile(payload.TemplateFlip, tile.Medium, map[string]string{payload.Title: "Plain"})
	s := NewStartScreen()
	s.SetTiles([]Pinned{{Key: "news", Tile: own}, {Key: "plain", Tile: plain}})
	w := uitest.Window(t, handset.NewPhone(s), phonetest.Size)

	tests := []struct {
		theme     string
		wantOwn   color.NRGBA
		wantPlain color.NRGBA
	}{
		{"cobalt", accent.Crimson, accent.Cobalt},
		{"lime", accent.Crimson, accent.Lime},
	}
	for _, tt := range tests {
		fyne.CurrentApp().Settings().SetTheme(uitest.Theme(true, tt.theme))
		img := uitest.Capture(w)
		if got := uitest.ColourAt(img, own, 4, 4); got != tt.wantOwn {
			t.Errorf("theme %s: the app's tile is drawn %v, want its own accent %v", tt.theme, got, tt.wantOwn)
		}
		if got := uitest.ColourAt(img, plain, 4, 4); got != tt.wantPlain {
			t.Errorf("theme %s: a tile without an accent is drawn %v, want the theme's %v", tt.theme, got, tt.wantPlain)
		}
	}
	// A tile pinned after the theme changed takes the theme's accent, and
	// repaints nobody else.
	extra := uitest.NewTile(payload.TemplateFlip, tile.Small, nil)
	s.Pin("extra", extra)
	img := uitest.Capture(w)
	if got := uitest.ColourAt(img, own, 4, 4); got != accent.Crimson {
		t.Errorf("after pinning another tile the app's tile is drawn %v, want %v", got, accent.Crimson)
	}
	if got := uitest.ColourAt(img, extra, 4, 4); got != accent.Lime {
		t.Errorf("a tile pinned after a theme change is drawn %v, want %v", got, accent.Lime)
	}
}

// TestStartResizeOffersTheTileSizes cycles a tile through the sizes its
// template has: a WP7.5 tile (no wide elements) is never offered wide, as
// a phone offers it only small and medium.
func TestStartResizeOffersTheTileSizes(t *testing.T) {
	tests := []struct {
		name string
		tmpl payload.Template
		want []tile.Size
	}{
		{"flip", payload.TemplateFlip, []tile.Size{tile.Small, tile.Wide, tile.Medium}},
		{"iconic", payload.TemplateIconic, []tile.Size{tile.Small, tile.Wide, tile.Medium}},
		{"wp7.5", payload.TemplateDefault, []tile.Size{tile.Small, tile.Medium, tile.Small}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			uitest.App(t, true)
			s := NewStartScreen()
			s.SetTiles([]Pinned{{Key: "app", Tile: uitest.NewTile(tt.tmpl, tile.Medium, map[string]string{payload.Title: "App"})}})
			w := uitest.Window(t, handset.NewPhone(s), phonetest.Size)
			var got []tile.Size
			s.OnTileResized = func(_ string, size tile.Size) { got = append(got, size) }
			s.Edit("app")
			for range tt.want {
				test.TapCanvas(w.Canvas(), uitest.AbsPos(s.grid.resize, resizeSide/2, resizeSide/2))
			}
			if len(got) != len(tt.want) {
				t.Fatalf("sizes offered %v, want %v", got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Errorf("resize %d gave %v, want %v (all: %v)", i, got[i], tt.want[i], got)
				}
			}
		})
	}
}

// TestStartTickOnlyWhatIsSeen: a tile scrolled out of sight keeps its turn
// and flips once it is scrolled back into view.
func TestStartTickOnlyWhatIsSeen(t *testing.T) {
	s, _ := newTestStart(t)
	for range 6 { // enough tiles to scroll
		s.Pin(fmt.Sprintf("more%d", s.grid.index["weather"]+len(s.Tiles())), uitest.NewTile(payload.TemplateFlip, tile.Medium, map[string]string{payload.Title: "More"}))
	}
	news := s.Tile("news")
	now := uitest.Time
	s.Tick(now) // schedules
	s.scroll.ScrollToBottom()
	if y := news.Position().Y; y+news.Size().Height > s.scroll.Offset.Y {
		t.Fatalf("the news tile (at %v) is still in sight at offset %v", y, s.scroll.Offset.Y)
	}
	s.Tick(now.Add(FlipEvery))
	if news.Back() {
		t.Error("a tile out of sight flipped")
	}
	s.scroll.ScrollToTop()
	s.Tick(now.Add(FlipEvery + time.Second))
	if !news.Back() {
		t.Error("the tile did not flip once in sight again")
	}
}

// TestTilesOutOfSightAreNotDrawn: fyne's GL painter draws every visible
// object, clipped out or not, so the start screen hides the tiles scrolled
// out of sight and shows them again when they scroll back; a tile update
// to a hidden tile still reaches it.
func TestTilesOutOfSightAreNotDrawn(t *testing.T) {
	s, _ := newTestStart(t)
	for range 6 { // enough tiles to scroll
		s.Pin(fmt.Sprintf("more%d", len(s.Tiles())), uitest.NewTile(payload.TemplateFlip, tile.Medium, map[string]string{payload.Title: "More"}))
	}
	shown := func() (in, out int) {
		top, bottom, _ := s.viewport()
		for _, p := range s.grid.pins {
			switch seen := inView(p.Tile, top, bottom); {
			case seen && !p.Tile.Visible():
				t.Errorf("tile %s is in sight at offset %v but hidden", p.Key, s.scroll.Offset.Y)
			case !seen && p.Tile.Visible():
				t.Errorf("tile %s is out of sight at offset %v but drawn", p.Key, s.scroll.Offset.Y)
			case seen:
				in++
			default:
				out++
			}
		}
		return in, out
	}
	if in, out := shown(); in == 0 || out == 0 {
		t.Fatalf("at the top %d tiles in sight and %d out; the test needs both", in, out)
	}
	news := s.Tile("news")
	s.scroll.ScrollToBottom()
	if news.Visible() {
		t.Fatal("the news tile is drawn after scrolling it out of sight")
	}
	shown()
	news.Apply(&payload.Tile{Template: news.State().Template, Fields: map[string]string{payload.Count: "5"}})
	s.scroll.ScrollToTop()
	shown()
	if !news.Visible() || news.State().Count() != 5 {
		t.Errorf("back in sight the news tile is visible %v with count %d, want visible with 5", news.Visible(), news.State().Count())
	}
}
