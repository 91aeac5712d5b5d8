package phone_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image"
	"image/png"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openmpns/openmpns/emulator/apps"
	"github.com/openmpns/openmpns/emulator/images"
	"github.com/openmpns/openmpns/emulator/internal/golden"
	"github.com/openmpns/openmpns/emulator/phone"
	"github.com/openmpns/openmpns/emulator/render"
	"github.com/openmpns/openmpns/emulator/tile"
	"github.com/openmpns/openmpns/emulator/toast"
	"github.com/openmpns/openmpns/server"
	"github.com/openmpns/openmpns/shared/payload"
	"github.com/openmpns/openmpns/shared/sender"
)

const waitLimit = 20 * time.Second

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// changes collects change reports and lets a test wait for a condition.
type changes struct {
	mu sync.Mutex
	ch chan struct{}
	n  int
}

func newChanges() *changes { return &changes{ch: make(chan struct{})} }

func (c *changes) on(phone.Change) {
	c.mu.Lock()
	c.n++
	close(c.ch)
	c.ch = make(chan struct{})
	c.mu.Unlock()
}

// until waits for cond to hold, re-checking after every change report.
func (c *changes) until(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(waitLimit)
	defer deadline.Stop()
	for {
		c.mu.Lock()
		ch := c.ch
		c.mu.Unlock()
		if cond() {
			return
		}
		select {
		case <-ch:
		case <-deadline.C:
			t.Fatalf("waited %v for %s", waitLimit, what)
		}
	}
}

// poll waits for cond to hold, re-checking after every change report and
// every few milliseconds: for state that lives in the server, which sends
// the phone no event when it changes (it sees a device's connection drop
// some time after the phone dropped it).
func (c *changes) poll(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(waitLimit)
	defer deadline.Stop()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		c.mu.Lock()
		ch := c.ch
		c.mu.Unlock()
		if cond() {
			return
		}
		select {
		case <-ch:
		case <-tick.C:
		case <-deadline.C:
			t.Fatalf("waited %v for %s", waitLimit, what)
		}
	}
}

type rig struct {
	srv      *server.Server
	ph       *phone.Phone
	ch       *changes
	handoffs chan string
	images   *httptest.Server
}

// startServer starts a push server on loopback, closed when the test ends.
var startServer = phone.StartTestServer

// phoneOpener returns a function that opens a phone of apps on srv, its
// state kept in dir from one opening to the next.
func phoneOpener(t *testing.T, srv *server.Server, dir string, apps []phone.App) func() (*phone.Phone, *changes) {
	return func() (*phone.Phone, *changes) {
		t.Helper()
		ch := newChanges()
		ph, err := phone.New(phone.Config{Server: srv.URL(), StateDir: dir, Apps: apps, OnChange: ch.on, Logger: quiet, MinBackoff: 5 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		return ph, ch
	}
}

// channelURI waits for app's channel on ph to open and returns its URI.
func channelURI(t *testing.T, ph *phone.Phone, ch *changes, app string) string {
	t.Helper()
	var uri string
	ch.until(t, app+" channel open", func() bool {
		pg, _ := ph.Page(app)
		uri = pg.URI
		return uri != "" && strings.HasPrefix(pg.State, "open:")
	})
	return uri
}

func newRig(t *testing.T, auto *bool, prefetch func(context.Context, string, []string) error) *rig {
	t.Helper()
	srv := startServer(t)
	r := &rig{srv: srv, ch: newChanges(), handoffs: make(chan string, 16)}
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		r.handoffs <- req.URL.Path + " " + string(b)
		w.WriteHeader(http.StatusCreated)
	}))
	t.Cleanup(backend.Close)
	apps := []phone.App{
		{ID: "com.openmpns.news", Name: "News", Channel: "main", WantsToast: true, Handoff: backend.URL + "/handoff/news",
			HandoffSecret: "news-secret-0123456789",
			Template:      payload.TemplateFlip, TileDefaults: map[string]string{payload.Title: "News"}, TileSize: tile.Medium},
		{ID: "com.openmpns.photos", Name: "Photos", Channel: "main", Domains: []string{"127.0.0.1"},
			Template: payload.TemplateCycle, TileDefaults: map[string]string{payload.Title: "Photos"}, TileSize: tile.Wide},
		{ID: "com.openmpns.music", Name: "Music", TileSize: tile.Small},
	}
	ph, err := phone.New(phone.Config{Server: srv.URL(), StateDir: t.TempDir(), Apps: apps, AutoConsent: auto,
		OnChange: r.ch.on, Logger: quiet, MinBackoff: 5 * time.Millisecond, Prefetch: prefetch})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ph.Close() })
	r.ph = ph
	return r
}

