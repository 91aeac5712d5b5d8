package handset

import (
	"testing"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/layout"
	"fyne.io/fyne/v2/test"

	"github.com/openmpns/openmpns/emulator/tile"
	"github.com/openmpns/openmpns/emulator/ui/controls"
	"github.com/openmpns/openmpns/emulator/ui/internal/uitest"
	"github.com/openmpns/openmpns/emulator/ui/start"
	"github.com/openmpns/openmpns/emulator/ui/toastview"
	"github.com/openmpns/openmpns/shared/payload"
)

// backScreen is a screen that keeps the back key while holding is set.
type backScreen struct {
	*fyne.Container
	holding bool
}

func (b *backScreen) HandleBack() bool { return b.holding }

// phoneSize is the handset's size at scale 1.
var phoneSize = fyne.NewSize(PhoneWidth, PhoneHeight)

func TestPhoneNavigation(t *testing.T) {
	uitest.App(t, true)
	home, a, b := layout.NewSpacer(), layout.NewSpacer(), layout.NewSpacer()
	p := NewPhone(home)
	var shown []fyne.CanvasObject
	p.OnNavigate = func(s fyne.CanvasObject) { shown = append(shown, s) }
	uitest.Window(t, p, phoneSize)

	p.Push(a)
	p.Push(a) // already on top: nothing
	p.Push(b)
	if p.Current() != b || p.Depth() != 3 {
		t.Fatalf("after two pushes: current %p depth %d", p.Current(), p.Depth())
	}
	if !p.Back() || p.Current() != a {
		t.Fatal("Back did not return to the previous screen")
	}
	p.Push(b)
	p.Home()
	if p.Current() != home || p.Depth() != 1 {
		t.Fatalf("Home: depth %d", p.Depth())
	}
	if p.Back() {
		t.Error("Back on the home screen reported that it did something")
	}
	want := []fyne.CanvasObject{a, b, a, b, home}
	if len(shown) != len(want) {
		t.Fatalf("OnNavigate called %d times, want %d", len(shown), len(want))
	}
	for i := range want {
		if shown[i] != want[i] {
			t.Errorf("OnNavigate #%d got another screen", i)
		}
	}
}

func TestPhoneBackHandler(t *testing.T) {
	uitest.App(t, true)
	p := NewPhone(nil)
	s := &backScreen{Container: fyne.NewContainer(), holding: true}
	p.Push(s)
	if !p.Back() || p.Current() != s {
		t.Fatal("a screen that handles back was left")
	}
	s.holding = false
	if !p.Back() || p.Depth() != 1 {
		t.Fatal("a screen that does not handle back was not left")
	}
}

func TestPhoneKeys(t *testing.T) {
	uitest.App(t, true)
	p := NewPhone(nil)
	starts, searches := 0, 0
	p.OnStart = func() { starts++ }
	p.OnSearch = func() { searches++ }
	w := uitest.Window(t, p, phoneSize)
	p.Push(layout.NewSpacer())
	p.Push(layout.NewSpacer())

	test.TapCanvas(w.Canvas(), uitest.AbsPos(p.keys[0], 60, 36)) // back
	if p.Depth() != 2 {
		t.Errorf("back key: depth %d, want 2", p.Depth())
	}
	test.TapCanvas(w.Canvas(), uitest.AbsPos(p.keys[1], 60, 36)) // start
	if p.Depth() != 1 || starts != 1 {
		t.Errorf("start key: depth %d, OnStart called %d times", p.Depth(), starts)
	}
	test.TapCanvas(w.Canvas(), uitest.AbsPos(p.keys[2], 60, 36)) // search
	if searches != 1 {
		t.Errorf("search key: OnSearch called %d times", searches)
	}
}

func TestPhoneStatusBar(t *testing.T) {
	uitest.App(t, true)
	p := NewPhone(nil)
	uitest.Window(t, p, phoneSize)
	p.SetTime("09:41")
	p.SetConnection(Connecting)
	p.SetBatterySaver(true)
	r := test.WidgetRenderer(p.status).(*statusRenderer)
	if r.time.Text() != "09:41" || r.state.Text() != "connecting…" || !r.saver.Visible() {
		t.Errorf("status bar shows %q, %q, saver %v", r.time.Text(), r.state.Text(), r.saver.Visible())
	}
	p.SetConnection(Airplane)
	if r.bars[0].Visible() || !r.plane[0].Visible() || r.state.Text() != "airplane mode" {
		t.Error("airplane mode does not replace the bars with the plane")
	}
}

