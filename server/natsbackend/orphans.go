package natsbackend

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/openmpns/openmpns/server/backend"
	"github.com/openmpns/openmpns/shared/clock"
)

// The sweep of leftovers. DeleteDevice removes the device's record first,
// then its channels, their queues, its index key and its presence, each a
// write of its own: a node that dies between them (or a write that fails)
// leaves channel records, index keys and presence records whose device is
// gone. Nothing else would ever remove them: Stats counts the channels, and
// a node whose cache still holds the device (the deleting node died before
// its broadcast) queues pushes to them for a device that never returns.
//
// So the nodes sweep, at Open and then every sweepEvery (Config.Clock),
// and share the work through the counters bucket's key sweepKey
// (sweepState): where each bucket's scan goes on, and which node's pass is
// under way. A pass takes the key first (a revision-checked write naming
// its node), reads up to sweepBatch records of each of the channels, index
// and presence buckets from the stream leaders, from where the previous
// pass of any node stopped, wrapping around at the end, and removes those
// whose device record is absent:
//
//   - a channel: its record (at the revision read), its queue, its entry in
//     its device's index;
//   - an index key: the channels it names (each at the revision read), their
//     queues, then the key (at the revision read, and only if every channel
//     it names is gone: one written meanwhile keeps it for a later pass);
//   - a presence record (at the revision read).
//
// It then writes where it stopped and gives the key back (one more
// revision-checked write). A node whose tick finds the key taken by
// another node's pass skips its pass, and tries again half a period later
// (so that nodes started together drift apart). So each record is read
// once a cycle whatever the number of nodes, and with N nodes whose ticks
// fall apart a cycle takes up to N times fewer minutes; a node reads no
// more than it did sweeping alone. A pass renews its hold (the
// same write, with where it is) before each bucket and every sweepLease/4
// (Config.Clock); a hold not renewed for sweepLease (by the stream's
// clock, as below: the time the stream stored the key) has lapsed, and the
// next node to tick takes the key over, going on from the last place
// written. The pass whose hold lapsed (a stalled node, one cut off from
// NATS) finds its next renewal refused and stops, and writes nothing over
// the key. What it did meanwhile is safe: two passes may sweep the same
// records at once (the lapsed one, the one that took over), and
// DeleteDevice may be running too, but every removal is revision-checked
// or idempotent, so one of them does it and the others find nothing to
// do. A node that stops (Close) ends its pass and gives the key back, so
// the next tick of another node goes on at once.
//
// The sweep reads a record before its device, and PutChannel reads the
// device before it creates the channel (then again after indexing it). So
// a channel the sweep read was made while its device existed: if the
// device is absent when the sweep reads it next, it was deleted since, and
// the channel goes with it anyway (DeleteDevice removes it, or PutChannel's
// second read of the device refuses it, unless interrupted). A channel
// whose device exists, and existed when the channel was made, is never
// removed for want of its device (only as the loser of a create, below).
// The same holds for an index key (written by PutChannel after
// that first read) and for a presence record (written by Claim for a
// device the engine has authenticated).
//
// A PutChannel that dies (or whose writes fail) between writing the
// channel's record and entering it in its device's index leaves a channel
// that Channel and Target find but Channels does not (so the engine's Open
// makes another for the app, and Bind fails), counted in Stats for as long
// as its device lives. Its writes cannot be ordered so that no such state
// is reachable: the record and the index key are in two streams (no write
// spans both), and writing the index entry first would let a concurrent
// create for the app find the entry's channel absent, take its place and
// leave two channels for one app. So the sweep finishes the create: a
// channel record whose device exists but whose device's index does not
// name it is entered there (revision-checked, as indexAdd does) when the
// index names no live channel for its app; when the index names another
// live channel, the record lost the create (PutChannel refused it, or
// would have: it returns a channel only once indexed, and an index entry
// moves to another token only once its channel is gone), so it is removed
// at the revision read, with its queue.
//
// Left alone, as a defence in depth: every record the stream stored less
// than sweepGrace ago. A pass acts on one read of the device, and
// leftovers of an interrupted delete are old by the time they matter, so a
// record that young waits for a later pass (which reads its device again);
// and a channel that young in no index may be a PutChannel under way,
// which enters it itself. A record's age is the stream's: the time the
// stream stored it against the time the stream leader said now (read at
// most every sweepRefEvery), moved on by Config.Clock since, so that
// neither node's wall clock counts.

