package tileview

import (
	"image"
	"image/color"
	"math"
	"sort"
	"strconv"
	"strings"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"

	"github.com/openmpns/openmpns/emulator/tile"
	"github.com/openmpns/openmpns/shared/payload"
)

// Geometry of the tile faces in WP8 pixels (a medium tile is 336 wide); the
// renderer multiplies them by the tile's logical units per pixel.
const (
	marginX       = 12  // left edge of the texts
	titleSize     = 25  // Title and BackTitle
	titleBottom   = 6   // from the bottom of the text box to the tile's edge
	contentTop    = 6   // first line of BackContent / WideContent1
	contentSize   = 34  // BackContent, WideBackContent
	contentLeadPc = 118 // line advance of BackContent, percent of the font size

	badgeSide      = 58 // count badge, medium and wide
	badgeSideSmall = 44
	badgeText      = 34
	badgeTextSmall = 26

	iconMedium      = 202 // IconImage box on medium and wide tiles
	iconSmall       = 110 // SmallIconImage box
	iconCountMedium = 78  // count beside the icon, medium and wide
	iconCountSmall  = 42  // count beside the icon, small, and beside the small icon of a wide tile
	wideContent1    = 38  // WideContent1 of an iconic tile
	wideContent23   = 28  // WideContent2 and 3
)

var (
	white      = color.NRGBA{R: 0xFF, G: 0xFF, B: 0xFF, A: 0xFF}
	badgeShade = color.NRGBA{A: 0x4C} // darkens whatever is behind the count
)

type renderer struct {
	t *Tile

	bg      *canvas.Rectangle
	img     *canvas.Image
	icon    *canvas.Image
	lines   [3]*canvas.Text
	title   *canvas.Text
	badgeBg *canvas.Rectangle
	badge   *canvas.Text
	objects []fyne.CanvasObject

	// opaque: the face's image is opaque and covers the tile, so the flat
	// background under it is not drawn (under a software GL, every pixel
	// drawn twice costs).
	opaque bool

	drawn bool
	last  look // what was drawn last
}

// look is everything a tile's drawing depends on: when it is the same as
// at the last drawing, the tile is not drawn again.
type look struct {
	gen    uint64
	size   tile.Size
	back   bool
	cycle  int
	squash float32
	bg     color.Color
	area   fyne.Size
	pixels float32 // PixelScale's answer, 0 without one
}

func (r *renderer) lookAt(area fyne.Size) look {
	t := r.t
	l := look{gen: t.gen, size: t.size, back: t.back, cycle: t.cycle, squash: t.squash, bg: t.accentColour(), area: area}
	if PixelScale != nil {
		l.pixels = PixelScale(t)
	}
	return l
}

func newRenderer(t *Tile) *renderer {
	r := &renderer{
		t:       t,
		bg:      canvas.NewRectangle(t.accentColour()),
		img:     &canvas.Image{FillMode: canvas.ImageFillStretch},
		icon:    &canvas.Image{FillMode: canvas.ImageFillContain},
		title:   canvas.NewText("", white),
		badgeBg: canvas.NewRectangle(badgeShade),
		badge:   canvas.NewText("", white),
	}
	r.badge.Alignment = fyne.TextAlignCenter
	r.objects = []fyne.CanvasObject{r.bg, r.img, r.icon}
	for i := range r.lines {
		r.lines[i] = canvas.NewText("", white)
		r.objects = append(r.objects, r.lines[i])
	}
	r.objects = append(r.objects, r.title, r.badgeBg, r.badge)
	r.draw(t.Size())
	return r
}

func (r *renderer) Destroy() {}

func (r *renderer) Objects() []fyne.CanvasObject { return r.objects }

func (r *renderer) MinSize() fyne.Size { return r.t.MinSize() }

// Refresh draws the tile again if anything it shows changed since it was
// last drawn; a refresh that changes nothing (the start screen's, a
// theme's that left the tile's colour alone) does nothing.
func (r *renderer) Refresh() { r.draw(r.t.Size()) }

// Layout draws the tile at size, unless it is drawn there already as it
// is.
func (r *renderer) Layout(size fyne.Size) { r.draw(size) }

// draw lays the tile's objects out for what it shows. Each object that
// changed content refreshes itself (and only it then has its texture made
// again); the background is refreshed to have the canvas painted, which
// moves the objects that only moved (a flip step moves and squashes the
// face). The tile itself is not refreshed: on fyne's GL canvas that would
// free every text texture of the tile on every step of a flip.
func (r *renderer) draw(size fyne.Size) {
	l := r.lookAt(size)
	if r.drawn && l == r.last {
		return
	}
	r.drawn, r.last = true, l
	r.t.renders++
	r.layout(size)
	canvas.Refresh(r.bg)
}

