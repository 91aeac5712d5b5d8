package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/openmpns/openmpns/server/backend"
	"github.com/openmpns/openmpns/server/store"
	"github.com/openmpns/openmpns/shared/wire"
)

// A new device whose session is closed (the server shutting down) while
// its claim is being written was created with an identity: it hears
// welcome, with its token, before the goaway and the close (a new device
// is welcomed before its claim; a known one after it), and welcome is the
// first frame it reads, as docs/protocol.md promises an answer to hello.
func TestANewDeviceClosedWhileClaimingStillGetsItsIdentity(t *testing.T) {
	g := &gated{Embedded: openEmbedded(t)}
	srv := startServer(t, Config{Backend: g})
	release, inside := g.hold(&g.claim)
	ws, _ := dialHello(t, srv, "", "")
	defer ws.Close()
	<-inside // the device exists; its claim is being written
	// What Shutdown's kickAll does to the session (kickAll itself would
	// wait for the session, which waits for the claim):
	srv.gw.mu.Lock()
	for s := range srv.gw.sessions {
		s.kickGoingAway(websocket.CloseGoingAway, "server shutting down")
	}
	srv.gw.mu.Unlock()
	release()
	ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	var got []string
	for {
		_, m, err := ws.ReadMessage()
		if err != nil {
			break
		}
		var f wire.Frame
		json.Unmarshal(m, &f)
		got = append(got, f.Type)
		if f.Type == wire.TypeWelcome && f.DeviceToken != "" {
			return
		}
	}
	t.Fatalf("the new device read %v and no welcome with its token", got)
}

// failingClaims is a backend whose claims fail.
type failingClaims struct{ *store.Embedded }

func (failingClaims) Claim(context.Context, string, time.Time) (uint64, error) {
	return 0, errors.New("claims fail here")
}

// When the device's claim fails, a new device still hears its identity
// (welcome with its token) before the error and the close 1013; a known
// device hears no welcome, only the error and the close.
func TestAFailedClaimWelcomesOnlyANewDevice(t *testing.T) {
	srv := startServer(t, Config{Backend: failingClaims{openEmbedded(t)}})
	hello := func(id, token string) ([]wire.Frame, error) { return helloAndRead(t, srv, id, token, nil) }
	frames, err := hello("", "")
	if len(frames) != 2 || frames[0].Type != wire.TypeWelcome || frames[0].DeviceToken == "" ||
		frames[1].Type != wire.TypeError || frames[1].Code != wire.CodeInternal || !websocket.IsCloseError(err, websocket.CloseTryAgainLater) {
		t.Fatalf("a new device read %+v, then %v", frames, err)
	}
	frames, err = hello(frames[0].DeviceID, frames[0].DeviceToken)
	if len(frames) != 1 || frames[0].Type != wire.TypeError || frames[0].Code != wire.CodeInternal || !websocket.IsCloseError(err, websocket.CloseTryAgainLater) {
		t.Fatalf("a known device read %+v, then %v", frames, err)
	}
}

