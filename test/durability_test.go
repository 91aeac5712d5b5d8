package test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/openmpns/openmpns/device"
	"github.com/openmpns/openmpns/internal/servertest"
	"github.com/openmpns/openmpns/server"
	"github.com/openmpns/openmpns/server/store"
	"github.com/openmpns/openmpns/shared/clock"
	"github.com/openmpns/openmpns/shared/payload"
)

// TestMain lets the test binary act as a server process for the SIGKILL test.
func TestMain(m *testing.M) {
	if dir := os.Getenv("OPENMPNS_TEST_SERVE_DIR"); dir != "" {
		serveChild(dir, os.Getenv("OPENMPNS_TEST_SERVE_ADDR"))
		return
	}
	os.Exit(m.Run())
}

// serveChild runs a server until killed and prints its address. With
// OPENMPNS_TEST_SERVE_HOLD=1 it also reads commands from stdin: "hold"
// stops its store's commit loops (store.Log.Hold, store.Bolt.Hold) and answers "held", so
// that a test can kill it while writes wait for a commit that never comes;
// and a removal waits an hour for a commit to ride on (instead of 100 ms),
// so that acknowledged notifications stay written until the next commit.
func serveChild(dir, addr string) {
	cfg := server.Config{DataDir: dir, Listen: addr, Logger: quietLogger(), ReaderGoroutines: servertest.Readers()}
	var be *store.Embedded
	if os.Getenv("OPENMPNS_TEST_SERVE_HOLD") == "1" {
		var err error
		if be, err = store.Open(filepath.Join(dir, server.DBFile), store.Options{RemoveDelay: time.Hour}); err != nil {
			fmt.Println("error:", err)
			os.Exit(1)
		}
		cfg.Backend = be
	}
	srv, err := server.New(cfg)
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	if err := srv.Start(); err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	fmt.Println("listening", srv.Addr())
	if be != nil {
		go func() {
			sc := bufio.NewScanner(os.Stdin)
			for sc.Scan() {
				if sc.Text() == "hold" {
					// Never released: the test kills the process. The
					// notification log commits notifications, bbolt
					// the rest.
					be.Log().Hold()
					be.Bolt().Hold()
					fmt.Println("held")
				}
			}
		}()
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM)
	<-sig
	srv.Close()
}

// child is a server running in a process of its own (serveChild).
type child struct {
	cmd  *exec.Cmd
	addr string
	in   io.WriteCloser // commands, with OPENMPNS_TEST_SERVE_HOLD=1
	out  *bufio.Reader  // what it prints after "listening"
}

// startChild starts a server process on dir and addr, with extra
// environment variables env ("K=V"), and waits until it listens.
func startChild(t *testing.T, dir, addr string, env ...string) *child {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(append(os.Environ(), "OPENMPNS_TEST_SERVE_DIR="+dir, "OPENMPNS_TEST_SERVE_ADDR="+addr), env...)
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	br := bufio.NewReader(out)
	line, err := br.ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "listening ") {
		t.Fatalf("server process: %q %v", line, err)
	}
	return &child{cmd: cmd, addr: strings.TrimSpace(strings.TrimPrefix(line, "listening ")), in: in, out: br}
}

// hold stops the child's commit loop (it must run with
// OPENMPNS_TEST_SERVE_HOLD=1) and returns once nothing more is written.
func (c *child) hold(t *testing.T) {
	t.Helper()
	if _, err := io.WriteString(c.in, "hold\n"); err != nil {
		t.Fatalf("server process: hold: %v", err)
	}
	if line, err := c.out.ReadString('\n'); err != nil || line != "held\n" {
		t.Fatalf("server process: hold: %q %v", line, err)
	}
}

// kill ends the child with SIGKILL and waits for it.
func (c *child) kill(t *testing.T) {
	t.Helper()
	if err := c.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	c.cmd.Wait()
}

