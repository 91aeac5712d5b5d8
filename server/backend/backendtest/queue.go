package backendtest

import (
	"bytes"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/openmpns/openmpns/server/backend"
)

var queueTests = []test{
	{"AppendAssignsIncreasingSeqs", testAppendIncreasing},
	{"AppendSeqsUniqueConcurrently", testAppendConcurrent},
	{"PendingRoundTrip", testPendingRoundTrip},
	{"PendingInSeqOrderPerDevice", testPendingOrder},
	{"PendingExcludesExpired", testPendingExpired},
	{"TileReplacement", testTileReplacement},
	{"TileReplacementAcrossNodes", testTileReplacementAcrossNodes},
	{"QueueFull", testQueueFull},
	{"QueueFullReplacementDoesNotCount", testQueueFullReplacement},
	{"QueueFullExpiredDoNotCount", testQueueFullExpired},
	{"QueueFullConcurrent", testQueueFullConcurrent},
	{"Remove", testRemove},
	{"RemoveOnlyThatDevice", testRemoveOtherDevice},
	{"RemoveMakesRoom", testRemoveMakesRoom},
	{"Sweep", testSweep},
}

func testAppendIncreasing(t *testing.T, h *harness) {
	d := h.device(t, 0)
	c := h.channel(t, 0, d.ID, "app")
	c2 := h.channel(t, 0, d.ID, "app2")
	var last uint64
	for i := range 6 {
		ch := c
		if i%2 == 1 {
			ch = c2
		}
		a := h.appendOK(t, i%len(h.nodes), note(ch, "toast", ""), 0)
		if a.Seq <= last {
			t.Fatalf("append %d: Seq %d after %d, want greater", i, a.Seq, last)
		}
		if a.Replaced != 0 {
			t.Fatalf("a toast replaced %d", a.Replaced)
		}
		last = a.Seq
	}
	// ID and ParseID agree with the Seq.
	n := note(c, "raw", "")
	a := h.appendOK(t, 0, n, 0)
	if got, err := backend.ParseID(n.ID()); err != nil || got != a.Seq {
		t.Fatalf("ParseID(ID()) = %d, %v; want %d", got, err, a.Seq)
	}
}

func testAppendConcurrent(t *testing.T, h *harness) {
	const writers, each = 4, 8
	type out struct {
		seqs []uint64
		err  error
	}
	var chans []backend.Channel
	for i := range writers * len(h.nodes) {
		d := h.device(t, i%len(h.nodes))
		chans = append(chans, h.channel(t, 0, d.ID, "app"))
	}
	before := h.appendOK(t, 0, note(chans[0], "toast", ""), 0).Seq
	results := make(chan out, len(chans))
	var wg sync.WaitGroup
	for i, c := range chans {
		node := h.node(i % len(h.nodes))
		wg.Go(func() {
			var o out
			for range each {
				a, err := node.Append(h.ctx, note(c, "toast", ""), 0)
				if err != nil {
					o.err = err
					break
				}
				o.seqs = append(o.seqs, a.Seq)
			}
			results <- o
		})
	}
	wg.Wait()
	close(results)
	seen := map[uint64]bool{}
	for o := range results {
		if o.err != nil {
			t.Fatalf("concurrent Append: %v", o.err)
		}
		for i, s := range o.seqs {
			if seen[s] {
				t.Fatalf("Seq %d handed out twice", s)
			}
			seen[s] = true
			if s <= before {
				t.Fatalf("Seq %d not greater than %d, handed out before", s, before)
			}
			if i > 0 && s <= o.seqs[i-1] {
				t.Fatalf("one writer got Seq %d after %d", s, o.seqs[i-1])
			}
		}
	}
	if len(seen) != writers*len(h.nodes)*each {
		t.Fatalf("%d Seqs, want %d", len(seen), writers*len(h.nodes)*each)
	}
}

