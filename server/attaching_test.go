package server

import (
	"encoding/json"
	"io"
	"log/slog"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/openmpns/openmpns/server/store"
	"github.com/openmpns/openmpns/shared/wire"
)

// A reconnect storm past MaxAttaching: the hello beyond the bound is
// refused (server_full, close 1013) once it has waited attachWait (here
// none) while the first is still being attached, rather than queued behind
// it until the device gives up.
func TestHellosPastMaxAttachingAreRefusedAtOnce(t *testing.T) {
	emb, err := store.Open(filepath.Join(t.TempDir(), "db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	g := &gated{Embedded: emb}
	srv, err := New(Config{Listen: "127.0.0.1:0", DataDir: t.TempDir(), Backend: g, MaxAttaching: 1,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	srv.gw.attachWait = 0 // refused at once rather than after the wait
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	dial := func() *websocket.Conn {
		ws, _, err := websocket.DefaultDialer.Dial("ws://"+srv.Addr()+"/ws", nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ws.Close() })
		b, _ := json.Marshal(&wire.Frame{Type: wire.TypeHello, ID: 1, Version: wire.ProtocolVersion})
		if err := ws.WriteMessage(websocket.TextMessage, b); err != nil {
			t.Fatal(err)
		}
		return ws
	}
	read := func(ws *websocket.Conn) (*wire.Frame, error) {
		_, b, err := ws.ReadMessage()
		if err != nil {
			return nil, err
		}
		var f wire.Frame
		if err := json.Unmarshal(b, &f); err != nil {
			t.Fatal(err)
		}
		return &f, nil
	}

	release, inside := g.hold(&g.claim)
	first := dial()
	<-inside // the first hello is being attached, and holds the only place

	second := dial()
	f, err := read(second)
	if err != nil || f.Type != wire.TypeError || f.Code != wire.CodeServerFull {
		t.Fatalf("second hello: %+v, %v; want error %s", f, err, wire.CodeServerFull)
	}
	if _, err := read(second); !websocket.IsCloseError(err, websocket.CloseTryAgainLater) {
		t.Fatalf("second connection ended with %v; want close 1013", err)
	}
	if n := counterValue(t, srv, "openmpns_global_limit_refusals_total", "attaching"); n != 1 {
		t.Fatalf("refusals counted: %v, want 1", n)
	}

	release()
	if f, err := read(first); err != nil || f.Type != wire.TypeWelcome {
		t.Fatalf("first hello: %+v, %v; want welcome", f, err)
	}
	// Its place is free again once its attach is done, which ends after
	// the welcome is written (queued notifications follow the welcome).
	for deadline := time.Now().Add(20 * time.Second); len(srv.gw.attachSlots) > 0; runtime.Gosched() {
		if time.Now().After(deadline) {
			t.Fatal("the first hello still holds its place")
		}
	}
	third := dial()
	if f, err := read(third); err != nil || f.Type != wire.TypeWelcome {
		t.Fatalf("third hello: %+v, %v; want welcome", f, err)
	}
}

// counterValue reads a counter of the server's registry by name and label
// value.
func counterValue(t *testing.T, srv *Server, name, label string) float64 {
	t.Helper()
	mfs, err := srv.met.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetValue() == label {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}
