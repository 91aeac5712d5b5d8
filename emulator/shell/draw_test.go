package shell

import (
	"image"
	"image/color"
	"image/png"
	"net/http"
	"net/http/httptest"
	"testing"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/test"

	"github.com/openmpns/openmpns/emulator/accent"
	"github.com/openmpns/openmpns/emulator/tile"
	"github.com/openmpns/openmpns/emulator/ui/inspector"
	"github.com/openmpns/openmpns/shared/payload"
	"github.com/openmpns/openmpns/shared/sender"
)

// startQuiet starts a rig with every opt-in prompt answered "allow".
func startQuiet(t *testing.T) *rig {
	t.Helper()
	allow := true
	return newRig(t, &allow)
}

// colourAt is the colour drawn at (dx, dy) inside o in img, a capture of
// o's window (the test driver draws at scale 1).
func colourAt(img image.Image, o fyne.CanvasObject, dx, dy float32) color.NRGBA {
	p := fyne.CurrentApp().Driver().AbsolutePositionForObject(o).Add(fyne.NewPos(dx, dy))
	return color.NRGBAModel.Convert(img.At(int(p.X), int(p.Y))).(color.NRGBA)
}

// TestAppAccentsOnFirstShow draws the start screen as it first appears: an
// app with an accent of its own (Mail, #0072C6) has its tile in that
// colour, an app without one (Calendar) in the user's, and a change of the
// user's accent moves only the latter.
func TestAppAccentsOnFirstShow(t *testing.T) {
	ses := startQuiet(t)
	sh := ses.Shell
	d := ses.Dev
	mailBlue := color.NRGBA{R: 0x00, G: 0x72, B: 0xC6, A: 0xFF}
	check := func(when string, calendar color.NRGBA) {
		t.Helper()
		sh.Update(func() {
			img := ses.Window.Canvas().Capture()
			if got := colourAt(img, d.start.Tile("com.openmpns.mail"), 5, 40); got != mailBlue {
				t.Errorf("%s: the mail tile is drawn %v, want its app's accent %v", when, got, mailBlue)
			}
			if got := colourAt(img, d.start.Tile("com.openmpns.calendar"), 5, 40); got != calendar {
				t.Errorf("%s: the calendar tile is drawn %v, want the user's accent %v", when, got, calendar)
			}
		})
	}
	check("first show", accent.Default)
	d.Phone().SetLook(false, "lime")
	check("after choosing lime", accent.Lime)
}

// TestTilesKeepTheirPhase flips the news tile to its back and moves the
// photos tile to its second image, then changes a setting and updates
// another tile: neither tile snaps back to its front or first image.
func TestTilesKeepTheirPhase(t *testing.T) {
	ses := startQuiet(t)
	sh := ses.Shell
	d := ses.Dev
	const news, photos, mail = "com.openmpns.news", "com.openmpns.photos", "com.openmpns.mail"
	uri := func(app string) string {
		var u string
		onUI(t, sh, app+"'s Channel URI", func() bool {
			pg, _ := d.Phone().Page(app)
			u = pg.URI
			return u != "" && pg.TileBound
		})
		return u
	}
	send(t)(sender.NewTile(uri(news), &payload.Tile{Template: payload.TemplateFlip,
		Fields: map[string]string{payload.BackTitle: "Back", payload.BackContent: "story"}}, sender.Immediate))
	onUI(t, sh, "the news tile with a back", func() bool { return d.start.Tile(news).HasBack() })
	sh.Update(func() {
		d.start.Tile(news).SetFace(true)
		d.start.Tile(photos).NextImage()
	})
	kept := func(when string) {
		t.Helper()
		sh.Update(func() {
			if !d.start.Tile(news).Back() {
				t.Errorf("%s: the news tile turned to its front", when)
			}
			if got := d.start.Tile(photos).CycleIndex(); got != 1 {
				t.Errorf("%s: the photos tile shows image %d, want 1", when, got)
			}
		})
	}
	d.Phone().SetLook(true, "teal")
	kept("after a settings change")
	send(t)(sender.NewTile(uri(mail), &payload.Tile{Template: payload.TemplateIconic,
		Fields: map[string]string{payload.Count: "3"}}, sender.Immediate))
	onUI(t, sh, "the mail count", func() bool { return d.start.Tile(mail).State().Count() == 3 })
	kept("after another tile's update")
	if err := d.Phone().SetTileSize(mail, tile.Small); err != nil {
		t.Fatal(err)
	}
	onUI(t, sh, "the mail tile small", func() bool { return d.start.Tile(mail).TileSize() == tile.Small })
	kept("after another tile's resize")
}

// TestRemoteImageReachesTheTile sends the photos tile a cycle image from
// its backend (an allowed host and port on 127.0.0.1, as in the demo): the
// phone fetches it, and the tile draws it once it arrived.
func TestRemoteImageReachesTheTile(t *testing.T) {
	red := color.NRGBA{R: 0xFF, A: 0xFF}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		m := image.NewNRGBA(image.Rect(0, 0, 64, 32))
		for i := 0; i < len(m.Pix); i += 4 {
			copy(m.Pix[i:], []byte{red.R, red.G, red.B, red.A})
		}
		w.Header().Set("Content-Type", "image/png")
		png.Encode(w, m)
	}))
	t.Cleanup(srv.Close)
	allow := true
	ses := newRigWithBackend(t, &allow, srv.URL)
	sh := ses.Shell
	d := ses.Dev
	const photos = "com.openmpns.photos"
	var uri string
	onUI(t, sh, "the photos Channel URI", func() bool {
		pg, _ := d.Phone().Page(photos)
		uri = pg.URI
		return uri != "" && pg.TileBound
	})
	u := &payload.Tile{Template: payload.TemplateCycle, Fields: map[string]string{payload.CycleImage(1): srv.URL + "/red.png"}}
	for n := 2; n <= payload.MaxCycleImages; n++ {
		u.Cleared = append(u.Cleared, payload.CycleImage(n))
	}
	send(t)(sender.NewTile(uri, u, sender.Immediate))
	onUI(t, sh, "the remote image on the photos tile", func() bool {
		return colourAt(ses.Window.Canvas().Capture(), d.start.Tile(photos), 40, 40) == red
	})
}