// frame is the geometry of one layout pass: the tile's size in WP8 pixels
// and the logical units per pixel.
type frame struct {
	w, h   float32 // WP8 pixels
	k      float32 // logical units per WP8 pixel
	pixels float32 // the canvas's pixels per logical unit, 0 when unknown
	size   tile.Size
}

func (f frame) pos(x, y float32) fyne.Position { return fyne.NewPos(x*f.k, y*f.k) }

// layout places every object for the tile's current state, size, face and
// flip progress. It is the whole of the drawing logic.
func (r *renderer) layout(size fyne.Size) {
	t := r.t
	pw, ph := t.size.Pixels()
	f := frame{w: float32(pw), h: float32(ph), size: t.size, pixels: r.last.pixels}
	if size.Width <= 0 || size.Height <= 0 {
		size = t.MinSize()
	}
	f.k = min(size.Width/f.w, size.Height/f.h)

	for _, o := range r.objects[1:] {
		o.Hide()
	}
	r.opaque = false
	bg := t.accentColour()
	switch t.state.Template {
	case payload.TemplateIconic:
		if c, ok := t.state.BackgroundColor(); ok {
			bg = c
		}
		r.layoutIconic(f)
	case payload.TemplateCycle:
		r.layoutCycle(f)
	default:
		r.layoutFlip(f)
	}
	if r.bg.FillColor != bg {
		r.bg.FillColor = bg
		r.bg.Refresh()
	}
	if r.opaque && r.img.Visible() {
		r.bg.Hide()
	} else {
		r.bg.Show()
	}

	// The flip: squash the face around the tile's horizontal centre line.
	// Only the flat background and the image squash; text and icons are
	// hidden until the face is back at full height.
	faceH := size.Height * t.squash
	faceY := (size.Height - faceH) / 2
	for _, o := range []fyne.CanvasObject{r.bg, r.img} {
		o.Move(fyne.NewPos(0, faceY))
		o.Resize(fyne.NewSize(size.Width, faceH))
	}
	if t.squash < 1 {
		for _, o := range r.objects[2:] {
			o.Hide()
		}
	}
}

func (r *renderer) layoutFlip(f frame) {
	s := r.t.state
	back := r.t.back && s.HasBack(f.size)
	var image, title string
	var content []string
	switch {
	case f.size == tile.Small:
		image = s.Get(payload.SmallBackgroundImage)
		if image == "" || r.t.image(image).res == nil {
			image = s.Get(payload.BackgroundImage)
		}
	case back && f.size == tile.Wide:
		image, title = s.Get(payload.WideBackBackgroundImage), s.Get(payload.BackTitle)
		content = tile.Wrap(s.Get(payload.WideBackContent), tile.WideBackContentChars, tile.BackContentLines)
	case back:
		image, title = s.Get(payload.BackBackgroundImage), s.Get(payload.BackTitle)
		content = tile.Wrap(s.Get(payload.BackContent), tile.BackContentChars, tile.BackContentLines)
	case f.size == tile.Wide:
		image, title = s.Get(payload.WideBackgroundImage), s.Get(payload.Title)
	default:
		image, title = s.Get(payload.BackgroundImage), s.Get(payload.Title)
	}
	r.setImage(r.img, image, canvas.ImageFillStretch, 0, 0, f.w, f.h, f)
	r.setTitle(title, f)
	y := float32(contentTop)
	for i, line := range content {
		r.setText(r.lines[i], line, contentSize, false, marginX, y, f.w-2*marginX, f)
		y += contentSize * contentLeadPc / 100
	}
	if !back {
		r.setBadge(s.Count(), f)
	}
}

func (r *renderer) layoutCycle(f frame) {
	s := r.t.state
	if f.size == tile.Small {
		r.setImage(r.img, s.Get(payload.SmallBackgroundImage), canvas.ImageFillStretch, 0, 0, f.w, f.h, f)
	} else {
		var image string
		if refs := s.CycleImages(); len(refs) > 0 {
			image = refs[r.t.cycle%len(refs)]
		}
		// Cycle images are wide (691x336); a medium tile shows their middle.
		r.setImage(r.img, image, canvas.ImageFillCover, 0, 0, f.w, f.h, f)
		r.setTitle(s.Get(payload.Title), f)
	}
	r.setBadge(s.Count(), f)
}

