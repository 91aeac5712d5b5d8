package tileview

import (
	"bytes"
	"image"
	"image/color"
	"image/png"
	"math"
	"testing"
	"testing/fstest"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/test"

	"github.com/openmpns/openmpns/emulator/tile"
	"github.com/openmpns/openmpns/shared/payload"
)

// pngOf encodes a w×h image of one colour.
func pngOf(t *testing.T, w, h int, c color.Color) []byte {
	t.Helper()
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.Set(x, y, c)
		}
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// twoFaced returns a medium flip tile, and its state, whose front is a red
// and its back a blue (of alpha backAlpha) side×side PNG.
func twoFaced(t *testing.T, side int, backAlpha uint8) (*Tile, *tile.State) {
	t.Helper()
	fsys := fstest.MapFS{
		"front.png": {Data: pngOf(t, side, side, color.NRGBA{R: 255, A: 255})},
		"back.png":  {Data: pngOf(t, side, side, color.NRGBA{B: 255, A: backAlpha})},
	}
	s := tile.NewState("", payload.TemplateFlip, nil)
	s.Apply(&payload.Tile{Template: payload.TemplateFlip, Fields: map[string]string{
		payload.BackgroundImage: "/front.png", payload.BackBackgroundImage: "/back.png", payload.BackTitle: "b"}})
	w := New(s, tile.Medium)
	w.SetImages(FSImages{FS: fsys})
	return w, s
}

// TestFlipDecodesEachFaceOnce flips a tile with a front and a back image
// back and forth: each image is decoded once, and the flip shows the other
// one, decoded.
func TestFlipDecodesEachFaceOnce(t *testing.T) {
	test.NewTempApp(t)
	saved := faces
	faces = newFaceCache(FaceCacheBytes)
	t.Cleanup(func() { faces = saved })

	w, s := twoFaced(t, 8, 255)
	r := test.WidgetRenderer(w).(*renderer)
	front := r.img.Image
	if front == nil || r.img.Resource != nil {
		t.Fatal("the front image is not drawn decoded")
	}
	w.Flip() // the test driver runs the animation to its end
	back := r.img.Image
	if back == nil || back == front {
		t.Fatal("the flip did not show the back image")
	}
	for range 10 {
		w.Flip()
	}
	if faces.decodes != 2 {
		t.Errorf("%d decodes for 11 flips, want 2 (one per face)", faces.decodes)
	}
	if r.img.Image != back { // 11 flips: back
		t.Error("after an odd number of flips the back is not shown")
	}

	// Another tile with the same image shares the decoded copy.
	w2 := New(s.Clone(), tile.Medium)
	w2.SetImages(w.images) // the same files
	if test.WidgetRenderer(w2).(*renderer).img.Image != front || faces.decodes != 2 {
		t.Error("a second tile with the same image decoded it again")
	}
}

func TestFaceCacheIsBounded(t *testing.T) {
	// Each 16×16 image takes 4×256+64 = 1088 bytes: three fit in 3500.
	c := newFaceCache(3500)
	res := make([]fyne.Resource, 5)
	for i := range res {
		res[i] = fyne.NewStaticResource("i.png", pngOf(t, 16, 16, color.Gray{Y: uint8(40 * i)}))
	}
	for _, r := range res {
		if img, _ := c.get(keyOf(r), r); img == nil {
			t.Fatal("a PNG did not decode")
		}
	}
	if n, used := c.len(); n != 3 || used > 3500 {
		t.Fatalf("cache holds %d images in %d bytes, want 3 in at most 3500", n, used)
	}
	// The oldest went first; the most recent are still there.
	before := c.decodes
	c.get(keyOf(res[4]), res[4])
	c.get(keyOf(res[2]), res[2])
	if c.decodes != before {
		t.Error("a recent image was decoded again")
	}
	c.get(keyOf(res[0]), res[0])
	if c.decodes != before+1 {
		t.Error("the oldest image was not evicted")
	}
}

func TestFaceCacheLeavesSVGToFyne(t *testing.T) {
	c := newFaceCache(FaceCacheBytes)
	svg := fyne.NewStaticResource("i.svg", []byte(`<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 10 10"><rect width="10" height="10"/></svg>`))
	if img, _ := c.get(keyOf(svg), svg); img != nil {
		t.Error("an SVG was decoded to pixels; fyne must rasterise it at the size drawn")
	}
}

