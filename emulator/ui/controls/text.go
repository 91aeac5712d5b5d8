package controls

import (
	"sort"
	"strings"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"github.com/openmpns/openmpns/emulator/ui/wptheme"
)

// TextBlock is a run of text in one size, colour and font, on one line or
// wrapped at a fixed width: the TextBlock of a phone page. Its colour is a
// theme colour name, looked up whenever it is refreshed, so it follows the
// theme. A zero wrap width keeps the text on one line. The size and the
// wrap width are those at scale 1: at scale k the text is k times larger
// and wraps at k times the width.
type TextBlock struct {
	widget.BaseWidget
	Scaled

	text     string
	size     float32
	color    fyne.ThemeColorName
	light    bool // Open Sans Light instead of the theme's font
	style    fyne.TextStyle
	wrap     float32 // wrap at this width (at scale 1); 0: one line
	maxLines int     // 0: no limit
	align    fyne.TextAlign
}

func NewText(text string, size float32, color fyne.ThemeColorName) *TextBlock {
	t := &TextBlock{text: text, size: size, color: color}
	t.ExtendBaseWidget(t)
	return t
}

// NewLightText is a heading in the thin font.
func NewLightText(text string, size float32, color fyne.ThemeColorName) *TextBlock {
	t := NewText(text, size, color)
	t.light = true
	return t
}

// NewParagraph is text wrapped at width, at most maxLines lines (0: all).
func NewParagraph(text string, size float32, color fyne.ThemeColorName, width float32, maxLines int) *TextBlock {
	t := NewText(text, size, color)
	t.wrap, t.maxLines = width, maxLines
	return t
}

// SetText changes the text and refreshes.
func (t *TextBlock) SetText(s string) {
	if s == t.text {
		return
	}
	t.text = s
	t.Refresh()
}

// SetColor changes the colour name and refreshes.
func (t *TextBlock) SetColor(c fyne.ThemeColorName) {
	if c == t.color {
		return
	}
	t.color = c
	t.Refresh()
}

// Text returns the text shown.
func (t *TextBlock) Text() string { return t.text }

// FontSize is the text's size at scale 1.
func (t *TextBlock) FontSize() float32 { return t.size }

func (t *TextBlock) SetPhoneScale(k float32) {
	if t.Rescale(k) {
		t.Refresh()
	}
}

// textSize is the size the text is drawn at: size at its scale.
func (t *TextBlock) textSize() float32 { return t.size * t.Scale() }

func (t *TextBlock) font() fyne.Resource {
	if t.light {
		return wptheme.Light
	}
	return nil
}

func (t *TextBlock) measure(s string) fyne.Size {
	size, _ := fyne.CurrentApp().Driver().RenderedTextSize(s, t.textSize(), t.style, t.font())
	return size
}

// lines is the text as it is drawn: one line, or wrapped at the wrap width
// to at most maxLines lines, the last of which ends with an ellipsis when
// text was left over. Wrapping stops at maxLines lines: what comes after
// them is not laid out.
func (t *TextBlock) lines() []string {
	if t.wrap <= 0 {
		return []string{t.text}
	}
	wrap := t.wrap * t.Scale()
	width := func(s string) float32 { return t.measure(s).Width }
	lines, cut := wrapText(t.text, wrap, t.maxLines, width)
	if cut {
		last := []rune(lines[len(lines)-1])
		n := fitRunes(last, "…", wrap, len(last), width)
		lines[len(lines)-1] = strings.TrimRight(string(last[:n]), " ") + "…"
	}
	return lines
}

func (t *TextBlock) CreateRenderer() fyne.WidgetRenderer {
	r := &textRenderer{t: t}
	r.Refresh()
	return r
}

type textRenderer struct {
	t       *TextBlock
	texts   []*canvas.Text
	objects []fyne.CanvasObject
	min     fyne.Size
}

func (r *textRenderer) Destroy()                     {}
func (r *textRenderer) Objects() []fyne.CanvasObject { return r.objects }
func (r *textRenderer) MinSize() fyne.Size           { return r.min }

