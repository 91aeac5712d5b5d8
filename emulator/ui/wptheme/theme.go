// Package wptheme is the fyne theme of the emulator: the look of Windows
// Phone 8. The background is black (dark theme) or white (light theme), text
// is white or black, everything interactive is flat and square, and the one
// colour is the user's accent (emulator/accent).
//
// The theme ignores fyne's light/dark variant: a Theme is dark or light
// because the phone's Settings say so, not because the desktop does. Install
// it app-wide with fyne.App.Settings().SetTheme; the emulator's views read
// their colours from it (theme.ColorForWidget) and follow it when it changes.
//
// Body text uses fyne's bundled font (Noto Sans, a close relative of Open
// Sans and the nearest free match for Segoe WP). Windows Phone's thin
// headings ("settings", app names) use Light, Open Sans Light, through
// canvas.Text.FontSource.
package wptheme

import (
	_ "embed"
	"image/color"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/theme"

	"github.com/openmpns/openmpns/emulator/accent"
)

//go:embed fonts/OpenSans-Light.ttf
var lightFont []byte

// Light is the thin font of Windows Phone headings (Open Sans Light, standing
// in for Segoe WP Light). Set it as a canvas.Text's FontSource.
var Light fyne.Resource = fyne.NewStaticResource("OpenSans-Light.ttf", lightFont)

// Colour names the theme adds to fyne's.
const (
	// ColorNameSubtle is Windows Phone's PhoneSubtleColor: secondary text,
	// "Off" labels, timestamps (60% white on dark, 40% black on light).
	ColorNameSubtle fyne.ThemeColorName = "wp.subtle"
	// ColorNameChrome is the background of message boxes and app bars
	// (#1F1F1F on dark, #DDDDDD on light).
	ColorNameChrome fyne.ThemeColorName = "wp.chrome"
	// ColorNameDim is the veil drawn over the screen behind a message box.
	ColorNameDim fyne.ThemeColorName = "wp.dim"
	// ColorNameBorder is the border of buttons, text boxes and switches
	// (the foreground colour, a little softened).
	ColorNameBorder fyne.ThemeColorName = "wp.border"
)

// Theme is the Windows Phone 8 look, dark or light, with an accent colour.
// It is immutable: make a new one with New to change either.
type Theme struct {
	dark   bool
	accent color.Color
}

var _ fyne.Theme = (*Theme)(nil)

// New returns the dark (black background) or light (white background) theme
// with the given accent colour; nil means accent.Default.
func New(dark bool, c color.Color) *Theme {
	return &Theme{dark: dark, accent: accent.Or(c)}
}

// Dark reports whether t is the dark theme.
func (t *Theme) Dark() bool { return t.dark }

// Accent returns t's accent colour.
func (t *Theme) Accent() color.Color { return t.accent }

func gray(v, a uint8) color.NRGBA { return color.NRGBA{R: v, G: v, B: v, A: a} }

// withAlpha returns c with alpha a.
func withAlpha(c color.Color, a uint8) color.NRGBA {
	n := color.NRGBAModel.Convert(c).(color.NRGBA)
	n.A = a
	return n
}

// Color returns the colour called n. The variant is ignored (see the
// package documentation).
func (t *Theme) Color(n fyne.ThemeColorName, _ fyne.ThemeVariant) color.Color {
	switch n {
	case theme.ColorNamePrimary, theme.ColorNameHyperlink:
		return t.accent
	case theme.ColorNameFocus:
		return withAlpha(t.accent, 0xCC)
	case theme.ColorNameSelection:
		return withAlpha(t.accent, 0x66)
	case theme.ColorNameForegroundOnPrimary, theme.ColorNameForegroundOnError, theme.ColorNameForegroundOnSuccess:
		return color.White
	case theme.ColorNameForegroundOnWarning:
		return color.Black
	case theme.ColorNameError:
		return accent.Red
	case theme.ColorNameSuccess:
		return accent.Green
	case theme.ColorNameWarning:
		return accent.Amber
	case theme.ColorNameShadow, theme.ColorNameScrollBarBackground:
		return color.Transparent
	}
	if t.dark {
		return darkColor(n)
	}
	return lightColor(n)
}

