// Package uitest is what the tests of the emulator's screens share: one
// in-memory fyne app with the phone's theme, windows of a given size,
// captures, the fixed clock of the golden images, and ways to find what a
// widget draws. It is imported by tests only.
package uitest

import (
	"embed"
	"image"
	"image/color"
	"os"
	"testing"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/test"

	"github.com/openmpns/openmpns/emulator/accent"
	"github.com/openmpns/openmpns/emulator/tile"
	"github.com/openmpns/openmpns/emulator/ui/tileview"
	"github.com/openmpns/openmpns/emulator/ui/wptheme"
	"github.com/openmpns/openmpns/shared/payload"
)

// app is the one in-memory fyne app of a test binary. Tests share it
// because making an app empties fyne's font cache, and parsing the fonts
// again for every test is what made the screens' tests slow under -race.
var app fyne.App

// Main makes the shared app and runs the tests: call it from TestMain.
func Main(m *testing.M) {
	app = test.NewApp()
	os.Exit(m.Run())
}

// Time is the fixed clock of the golden images.
var Time = time.Date(2013, 10, 21, 12, 38, 5, 0, time.UTC)

// App gives the shared test app the phone's theme, dark or light, in the
// default accent, and an empty clipboard.
func App(t testing.TB, dark bool) fyne.App {
	t.Helper()
	app.Settings().SetTheme(wptheme.New(dark, accent.Cobalt))
	app.Clipboard().SetContent("")
	return app
}

// Theme is the phone's theme, dark or light, in the named accent.
func Theme(dark bool, accentName string) fyne.Theme {
	c, _ := accent.Lookup(accentName)
	return wptheme.New(dark, c)
}

// Window shows obj in an unpadded test window of the given size, closed
// when the test ends.
func Window(t testing.TB, obj fyne.CanvasObject, size fyne.Size) fyne.Window {
	t.Helper()
	w := test.NewWindow(obj)
	w.SetPadded(false)
	w.Resize(size)
	t.Cleanup(w.Close)
	return w
}

// Capture draws the window's canvas.
func Capture(w fyne.Window) image.Image { return w.Canvas().Capture() }

// AbsPos is the position (dx, dy) inside o on its canvas.
func AbsPos(o fyne.CanvasObject, dx, dy float32) fyne.Position {
	return fyne.CurrentApp().Driver().AbsolutePositionForObject(o).Add(fyne.NewPos(dx, dy))
}

// ColourAt is the colour drawn at (dx, dy) inside o in img, a capture of
// o's window (the test driver draws one pixel per unit).
func ColourAt(img image.Image, o fyne.CanvasObject, dx, dy float32) color.NRGBA {
	p := AbsPos(o, dx, dy)
	return color.NRGBAModel.Convert(img.At(int(p.X), int(p.Y))).(color.NRGBA)
}

// Texts returns the canvas.Text objects drawn by o and the widgets in it,
// in drawing order (a fyne Label draws through a RichText).
func Texts(o fyne.CanvasObject) []*canvas.Text {
	switch v := o.(type) {
	case *canvas.Text:
		return []*canvas.Text{v}
	case *fyne.Container:
		var out []*canvas.Text
		for _, c := range v.Objects {
			out = append(out, Texts(c)...)
		}
		return out
	case fyne.Widget:
		var out []*canvas.Text
		for _, c := range test.WidgetRenderer(v).Objects() {
			out = append(out, Texts(c)...)
		}
		return out
	}
	return nil
}

// FirstText returns the first text o draws, failing the test when it
// draws none.
func FirstText(t testing.TB, o fyne.CanvasObject) *canvas.Text {
	t.Helper()
	texts := Texts(o)
	if len(texts) == 0 {
		t.Fatalf("%T draws no text", o)
	}
	return texts[0]
}

// Assets holds the images of the sample tiles and an app icon, under
// "assets/" (front.png, icon.png, app_icon.png, ...).
//
//go:embed assets
var Assets embed.FS

// Images resolves the sample tiles' image references ("/assets/front.png").
var Images = tileview.FSImages{FS: Assets}

