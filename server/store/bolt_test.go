package store

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
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
	// Notifications as a server from before the notification log left
	// them: Queued reads them for the move into the log, Remove deletes
	// them.
	for i := 1; i <= 50; i++ {
		putQueued(t, b, &Notification{Seq: uint64(i), DeviceID: "d", Channel: "t", Kind: "raw", Payload: []byte{byte(i)}})
	}
	if err := b.Remove([]uint64{1, 2}); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if err := b.PutDevice(Device{ID: "late"}); err == nil {
		t.Fatal("a write after close succeeded")
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
	if len(q) != 48 || q[0].Seq != 3 || q[len(q)-1].Seq != 50 {
		t.Fatalf("queue: %d items, first %d, last %d", len(q), q[0].Seq, q[len(q)-1].Seq)
	}
	for i := 1; i < len(q); i++ {
		if q[i].Seq <= q[i-1].Seq {
			t.Fatalf("queue out of order at %d", i)
		}
	}
	if err := b.DeleteChannel("t"); err != nil {
		t.Fatal(err)
	}
	chans, _ = b.Channels()
	if len(chans) != 0 {
		t.Fatalf("after delete: %d channels", len(chans))
	}
}

// putQueued writes n into the data file's queue bucket, where servers
// from before the notification log kept queued notifications.
func putQueued(t *testing.T, b *Bolt, n *Notification) {
	t.Helper()
	v, err := json.Marshal(n)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.write(func(tx *bolt.Tx) error { return tx.Bucket(bucketQueue).Put(seqKey(n.Seq), v) }); err != nil {
		t.Fatal(err)
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