const (
	// sweepEvery is the time between two passes of a node's sweep.
	sweepEvery = time.Minute
	// sweepKey is the key in the counters bucket the nodes share the
	// sweep by (sweepState).
	sweepKey = "sweep"
	// sweepLease is how long (by the stream's clock) a pass's hold of
	// sweepKey lasts unless renewed.
	sweepLease = sweepEvery
	// sweepBatch bounds the records one pass reads in each bucket.
	sweepBatch = 256
	// sweepGrace is the age (by the stream's clock) a record must reach
	// before the sweep may remove it.
	sweepGrace = 2 * sweepEvery
	// sweepRefEvery is how long a pass measures the stream's time from the
	// stream leader's time it read last (by Config.Clock), before it asks
	// again.
	sweepRefEvery = time.Hour
)

// sweeper is a node's sweep of leftovers.
type sweeper struct {
	mu      sync.Mutex
	stopped bool
	timer   clock.Timer
	cancel  context.CancelFunc // ends the pass under way
	pending sync.WaitGroup     // the scheduled pass, until it has run or is stopped
	batch   int
	// grace is sweepGrace (a test may set 0: no age guard).
	grace time.Duration
	// refs is each bucket's stream time reference, by sweepBuckets' order;
	// leaseRef the counters stream's (sweepKey's age). Only the pass under
	// way uses them.
	refs     []streamRef
	leaseRef streamRef
	// scanned counts the records this node's passes read, removed the
	// records they removed, skipped the passes that found sweepKey held
	// by another node.
	scanned, removed, skipped atomic.Int64
	// testRead, set by tests only, runs after a pass (whose context is
	// ctx) reads a message of the bucket (its key).
	testRead func(ctx context.Context, bucket, key string)
}

// sweepState is the value of sweepKey.
type sweepState struct {
	// Node is the node whose pass holds the key ("": none).
	Node string `json:"node,omitempty"`
	// Next is where each bucket's scan goes on (a stream sequence), by
	// sweepBuckets' order.
	Next []uint64 `json:"next,omitempty"`
}

// sweepHold is a pass's hold of sweepKey.
type sweepHold struct {
	rev     uint64    // the key's revision this pass wrote last (read, before its first write)
	renewed time.Time // when (Config.Clock)
	next    []uint64  // where each bucket's scan goes on
}

// errSweepTaken: another node took sweepKey over from this pass, whose
// hold lapsed.
var errSweepTaken = errors.New("another node took the sweep over (this pass held it too long)")

// streamRef is a time the stream leader said it was (stream), and
// Config.Clock's time when it was read (local); zero: none read yet.
type streamRef struct{ stream, local time.Time }

// sweepBucket is a bucket the sweep reads, with what it does with a record
// whose device is absent.
type sweepBucket struct {
	k *kv
	// sweep removes the record (key, e) and what goes with it if its
	// device is absent; it reports whether it removed anything.
	sweep func(ctx context.Context, key string, e entry) (bool, error)
}

func (b *Backend) sweepBuckets() []sweepBucket {
	return []sweepBucket{{b.channels, b.sweepChannel}, {b.index, b.sweepIndex}, {b.presence, b.sweepPresence}}
}

// startSweeper schedules the first pass now and the next ones every
// sweepEvery, until stopSweeper.
func (b *Backend) startSweeper() {
	s := &b.sweep
	s.mu.Lock()
	defer s.mu.Unlock()
	s.batch = sweepBatch
	s.grace = sweepGrace
	s.refs = make([]streamRef, len(b.sweepBuckets()))
	s.pending.Add(1)
	s.timer = b.clk.AfterFunc(0, b.sweepTick)
}