func darkColor(n fyne.ThemeColorName) color.Color {
	switch n {
	case theme.ColorNameBackground:
		return color.Black
	case theme.ColorNameForeground:
		return color.White
	case ColorNameSubtle, theme.ColorNameDisabled, theme.ColorNamePlaceHolder:
		return gray(0xFF, 0x99)
	case ColorNameChrome, theme.ColorNameMenuBackground, theme.ColorNameOverlayBackground, theme.ColorNameHeaderBackground:
		return gray(0x1F, 0xFF)
	case ColorNameDim:
		return gray(0x00, 0xB3)
	case ColorNameBorder:
		return gray(0xFF, 0xBF)
	case theme.ColorNameInputBackground:
		return gray(0x14, 0xFF)
	case theme.ColorNameInputBorder:
		return gray(0x5C, 0xFF)
	case theme.ColorNameButton:
		return gray(0x2B, 0xFF)
	case theme.ColorNameDisabledButton:
		return gray(0x1A, 0xFF)
	case theme.ColorNameHover:
		return gray(0xFF, 0x1F)
	case theme.ColorNamePressed:
		return gray(0xFF, 0x33)
	case theme.ColorNameSeparator:
		return gray(0x33, 0xFF)
	case theme.ColorNameScrollBar:
		return gray(0xFF, 0x66)
	}
	return color.White
}

func lightColor(n fyne.ThemeColorName) color.Color {
	switch n {
	case theme.ColorNameBackground:
		return color.White
	case theme.ColorNameForeground:
		return color.Black
	case ColorNameSubtle, theme.ColorNameDisabled, theme.ColorNamePlaceHolder:
		return gray(0x00, 0x66)
	case ColorNameChrome, theme.ColorNameMenuBackground, theme.ColorNameOverlayBackground, theme.ColorNameHeaderBackground:
		return gray(0xDD, 0xFF)
	case ColorNameDim:
		return gray(0xFF, 0xB3)
	case ColorNameBorder:
		return gray(0x00, 0xBF)
	case theme.ColorNameInputBackground:
		return gray(0xF2, 0xFF)
	case theme.ColorNameInputBorder:
		return gray(0xA0, 0xFF)
	case theme.ColorNameButton:
		return gray(0xE0, 0xFF)
	case theme.ColorNameDisabledButton:
		return gray(0xEE, 0xFF)
	case theme.ColorNameHover:
		return gray(0x00, 0x14)
	case theme.ColorNamePressed:
		return gray(0x00, 0x29)
	case theme.ColorNameSeparator:
		return gray(0xCC, 0xFF)
	case theme.ColorNameScrollBar:
		return gray(0x00, 0x66)
	}
	return color.Black
}

// Font returns fyne's bundled font for style.
func (t *Theme) Font(style fyne.TextStyle) fyne.Resource { return theme.DefaultTheme().Font(style) }

// Icon returns fyne's icon called n.
func (t *Theme) Icon(n fyne.ThemeIconName) fyne.Resource { return theme.DefaultTheme().Icon(n) }

// Size returns the size called n: flat (no rounded corners), thin borders
// and slightly larger text than fyne's default.
func (t *Theme) Size(n fyne.ThemeSizeName) float32 {
	switch n {
	case theme.SizeNameText:
		return 15
	case theme.SizeNameHeadingText:
		return 28
	case theme.SizeNameSubHeadingText:
		return 20
	case theme.SizeNameCaptionText:
		return 12
	case theme.SizeNameInputRadius, theme.SizeNameSelectionRadius, theme.SizeNameScrollBarRadius:
		return 0
	case theme.SizeNameInputBorder:
		return 2
	case theme.SizeNameScrollBar:
		return 6
	case theme.SizeNameScrollBarSmall:
		return 3
	}
	return theme.DefaultTheme().Size(n)
}