func TestPhoneDialog(t *testing.T) {
	uitest.App(t, true)
	p := NewPhone(nil)
	uitest.Window(t, p, phoneSize)
	d := layout.NewSpacer()
	p.ShowDialog(d)
	if p.Dialog() != d || !p.dialogs.Visible() {
		t.Fatal("dialog not shown")
	}
	if !p.Back() || p.Dialog() != nil || p.dialogs.Visible() {
		t.Fatal("back did not close the dialog")
	}
}

func TestPhoneToast(t *testing.T) {
	tn := payload.Toast{Text1: "Alice", Text2: "Lunch at noon?", Param: "/Chat.xaml?with=alice"}
	t.Run("slides in and out", func(t *testing.T) {
		uitest.App(t, true)
		p := NewPhone(nil)
		uitest.Window(t, p, phoneSize)
		p.ShowToast(tn, nil)
		// The test driver runs animations to their end at once.
		if got, ok := p.Toast(); !ok || got != tn {
			t.Fatalf("Toast() = %v, %v", got, ok)
		}
		if !p.toastClip.Visible() || p.banner.Position() != fyne.NewPos(0, 0) {
			t.Errorf("banner at %v, visible %v; want at the top", p.banner.Position(), p.toastClip.Visible())
		}
		p.HideToast()
		if _, ok := p.Toast(); ok || p.toastClip.Visible() || p.banner.Position().Y != -toastview.BannerHeight {
			t.Errorf("after HideToast: visible %v at %v", p.toastClip.Visible(), p.banner.Position())
		}
	})
	t.Run("tap", func(t *testing.T) {
		uitest.App(t, true)
		p := NewPhone(nil)
		w := uitest.Window(t, p, phoneSize)
		var tapped []payload.Toast
		p.OnToastTapped = func(t payload.Toast) { tapped = append(tapped, t) }
		p.ShowToast(tn, nil)
		test.TapCanvas(w.Canvas(), uitest.AbsPos(p.banner, 200, 30))
		if len(tapped) != 1 || tapped[0] != tn {
			t.Fatalf("OnToastTapped got %v", tapped)
		}
		if _, ok := p.Toast(); ok || p.toastClip.Visible() {
			t.Error("the banner stayed after a tap")
		}
	})
	t.Run("flick", func(t *testing.T) {
		uitest.App(t, true)
		p := NewPhone(nil)
		w := uitest.Window(t, p, phoneSize)
		var dismissed []payload.Toast
		p.OnToastDismissed = func(t payload.Toast) { dismissed = append(dismissed, t) }
		p.ShowToast(tn, nil)
		test.Drag(w.Canvas(), uitest.AbsPos(p.banner, 100, 30), 30, 0) // too short: it comes back
		if len(dismissed) != 0 {
			t.Fatal("a short drag dismissed the toast")
		}
		if _, ok := p.Toast(); !ok {
			t.Fatal("a short drag removed the toast")
		}
		test.Drag(w.Canvas(), uitest.AbsPos(p.banner, 100, 30), toastview.DismissDistance+20, 0)
		if len(dismissed) != 1 || dismissed[0] != tn {
			t.Fatalf("OnToastDismissed got %v", dismissed)
		}
		if _, ok := p.Toast(); ok || p.toastClip.Visible() {
			t.Error("the banner stayed after a flick")
		}
	})
	t.Run("replace", func(t *testing.T) {
		uitest.App(t, true)
		p := NewPhone(nil)
		uitest.Window(t, p, phoneSize)
		p.ShowToast(tn, nil)
		next := payload.Toast{Text1: "Bob", Text2: "On my way"}
		p.ShowToast(next, nil)
		if got, _ := p.Toast(); got != next || p.banner.Position().Y != 0 {
			t.Errorf("second toast: %v at %v", got, p.banner.Position())
		}
	})
}

