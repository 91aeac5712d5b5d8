package store

import (
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/openmpns/openmpns/shared/clock"
)

// lingerLog opens a log whose commits linger d on clk (nil: the runtime's
// clock); the returned channel yields each linger's wait as the commit loop
// starts it, and counts records every write and fdatasync the log makes.
func lingerLog(t *testing.T, dir string, d time.Duration, clk clock.Clock) (*Log, <-chan time.Duration, *ioCount) {
	t.Helper()
	l, _ := openTestLog(t, dir, DefaultSegmentSize)
	l.SetLinger(d)
	l.clk = clk
	lingers := make(chan time.Duration, 16)
	l.onLinger = func(w time.Duration) { lingers <- w }
	n := &ioCount{}
	l.fail = n.count
	return l, lingers, n
}

// ioCount counts the log's writes and fdatasyncs (through Log.fail).
type ioCount struct {
	mu           sync.Mutex
	writes, syns int
}

func (c *ioCount) count(what string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch what {
	case "write":
		c.writes++
	case "sync":
		c.syns++
	}
	return nil
}

func (c *ioCount) get() (writes, syncs int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.writes, c.syns
}

// wait yields what c yields, failing the test after waitFor.
func wait[T any](t *testing.T, c <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-c:
		return v
	case <-time.After(waitFor):
		t.Fatalf("%s: nothing after %v", what, waitFor)
		panic("unreachable")
	}
}

// waitFor bounds the tests' waits for an event (a failure, never a pause).
const waitFor = 20 * time.Second

var lingerStart = time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)

// A notification acknowledged while its group lingers is never written:
// no write, no fdatasync, neither for it nor for its removal, and the log
// holds nothing after a reopen.
func TestLingerAcknowledgedNotificationIsNeverWritten(t *testing.T) {
	dir := t.TempDir()
	clk := clock.NewFake(lingerStart)
	l, lingers, io := lingerLog(t, dir, time.Millisecond, clk)
	durable := l.EnqueueThen(testNote(1), 0, nil)
	if w := wait(t, lingers, "linger"); w != time.Millisecond {
		t.Fatalf("lingers %v, want the whole 1ms", w)
	}
	l.RemoveLater([]uint64{1}) // the device's acknowledgement
	clk.Advance(time.Millisecond)
	if err := wait(t, durable, "commit"); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if w, s := io.get(); w != 0 || s != 0 {
		t.Fatalf("%d writes and %d fdatasyncs for a notification acknowledged before its commit, want none", w, s)
	}
	if st := l.Stats(); st != (LogStats{Skipped: 1}) {
		t.Fatalf("stats %+v, want one notification skipped and nothing else", st)
	}
	l, q := openTestLog(t, dir, DefaultSegmentSize)
	defer l.Close()
	if len(q) != 0 {
		t.Fatalf("after reopen: %v queued, want none", q)
	}
}

