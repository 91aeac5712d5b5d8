package inspector

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/test"
	"fyne.io/fyne/v2/theme"

	"github.com/openmpns/openmpns/emulator/ui/handset"
	"github.com/openmpns/openmpns/emulator/ui/internal/uitest"
	"github.com/openmpns/openmpns/shared/payload"
)

// TestDetailOfALargePayloadDrawsOnlyWhatIsInSight: the detail of a
// notification with a 16 KB payload (more than a server can send a phone:
// a frame is at most 16 KiB, base64 inside) draws the rows in sight, a few
// kilobytes of text, not all of it. A Label wrapping the whole payload
// drew it all, and wrapping it took seconds of the UI goroutine (most of
// a second for 3 KB, minutes for 64 KB).
func TestDetailOfALargePayloadDrawsOnlyWhatIsInSight(t *testing.T) {
	in, _, _ := newTestInspector(t)
	ns := bigPayloads(16 << 10)
	in.SetNotifications(ns)
	for k, n := range ns {
		in.Select(k)
		drawn := 0
		for _, txt := range uitest.Texts(in) {
			drawn += len(txt.Text)
		}
		if drawn > 8<<10 {
			t.Errorf("the detail of a %d-byte %s payload draws %d bytes of text; want what is in sight, at most 8 KB",
				len(n.Payload), n.Kind, drawn)
		}
	}
}

// TestDetailShowsEveryHeaderAndAllThePayload, wrapped to the view's
// width: the pieces of each line, joined, are the line, and each fits.
// The view measures each distinct character once, and each header's name;
// never the payload: 7 notifications of 220 KB in all, at 3 widths.
func TestDetailShowsEveryHeaderAndAllThePayload(t *testing.T) {
	in, w, _ := newTestInspector(t)
	measured := countMeasured(t)
	ns := append(bigPayloads(64<<10), bigPayloads(3<<10)...)
	ns = append(ns, Notification{Kind: "raw", App: "News", Time: uitest.Time,
		Payload: []byte("tab\there\r\nlines\nwide 漢字漢字漢字 " + strings.Repeat("漢", 200)),
		Headers: map[string]string{"X-Odd": "a\tb\x00c"}})
	in.SetNotifications(ns)
	for _, width := range []float32{InspectorWidth, InspectorMinWidth, 1200} {
		w.Resize(fyne.NewSize(width, handset.PhoneHeight))
		for k, n := range ns {
			in.Select(k)
			v := in.detail.text
			name := fmt.Sprintf("width %v, %d-byte %s", width, len(n.Payload), n.Kind)
			var want string
			if v.binary != nil {
				want = strings.Join(hexDumpLines(n.Payload, v.hexPer), "\n")
				if wantPer := map[float32]int{InspectorWidth: 8, InspectorMinWidth: 8, 1200: 16}[width]; v.hexPer != wantPer {
					t.Errorf("%s: hex dump of %d bytes a line, want %d", name, v.hexPer, wantPer)
				}
			} else {
				lines, _, _ := payloadLines(n)
				want = strings.Join(lines, "\n")
			}
			if got := payloadShown(in.detail); got != want {
				t.Errorf("%s: payload shown differs from the payload (%d bytes shown, %d wanted)", name, len(got), len(want))
			}
			// A name too long for its column (at most 45 % of the width)
			// is cut with an ellipsis; all of the value is shown.
			hs, got := sortedHeaders(n.Headers), headersShown(in.detail)
			if len(got) != len(hs) {
				t.Errorf("%s: %d headers shown, want %d", name, len(got), len(hs))
				continue
			}
			for j, h := range hs {
				shown, value, _ := strings.Cut(got[j], ": ")
				if value != displayable(h.value) || (shown != h.name && !strings.HasPrefix(h.name, strings.TrimSuffix(shown, "…"))) {
					t.Errorf("%s: header shown as %q, want %q: %q", name, got[j], h.name, h.value)
				}
			}
			if len(n.Payload) <= 3<<10 {
				assertRowsFit(t, name, v)
			}
		}
	}
	if *measured > 10000 {
		t.Errorf("showing %d notifications at 3 widths measured %d characters; want the distinct ones and the headers' names", len(ns), *measured)
	}
}