// TestPhoneScalesWithTheWindow resizes a window around a phone showing the
// start screen and a toast: the body keeps its shape and stays centred, the
// status bar, the toast and the screens grow with it, the tiles too (once:
// the start screen scales them to its width), and all shrink back.
func TestPhoneScalesWithTheWindow(t *testing.T) {
	uitest.App(t, true)
	home := start.NewStartScreen()
	for _, k := range uitest.SampleTiles() {
		home.Pin(k.Key, k.Tile)
	}
	p := NewPhone(home)
	w := uitest.Window(t, p, phoneSize)
	p.ShowToast(payload.Toast{Text1: "Alice", Text2: "Lunch at noon?"}, nil)
	news := home.Tile("news")
	newsAt, newsSize := news.Position(), news.Size() // at scale 1

	tests := []struct {
		name   string
		window fyne.Size
		scale  float32
	}{
		{"scale 1", phoneSize, 1},
		{"twice as large", fyne.NewSize(2*PhoneWidth, 2*PhoneHeight), 2},
		{"wide window: height decides", fyne.NewSize(3000, 1.5*PhoneHeight), 1.5},
		{"tall window: width decides", fyne.NewSize(1.25*PhoneWidth, 3000), 1.25},
		{"smaller", fyne.NewSize(0.75*PhoneWidth, 0.75*PhoneHeight), 0.75},
		{"the smallest", fyne.NewSize(controls.MinScale*PhoneWidth, controls.MinScale*PhoneHeight), controls.MinScale},
		{"smaller than the smallest", fyne.NewSize(100, 100), controls.MinScale},
		{"back to scale 1", phoneSize, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w.Resize(tt.window)
			if p.Scale() != tt.scale {
				t.Fatalf("scale %v, want %v", p.Scale(), tt.scale)
			}
			sw, sh, bar := controls.ScreenWidth*tt.scale, controls.ScreenHeight*tt.scale, controls.StatusBarHeight*tt.scale
			if got := p.screens.Size(); got != fyne.NewSize(sw, sh-bar) {
				t.Errorf("screens get %v, want %vx%v", got, sw, sh-bar)
			}
			if got := p.status.Size(); got != fyne.NewSize(sw, bar) {
				t.Errorf("status bar %v, want %vx%v", got, sw, bar)
			}
			want := fyne.NewPos(max(0, (tt.window.Width-PhoneWidth*tt.scale)/2)+bezelSide*tt.scale,
				max(0, (tt.window.Height-PhoneHeight*tt.scale)/2)+bezelTop*tt.scale)
			if got := p.status.Position(); got != want {
				t.Errorf("screen at %v, want centred at %v", got, want)
			}
			if got, want := p.banner.Size(), fyne.NewSize(sw, toastview.BannerHeight*tt.scale); got != want {
				t.Errorf("toast banner %v, want %v", got, want)
			}
			if home.Scale() != tt.scale {
				t.Errorf("start screen scale %v, want %v", home.Scale(), tt.scale)
			}
			if got, want := news.Size(), fyne.NewSize(newsSize.Width*tt.scale, newsSize.Height*tt.scale); got != want {
				t.Errorf("medium tile %v, want %v", got, want)
			}
			if got, want := news.Position(), fyne.NewPos(newsAt.X*tt.scale, newsAt.Y*tt.scale); got != want {
				t.Errorf("news tile at %v, want %v", got, want)
			}
			// The keys stay under the screen, centred on its thirds.
			k := p.keys[1]
			if got, want := k.Position().X+k.Size().Width/2, p.status.Position().X+sw/2; got != want {
				t.Errorf("start key centred at %v, want %v", got, want)
			}
		})
	}
}

