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
	if err := a.Services().PutService(auth.Service{Name: "news", ClientID: "svc_1", Created: time.Now()}); err != nil {
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
