package settings

import (
	"strings"
	"testing"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/test"

	"github.com/openmpns/openmpns/emulator/ui/handset"
	"github.com/openmpns/openmpns/emulator/ui/internal/phonetest"
	"github.com/openmpns/openmpns/emulator/ui/internal/uitest"
)

type settingsCalls struct {
	apps     map[string]bool
	airplane []bool
	saver    []bool
	dark     []bool
	accents  []string
	resets   int
}

func newTestSettings(t *testing.T) (*Settings, fyne.Window, *settingsCalls) {
	t.Helper()
	uitest.App(t, true)
	s := testSettings()
	c := &settingsCalls{apps: map[string]bool{}}
	s.OnAppNotifications = func(id string, on bool) { c.apps[id] = on }
	s.OnAirplane = func(on bool) { c.airplane = append(c.airplane, on) }
	s.OnBatterySaver = func(on bool) { c.saver = append(c.saver, on) }
	s.OnDark = func(dark bool) { c.dark = append(c.dark, dark) }
	s.OnAccent = func(name string) { c.accents = append(c.accents, name) }
	s.OnReset = func() { c.resets++ }
	w := uitest.Window(t, phonetest.Phone(s), phonetest.Size)
	return s, w, c
}

func TestSettingsSwitches(t *testing.T) {
	s, w, c := newTestSettings(t)
	test.TapCanvas(w.Canvas(), uitest.AbsPos(s.appToggles["news"], 200, 30))
	test.Tap(s.appToggles["weather"])
	if on, ok := c.apps["news"]; !ok || on {
		t.Errorf("news switch: %v (called %v), want off", on, ok)
	}
	if !c.apps["weather"] {
		t.Error("weather switch did not report on")
	}
	test.Tap(s.airplane)
	test.Tap(s.saver)
	if len(c.airplane) != 1 || !c.airplane[0] || len(c.saver) != 1 || c.saver[0] {
		t.Errorf("airplane %v, saver %v; want [true] and [false]", c.airplane, c.saver)
	}
	// Set methods change the display without calling back.
	s.SetAirplane(false)
	s.SetAppNotifications("news", true)
	if s.airplane.On() || !s.appToggles["news"].On() || len(c.airplane) != 1 || len(c.apps) != 2 {
		t.Error("Set methods called back or did not show the value")
	}
}

func TestSettingsSetApps(t *testing.T) {
	s, _, c := newTestSettings(t)
	news := s.appToggles["news"]
	s.SetApps([]AppSwitch{{"news", "News", false}, {"maps", "Maps", true}})
	if s.appToggles["news"] != news {
		t.Error("SetApps rebuilt an app's switch")
	}
	if _, ok := s.appToggles["mail"]; ok {
		t.Error("a removed app kept its switch")
	}
	if news.On() || !s.appToggles["maps"].On() || len(c.apps) != 0 {
		t.Error("SetApps did not show the new values (or called back)")
	}
	s.SetApps(nil)
	if !s.noApps.Visible() {
		t.Error("no apps: the page does not say so")
	}
}

func TestSettingsBackground(t *testing.T) {
	s, _, c := newTestSettings(t)
	bg := s.background
	test.Tap(bg) // opens
	if !bg.open {
		t.Fatal("tap did not open the picker")
	}
	// Tap the second row: "light".
	test.TapAt(bg, fyne.NewPos(50, bg.boxTop()+pickerRow*1.5))
	if bg.open || len(c.dark) != 1 || c.dark[0] {
		t.Errorf("open %v, OnDark %v; want closed and [false]", bg.open, c.dark)
	}
	s.SetDark(true)
	if bg.selected != 0 || len(c.dark) != 1 {
		t.Error("SetDark did not select dark, or called back")
	}
	test.Tap(bg)
	if !s.HandleBack() || bg.open {
		t.Error("back did not close the open picker")
	}
}

func TestSettingsAccent(t *testing.T) {
	s, _, c := newTestSettings(t)
	p := s.accent
	test.Tap(p)
	if !p.open {
		t.Fatal("tap did not open the accent grid")
	}
	red := p.grid[11] // AccentOrder[11]
	test.TapAt(p, red.Position().Add(fyne.NewPos(10, 10)))
	if len(c.accents) != 1 || c.accents[0] != "red" || p.open {
		t.Errorf("OnAccent %v, open %v; want [red], closed", c.accents, p.open)
	}
	s.SetAccent("lime")
	s.SetAccent("not a colour")
	if p.name != "lime" || len(c.accents) != 1 {
		t.Errorf("accent %q after SetAccent(lime) and a bad name", p.name)
	}
}

