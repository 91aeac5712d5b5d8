package start

import (
	"fmt"
	"hash/fnv"
	"image/color"
	"math"
	"strings"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"github.com/openmpns/openmpns/emulator/tile"
	"github.com/openmpns/openmpns/emulator/ui/controls"
	"github.com/openmpns/openmpns/emulator/ui/tileview"
	"github.com/openmpns/openmpns/shared/payload"
)

// SettingsKey is the key of the start screen's built-in settings tile: it
// is reported by OnTileResized like any tile, but a tap on it calls
// OnSettings, not OnTileTapped.
const SettingsKey = "settings"

// FlipEvery is how often Tick turns a flip tile over or moves a cycle tile
// to its next image; tiles are staggered so that they do not all move at
// once.
const FlipEvery = 6 * time.Second

// Pinned is a tile on the start screen: the caller's tile widget and the key
// by which the start screen reports taps and resizes (an app ID, or an app
// ID and a secondary tile's ID).
type Pinned struct {
	Key  string
	Tile *tileview.Tile
}

// StartScreen is the Windows Phone 8 start screen: live tiles in a grid four
// small tiles wide (six on 1080p and with "show more tiles": SetProfile),
// packed in order (see pack), scrolling vertically, with
// the arrow to the app list under them. A built-in "settings" tile follows
// the caller's tiles.
//
// The tiles are the caller's tileview.Tile widgets: to update one, call its
// Apply, Flip or NextImage (or use Tick for the flips), which redraws that
// tile alone. The start screen only moves tiles, when they are pinned,
// unpinned or resized. It sets the tiles' scale and OnTapped; a tile keeps
// the accent its caller gave it (tileview.Tile.SetAccent), or follows the
// theme's.
//
// A secondary tap (right click; a long press on touch screens) puts a tile in
// edit mode, as on the phone: the other tiles dim, a round arrow at the
// tile's bottom right corner cycles its size (medium → small → wide →
// medium, without wide for a WP7.5 tile: see tile.Next) and a pin at its
// top right corner unpins it. Tapping elsewhere or
// the back key leaves edit mode. The settings tile can be resized, not
// unpinned.
type StartScreen struct {
	widget.BaseWidget

	// OnTileTapped, if set, is called with a tile's key when it is tapped
	// (not in edit mode).
	OnTileTapped func(key string)
	// OnTileResized, if set, is called after the user changed a tile's size
	// in edit mode; the start screen has already resized it.
	OnTileResized func(key string, size tile.Size)
	// OnTileUnpinned, if set, is called after the user unpinned a tile in
	// edit mode; the start screen has already removed it.
	OnTileUnpinned func(key string)
	// OnAppList, if set, is called when the arrow to the app list is tapped.
	OnAppList func()
	// OnSettings, if set, is called when the settings tile is tapped.
	OnSettings func()

	grid   *tileGrid
	scroll *container.Scroll
}

var _ controls.BackHandler = (*StartScreen)(nil)

// NewStartScreen returns an empty start screen: the settings tile and the
// app list arrow.
func NewStartScreen() *StartScreen {
	s := &StartScreen{}
	s.grid = newTileGrid(s)
	s.scroll = container.NewVScroll(s.grid)
	s.ExtendBaseWidget(s)
	return s
}

// SetTiles replaces the pinned tiles, in start screen order.
func (s *StartScreen) SetTiles(tiles []Pinned) {
	g := s.grid
	old := g.due
	g.pins, g.index, g.due = nil, map[string]int{}, map[*tileview.Tile]time.Time{}
	for _, p := range tiles {
		if p.Tile == nil || p.Key == SettingsKey {
			continue
		}
		if _, dup := g.index[p.Key]; dup {
			continue
		}
		g.adopt(p)
	}
	g.adopt(g.settings)
	for _, p := range g.pins {
		if d, ok := old[p.Tile]; ok {
			g.due[p.Tile] = d
		}
	}
	if _, ok := g.index[g.editing]; !ok {
		g.editing = ""
	}
	g.changed()
}

// Pin adds t at the end of the tiles, before the settings tile. Pinning a
// key again replaces its tile in place.
func (s *StartScreen) Pin(key string, t *tileview.Tile) {
	if t == nil || key == SettingsKey {
		return
	}
	tiles := s.Tiles()
	for i := range tiles {
		if tiles[i].Key == key {
			tiles[i].Tile = t
			s.SetTiles(tiles)
			return
		}
	}
	s.SetTiles(append(tiles, Pinned{Key: key, Tile: t}))
}

