package store

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/openmpns/openmpns/server/auth"
	"github.com/openmpns/openmpns/server/backend"
)

// seqBlock is how many notification Seqs are reserved with one durable
// write: a restart skips at most this many, and Seqs never repeat.
const seqBlock = 1 << 16

// Embedded is the embedded backend: the live index in memory, written
// through to a Bolt file. It is one node; its Router hands notifications to
// its own Inbox.
//
// Locking: mu guards the directory (devices, channels); qmu the queues;
// pmu presence (a device's record's pres, and the presence map); cmu
// counters; seqMu the Seq reservation. Directory writes of one device are
// serialised by a striped lock (writeLocks) held across the durable write,
// so that writes of different devices still share a commit. The nesting:
// qmu, then mu (Append reads the directory) or seqMu; pmu, then mu (to
// find a device's record); a device's write lock, then any of them.
// Nothing else nests.
type Embedded struct {
	closed atomic.Bool

	b   *Bolt
	log *Log // the queued notifications
	// written learns the outcome of an append's write that replaced
	// nothing (Log.EnqueueThen's after).
	written func(*Notification, error)
	svc     *auth.BoltStore
	now     func() time.Time

	writeLocks [64]sync.Mutex
	seed       maphash.Seed

	mu       sync.RWMutex
	rev      uint64
	devices  map[string]*devRec // by id
	channels map[string]*devRec // channel token -> its device (index.go)

	qmu    sync.Mutex
	queues map[string][]*Notification // device -> queue in Seq order
	counts map[string]int             // channel token -> queued
	queued int
	// queuedBytes is the payload bytes of what is queued.
	queuedBytes int64
	// expired counts what Append dropped as expired since the last Sweep.
	expired int
	// failed holds appends whose write failed, to take out of the index
	// at the next queue operation (the commit loop cannot take qmu).
	failMu sync.Mutex
	failed []failedAppend
	// removed holds removals Remove could not take out of the index at
	// once (qmu was held, perhaps across a write: Append's reservation
	// of Seqs); the next queue operation takes them out first.
	removed []removal
	hasLeft atomic.Bool // failed or removed holds something (takeLeft)

	seqMu     sync.Mutex
	seq       uint64
	reserved  uint64 // durable: no Seq up to it is handed out again
	reserving bool   // a reservation of the next block is being written

	pmu sync.Mutex
	// presence holds the presence of devices not in the directory (a
	// device's own is in its record: no map entry per connection).
	presence map[string]presRec
	claims   uint64
	inbox    backend.Inbox

	cmu      sync.Mutex
	counters map[string]*counter
}

type removal struct {
	dev  string
	seqs []uint64
}

type failedAppend struct {
	n        *Notification
	replaced *Notification
}

type counter struct {
	n       int64
	expires time.Time
}

var _ backend.Backend = (*Embedded)(nil)

// Options tune the embedded backend.
type Options struct {
	// RemoveDelay bounds how long a removal waits for a commit to ride on
	// (see Log.RemoveLater); 0 means DefaultRemoveDelay.
	RemoveDelay time.Duration
	// CommitLinger is how long a group commit of notifications waits, from
	// its first one's arrival, for more and for their devices'
	// acknowledgements, which spare their write (see Log); 0 means
	// DefaultCommitLinger, a negative value commits at once.
	CommitLinger time.Duration
	// Now is the time source (counters' expiry, Seqs of old files); nil
	// means time.Now.
	Now func() time.Time
}

// LogDir is the notification log's directory for the store file at path.
func LogDir(path string) string { return path + "-queue" }

// Open opens (or creates) the embedded backend's file at path and its
// notification log (LogDir) and loads them. Notifications queued in the file
// by a server from before the log are moved into the log.
func Open(path string, o Options) (*Embedded, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	b, err := OpenBolt(path)
	if err != nil {
		return nil, err
	}
	l, queued, err := OpenLog(LogDir(path))
	if err != nil {
		b.Close()
		return nil, err
	}
	l.SetRemoveDelay(o.RemoveDelay)
	if o.CommitLinger == 0 {
		o.CommitLinger = DefaultCommitLinger
	}
	l.SetLinger(o.CommitLinger)
	e, err := load(b, l, queued, o.Now)
	if err != nil {
		l.Close()
		b.Close()
		return nil, fmt.Errorf("store: load %s: %w", path, err)
	}
	return e, nil
}