// TestReceivedSurvivesSIGKILL kills a real server process right after it
// answered 200 Received and checks that a restarted server delivers every
// such notification, exactly once to the app.
func TestReceivedSurvivesSIGKILL(t *testing.T) {
	dir := t.TempDir()
	srv := startChild(t, dir, "127.0.0.1:0")
	url := "http://" + srv.addr
	p := newPhone(t, url, "")
	uri := p.openChannel(t, "com.example.durable", "", true, true).ChannelURI()
	p.Close() // offline: everything accepted now must wait in the store
	const n = 50
	for i := range n {
		body := toastXML(fmt.Sprintf("toast %d", i), "", "")
		if a := post(t, "POST", uri, toastT, "", "", body); a.code != 200 || a.notif != "Received" {
			t.Fatalf("push %d: %+v", i, a)
		}
	}
	if err := srv.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	srv.cmd.Wait()

	srv2 := startChild(t, dir, srv.addr) // same address: the Channel URI stays valid
	_ = srv2
	p2 := newPhone(t, url, p.dir)
	got := p2.rec.waitN(t, n, "shelltoast")
	for i, e := range got[:n] {
		if want := fmt.Sprintf("toast %d", i); e.toast.Text1 != want {
			t.Fatalf("toast %d is %q, want %q (order or loss)", i, e.toast.Text1, want)
		}
	}
	// More pushes still work after the restart, and nothing arrives twice.
	if a := post(t, "POST", uri, toastT, "", "", toastXML("after", "", "")); a.code != 200 {
		t.Fatalf("push after restart: %+v", a)
	}
	got = p2.rec.waitN(t, n+1, "shelltoast")
	if len(got) != n+1 || got[n].toast.Text1 != "after" {
		t.Fatalf("got %d toasts after restart, last %q", len(got), got[len(got)-1].toast.Text1)
	}
}

// TestRestartKeepsQueueAndOrder: a graceful restart keeps devices, channels,
// bindings and queued notifications; the device gets them in order.
func TestRestartKeepsQueueAndOrder(t *testing.T) {
	dir := t.TempDir()
	srv := startServer(t, server.Config{DataDir: dir})
	addr := srv.Addr()
	p := newPhone(t, srv.URL(), "")
	uri := p.openChannel(t, "com.example.order", "", true, true).ChannelURI()
	p.SetAppState("com.example.order", device.AppState{Running: true})
	p.Close()
	post(t, "POST", uri, toastT, "", "", toastXML("one", "", ""))
	post(t, "POST", uri, "", "", "", []byte("two"))
	post(t, "POST", uri, tileT, "", "", (&payload.Tile{Fields: map[string]string{payload.Title: "three"}}).Encode())
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	srv2 := startServer(t, server.Config{DataDir: dir, Listen: addr})
	p2 := newPhone(t, srv2.URL(), p.dir, "com.example.order") // running before the queue comes
	evs := p2.rec.waitN(t, 3, "shelltoast", "raw", "tile")
	if evs[0].kind != "shelltoast" || evs[1].kind != "raw" || evs[2].kind != "tile" || evs[2].tile.Fields["Title"] != "three" {
		t.Fatalf("order after restart: %+v", evs)
	}
	if got := p2.Find("com.example.order", "main"); got == nil || got.ChannelURI() != uri || !got.IsShellToastBound() {
		t.Fatalf("channel after restart: %+v", got)
	}
}

// TestReconnectAfterServerRestart: a connected device notices the server
// going away and comes back by itself with its channels.
func TestReconnectAfterServerRestart(t *testing.T) {
	dir := t.TempDir()
	srv := startServer(t, server.Config{DataDir: dir})
	addr := srv.Addr()
	p := newPhone(t, srv.URL(), "")
	uri := p.openChannel(t, "com.example.reconnect", "", true, true).ChannelURI()
	p.rec.waitStatus(t, device.Connected)
	srv.Close()
	p.rec.waitStatus(t, device.Disconnected)
	srv2 := startServer(t, server.Config{DataDir: dir, Listen: addr})
	_ = srv2
	p.rec.waitStatus(t, device.Connected)
	if a := post(t, "POST", uri, toastT, "", "", toastXML("back", "", "")); !a.is(200, "Received", "Active", "Connected") {
		t.Fatalf("push after reconnect: %+v", a)
	}
	if got := p.rec.waitN(t, 1, "shelltoast"); got[0].toast.Text1 != "back" {
		t.Fatalf("toast = %+v", got[0].toast)
	}
	if n := len(p.rec.of("uri")); n != 1 {
		t.Fatalf("Channel URI changed on reconnect (%d updates)", n)
	}
}

