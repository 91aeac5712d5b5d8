package controls

import (
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/test"
	"fyne.io/fyne/v2/theme"

	"github.com/openmpns/openmpns/emulator/ui/internal/uitest"
)

// counter is a measure for wrapText in which every character is one unit
// wide, and which counts the characters it measured: the work of laying
// text out, which on the UI goroutine is text shaping.
type counter struct{ chars int }

func (c *counter) measure(s string) float32 {
	n := utf8.RuneCountInString(s)
	c.chars += n
	return float32(n)
}

// longURL is a MessageBadContent error naming a remote image URL as long
// as a 3,072-byte tile payload allows: one word of about 2,900 characters.
func longURL() string {
	return "MessageBadContent: http://evil.example/" + strings.Repeat("W", 2900)
}

// TestWrapTextBreaksALongWordInNLogNWork: a sender's long unbroken word
// (the URL in a MessageBadContent error, a foreground toast's Text1 or
// Param) is wrapped on the UI goroutine. Each break is found by a search
// over prefix widths, so the word costs about n·log(line) characters of
// measuring, not the cubic work of trying ever shorter prefixes from its
// end (22 s for one error row of the app page under fyne's test driver).
func TestWrapTextBreaksALongWordInNLogNWork(t *testing.T) {
	const perLine = 25 // a page line holds about 25 wide characters
	s := longURL()
	n := utf8.RuneCountInString(s)
	var c counter
	lines, cut := wrapText(s, perLine, 0, c.measure)
	if cut {
		t.Error("cut without a line limit")
	}
	// Every character is kept, every line but the last is as long as fits.
	word := strings.Fields(s)[1]
	if got := strings.Join(lines[1:], ""); got != word {
		t.Errorf("the lines after the first are not the word: %d characters of %d", utf8.RuneCountInString(got), len(word))
	}
	for i, l := range lines[1 : len(lines)-1] {
		if utf8.RuneCountInString(l) != perLine {
			t.Fatalf("line %d has %d characters, want %d", i+1, utf8.RuneCountInString(l), perLine)
		}
	}
	// A search per break measures about n·log2(perLine) characters (under
	// 20n here); trying prefixes from the end measured over 500n.
	if limit := 20 * n; c.chars > limit {
		t.Errorf("wrapping %d characters, one long word after the first, measured %d (%.0f× its length); want at most %d", n, c.chars, float64(c.chars)/float64(n), limit)
	}
}

// TestWrapTextStopsAtMaxLines: a row of one line lays out that line, not
// the whole text: past the first maxLines lines nothing is measured. The
// long word is measured once, whole, to find it does not fit.
func TestWrapTextStopsAtMaxLines(t *testing.T) {
	const perLine = 25
	words := strings.Repeat("lorem ipsum dolor sit amet ", 110) // 2,970 characters
	tests := []struct {
		name     string
		s        string
		maxLines int
		want     []string
		limit    int // characters measured
	}{
		{"long word, one line", longURL(), 1, []string{"MessageBadContent:"}, 3000 + 20*perLine},
		{"long word, two lines", longURL(), 2, []string{"MessageBadContent:", "http://evil.example/WWWWW"}, 3000 + 40*perLine},
		{"many words, one line", words, 1, []string{"lorem ipsum dolor sit"}, 10 * perLine},
		{"many words, three lines", words, 3, []string{"lorem ipsum dolor sit", "amet lorem ipsum dolor", "sit amet lorem ipsum"}, 30 * perLine},
		{"paragraphs, one line", "one\ntwo", 1, []string{"one"}, 100},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c counter
			lines, cut := wrapText(tt.s, perLine, tt.maxLines, c.measure)
			if !slices.Equal(lines, tt.want) || !cut {
				t.Errorf("wrapText = %q, %v; want %q, true", lines, cut, tt.want)
			}
			if c.chars > tt.limit {
				t.Errorf("measured %d characters for %d lines of %d; want at most %d", c.chars, tt.maxLines, perLine, tt.limit)
			}
		})
	}
}