func (r *rig) uri(t *testing.T, app string) string {
	t.Helper()
	return channelURI(t, r.ph, r.ch, app)
}

// send returns a function that sends what a sender.New* call built.
func send(t *testing.T) func(sender.Request, error) *sender.Response {
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

func TestOptInPromptThenTilesToastsAndRaw(t *testing.T) {
	r := newRig(t, nil, nil)
	// Photos wants no toasts: its channel opens at once; News waits for its prompt.
	photos := r.uri(t, "com.openmpns.photos")
	if pg, _ := r.ph.Page("com.openmpns.news"); pg.URI != "" || !strings.Contains(pg.State, "consent") {
		t.Fatalf("news before consent: %+v", pg)
	}
	need, err := r.ph.Launch("com.openmpns.news")
	if err != nil || !need {
		t.Fatalf("first launch of news: needs consent %v, %v", need, err)
	}
	r.ph.Answer("com.openmpns.news", true)
	news := r.uri(t, "com.openmpns.news")
	select {
	case h := <-r.handoffs:
		if !strings.HasPrefix(h, "/handoff/news ") || !strings.Contains(h, news) ||
			!strings.Contains(h, `"secret":"news-secret-0123456789"`) || !strings.Contains(h, `"device_key":"`) {
			t.Fatalf("handoff %s", h)
		}
	case <-time.After(waitLimit):
		t.Fatal("no handoff")
	}
	r.ch.until(t, "handoff result on the page", func() bool {
		pg, _ := r.ph.Page("com.openmpns.news")
		return strings.HasSuffix(pg.Handoff, "→ 201")
	})
	if need, _ := r.ph.Launch("com.openmpns.news"); need {
		t.Fatal("the prompt came back after an answer")
	}
	r.ph.Leave()

	// A flip tile update reaches the start screen and renders.
	resp := send(t)(sender.NewTile(news, &payload.Tile{Template: payload.TemplateFlip, Fields: map[string]string{
		payload.Title: "Breaking", payload.Count: "7", payload.BackContent: "Go 2 ships"}}, sender.Immediate))
	if !resp.Delivered() {
		t.Fatalf("tile: %v", resp)
	}
	r.ch.until(t, "the news tile to update", func() bool {
		tl, _ := r.ph.TileByKey("com.openmpns.news")
		return tl.State.Get(payload.Title) == "Breaking"
	})
	tl, _ := r.ph.TileByKey("com.openmpns.news")
	golden.Assert(t, "news_tile_front.png", render.Tile(tl.State, tl.Size, false, 1))
	golden.Assert(t, "news_tile_back.png", render.Tile(tl.State, tl.Size, true, 1))

	// A secondary tile is created by the update that names it.
	send(t)(sender.NewTile(news, &payload.Tile{ID: "/Story.xaml?id=9", Template: payload.TemplateFlip,
		Fields: map[string]string{payload.Title: "Story 9"}}, sender.Immediate))
	r.ch.until(t, "the secondary tile", func() bool {
		_, ok := r.ph.TileByKey("com.openmpns.news#/Story.xaml?id=9")
		return ok
	})
	if tiles := r.ph.Tiles(); len(tiles) != 4 || tiles[3].Key != "com.openmpns.news#/Story.xaml?id=9" {
		t.Fatalf("tiles: %+v", tiles)
	}

	// A toast is shown by the shell; tapping it opens the app at Param.
	send(t)(sender.NewToast(news, &payload.Toast{Text1: "Hello", Text2: "World", Param: "/Story.xaml?id=9"}, sender.Immediate))
	r.ch.until(t, "the toast banner", func() bool { _, _, ok := r.ph.ShownToast(); return ok })
	app, tt, _ := r.ph.ShownToast()
	if app != "com.openmpns.news" || tt.Text1 != "Hello" {
		t.Fatalf("shown toast %s %+v", app, tt)
	}
	golden.Assert(t, "news_toast.png", render.Toast(tt, 1))
	if app, param, ok := r.ph.TapToast(); !ok || app != "com.openmpns.news" || param != "/Story.xaml?id=9" {
		t.Fatalf("tap: %s %s %v", app, param, ok)
	}
	r.ph.Launch("com.openmpns.news")
	r.ph.OpenedAt("com.openmpns.news", "/Story.xaml?id=9")
	if pg, _ := r.ph.Page("com.openmpns.news"); pg.Param != "/Story.xaml?id=9" || !pg.Foreground {
		t.Fatalf("page after the tapped toast: param %q foreground %v", pg.Param, pg.Foreground)
	}
	r.ph.Leave()

	// With the app in the foreground, toasts and raw go to the app page.
	r.ph.Launch("com.openmpns.news")
	send(t)(sender.NewToast(news, &payload.Toast{Text1: "In app"}, sender.Immediate))
	send(t)(sender.NewRaw(news, []byte("score 3:1"), sender.Immediate), nil)
	r.ch.until(t, "the app page to get the toast and the raw", func() bool {
		pg, _ := r.ph.Page("com.openmpns.news")
		return len(pg.Toasts) == 1 && len(pg.Raws) == 1
	})
	if _, _, ok := r.ph.ShownToast(); ok {
		t.Fatal("a foreground toast reached the shell")
	}
	// Raw for an app that is not running is dropped, and logged.
	r.ph.Leave()
	send(t)(sender.NewRaw(photos, []byte("ignored"), sender.Immediate), nil)
	r.ch.until(t, "the dropped raw in the inspector", func() bool {
		log := r.ph.Inspector()
		return len(log) > 0 && strings.HasPrefix(log[len(log)-1].Note, "dropped")
	})
	var kinds []string
	for _, e := range r.ph.Inspector() {
		kinds = append(kinds, e.Kind)
	}
	if got := strings.Join(kinds, ","); got != "tile,tile,toast,toast,raw,raw" {
		t.Fatalf("inspector kinds %s", got)
	}
}

func TestDeniedToastsAreSuppressedAndSettingsCanAllowThem(t *testing.T) {
	deny := false
	r := newRig(t, &deny, nil)
	news := r.uri(t, "com.openmpns.news")
	toast := func() *sender.Response {
		return send(t)(sender.NewToast(news, &payload.Toast{Text1: "x"}, sender.Immediate))
	}
	if resp := toast(); resp.NotificationStatus != "Suppressed" {
		t.Fatalf("toast after deny: %v", resp)
	}
	if resp := send(t)(sender.NewTile(news, &payload.Tile{Fields: map[string]string{payload.Title: "t"}}, sender.Immediate)); !resp.Delivered() {
		t.Fatalf("tile after deny: %v", resp)
	}
	r.ph.SetNotifications("com.openmpns.news", true)
	// Page.Toast turns true when the device asks for the binding; the state
	// says so once the server has acknowledged it (seen flaky under load).
	r.ch.until(t, "toast to be bound", func() bool {
		pg, _ := r.ph.Page("com.openmpns.news")
		return pg.Toast && pg.State == "open: toast and tile bound"
	})
	if resp := toast(); !resp.Delivered() {
		t.Fatalf("toast after allowing in Settings: %v", resp)
	}
	if s := r.ph.Settings(); !s.Consent["com.openmpns.news"] {
		t.Fatalf("consent not kept: %+v", s.Consent)
	}
}

func TestAirplaneAndBatterySaver(t *testing.T) {
	allow := true
	r := newRig(t, &allow, nil)
	news := r.uri(t, "com.openmpns.news")
	r.ph.SetAirplane(true)
	r.ch.poll(t, "airplane mode to drop the connection", func() bool {
		return send(t)(sender.NewRaw(news, []byte("x"), sender.Immediate), nil).DeviceConnectionStatus == "TempDisconnected"
	})
	r.ph.SetAirplane(false)
	r.ch.until(t, "reconnection", func() bool { s, _, _ := r.ph.Connection(); return s == "connected" })
	if err := r.ph.SetBatterySaver(context.Background(), true); err != nil {
		t.Fatal(err)
	}
	if resp := send(t)(sender.NewToast(news, &payload.Toast{Text1: "x"}, sender.Immediate)); resp.NotificationStatus != "Suppressed" {
		t.Fatalf("toast in battery saver: %v", resp)
	}
}

// TestRemoteImageOutsideAllowedDomainsKeepsDefault sends a cycle tile with
// two remote images from one server, reached once by an allowed name
// (127.0.0.1, in the app's domains) and once by another (localhost): the
// real image loader decides, and the phone keeps the first and refuses the
// second with MessageBadContent.
func TestRemoteImageOutsideAllowedDomainsKeepsDefault(t *testing.T) {
	allow := true
	img := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		w.Header().Set("Content-Type", "image/png")
		w.Write(onePixelPNG)
	}))
	t.Cleanup(img.Close)
	loader := images.NewLoader(images.Config{})
	prefetch := func(ctx context.Context, ref string, domains []string) error {
		_, err := loader.Fetch(ctx, ref, domains, nil)
		return err
	}
	r := newRig(t, &allow, prefetch)
	port := img.URL[strings.LastIndexByte(img.URL, ':'):]
	allowed, refused := "http://127.0.0.1"+port+"/1.png", "http://localhost"+port+"/2.png"
	photos := r.uri(t, "com.openmpns.photos")
	send(t)(sender.NewTile(photos, &payload.Tile{Template: payload.TemplateCycle, Fields: map[string]string{
		payload.CycleImage(1): allowed, payload.CycleImage(2): refused}}, sender.Immediate))
	r.ch.until(t, "the bad image to be refused", func() bool {
		pg, _ := r.ph.Page("com.openmpns.photos")
		return len(pg.Errors) == 1
	})
	pg, _ := r.ph.Page("com.openmpns.photos")
	if !strings.Contains(pg.Errors[0], "MessageBadContent") || !strings.Contains(pg.Errors[0], refused) {
		t.Fatalf("error %q", pg.Errors[0])
	}
	r.ch.until(t, "the allowed image downloaded", func() bool {
		_, ok := loader.Cached(allowed, []string{"127.0.0.1"})
		return ok
	})
	tl, _ := r.ph.TileByKey("com.openmpns.photos")
	if tl.State.Get(payload.CycleImage(2)) != "" || tl.State.Get(payload.CycleImage(1)) == "" {
		t.Fatalf("tile fields after a refused image: %v", tl.State.Fields)
	}
}