func TestSettingsReset(t *testing.T) {
	s, w, c := newTestSettings(t)
	s.page.Scroll.ScrollToBottom()
	test.TapCanvas(w.Canvas(), uitest.AbsPos(s.reset, 20, 20))
	if !s.confirm.Visible() {
		t.Fatal("reset device did not ask first")
	}
	test.TapCanvas(w.Canvas(), uitest.AbsPos(s.confirm.Cancel, 20, 20))
	if s.confirm.Visible() || c.resets != 0 {
		t.Fatal("cancel reset the device or left the question")
	}
	s.ConfirmReset()
	if !s.HandleBack() || s.confirm.Visible() || c.resets != 0 {
		t.Fatal("back did not cancel")
	}
	s.ConfirmReset()
	test.TapCanvas(w.Canvas(), uitest.AbsPos(s.confirm.OK, 20, 20))
	if c.resets != 1 || s.confirm.Visible() {
		t.Errorf("reset: OnReset called %d times, question visible %v", c.resets, s.confirm.Visible())
	}
}

// TestSettingsTapsAtScale2: in a phone twice as large, taps land on the
// controls where they are drawn.
func TestSettingsTapsAtScale2(t *testing.T) {
	s, w, c := newTestSettings(t)
	w.Resize(fyne.NewSize(2*handset.PhoneWidth, 2*handset.PhoneHeight))
	test.TapCanvas(w.Canvas(), uitest.AbsPos(s.appToggles["news"], 400, 60))
	if on, ok := c.apps["news"]; !ok || on {
		t.Errorf("news switch: %v (called %v), want off", on, ok)
	}
	bg := s.background
	test.Tap(bg)
	test.TapAt(bg, fyne.NewPos(100, bg.boxTop()+2*pickerRow*1.5)) // the second row: "light"
	if bg.open || len(c.dark) != 1 || c.dark[0] {
		t.Errorf("open %v, OnDark %v; want closed and [false]", bg.open, c.dark)
	}
}

// TestSettingsProfile picks a screen and "show more tiles"; on 1080p,
// which always has six columns, the switch is not offered.
func TestSettingsProfile(t *testing.T) {
	uitest.App(t, true)
	s := testSettings()
	uitest.Window(t, phonetest.Phone(s), phonetest.Size)
	type pick struct {
		name string
		more bool
	}
	var got []pick
	s.OnProfile = func(name string, more bool) { got = append(got, pick{name, more}) }
	if name, more := s.Profile(); name != "wvga" || more || !s.moreTiles.Visible() {
		t.Fatalf("a new page shows %s, more tiles %v (offered %v)", name, more, s.moreTiles.Visible())
	}
	choose := func(i int) {
		test.Tap(s.screen) // opens
		test.TapAt(s.screen, fyne.NewPos(50, s.screen.boxTop()+pickerRow*(float32(i)+0.5)))
	}
	choose(2)
	test.Tap(s.moreTiles)
	choose(3)
	want := []pick{{"720p", false}, {"720p", true}, {"1080p", true}}
	if len(got) != len(want) {
		t.Fatalf("OnProfile got %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("OnProfile #%d = %v, want %v", i, got[i], want[i])
		}
	}
	if s.moreTiles.Visible() {
		t.Error("show more tiles is offered on 1080p")
	}
	s.SetProfile("wxga", true)
	if name, more := s.Profile(); name != "wxga" || !more || !s.moreTiles.Visible() {
		t.Errorf("after SetProfile(wxga, true): %s, %v, offered %v", name, more, s.moreTiles.Visible())
	}
}

// TestSettingsLockScreen chooses the detailed status app and the quick
// status apps; a sixth quick status is refused, as the lock screen has
// room for five.
func TestSettingsLockScreen(t *testing.T) {
	uitest.App(t, true)
	s := testSettings()
	uitest.Window(t, phonetest.Phone(s), phonetest.Size)
	var apps []LockApp
	for _, id := range []string{"a", "b", "c", "d", "e", "f"} {
		apps = append(apps, LockApp{ID: id, Name: "App " + id})
	}
	s.SetLockApps(apps, "b", []string{"a", "c"})
	if d, q := s.LockApps(); d != "b" || strings.Join(q, ",") != "a,c" {
		t.Fatalf("shown %q %q, want b a,c", d, q)
	}
	var got []string
	s.OnLock = func(d string, q []string) { got = append(got, d+":"+strings.Join(q, ",")) }
	test.Tap(s.detailed)                                                       // opens
	test.TapAt(s.detailed, fyne.NewPos(50, s.detailed.boxTop()+pickerRow*0.5)) // "none"
	for _, id := range []string{"b", "d", "e", "f"} {
		test.Tap(s.quickOn[id])
	}
	want := []string{":a,c", ":a,b,c", ":a,b,c,d", ":a,b,c,d,e"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("OnLock got %q, want %q", got, want)
	}
	if s.quickOn["f"].On() {
		t.Error("a sixth quick status app was switched on")
	}
	s.SetLockApps(nil, "", nil)
	if !s.noLock.Visible() || s.detailed.Visible() {
		t.Error("with no lock apps the page does not say so")
	}
}
