package handset

import (
	"fyne.io/fyne/v2"

	"github.com/openmpns/openmpns/emulator/tile"
	"github.com/openmpns/openmpns/emulator/ui/controls"
)

// The phone body around the screen.
const (
	bezelSide   = 16
	bezelTop    = 56
	bezelBottom = 72
	// PhoneWidth and PhoneHeight are the Phone widget's size at scale 1,
	// bezel included, with a 15:9 screen (WVGA, WXGA); BodySize gives it
	// for the Phone's profile.
	PhoneWidth  = controls.ScreenWidth + 2*bezelSide
	PhoneHeight = controls.ScreenHeight + bezelTop + bezelBottom
)

// The power button on the body's right side: from powerTop down,
// powerLength long.
const (
	powerTop    = 180
	powerLength = 56
)

// bodySize is the phone's body at scale 1 around a screen of profile p.
func bodySize(p tile.Profile) fyne.Size {
	return fyne.NewSize(PhoneWidth, p.LogicalHeight()+bezelTop+bezelBottom)
}
