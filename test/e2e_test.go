package test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/openmpns/openmpns/device"
	"github.com/openmpns/openmpns/server"
	"github.com/openmpns/openmpns/shared/clock"
	"github.com/openmpns/openmpns/shared/payload"
)

const (
	toastT = "toast"
	tileT  = "token"
)

func TestToastReachesShellAndForegroundApp(t *testing.T) {
	srv := startServer(t, server.Config{})
	p := newPhone(t, srv.URL(), "")
	ch := p.openChannel(t, "com.example.news", "", true, true)
	uri := ch.ChannelURI()
	if !strings.HasPrefix(uri, srv.URL()+"/push/") {
		t.Fatalf("Channel URI %q is not under %s/push/", uri, srv.URL())
	}
	if got := p.rec.waitN(t, 1, "uri"); got[0].text != uri {
		t.Fatalf("ChannelURIUpdated gave %q, want %q", got[0].text, uri)
	}

	a := post(t, "POST", uri, toastT, "2", "7c9a5b2e-1111-4c1d-9a1a-000000000001", toastXML("Breaking", "Go 2 released", "/Story.xaml?id=1"))
	if !a.is(200, "Received", "Active", "Connected") || a.msgID != "7c9a5b2e-1111-4c1d-9a1a-000000000001" {
		t.Fatalf("toast answer = %+v", a)
	}
	got := p.rec.waitN(t, 1, "shelltoast")[0]
	if got.toast.Text1 != "Breaking" || got.toast.Text2 != "Go 2 released" || got.toast.Param != "/Story.xaml?id=1" {
		t.Fatalf("shell toast = %+v", got.toast)
	}
	if got.meta.MessageID != "7c9a5b2e-1111-4c1d-9a1a-000000000001" || got.meta.App != "com.example.news" {
		t.Fatalf("meta = %+v", got.meta)
	}

	p.SetAppState("com.example.news", device.AppState{Foreground: true})
	post(t, "POST", uri, toastT, "", "", toastXML("In app", "", ""))
	if got := p.rec.waitN(t, 1, "apptoast")[0]; got.toast.Text1 != "In app" {
		t.Fatalf("app toast = %+v", got.toast)
	}
	if n := len(p.rec.of("shelltoast")); n != 1 {
		t.Fatalf("a foreground toast reached the shell too (%d shell toasts)", n)
	}
}

func TestEveryTileTemplate(t *testing.T) {
	srv := startServer(t, server.Config{})
	p := newPhone(t, srv.URL(), "")
	uri := p.openChannel(t, "com.example.photos", "", false, true).ChannelURI()

	tiles := []*payload.Tile{
		{Template: payload.TemplateDefault, Fields: map[string]string{payload.Title: "WP7.5", payload.Count: "3", payload.BackContent: "back"}},
		{Template: payload.TemplateFlip, Fields: map[string]string{payload.Title: "News", payload.BackTitle: "More", payload.WideBackContent: "wide back", payload.Count: "99"}},
		{Template: payload.TemplateCycle, Fields: map[string]string{payload.CycleImage(1): "/a.png", payload.CycleImage(9): "http://images.example.com/9.png", payload.Title: "Photos"}},
		{Template: payload.TemplateIconic, Fields: map[string]string{payload.IconImage: "/mail.png", payload.WideContent1: "Alice", payload.BackgroundColor: "#FF1BA1E2", payload.Count: "12"}},
		{ID: "/Album.xaml?id=7", Template: payload.TemplateFlip, Fields: map[string]string{payload.Title: "Secondary"}},
		{Template: payload.TemplateFlip, Cleared: []string{payload.Count, payload.BackTitle}},
	}
	for _, tl := range tiles {
		if a := post(t, "POST", uri, tileT, "1", "", tl.Encode()); !a.is(200, "Received", "Active", "Connected") {
			t.Fatalf("tile %s: %+v", tl.Template, a)
		}
	}
	got := p.rec.waitN(t, len(tiles), "tile")
	for i, want := range tiles {
		g := got[i].tile
		if g.ID != want.ID || g.Template != want.Template || len(g.Fields) != len(want.Fields) || strings.Join(g.Cleared, ",") != strings.Join(want.Cleared, ",") {
			t.Errorf("tile %d: got %+v, want %+v", i, g, want)
		}
		for k, v := range want.Fields {
			if g.Fields[k] != v {
				t.Errorf("tile %d: %s = %q, want %q", i, k, g.Fields[k], v)
			}
		}
	}
}

