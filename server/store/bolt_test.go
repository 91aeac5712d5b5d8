package store

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

func TestBoltKeepsRecordsAcrossReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.db")
	b, err := OpenBolt(path)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 28, 0, 0, 0, 0, time.UTC)
	if err := b.PutDevice(Device{ID: "d", TokenHash: []byte{1, 2}, CreatedAt: now}); err != nil {
		t.Fatal(err)
	}
	if err := b.PutChannel(Channel{Token: "t", DeviceID: "d", App: "a", Name: "n", Toast: true}); err != nil {
		t.Fatal(err)
	}
	// Concurrent enqueues share commits and all become durable.
	var wg sync.WaitGroup
	for i := 1; i <= 50; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := <-b.Enqueue(&Notification{Seq: uint64(i), DeviceID: "d", Channel: "t", Kind: "raw", Payload: []byte{byte(i)}}, 0); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if err := <-b.Enqueue(&Notification{Seq: 60, Channel: "t", Kind: "tile"}, 7); err != nil { // replaces 7
		t.Fatal(err)
	}
	if err := b.Remove([]uint64{1, 2}); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-b.Enqueue(&Notification{Seq: 99}, 0); err == nil {
		t.Fatal("enqueue after close succeeded")
	}

	b, err = OpenBolt(path)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	devs, _ := b.Devices()
	chans, _ := b.Channels()
	q, err := b.Queued()
	if err != nil {
		t.Fatal(err)
	}
	if len(devs) != 1 || !devs[0].CreatedAt.Equal(now) || len(chans) != 1 || !chans[0].Toast {
		t.Fatalf("devices %+v channels %+v", devs, chans)
	}
	if len(q) != 48 || q[0].Seq != 3 || q[len(q)-1].Seq != 60 {
		t.Fatalf("queue: %d items, first %d, last %d", len(q), q[0].Seq, q[len(q)-1].Seq)
	}
	for i := 1; i < len(q); i++ {
		if q[i].Seq <= q[i-1].Seq || q[i].Seq == 7 {
			t.Fatalf("queue out of order or replaced item kept at %d", i)
		}
	}
	if err := b.DeleteChannel("t", []uint64{3, 4}); err != nil {
		t.Fatal(err)
	}
	chans, _ = b.Channels()
	q, _ = b.Queued()
	if len(chans) != 0 || len(q) != 46 {
		t.Fatalf("after delete: %d channels, %d queued", len(chans), len(q))
	}
}

func TestBoltRefusesDamagedFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.db")
	if err := os.WriteFile(path, []byte("this is not a bbolt file, and it must not be replaced by an empty one"), 0o600); err != nil {
		t.Fatal(err)
	}
	if b, err := OpenBolt(path); err == nil {
		b.Close()
		t.Fatal("opened a damaged file")
	}
	if b, _ := os.ReadFile(path); len(b) == 0 {
		t.Fatal("the damaged file was overwritten")
	}
}

func TestNotificationIDRoundTrip(t *testing.T) {
	n := Notification{Seq: 0x18ec47865bb4939c}
	seq, err := ParseID(n.ID())
	if err != nil || seq != n.Seq {
		t.Fatalf("ParseID(%q) = %d, %v", n.ID(), seq, err)
	}
	if _, err := ParseID("zz"); err == nil {
		t.Fatal("ParseID accepted zz")
	}
}

// TestRemoveLater: a lazy removal rides on the next commit, whatever it is
// for; with no commit to ride on it is written on its own; Close writes
// what is still queued; after Close it is dropped.
func TestRemoveLater(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.db")
	b, err := OpenBolt(path)
	if err != nil {
		t.Fatal(err)
	}
	queued := func() []uint64 {
		t.Helper()
		q, err := b.Queued()
		if err != nil {
			t.Fatal(err)
		}
		var seqs []uint64
		for _, n := range q {
			seqs = append(seqs, n.Seq)
		}
		return seqs
	}
	for i := uint64(1); i <= 4; i++ {
		if err := <-b.Enqueue(&Notification{Seq: i, Channel: "t", Kind: "raw"}, 0); err != nil {
			t.Fatal(err)
		}
	}
	// Rides on the next commit: once notification 5 is durable, 1 is gone.
	b.RemoveLater([]uint64{1})
	if err := <-b.Enqueue(&Notification{Seq: 5, Channel: "t", Kind: "raw"}, 0); err != nil {
		t.Fatal(err)
	}
	if got := queued(); len(got) != 4 || got[0] != 2 {
		t.Fatalf("after a commit: queued %v, want 2..5", got)
	}
	// On its own, within the remove delay.
	b.RemoveLater([]uint64{2})
	deadline := time.Now().Add(10 * time.Second)
	for got := queued(); len(got) != 3; got = queued() {
		if time.Now().After(deadline) {
			t.Fatalf("a lazy removal with nothing to ride on was never written: %v", got)
		}
		time.Sleep(10 * time.Millisecond) // polling the store; the delay is 100 ms
	}
	// Close writes what is queued.
	b.RemoveLater([]uint64{3})
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	b.RemoveLater([]uint64{4}) // after Close: dropped, no panic
	if b, err = OpenBolt(path); err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if got := queued(); len(got) != 2 || got[0] != 4 || got[1] != 5 {
		t.Fatalf("after Close and reopen: queued %v, want [4 5]", got)
	}
}

// A truncated file is refused with an error, not a SIGBUS: bbolt reads its
// freelist page while it opens, before the store's own checks.
func TestBoltRefusesTruncatedFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.db")
	b, err := OpenBolt(path)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 200 {
		if err := b.PutDevice(Device{ID: fmt.Sprint("device ", i), TokenHash: make([]byte, 200)}); err != nil {
			t.Fatal(err)
		}
	}
	var inUse int64
	b.DB().View(func(tx *bolt.Tx) error { inUse = tx.Size(); return nil })
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	valid, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	page := os.Getpagesize()
	for size := 2 * page; size < int(inUse); size += page { // every cut through the pages in use
		if err := os.WriteFile(path, valid[:size], 0o600); err != nil {
			t.Fatal(err)
		}
		if b, err := OpenBolt(path); err == nil {
			b.Close()
			t.Fatalf("opened a file cut to %d of %d bytes", size, len(valid))
		}
	}
}
