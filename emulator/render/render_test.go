package render

import (
	"bytes"
	"errors"
	"image"
	"image/png"
	"testing"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/test"

	"github.com/openmpns/openmpns/emulator/accent"
	"github.com/openmpns/openmpns/emulator/tile"
	"github.com/openmpns/openmpns/emulator/ui/tileview"
	"github.com/openmpns/openmpns/shared/payload"
)

func TestTilePNG(t *testing.T) {
	test.NewTempApp(t)
	s := tile.NewState("", payload.TemplateFlip, nil)
	s.Apply(&payload.Tile{Template: payload.TemplateFlip, Fields: map[string]string{
		payload.Title: "Mail", payload.Count: "3", payload.BackTitle: "back",
	}})
	tests := []struct {
		name  string
		size  tile.Size
		back  bool
		scale float32
		want  image.Point
	}{
		{"medium native", tile.Medium, false, 1, image.Pt(336, 336)},
		{"wide native back", tile.Wide, true, 1, image.Pt(691, 336)},
		{"small native", tile.Small, false, 1, image.Pt(159, 159)},
		{"medium half", tile.Medium, false, 0.5, image.Pt(168, 168)},
		{"medium start screen", tile.Medium, false, tileview.DefaultScale, image.Pt(150, 150)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := TilePNG(&buf, s, tt.size, tt.back, tt.scale, WithAccent(accent.Red)); err != nil {
				t.Fatal(err)
			}
			img, err := png.Decode(&buf)
			if err != nil {
				t.Fatalf("output is not a PNG: %v", err)
			}
			if got := img.Bounds().Size(); got != tt.want {
				t.Errorf("image is %v, want %v", got, tt.want)
			}
			// The top left corner is flat accent colour, fully opaque.
			r, g, b, a := img.At(1, img.Bounds().Dy()/2).RGBA()
			if r>>8 != uint32(accent.Red.R) || g>>8 != uint32(accent.Red.G) || b>>8 != uint32(accent.Red.B) || a>>8 != 0xFF {
				t.Errorf("left edge is %v, want the accent %v", img.At(1, img.Bounds().Dy()/2), accent.Red)
			}
		})
	}
}

func TestToastPNG(t *testing.T) {
	test.NewTempApp(t)
	var buf bytes.Buffer
	if err := ToastPNG(&buf, payload.Toast{Text1: "Alice", Text2: "Lunch?"}, 2); err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(&buf)
	if err != nil {
		t.Fatalf("output is not a PNG: %v", err)
	}
	if got, want := img.Bounds().Size(), image.Pt(960, 124); got != want {
		t.Errorf("image is %v, want %v", got, want)
	}
}

func TestTileCycleImage(t *testing.T) {
	test.NewTempApp(t)
	s := tile.NewState("", payload.TemplateCycle, nil)
	s.Apply(&payload.Tile{Template: payload.TemplateCycle, Fields: map[string]string{
		payload.CycleImage(1): "/a.png", payload.CycleImage(2): "/b.png",
	}})
	src := &recorder{}
	Tile(s, tile.Medium, false, 1, WithImages(src), WithCycleImage(1))
	if len(src.refs) == 0 || src.refs[len(src.refs)-1] != "/b.png" {
		t.Errorf("images asked for %q, want the second cycle image last", src.refs)
	}
}

type recorder struct{ refs []string }

func (r *recorder) Image(ref string) (fyne.Resource, error) {
	r.refs = append(r.refs, ref)
	return nil, errors.New("no images here")
}
