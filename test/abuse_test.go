package test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/openmpns/openmpns/device"
	"github.com/openmpns/openmpns/internal/servertest"
	"github.com/openmpns/openmpns/server"
	"github.com/openmpns/openmpns/shared/clock"
	"github.com/openmpns/openmpns/shared/wire"
)

// The attacks of issue 13 (registration floods, revocation), each played
// against a real server on loopback with its bbolt file. The per-address
// limits exempt loopback by default, so these servers run with
// LimitLoopback (--limit-loopback) unless the test is about the exemption.

// helloAs opens a gateway connection with the given request headers and
// says hello with the given credentials ("" for a new device); it returns
// the connection and the server's first answer.
func helloAs(t *testing.T, srv *server.Server, hdr http.Header, id, tok string) (*websocket.Conn, *wire.Frame) {
	t.Helper()
	ws, _, err := websocket.DefaultDialer.Dial("ws://"+srv.Addr()+"/ws", hdr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ws.Close() })
	ws.SetReadDeadline(time.Now().Add(waitLimit))
	servertest.SendFrame(t, ws, &wire.Frame{Type: wire.TypeHello, Version: wire.ProtocolVersion, DeviceID: id, DeviceToken: tok})
	return ws, servertest.ReadFrame(t, ws)
}

// openApp asks for app's channel on ws and returns the answer.
func openApp(t *testing.T, ws *websocket.Conn, id uint64, app string) *wire.Frame {
	t.Helper()
	servertest.SendFrame(t, ws, &wire.Frame{Type: wire.TypeOpen, ID: id, App: app, Channel: "main"})
	return servertest.ReadFrame(t, ws)
}

// wantRateLimited checks that f is the rate_limited error and that the
// server then closes ws with 4029.
func wantRateLimited(t *testing.T, ws *websocket.Conn, f *wire.Frame) {
	t.Helper()
	if f.Type != wire.TypeError || f.Code != wire.CodeRateLimited || !strings.Contains(f.Message, "retry in") {
		t.Fatalf("got %+v, want error %s saying when to retry", f, wire.CodeRateLimited)
	}
	if ce := closeOf(t, ws); ce.Code != wire.CloseRateLimited || !strings.HasPrefix(ce.Text, "rate limited") {
		t.Fatalf("closed with %d %q, want %d rate limited", ce.Code, ce.Text, wire.CloseRateLimited)
	}
}

