package ui

import (
	"testing"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/layout"
	"fyne.io/fyne/v2/test"

	"github.com/openmpns/openmpns/emulator/toast"
	"github.com/openmpns/openmpns/shared/payload"
)

// absPos returns where o is on its canvas, plus (dx, dy).
func absPos(o fyne.CanvasObject, dx, dy float32) fyne.Position {
	return fyne.CurrentApp().Driver().AbsolutePositionForObject(o).Add(fyne.NewPos(dx, dy))
}

// backScreen is a screen that keeps the back key while holding is set.
type backScreen struct {
	*fyne.Container
	holding bool
}

func (b *backScreen) HandleBack() bool { return b.holding }

func TestPhoneNavigation(t *testing.T) {
	newTestApp(t, true)
	home, a, b := layout.NewSpacer(), layout.NewSpacer(), layout.NewSpacer()
	p := NewPhone(home)
	var shown []fyne.CanvasObject
	p.OnNavigate = func(s fyne.CanvasObject) { shown = append(shown, s) }
	newTestWindow(t, p, phoneSize)

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
	newTestApp(t, true)
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
	newTestApp(t, true)
	p := NewPhone(nil)
	starts, searches := 0, 0
	p.OnStart = func() { starts++ }
	p.OnSearch = func() { searches++ }
	w := newTestWindow(t, p, phoneSize)
	p.Push(layout.NewSpacer())
	p.Push(layout.NewSpacer())

	test.TapCanvas(w.Canvas(), absPos(p.keys[0], 60, 36)) // back
	if p.Depth() != 2 {
		t.Errorf("back key: depth %d, want 2", p.Depth())
	}
	test.TapCanvas(w.Canvas(), absPos(p.keys[1], 60, 36)) // start
	if p.Depth() != 1 || starts != 1 {
		t.Errorf("start key: depth %d, OnStart called %d times", p.Depth(), starts)
	}
	test.TapCanvas(w.Canvas(), absPos(p.keys[2], 60, 36)) // search
	if searches != 1 {
		t.Errorf("search key: OnSearch called %d times", searches)
	}
}

func TestPhoneStatusBar(t *testing.T) {
	newTestApp(t, true)
	p := NewPhone(nil)
	newTestWindow(t, p, phoneSize)
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
	newTestApp(t, true)
	p := NewPhone(nil)
	newTestWindow(t, p, phoneSize)
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
		newTestApp(t, true)
		p := NewPhone(nil)
		newTestWindow(t, p, phoneSize)
		p.ShowToast(tn, nil)
		// The test driver runs animations to their end at once.
		if got, ok := p.Toast(); !ok || got != tn {
			t.Fatalf("Toast() = %v, %v", got, ok)
		}
		if !p.toastClip.Visible() || p.banner.Position() != fyne.NewPos(0, 0) {
			t.Errorf("banner at %v, visible %v; want at the top", p.banner.Position(), p.toastClip.Visible())
		}
		p.HideToast()
		if _, ok := p.Toast(); ok || p.toastClip.Visible() || p.banner.Position().Y != -toast.BannerHeight {
			t.Errorf("after HideToast: visible %v at %v", p.toastClip.Visible(), p.banner.Position())
		}
	})
	t.Run("tap", func(t *testing.T) {
		newTestApp(t, true)
		p := NewPhone(nil)
		w := newTestWindow(t, p, phoneSize)
		var tapped []payload.Toast
		p.OnToastTapped = func(t payload.Toast) { tapped = append(tapped, t) }
		p.ShowToast(tn, nil)
		test.TapCanvas(w.Canvas(), absPos(p.banner, 200, 30))
		if len(tapped) != 1 || tapped[0] != tn {
			t.Fatalf("OnToastTapped got %v", tapped)
		}
		if _, ok := p.Toast(); ok || p.toastClip.Visible() {
			t.Error("the banner stayed after a tap")
		}
	})
	t.Run("flick", func(t *testing.T) {
		newTestApp(t, true)
		p := NewPhone(nil)
		w := newTestWindow(t, p, phoneSize)
		var dismissed []payload.Toast
		p.OnToastDismissed = func(t payload.Toast) { dismissed = append(dismissed, t) }
		p.ShowToast(tn, nil)
		test.Drag(w.Canvas(), absPos(p.banner, 100, 30), 30, 0) // too short: it comes back
		if len(dismissed) != 0 {
			t.Fatal("a short drag dismissed the toast")
		}
		if _, ok := p.Toast(); !ok {
			t.Fatal("a short drag removed the toast")
		}
		test.Drag(w.Canvas(), absPos(p.banner, 100, 30), toast.DismissDistance+20, 0)
		if len(dismissed) != 1 || dismissed[0] != tn {
			t.Fatalf("OnToastDismissed got %v", dismissed)
		}
		if _, ok := p.Toast(); ok || p.toastClip.Visible() {
			t.Error("the banner stayed after a flick")
		}
	})
	t.Run("replace", func(t *testing.T) {
		newTestApp(t, true)
		p := NewPhone(nil)
		newTestWindow(t, p, phoneSize)
		p.ShowToast(tn, nil)
		next := payload.Toast{Text1: "Bob", Text2: "On my way"}
		p.ShowToast(next, nil)
		if got, _ := p.Toast(); got != next || p.banner.Position().Y != 0 {
			t.Errorf("second toast: %v at %v", got, p.banner.Position())
		}
	})
}

func TestPhoneKeepsItsSize(t *testing.T) {
	newTestApp(t, true)
	p := NewPhone(nil)
	newTestWindow(t, p, fyne.NewSize(1000, 1200))
	if got := p.screens.Size(); got != fyne.NewSize(ScreenWidth, ContentHeight) {
		t.Errorf("screen content is %v in a big window, want %vx%v", got, ScreenWidth, ContentHeight)
	}
	pos := p.status.Position()
	if want := fyne.NewPos((1000-PhoneWidth)/2+bezelSide, (1200-PhoneHeight)/2+bezelTop); pos != want {
		t.Errorf("screen at %v, want centred at %v", pos, want)
	}
}