// migrate moves the notifications queued in the bbolt file (a server from
// before the notification log) into the log: written to the log durably,
// then deleted from the file. A crash between the two moves them again at
// the next start; the log keeps one of each Seq.
func migrate(b *Bolt, l *Log, queued []*Notification) ([]*Notification, error) {
	old, err := b.Queued()
	if err != nil || len(old) == 0 {
		return queued, err
	}
	chans := make([]<-chan error, 0, len(old))
	seqs := make([]uint64, 0, len(old))
	for _, n := range old {
		chans = append(chans, l.EnqueueThen(n, 0, nil))
		seqs = append(seqs, n.Seq)
	}
	for _, c := range chans {
		if err := <-c; err != nil {
			return nil, fmt.Errorf("move queued notifications into the log: %w", err)
		}
	}
	if err := b.Remove(seqs); err != nil {
		return nil, fmt.Errorf("move queued notifications into the log: %w", err)
	}
	slog.Info("store: moved queued notifications from the data file into the notification log", "count", len(old))
	for _, n := range old {
		queued, _ = backend.InsertBySeq(queued, n)
	}
	return queued, nil
}

func load(b *Bolt, l *Log, queued []*Notification, now func() time.Time) (*Embedded, error) {
	e := &Embedded{
		b: b, log: l, seed: maphash.MakeSeed(), now: now,
		devices: map[string]*devRec{}, channels: map[string]*devRec{},
		queues: map[string][]*Notification{}, counts: map[string]int{},
		presence: map[string]presRec{}, counters: map[string]*counter{},
	}
	e.written = func(n *Notification, err error) { e.writeFailed(n, nil, err) }
	var err error
	if e.svc, err = auth.NewBoltStore(b.DB()); err != nil {
		return nil, fmt.Errorf("services: %w", err)
	}
	devs, err := b.Devices()
	if err != nil {
		return nil, err
	}
	for _, d := range devs {
		d.Rev = e.nextRev()
		e.devices[d.ID] = newDevRec(d)
	}
	chans, err := b.Channels()
	if err != nil {
		return nil, err
	}
	for _, c := range chans {
		d, ok := e.devices[c.DeviceID]
		if !ok {
			return nil, fmt.Errorf("channel %s belongs to unknown device %s: the data file is inconsistent", c.Token, c.DeviceID)
		}
		c.Rev = e.nextRev()
		e.channels[c.Token] = d
		d.putChannel(c)
	}
	queued, err = migrate(b, l, queued)
	if err != nil {
		return nil, err
	}
	var maxSeq uint64
	var orphans []uint64
	for _, n := range queued { // Seq order
		maxSeq = max(maxSeq, n.Seq)
		if d, ok := e.channels[n.Channel]; !ok || d.id != n.DeviceID {
			orphans = append(orphans, n.Seq)
			continue
		}
		e.queues[n.DeviceID] = append(e.queues[n.DeviceID], n)
		e.counts[n.Channel]++
		e.queued++
		e.queuedBytes += int64(len(n.Payload))
	}
	if err := l.Remove(orphans); err != nil {
		return nil, err
	}
	reserved, err := b.SeqReserved()
	if err != nil {
		return nil, err
	}
	if reserved == 0 {
		// A file from before reservations: its Seqs came from the clock.
		reserved = max(maxSeq, uint64(now().UnixNano()))
	}
	e.seq = max(reserved, maxSeq)
	// The first block is reserved now, so that no push waits for it.
	e.reserved = e.seq + seqBlock
	if err := b.ReserveSeq(e.reserved); err != nil {
		return nil, fmt.Errorf("reserve notification ids: %w", err)
	}
	return e, nil
}