// A client that registers identity after identity from one address is
// refused past the burst with rate_limited and close 4029, until the
// bucket refills; a known device still connects. Loopback is exempt unless
// LimitLoopback, so a local fleet registers at full speed by default.
func TestRegistrationFloodIsLimitedPerAddress(t *testing.T) {
	clk := clock.NewFake(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	srv := startServer(t, server.Config{Clock: clk, LimitLoopback: true, NewDevicesPerMinute: 6, NewDeviceBurst: 3})
	var known *wire.Frame
	for i := range 3 {
		ws, f := helloAs(t, srv, nil, "", "")
		if f.Type != wire.TypeWelcome || f.DeviceToken == "" {
			t.Fatalf("new device %d of the burst: got %+v, want welcome", i, f)
		}
		known = f
		ws.Close()
	}
	ws, f := helloAs(t, srv, nil, "", "")
	wantRateLimited(t, ws, f)
	if got := metric(t, srv, `openmpns_rate_limited_total{what="new devices"}`); got != 1 {
		t.Fatalf("openmpns_rate_limited_total for new devices = %v, want 1", got)
	}
	// A device that has its identity is not a new one.
	if _, f := helloAs(t, srv, nil, known.DeviceID, known.DeviceToken); f.Type != wire.TypeWelcome {
		t.Fatalf("a known device was refused: %+v", f)
	}
	clk.Advance(10 * time.Second) // one more token (6 a minute)
	if _, f := helloAs(t, srv, nil, "", ""); f.Type != wire.TypeWelcome {
		t.Fatalf("after the bucket refilled: %+v, want welcome", f)
	}
	ws, f = helloAs(t, srv, nil, "", "")
	wantRateLimited(t, ws, f)

	// By default loopback is exempt: the same flood gets through.
	free := startServer(t, server.Config{Clock: clk, NewDevicesPerMinute: 6, NewDeviceBurst: 3})
	for i := range 10 {
		if _, f := helloAs(t, free, nil, "", ""); f.Type != wire.TypeWelcome {
			t.Fatalf("loopback device %d refused without --limit-loopback: %+v", i, f)
		}
	}
}

// A device that opens channel after channel (an attacker cycling apps) is
// refused past the burst with rate_limited and close 4029. Opening a
// channel the device already has (what every reconnect does) is not
// counted.
func TestChannelOpenFloodIsLimitedPerAddress(t *testing.T) {
	clk := clock.NewFake(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	srv := startServer(t, server.Config{Clock: clk, LimitLoopback: true, ChannelOpensPerMinute: 6, ChannelOpenBurst: 5})
	ws, w := helloAs(t, srv, nil, "", "")
	for i := range 5 {
		if f := openApp(t, ws, uint64(i+1), fmt.Sprint("com.example.app", i)); f.Type != wire.TypeOpened {
			t.Fatalf("open %d of the burst: %+v", i, f)
		}
	}
	f := openApp(t, ws, 6, "com.example.app5")
	if f.Re != 6 {
		t.Fatalf("the refusal answers request %d, want 6", f.Re)
	}
	wantRateLimited(t, ws, f)
	// Reconnecting and reopening the channels it has is free.
	ws, f = helloAs(t, srv, nil, w.DeviceID, w.DeviceToken)
	if f.Type != wire.TypeWelcome {
		t.Fatalf("reconnect: %+v", f)
	}
	for i := range 5 {
		if f := openApp(t, ws, uint64(i+1), fmt.Sprint("com.example.app", i)); f.Type != wire.TypeOpened {
			t.Fatalf("reopening channel %d was refused: %+v", i, f)
		}
	}
	wantRateLimited(t, ws, openApp(t, ws, 9, "com.example.app5"))
	clk.Advance(10 * time.Second)
	ws, _ = helloAs(t, srv, nil, w.DeviceID, w.DeviceToken)
	if f := openApp(t, ws, 1, "com.example.app5"); f.Type != wire.TypeOpened {
		t.Fatalf("after the bucket refilled: %+v", f)
	}
}

// Behind a reverse proxy on the same host every device comes from
// loopback. With --trusted-proxy the client address is taken from the
// proxy's X-Forwarded-For (the rightmost hop that is not a trusted proxy),
// so each client is limited on its own, whatever it wrote into the header
// itself; without it the header is ignored.
func TestTrustedProxyNamesTheClient(t *testing.T) {
	proxies, err := server.ParseTrustedProxies("127.0.0.1,::1")
	if err != nil {
		t.Fatal(err)
	}
	srv := startServer(t, server.Config{TrustedProxies: proxies, NewDevicesPerMinute: 1, NewDeviceBurst: 1})
	via := func(chain string) http.Header { return http.Header{"X-Forwarded-For": {chain}} }
	if _, f := helloAs(t, srv, via("198.51.100.7"), "", ""); f.Type != wire.TypeWelcome {
		t.Fatalf("first device of 198.51.100.7: %+v", f)
	}
	// The same client, spoofing another address left of the proxy's hop.
	ws, f := helloAs(t, srv, via("203.0.113.99, 198.51.100.7"), "", "")
	wantRateLimited(t, ws, f)
	// Another client behind the proxy has its own bucket.
	if _, f := helloAs(t, srv, via("198.51.100.8"), "", ""); f.Type != wire.TypeWelcome {
		t.Fatalf("another client behind the proxy: %+v", f)
	}
	// Two addresses of one IPv6 /64 are one client.
	if _, f := helloAs(t, srv, via("2001:db8:7:7::1"), "", ""); f.Type != wire.TypeWelcome {
		t.Fatalf("first device of the /64: %+v", f)
	}
	ws, f = helloAs(t, srv, via("2001:db8:7:7:abcd::2"), "", "")
	wantRateLimited(t, ws, f)

	// A server that trusts no proxy ignores the header: loopback, exempt.
	plain := startServer(t, server.Config{NewDevicesPerMinute: 1, NewDeviceBurst: 1})
	for range 3 {
		if _, f := helloAs(t, plain, via("198.51.100.7"), "", ""); f.Type != wire.TypeWelcome {
			t.Fatalf("an untrusted peer's header was believed: %+v", f)
		}
	}
}

// The device runtime honours rate_limited (and 4029) with the long,
// growing backoff of a replaced connection instead of retrying at once.
func TestRateLimitedDeviceBacksOff(t *testing.T) {
	srv := startServer(t, server.Config{LimitLoopback: true, NewDevicesPerMinute: 0.001, NewDeviceBurst: 1})
	newPhone(t, srv.URL(), "").openChannel(t, "com.example.first", "", false, false) // takes the only token
	min := 5 * time.Millisecond
	clk := &waitClock{ch: make(chan time.Duration, 16)}
	failed := make(chan error, 16)
	d, err := device.New(device.Config{Server: srv.URL(), StateDir: t.TempDir(), MinBackoff: min, MaxBackoff: time.Hour,
		Logger: quietLogger(), Clock: clk, Handlers: device.Handlers{ConnectFailed: func(err error, _ time.Duration) {
			select {
			case failed <- err:
			default:
			}
		}}})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	for i := range 3 {
		select {
		case w := <-clk.ch:
			// Attempt 4+i of the equal-jittered backoff: at least min×2^(4+i).
			if low := min << (4 + i); w < low {
				t.Fatalf("wait %d after rate_limited = %v, want at least %v (a plain retry waits up to %v)", i, w, low, 2*min<<i)
			}
		case <-time.After(waitLimit):
			t.Fatalf("no reconnect wait %d", i)
		}
	}
	select {
	case err := <-failed:
		if !strings.Contains(err.Error(), wire.CodeRateLimited) {
			t.Fatalf("ConnectFailed with %v, want the rate_limited refusal", err)
		}
	case <-time.After(waitLimit):
		t.Fatal("ConnectFailed was not raised")
	}
}

// The server-wide caps: past MaxDevices a new identity is refused
// (server_full, 1013); past MaxTotalChannels a new channel is refused
// (server_full) and the session goes on; past MaxQueuedBytes a push gets
// 200 QueueFull, as a full channel's does, although its channel has room.
func TestServerWideCaps(t *testing.T) {
	clk := clock.NewFake(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	srv := startServer(t, server.Config{Clock: clk, MaxDevices: 2, MaxTotalChannels: 3, MaxQueuedBytes: 250})
	wsA, a := helloAs(t, srv, nil, "", "")
	wsB, _ := helloAs(t, srv, nil, "", "")
	if a.Type != wire.TypeWelcome {
		t.Fatalf("first device: %+v", a)
	}
	ws, f := helloAs(t, srv, nil, "", "")
	if f.Type != wire.TypeError || f.Code != wire.CodeServerFull {
		t.Fatalf("third device: %+v, want error %s", f, wire.CodeServerFull)
	}
	if ce := closeOf(t, ws); ce.Code != websocket.CloseTryAgainLater {
		t.Fatalf("third device closed with %d, want 1013", ce.Code)
	}
	var uri string
	for i, w := range []*websocket.Conn{wsA, wsA, wsB} {
		f := openApp(t, w, uint64(i+1), fmt.Sprint("com.example.cap", i))
		if f.Type != wire.TypeOpened {
			t.Fatalf("channel %d: %+v", i, f)
		}
		uri = f.URI
	}
	f = openApp(t, wsB, 9, "com.example.cap9")
	if f.Type != wire.TypeError || f.Code != wire.CodeServerFull || f.Re != 9 {
		t.Fatalf("fourth channel: %+v, want error %s", f, wire.CodeServerFull)
	}
	if f := openApp(t, wsB, 10, "com.example.cap2"); f.Type != wire.TypeOpened {
		t.Fatalf("the session did not go on after server_full: %+v", f)
	}
	body := bytes.Repeat([]byte("r"), 100)
	for i := range 2 {
		if a := post(t, "POST", uri, "", "", "", body); a.code != 200 || a.notif != "Received" {
			t.Fatalf("push %d: %+v", i, a)
		}
	}
	a3 := post(t, "POST", uri, "", "", "", body)
	if a3.code != 200 || a3.notif != "QueueFull" || a3.sub != "Active" || !strings.Contains(a3.reason, "all channels together") {
		t.Fatalf("push past the server's queued bytes: %+v, want 200 QueueFull Active with the reason", a3)
	}
	if got := metric(t, srv, `openmpns_global_limit_refusals_total{cap="queued_bytes"}`); got != 1 {
		t.Fatalf("queued_bytes refusals = %v, want 1", got)
	}
}

// A device offline for longer than InactiveAfter + InactiveGrace is
// deleted with its channels by the reaper: pushes to its Channel URI go
// from 412 Inactive to 404 Dropped/Expired, the metric counts it, and it
// stays deleted after a restart. A device connected all along is kept,
// however old its LastSeen.
func TestInactiveDevicesAreDeleted(t *testing.T) {
	clk := clock.NewFake(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	dir := t.TempDir()
	cfg := server.Config{Clock: clk, DataDir: dir, TempDisconnected: time.Hour, InactiveAfter: 2 * time.Hour,
		InactiveGrace: time.Hour, QueueTTL: time.Hour}
	srv := startServer(t, cfg)
	gone := newPhone(t, srv.URL(), "")
	goneURI := gone.openChannel(t, "com.example.gone", "", false, false).ChannelURI()
	stays := newPhone(t, srv.URL(), "")
	staysURI := stays.openChannel(t, "com.example.stays", "", false, false).ChannelURI()
	gone.Close()
	waitFor(t, func() bool {
		return post(t, "POST", goneURI, "", "", "", []byte("x")).conn == "TempDisconnected"
	})
	clk.Advance(2*time.Hour + time.Minute)
	if a := post(t, "POST", goneURI, "", "", "", []byte("x")); a.code != 412 || a.conn != "Inactive" {
		t.Fatalf("push to an Inactive device: %+v, want 412 Inactive", a)
	}
	clk.Advance(time.Hour) // past the grace: the reaper (every 15 min) deletes it
	// The reaper's round runs on its own; until it is done the device is
	// still there, Inactive.
	var a answer
	waitFor(t, func() bool {
		a = post(t, "POST", goneURI, "", "", "", []byte("x"))
		return a.code != 412
	})
	if !a.is(404, "Dropped", "Expired", "") {
		t.Fatalf("push to a deleted device's channel: %+v, want 404 Dropped/Expired", a)
	}
	if got := metric(t, srv, `openmpns_devices_deleted_total{reason="inactive"}`); got != 1 {
		t.Fatalf("openmpns_devices_deleted_total{inactive} = %v, want 1", got)
	}
	if a := post(t, "POST", staysURI, "", "", "", []byte("x")); !a.is(200, "Received", "Active", "Connected") {
		t.Fatalf("push to the device connected all along: %+v", a)
	}
	stays.Close()
	srv.Close()
	cfg.Listen = srv.Addr() // the same Channel URIs
	cfg.InactiveGrace = -1  // no reaper: what is gone was deleted from the file
	srv = startServer(t, cfg)
	if a := post(t, "POST", goneURI, "", "", "", []byte("x")); a.code != 404 {
		t.Fatalf("after a restart the deleted device's channel answers %+v, want 404", a)
	}
	if a := post(t, "POST", staysURI, "", "", "", []byte("x")); a.code != 200 {
		t.Fatalf("after a restart the kept device's channel answers %+v", a)
	}
}

// Revoking a device closes its connection (4003), refuses its identity
// token and deletes its channels: pushes to its old Channel URI get 404.
// The device runtime, refused, registers as a new device and its app gets
// a new Channel URI, which works.
func TestRevokedDeviceRegistersAgain(t *testing.T) {
	srv := startServer(t, server.Config{})
	p := newPhone(t, srv.URL(), "")
	old := p.openChannel(t, "com.example.revoked", "", true, false).ChannelURI()
	other := newPhone(t, srv.URL(), "")
	otherURI := other.openChannel(t, "com.example.other", "", true, false).ChannelURI()
	oldID := p.ID()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	n, err := srv.RevokeDevice(ctx, oldID)
	if err != nil || n != 1 {
		t.Fatalf("RevokeDevice = %d, %v; want 1 channel deleted", n, err)
	}
	if a := post(t, "POST", old, toastT, "", "", toastXML("to the revoked", "", "")); !a.is(404, "Dropped", "Expired", "") {
		t.Fatalf("push to the revoked device's Channel URI: %+v, want 404 Dropped/Expired", a)
	}
	uris := p.rec.waitN(t, 2, "uri")
	if got := uris[len(uris)-1].text; got == old {
		t.Fatal("the app kept its old Channel URI")
	}
	waitFor(t, func() bool { return p.ID() != "" && p.ID() != oldID })
	newURI := p.rec.of("uri")[len(p.rec.of("uri"))-1].text
	if a := post(t, "POST", newURI, toastT, "", "", toastXML("again", "", "")); a.code != 200 || a.notif != "Received" {
		t.Fatalf("push to the new Channel URI: %+v", a)
	}
	if a := post(t, "POST", otherURI, toastT, "", "", toastXML("bystander", "", "")); !a.is(200, "Received", "Active", "Connected") {
		t.Fatalf("another device was touched by the revocation: %+v", a)
	}
	if _, err := srv.RevokeDevice(ctx, oldID); err == nil || !strings.Contains(err.Error(), "no such device") {
		t.Fatalf("revoking again: %v, want no such device", err)
	}
}

// Rotating the server key invalidates every device token: devices
// registered before are deleted (their Channel URIs answer 404), connected
// ones are closed, and the device runtime registers again with a token of
// the new key.
func TestKeyRotationMakesDevicesRegisterAgain(t *testing.T) {
	srv := startServer(t, server.Config{})
	var phones []*phone
	var olds []string
	for i := range 2 {
		p := newPhone(t, srv.URL(), "")
		phones = append(phones, p)
		olds = append(olds, p.openChannel(t, fmt.Sprint("com.example.rot", i), "", true, false).ChannelURI())
	}
	oldIDs := []string{phones[0].ID(), phones[1].ID()}
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	k, err := srv.RotateKey(ctx)
	if err != nil || k.Devices != 2 || k.KeyID == "" {
		t.Fatalf("RotateKey = %+v, %v; want 2 devices deleted", k, err)
	}
	var wg sync.WaitGroup
	for i, p := range phones {
		if a := post(t, "POST", olds[i], toastT, "", "", toastXML("old", "", "")); a.code != 404 {
			t.Fatalf("push to a Channel URI of before the rotation: %+v, want 404", a)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.rec.waitN(t, 2, "uri")
		}()
	}
	wg.Wait()
	for i, p := range phones {
		waitFor(t, func() bool { return p.ID() != "" && p.ID() != oldIDs[i] })
		uris := p.rec.of("uri")
		if a := post(t, "POST", uris[len(uris)-1].text, toastT, "", "", toastXML("new", "", "")); a.code != 200 || a.notif != "Received" {
			t.Fatalf("phone %d: push to its new Channel URI: %+v", i, a)
		}
	}
}
