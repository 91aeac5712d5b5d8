package tile

import (
	"fmt"
	"math"
	"strings"
)

// LogicalWidth is the width of every Windows Phone 8 screen in logical
// units (XAML's "pixels"): the phone lays out for 480 and scales to its
// panel's pixels.
const LogicalWidth = 480

// Profile is a Windows Phone 8 screen, as a developer chooses one to see
// their tiles on it: its panel's pixels, how many pixels a logical unit is,
// and the start screen's grid.
//
// Microsoft's phones had four screens: WVGA (480×800, a scale factor of 1),
// WXGA (768×1280, 1.6) and 720p (720×1280, 1.5), and from GDR3 1080p
// (1080×1920, 2.25). WVGA and WXGA are 15:9, 480×800 logical units; 720p
// and 1080p are 16:9, 480×853. The start screen is four small tiles wide
// (two medium), except on 1080p, which shows six (three medium across);
// Windows Phone 8.1's "show more tiles" setting gives the smaller screens
// the six columns too (MoreTiles).
type Profile struct {
	// Name is how the profile is chosen: "wvga", "wxga", "720p", "1080p".
	Name string
	// Width and Height are the panel's pixels, portrait.
	Width, Height int
	// Scale is pixels per logical unit: Width / LogicalWidth.
	Scale float32
	// Columns is the number of small-tile columns of the start screen, 4
	// or 6.
	Columns int
}

// The Windows Phone 8 screens.
var (
	WVGA   = Profile{Name: "wvga", Width: 480, Height: 800, Scale: 1, Columns: 4}
	WXGA   = Profile{Name: "wxga", Width: 768, Height: 1280, Scale: 1.6, Columns: 4}
	HD720  = Profile{Name: "720p", Width: 720, Height: 1280, Scale: 1.5, Columns: 4}
	HD1080 = Profile{Name: "1080p", Width: 1080, Height: 1920, Scale: 2.25, Columns: 6}
)

// DefaultProfile is the screen the emulator starts with.
var DefaultProfile = WVGA

// Profiles returns the four screens, smallest first.
func Profiles() []Profile { return []Profile{WVGA, WXGA, HD720, HD1080} }

// LookupProfile returns the profile called name (any case; "hd720" and
// "hd1080" are accepted too).
func LookupProfile(name string) (Profile, error) {
	n := strings.ToLower(strings.TrimSpace(name))
	if rest, ok := strings.CutPrefix(n, "hd"); ok {
		n = strings.TrimSuffix(rest, "p") + "p"
	}
	for _, p := range Profiles() {
		if p.Name == n {
			return p, nil
		}
	}
	return Profile{}, fmt.Errorf("tile: unknown screen profile %q (want wvga, wxga, 720p or 1080p)", name)
}

// String is the profile's name and pixels, as Settings lists it: "WXGA
// 768×1280", with "more tiles" when it has six columns on a screen that
// has four by default.
func (p Profile) String() string {
	s := fmt.Sprintf("%s %d×%d", strings.ToUpper(p.Name), p.Width, p.Height)
	if p.Columns == 6 && p.Name != HD1080.Name {
		s += ", more tiles"
	}
	return s
}

// MoreTiles returns p with Windows Phone 8.1's "show more tiles" set (six
// columns) or not (four, except on 1080p, which always has six).
func (p Profile) MoreTiles(on bool) Profile {
	switch {
	case p.Name == HD1080.Name:
		p.Columns = 6
	case on:
		p.Columns = 6
	default:
		p.Columns = 4
	}
	return p
}

// LogicalHeight is the screen's height in logical units: 800 on a 15:9
// screen, 853⅓ on a 16:9 one.
func (p Profile) LogicalHeight() float32 {
	return float32(p.Height) / p.Scale
}

// Grid is the start screen's grid in logical units: Columns columns of
// small tiles with gaps between them, centred on the 480-unit screen. A
// medium tile is two small ones and a gap; a wide one is two medium ones
// and a gap.
type Grid struct {
	// Columns is 4 or 6.
	Columns int
	// Small, Medium, Wide and Gap are in logical units.
	Small, Medium, Wide, Gap float32
}

// The four-column grid is Microsoft's WXGA tile geometry (small 159,
// medium 336, wide 691×336 pixels, 18 between tiles) in logical units,
// 1.6 pixels each.
const (
	smallUnits  = 159.0 / 1.6
	mediumUnits = 336.0 / 1.6
	wideUnits   = 691.0 / 1.6
	gapUnits    = 18.0 / 1.6
)

// Grid returns the start screen's grid on p. On four columns it is
// Microsoft's WXGA geometry (small 99⅜ units, medium 210, wide 431⅞, gap
// 11¼); on six the gap stays and three medium tiles fill the width a wide
// tile has on four (medium 136.5, small 62.6, wide 284.2).
func (p Profile) Grid() Grid {
	if p.Columns != 6 {
		return Grid{Columns: 4, Small: smallUnits, Medium: mediumUnits, Wide: wideUnits, Gap: gapUnits}
	}
	m := float32(wideUnits-2*gapUnits) / 3
	return Grid{Columns: 6, Small: (m - gapUnits) / 2, Medium: m, Wide: 2*m + gapUnits, Gap: gapUnits}
}

// Width is the width of the tiles: that of a wide tile on four columns.
func (g Grid) Width() float32 { return wideUnits }

// Left is the grid's left margin in logical units.
func (g Grid) Left() float32 { return (LogicalWidth - wideUnits) / 2 }

// Step is the distance from one column (or row) to the next.
func (g Grid) Step() float32 { return g.Small + g.Gap }

// Extent returns the width and height of a tile of size s in logical
// units.
func (g Grid) Extent(s Size) (w, h float32) {
	switch s {
	case Medium:
		return g.Medium, g.Medium
	case Wide:
		return g.Wide, g.Medium
	}
	return g.Small, g.Small
}

// TileScale is the number of logical units per tile design pixel
// (Size.Pixels, the WXGA figures: a medium tile is 336) on the grid: a
// tile, its images, its text and its margins are drawn from one design at
// every size it is shown, as the phone resizes a tile's images.
func (g Grid) TileScale() float32 { return g.Medium / 336 }

// TilePixels returns the pixels a tile of size s covers on p's screen, its
// extent on the grid times the profile's scale, rounded: Microsoft's
// figures on WXGA (159, 336, 691×336); 99, 210, 432×210 on WVGA; 149, 315,
// 648×315 on 720p; 141, 307, 639×307 on 1080p's six columns.
func (p Profile) TilePixels(s Size) (w, h int) {
	ew, eh := p.Grid().Extent(s)
	return int(math.Round(float64(ew * p.Scale))), int(math.Round(float64(eh * p.Scale)))
}
