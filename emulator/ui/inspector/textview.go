package inspector

import (
	"fmt"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"github.com/openmpns/openmpns/emulator/ui/controls"
	"github.com/openmpns/openmpns/emulator/ui/wptheme"
)

// headerNameRunes is how much of a header's name the view measures and
// shows; the name column is at most nameShare of the view's width.
const (
	headerNameRunes = 80
	nameShare       = 0.45
)

// textView shows a notification's headers (name, then value) and its
// payload one line under another, in a list that draws only the rows in
// sight. It wraps the lines to its width itself: it measures each distinct
// character once, in the monospace font, and adds up their advances, so a
// payload of any size costs one pass over it, when it is shown and when
// the view's width changes. (A fyne Label or RichText wrapping the same
// text measured it again and again with the text shaper: a 3 KB payload
// took most of a second, 64 KB minutes.) A binary payload is a hex dump of
// 16 bytes a line, or 8 or 4 when the view is too narrow for 16.
//
// Tapping a line copies it to the clipboard: a header as "Name: value",
// a line of the payload as it is (all of it, however many rows it wraps
// to); tapping the "headers" or "payload" caption copies all of them.
type textView struct {
	widget.BaseWidget

	// onCopy is told what a copy put on the clipboard ("line 3 of the
	// payload").
	onCopy func(what string)

	list *widget.List

	headers  []header
	lines    []string // the payload's lines; nil for a binary payload
	binary   []byte   // the payload shown as a hex dump
	copyText string   // what copying a text payload copies

	hexPer   int      // bytes a line of hexLines
	hexLines []string // binary's hex dump, hexPer bytes a line

	rows   []textRow
	width  float32          // the width rows are wrapped for; 0 for none
	size   float32          // the text size advances are measured at
	ascii  [128]float32     // advance of each ASCII character, 0 until measured
	adv    map[rune]float32 // advance of each other character measured
	nameWs []float32        // width of each header's name, proportional font
	nameW  float32          // the name column, gap included
	rowH   float32
}

// rowKind is what a row of a textView shows.
type rowKind uint8

const (
	rowCaption rowKind = iota // "headers" or "payload", src 0 or 1
	rowNone                   // "none": no headers
	rowBlank
	rowHeader  // a piece of headers[src].value; the first with the name
	rowPayload // a piece of lines[src] or of hexLines[src]
)

// textRow is one row of a textView: a piece of a line that fits the width.
type textRow struct {
	kind  rowKind
	src   int
	first bool   // the first piece of its line
	name  string // a header's name, cut to the column, on its first row
	text  string
}

func newTextView() *textView {
	v := &textView{}
	v.list = widget.NewList(
		func() int { return len(v.rows) },
		func() fyne.CanvasObject { return newTextRowView(v) },
		func(id widget.ListItemID, o fyne.CanvasObject) {
			if id >= 0 && id < len(v.rows) {
				o.(*textRowView).set(v.rows[id])
			}
		},
	)
	v.list.HideSeparators = true
	v.list.OnSelected = func(id widget.ListItemID) {
		v.list.Unselect(id)
		v.copyRow(id)
	}
	v.ExtendBaseWidget(v)
	return v
}

// setContent shows headers and a payload: its lines, or binary for a hex
// dump; copyText is what copying a text payload copies (a binary one
// copies its hex dump). toTop scrolls to the first row; else the view
// stays where it was.
func (v *textView) setContent(headers []header, lines []string, binary []byte, copyText string, toTop bool) {
	v.headers, v.lines, v.binary, v.copyText = headers, lines, binary, copyText
	v.hexPer, v.hexLines = 0, nil
	v.nameWs = nil
	v.width = 0
	if w := v.Size().Width; w > 0 {
		v.wrap(w)
	} else {
		v.rows = nil
	}
	v.list.Refresh()
	if toTop {
		v.list.ScrollToTop()
	}
}

// textSize is the size of the view's text in its theme.
func (v *textView) textSize() float32 { return v.Theme().Size(theme.SizeNameText) }

// advance is the width of r in the monospace font at v.size, measured once.
func (v *textView) advance(r rune) float32 {
	if r < 128 {
		if w := v.ascii[r]; w > 0 {
			return w
		}
	} else if w, ok := v.adv[r]; ok {
		return w
	}
	w := measureText(string(r), v.size, fyne.TextStyle{Monospace: true}).Width
	if r < 128 {
		v.ascii[r] = max(w, 1e-3) // measured, even if it draws nothing
	} else {
		v.adv[r] = w
	}
	return w
}

