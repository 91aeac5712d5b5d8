package optin

import (
	"testing"

	"fyne.io/fyne/v2/test"

	"github.com/openmpns/openmpns/emulator/ui/applist"
	"github.com/openmpns/openmpns/emulator/ui/handset"
	"github.com/openmpns/openmpns/emulator/ui/internal/phonetest"
	"github.com/openmpns/openmpns/emulator/ui/internal/uitest"
)

func TestOptInAnswers(t *testing.T) {
	tests := []struct {
		name   string
		answer func(p *handset.Phone, o *OptIn)
		want   bool
	}{
		{"allow", func(p *handset.Phone, o *OptIn) { test.Tap(o.box.OK) }, true},
		{"don't allow", func(p *handset.Phone, o *OptIn) { test.Tap(o.box.Cancel) }, false},
		{"back key", func(p *handset.Phone, o *OptIn) { p.Back() }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			uitest.App(t, true)
			p := phonetest.Phone(applist.NewAppList())
			uitest.Window(t, p, phonetest.Size)
			o := NewOptIn("News")
			var answers []bool
			o.OnAnswer = func(ok bool) {
				answers = append(answers, ok)
				p.HideDialog()
			}
			p.ShowDialog(o)
			tt.answer(p, o)
			if len(answers) != 1 || answers[0] != tt.want {
				t.Errorf("OnAnswer got %v, want [%v]", answers, tt.want)
			}
			if p.Dialog() != nil {
				t.Error("the prompt is still shown")
			}
		})
	}
}

func TestOptInTapsThroughTheCanvas(t *testing.T) {
	uitest.App(t, true)
	home := sampleStart()
	p := phonetest.Phone(home)
	w := uitest.Window(t, p, phonetest.Size)
	o := NewOptIn("News")
	var answers []bool
	o.OnAnswer = func(ok bool) { answers = append(answers, ok) }
	tapped := 0
	home.OnTileTapped = func(string) { tapped++ }
	p.ShowDialog(o)

	// The veil keeps taps from the tiles under it.
	test.TapCanvas(w.Canvas(), uitest.AbsPos(home.Tile("weather"), 30, 30))
	test.TapCanvas(w.Canvas(), uitest.AbsPos(o.box.OK, 20, 20))
	test.TapCanvas(w.Canvas(), uitest.AbsPos(o.box.Cancel, 20, 20))
	if len(answers) != 2 || !answers[0] || answers[1] {
		t.Errorf("answers %v, want [true false]", answers)
	}
	if tapped != 0 {
		t.Error("a tap on the veil reached a tile")
	}
}

func TestOptInText(t *testing.T) {
	uitest.App(t, true)
	o := NewOptIn("News")
	o.SetApp("Contoso Weather")
	if got := o.box.Title.Text(); got != "Allow Contoso Weather to show notifications?" {
		t.Errorf("title %q", got)
	}
	if got := o.box.Message.Text(); got != "Contoso Weather would like to send you notifications. You can turn them off in Settings." {
		t.Errorf("message %q", got)
	}
}
