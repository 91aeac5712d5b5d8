package apppage

import (
	"fmt"
	"image/color"
	"strings"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"github.com/openmpns/openmpns/emulator/ui/controls"
	"github.com/openmpns/openmpns/emulator/ui/wptheme"
	"github.com/openmpns/openmpns/shared/payload"
)

// MaxListed is the most notifications the app page lists, newest first.
const MaxListed = 20

// RawNotification is a raw notification the app received while running.
type RawNotification struct {
	Time time.Time
	Data []byte
}

// ReceivedToast is a toast the app received while in the foreground (the
// shell does not show those: they go to the app).
type ReceivedToast struct {
	Time  time.Time
	Toast payload.Toast
}

// AppPage is the page of a running app: its name as the page title, the
// state of its push channel, the Channel URI (selectable, with a "copy"
// button), the result of the last handoff to its cloud service, and the raw
// notifications and foreground toasts it received.
type AppPage struct {
	widget.BaseWidget

	// OnCopy, if set, is called with the URI after the "copy" button put it
	// on the clipboard.
	OnCopy func(uri string)

	clip     fyne.Clipboard
	page     *controls.Page
	state    *controls.TextBlock
	uri      *uriField
	handoff  *controls.TextBlock
	raws     *rowList
	toasts   *rowList
	errors   *fyne.Container // the errors section, hidden when there are none
	errList  *rowList
	uriValue string
}

// NewAppPage returns the page of the app called appName. The "copy" button
// writes to clip (the window's clipboard); nil disables copying.
func NewAppPage(appName string, clip fyne.Clipboard) *AppPage {
	p := &AppPage{clip: clip}
	p.state = controls.NewParagraph("closed", controls.FontMedium, theme.ColorNameForeground, controls.PageWidth, 0)
	p.uri = newURIField(func() { p.Copy() })
	p.handoff = controls.NewParagraph("not yet", controls.FontNormal, theme.ColorNameForeground, controls.PageWidth, 0)
	p.raws = newRowList("none received")
	p.toasts = newRowList("none received")
	p.errList = newRowList("")
	p.errors = controls.NewColumn(controls.SectionTitle("errors"), controls.Gap(4), p.errList, controls.Gap(24))
	p.errors.Hide()
	content := controls.NewColumn(
		caption("channel"), p.state, controls.Gap(16),
		caption("channel URI"), controls.Gap(6), p.uri, controls.Gap(16),
		caption("handoff"), p.handoff, controls.Gap(28),
		p.errors,
		controls.SectionTitle("raw notifications"), controls.Gap(4), p.raws, controls.Gap(24),
		controls.SectionTitle("toasts in the app"), controls.Gap(4), p.toasts,
	)
	p.page = controls.NewPage("push notifications", appName, content)
	p.ExtendBaseWidget(p)
	return p
}

// caption is the small subtle text over a value.
func caption(s string) *controls.TextBlock {
	return controls.NewText(s, controls.FontNormal, wptheme.ColorNameSubtle)
}

// SetApp changes the page title.
func (p *AppPage) SetApp(appName string) { p.page.SetTitle(appName) }

// SetChannelState sets the line that says how the channel is ("open, toast
// and tile bound", "closed", "opening…").
func (p *AppPage) SetChannelState(s string) { p.state.SetText(s) }

// SetChannelURI sets the Channel URI; "" shows that there is none yet.
func (p *AppPage) SetChannelURI(uri string) {
	p.uriValue = uri
	p.uri.set(uri)
}

// ChannelURI returns the Channel URI shown.
func (p *AppPage) ChannelURI() string { return p.uriValue }

// SetHandoff sets the handoff result line ("POST http://…/handoff/news →
// 201").
func (p *AppPage) SetHandoff(line string) { p.handoff.SetText(line) }

// Copy puts the Channel URI on the clipboard and calls OnCopy, as the
// "copy" button does. It does nothing when there is no URI.
func (p *AppPage) Copy() {
	if p.uriValue == "" || p.clip == nil {
		return
	}
	p.clip.SetContent(p.uriValue)
	if p.OnCopy != nil {
		p.OnCopy(p.uriValue)
	}
}

