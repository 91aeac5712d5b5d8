package inspector

import (
	"bytes"
	"fmt"
	"image/color"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/driver/desktop"
	"fyne.io/fyne/v2/layout"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"github.com/openmpns/openmpns/emulator/ui"
	"github.com/openmpns/openmpns/emulator/ui/controls"
	"github.com/openmpns/openmpns/emulator/ui/handset"
	"github.com/openmpns/openmpns/emulator/ui/wptheme"
)

// Notification is one notification the phone received, as the inspector
// lists it. (Its fields are those of emulator/phone's Entry, in the same
// order, so that one converts to the other.)
type Notification struct {
	// Time is when the phone received it.
	Time time.Time
	// App is the app's name (or ID) it was for.
	App string
	// Kind is "toast", "tile" or "raw" (payload.Kind's names), or "error"
	// for a notification the phone could not use.
	Kind string
	// Class is the X-NotificationClass the sender used; 0 when it sent none.
	Class int
	// MessageID is the sender's X-MessageID, "" when it sent none.
	MessageID string
	// ID is the service's own ID for the notification, "" if unknown.
	ID string
	// Latency is the time from the POST to the phone's delivery.
	Latency time.Duration
	// Headers are the request's headers, one value each.
	Headers map[string]string
	// Payload is the body: XML for toast and tile, any bytes for raw.
	Payload []byte
	// Note says what the phone did with it ("shown by the shell",
	// "suppressed: notifications off", ...), "" for nothing to say.
	Note string
}

// InspectorWidth is the width the inspector is designed for; it takes any
// width from InspectorMinWidth.
const (
	InspectorWidth    = 560
	InspectorMinWidth = 480
)

// Inspector is the developer's panel beside the phone. Its "notifications"
// pivot lists every notification received, newest first, with a detail
// view of the one selected (headers as a table, the payload pretty-printed);
// its "send" pivot is a composer that asks the controller to send a
// notification (OnSend) and shows the status the service answered
// (SetResult).
type Inspector struct {
	widget.BaseWidget

	// OnSend is called with the notification the user composed when they
	// press "send".
	OnSend func(ComposeRequest)

	pivot    *controls.Pivot
	items    []Notification
	selected int // index into items, -1 for none
	list     *widget.List
	hold     listHold
	detail   *detailView
	browse   fyne.CanvasObject
	composer *composer
	body     *fyne.Container
}

// NewInspector returns an empty inspector showing the notifications pivot.
func NewInspector() *Inspector {
	i := &Inspector{selected: -1}
	i.list = widget.NewList(
		func() int { return len(i.items) },
		func() fyne.CanvasObject {
			r := newNotifRow()
			r.onHover = i.hold.hovered
			return r
		},
		func(id widget.ListItemID, o fyne.CanvasObject) {
			r := o.(*notifRow)
			if n, ok := i.at(id); ok {
				r.set(n)
			}
			r.setSelected(len(i.items)-1-id == i.selected)
			i.sawRow(id)
		},
	)
	i.list.OnSelected = func(id widget.ListItemID) {
		if k := len(i.items) - 1 - id; k != i.selected {
			i.selected = k
			i.showDetail()
		}
	}
	i.detail = newDetailView()
	i.hold.area = newListArea(i.list, i.showNewest, i.hold.hovered)
	split := container.NewVSplit(i.hold.area, i.detail.view)
	split.Offset = 0.38
	i.browse = split
	i.composer = newComposer(func(r ComposeRequest) {
		if i.OnSend != nil {
			i.OnSend(r)
		}
	})
	i.body = container.NewStack(i.browse, i.composer.view)
	i.composer.view.Hide()
	i.pivot = controls.NewPivot(controls.FontExtraLarge, "notifications", "send")
	i.pivot.OnSelected = func(n int) {
		controls.SetVisible(i.browse, n == 0)
		controls.SetVisible(i.composer.view, n == 1)
		i.body.Refresh()
	}
	i.ExtendBaseWidget(i)
	return i
}

// at returns the notification on list row id (newest first).
func (i *Inspector) at(id widget.ListItemID) (Notification, bool) {
	k := len(i.items) - 1 - id
	if k < 0 || k >= len(i.items) {
		return Notification{}, false
	}
	return i.items[k], true
}