// TestFlipStepsUploadTheFaceAsItIs: every step of a flip resizes the
// face, and fyne's GL painter then makes its texture again. During the
// flip the face is drawn with ImageScaleFastest from premultiplied RGBA,
// which fyne uploads as it is; with the default smooth scaling it would
// scale the image in software to the squashed size at every step. At
// rest the face is scaled smoothly again.
func TestFlipStepsUploadTheFaceAsItIs(t *testing.T) {
	test.NewTempApp(t)
	w, _ := twoFaced(t, 8, 128)
	var anim *fyne.Animation
	w.Animate = func(a *fyne.Animation) { anim = a }
	r := test.WidgetRenderer(w).(*renderer)
	if r.img.ScaleMode != canvas.ImageScaleSmooth {
		t.Fatalf("at rest the face is drawn with scale mode %v, want smooth", r.img.ScaleMode)
	}
	if _, ok := r.img.Image.(*image.RGBA); !ok {
		t.Fatalf("the face is a %T; fyne converts anything but *image.RGBA at every texture", r.img.Image)
	}
	w.Flip()
	for _, p := range []float32{0.2, 0.45, 0.55, 0.9} {
		anim.Tick(p)
		if r.img.ScaleMode != canvas.ImageScaleFastest {
			t.Errorf("at %.2f of the flip the face has scale mode %v, want fastest (no software scaling per step)", p, r.img.ScaleMode)
		}
	}
	anim.Tick(1)
	if r.img.ScaleMode != canvas.ImageScaleSmooth {
		t.Errorf("after the flip the face has scale mode %v, want smooth", r.img.ScaleMode)
	}
}

// TestOpaqueFaceHidesTheFlatBackground: a face whose image is opaque
// covers the whole tile, so the flat colour under it is not drawn (each
// pixel drawn twice costs under a software GL); a translucent face, or no
// image, shows it.
func TestOpaqueFaceHidesTheFlatBackground(t *testing.T) {
	test.NewTempApp(t)
	fsys := fstest.MapFS{
		"opaque.png": {Data: pngOf(t, 8, 8, color.NRGBA{R: 255, A: 255})},
		"glass.png":  {Data: pngOf(t, 8, 8, color.NRGBA{B: 255, A: 128})},
	}
	for _, tc := range []struct {
		image  string
		bgDraw bool
	}{{"/opaque.png", false}, {"/glass.png", true}, {"", true}, {"/missing.png", true}} {
		s := tile.NewState("", payload.TemplateFlip, nil)
		s.Apply(&payload.Tile{Template: payload.TemplateFlip, Fields: map[string]string{payload.BackgroundImage: tc.image, payload.Title: "t"}})
		w := New(s, tile.Medium)
		w.SetImages(FSImages{FS: fsys})
		r := test.WidgetRenderer(w).(*renderer)
		if got := r.bg.Visible(); got != tc.bgDraw {
			t.Errorf("image %q: background drawn %v, want %v", tc.image, got, tc.bgDraw)
		}
	}
}

// TestFacesAtTheCanvasPixels: with PixelScale set (the emulator's window),
// a tile hands fyne its face scaled to exactly the pixels it is drawn on,
// and with ImageScaleFastest at rest and during a flip, so that fyne never
// scales it in software; each face is scaled once, whatever the flips.
func TestFacesAtTheCanvasPixels(t *testing.T) {
	test.NewTempApp(t)
	saved, savedScale := faces, PixelScale
	faces = newFaceCache(FaceCacheBytes)
	PixelScale = func(fyne.CanvasObject) float32 { return 1.5 }
	t.Cleanup(func() { faces, PixelScale = saved, savedScale })

	w, _ := twoFaced(t, 336, 255)
	var anim *fyne.Animation
	w.Animate = func(a *fyne.Animation) { anim = a }
	r := test.WidgetRenderer(w).(*renderer)
	w.Resize(w.MinSize())
	side := int(math.Round(float64(w.MinSize().Width * 1.5)))
	check := func(when string) {
		t.Helper()
		img, ok := r.img.Image.(*image.RGBA)
		if !ok || img.Bounds() != image.Rect(0, 0, side, side) {
			t.Fatalf("%s: the face is %T %v, want *image.RGBA of %d×%d pixels", when, r.img.Image, r.img.Image.Bounds(), side, side)
		}
		if r.img.ScaleMode != canvas.ImageScaleFastest || r.img.FillMode != canvas.ImageFillStretch {
			t.Errorf("%s: scale mode %v, fill %v; want fastest, stretch (fyne must not scale it)", when, r.img.ScaleMode, r.img.FillMode)
		}
	}
	check("at rest")
	for range 3 {
		w.Flip()
		for _, p := range []float32{0.3, 0.7} {
			anim.Tick(p)
			check("during a flip")
		}
		anim.Tick(1)
		check("after a flip")
	}
	if faces.scales != 2 {
		t.Errorf("%d faces scaled for 3 flips, want 2 (front and back, once each)", faces.scales)
	}
}