func TestRawOnlyReachesRunningApp(t *testing.T) {
	srv := startServer(t, server.Config{})
	p := newPhone(t, srv.URL(), "")
	uri := p.openChannel(t, "com.example.chat", "", false, false).ChannelURI()

	if a := post(t, "POST", uri, "", "3", "", []byte("not running")); !a.is(200, "Received", "Active", "Connected") {
		t.Fatalf("raw answer = %+v", a)
	}
	p.rec.waitN(t, 1, "rawdropped")
	p.SetAppState("com.example.chat", device.AppState{Running: true})
	post(t, "POST", uri, "", "", "", []byte{0, 1, 2, 0xff})
	got := p.rec.waitN(t, 1, "raw")[0]
	if string(got.raw) != "\x00\x01\x02\xff" {
		t.Fatalf("raw bytes = %q", got.raw)
	}
}

// TestResponseTable reaches every row of the MPNS response table (reference §3).
func TestResponseTable(t *testing.T) {
	clk := clock.NewFake(time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC))
	srv := startServer(t, server.Config{Clock: clk, QueueLimit: 2,
		TempDisconnected: 10 * time.Minute, InactiveAfter: 48 * time.Hour})
	p := newPhone(t, srv.URL(), "")
	uri := p.openChannel(t, "com.example.table", "", false, true).ChannelURI()
	tile := (&payload.Tile{Fields: map[string]string{payload.Title: "t"}}).Encode()

	check := func(name string, a answer, code int, notif, sub, conn string) {
		t.Helper()
		if !a.is(code, notif, sub, conn) {
			t.Errorf("%s: got %d %q/%q/%q (reason %q), want %d %q/%q/%q", name, a.code, a.notif, a.sub, a.conn, a.reason, code, notif, sub, conn)
		}
		if code >= 400 && code != 404 && code != 406 && code != 412 && a.reason == "" {
			t.Errorf("%s: no X-OpenMPNS-Error reason", name)
		}
	}
	check("received", post(t, "POST", uri, tileT, "1", "", tile), 200, "Received", "Active", "Connected")
	check("suppressed (toast not bound)", post(t, "POST", uri, toastT, "2", "", toastXML("a", "b", "")), 200, "Suppressed", "Active", "Connected")
	check("bad xml", post(t, "POST", uri, tileT, "", "", []byte("<nope")), 400, "", "", "")
	check("class contradicts target", post(t, "POST", uri, tileT, "2", "", tile), 400, "", "", "")
	check("unknown class", post(t, "POST", uri, "", "99", "", []byte("x")), 400, "", "", "")
	check("too large", post(t, "POST", uri, "", "", "", make([]byte, 3073)), 400, "", "", "")
	check("malformed URI", post(t, "POST", srv.URL()+"/push/short", "", "", "", []byte("x")), 400, "", "", "")
	check("headers too large", post(t, "POST", uri, "", "", "", []byte("x"), "X-Padding", strings.Repeat("p", 1100)), 400, "", "", "")
	check("method", post(t, "GET", uri, "", "", "", nil), 405, "", "", "")

	// Device offline: TempDisconnected, then QueueFull, then Disconnected, then Inactive.
	p.Close()
	p.rec.waitStatus(t, device.Disconnected)
	waitFor(t, func() bool { return post(t, "POST", uri, tileT, "1", "", tile).conn == "TempDisconnected" })
	check("temp disconnected", post(t, "POST", uri, "", "", "", []byte("r")), 200, "Received", "Active", "TempDisconnected")
	check("queue full", post(t, "POST", uri, "", "", "", []byte("r")), 200, "QueueFull", "Active", "TempDisconnected")
	clk.Advance(11 * time.Minute)
	// A newer update of a queued tile replaces it, so a full queue takes it.
	check("disconnected", post(t, "POST", uri, tileT, "1", "", tile), 200, "Received", "Active", "Disconnected")
	clk.Advance(49 * time.Hour)
	check("inactive", post(t, "POST", uri, tileT, "1", "", tile), 412, "Dropped", "", "Inactive")

	// 401: a channel opened for a service accepts only that service.
	p2 := newPhone(t, srv.URL(), "")
	svcURI := p2.openChannel(t, "com.example.secure", "secure-service", true, true).ChannelURI()
	unauth := post(t, "POST", svcURI, tileT, "1", "", tile)
	check("unauthenticated to service channel", unauth, 401, "", "", "")
	if !strings.HasPrefix(unauth.challenge, "Bearer ") {
		t.Errorf("the 401 for a service's channel has WWW-Authenticate %q, want the Bearer scheme (RFC 9110: every 401 names one)", unauth.challenge)
	}

	// 404 after the app closes its channel.
	ch := p2.openChannel(t, "com.example.gone", "", true, true)
	goneURI := ch.ChannelURI()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	if err := ch.Close(ctx); err != nil {
		t.Fatal(err)
	}
	check("closed channel", post(t, "POST", goneURI, tileT, "1", "", tile), 404, "Dropped", "Expired", "")

	// Power saving: low suppresses toasts and tiles, not raw.
	pw := p2.openChannel(t, "com.example.power", "", true, true).ChannelURI()
	if err := p2.SetPowerLevel(ctx, device.PowerLow); err != nil {
		t.Fatal(err)
	}
	check("low power toast", post(t, "POST", pw, toastT, "", "", toastXML("a", "", "")), 200, "Suppressed", "Active", "Connected")
	check("low power raw", post(t, "POST", pw, "", "", "", []byte("r")), 200, "Received", "Active", "Connected")
	if err := p2.SetPowerLevel(ctx, device.PowerCriticallyLow); err != nil {
		t.Fatal(err)
	}
	check("critically low raw", post(t, "POST", pw, "", "", "", []byte("r")), 200, "Suppressed", "Active", "Connected")

	// 503 while draining.
	go srv.Close()
	waitFor(t, func() bool { return post503(uri) })
}

