package lockscreen

import (
	"io/fs"
	"strings"
	"testing"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/driver/software"
	"fyne.io/fyne/v2/test"

	"github.com/openmpns/openmpns/assets"
	"github.com/openmpns/openmpns/emulator/internal/golden"
	"github.com/openmpns/openmpns/emulator/tile"
	"github.com/openmpns/openmpns/emulator/ui/controls"
	"github.com/openmpns/openmpns/emulator/ui/internal/phonetest"
	"github.com/openmpns/openmpns/emulator/ui/internal/uitest"
	"github.com/openmpns/openmpns/emulator/ui/start"
)

func TestMain(m *testing.M) { uitest.Main(m) }

// lockIcon is a built-in app's lock screen icon.
func lockIcon(t testing.TB, name string) fyne.Resource {
	t.Helper()
	b, err := fs.ReadFile(assets.FS, "apps/"+name+"/lock/"+name+".png")
	if err != nil {
		t.Fatal(err)
	}
	return fyne.NewStaticResource(name+".png", b)
}

// sampleLock is the lock screen of the goldens: the calendar's text, the
// counts of mail, news and photos.
func sampleLock(t testing.TB) *Lock {
	l := New()
	l.SetTime(uitest.Time)
	l.SetDetailed([]string{"Lunch with Ana", "12:30 Harbour Café", "Tomorrow: no events"})
	l.SetQuick([]Quick{{lockIcon(t, "mail"), 7}, {lockIcon(t, "news"), 12}, {lockIcon(t, "photos"), 4}})
	return l
}

// lockedPhone is a phone on the sample start screen, locked with l.
func lockedPhone(l *Lock) fyne.CanvasObject {
	home := start.NewStartScreen()
	for _, k := range uitest.SampleTiles() {
		home.Pin(k.Key, k.Tile)
	}
	p := phonetest.Phone(home)
	p.ShowLock(l)
	return p
}

func TestGolden(t *testing.T) {
	tests := []struct {
		name  string
		dark  bool
		build func(t *testing.T) *Lock
	}{
		{"lock_dark", true, func(t *testing.T) *Lock { return sampleLock(t) }},
		{"lock_light_theme", false, func(t *testing.T) *Lock { return sampleLock(t) }},
		{"lock_gap_one_app", true, func(t *testing.T) *Lock {
			l := New()
			l.SetTime(uitest.Time.Add(-11 * 3600e9))
			l.SetDetailed([]string{"one", "", "three"})
			l.SetQuick([]Quick{{lockIcon(t, "mail"), 99}})
			return l
		}},
		{"lock_cut_lines", true, func(t *testing.T) *Lock {
			l := New()
			l.SetTime(uitest.Time)
			l.SetDetailed(cutLines)
			l.SetQuick([]Quick{{lockIcon(t, "mail"), 7}})
			return l
		}},
		{"lock_empty", true, func(*testing.T) *Lock {
			l := New()
			l.SetTime(uitest.Time)
			return l
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			uitest.App(t, tt.dark)
			w := uitest.Window(t, lockedPhone(tt.build(t)), phonetest.Size)
			golden.Assert(t, tt.name+".png", uitest.Capture(w))
		})
	}
}

// TestGolden1080p draws the lock screen on a 1080p phone at its pixels.
func TestGolden1080p(t *testing.T) {
	uitest.App(t, true)
	p := phonetest.Phone(nil)
	p.SetProfile(tile.HD1080)
	p.ShowLock(sampleLock(t))
	c := software.NewCanvas()
	c.SetPadded(false)
	c.SetScale(tile.HD1080.Scale)
	c.SetContent(p)
	c.Resize(p.BodySize())
	golden.Assert(t, "lock_1080p.png", c.Capture())
}

