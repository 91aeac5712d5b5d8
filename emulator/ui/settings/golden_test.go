package settings

import (
	"testing"

	"github.com/openmpns/openmpns/emulator/internal/golden"
	"github.com/openmpns/openmpns/emulator/ui/handset"
	"github.com/openmpns/openmpns/emulator/ui/internal/phonetest"
	"github.com/openmpns/openmpns/emulator/ui/internal/uitest"
)

func testSettings() *Settings {
	s := NewSettings()
	s.SetApps([]AppSwitch{{"news", "News", true}, {"mail", "Mail", true}, {"weather", "Weather", false}})
	s.SetBatterySaver(true)
	return s
}

func TestGolden(t *testing.T) {
	tests := []struct {
		name  string
		dark  bool
		build func() *handset.Phone
		after func(p *handset.Phone)
	}{
		{"settings_dark", true, func() *handset.Phone { return phonetest.Phone(testSettings()) }, nil},
		{"settings_reset_light", false, func() *handset.Phone {
			s := testSettings()
			s.SetAirplane(true)
			s.SetDark(false)
			s.accent.setOpen(true)
			s.ConfirmReset()
			p := phonetest.Phone(s)
			p.SetConnection(handset.Airplane)
			return p
		}, func(p *handset.Phone) { p.Current().(*Settings).page.Scroll.ScrollToBottom() }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			uitest.App(t, tt.dark)
			p := tt.build()
			w := uitest.Window(t, p, phonetest.Size)
			if tt.after != nil {
				tt.after(p)
			}
			golden.Assert(t, tt.name+".png", uitest.Capture(w))
		})
	}
}
