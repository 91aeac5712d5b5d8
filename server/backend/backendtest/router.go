package backendtest

import (
	"testing"
	"time"

	"github.com/openmpns/openmpns/server/backend"
)

var routerTests = []test{
	{"PresenceUnknown", testPresenceUnknown},
	{"ClaimAndPresence", testClaimPresence},
	{"ClaimTakesOver", testClaimTakesOver},
	{"ClaimAgainOnOneNode", testClaimSameNode},
	{"ReleaseOlderClaim", testReleaseOlder},
	{"ReleaseMarksOffline", testReleaseOffline},
	{"HandReachesTheHolder", testHandReachesHolder},
	{"HandFollowsTheDevice", testHandFollows},
	{"HandToOfflineDevice", testHandOffline},
}

func (h *harness) claim(t *testing.T, i int, dev string, at time.Time) uint64 {
	t.Helper()
	c, err := h.node(i).Claim(h.ctx, dev, at)
	if err != nil {
		t.Fatalf("node %d: Claim(%s): %v", i, dev, err)
	}
	if c == 0 {
		t.Fatalf("node %d: Claim returned 0", i)
	}
	return c
}

func (h *harness) presence(t *testing.T, i int, dev string) backend.Presence {
	t.Helper()
	p, ok, err := h.node(i).Presence(h.ctx, dev)
	if err != nil || !ok {
		t.Fatalf("node %d: Presence(%s) = %+v, %v, %v", i, dev, p, ok, err)
	}
	return p
}

// expect waits for the next event of inbox i and checks it.
func (h *harness) expect(t *testing.T, i int, kind, dev string) Event {
	t.Helper()
	e := h.inbox(i).Next(t, kind+" on node")
	if e.Kind != kind || e.DeviceID != dev {
		t.Fatalf("node %d: got %v, want %s for %s", i, e, kind, dev)
	}
	return e
}

// barrier hands a notification for a device that node i holds and waits
// for it there: an event the backend meant for node i before the barrier
// has arrived by then.
func (h *harness) barrier(t *testing.T, i int) {
	t.Helper()
	d := h.device(t, i)
	c := h.channel(t, i, d.ID, "barrier")
	h.claim(t, i, d.ID, now())
	n := note(c, "raw", "")
	h.appendOK(t, i, n, 0)
	// Hand from every node, so that whatever each node sent before has
	// arrived (a transport keeps one sender's order).
	for j := range h.nodes {
		if _, _, err := h.node(j).Hand(h.ctx, n, 0); err != nil {
			t.Fatalf("Hand: %v", err)
		}
		e := h.expect(t, i, "deliver", d.ID)
		if e.N.Seq != n.Seq {
			t.Fatalf("barrier: got seq %d, want %d", e.N.Seq, n.Seq)
		}
	}
}

func testPresenceUnknown(t *testing.T, h *harness) {
	p, ok, err := h.node(0).Presence(h.ctx, h.name("dev"))
	if err != nil || ok {
		t.Fatalf("Presence(never connected) = %+v, %v, %v; want ok false", p, ok, err)
	}
}

func testClaimPresence(t *testing.T, h *harness) {
	d := h.device(t, 0)
	at := now()
	c := h.claim(t, 0, d.ID, at)
	for i := range h.nodes {
		p := h.presence(t, i, d.ID)
		if !p.Connected || p.Claim != c || !p.Since.Equal(at) || p.Node == "" {
			t.Fatalf("node %d: Presence = %+v, want connected since %v with claim %d", i, p, at, c)
		}
	}
}

func testClaimTakesOver(t *testing.T, h *harness) {
	d := h.device(t, 0)
	c1 := h.claim(t, 0, d.ID, now())
	p1 := h.presence(t, 0, d.ID)
	at := now()
	c2 := h.claim(t, 1, d.ID, at)
	if c2 <= c1 {
		t.Fatalf("a newer claim %d is not greater than %d", c2, c1)
	}
	e := h.expect(t, 0, "takenover", d.ID)
	if e.Claim != c2 {
		t.Fatalf("TakenOver told claim %d, want %d", e.Claim, c2)
	}
	p2 := h.presence(t, 0, d.ID)
	if !p2.Connected || p2.Claim != c2 || !p2.Since.Equal(at) {
		t.Fatalf("Presence = %+v, want connected with claim %d", p2, c2)
	}
	if len(h.nodes) > 1 {
		if p2.Node == p1.Node {
			t.Fatalf("two nodes both call themselves %q", p1.Node)
		}
		h.barrier(t, 1)
		h.inbox(1).Empty(t, "the new holder must not be told it was taken over")
	}
}

func testClaimSameNode(t *testing.T, h *harness) {
	d := h.device(t, 0)
	c1 := h.claim(t, 0, d.ID, now())
	c2 := h.claim(t, 0, d.ID, now())
	if c2 <= c1 {
		t.Fatalf("a newer claim %d is not greater than %d", c2, c1)
	}
	// The node's older connection must be told too.
	if e := h.expect(t, 0, "takenover", d.ID); e.Claim != c2 {
		t.Fatalf("TakenOver told claim %d, want %d", e.Claim, c2)
	}
}

