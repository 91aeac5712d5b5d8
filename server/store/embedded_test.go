package store

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/openmpns/openmpns/server/backend"
)

func openAt(t *testing.T, path string, now time.Time) *Embedded {
	t.Helper()
	e, err := Open(path, Options{Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// setUp stores a device with one channel.
func setUp(t *testing.T, e *Embedded) Channel {
	t.Helper()
	ctx := context.Background()
	if _, err := e.PutDevice(ctx, Device{ID: "d"}); err != nil {
		t.Fatal(err)
	}
	c, err := e.PutChannel(ctx, Channel{Token: "t", DeviceID: "d", App: "a", Name: "n", Tile: true})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func appendOne(t *testing.T, e *Embedded, kind, tile string, now time.Time) backend.Appended {
	t.Helper()
	n := &Notification{DeviceID: "d", Channel: "t", App: "a", Kind: kind, TileID: tile,
		AcceptedAt: now, DeliverAt: now, ExpiresAt: now.Add(time.Hour)}
	a, err := e.Append(context.Background(), n, 100)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// Notification ids never repeat across a restart, even when every
// notification was delivered and the clock stepped back in between (ids
// used to start from the clock).
func TestSeqsNeverRepeatWhenTheClockStepsBack(t *testing.T) {
	path := filepath.Join(t.TempDir(), "db")
	t0 := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	e := openAt(t, path, t0)
	setUp(t, e)
	var last uint64
	for range 3 {
		a := appendOne(t, e, "raw", "", t0)
		if err := <-a.Durable; err != nil {
			t.Fatal(err)
		}
		if a.Seq <= last {
			t.Fatalf("seq %d after %d", a.Seq, last)
		}
		last = a.Seq
	}
	if err := e.Remove(context.Background(), "d", []uint64{last - 2, last - 1, last}); err != nil {
		t.Fatal(err)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	e = openAt(t, path, t0.Add(-24*time.Hour)) // the clock went back a day
	defer e.Close()
	if q, _ := e.Pending(context.Background(), "d", t0); len(q) != 0 {
		t.Fatalf("%d notifications left after removing all", len(q))
	}
	a := appendOne(t, e, "raw", "", t0)
	if a.Seq <= last {
		t.Fatalf("after a restart with the clock a day back, seq %d repeats or precedes %d", a.Seq, last)
	}
}

// A tile update whose write fails is not queued, and the tile update it
// replaced is queued again (its deletion failed with it): the index, the
// count and the file agree.
func TestFailedAppendPutsBackWhatItReplaced(t *testing.T) {
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	e := openAt(t, filepath.Join(t.TempDir(), "db"), now)
	setUp(t, e)
	first := appendOne(t, e, "tile", "", now)
	if err := <-first.Durable; err != nil {
		t.Fatal(err)
	}
	if err := e.Log().Close(); err != nil { // every later write fails
		t.Fatal(err)
	}
	second := appendOne(t, e, "tile", "", now)
	if second.Replaced != first.Seq {
		t.Fatalf("replaced %d, want %d", second.Replaced, first.Seq)
	}
	if err := <-second.Durable; !errors.Is(err, backend.ErrClosed) {
		t.Fatalf("durable: %v, want ErrClosed", err)
	}
	q, err := e.Pending(context.Background(), "d", now)
	if err != nil {
		t.Fatal(err)
	}
	if len(q) != 1 || q[0].Seq != first.Seq {
		t.Fatalf("pending %v, want only the first tile update (seq %d)", seqsOf(q), first.Seq)
	}
	if st, _ := e.Stats(context.Background()); st.Queued != 1 {
		t.Fatalf("queued %d, want 1", st.Queued)
	}
	if c := e.counts["t"]; c != 1 {
		t.Fatalf("the channel counts %d queued, want 1", c)
	}
}

func seqsOf(q []*Notification) []uint64 {
	var s []uint64
	for _, n := range q {
		s = append(s, n.Seq)
	}
	return s
}

// A notification its device acknowledged before its commit is never
// written: if the server dies right after the acknowledgement, before that
// commit, nothing comes back (the device has it), and a commit that does
// happen carries no record of it. The replaced tile update's deletion
// still happens.
func TestAcknowledgedBeforeItsCommitIsNeverWritten(t *testing.T) {
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	path := filepath.Join(t.TempDir(), "db")
	e := openAt(t, path, now)
	setUp(t, e)
	old := appendOne(t, e, "tile", "", now)
	if err := <-old.Durable; err != nil {
		t.Fatal(err)
	}
	// Hold the commit loop: the next Enqueue waits behind it.
	release := e.Log().Hold()
	a := appendOne(t, e, "tile", "", now) // replaces old
	if a.Replaced != old.Seq {
		t.Fatalf("replaced %d, want %d", a.Replaced, old.Seq)
	}
	// The device acknowledges it before it is committed.
	if err := e.Remove(context.Background(), "d", []uint64{a.Seq}); err != nil {
		t.Fatal(err)
	}
	release()
	if err := <-a.Durable; err != nil {
		t.Fatalf("durable: %v", err)
	}
	// What a SIGKILL now would leave: the file, read again.
	q, err := e.Log().Queued()
	if err != nil {
		t.Fatal(err)
	}
	if len(q) != 0 {
		t.Fatalf("the file holds %v: the acknowledged update was written, or the replaced one not deleted", seqsOf(q))
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	e = openAt(t, path, now)
	defer e.Close()
	if p, _ := e.Pending(context.Background(), "d", now); len(p) != 0 {
		t.Fatalf("after a restart, pending %v", seqsOf(p))
	}
}

// A notification handed to a device that is not connected is written
// without its linger: nobody can acknowledge it, and its sender waits for
// the write. The linger here is an hour, so only the hurry ends it.
func TestHandToAnAbsentDeviceDoesNotLinger(t *testing.T) {
	e, err := Open(filepath.Join(t.TempDir(), "db"), Options{CommitLinger: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	setUp(t, e)
	now := time.Now()
	n := &Notification{DeviceID: "d", Channel: "t", App: "a", Kind: "raw",
		AcceptedAt: now, DeliverAt: now, ExpiresAt: now.Add(time.Hour)}
	a, err := e.Append(context.Background(), n, 100)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.Hand(context.Background(), n, 0); err != nil {
		t.Fatal(err)
	}
	if err := wait(t, a.Durable, "the write of a notification to an absent device"); err != nil {
		t.Fatal(err)
	}
}

// Remove never waits for the queues' lock, which Append holds across a
// write when it must reserve Seqs at once: the server runs Remove on its
// poller's goroutine (RemoveWaits). A removal made while the lock is held
// is taken out of the index by the next queue operation.
func TestRemoveNeverWaitsForTheQueues(t *testing.T) {
	now := time.Now()
	e := openAt(t, filepath.Join(t.TempDir(), "db"), now)
	defer e.Close()
	setUp(t, e)
	first, second := appendOne(t, e, "raw", "", now), appendOne(t, e, "raw", "", now)

	e.qmu.Lock() // as an Append reserving Seqs on a slow disk
	removed := make(chan error, 1)
	go func() { removed <- e.Remove(context.Background(), "d", []uint64{first.Seq}) }()
	select {
	case err := <-removed:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second): // a failure, never a pause
		e.qmu.Unlock()
		<-removed
		t.Fatal("Remove waited for the queues' lock")
	}
	e.qmu.Unlock()

	left, err := e.Pending(context.Background(), "d", now)
	if err != nil {
		t.Fatal(err)
	}
	if len(left) != 1 || left[0].Seq != second.Seq {
		t.Fatalf("after removing %d of %d and %d, pending: %v", first.Seq, first.Seq, second.Seq, left)
	}
	st, err := e.Stats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if st.Queued != 1 {
		t.Fatalf("stats count %d queued, want 1", st.Queued)
	}
}