func TestResetGivesNewChannelURIs(t *testing.T) {
	allow := true
	r := newRig(t, &allow, nil)
	before := r.uri(t, "com.openmpns.photos")
	if err := r.ph.SetTileSize("com.openmpns.photos", tile.Small); err != nil {
		t.Fatal(err)
	}
	if err := r.ph.Reset(); err != nil {
		t.Fatal(err)
	}
	var after string
	r.ch.until(t, "a new Channel URI", func() bool {
		pg, _ := r.ph.Page("com.openmpns.photos")
		after = pg.URI
		return after != "" && after != before
	})
	if tl, _ := r.ph.TileByKey("com.openmpns.photos"); tl.Size != tile.Wide {
		t.Fatalf("tile size survived the reset: %v", tl.Size)
	}
	// The old URI is dead for senders: the old device is gone... its channel
	// still exists on the server until the device goes Inactive, as on MPNS.
	_ = after
}

func TestFromDefaultManifest(t *testing.T) {
	m, err := apps.Default()
	if err != nil {
		t.Fatal(err)
	}
	got := phone.FromManifest(m, "http://127.0.0.1:8090")
	byID := map[string]phone.App{}
	for _, a := range got {
		byID[a.ID] = a
	}
	news, photos := byID["com.openmpns.news"], byID["com.openmpns.photos"]
	if news.Channel != "main" || !news.WantsToast || news.Handoff != "http://127.0.0.1:8090/handoff/news" || news.Template != payload.TemplateFlip {
		t.Fatalf("news: %+v", news)
	}
	if photos.TileSize != tile.Wide || len(photos.Domains) != 1 || photos.Domains[0] != "127.0.0.1:8090" || photos.WantsToast || photos.HandoffSecret == "" {
		t.Fatalf("photos: %+v", photos)
	}
	for _, a := range got {
		if a.Handoff == "" && a.Channel != "" {
			t.Errorf("%s has a channel but no handoff", a.ID)
		}
	}
}