func testPendingRoundTrip(t *testing.T, h *harness) {
	d := h.device(t, 0)
	c := h.channel(t, 0, d.ID, "app")
	n := note(c, "tile", "/Page2.xaml?id=7&x=a.b*c>d e")
	n.Class, n.MessageID = 11, "7b1cf7ad-0f1a-4d6e-9a6e-3c4d5e6f7a8b"
	n.Payload = []byte{0, 1, 2, 0xff, '<', '>'}
	n.DeliverAt = n.AcceptedAt.Add(450 * time.Second)
	want := *n
	want.Payload = slices.Clone(n.Payload)
	a := h.appendOK(t, 0, n, 0)
	want.Seq = a.Seq
	for i := range h.nodes {
		got := h.pending(t, i, d.ID, now())
		if len(got) != 1 {
			t.Fatalf("node %d: Pending = %v, want one", i, seqs(got))
		}
		g := got[0]
		if g.Seq != want.Seq || g.DeviceID != want.DeviceID || g.Channel != want.Channel || g.App != want.App ||
			g.Kind != want.Kind || g.Class != want.Class || g.MessageID != want.MessageID || g.TileID != want.TileID ||
			!bytes.Equal(g.Payload, want.Payload) || !g.AcceptedAt.Equal(want.AcceptedAt) ||
			!g.DeliverAt.Equal(want.DeliverAt) || !g.ExpiresAt.Equal(want.ExpiresAt) {
			t.Fatalf("node %d: Pending returned %+v, want %+v", i, *g, want)
		}
	}
}

func testPendingOrder(t *testing.T, h *harness) {
	d, other := h.device(t, 0), h.device(t, 0)
	c1 := h.channel(t, 0, d.ID, "app.one")
	c2 := h.channel(t, 1, d.ID, "app.two")
	co := h.channel(t, 0, other.ID, "app.one")
	var want, wantOther []uint64
	for i := range 9 {
		switch i % 3 {
		case 0:
			want = append(want, h.appendOK(t, 0, note(c1, "toast", ""), 0).Seq)
		case 1:
			want = append(want, h.appendOK(t, 1, note(c2, "raw", ""), 0).Seq)
		default:
			wantOther = append(wantOther, h.appendOK(t, 1, note(co, "toast", ""), 0).Seq)
		}
	}
	for i := range h.nodes {
		if got := seqs(h.pending(t, i, d.ID, now())); !slices.Equal(got, want) {
			t.Fatalf("node %d: Pending(d) = %v, want %v", i, got, want)
		}
		if got := seqs(h.pending(t, i, other.ID, now())); !slices.Equal(got, wantOther) {
			t.Fatalf("node %d: Pending(other) = %v, want %v", i, got, wantOther)
		}
	}
	if got := h.pending(t, 0, "no-such-device", now()); len(got) != 0 {
		t.Fatalf("Pending(unknown device) = %v", seqs(got))
	}
}

func testPendingExpired(t *testing.T, h *harness) {
	d := h.device(t, 0)
	c := h.channel(t, 0, d.ID, "app")
	t0 := now()
	var all []uint64
	var exps []time.Time
	for i := range 4 {
		n := note(c, "toast", "")
		n.ExpiresAt = t0.Add(time.Duration(i+1) * time.Hour)
		all = append(all, h.appendOK(t, i%len(h.nodes), n, 0).Seq)
		exps = append(exps, n.ExpiresAt)
	}
	// A notification is expired at its ExpiresAt: ExpiresAt <= now.
	for i := range h.nodes {
		for k, at := range exps {
			if got := seqs(h.pending(t, i, d.ID, at.Add(-time.Nanosecond))); !slices.Equal(got, all[k:]) {
				t.Fatalf("node %d: Pending just before expiry %d = %v, want %v", i, k, got, all[k:])
			}
			if got := seqs(h.pending(t, i, d.ID, at)); !slices.Equal(got, all[k+1:]) {
				t.Fatalf("node %d: Pending at expiry %d = %v, want %v", i, k, got, all[k+1:])
			}
		}
	}
}

