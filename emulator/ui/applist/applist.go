package applist

import (
	"image/color"
	"slices"
	"strings"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"github.com/openmpns/openmpns/emulator/ui"
	"github.com/openmpns/openmpns/emulator/ui/controls"
)

// AppList is the list of installed apps the start screen's arrow leads to:
// each app's icon on an accent square and its name, sorted by name. A tap
// launches the app (OnAppTapped). A secondary tap (right click, long press)
// on an app whose tile is not pinned (ui.App.Unpinned) opens its context menu
// under it, "pin to start" (OnPinTapped); a tap elsewhere or the back key
// closes the menu.
type AppList struct {
	widget.BaseWidget

	// OnAppTapped is called with the ID of the app the user tapped.
	OnAppTapped func(id string)
	// OnPinTapped is called with the ID of the app whose "pin to start" the
	// user tapped; the menu is already closed.
	OnPinTapped func(id string)

	page *controls.Page
	rows *fyne.Container
	pool []*appRow
	menu string // the app whose context menu is open, "" for none
	controls.Scaled
}

var _ controls.BackHandler = (*AppList)(nil)

// NewAppList returns an empty app list.
func NewAppList() *AppList {
	l := &AppList{rows: controls.NewColumn()}
	l.page = controls.NewPage("openmpns emulator", "apps", l.rows)
	l.ExtendBaseWidget(l)
	return l
}

// SetApps replaces the apps listed; the list sorts them by name.
func (l *AppList) SetApps(apps []ui.App) {
	apps = slices.Clone(apps)
	slices.SortStableFunc(apps, func(a, b ui.App) int {
		return strings.Compare(strings.ToLower(a.Name), strings.ToLower(b.Name))
	})
	for len(l.pool) < len(apps) {
		r := newAppRow(l)
		r.SetPhoneScale(l.Scale())
		l.pool = append(l.pool, r)
	}
	objs := make([]fyne.CanvasObject, len(apps))
	open := false
	for i, a := range apps {
		l.pool[i].set(a)
		objs[i] = l.pool[i]
		open = open || (a.ID == l.menu && a.Unpinned)
	}
	if !open {
		l.menu = ""
	}
	l.rows.Objects = objs
	l.showMenu(l.menu)
}

// Menu returns the ID of the app whose context menu is open, "" for none.
func (l *AppList) Menu() string { return l.menu }

// OpenMenu opens the context menu of the app with id, if it is listed and
// unpinned; "" closes the menu.
func (l *AppList) OpenMenu(id string) {
	for _, o := range l.rows.Objects {
		if r := o.(*appRow); r.app.ID == id && r.app.Unpinned {
			l.showMenu(id)
			return
		}
	}
	l.showMenu("")
}

// HandleBack closes the context menu.
func (l *AppList) HandleBack() bool {
	if l.menu == "" {
		return false
	}
	l.showMenu("")
	return true
}

func (l *AppList) showMenu(id string) {
	l.menu = id
	for _, o := range l.rows.Objects {
		r := o.(*appRow)
		r.setMenu(r.app.ID == id)
	}
	l.rows.Refresh()
}

func (l *AppList) rowTapped(id string) {
	if l.menu != "" {
		l.showMenu("")
		return
	}
	if l.OnAppTapped != nil {
		l.OnAppTapped(id)
	}
}

func (l *AppList) pinTapped(id string) {
	l.showMenu("")
	if l.OnPinTapped != nil {
		l.OnPinTapped(id)
	}
}

// setScale draws the list, and the rows not shown, at scale k.
func (l *AppList) SetPhoneScale(k float32) {
	if !l.Rescale(k) {
		return
	}
	for _, r := range l.pool {
		r.SetPhoneScale(k)
	}
	l.page.SetPhoneScale(k)
}

// CreateRenderer is part of fyne.Widget.
func (l *AppList) CreateRenderer() fyne.WidgetRenderer { return widget.NewSimpleRenderer(l.page) }