// SetRaws lists the raw notifications received, oldest first as they
// arrived; the page shows the newest MaxListed, newest on top.
func (p *AppPage) SetRaws(raws []RawNotification) {
	rows := make([][2]string, 0, min(len(raws), MaxListed))
	for i := len(raws) - 1; i >= 0 && len(rows) < MaxListed; i-- {
		r := raws[i]
		rows = append(rows, [2]string{
			fmt.Sprintf("%s · %s", r.Time.Format("15:04:05"), controls.ByteCount(len(r.Data))),
			controls.Preview(r.Data, 64),
		})
	}
	p.raws.set(rows)
}

// SetToasts lists the toasts received in the foreground, oldest first; the
// page shows the newest MaxListed, newest on top.
func (p *AppPage) SetToasts(toasts []ReceivedToast) {
	rows := make([][2]string, 0, min(len(toasts), MaxListed))
	for i := len(toasts) - 1; i >= 0 && len(rows) < MaxListed; i-- {
		t := toasts[i]
		meta := t.Time.Format("15:04:05")
		if t.Toast.Param != "" {
			meta += " · " + t.Toast.Param
		}
		rows = append(rows, [2]string{meta, strings.TrimSpace(t.Toast.Text1 + " " + t.Toast.Text2)})
	}
	p.toasts.set(rows)
}

// SetErrors lists the channel's errors (ErrorOccurred: "PayloadFormatError:
// …"), oldest first; the page shows the newest MaxListed under "errors",
// and hides the section when there are none.
func (p *AppPage) SetErrors(errs []string) {
	rows := make([][2]string, 0, min(len(errs), MaxListed))
	for i := len(errs) - 1; i >= 0 && len(rows) < MaxListed; i-- {
		kind, msg, ok := strings.Cut(errs[i], ": ")
		if !ok {
			kind, msg = "error", errs[i]
		}
		rows = append(rows, [2]string{kind, msg})
	}
	p.errList.set(rows)
	controls.SetVisible(p.errors, len(rows) > 0)
	p.page.Scroll.Refresh()
}

func (p *AppPage) SetPhoneScale(k float32) { p.page.SetPhoneScale(k) }

// CreateRenderer is part of fyne.Widget.
func (p *AppPage) CreateRenderer() fyne.WidgetRenderer {
	return widget.NewSimpleRenderer(p.page)
}

// rowChars is the most characters of a row's line that are laid out
// (controls.Clip): a row shows one line, 26 to about 110 characters across
// the page, so this cut is never seen (the row's own ellipsis comes
// first), and a sender's long text (a toast's Param, an error quoting a
// 2,900-character image URL) costs the UI goroutine no more than a short
// one.
const rowChars = 300

// rowList is a list of two-line entries (a subtle line over the text),
// drawn from a pool of rows that only grows to the most ever shown.
type rowList struct {
	widget.BaseWidget
	controls.Scaled

	empty *controls.TextBlock
	pool  []*controls.TextBlock // two per row: meta, text
	box   *fyne.Container
}

func newRowList(empty string) *rowList {
	l := &rowList{empty: controls.NewText(empty, controls.FontNormal, wptheme.ColorNameSubtle)}
	l.box = controls.NewColumn(l.empty)
	l.ExtendBaseWidget(l)
	return l
}

func (l *rowList) set(rows [][2]string) {
	for len(l.pool) < 2*len(rows) {
		meta := controls.NewParagraph("", controls.FontSmall, wptheme.ColorNameSubtle, controls.PageWidth, 1)
		text := controls.NewParagraph("", controls.FontNormal, theme.ColorNameForeground, controls.PageWidth, 1)
		meta.Scaled, text.Scaled = l.Scaled, l.Scaled
		l.pool = append(l.pool, meta, text)
	}
	objs := []fyne.CanvasObject{l.empty}
	l.empty.Hidden = len(rows) > 0
	for i, r := range rows {
		meta, text := l.pool[2*i], l.pool[2*i+1]
		meta.SetText(controls.Clip(r[0], rowChars))
		text.SetText(controls.Clip(r[1], rowChars))
		if i > 0 {
			g := controls.Gap(10)
			g.Scaled = l.Scaled
			objs = append(objs, g)
		}
		objs = append(objs, meta, text)
	}
	l.box.Objects = objs
	l.box.Refresh()
	l.Refresh()
}

