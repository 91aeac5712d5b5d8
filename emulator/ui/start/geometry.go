package start

import (
	"github.com/openmpns/openmpns/emulator/tile"
	"github.com/openmpns/openmpns/emulator/ui/controls"
)

// The start screen grid at WVGA: small tiles of 99 units, 12 unit gaps;
// medium 210, wide 432×210 (tile.Size.Pixels times 0.625).
const (
	tileUnit   = 99
	tileGap    = 12
	tileMedium = 2*tileUnit + tileGap
	tileWide   = 4*tileUnit + 3*tileGap
	gridLeft   = (controls.ScreenWidth - tileWide) / 2
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
