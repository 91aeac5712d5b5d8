package optin

import (
	"testing"

	"fyne.io/fyne/v2/canvas"

	"github.com/openmpns/openmpns/emulator/ui/internal/phonetest"
	"github.com/openmpns/openmpns/emulator/ui/internal/uitest"
)

// TestPromptScalesWithThePhone shows the prompt in a phone at scale 1 and
// in a window twice as large (see phonetest.CheckScales).
func TestPromptScalesWithThePhone(t *testing.T) {
	uitest.App(t, true)
	p := phonetest.Phone(nil)
	o := NewOptIn("News")
	p.ShowDialog(o)
	w := uitest.Window(t, p, phonetest.Size)
	phonetest.CheckScales(t, w, p, phonetest.Probes{
		"title": o.box.Title, "message": o.box.Message, "allow": o.box.OK, "don't allow": o.box.Cancel,
	}, phonetest.Texts{
		"title":   func() *canvas.Text { return uitest.FirstText(t, o.box.Title) },
		"message": func() *canvas.Text { return uitest.FirstText(t, o.box.Message) },
	})
}
