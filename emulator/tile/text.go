package tile

import (
	"strings"
	"unicode/utf8"

	"github.com/openmpns/openmpns/shared/payload"
)

// Character limits of the text on a tile, as the phone shows them.
const (
	TitleChars           = 19 // Title and BackTitle, medium
	WideTitleChars       = 39 // Title and BackTitle, wide
	WideContentChars     = 39 // each of WideContent1..3, wide iconic: as long as a wide title
	BackContentChars     = 13 // characters per BackContent line, medium
	WideBackContentChars = 27 // characters per WideBackContent line, wide
	BackContentLines     = 3  // lines of (Wide)BackContent
)

// Truncate cuts s to at most n runes. The phone clips tile titles at the
// tile's edge without an ellipsis.
func Truncate(s string, n int) string {
	s = strings.TrimSpace(s)
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return strings.TrimRight(string([]rune(s)[:n]), " ")
}

// WideContent returns WideContent1, WideContent2 and WideContent3 as a
// wide iconic tile shows them, and the lock screen after it: each on one
// line (runs of white space, line breaks too, made one space), cut at
// WideContentChars.
func (s *State) WideContent() [3]string {
	var lines [3]string
	for i, name := range []string{payload.WideContent1, payload.WideContent2, payload.WideContent3} {
		lines[i] = Truncate(strings.Join(strings.Fields(s.Get(name)), " "), WideContentChars)
	}
	return lines
}

// Wrap breaks s into at most maxLines lines of at most width runes, at
// spaces where it can and inside words longer than a line. Explicit line
// breaks in s are kept. What does not fit is dropped.
func Wrap(s string, width, maxLines int) []string {
	var lines []string
	for _, para := range strings.Split(strings.ReplaceAll(s, "\r\n", "\n"), "\n") {
		line := []rune{}
		flush := func() {
			lines = append(lines, string(line))
			line = line[:0]
		}
		for _, word := range strings.Fields(para) {
			w := []rune(word)
			for len(w) > 0 {
				switch {
				case len(line) == 0 && len(w) <= width:
					line = append(line, w...)
					w = nil
				case len(line) > 0 && len(line)+1+len(w) <= width:
					line = append(append(line, ' '), w...)
					w = nil
				case len(line) > 0:
					flush()
				default: // a word longer than a line: hard break
					line = append(line, w[:width]...)
					w = w[width:]
					flush()
				}
			}
		}
		if len(line) > 0 || len(strings.TrimSpace(para)) == 0 {
			flush()
		}
		if len(lines) >= maxLines {
			break
		}
	}
	// Drop trailing empty lines, then what does not fit.
	for len(lines) > 0 && lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	if len(lines) == 0 {
		return nil
	}
	return lines[:min(len(lines), maxLines)]
}