func (e *Embedded) nextRev() uint64 { e.rev++; return e.rev }

// lockDevice serialises the directory writes of one device.
func (e *Embedded) lockDevice(id string) func() {
	m := &e.writeLocks[maphash.String(e.seed, id)%uint64(len(e.writeLocks))]
	m.Lock()
	return m.Unlock
}

// Bolt returns the file underneath, for tests and tools.
func (e *Embedded) Bolt() *Bolt { return e.b }

// Log returns the notification log underneath, for tests and tools.
func (e *Embedded) Log() *Log { return e.log }

// Services implements backend.Backend.
func (e *Embedded) Services() auth.Store { return e.svc }

// Close implements backend.Backend: pending writes are finished first.
func (e *Embedded) Close() error {
	e.closed.Store(true)
	return errors.Join(e.log.Close(), e.b.Close())
}

// open fails once the backend is closed.
func (e *Embedded) open() error {
	if e.closed.Load() {
		return errClosed
	}
	return nil
}

// Stats implements backend.Backend.
func (e *Embedded) Stats(context.Context) (backend.Stats, error) {
	if err := e.open(); err != nil {
		return backend.Stats{}, err
	}
	e.mu.RLock()
	s := backend.Stats{Devices: len(e.devices), Channels: len(e.channels)}
	e.mu.RUnlock()
	e.qmu.Lock()
	e.takeLeft()
	s.Queued, s.QueuedBytes = e.queued, e.queuedBytes
	e.qmu.Unlock()
	return s, nil
}

// PutDevice implements backend.Directory.
func (e *Embedded) PutDevice(_ context.Context, d Device) (Device, error) {
	if err := e.open(); err != nil {
		return Device{}, err
	}
	defer e.lockDevice(d.ID)()
	e.mu.RLock()
	old, ok := e.devices[d.ID]
	var oldRev uint64
	if ok {
		oldRev = old.rev
	}
	e.mu.RUnlock()
	switch {
	case d.Rev == 0 && ok:
		return Device{}, fmt.Errorf("store: device %s: %w", d.ID, backend.ErrExists)
	case d.Rev != 0 && !ok:
		return Device{}, fmt.Errorf("store: device %s: %w", d.ID, backend.ErrNotFound)
	case d.Rev != 0 && oldRev != d.Rev:
		return Device{}, fmt.Errorf("store: device %s: %w", d.ID, backend.ErrConflict)
	}
	if err := e.b.PutDevice(d); err != nil {
		return Device{}, err
	}
	e.mu.Lock() // the record copies TokenHash: d keeps the caller's
	d.Rev = e.nextRev()
	if ok {
		old.set(d) // the device's write lock is held: old is still its record
	} else {
		e.devices[d.ID] = newDevRec(d)
	}
	e.mu.Unlock()
	return d, nil
}

// Device implements backend.Directory.
func (e *Embedded) Device(_ context.Context, id string) (Device, error) {
	if err := e.open(); err != nil {
		return Device{}, err
	}
	e.mu.RLock()
	r, ok := e.devices[id]
	var d Device
	if ok {
		d = r.device()
	}
	e.mu.RUnlock()
	if !ok {
		return Device{}, fmt.Errorf("store: device %s: %w", id, backend.ErrNotFound)
	}
	return d, nil
}

