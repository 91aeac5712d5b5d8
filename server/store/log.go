package store

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/openmpns/openmpns/shared/clock"
)

// Log is the notification log: queued notifications and their removals as
// records in append-only segment files, one record, one write and one
// fdatasync per group commit. bbolt, which pays two fdatasyncs per commit
// (its data pages, then its meta page), keeps devices, channels and the Seq
// reservation; why this is worth its own code is measured in
// docs/benchmarks.md.
//
// On Linux segments are preallocated (fallocate), so that a commit's
// fdatasync need not write the file's size; a segment that cannot be
// preallocated (a full disk, a file size limit), and every segment on
// other systems (which sync with File.Sync), grows by its writes instead.
// The last segment takes commits until they fill segmentSize bytes of it;
// then a new one is started. Every leading segment that holds no queued notification is
// deleted (only leading ones: a later segment may hold the removal of a
// notification put in an earlier one). So that a notification queued for a
// long time does not keep every segment after it, a roll compacts the
// oldest segment, copying its queued notifications into the new one (in
// records of copyChunk bytes at most), when little of it is still queued or
// when the files hold much more than is queued; the copies do not count
// towards the new segment's size, so a commit never rolls twice.
// Removals are records too, written with the next commit or, when none
// comes, by a timer without an fdatasync of their own: a removal need not be
// durable (see backend.Queue.Remove).
//
// A group of notifications may linger before its commit (SetLinger): it is
// committed once its first notification was submitted that long ago (or
// the group is large, or something else than a notification is asked, or
// one of its notifications is hurried because no device is there to
// acknowledge it, or the log closes), with what came meanwhile. A notification acknowledged
// by its device meanwhile (RemoveLater) is then not written at all, nor is
// its removal: at a steady rate the device's acknowledgement, a fraction
// of a millisecond after the push, would otherwise come just after the
// write and its fdatasync. The price: a notification nobody acknowledges
// is durable that much later. A lingering notification does not wake the
// commit loop: its submission arms the group's timer, and when every
// notification of the group is acknowledged before it fires the group is
// dropped and the timer stopped, so that at a steady rate a notification
// acknowledged in time costs the loop nothing.
//
// After a failed write (a full disk) nothing is acknowledged; the next
// commit writes at the same place again, unless no notification written
// before would still be queued after it: then the old segments are deleted
// and the commit goes into a new one (the acknowledgements of a device made
// room).
type Log struct {
	dir  string
	done chan struct{}

	// pmu guards what is submitted and not yet taken by the commit loop.
	pmu    sync.Mutex
	closed bool
	pend   []*op
	// pendAt is when pend's first op was submitted (its linger's start),
	// pendBytes what pend's notifications may take in a record.
	pendAt    time.Time
	pendBytes int
	// pendLive counts pend's notifications that a RemoveLater may still
	// spare (not cancelled, replacing nothing), pendReplacing those that
	// replace another (whose removal is written even if they are
	// acknowledged), pendOther its ops of other kinds (which end a
	// linger). pend holds nothing to write when all three are 0.
	pendLive, pendReplacing, pendOther int
	// pendHurried: pend holds a notification nobody will acknowledge soon
	// (Hurry), which ends its linger.
	pendHurried bool
	// kick tells the loop that pend has something to take (cap 1).
	kick chan struct{}
	// timer fires when pend's linger is over; armed while it lingers.
	timer lingerTimer

	// unwritten holds the Enqueue ops not yet committed, by Seq, so that
	// RemoveLater can cancel their write.
	unwritten opIndex

	lazyMu      sync.Mutex
	lazy        []uint64
	lazyTimer   *time.Timer
	removeDelay time.Duration

	// linger is how long a group of notifications waits for more, and for
	// acknowledgements, from its first one's submission (SetLinger); 0
	// commits at once. Set before use.
	linger time.Duration
	// clk, when set (by a test), is the time source of lingers in place of
	// the runtime's clock and timers.
	clk clock.Clock
	// onLinger, when set (by a test), is called each time a group starts
	// to linger (its timer is armed), with how long it will wait at most.
	onLinger func(wait time.Duration)

	// The rest belongs to the commit loop (and to OpenLog before it starts).
	segSize int64
	segs    []*segment // in order; the last is written (none after a failed fresh start)
	nextID  uint64     // the next segment's id
	// where says which segment holds each queued notification.
	where map[uint64]loc
	off   int64  // where the next record goes in the last segment
	crc   uint32 // the last record's CRC in the last segment
	// fresh is how many bytes of commits (not of compaction copies) the
	// last segment holds: it rolls when they would pass segSize.
	fresh int64
	// tainted: a failed write left bytes in the last segment that could
	// not be cut; the next write starts a new segment.
	tainted bool
	buf     []byte
	body    []byte
	note    []byte // a notification's JSON, being encoded
	changes []change

	// Counters for Stats; written by the commit loop.
	records, syncs, written, skipped atomic.Uint64
	// wakes counts the commit loop's wake-ups, for tests.
	wakes atomic.Uint64

	// fail, when set (by a test, before the writes it affects are
	// submitted), is asked before each write ("write") and fdatasync
	// ("sync") of a record; an error it returns is that call's (a full
	// disk, an I/O error).
	fail func(what string) error
}