// TestBatchingClasses: classes 11-13 wait for the 450 s window, 21-23 for
// the 900 s window, shortened by TimeScale, on an injected clock.
func TestBatchingClasses(t *testing.T) {
	start := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	clk := clock.NewFake(start)
	srv := startServer(t, server.Config{Clock: clk, TimeScale: 100}) // 4.5 s and 9 s
	p := newPhone(t, srv.URL(), "")
	uri := p.openChannel(t, "com.example.batch", "", true, true).ChannelURI()
	p.SetAppState("com.example.batch", device.AppState{Running: true})

	post(t, "POST", uri, "", "23", "", []byte("900"))
	post(t, "POST", uri, "", "13", "", []byte("450"))
	post(t, "POST", uri, "", "3", "", []byte("now"))
	if got := p.rec.waitN(t, 1, "raw"); string(got[0].raw) != "now" {
		t.Fatalf("first delivery %q, want the immediate one", got[0].raw)
	}
	clk.Advance(4*time.Second + 400*time.Millisecond)
	if n := len(p.rec.of("raw")); n != 1 {
		t.Fatalf("%d raw delivered before the 4.5 s window closed", n)
	}
	clk.Advance(100 * time.Millisecond)
	if got := p.rec.waitN(t, 2, "raw"); string(got[1].raw) != "450" {
		t.Fatalf("second delivery %q, want the 450 s class", got[1].raw)
	}
	clk.Advance(4 * time.Second)
	if n := len(p.rec.of("raw")); n != 2 {
		t.Fatalf("900 s class delivered early")
	}
	clk.Advance(500 * time.Millisecond)
	if got := p.rec.waitN(t, 3, "raw"); string(got[2].raw) != "900" {
		t.Fatalf("third delivery %q", got[2].raw)
	}
}

// TestQueuedTileUpdateIsReplaced: of two queued updates of one tile only the
// newer is delivered; other tiles keep theirs.
func TestQueuedTileUpdateIsReplaced(t *testing.T) {
	srv := startServer(t, server.Config{})
	p := newPhone(t, srv.URL(), "")
	uri := p.openChannel(t, "com.example.tiles", "", false, true).ChannelURI()
	p.Close()
	for _, tl := range []*payload.Tile{
		{Fields: map[string]string{payload.Title: "old primary"}},
		{ID: "/S.xaml", Template: payload.TemplateFlip, Fields: map[string]string{payload.Title: "secondary"}},
		{Fields: map[string]string{payload.Title: "new primary"}},
	} {
		if a := post(t, "POST", uri, tileT, "", "", tl.Encode()); a.notif != "Received" {
			t.Fatalf("%+v", a)
		}
	}
	p2 := newPhone(t, srv.URL(), p.dir)
	got := p2.rec.waitN(t, 2, "tile")
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	// A round trip after the tiles proves nothing else was queued.
	if err := p2.SetPowerLevel(ctx, device.PowerNormal); err != nil {
		t.Fatal(err)
	}
	got = p2.rec.of("tile")
	if len(got) != 2 || got[0].tile.Fields["Title"] != "secondary" || got[1].tile.Fields["Title"] != "new primary" {
		t.Fatalf("tiles delivered: %d %+v", len(got), got)
	}
}

// TestServerMoveChangesChannelURIs: a server restarted on another address
// hands out Channel URIs under its new origin; the device fires
// ChannelURIUpdated, and the new URI works.
func TestServerMoveChangesChannelURIs(t *testing.T) {
	dir := t.TempDir()
	srv := startServer(t, server.Config{DataDir: dir})
	p := newPhone(t, srv.URL(), "")
	old := p.openChannel(t, "com.example.move", "", true, true).ChannelURI()
	p.Close()
	srv.Close()
	srv2 := startServer(t, server.Config{DataDir: dir}) // another free port
	p2 := newPhone(t, srv2.URL(), p.dir)
	got := p2.rec.waitN(t, 1, "uri")[0].text
	if got == old || !strings.HasPrefix(got, srv2.URL()+"/push/") || got[strings.LastIndex(got, "/"):] != old[strings.LastIndex(old, "/"):] {
		t.Fatalf("URI after the move %q (before %q)", got, old)
	}
	if a := post(t, "POST", got, toastT, "", "", toastXML("moved", "", "")); !a.is(200, "Received", "Active", "Connected") {
		t.Fatalf("push to the new URI: %+v", a)
	}
}