func testTileReplacement(t *testing.T, h *harness) {
	d := h.device(t, 0)
	c := h.channel(t, 0, d.ID, "app")
	other := h.channel(t, 0, d.ID, "app.other")
	primary := h.appendOK(t, 0, note(c, "tile", ""), 0)
	second := h.appendOK(t, 0, note(c, "tile", "/Second.xaml"), 0)
	otherTile := h.appendOK(t, 0, note(other, "tile", ""), 0)
	toast := h.appendOK(t, 0, note(c, "toast", ""), 0)
	for _, a := range []backend.Appended{primary, second, otherTile, toast} {
		if a.Replaced != 0 {
			t.Fatalf("nothing to replace, yet Replaced = %d", a.Replaced)
		}
	}
	n := note(c, "tile", "")
	newPrimary := h.appendOK(t, 0, n, 0)
	if newPrimary.Replaced != primary.Seq {
		t.Fatalf("a primary tile update replaced %d, want %d", newPrimary.Replaced, primary.Seq)
	}
	// A toast or raw notification never replaces anything.
	if a := h.appendOK(t, 0, note(c, "toast", ""), 0); a.Replaced != 0 {
		t.Fatalf("a toast replaced %d", a.Replaced)
	}
	want := []uint64{second.Seq, otherTile.Seq, toast.Seq, newPrimary.Seq}
	got := seqs(h.pending(t, 0, d.ID, now()))
	if !slices.Equal(got[:4], want) || len(got) != 5 {
		t.Fatalf("Pending = %v, want %v and the last toast", got, want)
	}
	// The replacement replaces again, and the secondary tile by its id.
	again := h.appendOK(t, 0, note(c, "tile", ""), 0)
	sec2 := h.appendOK(t, 0, note(c, "tile", "/Second.xaml"), 0)
	if again.Replaced != newPrimary.Seq || sec2.Replaced != second.Seq {
		t.Fatalf("Replaced = %d, %d; want %d, %d", again.Replaced, sec2.Replaced, newPrimary.Seq, second.Seq)
	}
	for _, p := range h.pending(t, 0, d.ID, now()) {
		if p.Seq == newPrimary.Seq || p.Seq == second.Seq || p.Seq == primary.Seq {
			t.Fatalf("replaced tile update %d still pending", p.Seq)
		}
	}
}

func testTileReplacementAcrossNodes(t *testing.T, h *harness) {
	d := h.device(t, 0)
	c := h.channel(t, 0, d.ID, "app")
	prev := h.appendOK(t, 0, note(c, "tile", "t1"), 0)
	for i := range 4 {
		a := h.appendOK(t, (i+1)%len(h.nodes), note(c, "tile", "t1"), 0)
		if a.Replaced != prev.Seq {
			t.Fatalf("update %d replaced %d, want %d", i, a.Replaced, prev.Seq)
		}
		prev = a
	}
	for i := range h.nodes {
		if got := seqs(h.pending(t, i, d.ID, now())); !slices.Equal(got, []uint64{prev.Seq}) {
			t.Fatalf("node %d: Pending = %v, want [%d]", i, got, prev.Seq)
		}
	}
}

func testQueueFull(t *testing.T, h *harness) {
	d := h.device(t, 0)
	c := h.channel(t, 0, d.ID, "app")
	other := h.channel(t, 0, d.ID, "app.other")
	const limit = 3
	for i := range limit {
		h.appendOK(t, i%len(h.nodes), note(c, []string{"toast", "raw", "tile"}[i], ""), limit)
	}
	for i := range h.nodes {
		n := note(c, "toast", "")
		_, err := h.node(i).Append(h.ctx, n, limit)
		wantErr(t, "Append to a full channel", err, backend.ErrQueueFull)
		// A tile update with another TileID is no replacement either.
		_, err = h.node(i).Append(h.ctx, note(c, "tile", "other"), limit)
		wantErr(t, "Append of a new tile to a full channel", err, backend.ErrQueueFull)
	}
	// The limit is per channel, and limit 0 is no limit.
	h.appendOK(t, 0, note(other, "toast", ""), limit)
	h.appendOK(t, 0, note(c, "toast", ""), 0)
	if got := h.pending(t, 0, d.ID, now()); len(got) != limit+2 {
		t.Fatalf("Pending has %d, want %d", len(got), limit+2)
	}
}