func TestWrapTextKeepsWhatFits(t *testing.T) {
	tests := []struct {
		s        string
		maxLines int
		want     []string
		cut      bool
	}{
		{"", 0, []string{""}, false},
		{"short", 1, []string{"short"}, false},
		{"one two three", 2, []string{"one two", "three"}, false},
		{"one two three", 1, []string{"one two"}, true},
		{"abcdefghijk", 0, []string{"abcdefg", "hijk"}, false},
		{"abcdefghijklmn", 2, []string{"abcdefg", "hijklmn"}, false},
		{"abcdefghijklmno", 2, []string{"abcdefg", "hijklmn"}, true},
		{"a\r\n\nb", 0, []string{"a", "", "b"}, false},
	}
	for _, tt := range tests {
		var c counter
		lines, cut := wrapText(tt.s, 7, tt.maxLines, c.measure)
		if !slices.Equal(lines, tt.want) || cut != tt.cut {
			t.Errorf("wrapText(%q, 7, %d) = %q, %v; want %q, %v", tt.s, tt.maxLines, lines, cut, tt.want, tt.cut)
		}
	}
}

// TestFitRunes: the longest prefix that fits, with its suffix, in any
// width (including none and all), from any guess; and from a good guess,
// in two measurements.
func TestFitRunes(t *testing.T) {
	r := []rune("abcdefghijklmnopqrstuvwxyz")
	for width := 0; width <= len(r)+2; width++ {
		for _, suffix := range []string{"", "…"} {
			want := min(len(r), max(0, width-utf8.RuneCountInString(suffix)))
			for _, guess := range []int{-1, 0, 1, 5, 13, len(r) - 1, len(r), len(r) + 5} {
				var c counter
				if got := fitRunes(r, suffix, float32(width), guess, c.measure); got != want {
					t.Errorf("fitRunes(%d runes, %q, width %d, guess %d) = %d, want %d", len(r), suffix, width, guess, got, want)
				}
			}
		}
	}
	var c counter
	if got := fitRunes(r, "", 10, 10, c.measure); got != 10 || c.chars != 21 {
		t.Errorf("fitRunes from the answer = %d after measuring %d characters; want 10 after 21 (10 and 11)", got, c.chars)
	}
}

// TestParagraphEndsWithAnEllipsis: a paragraph of one line, as the app
// page's rows are, shows the start of a long error, cut to the page's
// width with an ellipsis.
func TestParagraphEndsWithAnEllipsis(t *testing.T) {
	uitest.App(t, true)
	p := NewParagraph(longURL(), FontNormal, theme.ColorNameForeground, PageWidth, 1)
	objs := test.WidgetRenderer(p).Objects()
	if len(objs) != 1 {
		t.Fatalf("%d lines drawn, want 1", len(objs))
	}
	line := objs[0].(*canvas.Text).Text
	if line != "MessageBadContent:…" {
		t.Errorf("line %q, want %q", line, "MessageBadContent:…")
	}
	p.SetText(strings.Repeat("W", 2900))
	line = test.WidgetRenderer(p).Objects()[0].(*canvas.Text).Text
	if !strings.HasSuffix(line, "…") || !strings.HasPrefix(line, "WWW") {
		t.Errorf("line %q, want W… with an ellipsis", line)
	}
	if w := fyne.MeasureText(line, FontNormal, fyne.TextStyle{}).Width; w > PageWidth {
		t.Errorf("line %q is %v wide, more than the page's %v", line, w, PageWidth)
	}
	if w := fyne.MeasureText("W"+line, FontNormal, fyne.TextStyle{}).Width; w <= PageWidth {
		t.Errorf("line %q is cut shorter than the page's width: one more W fits", line)
	}
}

// benchWord is a word of n letters and digits that differ from seed to
// seed: fyne caches the sizes of texts it measured, and a word of one
// repeated letter, or the same word every iteration, would be measured
// from that cache.
func benchWord(n int, seed uint64) string {
	const letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	b := make([]byte, n)
	x := seed*0x9E3779B97F4A7C15 + 1
	for i := range b {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		b[i] = letters[x%uint64(len(letters))]
	}
	return string(b)
}

// BenchmarkWrapTextLongWord wraps a 500-character word (a URL) at the
// page's width in the page's font, measured by fyne's test driver. Beside
// the time it reports the characters measured (chars/op), which do not
// depend on the machine's load.
func BenchmarkWrapTextLongWord(b *testing.B) {
	uitest.App(b, true)
	p := NewParagraph("", FontNormal, theme.ColorNameForeground, PageWidth, 0)
	chars := 0
	width := func(s string) float32 {
		chars += utf8.RuneCountInString(s)
		return p.measure(s).Width
	}
	for i := range b.N {
		wrapText(benchWord(500, uint64(i)), PageWidth, 0, width)
	}
	b.ReportMetric(float64(chars)/float64(b.N), "chars/op")
}