func post503(uri string) bool {
	resp, err := http.Post(uri, "text/xml", strings.NewReader("x"))
	if err != nil {
		return true // listener closed after draining: also what a sender sees as unavailable
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusServiceUnavailable
}

// waitFor retries cond until it holds, yielding between tries; it fails the
// test after waitLimit. It is for states reached by another goroutine with no
// event to wait on (the server noticing a closed socket).
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in time")
		}
		tick := time.NewTimer(time.Millisecond)
		<-tick.C
	}
}

func TestDailyQuotaOfUnauthenticatedSenders(t *testing.T) {
	clk := clock.NewFake(time.Date(2026, 11, 28, 23, 0, 0, 0, time.UTC))
	srv := startServer(t, server.Config{Clock: clk, DailyQuota: 500})
	p := newPhone(t, srv.URL(), "")
	uri := p.openChannel(t, "com.example.quota", "", false, false).ChannelURI()
	for i := 1; i <= 500; i++ {
		if a := post(t, "POST", uri, "", "", "", []byte("r")); !a.is(200, "Received", "Active", "Connected") {
			t.Fatalf("push %d: %+v", i, a)
		}
	}
	if a := post(t, "POST", uri, "", "", "", []byte("r")); !a.is(406, "Dropped", "Active", "") {
		t.Fatalf("push 501: %+v, want 406 Dropped/Active", a)
	}
	clk.Advance(time.Hour) // the next UTC day
	if a := post(t, "POST", uri, "", "", "", []byte("r")); !a.is(200, "Received", "Active", "Connected") {
		t.Fatalf("first push of the next day: %+v", a)
	}
}

// TestAirplaneMode: a device switched offline is TempDisconnected to
// senders, keeps its queue, and gets it when switched back on.
func TestAirplaneMode(t *testing.T) {
	srv := startServer(t, server.Config{})
	p := newPhone(t, srv.URL(), "")
	uri := p.openChannel(t, "com.example.air", "", true, true).ChannelURI()
	p.rec.waitStatus(t, device.Connected)
	p.SetOnline(false)
	p.rec.waitStatus(t, device.Disconnected)
	waitFor(t, func() bool {
		return post(t, "POST", uri, toastT, "", "", toastXML("queued", "", "")).conn == "TempDisconnected"
	})
	if n := len(p.rec.of("shelltoast")); n != 0 {
		t.Fatalf("an offline device received %d toasts", n)
	}
	p.SetOnline(true)
	p.rec.waitStatus(t, device.Connected)
	if got := p.rec.waitN(t, 1, "shelltoast"); got[0].toast.Text1 != "queued" {
		t.Fatalf("toast after airplane mode: %+v", got[0].toast)
	}
}

// An empty raw notification (a wake-up signal some senders use) reaches
// the running app as an empty payload; "raw" as the target is MPNS's too.
func TestEmptyRawWakesTheApp(t *testing.T) {
	srv := startServer(t, server.Config{})
	p := newPhone(t, srv.URL(), "")
	uri := p.openChannel(t, "com.example.chat", "", false, false).ChannelURI()
	p.SetAppState("com.example.chat", device.AppState{Running: true})
	if a := post(t, "POST", uri, "raw", "3", "", nil); !a.is(200, "Received", "Active", "Connected") {
		t.Fatalf("empty raw answer = %+v", a)
	}
	if got := p.rec.waitN(t, 1, "raw")[0]; len(got.raw) != 0 {
		t.Fatalf("raw bytes = %q, want none", got.raw)
	}
}