// TestUnpinAndPinPersist unpins an app's tile and a secondary tile that a
// notification made, pins the app's tile again, and checks that the phone
// remembers all of it across a restart, as it remembers tile sizes.
func TestUnpinAndPinPersist(t *testing.T) {
	srv := startServer(t)
	dir := t.TempDir()
	apps := []phone.App{
		{ID: "photos", Name: "Photos", Channel: "main", Template: payload.TemplateCycle, TileSize: tile.Wide},
		{ID: "music", Name: "Music", TileSize: tile.Small},
		{ID: "mail", Name: "Mail", TileSize: tile.Medium},
	}
	open := phoneOpener(t, srv, dir, apps)
	keys := func(ph *phone.Phone) string {
		var ks []string
		for _, tl := range ph.Tiles() {
			ks = append(ks, tl.Key)
		}
		return strings.Join(ks, " ")
	}

	ph, ch := open()
	uri := channelURI(t, ph, ch, "photos")
	const album = "photos#/Album.xaml?id=7"
	send(t)(sender.NewTile(uri, &payload.Tile{ID: "/Album.xaml?id=7", Template: payload.TemplateCycle,
		Fields: map[string]string{payload.Title: "Album"}}, sender.Immediate))
	ch.until(t, "the secondary tile", func() bool { _, ok := ph.TileByKey(album); return ok })
	if err := ph.SetTileSize(album, tile.Small); err != nil {
		t.Fatal(err)
	}

	if !ph.Unpin("music") || ph.Unpin("music") {
		t.Fatal("Unpin(music) should succeed once")
	}
	if !ph.Unpin(album) {
		t.Fatal("Unpin of the secondary tile failed")
	}
	if got := keys(ph); got != "photos mail" {
		t.Fatalf("tiles after unpinning: %q", got)
	}
	if _, ok := ph.TileByKey("music"); ok || ph.Pinned("music") {
		t.Error("an unpinned tile is still reported")
	}
	if err := ph.Close(); err != nil {
		t.Fatal(err)
	}

	ph, _ = open()
	if got := keys(ph); got != "photos mail" {
		t.Fatalf("tiles after a restart: %q (unpinned tiles came back)", got)
	}
	if _, ok := ph.Settings().Sizes[album]; ok {
		t.Error("the secondary tile's size outlived it")
	}
	if !ph.Pin("music") || ph.Pin("music") || ph.Pin("nosuchapp") {
		t.Fatal("Pin(music) should succeed once, and only for an app")
	}
	if got := keys(ph); got != "photos mail music" {
		t.Fatalf("tiles after pinning music again: %q, want it at the end", got)
	}
	if err := ph.Close(); err != nil {
		t.Fatal(err)
	}

	ph, _ = open()
	defer ph.Close()
	if got := keys(ph); got != "photos mail music" {
		t.Fatalf("tiles after another restart: %q", got)
	}
}

