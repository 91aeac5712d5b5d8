package store

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"
)

func testNote(seq uint64) *Notification {
	at := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	return &Notification{Seq: seq, DeviceID: "d", Channel: "t", App: "a", Kind: "raw",
		Payload: bytes.Repeat([]byte{byte(seq)}, 64), AcceptedAt: at, DeliverAt: at, ExpiresAt: at.Add(time.Hour)}
}

func openTestLog(t testing.TB, dir string, segSize int64) (*Log, []uint64) {
	t.Helper()
	l, q, err := openLog(dir, segSize)
	if err != nil {
		t.Fatal(err)
	}
	return l, seqsOf(q)
}

func enqueue(t testing.TB, l *Log, seq, replace uint64) {
	t.Helper()
	if err := <-l.EnqueueThen(testNote(seq), replace, nil); err != nil {
		t.Fatal(err)
	}
}

// The log keeps what was enqueued across a reopen, less what was removed
// (durably, lazily, or by a tile update's replacement) and what was
// removed before its commit.
func TestLogKeepsRecordsAcrossReopen(t *testing.T) {
	dir := t.TempDir()
	l, q := openTestLog(t, dir, DefaultSegmentSize)
	if len(q) != 0 {
		t.Fatalf("a new log holds %v", q)
	}
	for seq := uint64(1); seq <= 6; seq++ {
		enqueue(t, l, seq, 0)
	}
	enqueue(t, l, 7, 3) // replaces 3
	if err := l.Remove([]uint64{1}); err != nil {
		t.Fatal(err)
	}
	l.RemoveLater([]uint64{2}) // rides on the next commit
	release := l.Hold()
	c := l.EnqueueThen(testNote(8), 0, nil)
	l.RemoveLater([]uint64{8}) // before its commit: never written
	release()
	if err := <-c; err != nil {
		t.Fatal(err)
	}
	// 8's group was dropped (all of it acknowledged) without waiting for
	// the loop, so <-c may come before the held commit, which carries 2's
	// removal, is written: a durable removal waits for it.
	if err := l.Remove([]uint64{8}); err != nil {
		t.Fatal(err)
	}
	if q, err := l.Queued(); err != nil || !slices.Equal(seqsOf(q), []uint64{4, 5, 6, 7}) {
		t.Fatalf("on disk before Close: %v %v", seqsOf(q), err)
	}
	l.RemoveLater([]uint64{4}) // written at Close
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-l.EnqueueThen(testNote(9), 0, nil); err == nil {
		t.Fatal("enqueue after Close succeeded")
	}
	l, q = openTestLog(t, dir, DefaultSegmentSize)
	defer l.Close()
	if want := []uint64{5, 6, 7}; !slices.Equal(q, want) {
		t.Fatalf("after reopen: %v, want %v", q, want)
	}
}

