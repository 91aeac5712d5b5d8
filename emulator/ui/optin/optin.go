package optin

import (
	"fmt"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/widget"

	"github.com/openmpns/openmpns/emulator/ui/controls"
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

	box *controls.MessageBox
}

var _ controls.BackHandler = (*OptIn)(nil)

// NewOptIn returns the prompt for the app called appName.
func NewOptIn(appName string) *OptIn {
	o := &OptIn{}
	o.box = controls.NewMessageBox("", "", "allow", "don't allow", func(ok bool) {
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
func (o *OptIn) Allow() { o.box.Answer(true) }

// Deny answers "don't allow", as a tap on the button does.
func (o *OptIn) Deny() { o.box.Answer(false) }

// HandleBack answers "don't allow" and lets the phone close the prompt.
func (o *OptIn) HandleBack() bool {
	o.box.Answer(false)
	return false
}

func (o *OptIn) SetPhoneScale(k float32) { o.box.SetPhoneScale(k) }

// CreateRenderer is part of fyne.Widget.
func (o *OptIn) CreateRenderer() fyne.WidgetRenderer {
	return widget.NewSimpleRenderer(o.box)
}