// TestSetTileSizeOnlyToSizesTheTileHas refuses a wide WP7.5 tile (the
// phone offers it only small and medium) and a tile the phone does not
// have; other sizes stick.
func TestSetTileSizeOnlyToSizesTheTileHas(t *testing.T) {
	r := newRig(t, nil, nil)
	tests := []struct {
		key     string
		size    tile.Size
		wantErr bool
		want    tile.Size
	}{
		{"com.openmpns.music", tile.Wide, true, tile.Small}, // WP7.5
		{"com.openmpns.music", tile.Medium, false, tile.Medium},
		{"com.openmpns.news", tile.Wide, false, tile.Wide}, // FlipTile
		{"com.openmpns.nosuchapp", tile.Small, true, 0},
	}
	for _, tt := range tests {
		err := r.ph.SetTileSize(tt.key, tt.size)
		if (err != nil) != tt.wantErr {
			t.Errorf("SetTileSize(%s, %v) = %v, want error %v", tt.key, tt.size, err, tt.wantErr)
		}
		if tl, ok := r.ph.TileByKey(tt.key); ok && tl.Size != tt.want {
			t.Errorf("after SetTileSize(%s, %v): size %v, want %v", tt.key, tt.size, tl.Size, tt.want)
		}
	}
}

// onePixelPNG is a 1×1 white PNG.
var onePixelPNG = func() []byte {
	var b bytes.Buffer
	m := image.NewNRGBA(image.Rect(0, 0, 1, 1))
	m.Pix = []byte{0xFF, 0xFF, 0xFF, 0xFF}
	png.Encode(&b, m)
	return b.Bytes()
}()

// TestProfileIsKept: the screen chosen in Settings survives a restart;
// Config.Profile (--profile) overrides it, and an unknown one is refused.
func TestProfileIsKept(t *testing.T) {
	dir := t.TempDir()
	open := func(profile string) (*phone.Phone, error) {
		return phone.New(phone.Config{Server: "http://127.0.0.1:1", StateDir: dir, OnChange: func(phone.Change) {}, Logger: quiet, Profile: profile})
	}
	ph, err := open("")
	if err != nil {
		t.Fatal(err)
	}
	if got := ph.Profile(); got != tile.DefaultProfile {
		t.Errorf("a new phone has %v, want %v", got, tile.DefaultProfile)
	}
	if err := ph.SetProfile("720p", true); err != nil {
		t.Fatal(err)
	}
	if err := ph.SetProfile("qvga", false); err == nil {
		t.Error("SetProfile(qvga) succeeded")
	}
	ph.Close()
	ph, err = open("")
	if err != nil {
		t.Fatal(err)
	}
	if got := ph.Profile(); got != tile.HD720.MoreTiles(true) {
		t.Errorf("after a restart %v, want 720p with more tiles", got)
	}
	ph.Close()
	ph, err = open("1080p")
	if err != nil {
		t.Fatal(err)
	}
	if got := ph.Profile(); got != tile.HD1080 {
		t.Errorf("with Config.Profile 1080p: %v", got)
	}
	ph.Close()
	if _, err := open("qvga"); err == nil {
		t.Error("Config.Profile qvga accepted")
	}
}

