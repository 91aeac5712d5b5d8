// Package golden compares rendered images with the golden PNGs under a test
// package's testdata directory, the way fyne's test.AssertImageMatches does
// (same files, same testdata/failed/ output on a mismatch) but with a short
// failure message instead of a hex dump of every pixel.
//
// Run a package's tests with -update to rewrite its goldens; look at them
// before committing.
package golden

import (
	"flag"
	"fmt"
	"image"
	"image/draw"
	"image/png"
	"os"
	"path/filepath"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden images under testdata/")

// Assert fails t unless img has the same pixels as testdata/name. On a
// mismatch, or when the golden is missing, img is written to
// testdata/failed/name. With -update, img is written to testdata/name.
func Assert(t testing.TB, name string, img image.Image) {
	t.Helper()
	if *update {
		if err := write(filepath.Join("testdata", name), img); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := read(filepath.Join("testdata", name))
	if err != nil {
		t.Errorf("golden %s: %v (run the tests with -update to create it)", name, err)
		fail(t, name, img)
		return
	}
	got := nrgba(img)
	if msg := diff(want, got); msg != "" {
		t.Errorf("golden %s: %s", name, msg)
		fail(t, name, img)
	}
}

func fail(t testing.TB, name string, img image.Image) {
	t.Helper()
	p := filepath.Join("testdata", "failed", name)
	if err := write(p, img); err != nil {
		t.Errorf("writing %s: %v", p, err)
		return
	}
	t.Logf("rendered image written to %s", p)
}

// diff describes how got differs from want, "" when their pixels are equal.
func diff(want, got *image.NRGBA) string {
	if want.Bounds().Size() != got.Bounds().Size() {
		return fmt.Sprintf("image is %v, golden is %v", got.Bounds().Size(), want.Bounds().Size())
	}
	n, first := 0, image.Point{}
	w, h := want.Bounds().Dx(), want.Bounds().Dy()
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			a := want.NRGBAAt(want.Rect.Min.X+x, want.Rect.Min.Y+y)
			b := got.NRGBAAt(got.Rect.Min.X+x, got.Rect.Min.Y+y)
			if a != b && !(a.A == 0 && b.A == 0) {
				if n == 0 {
					first = image.Pt(x, y)
				}
				n++
			}
		}
	}
	if n == 0 {
		return ""
	}
	return fmt.Sprintf("%d of %d pixels differ, the first at %v: got %v, golden %v",
		n, w*h, first, got.NRGBAAt(got.Rect.Min.X+first.X, got.Rect.Min.Y+first.Y),
		want.NRGBAAt(want.Rect.Min.X+first.X, want.Rect.Min.Y+first.Y))
}

func nrgba(img image.Image) *image.NRGBA {
	if n, ok := img.(*image.NRGBA); ok {
		return n
	}
	n := image.NewNRGBA(img.Bounds())
	draw.Draw(n, n.Bounds(), img, img.Bounds().Min, draw.Src)
	return n
}

func read(path string) (*image.NRGBA, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		return nil, err
	}
	return nrgba(img), nil
}

func write(path string, img image.Image) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	enc := png.Encoder{CompressionLevel: png.BestCompression}
	if err := enc.Encode(f, img); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
