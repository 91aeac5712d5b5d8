package controls

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"fyne.io/fyne/v2/theme"
)

// SectionTitle heads a group on a page, thin and large.
func SectionTitle(s string) *TextBlock {
	return NewLightText(s, FontLarge, theme.ColorNameForeground)
}

// ByteCount says how long a payload is: "1 byte", "12 bytes".
func ByteCount(n int) string {
	if n == 1 {
		return "1 byte"
	}
	return fmt.Sprintf("%d bytes", n)
}

// Preview returns what a list shows of a raw payload: its text, on one line,
// cut at n characters, when it is printable UTF-8; otherwise its first bytes
// in hex ("00 ff 1a …").
func Preview(data []byte, n int) string {
	if len(data) == 0 {
		return "(empty)"
	}
	if utf8.Valid(data) && Printable(string(data)) {
		s := strings.Join(strings.Fields(string(data)), " ")
		if r := []rune(s); len(r) > n {
			return string(r[:n-1]) + "…"
		}
		return s
	}
	k := min(len(data), max(1, n/3))
	var b strings.Builder
	for i, c := range data[:k] {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%02x", c)
	}
	if k < len(data) {
		b.WriteString(" …")
	}
	return b.String()
}

// Clip cuts s to at most n runes, the last an ellipsis, when it is
// longer; n must be at least 1. Text from a notification is clipped before
// it is laid out: a sender controls its length, and laying text out costs
// in proportion to it on the UI goroutine.
func Clip(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return strings.TrimRight(string([]rune(s)[:n-1]), " ") + "…"
}

// Printable reports whether s has only printable characters and spaces.
func Printable(s string) bool {
	for _, r := range s {
		if !unicode.IsPrint(r) && !unicode.IsSpace(r) {
			return false
		}
	}
	return true
}