// PutChannel implements backend.Directory.
func (e *Embedded) PutChannel(_ context.Context, c Channel) (Channel, error) {
	if err := e.open(); err != nil {
		return Channel{}, err
	}
	defer e.lockDevice(c.DeviceID)()
	e.mu.RLock()
	var old Channel
	od, ok := e.channels[c.Token]
	if ok {
		old = od.channel(c.Token).channel(od.id)
	}
	dev, hasDev := e.devices[c.DeviceID]
	taken := hasDev && dev.appChannel(c.App) != nil
	e.mu.RUnlock()
	switch {
	case !hasDev:
		return Channel{}, fmt.Errorf("store: channel's device %s: %w", c.DeviceID, backend.ErrNotFound)
	case c.Rev == 0 && (ok || taken):
		return Channel{}, fmt.Errorf("store: channel of app %s: %w", c.App, backend.ErrExists)
	case c.Rev != 0 && !ok:
		return Channel{}, fmt.Errorf("store: channel %s: %w", c.Token, backend.ErrNotFound)
	case c.Rev != 0 && old.Rev != c.Rev:
		return Channel{}, fmt.Errorf("store: channel %s: %w", c.Token, backend.ErrConflict)
	case c.Rev != 0 && (old.DeviceID != c.DeviceID || old.App != c.App):
		return Channel{}, fmt.Errorf("store: channel %s: its device and app never change", c.Token)
	}
	if err := e.b.PutChannel(c); err != nil {
		return Channel{}, err
	}
	c.Domains = slices.Clone(c.Domains)
	e.mu.Lock()
	c.Rev = e.nextRev()
	if ok {
		c.Token = old.Token // the index's key and the record share their text
	}
	// The device's write lock is held: dev is still its record.
	dev.putChannel(c)
	e.channels[c.Token] = dev
	e.mu.Unlock()
	return c, nil
}

// Channel implements backend.Directory.
func (e *Embedded) Channel(_ context.Context, token string) (Channel, error) {
	if err := e.open(); err != nil {
		return Channel{}, err
	}
	e.mu.RLock()
	d, ok := e.channels[token]
	var c Channel
	if ok {
		c = d.channel(token).channel(d.id)
	}
	e.mu.RUnlock()
	if !ok {
		return Channel{}, fmt.Errorf("store: channel: %w", backend.ErrNotFound)
	}
	return c, nil
}

// Target implements backend.Directory: the channel and its device, exact
// (one process holds every record).
func (e *Embedded) Target(_ context.Context, token string) (Channel, Device, error) {
	if err := e.open(); err != nil {
		return Channel{}, Device{}, err
	}
	e.mu.RLock()
	r, ok := e.channels[token]
	var c Channel
	var d Device
	if ok {
		c, d = r.channel(token).channel(r.id), r.deviceNoHash()
	}
	e.mu.RUnlock()
	if !ok {
		return Channel{}, Device{}, fmt.Errorf("store: channel: %w", backend.ErrNotFound)
	}
	return c, d, nil
}

// Channels implements backend.Directory.
func (e *Embedded) Channels(_ context.Context, dev string) ([]Channel, error) {
	if err := e.open(); err != nil {
		return nil, err
	}
	e.mu.RLock()
	defer e.mu.RUnlock()
	r := e.devices[dev]
	if r == nil {
		return []Channel{}, nil
	}
	out := make([]Channel, 0, len(r.chans))
	for i := range r.chans {
		out = append(out, r.chans[i].channel(r.id))
	}
	return out, nil
}

// DeleteChannel implements backend.Directory.
func (e *Embedded) DeleteChannel(_ context.Context, c Channel) error {
	if err := e.open(); err != nil {
		return err
	}
	defer e.lockDevice(c.DeviceID)()
	e.mu.RLock()
	dev, ok := e.channels[c.Token]
	var old Channel
	if ok {
		old = dev.channel(c.Token).channel(dev.id)
	}
	e.mu.RUnlock()
	switch {
	case !ok:
		return fmt.Errorf("store: channel %s: %w", c.Token, backend.ErrNotFound)
	case old.Rev != c.Rev:
		return fmt.Errorf("store: channel %s: %w", c.Token, backend.ErrConflict)
	}
	if err := e.b.DeleteChannel(old.Token); err != nil {
		return err
	}
	e.mu.Lock()
	delete(e.channels, old.Token)
	dev.deleteChannel(old.Token)
	e.mu.Unlock()
	e.dropQueued(old.DeviceID, func(n *Notification) bool { return n.Channel == old.Token }, []string{old.Token})
	return nil
}

