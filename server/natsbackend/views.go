package natsbackend

import (
	"slices"
	"sync"

	"github.com/openmpns/openmpns/server/backend"
)

// Views of channels' queues: what a node knows of the notifications queued
// on a channel, so that Append need not read the channel before each
// publish. A view is what the last read of the channel found, plus what this
// node appended since, minus what it (or, told by a removal notice, the node
// holding the device) removed since. It may be stale in one direction only:
// it can list a notification that is gone (removed by a node that did not
// say, or expired), never miss one, because every publish is checked by the
// stream against the view's last sequence: a notification stored on the
// channel by anyone else fails the check, and Append reads the channel
// again. A view that counts the channel full is read again before Append
// refuses. So views change what Append costs, never what it decides.
//
// Known notes say, for a notification this node appended, read or was
// handed, whose it is and which node appended it: Remove deletes them
// without reading them first, and tells the node that appended them so
// that its view drops them.
type queueViews struct {
	self  string // this node's id
	mu    sync.Mutex
	m     map[viewKey]*queueView
	known map[uint64]knownNote
}

type viewKey struct{ dev, ch string }

type queueView struct {
	last  uint64     // the channel's last stored sequence, as far as known
	items []viewItem // in sequence order
}

type viewItem struct {
	seq  uint64
	subj string
	exp  int64 // ExpiresAt, Unix nanoseconds
}

type knownNote struct {
	dev, ch string
	from    string // the node that appended it ("" unknown)
}

// removedNote is a removal a node tells the node that appended the
// notification.
type removedNote struct {
	Dev string `json:"d"`
	Ch  string `json:"c"`
	Seq uint64 `json:"s"`
}

func newQueueViews(self string) *queueViews {
	return &queueViews{self: self, m: map[viewKey]*queueView{}, known: map[uint64]knownNote{}}
}

// plan counts the channel's notifications from its view: those not expired
// at now, leaving out the tile update subj replaces when tile. ok is false
// when there is no view.
func (q *queueViews) plan(k viewKey, subj string, tile bool, now int64) (v *queueView, last, replaced uint64, count int, ok bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	v = q.m[k]
	if v == nil {
		return nil, 0, 0, 0, false
	}
	last, replaced, count = v.count(subj, tile, now)
	return v, last, replaced, count, true
}

// count is plan's count of v; the caller holds the views' mu.
func (v *queueView) count(subj string, tile bool, now int64) (last, replaced uint64, count int) {
	for _, it := range v.items {
		if it.exp <= now {
			continue
		}
		if tile && it.subj == subj {
			replaced = it.seq
			continue
		}
		count++
	}
	return v.last, replaced, count
}

// set makes what a read of the channel found its view, and counts it as
// plan does. The count is made under mu: once the view is in q.m, a
// removal (removed, appended) may change it at any time.
func (q *queueViews) set(k viewKey, msgs []directMsg, exp func(directMsg) int64, subj string, tile bool, now int64) (v *queueView, last, replaced uint64, count int) {
	v = &queueView{items: make([]viewItem, 0, len(msgs))}
	for _, m := range msgs {
		v.items = append(v.items, viewItem{seq: m.Seq, subj: m.Subject, exp: exp(m)})
		v.last = m.Seq
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	q.evict()
	q.m[k] = v
	last, replaced, count = v.count(subj, tile, now)
	return v, last, replaced, count
}

// appended adds a notification this node stored at seq (replacing the
// tile update at replaced, if any) to view v, if v is still the channel's.
func (q *queueViews) appended(k viewKey, v *queueView, seq, replaced uint64, subj string, exp int64) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.note(seq, knownNote{dev: k.dev, ch: k.ch, from: q.self})
	if q.m[k] != v {
		return
	}
	if replaced != 0 {
		v.drop(replaced)
	}
	v.items = append(v.items, viewItem{seq: seq, subj: subj, exp: exp})
	v.last = seq
}

// drop forgets the channel's view (it failed the stream's check, or the
// channel was deleted).
func (q *queueViews) drop(k viewKey) {
	q.mu.Lock()
	defer q.mu.Unlock()
	delete(q.m, k)
}

// drop removes seq from the view; if it was the last, the last is the
// greatest left (what the stream then says too, unless the view is stale,
// which its next check finds).
func (v *queueView) drop(seq uint64) {
	i := slices.IndexFunc(v.items, func(it viewItem) bool { return it.seq == seq })
	if i < 0 {
		return
	}
	v.items = slices.Delete(v.items, i, i+1)
	if seq == v.last {
		v.last = 0
		if n := len(v.items); n > 0 {
			v.last = v.items[n-1].seq
		}
	}
}

// delivered notes a notification handed to this node by node from.
func (q *queueViews) delivered(n *backend.Notification, from string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.note(n.Seq, knownNote{dev: n.DeviceID, ch: n.Channel, from: from})
}

// read notes notifications read from the queue (whoever appended them).
func (q *queueViews) read(dev string, notes []*backend.Notification) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, n := range notes {
		if _, ok := q.known[n.Seq]; !ok {
			q.note(n.Seq, knownNote{dev: dev, ch: n.Channel})
		}
	}
}

// note records a known notification; the caller holds mu. Past cacheMax
// notes a random eighth is forgotten (Remove then reads them first).
func (q *queueViews) note(seq uint64, k knownNote) {
	if len(q.known) >= cacheMax {
		n := len(q.known) / 8
		for s := range q.known {
			if n == 0 {
				break
			}
			delete(q.known, s)
			n--
		}
	}
	q.known[seq] = k
}

// take splits seqs into notifications known to be dev's (forgotten as
// known now, their removal underway) and the others.
func (q *queueViews) take(dev string, seqs []uint64) (mine []removedNote, from []string, unknown []uint64) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, s := range seqs {
		if s == 0 {
			continue
		}
		k, ok := q.known[s]
		if !ok || k.dev != dev {
			unknown = append(unknown, s)
			continue
		}
		delete(q.known, s)
		mine = append(mine, removedNote{Dev: k.dev, Ch: k.ch, Seq: s})
		from = append(from, k.from)
	}
	return mine, from, unknown
}

// removed drops removed notifications from this node's views.
func (q *queueViews) removed(notes []removedNote) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, n := range notes {
		if v := q.m[viewKey{n.Dev, n.Ch}]; v != nil {
			v.drop(n.Seq)
		}
	}
}

// clear forgets every view (not the known notes: what they say does not
// go stale).
func (q *queueViews) clear() {
	q.mu.Lock()
	defer q.mu.Unlock()
	clear(q.m)
}

// evict drops a random eighth of the views when there are cacheMax; the
// caller holds mu.
func (q *queueViews) evict() {
	if len(q.m) < cacheMax {
		return
	}
	n := len(q.m) / 8
	for k := range q.m {
		if n == 0 {
			break
		}
		delete(q.m, k)
		n--
	}
}