// appRow is one app in the list, with its context menu under it when open.
type appRow struct {
	widget.BaseWidget
	controls.Scaled

	app    ui.App
	list   *AppList
	square *canvas.Rectangle
	icon   *canvas.Image
	name   *controls.TextBlock
	pin    *controls.Button // the context menu's one item
}

var (
	_ fyne.Tappable          = (*appRow)(nil)
	_ fyne.SecondaryTappable = (*appRow)(nil)
)

const (
	appIconSide = 62
	appRowH     = appIconSide + 12
)

func newAppRow(l *AppList) *appRow {
	r := &appRow{list: l, square: canvas.NewRectangle(color.Transparent), icon: &canvas.Image{FillMode: canvas.ImageFillContain}}
	r.name = controls.NewText("", controls.FontMediumLarge, theme.ColorNameForeground)
	r.pin = controls.NewButton("pin to start", func() { l.pinTapped(r.app.ID) })
	r.pin.Hide()
	r.ExtendBaseWidget(r)
	return r
}

func (r *appRow) SetPhoneScale(k float32) {
	if !r.Rescale(k) {
		return
	}
	r.name.Scaled, r.pin.Scaled = r.Scaled, r.Scaled
	r.Refresh()
}

func (r *appRow) setMenu(open bool) {
	if open == r.pin.Visible() {
		return
	}
	r.pin.Hidden = !open
	r.Refresh()
}

// set shows app a in the row; an icon already shown is not decoded and
// drawn again (the controller lists the apps again after every change of
// settings or pins).
func (r *appRow) set(a ui.App) {
	r.app = a
	r.name.SetText(a.Name)
	if r.icon.Resource == a.Icon && r.icon.Hidden == (a.Icon == nil) {
		return
	}
	r.icon.Resource = a.Icon
	r.icon.Hidden = a.Icon == nil
	r.icon.Refresh()
}

func (r *appRow) Tapped(*fyne.PointEvent) { r.list.rowTapped(r.app.ID) }

// TappedSecondary opens the row's context menu.
func (r *appRow) TappedSecondary(*fyne.PointEvent) { r.list.OpenMenu(r.app.ID) }

func (r *appRow) MinSize() fyne.Size {
	k := r.Scale()
	if r.pin.Visible() {
		return fyne.NewSize(controls.PageWidth*k, (appRowH+controls.ButtonHeight+6)*k)
	}
	return fyne.NewSize(controls.PageWidth*k, appRowH*k)
}

func (r *appRow) CreateRenderer() fyne.WidgetRenderer {
	rr := &appRowRenderer{r: r}
	rr.Refresh()
	return rr
}

type appRowRenderer struct{ r *appRow }

func (rr *appRowRenderer) Destroy()           {}
func (rr *appRowRenderer) MinSize() fyne.Size { return rr.r.MinSize() }
func (rr *appRowRenderer) Objects() []fyne.CanvasObject {
	return []fyne.CanvasObject{rr.r.square, rr.r.icon, rr.r.name, rr.r.pin}
}

func (rr *appRowRenderer) Layout(size fyne.Size) {
	r := rr.r
	k := r.Scale()
	r.square.Move(fyne.NewPos(0, 6*k))
	r.square.Resize(fyne.NewSize(appIconSide*k, appIconSide*k))
	r.icon.Move(fyne.NewPos(appIconSide/6*k, (6+appIconSide/6)*k))
	r.icon.Resize(fyne.NewSize(appIconSide*2/3*k, appIconSide*2/3*k))
	h := r.name.MinSize().Height
	r.name.Move(fyne.NewPos((appIconSide+14)*k, (appRowH*k-h)/2))
	r.name.Resize(r.name.MinSize())
	r.pin.Move(fyne.NewPos((appIconSide+14)*k, appRowH*k))
	r.pin.Resize(r.pin.MinSize())
}

func (rr *appRowRenderer) Refresh() {
	r := rr.r
	r.square.FillColor = theme.ColorForWidget(theme.ColorNamePrimary, r)
	r.square.Refresh()
	r.name.Refresh()
	r.pin.Refresh()
	rr.Layout(r.Size())
}