type segment struct {
	id   uint64
	path string
	f    *os.File // the last segment's only
	live int      // notifications in it still queued
	// liveBytes is the size of their put entries; size the segment's
	// valid length.
	liveBytes, size int64
}

// loc is where a queued notification's put entry is: its segment and the
// entry's size.
type loc struct {
	seg  *segment
	size int64
}

// putSize is what a put entry of data counts in segment.liveBytes.
func putSize(data []byte) int64 { return int64(len(data)) + 12 }

// DefaultSegmentSize is how large a segment grows before the next starts.
const DefaultSegmentSize = 16 << 20

// What an op asks of the log's commit loop (op.kind).
const (
	opPut    = iota + 1 // a notification (n, data, replace)
	opRemove            // removals to write durably (seqs)
	opFunc              // run fn in the loop (Hold)
)

// DefaultCommitLinger is how long a group commit of the embedded backend
// waits by default for acknowledgements that spare its write (Options).
const DefaultCommitLinger = 5 * time.Millisecond

// lingerBytes ends a linger early: a group of notifications this large is
// committed at once (its fdatasync is shared widely enough).
const lingerBytes = 256 << 10

const segmentExt = ".seg"

// OpenLog opens (or creates) the notification log in dir and returns it
// with the notifications it holds, in Seq order.
func OpenLog(dir string) (*Log, []*Notification, error) {
	return openLog(dir, DefaultSegmentSize)
}

func openLog(dir string, segSize int64) (*Log, []*Notification, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, nil, fmt.Errorf("store: create notification log: %w", err)
	}
	// The directory's entry in its parent survives a crash (it may have
	// just been created).
	if err := syncDir(filepath.Dir(dir)); err != nil {
		return nil, nil, fmt.Errorf("store: create notification log: %w", err)
	}
	l := &Log{dir: dir, kick: make(chan struct{}, 1), done: make(chan struct{}),
		removeDelay: DefaultRemoveDelay, segSize: segSize, where: map[uint64]loc{}}
	queued, err := l.recover()
	if err != nil {
		l.closeFiles()
		return nil, nil, fmt.Errorf("store: notification log %s: %w", dir, err)
	}
	l.timer.init(l)
	go l.commitLoop()
	return l, queued, nil
}

