package tile

import "github.com/openmpns/openmpns/shared/payload"

// What a Windows Phone 8 lock screen takes from an app's primary tile
// (Microsoft's "Lock screen notifications for Windows Phone 8"): the
// user picks one app for the detailed status, whose text shows under the
// clock, and up to five for the quick status, whose icon (the app's, not
// the tile's) shows with its count. Only the primary tile counts, and only
// what it shows: no count, no quick status; no text, no detailed status.
const (
	// LockLines is the most lines of detailed status text.
	LockLines = 3
	// LockQuickApps is the most apps with a quick status.
	LockQuickApps = 5
)

// LockCount is the count the lock screen shows beside the app's icon when
// s is its primary tile: the tile's Count as the tile shows it (1..99), 0
// for none (the app then shows nothing there). Every template has a Count.
func (s *State) LockCount() int { return s.Count() }

// LockText is the detailed status text the lock screen shows when s is the
// app's primary tile, at most LockLines lines:
//
//   - FlipTile: WideBackContent, in the lines the wide tile's back shows it
//     (wrapped at WideBackContentChars);
//   - IconicTile: WideContent1, WideContent2 and WideContent3, a line each,
//     as the wide tile shows them (State.WideContent: cut at
//     WideContentChars; an empty one in the middle stays);
//   - CycleTile and the WP7.5 tile have no element for it: nothing.
//
// The lock screen then cuts a line wider than the screen, with an ellipsis
// (emulator/ui/lockscreen).
func (s *State) LockText() []string {
	var lines []string
	switch s.Template {
	case payload.TemplateFlip:
		lines = Wrap(s.Get(payload.WideBackContent), WideBackContentChars, LockLines)
	case payload.TemplateIconic:
		c := s.WideContent()
		lines = c[:]
	}
	for len(lines) > 0 && lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	return lines
}
