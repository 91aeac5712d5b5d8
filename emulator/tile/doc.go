// Package tile is the live tiles of a Windows Phone 8 start screen without a
// screen: what a tile holds, the sizes a user can give it, and how much of
// its text it shows. It has no UI; emulator/ui/tileview draws a State.
//
// # State
//
// State is pure Go: the template and element values of one pinned tile, into
// which tile notifications (payload.Tile) are merged with State.Apply, the
// way the phone merges them. Set elements overwrite, cleared ones
// (Action="Clear") return to the tile's defaults, and a payload of another
// template switches the tile to it, keeping the elements both templates
// define. A real WP8 phone rejects a template change ("Template type
// mismatch"); the emulator accepts it so that a developer sees the payload
// they sent. A WP7.5 payload (no Template attribute) sent to a FlipTile
// updates it as a FlipTile, as the phone does.
//
// # Sizes and text
//
// Size is small, medium or wide (Size.Pixels gives the WXGA pixels);
// Allows and Next say which sizes a template offers the user (a WP7.5 tile
// is never wide). Truncate and Wrap cut Title, BackContent and
// WideBackContent as the phone does, to the limits in TitleChars and the
// other constants; State.WideContent cuts an iconic tile's WideContent1..3
// to WideContentChars, for the wide tile and the lock screen alike.
//
// # Image references
//
// IsRemote tells an image the phone downloads (http, https) from one the
// app ships with, which AppPath turns into a path in the app's files.
package tile