// segmentIDs lists the segment files of dir, in order.
func segmentIDs(dir string) ([]uint64, error) {
	des, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var ids []uint64
	for _, de := range des {
		name, ok := strings.CutSuffix(de.Name(), segmentExt)
		if !ok {
			continue
		}
		id, err := strconv.ParseUint(name, 16, 64)
		if err != nil || len(name) != 16 {
			return nil, fmt.Errorf("unexpected file %s in the log directory", de.Name())
		}
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids, nil
}

func segmentPath(dir string, id uint64) string {
	return filepath.Join(dir, fmt.Sprintf("%016x%s", id, segmentExt))
}

// readSegments replays every segment of dir: fn gets each entry, with its
// segment, in order; puts carry their notification decoded. It returns the
// segments, and the valid length and last CRC of the last one.
func readSegments(dir string, fn func(s *segment, e entry, n *Notification)) (segs []*segment, valid int64, crc uint32, err error) {
	ids, err := segmentIDs(dir)
	if err != nil {
		return nil, 0, 0, err
	}
	for _, id := range ids {
		s := &segment{id: id, path: segmentPath(dir, id)}
		data, err := os.ReadFile(s.path)
		if err != nil {
			return nil, 0, 0, err
		}
		var bad error
		v, c := parseSegment(data, segmentSeed(id), func(es []entry) {
			for _, e := range es {
				var n *Notification
				if e.kind == entryPut {
					n = new(Notification)
					err := json.Unmarshal(e.data, n)
					if err == nil && n.Seq != e.seq {
						err = fmt.Errorf("seq %d in a put of seq %d", n.Seq, e.seq)
					}
					if err != nil && bad == nil {
						bad = fmt.Errorf("segment %s: notification: %w", filepath.Base(s.path), err)
					}
				}
				fn(s, e, n)
			}
		})
		if bad != nil {
			return nil, 0, 0, bad
		}
		s.size = int64(v)
		segs = append(segs, s)
		valid, crc = int64(v), c
	}
	return segs, valid, crc, nil
}

// recover replays the segments, truncates the last one's torn tail and opens
// it for writing (or starts the first).
func (l *Log) recover() ([]*Notification, error) {
	queued := map[uint64]*Notification{}
	segs, valid, crc, err := readSegments(l.dir, func(s *segment, e entry, n *Notification) {
		switch e.kind {
		case entryPut:
			l.unindex(e.seq)
			queued[e.seq] = n
			l.index(e.seq, s, putSize(e.data))
		case entryRemove:
			for _, seq := range e.seqs {
				l.unindex(seq)
				delete(queued, seq)
			}
		}
	})
	if err != nil {
		return nil, err
	}
	l.segs = segs
	if len(segs) == 0 {
		if err := l.startSegment(1); err != nil {
			return nil, err
		}
	} else {
		last := segs[len(segs)-1]
		f, err := os.OpenFile(last.path, os.O_RDWR, 0)
		if err != nil {
			return nil, err
		}
		last.f = f
		l.nextID = last.id + 1
		// The torn tail goes: the file is cut where the valid records end
		// and preallocated again (zeros), so nothing stale follows them.
		if err := f.Truncate(valid); err != nil {
			return nil, fmt.Errorf("truncate the torn tail of %s: %w", last.path, err)
		}
		l.preallocate(f)
		if err := dataSync(f); err != nil {
			return nil, fmt.Errorf("sync %s: %w", last.path, err)
		}
		l.off, l.crc = valid, crc
		l.fresh = valid
	}
	l.deleteDead()
	out := make([]*Notification, 0, len(queued))
	for _, n := range queued {
		out = append(out, n)
	}
	slices.SortFunc(out, func(a, b *Notification) int { return compareSeq(a.Seq, b.Seq) })
	return out, nil
}

func compareSeq(a, b uint64) int { return cmp.Compare(a, b) }

// index records that seq's put entry of size bytes is in s.
func (l *Log) index(seq uint64, s *segment, size int64) {
	l.where[seq] = loc{s, size}
	s.live++
	s.liveBytes += size
}

// unindex forgets where seq is (it was removed, or is put again).
func (l *Log) unindex(seq uint64) {
	if w, ok := l.where[seq]; ok {
		w.seg.live--
		w.seg.liveBytes -= w.size
		delete(l.where, seq)
	}
}

// allocateSegment is allocate; a variable, so that the tests run the log
// where segments are not preallocated, as off Linux.
var allocateSegment = allocate

// preallocate reserves the segment's space, so that a commit's fdatasync
// need not write the file size; where it cannot (no space, a file size
// limit, a file system without fallocate, a system other than Linux),
// writes grow the file.
func (l *Log) preallocate(f *os.File) {
	if err := allocateSegment(f, l.segSize); err != nil {
		slog.Debug("store: notification log segment not preallocated", "file", f.Name(), "err", err)
	}
}

// startSegment creates segment id, makes it the last and syncs the
// directory so that the file survives a crash.
func (l *Log) startSegment(id uint64) error {
	s := &segment{id: id, path: segmentPath(l.dir, id)}
	f, err := os.OpenFile(s.path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("create log segment: %w", err)
	}
	l.preallocate(f)
	if err := syncDir(l.dir); err != nil {
		f.Close()
		os.Remove(s.path)
		return fmt.Errorf("create log segment: %w", err)
	}
	l.nextID = id + 1
	if n := len(l.segs); n > 0 && l.segs[n-1].f != nil {
		l.segs[n-1].f.Close()
		l.segs[n-1].f = nil
	}
	s.f = f
	l.segs = append(l.segs, s)
	l.off, l.crc, l.fresh = 0, segmentSeed(id), 0
	l.tainted = false
	return nil
}

// deleteDead deletes the leading segments that hold no queued notification
// (never the last). Only leading ones: a later segment may hold the removal
// of a notification in an earlier one.
func (l *Log) deleteDead() {
	for len(l.segs) > 1 && l.segs[0].live == 0 {
		if err := os.Remove(l.segs[0].path); err != nil && !errors.Is(err, os.ErrNotExist) {
			slog.Warn("store: delete a notification log segment", "file", l.segs[0].path, "err", err)
			return
		}
		l.segs = l.segs[1:]
	}
}

func (l *Log) closeFiles() {
	for _, s := range l.segs {
		if s.f != nil {
			s.f.Close()
			s.f = nil
		}
	}
}

// DefaultRemoveDelay bounds how long a RemoveLater waits for a commit to
// ride on; SetRemoveDelay changes it.
const DefaultRemoveDelay = 100 * time.Millisecond

// SetRemoveDelay sets how long a RemoveLater may wait for a commit to ride
// on before it is written on its own. Call it before use.
func (l *Log) SetRemoveDelay(d time.Duration) {
	l.lazyMu.Lock()
	defer l.lazyMu.Unlock()
	if d > 0 {
		l.removeDelay = d
	}
}

// commitLoop runs every write: it takes the ops submitted when it is
// kicked or when their linger is over, writes them as one record and syncs
// it once.
func (l *Log) commitLoop() {
	defer close(l.done)
	defer l.closeFiles()
	var group []*op
	for {
		select {
		case <-l.kick:
		case <-l.timer.c():
		}
		l.wakes.Add(1)
		for {
			var closed bool
			group, closed = l.take(group[:0])
			if len(group) == 0 {
				if closed {
					return
				}
				break
			}
			l.commitGroup(group)
			clear(group)
		}
	}
}

// commitGroup commits group and reports each op's outcome.
func (l *Log) commitGroup(group []*op) {
	lazy, err := l.commit(group, true)
	if err != nil && len(lazy) > 0 {
		l.putBackLazy(lazy)
	}
	for _, o := range group {
		if o.seq != 0 {
			l.unwritten.delete(o.seq)
		}
		if err != nil && o.kind != opFunc {
			o.finish(fmt.Errorf("store: commit: %w", err))
		} else {
			o.finish(nil)
		}
	}
}

// take appends to group what is submitted, up to maxGroup ops, if it is
// due: at once without a linger, when the log closes, when something else
// than a notification waits, when the group is full (maxGroup ops or
// lingerBytes), or when its first notification has lingered. It also
// reports whether the log is closed.
func (l *Log) take(group []*op) ([]*op, bool) {
	l.pmu.Lock()
	defer l.pmu.Unlock()
	if len(l.pend) == 0 {
		return group, l.closed
	}
	now := l.now()
	if !l.dueLocked(now) {
		// A kick meant for a group taken since: this one lingers on (its
		// first submission armed the timer).
		return group, false
	}
	k := min(len(l.pend), maxGroup)
	group = append(group, l.pend[:k]...)
	for _, o := range group {
		o.waiting, o.live = false, false
	}
	rest := l.pend[k:]
	l.pend = nil
	l.pendLive, l.pendReplacing, l.pendOther, l.pendBytes = 0, 0, 0, 0
	l.pendHurried = false
	l.timer.stop()
	for _, o := range rest { // more than a group: counted again
		l.addLocked(o)
	}
	if len(l.pend) > 0 && !l.dueLocked(now) {
		l.armLocked(now)
	}
	return group, l.closed
}

// dueLocked reports whether pend is to be committed at now. l.pmu is held.
func (l *Log) dueLocked(now time.Time) bool {
	return l.linger <= 0 || l.closed || l.pendOther > 0 || l.pendHurried ||
		len(l.pend) >= maxGroup || l.pendBytes >= lingerBytes ||
		!now.Before(l.pendAt.Add(l.linger))
}

// addLocked adds o to pend. l.pmu is held.
func (l *Log) addLocked(o *op) {
	if len(l.pend) == 0 {
		l.pendAt = o.at
	}
	l.pend = append(l.pend, o)
	// live is set here only: an op added again (take leaves the rest of a
	// large group) may have been cancelled since it was first counted.
	o.waiting, o.live = true, false
	if o.hurried {
		l.pendHurried = true
	}
	switch {
	case o.kind != opPut:
		l.pendOther++
	case o.replace != 0:
		l.pendReplacing++
	case o.state.Load() == opQueued:
		l.pendLive++
		o.live = true
	}
	if o.n != nil {
		l.pendBytes += noteJSONSize(o.n)
	}
}

// armLocked arms the timer for the end of pend's linger, as seen at now.
// l.pmu is held.
func (l *Log) armLocked(now time.Time) {
	wait := l.pendAt.Add(l.linger).Sub(now)
	l.timer.arm(max(wait, 0))
	if l.onLinger != nil {
		l.onLinger(wait)
	}
}

// lingerTimer ends lingers: a runtime timer the commit loop waits on, or,
// in tests, an AfterFunc of the log's clock that kicks the loop.
type lingerTimer struct {
	l    *Log
	t    *time.Timer
	fake clock.Timer
}

func (t *lingerTimer) init(l *Log) {
	t.l = l
	t.t = time.NewTimer(time.Hour)
	t.t.Stop()
}

// c is what the commit loop waits on besides its kicks.
func (t *lingerTimer) c() <-chan time.Time { return t.t.C }

// arm makes the timer fire after d, in place of any earlier arming.
func (t *lingerTimer) arm(d time.Duration) {
	if t.l.clk == nil {
		t.t.Reset(d)
		return
	}
	if t.fake != nil {
		t.fake.Stop()
	}
	t.fake = t.l.clk.AfterFunc(d, t.l.wake)
}

// stop disarms the timer (a stopped runtime timer delivers nothing stale).
func (t *lingerTimer) stop() {
	t.t.Stop()
	if t.fake != nil {
		t.fake.Stop()
		t.fake = nil
	}
}

// wake kicks the commit loop.
func (l *Log) wake() {
	select {
	case l.kick <- struct{}{}:
	default: // kicked already
	}
}

// now is the lingers' time source.
func (l *Log) now() time.Time {
	if l.clk != nil {
		return l.clk.Now()
	}
	return time.Now()
}

// SetLinger sets how long a group commit of notifications waits, from the
// submission of its first one, for more and for acknowledgements that spare
// their write (see Log); 0 or less commits at once. Call it before use.
func (l *Log) SetLinger(d time.Duration) {
	l.linger = max(d, 0)
}

// commit writes the group's changes and the lazy removals as one record;
// with sync it is durable when commit returns. It returns the lazy removals
// it took. A group with nothing to write (every notification acknowledged
// before its commit) writes nothing, and leaves the lazy removals for a
// commit that syncs or for their timer: a record of removals alone is a
// write saved for later.
func (l *Log) commit(group []*op, sync bool) (lazy []uint64, err error) {
	body := l.body[:0]
	changes := l.changes[:0] // in record order
	// freed: what the record removes because it was delivered or expired,
	// not a tile update it replaces (if the record fails, the replaced
	// one is queued again, see Embedded.takeLeft).
	var freed map[uint64]struct{}
	free := func(seqs []uint64) {
		if freed == nil {
			freed = make(map[uint64]struct{}, len(seqs))
		}
		for _, seq := range seqs {
			freed[seq] = struct{}{}
			changes = append(changes, change{seq: seq})
		}
	}
	durable, flush := false, false
	puts := uint64(0)
	for _, o := range group {
		switch o.kind {
		case opFunc:
			flush = true // the removals' timer (flushLazy), or a Hold
			o.fn()
		case opPut:
			if o.replace != 0 {
				// Durable even if the update itself was acknowledged
				// first: a replaced tile update must not come back.
				durable = true
				body = appendRemove(body, []uint64{o.replace})
				changes = append(changes, change{seq: o.replace})
			}
			if o.state.CompareAndSwap(opQueued, opApplied) {
				durable = true
				// Encoded only now: a notification acknowledged before its
				// commit is never encoded either.
				l.note = appendNoteJSON(l.note[:0], o.n)
				body = appendPut(body, o.seq, l.note)
				changes = append(changes, change{seq: o.seq, size: putSize(l.note)})
				puts++
			} else {
				l.skipped.Add(1)
			}
		case opRemove:
			durable = true
			body = appendRemove(body, o.seqs)
			free(o.seqs)
		}
	}
	if durable || flush {
		lazy = l.takeLazy()
	}
	if len(lazy) > 0 {
		body = appendRemove(body, lazy)
		free(lazy)
	}
	l.body, l.changes = body, changes
	if len(body) == 0 {
		return lazy, nil
	}
	if err := l.write(body, sync && durable, freed); err != nil {
		return lazy, err
	}
	l.written.Add(puts)
	last := l.segs[len(l.segs)-1]
	for _, c := range changes {
		l.unindex(c.seq)
		if c.size > 0 {
			l.index(c.seq, last, c.size)
		}
	}
	l.deleteDead()
	return lazy, nil
}

// change is one entry of a commit's record, for the index (Log.where).
type change struct {
	seq  uint64
	size int64 // a put's (putSize); 0 for a removal
}

// write appends body as a record to the last segment, starting a new
// segment first when the last is full.
func (l *Log) write(body []byte, sync bool, freed map[uint64]struct{}) error {
	if len(l.segs) == 0 { // a fresh start could not create its segment
		if err := l.startSegment(l.nextID); err != nil {
			return err
		}
	}
	if l.tainted {
		if err := l.startSegment(l.nextID); err != nil {
			return err
		}
	}
	if l.fresh > 0 && l.fresh+recordHeader+int64(len(body)) > l.segSize {
		if err := l.roll(); err != nil {
			return err
		}
	}
	err := l.writeRecord(body, sync)
	if err == nil {
		l.fresh += recordHeader + int64(len(body))
		return nil
	}
	// A full disk: if nothing written before stays queued after this
	// record, the old segments go and the record starts a new one.
	if l.nothingLiveBut(freed) {
		slog.Info("store: notification log: a write failed; starting a new segment in place of segments that hold nothing queued", "err", err)
		for _, s := range l.segs {
			s.live, s.liveBytes = 0, 0
		}
		clear(l.where)
		l.deleteAll()
		if err2 := l.startSegment(l.nextID); err2 != nil {
			return errors.Join(err, err2)
		}
		if err = l.writeRecord(body, sync); err == nil {
			l.fresh += recordHeader + int64(len(body))
		}
	}
	return err
}

// nothingLiveBut reports whether every queued notification of the log is
// in freed.
func (l *Log) nothingLiveBut(freed map[uint64]struct{}) bool {
	if len(freed) < len(l.where) {
		return false
	}
	for seq := range l.where {
		if _, ok := freed[seq]; !ok {
			return false
		}
	}
	return true
}

// deleteAll deletes every segment (none holds a queued notification), in
// order. One that cannot be deleted (on Windows, a file another program
// holds open) stops it there: that segment and the later ones, whose
// removals may cancel its notifications, stay, for deleteDead to delete
// once it can.
func (l *Log) deleteAll() {
	l.closeFiles()
	for i, s := range l.segs {
		if err := os.Remove(s.path); err != nil && !errors.Is(err, os.ErrNotExist) {
			slog.Warn("store: delete a notification log segment", "file", s.path, "err", err)
			l.segs = slices.Delete(l.segs, 0, i)
			return
		}
	}
	l.segs = l.segs[:0]
}

// writeRecord writes body as the next record of the last segment. A write
// or fdatasync that fails leaves nothing of the record: its bytes are cut.
func (l *Log) writeRecord(body []byte, sync bool) error {
	last := l.segs[len(l.segs)-1]
	if len(body) > maxRecord {
		return fmt.Errorf("write %s: a record of %d bytes, more than %d", last.path, len(body), maxRecord)
	}
	buf, crc := appendRecord(l.buf[:0], l.crc, body)
	l.buf = buf
	if err := l.injected("write"); err != nil {
		return fmt.Errorf("write %s: %w", last.path, err)
	}
	if _, err := last.f.WriteAt(buf, l.off); err != nil {
		l.cut(l.off)
		return fmt.Errorf("write %s: %w", last.path, err)
	}
	if sync {
		err := l.injected("sync")
		if err == nil {
			err = dataSync(last.f)
		}
		if err != nil {
			l.cut(l.off)
			// What this file held unsynced before the record (removals
			// written without a sync) may have been lost with the pages
			// the failed writeback marked clean: a record written after
			// that hole would not be read again. Records go on in a new
			// segment.
			l.tainted = true
			return fmt.Errorf("sync %s: %w", last.path, err)
		}
	}
	l.off += int64(len(buf))
	l.crc = crc
	last.size = l.off
	l.records.Add(1)
	if sync {
		l.syncs.Add(1)
	}
	return nil
}

// cut takes what was written past off in the last segment away after a
// failed write (part of it may be on disk, or reach it later): the file is
// cut at off, preallocated again (zeros) and synced, so that the refused
// record never replays. If that fails too, the next write starts a new
// segment (l.tainted).
func (l *Log) cut(off int64) {
	last := l.segs[len(l.segs)-1]
	err := last.f.Truncate(off)
	if err == nil {
		l.preallocate(last.f)
		err = dataSync(last.f)
	}
	if err != nil {
		slog.Warn("store: notification log: cannot cut a failed write; the next write starts a new segment", "file", last.path, "err", err)
		l.tainted = true
	}
}

// injected is the test hook's verdict on the next write or sync.
func (l *Log) injected(what string) error {
	if l.fail == nil {
		return nil
	}
	return l.fail(what)
}

// roll starts a new segment and compacts the oldest one when little of it
// is still queued (less than a quarter of its bytes), or when the segments
// hold more than twice what is queued and two segments: its queued
// notifications are copied into the new segment, so that it can be deleted.
// One segment a roll: a roll copies at most a segment's worth.
func (l *Log) roll() error {
	if err := l.startSegment(l.nextID); err != nil {
		return err
	}
	oldest := l.segs[0]
	if len(l.segs) < 2 || oldest.live == 0 {
		return nil
	}
	var total, live int64
	for _, s := range l.segs {
		total += s.size
		live += s.liveBytes
	}
	if oldest.liveBytes*4 >= oldest.size && total <= 2*live+2*l.segSize {
		return nil
	}
	return l.compact(oldest)
}

// compact copies the notifications still queued in s into the last segment.
func (l *Log) compact(s *segment) error {
	data, err := os.ReadFile(s.path)
	if err != nil {
		return fmt.Errorf("compact %s: %w", s.path, err)
	}
	last := l.segs[len(l.segs)-1]
	off, crc, fresh := l.off, l.crc, l.fresh
	var moved []change
	seen := map[uint64]struct{}{}
	body := []byte(nil)
	var werr error
	written := false
	parseSegment(data, segmentSeed(s.id), func(es []entry) {
		for _, e := range es {
			if werr != nil || e.kind != entryPut || l.where[e.seq].seg != s {
				continue
			}
			if _, dup := seen[e.seq]; dup {
				continue
			}
			seen[e.seq] = struct{}{}
			body = appendPut(body, e.seq, e.data)
			moved = append(moved, change{seq: e.seq, size: putSize(e.data)})
			if len(body) >= copyChunk {
				werr = l.writeRecord(body, false)
				body, written = body[:0], true
			}
		}
	})
	if werr == nil && len(body) > 0 {
		werr = l.writeRecord(body, true)
	} else if werr == nil && written {
		if werr = l.injected("sync"); werr == nil {
			werr = dataSync(last.f)
		}
		if werr == nil {
			l.syncs.Add(1)
		}
	}
	if werr != nil {
		if l.off != off {
			l.cut(off)
		}
		l.off, l.crc, l.fresh = off, crc, fresh
		last.size = off
		return fmt.Errorf("compact %s: %w", s.path, werr)
	}
	for _, c := range moved {
		l.unindex(c.seq)
		l.index(c.seq, last, c.size)
	}
	return nil
}

// submit queues o for the commit loop; its err channel yields the outcome.
// A notification that lingers arms its group's timer (the first of the
// group) and does not wake the loop; anything else wakes it.
func (l *Log) submit(o *op) <-chan error {
	l.pmu.Lock()
	if l.closed {
		l.pmu.Unlock()
		if o.seq != 0 {
			l.unwritten.delete(o.seq)
		}
		o.finish(errClosed)
		return o.err
	}
	first := len(l.pend) == 0
	l.addLocked(o)
	now := l.now()
	switch {
	case l.dueLocked(now):
		l.timer.stop()
		l.wake()
	case first:
		l.armLocked(now)
	}
	l.pmu.Unlock()
	return o.err
}

// EnqueueThen submits n and returns at once; the channel yields the outcome
// once n is durable, after after learned it (with n). n must not change afterwards:
// the commit loop encodes it when it writes it. If replace is non-zero, the
// notification with that Seq is removed in the same record (a tile update
// replacing a queued one).
func (l *Log) EnqueueThen(n *Notification, replace uint64, after func(*Notification, error)) <-chan error {
	o := &op{kind: opPut, err: make(chan error, 1), after: after, seq: n.Seq, replace: replace, n: n}
	if err := checkNoteTimes(n); err != nil {
		o.finish(fmt.Errorf("store: encode notification: %w", err))
		return o.err
	}
	if l.linger > 0 {
		o.at = l.now()
	}
	l.unwritten.store(n.Seq, o)
	return l.submit(o)
}

// Hurry ends the linger of the notification seq, submitted by
// EnqueueThen, if it still lingers: its device is not there to acknowledge
// it, so waiting would only delay its sender. Its group is committed now.
func (l *Log) Hurry(seq uint64) {
	o := l.unwritten.load(seq)
	if o == nil {
		return // written, or being written
	}
	l.pmu.Lock()
	o.hurried = true // kept: a group taken in parts stays hurried (addLocked)
	if o.waiting && !l.pendHurried {
		l.pendHurried = true
		l.timer.stop()
		l.wake()
	}
	l.pmu.Unlock()
}

// Remove removes notifications and returns once that is durable.
func (l *Log) Remove(seqs []uint64) error {
	if len(seqs) == 0 {
		return nil
	}
	return <-l.submit(&op{kind: opRemove, err: make(chan error, 1), seqs: slices.Clone(seqs)})
}

// RemoveLater removes delivered or expired notifications without waiting:
// the removal rides on the next commit, or is written (without an fdatasync)
// within the remove delay. A notification whose Enqueue is not written yet
// is never written.
func (l *Log) RemoveLater(seqs []uint64) {
	rest := seqs[:0:0]
	var buf [4]*op
	spared := buf[:0]
	for _, seq := range seqs {
		if o := l.unwritten.load(seq); o != nil && o.state.CompareAndSwap(opQueued, opCancelled) {
			spared = append(spared, o)
			continue
		}
		rest = append(rest, seq)
	}
	if len(spared) > 0 {
		l.dropSpared(spared)
	}
	if len(rest) == 0 {
		return
	}
	l.lazyMu.Lock()
	defer l.lazyMu.Unlock()
	l.lazy = append(l.lazy, rest...)
	if l.lazyTimer == nil {
		l.lazyTimer = time.AfterFunc(l.removeDelay, l.flushLazy)
	}
}

// dropSpared counts the spared notifications (acknowledged before their
// write) out of the lingering group, and when nothing of it is left to
// write, drops it: its ops are finished here, without a wake-up of the
// commit loop, and its timer is stopped.
func (l *Log) dropSpared(spared []*op) {
	l.pmu.Lock()
	for _, o := range spared {
		if o.waiting && o.live {
			o.live = false
			l.pendLive--
		}
	}
	var dropped []*op
	if l.pendLive == 0 && l.pendReplacing == 0 && l.pendOther == 0 && len(l.pend) > 0 {
		dropped = l.pend
		l.pend = nil
		l.pendBytes = 0
		l.pendHurried = false
		l.timer.stop()
		for _, o := range dropped {
			o.waiting = false
		}
	}
	l.pmu.Unlock()
	for _, o := range dropped {
		// Every one was cancelled (pendLive counts the others, and a
		// cancelled op stays so): none is written, none is lost.
		l.unwritten.delete(o.seq)
		l.skipped.Add(1)
		o.finish(nil)
	}
}

func (l *Log) takeLazy() []uint64 {
	l.lazyMu.Lock()
	defer l.lazyMu.Unlock()
	if l.lazyTimer != nil { // this commit writes them
		l.lazyTimer.Stop()
		l.lazyTimer = nil
	}
	s := l.lazy
	l.lazy = nil
	return s
}

func (l *Log) putBackLazy(s []uint64) {
	l.lazyMu.Lock()
	defer l.lazyMu.Unlock()
	l.lazy = append(l.lazy, s...)
	if l.lazyTimer == nil {
		l.lazyTimer = time.AfterFunc(l.removeDelay, l.flushLazy)
	}
}

// flushLazy writes the queued removals in a record of their own, without
// an fdatasync (the next commit's, or the OS, makes it durable).
func (l *Log) flushLazy() {
	l.lazyMu.Lock()
	if l.lazyTimer != nil {
		l.lazyTimer.Stop()
		l.lazyTimer = nil
	}
	l.lazyMu.Unlock()
	// An op with nothing of its own: the loop takes the lazy removals.
	<-l.submit(&op{kind: opFunc, err: make(chan error, 1), fn: func() {}})
}

// LogStats counts what a Log did since it was opened.
type LogStats struct {
	// Records is the records written (a group commit's, a removals'
	// flush, a compaction's), Syncs the fdatasyncs that made them durable.
	Records, Syncs uint64
	// Written is the notifications written; Skipped those acknowledged
	// before their commit, hence never written.
	Written, Skipped uint64
}

// Stats returns what the log did since it was opened.
func (l *Log) Stats() LogStats {
	return LogStats{Records: l.records.Load(), Syncs: l.syncs.Load(), Written: l.written.Load(), Skipped: l.skipped.Load()}
}

// Queued reads every queued notification from the segment files, in Seq
// order: what a restart (after a SIGKILL, say) would find.
func (l *Log) Queued() ([]*Notification, error) {
	queued := map[uint64]*Notification{}
	_, _, _, err := readSegments(l.dir, func(_ *segment, e entry, n *Notification) {
		switch e.kind {
		case entryPut:
			queued[e.seq] = n
		case entryRemove:
			for _, seq := range e.seqs {
				delete(queued, seq)
			}
		}
	})
	if err != nil {
		return nil, fmt.Errorf("store: read notification log: %w", err)
	}
	out := make([]*Notification, 0, len(queued))
	for _, n := range queued {
		out = append(out, n)
	}
	slices.SortFunc(out, func(a, b *Notification) int { return compareSeq(a.Seq, b.Seq) })
	return out, nil
}

// Hold stops the commit loop until release is called: writes submitted
// meanwhile wait (and are not durable). For tests that need a moment when
// nothing is written.
func (l *Log) Hold() (release func()) {
	held := make(chan struct{})
	stop := make(chan struct{})
	l.submit(&op{kind: opFunc, err: make(chan error, 1), fn: func() {
		close(held)
		<-stop
	}})
	<-held
	var once sync.Once
	return func() { once.Do(func() { close(stop) }) }
}

// Close writes the queued removals, waits for pending writes and closes the
// segment.
func (l *Log) Close() error {
	l.lazyMu.Lock()
	if l.lazyTimer != nil {
		l.lazyTimer.Stop()
		l.lazyTimer = nil
	}
	l.lazyMu.Unlock()
	if lazy := l.takeLazy(); len(lazy) > 0 {
		if err := l.Remove(lazy); err != nil && !errors.Is(err, errClosed) {
			slog.Warn("store: write removals at close", "err", err)
		}
	}
	l.pmu.Lock()
	if l.closed {
		l.pmu.Unlock()
		return nil
	}
	l.closed = true
	l.timer.stop()
	l.wake()
	l.pmu.Unlock()
	<-l.done
	return nil
}

// segmentCount is the number of segment files, for tests.
func (l *Log) segmentCount() int {
	ids, _ := segmentIDs(l.dir)
	return len(ids)
}
