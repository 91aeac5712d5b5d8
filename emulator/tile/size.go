package tile

import (
	"fmt"

	"github.com/openmpns/openmpns/shared/payload"
)

// Size is one of the three sizes a user can give a WP8 start-screen tile.
type Size uint8

// The tile sizes, smallest first. The zero value is Small.
const (
	Small Size = iota
	Medium
	Wide
)

// GapPixels is the gap between two tiles in WP8 pixels: two small tiles and a
// gap make a medium tile (2×159+18 = 336).
const GapPixels = 18

// Pixels returns the width and height of a tile of size s in WP8 (WXGA)
// pixels: 159×159, 336×336 or 691×336.
func (s Size) Pixels() (w, h int) {
	switch s {
	case Medium:
		return 336, 336
	case Wide:
		return 691, 336
	}
	return 159, 159
}

// String returns "small", "medium" or "wide".
func (s Size) String() string {
	switch s {
	case Small:
		return "small"
	case Medium:
		return "medium"
	case Wide:
		return "wide"
	}
	return fmt.Sprintf("size(%d)", uint8(s))
}

// ParseSize is the inverse of Size.String.
func ParseSize(v string) (Size, error) {
	switch v {
	case "small":
		return Small, nil
	case "medium":
		return Medium, nil
	case "wide":
		return Wide, nil
	}
	return 0, fmt.Errorf("tile: unknown size %q (want small, medium or wide)", v)
}

// Allows reports whether a user can give a tile of template t the size s.
// Every template can be small or medium; a WP7.5 tile (payload.
// TemplateDefault) cannot be wide: it has no wide elements, the phone does
// not offer the size, and the manifest refuses it.
func Allows(t payload.Template, s Size) bool {
	switch s {
	case Small, Medium:
		return true
	case Wide:
		return t != payload.TemplateDefault
	}
	return false
}

// Next is the size a tile of template t goes to when the user taps the
// resize arrow in edit mode: medium, small, wide, medium again, skipping
// the sizes t does not allow.
func Next(t payload.Template, s Size) Size {
	for range 3 {
		switch s {
		case Medium:
			s = Small
		case Small:
			s = Wide
		default:
			s = Medium
		}
		if Allows(t, s) {
			return s
		}
	}
	return Medium
}
