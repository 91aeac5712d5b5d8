package tile

import (
	"image/color"
	"strconv"
	"strings"

	"github.com/openmpns/openmpns/shared/payload"
)

// BackgroundColor returns an IconicTile's BackgroundColor when it is set,
// valid and opaque (#FFRRGGBB, or #RRGGBB): the colour the phone draws the
// tile in instead of the accent. A translucent or invalid value is
// ignored, as on the phone.
func (s *State) BackgroundColor() (color.NRGBA, bool) {
	if s.Template != payload.TemplateIconic {
		return color.NRGBA{}, false
	}
	c, ok := ParseARGB(s.Get(payload.BackgroundColor))
	if !ok || c.A != 0xFF {
		return color.NRGBA{}, false
	}
	return c, true
}

// ParseARGB parses an IconicTile BackgroundColor: "#AARRGGBB" (or
// "#RRGGBB", taken as opaque).
func ParseARGB(v string) (color.NRGBA, bool) {
	v = strings.TrimPrefix(strings.TrimSpace(v), "#")
	if len(v) == 6 {
		v = "FF" + v
	}
	if len(v) != 8 {
		return color.NRGBA{}, false
	}
	n, err := strconv.ParseUint(v, 16, 32)
	if err != nil {
		return color.NRGBA{}, false
	}
	return color.NRGBA{A: uint8(n >> 24), R: uint8(n >> 16), G: uint8(n >> 8), B: uint8(n)}, true
}