// dropQueued drops the device's notifications that match (those appended
// while their deletion was written too) and forgets the counts of tokens.
// The log removes them lazily: a notification whose channel is gone is
// dropped when the store is loaded anyway.
func (e *Embedded) dropQueued(dev string, match func(*Notification) bool, tokens []string) {
	e.qmu.Lock()
	e.takeLeft()
	var gone []uint64
	e.dropWhere(dev, func(n *Notification) bool {
		if !match(n) {
			return false
		}
		gone = append(gone, n.Seq)
		return true
	})
	for _, tok := range tokens {
		delete(e.counts, tok)
	}
	e.qmu.Unlock()
	e.log.RemoveLater(gone)
}

// DeleteDevice implements backend.Directory: the device and its channels go
// in one transaction, its queue and presence with them (the queue lazily:
// see dropQueued).
func (e *Embedded) DeleteDevice(_ context.Context, d Device) error {
	if err := e.open(); err != nil {
		return err
	}
	defer e.lockDevice(d.ID)()
	e.mu.RLock()
	old, ok := e.devices[d.ID]
	var tokens []string
	var oldRev uint64
	if ok {
		oldRev = old.rev
		for i := range old.chans {
			tokens = append(tokens, old.chans[i].token)
		}
	}
	e.mu.RUnlock()
	switch {
	case !ok:
		return fmt.Errorf("store: device %s: %w", d.ID, backend.ErrNotFound)
	case oldRev != d.Rev:
		return fmt.Errorf("store: device %s: %w", d.ID, backend.ErrConflict)
	}
	if err := e.b.DeleteDevice(d.ID, tokens); err != nil {
		return err
	}
	e.mu.Lock()
	for _, tok := range tokens {
		delete(e.channels, tok)
	}
	delete(e.devices, d.ID)
	e.mu.Unlock()
	e.dropQueued(d.ID, func(*Notification) bool { return true }, tokens)
	e.pmu.Lock()
	delete(e.presence, d.ID)
	e.pmu.Unlock()
	return nil
}

// ScanDevices implements backend.Directory, on a copy of the device ids
// taken at its start.
func (e *Embedded) ScanDevices(ctx context.Context, fn func(Device) bool) error {
	if err := e.open(); err != nil {
		return err
	}
	e.mu.RLock()
	ids := make([]string, 0, len(e.devices))
	for id := range e.devices {
		ids = append(ids, id)
	}
	e.mu.RUnlock()
	for _, id := range ids {
		if err := ctx.Err(); err != nil {
			return err
		}
		d, err := e.Device(ctx, id)
		if errors.Is(err, backend.ErrNotFound) {
			continue // deleted meanwhile
		}
		if err != nil {
			return err
		}
		if !fn(d) {
			return nil
		}
	}
	return nil
}

// dropWhere takes the device's notifications that match out of the index
// and returns how many. e.qmu is held.
func (e *Embedded) dropWhere(dev string, match func(*Notification) bool) int {
	q := e.queues[dev]
	n := len(q)
	q = slices.DeleteFunc(q, func(n *Notification) bool {
		if !match(n) {
			return false
		}
		e.counts[n.Channel]--
		if e.counts[n.Channel] <= 0 {
			delete(e.counts, n.Channel)
		}
		e.queuedBytes -= int64(len(n.Payload))
		return true
	})
	gone := n - len(q)
	e.queued -= gone
	if len(q) == 0 {
		delete(e.queues, dev)
	} else {
		e.queues[dev] = q
	}
	return gone
}

// nextSeq hands out the next Seq. Halfway through a block the next one is
// reserved in the background; a push waits for a reservation only if Seqs
// run out before it is durable.
func (e *Embedded) nextSeq() (uint64, error) {
	e.seqMu.Lock()
	defer e.seqMu.Unlock()
	if e.seq >= e.reserved {
		next := max(e.reserved, e.seq) + seqBlock
		if err := e.b.ReserveSeq(next); err != nil {
			return 0, fmt.Errorf("store: reserve notification ids: %w", err)
		}
		e.reserved = next
	}
	e.seq++
	if e.reserved-e.seq == seqBlock/2 && !e.reserving {
		e.reserving = true
		next := e.reserved + seqBlock
		go func() {
			err := e.b.ReserveSeq(next)
			e.seqMu.Lock()
			defer e.seqMu.Unlock()
			e.reserving = false
			if err == nil && next > e.reserved {
				e.reserved = next
			}
		}()
	}
	return e.seq, nil
}