func testReleaseOlder(t *testing.T, h *harness) {
	d := h.device(t, 0)
	c1 := h.claim(t, 0, d.ID, now())
	c2 := h.claim(t, 1, d.ID, now())
	h.expect(t, 0, "takenover", d.ID)
	// The older connection ends after the newer one started: the device
	// stays connected.
	if err := h.node(0).Release(h.ctx, d.ID, c1, now()); err != nil {
		t.Fatalf("Release(older claim): %v", err)
	}
	for i := range h.nodes {
		p := h.presence(t, i, d.ID)
		if !p.Connected || p.Claim != c2 {
			t.Fatalf("node %d: after releasing the older claim, Presence = %+v; want connected with claim %d", i, p, c2)
		}
	}
	got, err := h.node(0).Device(h.ctx, d.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !got.LastSeen.IsZero() {
		t.Fatalf("Release of an older claim set LastSeen %v", got.LastSeen)
	}
}

func testReleaseOffline(t *testing.T, h *harness) {
	d := h.device(t, 0)
	c := h.claim(t, 1, d.ID, now())
	at := now().Add(time.Second)
	if err := h.node(1).Release(h.ctx, d.ID, c, at); err != nil {
		t.Fatalf("Release: %v", err)
	}
	for i := range h.nodes {
		p := h.presence(t, i, d.ID)
		if p.Connected || !p.Since.Equal(at) || p.Node == "" {
			t.Fatalf("node %d: after Release, Presence = %+v; want offline since %v", i, p, at)
		}
		got, err := h.node(i).Device(h.ctx, d.ID)
		if err != nil {
			t.Fatal(err)
		}
		if !got.LastSeen.Equal(at) {
			t.Fatalf("node %d: LastSeen = %v, want %v", i, got.LastSeen, at)
		}
		if got.Rev == d.Rev {
			t.Fatal("LastSeen changed, Rev did not")
		}
	}
	// A later connection gets a greater claim than the released one.
	if c2 := h.claim(t, 0, d.ID, now()); c2 <= c {
		t.Fatalf("claim after release %d, not greater than %d", c2, c)
	}
}

func testHandReachesHolder(t *testing.T, h *harness) {
	d := h.device(t, 0)
	c := h.channel(t, 0, d.ID, "app")
	holder := len(h.nodes) - 1
	h.claim(t, holder, d.ID, now())
	old := h.appendOK(t, 0, note(c, "tile", ""), 0)
	n := note(c, "tile", "")
	a := h.appendOK(t, 0, n, 0)
	p, ok, err := h.node(0).Hand(h.ctx, n, a.Replaced)
	if err != nil {
		t.Fatalf("Hand: %v", err)
	}
	if !ok || !p.Connected || p.Claim == 0 {
		t.Fatalf("Hand found presence %+v (ok %v), want the holder's connected claim", p, ok)
	}
	e := h.expect(t, holder, "deliver", d.ID)
	if e.N.Seq != a.Seq || e.Replaced != old.Seq || e.N.Channel != c.Token || string(e.N.Payload) != string(n.Payload) {
		t.Fatalf("delivered %v (%+v), want seq %d replacing %d", e, *e.N, a.Seq, old.Seq)
	}
	if holder != 0 {
		h.barrier(t, 0)
		h.inbox(0).Empty(t, "a node not holding the device")
	}
}

func testHandFollows(t *testing.T, h *harness) {
	d := h.device(t, 0)
	c := h.channel(t, 0, d.ID, "app")
	for round := range 3 {
		holder := round % len(h.nodes)
		h.claim(t, holder, d.ID, now())
		if round > 0 {
			h.expect(t, (round-1)%len(h.nodes), "takenover", d.ID)
		}
		n := note(c, "toast", "")
		h.appendOK(t, 1, n, 0)
		if _, _, err := h.node(1).Hand(h.ctx, n, 0); err != nil {
			t.Fatal(err)
		}
		if e := h.expect(t, holder, "deliver", d.ID); e.N.Seq != n.Seq {
			t.Fatalf("round %d: delivered seq %d, want %d", round, e.N.Seq, n.Seq)
		}
	}
}

func testHandOffline(t *testing.T, h *harness) {
	d := h.device(t, 0)
	c := h.channel(t, 0, d.ID, "app")
	n := note(c, "toast", "")
	h.appendOK(t, 0, n, 0)
	if _, ok, err := h.node(0).Hand(h.ctx, n, 0); err != nil || ok { // never connected
		t.Fatalf("Hand(never connected): presence recorded %v, %v", ok, err)
	}
	claim := h.claim(t, 1, d.ID, now())
	if err := h.node(1).Release(h.ctx, d.ID, claim, now()); err != nil {
		t.Fatal(err)
	}
	// Hand's presence may be a moment old (see Router.Hand): node 1's
	// later hand has arrived at node 0 once the barrier is through.
	h.barrier(t, 0)
	if p, ok, err := h.node(0).Hand(h.ctx, n, 0); err != nil || !ok || p.Connected { // gone again
		t.Fatalf("Hand(offline): presence %+v (ok %v), %v; want recorded, offline", p, ok, err)
	}
	for i := range h.nodes {
		h.barrier(t, i)
		h.inbox(i).Empty(t, "a hand for an offline device")
	}
	// It waits in the queue.
	if got := h.pending(t, 0, d.ID, now()); len(got) != 1 || got[0].Seq != n.Seq {
		t.Fatalf("Pending = %v, want [%d]", seqs(got), n.Seq)
	}
}
