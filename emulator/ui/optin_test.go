package ui

import (
	"testing"

	"fyne.io/fyne/v2/test"
)

func TestOptInAnswers(t *testing.T) {
	tests := []struct {
		name   string
		answer func(p *Phone, o *OptIn)
		want   bool
	}{
		{"allow", func(p *Phone, o *OptIn) { test.Tap(o.box.ok) }, true},
		{"don't allow", func(p *Phone, o *OptIn) { test.Tap(o.box.cancel) }, false},
		{"back key", func(p *Phone, o *OptIn) { p.Back() }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			newTestApp(t, true)
			p := testPhone(NewAppList())
			newTestWindow(t, p, phoneSize)
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
	newTestApp(t, true)
	p := testPhone(nil)
	w := newTestWindow(t, p, phoneSize)
	o := NewOptIn("News")
	var answers []bool
	o.OnAnswer = func(ok bool) { answers = append(answers, ok) }
	tapped := 0
	p.Current().(*StartScreen).OnTileTapped = func(string) { tapped++ }
	p.ShowDialog(o)

	// The veil keeps taps from the tiles under it.
	test.TapCanvas(w.Canvas(), absPos(p.Current().(*StartScreen).Tile("weather"), 30, 30))
	test.TapCanvas(w.Canvas(), absPos(o.box.ok, 20, 20))
	test.TapCanvas(w.Canvas(), absPos(o.box.cancel, 20, 20))
	if len(answers) != 2 || !answers[0] || answers[1] {
		t.Errorf("answers %v, want [true false]", answers)
	}
	if tapped != 0 {
		t.Error("a tap on the veil reached a tile")
	}
}

func TestOptInText(t *testing.T) {
	newTestApp(t, true)
	o := NewOptIn("News")
	o.SetApp("Contoso Weather")
	if got := o.box.title.Text(); got != "Allow Contoso Weather to show notifications?" {
		t.Errorf("title %q", got)
	}
	if got := o.box.message.Text(); got != "Contoso Weather would like to send you notifications. You can turn them off in Settings." {
		t.Errorf("message %q", got)
	}
}
