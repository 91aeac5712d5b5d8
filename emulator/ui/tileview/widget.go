package tileview

import (
	"image/color"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"github.com/openmpns/openmpns/emulator/tile"
	"github.com/openmpns/openmpns/shared/payload"
)

// DefaultScale is the number of fyne logical units per WP8 pixel a Tile is
// drawn at until SetScale: a medium tile (336 WP8 pixels) is 150 units
// square. The start screen gives its tiles the scale of its own grid.
const DefaultScale float32 = 150.0 / 336.0

// FlipDuration is how long Flip takes to turn a tile over.
const FlipDuration = 600 * time.Millisecond

// Tile is a live tile of the start screen: a fyne widget that draws a State
// at a tile.Size the way a Windows Phone 8 draws it (flat square, the accent
// colour or the app's images, white text in the theme's font).
//
// A Tile has no timers. Whatever drives the start screen calls Flip on flip
// tiles that have a back and NextImage on cycle tiles every few seconds.
// All methods must be called on the fyne UI goroutine (use fyne.Do from
// others).
type Tile struct {
	widget.BaseWidget

	// OnTapped, if set, is called when the user taps the tile.
	OnTapped func()
	// OnTappedSecondary, if set, is called on a secondary tap (a right
	// click; the start screen's "tap and hold" for edit mode).
	OnTappedSecondary func()
	// Animate, if set, is given each flip animation to run instead of
	// starting it on fyne's animation loop (a.Start): tests and benchmarks
	// step the animation's Tick frame by frame from their own clock.
	Animate func(a *fyne.Animation)

	state  *tile.State
	size   tile.Size
	scale  float32
	accent color.Color
	images ImageSource
	cache  map[string]resolved // by reference, until ReloadImages

	back   bool    // the back face is showing (or is the target of a flip)
	cycle  int     // index into State.CycleImages
	squash float32 // height of the face during a flip, 1 at rest

	anim       *fyne.Animation // the running flip, nil when none
	flipTarget bool            // the face the running flip ends on

	// gen counts the changes of what the tile shows that its renderer
	// cannot see in the tile's other fields (the state's content, the
	// images resolved); renders counts the renderer's redraws.
	gen     uint64
	renders int
}

var (
	_ fyne.Widget            = (*Tile)(nil)
	_ fyne.Tappable          = (*Tile)(nil)
	_ fyne.SecondaryTappable = (*Tile)(nil)
)

// New returns a tile widget showing s at size, in the theme's accent colour,
// with no images, drawn at DefaultScale. A nil s is an empty WP7.5 tile.
// The widget keeps s and reads it whenever it is refreshed: change it through
// Apply or SetState.
func New(s *tile.State, size tile.Size) *Tile {
	if s == nil {
		s = tile.NewState("", payload.TemplateDefault, nil)
	}
	t := &Tile{state: s, size: size, scale: DefaultScale, squash: 1}
	t.ExtendBaseWidget(t)
	return t
}

// State returns the state the tile shows.
func (t *Tile) State() *tile.State { return t.state }

// SetState replaces the state the tile shows and refreshes it. Like a tile
// update on the phone, it keeps the tile's place in its animation: the face
// shown (the front when the new state has no back) and the cycle position
// (wrapped to the new number of images), so the new content shows without
// a jump.
//
// A state equal to the one shown (tile.State.Equal) is kept without a
// redraw: the controller hands every tile a fresh copy whenever the
// phone's tiles or settings change, and the tiles that did not change
// must not be drawn again.
func (t *Tile) SetState(s *tile.State) {
	if s == nil {
		s = tile.NewState("", payload.TemplateDefault, nil)
	}
	same := t.state.Equal(s)
	t.state = s
	if same {
		return
	}
	t.gen++
	if t.back && !t.HasBack() {
		t.stopAnimation()
		t.back = false
	}
	t.Refresh()
}

// Apply merges the update u into the tile's state (see State.Apply) and
// refreshes the tile. If the update leaves the tile without a back, the
// front is shown; the cycle index wraps to the new number of images.
func (t *Tile) Apply(u *payload.Tile) {
	t.state.Apply(u)
	t.gen++
	if t.back && !t.HasBack() {
		t.stopAnimation()
		t.back = false
	}
	t.Refresh()
}

// TileSize returns the size the tile is drawn at.
func (t *Tile) TileSize() tile.Size { return t.size }

// SetTileSize changes the size the tile is drawn at (the user's
// "resize" on the start screen). A small tile always shows its front.
// The size it has already does nothing.
func (t *Tile) SetTileSize(s tile.Size) {
	if s == t.size {
		return
	}
	t.size = s
	if t.back && !t.HasBack() {
		t.stopAnimation()
		t.back = false
	}
	t.Refresh()
}

// SetScale sets the logical units per WP8 pixel that MinSize uses; 0 or a
// negative value means DefaultScale.
func (t *Tile) SetScale(scale float32) {
	if scale <= 0 {
		scale = DefaultScale
	}
	if scale == t.scale {
		return
	}
	t.scale = scale
	t.Refresh()
}

// SetAccent sets the colour behind the tile's images: an app's own accent.
// nil, the default, follows the theme's primary colour (the user's accent),
// also when the theme changes. An IconicTile's opaque BackgroundColor takes
// precedence over both.
func (t *Tile) SetAccent(c color.Color) {
	if c == t.accent {
		return
	}
	t.accent = c
	t.Refresh()
}

// Accent returns the colour set by SetAccent, nil when the tile follows the
// theme.
func (t *Tile) Accent() color.Color { return t.accent }