// SetNotifications replaces the list, oldest first as received. The
// selection stays on the notification it was on if the new list still has
// it (a push arriving while the developer reads one must not close it),
// else it is cleared.
//
// What the developer sees stays put while they may be about to click it:
// when the list is scrolled away from the top, or the pointer is over it,
// the rows that arrive above the first row in sight are added out of sight
// (the scroll offset grows by their height) and an "N new" badge over the
// list counts them until they are scrolled into sight or the badge is
// tapped. A list too short to scroll them out of sight is kept as it is
// while the pointer is over it, the badge counting what waits; the next
// list or the badge shows them. At the top with the pointer elsewhere, new
// rows simply appear at the top.
func (i *Inspector) SetNotifications(ns []Notification) {
	ns = slices.Clone(ns)
	off := i.list.GetScrollOffset()
	h := &i.hold
	held := (off > 0 || h.over != nil) && i.list.Size().Height > 0
	pitch := i.rowPitch()
	top := int(off / pitch)
	sub := off - float32(top)*pitch
	newTop := -1 // the row the first row in sight is on in ns
	if held {
		if a, ok := i.at(top); ok {
			if k := slices.IndexFunc(ns, func(n Notification) bool { return sameNotification(n, a) }); k >= 0 {
				newTop = len(ns) - 1 - k
			}
		}
	}
	if newTop < 0 {
		held = false // nothing in sight to hold on to
	}
	newOff := float32(newTop)*pitch + sub
	if held && h.over != nil && newTop > top && newOff > i.maxOffset(len(ns)) {
		// Too short to scroll the new rows out of sight: keep the list
		// as it is while the pointer is over it.
		h.pending, h.waiting = ns, newTop-top
		h.area.setBadge(h.unseen + h.waiting)
		return
	}
	if held {
		h.unseen = max(0, h.unseen+newTop-top)
	} else {
		h.unseen = 0
	}
	i.apply(ns)
	if held {
		// After apply: selecting the row the selection moved to scrolls
		// to it; the rows in sight win.
		h.applying = true
		i.list.ScrollToOffset(newOff)
		h.applying = false
	}
	h.area.setBadge(h.unseen)
}

// apply lists ns (cloned, oldest first), keeps the selection on its
// notification, and drops any list held back.
func (i *Inspector) apply(ns []Notification) {
	h := &i.hold
	h.applying = true
	defer func() { h.applying = false }()
	h.pending, h.waiting = nil, 0
	var was *Notification
	if i.selected >= 0 && i.selected < len(i.items) {
		was = &i.items[i.selected]
	}
	sel := -1
	if was != nil {
		sel = slices.IndexFunc(ns, func(n Notification) bool { return sameNotification(n, *was) })
	}
	i.items = ns
	i.selected = sel
	if sel >= 0 {
		i.list.Select(len(i.items) - 1 - sel)
	} else {
		i.list.UnselectAll()
	}
	i.list.Refresh()
	i.showDetail()
}

// showNewest lists what waits, if anything, and scrolls to the top: the
// badge's tap.
func (i *Inspector) showNewest() {
	if i.hold.pending != nil {
		i.apply(i.hold.pending)
	}
	i.hold.unseen = 0
	i.hold.area.setBadge(0)
	i.list.ScrollToTop()
	i.list.Refresh()
}

// sawRow counts row id as seen: the rows that arrived out of sight above it
// are fewer.
func (i *Inspector) sawRow(id widget.ListItemID) {
	h := &i.hold
	if h.applying || id >= h.unseen {
		return
	}
	h.unseen = id
	h.area.setBadge(h.unseen + h.waiting)
}

// rowPitch is the height of a list row and the gap under it.
func (i *Inspector) rowPitch() float32 {
	return notifRowHeight + i.list.Theme().Size(theme.SizeNamePadding)
}

// maxOffset is the largest scroll offset of a list of n rows in the list's
// current height.
func (i *Inspector) maxOffset(n int) float32 {
	content := float32(n)*i.rowPitch() - i.list.Theme().Size(theme.SizeNamePadding)
	return content - i.list.Size().Height
}

