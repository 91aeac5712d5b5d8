package inspector

import (
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/test"

	"github.com/openmpns/openmpns/emulator/ui"
	"github.com/openmpns/openmpns/emulator/ui/handset"
	"github.com/openmpns/openmpns/emulator/ui/internal/uitest"
	"github.com/openmpns/openmpns/shared/payload"
	"github.com/openmpns/openmpns/shared/sender"
)

func newTestInspector(t *testing.T) (*Inspector, fyne.Window, *[]ComposeRequest) {
	t.Helper()
	uitest.App(t, true)
	in := NewInspector()
	in.SetApps([]ui.App{{ID: "news.app", Name: "News"}, {ID: "mail.app", Name: "Mail"}})
	var sent []ComposeRequest
	in.OnSend = func(r ComposeRequest) { sent = append(sent, r) }
	w := uitest.Window(t, in, fyne.NewSize(InspectorWidth, handset.PhoneHeight))
	return in, w, &sent
}

func TestInspectorList(t *testing.T) {
	in, w, _ := newTestInspector(t)
	in.SetNotifications(testNotifications())
	if in.Selected() != -1 || in.detail.empty.Hidden {
		t.Fatal("a detail is open before any selection")
	}
	// Rows are newest first: row 0 is the tile, row 2 the raw.
	test.TapCanvas(w.Canvas(), uitest.AbsPos(in.list, 40, 28*2+14))
	if in.Selected() != 0 {
		t.Fatalf("tapping the third row selected %d, want 0 (the oldest)", in.Selected())
	}
	if got := payloadShown(in.detail); got != "ping" {
		t.Errorf("raw payload shown as %q", got)
	}
	in.Select(1)
	if !strings.Contains(payloadShown(in.detail), "  <wp:Toast>\n    <wp:Text1>Breaking</wp:Text1>") {
		t.Errorf("toast payload not pretty-printed:\n%s", payloadShown(in.detail))
	}
	if got := headersShown(in.detail); len(got) != 4 || got[0] != "Content-Type: text/xml" {
		t.Errorf("headers shown: %q, want 4, Content-Type first", got)
	}
	if s := in.detail.summary.Text; !strings.Contains(s, "class 2 (immediate)") || !strings.Contains(s, "latency 12 ms") {
		t.Errorf("summary %q", s)
	}
	in.AddNotification(Notification{Kind: "raw", App: "News", Time: uitest.Time, Payload: []byte{0, 0xff}})
	if in.Selected() != 1 || len(in.Notifications()) != 4 {
		t.Errorf("after a new notification the selection is %d", in.Selected())
	}
	in.Select(3)
	if !strings.HasPrefix(payloadShown(in.detail), "0000  00 ff") {
		t.Errorf("binary raw shown as %q", payloadShown(in.detail))
	}
	in.Select(-1)
	if in.Selected() != -1 || in.detail.empty.Hidden {
		t.Error("Select(-1) did not close the detail")
	}
}