// A write torn anywhere in the last record (the segment cut at every byte
// offset of it) loses that record only: open recovers everything before it,
// and the log goes on after them (the next record is read back too).
func TestLogTornLastRecord(t *testing.T) {
	src := t.TempDir()
	l, _ := openTestLog(t, src, DefaultSegmentSize)
	for seq := uint64(1); seq <= 5; seq++ {
		enqueue(t, l, seq, 0)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	ids, err := segmentIDs(src)
	if err != nil || len(ids) != 1 {
		t.Fatalf("segments %v %v", ids, err)
	}
	name := filepath.Base(segmentPath(src, ids[0]))
	data, err := os.ReadFile(segmentPath(src, ids[0]))
	if err != nil {
		t.Fatal(err)
	}
	// Record boundaries: the prefixes that read in full.
	valid, _ := parseSegment(data, segmentSeed(ids[0]), func([]entry) {})
	var ends []int
	for i := recordHeader; i <= valid; i++ {
		if v, _ := parseSegment(data[:i], segmentSeed(ids[0]), func([]entry) {}); v == i {
			ends = append(ends, i)
		}
	}
	if len(ends) != 5 {
		t.Fatalf("%d records, want 5", len(ends))
	}
	start := ends[3]
	for cut := start; cut < ends[4]; cut++ {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, name), data[:cut], 0o600); err != nil {
			t.Fatal(err)
		}
		l, q := openTestLog(t, dir, DefaultSegmentSize)
		if want := []uint64{1, 2, 3, 4}; !slices.Equal(q, want) {
			l.Close()
			t.Fatalf("cut at %d (last record %d..%d): recovered %v, want %v", cut, start, ends[4], q, want)
		}
		if cut%16 == 0 || cut == start || cut == ends[4]-1 {
			enqueue(t, l, 6, 0)
			l.Close()
			l, q = openTestLog(t, dir, DefaultSegmentSize)
			if want := []uint64{1, 2, 3, 4, 6}; !slices.Equal(q, want) {
				l.Close()
				t.Fatalf("cut at %d, then one more record: recovered %v, want %v", cut, q, want)
			}
		}
		l.Close()
	}
	// A flipped byte in the last record loses it alone too.
	dir := t.TempDir()
	bad := slices.Clone(data)
	bad[ends[4]-3] ^= 0x40
	if err := os.WriteFile(filepath.Join(dir, name), bad, 0o600); err != nil {
		t.Fatal(err)
	}
	l, q := openTestLog(t, dir, DefaultSegmentSize)
	defer l.Close()
	if want := []uint64{1, 2, 3, 4}; !slices.Equal(q, want) {
		t.Fatalf("a damaged last record: recovered %v, want %v", q, want)
	}
}