// assertRowsFit checks that every row's text fits the view's width.
func assertRowsFit(t *testing.T, name string, v *textView) {
	t.Helper()
	left, right := v.inset()
	avail := v.Size().Width - left - right
	for _, r := range v.rows {
		x := float32(0)
		if r.kind == rowHeader {
			x = v.nameW
		}
		style := fyne.TextStyle{Monospace: r.kind == rowHeader || r.kind == rowPayload}
		if tw := fyne.MeasureText(r.text, v.size, style).Width; x+tw > avail+0.5 {
			t.Errorf("%s: row %q is %v wide at %v, beyond %v", name, r.text, tw, x, avail)
			return
		}
	}
}

// TestDetailCopies: the buttons copy the headers and the payload as
// received; tapping a row copies its whole line, however many rows it
// wraps to.
func TestDetailCopies(t *testing.T) {
	in, w, _ := newTestInspector(t)
	ns := bigPayloads(3 << 10)
	in.SetNotifications(ns)
	clip := fyne.CurrentApp().Clipboard()
	d := in.detail

	in.Select(1) // raw text, one long line
	test.Tap(d.copyPl)
	if got := clip.Content(); got != string(ns[1].Payload) {
		t.Errorf("copy payload copied %d bytes, want the %d of the payload", len(got), len(ns[1].Payload))
	}
	if d.status.Hidden || d.status.Text != "copied the payload" {
		t.Errorf("status after copying the payload: %q (hidden %v)", d.status.Text, d.status.Hidden)
	}
	test.Tap(d.copyHdr)
	if want := headersText(sortedHeaders(ns[1].Headers)); clip.Content() != want {
		t.Errorf("copy headers copied\n%q\nwant\n%q", clip.Content(), want)
	}

	// The payload's one line wraps to many rows: tapping its third row
	// copies it all.
	row := slices.IndexFunc(d.text.rows, func(r textRow) bool { return r.kind == rowPayload && !r.first })
	if row < 0 {
		t.Fatal("a 3 KB line is not wrapped")
	}
	tapRow(t, w, d.text, row+1)
	if got := clip.Content(); got != string(ns[1].Payload) {
		t.Errorf("tapping a row of the payload copied %d bytes, want its line, %d", len(got), len(ns[1].Payload))
	}
	if d.status.Text != "copied line 1 of the payload" {
		t.Errorf("status %q", d.status.Text)
	}
	// A header, wrapped too.
	row = slices.IndexFunc(d.text.rows, func(r textRow) bool {
		return r.kind == rowHeader && !r.first && d.text.headers[r.src].name == "X-Custom"
	})
	if row < 0 {
		t.Fatal("a 900-byte header is not wrapped")
	}
	tapRow(t, w, d.text, row)
	if want := "X-Custom: " + ns[1].Headers["X-Custom"]; clip.Content() != want {
		t.Errorf("tapping a header row copied %q", clip.Content())
	}

	in.Select(2) // binary: its hex dump
	if !d.status.Hidden {
		t.Error("the status of a copy stays on another notification")
	}
	test.Tap(d.copyPl)
	if got := clip.Content(); got != HexDump(ns[2].Payload) {
		t.Errorf("copy payload of a binary payload copied %.40q…, want its hex dump", got)
	}
	row = slices.IndexFunc(d.text.rows, func(r textRow) bool { return r.kind == rowCaption && r.src == 0 })
	tapRow(t, w, d.text, row)
	if want := headersText(sortedHeaders(ns[2].Headers)); clip.Content() != want {
		t.Errorf("tapping the headers caption copied %q", clip.Content())
	}
}

// tapRow taps row id of the view, scrolled to it first.
func tapRow(t *testing.T, w fyne.Window, v *textView, id int) {
	t.Helper()
	v.list.ScrollTo(id)
	pad := v.Theme().Size(theme.SizeNamePadding)
	y := float32(id)*(v.rowHeight()+pad) + v.rowHeight()/2 - v.list.GetScrollOffset()
	test.TapCanvas(w.Canvas(), uitest.AbsPos(v.list, 40, y))
}

