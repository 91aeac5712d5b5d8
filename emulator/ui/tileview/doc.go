// Package tileview draws the live tiles of a Windows Phone 8 start screen:
// Tile is a fyne widget that shows a tile.State.
//
// # Widget
//
// Tile renders a tile.State at one of the three sizes,
// Small (159×159 WP8 pixels), Medium (336×336) and Wide (691×336), in fyne
// logical units of DefaultScale per WP8 pixel (a medium tile is 150 units).
// It is drawn as the phone draws it: a flat square in the user's accent
// colour with no rounded corners, the app's images stretched over it (a
// missing image leaves the flat colour), white text in the theme's font:
//
//   - FlipTile and WP7.5 front: BackgroundImage, Title at the bottom left,
//     Count in a square badge at the top right when 1..99. Back:
//     BackBackgroundImage, BackContent wrapped to three lines at the top
//     left, BackTitle at the bottom left. Each size draws its own elements,
//     as Microsoft's flip tile tables give them (BackContent is medium
//     only, WideBackContent wide only):
//   - small: SmallBackgroundImage or, when it is unset or does not
//     resolve, BackgroundImage (the same square picture, smaller); no
//     title, no back.
//   - wide: WideBackgroundImage, Title; back WideBackBackgroundImage,
//     WideBackContent, BackTitle. No medium element stands in for a
//     missing wide one: a square image would be stretched out of shape,
//     and BackContent is written for 13 characters a line, not 27. A
//     missing wide image leaves the flat colour.
//   - A WP7.5 tile is never wide (tile.Allows): it has no wide elements.
//   - CycleTile: the current CycleImage cropped to the tile, Title and Count
//     as on a flip tile; the small size shows SmallBackgroundImage.
//   - IconicTile: IconImage (SmallIconImage on the small size) with Count
//     beside it, on BackgroundColor when it is opaque (#FFRRGGBB) or the
//     accent colour; on the wide size with any WideContent, WideContent1..3
//     at the top left and the small icon and count at the bottom right.
//
// Titles are cut at TitleChars (WideTitleChars on wide tiles), and each
// WideContent line at WideContentChars (tile.State.WideContent), then to
// the tile's width; small tiles show no title. Small tiles, cycle tiles and iconic tiles never flip.
//
// The widget has no timers: the start screen calls Flip and NextImage on
// its own schedule (the phone flips every few seconds, at staggered times).
// Images come from an ImageSource, so the caller decides how app-relative
// paths and remote URLs are resolved.
package tileview
