package natsbackend

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/openmpns/openmpns/server/backend"
	"github.com/openmpns/openmpns/shared/clock"
)

// recInbox records what a node's Inbox is told.
type recInbox struct {
	delivered chan uint64
	resynced  chan struct{}
}

func newRecInbox() *recInbox {
	return &recInbox{delivered: make(chan uint64, 64), resynced: make(chan struct{}, 64)}
}
func (r *recInbox) Deliver(_ string, n *backend.Notification, _ uint64) { r.delivered <- n.Seq }
func (r *recInbox) TakenOver(string, uint64)                            {}
func (r *recInbox) Resync()                                             { r.resynced <- struct{}{} }

// hasView reports whether b holds a view of the channel (the caches a
// resync clears).
func hasView(b *Backend, dev, ch string) bool {
	b.views.mu.Lock()
	defer b.views.mu.Unlock()
	return b.views.m[viewKey{dev, ch}] != nil
}

// TestHeartbeatLapseResyncs: a node whose beat succeeds more than NodeTTL
// after its previous success (on its own clock: a stall, beats refused
// meanwhile) may have been read as down by the others, which then handed
// it nothing; it clears its caches and its devices read their queues
// again, as after a reconnect. Beats on time resync nothing, and a beat
// that fails is no success to measure from.
func TestHeartbeatLapseResyncs(t *testing.T) {
	s := runTestServer(t)
	ctx := context.Background()
	fake := clock.NewFake(time.Unix(1_000_000_000, 0))
	const ttl = time.Hour // of the fake clock; no real tick comes
	b, err := Open(ctx, Config{URLs: []string{s.ClientURL()}, Prefix: "t", Replicas: 1, NodeID: "b",
		NodeTTL: ttl, Clock: fake, Logger: quietLog()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	in := newRecInbox()
	b.Listen(in)
	appendNote(t, b, "dev", "ch") // a view of the channel, which a resync clears
	fake.Advance(ttl / 4)         // a beat on time (run within Advance)
	fake.Advance(ttl / 4)
	if !hasView(b, "dev", "ch") || len(in.resynced) != 0 {
		t.Fatalf("beats on time resynced (view kept: %v, resyncs %d)", hasView(b, "dev", "ch"), len(in.resynced))
	}

	// The beats stop (a stall), and one fails when they come back.
	b.stopHeartbeat()
	fake.Advance(ttl)
	failed, cancel := context.WithCancel(ctx)
	cancel()
	b.live.beatMu.Lock()
	lapsed, err := b.heartbeat(failed)
	b.live.beatMu.Unlock()
	if err == nil || lapsed {
		t.Fatalf("a beat with its context done: lapsed %v, err %v; want an error", lapsed, err)
	}
	if !hasView(b, "dev", "ch") {
		t.Fatal("a failed beat resynced")
	}
	fake.Advance(time.Minute)
	if err := b.startHeartbeat(ctx); err != nil {
		t.Fatal(err)
	}
	if hasView(b, "dev", "ch") {
		t.Fatal("the first beat that succeeded more than NodeTTL after the previous success kept the caches")
	}
	select {
	case <-in.resynced:
	case <-time.After(10 * time.Second): // a failure, never a pause
		t.Fatal("the first beat that succeeded more than NodeTTL after the previous success did not resync the devices")
	}

	// Back on time: nothing more.
	appendNote(t, b, "dev", "ch")
	fake.Advance(ttl / 4)
	if !hasView(b, "dev", "ch") {
		t.Fatal("a beat on time after a lapse resynced again")
	}
}

// TestHeartbeatLapseWithoutReconnectResyncs: a node whose beats lapse
// while its connection to NATS stays up is read as down by the other
// nodes, which stop handing it notifications for the devices it still
// holds; once it beats again it resyncs, so its connected devices get
// what was pushed meanwhile (before: only when they reconnected, or never,
// past the notifications' TTL).
func TestHeartbeatLapseWithoutReconnectResyncs(t *testing.T) {
	s := runTestServer(t)
	ctx := context.Background()
	fake := clock.NewFake(time.Unix(1_000_000_000, 0))
	var nodes []*Backend
	var ins []*recInbox
	for _, id := range []string{"a", "b"} {
		cfg := Config{URLs: []string{s.ClientURL()}, Prefix: "t", Replicas: 1, NodeID: id, NodeTTL: time.Hour, Logger: quietLog()}
		if id == "b" {
			cfg.Clock = fake
		}
		b, err := Open(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { b.Close() })
		in := newRecInbox()
		b.Listen(in)
		nodes, ins = append(nodes, b), append(ins, in)
	}
	a, b := nodes[0], nodes[1]
	if _, err := b.Claim(ctx, "dev", time.Now()); err != nil {
		t.Fatal(err)
	}
	// Node b's beats stop (its connection, its subscriptions and its
	// device's WebSocket stay as they are). What node a reads NodeTTL
	// later, without waiting for it: b's record is gone (a node with no
	// record reads as down, as one whose last beat is too old).
	b.stopHeartbeat()
	if err := a.counters.del(ctx, nodeKey("b"), 0); err != nil {
		t.Fatal(err)
	}
	n := appendNote(t, a, "dev", "ch")
	p, _, err := a.Hand(ctx, n, 0)
	if err != nil {
		t.Fatal(err)
	}
	if p.Connected {
		t.Fatalf("node a handed notification %d to node b, which it should read as down: %+v", n.Seq, p)
	}
	// Node b beats again, more than NodeTTL after its last beat.
	fake.Advance(2 * time.Hour)
	if err := b.startHeartbeat(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case seq := <-ins[1].delivered:
		if seq != n.Seq {
			t.Fatalf("delivered %d, want %d", seq, n.Seq)
		}
	case <-ins[1].resynced:
	case <-time.After(10 * time.Second): // a failure, never a pause
		t.Fatalf("node b still holds the device and beats again, but was neither handed notification %d nor told to Resync: it waits in the queue until the device reconnects", n.Seq)
	}
}

// TestHeartbeatAgeIsTheStreams: a heartbeat's age is the stream's (when it
// stored the beat, against the stream leader's time now), not the writer's
// wall clock against the reader's: a node whose clock is a day behind is
// not read as down while it beats.
func TestHeartbeatAgeIsTheStreams(t *testing.T) {
	nodes, _ := openNodes(t, 1)
	a := nodes[0]
	ctx := context.Background()
	v, _ := json.Marshal(heartbeat{At: time.Now().Add(-24 * time.Hour).UTC()})
	if _, err := a.counters.write(ctx, nodeKey("behind"), v, nil, nil, nodeRecordTTL); err != nil {
		t.Fatal(err)
	}
	if down, since := a.nodeDown(ctx, "behind"); down {
		t.Fatalf("a node that just beat, with its clock a day behind, reads as down since %v", since)
	}
	if down, _ := a.nodeDown(ctx, "never-seen"); !down {
		t.Fatal("a node with no heartbeat record reads as up")
	}
}
