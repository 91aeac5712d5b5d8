package inspector

import (
	"testing"
	"time"

	"fyne.io/fyne/v2"

	"github.com/openmpns/openmpns/emulator/internal/golden"
	"github.com/openmpns/openmpns/emulator/ui"
	"github.com/openmpns/openmpns/emulator/ui/handset"
	"github.com/openmpns/openmpns/emulator/ui/internal/uitest"
	"github.com/openmpns/openmpns/shared/payload"
)

var toastXML = (&payload.Toast{Text1: "Breaking", Text2: "Markets rally", Param: "/Story.xaml?id=42"}).Encode()

func testNotifications() []Notification {
	id := "6f1c2a9e-8d4b-4c3a-9e1f-2b3c4d5e6f70"
	return []Notification{
		{Kind: "raw", App: "News", Class: 3, Latency: 4 * time.Millisecond, Time: uitest.Time, Payload: []byte("ping"),
			Headers: map[string]string{"Content-Type": "text/plain", "X-NotificationClass": "3"}},
		{Kind: "toast", App: "News", Class: 2, Note: "shown by the shell", MessageID: id, Latency: 12 * time.Millisecond, Time: uitest.Time.Add(2 * time.Second), Payload: toastXML,
			Headers: map[string]string{"Content-Type": "text/xml", "X-WindowsPhone-Target": "toast", "X-NotificationClass": "2", "X-MessageID": id}},
		{Kind: "tile", App: "Mail", Class: 11, Latency: 1250 * time.Millisecond, Time: uitest.Time.Add(5 * time.Second),
			Payload: []byte(`<wp:Notification xmlns:wp="WPNotification" Version="2.0"><wp:Tile Template="FlipTile"><wp:Count>7</wp:Count></wp:Tile></wp:Notification>`),
			Headers: map[string]string{"Content-Type": "text/xml", "X-WindowsPhone-Target": "token", "X-NotificationClass": "11"}},
	}
}

func TestGolden(t *testing.T) {
	size := fyne.NewSize(InspectorWidth, handset.PhoneHeight)
	tests := []struct {
		name  string
		dark  bool
		build func() *Inspector
	}{
		{"inspector_detail_dark", true, func() *Inspector {
			in := NewInspector()
			in.SetNotifications(testNotifications())
			in.Select(1)
			return in
		}},
		{"inspector_composer_light", false, func() *Inspector {
			in := NewInspector()
			in.SetApps([]ui.App{{ID: "news", Name: "News"}, {ID: "mail", Name: "Mail"}})
			in.ShowComposer()
			in.composer.app.SetSelectedIndex(1)
			in.composer.kind.SetSelected("tile")
			in.composer.fields[payload.Title].SetText("Mail")
			in.composer.fields[payload.Count].SetText("7")
			in.SetResult("200 OK", map[string]string{"X-NotificationStatus": "Received", "X-SubscriptionStatus": "Active", "X-DeviceConnectionStatus": "Connected"})
			return in
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			uitest.App(t, tt.dark)
			w := uitest.Window(t, tt.build(), size)
			golden.Assert(t, tt.name+".png", uitest.Capture(w))
		})
	}
}