// Append implements backend.Queue.
func (e *Embedded) Append(_ context.Context, n *Notification, limit int) (backend.Appended, error) {
	if err := e.open(); err != nil {
		return backend.Appended{}, err
	}
	e.qmu.Lock()
	defer e.qmu.Unlock()
	e.takeLeft()
	// A channel deleted meanwhile takes nothing more: DeleteChannel drops
	// it from the directory, then its notifications, under qmu.
	e.mu.RLock()
	_, open := e.channels[n.Channel]
	e.mu.RUnlock()
	if !open {
		return backend.Appended{}, fmt.Errorf("store: channel %s: %w", n.Channel, backend.ErrNotFound)
	}
	now := n.AcceptedAt
	var expired []uint64
	var replaced *Notification
	q := e.queues[n.DeviceID]
	for _, o := range q {
		switch {
		case !now.Before(o.ExpiresAt):
			expired = append(expired, o.Seq)
		case n.Kind == "tile" && o.Kind == "tile" && o.Channel == n.Channel && o.TileID == n.TileID:
			replaced = o
		}
	}
	if len(expired) > 0 {
		e.expired += e.dropWhere(n.DeviceID, func(o *Notification) bool { return !now.Before(o.ExpiresAt) })
		e.log.RemoveLater(expired)
	}
	count := e.counts[n.Channel]
	if replaced != nil {
		count--
	}
	if limit > 0 && count >= limit {
		return backend.Appended{}, fmt.Errorf("store: channel holds %d notifications: %w", count, backend.ErrQueueFull)
	}
	seq, err := e.nextSeq()
	if err != nil {
		return backend.Appended{}, err
	}
	n.Seq = seq
	a := backend.Appended{Seq: seq}
	if replaced != nil {
		a.Replaced = replaced.Seq
		e.dropWhere(n.DeviceID, func(o *Notification) bool { return o == replaced })
	}
	e.queues[n.DeviceID] = append(e.queues[n.DeviceID], n) // the greatest Seq so far
	e.counts[n.Channel]++
	e.queued++
	e.queuedBytes += int64(len(n.Payload))
	// Submitted under qmu, so writes reach the file in Seq order; the
	// commit loop never takes qmu (a failure is taken out later).
	after := e.written // made once: no closure per push
	if replaced != nil {
		after = func(n *Notification, err error) { e.writeFailed(n, replaced, err) }
	}
	a.Durable = e.log.EnqueueThen(n, a.Replaced, after)
	return a, nil
}

// writeFailed notes an append whose write failed (err not nil), with the
// tile update it replaced if any, for takeLeft.
func (e *Embedded) writeFailed(n, replaced *Notification, err error) {
	if err == nil {
		return
	}
	e.failMu.Lock()
	e.failed = append(e.failed, failedAppend{n, replaced})
	e.failMu.Unlock()
	e.hasLeft.Store(true)
}

// takeLeft does what was left for the next queue operation: it takes
// appends whose write failed out of the index, and puts back the tile
// updates they replaced (whose deletion failed with them); then it makes
// the removals Remove left (see removed). e.qmu is held.
func (e *Embedded) takeLeft() {
	if !e.hasLeft.Load() {
		return
	}
	e.failMu.Lock()
	failed, removed := e.failed, e.removed
	e.failed, e.removed = nil, nil
	e.hasLeft.Store(false)
	e.failMu.Unlock()
	for _, f := range failed {
		e.dropWhere(f.n.DeviceID, func(o *Notification) bool { return o == f.n })
		if r := f.replaced; r != nil {
			var added bool
			if e.queues[r.DeviceID], added = backend.InsertBySeq(e.queues[r.DeviceID], r); added {
				e.counts[r.Channel]++
				e.queued++
				e.queuedBytes += int64(len(r.Payload))
			}
		}
	}
	for _, r := range removed {
		e.dropSeqs(r.dev, r.seqs)
	}
}

