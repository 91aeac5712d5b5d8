package inspector

import (
	"fmt"
	"image/color"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/driver/desktop"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"github.com/openmpns/openmpns/emulator/ui/controls"
)

// listHold is what the notification list needs to keep the rows in sight
// where they are while new ones arrive above them (see SetNotifications).
type listHold struct {
	// area holds the list and draws the "N new" badge over it.
	area *listArea
	// over is the row, the list's gaps or the badge the pointer is over,
	// nil when it is elsewhere. (The driver leaves one object and enters
	// the next, so moving from a row to the next clears it for a moment.)
	over fyne.CanvasObject
	// unseen is how many rows at the top arrived out of sight and have not
	// been in sight since: rows 0 to unseen-1.
	unseen int
	// pending is the newest list, held back while the pointer is over a
	// list too short to scroll its new rows out of sight; nil for none.
	// waiting is how many rows it adds above the first row in sight.
	pending []Notification
	waiting int
	// applying is set while the inspector changes the list itself: the rows
	// the list binds meanwhile were not seen by anyone.
	applying bool
}

// hovered records the pointer entering (in) or leaving o.
func (h *listHold) hovered(o fyne.CanvasObject, in bool) {
	switch {
	case in:
		h.over = o
	case h.over == o:
		h.over = nil
	}
}

// listArea is the notification list under its column titles, with the
// "N new" badge over the titles' right end. It takes the pointer where no
// row does (the titles, the gaps between rows), so that the pointer
// anywhere over the list counts.
type listArea struct {
	widget.BaseWidget
	header  *notifRow
	list    *widget.List
	pane    *fyne.Container
	badge   *newBadge
	onHover func(o fyne.CanvasObject, in bool)
}

func newListArea(list *widget.List, showNewest func(), onHover func(fyne.CanvasObject, bool)) *listArea {
	a := &listArea{header: newNotifHeader(), list: list, onHover: onHover}
	a.header.onHover = onHover // a row: it takes the pointer from the area
	a.pane = container.NewBorder(a.header, nil, nil, nil, list)
	a.badge = newNewBadge(showNewest, onHover)
	a.badge.Hide()
	a.ExtendBaseWidget(a)
	return a
}

// setBadge shows "n new" over the list, or nothing for 0. (The list is
// not refreshed: setBadge is called while the list binds its rows.)
func (a *listArea) setBadge(n int) {
	a.badge.setCount(n)
	a.badge.Refresh()
	a.placeBadge(a.Size())
}

// placeBadge puts the badge over the right end of the column titles.
func (a *listArea) placeBadge(size fyne.Size) {
	b := a.badge.MinSize()
	h := a.header.MinSize().Height
	a.badge.Move(fyne.NewPos(size.Width-b.Width-4, (h-b.Height)/2))
	a.badge.Resize(b)
}

// MouseIn is part of desktop.Hoverable.
func (a *listArea) MouseIn(*desktop.MouseEvent) { a.onHover(a, true) }

// MouseMoved is part of desktop.Hoverable.
func (a *listArea) MouseMoved(*desktop.MouseEvent) {}

// MouseOut is part of desktop.Hoverable.
func (a *listArea) MouseOut() { a.onHover(a, false) }

func (a *listArea) CreateRenderer() fyne.WidgetRenderer {
	return &listAreaRenderer{a: a}
}

type listAreaRenderer struct{ a *listArea }

func (r *listAreaRenderer) Destroy()           {}
func (r *listAreaRenderer) MinSize() fyne.Size { return r.a.pane.MinSize() }
func (r *listAreaRenderer) Objects() []fyne.CanvasObject {
	return []fyne.CanvasObject{r.a.pane, r.a.badge}
}

func (r *listAreaRenderer) Layout(size fyne.Size) {
	r.a.pane.Resize(size)
	r.a.placeBadge(size)
}

func (r *listAreaRenderer) Refresh() {
	r.a.pane.Refresh()
	r.a.badge.Refresh()
	r.Layout(r.a.Size())
}

// newBadge is the "N new" badge: tapped, it shows the newest rows (and
// scrolls to them).
type newBadge struct {
	widget.BaseWidget
	n       int
	bg      *canvas.Rectangle
	text    *controls.TextBlock
	onTap   func()
	onHover func(o fyne.CanvasObject, in bool)
}

func newNewBadge(tapped func(), onHover func(fyne.CanvasObject, bool)) *newBadge {
	b := &newBadge{
		bg:      canvas.NewRectangle(color.Transparent),
		text:    controls.NewText("", 15, theme.ColorNameForegroundOnPrimary),
		onTap:   tapped,
		onHover: onHover,
	}
	b.ExtendBaseWidget(b)
	return b
}

func (b *newBadge) setCount(n int) {
	b.n = n
	b.text.SetText(fmt.Sprintf("%d new", n))
	controls.SetVisible(b, n > 0)
}

// Text is what the badge says ("3 new"), "" when hidden.
func (b *newBadge) Text() string {
	if b.Hidden {
		return ""
	}
	return b.text.Text()
}

// Tapped is part of fyne.Tappable.
func (b *newBadge) Tapped(*fyne.PointEvent) {
	if b.onTap != nil {
		b.onTap()
	}
}

// MouseIn is part of desktop.Hoverable.
func (b *newBadge) MouseIn(*desktop.MouseEvent) { b.onHover(b, true) }

// MouseMoved is part of desktop.Hoverable.
func (b *newBadge) MouseMoved(*desktop.MouseEvent) {}

// MouseOut is part of desktop.Hoverable.
func (b *newBadge) MouseOut() { b.onHover(b, false) }

func (b *newBadge) MinSize() fyne.Size {
	t := b.text.MinSize()
	return fyne.NewSize(t.Width+16, t.Height+4)
}

func (b *newBadge) CreateRenderer() fyne.WidgetRenderer {
	return &newBadgeRenderer{b: b}
}

type newBadgeRenderer struct{ b *newBadge }

func (r *newBadgeRenderer) Destroy()           {}
func (r *newBadgeRenderer) MinSize() fyne.Size { return r.b.MinSize() }
func (r *newBadgeRenderer) Objects() []fyne.CanvasObject {
	return []fyne.CanvasObject{r.b.bg, r.b.text}
}

func (r *newBadgeRenderer) Layout(size fyne.Size) {
	r.b.bg.Resize(size)
	t := r.b.text.MinSize()
	r.b.text.Move(fyne.NewPos((size.Width-t.Width)/2, (size.Height-t.Height)/2))
	r.b.text.Resize(t)
}

func (r *newBadgeRenderer) Refresh() {
	r.b.bg.FillColor = theme.ColorForWidget(theme.ColorNamePrimary, r.b)
	r.b.bg.Refresh()
	r.b.text.Refresh()
	r.Layout(r.b.Size())
}