// inset is the space left and right of the rows' text: the labels'
// padding, so that the text lines up with the title's.
func (v *textView) inset() (left, right float32) {
	p := v.Theme().Size(theme.SizeNameInnerPadding)
	return p, p
}

// wrap breaks the lines into rows that fit width.
func (v *textView) wrap(width float32) {
	v.width = width
	if size := v.textSize(); size != v.size || v.adv == nil {
		v.size, v.ascii, v.adv, v.nameWs, v.rowH = size, [128]float32{}, map[rune]float32{}, nil, 0
	}
	left, right := v.inset()
	avail := max(width-left-right, 1)
	v.rows = v.rows[:0]
	v.rows = append(v.rows, textRow{kind: rowCaption, src: 0, first: true, text: "headers"})
	if len(v.headers) == 0 {
		v.rows = append(v.rows, textRow{kind: rowNone, first: true, text: "none"})
	}
	if v.nameWs == nil {
		v.nameWs = make([]float32, len(v.headers))
		for k, h := range v.headers {
			v.nameWs[k] = measureText(controls.Clip(h.name, headerNameRunes), v.size, fyne.TextStyle{}).Width
		}
	}
	gap := 1.5 * left
	v.nameW = 0
	for _, w := range v.nameWs {
		v.nameW = max(v.nameW, w+gap)
	}
	v.nameW = min(v.nameW, avail*nameShare)
	var pieces []string
	for k, h := range v.headers {
		name := controls.Clip(h.name, headerNameRunes)
		if v.nameWs[k]+gap > v.nameW {
			name = fitWidth(name, v.size, v.nameW-gap)
		}
		pieces = v.breakLine(displayable(h.value), avail-v.nameW, pieces[:0])
		for j, p := range pieces {
			r := textRow{kind: rowHeader, src: k, first: j == 0, text: p}
			if j == 0 {
				r.name = displayable(name)
			}
			v.rows = append(v.rows, r)
		}
	}
	v.rows = append(v.rows, textRow{kind: rowBlank}, textRow{kind: rowCaption, src: 1, first: true, text: "payload"})
	lines := v.lines
	if v.binary != nil {
		per := 16
		for per > 4 && v.lineWidth(hexLineRunes(per)) > avail {
			per /= 2
		}
		if per != v.hexPer {
			v.hexPer, v.hexLines = per, hexDumpLines(v.binary, per)
		}
		lines = v.hexLines
	}
	for k, l := range lines {
		pieces = v.breakLine(l, avail, pieces[:0])
		for j, p := range pieces {
			v.rows = append(v.rows, textRow{kind: rowPayload, src: k, first: j == 0, text: p})
		}
	}
}

// hexLineRunes is how long a hex dump line of per bytes is.
func hexLineRunes(per int) int { return 6 + 3*per + 1 + per }

// lineWidth is the width of n digits in the monospace font.
func (v *textView) lineWidth(n int) float32 { return float32(n) * v.advance('0') }

// breakLine appends to out the pieces of s that fit avail, each as long as
// fits; a piece ends after a space when one is in its second half, so that
// words of text stay whole.
func (v *textView) breakLine(s string, avail float32, out []string) []string {
	if s == "" {
		return append(out, "")
	}
	for len(s) > 0 {
		cut, space := len(s), 0
		var x, xSpace float32
		for i, r := range s {
			w := v.advance(r)
			if x+w > avail && i > 0 {
				cut = i
				if space > 0 && xSpace >= avail/2 {
					cut = space
				}
				break
			}
			x += w
			if r == ' ' {
				space, xSpace = i+1, x
			}
		}
		out = append(out, s[:cut])
		s = s[cut:]
	}
	return out
}

// copyRow copies what row id shows (all of its line).
func (v *textView) copyRow(id widget.ListItemID) {
	if id < 0 || id >= len(v.rows) {
		return
	}
	r := v.rows[id]
	switch r.kind {
	case rowCaption:
		if r.src == 0 {
			v.copyHeaders()
		} else {
			v.copyPayload()
		}
	case rowHeader:
		h := v.headers[r.src]
		v.copy(h.name+": "+h.value, "header "+controls.Clip(h.name, headerNameRunes))
	case rowPayload:
		if v.binary != nil {
			v.copy(v.hexLines[r.src], fmt.Sprintf("line %d of the hex dump", r.src+1))
		} else {
			v.copy(v.lines[r.src], fmt.Sprintf("line %d of the payload", r.src+1))
		}
	}
}