// sameNotification reports whether a and b are the one notification (as
// listed again, possibly under another name).
func sameNotification(a, b Notification) bool {
	return a.ID == b.ID && a.Kind == b.Kind && a.MessageID == b.MessageID && a.Time.Equal(b.Time) &&
		bytes.Equal(a.Payload, b.Payload)
}

// AddNotification appends n (the newest), as SetNotifications with the
// list and n would.
func (i *Inspector) AddNotification(n Notification) {
	base := i.items
	if i.hold.pending != nil {
		base = i.hold.pending
	}
	i.SetNotifications(append(slices.Clone(base), n))
}

// Notifications returns the notifications listed, oldest first (without
// those held back while the pointer is over a short list).
func (i *Inspector) Notifications() []Notification { return i.items }

// Select opens the detail view of notification k (an index into the
// notifications, oldest first); -1 closes it.
func (i *Inspector) Select(k int) {
	if k < 0 || k >= len(i.items) {
		i.selected = -1
		i.list.UnselectAll()
		i.showDetail()
		return
	}
	i.list.Select(len(i.items) - 1 - k)
}

// Selected returns the index of the notification in the detail view, -1.
func (i *Inspector) Selected() int { return i.selected }

func (i *Inspector) showDetail() {
	if i.selected < 0 || i.selected >= len(i.items) {
		i.detail.clear()
		return
	}
	i.detail.show(i.items[i.selected])
}

// SetApps sets the apps the composer can send to.
func (i *Inspector) SetApps(apps []ui.App) { i.composer.setApps(apps) }

// Apps returns the apps the composer offers.
func (i *Inspector) Apps() []ui.App { return slices.Clone(i.composer.apps) }

// SetResult shows the service's answer to the last send: a status line
// ("200 OK", or an error) and the X-* status headers.
func (i *Inspector) SetResult(status string, headers map[string]string) {
	i.composer.setResult(status, headers)
}

// ShowComposer switches to the "send" pivot; ShowNotifications back.
func (i *Inspector) ShowComposer() { i.pivot.Select(1) }

// ShowNotifications switches to the "notifications" pivot.
func (i *Inspector) ShowNotifications() { i.pivot.Select(0) }

// MinSize is InspectorMinWidth by the smallest phone's height (handset.PhoneHeight
// at controls.MinScale): the list, the detail and the composer scroll.
func (i *Inspector) MinSize() fyne.Size {
	return fyne.NewSize(InspectorMinWidth, handset.PhoneHeight*controls.MinScale)
}

// CreateRenderer is part of fyne.Widget.
func (i *Inspector) CreateRenderer() fyne.WidgetRenderer {
	r := &inspectorRenderer{i: i, bg: canvas.NewRectangle(color.Transparent)}
	r.Refresh()
	return r
}

type inspectorRenderer struct {
	i  *Inspector
	bg *canvas.Rectangle
}

func (r *inspectorRenderer) Destroy()           {}
func (r *inspectorRenderer) MinSize() fyne.Size { return r.i.MinSize() }
func (r *inspectorRenderer) Objects() []fyne.CanvasObject {
	return []fyne.CanvasObject{r.bg, r.i.pivot, r.i.body}
}

func (r *inspectorRenderer) Layout(size fyne.Size) {
	r.bg.Resize(size)
	r.i.pivot.Move(fyne.NewPos(16, 8))
	r.i.pivot.Resize(r.i.pivot.MinSize())
	top := 8 + r.i.pivot.MinSize().Height + 8
	r.i.body.Move(fyne.NewPos(16, top))
	r.i.body.Resize(fyne.NewSize(size.Width-32, size.Height-top-8))
}

func (r *inspectorRenderer) Refresh() {
	r.bg.FillColor = theme.ColorForWidget(theme.ColorNameBackground, r.i)
	r.bg.Hidden = controls.IsCanvasBackground(r.bg.FillColor) // see controls.IsCanvasBackground
	r.bg.Refresh()
	r.i.pivot.Refresh()
	r.i.body.Refresh()
	r.Layout(r.i.Size())
}

// Columns of the notification list.
var notifColumns = []struct {
	title string
	width float32
}{
	{"kind", 52}, {"app", 104}, {"class", 48}, {"message id", 112}, {"latency", 72}, {"time", 80},
}