func testQueueFullReplacement(t *testing.T, h *harness) {
	d := h.device(t, 0)
	c := h.channel(t, 0, d.ID, "app")
	const limit = 2
	h.appendOK(t, 0, note(c, "toast", ""), limit)
	tile := h.appendOK(t, 0, note(c, "tile", "t"), limit)
	for i := range h.nodes {
		a := h.appendOK(t, i, note(c, "tile", "t"), limit)
		if a.Replaced != tile.Seq {
			t.Fatalf("replacement in a full channel replaced %d, want %d", a.Replaced, tile.Seq)
		}
		tile = a
	}
	if got := h.pending(t, 0, d.ID, now()); len(got) != limit {
		t.Fatalf("Pending has %d, want %d", len(got), limit)
	}
}

// expiredNote is a notification already expired when appended.
func expiredNote(c backend.Channel) *backend.Notification {
	n := note(c, "toast", "")
	n.AcceptedAt = n.AcceptedAt.Add(-2 * time.Hour)
	n.DeliverAt, n.ExpiresAt = n.AcceptedAt, n.AcceptedAt.Add(time.Hour)
	return n
}

func testQueueFullExpired(t *testing.T, h *harness) {
	d := h.device(t, 0)
	c := h.channel(t, 0, d.ID, "app")
	const limit = 2
	for range 3 {
		h.appendOK(t, 0, expiredNote(c), 0)
	}
	var want []uint64
	for i := range limit {
		want = append(want, h.appendOK(t, i%len(h.nodes), note(c, "toast", ""), limit).Seq)
	}
	_, err := h.node(0).Append(h.ctx, note(c, "toast", ""), limit)
	wantErr(t, "Append to a channel full of fresh notifications", err, backend.ErrQueueFull)
	if got := seqs(h.pending(t, 0, d.ID, now())); !slices.Equal(got, want) {
		t.Fatalf("Pending = %v, want %v", got, want)
	}
	// An expired tile update is not queued any more: replacing it does not
	// make room in a full channel.
	d2 := h.device(t, 0)
	c2 := h.channel(t, 0, d2.ID, "app")
	old := note(c2, "tile", "t")
	old.ExpiresAt = old.AcceptedAt.Add(-time.Second)
	h.appendOK(t, 0, old, 0)
	h.appendOK(t, 0, note(c2, "toast", ""), 1)
	_, err = h.node(1).Append(h.ctx, note(c2, "tile", "t"), 1)
	wantErr(t, "Append of a tile whose predecessor expired, to a full channel", err, backend.ErrQueueFull)
}

func testQueueFullConcurrent(t *testing.T, h *harness) {
	d := h.device(t, 0)
	c := h.channel(t, 0, d.ID, "app")
	const limit, per = 5, 6
	var wg sync.WaitGroup
	errs := make(chan error, per*len(h.nodes))
	for i := range h.nodes {
		for range per {
			wg.Go(func() {
				_, err := h.node(i).Append(h.ctx, note(c, "toast", ""), limit)
				errs <- err
			})
		}
	}
	wg.Wait()
	close(errs)
	ok := 0
	for err := range errs {
		switch {
		case err == nil:
			ok++
		case !errors.Is(err, backend.ErrQueueFull):
			t.Fatalf("concurrent Append: %v, want nil or ErrQueueFull", err)
		}
	}
	if ok != limit {
		t.Fatalf("%d of %d concurrent appends with limit %d succeeded, want %d", ok, per*len(h.nodes), limit, limit)
	}
	if got := h.pending(t, 0, d.ID, now()); len(got) != limit {
		t.Fatalf("Pending has %d, want %d", len(got), limit)
	}
}