// Unpin removes the tile with key.
func (s *StartScreen) Unpin(key string) {
	tiles := s.Tiles()
	for i := range tiles {
		if tiles[i].Key == key {
			s.SetTiles(append(tiles[:i], tiles[i+1:]...))
			return
		}
	}
}

// Tiles returns the caller's pinned tiles in order (not the settings tile).
func (s *StartScreen) Tiles() []Pinned {
	var out []Pinned
	for _, p := range s.grid.pins {
		if p.Key != SettingsKey {
			out = append(out, p)
		}
	}
	return out
}

// Tile returns the tile pinned with key, or nil.
func (s *StartScreen) Tile(key string) *tileview.Tile {
	if i, ok := s.grid.index[key]; ok {
		return s.grid.pins[i].Tile
	}
	return nil
}

// SetTileSize resizes the tile with key and moves the tiles after it.
func (s *StartScreen) SetTileSize(key string, size tile.Size) {
	t := s.Tile(key)
	if t == nil || t.TileSize() == size {
		return
	}
	t.SetTileSize(size)
	s.grid.changed()
}

// Edit puts the tile with key in edit mode ("" leaves edit mode).
func (s *StartScreen) Edit(key string) {
	if _, ok := s.grid.index[key]; !ok {
		key = ""
	}
	if key == s.grid.editing {
		return
	}
	s.grid.editing = key
	s.grid.changed()
}

// Editing returns the key of the tile in edit mode, "" when none is.
func (s *StartScreen) Editing() string { return s.grid.editing }

// HandleBack leaves edit mode.
func (s *StartScreen) HandleBack() bool {
	if s.grid.editing == "" {
		return false
	}
	s.Edit("")
	return true
}

// Tick flips the flip tiles and moves the cycle tiles whose turn has come
// at now, every FlipEvery, each tile at its own offset. A tile scrolled out
// of sight keeps its turn until it is seen again (a phone flips it all the
// same, but nobody can tell): with 30 tiles the window then repaints for
// the dozen on screen only. The start screen has
// no timer: the controller calls Tick (say every half second) from its own.
func (s *StartScreen) Tick(now time.Time) {
	top, bottom, laidOut := s.viewport()
	for _, p := range s.grid.pins {
		due, ok := s.grid.due[p.Tile]
		if !ok {
			s.grid.due[p.Tile] = now.Add(stagger(p.Key))
			continue
		}
		if now.Before(due) {
			continue
		}
		if laidOut && !inView(p.Tile, top, bottom) {
			// Scrolled out of sight: its turn waits until it is seen, so
			// the window repaints only for what can be seen.
			continue
		}
		s.grid.due[p.Tile] = now.Add(FlipEvery)
		switch {
		case p.Tile.HasBack():
			p.Tile.Flip()
		case p.Tile.State().Template == payload.TemplateCycle:
			p.Tile.NextImage()
		}
	}
}

// viewport returns the part of the grid the scroll shows, from top to
// bottom, and false before the start screen was laid out. The top is
// where the scroll moved the grid to (it moves it to minus its offset):
// fyne's scroll changes its offset in places that do not tell OnScrolled.
func (s *StartScreen) viewport() (top, bottom float32, ok bool) {
	if s.scroll == nil { // the grid is being made
		return 0, 0, false
	}
	h := s.scroll.Size().Height
	if h <= 0 {
		return 0, 0, false
	}
	top = -s.grid.Position().Y
	return top, top + h, true
}

// inView reports whether any of t is between top and bottom of the grid.
func inView(t fyne.CanvasObject, top, bottom float32) bool {
	y := t.Position().Y
	return y+t.Size().Height > top && y < bottom
}

// stagger spreads the tiles' first moves over FlipEvery, by key.
func stagger(key string) time.Duration {
	h := fnv.New32a()
	h.Write([]byte(key))
	return time.Duration(h.Sum32()%1000) * FlipEvery / 1000
}

// SetProfile lays the tiles out on profile's grid: four columns of small
// tiles, or six (three medium tiles across) on 1080p and with "show more
// tiles".
func (s *StartScreen) SetProfile(p tile.Profile) {
	g := s.grid
	geo := p.Grid()
	if geo == g.geo {
		return
	}
	g.geo = geo
	for _, pin := range g.pins {
		pin.Tile.SetScale(geo.TileScale() * g.k)
	}
	g.changed()
}

// Columns returns the number of small-tile columns the tiles are laid out
// on.
func (s *StartScreen) Columns() int { return s.grid.geo.Columns }

