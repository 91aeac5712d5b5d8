package toast

import "strings"

// LineChars is the most characters a toast shows on its line, Text1 and
// Text2 together; longer text is cut with an ellipsis.
const LineChars = 40

// Ellipsis ends a text that was cut.
const Ellipsis = "…"

// Line returns what a phone shows of text1 and text2 on a line of at most n
// characters (the separating space included): text1 whole if it fits, text2
// in the room that is left, each cut with an Ellipsis where it does not fit.
// Text2 is left out when text1 fills the line. Runs of white space, line
// breaks included, count as one space.
func Line(text1, text2 string, n int) (string, string) {
	r1 := []rune(strings.Join(strings.Fields(text1), " "))
	r2 := []rune(strings.Join(strings.Fields(text2), " "))
	switch {
	case n <= 0:
		return "", ""
	case len(r2) == 0:
		return cut(r1, n), ""
	case len(r1) == 0:
		return "", cut(r2, n)
	case len(r1)+2 > n: // no room for a space and a character of text2
		return cut(r1, n), ""
	}
	return string(r1), cut(r2, n-len(r1)-1)
}

// cut returns r when it has at most n runes, else its first n-1 runes and an
// Ellipsis.
func cut(r []rune, n int) string {
	if len(r) <= n {
		return string(r)
	}
	if n <= 0 {
		return ""
	}
	return strings.TrimRight(string(r[:n-1]), " ") + Ellipsis
}