// notifRowHeight is the height of a row of the notification list.
const notifRowHeight = 28

// notifRow is a row of the notification list: one text per column. It
// draws its own hover highlight: it takes the pointer from the list's row
// (so that the inspector knows the pointer is over the list).
type notifRow struct {
	widget.BaseWidget
	cells    []*controls.TextBlock
	shown    Notification
	hover    *canvas.Rectangle
	over     bool // the pointer is over the row (as the highlight shows)
	selected bool // the list draws the selection: no hover highlight then
	header   bool // the column titles: no hover highlight
	// onHover is told when the pointer enters (true) and leaves the row.
	onHover func(o fyne.CanvasObject, in bool)
}

func newNotifRow() *notifRow {
	r := &notifRow{hover: canvas.NewRectangle(color.Transparent)}
	r.hover.Hide()
	for range notifColumns {
		r.cells = append(r.cells, controls.NewText("", 15, theme.ColorNameForeground))
	}
	r.ExtendBaseWidget(r)
	return r
}

func newNotifHeader() *notifRow {
	r := newNotifRow()
	r.header = true
	for n, c := range notifColumns {
		r.cells[n].SetText(c.title)
		r.cells[n].SetColor(wptheme.ColorNameSubtle)
	}
	return r
}

func (r *notifRow) set(n Notification) {
	if r.over && !sameNotification(n, r.shown) {
		// The list moved the row to another place: the pointer is
		// over it no more, as far as the highlight knows (the driver
		// says so on its next move).
		r.over = false
		r.Refresh()
	}
	r.shown = n
	id := n.MessageID
	if id == "" {
		id = "–"
	}
	vals := []string{n.Kind, n.App, classText(n.Class), id, Latency(n.Latency), n.Time.Format("15:04:05")}
	for c, v := range vals {
		r.cells[c].SetText(fitWidth(v, 15, notifColumns[c].width-8))
	}
}

func (r *notifRow) MinSize() fyne.Size {
	var w float32
	for _, c := range notifColumns {
		w += c.width
	}
	return fyne.NewSize(w, notifRowHeight)
}

// MouseIn is part of desktop.Hoverable.
func (r *notifRow) MouseIn(*desktop.MouseEvent) { r.setOver(true) }

// MouseMoved is part of desktop.Hoverable.
func (r *notifRow) MouseMoved(*desktop.MouseEvent) {}

// MouseOut is part of desktop.Hoverable.
func (r *notifRow) MouseOut() { r.setOver(false) }

func (r *notifRow) setOver(in bool) {
	r.over = in
	if r.onHover != nil {
		r.onHover(r, in)
	}
	r.Refresh()
}

func (r *notifRow) setSelected(on bool) {
	if r.selected != on {
		r.selected = on
		r.Refresh()
	}
}

func (r *notifRow) CreateRenderer() fyne.WidgetRenderer {
	objs := []fyne.CanvasObject{r.hover}
	for _, c := range r.cells {
		objs = append(objs, c)
	}
	return &notifRowRenderer{r: r, objs: objs}
}

type notifRowRenderer struct {
	r    *notifRow
	objs []fyne.CanvasObject
}

func (rr *notifRowRenderer) Destroy()                     {}
func (rr *notifRowRenderer) MinSize() fyne.Size           { return rr.r.MinSize() }
func (rr *notifRowRenderer) Objects() []fyne.CanvasObject { return rr.objs }
func (rr *notifRowRenderer) Refresh() {
	th := rr.r.Theme()
	v := fyne.CurrentApp().Settings().ThemeVariant()
	rr.r.hover.FillColor = th.Color(theme.ColorNameHover, v)
	rr.r.hover.CornerRadius = th.Size(theme.SizeNameSelectionRadius)
	rr.r.hover.Hidden = !rr.r.over || rr.r.selected || rr.r.header
	rr.r.hover.Refresh()
	for _, c := range rr.r.cells {
		c.Refresh()
	}
	rr.Layout(rr.r.Size())
}

func (rr *notifRowRenderer) Layout(size fyne.Size) {
	rr.r.hover.Resize(size)
	x := float32(4)
	for n, c := range rr.r.cells {
		h := c.MinSize().Height
		c.Move(fyne.NewPos(x, (size.Height-h)/2))
		c.Resize(c.MinSize())
		x += notifColumns[n].width
	}
}

