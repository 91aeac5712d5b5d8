package natsbackend

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/openmpns/openmpns/shared/clock"
)

// Node liveness: every node writes node.<id> in the counters bucket every
// NodeTTL/4 (kept 30 days). A presence record that says Connected on a
// node whose last heartbeat is older than NodeTTL is read as offline since
// that heartbeat: a node that died (SIGKILL) does not leave its devices
// Connected for ever. A heartbeat's age is the stream's: the time the
// stream stored it against the time the stream leader says now, so that
// neither node's wall clock counts (a node whose clock is behind is not
// read as down).
//
// A node whose beats lapse for longer than NodeTTL without losing its
// connection (a stall of the process, beats refused while the counters
// stream has no leader or quorum) may have been read as down meanwhile,
// and handed nothing for the devices it still holds. Its first beat that
// succeeds after such a lapse (measured on its own monotonic clock, from
// the previous success) makes it resync as after a reconnect: its devices
// read their queues again.

// nodeRecordTTL is how long a node's heartbeat record is kept after its
// last write (then a device still "connected" to it reads as offline since
// it connected).
const nodeRecordTTL = 30 * 24 * time.Hour

// heartbeat is the value of a node's record. At (the writer's wall clock)
// is for people reading the bucket; the age of a beat is the stream's.
type heartbeat struct {
	At time.Time `json:"at"`
}

// liveness is this node's heartbeat and what the other nodes' records
// said, cached for a second.
type liveness struct {
	mu    sync.Mutex
	known map[string]nodeSeen

	// beatMu orders the beats (the timer's, a start's) and guards what
	// follows.
	beatMu  sync.Mutex
	stopped bool
	timer   clock.Timer
	pending sync.WaitGroup // the scheduled tick, until it has run or is stopped
	// lastOK is when the last beat that succeeded was begun (Config.Clock;
	// zero before the first).
	lastOK time.Time
}

type nodeSeen struct {
	stored  time.Time     // when the stream stored the node's last heartbeat (zero: no record)
	age     time.Duration // its age by the stream's clock when it was read
	checked time.Time     // when it was read (this node's monotonic clock)
	ok      bool          // a record was read (false: the read failed)
}

func nodeKey(id string) string { return "node." + token(id) }

// beat writes this node's heartbeat.
func (b *Backend) beat(ctx context.Context) error {
	ctx, cancel, err := b.op(ctx)
	defer cancel()
	if err != nil {
		return err
	}
	v, _ := json.Marshal(heartbeat{At: time.Now().UTC()})
	if _, err := b.counters.write(ctx, nodeKey(b.cfg.NodeID), v, nil, nil, nodeRecordTTL); err != nil {
		return fmt.Errorf("natsbackend: heartbeat: %w", b.classify(err))
	}
	return nil
}

// heartbeat beats, and reports whether the beat ended a lapse: it
// succeeded more than NodeTTL after the previous success began, so the
// other nodes may have read this node as down meanwhile and handed it
// nothing. Then the node resyncs (as after a reconnect). The caller holds
// live.beatMu.
func (b *Backend) heartbeat(ctx context.Context) (lapsed bool, err error) {
	l := &b.live
	began := b.clk.Now()
	if err := b.beat(ctx); err != nil {
		return false, err
	}
	prev := l.lastOK
	l.lastOK = began
	if prev.IsZero() {
		return false, nil
	}
	if gap := b.clk.Now().Sub(prev); gap > b.cfg.NodeTTL {
		b.log.Warn("natsbackend: heartbeat lapsed: the other nodes may have read this node as down; its devices read their queues again",
			"gap", gap, "node_ttl", b.cfg.NodeTTL)
		b.resync()
		return true, nil
	}
	return false, nil
}

// startHeartbeat beats now (an error if that fails) and every NodeTTL/4
// until stopHeartbeat. A start after a stop is measured from the last beat
// before it: a lapse resyncs.
func (b *Backend) startHeartbeat(ctx context.Context) error {
	l := &b.live
	l.mu.Lock()
	if l.known == nil {
		l.known = map[string]nodeSeen{}
	}
	l.mu.Unlock()
	l.beatMu.Lock()
	defer l.beatMu.Unlock()
	if _, err := b.heartbeat(ctx); err != nil {
		return err
	}
	l.stopped = false
	b.scheduleBeat()
	return nil
}

// scheduleBeat sets the timer of the next beat; the caller holds
// live.beatMu.
func (b *Backend) scheduleBeat() {
	b.live.pending.Add(1)
	b.live.timer = b.clk.AfterFunc(b.cfg.NodeTTL/4, b.tick)
}

// tick is the timer's beat.
func (b *Backend) tick() {
	l := &b.live
	defer l.pending.Done()
	l.beatMu.Lock()
	defer l.beatMu.Unlock()
	if l.stopped {
		return
	}
	if _, err := b.heartbeat(context.Background()); err != nil && !b.closed.Load() {
		b.log.Warn("natsbackend: heartbeat", "err", err)
	}
	b.scheduleBeat()
}

// stopHeartbeat ends the heartbeat (waiting for a beat under way); a node
// that stops beating is read as gone by the others NodeTTL later.
func (b *Backend) stopHeartbeat() {
	l := &b.live
	l.beatMu.Lock()
	l.stopped = true
	t := l.timer
	l.timer = nil
	l.beatMu.Unlock()
	if t != nil && t.Stop() {
		l.pending.Done() // the tick will not run
	}
	l.pending.Wait()
}

// nodeDown reports whether node has stopped beating, and since when (zero
// when no record is left): whether the stream stored its last heartbeat
// more than NodeTTL ago by the stream leader's clock. Read failures count
// as alive: a transient error must not mark a node's devices offline.
func (b *Backend) nodeDown(ctx context.Context, node string) (bool, time.Time) {
	if node == b.cfg.NodeID || node == "" {
		return false, time.Time{}
	}
	now := time.Now()
	b.live.mu.Lock()
	seen, cached := b.live.known[node]
	b.live.mu.Unlock()
	if !cached || now.Sub(seen.checked) > time.Second {
		seen = b.readBeat(ctx, node)
		b.live.mu.Lock()
		b.live.known[node] = seen
		b.live.mu.Unlock()
	}
	if !seen.ok {
		return false, time.Time{}
	}
	if seen.stored.IsZero() {
		return true, time.Time{}
	}
	return seen.age+now.Sub(seen.checked) > b.cfg.NodeTTL, seen.stored
}

// readBeat reads node's heartbeat record and its age by the stream's
// clock: the time the stream stored it, and the time the stream leader
// says now (read after it).
func (b *Backend) readBeat(ctx context.Context, node string) nodeSeen {
	seen := nodeSeen{checked: time.Now()}
	e, err := b.counters.get(ctx, nodeKey(node))
	switch {
	case errors.Is(err, errNoKey):
		seen.ok = true
		return seen
	case err != nil:
		return seen
	}
	b.reqs.reads.Add(1)
	info, err := b.counters.stream.Info(ctx)
	if err != nil {
		return seen
	}
	seen.stored, seen.age, seen.ok = e.stored, info.TimeStamp.Sub(e.stored), true
	return seen
}
