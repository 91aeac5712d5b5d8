package controls

import (
	"image/color"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"github.com/openmpns/openmpns/emulator/ui/wptheme"
)

// MessageBox is the Windows Phone MessageBox: a veil over the screen and a
// panel at the top in the chrome colour with a title, a message and two
// buttons side by side.
type MessageBox struct {
	widget.BaseWidget
	Scaled

	// Title and Message are the box's texts; OK and Cancel its buttons,
	// exported so that a screen's tests can tap them.
	Title, Message *TextBlock
	OK, Cancel     *Button
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
	m.Title = NewParagraph(title, boxTitleSize, theme.ColorNameForeground, PageWidth, 0)
	m.Title.light = true
	m.Message = NewParagraph(message, boxTextSize, theme.ColorNameForeground, PageWidth, 0)
	m.OK = NewButton(ok, func() { m.Answer(true) })
	m.Cancel = NewButton(cancel, func() { m.Answer(false) })
	m.OK.Width, m.Cancel.Width = boxButtonSize, boxButtonSize
	m.ExtendBaseWidget(m)
	return m
}

func (m *MessageBox) SetPhoneScale(k float32) {
	if !m.Rescale(k) {
		return
	}
	m.Title.Scaled, m.Message.Scaled = m.Scaled, m.Scaled
	m.OK.Scaled, m.Cancel.Scaled = m.Scaled, m.Scaled
	m.Refresh()
}

func (m *MessageBox) SetText(title, message string) {
	m.Title.SetText(title)
	m.Message.SetText(message)
	m.Refresh()
}

// Answer closes the box with ok as the answer, as a tap on a button does.
func (m *MessageBox) Answer(ok bool) {
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
	return boxPadding*k + m.Title.MinSize().Height + 12*k + m.Message.MinSize().Height + 24*k + m.OK.MinSize().Height + boxPadding*k
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
	return []fyne.CanvasObject{r.veil, r.panel, m.Title, m.Message, m.OK, m.Cancel}
}

func (r *boxRenderer) Layout(size fyne.Size) {
	m := r.m
	k := m.Scale()
	r.veil.Resize(size)
	r.panel.Resize(fyne.NewSize(size.Width, m.panelHeight()))
	y := boxPadding * k
	m.Title.Move(fyne.NewPos(MarginLeft*k, y-6*k))
	m.Title.Resize(m.Title.MinSize())
	y += m.Title.MinSize().Height + 12*k
	m.Message.Move(fyne.NewPos(MarginLeft*k, y))
	m.Message.Resize(m.Message.MinSize())
	y += m.Message.MinSize().Height + 24*k
	m.OK.Move(fyne.NewPos(MarginLeft*k, y))
	m.OK.Resize(m.OK.MinSize())
	m.Cancel.Move(fyne.NewPos((MarginLeft+boxButtonSize+boxButtonGap)*k, y))
	m.Cancel.Resize(m.Cancel.MinSize())
}

func (r *boxRenderer) Refresh() {
	m := r.m
	r.veil.FillColor = theme.ColorForWidget(wptheme.ColorNameDim, m)
	r.panel.FillColor = theme.ColorForWidget(wptheme.ColorNameChrome, m)
	r.veil.Refresh()
	r.panel.Refresh()
	for _, o := range []fyne.CanvasObject{m.Title, m.Message, m.OK, m.Cancel} {
		o.Refresh()
	}
	r.Layout(m.Size())
}
