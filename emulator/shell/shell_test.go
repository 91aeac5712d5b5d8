package shell

import (
	"context"
	"strings"
	"testing"
	"time"

	"fyne.io/fyne/v2"

	"github.com/openmpns/openmpns/emulator/ui/apppage"
	"github.com/openmpns/openmpns/emulator/ui/handset"
	"github.com/openmpns/openmpns/emulator/ui/inspector"
	"github.com/openmpns/openmpns/shared/payload"
	"github.com/openmpns/openmpns/shared/sender"
)

// onUI evaluates f on the UI goroutine until it holds or the wait runs out.
// The phone applies changes through fyne.Do, with no event a test can wait
// on, so this polls briefly.
func onUI(t testing.TB, sh *Shell, what string, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		var ok bool
		fyne.DoAndWait(func() { sh.Update(func() { ok = f() }) })
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("UI never showed %s", what)
		}
		tick := time.NewTimer(2 * time.Millisecond)
		<-tick.C
	}
}

// send returns a function that sends what a sender.New* call built.
func send(t testing.TB) func(sender.Request, error) *sender.Response {
	return func(req sender.Request, err error) *sender.Response {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		resp, err := (&sender.Client{}).Send(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
}

// TestWholePath runs the emulator as a user would, on fyne's test driver:
// embedded server, the built-in apps, a tile update over HTTP that changes
// the start screen, the opt-in prompt, a toast banner, the app page's
// Channel URI copied to the clipboard, a composed notification.
func TestWholePath(t *testing.T) {
	ses := newRig(t, nil)
	sh := ses.Shell
	d := ses.Dev
	// The window opens with the phone at scale 1. A larger window goes to
	// the phone, which grows keeping its shape (here as tall as the window
	// allows); the inspector keeps its width.
	sh.Update(func() {
		if got := d.view.Scale(); got != 1 {
			t.Errorf("phone scale %v in the window as it opens, want 1", got)
		}
		inspW := sh.inspector.MinSize().Width
		ses.Window.Resize(fyne.NewSize(inspW+3*handset.PhoneWidth, 2*handset.PhoneHeight))
		if got := d.view.Scale(); got != 2 {
			t.Errorf("phone scale %v in a window twice as tall, want 2", got)
		}
		if got := sh.inspector.Size().Width; got != inspW {
			t.Errorf("inspector %v wide, want %v", got, inspW)
		}
	})

	// Photos needs no prompt: its channel opens by itself.
	var photos string
	onUI(t, sh, "the photos Channel URI", func() bool {
		pg, _ := d.Phone().Page("com.openmpns.photos")
		photos = pg.URI
		return photos != "" && strings.HasPrefix(pg.State, "open:")
	})
	if resp := send(t)(sender.NewTile(photos, &payload.Tile{Template: payload.TemplateCycle,
		Fields: map[string]string{payload.Title: "Holiday", payload.Count: "4"}}, sender.Immediate)); !resp.Delivered() {
		t.Fatalf("tile: %v", resp)
	}
	onUI(t, sh, "the photos tile updated on the start screen", func() bool {
		tl := d.start.Tile("com.openmpns.photos")
		return tl != nil && tl.State().Get(payload.Title) == "Holiday" && tl.State().Count() == 4
	})

	// Tapping News opens its page and the opt-in prompt; allow binds toasts.
	sh.Update(func() { d.start.OnTileTapped("com.openmpns.news") })
	onUI(t, sh, "the opt-in prompt", func() bool { return d.view.Dialog() == d.optIn })
	sh.Update(d.optIn.Allow)
	var news string
	onUI(t, sh, "news bound to toast", func() bool {
		pg, _ := d.Phone().Page("com.openmpns.news")
		news = pg.URI
		return pg.Toast && strings.HasPrefix(pg.State, "open:")
	})
	onUI(t, sh, "the URI on the app page", func() bool {
		_, isPage := d.view.Current().(*apppage.AppPage)
		return isPage && d.pages["com.openmpns.news"].ChannelURI() == news
	})
	sh.Update(func() { d.pages["com.openmpns.news"].Copy() })
	if got := sh.clip.Content(); got != news {
		t.Fatalf("clipboard %q, want the Channel URI %q", got, news)
	}

	// Back on the start screen, a toast slides in; a flick dismisses it.
	sh.Update(func() { d.view.Home() })
	send(t)(sender.NewToast(news, &payload.Toast{Text1: "Breaking", Text2: "News"}, sender.Immediate))
	onUI(t, sh, "the toast banner", func() bool { tt, ok := d.view.Toast(); return ok && tt.Text1 == "Breaking" })
	sh.Update(func() { d.view.OnToastDismissed(payload.Toast{}) })
	onUI(t, sh, "the toast gone", func() bool { _, _, ok := d.Phone().ShownToast(); return !ok })

	// The inspector lists what arrived, and its composer sends through HTTP.
	onUI(t, sh, "two notifications in the inspector", func() bool { return len(sh.inspector.Notifications()) >= 2 })
	sh.Update(func() {
		sh.compose(inspector.ComposeRequest{App: "com.openmpns.news", Kind: payload.KindRaw, Raw: []byte("hello")})
	})
	onUI(t, sh, "the composer's result", func() bool {
		log := d.Phone().Inspector()
		return len(log) >= 3 && log[len(log)-1].Kind == "raw"
	})

	// The composer's secondary tile Id and toast Sound reach the server and
	// come back to the phone: a new secondary tile, a silent toast.
	const albumID = "/Album.xaml?id=9"
	const album = "com.openmpns.photos#" + albumID
	sh.Update(func() {
		sh.compose(inspector.ComposeRequest{App: "com.openmpns.photos", Kind: payload.KindTile,
			Tile: payload.Tile{ID: albumID, Template: payload.TemplateCycle, Fields: map[string]string{payload.Title: "Album"}}})
	})
	onUI(t, sh, "the composed secondary tile on the start screen", func() bool {
		tl := d.start.Tile(album)
		return tl != nil && tl.State().Get(payload.Title) == "Album"
	})
	sh.Update(func() {
		sh.compose(inspector.ComposeRequest{App: "com.openmpns.news", Kind: payload.KindToast,
			Toast: payload.Toast{Text1: "Hush", Silent: true}})
	})
	onUI(t, sh, "the silent toast in the inspector", func() bool {
		for _, e := range d.Phone().Inspector() {
			if e.Kind == "toast" && strings.Contains(string(e.Payload), "Hush") {
				got, err := payload.ParseToast(e.Payload)
				return err == nil && got.Silent
			}
		}
		return false
	})

	// Unpinning: the secondary tile goes for good; the mail app's tile comes
	// back from the app list.
	const mail = "com.openmpns.mail"
	sh.Update(func() {
		d.start.Edit(album)
		d.start.OnTileUnpinned(album)
	})
	onUI(t, sh, "the secondary tile unpinned", func() bool {
		_, ok := d.Phone().TileByKey(album)
		return !ok && d.start.Tile(album) == nil
	})
	sh.Update(func() {
		d.start.Unpin(mail)
		d.start.OnTileUnpinned(mail)
	})
	onUI(t, sh, "mail offered in the app list", func() bool {
		if d.Phone().Pinned(mail) || d.start.Tile(mail) != nil {
			return false
		}
		d.appList.OpenMenu(mail) // opens only for an unpinned app
		return d.appList.Menu() == mail
	})
	sh.Update(func() {
		d.view.Push(d.appList)
		d.appList.OnPinTapped(mail)
	})
	onUI(t, sh, "mail pinned again, last, on the start screen", func() bool {
		tiles := d.start.Tiles()
		return d.Phone().Pinned(mail) && len(tiles) > 0 && tiles[len(tiles)-1].Key == mail && d.view.Current() == d.start
	})
}
