package natsbackend

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/openmpns/openmpns/server/backend"
)

// hdrExpires carries a queued notification's ExpiresAt (Unix nanoseconds),
// so that Append counts a channel's notifications from their headers.
const hdrExpires = "Openmpns-Expires"

func (b *Backend) deviceFilter(dev string) string { return b.qPre + token(dev) + ".>" }

func (b *Backend) channelFilter(dev, ch string) string {
	return b.qPre + token(dev) + "." + token(ch) + ".>"
}

// noteSubject is <prefix>.q.<device>.<channel>.t.<tile id> for a tile
// update (one subject per tile, so that a rollup replaces the previous
// update), else <prefix>.q.<device>.<channel>.n.
func (b *Backend) noteSubject(n *backend.Notification) string {
	s := b.qPre + token(n.DeviceID) + "." + token(n.Channel) + "."
	if n.Kind == "tile" {
		return s + "t." + token(n.TileID)
	}
	return s + "n"
}

// Append implements backend.Queue. It reads the channel's queue (batched
// direct get), counts the notifications not expired (the tile update it
// replaces aside), and publishes with the expected last sequence of the
// channel's subjects set to the last one it read: if any node appended to
// the channel since, the stream refuses the publish and Append reads
// again. A stale read cannot let a publish through (the check is made by
// the stream leader), so the limit holds across nodes; a read that counts
// the channel full is confirmed by the leader before Append refuses (see
// confirmRead). A tile update carries Nats-Rollup: sub, which removes the
// previous update of its tile in the same write. The publish is
// acknowledged once stored by a quorum, so Durable has already yielded
// when Append returns.
func (b *Backend) Append(ctx context.Context, n *backend.Notification, limit int) (backend.Appended, error) {
	ctx, cancel, err := b.op(ctx)
	defer cancel()
	if err != nil {
		return backend.Appended{}, err
	}
	if n.DeviceID == "" || n.Channel == "" {
		return backend.Appended{}, errors.New("natsbackend: append: empty device or channel")
	}
	stored := *n
	stored.Seq = 0
	body, err := json.Marshal(&stored)
	if err != nil {
		return backend.Appended{}, fmt.Errorf("natsbackend: encode notification: %w", err)
	}
	subj, filter, tile := b.noteSubject(n), b.channelFilter(n.DeviceID, n.Channel), n.Kind == "tile"
	fail := func(err error) (backend.Appended, error) {
		return backend.Appended{}, fmt.Errorf("natsbackend: append to channel %s: %w", n.Channel, b.classify(err))
	}
	key, exp := viewKey{n.DeviceID, n.Channel}, n.ExpiresAt.UnixNano()
	for attempt := 0; ; attempt++ {
		now := time.Now()
		// The channel's view, if this node has one and it does not count
		// the channel full; else (and after a failed check) a read.
		v, last, replaced, count, ok := b.views.plan(key, subj, tile, now.UnixNano())
		if !ok || (limit > 0 && count >= limit) {
			msgs, err := b.replicaRead(ctx, filter)
			if err != nil {
				return fail(err)
			}
			v, last, replaced, count = b.views.set(key, msgs, msgExpiry, subj, tile, now.UnixNano())
			if limit > 0 && count >= limit {
				// A replica may not have applied a removal yet (one the
				// device acknowledged a moment ago, through any node): a
				// refusal is decided from what the leader holds.
				msgs, fresh, err := b.confirmRead(ctx, filter, msgs, true)
				if err != nil {
					return fail(err)
				}
				if fresh {
					v, last, replaced, count = b.views.set(key, msgs, msgExpiry, subj, tile, now.UnixNano())
				}
			}
		}
		if limit > 0 && count >= limit {
			return backend.Appended{}, fmt.Errorf("natsbackend: channel %s holds %d notifications: %w", n.Channel, count, backend.ErrQueueFull)
		}
		msg := nats.NewMsg(subj)
		msg.Data = body
		msg.Header.Set(hdrExpires, strconv.FormatInt(exp, 10))
		if tile {
			msg.Header.Set(jetstream.MsgRollup, jetstream.MsgRollupSubject)
		}
		opts := []jetstream.PublishOpt{jetstream.WithExpectLastSequenceForSubject(last, filter)}
		if ttl, ok := b.msgTTL(n.ExpiresAt, now); ok {
			opts = append(opts, jetstream.WithMsgTTL(ttl))
		}
		b.reqs.publishes.Add(1)
		ack, err := b.js.PublishMsg(ctx, msg, opts...)
		if wrongLastSeq(err) {
			// Another append to this channel came first (or is being
			// stored), or the view was stale: read again, after a short
			// random pause once the channel is contended.
			b.views.drop(key)
			if err := backoff(ctx, attempt); err != nil {
				return fail(err)
			}
			continue
		}
		if err != nil {
			b.views.drop(key) // it may have been stored
			return fail(err)
		}
		n.Seq = ack.Sequence
		b.views.appended(key, v, ack.Sequence, replaced, subj, exp)
		durable := make(chan error, 1)
		durable <- nil
		return backend.Appended{Seq: ack.Sequence, Replaced: replaced, Durable: durable}, nil
	}
}

