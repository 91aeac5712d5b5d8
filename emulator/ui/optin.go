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

	box *MessageBox
}

var _ BackHandler = (*OptIn)(nil)

// NewOptIn returns the prompt for the app called appName.
func NewOptIn(appName string) *OptIn {
	o := &OptIn{}
	o.box = NewMessageBox("", "", "allow", "don't allow", func(ok bool) {
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
	o.box.SetText(OptInTitle(appName), OptInMessage(appName))
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

func (o *OptIn) SetPhoneScale(k float32) { o.box.SetPhoneScale(k) }

// CreateRenderer is part of fyne.Widget.
func (o *OptIn) CreateRenderer() fyne.WidgetRenderer {
	return widget.NewSimpleRenderer(o.box)
}

// MessageBox is the Windows Phone MessageBox: a veil over the screen and a
// panel at the top in the chrome colour with a title, a message and two
// buttons side by side.
type MessageBox struct {
	widget.BaseWidget
	Scaled

	title, message *TextBlock
	ok, cancel     *Button
	onAnswer       func(bool)
}

var _ fyne.Tappable = (*MessageBox)(nil)

const (
	boxPadding    = 24
	boxButtonGap  = 12
	boxTitleSize  = FontLarge
	boxTextSize   = FontNormal
	boxButtonSize = (PageWidth - boxButtonGap) / 2
)

func NewMessageBox(title, message, ok, cancel string, answer func(bool)) *MessageBox {
	m := &MessageBox{onAnswer: answer}
	m.title = NewParagraph(title, boxTitleSize, theme.ColorNameForeground, PageWidth, 0)
	m.title.light = true
	m.message = NewParagraph(message, boxTextSize, theme.ColorNameForeground, PageWidth, 0)
	m.ok = NewButton(ok, func() { m.answer(true) })
	m.cancel = NewButton(cancel, func() { m.answer(false) })
	m.ok.width, m.cancel.width = boxButtonSize, boxButtonSize
	m.ExtendBaseWidget(m)
	return m
}

func (m *MessageBox) SetPhoneScale(k float32) {
	if !m.Rescale(k) {
		return
	}
	m.title.Scaled, m.message.Scaled = m.Scaled, m.Scaled
	m.ok.Scaled, m.cancel.Scaled = m.Scaled, m.Scaled
	m.Refresh()
}

func (m *MessageBox) SetText(title, message string) {
	m.title.SetText(title)
	m.message.SetText(message)
	m.Refresh()
}

func (m *MessageBox) answer(ok bool) {
	if m.onAnswer != nil {
		m.onAnswer(ok)
	}
}

// Tapped on the veil does nothing: a message box is modal.
func (m *MessageBox) Tapped(*fyne.PointEvent) {}

func (m *MessageBox) MinSize() fyne.Size {
	return fyne.NewSize(ScreenWidth*m.Scale(), m.panelHeight())
}

func (m *MessageBox) panelHeight() float32 {
	k := m.Scale()
	return boxPadding*k + m.title.MinSize().Height + 12*k + m.message.MinSize().Height + 24*k + m.ok.MinSize().Height + boxPadding*k
}

func (m *MessageBox) CreateRenderer() fyne.WidgetRenderer {
	r := &boxRenderer{m: m, veil: canvas.NewRectangle(color.Transparent), panel: canvas.NewRectangle(color.Transparent)}
	r.Refresh()
	return r
}

type boxRenderer struct {
	m           *MessageBox
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
	k := m.Scale()
	r.veil.Resize(size)
	r.panel.Resize(fyne.NewSize(size.Width, m.panelHeight()))
	y := boxPadding * k
	m.title.Move(fyne.NewPos(MarginLeft*k, y-6*k))
	m.title.Resize(m.title.MinSize())
	y += m.title.MinSize().Height + 12*k
	m.message.Move(fyne.NewPos(MarginLeft*k, y))
	m.message.Resize(m.message.MinSize())
	y += m.message.MinSize().Height + 24*k
	m.ok.Move(fyne.NewPos(MarginLeft*k, y))
	m.ok.Resize(m.ok.MinSize())
	m.cancel.Move(fyne.NewPos((MarginLeft+boxButtonSize+boxButtonGap)*k, y))
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