func (r *renderer) layoutIconic(f frame) {
	s := r.t.state
	count := s.Count()
	lines := s.WideContent() // cut to tile.WideContentChars: fit measures no more
	wideContent := f.size == tile.Wide && strings.Join(lines[:], "") != ""

	if f.size != tile.Small {
		r.setTitle(s.Get(payload.Title), f)
	}
	switch {
	case wideContent:
		// Text to the top left, the small icon and the count bottom right.
		y := float32(contentTop)
		for i, line := range lines {
			size := float32(wideContent23)
			if i == 0 {
				size = wideContent1
			}
			if line == "" {
				y += r.lineHeight(size, f)
				continue
			}
			y += r.setText(r.lines[i], line, size, false, marginX, y, f.w-2*marginX, f)
		}
		ref := firstSet(s, payload.SmallIconImage, payload.IconImage)
		x := f.w - iconSmall - marginX
		if count > 0 {
			x -= r.measure(strconv.Itoa(count), iconCountSmall, f) + 4
		}
		iconY := f.h - iconSmall - 4
		r.setImage(r.icon, ref, canvas.ImageFillContain, x, iconY, iconSmall, iconSmall, f)
		if count > 0 {
			r.setCountBeside(count, iconCountSmall, x+iconSmall, iconY, iconSmall, f)
		}
	case f.size == tile.Small:
		ref := firstSet(s, payload.SmallIconImage, payload.IconImage)
		r.iconWithCount(ref, count, iconSmall, iconCountSmall, 0, f)
	default:
		ref := firstSet(s, payload.IconImage, payload.SmallIconImage)
		r.iconWithCount(ref, count, iconMedium, iconCountMedium, 16, f)
	}
}

// iconWithCount centres an icon box of side box (raised by lift pixels to
// clear the title) with the count to its right, the pair centred together.
func (r *renderer) iconWithCount(ref string, count int, box, countSize, lift float32, f frame) {
	// Iconic icons have transparent padding of about a fifth of the box
	// around the glyph (the design guidelines' safe area); the count tucks
	// into it and the glyph and count are centred together.
	pad, tuck := box/5, box/6
	x := (f.w - box) / 2
	if count > 0 {
		visible := box - pad - tuck + r.measure(strconv.Itoa(count), countSize, f)
		x = (f.w-visible)/2 - pad
	}
	y := (f.h-box)/2 - lift
	r.setImage(r.icon, ref, canvas.ImageFillContain, x, y, box, box, f)
	if count > 0 {
		r.setCountBeside(count, countSize, x+box-tuck, y, box, f)
	}
}

// setCountBeside draws count at x, centred on the icon box of height box at y.
func (r *renderer) setCountBeside(count int, size, x, y, box float32, f frame) {
	h := r.lineHeight(size, f)
	r.setText(r.badge, strconv.Itoa(count), size, false, x, y+(box-h)/2, f.w, f)
	r.badge.Alignment = fyne.TextAlignLeading
	r.badge.Resize(r.badge.MinSize())
}

func (r *renderer) setTitle(title string, f frame) {
	if f.size == tile.Small || title == "" {
		return
	}
	limit := tile.TitleChars
	if f.size == tile.Wide {
		limit = tile.WideTitleChars
	}
	h := r.lineHeight(titleSize, f)
	r.setText(r.title, tile.Truncate(title, limit), titleSize, false, marginX, f.h-titleBottom-h, f.w-2*marginX, f)
}

// setBadge draws the count of a flip or cycle tile in a square in the top
// right corner; 0 hides it.
func (r *renderer) setBadge(count int, f frame) {
	if count <= 0 {
		return
	}
	side, size := float32(badgeSide), float32(badgeText)
	if f.size == tile.Small {
		side, size = badgeSideSmall, badgeTextSmall
	}
	r.badgeBg.Move(f.pos(f.w-side, 0))
	r.badgeBg.Resize(fyne.NewSize(side*f.k, side*f.k))
	r.badgeBg.Show()
	h := r.lineHeight(size, f)
	r.setText(r.badge, strconv.Itoa(count), size, false, f.w-side, (side-h)/2, side, f)
	r.badge.Alignment = fyne.TextAlignCenter
	r.badge.Resize(fyne.NewSize(side*f.k, h*f.k))
}

