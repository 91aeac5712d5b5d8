package controls

import (
	"strings"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"github.com/openmpns/openmpns/emulator/ui/wptheme"
)

// Pivot is the header row of a Windows Phone Pivot: its items in large thin
// lowercase letters side by side, the selected one in the foreground colour
// and the others subtle. A tap on an item selects it.
type Pivot struct {
	widget.BaseWidget

	OnSelected func(i int)

	items    []*TextBlock
	selected int
	size     float32
}

var _ fyne.Tappable = (*Pivot)(nil)

const pivotGap = 24

func NewPivot(size float32, items ...string) *Pivot {
	p := &Pivot{size: size}
	for _, it := range items {
		p.items = append(p.items, NewLightText(strings.ToLower(it), size, wptheme.ColorNameSubtle))
	}
	p.ExtendBaseWidget(p)
	p.Select(0)
	return p
}

// Select shows item i as selected and calls OnSelected.
func (p *Pivot) Select(i int) {
	if i < 0 || i >= len(p.items) {
		return
	}
	p.selected = i
	for n, t := range p.items {
		c := wptheme.ColorNameSubtle
		if n == i {
			c = theme.ColorNameForeground
		}
		t.SetColor(c)
	}
	if p.OnSelected != nil {
		p.OnSelected(i)
	}
}

// Tapped selects the item under the pointer.
func (p *Pivot) Tapped(e *fyne.PointEvent) {
	for i, t := range p.items {
		if e.Position.X >= t.Position().X && e.Position.X < t.Position().X+t.Size().Width+pivotGap {
			p.Select(i)
			return
		}
	}
}

func (p *Pivot) MinSize() fyne.Size {
	var w, h float32
	for _, t := range p.items {
		m := t.MinSize()
		w += m.Width + pivotGap
		h = max(h, m.Height)
	}
	return fyne.NewSize(w, h)
}

func (p *Pivot) CreateRenderer() fyne.WidgetRenderer {
	objs := make([]fyne.CanvasObject, len(p.items))
	for i, t := range p.items {
		objs[i] = t
	}
	return &pivotRenderer{p: p, objs: objs}
}

type pivotRenderer struct {
	p    *Pivot
	objs []fyne.CanvasObject
}

func (r *pivotRenderer) Destroy()                     {}
func (r *pivotRenderer) MinSize() fyne.Size           { return r.p.MinSize() }
func (r *pivotRenderer) Objects() []fyne.CanvasObject { return r.objs }
func (r *pivotRenderer) Refresh() {
	for _, t := range r.p.items {
		t.Refresh()
	}
	r.Layout(r.p.Size())
}

func (r *pivotRenderer) Layout(fyne.Size) {
	var x float32
	for _, t := range r.p.items {
		t.Move(fyne.NewPos(x, 0))
		t.Resize(t.MinSize())
		x += t.MinSize().Width + pivotGap
	}
}
