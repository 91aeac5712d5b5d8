package shell

import (
	"fmt"
	"image/color"
	"testing"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/test"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"github.com/openmpns/openmpns/emulator/accent"
	"github.com/openmpns/openmpns/emulator/ui/wptheme"
)

// themedWidget is a widget and the path to it from the root of a walk.
type themedWidget struct {
	w    fyne.Widget
	path string
}

// widgetsOf is every widget under o, shown or hidden, but the theme
// overrides themselves (which take no theme).
func widgetsOf(o fyne.CanvasObject) []themedWidget {
	var out []themedWidget
	var walk func(o fyne.CanvasObject, path string)
	walk = func(o fyne.CanvasObject, path string) {
		path += fmt.Sprintf("/%T", o)
		switch v := o.(type) {
		case *container.ThemeOverride:
			walk(v.Content, path)
		case fyne.Widget:
			out = append(out, themedWidget{v, path})
			for _, c := range test.WidgetRenderer(v).Objects() {
				walk(c, path)
			}
		case *fyne.Container:
			for _, c := range v.Objects {
				walk(c, path)
			}
		}
	}
	walk(o, "")
	return out
}

// TestEachPhoneHasItsOwnTheme gives two phones different themes (the first
// dark in cobalt, whose theme the window also takes; the second light in
// red) and checks every widget of each phone's screens, fyne's own (the
// labels of an app page, the scroll bars) and the emulator's, and the
// pixels of a tile that follows the accent: each phone's are in its own
// theme, also on the screens first shown after the theme was set.
func TestEachPhoneHasItsOwnTheme(t *testing.T) {
	r := startQuiet(t)
	sh := r.Shell
	d1, d2 := r.Dev, r.addPhone()
	d1.Phone().SetLook(false, "cobalt")
	d2.Phone().SetLook(true, "red")
	want := map[*Device]fyne.Theme{d1: wptheme.New(true, accent.Cobalt), d2: wptheme.New(false, accent.Red)}
	onUI(t, sh, "both looks applied", func() bool {
		return d1.look == look{true, accent.Cobalt} && d2.look == look{false, accent.Red}
	})
	sh.Update(func() { r.Window.Resize(sh.WindowSize()) })

	const calendar = "com.openmpns.calendar" // no accent of its own
	check := func(screen string, d *Device) {
		t.Helper()
		th := want[d]
		fg := th.Color(theme.ColorNameForeground, theme.VariantDark)
		n, labels := 0, 0
		for _, w := range widgetsOf(d.themed) {
			n++
			if _, ok := w.w.(*widget.Label); ok {
				labels++
			}
			if got := theme.ColorForWidget(theme.ColorNameForeground, w.w); got != fg {
				t.Errorf("%s of %s: %s draws in foreground %v, want its phone's %v", screen, d.Name(), w.path, got, fg)
				return
			}
		}
		if n == 0 {
			t.Fatalf("%s of %s: no widgets", screen, d.Name())
		}
		if screen == "app page" && labels == 0 {
			t.Errorf("app page of %s: no fyne label checked", d.Name())
		}
	}
	for _, d := range []*Device{d1, d2} {
		sh.Update(func() {
			check("start screen", d)
			tl := d.start.Tile(calendar)
			c := color.NRGBAModel.Convert(want[d].Color(theme.ColorNamePrimary, theme.VariantDark)).(color.NRGBA)
			if got := colourAt(r.Window.Canvas().Capture(), tl, 5, 40); got != c {
				t.Errorf("%s: the calendar tile is drawn %v, want its phone's accent %v", d.Name(), got, c)
			}
		})
		for _, s := range []struct {
			name string
			open func()
		}{
			{"settings", func() { d.view.Push(d.settings) }},
			{"app list", func() { d.view.Push(d.appList) }},
			{"app page", func() { d.launch("com.openmpns.photos") }},
		} {
			sh.Update(func() {
				s.open()
				check(s.name, d)
				d.view.Home()
			})
		}
	}
	// A change of the second phone's theme reaches its screens, shown or
	// not, and leaves the first phone's alone.
	d2.Phone().SetLook(false, "lime")
	want[d2] = wptheme.New(true, accent.Lime)
	onUI(t, sh, "phone 2 in lime", func() bool { return d2.look == look{true, accent.Lime} })
	for _, d := range []*Device{d1, d2} {
		sh.Update(func() {
			d.view.Push(d.settings)
			check("settings after a change", d)
			d.view.Home()
			check("start screen after a change", d)
		})
	}
}
