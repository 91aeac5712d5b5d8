package ui

import (
	"image/color"
	"strings"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"
)

// page is a Windows Phone page: the application title in small capitals, the
// page title in huge thin lowercase letters under it, and the content, which
// scrolls under the titles, 24 units from the left edge.
type page struct {
	widget.BaseWidget

	app, title *textBlock
	scroll     *container.Scroll
	content    fyne.CanvasObject
}

func newPage(app, title string, content fyne.CanvasObject) *page {
	p := &page{
		app:     newText(strings.ToUpper(app), fontNormal, theme.ColorNameForeground),
		title:   newLightText(strings.ToLower(title), fontTitle, theme.ColorNameForeground),
		content: content,
	}
	p.scroll = container.NewVScroll(container.New(&padded{left: marginLeft, right: marginRight, bottom: 36}, content))
	p.ExtendBaseWidget(p)
	return p
}

func (p *page) setTitle(title string) { p.title.SetText(strings.ToLower(title)) }

func (p *page) CreateRenderer() fyne.WidgetRenderer {
	r := &pageRenderer{p: p}
	r.Layout(p.Size())
	return r
}

type pageRenderer struct{ p *page }

func (r *pageRenderer) Destroy() {}
func (r *pageRenderer) Objects() []fyne.CanvasObject {
	return []fyne.CanvasObject{r.p.app, r.p.title, r.p.scroll}
}
func (r *pageRenderer) MinSize() fyne.Size { return fyne.NewSize(ScreenWidth, 200) }
func (r *pageRenderer) Refresh() {
	r.p.app.Refresh()
	r.p.title.Refresh()
	r.p.scroll.Refresh()
	r.Layout(r.p.Size())
}

const (
	pageAppTop   = 14
	pageTitleTop = 30 // the title's box; the glyphs sit lower in it
)

func (r *pageRenderer) Layout(size fyne.Size) {
	p := r.p
	p.app.Move(fyne.NewPos(marginLeft, pageAppTop))
	p.app.Resize(p.app.MinSize())
	p.title.Move(fyne.NewPos(marginLeft-4, pageTitleTop))
	p.title.Resize(p.title.MinSize())
	top := pageTitleTop + p.title.MinSize().Height + 4
	p.scroll.Move(fyne.NewPos(0, top))
	p.scroll.Resize(fyne.NewSize(size.Width, max(0, size.Height-top)))
}

// padded is a layout that insets its objects, stacked, by fixed margins.
type padded struct{ top, bottom, left, right float32 }

func (l *padded) MinSize(objs []fyne.CanvasObject) fyne.Size {
	var s fyne.Size
	for _, o := range objs {
		if o.Visible() {
			s = s.Max(o.MinSize())
		}
	}
	return s.Add(fyne.NewSize(l.left+l.right, l.top+l.bottom))
}

func (l *padded) Layout(objs []fyne.CanvasObject, size fyne.Size) {
	for _, o := range objs {
		o.Move(fyne.NewPos(l.left, l.top))
		o.Resize(fyne.NewSize(size.Width-l.left-l.right, size.Height-l.top-l.bottom))
	}
}

// column is a layout that stacks its visible objects top to bottom at
// their minimum heights and the full width, with no padding: spacing is
// explicit (see gap).
type column struct{}

func (column) MinSize(objs []fyne.CanvasObject) fyne.Size {
	var w, h float32
	for _, o := range objs {
		if !o.Visible() {
			continue
		}
		m := o.MinSize()
		w, h = max(w, m.Width), h+m.Height
	}
	return fyne.NewSize(w, h)
}

func (column) Layout(objs []fyne.CanvasObject, size fyne.Size) {
	var y float32
	for _, o := range objs {
		if !o.Visible() {
			continue
		}
		h := o.MinSize().Height
		o.Move(fyne.NewPos(0, y))
		o.Resize(fyne.NewSize(size.Width, h))
		y += h
	}
}

// newColumn stacks objs with the column layout.
func newColumn(objs ...fyne.CanvasObject) *fyne.Container {
	return container.New(column{}, objs...)
}

// gap is vertical space of h units in a column.
func gap(h float32) fyne.CanvasObject {
	r := canvas.NewRectangle(color.Transparent)
	r.SetMinSize(fyne.NewSize(0, h))
	return r
}

// setVisible shows or hides o.
func setVisible(o fyne.CanvasObject, on bool) {
	if on {
		o.Show()
	} else {
		o.Hide()
	}
}
