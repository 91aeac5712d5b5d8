package natsbackend

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/openmpns/openmpns/internal/natstest"
	"github.com/openmpns/openmpns/server/auth"
	"github.com/openmpns/openmpns/shared/clock"
)

// watchedRegistry is a Registry on node b's auth store that b's services
// watch reloads, as a running server's does (server.go): a reload that
// fails is left for the next call.
type watchedRegistry struct {
	reg     *auth.Registry
	changed chan struct{}
}

func watchRegistry(t *testing.T, b *Backend) *watchedRegistry {
	t.Helper()
	w := &watchedRegistry{reg: registryOn(t, b), changed: make(chan struct{}, 100)}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	if err := b.WatchServices(ctx, func() { w.changed <- struct{}{} }); err != nil {
		t.Fatal(err)
	}
	return w
}

func serviceNames(r *auth.Registry) []string {
	var names []string
	for _, s := range r.List() {
		names = append(names, s.Name)
	}
	return names
}

// await reloads the registry at each call of the watch until it serves
// exactly names; a failure after 20 s (never a pause).
func (w *watchedRegistry) await(t *testing.T, what string, names ...string) {
	t.Helper()
	deadline := time.NewTimer(20 * time.Second)
	defer deadline.Stop()
	var err error
	for {
		if slices.Equal(serviceNames(w.reg), names) {
			return
		}
		select {
		case <-w.changed:
			err = w.reg.Reload()
		case <-deadline.C:
			t.Fatalf("%s: the node serves %v (last reload: %v), want %v", what, serviceNames(w.reg), err, names)
		}
	}
}

