package natsbackend

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/openmpns/openmpns/server/backend"
	"github.com/openmpns/openmpns/shared/clock"
)

// TestDeleteFinishesWhenTheCallersContextEndsAtTheRecord: a delete whose
// caller's context ends just as the record is gone (its deadline spent by
// the first steps: a loaded 3-server cluster took 1.2 to 1.4 s of a 2 s
// RequestTimeout to read and delete a device's record, and the purge or
// the index or presence delete after it ran out of time) still removes
// the rest and succeeds: the delete happened. Before, DeleteDevice said
// "the device is gone, but: ... context deadline exceeded" and left the
// rest to the sweep, and `openmpns identity revoke` reported the revoke
// as failed (TestCluster/RevocationAndKeyRotationFromATool under load).
func TestDeleteFinishesWhenTheCallersContextEndsAtTheRecord(t *testing.T) {
	s := runTestServer(t)
	// The sweep waits for the fake clock: it removes nothing here.
	b := openSwept(t, s, "delend", "n1", clock.NewFake(time.Unix(1_000_000_000, 0)))
	d, chans := deviceWithChannels(t, b, "dev", "app1", "app2")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := b.DeleteDevice(context.WithValue(ctx, committedKey{}, func() { cancel() }), d); err != nil {
		t.Fatalf("DeleteDevice, the caller's context ending at the record: %v", err)
	}
	if ctx.Err() == nil {
		t.Fatal("the caller's context did not end: the test tests nothing")
	}
	if left := leftOf(t, b, d.ID, chans); len(left) != 0 {
		t.Fatalf("the deleted device still has: %v", left)
	}

	// DeleteChannel: the channel's queue and index entry.
	d2, chans2 := deviceWithChannels(t, b, "dev2", "app1", "app2")
	ctx, cancel = context.WithCancel(context.Background())
	defer cancel()
	if err := b.DeleteChannel(context.WithValue(ctx, committedKey{}, func() { cancel() }), chans2[0]); err != nil {
		t.Fatalf("DeleteChannel, the caller's context ending at the record: %v", err)
	}
	if ctx.Err() == nil {
		t.Fatal("the caller's context did not end: the test tests nothing")
	}
	if _, err := b.Channel(context.Background(), chans2[0].Token); !errors.Is(err, backend.ErrNotFound) {
		t.Fatalf("Channel of the deleted channel: %v, want ErrNotFound", err)
	}
	idx, _, err := b.readIndex(context.Background(), d2.ID)
	if err != nil || len(idx) != 1 || idx["app2"] != chans2[1].Token {
		t.Fatalf("index of the device = %v, %v; want app2's channel only", idx, err)
	}
	ns, err := b.Pending(context.Background(), d2.ID, time.Now())
	if err != nil || len(ns) != 1 || ns[0].Channel != chans2[1].Token {
		t.Fatalf("Pending of the device = %+v, %v; want app2's notification only", ns, err)
	}
}
