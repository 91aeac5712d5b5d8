package ui

import (
	"fmt"
	"image/color"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"github.com/openmpns/openmpns/emulator/ui/wptheme"
)

// OptIn is the prompt an app shows the first time it wants to send push
// notifications (a certification rule): a Windows Phone message box across
// the top of the screen, "Allow <App> to show notifications?", with an
// "allow" and a "don't allow" button, over a veil that dims the screen.
// Show it with Phone.ShowDialog.
type OptIn struct {
	widget.BaseWidget

	// OnAnswer, if set, is called with the user's answer: true for "allow".
	// The back key answers false, as it cancels a message box on the phone.
	// The controller hides the prompt (Phone.HideDialog).
	OnAnswer func(allowed bool)

	box *messageBox
}

var _ BackHandler = (*OptIn)(nil)

// NewOptIn returns the prompt for the app called appName.
func NewOptIn(appName string) *OptIn {
	o := &OptIn{}
	o.box = newMessageBox("", "", "allow", "don't allow", func(ok bool) {
		if o.OnAnswer != nil {
			o.OnAnswer(ok)
		}
	})
	o.ExtendBaseWidget(o)
	o.SetApp(appName)
	return o
}

// SetApp changes the app the prompt asks about.
func (o *OptIn) SetApp(appName string) {
	o.box.setText(OptInTitle(appName), OptInMessage(appName))
}

// OptInTitle is the prompt's question for an app.
func OptInTitle(appName string) string {
	return fmt.Sprintf("Allow %s to show notifications?", appName)
}

// OptInMessage is the sentence under the question.
func OptInMessage(appName string) string {
	return fmt.Sprintf("%s would like to send you notifications. You can turn them off in Settings.", appName)
}

// Allow answers "allow", as a tap on the button does.
func (o *OptIn) Allow() { o.box.answer(true) }

// Deny answers "don't allow", as a tap on the button does.
func (o *OptIn) Deny() { o.box.answer(false) }

// HandleBack answers "don't allow" and lets the phone close the prompt.
func (o *OptIn) HandleBack() bool {
	o.box.answer(false)
	return false
}

func (o *OptIn) setScale(k float32) { o.box.setScale(k) }

// CreateRenderer is part of fyne.Widget.
func (o *OptIn) CreateRenderer() fyne.WidgetRenderer {
	return widget.NewSimpleRenderer(o.box)
}

// messageBox is the Windows Phone MessageBox: a veil over the screen and a
// panel at the top in the chrome colour with a title, a message and two
// buttons side by side.
type messageBox struct {
	widget.BaseWidget
	scaled

	title, message *textBlock
	ok, cancel     *button
	onAnswer       func(bool)
}

var _ fyne.Tappable = (*messageBox)(nil)

const (
	boxPadding    = 24
	boxButtonGap  = 12
	boxTitleSize  = fontLarge
	boxTextSize   = fontNormal
	boxButtonSize = (pageWidth - boxButtonGap) / 2
)

func newMessageBox(title, message, ok, cancel string, answer func(bool)) *messageBox {
	m := &messageBox{onAnswer: answer}
	m.title = newParagraph(title, boxTitleSize, theme.ColorNameForeground, pageWidth, 0)
	m.title.light = true
	m.message = newParagraph(message, boxTextSize, theme.ColorNameForeground, pageWidth, 0)
	m.ok = newButton(ok, func() { m.answer(true) })
	m.cancel = newButton(cancel, func() { m.answer(false) })
	m.ok.width, m.cancel.width = boxButtonSize, boxButtonSize
	m.ExtendBaseWidget(m)
	return m
}

func (m *messageBox) setScale(k float32) {
	if !m.rescale(k) {
		return
	}
	m.title.scaled, m.message.scaled = m.scaled, m.scaled
	m.ok.scaled, m.cancel.scaled = m.scaled, m.scaled
	m.Refresh()
}

func (m *messageBox) setText(title, message string) {
	m.title.SetText(title)
	m.message.SetText(message)
	m.Refresh()
}

func (m *messageBox) answer(ok bool) {
	if m.onAnswer != nil {
		m.onAnswer(ok)
	}
}

// Tapped on the veil does nothing: a message box is modal.
func (m *messageBox) Tapped(*fyne.PointEvent) {}

func (m *messageBox) MinSize() fyne.Size {
	return fyne.NewSize(ScreenWidth*m.scale(), m.panelHeight())
}

func (m *messageBox) panelHeight() float32 {
	k := m.scale()
	return boxPadding*k + m.title.MinSize().Height + 12*k + m.message.MinSize().Height + 24*k + m.ok.MinSize().Height + boxPadding*k
}

func (m *messageBox) CreateRenderer() fyne.WidgetRenderer {
	r := &boxRenderer{m: m, veil: canvas.NewRectangle(color.Transparent), panel: canvas.NewRectangle(color.Transparent)}
	r.Refresh()
	return r
}

type boxRenderer struct {
	m           *messageBox
	veil, panel *canvas.Rectangle
}

func (r *boxRenderer) Destroy()           {}
func (r *boxRenderer) MinSize() fyne.Size { return r.m.MinSize() }
func (r *boxRenderer) Objects() []fyne.CanvasObject {
	m := r.m
	return []fyne.CanvasObject{r.veil, r.panel, m.title, m.message, m.ok, m.cancel}
}

func (r *boxRenderer) Layout(size fyne.Size) {
	m := r.m
	k := m.scale()
	r.veil.Resize(size)
	r.panel.Resize(fyne.NewSize(size.Width, m.panelHeight()))
	y := boxPadding * k
	m.title.Move(fyne.NewPos(marginLeft*k, y-6*k))
	m.title.Resize(m.title.MinSize())
	y += m.title.MinSize().Height + 12*k
	m.message.Move(fyne.NewPos(marginLeft*k, y))
	m.message.Resize(m.message.MinSize())
	y += m.message.MinSize().Height + 24*k
	m.ok.Move(fyne.NewPos(marginLeft*k, y))
	m.ok.Resize(m.ok.MinSize())
	m.cancel.Move(fyne.NewPos((marginLeft+boxButtonSize+boxButtonGap)*k, y))
	m.cancel.Resize(m.cancel.MinSize())
}

func (r *boxRenderer) Refresh() {
	m := r.m
	r.veil.FillColor = theme.ColorForWidget(wptheme.ColorNameDim, m)
	r.panel.FillColor = theme.ColorForWidget(wptheme.ColorNameChrome, m)
	r.veil.Refresh()
	r.panel.Refresh()
	for _, o := range []fyne.CanvasObject{m.title, m.message, m.ok, m.cancel} {
		o.Refresh()
	}
	r.Layout(m.Size())
}