// Segments roll at their size, and the ones that hold nothing queued are
// deleted: their number stays small; a reopen finds exactly what is queued.
func TestLogRollsAndDeletesSegments(t *testing.T) {
	dir := t.TempDir()
	l, _ := openTestLog(t, dir, 4096) // about 15 notifications a segment
	maxSegs := 0
	for seq := uint64(1); seq <= 600; seq++ {
		enqueue(t, l, seq, 0)
		if seq > 1 {
			l.RemoveLater([]uint64{seq - 1})
		}
		maxSegs = max(maxSegs, l.segmentCount())
	}
	if maxSegs > 3 {
		t.Fatalf("up to %d segment files for a handful of queued notifications", maxSegs)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l, q := openTestLog(t, dir, 4096)
	defer l.Close()
	if want := []uint64{600}; !slices.Equal(q, want) {
		t.Fatalf("after reopen: %v, want %v", q, want)
	}
}

// A notification that stays queued while many others come and go is
// copied forward when its segment is the oldest, and survives a reopen.
func TestLogKeepsALongQueuedNotification(t *testing.T) {
	dir := t.TempDir()
	l, _ := openTestLog(t, dir, 4096)
	enqueue(t, l, 1, 0)
	for seq := uint64(2); seq <= 300; seq++ {
		enqueue(t, l, seq, 0)
		if seq > 2 {
			l.RemoveLater([]uint64{seq - 1})
		}
	}
	if n := l.segmentCount(); n > 4 {
		t.Fatalf("%d segment files", n)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l, q := openTestLog(t, dir, 4096)
	defer l.Close()
	if want := []uint64{1, 300}; !slices.Equal(q, want) {
		t.Fatalf("after reopen: %v, want %v", q, want)
	}
}

// A data directory from before the log, with notifications queued in the
// bbolt file, loads: they move into the log, once.
func TestOpenMovesQueuedNotificationsIntoTheLog(t *testing.T) {
	path := filepath.Join(t.TempDir(), "db")
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	e := openAt(t, path, now)
	setUp(t, e)
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(LogDir(path)); err != nil {
		t.Fatal(err)
	}
	b, err := OpenBolt(path) // as an older server left it
	if err != nil {
		t.Fatal(err)
	}
	for seq := uint64(1); seq <= 3; seq++ {
		n := testNote(seq)
		n.AcceptedAt, n.DeliverAt, n.ExpiresAt = now, now, now.Add(time.Hour)
		putQueued(t, b, n)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		e = openAt(t, path, now)
		p, err := e.Pending(context.Background(), "d", now)
		if err != nil || !slices.Equal(seqsOf(p), []uint64{1, 2, 3}) {
			t.Fatalf("pending %v %v, want [1 2 3]", seqsOf(p), err)
		}
		if q, _ := e.Bolt().Queued(); len(q) != 0 {
			t.Fatalf("the bbolt file still holds %v", seqsOf(q))
		}
		if a := appendOne(t, e, "raw", "", now); a.Seq <= 3 {
			t.Fatalf("new seq %d", a.Seq)
		} else if err := e.Remove(context.Background(), "d", []uint64{a.Seq}); err != nil {
			t.Fatal(err)
		}
		if err := e.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// FuzzParseSegment: whatever a segment file holds, reading it never
// panics, stops at a record boundary, and reads its valid prefix the same
// way again; records written by appendRecord read back as written.
func FuzzParseSegment(f *testing.F) {
	var seg []byte
	crc := segmentSeed(1)
	seg, crc = appendRecord(seg, crc, appendPut(nil, 1, []byte(`{"seq":1,"payload":"AAAA"}`)))
	seg, _ = appendRecord(seg, crc, appendRemove(appendPut(nil, 2, []byte(`{"seq":2}`)), []uint64{1, 300}))
	f.Add(seg, uint64(1))
	f.Add(seg[:len(seg)-3], uint64(1))
	f.Add(append(slices.Clone(seg), make([]byte, 64)...), uint64(1))
	f.Add([]byte{}, uint64(7))
	f.Fuzz(func(t *testing.T, data []byte, id uint64) {
		var n1 int
		valid, crc := parseSegment(data, segmentSeed(id), func(es []entry) { n1 += len(es) })
		if valid < 0 || valid > len(data) {
			t.Fatalf("valid %d of %d bytes", valid, len(data))
		}
		var n2 int
		valid2, crc2 := parseSegment(data[:valid], segmentSeed(id), func(es []entry) { n2 += len(es) })
		if valid2 != valid || crc2 != crc || n2 != n1 {
			t.Fatalf("the valid prefix reads differently: %d/%d bytes, %d/%d entries", valid2, valid, n2, n1)
		}
		// The bytes as one record body: framed, they read back entry for
		// entry if they parse as a body at all.
		es, err := parseBody(data)
		if err != nil || len(data) == 0 {
			return
		}
		rec, _ := appendRecord(nil, segmentSeed(id), data)
		var got []entry
		if v, _ := parseSegment(rec, segmentSeed(id), func(e []entry) { got = e }); v != len(rec) || len(got) != len(es) {
			t.Fatalf("a framed body reads %d of %d bytes, %d of %d entries", v, len(rec), len(got), len(es))
		}
	})
}

// failWrites makes the next n record writes of l fail as on a full disk
// (ENOSPC, nothing written). Call it while nothing is being committed.
func failWrites(l *Log, n int) {
	var mu sync.Mutex
	l.fail = func(what string) error {
		mu.Lock()
		defer mu.Unlock()
		if what == "write" && n > 0 {
			n--
			return syscall.ENOSPC
		}
		return nil
	}
}

// A write that fails may start the log afresh only if nothing written
// before stays queued. A Seq removed twice in the failed commit (here a
// tile update replaced while its acknowledgement waits in the lazy
// removals) counts once: 2 stays queued, so the old segment must stay.
func TestLogFailedWriteKeepsWhatAReplacedAndAckedSeqDoesNotFree(t *testing.T) {
	dir := t.TempDir()
	l, _ := openTestLog(t, dir, DefaultSegmentSize)
	l.SetRemoveDelay(time.Hour) // the removal of 1 rides on the next commit
	enqueue(t, l, 1, 0)
	enqueue(t, l, 2, 0)
	l.RemoveLater([]uint64{1})
	failWrites(l, 1)
	err3 := <-l.EnqueueThen(testNote(3), 1, nil) // replaces 1
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l, q := openTestLog(t, dir, DefaultSegmentSize)
	defer l.Close()
	want := []uint64{2}
	if err3 == nil {
		want = []uint64{2, 3}
	}
	if !slices.Equal(q, want) {
		t.Fatalf("after reopen: %v, want %v (the append of 3: %v)", q, want, err3)
	}
}

// A tile update's replacement does not free the segment of the update it
// replaces: if the commit fails, the replaced update stays queued (the
// store puts it back), so it must stay on disk too, however often the
// write fails.
func TestLogFailedReplacementKeepsTheReplaced(t *testing.T) {
	dir := t.TempDir()
	l, _ := openTestLog(t, dir, DefaultSegmentSize)
	enqueue(t, l, 1, 0)
	failWrites(l, 2)
	if err := <-l.EnqueueThen(testNote(2), 1, nil); err == nil {
		t.Fatal("an append whose writes failed succeeded")
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l, q := openTestLog(t, dir, DefaultSegmentSize)
	defer l.Close()
	if want := []uint64{1}; !slices.Equal(q, want) {
		t.Fatalf("after reopen: %v, want %v", q, want)
	}
}

// maxSegmentID is the id of the newest segment file of dir.
func maxSegmentID(t *testing.T, dir string) uint64 {
	t.Helper()
	ids, err := segmentIDs(dir)
	if err != nil || len(ids) == 0 {
		t.Fatalf("segments %v %v", ids, err)
	}
	return ids[len(ids)-1]
}

// With more notifications queued than a segment holds, a commit does not
// roll and copy them all again: N commits start O(N × record / segment)
// segments, the files stay a few times the queued data, and a reopen finds
// every notification.
func TestLogManyQueuedDoesNotRollEveryCommit(t *testing.T) {
	dir := t.TempDir()
	const segSize = 4096 // about 15 notifications
	l, _ := openTestLog(t, dir, segSize)
	var want []uint64
	for seq := uint64(1); seq <= 60; seq++ { // about 4 segments, all queued
		enqueue(t, l, seq, 0)
		want = append(want, seq)
	}
	before := maxSegmentID(t, dir)
	const n = 300
	for seq := uint64(1000); seq < 1000+n; seq++ {
		enqueue(t, l, seq, 0)
		if seq > 1000 {
			l.RemoveLater([]uint64{seq - 1})
		}
	}
	want = append(want, 1000+n-1)
	// 300 records of about 270 bytes fill 20 segments; copies add none.
	if started := maxSegmentID(t, dir) - before; started > 30 {
		t.Fatalf("%d commits started %d segments", n, started)
	}
	var total int64
	ids, _ := segmentIDs(dir)
	for _, id := range ids {
		fi, err := os.Stat(segmentPath(dir, id))
		if err != nil {
			t.Fatal(err)
		}
		total += fi.Size()
	}
	if total > 16*segSize {
		t.Fatalf("%d segment files of %d bytes for 61 queued notifications", len(ids), total)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l, q := openTestLog(t, dir, segSize)
	defer l.Close()
	if !slices.Equal(q, want) {
		t.Fatalf("after reopen: %v, want %v", q, want)
	}
}

// failSyncs, as a Log's fail hook, makes every fdatasync fail (EIO).
func failSyncs(what string) error {
	if what == "sync" {
		return syscall.EIO
	}
	return nil
}

// A record whose fdatasync failed was refused (503), so it never replays:
// its bytes are cut before the next write, and a restart right after the
// failure does not find it.
func TestLogFailedSyncDoesNotReplay(t *testing.T) {
	dir := t.TempDir()
	l, _ := openTestLog(t, dir, DefaultSegmentSize)
	enqueue(t, l, 1, 0)
	l.fail = failSyncs
	if err := <-l.EnqueueThen(testNote(2), 0, nil); err == nil {
		t.Fatal("an append whose fdatasync failed succeeded")
	}
	if q, err := l.Queued(); err != nil || !slices.Equal(seqsOf(q), []uint64{1}) {
		t.Fatalf("on disk after the failure: %v %v, want [1]", seqsOf(q), err)
	}
	l.fail = nil
	// The unsynced state of that file is unknown after a failed
	// fdatasync: the next record starts a new segment.
	before := len(l.segs)
	enqueue(t, l, 3, 0)
	if len(l.segs) != before+1 {
		t.Fatalf("after a failed fdatasync the next commit wrote into the same segment (%d segments, had %d)", len(l.segs), before)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l, q := openTestLog(t, dir, DefaultSegmentSize)
	defer l.Close()
	if want := []uint64{1, 3}; !slices.Equal(q, want) {
		t.Fatalf("after reopen: %v, want %v", q, want)
	}
}

// Where segments cannot be preallocated (off Linux, or a file system
// without fallocate), the log grows its files as it writes them and keeps
// the same records across a reopen, a roll, a torn last record and a
// failed fdatasync; each file ends where its records do.
func TestLogWithoutPreallocation(t *testing.T) {
	allocateSegment = func(*os.File, int64) error { return errors.ErrUnsupported }
	defer func() { allocateSegment = allocate }()
	dir := t.TempDir()
	// lastSegment is the last segment's bytes and how many of them are
	// whole records.
	lastSegment := func() ([]byte, int, string) {
		t.Helper()
		ids, err := segmentIDs(dir)
		if err != nil || len(ids) == 0 {
			t.Fatalf("segments %v %v", ids, err)
		}
		path := segmentPath(dir, ids[len(ids)-1])
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		valid, _ := parseSegment(data, segmentSeed(ids[len(ids)-1]), func([]entry) {})
		return data, valid, path
	}
	endsWithItsRecords := func(when string) {
		t.Helper()
		if data, valid, _ := lastSegment(); valid != len(data) {
			t.Fatalf("%s: the last segment is %d bytes, its records %d: without preallocation it ends where they do", when, len(data), valid)
		}
	}

	l, _ := openTestLog(t, dir, 4096) // about 15 notifications a segment
	for seq := uint64(1); seq <= 40; seq++ {
		enqueue(t, l, seq, 0)
	}
	if err := l.Remove([]uint64{1, 2, 3, 39}); err != nil {
		t.Fatal(err)
	}
	// A big notification last, to be torn below.
	big := testNote(41)
	big.Payload = bytes.Repeat([]byte{'b'}, 2000)
	if err := <-l.EnqueueThen(big, 0, nil); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if ids, err := segmentIDs(dir); err != nil || len(ids) < 2 {
		t.Fatalf("segments %v %v: 40 records of about 270 bytes roll a 4 KiB segment", ids, err)
	}
	endsWithItsRecords("after Close")
	var want []uint64
	for seq := uint64(4); seq <= 41; seq++ {
		if seq != 39 {
			want = append(want, seq)
		}
	}
	l, q := openTestLog(t, dir, 4096)
	if !slices.Equal(q, want) {
		l.Close()
		t.Fatalf("after reopen: %v, want %v", q, want)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}

	// The big record torn: it alone is lost, its bytes are cut away (a
	// small record written next would leave some of them after it), and
	// the log goes on.
	data, _, path := lastSegment()
	if err := os.WriteFile(path, data[:len(data)-5], 0o600); err != nil {
		t.Fatal(err)
	}
	want = want[:len(want)-1]
	l, q = openTestLog(t, dir, 4096)
	defer func() { l.Close() }()
	if !slices.Equal(q, want) {
		t.Fatalf("after the last record was torn: %v, want %v", q, want)
	}
	enqueue(t, l, 42, 0)
	endsWithItsRecords("after a record written past the torn one")

	// A failed fdatasync cuts its record away.
	l.fail = failSyncs
	if err := <-l.EnqueueThen(testNote(43), 0, nil); err == nil {
		t.Fatal("an enqueue whose fdatasync failed succeeded")
	}
	l.fail = nil
	endsWithItsRecords("after a failed fdatasync")
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l, q = openTestLog(t, dir, 4096)
	if want := append(want, 42); !slices.Equal(q, want) {
		t.Fatalf("after reopen: %v, want %v", q, want)
	}
}