// TestPhoneProfiles: a 16:9 screen (720p, 1080p) makes the screen 853⅓
// units high and the body taller; the phone keeps fitting its room.
func TestPhoneProfiles(t *testing.T) {
	uitest.App(t, true)
	p := NewPhone(nil)
	w := uitest.Window(t, p, phoneSize)
	for _, tt := range []struct {
		profile tile.Profile
		screenH float32
	}{
		{tile.WVGA, 800},
		{tile.HD720, 1280 / 1.5},
		{tile.HD1080, 1920 / 2.25},
		{tile.WXGA, 800},
	} {
		p.SetProfile(tt.profile)
		w.Resize(p.BodySize())
		if got := p.ScreenSize(); got != fyne.NewSize(480, tt.screenH) || p.Scale() != 1 {
			t.Errorf("%v: screen %v at scale %v, want 480×%v at 1", tt.profile, got, p.Scale(), tt.screenH)
		}
		if got, want := p.BodySize().Height, tt.screenH+bezelTop+bezelBottom; got != want {
			t.Errorf("%v: body %v high, want %v", tt.profile, got, want)
		}
		if got := p.ScreenArea().Size().Height; got != tt.screenH-controls.StatusBarHeight {
			t.Errorf("%v: screens get %v units under the status bar", tt.profile, got)
		}
	}
}

// TestPhoneLock: the power button calls OnPower; while the lock screen is
// up the keys do nothing and the screen under it waits.
func TestPhoneLock(t *testing.T) {
	uitest.App(t, true)
	home, page := layout.NewSpacer(), layout.NewSpacer()
	p := NewPhone(home)
	w := uitest.Window(t, p, phoneSize)
	powered := 0
	p.OnPower = func() { powered++ }
	test.TapCanvas(w.Canvas(), uitest.AbsPos(p.power, bezelSide/2, powerLength/2))
	if powered != 1 {
		t.Fatalf("power button pressed: OnPower called %d times", powered)
	}
	p.Push(page)
	lock := layout.NewSpacer()
	searched := 0
	p.OnSearch = func() { searched++ }
	p.ShowLock(lock)
	if !p.Locked() || !p.locks.Visible() {
		t.Fatal("ShowLock did not lock")
	}
	for _, k := range p.keys {
		test.Tap(k)
	}
	if p.Current() != page || searched != 0 || !p.Locked() {
		t.Errorf("keys while locked: screen %v, search %d, locked %v", p.Current(), searched, p.Locked())
	}
	p.HideLock()
	if p.Locked() || p.locks.Visible() {
		t.Error("HideLock did not unlock")
	}
	if !p.Back() || p.Current() != home {
		t.Error("back after unlocking did not go back")
	}
}

// TestScreenOfTheCanvasColourIsNotDrawn: the canvas is cleared to the app
// theme's background before anything is drawn, so a phone whose screen
// has that colour does not draw it again (it covers only the seams where
// the body reaches under the screen); a phone in another theme draws its
// screen.
func TestScreenOfTheCanvasColourIsNotDrawn(t *testing.T) {
	uitest.App(t, true) // the app theme: dark, a black background
	for _, tc := range []struct {
		name       string
		dark       bool
		drawScreen bool
	}{{"same theme as the app", true, false}, {"a light phone on a dark app", false, true}} {
		p := NewPhone(layout.NewSpacer())
		w := uitest.Window(t, container.NewThemeOverride(p, uitest.Theme(tc.dark, "cobalt")), phoneSize)
		r := test.WidgetRenderer(p).(*phoneRenderer)
		if r.screen.Visible() != tc.drawScreen {
			t.Errorf("%s: screen drawn %v, want %v", tc.name, r.screen.Visible(), tc.drawScreen)
		}
		for _, s := range r.seam {
			if s.Visible() == tc.drawScreen || s.FillColor != r.screen.FillColor {
				t.Errorf("%s: a seam drawn %v in %v, want drawn %v in the screen's %v", tc.name, s.Visible(), s.FillColor, !tc.drawScreen, r.screen.FillColor)
			}
		}
		// The screen's middle shows its colour either way.
		img := uitest.Capture(w)
		c := img.At(int(PhoneWidth/2), int(PhoneHeight/2))
		r1, g1, b1, _ := c.RGBA()
		r2, g2, b2, _ := r.screen.FillColor.RGBA()
		if r1 != r2 || g1 != g2 || b1 != b2 {
			t.Errorf("%s: the middle of the screen is %v, want %v", tc.name, c, r.screen.FillColor)
		}
	}
}