// Scale returns the factor by which the start screen draws its tiles, gaps
// and margins: its width over ScreenWidth (1 on a 480-unit screen).
func (s *StartScreen) Scale() float32 { return s.grid.k }

// CreateRenderer is part of fyne.Widget.
func (s *StartScreen) CreateRenderer() fyne.WidgetRenderer {
	return &startRenderer{s: s, objects: []fyne.CanvasObject{s.scroll}}
}

// startRenderer scales the grid to the start screen's width before the
// scroll lays it out, so that a wider phone shows the same four columns,
// larger.
type startRenderer struct {
	s       *StartScreen
	objects []fyne.CanvasObject
}

func (r *startRenderer) Destroy()                     {}
func (r *startRenderer) Objects() []fyne.CanvasObject { return r.objects }
func (r *startRenderer) MinSize() fyne.Size           { return r.s.scroll.MinSize() }
func (r *startRenderer) Refresh()                     { r.s.scroll.Refresh() }

func (r *startRenderer) Layout(size fyne.Size) {
	if size.Width > 0 {
		r.s.grid.SetPhoneScale(size.Width / controls.ScreenWidth)
	}
	r.s.scroll.Resize(size)
	r.s.grid.cull() // the viewport may have grown or shrunk
}

// tileGrid lays out the tiles. A secondary tap on a tile puts it in edit
// mode (the tile reports it: fyne's GL driver gives a right click to the
// topmost tappable object only); one between tiles leaves edit mode.
type tileGrid struct {
	widget.BaseWidget

	s        *StartScreen
	pins     []Pinned
	index    map[string]int
	due      map[*tileview.Tile]time.Time
	editing  string
	settings Pinned

	dim    *canvas.Rectangle
	resize *controls.RoundButton
	unpin  *controls.RoundButton
	arrow  *controls.RoundButton
	cells  []cell
	geo    tile.Grid // the profile's grid

	// objects is what the grid draws: the tiles, the dim veil, the edit
	// buttons and the arrow.
	objects []fyne.CanvasObject
	height  float32
	k       float32 // scale of the tiles, gaps and margins; see setScale
}

var (
	_ fyne.Tappable          = (*tileGrid)(nil)
	_ fyne.SecondaryTappable = (*tileGrid)(nil)
)

const (
	resizeSide = 40
	arrowSide  = 48
)

func newTileGrid(s *StartScreen) *tileGrid {
	g := &tileGrid{s: s, index: map[string]int{}, due: map[*tileview.Tile]time.Time{}, k: 1, geo: tile.DefaultProfile.Grid()}
	g.dim = canvas.NewRectangle(color.Transparent)
	g.resize = controls.NewRoundButton(controls.GlyphResize, resizeSide, true, g.cycleSize)
	g.unpin = controls.NewRoundButton(controls.GlyphUnpin, resizeSide, true, g.unpinEditing)
	g.arrow = controls.NewRoundButton(controls.GlyphArrowRight, arrowSide, false, func() {
		if s.OnAppList != nil {
			s.OnAppList()
		}
	})
	st := tile.NewState(SettingsKey, payload.TemplateIconic, map[string]string{
		payload.Title: "settings", payload.IconImage: gearRef, payload.SmallIconImage: gearRef,
	})
	t := tileview.New(st, tile.Medium)
	t.SetImages(builtinImages{})
	g.settings = Pinned{Key: SettingsKey, Tile: t}
	g.adopt(g.settings)
	g.ExtendBaseWidget(g)
	g.changed()
	return g
}

// adopt appends p to the grid and takes over its tile's scale and taps.
func (g *tileGrid) adopt(p Pinned) {
	key := p.Key
	g.index[key] = len(g.pins)
	g.pins = append(g.pins, p)
	p.Tile.SetScale(g.geo.TileScale() * g.k)
	p.Tile.OnTapped = func() { g.tapped(key) }
	p.Tile.OnTappedSecondary = func() { g.s.Edit(key) }
}

func (g *tileGrid) tapped(key string) {
	switch {
	case g.editing == key:
		g.s.Edit("")
	case g.editing != "":
		g.s.Edit(key)
	case key == SettingsKey:
		if g.s.OnSettings != nil {
			g.s.OnSettings()
		}
	default:
		if g.s.OnTileTapped != nil {
			g.s.OnTileTapped(key)
		}
	}
}

// Tapped on the grid itself (between tiles) leaves edit mode.
func (g *tileGrid) Tapped(*fyne.PointEvent) { g.s.Edit("") }

