package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gorilla/websocket"

	"github.com/openmpns/openmpns/server"
	"github.com/openmpns/openmpns/server/store"
	"github.com/openmpns/openmpns/shared/wire"
)

func runIdentityCmd(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := RunContext(context.Background(), append([]string{"identity"}, args...), nil, &out, &errb)
	return code, out.String(), errb.String()
}

// registerDevice says hello to srv as a new device and opens one channel;
// it returns the device id and the connection.
func registerDevice(t *testing.T, srv *server.Server) (string, *websocket.Conn) {
	t.Helper()
	ws, _, err := websocket.DefaultDialer.Dial("ws://"+srv.Addr()+"/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ws.Close() })
	send := func(f *wire.Frame) *wire.Frame {
		b, _ := wire.Encode(f)
		if err := ws.WriteMessage(websocket.TextMessage, b); err != nil {
			t.Fatal(err)
		}
		_, b, err := ws.ReadMessage()
		if err != nil {
			t.Fatal(err)
		}
		r, err := wire.Decode(b)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	w := send(&wire.Frame{Type: wire.TypeHello, Version: wire.ProtocolVersion})
	if o := send(&wire.Frame{Type: wire.TypeOpen, ID: 1, App: "com.example.cli", Channel: "main"}); o.Type != wire.TypeOpened {
		t.Fatalf("open: %+v", o)
	}
	return w.DeviceID, ws
}

// identity revoke and rotate-key on a running server (its admin socket):
// the revoked device's connection is closed with 4003 and it is gone.
func TestIdentityCommandsOnARunningServer(t *testing.T) {
	dir := t.TempDir()
	srv, err := server.New(server.Config{Listen: "127.0.0.1:0", DataDir: dir, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	id, ws := registerDevice(t, srv)
	code, out, errs := runIdentityCmd("revoke", id, "--data", dir, "--json")
	var r server.RevokedDevice
	if err := json.Unmarshal([]byte(out), &r); code != 0 || err != nil || r.Device != id || r.Channels != 1 {
		t.Fatalf("revoke: %d %q %q", code, out, errs)
	}
	if !strings.Contains(errs, "running server") {
		t.Fatalf("the command did not say it used the running server: %q", errs)
	}
	for {
		_, _, err := ws.ReadMessage()
		if err != nil {
			if ce, ok := err.(*websocket.CloseError); !ok || ce.Code != wire.CloseUnauthorized || ce.Text != "device revoked" {
				t.Fatalf("the revoked device's connection ended with %v, want 4003 device revoked", err)
			}
			break
		}
	}
	if code, _, errs := runIdentityCmd("revoke", id, "--data", dir); code != 1 || !strings.Contains(errs, "no such device") {
		t.Fatalf("revoke twice: %d %q", code, errs)
	}
	registerDevice(t, srv)
	code, out, errs = runIdentityCmd("rotate-key", "--data", dir)
	if code != 0 || !strings.Contains(out, "1 devices registered before were deleted") {
		t.Fatalf("rotate-key: %d %q %q", code, out, errs)
	}
	if code, _, _ := runIdentityCmd("frobnicate", "--data", dir); code != 2 {
		t.Fatalf("unknown verb: exit %d, want 2", code)
	}
	if code, out, _ := runIdentityCmd("--help"); code != 0 || !strings.Contains(out, "rotate-key") {
		t.Fatalf("--help: %d %q", code, out)
	}
}

// On a stopped server the commands change the data file: the device and
// its channels are gone when the server starts again, and the key changed.
func TestIdentityCommandsOnAStoppedServer(t *testing.T) {
	dir := t.TempDir()
	srv, err := server.New(server.Config{Listen: "127.0.0.1:0", DataDir: dir, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	gone, _ := registerDevice(t, srv)
	kept, _ := registerDevice(t, srv)
	srv.Close()
	code, out, errs := runIdentityCmd("revoke", gone, "--data", dir)
	if code != 0 || !strings.Contains(out, "revoked device "+gone) || !strings.Contains(errs, "changing the data file") {
		t.Fatalf("revoke on a stopped server: %d %q %q", code, out, errs)
	}
	be, err := store.Open(filepath.Join(dir, server.DBFile), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	st, _ := be.Stats(context.Background())
	if _, err := be.Device(context.Background(), kept); err != nil || st.Devices != 1 || st.Channels != 1 {
		t.Fatalf("after revoke: stats %+v, kept device: %v", st, err)
	}
	k1, _, _ := be.Services().ServerKey()
	be.Close()
	code, out, errs = runIdentityCmd("rotate-key", "--data", dir, "--json")
	var k server.KeyRotation
	if err := json.Unmarshal([]byte(out), &k); code != 0 || err != nil || k.Devices != 1 || k.KeyID == k1.ID {
		t.Fatalf("rotate-key on a stopped server: %d %q %q (old kid %s)", code, out, errs, k1.ID)
	}
}
