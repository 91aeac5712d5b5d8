package controls

import (
	"strings"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"
)

// Page is a Windows Phone Page: the application title in small capitals, the
// Page title in huge thin lowercase letters under it, and the content, which
// scrolls under the titles, 24 units from the left edge. At scale k all of
// it is k times larger: the titles, the margins, the content (given the
// scale with scaleTree) and fyne's widgets in it (through the theme).
type Page struct {
	widget.BaseWidget
	Scaled

	app, title *TextBlock
	// Scroll holds the content under the titles.
	Scroll  *container.Scroll
	content fyne.CanvasObject
	margins *padded
	theme   *ScaledTheme
	themed  *container.ThemeOverride // the scroll, in theme
}

func NewPage(app, title string, content fyne.CanvasObject) *Page {
	p := &Page{
		app:     NewText(strings.ToUpper(app), FontNormal, theme.ColorNameForeground),
		title:   NewLightText(strings.ToLower(title), FontTitle, theme.ColorNameForeground),
		content: content,
		margins: &padded{left: MarginLeft, right: MarginRight, bottom: 36},
		theme:   &ScaledTheme{},
	}
	p.Scroll = container.NewVScroll(container.New(p.margins, content))
	p.theme.Of = p
	p.themed = container.NewThemeOverride(p.Scroll, p.theme)
	p.ExtendBaseWidget(p)
	return p
}

func (p *Page) SetTitle(title string) { p.title.SetText(strings.ToLower(title)) }

// App is the application title over the page title.
func (p *Page) App() *TextBlock { return p.app }

// Title is the page title.
func (p *Page) Title() *TextBlock { return p.title }

// setScale draws the page k times larger than on a 480-unit screen.
func (p *Page) SetPhoneScale(k float32) {
	if !p.Rescale(k) {
		return
	}
	k = p.Scale()
	p.app.SetPhoneScale(k)
	p.title.SetPhoneScale(k)
	p.margins.k = k
	p.theme.k = k
	ScaleTree(p.content, k)
	p.themed.Refresh() // fyne's widgets take the new sizes; the scroll re-measures
	p.Refresh()
}

func (p *Page) CreateRenderer() fyne.WidgetRenderer {
	r := &pageRenderer{p: p}
	r.Layout(p.Size())
	return r
}

type pageRenderer struct{ p *Page }

func (r *pageRenderer) Destroy() {}
func (r *pageRenderer) Objects() []fyne.CanvasObject {
	return []fyne.CanvasObject{r.p.app, r.p.title, r.p.themed}
}
func (r *pageRenderer) MinSize() fyne.Size {
	k := r.p.Scale()
	return fyne.NewSize(ScreenWidth*k, 200*k)
}
func (r *pageRenderer) Refresh() {
	r.p.app.Refresh()
	r.p.title.Refresh()
	r.p.Scroll.Refresh()
	r.Layout(r.p.Size())
}

const (
	pageAppTop   = 14
	pageTitleTop = 30 // the title's box; the glyphs sit lower in it
)

func (r *pageRenderer) Layout(size fyne.Size) {
	p := r.p
	k := p.Scale()
	p.app.Move(fyne.NewPos(MarginLeft*k, pageAppTop*k))
	p.app.Resize(p.app.MinSize())
	p.title.Move(fyne.NewPos((MarginLeft-4)*k, pageTitleTop*k))
	p.title.Resize(p.title.MinSize())
	top := pageTitleTop*k + p.title.MinSize().Height + 4*k
	p.themed.Move(fyne.NewPos(0, top))
	p.themed.Resize(fyne.NewSize(size.Width, max(0, size.Height-top)))
}

// padded is a layout that insets its objects, stacked, by fixed margins,
// given at scale 1 and drawn at scale k.
type padded struct {
	Scaled
	top, bottom, left, right float32
}

func (l *padded) MinSize(objs []fyne.CanvasObject) fyne.Size {
	var s fyne.Size
	for _, o := range objs {
		if o.Visible() {
			s = s.Max(o.MinSize())
		}
	}
	k := l.Scale()
	return s.Add(fyne.NewSize((l.left+l.right)*k, (l.top+l.bottom)*k))
}

func (l *padded) Layout(objs []fyne.CanvasObject, size fyne.Size) {
	k := l.Scale()
	for _, o := range objs {
		o.Move(fyne.NewPos(l.left*k, l.top*k))
		o.Resize(fyne.NewSize(size.Width-l.left*k-l.right*k, size.Height-l.top*k-l.bottom*k))
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

// NewColumn stacks objs with the column layout.
func NewColumn(objs ...fyne.CanvasObject) *fyne.Container {
	return container.New(column{}, objs...)
}

// SetVisible shows or hides o.
func SetVisible(o fyne.CanvasObject, on bool) {
	if on {
		o.Show()
	} else {
		o.Hide()
	}
}