// TappedSecondary puts the tile under the pointer in edit mode: none, when
// the pointer is between tiles, which leaves edit mode.
func (g *tileGrid) TappedSecondary(e *fyne.PointEvent) {
	g.s.Edit(g.keyAt(e.Position))
}

func (g *tileGrid) keyAt(pos fyne.Position) string {
	for _, p := range g.pins {
		tp, ts := p.Tile.Position(), p.Tile.Size()
		if pos.X >= tp.X && pos.Y >= tp.Y && pos.X < tp.X+ts.Width && pos.Y < tp.Y+ts.Height {
			return p.Key
		}
	}
	return ""
}

func (g *tileGrid) cycleSize() {
	key := g.editing
	t := g.s.Tile(key)
	if t == nil {
		return
	}
	size := tile.Next(t.State().Template, t.TileSize())
	g.s.SetTileSize(key, size)
	if g.s.OnTileResized != nil {
		g.s.OnTileResized(key, size)
	}
}

// unpinEditing unpins the tile in edit mode, and leaves edit mode.
func (g *tileGrid) unpinEditing() {
	key := g.editing
	if key == "" || key == SettingsKey {
		return
	}
	g.editing = ""
	g.s.Unpin(key)
	if g.s.OnTileUnpinned != nil {
		g.s.OnTileUnpinned(key)
	}
}

// changed re-packs the tiles after a change of tiles, sizes or edit mode.
func (g *tileGrid) changed() {
	sizes := make([]tile.Size, len(g.pins))
	for i, p := range g.pins {
		sizes[i] = p.Tile.TileSize()
	}
	g.cells = pack(sizes, g.geo.Columns)
	g.measure()
	g.Refresh()
}

// measure sets the grid's height for its cells at its scale.
func (g *tileGrid) measure() {
	sizes := make([]tile.Size, len(g.pins))
	for i, p := range g.pins {
		sizes[i] = p.Tile.TileSize()
	}
	r := rows(g.cells, sizes)
	g.height = (gridTop + float32(r)*g.geo.Step() + 12 + arrowSide + 36) * g.k
}

// setScale draws the grid k times larger than at 480 units wide: tiles,
// gaps, margins and buttons. Only a change of k does any work.
func (g *tileGrid) SetPhoneScale(k float32) {
	if k == g.k {
		return
	}
	g.k = k
	for _, p := range g.pins {
		p.Tile.SetScale(g.geo.TileScale() * k)
	}
	g.measure()
	g.Refresh()
}

// MinSize is the height of the tiles at the grid's scale; the width is
// that of the smallest phone screen, whatever the scale, or a start screen
// could never shrink back (the grid scales to the width it is given).
func (g *tileGrid) MinSize() fyne.Size {
	return fyne.NewSize(controls.ScreenWidth*controls.MinScale, g.height)
}

func (g *tileGrid) CreateRenderer() fyne.WidgetRenderer {
	r := &gridRenderer{g: g}
	r.Refresh()
	return r
}

type gridRenderer struct {
	g *tileGrid
}

func (r *gridRenderer) Destroy()                     {}
func (r *gridRenderer) MinSize() fyne.Size           { return r.g.MinSize() }
func (r *gridRenderer) Objects() []fyne.CanvasObject { return r.g.objects }

// Move moves the grid, which is how the scroll scrolls it, and shows the
// tiles that came into sight (see cull).
func (g *tileGrid) Move(pos fyne.Position) {
	if pos == g.Position() {
		return
	}
	g.BaseWidget.Move(pos)
	g.cull()
}

// cull hides the tiles scrolled out of sight and shows the others. fyne's
// GL painter draws every visible object of the tree, clipped or not, and a
// draw costs about 25 µs of a software GL's set-up even when the clip
// leaves nothing of it: with 30 tiles on a phone, more than half of the
// window's draws were tiles out of sight. A hidden tile stays in the tree,
// so themes reach it. Called after each layout of the grid or of the start
// screen (the viewport's size) and after each move of the grid (a scroll);
// before the start screen is laid out every tile is shown.
func (g *tileGrid) cull() {
	top, bottom, ok := g.s.viewport()
	for _, p := range g.pins {
		if !ok || inView(p.Tile, top, bottom) {
			p.Tile.Show()
		} else {
			p.Tile.Hide()
		}
	}
}

