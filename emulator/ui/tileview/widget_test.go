package tileview

import (
	"errors"
	"image/color"
	"io/fs"
	"os"
	"testing"
	"testing/fstest"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/driver/software"
	"fyne.io/fyne/v2/test"
	"fyne.io/fyne/v2/theme"

	"github.com/openmpns/openmpns/emulator/accent"
	"github.com/openmpns/openmpns/emulator/internal/golden"
	"github.com/openmpns/openmpns/emulator/tile"
	"github.com/openmpns/openmpns/shared/payload"
)

func flipState() *tile.State {
	s := tile.NewState("", payload.TemplateFlip, nil)
	s.Apply(&payload.Tile{Template: payload.TemplateFlip, Fields: map[string]string{
		payload.Title: "Mail", payload.BackTitle: "Back", payload.BackContent: "hello",
	}})
	return s
}

func cycleState(n int) *tile.State {
	s := tile.NewState("", payload.TemplateCycle, nil)
	u := &payload.Tile{Template: payload.TemplateCycle, Fields: map[string]string{}}
	for i := 1; i <= n; i++ {
		u.Fields[payload.CycleImage(i)] = "/c.png"
	}
	s.Apply(u)
	return s
}

func TestTileMinSize(t *testing.T) {
	test.NewTempApp(t)
	tests := []struct {
		name  string
		size  tile.Size
		scale float32
		want  fyne.Size
	}{
		{"medium default scale", tile.Medium, 0, fyne.NewSize(150, 150)},
		{"wide default scale", tile.Wide, 0, fyne.NewSize(691*DefaultScale, 150)},
		{"small at 1", tile.Small, 1, fyne.NewSize(159, 159)},
		{"wide at half", tile.Wide, 0.5, fyne.NewSize(345.5, 168)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := New(nil, tt.size)
			w.SetScale(tt.scale)
			if got := w.MinSize(); got != tt.want {
				t.Errorf("MinSize() = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestTileFaces(t *testing.T) {
	test.NewTempApp(t)
	tests := []struct {
		name     string
		state    *tile.State
		size     tile.Size
		do       func(*Tile)
		wantBack bool
	}{
		{"starts on the front", flipState(), tile.Medium, func(*Tile) {}, false},
		{"flip shows the back", flipState(), tile.Medium, (*Tile).Flip, true},
		{"flip twice shows the front", flipState(), tile.Medium, func(w *Tile) { w.Flip(); w.Flip() }, false},
		{"set face back", flipState(), tile.Medium, func(w *Tile) { w.SetFace(true) }, true},
		{"set face front", flipState(), tile.Medium, func(w *Tile) { w.SetFace(true); w.SetFace(false) }, false},
		{"no back: flip stays on front", tile.NewState("", payload.TemplateFlip, nil), tile.Medium, (*Tile).Flip, false},
		{"no back: set face stays on front", tile.NewState("", payload.TemplateFlip, nil), tile.Medium, func(w *Tile) { w.SetFace(true) }, false},
		{"small never flips", flipState(), tile.Small, (*Tile).Flip, false},
		{"iconic never flips", tile.NewState("", payload.TemplateIconic, nil), tile.Wide, (*Tile).Flip, false},
		{"resize to small shows the front", flipState(), tile.Medium, func(w *Tile) { w.SetFace(true); w.SetTileSize(tile.Small) }, false},
		{"update removing the back shows the front", flipState(), tile.Medium, func(w *Tile) {
			w.SetFace(true)
			w.Apply(&payload.Tile{Template: payload.TemplateFlip, Cleared: []string{payload.BackTitle, payload.BackContent}})
		}, false},
		{"update keeping the back stays", flipState(), tile.Medium, func(w *Tile) {
			w.SetFace(true)
			w.Apply(&payload.Tile{Template: payload.TemplateFlip, Fields: map[string]string{payload.Count: "3"}})
		}, true},
		{"new state with a back keeps the back", flipState(), tile.Medium, func(w *Tile) { w.SetFace(true); w.SetState(flipState()) }, true},
		{"new state without a back shows the front", flipState(), tile.Medium, func(w *Tile) {
			w.SetFace(true)
			w.SetState(tile.NewState("", payload.TemplateFlip, nil))
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := New(tt.state, tt.size)
			test.NewTempWindow(t, w)
			tt.do(w)
			if w.Back() != tt.wantBack {
				t.Errorf("Back() = %v, want %v", w.Back(), tt.wantBack)
			}
			if w.Flipping() {
				t.Error("Flipping() after the test driver ran the animation to its end")
			}
		})
	}
}

// TestTileFlipAnimation drives the flip's tick function by hand, as the
// driver would frame by frame.
func TestTileFlipAnimation(t *testing.T) {
	test.NewTempApp(t)
	w := New(flipState(), tile.Medium)
	w.Resize(w.MinSize())
	r := test.WidgetRenderer(w).(*renderer)

	a := fyne.NewAnimation(FlipDuration, nil)
	w.anim, w.flipTarget = a, true
	tick := w.flipTicker(a, true)
	steps := []struct {
		f          float32
		wantSquash float32
		wantBack   bool
		wantText   bool
	}{
		{0, 1, false, true},
		{0.25, 0.5, false, false},
		{0.5, 0, true, false},
		{0.75, 0.5, true, false},
		{1, 1, true, true},
	}
	for _, s := range steps {
		tick(s.f)
		if w.squash != s.wantSquash || w.back != s.wantBack {
			t.Errorf("at %v: squash %v back %v, want %v %v", s.f, w.squash, w.back, s.wantSquash, s.wantBack)
		}
		if !w.Back() {
			t.Errorf("at %v: Back() = false during a flip to the back", s.f)
		}
		if got := r.title.Visible(); got != s.wantText {
			t.Errorf("at %v: title visible %v, want %v", s.f, got, s.wantText)
		}
		wantH := 150 * s.wantSquash
		if got := r.bg.Size().Height; got != wantH || r.bg.Position().Y != (150-wantH)/2 {
			t.Errorf("at %v: background %v at %v, want height %v centred", s.f, r.bg.Size(), r.bg.Position(), wantH)
		}
	}
	if w.Flipping() {
		t.Error("Flipping() after the last tick")
	}
	tick(0.5) // a late frame of a finished animation changes nothing
	if w.squash != 1 {
		t.Errorf("late tick squashed the tile to %v", w.squash)
	}
}

func TestTileFlipWhileFlipping(t *testing.T) {
	test.NewTempApp(t)
	w := New(flipState(), tile.Medium)
	a := fyne.NewAnimation(FlipDuration, nil)
	w.anim, w.flipTarget = a, true
	w.flipTicker(a, true)(0.25)
	w.Flip() // completes the first flip (to the back), then flips to the front
	if w.Back() || w.Flipping() || w.squash != 1 {
		t.Errorf("after a flip during a flip: back %v flipping %v squash %v", w.Back(), w.Flipping(), w.squash)
	}
}

func TestTileNextImage(t *testing.T) {
	test.NewTempApp(t)
	tests := []struct {
		name  string
		state *tile.State
		size  tile.Size
		steps int
		want  int
	}{
		{"advances", cycleState(3), tile.Medium, 1, 1},
		{"wraps", cycleState(3), tile.Wide, 4, 1},
		{"single image stays", cycleState(1), tile.Medium, 2, 0},
		{"no images", cycleState(0), tile.Medium, 2, 0},
		{"small does not cycle", cycleState(3), tile.Small, 2, 0},
		{"flip tile does not cycle", flipState(), tile.Medium, 2, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := New(tt.state, tt.size)
			for range tt.steps {
				w.NextImage()
			}
			if got := w.CycleIndex(); got != tt.want {
				t.Errorf("CycleIndex() = %d, want %d", got, tt.want)
			}
		})
	}
	w := New(cycleState(3), tile.Medium)
	w.NextImage()
	w.NextImage()
	w.Apply(&payload.Tile{Template: payload.TemplateCycle, Cleared: []string{payload.CycleImage(3)}})
	if got := w.CycleIndex(); got != 0 {
		t.Errorf("after removing the shown image CycleIndex() = %d, want it wrapped to 0", got)
	}
}

func TestTileTapped(t *testing.T) {
	test.NewTempApp(t)
	w := New(flipState(), tile.Medium)
	taps, holds := 0, 0
	w.OnTapped = func() { taps++ }
	w.OnTappedSecondary = func() { holds++ }
	test.Tap(w)
	test.TapSecondary(w)
	test.TapSecondary(w)
	if taps != 1 || holds != 2 {
		t.Errorf("OnTapped called %d times, OnTappedSecondary %d; want 1 and 2", taps, holds)
	}
	// Without callbacks a tap changes nothing: no face turns, no panic.
	w.OnTapped, w.OnTappedSecondary = nil, nil
	test.Tap(w)
	test.TapSecondary(w)
	if taps != 1 || holds != 2 || w.Back() || w.Flipping() {
		t.Errorf("a tap without callbacks: taps %d, holds %d, back %v, flipping %v", taps, holds, w.Back(), w.Flipping())
	}
}

type countingSource struct {
	calls map[string]int
	fsys  fs.FS
}

func (c *countingSource) Image(ref string) (fyne.Resource, error) {
	c.calls[ref]++
	return FSImages{FS: c.fsys}.Image(ref)
}

func TestTileImages(t *testing.T) {
	test.NewTempApp(t)
	png, err := os.ReadFile("testdata/assets/front.png")
	if err != nil {
		t.Fatal(err)
	}
	src := &countingSource{calls: map[string]int{}, fsys: fstest.MapFS{"a.png": {Data: png}}}
	s := tile.NewState("", payload.TemplateFlip, nil)
	s.Apply(&payload.Tile{Template: payload.TemplateFlip, Fields: map[string]string{payload.BackgroundImage: "/a.png"}})
	w := New(s, tile.Medium)
	w.SetImages(src)
	r := test.WidgetRenderer(w).(*renderer)
	if !r.img.Visible() || (r.img.Resource == nil && r.img.Image == nil) {
		t.Fatal("a resolvable BackgroundImage is not shown")
	}
	w.Refresh()
	w.Refresh()
	if got := src.calls["/a.png"]; got != 1 {
		t.Errorf("source asked %d times for the same image, want 1 (cached)", got)
	}
	w.ReloadImages()
	if got := src.calls["/a.png"]; got != 2 {
		t.Errorf("after ReloadImages source asked %d times, want 2", got)
	}

	w.Apply(&payload.Tile{Template: payload.TemplateFlip, Fields: map[string]string{payload.BackgroundImage: "/missing.png"}})
	if r.img.Visible() {
		t.Error("a missing image is shown; want the flat accent background")
	}
	if want := theme.Color(theme.ColorNamePrimary); r.bg.FillColor != want {
		t.Errorf("background %v, want the theme's primary colour %v", r.bg.FillColor, want)
	}
	w.SetAccent(accent.Lime)
	if r.bg.FillColor != accent.Lime {
		t.Errorf("background %v after SetAccent, want lime", r.bg.FillColor)
	}
	w.SetImages(nil)
	w.Apply(&payload.Tile{Template: payload.TemplateFlip, Fields: map[string]string{payload.BackgroundImage: "/a.png"}})
	if r.img.Visible() {
		t.Error("image shown without an ImageSource")
	}
}

func TestTileIconicBackground(t *testing.T) {
	test.NewTempApp(t)
	tests := []struct {
		name  string
		value string
		want  color.Color
	}{
		{"opaque colour used", "#FF825A2C", color.NRGBA{R: 0x82, G: 0x5A, B: 0x2C, A: 0xFF}},
		{"translucent colour ignored", "#80825A2C", accent.Crimson},
		{"invalid ignored", "brown", accent.Crimson},
		{"unset", "", accent.Crimson},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := tile.NewState("", payload.TemplateIconic, nil)
			s.Apply(&payload.Tile{Template: payload.TemplateIconic, Fields: map[string]string{payload.BackgroundColor: tt.value}})
			w := New(s, tile.Medium)
			w.SetAccent(accent.Crimson)
			r := test.WidgetRenderer(w).(*renderer)
			if r.bg.FillColor != tt.want {
				t.Errorf("background %v, want %v", r.bg.FillColor, tt.want)
			}
		})
	}
}

func TestTileText(t *testing.T) {
	test.NewTempApp(t)
	long := "A title far longer than any tile can show in one line"
	tests := []struct {
		name      string
		tmpl      payload.Template
		fields    map[string]string
		size      tile.Size
		back      bool
		wantTitle string
		wantBadge string
		wantLines []string
	}{
		{"medium title truncated", payload.TemplateFlip, map[string]string{payload.Title: long}, tile.Medium, false, "A title far longer", "", nil},
		{"wide title truncated", payload.TemplateFlip, map[string]string{payload.Title: long}, tile.Wide, false, "A title far longer than any tile can sh", "", nil},
		{"small has no title", payload.TemplateFlip, map[string]string{payload.Title: "Mail", payload.Count: "4"}, tile.Small, false, "", "4", nil},
		{"count zero hidden", payload.TemplateFlip, map[string]string{payload.Count: "0"}, tile.Medium, false, "", "", nil},
		{"count clamped", payload.TemplateCycle, map[string]string{payload.Count: "100"}, tile.Medium, false, "", "99", nil},
		{"back has no badge", payload.TemplateFlip, map[string]string{payload.Count: "5", payload.BackTitle: "b", payload.BackContent: "one two three four five six seven eight nine"}, tile.Medium, true, "b", "", []string{"one two three", "four five six", "seven eight"}},
		{"wide back uses wide content", payload.TemplateFlip, map[string]string{payload.BackContent: "medium", payload.WideBackContent: "wide words"}, tile.Wide, true, "", "", []string{"wide words"}},
		{"wide back never shows BackContent", payload.TemplateFlip, map[string]string{payload.BackTitle: "b", payload.BackContent: "medium only"}, tile.Wide, true, "b", "", nil},
		{"medium back never shows WideBackContent", payload.TemplateFlip, map[string]string{payload.BackTitle: "b", payload.WideBackContent: "wide only"}, tile.Medium, true, "b", "", nil},
		{"iconic count beside icon", payload.TemplateIconic, map[string]string{payload.Count: "8", payload.Title: "Msg"}, tile.Medium, false, "Msg", "8", nil},
		{"iconic wide content", payload.TemplateIconic, map[string]string{payload.WideContent1: "one", payload.WideContent3: "three"}, tile.Wide, false, "", "", []string{"one", "", "three"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := tile.NewState("", tt.tmpl, nil)
			s.Apply(&payload.Tile{Template: tt.tmpl, Fields: tt.fields})
			w := New(s, tt.size)
			w.SetFace(tt.back)
			r := test.WidgetRenderer(w).(*renderer)
			if got := shown(r.title); got != tt.wantTitle {
				t.Errorf("title %q, want %q", got, tt.wantTitle)
			}
			if got := shown(r.badge); got != tt.wantBadge {
				t.Errorf("count %q, want %q", got, tt.wantBadge)
			}
			var lines []string
			for _, l := range r.lines {
				lines = append(lines, shown(l))
			}
			for len(lines) > 0 && lines[len(lines)-1] == "" {
				lines = lines[:len(lines)-1]
			}
			if len(lines) != len(tt.wantLines) {
				t.Fatalf("lines %q, want %q", lines, tt.wantLines)
			}
			for i := range lines {
				if lines[i] != tt.wantLines[i] {
					t.Errorf("line %d %q, want %q", i, lines[i], tt.wantLines[i])
				}
			}
		})
	}
}

// shown returns the text of t when it is visible, "" otherwise.
func shown(t *canvas.Text) string {
	if !t.Visible() {
		return ""
	}
	return t.Text
}

func TestFSImages(t *testing.T) {
	fsys := fstest.MapFS{"Assets/Tiles/a.png": {Data: []byte("png")}}
	tests := []struct {
		name    string
		src     FSImages
		ref     string
		wantErr error
	}{
		{"absolute app path", FSImages{FS: fsys}, "/Assets/Tiles/a.png", nil},
		{"relative app path", FSImages{FS: fsys}, "Assets/Tiles/a.png", nil},
		{"backslashes", FSImages{FS: fsys}, `Assets\Tiles\a.png`, nil},
		{"appdata scheme", FSImages{FS: fsys}, "appdata:/Assets/Tiles/a.png", nil},
		{"isostore scheme", FSImages{FS: fsys}, "isostore:/Assets/Tiles/a.png", nil},
		{"dot dot stays inside", FSImages{FS: fsys}, "/../Assets/Tiles/a.png", nil},
		{"missing", FSImages{FS: fsys}, "/Assets/b.png", fs.ErrNotExist},
		{"remote", FSImages{FS: fsys}, "https://example.org/a.png", ErrRemoteImage},
		{"remote upper case", FSImages{FS: fsys}, "HTTP://example.org/a.png", ErrRemoteImage},
		{"empty", FSImages{FS: fsys}, "", errAny},
		{"no file system", FSImages{}, "/Assets/Tiles/a.png", errAny},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := tt.src.Image(tt.ref)
			switch {
			case tt.wantErr == nil && err != nil:
				t.Fatalf("Image(%q) error %v", tt.ref, err)
			case tt.wantErr == nil:
				if string(res.Content()) != "png" {
					t.Errorf("Image(%q) content %q", tt.ref, res.Content())
				}
			case err == nil:
				t.Errorf("Image(%q) succeeded, want an error", tt.ref)
			case tt.wantErr != errAny && !errors.Is(err, tt.wantErr):
				t.Errorf("Image(%q) error %v, want %v", tt.ref, err, tt.wantErr)
			}
		})
	}
}