// TestLockScreen: the lock screen takes the detailed status app's text and
// the quick status apps' counts from their primary tiles, only what they
// show; the user's choice is checked and kept.
func TestLockScreen(t *testing.T) {
	dir := t.TempDir()
	apps := []phone.App{
		{ID: "news", Name: "News", Lock: true, Template: payload.TemplateFlip, TileDefaults: map[string]string{
			payload.Count: "3", payload.WideBackContent: "Go 2 ships today with generics everywhere"}},
		{ID: "mail", Name: "Mail", Lock: true, Template: payload.TemplateIconic, TileDefaults: map[string]string{
			payload.Count: "7", payload.WideContent1: "Alice", payload.WideContent2: "Lunch at noon?"}},
		{ID: "photos", Name: "Photos", Lock: true, Template: payload.TemplateCycle, TileDefaults: map[string]string{payload.Title: "Photos"}},
		{ID: "music", Name: "Music", Template: payload.TemplateIconic},
	}
	open := func() *phone.Phone {
		ph, err := phone.New(phone.Config{Server: "http://127.0.0.1:1", StateDir: dir, Apps: apps, OnChange: func(phone.Change) {}, Logger: quiet})
		if err != nil {
			t.Fatal(err)
		}
		return ph
	}
	ph := open()
	// Defaults: the apps with a lock icon; the first iconic one for text.
	if d, q := ph.LockApps(); d != "mail" || strings.Join(q, ",") != "news,mail,photos" {
		t.Fatalf("default lock apps %q %q", d, q)
	}
	ls := ph.LockScreen()
	if ls.Detailed.App != "mail" || strings.Join(ls.Detailed.Text, "|") != "Alice|Lunch at noon?" {
		t.Errorf("detailed status %+v", ls.Detailed)
	}
	var quick []string
	for _, q := range ls.Quick {
		quick = append(quick, fmt.Sprintf("%s:%d", q.App, q.Count))
	}
	if got := strings.Join(quick, ","); got != "news:3,mail:7" { // photos shows no count
		t.Errorf("quick status %s, want news:3,mail:7", got)
	}

	for _, bad := range []struct {
		detailed string
		quick    []string
	}{
		{"music", nil},                               // no lock icon
		{"", []string{"news", "news"}},               // twice
		{"nosuch", nil},                              // no such app
		{"", []string{"a", "b", "c", "d", "e", "f"}}, // more than five
	} {
		if err := ph.SetLockApps(bad.detailed, bad.quick); err == nil {
			t.Errorf("SetLockApps(%q, %q) succeeded", bad.detailed, bad.quick)
		}
	}
	if err := ph.SetLockApps("news", []string{"photos", "mail"}); err != nil {
		t.Fatal(err)
	}
	ph.Close()
	ph = open()
	defer ph.Close()
	ls = ph.LockScreen()
	if ls.Detailed.App != "news" || strings.Join(ls.Detailed.Text, "|") != "Go 2 ships today with|generics everywhere" {
		t.Errorf("after a restart, detailed status %+v", ls.Detailed)
	}
	if len(ls.Quick) != 1 || ls.Quick[0].App != "mail" {
		t.Errorf("after a restart, quick status %+v", ls.Quick)
	}
	if err := ph.SetLockApps("", nil); err != nil {
		t.Fatal(err)
	}
	if ls := ph.LockScreen(); ls.Detailed.App != "" || len(ls.Quick) != 0 {
		t.Errorf("with no app chosen the lock screen shows %+v", ls)
	}
}

