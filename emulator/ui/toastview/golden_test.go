package toastview_test

import (
	"os"
	"testing"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/test"

	"github.com/openmpns/openmpns/emulator/accent"
	"github.com/openmpns/openmpns/emulator/internal/golden"
	"github.com/openmpns/openmpns/emulator/render"
	"github.com/openmpns/openmpns/emulator/ui/toastview"
	"github.com/openmpns/openmpns/shared/payload"
)

func TestGoldenBanner(t *testing.T) {
	test.NewTempApp(t)
	data, err := os.ReadFile("testdata/app_icon.png")
	if err != nil {
		t.Fatal(err)
	}
	icon := fyne.NewStaticResource("app_icon.png", data)
	tests := []struct {
		name   string
		toast  payload.Toast
		accent string
		noIcon bool
	}{
		{"toast_short", payload.Toast{Text1: "Alice", Text2: "Lunch at noon?"}, "", false},
		{"toast_long", payload.Toast{Text1: "Alice Smith", Text2: "Are you coming to the meeting at three o'clock today or not?"}, "", false},
		{"toast_long_title", payload.Toast{Text1: "A very long title that goes on and on and on", Text2: "never shown"}, "emerald", false},
		{"toast_no_icon", payload.Toast{Text1: "Reminder", Text2: "Dentist at 4 pm"}, "crimson", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := []render.Option{}
			if !tt.noIcon {
				opts = append(opts, render.WithIcon(icon))
			}
			if tt.accent != "" {
				a, _ := accent.Lookup(tt.accent)
				opts = append(opts, render.WithAccent(a))
			}
			img := render.Toast(tt.toast, 1, opts...)
			if got := img.Bounds().Dx(); got != toastview.PhoneWidth {
				t.Errorf("banner is %d pixels wide, want %d", got, toastview.PhoneWidth)
			}
			golden.Assert(t, tt.name+".png", img)
		})
	}
}