// msgExpiry is a queued message's ExpiresAt (Unix nanoseconds) from its
// header; one without is counted as not expired.
func msgExpiry(m directMsg) int64 {
	if exp, err := strconv.ParseInt(m.Header.Get(hdrExpires), 10, 64); err == nil {
		return exp
	}
	return math.MaxInt64
}

// msgTTL is the Nats-TTL of a notification expiring at exp: whole seconds,
// at least one (NATS's minimum); none if the stream's MaxAge comes first.
func (b *Backend) msgTTL(exp, now time.Time) (time.Duration, bool) {
	d := exp.Sub(now)
	if d >= b.cfg.QueueTTL {
		return 0, false
	}
	secs := (d + time.Second - 1) / time.Second
	return max(secs, 1) * time.Second, true
}

// backoff waits a random time growing with attempt (none at first), or
// until ctx ends.
func backoff(ctx context.Context, attempt int) error {
	if attempt == 0 {
		return ctx.Err()
	}
	limit := min(time.Millisecond<<min(attempt, 5), 20*time.Millisecond)
	t := time.NewTimer(rand.N(limit) + time.Millisecond)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Remove implements backend.Queue. A notification this node appended,
// read or was handed for the device is deleted at once; any other Seq is
// read from the stream leader first, and ignored unless it is the
// device's (a device cannot remove another's notifications) or already
// gone. Deletes are sent together, and the nodes that appended the
// notifications are told, so that their views of the channels drop them.
func (b *Backend) Remove(ctx context.Context, dev string, seqs []uint64) error {
	ctx, cancel, err := b.op(ctx)
	defer cancel()
	if err != nil {
		return err
	}
	mine, from, unknown := b.views.take(dev, seqs)
	prefix := b.qPre + token(dev) + "."
	for _, seq := range unknown {
		m, err := b.leaderGet(ctx, b.queueSt, msgGetRequest{Seq: seq, NoHdr: true})
		if err != nil {
			return fmt.Errorf("natsbackend: remove %d: %w", seq, b.classify(err))
		}
		if m != nil && strings.HasPrefix(m.Subject, prefix) {
			mine = append(mine, removedNote{Dev: dev, Seq: seq})
			from = append(from, "")
		}
	}
	if len(mine) == 0 {
		return nil
	}
	errs := make([]error, len(mine))
	var wg sync.WaitGroup
	for i, r := range mine {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := b.deleteMsg(ctx, b.queueSt, r.Seq); err != nil {
				errs[i] = fmt.Errorf("natsbackend: remove %d: %w", r.Seq, b.classify(err))
			}
		}()
	}
	wg.Wait()
	// Only what was deleted leaves the views: a notification whose delete
	// failed is still queued and must still count against its channel's
	// limit (the stream checks only the channel's last sequence).
	done := make([]removedNote, 0, len(mine))
	byNode := map[string][]removedNote{}
	for i, r := range mine {
		if errs[i] != nil {
			continue
		}
		done = append(done, r)
		if from[i] != "" && from[i] != b.cfg.NodeID && r.Ch != "" {
			byNode[from[i]] = append(byNode[from[i]], r)
		}
	}
	b.views.removed(done)
	for node, rs := range byNode {
		if err := b.tell(node, nodeMsg{Kind: "removed", Removed: rs}); err != nil {
			b.log.Debug("natsbackend: tell a node of removals", "node", node, "err", err)
		}
	}
	return errors.Join(errs...)
}

