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
	mailBlue := color.NRGBA{R: 0x00, G: 0x72, B: 0xC6, A: 0xFF}
	check := func(when string, calendar color.NRGBA) {
		t.Helper()
		sh.Update(func() {
			img := ses.Window.Canvas().Capture()
			if got := colourAt(img, sh.start.Tile("com.openmpns.mail"), 5, 40); got != mailBlue {
				t.Errorf("%s: the mail tile is drawn %v, want its app's accent %v", when, got, mailBlue)
			}
			if got := colourAt(img, sh.start.Tile("com.openmpns.calendar"), 5, 40); got != calendar {
				t.Errorf("%s: the calendar tile is drawn %v, want the user's accent %v", when, got, calendar)
			}
		})
	}
	check("first show", accent.Default)
	sh.Phone().SetLook(false, "lime")
	check("after choosing lime", accent.Lime)
}

// TestTilesKeepTheirPhase flips the news tile to its back and moves the
// photos tile to its second image, then changes a setting and updates
// another tile: neither tile snaps back to its front or first image.
func TestTilesKeepTheirPhase(t *testing.T) {
	ses := startQuiet(t)
	sh := ses.Shell
	const news, photos, mail = "com.openmpns.news", "com.openmpns.photos", "com.openmpns.mail"
	uri := func(app string) string {
		var u string
		onUI(t, sh, app+"'s Channel URI", func() bool {
			pg, _ := sh.Phone().Page(app)
			u = pg.URI
			return u != "" && pg.TileBound
		})
		return u
	}
	send(t)(sender.NewTile(uri(news), &payload.Tile{Template: payload.TemplateFlip,
		Fields: map[string]string{payload.BackTitle: "Back", payload.BackContent: "story"}}, sender.Immediate))
	onUI(t, sh, "the news tile with a back", func() bool { return sh.start.Tile(news).HasBack() })
	sh.Update(func() {
		sh.start.Tile(news).SetFace(true)
		sh.start.Tile(photos).NextImage()
	})
	kept := func(when string) {
		t.Helper()
		sh.Update(func() {
			if !sh.start.Tile(news).Back() {
				t.Errorf("%s: the news tile turned to its front", when)
			}
			if got := sh.start.Tile(photos).CycleIndex(); got != 1 {
				t.Errorf("%s: the photos tile shows image %d, want 1", when, got)
			}
		})
	}
	sh.Phone().SetLook(true, "teal")
	kept("after a settings change")
	send(t)(sender.NewTile(uri(mail), &payload.Tile{Template: payload.TemplateIconic,
		Fields: map[string]string{payload.Count: "3"}}, sender.Immediate))
	onUI(t, sh, "the mail count", func() bool { return sh.start.Tile(mail).State().Count() == 3 })
	kept("after another tile's update")
	if err := sh.Phone().SetTileSize(mail, tile.Small); err != nil {
		t.Fatal(err)
	}
	onUI(t, sh, "the mail tile small", func() bool { return sh.start.Tile(mail).TileSize() == tile.Small })
	kept("after another tile's resize")
}

// TestRemoteImageReachesTheTile sends the photos tile a cycle image from
// an allowed host (127.0.0.1): the phone fetches it, and the tile draws it
// once it arrived.
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
	ses := startQuiet(t)
	sh := ses.Shell
	const photos = "com.openmpns.photos"
	var uri string
	onUI(t, sh, "the photos Channel URI", func() bool {
		pg, _ := sh.Phone().Page(photos)
		uri = pg.URI
		return uri != "" && pg.TileBound
	})
	u := &payload.Tile{Template: payload.TemplateCycle, Fields: map[string]string{payload.CycleImage(1): srv.URL + "/red.png"}}
	for n := 2; n <= payload.MaxCycleImages; n++ {
		u.Cleared = append(u.Cleared, payload.CycleImage(n))
	}
	send(t)(sender.NewTile(uri, u, sender.Immediate))
	onUI(t, sh, "the remote image on the photos tile", func() bool {
		return colourAt(ses.Window.Canvas().Capture(), sh.start.Tile(photos), 40, 40) == red
	})
}

// TestProfileFromSettings picks 1080p in Settings: the handset gets a
// 16:9 screen and the start screen six columns; back on WVGA with "show
// more tiles", six columns on a 15:9 screen.
func TestProfileFromSettings(t *testing.T) {
	r := startQuiet(t)
	sh := r.Shell
	check := func(name string, more bool, screenH float32, columns int) {
		t.Helper()
		sh.Update(func() { sh.settings.OnProfile(name, more) })
		sh.Update(func() {
			if got := sh.view.ScreenSize().Height / sh.view.Scale(); got-screenH > 0.01 || screenH-got > 0.01 {
				t.Errorf("%s: screen %v units high, want %v", name, got, screenH)
			}
			if got := sh.start.Columns(); got != columns {
				t.Errorf("%s: start screen of %d columns, want %d", name, got, columns)
			}
			if n, m := sh.settings.Profile(); n != name || m != more {
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
	const mail, news = "com.openmpns.mail", "com.openmpns.news"
	if err := sh.Phone().SetLockApps(mail, []string{news, mail}); err != nil {
		t.Fatal(err)
	}
	sh.Update(func() { sh.view.OnPower() })
	sh.Update(func() {
		if !sh.Locked() || len(sh.lock.Detailed()) != 0 || sh.lock.QuickShown() != 0 {
			t.Errorf("locked %v with text %q and %d counts before any update", sh.Locked(), sh.lock.Detailed(), sh.lock.QuickShown())
		}
	})
	uri := func(app string) string {
		var u string
		onUI(t, sh, app+"'s Channel URI", func() bool {
			pg, _ := sh.Phone().Page(app)
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
		d := sh.lock.Detailed()
		return len(d) == 2 && d[0] == "Alice" && sh.lock.QuickShown() == 2
	})
	sh.Update(func() { test.Tap(sh.lock) })
	sh.Update(func() {
		if sh.Locked() {
			t.Error("a tap on the lock screen did not unlock")
		}
	})
}