// Remove implements backend.Queue: the removal rides on the next commit
// (Log.RemoveLater). It never waits, not even for qmu, which Append holds
// across a write when it must reserve Seqs at once (nextSeq): with qmu
// held, the next queue operation takes the notifications out of the index
// (RemoveWaits).
func (e *Embedded) Remove(_ context.Context, dev string, seqs []uint64) error {
	if err := e.open(); err != nil {
		return err
	}
	if len(seqs) == 0 {
		return nil
	}
	if e.qmu.TryLock() {
		e.takeLeft()
		e.dropSeqs(dev, seqs)
		e.qmu.Unlock()
	} else {
		// qmu may be held across a write (Append's Seq reservation):
		// the removal waits for the next queue operation instead.
		e.failMu.Lock()
		e.removed = append(e.removed, removal{dev, slices.Clone(seqs)})
		e.failMu.Unlock()
		e.hasLeft.Store(true)
	}
	e.log.RemoveLater(seqs)
	return nil
}

// dropSeqs takes the device's notifications with these Seqs out of the
// index. e.qmu is held.
func (e *Embedded) dropSeqs(dev string, seqs []uint64) {
	e.dropWhere(dev, func(n *Notification) bool { return slices.Contains(seqs, n.Seq) })
}

// RemoveWaits reports false: Remove takes a lock held only for work in
// memory, and never waits for a write (the server then handles devices'
// acknowledgements on its poller's own goroutine).
func (e *Embedded) RemoveWaits() bool { return false }

// Pending implements backend.Queue.
func (e *Embedded) Pending(_ context.Context, dev string, now time.Time) ([]*Notification, error) {
	if err := e.open(); err != nil {
		return nil, err
	}
	e.qmu.Lock()
	defer e.qmu.Unlock()
	e.takeLeft()
	var out []*Notification
	for _, n := range e.queues[dev] {
		if now.Before(n.ExpiresAt) {
			out = append(out, n)
		}
	}
	return out, nil
}

// Sweep implements backend.Queue.
func (e *Embedded) Sweep(_ context.Context, now time.Time) (int, error) {
	if err := e.open(); err != nil {
		return 0, err
	}
	e.qmu.Lock()
	e.takeLeft()
	var gone []uint64
	for dev, q := range e.queues {
		var expired bool
		for _, n := range q {
			if !now.Before(n.ExpiresAt) {
				gone = append(gone, n.Seq)
				expired = true
			}
		}
		if expired {
			e.dropWhere(dev, func(n *Notification) bool { return !now.Before(n.ExpiresAt) })
		}
	}
	count := len(gone) + e.expired
	e.expired = 0
	e.qmu.Unlock()
	e.log.RemoveLater(gone)
	e.cmu.Lock()
	for k, c := range e.counters {
		if !now.Before(c.expires) {
			delete(e.counters, k)
		}
	}
	e.cmu.Unlock()
	return count, nil
}

// Listen implements backend.Router.
func (e *Embedded) Listen(in backend.Inbox) {
	e.pmu.Lock()
	e.inbox = in
	e.pmu.Unlock()
}

// Claim implements backend.Router: the Inbox hears of the older claim it
// replaces at once, before Claim returns.
func (e *Embedded) Claim(_ context.Context, dev string, now time.Time) (uint64, error) {
	if err := e.open(); err != nil {
		return 0, err
	}
	e.pmu.Lock()
	e.claims++
	claim, in := e.claims, e.inbox
	old, _ := e.presenceOf(dev)
	e.setPresence(dev, newPresRec(true, now, claim))
	e.pmu.Unlock()
	if old.connected && in != nil {
		in.TakenOver(dev, claim)
	}
	return claim, nil
}

