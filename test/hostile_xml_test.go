package test

import (
	"strings"
	"testing"

	"github.com/openmpns/openmpns/server"
)

const notifOpen = `<?xml version="1.0" encoding="utf-8"?><wp:Notification xmlns:wp="WPNotification">`

// billionLaughs is the classic entity-expansion bomb: ten levels of ten
// references, a billion "lol"s once expanded, in well under 1 KB.
func billionLaughs(inner string) string {
	var b strings.Builder
	b.WriteString(`<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">`)
	prev := "lol"
	for i := 1; i <= 9; i++ {
		name := "lol" + string(rune('0'+i))
		b.WriteString(`<!ENTITY ` + name + ` "` + strings.Repeat("&"+prev+";", 10) + `">`)
		prev = name
	}
	b.WriteString(`]><wp:Notification xmlns:wp="WPNotification">` + strings.ReplaceAll(inner, "LOL", "&lol9;") + `</wp:Notification>`)
	return b.String()
}

// TestXMLAttacksAreRefused sends the usual XML attacks through the real
// push API and checks that each is answered 400 with a reason that names
// the problem, that nothing of them is queued or delivered, and that the
// server goes on serving the same device.
func TestXMLAttacksAreRefused(t *testing.T) {
	// 8192-byte payloads let the larger attacks reach the XML parser; the
	// default 3072 is checked in the "huge attribute, default limit" case.
	srv := startServer(t, server.Config{MaxPayloadBytes: server.MaxPayloadLimit})
	small := startServer(t, server.Config{})
	victim := newBystander(t, srv)
	tileURI := victim.p.openChannel(t, "com.example.tiles", "", false, true).ChannelURI()
	smallURI := newBystander(t, small).uri

	deep := strings.Repeat("<wp:Toast>", 300) + strings.Repeat("</wp:Toast>", 300)
	cases := []struct {
		name, uri, target, body, reason string
	}{
		{"billion laughs (toast)", victim.uri, toastT, billionLaughs(`<wp:Toast><wp:Text1>LOL</wp:Text1></wp:Toast>`), "<!DOCTYPE ...> declarations are not allowed"},
		{"billion laughs (tile)", tileURI, tileT, billionLaughs(`<wp:Tile><wp:Title>LOL</wp:Title></wp:Tile>`), "<!DOCTYPE ...> declarations are not allowed"},
		{"external entity", victim.uri, toastT, `<?xml version="1.0"?><!DOCTYPE x [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>` + notifOpen[len(`<?xml version="1.0" encoding="utf-8"?>`):] + `<wp:Toast><wp:Text1>&xxe;</wp:Text1></wp:Toast></wp:Notification>`, "declarations are not allowed"},
		{"a plain DOCTYPE", victim.uri, toastT, `<!DOCTYPE wp:Notification>` + notifOpen[len(`<?xml version="1.0" encoding="utf-8"?>`):] + `<wp:Toast><wp:Text1>hi</wp:Text1></wp:Toast></wp:Notification>`, "<!DOCTYPE ...> declarations are not allowed"},
		{"undeclared entity", victim.uri, toastT, notifOpen + `<wp:Toast><wp:Text1>&lol9;</wp:Text1></wp:Toast></wp:Notification>`, "invalid character entity &lol9;"},
		{"deep nesting", victim.uri, toastT, notifOpen + deep + `</wp:Notification>`, "Toast"},
		{"deep nesting in a value", victim.uri, toastT, notifOpen + `<wp:Toast><wp:Text1>` + strings.Repeat("<a>", 1000) + strings.Repeat("</a>", 1000) + `</wp:Text1></wp:Toast></wp:Notification>`, "holds text only"},
		{"deep nesting, unclosed", victim.uri, tileT, notifOpen + strings.Repeat("<wp:Tile>", 800), ""},
		{"huge attribute", tileURI, tileT, notifOpen + `<wp:Tile Id="/` + strings.Repeat("A", 5000) + `"><wp:Count>1</wp:Count></wp:Tile></wp:Notification>`, "attribute value is 5001 bytes long; at most 4096"},
		{"huge attribute, default limit", smallURI, toastT, notifOpen + `<wp:Toast x="` + strings.Repeat("A", 5000) + `"><wp:Text1>hi</wp:Text1></wp:Toast></wp:Notification>`, "more than the 3072-byte limit"},
		{"many attributes", victim.uri, toastT, notifOpen + `<wp:Toast` + manyAttrs(200) + `><wp:Text1>hi</wp:Text1></wp:Toast></wp:Notification>`, "element has 200 attributes; at most 32"},
		{"invalid UTF-8", victim.uri, toastT, notifOpen + "<wp:Toast><wp:Text1>caf\xe9</wp:Text1></wp:Toast></wp:Notification>", "body is not valid UTF-8 (bad byte at offset"},
		{"overlong UTF-8 slash", victim.uri, toastT, notifOpen + "<wp:Toast><wp:Text1>\xc0\xaf</wp:Text1></wp:Toast></wp:Notification>", "not valid UTF-8"},
		{"UTF-16 declared", victim.uri, toastT, `<?xml version="1.0" encoding="UTF-16"?><wp:Notification xmlns:wp="WPNotification"><wp:Toast><wp:Text1>hi</wp:Text1></wp:Toast></wp:Notification>`, "must be UTF-8"},
		{"surrogate reference", victim.uri, toastT, notifOpen + `<wp:Toast><wp:Text1>&#xD800;</wp:Text1></wp:Toast></wp:Notification>`, "surrogate"},
		{"NUL character reference", victim.uri, toastT, notifOpen + `<wp:Toast><wp:Text1>&#0;</wp:Text1></wp:Toast></wp:Notification>`, "malformed XML"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := post(t, "POST", c.uri, c.target, "", "", []byte(c.body))
			if a.code != 400 || a.reason == "" {
				t.Fatalf("answer %+v, want 400 with a reason", a)
			}
			if !strings.Contains(a.reason, c.reason) {
				t.Fatalf("reason %q does not say %q", a.reason, c.reason)
			}
			t.Logf("400 %s", a.reason)
			if a.notif != "" || a.sub != "" || a.conn != "" {
				t.Fatalf("a refused push has MPNS status headers: %+v", a)
			}
		})
	}
	// Nothing of the above was queued: the next toast is the first thing
	// the device receives (delivery is in acceptance order), and no tile
	// arrived.
	victim.check(t)
	if tiles := victim.p.rec.of("tile", "raw"); len(tiles) != 0 {
		t.Fatalf("refused pushes were delivered: %+v", tiles)
	}
}

func manyAttrs(n int) string {
	var b strings.Builder
	for i := range n {
		b.WriteString(` a` + strings.Repeat("x", i%7) + string(rune('a'+i%26)) + string(rune('a'+i/26)) + `="1"`)
	}
	return b.String()
}