// TestBreakLine keeps words whole when a space falls in the second half of
// a row, breaks a long word where the row ends, and measures characters
// by their own widths (a CJK character is wider than a Latin one).
func TestBreakLine(t *testing.T) {
	uitest.App(t, true)
	v := newTextView()
	v.wrap(200)
	cell := v.advance('0')
	tests := []struct {
		s    string
		cols float32
		want []string
	}{
		{"", 10, []string{""}},
		{"short", 10, []string{"short"}},
		{"lorem ipsum dolor", 10, []string{"lorem ", "ipsum ", "dolor"}},
		{"a bcdefghijklmnop", 10, []string{"a bcdefghi", "jklmnop"}},
		{"abcdefghijklmnopqrstu", 10, []string{"abcdefghij", "klmnopqrst", "u"}},
		{"abc", 0.5, []string{"a", "b", "c"}},
	}
	for _, tt := range tests {
		if got := v.breakLine(tt.s, tt.cols*cell, nil); !slices.Equal(got, tt.want) {
			t.Errorf("breakLine(%q, %v columns) = %q, want %q", tt.s, tt.cols, got, tt.want)
		}
	}
	wide := strings.Repeat("漢", 20)
	pieces := v.breakLine(wide, 10*cell, nil)
	if strings.Join(pieces, "") != wide || len(pieces) < 3 {
		t.Errorf("20 CJK characters in 10 columns broke into %q", pieces)
	}
}

func TestDisplayable(t *testing.T) {
	for in, want := range map[string]string{
		"plain":         "plain",
		"a\tb":          "a       b",
		"1234567\tx":    "1234567 x",
		"a\x00b\u0085c": "a\uFFFDb c",
		"漢字\tend":       "漢字      end",
	} {
		if got := displayable(in); got != want {
			t.Errorf("displayable(%q) = %q, want %q", in, got, want)
		}
	}
}

// A payload of each kind, as the view lists it: toast XML pretty-printed.
func TestPayloadLines(t *testing.T) {
	lines, bin, cp := payloadLines(Notification{Kind: payload.KindToast.String(), Payload: toastXML})
	if bin != nil || cp != string(toastXML) || len(lines) < 5 || lines[2] != "  <wp:Toast>" {
		t.Errorf("toast: %q %v %q", lines, bin, cp)
	}
	if lines, _, _ := payloadLines(Notification{Kind: "raw"}); !slices.Equal(lines, []string{"(empty)"}) {
		t.Errorf("empty: %q", lines)
	}
	if _, bin, _ := payloadLines(Notification{Kind: "raw", Payload: []byte{0, 1}}); len(bin) != 2 {
		t.Errorf("binary not shown as a hex dump")
	}
}

// TestAPushKeepsTheDetailWhereItWasScrolled: the shell lists every
// notification again when one arrives; the detail being read stays where
// the reader scrolled it (it went back to its first line at every push),
// and another notification opens at its first line.
func TestAPushKeepsTheDetailWhereItWasScrolled(t *testing.T) {
	in, _, _ := newTestInspector(t)
	ns := bigPayloads(3 << 10)
	in.SetNotifications(ns)
	in.Select(0)
	v := in.detail.text
	v.list.ScrollTo(len(v.rows) - 1)
	at := v.list.GetScrollOffset()
	if at <= 0 {
		t.Fatalf("the detail of a 3 KB payload does not scroll (offset %v)", at)
	}
	more := append(slices.Clone(ns), Notification{Kind: "raw", App: "News", Time: uitest.Time.Add(time.Second), Payload: []byte("new")})
	in.SetNotifications(more)
	if in.Selected() != 0 || v.list.GetScrollOffset() != at {
		t.Errorf("after a push the detail shows %d scrolled to %v; want 0 at %v", in.Selected(), v.list.GetScrollOffset(), at)
	}
	in.Select(1)
	if got := v.list.GetScrollOffset(); got != 0 {
		t.Errorf("another notification opens scrolled to %v, want its first line", got)
	}
}