func TestInspectorCompose(t *testing.T) {
	tests := []struct {
		name string
		fill func(c *composer)
		want ComposeRequest
	}{
		{"toast", func(c *composer) {
			c.app.SetSelectedIndex(0)
			test.Type(c.text1, "Breaking")
			test.Type(c.text2, "Markets rally")
			test.Type(c.param, "/Story.xaml?id=42")
			c.interval.SetSelected("450 s")
			test.Type(c.msgID, "m-1")
		}, ComposeRequest{App: "news.app", Kind: payload.KindToast, Interval: sender.Within450, MessageID: "m-1",
			Toast: payload.Toast{Text1: "Breaking", Text2: "Markets rally", Param: "/Story.xaml?id=42"}}},
		{"toast with a sound", func(c *composer) {
			c.app.SetSelectedIndex(0)
			test.Type(c.text1, "Ding")
			test.Type(c.sound, " /Assets/ding.wav ")
		}, ComposeRequest{App: "news.app", Kind: payload.KindToast, Toast: payload.Toast{Text1: "Ding", Sound: "/Assets/ding.wav"}}},
		{"silent toast", func(c *composer) {
			c.app.SetSelectedIndex(0)
			test.Type(c.text1, "Hush")
			test.Type(c.sound, "/Assets/ding.wav") // silent wins
			test.Tap(c.silent)
		}, ComposeRequest{App: "news.app", Kind: payload.KindToast, Toast: payload.Toast{Text1: "Hush", Silent: true}}},
		{"secondary tile", func(c *composer) {
			c.app.SetSelectedIndex(1)
			c.kind.SetSelected("tile")
			test.Type(c.tileID, "/Folder.xaml?name=work")
			test.Type(c.fields[payload.Title], "Work")
		}, ComposeRequest{App: "mail.app", Kind: payload.KindTile, Tile: payload.Tile{ID: "/Folder.xaml?name=work",
			Template: payload.TemplateFlip, Fields: map[string]string{payload.Title: "Work"}}}},
		{"tile", func(c *composer) {
			c.app.SetSelectedIndex(1)
			c.kind.SetSelected("tile")
			c.template.SetSelected("IconicTile")
			test.Type(c.fields[payload.Title], "Mail")
			test.Type(c.fields[payload.Count], "7")
			test.Type(c.fields[payload.BackTitle], "ignored: not an iconic element")
			test.Type(c.fields[payload.BackgroundColor], "#FF1BA1E2")
		}, ComposeRequest{App: "mail.app", Kind: payload.KindTile, Tile: payload.Tile{Template: payload.TemplateIconic,
			Fields: map[string]string{payload.Title: "Mail", payload.Count: "7", payload.BackgroundColor: "#FF1BA1E2"}}}},
		{"tile xml", func(c *composer) {
			c.app.SetSelectedIndex(1)
			c.kind.SetSelected("tile")
			test.Type(c.fields[payload.Count], "3")
			c.editXML.SetChecked(true)
		}, ComposeRequest{App: "mail.app", Kind: payload.KindTile, XML: "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n" +
			"<wp:Notification xmlns:wp=\"WPNotification\" Version=\"2.0\">\n  <wp:Tile Template=\"FlipTile\">\n    <wp:Count>3</wp:Count>\n  </wp:Tile>\n</wp:Notification>"}},
		{"raw", func(c *composer) {
			c.app.SetSelectedIndex(0)
			c.kind.SetSelected("raw")
			c.interval.SetSelected("900 s")
			test.Type(c.raw, "ping")
		}, ComposeRequest{App: "news.app", Kind: payload.KindRaw, Interval: sender.Within900, Raw: []byte("ping")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in, w, sent := newTestInspector(t)
			in.ShowComposer()
			tt.fill(in.composer)
			test.TapCanvas(w.Canvas(), uitest.AbsPos(in.composer.send, 10, 10))
			if len(*sent) != 1 {
				t.Fatalf("OnSend called %d times", len(*sent))
			}
			got := (*sent)[0]
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("sent %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestInspectorComposeNeedsAnApp(t *testing.T) {
	in, _, sent := newTestInspector(t)
	test.Tap(in.composer.send)
	if len(*sent) != 0 || !strings.Contains(in.composer.status.Text, "Pick an app") {
		t.Errorf("sent %v without an app; status %q", *sent, in.composer.status.Text)
	}
}

func TestInspectorResult(t *testing.T) {
	in, _, _ := newTestInspector(t)
	in.SetResult("200 OK", map[string]string{"X-NotificationStatus": "Received", "X-SubscriptionStatus": "Active"})
	if in.composer.status.Text != "200 OK" || len(in.composer.resultHdrs.Objects) != 4 {
		t.Errorf("result %q with %d cells", in.composer.status.Text, len(in.composer.resultHdrs.Objects))
	}
}

func TestComposeRequestBody(t *testing.T) {
	toast := ComposeRequest{Kind: payload.KindToast, Interval: sender.Within450, Toast: payload.Toast{Text1: "a"}}
	if toast.Class() != 12 || !strings.Contains(string(toast.Body()), "<wp:Text1>a</wp:Text1>") {
		t.Errorf("toast: class %d body %s", toast.Class(), toast.Body())
	}
	xml := ComposeRequest{Kind: payload.KindTile, XML: "<x/>", Tile: payload.Tile{Template: payload.TemplateFlip}}
	if string(xml.Body()) != "<x/>" || xml.Class() != 1 {
		t.Errorf("typed XML: class %d body %s", xml.Class(), xml.Body())
	}
	silent := ComposeRequest{Kind: payload.KindToast, Toast: payload.Toast{Text1: "a", Silent: true}}
	if !strings.Contains(string(silent.Body()), `<wp:Sound Silent="true"`) {
		t.Errorf("silent toast: body %s", silent.Body())
	}
	secondary := ComposeRequest{Kind: payload.KindTile, Tile: payload.Tile{ID: "/A.xaml?b=1&c=2", Template: payload.TemplateFlip}}
	if !strings.Contains(string(secondary.Body()), `Id="/A.xaml?b=1&amp;c=2"`) {
		t.Errorf("secondary tile: body %s", secondary.Body())
	}
	raw := ComposeRequest{Kind: payload.KindRaw, Interval: sender.Within900, Raw: []byte{1, 2}}
	if raw.Class() != 23 || string(raw.Body()) != "\x01\x02" {
		t.Errorf("raw: class %d body %q", raw.Class(), raw.Body())
	}
}

func TestLatencyAndClass(t *testing.T) {
	for d, want := range map[time.Duration]string{0: "–", 500 * time.Microsecond: "<1 ms", 12 * time.Millisecond: "12 ms", 1250 * time.Millisecond: "1.25 s"} {
		if got := Latency(d); got != want {
			t.Errorf("Latency(%v) = %q, want %q", d, got, want)
		}
	}
	for c, want := range map[int]string{1: "immediate", 12: "450 s", 23: "900 s", 4: "", 0: ""} {
		if got := ClassInterval(c); got != want {
			t.Errorf("ClassInterval(%d) = %q, want %q", c, got, want)
		}
	}
}

// A push that arrives while the developer reads a notification lists
// everything again (the shell merges every phone's list): the detail stays
// on the notification it was on, and closes only when that one is gone.
func TestSelectionSurvivesANewList(t *testing.T) {
	in, _, _ := newTestInspector(t)
	ns := testNotifications()
	in.SetNotifications(ns)
	in.Select(1)
	was := payloadShown(in.detail)
	more := append(slices.Clone(ns), Notification{Kind: "raw", App: "News", Time: uitest.Time.Add(time.Second), Payload: []byte("new")})
	// Listed under another name (the phone's prefix), newest last.
	for k := range more {
		more[k].App = "1 · " + more[k].App
	}
	in.SetNotifications(more)
	if in.Selected() != 1 || payloadShown(in.detail) != was {
		t.Fatalf("after a new list the selection is %d showing %q; want 1 showing %q", in.Selected(), payloadShown(in.detail), was)
	}
	in.SetNotifications(append(slices.Clone(more[:1]), more[2:]...))
	if in.Selected() != -1 || in.detail.empty.Hidden {
		t.Fatalf("the selected notification is gone, yet the selection is %d", in.Selected())
	}
}

// countMeasured makes fitWidth count the characters it measures, until the
// test ends, and returns the count.
func countMeasured(t *testing.T) *int {
	n := new(int)
	measureText = func(s string, size float32, style fyne.TextStyle) fyne.Size {
		*n += utf8.RuneCountInString(s)
		return fyne.MeasureText(s, size, style)
	}
	t.Cleanup(func() { measureText = fyne.MeasureText })
	return n
}

// TestListRowCutsALongMessageIDByBisection: a sender picks X-MessageID,
// up to 256 bytes, and the list shows it in a column 112 units wide. The
// cut is found by bisecting, a few times the ID's length measured in all;
// dropping a character at a time measured the whole rest each time (about
// 32,000 characters for a row, on the UI goroutine).
func TestListRowCutsALongMessageIDByBisection(t *testing.T) {
	uitest.App(t, true)
	measured := countMeasured(t)
	id := strings.Repeat("x", 256)
	r := newNotifRow()
	r.set(Notification{Kind: "toast", App: "News", MessageID: id, Time: uitest.Time})
	shown := r.cells[3].Text()
	if !strings.HasSuffix(shown, "…") || !strings.HasPrefix(id, strings.TrimSuffix(shown, "…")) {
		t.Errorf("message id shown as %q, want its start and an ellipsis", shown)
	}
	if limit := 3 * len(id); *measured > limit {
		t.Errorf("a row with a %d-character message id measured %d characters; want at most %d", len(id), *measured, limit)
	}
}

// TestFitWidthKeepsTheLongestPrefixThatFits with its ellipsis, or all of
// a text that fits.
func TestFitWidthKeepsTheLongestPrefixThatFits(t *testing.T) {
	uitest.App(t, true)
	const size = 15
	width := func(s string) float32 { return fyne.MeasureText(s, size, fyne.TextStyle{}).Width }
	for _, s := range []string{"", "tile", "mail.app.example", "3f2a9b4c-1d2e-4f5a-8b9c-0d1e2f3a4b5c", "Ünïcödé"} {
		for _, w := range []float32{0, width("…"), width("3f…"), width(s) - 0.5, width(s), 200} {
			want := s
			if width(s) > w {
				r := []rune(s)
				for len(r) > 0 && width(string(r)+"…") > w {
					r = r[:len(r)-1]
				}
				want = string(r) + "…"
			}
			if got := fitWidth(s, size, w); got != want {
				t.Errorf("fitWidth(%q, %v) = %q, want %q", s, w, got, want)
			}
		}
	}
}

// payloadShown is the payload as the detail view's rows show it, the
// pieces of each line joined and the lines joined by newlines.
func payloadShown(d *detailView) string {
	var b strings.Builder
	started := false
	for _, r := range d.text.rows {
		if r.kind != rowPayload {
			continue
		}
		if r.first && started {
			b.WriteByte('\n')
		}
		started = true
		b.WriteString(r.text)
	}
	return b.String()
}

// headersShown is the headers as the detail view's rows show them, "Name:
// value" each, the pieces of a value joined.
func headersShown(d *detailView) []string {
	var out []string
	for _, r := range d.text.rows {
		if r.kind != rowHeader {
			continue
		}
		if r.first {
			out = append(out, r.name+": ")
		}
		out[len(out)-1] += r.text
	}
	return out
}
