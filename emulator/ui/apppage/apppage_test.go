package apppage

import (
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/test"

	"github.com/openmpns/openmpns/emulator/ui/controls"
	"github.com/openmpns/openmpns/emulator/ui/internal/phonetest"
	"github.com/openmpns/openmpns/emulator/ui/internal/uitest"
	"github.com/openmpns/openmpns/shared/payload"
)

func TestAppPageCopy(t *testing.T) {
	clip := uitest.App(t, true).Clipboard() // a test window's clipboard forgets
	w := uitest.Window(t, nil, phonetest.Size)
	p := testAppPage(clip)
	w.SetContent(phonetest.Phone(p))
	var copied []string
	p.OnCopy = func(uri string) { copied = append(copied, uri) }

	test.TapCanvas(w.Canvas(), uitest.AbsPos(p.uri.copy, 30, 20))
	uri := "http://127.0.0.1:8080/c/3f2a9b4c-1d2e-4f5a-8b9c-0d1e2f3a4b5c"
	if got := clip.Content(); got != uri {
		t.Errorf("clipboard holds %q, want the URI", got)
	}
	if len(copied) != 1 || copied[0] != uri {
		t.Errorf("OnCopy got %v", copied)
	}

	// No URI yet: nothing to copy.
	p.SetChannelURI("")
	clip.SetContent("before")
	test.Tap(p.uri.copy)
	if clip.Content() != "before" || len(copied) != 1 {
		t.Error("copy without a URI changed the clipboard or called back")
	}
	if p.uri.label.Text != "none yet" {
		t.Errorf("empty URI shown as %q", p.uri.label.Text)
	}
}

func TestAppPageLists(t *testing.T) {
	uitest.App(t, true)
	p := NewAppPage("News", nil)
	uitest.Window(t, phonetest.Phone(p), phonetest.Size)
	if !p.raws.empty.Visible() {
		t.Error("an empty list does not say so")
	}
	var raws []RawNotification
	for i := range MaxListed + 5 {
		raws = append(raws, RawNotification{Time: uitest.Time, Data: []byte(fmt.Sprintf("raw %d", i))})
	}
	p.SetRaws(raws)
	if p.raws.empty.Visible() {
		t.Error("the empty text shows over a list")
	}
	texts := listedTexts(p.raws)
	if len(texts) != MaxListed || texts[0] != fmt.Sprintf("raw %d", MaxListed+4) {
		t.Errorf("listed %d rows, first %q; want %d, newest first", len(texts), texts[0], MaxListed)
	}
	p.SetRaws(raws[:1])
	if got := listedTexts(p.raws); len(got) != 1 || got[0] != "raw 0" {
		t.Errorf("after a shorter list: %v", got)
	}
	p.SetToasts([]ReceivedToast{{Time: uitest.Time, Toast: payload.Toast{Text1: "Alice", Text2: "Lunch?", Param: "/Chat.xaml"}}})
	if got := listedTexts(p.toasts); len(got) != 1 || got[0] != "Alice Lunch?" {
		t.Errorf("toasts listed %v", got)
	}
	if meta := p.toasts.pool[0].Text(); !strings.Contains(meta, "/Chat.xaml") {
		t.Errorf("toast line %q does not show its Param", meta)
	}
	p.SetHandoff("POST x → 201")
	p.SetChannelState("open")
	p.SetApp("Other")
	if p.handoff.Text() != "POST x → 201" || p.state.Text() != "open" || p.page.Title().Text() != "other" {
		t.Error("the Set methods did not show their values")
	}
}

// listedTexts returns the main line of each row shown.
func listedTexts(l *rowList) []string {
	var out []string
	for _, o := range l.box.Objects {
		for i := 1; i < len(l.pool); i += 2 {
			if o == l.pool[i] {
				out = append(out, l.pool[i].Text())
			}
		}
	}
	return out
}

func TestAppPageErrors(t *testing.T) {
	uitest.App(t, true)
	p := NewAppPage("News", nil)
	uitest.Window(t, phonetest.Phone(p), phonetest.Size)
	if p.errors.Visible() {
		t.Fatal("an errors section with no errors")
	}
	p.SetErrors([]string{"PayloadFormatError: bad XML", "lost"})
	if !p.errors.Visible() {
		t.Fatal("errors not shown")
	}
	if got := listedTexts(p.errList); len(got) != 2 || got[0] != "lost" || got[1] != "bad XML" {
		t.Errorf("errors listed %v, want newest first", got)
	}
	if p.errList.pool[2].Text() != "PayloadFormatError" {
		t.Errorf("error kind shown as %q", p.errList.pool[2].Text())
	}
	p.SetErrors(nil)
	if p.errors.Visible() {
		t.Error("errors section stayed after the errors were cleared")
	}
}

// TestRowsLayOutAtMostRowChars: a sender controls the length of what the
// rows show (the URL a MessageBadContent error quotes, a foreground
// toast's texts and Param, up to a 3 KB payload), and laying text out costs
// the UI goroutine in proportion to its length: a row is given at most
// rowChars characters, the start of the text and an ellipsis.
func TestRowsLayOutAtMostRowChars(t *testing.T) {
	uitest.App(t, true)
	p := NewAppPage("News", nil)
	uitest.Window(t, phonetest.Phone(p), phonetest.Size)
	url := "http://evil.example/" + strings.Repeat("W", 2900)
	p.SetErrors([]string{"MessageBadContent: image " + url + " is not from an allowed domain"})
	p.SetToasts([]ReceivedToast{{Time: uitest.Time, Toast: payload.Toast{Text1: strings.Repeat("lorem ipsum ", 250), Param: "/Page.xaml?u=" + url}}})
	for _, row := range []struct {
		name string
		l    *rowList
		cut  [2]bool // meta, text: cut
	}{
		{"error", p.errList, [2]bool{false, true}},
		{"toast", p.toasts, [2]bool{true, true}},
	} {
		for i, cut := range row.cut {
			got := row.l.pool[i].Text()
			n := utf8.RuneCountInString(got)
			if n > rowChars || cut != strings.HasSuffix(got, "…") {
				t.Errorf("%s row, line %d: %d characters ending %q; want at most %d, cut with an ellipsis: %v", row.name, i, n, got[max(0, len(got)-10):], rowChars, cut)
			}
		}
	}
	if got := p.errList.pool[1].Text(); !strings.HasPrefix(got, "image http://evil.example/WWW") {
		t.Errorf("error row shows %.40q…, want the start of the message", got)
	}
	// The row draws one line, cut to the page with an ellipsis.
	line := test.WidgetRenderer(p.errList.pool[1]).Objects()
	if len(line) != 1 || !strings.HasSuffix(line[0].(*canvas.Text).Text, "…") {
		t.Errorf("error row draws %d lines, want one ending with an ellipsis", len(line))
	}
}

// TestRowCharsIsNeverSeen: rowChars of the narrowest characters are wider
// than a row, in the smallest of its fonts: the row's own ellipsis, at the
// page's edge, always comes before rowChars cuts anything.
func TestRowCharsIsNeverSeen(t *testing.T) {
	uitest.App(t, true)
	for _, c := range []string{".", "i", "l", "'", "|", "!", " ."} {
		if w := fyne.MeasureText(strings.Repeat(c, rowChars/len(c)), controls.FontSmall, fyne.TextStyle{}).Width; w <= 2*controls.PageWidth {
			t.Errorf("%d of %q are %v wide, not twice a row's %v", rowChars, c, w, controls.PageWidth)
		}
	}
}
