package controls

import (
	"testing"

	"fyne.io/fyne/v2/theme"

	"github.com/openmpns/openmpns/emulator/ui/internal/uitest"
)

func TestMain(m *testing.M) { uitest.Main(m) }

// TestScaledThemeFollowsTheApp: the theme of fyne's widgets on a page is the
// app's theme, sizes times the scale, colours as they are.
func TestScaledThemeFollowsTheApp(t *testing.T) {
	a := uitest.App(t, false)
	th := &ScaledTheme{}
	th.Rescale(3)
	base := a.Settings().Theme()
	if got, want := th.Size(theme.SizeNameText), 3*base.Size(theme.SizeNameText); got != want {
		t.Errorf("text size %v, want %v", got, want)
	}
	if th.Color(theme.ColorNameForeground, theme.VariantDark) != base.Color(theme.ColorNameForeground, theme.VariantDark) {
		t.Error("foreground colour differs from the app's")
	}
	uitest.App(t, true) // the app's theme changes: so does the page's
	if th.Color(theme.ColorNameBackground, theme.VariantDark) != a.Settings().Theme().Color(theme.ColorNameBackground, theme.VariantDark) {
		t.Error("background colour did not follow the app's theme")
	}
}
