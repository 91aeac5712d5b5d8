package tileview

import (
	"strings"
	"testing"
	"unicode/utf8"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/test"

	"github.com/openmpns/openmpns/emulator/tile"
	"github.com/openmpns/openmpns/shared/payload"
)

// countMeasured makes the renderer's measureText count the characters it
// measures, until the test ends, and returns the count.
func countMeasured(t testing.TB) *int {
	n := new(int)
	measureText = func(s string, size float32, style fyne.TextStyle) fyne.Size {
		*n += utf8.RuneCountInString(s)
		return fyne.MeasureText(s, size, style)
	}
	t.Cleanup(func() { measureText = fyne.MeasureText })
	return n
}

// TestWideIconicContentIsCutBeforeItIsLaidOut: a sender can switch any
// wide tile to IconicTile with about 2,900 characters of WideContent1.
// The line is cut to tile.WideContentChars before it is fitted to the
// tile's width, so laying the tile out (on the UI goroutine, at every
// update, scale and resize) measures a few hundred characters; uncut, fit
// measured the whole rest once per character it dropped, millions of
// characters and about 10 s.
func TestWideIconicContentIsCutBeforeItIsLaidOut(t *testing.T) {
	test.NewTempApp(t)
	measured := countMeasured(t)
	s := tile.NewState("", payload.TemplateCycle, nil)
	s.Apply(&payload.Tile{Template: payload.TemplateIconic, Fields: map[string]string{
		payload.WideContent1: strings.Repeat("W", 2900),
		payload.WideContent2: strings.Repeat("lorem ipsum ", 240),
	}})
	w := New(s, tile.Wide)
	r := test.WidgetRenderer(w).(*renderer)
	r.Layout(w.MinSize().Add(fyne.NewSize(10, 5)))
	for i, l := range r.lines[:2] {
		if n := utf8.RuneCountInString(l.Text); n == 0 || n > tile.WideContentChars {
			t.Errorf("line %d shows %d characters, want 1 to %d", i+1, n, tile.WideContentChars)
		}
	}
	// Two layouts of two lines of at most 39 characters, each measured
	// whole and then bisected, with the line heights: a few hundred
	// characters.
	if limit := 40 * tile.WideContentChars; *measured > limit {
		t.Errorf("laying a wide IconicTile out twice measured %d characters; want at most %d", *measured, limit)
	}
}

// TestFitBisects: fit finds the cut by bisecting, measuring a text about
// twice its length in all, not once per character it drops.
func TestFitBisects(t *testing.T) {
	test.NewTempApp(t)
	measured := countMeasured(t)
	const n = 2900
	got := fit(strings.Repeat("W", n), 17, fyne.TextStyle{}, 300)
	if got == "" || fyne.MeasureText(got, 17, fyne.TextStyle{}).Width > 300 || fyne.MeasureText(got+"W", 17, fyne.TextStyle{}).Width <= 300 {
		t.Errorf("fit kept %d W, not the most that fit", len(got))
	}
	if limit := 3 * n; *measured > limit {
		t.Errorf("fitting %d characters measured %d (%.0f× its length); want at most %d", n, *measured, float64(*measured)/n, limit)
	}
}

// TestFitKeepsTheLongestPrefixThatFits, trailing spaces dropped, for text
// that fits, text that does not, and text of which nothing fits.
func TestFitKeepsTheLongestPrefixThatFits(t *testing.T) {
	test.NewTempApp(t)
	const size = 20
	width := func(s string) float32 { return fyne.MeasureText(s, size, fyne.TextStyle{}).Width }
	for _, text := range []string{"", "Mail", "Mail ", "Lunch with Ana at the Harbour Café", "a b c d e f g h", "Ünïcödé wörds ẞ"} {
		for _, maxW := range []float32{0, 1, width("Lun"), width("Lunch w"), width(text) - 0.5, width(text), 1000} {
			got := fit(text, size, fyne.TextStyle{}, maxW)
			want := []rune(text)
			for len(want) > 0 && width(string(want)) > maxW {
				want = want[:len(want)-1]
			}
			if w := strings.TrimRight(string(want), " "); got != w {
				t.Errorf("fit(%q, %v) = %q, want %q", text, maxW, got, w)
			}
		}
	}
}

// benchWord is a word of n letters and digits that differ from seed to
// seed: fyne caches the sizes of texts it measured, and the same word
// every iteration would be measured from that cache.
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

// BenchmarkFitLongWord fits a 500-character word to a wide tile's width
// in WideContent1's font at the default scale. Beside the time it reports
// the characters measured (chars/op), which do not depend on the
// machine's load.
func BenchmarkFitLongWord(b *testing.B) {
	test.NewTempApp(b)
	measured := countMeasured(b)
	size, maxW := float32(wideContent1*DefaultScale), float32((691-2*marginX)*DefaultScale)
	for i := range b.N {
		fit(benchWord(500, uint64(i)), size, fyne.TextStyle{}, maxW)
	}
	b.ReportMetric(float64(*measured)/float64(b.N), "chars/op")
}
