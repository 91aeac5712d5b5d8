package natsbackend_test

import (
	"context"
	"errors"
	"github.com/openmpns/openmpns/internal/natstest"
	"testing"
	"time"

	"github.com/openmpns/openmpns/server/auth"
	"github.com/openmpns/openmpns/server/backend"
	"github.com/openmpns/openmpns/server/natsbackend"
)

// A node hears of every change another node makes to the services, and
// nodes starting together agree on one server key.
func TestWatchServicesAndSharedKey(t *testing.T) {
	s := natstest.RunServer(t)
	nodes := twoNodes([]string{s.ClientURL(), s.ClientURL()}, 1)(t)
	a, b := nodes[0].(*natsbackend.Backend), nodes[1].(*natsbackend.Backend)
	changed := make(chan struct{}, 10)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := b.WatchServices(ctx, func() { changed <- struct{}{} }); err != nil {
		t.Fatal(err)
	}
	if err := a.Services().CreateService(auth.Service{Name: "news", ClientID: "svc_1", Created: time.Now()}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-changed:
	case <-time.After(20 * time.Second):
		t.Fatal("node b was not told of the service node a stored")
	}
	svcs, err := b.Services().Services()
	if err != nil || len(svcs) != 1 || svcs[0].Name != "news" {
		t.Fatalf("node b reads %v %v", svcs, err)
	}
	ka, kb := auth.ServerKey{ID: "a", Seed: make([]byte, 32)}, auth.ServerKey{ID: "b", Seed: make([]byte, 32)}
	got1, err := a.Services().(auth.KeyCreator).CreateServerKey(ka)
	if err != nil {
		t.Fatal(err)
	}
	got2, err := b.Services().(auth.KeyCreator).CreateServerKey(kb)
	if err != nil {
		t.Fatal(err)
	}
	if got1.ID != "a" || got2.ID != "a" {
		t.Fatalf("keys %q and %q, want both a", got1.ID, got2.ID)
	}
	if err := a.Health(context.Background()); err != nil {
		t.Fatalf("Health: %v", err)
	}
	a.Close()
	if err := a.Health(context.Background()); !errors.Is(err, backend.ErrClosed) {
		t.Fatalf("Health after Close: %v", err)
	}
}

// A node that dies (stops beating without releasing its devices) does not
// leave them Connected: after NodeTTL the others read them as offline since
// its last heartbeat, and hand nothing to it.
func TestDeadNodesDevicesReadOffline(t *testing.T) {
	s := natstest.RunServer(t)
	prefix := newPrefix()
	t.Cleanup(func() { natstest.DeleteStreams(t, s.ClientURL(), prefix) })
	node := func(id string) *natsbackend.Backend {
		return open(t, natsbackend.Config{URLs: []string{s.ClientURL()}, Prefix: prefix, NodeID: id,
			NodeTTL: 400 * time.Millisecond, RequestTimeout: 5 * time.Second})
	}
	a, b := node("a"), node("b")
	ctx := context.Background()
	if _, err := a.PutDevice(ctx, backend.Device{ID: "d"}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Claim(ctx, "d", time.Now()); err != nil {
		t.Fatal(err)
	}
	if p, _, err := a.Presence(ctx, "d"); err != nil || !p.Connected {
		t.Fatalf("while node b beats: %+v %v", p, err)
	}
	died := time.Now()
	b.Close() // a crash: no Release
	deadline := time.Now().Add(20 * time.Second)
	for {
		p, ok, err := a.Presence(ctx, "d")
		if err != nil || !ok {
			t.Fatalf("presence: %v %v", ok, err)
		}
		if !p.Connected {
			if p.Since.After(died) || died.Sub(p.Since) > time.Second {
				t.Fatalf("offline since %v; node b died at %v, beating every 100ms", p.Since, died)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the device of a dead node still reads Connected")
		}
		time.Sleep(50 * time.Millisecond) // polling a condition with no event to wait on
	}
	n := &backend.Notification{DeviceID: "d", Channel: "c", Kind: "raw", ExpiresAt: time.Now().Add(time.Hour)}
	if p, ok, err := a.Hand(ctx, n, 0); err != nil || !ok || p.Connected {
		t.Fatalf("Hand to a dead node's device: %+v %v %v", p, ok, err)
	}
}