func (r *textRenderer) Refresh() {
	t := r.t
	lines := t.lines()
	for len(r.texts) < len(lines) {
		c := canvas.NewText("", nil)
		r.texts = append(r.texts, c)
	}
	r.texts = r.texts[:len(lines)]
	r.objects = r.objects[:0]
	col := theme.ColorForWidget(t.color, t)
	lineH := t.measure("Ag").Height
	var w float32
	for i, s := range lines {
		c := r.texts[i]
		c.Text, c.TextSize, c.TextStyle, c.FontSource, c.Color, c.Alignment = s, t.textSize(), t.style, t.font(), col, t.align
		w = max(w, c.MinSize().Width)
		r.objects = append(r.objects, c)
		c.Refresh()
	}
	if t.wrap > 0 {
		w = t.wrap * t.Scale()
	}
	r.min = fyne.NewSize(w, lineH*float32(len(lines)))
	r.Layout(t.Size())
}

func (r *textRenderer) Layout(size fyne.Size) {
	if len(r.texts) == 0 {
		return
	}
	lineH := r.min.Height / float32(len(r.texts))
	for i, c := range r.texts {
		c.Move(fyne.NewPos(0, float32(i)*lineH))
		c.Resize(fyne.NewSize(size.Width, lineH))
	}
}

// wrapText breaks s into lines no wider than width (as measured by
// measure), at spaces where it can and inside words (URIs) that are wider
// than a line. Explicit line breaks are kept. With maxLines > 0 it stops
// once it has made maxLines lines, and cut reports whether text was left
// over.
//
// A word wider than a line is broken at the longest prefix that fits,
// found by fitRunes from the length of the break before: each break
// measures a few times a line's length, never the rest of the word.
func wrapText(s string, width float32, maxLines int, measure func(string) float32) (lines []string, cut bool) {
	full := func() bool { return maxLines > 0 && len(lines) >= maxLines }
	guess := 1 // where fitRunes starts: the length of the last break
	for _, para := range strings.Split(strings.ReplaceAll(s, "\r\n", "\n"), "\n") {
		if full() {
			return lines, true
		}
		line := ""
		for _, word := range strings.Fields(para) {
			candidate := word
			if line != "" {
				candidate = line + " " + word
			}
			if measure(candidate) <= width {
				line = candidate
				continue
			}
			if line != "" {
				lines = append(lines, line)
				line = ""
				if full() {
					return lines, true
				}
			}
			// The word alone: break it where it overflows, at least one
			// character a line.
			r := []rune(word)
			for {
				n := fitRunes(r, "", width, guess, measure)
				if n == len(r) {
					break
				}
				n = max(n, 1)
				guess = n
				lines = append(lines, string(r[:n]))
				r = r[n:]
				if full() {
					return lines, true
				}
			}
			line = string(r)
		}
		lines = append(lines, line)
	}
	return lines, false
}

// fitRunes returns the largest n for which r[:n] followed by suffix
// measures at most width, 0 when none does (widths are taken to grow with
// n). It starts at guess (the length of the line before, say) and gallops,
// 1, 2, 4, … runes up while the prefix fits or down while it does not,
// then bisects between the last two lengths it tried. An answer d runes
// from the guess takes about 2·log2(d) measurements of about n runes each,
// however long r is.
func fitRunes(r []rune, suffix string, width float32, guess int, measure func(string) float32) int {
	fits := func(n int) bool { return measure(string(r[:n])+suffix) <= width }
	// Invariant: r[:lo] fits or lo is 0; r[:hi] does not fit or hi is
	// len(r)+1. The answer is in [lo, hi).
	g := min(max(guess, 1), len(r))
	lo, hi := 0, len(r)+1
	if g > 0 && fits(g) {
		lo = g
		for step := 1; lo+step <= len(r); step *= 2 {
			if !fits(lo + step) {
				hi = lo + step
				break
			}
			lo += step
		}
	} else if g > 0 {
		hi = g
		for step := 1; hi-step > 0; step *= 2 {
			if fits(hi - step) {
				lo = hi - step
				break
			}
			hi -= step
		}
	}
	return lo + sort.Search(hi-lo-1, func(i int) bool { return !fits(lo + 1 + i) })
}