// Refresh rebuilds the object list (cheap: it holds the tiles, not their
// parts) and refreshes the tiles, which redraw only if what they show
// changed (a tile that follows the theme's accent, after a theme change).
func (r *gridRenderer) Refresh() {
	g := r.g
	g.objects = g.objects[:0]
	var editing fyne.CanvasObject
	for _, p := range g.pins {
		if p.Key == g.editing {
			editing = p.Tile
			continue
		}
		g.objects = append(g.objects, p.Tile)
	}
	g.objects = append(g.objects, g.dim)
	if editing != nil {
		g.objects = append(g.objects, editing, g.resize)
		if g.editing != SettingsKey {
			g.objects = append(g.objects, g.unpin)
		}
	}
	g.objects = append(g.objects, g.arrow)
	for _, p := range g.pins {
		p.Tile.Refresh()
	}

	bg := theme.ColorForWidget(theme.ColorNameBackground, g)
	nr, ng, nb, _ := bg.RGBA()
	g.dim.FillColor = color.NRGBA{R: uint8(nr >> 8), G: uint8(ng >> 8), B: uint8(nb >> 8), A: 0x99}
	g.dim.Hidden = editing == nil
	g.dim.Refresh()
	g.arrow.Refresh()
	g.resize.Refresh()
	g.unpin.Refresh()
	r.Layout(g.Size())
}

func (r *gridRenderer) Layout(size fyne.Size) {
	g := r.g
	k := g.k
	step := g.geo.Step() * k
	left := g.geo.Left()
	for i, p := range g.pins {
		c := g.cells[i]
		w, h := g.geo.Extent(p.Tile.TileSize())
		w, h = w*k, h*k
		pos := fyne.NewPos(left*k+float32(c.col)*step, gridTop*k+float32(c.row)*step)
		p.Tile.Move(pos)
		p.Tile.Resize(fyne.NewSize(w, h))
		if p.Key == g.editing {
			g.resize.Move(fyne.NewPos(pos.X+w-resizeSide*0.6*k, pos.Y+h-resizeSide*0.6*k))
			g.resize.Resize(fyne.NewSize(resizeSide*k, resizeSide*k))
			g.unpin.Move(fyne.NewPos(pos.X+w-resizeSide*0.6*k, pos.Y-resizeSide*0.4*k))
			g.unpin.Resize(fyne.NewSize(resizeSide*k, resizeSide*k))
		}
	}
	g.dim.Move(fyne.NewPos(0, 0))
	g.dim.Resize(fyne.NewSize(size.Width, max(size.Height, g.height)))
	g.arrow.Move(fyne.NewPos((left+g.geo.Width()-arrowSide)*k, g.height-(36+arrowSide)*k))
	g.arrow.Resize(fyne.NewSize(arrowSide*k, arrowSide*k))
	g.cull()
}

// The settings tile's icon: a white gear drawn as SVG, with the transparent
// margin Windows Phone's iconic tile icons have.
const gearRef = "builtin:gear"

type builtinImages struct{}

func (builtinImages) Image(ref string) (fyne.Resource, error) {
	if ref == gearRef {
		return gearIcon, nil
	}
	return nil, fmt.Errorf("ui: no built-in image %q", ref)
}

var gearIcon = fyne.NewStaticResource("gear.svg", []byte(gearSVG()))

// gearSVG draws an eight-toothed gear with a round hole in a 100×100 box.
func gearSVG() string {
	const teeth, cx, cy = 8, 50.0, 50.0
	const outer, inner, hole = 31.0, 24.0, 10.0
	var b strings.Builder
	b.WriteString(`<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 100 100"><path fill="#FFFFFF" d="`)
	step := 2 * math.Pi / teeth
	for i := range teeth {
		a := float64(i) * step
		// Each tooth: rise, top, fall, root, as fractions of the step.
		pts := []struct{ f, r float64 }{{0, inner}, {0.12, outer}, {0.42, outer}, {0.54, inner}}
		for j, p := range pts {
			x := cx + p.r*math.Cos(a+p.f*step)
			y := cy + p.r*math.Sin(a+p.f*step)
			cmd := "L"
			if i == 0 && j == 0 {
				cmd = "M"
			}
			fmt.Fprintf(&b, "%s%.2f %.2f ", cmd, x, y)
		}
	}
	b.WriteString("Z ")
	for i := range 24 { // the hole, wound the other way round
		a := -float64(i) * 2 * math.Pi / 24
		cmd := "L"
		if i == 0 {
			cmd = "M"
		}
		fmt.Fprintf(&b, "%s%.2f %.2f ", cmd, cx+hole*math.Cos(a), cy+hole*math.Sin(a))
	}
	b.WriteString(`Z"/></svg>`)
	return b.String()
}