func testRemove(t *testing.T, h *harness) {
	d := h.device(t, 0)
	c := h.channel(t, 0, d.ID, "app")
	var all []uint64
	for i := range 5 {
		all = append(all, h.appendOK(t, i%len(h.nodes), note(c, "toast", ""), 0).Seq)
	}
	if err := h.node(1).Remove(h.ctx, d.ID, []uint64{all[1], all[3], all[4] + 1_000_000, 0}); err != nil {
		t.Fatalf("Remove: %v", err)
	}
	if err := h.node(0).Remove(h.ctx, d.ID, nil); err != nil {
		t.Fatalf("Remove(nothing): %v", err)
	}
	want := []uint64{all[0], all[2], all[4]}
	for i := range h.nodes {
		if got := seqs(h.pending(t, i, d.ID, now())); !slices.Equal(got, want) {
			t.Fatalf("node %d: Pending after Remove = %v, want %v", i, got, want)
		}
	}
	// Removing again is harmless.
	if err := h.node(0).Remove(h.ctx, d.ID, []uint64{all[1], all[0]}); err != nil {
		t.Fatalf("Remove again: %v", err)
	}
	if got := seqs(h.pending(t, 1, d.ID, now())); !slices.Equal(got, want[1:]) {
		t.Fatalf("Pending = %v, want %v", got, want[1:])
	}
}

func testRemoveOtherDevice(t *testing.T, h *harness) {
	d, other := h.device(t, 0), h.device(t, 0)
	c := h.channel(t, 0, d.ID, "app")
	co := h.channel(t, 0, other.ID, "app")
	mine := h.appendOK(t, 0, note(c, "toast", ""), 0)
	theirs := h.appendOK(t, 0, note(co, "toast", ""), 0)
	// A device acking another device's notification must not remove it.
	if err := h.node(1).Remove(h.ctx, d.ID, []uint64{theirs.Seq}); err != nil {
		t.Fatalf("Remove: %v", err)
	}
	if got := seqs(h.pending(t, 0, other.ID, now())); !slices.Equal(got, []uint64{theirs.Seq}) {
		t.Fatalf("another device's Remove removed its notification: Pending = %v", got)
	}
	if got := seqs(h.pending(t, 0, d.ID, now())); !slices.Equal(got, []uint64{mine.Seq}) {
		t.Fatalf("Pending = %v, want [%d]", got, mine.Seq)
	}
}

func testRemoveMakesRoom(t *testing.T, h *harness) {
	d := h.device(t, 0)
	c := h.channel(t, 0, d.ID, "app")
	const limit = 2
	first := h.appendOK(t, 0, note(c, "toast", ""), limit)
	h.appendOK(t, 0, note(c, "toast", ""), limit)
	_, err := h.node(1).Append(h.ctx, note(c, "toast", ""), limit)
	wantErr(t, "Append to a full channel", err, backend.ErrQueueFull)
	if err := h.node(0).Remove(h.ctx, d.ID, []uint64{first.Seq}); err != nil {
		t.Fatal(err)
	}
	h.appendOK(t, 1, note(c, "toast", ""), limit)
}

func testSweep(t *testing.T, h *harness) {
	d := h.device(t, 0)
	c := h.channel(t, 0, d.ID, "app")
	var expired []uint64
	for range 2 {
		expired = append(expired, h.appendOK(t, 0, expiredNote(c), 0).Seq)
	}
	fresh := h.appendOK(t, 1, note(c, "toast", ""), 0)
	n, err := h.node(0).Sweep(h.ctx, now())
	if err != nil {
		t.Fatalf("Sweep: %v", err)
	}
	if n != 0 && n != len(expired) {
		t.Fatalf("Sweep removed %d, want %d (or 0 for a backend that expires by itself)", n, len(expired))
	}
	if got := seqs(h.pending(t, 1, d.ID, now())); !slices.Equal(got, []uint64{fresh.Seq}) {
		t.Fatalf("Pending after Sweep = %v, want [%d]", got, fresh.Seq)
	}
	if n > 0 {
		// Swept means removed: not even a Pending at an earlier time
		// returns them.
		early := time.Unix(0, 0)
		if got := seqs(h.pending(t, 0, d.ID, early)); !slices.Equal(got, []uint64{fresh.Seq}) {
			t.Fatalf("Pending(long ago) after Sweep = %v, want [%d]", got, fresh.Seq)
		}
		if n2, err := h.node(1).Sweep(h.ctx, now()); err != nil || n2 != 0 {
			t.Fatalf("second Sweep = %d, %v; want 0", n2, err)
		}
	}
}
