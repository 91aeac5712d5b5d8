package ui

import (
	"image/color"
	"slices"
	"strings"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"
)

// AppList is the list of installed apps the start screen's arrow leads to:
// each app's icon on an accent square and its name, sorted by name. A tap
// launches the app (OnAppTapped).
type AppList struct {
	widget.BaseWidget

	// OnAppTapped is called with the ID of the app the user tapped.
	OnAppTapped func(id string)

	page *page
	rows *fyne.Container
	pool []*appRow
}

// NewAppList returns an empty app list.
func NewAppList() *AppList {
	l := &AppList{rows: newColumn()}
	l.page = newPage("openmpns emulator", "apps", l.rows)
	l.ExtendBaseWidget(l)
	return l
}

// SetApps replaces the apps listed; the list sorts them by name.
func (l *AppList) SetApps(apps []App) {
	apps = slices.Clone(apps)
	slices.SortStableFunc(apps, func(a, b App) int {
		return strings.Compare(strings.ToLower(a.Name), strings.ToLower(b.Name))
	})
	for len(l.pool) < len(apps) {
		r := newAppRow(func(id string) {
			if l.OnAppTapped != nil {
				l.OnAppTapped(id)
			}
		})
		l.pool = append(l.pool, r)
	}
	objs := make([]fyne.CanvasObject, len(apps))
	for i, a := range apps {
		l.pool[i].set(a)
		objs[i] = l.pool[i]
	}
	l.rows.Objects = objs
	l.rows.Refresh()
}

// CreateRenderer is part of fyne.Widget.
func (l *AppList) CreateRenderer() fyne.WidgetRenderer { return widget.NewSimpleRenderer(l.page) }

// appRow is one app in the list.
type appRow struct {
	widget.BaseWidget

	app    App
	tapped func(id string)
	square *canvas.Rectangle
	icon   *canvas.Image
	name   *textBlock
}

var _ fyne.Tappable = (*appRow)(nil)

const (
	appIconSide = 62
	appRowH     = appIconSide + 12
)

func newAppRow(tapped func(string)) *appRow {
	r := &appRow{tapped: tapped, square: canvas.NewRectangle(color.Transparent), icon: &canvas.Image{FillMode: canvas.ImageFillContain}}
	r.name = newText("", fontMediumLg, theme.ColorNameForeground)
	r.ExtendBaseWidget(r)
	return r
}

func (r *appRow) set(a App) {
	r.app = a
	r.name.SetText(a.Name)
	r.icon.Resource = a.Icon
	r.icon.Hidden = a.Icon == nil
	r.icon.Refresh()
}

func (r *appRow) Tapped(*fyne.PointEvent) {
	if r.tapped != nil {
		r.tapped(r.app.ID)
	}
}

func (r *appRow) MinSize() fyne.Size { return fyne.NewSize(pageWidth, appRowH) }

func (r *appRow) CreateRenderer() fyne.WidgetRenderer {
	rr := &appRowRenderer{r: r}
	rr.Refresh()
	return rr
}

type appRowRenderer struct{ r *appRow }

func (rr *appRowRenderer) Destroy()           {}
func (rr *appRowRenderer) MinSize() fyne.Size { return rr.r.MinSize() }
func (rr *appRowRenderer) Objects() []fyne.CanvasObject {
	return []fyne.CanvasObject{rr.r.square, rr.r.icon, rr.r.name}
}

func (rr *appRowRenderer) Layout(size fyne.Size) {
	r := rr.r
	r.square.Move(fyne.NewPos(0, 6))
	r.square.Resize(fyne.NewSize(appIconSide, appIconSide))
	r.icon.Move(fyne.NewPos(appIconSide/6, 6+appIconSide/6))
	r.icon.Resize(fyne.NewSize(appIconSide*2/3, appIconSide*2/3))
	h := r.name.MinSize().Height
	r.name.Move(fyne.NewPos(appIconSide+14, (size.Height-h)/2))
	r.name.Resize(r.name.MinSize())
}

func (rr *appRowRenderer) Refresh() {
	r := rr.r
	r.square.FillColor = theme.ColorForWidget(theme.ColorNamePrimary, r)
	r.square.Refresh()
	r.name.Refresh()
	rr.Layout(r.Size())
}