// setText shows text in o at (x, y) in WP8 pixels with a font of size
// pixels, cut to fit maxW pixels. It returns the height of the text's line
// in pixels.
func (r *renderer) setText(o *canvas.Text, text string, size float32, bold bool, x, y, maxW float32, f frame) float32 {
	logical := size * f.k
	style := fyne.TextStyle{Bold: bold}
	text = fit(text, logical, style, maxW*f.k)
	if o.Text != text || o.TextSize != logical || o.TextStyle != style {
		o.Text, o.TextSize, o.TextStyle = text, logical, style
		o.Refresh()
	}
	o.Move(f.pos(x, y))
	o.Resize(o.MinSize())
	o.Show()
	return o.MinSize().Height / f.k
}

func (r *renderer) lineHeight(size float32, f frame) float32 {
	return measureText("Ag", size*f.k, fyne.TextStyle{}).Height / f.k
}

func (r *renderer) measure(text string, size float32, f frame) float32 {
	return measureText(text, size*f.k, fyne.TextStyle{}).Width / f.k
}

// measureText is how the renderer measures text (fyne.MeasureText, which
// shapes it: the cost of laying a tile out); tests count through it.
var measureText = fyne.MeasureText

// setImage shows the image ref resolves to in o, in the box (x, y, w, h) in
// WP8 pixels; a reference that is empty or does not resolve hides o, which
// leaves the flat background. Raster images are drawn decoded, from the
// shared face cache, so that a flip or a cycle step, which swaps o's image,
// does not make fyne decode the file again; SVGs stay resources, which fyne
// rasterises at the size drawn.
//
// During a flip the image is drawn with ImageScaleFastest: each step
// resizes it, which makes fyne's GL painter make its texture again, and
// with the default smooth scaling it would scale the image in software
// (CatmullRom) to the squashed size every frame, about a millisecond per
// flipping tile. Fastest uploads the decoded pixels and lets the GPU
// squash them; at rest the face is scaled smoothly, once. When the tile
// knows its canvas's pixels (PixelScale), the face is scaled by the cache,
// once, to exactly the box's pixels, and always drawn with Fastest: fyne
// then never scales it, not even when a flip ends.
func (r *renderer) setImage(o *canvas.Image, ref string, fill canvas.ImageFill, x, y, w, h float32, f frame) {
	img := r.t.image(ref)
	if img.res == nil {
		return
	}
	scale := canvas.ImageScaleSmooth
	if r.t.squash < 1 {
		scale = canvas.ImageScaleFastest
	}
	var face *image.RGBA
	var opaque bool
	if f.pixels > 0 {
		pw := int(math.Round(float64(w * f.k * f.pixels)))
		ph := int(math.Round(float64(h * f.k * f.pixels)))
		if face, opaque = faces.scaled(img.key, img.res, pw, ph, fill); face != nil {
			fill, scale = canvas.ImageFillStretch, canvas.ImageScaleFastest
		}
	}
	if face == nil {
		face, opaque = faces.get(img.key, img.res)
	}
	if face != nil {
		if o.Image != face || o.Resource != nil || o.FillMode != fill || o.ScaleMode != scale {
			o.Resource, o.Image, o.FillMode, o.ScaleMode = nil, face, fill, scale
			o.Refresh()
		}
		if o == r.img {
			r.opaque = opaque
		}
	} else if o.Resource != img.res || o.FillMode != fill || o.ScaleMode != scale {
		o.Resource, o.Image, o.FillMode, o.ScaleMode = img.res, nil, fill, scale
		o.Refresh()
	}
	o.Move(f.pos(x, y))
	o.Resize(fyne.NewSize(w*f.k, h*f.k))
	o.Show()
}

// fit cuts text to its longest prefix at most maxW logical units wide,
// without trailing spaces. Text that fits is measured once; other text is
// cut by bisecting over the widths of its prefixes, about log2(n)
// measurements of at most n runes, not one of the whole rest per rune
// dropped.
func fit(text string, size float32, style fyne.TextStyle, maxW float32) string {
	tooWide := func(s string) bool { return measureText(s, size, style).Width > maxW }
	if !tooWide(text) {
		return strings.TrimRight(text, " ")
	}
	runes := []rune(text)
	// The first prefix too wide is runes[:n+1]; all of runes is.
	n := sort.Search(len(runes), func(i int) bool { return tooWide(string(runes[:i+1])) })
	return strings.TrimRight(string(runes[:n]), " ")
}

func firstSet(s *tile.State, names ...string) string {
	for _, n := range names {
		if v := s.Get(n); v != "" {
			return v
		}
	}
	return ""
}