// TestSecondaryTilesAreBounded plays a sender that names a new secondary
// tile in every update: the phone pins MaxSecondaryTiles for the app and
// drops (and logs) the rest, while updates to pinned ones still apply; an
// unpinned one makes room again, and a phone.json holding more is read
// with the bound too.
func TestSecondaryTilesAreBounded(t *testing.T) {
	srv := startServer(t)
	dir := t.TempDir()
	apps := []phone.App{{ID: "photos", Name: "Photos", Channel: "main", Template: payload.TemplateFlip}}
	open := phoneOpener(t, srv, dir, apps)
	secondaries := func(ph *phone.Phone) int {
		n := 0
		for _, tl := range ph.Tiles() {
			if strings.HasPrefix(tl.Key, "photos#") {
				n++
			}
		}
		return n
	}
	tileEntries := func(ph *phone.Phone) (applied, dropped int) {
		for _, e := range ph.Inspector() {
			switch {
			case e.Kind != "tile":
			case strings.HasPrefix(e.Note, "dropped"):
				dropped++
			default:
				applied++
			}
		}
		return applied, dropped
	}

	ph, ch := open()
	uri := channelURI(t, ph, ch, "photos")
	update := func(id, title string) {
		send(t)(sender.NewTile(uri, &payload.Tile{ID: id, Template: payload.TemplateFlip,
			Fields: map[string]string{payload.Title: title}}, sender.Immediate))
	}
	const extra = 5
	for i := range phone.MaxSecondaryTiles + extra {
		update(fmt.Sprintf("/Album.xaml?id=%d", i), "new")
	}
	ch.until(t, "every update logged", func() bool {
		a, d := tileEntries(ph)
		return a+d == phone.MaxSecondaryTiles+extra
	})
	if a, d := tileEntries(ph); a != phone.MaxSecondaryTiles || d != extra || secondaries(ph) != phone.MaxSecondaryTiles {
		t.Fatalf("%d applied, %d dropped, %d secondary tiles; want %d, %d, %d", a, d, secondaries(ph), phone.MaxSecondaryTiles, extra, phone.MaxSecondaryTiles)
	}
	// A pinned secondary tile still takes updates.
	update("/Album.xaml?id=0", "again")
	ch.until(t, "the first album's update", func() bool {
		tl, ok := ph.TileByKey("photos#/Album.xaml?id=0")
		return ok && tl.State.Get(payload.Title) == "again"
	})
	// One unpinned makes room for one new.
	if !ph.Unpin("photos#/Album.xaml?id=1") {
		t.Fatal("Unpin failed")
	}
	update("/Album.xaml?id=new", "new")
	ch.until(t, "the new album's tile", func() bool { _, ok := ph.TileByKey("photos#/Album.xaml?id=new"); return ok })
	if n := secondaries(ph); n != phone.MaxSecondaryTiles {
		t.Fatalf("%d secondary tiles, want %d", n, phone.MaxSecondaryTiles)
	}
	if err := ph.Close(); err != nil {
		t.Fatal(err)
	}

	// A phone.json with more secondary tiles (written by an older build,
	// or by hand) is read with the bound.
	editPhoneJSON(t, dir, func(set map[string]any) {
		tiles := set["tiles"].(map[string]any)
		for i := range extra {
			id := fmt.Sprintf("/Extra.xaml?id=%d", i)
			tiles["photos#"+id] = map[string]any{"app": "photos", "id": id}
		}
	})
	ph, _ = open()
	defer ph.Close()
	if n := secondaries(ph); n != phone.MaxSecondaryTiles {
		t.Fatalf("%d secondary tiles read from a phone.json holding %d, want %d", n, phone.MaxSecondaryTiles+extra, phone.MaxSecondaryTiles)
	}
}