// Pending implements backend.Queue. It asks the stream leader for the
// device's last sequence, then reads the device's queue from the nearest
// replica (one batched direct get); should that replica not have that
// sequence yet, or hold more messages on one of the device's subjects
// than the leader (a removal it has not applied yet, see confirmRead), it
// reads from the leader, one message at a time. So a
// notification whose Append returned on any node is in the result, and
// one whose Remove returned is not.
func (b *Backend) Pending(ctx context.Context, dev string, now time.Time) ([]*backend.Notification, error) {
	ctx, cancel, err := b.op(ctx)
	defer cancel()
	if err != nil {
		return nil, err
	}
	fail := func(err error) ([]*backend.Notification, error) {
		return nil, fmt.Errorf("natsbackend: pending of %s: %w", dev, b.classify(err))
	}
	filter := b.deviceFilter(dev)
	fence, err := b.leaderGet(ctx, b.queueSt, msgGetRequest{LastFor: filter, NoHdr: true})
	if err != nil {
		return fail(err)
	}
	if fence == nil {
		return nil, nil
	}
	msgs, err := b.replicaRead(ctx, filter)
	if err != nil {
		return fail(err)
	}
	if len(msgs) == 0 || msgs[len(msgs)-1].Seq < fence.Seq {
		if msgs, err = b.leaderScan(ctx, filter, false); err != nil {
			return fail(err)
		}
	} else if msgs, _, err = b.confirmRead(ctx, filter, msgs, false); err != nil {
		return fail(err)
	}
	out := make([]*backend.Notification, 0, len(msgs))
	for _, m := range msgs {
		n := new(backend.Notification)
		if err := json.Unmarshal(m.Data, n); err != nil {
			return nil, fmt.Errorf("natsbackend: decode notification %d: %w", m.Seq, err)
		}
		if !n.ExpiresAt.After(now) {
			continue
		}
		n.Seq = m.Seq
		out = append(out, n)
	}
	b.views.read(dev, out)
	return out, nil
}

// leaderScan reads every message of the queue on filter from the stream
// leader, with their headers if hdrs.
func (b *Backend) leaderScan(ctx context.Context, filter string, hdrs bool) ([]directMsg, error) {
	var out []directMsg
	for from := uint64(0); ; {
		m, err := b.leaderGet(ctx, b.queueSt, msgGetRequest{Seq: from, NextFor: filter, NoHdr: !hdrs})
		if err != nil || m == nil {
			return out, err
		}
		dm := directMsg{Subject: m.Subject, Seq: m.Seq, Data: m.Data}
		if hdrs && len(m.Header) > 0 {
			if dm.Header, err = nats.DecodeHeadersMsg(m.Header); err != nil {
				return out, fmt.Errorf("message %d: headers: %w", m.Seq, err)
			}
		}
		out = append(out, dm)
		from = m.Seq + 1
	}
}