// Icon is the app icon of the golden images.
func Icon() fyne.Resource {
	b, err := Assets.ReadFile("assets/app_icon.png")
	if err != nil {
		panic(err)
	}
	return fyne.NewStaticResource("icon.png", b)
}

// KeyedTile is a tile widget and the key it is pinned with.
type KeyedTile struct {
	Key  string
	Tile *tileview.Tile
}

// NewTile is a tile widget of the template, size and fields, with the
// sample images.
func NewTile(tmpl payload.Template, size tile.Size, fields map[string]string) *tileview.Tile {
	s := tile.NewState("", tmpl, nil)
	s.Apply(&payload.Tile{Template: tmpl, Fields: fields})
	t := tileview.New(s, size)
	t.SetImages(Images)
	return t
}

// SampleTiles is a realistic start screen: flip, cycle and iconic tiles of
// all three sizes, with and without images and counts.
func SampleTiles() []KeyedTile {
	return []KeyedTile{
		{"mail", NewTile(payload.TemplateFlip, tile.Medium, map[string]string{
			payload.Title: "Mail", payload.Count: "7", payload.BackgroundImage: "/assets/front.png",
			payload.BackTitle: "alice@example.org", payload.BackContent: "Lunch at noon?",
		})},
		{"messaging", NewTile(payload.TemplateIconic, tile.Medium, map[string]string{
			payload.Title: "Messaging", payload.Count: "5", payload.IconImage: "/assets/icon.png", payload.SmallIconImage: "/assets/icon_small.png",
		})},
		{"photos", NewTile(payload.TemplateCycle, tile.Wide, map[string]string{
			payload.Title: "Photos", payload.CycleImage(1): "/assets/cycle1.png", payload.CycleImage(2): "/assets/cycle2.png",
		})},
		{"phone", NewTile(payload.TemplateIconic, tile.Small, map[string]string{
			payload.Count: "2", payload.SmallIconImage: "/assets/icon_small.png",
		})},
		{"store", NewTile(payload.TemplateFlip, tile.Small, map[string]string{payload.Title: "Store"})},
		{"games", NewTile(payload.TemplateIconic, tile.Small, map[string]string{
			payload.SmallIconImage: "/assets/icon_small.png", payload.BackgroundColor: "#FF008A00",
		})},
		{"music", NewTile(payload.TemplateFlip, tile.Small, map[string]string{
			payload.SmallBackgroundImage: "/assets/front_small.png",
		})},
		{"news", NewTile(payload.TemplateFlip, tile.Medium, map[string]string{
			payload.Title: "News", payload.Count: "12", payload.BackTitle: "Top story",
			payload.BackContent: "Push service back online after maintenance",
		})},
		{"weather", NewTile(payload.TemplateFlip, tile.Wide, map[string]string{
			payload.Title: "Weather", payload.WideBackgroundImage: "/assets/front_wide.png",
			payload.BackTitle: "Seattle", payload.WideBackContent: "Rain, 12°C, wind 20 km/h from the south",
			payload.WideBackBackgroundImage: "/assets/back_wide.png",
		})},
	}
}

// InkBox returns the bounds of the pixels of img inside r that are not the
// colour of r's top left pixel (the background): where a text's glyphs are.
func InkBox(img image.Image, r image.Rectangle) image.Rectangle {
	bg := img.At(r.Min.X, r.Min.Y)
	br, bgG, bb, _ := bg.RGBA()
	var ink image.Rectangle
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			cr, cg, cb, _ := img.At(x, y).RGBA()
			if absDiff(cr, br)+absDiff(cg, bgG)+absDiff(cb, bb) > 3*0x3000 {
				ink = ink.Union(image.Rect(x, y, x+1, y+1))
			}
		}
	}
	return ink
}

func absDiff(a, b uint32) uint32 {
	if a > b {
		return a - b
	}
	return b - a
}

// ScreenRect is o's bounds in the window's pixels (the test canvas draws
// one pixel per unit).
func ScreenRect(o fyne.CanvasObject) image.Rectangle {
	at := fyne.CurrentApp().Driver().AbsolutePositionForObject(o)
	return image.Rect(int(at.X), int(at.Y), int(at.X+o.Size().Width), int(at.Y+o.Size().Height))
}