// sweepTick is the timer's pass.
func (b *Backend) sweepTick() {
	s := &b.sweep
	defer s.pending.Done()
	s.mu.Lock()
	if s.stopped {
		s.mu.Unlock()
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	s.mu.Unlock()
	skipped := s.skipped.Load()
	if _, err := b.sweepPass(ctx); err != nil && !b.closed.Load() && ctx.Err() == nil {
		b.log.Warn("natsbackend: sweep of leftovers", "err", err)
	}
	cancel()
	// A pass skipped (another node's held the sweep) is tried again half
	// a period later, so that nodes started together do not keep ticking
	// together, each skipping while another sweeps.
	wait := sweepEvery
	if s.skipped.Load() > skipped {
		wait = sweepEvery / 2
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cancel = nil
	if !s.stopped {
		s.pending.Add(1)
		s.timer = b.clk.AfterFunc(wait, b.sweepTick)
	}
}

// stopSweeper ends the sweep: the pass under way stops at its next
// request, and none follows.
func (b *Backend) stopSweeper() {
	s := &b.sweep
	s.mu.Lock()
	s.stopped = true
	t := s.timer
	s.timer = nil
	if s.cancel != nil {
		s.cancel()
	}
	s.mu.Unlock()
	if t != nil && t.Stop() {
		s.pending.Done() // the pass will not run
	}
	s.pending.Wait()
}

// sweepPass is one pass of the sweep (see above); it returns how many
// records it removed, and nothing when another node's pass holds
// sweepKey. A bucket whose scan fails does not keep the pass from the
// others. A node's passes run one at a time (the timer's follow each
// other), and a test calls it only while the timer is stopped or waits.
func (b *Backend) sweepPass(ctx context.Context) (int, error) {
	h, err := b.takeSweep(ctx)
	if err != nil {
		return 0, fmt.Errorf("natsbackend: sweep: take %s: %w", sweepKey, b.classify(err))
	}
	if h == nil {
		b.sweep.skipped.Add(1)
		return 0, nil
	}
	removed := 0
	var errs []error
	for i, sb := range b.sweepBuckets() {
		if i > 0 {
			if err := b.renewSweep(ctx, h); err != nil {
				errs = append(errs, fmt.Errorf("natsbackend: sweep: %w", b.classify(err)))
				break
			}
		}
		n, err := b.sweepScan(ctx, sb, h, &h.next[i], &b.sweep.refs[i], b.sweep.batch)
		removed += n
		if err != nil {
			errs = append(errs, fmt.Errorf("natsbackend: sweep %s: %w", sb.k.bucket, b.classify(err)))
			if errors.Is(err, errSweepTaken) {
				break
			}
		}
	}
	if !slices.ContainsFunc(errs, func(err error) bool { return errors.Is(err, errSweepTaken) }) {
		if err := b.releaseSweep(ctx, h); err != nil {
			errs = append(errs, fmt.Errorf("natsbackend: sweep: give %s back: %w", sweepKey, b.classify(err)))
		}
	}
	return removed, errors.Join(errs...)
}

// takeSweep takes sweepKey for a pass of this node: nil (and no error)
// when another node's pass holds it, its hold not lapsed.
func (b *Backend) takeSweep(ctx context.Context) (*sweepHold, error) {
	ctx, cancel, err := b.op(ctx)
	defer cancel()
	if err != nil {
		return nil, err
	}
	var st sweepState
	e, err := b.counters.get(ctx, sweepKey)
	switch {
	case errors.Is(err, errNoKey):
	case err != nil:
		return nil, err
	case json.Unmarshal(e.val, &st) != nil:
		b.log.Error("natsbackend: sweep: undecodable sweep record replaced", "key", sweepKey)
		st = sweepState{}
	case st.Node != "" && st.Node != b.cfg.NodeID:
		now, err := b.streamNow(ctx, b.counters, &b.sweep.leaseRef)
		if err != nil {
			return nil, err
		}
		if now.Sub(e.stored) < sweepLease {
			return nil, nil
		}
		b.log.Info("natsbackend: sweep: taking over from a node whose pass lapsed", "from", st.Node, "since", e.stored)
	}
	// Written at the revision read (0: no record; or a removal's marker,
	// written over).
	h := &sweepHold{rev: e.rev, next: make([]uint64, len(b.sweepBuckets()))}
	copy(h.next, st.Next)
	switch err := b.writeSweep(ctx, h, b.cfg.NodeID); {
	case errors.Is(err, errSweepTaken):
		return nil, nil // another node took it meanwhile
	case err != nil:
		return nil, err
	}
	return h, nil
}

// renewSweep writes h's hold again, with where the pass is;
// errSweepTaken if another node took the key over meanwhile.
func (b *Backend) renewSweep(ctx context.Context, h *sweepHold) error {
	ctx, cancel, err := b.op(ctx)
	defer cancel()
	if err != nil {
		return err
	}
	return b.writeSweep(ctx, h, b.cfg.NodeID)
}

// releaseSweep gives sweepKey back, with where the pass stopped. It has a
// deadline of its own (afterCommit): a pass that Close ended gives the key
// back too, so that another node's next tick goes on at once.
func (b *Backend) releaseSweep(ctx context.Context, h *sweepHold) error {
	ctx, cancel := b.afterCommit(ctx)
	defer cancel()
	return b.writeSweep(ctx, h, "")
}

// writeSweep writes sweepKey if its last message is still h's revision:
// node, and where the pass is; else errSweepTaken (another node wrote
// it).
func (b *Backend) writeSweep(ctx context.Context, h *sweepHold, node string) error {
	val, err := json.Marshal(sweepState{Node: node, Next: h.next})
	if err != nil {
		return err
	}
	rev, err := b.counters.write(ctx, sweepKey, val, nil, &h.rev, 0)
	if errors.Is(err, errRevMismatch) {
		return errSweepTaken
	}
	if err != nil {
		return err // "<bucket>: write sweep: …"
	}
	h.rev, h.renewed = rev, b.clk.Now()
	return nil
}

// sweepScan reads up to budget messages of the bucket from *next on (from
// the start again once at the end, never past where it began) and sweeps
// each record older than the grace (its stream's time from *ref); *next is
// where the following scan resumes. It renews the pass's hold h every
// sweepLease/4.
func (b *Backend) sweepScan(ctx context.Context, sb sweepBucket, h *sweepHold, next *uint64, ref *streamRef, budget int) (int, error) {
	k := sb.k
	grace := b.sweep.grace
	var now time.Time // the stream's time now
	if grace > 0 {
		var err error
		if now, err = b.streamNow(ctx, k, ref); err != nil {
			return 0, err
		}
	}
	start, wrapped, removed := *next, false, 0
	for read := 0; read < budget; read++ {
		if b.clk.Now().Sub(h.renewed) >= sweepLease/4 {
			if err := b.renewSweep(ctx, h); err != nil {
				return removed, err
			}
		}
		octx, cancel, err := b.op(ctx)
		if err != nil {
			cancel()
			return removed, err
		}
		m, err := b.leaderGet(octx, k.name(), msgGetRequest{Seq: *next, NextFor: k.pre + ">"})
		if m != nil {
			b.sweep.scanned.Add(1)
			if b.sweep.testRead != nil {
				b.sweep.testRead(ctx, k.bucket, m.Subject[len(k.pre):])
			}
		}
		if err == nil && m != nil && (!wrapped || m.Seq < start) && !isMarker(m.Header) &&
			(grace <= 0 || now.Sub(m.Time) >= grace) {
			var did bool
			did, err = sb.sweep(octx, m.Subject[len(k.pre):], entry{val: m.Data, rev: m.Seq, stored: m.Time})
			if did {
				removed++
				b.sweep.removed.Add(1)
			}
		}
		cancel()
		switch {
		case err != nil:
			return removed, err // the next pass begins with this record
		case m == nil && !wrapped && start > 0:
			*next, wrapped = 0, true // the end: on from the start
		case m == nil || (wrapped && m.Seq >= start):
			*next = start // all of it read in this pass
			return removed, nil
		default:
			*next = m.Seq + 1
		}
	}
	return removed, nil
}

// streamNow is the time the stream leader of k's bucket says it is, as
// measured from *ref by Config.Clock; it reads the stream's time again
// (into *ref) when *ref is unset, older than sweepRefEvery or ahead of
// Config.Clock.
func (b *Backend) streamNow(ctx context.Context, k *kv, ref *streamRef) (time.Time, error) {
	local := b.clk.Now()
	if ref.stream.IsZero() || local.Sub(ref.local) > sweepRefEvery || local.Before(ref.local) {
		octx, cancel, err := b.op(ctx)
		defer cancel()
		if err != nil {
			return time.Time{}, err
		}
		b.reqs.reads.Add(1)
		info, err := k.stream.Info(octx)
		if err != nil {
			return time.Time{}, fmt.Errorf("the stream's time: %w", err)
		}
		*ref = streamRef{stream: info.TimeStamp, local: local}
	}
	return ref.stream.Add(local.Sub(ref.local)), nil
}

// deviceGone reports whether the device whose key (token) this is has no
// record, as its stream leader says.
func (b *Backend) deviceGone(ctx context.Context, key string) (bool, error) {
	_, err := b.devices.get(ctx, key)
	if errors.Is(err, errNoKey) {
		return true, nil
	}
	return false, err
}

// sweepChannel removes a channel record whose device is absent, then its
// queue and its entry in the device's index.
func (b *Backend) sweepChannel(ctx context.Context, key string, e entry) (bool, error) {
	var c backend.Channel
	if err := json.Unmarshal(e.val, &c); err != nil {
		b.log.Error("natsbackend: sweep: undecodable channel record left alone", "key", key, "err", err)
		return false, nil
	}
	gone, err := b.deviceGone(ctx, token(c.DeviceID))
	if err != nil {
		return false, err
	}
	if !gone {
		return b.sweepUnindexed(ctx, key, e, c)
	}
	if did, err := delAt(ctx, b.channels, key, e.rev); !did {
		return false, err
	}
	b.log.Info("natsbackend: sweep: removed a channel whose device is gone", "token", c.Token, "device", c.DeviceID)
	if err := b.purgeChannel(ctx, c.DeviceID, c.Token); err != nil {
		return true, err
	}
	return true, b.indexRemove(ctx, c.DeviceID, c.App, c.Token)
}

// sweepUnindexed finishes what a PutChannel interrupted between its
// writes left (see above) of channel c, read at e, whose device exists:
// a channel its device's index does not name. If the index names no live
// channel for c.App, it enters c there (revision-checked, as indexAdd
// does); if it names another live channel, c lost the create (PutChannel
// refused it, or would have) and is removed, at the revision read, with
// its queue. A channel the index names is left as it is, and so is one
// whose device's index key does not decode.
func (b *Backend) sweepUnindexed(ctx context.Context, key string, e entry, c backend.Channel) (bool, error) {
	for range maxCAS {
		ie, err := b.index.get(ctx, token(c.DeviceID))
		idx := channelIndex{}
		switch {
		case errors.Is(err, errNoKey):
			ie.rev = 0
		case err != nil:
			return false, err
		case json.Unmarshal(ie.val, &idx) != nil:
			b.log.Error("natsbackend: sweep: undecodable channel index left alone", "key", token(c.DeviceID))
			return false, nil
		}
		if other, ok := idx[c.App]; ok {
			if other == c.Token {
				return false, nil // indexed: the common case
			}
			_, err := b.channels.get(ctx, token(other))
			if err == nil {
				// Another channel holds the app's place: c was never
				// confirmed to anyone (PutChannel returns a channel only
				// once it is indexed, and an entry moves to another
				// token only once its channel is gone).
				if did, err := delAt(ctx, b.channels, key, e.rev); !did {
					return false, err
				}
				b.log.Info("natsbackend: sweep: removed a channel that lost its app's place to another",
					"token", c.Token, "device", c.DeviceID, "app", c.App, "other", other)
				return true, b.purgeChannel(ctx, c.DeviceID, c.Token)
			}
			if !errors.Is(err, errNoKey) {
				return false, err
			}
			// An entry whose channel is gone: take its place.
		}
		idx[c.App] = c.Token
		err = b.writeIndex(ctx, c.DeviceID, idx, ie.rev)
		if errors.Is(err, errRevMismatch) {
			continue // the index was written meanwhile: read it again
		}
		if err != nil {
			return false, err
		}
		b.log.Info("natsbackend: sweep: entered a channel in its device's index", "token", c.Token, "device", c.DeviceID, "app", c.App)
		// Deleted meanwhile (DeleteChannel read it before the entry was
		// written): the entry goes too. Were this to fail, an entry whose
		// channel is gone is skipped by every reader and taken over by
		// the app's next channel.
		if _, err := b.channels.get(ctx, key); errors.Is(err, errNoKey) {
			return true, b.indexRemove(ctx, c.DeviceID, c.App, c.Token)
		}
		return true, nil
	}
	return false, fmt.Errorf("channel index of %s: %w: too many concurrent writers", c.DeviceID, context.DeadlineExceeded)
}

// sweepIndex removes an index key whose device is absent, with the
// channels it names and their queues. A channel record it names that does
// not decode is left alone, as sweepChannel leaves it, and so is the key.
func (b *Backend) sweepIndex(ctx context.Context, key string, e entry) (bool, error) {
	var idx channelIndex
	if err := json.Unmarshal(e.val, &idx); err != nil {
		b.log.Error("natsbackend: sweep: undecodable channel index left alone", "key", key, "err", err)
		return false, nil
	}
	// The channels before the device (see above).
	revs := map[string]uint64{} // channel key -> revision (0: no record)
	undecodable := false
	for _, tok := range idx {
		ce, err := b.channels.get(ctx, token(tok))
		var c backend.Channel
		switch {
		case errors.Is(err, errNoKey):
			revs[token(tok)] = 0
		case err != nil:
			return false, err
		case json.Unmarshal(ce.val, &c) != nil:
			b.log.Error("natsbackend: sweep: undecodable channel record left alone, with the index key naming it",
				"key", token(tok), "index", key)
			undecodable = true
		case token(c.DeviceID) == key:
			revs[token(tok)] = ce.rev
		}
	}
	if gone, err := b.deviceGone(ctx, key); err != nil || !gone {
		return false, err
	}
	kept := undecodable
	for ck, rev := range revs {
		if rev != 0 {
			if err := b.channels.del(ctx, ck, rev); errors.Is(err, errRevMismatch) {
				kept = true // written meanwhile: a later pass reads it again
				continue
			} else if err != nil && !errors.Is(err, errNoKey) {
				return false, err
			}
		}
		if err := b.purgeChannel(ctx, untoken(key), untoken(ck)); err != nil {
			return false, err
		}
	}
	if kept {
		return false, nil
	}
	if did, err := delAt(ctx, b.index, key, e.rev); !did {
		return false, err
	}
	b.log.Info("natsbackend: sweep: removed the channels of a device that is gone", "device", untoken(key), "channels", len(idx))
	return true, nil
}

// sweepPresence removes a presence record whose device is absent.
func (b *Backend) sweepPresence(ctx context.Context, key string, e entry) (bool, error) {
	if gone, err := b.deviceGone(ctx, key); err != nil || !gone {
		return false, err
	}
	return delAt(ctx, b.presence, key, e.rev)
}

// delAt removes k's key at revision rev; removed is false, with no error,
// when the record was written or removed meanwhile.
func delAt(ctx context.Context, k *kv, key string, rev uint64) (removed bool, err error) {
	err = k.del(ctx, key, rev)
	if errors.Is(err, errRevMismatch) || errors.Is(err, errNoKey) {
		return false, nil
	}
	return err == nil, err
}

// purgeChannel purges the queue of a channel that is gone (the device's id
// and the channel's token) and drops this node's view of it.
func (b *Backend) purgeChannel(ctx context.Context, dev, ch string) error {
	if err := b.queue.Purge(ctx, jetstream.WithPurgeSubject(b.channelFilter(dev, ch))); err != nil {
		return fmt.Errorf("purge the queue of channel %s: %w", ch, err)
	}
	b.views.drop(viewKey{dev, ch})
	return nil
}

// untoken is the inverse of token.
func untoken(key string) string {
	if len(key) == 0 || key[0] != '=' {
		return key
	}
	s, err := base64.RawURLEncoding.DecodeString(key[1:])
	if err != nil {
		return key
	}
	return string(s)
}