func TestLockUnlocks(t *testing.T) {
	uitest.App(t, true)
	tests := []struct {
		name   string
		do     func(c fyne.Canvas, l *Lock)
		unlock bool
	}{
		{"tap", func(_ fyne.Canvas, l *Lock) { test.Tap(l) }, true},
		{"swipe up", func(c fyne.Canvas, l *Lock) { test.Drag(c, uitest.AbsPos(l, 200, 500), 0, -120) }, true},
		{"short swipe", func(c fyne.Canvas, l *Lock) { test.Drag(c, uitest.AbsPos(l, 200, 500), 0, -30) }, false},
		{"swipe down", func(c fyne.Canvas, l *Lock) { test.Drag(c, uitest.AbsPos(l, 200, 300), 0, 200) }, false},
		{"back key", func(_ fyne.Canvas, l *Lock) { l.HandleBack() }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := sampleLock(t)
			w := uitest.Window(t, lockedPhone(l), phonetest.Size)
			unlocked := 0
			l.OnUnlock = func() { unlocked++ }
			tt.do(w.Canvas(), l)
			if (unlocked == 1) != tt.unlock {
				t.Errorf("OnUnlock called %d times, want unlock %v", unlocked, tt.unlock)
			}
			if l.drag != 0 {
				t.Errorf("the screen stayed %v units up", l.drag)
			}
		})
	}
}

func TestLockContent(t *testing.T) {
	uitest.App(t, true)
	l := sampleLock(t)
	uitest.Window(t, lockedPhone(l), phonetest.Size)
	if got := l.Detailed(); len(got) != 3 || got[1] != "12:30 Harbour Café" {
		t.Errorf("detailed %q", got)
	}
	if l.QuickShown() != 3 || !l.icons[2].Visible() || l.icons[3].Visible() || l.counts[1].Text() != "12" {
		t.Errorf("quick: %d shown, icon 3 visible %v, icon 4 visible %v, count 2 %q", l.QuickShown(), l.icons[2].Visible(), l.icons[3].Visible(), l.counts[1].Text())
	}
	six := make([]Quick, 6)
	for i := range six {
		six[i] = Quick{Count: i + 1}
	}
	l.SetQuick(six)
	if l.QuickShown() != tile.LockQuickApps {
		t.Errorf("%d quick statuses shown, want at most %d", l.QuickShown(), tile.LockQuickApps)
	}
	l.SetDetailed(nil)
	l.SetQuick(nil)
	if len(l.Detailed()) != 0 || l.QuickShown() != 0 || l.counts[0].Visible() {
		t.Error("an empty lock screen still shows a status")
	}
	if l.clock.Text() != "12:38" || l.date.Text() != "Monday, October 21" {
		t.Errorf("clock %q, date %q", l.clock.Text(), l.date.Text())
	}
}

// cutLines are detailed status lines too wide for the screen, as
// tile.State.LockText gives them (an IconicTile's WideContent, cut at
// tile.WideContentChars), but for the last.
var cutLines = []string{
	"Lunch with Ana and the team at the Harb",
	strings.Repeat("W", tile.WideContentChars),
	"short",
}

// TestDetailedLinesAreCutAtTheScreenEdge: a line wider than the screen is
// cut, with an ellipsis, where it would run past the screen's margin.
func TestDetailedLinesAreCutAtTheScreenEdge(t *testing.T) {
	uitest.App(t, true)
	l := New()
	uitest.Window(t, lockedPhone(l), phonetest.Size)
	l.SetDetailed(cutLines)
	k := l.Scale()
	for i, want := range cutLines {
		objs := test.WidgetRenderer(l.lines[i]).Objects()
		if len(objs) != 1 {
			t.Errorf("line %d drawn as %d lines, want 1", i, len(objs))
			continue
		}
		c := objs[0].(*canvas.Text)
		width := func(s string) float32 { return fyne.MeasureText(s, c.TextSize, c.TextStyle).Width }
		got := c.Text
		switch {
		case width(want) <= textWidth*k:
			if got != want {
				t.Errorf("line %d fits, drawn as %q; want %q", i, got, want)
			}
		case !strings.HasSuffix(got, "…") || !strings.HasPrefix(want, strings.TrimSuffix(got, "…")):
			t.Errorf("line %d is too wide, drawn as %q; want its start and an ellipsis", i, got)
		}
		if right, edge := l.lines[i].Position().X+width(got), (controls.ScreenWidth-marginLeft)*k; right > edge {
			t.Errorf("line %d %q ends at %v, past the margin at %v", i, got, right, edge)
		}
	}
	if got := l.Detailed(); len(got) != 3 || got[0] != cutLines[0] {
		t.Errorf("Detailed() = %q, want the lines given", got)
	}
}
