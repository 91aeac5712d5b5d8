package apppage

import (
	"testing"
	"time"

	"fyne.io/fyne/v2"

	"github.com/openmpns/openmpns/emulator/internal/golden"
	"github.com/openmpns/openmpns/emulator/ui/internal/phonetest"
	"github.com/openmpns/openmpns/emulator/ui/internal/uitest"
	"github.com/openmpns/openmpns/shared/payload"
)

func testAppPage(clip fyne.Clipboard) *AppPage {
	ap := NewAppPage("News", clip)
	ap.SetChannelState("open · toast and tile bound")
	ap.SetChannelURI("http://127.0.0.1:8080/c/3f2a9b4c-1d2e-4f5a-8b9c-0d1e2f3a4b5c")
	ap.SetHandoff("POST http://127.0.0.1:9090/handoff/news → 201 Created")
	ap.SetErrors([]string{"MessageBadContent: image http://cdn.example.com/a.png is not from an allowed domain"})
	ap.SetRaws([]RawNotification{
		{uitest.Time, []byte(`{"story":42,"headline":"Push service back online"}`)},
		{uitest.Time.Add(3 * time.Second), []byte{0, 1, 2, 0xfe, 0xff, 0x10, 0x20}},
		{uitest.Time.Add(9 * time.Second), []byte("ping")},
	})
	ap.SetToasts([]ReceivedToast{
		{uitest.Time.Add(20 * time.Second), payload.Toast{Text1: "Breaking", Text2: "Markets rally", Param: "/Story.xaml?id=42"}},
	})
	return ap
}

func TestGolden(t *testing.T) {
	a := uitest.App(t, false)
	w := uitest.Window(t, phonetest.Phone(testAppPage(a.Clipboard())), phonetest.Size)
	golden.Assert(t, "app_light.png", uitest.Capture(w))
}
