// Package controls holds what the emulated phone's screens are made of:
// Windows Phone 8's controls (TextBlock, Button, Toggle, RoundButton, the
// glyphs, Pivot, MessageBox), a page with its app name and title (Page),
// the type ramp and margins, and the phone's scale: everything is designed
// in Windows Phone's logical units for a 480-unit wide screen, and drawn k
// times larger on a phone drawn k times larger (see Scaler).
package controls

// The phone's screen in fyne logical units: Windows Phone 8's own logical
// resolution (WVGA, 480×800), whatever the handset's pixels.
const (
	ScreenWidth  = 480
	ScreenHeight = 800
	// StatusBarHeight is the height of the status bar (the system tray).
	StatusBarHeight = 32
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

// MinScale is the smallest scale the phone is drawn at: the handset's
// minimum size is its size at scale 1 times MinScale, and a screen never
// gets narrower than ScreenWidth×MinScale.
const MinScale = 0.5
