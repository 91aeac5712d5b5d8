package ui

import (
	"image"
	"os"
	"testing"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/test"

	"github.com/openmpns/openmpns/emulator/accent"
	"github.com/openmpns/openmpns/emulator/ui/wptheme"
)

// testApp is the package's one in-memory fyne app. Tests share it because
// making an app empties fyne's font cache, and parsing the fonts again for
// every test is what made the package slow under -race.
var testApp fyne.App

func TestMain(m *testing.M) {
	testApp = test.NewApp()
	os.Exit(m.Run())
}

// newTestApp gives the shared test app the phone's theme, dark or light,
// in the default accent, and an empty clipboard.
func newTestApp(t testing.TB, dark bool) fyne.App {
	t.Helper()
	testApp.Settings().SetTheme(wptheme.New(dark, accent.Cobalt))
	testApp.Clipboard().SetContent("")
	return testApp
}

// newTestWindow shows obj in an unpadded test window of the given size.
func newTestWindow(t testing.TB, obj fyne.CanvasObject, size fyne.Size) fyne.Window {
	t.Helper()
	w := test.NewWindow(obj)
	w.SetPadded(false)
	w.Resize(size)
	t.Cleanup(w.Close)
	return w
}

func capture(w fyne.Window) image.Image { return w.Canvas().Capture() }

func newThemeForTest(dark bool, accentName string) fyne.Theme {
	c, _ := accent.Lookup(accentName)
	return wptheme.New(dark, c)
}