// TestWaitingToastsAreBoundedAndDropsLogged plays a sender flooding an app
// with toasts: the phone keeps toast.MaxWaitingPerApp of them waiting
// behind the one on screen, its newest, and logs in the inspector each
// toast it dropped unshown.
func TestWaitingToastsAreBoundedAndDropsLogged(t *testing.T) {
	srv := startServer(t)
	allow := true
	ch := newChanges()
	apps := []phone.App{{ID: "news", Name: "News", Channel: "main", WantsToast: true, Template: payload.TemplateFlip}}
	// Toasts shown for an hour: none leaves the screen while the test runs.
	ph, err := phone.New(phone.Config{Server: srv.URL(), StateDir: t.TempDir(), Apps: apps, AutoConsent: &allow,
		OnChange: ch.on, Logger: quiet, MinBackoff: 5 * time.Millisecond, ToastDuration: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer ph.Close()
	uri := channelURI(t, ph, ch, "news")
	const extra = 3
	const pushed = 1 + toast.MaxWaitingPerApp + extra // one on screen, the rest waiting or dropped
	for i := range pushed {
		send(t)(sender.NewToast(uri, &payload.Toast{Text1: "News", Text2: fmt.Sprint(i)}, sender.Immediate))
	}
	droppedEntries := func() (shown int, dropped []string) {
		for _, e := range ph.Inspector() {
			switch {
			case e.Kind != "toast":
			case strings.HasPrefix(e.Note, "dropped"):
				tt, err := payload.ParseToast(e.Payload)
				if err != nil {
					t.Fatalf("a dropped toast's entry holds %q: %v", e.Payload, err)
				}
				dropped = append(dropped, tt.Text2)
			default:
				shown++
			}
		}
		return shown, dropped
	}
	ch.until(t, "every toast logged", func() bool {
		shown, dropped := droppedEntries()
		return shown == pushed && len(dropped) == extra
	})
	// The first went on screen at once; the oldest of the others were
	// dropped, the newest shown after it.
	var wantDropped, wantShown []string
	for i := range pushed {
		if i >= 1 && i <= extra {
			wantDropped = append(wantDropped, fmt.Sprint(i))
		} else {
			wantShown = append(wantShown, fmt.Sprint(i))
		}
	}
	if _, dropped := droppedEntries(); strings.Join(dropped, ",") != strings.Join(wantDropped, ",") {
		t.Errorf("dropped toasts %v, want %v (the oldest waiting)", dropped, wantDropped)
	}
	var order []string
	for {
		_, tt, ok := ph.ShownToast()
		if !ok {
			break
		}
		order = append(order, tt.Text2)
		ph.DismissToast()
	}
	if got, want := strings.Join(order, ","), strings.Join(wantShown, ","); got != want {
		t.Errorf("toasts shown %s, want %s", got, want)
	}
}

// TestATileIdCannotReachAnotherAppsTile: a tile's key is its app's id, "#"
// and the tile's Id, and a phone.App's id may hold "#" (the manifest
// refuses it; the phone does not rely on that). Whoever holds app news's
// Channel URI sends Id "beta": the update must not touch app "news#beta"'s
// primary tile, nor be kept in phone.json under its key (read back at the
// next start, the key was twice on the start screen, and once unpinned,
// Phone.Tiles panicked).
func TestATileIdCannotReachAnotherAppsTile(t *testing.T) {
	srv := startServer(t)
	dir := t.TempDir()
	apps := []phone.App{
		{ID: "news", Name: "News", Channel: "main", Template: payload.TemplateFlip, TileDefaults: map[string]string{payload.Title: "News"}},
		{ID: "news#beta", Name: "News Beta", Template: payload.TemplateFlip, TileDefaults: map[string]string{payload.Title: "Beta"}},
	}
	open := phoneOpener(t, srv, dir, apps)
	untouched := func(ph *phone.Phone, when string) {
		t.Helper()
		if tl, ok := ph.TileByKey("news#beta"); !ok || tl.App != "news#beta" || tl.State.Get(payload.Title) != "Beta" {
			t.Errorf("%s, tile news#beta is app %q titled %q (pinned %v); want News Beta's primary tile, untouched", when, tl.App, tl.State.Get(payload.Title), ok)
		}
	}
	uniqueKeys := func(ph *phone.Phone, when string) {
		t.Helper()
		seen := map[string]bool{}
		for _, tl := range ph.Tiles() {
			if seen[tl.Key] {
				t.Errorf("%s, key %s is twice on the start screen", when, tl.Key)
			}
			seen[tl.Key] = true
		}
	}

	ph, ch := open()
	uri := channelURI(t, ph, ch, "news")
	send(t)(sender.NewTile(uri, &payload.Tile{ID: "beta", Template: payload.TemplateFlip,
		Fields: map[string]string{payload.Title: "owned"}}, sender.Immediate))
	ch.until(t, "the update logged", func() bool {
		for _, e := range ph.Inspector() {
			if e.Kind == "tile" {
				return true
			}
		}
		return false
	})
	if log := ph.Inspector(); !strings.HasPrefix(log[len(log)-1].Note, "dropped: its key news#beta is another tile's") {
		t.Errorf("the update's inspector note: %q; want it dropped", log[len(log)-1].Note)
	}
	untouched(ph, "after news's update with Id beta")
	if err := ph.Close(); err != nil {
		t.Fatal(err)
	}

	// A phone.json that holds such an update under the other tile's key
	// (from a build that did not check, or written by hand) is read
	// without it, and the record is forgotten.
	editPhoneJSON(t, dir, func(set map[string]any) {
		set["tiles"] = map[string]any{
			"news#beta": map[string]any{"app": "news", "id": "beta", "template": "FlipTile", "fields": map[string]string{"Title": "owned"}},
			"news#x":    map[string]any{"app": "news", "id": "y", "template": "FlipTile"}, // a key that is not its tile's
		}
	})
	ph, _ = open()
	untouched(ph, "after a restart with the update in phone.json")
	uniqueKeys(ph, "after a restart with the update in phone.json")
	if _, ok := ph.TileByKey("news#x"); ok {
		t.Error("a record whose key is not its app and Id made a tile")
	}
	// The user unpins the tile: the start screen still lists its tiles.
	ph.Unpin("news#beta")
	func() {
		defer func() {
			if r := recover(); r != nil {
				t.Errorf("Tiles() after unpinning news#beta panicked: %v", r)
			}
		}()
		uniqueKeys(ph, "after unpinning news#beta")
	}()
	if err := ph.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "phone.json"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), "owned") || strings.Contains(string(b), `"news#x"`) {
		t.Errorf("phone.json still holds the records of other tiles' keys:\n%s", b)
	}
}

// editPhoneJSON changes the phone.json in dir as edit does to it, as a
// build that did not check, or a hand, would have written it.
func editPhoneJSON(t *testing.T, dir string, edit func(set map[string]any)) {
	t.Helper()
	path := filepath.Join(dir, "phone.json")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var set map[string]any
	if err := json.Unmarshal(b, &set); err != nil {
		t.Fatal(err)
	}
	edit(set)
	if b, err = json.Marshal(set); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}