func openNode(t *testing.T, url, id string, clk clock.Clock) *Backend {
	t.Helper()
	b, err := Open(context.Background(), Config{URLs: []string{url}, NodeID: id, Logger: quietLog(), Clock: clk,
		RequestTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// recreateAuthStream deletes the auth stream and registers names again
// through a new tool run (which makes the stream again, as `openmpns
// service --nats` does).
func recreateAuthStream(t *testing.T, url string, via *Backend, names ...string) {
	t.Helper()
	if err := via.js.DeleteStream(context.Background(), via.authKV.name()); err != nil {
		t.Fatal(err)
	}
	tool := openNode(t, url, "tool", nil)
	r := registryOn(t, tool)
	for _, n := range names {
		if _, err := r.Add(n); err != nil {
			t.Fatal(err)
		}
	}
	tool.Close()
}

// TestNodesFollowARecreatedAuthStream: an operator deletes the auth
// stream and registers the services again (`nats stream rm`, then
// `openmpns service add --nats`). The new stream numbers its messages
// from 1, below what the running nodes' watches delivered of the old one:
// a node kept waiting for that sequence (every read of the registry
// failed) and its watch resumed past the new stream's end (it heard of no
// change), until it restarted. Now both follow the new stream at once: a
// node that watches serves the new registry, one that only reads and
// writes does too.
func TestNodesFollowARecreatedAuthStream(t *testing.T) {
	s := runTestServer(t)
	a, b := openNode(t, s.ClientURL(), "a", nil), openNode(t, s.ClientURL(), "b", nil)
	wb := watchRegistry(t, b)
	ra := registryOn(t, a)
	for _, n := range []string{"mail", "news", "sports", "tv"} {
		if _, err := ra.Add(n); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := ra.RotateSecret("news"); err != nil {
		t.Fatal(err)
	}
	wb.await(t, "before the reset", "mail", "news", "sports", "tv")
	if ea, eb := a.authEpoch(), b.authEpoch(); ea != 1 || eb != 1 {
		t.Fatalf("before any reset the nodes follow epochs %d and %d, want 1: a stream taken for made again", ea, eb)
	}

	recreateAuthStream(t, s.ClientURL(), a, "weather")
	wb.await(t, "after the auth stream was made again", "weather")
	// Writes through either node go to the new stream.
	if _, err := wb.reg.AddKey("weather", publicKeyPEM(t)); err != nil {
		t.Fatalf("AddKey through node b after the reset: %v", err)
	}
	if _, err := registryOn(t, a).Add("radio"); err != nil {
		t.Fatalf("Add through node a after the reset: %v", err)
	}
	wb.await(t, "a service added through node a after the reset", "radio", "weather")
	if got := serviceNames(registryOn(t, a)); !slices.Equal(got, []string{"radio", "weather"}) {
		t.Fatalf("node a reads %v after the reset", got)
	}
}

// TestNodeFollowsAnAuthStreamMadeAgainWhileAway: the same reset while
// node b's connection to NATS is broken, so that b does not hear NATS
// announce the new stream: at the reconnect it reloads, finds the stream
// made at another time, and its watch begins again on it.
func TestNodeFollowsAnAuthStreamMadeAgainWhileAway(t *testing.T) {
	s := runTestServer(t)
	proxy := newHeldProxy(t, s.Addr().String())
	a, b := openNode(t, s.ClientURL(), "a", nil), openNode(t, "nats://"+proxy.addr(), "b", nil)
	wb := watchRegistry(t, b)
	ra := registryOn(t, a)
	for _, n := range []string{"mail", "news", "sports"} {
		if _, err := ra.Add(n); err != nil {
			t.Fatal(err)
		}
	}
	wb.await(t, "before the reset", "mail", "news", "sports")
	proxy.hold()
	recreateAuthStream(t, s.ClientURL(), a, "weather")
	proxy.breakConns() // what the server sent meanwhile is lost
	proxy.release()
	wb.await(t, "after a reconnect past the reset", "weather")
	// b's watch is on the new stream: it hears the next change.
	if _, err := ra.Add("radio"); err != nil {
		t.Fatal(err)
	}
	wb.await(t, "a change after the reset", "radio", "weather")
}

// TestAuthStreamGoneBackIsFollowed: a stream restored from a backup keeps
// its original's creation time, and may be behind what a watch delivered.
// A node that heard NATS announce the restore starts over with it; one
// that did not takes a leader behind for authRegressAfter (no leader lags
// that long) for a stream that went back, and starts over too, instead of
// failing every read until it restarts. Before that, reads wait.
func TestAuthStreamGoneBackIsFollowed(t *testing.T) {
	s := runTestServer(t)
	clk := clock.NewFake(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	b := openNode(t, s.ClientURL(), "b", clk)
	b.stopSweeper()
	w := &servicesWatch{b: b, kick: make(chan struct{}, 1), restart: make(chan struct{}, 1)}
	b.addWatch(w)
	defer b.dropWatch(w)
	info, err := b.authKV.stream.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	epoch := b.authEpoch()
	b.sawAuth(epoch, info.State.LastSeq+5) // delivered before the stream went back
	if b.authCaughtUp(info) {
		t.Fatal("a leader behind what the watch delivered reads as caught up")
	}
	clk.Advance(authRegressAfter - time.Second)
	if b.authCaughtUp(info) {
		t.Fatal("a leader behind for less than authRegressAfter reads as caught up")
	}
	select {
	case <-w.restart:
		t.Fatal("the watch was begun again while the leader only lagged")
	default:
	}
	clk.Advance(time.Second)
	if !b.authCaughtUp(info) {
		t.Fatalf("a leader behind for authRegressAfter: the node still waits")
	}
	if b.authEpoch() == epoch || b.authSeen() != info.State.LastSeq {
		t.Fatalf("epoch %d (was %d), seen %d: want a new epoch from the stream's last sequence %d", b.authEpoch(), epoch, b.authSeen(), info.State.LastSeq)
	}
	select {
	case <-w.restart:
	default:
		t.Fatal("the node follows the stream that went back, but its watch was not begun again")
	}
	// A delivery of the old epoch counts no more.
	b.sawAuth(epoch, info.State.LastSeq+5)
	if !b.authCaughtUp(info) {
		t.Fatal("a delivery of the consumer begun before the stream went back counts")
	}

	// The restore announced: the next read starts over, the watch begins again.
	b.sawAuth(b.authEpoch(), info.State.LastSeq+5)
	epoch = b.authEpoch()
	b.authStreamMadeAgain(nil)
	select {
	case <-w.restart:
	default:
		t.Fatal("NATS announced the stream made again, and the watch was not begun again")
	}
	if !b.authCaughtUp(info) || b.authEpoch() == epoch {
		t.Fatal("NATS announced the stream made again, and the node did not start over with it")
	}
}

// TestNodesFollowARecreatedAuthStreamInACluster: the reset on a 3-server
// cluster, the stream replicated thrice (its creation time is the
// cluster's record of it, the same from every server): no node takes the
// stream for made again before, node b serves the new registry after.
func TestNodesFollowARecreatedAuthStreamInACluster(t *testing.T) {
	if testing.Short() {
		t.Skip("a 3-server cluster: not in -short")
	}
	c := natstest.RunCluster(t, 3)
	var nodes []*Backend
	for i := range 2 {
		b, err := Open(context.Background(), Config{URLs: []string{c.URL(i)}, Replicas: 3, NodeID: fmt.Sprint("node", i),
			Logger: quietLog(), RequestTimeout: 10 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { b.Close() })
		nodes = append(nodes, b)
	}
	wb := watchRegistry(t, nodes[1])
	ra := registryOn(t, nodes[0])
	for _, n := range []string{"mail", "news"} {
		if _, err := ra.Add(n); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := ra.AddKey("news", publicKeyPEM(t)); err != nil {
		t.Fatal(err)
	}
	wb.await(t, "before the reset", "mail", "news")
	if ea, eb := nodes[0].authEpoch(), nodes[1].authEpoch(); ea != 1 || eb != 1 {
		t.Fatalf("before any reset the nodes follow epochs %d and %d, want 1: a stream taken for made again", ea, eb)
	}
	recreateAuthStream(t, c.URL(2), nodes[0], "weather")
	wb.await(t, "after the auth stream was made again", "weather")
	if _, err := registryOn(t, nodes[0]).Add("radio"); err != nil {
		t.Fatalf("Add through node a after the reset: %v", err)
	}
	wb.await(t, "a service added through node a after the reset", "radio", "weather")
}
