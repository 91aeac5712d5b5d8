package inspector

import (
	"fmt"
	"strings"
	"testing"

	"fyne.io/fyne/v2"

	"github.com/openmpns/openmpns/emulator/ui/handset"
	"github.com/openmpns/openmpns/emulator/ui/internal/uitest"
	"github.com/openmpns/openmpns/shared/payload"
)

// bigPayloads are notifications whose payload is about n bytes: a tile
// whose XML is long, a raw text on one line (no newline to break it) and
// raw binary (shown as a hex dump, about 4.6 times longer), each with a
// long header value as a sender may send.
func bigPayloads(n int) []Notification {
	words := strings.Repeat("lorem ipsum dolor sit amet ", n/27+1)
	var xml strings.Builder
	xml.WriteString(`<?xml version="1.0" encoding="utf-8"?><wp:Notification xmlns:wp="WPNotification" Version="2.0"><wp:Tile Template="FlipTile">`)
	for k := 0; xml.Len() < n-200; k++ {
		fmt.Fprintf(&xml, "<wp:BackContent>%s</wp:BackContent>", words[:min(len(words), 180)])
	}
	xml.WriteString(`</wp:Tile></wp:Notification>`)
	bin := make([]byte, n)
	for k := range bin {
		bin[k] = byte(k * 7)
	}
	hdrs := func(kind string) map[string]string {
		return map[string]string{"Content-Type": "text/xml", "X-WindowsPhone-Target": kind, "X-NotificationClass": "1",
			"X-MessageID": strings.Repeat("m", 256), "X-Custom": words[:min(len(words), 900)]}
	}
	return []Notification{
		{Kind: payload.KindTile.String(), App: "News", Time: uitest.Time, Payload: []byte(xml.String()), Headers: hdrs("token")},
		{Kind: payload.KindRaw.String(), App: "News", Time: uitest.Time, Payload: []byte(words[:n]), Headers: hdrs("raw")},
		{Kind: payload.KindRaw.String(), App: "News", Time: uitest.Time, Payload: bin, Headers: hdrs("raw")},
	}
}

// BenchmarkDetail opens the detail view of a notification whose payload
// is 3 KB (the most MPNS allows a toast or a tile) or 64 KB (more than any
// server sends a phone: a frame is at most 16 KiB), and lays the window
// out, as a click on a row of the list does (the detail lays itself out):
// the widget work before the window paints. Each iteration alternates with
// a short notification, so that each opens a detail anew.
func BenchmarkDetail(b *testing.B) {
	for _, size := range []int{3 << 10, 64 << 10} {
		ns := bigPayloads(size)
		for k, name := range []string{"xml", "text", "binary"} {
			b.Run(fmt.Sprintf("%s-%dKB", name, size>>10), func(b *testing.B) {
				uitest.App(b, true)
				in := NewInspector()
				uitest.Window(b, in, fyne.NewSize(InspectorWidth, handset.PhoneHeight))
				in.SetNotifications([]Notification{ns[k], testNotifications()[0]})
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					in.Select(i % 2)
				}
			})
		}
	}
}
