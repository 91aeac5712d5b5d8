package natsbackend

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"strconv"
	"testing"
	"time"

	"github.com/openmpns/openmpns/server/backend"
)

// deliveries is an Inbox that hands deliveries to a channel.
type deliveries chan *backend.Notification

func (d deliveries) Deliver(_ string, n *backend.Notification, _ uint64) { d <- n }
func (d deliveries) TakenOver(string, uint64)                            {}
func (d deliveries) Resync()                                             {}

func openNodes(t *testing.T, n int) ([]*Backend, []deliveries) {
	t.Helper()
	s := runTestServer(t)
	prefix := "t"
	var nodes []*Backend
	var ins []deliveries
	for i := range n {
		b, err := Open(context.Background(), Config{URLs: []string{s.ClientURL()}, Prefix: prefix, Replicas: 1,
			NodeID: "node" + string(rune('0'+i)), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { b.Close() })
		// The sweep of leftovers reads too: stopped, so that the request
		// counts of these tests do not depend on when its passes run.
		b.stopSweeper()
		in := make(deliveries, 16)
		b.Listen(in)
		nodes, ins = append(nodes, b), append(ins, in)
	}
	return nodes, ins
}

func next(t *testing.T, in deliveries, what string) *backend.Notification {
	t.Helper()
	select {
	case n := <-in:
		return n
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: nothing delivered", what)
		return nil
	}
}

func appendNote(t *testing.T, b *Backend, dev, ch string) *backend.Notification {
	t.Helper()
	now := time.Now()
	n := &backend.Notification{DeviceID: dev, Channel: ch, App: "app", Kind: "raw", AcceptedAt: now, DeliverAt: now, ExpiresAt: now.Add(time.Hour)}
	if _, err := b.Append(context.Background(), n, 3); err != nil {
		t.Fatalf("Append: %v", err)
	}
	return n
}

// TestStalePresencePassedOn: a node whose cache still says another node
// holds the device hands the notification there; that node, which no
// longer holds it, looks it up and passes it on to the holder.
func TestStalePresencePassedOn(t *testing.T) {
	ctx := context.Background()
	nodes, ins := openNodes(t, 3)
	if _, err := nodes[1].Claim(ctx, "dev", time.Now()); err != nil {
		t.Fatal(err)
	}
	// Node 2 believes node 0 holds the device, with a newer revision than
	// any it has seen.
	stale, _ := json.Marshal(presenceRec{Node: "node0", Connected: true, Since: time.Now()})
	nodes[2].presence.cache.reserve(token("dev"))
	nodes[2].presence.cache.update(token("dev"), stale, 1<<40, false, time.Now())

	n := appendNote(t, nodes[2], "dev", "ch")
	p, ok, err := nodes[2].Hand(ctx, n, 0)
	if err != nil || !ok || p.Node != "node0" {
		t.Fatalf("Hand = %+v, %v, %v; want the cached presence (node0)", p, ok, err)
	}
	if got := next(t, ins[1], "holder"); got.Seq != n.Seq {
		t.Fatalf("holder got seq %d, want %d", got.Seq, n.Seq)
	}
	if len(ins[0]) != 0 {
		t.Fatal("the node that does not hold the device delivered it")
	}
	if r := nodes[0].Requests(); r.Reads == 0 {
		t.Fatal("node 0 passed it on without looking the device up")
	}
}

// TestViewsFollowRemovals: after the node holding the device removes what
// another node appended, that node's next Append needs no read of the
// channel; a removal it was not told of makes its view count the channel
// full, and it reads again rather than refuse.
func TestViewsFollowRemovals(t *testing.T) {
	ctx := context.Background()
	nodes, ins := openNodes(t, 2)
	if _, err := nodes[0].Claim(ctx, "dev", time.Now()); err != nil {
		t.Fatal(err)
	}
	for round := range 5 {
		n := appendNote(t, nodes[1], "dev", "ch")
		if _, _, err := nodes[1].Hand(ctx, n, 0); err != nil {
			t.Fatal(err)
		}
		got := next(t, ins[0], "holder")
		r0 := nodes[0].Requests()
		if err := nodes[0].Remove(ctx, "dev", []uint64{got.Seq}); err != nil {
			t.Fatal(err)
		}
		if r := nodes[0].Requests(); r.Reads != r0.Reads || r.Deletes != r0.Deletes+1 {
			t.Fatalf("round %d: Remove: %+v then %+v; want one delete and no read (node 0 was handed it)", round, r0, r)
		}
		// A barrier: node 0's removal notice to node 1 went before this
		// hand from node 0 to a device node 1 holds.
		if _, err := nodes[1].Claim(ctx, "dev2", time.Now()); err != nil {
			t.Fatal(err)
		}
		b := appendNote(t, nodes[0], "dev2", "c"+strconv.Itoa(round))
		if _, _, err := nodes[0].Hand(ctx, b, 0); err != nil {
			t.Fatal(err)
		}
		next(t, ins[1], "barrier")
	}
	r0 := nodes[1].Requests()
	appendNote(t, nodes[1], "dev", "ch")
	if r := nodes[1].Requests(); r.DirectGets != r0.DirectGets || r.Publishes != r0.Publishes+1 {
		t.Fatalf("Append after told removals: %+v then %+v; want one publish, no read", r0, r)
	}

	// Fill the channel (limit 3) from node 1, remove all from node 0
	// without node 1 knowing (a read on node 0 makes them known there
	// without an origin), then append from node 1: it must read again.
	for range 2 {
		appendNote(t, nodes[1], "dev", "ch")
	}
	pend, err := nodes[0].Pending(ctx, "dev", time.Now())
	if err != nil || len(pend) != 3 {
		t.Fatalf("Pending = %d, %v", len(pend), err)
	}
	var seqs []uint64
	for _, p := range pend {
		seqs = append(seqs, p.Seq)
	}
	nodes[0].views.mu.Lock()
	for _, s := range seqs {
		k := nodes[0].views.known[s]
		k.from = ""
		nodes[0].views.known[s] = k
	}
	nodes[0].views.mu.Unlock()
	if err := nodes[0].Remove(ctx, "dev", seqs); err != nil {
		t.Fatal(err)
	}
	if _, err := nodes[1].Append(ctx, &backend.Notification{DeviceID: "dev", Channel: "ch", Kind: "raw",
		ExpiresAt: time.Now().Add(time.Hour)}, 3); errors.Is(err, backend.ErrQueueFull) || err != nil {
		t.Fatalf("Append to a channel emptied elsewhere: %v", err)
	}
}

// TestFailedRemoveKeepsTheChannelLimit: a Remove whose deletes fail (a
// leader election, no quorum: the notifications stay queued, and Remove
// says so) leaves them in this node's view of the channel. Were they
// dropped, the view would under-count, the stream's check (on the
// channel's last sequence only) would pass, and Append would store past
// the channel's limit.
func TestFailedRemoveKeepsTheChannelLimit(t *testing.T) {
	nodes, _ := openNodes(t, 1)
	b := nodes[0]
	ctx := context.Background()
	first := appendNote(t, b, "dev", "ch") // limit 3
	appendNote(t, b, "dev", "ch")
	appendNote(t, b, "dev", "ch")
	// The device acknowledges the first; the delete fails (the call's
	// context is done before the delete is sent, so it surely did not
	// happen).
	failed, cancel := context.WithCancel(ctx)
	cancel()
	if err := b.Remove(failed, "dev", []uint64{first.Seq}); err == nil {
		t.Fatal("Remove with its deletes failed reported success")
	}
	if ns, err := b.Pending(ctx, "dev", time.Now()); err != nil || len(ns) != 3 {
		t.Fatalf("Pending after the failed Remove: %d, %v; want the 3 still queued", len(ns), err)
	}
	_, err := b.Append(ctx, &backend.Notification{DeviceID: "dev", Channel: "ch", Kind: "raw", ExpiresAt: time.Now().Add(time.Hour)}, 3)
	if !errors.Is(err, backend.ErrQueueFull) {
		ns, _ := b.Pending(ctx, "dev", time.Now())
		t.Fatalf("Append to a channel holding 3 with limit 3: err %v; the channel now holds %d", err, len(ns))
	}
	// A Remove that succeeds then frees the place.
	if err := b.Remove(ctx, "dev", []uint64{first.Seq}); err != nil {
		t.Fatal(err)
	}
	appendNote(t, b, "dev", "ch")
}