// TestQueuedNotificationsExpire: notifications queued for a device that
// stays away are dropped once past the queue TTL, by the server's sweep,
// without the device coming back: the queue depth falls, the expired count
// rises and the channel has room again (no QueueFull). When the device does
// come back it gets what was sent since, not what expired.
func TestQueuedNotificationsExpire(t *testing.T) {
	start := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	clk := clock.NewFake(start)
	srv := startServer(t, server.Config{Clock: clk, QueueTTL: time.Hour, QueueLimit: 2})
	dir := t.TempDir()
	p := newPhone(t, srv.URL(), dir)
	uri := p.openChannel(t, "com.example.away", "", true, true).ChannelURI()
	p.Close()
	for _, text := range []string{"old 1", "old 2"} {
		if a := post(t, "POST", uri, toastT, "2", "", toastXML(text, "", "")); a.notif != "Received" {
			t.Fatalf("%s: %+v", text, a)
		}
	}
	if a := post(t, "POST", uri, toastT, "2", "", toastXML("full", "", "")); a.notif != "QueueFull" {
		t.Fatalf("third push to a queue of 2: %+v", a)
	}
	if d := metric(t, srv, "openmpns_queue_depth"); d != 2 {
		t.Fatalf("queue depth %v, want 2", d)
	}
	clk.Advance(time.Hour + time.Minute) // past the TTL, and a sweep (every 15 min here)
	if d, x := metric(t, srv, "openmpns_queue_depth"), metric(t, srv, "openmpns_notifications_expired_total"); d != 0 || x != 2 {
		t.Fatalf("after the TTL: queue depth %v, expired %v; want 0 and 2", d, x)
	}
	if a := post(t, "POST", uri, toastT, "2", "", toastXML("new", "", "")); a.notif != "Received" {
		t.Fatalf("push after the expiry: %+v, want room again", a)
	}
	back := newPhone(t, srv.URL(), dir)
	if got := back.rec.waitN(t, 1, "shelltoast"); got[0].toast.Text1 != "new" {
		t.Fatalf("the device got %q first, want only what was sent after the expiry", got[0].toast.Text1)
	}
	if n := len(back.rec.of("shelltoast")); n != 1 {
		t.Fatalf("%d toasts, want 1", n)
	}
}

// The sender hears 200 Received once the notification is durable or once
// its device has acknowledged it, whichever comes first: with every write
// held, a push to a connected device is answered on its acknowledgement,
// and the notification, acknowledged before its commit, is never written.
func TestReceivedOnAcknowledgementBeforeTheWrite(t *testing.T) {
	dir := t.TempDir()
	be, err := store.Open(filepath.Join(dir, server.DBFile), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	srv := startServer(t, server.Config{DataDir: dir, Backend: be})
	p := newPhone(t, srv.URL(), "")
	uri := p.openChannel(t, "com.example.chat", "", false, false).ChannelURI()
	p.SetAppState("com.example.chat", device.AppState{Running: true})
	release := be.Log().Hold()
	defer release()
	if a := post(t, "POST", uri, "", "", "", []byte("while the disk waits")); !a.is(200, "Received", "Active", "Connected") {
		t.Fatalf("answer while every write is held: %+v", a)
	}
	if got := p.rec.waitN(t, 1, "raw")[0]; string(got.raw) != "while the disk waits" {
		t.Fatalf("raw %q", got.raw)
	}
	if n := metric(t, srv, "openmpns_pushes_acked_before_stored_total"); n != 1 {
		t.Fatalf("acked before stored: %v, want 1", n)
	}
	release()
	// A SIGKILL now would find nothing to deliver again.
	waitFor(t, func() bool { q, err := be.Log().Queued(); return err == nil && len(q) == 0 })
}
