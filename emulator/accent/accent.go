// Package accent holds the Windows Phone 8 accent colours: the flat colour a
// user picks in Settings > theme, which the start screen uses behind tiles
// whose images are missing or transparent and behind toasts.
package accent

import (
	"image/color"
	"sort"
	"strings"
)

// Default is the accent the emulator starts with: "cobalt", the colour most
// Windows Phone 8 handsets shipped with.
var Default = Cobalt

// The twenty accent colours of Windows Phone 8, with the values of the
// phone's theme resources.
var (
	Lime    = color.NRGBA{R: 0xA4, G: 0xC4, B: 0x00, A: 0xFF}
	Green   = color.NRGBA{R: 0x60, G: 0xA9, B: 0x17, A: 0xFF}
	Emerald = color.NRGBA{R: 0x00, G: 0x8A, B: 0x00, A: 0xFF}
	Teal    = color.NRGBA{R: 0x00, G: 0xAB, B: 0xA9, A: 0xFF}
	Cyan    = color.NRGBA{R: 0x1B, G: 0xA1, B: 0xE2, A: 0xFF}
	Cobalt  = color.NRGBA{R: 0x00, G: 0x50, B: 0xEF, A: 0xFF}
	Indigo  = color.NRGBA{R: 0x6A, G: 0x00, B: 0xFF, A: 0xFF}
	Violet  = color.NRGBA{R: 0xAA, G: 0x00, B: 0xFF, A: 0xFF}
	Pink    = color.NRGBA{R: 0xF4, G: 0x72, B: 0xD0, A: 0xFF}
	Magenta = color.NRGBA{R: 0xD8, G: 0x00, B: 0x73, A: 0xFF}
	Crimson = color.NRGBA{R: 0xA2, G: 0x00, B: 0x25, A: 0xFF}
	Red     = color.NRGBA{R: 0xE5, G: 0x14, B: 0x00, A: 0xFF}
	Orange  = color.NRGBA{R: 0xFA, G: 0x68, B: 0x00, A: 0xFF}
	Amber   = color.NRGBA{R: 0xF0, G: 0xA3, B: 0x0A, A: 0xFF}
	Yellow  = color.NRGBA{R: 0xE3, G: 0xC8, B: 0x00, A: 0xFF}
	Brown   = color.NRGBA{R: 0x82, G: 0x5A, B: 0x2C, A: 0xFF}
	Olive   = color.NRGBA{R: 0x6D, G: 0x87, B: 0x64, A: 0xFF}
	Steel   = color.NRGBA{R: 0x64, G: 0x76, B: 0x87, A: 0xFF}
	Mauve   = color.NRGBA{R: 0x76, G: 0x60, B: 0x8A, A: 0xFF}
	Taupe   = color.NRGBA{R: 0x87, G: 0x79, B: 0x4E, A: 0xFF}
)

var byName = map[string]color.NRGBA{
	"lime": Lime, "green": Green, "emerald": Emerald, "teal": Teal,
	"cyan": Cyan, "cobalt": Cobalt, "indigo": Indigo, "violet": Violet,
	"pink": Pink, "magenta": Magenta, "crimson": Crimson, "red": Red,
	"orange": Orange, "amber": Amber, "yellow": Yellow, "brown": Brown,
	"olive": Olive, "steel": Steel, "mauve": Mauve, "taupe": Taupe,
}

// Lookup returns the accent colour with the given name ("cobalt", "Lime",
// ...; case is ignored) and whether there is one.
func Lookup(name string) (color.NRGBA, bool) {
	c, ok := byName[strings.ToLower(strings.TrimSpace(name))]
	return c, ok
}

// Names returns the names Lookup accepts, sorted.
func Names() []string {
	names := make([]string, 0, len(byName))
	for n := range byName {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Or returns c, or Default when c is nil. Widgets use it for their Accent
// field's zero value.
func Or(c color.Color) color.Color {
	if c == nil {
		return Default
	}
	return c
}