// Reads that must see earlier writes. The KV buckets are read from their
// stream leaders (AllowDirect off, kv.get, leaderGet), so a write
// acknowledged to any node is in the next read. The queue stream allows
// direct gets, which any replica answers (the nearest, usually), and a
// replica may not have applied the latest writes yet, acknowledged ones
// included. Two reads of the queue decide something from what they find:
// Append refuses a channel at its limit, and Pending returns what a device
// is to receive. An append a replica lacks is caught (Append's publish is
// checked by the leader against the last sequence it read; Pending
// compares its read with the leader's last sequence first); a removal it
// lacks (Remove, the purge of a deleted channel) is not: the read shows a
// notification that is gone, and a channel emptied by its device's acks a
// moment ago through any node read as full (Append refused with
// ErrQueueFull what it should have stored), or Pending returned what was
// acknowledged already.
//
// So a replica's read that Append would refuse on, and every Pending read,
// is confirmed by the leader (confirmRead): one stream info request with a
// subjects filter, answered by the leader, gives its count of messages on
// each subject of the channel or device; if the read holds more messages
// on a subject than the leader (or holds a subject the leader has none on),
// the replica has not applied a removal, and the read is replaced by one
// from the leader (a message get per message: the leader's message get API
// has no batch). The leader holding more on a subject is no reason to read
// again: what was appended since the read (a push arriving while a device
// connects) adds to a channel Append refuses as full, and is after
// Pending's fence. What was not chosen: a
// direct get carrying a minimum sequence the replica must have reached
// (nats-server v2.15.3 declares an error for it, 10180, but no request
// takes one), which would not cover removals anyway (a delete or purge
// does not move the stream's last sequence); reading from
// the leader always, which costs a request per message on every Pending
// and every refused Append. Counts can miss a removal only when appends
// the replica also lacks, to the same subject, make up for it (as many or
// more): Append then refuses with at least as many notifications stored at
// the leader (the newer ones not expired, short of a lifetime under the
// replica's lag), and
// Pending (whose fence already covers what was appended before it began)
// may return the removed notification once more, which devices drop as
// seen.

// replicaRead reads every message of the queue on filter from the nearest
// replica (batched direct get), which may lag (see above).
func (b *Backend) replicaRead(ctx context.Context, filter string) ([]directMsg, error) {
	msgs, err := b.directGet(ctx, b.queueSt, filter)
	if err == nil && b.testReplicaRead != nil {
		msgs = b.testReplicaRead(filter, msgs)
	}
	return msgs, err
}

// confirmRead checks a replica's read of the queue on filter against the
// stream leader's count of messages on each subject, and reads from the
// leader (with headers if hdrs) if the read holds more on some subject than
// the leader (a removal the replica has not applied); fresh says it did.
// The leader holding more is no disagreement: appends stored since the read
// (see above: Append's refusal stands with more stored, and Pending need
// not return what was appended after its fence).
func (b *Backend) confirmRead(ctx context.Context, filter string, read []directMsg, hdrs bool) (msgs []directMsg, fresh bool, err error) {
	b.reqs.reads.Add(1)
	info, err := b.queue.Info(ctx, jetstream.WithSubjectFilter(filter))
	if err != nil {
		return nil, false, err
	}
	// A member answers in place of the leader while there is none: its
	// count proves nothing.
	agree := info.Cluster == nil || info.Cluster.Leader != ""
	if agree {
		have := make(map[string]uint64, len(info.State.Subjects))
		for _, m := range read {
			have[m.Subject]++
		}
		for subj, n := range have {
			agree = agree && n <= info.State.Subjects[subj]
		}
	}
	if agree {
		return read, false, nil
	}
	msgs, err = b.leaderScan(ctx, filter, hdrs)
	return msgs, err == nil, err
}

// Sweep implements backend.Queue: NATS removes expired notifications by
// itself (Nats-TTL, MaxAge), so there is nothing to do.
func (b *Backend) Sweep(ctx context.Context, _ time.Time) (int, error) {
	if b.closed.Load() {
		return 0, backend.ErrClosed
	}
	return 0, ctx.Err()
}