// setScale draws every row, shown or pooled, at scale k.
func (l *rowList) SetPhoneScale(k float32) {
	if !l.Rescale(k) {
		return
	}
	for _, t := range l.pool {
		t.SetPhoneScale(k)
	}
	controls.ScaleTree(l.box, k)
	l.Refresh()
}

func (l *rowList) CreateRenderer() fyne.WidgetRenderer { return widget.NewSimpleRenderer(l.box) }

// uriField shows the Channel URI in a bordered box, selectable, with a
// "copy" button under it. The label is fyne's: it takes its sizes from the
// page's scaled theme.
type uriField struct {
	widget.BaseWidget
	controls.Scaled

	label  *widget.Label
	border *canvas.Rectangle
	copy   *controls.Button
}

func newURIField(copy func()) *uriField {
	f := &uriField{
		label:  widget.NewLabel("none yet"),
		border: canvas.NewRectangle(color.Transparent),
		copy:   controls.NewButton("copy", copy),
	}
	f.label.Selectable = true
	f.label.Wrapping = fyne.TextWrapBreak
	f.label.SizeName = theme.SizeNameSubHeadingText
	f.copy.Width = 120
	f.ExtendBaseWidget(f)
	return f
}

func (f *uriField) set(uri string) {
	if uri == "" {
		uri = "none yet"
	}
	f.label.SetText(uri)
	f.Refresh()
}

const uriCopyGap = 10

func (f *uriField) SetPhoneScale(k float32) {
	if !f.Rescale(k) {
		return
	}
	f.copy.SetPhoneScale(k)
	f.Refresh()
}

func (f *uriField) MinSize() fyne.Size {
	k := f.Scale()
	l := f.labelMin(controls.PageWidth * k)
	return fyne.NewSize(controls.PageWidth*k, l.Height+uriCopyGap*k+f.copy.MinSize().Height)
}

// labelMin is the label's size when wrapped at width w.
func (f *uriField) labelMin(w float32) fyne.Size {
	f.label.Resize(fyne.NewSize(w, f.label.Size().Height))
	return f.label.MinSize()
}

func (f *uriField) CreateRenderer() fyne.WidgetRenderer {
	r := &uriRenderer{f: f}
	r.Refresh()
	return r
}

type uriRenderer struct{ f *uriField }

func (r *uriRenderer) Destroy()           {}
func (r *uriRenderer) MinSize() fyne.Size { return r.f.MinSize() }
func (r *uriRenderer) Objects() []fyne.CanvasObject {
	return []fyne.CanvasObject{r.f.border, r.f.label, r.f.copy}
}

func (r *uriRenderer) Layout(size fyne.Size) {
	f := r.f
	lm := f.labelMin(size.Width)
	f.border.Resize(fyne.NewSize(size.Width, lm.Height))
	f.label.Move(fyne.NewPos(0, 0))
	f.label.Resize(fyne.NewSize(size.Width, lm.Height))
	f.copy.Move(fyne.NewPos(size.Width-f.copy.MinSize().Width, lm.Height+uriCopyGap*f.Scale()))
	f.copy.Resize(f.copy.MinSize())
}

func (r *uriRenderer) Refresh() {
	r.f.border.StrokeWidth = 2 * r.f.Scale()
	r.f.border.StrokeColor = theme.ColorForWidget(wptheme.ColorNameBorder, r.f)
	r.f.border.Refresh()
	r.f.label.Refresh()
	r.f.copy.Refresh()
	r.Layout(r.f.Size())
}
