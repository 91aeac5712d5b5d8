package natsbackend

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/openmpns/openmpns/server/backend"
)

// lagging makes b's direct gets of the queue answer as a replica that
// has not applied anything since it held stale would: what stale holds on
// the filter asked.
func lagging(b *Backend, stale []directMsg) {
	b.testReplicaRead = func(filter string, _ []directMsg) []directMsg {
		var out []directMsg
		for _, m := range stale {
			if strings.HasPrefix(m.Subject, strings.TrimSuffix(filter, ">")) {
				out = append(out, m)
			}
		}
		return out
	}
}

// TestReadsAfterRemoveNotFromALaggingReplica: a channel at its limit, one
// notification removed through node a, then node b reads the channel from
// a replica that has not applied the removal yet (the queue stream allows
// direct gets, which any replica answers). Append through b must store
// (the removal made room: refusing it with ErrQueueFull was the flake of
// the cluster suite's Queue/RemoveMakesRoom), and Pending through b must
// not return the notification removed. When the replica is current, a
// refusal costs one request to the leader (its count of the channel's
// messages), not a read of the channel from it; so do a refusal and a
// Pending whose read misses an append the leader has (made after the read).
// That used to cost a read from the leader, a request per message.
func TestReadsAfterRemoveNotFromALaggingReplica(t *testing.T) {
	nodes, _ := openNodes(t, 2)
	a, b := nodes[0], nodes[1]
	ctx := context.Background()
	first := appendNote(t, a, "dev", "ch") // limit 3
	appendNote(t, a, "dev", "ch")
	appendNote(t, a, "dev", "ch")
	stale, err := a.directGet(ctx, a.queueSt, a.deviceFilter("dev"))
	if err != nil || len(stale) != 3 {
		t.Fatalf("direct get: %d messages, %v", len(stale), err)
	}
	if err := a.Remove(ctx, "dev", []uint64{first.Seq}); err != nil {
		t.Fatal(err)
	}
	lagging(b, stale)

	ns, err := b.Pending(ctx, "dev", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if slices.ContainsFunc(ns, func(n *backend.Notification) bool { return n.Seq == first.Seq }) || len(ns) != 2 {
		t.Fatalf("Pending after the Remove returned %d notifications, the removed one among them: a lagging replica's read was taken as it was", len(ns))
	}
	n := &backend.Notification{DeviceID: "dev", Channel: "ch", Kind: "raw", ExpiresAt: time.Now().Add(time.Hour)}
	if _, err := b.Append(ctx, n, 3); err != nil {
		t.Fatalf("Append to a channel a Remove made room in: %v (a lagging replica's count refused it)", err)
	}
	if ns, err := a.Pending(ctx, "dev", time.Now()); err != nil || len(ns) != 3 || ns[2].Seq != n.Seq {
		t.Fatalf("Pending = %d notifications, %v; want the 2 left and the one appended", len(ns), err)
	}

	// A current replica: the refusal is confirmed by the leader's count.
	b.testReplicaRead = nil
	r0 := b.Requests()
	_, err = b.Append(ctx, &backend.Notification{DeviceID: "dev", Channel: "ch", Kind: "raw", ExpiresAt: time.Now().Add(time.Hour)}, 3)
	if !errors.Is(err, backend.ErrQueueFull) {
		t.Fatalf("Append to a full channel: %v, want ErrQueueFull", err)
	}
	if r := b.Requests(); r.Reads != r0.Reads+1 || r.DirectGets != r0.DirectGets+1 || r.Publishes != r0.Publishes {
		t.Fatalf("a refusal cost %+v then %+v; want one direct get and one leader request", r0, r)
	}

	// The leader holding more than the replica's read (a notification
	// appended through a after the read, as a push arriving while the
	// device connects) is no disagreement: no read from the leader, for
	// Pending (the append is after its fence) and for Append's refusal
	// (the channel is fuller still).
	appendAfterRead := func() {
		b.testReplicaRead = func(_ string, read []directMsg) []directMsg {
			b.testReplicaRead = nil
			n := &backend.Notification{DeviceID: "dev", Channel: "ch", Kind: "raw", ExpiresAt: time.Now().Add(time.Hour)}
			if _, err := a.Append(ctx, n, 0); err != nil {
				t.Errorf("Append through a: %v", err)
			}
			return read
		}
	}
	appendAfterRead()
	r0 = b.Requests()
	if ns, err := b.Pending(ctx, "dev", time.Now()); err != nil || len(ns) < 3 {
		t.Fatalf("Pending with an append after its read: %d notifications, %v; want the 3 read at least", len(ns), err)
	}
	if r := b.Requests(); r.Reads != r0.Reads+2 || r.DirectGets != r0.DirectGets+1 {
		t.Fatalf("Pending with an append after its read cost %+v then %+v; want one direct get and two leader requests (its fence and the counts)", r0, r)
	}
	appendAfterRead()
	r0 = b.Requests()
	_, err = b.Append(ctx, &backend.Notification{DeviceID: "dev", Channel: "ch", Kind: "raw", ExpiresAt: time.Now().Add(time.Hour)}, 3)
	if !errors.Is(err, backend.ErrQueueFull) {
		t.Fatalf("Append to a full channel: %v, want ErrQueueFull", err)
	}
	if r := b.Requests(); r.Reads != r0.Reads+1 || r.DirectGets != r0.DirectGets+1 || r.Publishes != r0.Publishes {
		t.Fatalf("a refusal with an append after its read cost %+v then %+v; want one direct get and one leader request", r0, r)
	}
}
