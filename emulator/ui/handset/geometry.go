package handset

import "github.com/openmpns/openmpns/emulator/ui/controls"

// The phone body around the screen.
const (
	bezelSide   = 16
	bezelTop    = 56
	bezelBottom = 72
	// PhoneWidth and PhoneHeight are the Phone widget's size, bezel included.
	PhoneWidth  = controls.ScreenWidth + 2*bezelSide
	PhoneHeight = controls.ScreenHeight + bezelTop + bezelBottom
)