// Release implements backend.Router: the device's LastSeen is written, so
// that its offline time survives a restart. It is written before the
// presence says disconnected: whoever sees the device disconnected (a
// sender's TempDisconnected, the reaper) finds its record final, and the
// reaper's delete of a device long offline does not meet the LastSeen
// write of its release as a conflict.
func (e *Embedded) Release(ctx context.Context, dev string, claim uint64, now time.Time) error {
	if err := e.open(); err != nil {
		return err
	}
	e.pmu.Lock()
	p, ok := e.presenceOf(dev)
	e.pmu.Unlock()
	if !ok || p.claim != claim {
		return nil
	}
	var err error
	for {
		var d Device
		if d, err = e.Device(ctx, dev); err != nil {
			break
		}
		d.LastSeen = now
		if _, err = e.PutDevice(ctx, d); err == nil || !errors.Is(err, backend.ErrConflict) {
			break
		}
	}
	// Disconnected even when the write failed; unless a newer connection
	// claimed the device meanwhile.
	e.pmu.Lock()
	if p, ok := e.presenceOf(dev); ok && p.claim == claim {
		e.setPresence(dev, newPresRec(false, now, claim))
	}
	e.pmu.Unlock()
	return err
}

// presenceOf returns the device's presence: its record's, else the map's.
// e.pmu is held.
func (e *Embedded) presenceOf(dev string) (presRec, bool) {
	e.mu.RLock()
	r := e.devices[dev]
	e.mu.RUnlock()
	if r != nil && r.pres.claim != 0 {
		return r.pres, true
	}
	p, ok := e.presence[dev]
	return p, ok
}

// setPresence records the device's presence: in its record when it has
// one (a claim is never 0), else in the map. e.pmu is held.
func (e *Embedded) setPresence(dev string, p presRec) {
	e.mu.RLock()
	r := e.devices[dev]
	e.mu.RUnlock()
	if r == nil {
		e.presence[dev] = p
		return
	}
	r.pres = p
	delete(e.presence, dev)
}

// Presence implements backend.Router.
func (e *Embedded) Presence(_ context.Context, dev string) (backend.Presence, bool, error) {
	if err := e.open(); err != nil {
		return backend.Presence{}, false, err
	}
	e.pmu.Lock()
	p, ok := e.presenceOf(dev)
	e.pmu.Unlock()
	if !ok {
		return backend.Presence{}, false, nil
	}
	return p.presence(), true, nil
}

// Hand implements backend.Router: the one node's Inbox gets n at once when
// the device is connected.
func (e *Embedded) Hand(_ context.Context, n *Notification, replaced uint64) (backend.Presence, bool, error) {
	if err := e.open(); err != nil {
		return backend.Presence{}, false, err
	}
	e.pmu.Lock()
	in := e.inbox
	p, ok := e.presenceOf(n.DeviceID)
	e.pmu.Unlock()
	here := in != nil && p.connected
	if here {
		in.Deliver(n.DeviceID, n, replaced)
	}
	if !here || n.DeliverAt.After(n.AcceptedAt) {
		// No device to acknowledge it soon (none connected, or its class
		// delivers it in a later batch): its write need not linger.
		e.log.Hurry(n.Seq)
	}
	if !ok {
		return backend.Presence{}, false, nil
	}
	return p.presence(), true, nil
}

// Take implements backend.Counters; counters live in memory (a restart
// forgets them).
func (e *Embedded) Take(_ context.Context, key string, limit int64, ttl time.Duration) (bool, error) {
	if err := e.open(); err != nil {
		return false, err
	}
	now := e.now()
	e.cmu.Lock()
	defer e.cmu.Unlock()
	c := e.counters[key]
	if c == nil || !now.Before(c.expires) {
		c = &counter{expires: now.Add(ttl)}
		e.counters[key] = c
	}
	if c.n >= limit {
		return false, nil
	}
	c.n++
	return true, nil
}