// accentColour is the colour behind the tile: its own accent, or the
// theme's primary colour.
func (t *Tile) accentColour() color.Color {
	if t.accent != nil {
		return t.accent
	}
	return theme.ColorForWidget(theme.ColorNamePrimary, t)
}

// SetImages sets the source that resolves image references, and forgets
// the images resolved so far. nil shows no images.
func (t *Tile) SetImages(src ImageSource) {
	t.images = src
	t.ReloadImages()
}

// ReloadImages forgets the images resolved so far and refreshes the tile, so
// that references that failed before are asked for again.
func (t *Tile) ReloadImages() {
	t.cache = nil
	t.gen++
	t.Refresh()
}

// Back reports whether the tile shows (or is flipping to) its back face.
func (t *Tile) Back() bool {
	if t.anim != nil {
		return t.flipTarget
	}
	return t.back
}

// HasBack reports whether the tile has a back face at its current size.
func (t *Tile) HasBack() bool { return t.state.HasBack(t.size) }

// SetFace shows the back (true) or the front (false) face at once, without
// animation. Asking for a back the tile does not have shows the front.
func (t *Tile) SetFace(back bool) {
	t.stopAnimation()
	t.back = back && t.HasBack()
	t.Refresh()
}

// Flip turns the tile over to its other face with the phone's animation: the
// face squashes to zero height around its centre, the other face replaces
// it and grows back to full height, in FlipDuration. A tile without a back
// does not flip. A flip started while another is running completes the
// first at once.
func (t *Tile) Flip() {
	t.stopAnimation()
	if !t.HasBack() {
		if t.back {
			t.back = false
			t.Refresh()
		}
		return
	}
	target := !t.back
	a := fyne.NewAnimation(FlipDuration, nil)
	a.Tick = t.flipTicker(a, target)
	a.Curve = fyne.AnimationEaseInOut
	t.anim, t.flipTarget = a, target
	if t.Animate != nil {
		t.Animate(a)
		return
	}
	a.Start()
}

// flipTicker returns the tick function of flip animation a, which ends on
// the back face if target is true. Progress 0 to 0.5 squashes the face to
// nothing; the faces swap and 0.5 to 1 grows the new one to full height.
func (t *Tile) flipTicker(a *fyne.Animation, target bool) func(float32) {
	return func(f float32) {
		if t.anim != a { // stopped and superseded
			return
		}
		switch {
		case f >= 1:
			t.back, t.squash, t.anim = target, 1, nil
		case f < 0.5:
			t.squash = 1 - 2*f
		default:
			t.back, t.squash = target, 2*f-1
		}
		t.Refresh()
	}
}

// stopAnimation completes a running flip at once.
func (t *Tile) stopAnimation() {
	if t.anim == nil {
		return
	}
	a := t.anim
	t.anim = nil
	a.Stop()
	t.back, t.squash = t.flipTarget, 1
}

// Flipping reports whether a flip animation is running.
func (t *Tile) Flipping() bool { return t.anim != nil }

// NextImage shows the next cycle image of a CycleTile, wrapping after the
// last. It does nothing for other templates or a tile with fewer than two
// images (and at small size, which shows SmallBackgroundImage).
func (t *Tile) NextImage() {
	n := len(t.state.CycleImages())
	if t.state.Template != payload.TemplateCycle || n < 2 || t.size == tile.Small {
		return
	}
	t.cycle = (t.cycle + 1) % n
	t.Refresh()
}

// Renders returns how many times the tile has drawn its face: when it was
// first shown, and after each change of what it shows (state, size, face,
// flip step, cycle image, colour, images). A Refresh that changes nothing
// the tile shows does not draw it again. Tests and benchmarks use it to
// check that only the tiles that changed are drawn.
func (t *Tile) Renders() int { return t.renders }

// CycleIndex returns the index, among the set cycle images, of the one shown.
func (t *Tile) CycleIndex() int {
	if n := len(t.state.CycleImages()); n > 0 {
		return t.cycle % n
	}
	return 0
}

// Tapped calls OnTapped.
func (t *Tile) Tapped(*fyne.PointEvent) {
	if t.OnTapped != nil {
		t.OnTapped()
	}
}

// TappedSecondary calls OnTappedSecondary. fyne's GL driver gives a right
// click to the topmost tappable object only, so a container under the tile
// never sees it.
func (t *Tile) TappedSecondary(*fyne.PointEvent) {
	if t.OnTappedSecondary != nil {
		t.OnTappedSecondary()
	}
}

// MinSize is the tile's size in WP8 pixels times its scale.
func (t *Tile) MinSize() fyne.Size {
	w, h := t.size.Pixels()
	return fyne.NewSize(float32(w)*t.scale, float32(h)*t.scale)
}

// CreateRenderer is part of fyne.Widget.
func (t *Tile) CreateRenderer() fyne.WidgetRenderer {
	return newRenderer(t)
}

// resolved is an image reference resolved: its resource (nil when it did
// not resolve) and the key of its decoded copy in faces.
type resolved struct {
	res fyne.Resource
	key faceKey
}

// image resolves ref through the tile's ImageSource, remembering the answer
// (and failures) until ReloadImages.
func (t *Tile) image(ref string) resolved {
	if ref == "" || t.images == nil {
		return resolved{}
	}
	if r, ok := t.cache[ref]; ok {
		return r
	}
	var r resolved
	if res, err := t.images.Image(ref); err == nil && res != nil {
		r = resolved{res: res, key: keyOf(res)}
	}
	if t.cache == nil {
		t.cache = map[string]resolved{}
	}
	t.cache[ref] = r
	return r
}
