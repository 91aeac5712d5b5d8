package controls

import (
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

func (t *TextBlock) lines() []string {
	if t.wrap <= 0 {
		return []string{t.text}
	}
	wrap := t.wrap * t.Scale()
	lines := wrapText(t.text, wrap, func(s string) float32 { return t.measure(s).Width })
	if t.maxLines > 0 && len(lines) > t.maxLines {
		lines = lines[:t.maxLines]
		last := []rune(lines[t.maxLines-1])
		for len(last) > 0 && t.measure(string(last)+"…").Width > wrap {
			last = last[:len(last)-1]
		}
		lines[t.maxLines-1] = strings.TrimRight(string(last), " ") + "…"
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

// wrapText breaks s into lines no wider than width (as measured by width),
// at spaces where it can and inside words (URIs) that are wider than a
// line. Explicit line breaks are kept.
func wrapText(s string, width float32, measure func(string) float32) []string {
	var lines []string
	for _, para := range strings.Split(strings.ReplaceAll(s, "\r\n", "\n"), "\n") {
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
			}
			// The word alone: break it where it overflows.
			r := []rune(word)
			for len(r) > 0 && measure(string(r)) > width {
				n := len(r) - 1
				for n > 1 && measure(string(r[:n])) > width {
					n--
				}
				lines = append(lines, string(r[:n]))
				r = r[n:]
			}
			line = string(r)
		}
		lines = append(lines, line)
	}
	return lines
}