// copyHeaders copies every header, "Name: value" a line.
func (v *textView) copyHeaders() {
	v.copy(headersText(v.headers), fmt.Sprintf("%d headers", len(v.headers)))
}

// copyPayload copies the payload as received when it is text, else its
// hex dump.
func (v *textView) copyPayload() {
	if v.binary != nil {
		v.copy(HexDump(v.binary), "the payload's hex dump")
		return
	}
	v.copy(v.copyText, "the payload")
}

func (v *textView) copy(text, what string) {
	fyne.CurrentApp().Clipboard().SetContent(text)
	if v.onCopy != nil {
		v.onCopy(what)
	}
}

// rowHeight is the height of a row: a line of either font, less the
// padding the list puts between rows.
func (v *textView) rowHeight() float32 {
	if v.rowH == 0 {
		size := v.textSize()
		v.rowH = max(fyne.MeasureText("Mg", size, fyne.TextStyle{Monospace: true}).Height,
			fyne.MeasureText("Mg", size, fyne.TextStyle{}).Height) + 2 - v.Theme().Size(theme.SizeNamePadding)
	}
	return v.rowH
}

// CreateRenderer is part of fyne.Widget.
func (v *textView) CreateRenderer() fyne.WidgetRenderer { return &textViewRenderer{v: v} }

type textViewRenderer struct{ v *textView }

func (r *textViewRenderer) Destroy()                     {}
func (r *textViewRenderer) MinSize() fyne.Size           { return r.v.list.MinSize() }
func (r *textViewRenderer) Objects() []fyne.CanvasObject { return []fyne.CanvasObject{r.v.list} }

func (r *textViewRenderer) Layout(size fyne.Size) {
	v := r.v
	rewrap := size.Width > 0 && (size.Width != v.width || v.textSize() != v.size)
	if rewrap {
		v.wrap(size.Width)
	}
	v.list.Resize(size)
	if rewrap {
		v.list.Refresh()
	}
}

func (r *textViewRenderer) Refresh() {
	r.Layout(r.v.Size())
	r.v.list.Refresh()
}

// textRowView draws a textRow: a header's name in the subtle colour, then
// the text, in the monospace font but for captions.
type textRowView struct {
	widget.BaseWidget
	v    *textView
	row  textRow
	name *canvas.Text
	text *canvas.Text
}

func newTextRowView(v *textView) *textRowView {
	t := &textRowView{v: v, name: canvas.NewText("", nil), text: canvas.NewText("", nil)}
	t.ExtendBaseWidget(t)
	return t
}

func (t *textRowView) set(r textRow) {
	t.row = r
	t.Refresh()
}

func (t *textRowView) MinSize() fyne.Size { return fyne.NewSize(0, t.v.rowHeight()) }

func (t *textRowView) CreateRenderer() fyne.WidgetRenderer { return &textRowRenderer{t: t} }

type textRowRenderer struct{ t *textRowView }

func (r *textRowRenderer) Destroy()           {}
func (r *textRowRenderer) MinSize() fyne.Size { return r.t.MinSize() }
func (r *textRowRenderer) Objects() []fyne.CanvasObject {
	return []fyne.CanvasObject{r.t.name, r.t.text}
}

func (r *textRowRenderer) Layout(size fyne.Size) {
	t := r.t
	left, _ := t.v.inset()
	x := left
	if t.row.kind == rowHeader {
		x += t.v.nameW
	}
	for _, c := range []*canvas.Text{t.name, t.text} {
		c.Resize(c.MinSize())
	}
	t.name.Move(fyne.NewPos(left, (size.Height-t.name.MinSize().Height)/2))
	t.text.Move(fyne.NewPos(x, (size.Height-t.text.MinSize().Height)/2))
}

func (r *textRowRenderer) Refresh() {
	t := r.t
	size := t.v.textSize()
	subtle := theme.ColorForWidget(wptheme.ColorNameSubtle, t)
	t.name.Text, t.name.TextSize, t.name.Color = t.row.name, size, subtle
	t.text.Text, t.text.TextSize = t.row.text, size
	switch t.row.kind {
	case rowCaption, rowNone:
		t.text.TextStyle, t.text.Color = fyne.TextStyle{}, subtle
	default:
		t.text.TextStyle, t.text.Color = fyne.TextStyle{Monospace: true}, theme.ColorForWidget(theme.ColorNameForeground, t)
	}
	t.name.Refresh()
	t.text.Refresh()
	r.Layout(t.Size())
}
