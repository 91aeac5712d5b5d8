package toastview

import (
	"os"
	"testing"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/test"

	"github.com/openmpns/openmpns/emulator/accent"
	"github.com/openmpns/openmpns/shared/payload"
)

func TestBannerFitsWidth(t *testing.T) {
	test.NewTempApp(t)
	tests := []struct {
		name  string
		toast payload.Toast
		width float32
	}{
		{"phone width, wide letters", payload.Toast{Text1: "WWWWWWWWWWWW", Text2: "MMMMMMMMMMMMMMMMMMMMMMMMMMM"}, PhoneWidth},
		{"narrow", payload.Toast{Text1: "Alice", Text2: "Lunch at noon? The new place on 5th street"}, 200},
		{"very narrow", payload.Toast{Text1: "Alice", Text2: "Lunch"}, 60},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := NewBanner(tt.toast)
			b.Resize(fyne.NewSize(tt.width, BannerHeight))
			r := test.WidgetRenderer(b).(*bannerRenderer)
			right := func(o *canvas.Text) float32 {
				if !o.Visible() {
					return 0
				}
				return o.Position().X + o.MinSize().Width
			}
			if end := max(right(r.text1), right(r.text2)); end > tt.width-textRight+0.5 {
				t.Errorf("text ends at %v, past %v (%q %q)", end, tt.width-textRight, r.text1.Text, r.text2.Text)
			}
		})
	}
}

func TestBannerGestures(t *testing.T) {
	test.NewTempApp(t)
	tests := []struct {
		name          string
		drags         []float32
		wantDismissed int
	}{
		{"small drag springs back", []float32{20, 20}, 0},
		{"flick right dismisses", []float32{30, 40}, 1},
		{"drag left does nothing", []float32{-80}, 0},
		{"back and forth below the distance", []float32{50, -30, 20}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := NewBanner(payload.Toast{Text1: "a"})
			w := test.NewTempWindow(t, b)
			w.Resize(fyne.NewSize(PhoneWidth, BannerHeight))
			dismissed := 0
			b.OnDismissed = func() { dismissed++ }
			for _, dx := range tt.drags {
				b.Dragged(&fyne.DragEvent{Dragged: fyne.Delta{DX: dx}})
			}
			r := test.WidgetRenderer(b).(*bannerRenderer)
			if want := float32(textLeft) + b.drag; r.text1.Position().X != want {
				t.Errorf("during the drag text1 at x=%v, want %v", r.text1.Position().X, want)
			}
			b.DragEnd()
			if dismissed != tt.wantDismissed {
				t.Errorf("OnDismissed called %d times, want %d", dismissed, tt.wantDismissed)
			}
			if r.text1.Position().X != textLeft {
				t.Errorf("after the drag text1 at x=%v, want %v", r.text1.Position().X, float32(textLeft))
			}
		})
	}
}

func TestBannerTap(t *testing.T) {
	test.NewTempApp(t)
	b := NewBanner(payload.Toast{Text1: "a", Param: "/p"})
	var got []string
	b.OnTapped = func() { got = append(got, b.Toast().Param) }
	test.Tap(b)
	b.SetToast(payload.Toast{Text1: "b", Param: "/q"})
	test.Tap(b)
	if len(got) != 2 || got[0] != "/p" || got[1] != "/q" {
		t.Errorf("taps saw params %q, want [/p /q]", got)
	}
	b.OnTapped = nil
	test.Tap(b)
	b.DragEnd() // no drag, no callback: nothing happens
}

func TestBannerColours(t *testing.T) {
	test.NewTempApp(t)
	b := NewBanner(payload.Toast{Text1: "a"})
	r := test.WidgetRenderer(b).(*bannerRenderer)
	if r.bg.FillColor != accent.Default {
		t.Errorf("background %v, want accent.Default", r.bg.FillColor)
	}
	b.SetAccent(accent.Magenta)
	if r.bg.FillColor != accent.Magenta {
		t.Errorf("background %v after SetAccent, want magenta", r.bg.FillColor)
	}
	if r.icon.Visible() {
		t.Error("icon shown without one set")
	}
	data, err := os.ReadFile("testdata/app_icon.png")
	if err != nil {
		t.Fatal(err)
	}
	b.SetIcon(fyne.NewStaticResource("app_icon.png", data))
	if !r.icon.Visible() {
		t.Error("icon hidden after SetIcon")
	}
}