// TestProfileFromSettings picks 1080p in Settings: the handset gets a
// 16:9 screen and the start screen six columns; back on WVGA with "show
// more tiles", six columns on a 15:9 screen.
func TestProfileFromSettings(t *testing.T) {
	r := startQuiet(t)
	sh := r.Shell
	d := r.Dev
	check := func(name string, more bool, screenH float32, columns int) {
		t.Helper()
		sh.Update(func() { d.settings.OnProfile(name, more) })
		sh.Update(func() {
			if got := d.view.ScreenSize().Height / d.view.Scale(); got-screenH > 0.01 || screenH-got > 0.01 {
				t.Errorf("%s: screen %v units high, want %v", name, got, screenH)
			}
			if got := d.start.Columns(); got != columns {
				t.Errorf("%s: start screen of %d columns, want %d", name, got, columns)
			}
			if n, m := d.settings.Profile(); n != name || m != more {
				t.Errorf("%s: settings show %s, %v", name, n, m)
			}
		})
	}
	check("1080p", false, 1920/2.25, 6)
	check("wvga", true, 800, 6)
	check("wxga", false, 800, 4)
}

// TestLockScreenFollowsTiles locks the phone with the power button: the
// lock screen shows what the chosen apps' primary tiles show, and follows
// their tile updates; a tap unlocks.
func TestLockScreenFollowsTiles(t *testing.T) {
	r := startQuiet(t)
	sh := r.Shell
	d := r.Dev
	const mail, news = "com.openmpns.mail", "com.openmpns.news"
	if err := d.Phone().SetLockApps(mail, []string{news, mail}); err != nil {
		t.Fatal(err)
	}
	sh.Update(func() { d.view.OnPower() })
	sh.Update(func() {
		if !d.Locked() || len(d.lock.Detailed()) != 0 || d.lock.QuickShown() != 0 {
			t.Errorf("locked %v with text %q and %d counts before any update", d.Locked(), d.lock.Detailed(), d.lock.QuickShown())
		}
	})
	uri := func(app string) string {
		var u string
		onUI(t, sh, app+"'s Channel URI", func() bool {
			pg, _ := d.Phone().Page(app)
			u = pg.URI
			return u != "" && pg.TileBound
		})
		return u
	}
	send(t)(sender.NewTile(uri(mail), &payload.Tile{Template: payload.TemplateIconic, Fields: map[string]string{
		payload.Count: "4", payload.WideContent1: "Alice", payload.WideContent2: "Lunch at noon?"}}, sender.Immediate))
	send(t)(sender.NewTile(uri(news), &payload.Tile{Template: payload.TemplateFlip, Fields: map[string]string{
		payload.Count: "9", payload.WideBackContent: "not the detailed app"}}, sender.Immediate))
	onUI(t, sh, "the lock screen with mail's text and two counts", func() bool {
		text := d.lock.Detailed()
		return len(text) == 2 && text[0] == "Alice" && d.lock.QuickShown() == 2
	})
	sh.Update(func() { test.Tap(d.lock) })
	sh.Update(func() {
		if d.Locked() {
			t.Error("a tap on the lock screen did not unlock")
		}
	})
}

// TestTwoPhonesInOneWindow adds a second phone: the composer offers an app
// on each phone and on every phone, "every phone" reaches both, and the
// inspector says which phone received what.
func TestTwoPhonesInOneWindow(t *testing.T) {
	r := startQuiet(t)
	sh := r.Shell
	d1 := r.Dev
	var d2 *Device
	sh.OnAddPhone = func() { d2 = r.addPhone() }
	test.Tap(sh.addPhone) // "add phone", beside the inspector
	if d2 == nil || len(sh.Devices()) != 2 {
		t.Fatal("add phone did not add one")
	}
	for _, d := range []*Device{d1, d2} {
		onUI(t, sh, d.Name()+"'s news channel", func() bool {
			pg, _ := d.Phone().Page("com.openmpns.news")
			return pg.URI != "" && pg.TileBound
		})
	}
	var every string
	sh.Update(func() {
		for _, a := range sh.inspector.Apps() {
			if a.Name == "News on every phone" {
				every = a.ID
			}
		}
	})
	if every == "" {
		t.Fatal("the composer does not offer News on every phone")
	}
	sh.Update(func() {
		sh.compose(inspector.ComposeRequest{App: every, Kind: payload.KindTile,
			Tile: payload.Tile{Template: payload.TemplateFlip, Fields: map[string]string{payload.Title: "Both"}}})
	})
	for _, d := range []*Device{d1, d2} {
		onUI(t, sh, "the tile on "+d.Name(), func() bool { return d.start.Tile("com.openmpns.news").State().Get(payload.Title) == "Both" })
	}
	onUI(t, sh, "the inspector naming both phones", func() bool {
		seen := map[string]bool{}
		for _, n := range sh.inspector.Notifications() {
			seen[n.App] = true
		}
		return seen["1 · News"] && seen["2 · News"]
	})
}