// openEmbedded opens a store in the test's directory, closed when it ends.
func openEmbedded(t *testing.T) *store.Embedded {
	t.Helper()
	emb, err := store.Open(filepath.Join(t.TempDir(), "db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { emb.Close() })
	return emb
}

// startServer starts a server with cfg, closed when the test ends: on a
// loopback port, in a directory of the test's and logging nothing unless
// cfg says otherwise.
func startServer(tb testing.TB, cfg Config) *Server {
	tb.Helper()
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:0"
	}
	if cfg.DataDir == "" {
		cfg.DataDir = tb.TempDir()
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	srv, err := New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { srv.Close() })
	return srv
}

// failingPuts is a backend whose device writes fail, saying where.
type failingPuts struct{ *store.Embedded }

func (failingPuts) PutDevice(context.Context, store.Device) (store.Device, error) {
	return store.Device{}, errors.New("write /var/lib/openmpns/secret-path: no space left on device")
}

// A hello the store fails is answered "internal error" with close 1011:
// the store's own words (paths, addresses) are logged, not told to
// whoever connected.
func TestAStoreErrorAtHelloIsNotToldToTheDevice(t *testing.T) {
	var logged syncBuffer
	srv := startServer(t, Config{Backend: failingPuts{openEmbedded(t)}, Logger: slog.New(slog.NewTextHandler(&logged, nil))})
	ws, _ := dialHello(t, srv, "", "")
	defer ws.Close()
	ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, m, err := ws.ReadMessage()
	if err != nil {
		t.Fatal(err)
	}
	var f wire.Frame
	json.Unmarshal(m, &f)
	if f.Type != wire.TypeError || f.Code != wire.CodeInternal || f.Message != "internal error; retry later" {
		t.Fatalf("the device read %s, want an internal error that says nothing more", m)
	}
	if _, _, err := ws.ReadMessage(); !websocket.IsCloseError(err, websocket.CloseInternalServerErr) {
		t.Fatalf("then %v, want close 1011", err)
	}
	if !strings.Contains(logged.String(), "secret-path") {
		t.Fatalf("the store's error was not logged:\n%s", logged.String())
	}
}

// A burst of pings in one write (before hello, as a stranger may) queues
// one pong for the latest, not one each: the device is reading, and is not
// closed as a slow consumer (4008) for the server's own backlog.
func TestABurstOfPingsQueuesOnePong(t *testing.T) {
	srv := startServer(t, Config{})
	ws, _, err := websocket.DefaultDialer.Dial("ws://"+srv.Addr()+"/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	var pongs []string
	ws.SetPongHandler(func(data string) error { pongs = append(pongs, data); return nil })
	var burst []byte
	for i := range 1000 {
		burst = append(burst, clientFrame(true, websocket.PingMessage, []byte(strconv.Itoa(i)))...)
	}
	if _, err := ws.NetConn().Write(burst); err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(&wire.Frame{Type: wire.TypeHello, Version: wire.ProtocolVersion})
	if err := ws.WriteMessage(websocket.TextMessage, b); err != nil {
		t.Fatal(err)
	}
	ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		_, m, err := ws.ReadMessage()
		if err != nil {
			t.Fatalf("after %d pongs: %v, want welcome", len(pongs), err)
		}
		var f wire.Frame
		json.Unmarshal(m, &f)
		if f.Type == wire.TypeWelcome {
			break
		}
	}
	if len(pongs) == 0 || len(pongs) > 1000 || pongs[len(pongs)-1] != "999" {
		t.Fatalf("pongs %q…, want at least one, the last answering the last ping", pongs[:min(len(pongs), 5)])
	}
}

// A device's close is echoed with its code; a code a device may not send
// fails the connection with 1002, a reason not in UTF-8 with 1007 (RFC
// 6455 sections 5.5.1, 7.4.1 and 8.1).
func TestADevicesCloseIsEchoedWhenValid(t *testing.T) {
	srv := startServer(t, Config{})
	tests := []struct {
		payload []byte
		want    int
	}{
		{[]byte{0x03, 0xE8}, 1000},
		{[]byte{0x03, 0xE9, 'b', 'y', 'e'}, 1001},
		{[]byte{0x0F, 0xA0}, 4000},
		{[]byte{0x03, 0xED}, 1002},       // 1005 is for "no code"; never sent
		{[]byte{0x03, 0xE7}, 1002},       // 999
		{[]byte{0x13, 0x88}, 1002},       // 5000
		{[]byte{0x03, 0xE8, 0xFF}, 1007}, // a reason not in UTF-8
	}
	for _, tt := range tests {
		ws, _, err := websocket.DefaultDialer.Dial("ws://"+srv.Addr()+"/ws", nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ws.NetConn().Write(clientFrame(true, websocket.CloseMessage, tt.payload)); err != nil {
			t.Fatal(err)
		}
		ws.SetReadDeadline(time.Now().Add(10 * time.Second))
		// Only the close: a goaway frame is for a server going away, not
		// for a device that leaves with 1001.
		_, m, err := ws.ReadMessage()
		if !websocket.IsCloseError(err, tt.want) {
			t.Errorf("close % x: %q, %v, want close %d", tt.payload, m, err, tt.want)
		}
		ws.Close()
	}
}

// A text message not in UTF-8 is refused with bad_frame and close 1007;
// a character split across two fragments is read whole.
func TestTextMessagesMustBeUTF8(t *testing.T) {
	srv := startServer(t, Config{})
	hello := func(t *testing.T, frames ...[]byte) (got []wire.Frame, err error) {
		ws, _, err := websocket.DefaultDialer.Dial("ws://"+srv.Addr()+"/ws", nil)
		if err != nil {
			t.Fatal(err)
		}
		defer ws.Close()
		for _, f := range frames {
			if _, err := ws.NetConn().Write(f); err != nil {
				t.Fatal(err)
			}
		}
		ws.SetReadDeadline(time.Now().Add(10 * time.Second))
		for {
			_, m, err := ws.ReadMessage()
			if err != nil {
				return got, err
			}
			var f wire.Frame
			json.Unmarshal(m, &f)
			if got = append(got, f); f.Type == wire.TypeWelcome {
				return got, nil
			}
		}
	}
	bad := []byte(`{"type":"hello","version":1,"client":"` + "\xff\xfe" + `"}`)
	got, err := hello(t, clientFrame(true, websocket.TextMessage, bad))
	if len(got) != 1 || got[0].Code != wire.CodeBadFrame || !websocket.IsCloseError(err, websocket.CloseInvalidFramePayloadData) {
		t.Fatalf("hello not in UTF-8: %+v, %v; want bad_frame and close 1007", got, err)
	}
	good := []byte(`{"type":"hello","version":1,"client":"caf` + "\u00e9" + `"}`)
	cut := bytes.IndexByte(good, 0xC3) + 1                                                                       // inside "é"
	got, err = hello(t, clientFrame(false, websocket.TextMessage, good[:cut]), clientFrame(true, 0, good[cut:])) // the second: a continuation frame
	if err != nil || got[len(got)-1].Type != wire.TypeWelcome {
		t.Fatalf("hello with a character across fragments: %+v, %v; want welcome", got, err)
	}
}

// deletingClaims is a backend on which, once armed, a device is deleted
// just before its claim: as when the reaper, having read it offline for
// good, deletes it between its hello and its claim.
type deletingClaims struct {
	*store.Embedded
	armed atomic.Bool
}

func (b *deletingClaims) Claim(ctx context.Context, id string, now time.Time) (uint64, error) {
	for b.armed.Load() {
		d, err := b.Embedded.Device(ctx, id)
		if err != nil {
			return 0, err
		}
		// Again on a newer revision: the device's last connection may
		// still be writing its record as it goes.
		if err := b.Embedded.DeleteDevice(ctx, d); !errors.Is(err, backend.ErrConflict) {
			if err != nil {
				return 0, err
			}
			break
		}
	}
	return b.Embedded.Claim(ctx, id, now)
}

// A device deleted while it attaches is closed 4003, as a revoked one:
// it does not stay connected under an identity that no longer exists,
// whose pushes would all get 404.
func TestADeviceDeletedWhileAttachingIsRefused(t *testing.T) {
	be := &deletingClaims{Embedded: openEmbedded(t)}
	var logged syncBuffer
	srv := startServer(t, Config{Backend: be, Logger: slog.New(slog.NewTextHandler(&logged, nil))})
	hello := func(id, token string) ([]wire.Frame, error) {
		return helloAndRead(t, srv, id, token, func(ws *websocket.Conn, hello []byte, f wire.Frame) bool {
			if id != "" {
				return false
			}
			if f.Type == wire.TypeWelcome {
				// The new device is welcomed before it attaches; a
				// second hello is answered once the first is done.
				if err := ws.WriteMessage(websocket.TextMessage, hello); err != nil {
					t.Fatal(err)
				}
			}
			return f.Type == wire.TypeError && f.Code == wire.CodeBadFrame // registered, and attached
		})
	}
	frames, _ := hello("", "")
	if len(frames) == 0 || frames[0].DeviceToken == "" {
		t.Fatalf("registering: %+v", frames)
	}
	be.armed.Store(true)
	_, err := hello(frames[0].DeviceID, frames[0].DeviceToken)
	if !websocket.IsCloseError(err, wire.CloseUnauthorized) {
		t.Fatalf("the deleted device's connection: %v, want close %d\n%s", err, wire.CloseUnauthorized, logged.String())
	}
}

// slowPuts is a backend whose device writes wait until released.
type slowPuts struct {
	*store.Embedded
	entered chan struct{}
	release chan struct{}
}

func (b slowPuts) PutDevice(ctx context.Context, d store.Device) (store.Device, error) {
	b.entered <- struct{}{}
	<-b.release
	return b.Embedded.PutDevice(ctx, d)
}

// A hello that came in time is answered however long its answer takes
// (an attach slot, a slow backend): the hello deadline ends when it is
// taken, and the new device gets its identity rather than a close 1008.
func TestAHelloInTimeIsAnsweredHoweverLongItTakes(t *testing.T) {
	for _, readers := range []bool{false, true} {
		be := slowPuts{Embedded: openEmbedded(t), entered: make(chan struct{}, 1), release: make(chan struct{})}
		const helloTimeout = 100 * time.Millisecond
		srv := startServer(t, Config{Backend: be, HelloTimeout: helloTimeout, ReaderGoroutines: readers})
		ws, _, err := websocket.DefaultDialer.Dial("ws://"+srv.Addr()+"/ws", nil)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(&wire.Frame{Type: wire.TypeHello, Version: wire.ProtocolVersion})
		if err := ws.WriteMessage(websocket.TextMessage, b); err != nil {
			t.Fatal(err)
		}
		<-be.entered
		time.Sleep(3 * helloTimeout) // the hello deadline passes while the device is written
		close(be.release)
		ws.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, m, err := ws.ReadMessage()
		var f wire.Frame
		json.Unmarshal(m, &f)
		if err != nil || f.Type != wire.TypeWelcome || f.DeviceToken == "" {
			t.Fatalf("readers %v: read %s, %v; want welcome with the new identity", readers, m, err)
		}
		ws.Close()
	}
}

// helloAndRead dials srv's gateway, says hello as device id (a new device
// when id is empty), and reads frames until the connection ends (its
// error is returned) or each, given every frame read, says to stop.
func helloAndRead(t *testing.T, srv *Server, id, token string, each func(ws *websocket.Conn, hello []byte, f wire.Frame) (stop bool)) ([]wire.Frame, error) {
	t.Helper()
	ws, b := dialHello(t, srv, id, token)
	defer ws.Close()
	ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	var frames []wire.Frame
	for {
		_, m, err := ws.ReadMessage()
		if err != nil {
			return frames, err
		}
		var f wire.Frame
		json.Unmarshal(m, &f)
		frames = append(frames, f)
		if each != nil && each(ws, b, f) {
			return frames, nil
		}
	}
}

// dialHello connects a device to srv and sends its hello (a new device
// with id and token ""); it returns the connection and the hello.
func dialHello(t *testing.T, srv *Server, id, token string) (*websocket.Conn, []byte) {
	t.Helper()
	ws, _, err := websocket.DefaultDialer.Dial("ws://"+srv.Addr()+"/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(&wire.Frame{Type: wire.TypeHello, Version: wire.ProtocolVersion, DeviceID: id, DeviceToken: token})
	if err := ws.WriteMessage(websocket.TextMessage, b); err != nil {
		ws.Close()
		t.Fatal(err)
	}
	return ws, b
}
