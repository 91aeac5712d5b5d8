package ui

import (
	"os"
	"testing"
	"time"

	"fyne.io/fyne/v2"

	"github.com/openmpns/openmpns/emulator/internal/golden"
	"github.com/openmpns/openmpns/shared/payload"
)

// testPhone is a phone showing screen, at the golden images' time,
// connected. A nil screen shows the start screen with the sample tiles.
func testPhone(screen fyne.CanvasObject) *Phone {
	if screen == nil {
		start := NewStartScreen()
		start.SetTiles(sampleTiles())
		screen = start
	}
	p := NewPhone(screen)
	p.SetTime("12:38")
	p.SetConnection(Connected)
	return p
}

func testAppPage(clip fyne.Clipboard) *AppPage {
	ap := NewAppPage("News", clip)
	ap.SetChannelState("open · toast and tile bound")
	ap.SetChannelURI("http://127.0.0.1:8080/c/3f2a9b4c-1d2e-4f5a-8b9c-0d1e2f3a4b5c")
	ap.SetHandoff("POST http://127.0.0.1:9090/handoff/news → 201 Created")
	ap.SetErrors([]string{"MessageBadContent: image http://cdn.example.com/a.png is not from an allowed domain"})
	ap.SetRaws([]RawNotification{
		{testTime, []byte(`{"story":42,"headline":"Push service back online"}`)},
		{testTime.Add(3 * time.Second), []byte{0, 1, 2, 0xfe, 0xff, 0x10, 0x20}},
		{testTime.Add(9 * time.Second), []byte("ping")},
	})
	ap.SetToasts([]ReceivedToast{
		{testTime.Add(20 * time.Second), payload.Toast{Text1: "Breaking", Text2: "Markets rally", Param: "/Story.xaml?id=42"}},
	})
	return ap
}

func testSettings() *Settings {
	s := NewSettings()
	s.SetApps([]AppSwitch{{"news", "News", true}, {"mail", "Mail", true}, {"weather", "Weather", false}})
	s.SetBatterySaver(true)
	return s
}

var toastXML = (&payload.Toast{Text1: "Breaking", Text2: "Markets rally", Param: "/Story.xaml?id=42"}).Encode()

func testNotifications() []Notification {
	id := "6f1c2a9e-8d4b-4c3a-9e1f-2b3c4d5e6f70"
	return []Notification{
		{Kind: "raw", App: "News", Class: 3, Latency: 4 * time.Millisecond, Time: testTime, Payload: []byte("ping"),
			Headers: map[string]string{"Content-Type": "text/plain", "X-NotificationClass": "3"}},
		{Kind: "toast", App: "News", Class: 2, Note: "shown by the shell", MessageID: id, Latency: 12 * time.Millisecond, Time: testTime.Add(2 * time.Second), Payload: toastXML,
			Headers: map[string]string{"Content-Type": "text/xml", "X-WindowsPhone-Target": "toast", "X-NotificationClass": "2", "X-MessageID": id}},
		{Kind: "tile", App: "Mail", Class: 11, Latency: 1250 * time.Millisecond, Time: testTime.Add(5 * time.Second),
			Payload: []byte(`<wp:Notification xmlns:wp="WPNotification" Version="2.0"><wp:Tile Template="FlipTile"><wp:Count>7</wp:Count></wp:Tile></wp:Notification>`),
			Headers: map[string]string{"Content-Type": "text/xml", "X-WindowsPhone-Target": "token", "X-NotificationClass": "11"}},
	}
}

var phoneSize = fyne.NewSize(PhoneWidth, PhoneHeight)

func TestGolden(t *testing.T) {
	icon, err := os.ReadFile("testdata/assets/app_icon.png")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		dark  bool
		size  fyne.Size
		build func(a fyne.App) fyne.CanvasObject
		after func(o fyne.CanvasObject) // once the window has laid it out
	}{
		{"start_dark", true, phoneSize, func(fyne.App) fyne.CanvasObject {
			p := testPhone(nil)
			p.Current().(*StartScreen).Tile("weather").SetFace(true)
			return p
		}, nil},
		{"start_edit_light", false, phoneSize, func(fyne.App) fyne.CanvasObject {
			p := testPhone(nil)
			p.Current().(*StartScreen).Edit("weather")
			return p
		}, func(o fyne.CanvasObject) { o.(*Phone).Current().(*StartScreen).scroll.ScrollToBottom() }},
		{"optin_dark", true, phoneSize, func(fyne.App) fyne.CanvasObject {
			p := testPhone(nil)
			p.ShowDialog(NewOptIn("News"))
			return p
		}, nil},
		{"app_light", false, phoneSize, func(a fyne.App) fyne.CanvasObject { return testPhone(testAppPage(a.Clipboard())) }, nil},
		{"settings_dark", true, phoneSize, func(fyne.App) fyne.CanvasObject { return testPhone(testSettings()) }, nil},
		{"settings_reset_light", false, phoneSize, func(fyne.App) fyne.CanvasObject {
			s := testSettings()
			s.SetAirplane(true)
			s.SetDark(false)
			s.accent.setOpen(true)
			s.ConfirmReset()
			p := testPhone(s)
			p.SetConnection(Airplane)
			return p
		}, func(o fyne.CanvasObject) { o.(*Phone).Current().(*Settings).page.scroll.ScrollToBottom() }},
		{"toast_dark", true, phoneSize, func(fyne.App) fyne.CanvasObject {
			p := testPhone(nil)
			p.SetConnection(Connecting)
			p.ShowToast(payload.Toast{Text1: "Breaking", Text2: "Markets rally on push news"}, fyne.NewStaticResource("icon.png", icon))
			return p
		}, nil},
		{"applist_toast_light", false, phoneSize, func(fyne.App) fyne.CanvasObject {
			l := NewAppList()
			l.SetApps([]App{{ID: "weather", Name: "Contoso Weather"}, {ID: "news", Name: "News", Icon: fyne.NewStaticResource("icon.png", icon)}, {ID: "mail", Name: "mail client"}})
			p := testPhone(l)
			p.SetConnection(Offline)
			p.SetBatterySaver(true)
			p.ShowToast(payload.Toast{Text1: "Alice", Text2: "Lunch at noon?"}, nil)
			return p
		}, nil},
		{"inspector_detail_dark", true, fyne.NewSize(InspectorWidth, PhoneHeight), func(fyne.App) fyne.CanvasObject {
			in := NewInspector()
			in.SetNotifications(testNotifications())
			in.Select(1)
			return in
		}, nil},
		{"inspector_composer_light", false, fyne.NewSize(InspectorWidth, PhoneHeight), func(fyne.App) fyne.CanvasObject {
			in := NewInspector()
			in.SetApps([]App{{ID: "news", Name: "News"}, {ID: "mail", Name: "Mail"}})
			in.ShowComposer()
			in.composer.app.SetSelectedIndex(1)
			in.composer.kind.SetSelected("tile")
			in.composer.fields[payload.Title].SetText("Mail")
			in.composer.fields[payload.Count].SetText("7")
			in.SetResult("200 OK", map[string]string{"X-NotificationStatus": "Received", "X-SubscriptionStatus": "Active", "X-DeviceConnectionStatus": "Connected"})
			return in
		}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := newTestApp(t, tt.dark)
			o := tt.build(a)
			w := newTestWindow(t, o, tt.size)
			if tt.after != nil {
				tt.after(o)
			}
			golden.Assert(t, tt.name+".png", capture(w))
		})
	}
}