// A lingering group whose notifications are all acknowledged costs the
// commit loop nothing: each sender hears of it at the acknowledgement (no
// wait for the linger), the group's timer is stopped, and the loop is never
// woken; nothing is written. A group with one notification left lingers on.
func TestLingerAcknowledgedGroupNeverWakesTheLoop(t *testing.T) {
	clk := clock.NewFake(lingerStart)
	l, lingers, io := lingerLog(t, t.TempDir(), time.Millisecond, clk)
	one := l.EnqueueThen(testNote(1), 0, nil)
	two := l.EnqueueThen(testNote(2), 0, nil)
	wait(t, lingers, "linger")
	if n := clk.Pending(); n != 1 {
		t.Fatalf("%d timers pending for a lingering group, want 1", n)
	}
	l.RemoveLater([]uint64{1})
	select {
	case err := <-one:
		t.Fatalf("the first notification finished (%v) while its group still lingers", err)
	default:
	}
	l.RemoveLater([]uint64{2})
	for i, c := range []<-chan error{one, two} {
		select {
		case err := <-c:
			if err != nil {
				t.Fatalf("notification %d: %v", i+1, err)
			}
		default:
			t.Fatalf("notification %d: not finished at its acknowledgement", i+1)
		}
	}
	if n := clk.Pending(); n != 0 {
		t.Fatalf("%d timers pending once the group was acknowledged, want 0", n)
	}
	clk.Advance(time.Hour)
	if n := l.wakes.Load(); n != 0 {
		t.Fatalf("the commit loop woke %d times, want never", n)
	}
	three := l.EnqueueThen(testNote(3), 0, nil)
	wait(t, lingers, "linger")
	four := l.EnqueueThen(testNote(4), 0, nil)
	l.RemoveLater([]uint64{3})
	clk.Advance(time.Millisecond)
	for i, c := range []<-chan error{three, four} {
		if err := wait(t, c, "commit"); err != nil {
			t.Fatalf("notification %d: %v", i+3, err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if w, s := io.get(); w != 1 || s != 1 {
		t.Fatalf("%d writes and %d fdatasyncs, want one of each (notification 4)", w, s)
	}
	if st := l.Stats(); st.Written != 1 || st.Skipped != 3 {
		t.Fatalf("stats %+v, want 1 written and 3 skipped", st)
	}
}

// A notification nobody acknowledges is written, in one record with one
// fdatasync, once its linger has passed and not before.
func TestLingerWritesAnUnacknowledgedNotificationAtTheBound(t *testing.T) {
	dir := t.TempDir()
	clk := clock.NewFake(lingerStart)
	l, lingers, io := lingerLog(t, dir, time.Millisecond, clk)
	durable := l.EnqueueThen(testNote(1), 0, nil)
	wait(t, lingers, "linger")
	clk.Advance(time.Millisecond - time.Nanosecond)
	select {
	case err := <-durable:
		t.Fatalf("durable (%v) before its linger passed", err)
	default:
	}
	if w, s := io.get(); w != 0 || s != 0 {
		t.Fatalf("%d writes and %d fdatasyncs before the linger passed", w, s)
	}
	clk.Advance(time.Nanosecond)
	if err := wait(t, durable, "commit"); err != nil {
		t.Fatal(err)
	}
	if w, s := io.get(); w != 1 || s != 1 {
		t.Fatalf("%d writes and %d fdatasyncs, want one of each", w, s)
	}
	if q, err := l.Queued(); err != nil || !slices.Equal(seqsOf(q), []uint64{1}) {
		t.Fatalf("on disk: %v %v", seqsOf(q), err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
}

// A linger counts from the first notification's submission: a group whose
// first notification already waited (the loop was busy) lingers only the
// rest, and one that waited the whole linger is committed at once.
func TestLingerCountsFromTheFirstSubmission(t *testing.T) {
	clk := clock.NewFake(lingerStart)
	l, lingers, io := lingerLog(t, t.TempDir(), time.Millisecond, clk)
	defer l.Close()
	release := l.Hold() // the loop is busy
	first := l.EnqueueThen(testNote(1), 0, nil)
	if w := wait(t, lingers, "linger"); w != time.Millisecond {
		t.Fatalf("lingers %v, want 1ms from the submission", w)
	}
	clk.Advance(400 * time.Microsecond)
	release()
	clk.Advance(600*time.Microsecond - time.Nanosecond)
	if w, s := io.get(); w != 0 || s != 0 {
		t.Fatalf("%d writes and %d fdatasyncs before the linger passed", w, s)
	}
	select {
	case err := <-first:
		t.Fatalf("durable (%v) before its linger passed", err)
	default:
	}
	clk.Advance(time.Nanosecond)
	if err := wait(t, first, "commit"); err != nil {
		t.Fatal(err)
	}
	release = l.Hold()
	second := l.EnqueueThen(testNote(2), 0, nil)
	clk.Advance(time.Millisecond)
	release()
	if err := wait(t, second, "commit"); err != nil { // no Advance: at once
		t.Fatal(err)
	}
	if w, s := io.get(); w != 2 || s != 2 {
		t.Fatalf("%d writes and %d fdatasyncs, want two of each", w, s)
	}
}

// Close during a linger commits the group at once and loses nothing.
func TestLingerCloseCommitsAtOnce(t *testing.T) {
	dir := t.TempDir()
	l, lingers, _ := lingerLog(t, dir, time.Hour, nil) // the runtime's clock: an hour
	var durable []<-chan error
	for seq := uint64(1); seq <= 5; seq++ {
		durable = append(durable, l.EnqueueThen(testNote(seq), 0, nil))
	}
	wait(t, lingers, "linger")
	l.RemoveLater([]uint64{3}) // acknowledged: never written
	closed := make(chan error, 1)
	go func() { closed <- l.Close() }()
	if err := wait(t, closed, "Close"); err != nil {
		t.Fatal(err)
	}
	for i, c := range durable {
		if err := wait(t, c, "commit"); err != nil {
			t.Fatalf("notification %d: %v", i+1, err)
		}
	}
	l, q := openTestLog(t, dir, DefaultSegmentSize)
	defer l.Close()
	if want := []uint64{1, 2, 4, 5}; !slices.Equal(q, want) {
		t.Fatalf("after reopen: %v, want %v", q, want)
	}
}

// A linger ends early when the group is full, or when something else than
// a notification is asked (a durable Remove): neither waits for the clock.
func TestLingerEndsOnAFullGroupOrAnotherOp(t *testing.T) {
	clk := clock.NewFake(lingerStart)
	l, lingers, io := lingerLog(t, t.TempDir(), time.Hour, clk)
	defer l.Close()
	var durable []<-chan error
	for seq := uint64(1); seq <= maxGroup; seq++ {
		durable = append(durable, l.EnqueueThen(testNote(seq), 0, nil))
	}
	for i, c := range durable {
		if err := wait(t, c, "commit of a full group"); err != nil {
			t.Fatalf("notification %d: %v", i+1, err)
		}
	}
	for len(lingers) > 0 {
		<-lingers
	}
	one := l.EnqueueThen(testNote(maxGroup+1), 0, nil)
	wait(t, lingers, "linger")
	removed := make(chan error, 1)
	go func() { removed <- l.Remove([]uint64{1}) }()
	if err := wait(t, removed, "Remove"); err != nil {
		t.Fatal(err)
	}
	if err := wait(t, one, "commit"); err != nil {
		t.Fatal(err)
	}
	if w, _ := io.get(); w != 2 {
		t.Fatalf("%d writes, want a full group in one record (and the next one with the Remove)", w)
	}
}

// A tile update acknowledged before its commit is not written, but the
// removal of the update it replaced is, durably: the old tile must not
// come back after a crash.
func TestLingerAcknowledgedReplacementStillRemovesTheReplaced(t *testing.T) {
	dir := t.TempDir()
	clk := clock.NewFake(lingerStart)
	l, lingers, io := lingerLog(t, dir, time.Millisecond, clk)
	first := l.EnqueueThen(testNote(1), 0, nil)
	wait(t, lingers, "linger")
	clk.Advance(time.Millisecond)
	if err := wait(t, first, "commit"); err != nil {
		t.Fatal(err)
	}
	update := l.EnqueueThen(testNote(2), 1, nil)
	wait(t, lingers, "linger")
	l.RemoveLater([]uint64{2})
	clk.Advance(time.Millisecond)
	if err := wait(t, update, "commit"); err != nil {
		t.Fatal(err)
	}
	if w, s := io.get(); w != 2 || s != 2 {
		t.Fatalf("%d writes and %d fdatasyncs, want two of each (the first put; the replaced one's removal)", w, s)
	}
	if q, err := l.Queued(); err != nil || len(q) != 0 {
		t.Fatalf("on disk: %v %v, want nothing", seqsOf(q), err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
}

// An acknowledgement that cancels a notification of a group too large for
// one commit, counted out after the commit loop took the first part, never
// drops the rest: a notification nobody acknowledged in it is still
// written, and its sender hears of it only then.
func TestLingerAcknowledgedPastALargeGroupDropsNothingElse(t *testing.T) {
	dir := t.TempDir()
	clk := clock.NewFake(lingerStart)
	l, _, _ := lingerLog(t, dir, time.Hour, clk)
	release := l.Hold()
	var durable []<-chan error
	for seq := uint64(1); seq <= maxGroup+2; seq++ {
		durable = append(durable, l.EnqueueThen(testNote(seq), 0, nil))
	}
	// The acknowledgement of the last one cancels it (what RemoveLater
	// does first), but counts it out only after the loop took the first
	// maxGroup: the interleaving of a RemoveLater racing the commit loop.
	last := l.unwritten.load(uint64(maxGroup + 2))
	if !last.state.CompareAndSwap(opQueued, opCancelled) {
		t.Fatal("the last notification was not queued")
	}
	release()
	for i, c := range durable[:maxGroup] {
		if err := wait(t, c, "commit of the first group"); err != nil {
			t.Fatalf("notification %d: %v", i+1, err)
		}
	}
	l.dropSpared([]*op{last})
	select {
	case err := <-durable[maxGroup]:
		t.Fatalf("notification %d, never acknowledged, finished (%v) before its write", maxGroup+1, err)
	default:
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := wait(t, durable[maxGroup], "commit at Close"); err != nil {
		t.Fatal(err)
	}
	l, q := openTestLog(t, dir, DefaultSegmentSize)
	defer l.Close()
	if len(q) != maxGroup+1 || q[len(q)-1] != maxGroup+1 {
		t.Fatalf("after reopen: %d queued (last %v), want the %d not acknowledged", len(q), q[len(q)-1:], maxGroup+1)
	}
}

// A hurried notification (no device is there to acknowledge it) ends its
// group's linger: the group is written at once, without its timer.
func TestLingerHurriedNotificationIsWrittenAtOnce(t *testing.T) {
	clk := clock.NewFake(lingerStart)
	l, lingers, io := lingerLog(t, t.TempDir(), time.Hour, clk)
	first := l.EnqueueThen(testNote(1), 0, nil)
	wait(t, lingers, "linger")
	second := l.EnqueueThen(testNote(2), 0, nil)
	l.Hurry(99) // unknown: nothing happens
	l.Hurry(2)
	for i, c := range []<-chan error{first, second} {
		if err := wait(t, c, "commit of the hurried group"); err != nil {
			t.Fatalf("notification %d: %v", i+1, err)
		}
	}
	if w, s := io.get(); w != 1 || s != 1 {
		t.Fatalf("%d writes and %d fdatasyncs, want the group in one", w, s)
	}
	l.Hurry(2) // written: nothing happens
	// The next group lingers again.
	third := l.EnqueueThen(testNote(3), 0, nil)
	wait(t, lingers, "linger of the next group")
	select {
	case err := <-third:
		t.Fatalf("the next group was written (%v) without a hurry or its linger", err)
	default:
	}
	clk.Advance(time.Hour)
	if err := wait(t, third, "commit at the linger's end"); err != nil {
		t.Fatal(err)
	}
	if q, err := l.Queued(); err != nil || !slices.Equal(seqsOf(q), []uint64{1, 2, 3}) {
		t.Fatalf("on disk: %v %v", seqsOf(q), err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
}

// A hurried notification past the first maxGroup of a long queue keeps its
// hurry when the loop takes the queue in parts: the rest is written at
// once too, not at its linger's end.
func TestLingerHurryOutlastsAGroupTakenInParts(t *testing.T) {
	clk := clock.NewFake(lingerStart)
	l, _, _ := lingerLog(t, t.TempDir(), time.Hour, clk)
	release := l.Hold()
	var durable []<-chan error
	for seq := uint64(1); seq <= maxGroup+2; seq++ {
		durable = append(durable, l.EnqueueThen(testNote(seq), 0, nil))
	}
	l.Hurry(maxGroup + 2)
	release()
	for i, c := range durable {
		if err := wait(t, c, "commit of a hurried queue"); err != nil {
			t.Fatalf("notification %d: %v", i+1, err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
}
