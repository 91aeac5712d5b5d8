package inspector

import (
	"strings"
	"testing"
)

func TestPrettyXML(t *testing.T) {
	tests := []struct {
		name, in, want string
		ok             bool
	}{
		{"toast", `<?xml version="1.0" encoding="utf-8"?><wp:Notification xmlns:wp="WPNotification"><wp:Toast><wp:Text1>a &amp; b</wp:Text1><wp:Sound Silent="true"/></wp:Toast></wp:Notification>`,
			`<?xml version="1.0" encoding="utf-8"?>
<wp:Notification xmlns:wp="WPNotification">
  <wp:Toast>
    <wp:Text1>a &amp; b</wp:Text1>
    <wp:Sound Silent="true"/>
  </wp:Toast>
</wp:Notification>`, true},
		{"already indented", "<a>\n  <b>x</b>\n</a>\n", "<a>\n  <b>x</b>\n</a>", true},
		{"mixed content", "<a>x<b/>y</a>", "<a>\n  x\n  <b/>\n  y\n</a>", true},
		{"attribute escaping", `<a v="&lt;&quot;"/>`, `<a v="&lt;&#34;"/>`, true},
		{"comment", "<a><!-- c --></a>", "<a>\n  <!-- c -->\n</a>", true},
		{"not xml", "<a><b></a>", "<a><b></a>", false},
		{"not xml at all", "ping", "ping", false},
		{"unclosed", "<a>", "<a>", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := PrettyXML([]byte(tt.in))
			if got != tt.want || ok != tt.ok {
				t.Errorf("PrettyXML:\n%s\n(ok %v), want\n%s\n(ok %v)", got, ok, tt.want, tt.ok)
			}
		})
	}
}

func TestHexDump(t *testing.T) {
	b := []byte("0123456789abcdef\x00\x01")
	want := "0000  30 31 32 33 34 35 36 37 38 39 61 62 63 64 65 66  0123456789abcdef\n" +
		"0010  00 01" + strings.Repeat("   ", 14) + "  .."
	if got := HexDump(b); got != want {
		t.Errorf("HexDump =\n%q\nwant\n%q", got, want)
	}
}