// fitWidth cuts s with an ellipsis until it is at most w units wide in the
// theme's font at size. Text that fits is measured once; other text is cut
// by bisecting over the widths of its prefixes, so a sender's 256-byte
// X-MessageID costs about log2(256) measurements, not one per character
// dropped.
func fitWidth(s string, size, w float32) string {
	tooWide := func(s string) bool { return measureText(s, size, fyne.TextStyle{}).Width > w }
	if !tooWide(s) {
		return s
	}
	r := []rune(s)
	// The first prefix too wide with its ellipsis is r[:n+1]+"…"; all of r
	// is too wide without one.
	n := sort.Search(len(r), func(i int) bool { return tooWide(string(r[:i+1]) + "…") })
	return string(r[:n]) + "…"
}

// measureText is how fitWidth measures text (fyne.MeasureText); tests
// count through it.
var measureText = fyne.MeasureText

// classText shows an X-NotificationClass value with its batching interval.
func classText(class int) string {
	if class == 0 {
		return "–"
	}
	return fmt.Sprint(class)
}

// ClassInterval names the batching interval of an X-NotificationClass
// value: "immediate", "450 s", "900 s", or "" for another value.
func ClassInterval(class int) string {
	switch {
	case class >= 1 && class <= 3:
		return "immediate"
	case class >= 11 && class <= 13:
		return "450 s"
	case class >= 21 && class <= 23:
		return "900 s"
	}
	return ""
}

// Latency formats a delivery latency: "<1 ms", "12 ms", "1.25 s".
func Latency(d time.Duration) string {
	switch {
	case d <= 0:
		return "–"
	case d < time.Millisecond:
		return "<1 ms"
	case d < time.Second:
		return fmt.Sprintf("%d ms", d.Milliseconds())
	}
	return fmt.Sprintf("%.2f s", d.Seconds())
}

// HexDump formats b sixteen bytes a line: offset, hex, and the printable
// ASCII characters.
func HexDump(b []byte) string { return strings.Join(hexDumpLines(b, 16), "\n") }

// hexDumpLines formats b per bytes a line, as HexDump does sixteen.
func hexDumpLines(b []byte, per int) []string {
	const digits = "0123456789abcdef"
	lines := make([]string, 0, (len(b)+per-1)/per)
	var buf []byte
	for off := 0; off < len(b); off += per {
		line := b[off:min(off+per, len(b))]
		buf = buf[:0]
		if off < 0x10000 {
			buf = append(buf, digits[off>>12&15], digits[off>>8&15], digits[off>>4&15], digits[off&15])
		} else {
			buf = strconv.AppendInt(buf, int64(off), 16)
		}
		buf = append(buf, "  "...)
		for i := range per {
			if i < len(line) {
				buf = append(buf, digits[line[i]>>4], digits[line[i]&15], ' ')
			} else {
				buf = append(buf, "   "...)
			}
		}
		buf = append(buf, ' ')
		for _, c := range line {
			if c < 0x20 || c >= 0x7f {
				c = '.'
			}
			buf = append(buf, c)
		}
		lines = append(lines, string(buf))
	}
	return lines
}

func newSubheading(s string) *widget.Label {
	l := widget.NewLabel(s)
	l.Importance = widget.LowImportance
	return l
}

// setTable fills a form-layout container with the headers, sorted by name.
func setTable(c *fyne.Container, headers map[string]string) {
	names := make([]string, 0, len(headers))
	for k := range headers {
		names = append(names, k)
	}
	slices.Sort(names)
	objs := make([]fyne.CanvasObject, 0, 2*len(names))
	for _, k := range names {
		key := widget.NewLabel(k)
		key.Importance = widget.LowImportance
		val := widget.NewLabel(headers[k])
		val.Selectable = true
		val.Wrapping = fyne.TextWrapBreak
		objs = append(objs, key, val)
	}
	if len(objs) == 0 {
		none := widget.NewLabel("none")
		none.Importance = widget.LowImportance
		objs = append(objs, none, layout.NewSpacer())
	}
	c.Objects = objs
	c.Refresh()
}