var errAny = errors.New("any error")

// TestGoldenMidFlip renders a flip frame a quarter of the way through: the
// front squashed to half height around the centre line, texts hidden.
func TestGoldenMidFlip(t *testing.T) {
	test.NewTempApp(t)
	s := flipState()
	s.Apply(&payload.Tile{Template: payload.TemplateFlip, Fields: map[string]string{
		payload.BackgroundImage: "/assets/front.png", payload.Count: "7",
	}})
	w := New(s, tile.Medium)
	w.SetAccent(accent.Default)
	w.SetImages(FSImages{FS: os.DirFS("testdata")})
	a := fyne.NewAnimation(FlipDuration, nil)
	w.anim, w.flipTarget = a, true
	w.flipTicker(a, true)(0.25)

	c := software.NewTransparentCanvas()
	c.SetPadded(false)
	c.SetScale(1 / DefaultScale)
	c.SetContent(w)
	c.Resize(w.MinSize())
	golden.Assert(t, "flip_medium_midflip.png", c.Capture())
}

// TestTextLimitsOnEveryScreen: a tile's text is cut to the same
// characters on every screen, the font growing and shrinking with the tile
// (Microsoft's character counts are per tile size, not per screen).
func TestTextLimitsOnEveryScreen(t *testing.T) {
	test.NewTempApp(t)
	long := "A title far longer than any tile can show in one line"
	for _, p := range tile.Profiles() {
		for _, more := range []bool{false, true} {
			pr := p.MoreTiles(more)
			g := pr.Grid()
			t.Run(pr.String(), func(t *testing.T) {
				for _, tt := range []struct {
					size  tile.Size
					title string
					lines []string
				}{
					{tile.Medium, "A title far longer", []string{"one two three", "four five six", "seven eight"}},
					{tile.Wide, "A title far longer than any tile can sh", []string{"one two three four five six", "seven eight nine ten eleven", "twelve"}},
				} {
					s := tile.NewState("", payload.TemplateFlip, nil)
					s.Apply(&payload.Tile{Template: payload.TemplateFlip, Fields: map[string]string{
						payload.Title: long, payload.BackTitle: long,
						payload.BackContent:     "one two three four five six seven eight nine",
						payload.WideBackContent: "one two three four five six seven eight nine ten eleven twelve",
					}})
					w := New(s, tt.size)
					w.SetScale(g.TileScale() * pr.Scale)
					ew, eh := g.Extent(tt.size)
					w.Resize(fyne.NewSize(ew*pr.Scale, eh*pr.Scale))
					r := test.WidgetRenderer(w).(*renderer)
					if got := shown(r.title); got != tt.title {
						t.Errorf("%v front title %q, want %q", tt.size, got, tt.title)
					}
					w.SetFace(true)
					for i, want := range tt.lines {
						if got := shown(r.lines[i]); got != want {
							t.Errorf("%v back line %d %q, want %q", tt.size, i, got, want)
						}
					}
				}
			})
		}
	}
}
