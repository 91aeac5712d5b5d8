package inspector

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"github.com/openmpns/openmpns/emulator/ui/controls"
	"github.com/openmpns/openmpns/shared/payload"
)

// summaryIDRunes is how much of a sender's X-MessageID, or of the
// service's notification ID, the summary shows; the header lines below it
// show all of it.
const summaryIDRunes = 48

// titleRunes is how much of "toast for News" the title shows: the app's
// name comes from its manifest, which a user may have got from anyone.
const titleRunes = 48

// detailView shows one notification: a title, a summary, buttons that copy
// its headers and its payload, and a textView with every header and every
// line of the payload (tapping a line copies it).
type detailView struct {
	title   *widget.Label
	summary *widget.Label
	status  *widget.Label // what the last copy put on the clipboard
	copyHdr *widget.Button
	copyPl  *widget.Button
	text    *textView
	content *fyne.Container
	empty   *widget.Label
	view    *fyne.Container // what the inspector shows below the list
	shown   *Notification   // the notification shown, nil for none
}

func newDetailView() *detailView {
	d := &detailView{
		title:   widget.NewLabel(""),
		summary: widget.NewLabel(""),
		status:  widget.NewLabel(""),
		text:    newTextView(),
		empty:   widget.NewLabel("Select a notification to see its headers and payload."),
	}
	d.title.SizeName = theme.SizeNameSubHeadingText
	d.summary.Importance = widget.LowImportance
	d.summary.Wrapping = fyne.TextWrapWord
	d.status.Importance = widget.LowImportance
	d.empty.Importance = widget.LowImportance
	d.empty.Wrapping = fyne.TextWrapWord
	d.text.onCopy = d.copied
	d.copyHdr = widget.NewButton("copy headers", d.text.copyHeaders)
	d.copyHdr.Importance = widget.LowImportance
	d.copyPl = widget.NewButton("copy payload", d.text.copyPayload)
	d.copyPl.Importance = widget.LowImportance
	top := container.NewVBox(
		container.NewBorder(nil, nil, nil, container.NewHBox(d.copyHdr, d.copyPl), d.title),
		d.summary, d.status)
	d.content = container.NewBorder(top, nil, nil, nil, d.text)
	d.view = container.NewStack(container.NewVBox(d.empty), d.content)
	d.clear()
	return d
}

func (d *detailView) clear() {
	d.empty.Show()
	d.content.Hide()
	d.shown = nil
	d.text.setContent(nil, nil, nil, "", true)
	d.view.Refresh()
}

// show shows n, from its first line; showing the notification shown again
// (a push arrived and the list was made again) keeps the view where the
// reader scrolled it, and its lines as they were wrapped.
func (d *detailView) show(n Notification) {
	prev := d.shown
	again := prev != nil && sameNotification(*prev, n)
	d.shown = &n
	d.empty.Hide()
	d.content.Show()
	d.title.SetText(controls.Clip(fmt.Sprintf("%s for %s", n.Kind, n.App), titleRunes))
	parts := []string{}
	if n.Class != 0 {
		parts = append(parts, fmt.Sprintf("class %d (%s)", n.Class, ClassInterval(n.Class)))
	} else {
		parts = append(parts, "no class (immediate)")
	}
	if n.MessageID != "" {
		parts = append(parts, "message "+controls.Clip(n.MessageID, summaryIDRunes))
	}
	if n.ID != "" {
		parts = append(parts, "id "+controls.Clip(n.ID, summaryIDRunes))
	}
	parts = append(parts, "latency "+Latency(n.Latency), "received "+n.Time.Format("15:04:05.000"), controls.ByteCount(len(n.Payload)))
	summary := strings.Join(parts, " · ")
	if n.Note != "" {
		summary = n.Note + "\n" + summary
	}
	d.summary.SetText(summary)
	if !again {
		d.status.SetText("")
		d.status.Hide()
	}
	if !again || !maps.Equal(prev.Headers, n.Headers) {
		lines, binary, copyText := payloadLines(n)
		d.text.setContent(sortedHeaders(n.Headers), lines, binary, copyText, !again)
	}
	d.view.Refresh()
}

// copied says what a copy put on the clipboard.
func (d *detailView) copied(what string) {
	d.status.SetText("copied " + what)
	d.status.Show()
	d.content.Refresh()
}

// payloadLines is the payload as the detail view shows it: toast and tile
// XML indented, text as it is, one string a line; other bytes are returned
// as binary, for a hex dump as wide as the view allows. copyText is what
// "copy payload" copies when the payload is text: the payload as
// received.
func payloadLines(n Notification) (lines []string, binary []byte, copyText string) {
	if len(n.Payload) == 0 {
		return []string{"(empty)"}, nil, ""
	}
	if n.Kind != payload.KindRaw.String() {
		if s, ok := PrettyXML(n.Payload); ok {
			return textLines(s), nil, string(n.Payload)
		}
	}
	if utf8.Valid(n.Payload) && controls.Printable(string(n.Payload)) {
		return textLines(string(n.Payload)), nil, string(n.Payload)
	}
	return nil, n.Payload, ""
}

// textLines splits printable text into the lines the view draws: tabs
// expanded to stops every 8 columns, other white space (a "\r" before a
// "\n", a form feed) drawn as a space.
func textLines(s string) []string {
	lines := strings.Split(s, "\n")
	for k, l := range lines {
		lines[k] = displayable(strings.TrimSuffix(l, "\r"))
	}
	return lines
}

// displayable is s as one line of the view draws it: a tab up to the next
// stop of 8 columns, other white space as a space, any other character
// that does not print as U+FFFD. A string that needs none of it is
// returned as it is.
func displayable(s string) string {
	clean := true
	for _, r := range s {
		if r != ' ' && (unicode.IsSpace(r) || !unicode.IsPrint(r)) {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	var b strings.Builder
	col := 0
	for _, r := range s {
		switch {
		case r == '\t':
			for {
				b.WriteByte(' ')
				col++
				if col%8 == 0 {
					break
				}
			}
			continue
		case unicode.IsSpace(r):
			r = ' '
		case !unicode.IsPrint(r):
			r = utf8.RuneError
		}
		b.WriteRune(r)
		col++
	}
	return b.String()
}

// header is one request header, as the detail view lists it.
type header struct{ name, value string }

// sortedHeaders lists headers by name.
func sortedHeaders(h map[string]string) []header {
	out := make([]header, 0, len(h))
	for k, v := range h {
		out = append(out, header{k, v})
	}
	slices.SortFunc(out, func(a, b header) int { return strings.Compare(a.name, b.name) })
	return out
}

// headersText is what "copy headers" copies: "Name: value" a line.
func headersText(hs []header) string {
	var b strings.Builder
	for k, h := range hs {
		if k > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(h.name + ": " + h.value)
	}
	return b.String()
}
