package wptheme

import (
	"image/color"
	"testing"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/theme"

	"github.com/openmpns/openmpns/emulator/accent"
)

func TestColors(t *testing.T) {
	nrgba := func(c color.Color) color.NRGBA { return color.NRGBAModel.Convert(c).(color.NRGBA) }
	tests := []struct {
		name    string
		th      *Theme
		color   fyne.ThemeColorName
		variant fyne.ThemeVariant
		want    color.NRGBA
	}{
		{"dark background", New(true, nil), theme.ColorNameBackground, theme.VariantLight, color.NRGBA{A: 0xFF}},
		{"dark text", New(true, nil), theme.ColorNameForeground, theme.VariantLight, color.NRGBA{R: 0xFF, G: 0xFF, B: 0xFF, A: 0xFF}},
		{"light background", New(false, nil), theme.ColorNameBackground, theme.VariantDark, color.NRGBA{R: 0xFF, G: 0xFF, B: 0xFF, A: 0xFF}},
		{"light text", New(false, nil), theme.ColorNameForeground, theme.VariantDark, color.NRGBA{A: 0xFF}},
		{"default accent", New(true, nil), theme.ColorNamePrimary, theme.VariantDark, accent.Default},
		{"chosen accent", New(false, accent.Lime), theme.ColorNamePrimary, theme.VariantDark, accent.Lime},
		{"text on accent is white on light too", New(false, accent.Lime), theme.ColorNameForegroundOnPrimary, theme.VariantLight, color.NRGBA{R: 0xFF, G: 0xFF, B: 0xFF, A: 0xFF}},
		{"subtle dark", New(true, nil), ColorNameSubtle, theme.VariantDark, color.NRGBA{R: 0xFF, G: 0xFF, B: 0xFF, A: 0x99}},
		{"subtle light", New(false, nil), ColorNameSubtle, theme.VariantDark, color.NRGBA{A: 0x66}},
		{"flat: no shadow", New(true, nil), theme.ColorNameShadow, theme.VariantDark, color.NRGBA{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := nrgba(tt.th.Color(tt.color, tt.variant)); got != tt.want {
				t.Errorf("Color(%s) = %v, want %v", tt.color, got, tt.want)
			}
		})
	}
}

func TestSquareCorners(t *testing.T) {
	th := New(true, nil)
	for _, n := range []fyne.ThemeSizeName{theme.SizeNameInputRadius, theme.SizeNameSelectionRadius, theme.SizeNameScrollBarRadius} {
		if got := th.Size(n); got != 0 {
			t.Errorf("Size(%s) = %v, want 0", n, got)
		}
	}
	if th.Size(theme.SizeNamePadding) != theme.DefaultTheme().Size(theme.SizeNamePadding) {
		t.Error("padding differs from fyne's")
	}
}

func TestLightFont(t *testing.T) {
	if len(Light.Content()) < 100_000 || Light.Name() != "OpenSans-Light.ttf" {
		t.Errorf("light font: %s, %d bytes", Light.Name(), len(Light.Content()))
	}
	if !New(true, nil).Dark() || New(false, nil).Dark() || New(true, accent.Red).Accent() != accent.Red {
		t.Error("Dark or Accent do not report what New was given")
	}
}
