package ui

import "github.com/openmpns/openmpns/emulator/tile"

// The phone's screen in fyne logical units: Windows Phone 8's own logical
// resolution (WVGA, 480×800), whatever the handset's pixels.
const (
	ScreenWidth  = 480
	ScreenHeight = 800
	// StatusBarHeight is the height of the status bar (the system tray).
	StatusBarHeight = 32
	// ContentHeight is the height left for a screen under the status bar.
	ContentHeight = ScreenHeight - StatusBarHeight
)

// MinScale is the smallest scale the Phone is drawn at: its minimum size is
// PhoneWidth×PhoneHeight times MinScale.
const MinScale = 0.5

// The phone body around the screen.
const (
	bezelSide   = 16
	bezelTop    = 56
	bezelBottom = 72
	// PhoneWidth and PhoneHeight are the Phone widget's size, bezel included.
	PhoneWidth  = ScreenWidth + 2*bezelSide
	PhoneHeight = ScreenHeight + bezelTop + bezelBottom
)

// Windows Phone's type ramp at 480 logical units wide (PhoneFontSize*).
const (
	FontSmall       = 18 // PhoneFontSizeSmall, 18.667
	FontNormal      = 20 // PhoneFontSizeNormal
	FontMedium      = 22 // PhoneFontSizeMedium, 22.667
	FontMediumLarge = 25 // PhoneFontSizeMediumLarge, 25.333
	FontLarge       = 32 // PhoneFontSizeLarge
	FontExtraLarge  = 42 // PhoneFontSizeExtraLarge, 42.667
	FontTitle       = 72 // PhoneFontSizeExtraExtraLarge: page titles
)

// Page margins: a page's text starts 24 units from the left edge
// (LayoutRoot's 12 plus TextBlock's 12).
const (
	MarginLeft  = 24
	MarginRight = 24
	PageWidth   = ScreenWidth - MarginLeft - MarginRight
)

// The start screen grid at WVGA: small tiles of 99 units, 12 unit gaps;
// medium 210, wide 432×210 (tile.Size.Pixels times 0.625).
const (
	tileUnit   = 99
	tileGap    = 12
	tileMedium = 2*tileUnit + tileGap
	tileWide   = 4*tileUnit + 3*tileGap
	gridLeft   = (ScreenWidth - tileWide) / 2
	gridTop    = 20
)

// tileScale is the tile widgets' logical units per WP8 pixel on the start
// screen (medium: 336 WP8 pixels → 210 units).
const tileScale float32 = float32(tileMedium) / 336

// tileExtent returns the width and height of a tile of size s in units.
func tileExtent(s tile.Size) (w, h float32) {
	switch s {
	case tile.Medium:
		return tileMedium, tileMedium
	case tile.Wide:
		return tileWide, tileMedium
	}
	return tileUnit, tileUnit
}
