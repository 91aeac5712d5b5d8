package natsbackend

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/openmpns/openmpns/server/backend"
)

// presenceRec is the value of a device's key in the presence bucket. The
// claim of a connection is the revision of the record its Claim wrote.
type presenceRec struct {
	Node      string    `json:"node"`
	Connected bool      `json:"connected"`
	Since     time.Time `json:"since"`
	// Claim is set by Release: the claim that ended.
	Claim uint64 `json:"claim,omitempty"`
}

// nodeMsg is what one node sends another on <prefix>.node.<node id>.
type nodeMsg struct {
	// Kind is "deliver" or "takenover".
	Kind     string                `json:"kind"`
	DeviceID string                `json:"device"`
	N        *backend.Notification `json:"n,omitempty"`
	Replaced uint64                `json:"replaced,omitempty"`
	Claim    uint64                `json:"claim,omitempty"`
	// From is the sending node.
	From string `json:"from,omitempty"`
	// Check: the sender found the holder in its cache of presence, which
	// may be stale: a node that does not hold the device looks it up and
	// passes the notification on.
	Check bool `json:"check,omitempty"`
	// Cache is a write of a cached record (Kind "cache", on <p>.all).
	Cache *cacheMsg `json:"cache,omitempty"`
	// Removed are notifications the sender removed that this node
	// appended (Kind "removed"): its views of their channels drop them.
	Removed []removedNote `json:"removed,omitempty"`
}

// Listen implements backend.Router. Messages for this node that arrive
// before Listen are dropped (a hand is best effort).
func (b *Backend) Listen(in backend.Inbox) { b.inbox.Store(&inboxBox{in}) }

// nodeLoop receives what other nodes send this one and every node, in the
// order each node sent it (one channel for both subscriptions: a cache
// update sent before a hand is applied before the hand arrives), until the
// connection is closed. The Inbox must not block.
func (b *Backend) nodeLoop() {
	defer close(b.loopDone)
	for {
		select {
		case m := <-b.nodeCh:
			var msg nodeMsg
			if err := json.Unmarshal(m.Data, &msg); err != nil {
				b.log.Error("natsbackend: bad node message", "subject", m.Subject, "err", err)
				continue
			}
			switch {
			case msg.Kind == "cache" && msg.Cache != nil:
				if msg.From != b.cfg.NodeID {
					b.onCacheMsg(msg.Cache)
				}
			case msg.Kind == "removed":
				b.views.removed(msg.Removed)
			default:
				b.deliverLocal(msg)
			}
		case <-b.connDone:
			return
		}
	}
}

func (b *Backend) deliverLocal(msg nodeMsg) {
	box := b.inbox.Load()
	if box == nil {
		return
	}
	switch msg.Kind {
	case "deliver":
		if msg.N == nil {
			return
		}
		if msg.Check && !b.holds(msg.DeviceID) {
			b.background.Add(1)
			go func() {
				defer b.background.Done()
				b.passOn(msg)
			}()
			return
		}
		b.views.delivered(msg.N, msg.From)
		box.Deliver(msg.DeviceID, msg.N, msg.Replaced)
	case "takenover":
		if c, ok := b.held.Load(msg.DeviceID); ok && c.(uint64) < msg.Claim {
			b.held.CompareAndDelete(msg.DeviceID, c)
		}
		box.TakenOver(msg.DeviceID, msg.Claim)
	}
}

// tell sends msg to node: through its own Inbox when node is this one,
// else as a core NATS message on the node's subject (at most once).
func (b *Backend) tell(node string, msg nodeMsg) error {
	msg.From = b.cfg.NodeID
	if node == b.cfg.NodeID {
		b.deliverLocal(msg)
		return nil
	}
	data, err := json.Marshal(msg)
	if err != nil {
		return err
	}
	b.reqs.nodeMsgs.Add(1)
	return b.nc.Publish(b.cfg.Prefix+".node."+token(node), data)
}

// holds reports whether this node holds the device's connection, as far as
// its own claims and the takeovers it was told of say.
func (b *Backend) holds(dev string) bool {
	_, ok := b.held.Load(dev)
	return ok
}

// passOn hands a notification sent here from a stale cache to the node
// the leader says holds the device (at most once more, and not back here
// unless this node holds it by then).
func (b *Backend) passOn(msg nodeMsg) {
	ctx, cancel, err := b.op(context.Background())
	defer cancel()
	if err != nil {
		return
	}
	rec, rev, err := b.readPresence(ctx, msg.DeviceID)
	if err != nil {
		if !errors.Is(err, errNoKey) {
			b.log.Warn("natsbackend: pass a notification on", "device", msg.DeviceID, "err", err)
		}
		return
	}
	p := b.presenceOf(ctx, rec, rev)
	if !p.Connected {
		return // it waits in the queue
	}
	msg.Check = false
	if err := b.tell(p.Node, msg); err != nil {
		b.log.Warn("natsbackend: pass a notification on", "device", msg.DeviceID, "node", p.Node, "err", err)
	}
}

func (b *Backend) readPresence(ctx context.Context, dev string) (presenceRec, uint64, error) {
	var p presenceRec
	e, err := b.presence.get(ctx, token(dev))
	if err != nil {
		return p, 0, err
	}
	if err := json.Unmarshal(e.val, &p); err != nil {
		return p, 0, fmt.Errorf("decode presence of %s: %w", dev, err)
	}
	return p, e.rev, nil
}

// Claim implements backend.Router: a revision-checked write of the
// device's presence record; its revision is the claim. The node of the
// record it replaced, if connected, is told.
func (b *Backend) Claim(ctx context.Context, dev string, now time.Time) (uint64, error) {
	ctx, cancel, err := b.op(ctx)
	defer cancel()
	if err != nil {
		return 0, err
	}
	val, err := json.Marshal(presenceRec{Node: b.cfg.NodeID, Connected: true, Since: now})
	if err != nil {
		return 0, err
	}
	for range maxCAS {
		old, rev, err := b.readPresence(ctx, dev)
		had := err == nil
		if err != nil && !errors.Is(err, errNoKey) {
			return 0, fmt.Errorf("natsbackend: claim %s: %w", dev, b.classify(err))
		}
		var claim uint64
		if had {
			claim, err = b.presence.update(ctx, token(dev), val, rev, 0)
		} else {
			claim, err = b.presence.create(ctx, token(dev), val, 0)
		}
		if errors.Is(err, errRevMismatch) || errors.Is(err, errKeyExists) || errors.Is(err, errNoKey) {
			continue // another claim or release came first
		}
		if err != nil {
			return 0, fmt.Errorf("natsbackend: claim %s: %w", dev, b.classify(err))
		}
		b.held.Store(dev, claim)
		if had && old.Connected {
			if err := b.tell(old.Node, nodeMsg{Kind: "takenover", DeviceID: dev, Claim: claim}); err != nil {
				b.log.Warn("natsbackend: tell a node of a takeover", "device", dev, "node", old.Node, "err", err)
			}
		}
		return claim, nil
	}
	return 0, fmt.Errorf("natsbackend: claim %s: too many concurrent claims: %w", dev, backend.ErrUnavailable)
}

// Release implements backend.Router: a write of the presence record
// checked against the claim's revision (a newer claim wins), then the
// device's LastSeen.
func (b *Backend) Release(ctx context.Context, dev string, claim uint64, now time.Time) error {
	ctx, cancel, err := b.op(ctx)
	defer cancel()
	if err != nil {
		return err
	}
	b.held.CompareAndDelete(dev, claim)
	p, rev, err := b.readPresence(ctx, dev)
	if errors.Is(err, errNoKey) || (err == nil && rev != claim) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("natsbackend: release %s: %w", dev, b.classify(err))
	}
	val, err := json.Marshal(presenceRec{Node: p.Node, Since: now, Claim: claim})
	if err != nil {
		return err
	}
	_, err = b.presence.update(ctx, token(dev), val, claim, 0)
	if errors.Is(err, errRevMismatch) || errors.Is(err, errNoKey) {
		return nil // a newer claim came meanwhile
	}
	if err != nil {
		return fmt.Errorf("natsbackend: release %s: %w", dev, b.classify(err))
	}
	return b.setLastSeen(ctx, dev, now)
}

// setLastSeen sets the device's LastSeen to now unless it is later already.
func (b *Backend) setLastSeen(ctx context.Context, dev string, now time.Time) error {
	for range maxCAS {
		d, err := b.device(ctx, dev)
		if errors.Is(err, backend.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		if !d.LastSeen.Before(now) {
			return nil
		}
		d.LastSeen = now
		val, err := json.Marshal(d)
		if err != nil {
			return err
		}
		_, err = b.devices.update(ctx, token(dev), val, d.Rev, 0)
		if errors.Is(err, errRevMismatch) {
			continue
		}
		return b.dirErr("set last seen of "+dev, err)
	}
	return fmt.Errorf("natsbackend: set last seen of %s: too many concurrent writers: %w", dev, backend.ErrUnavailable)
}

// Presence implements backend.Router.
func (b *Backend) Presence(ctx context.Context, dev string) (backend.Presence, bool, error) {
	ctx, cancel, err := b.op(ctx)
	defer cancel()
	if err != nil {
		return backend.Presence{}, false, err
	}
	p, rev, err := b.readPresence(ctx, dev)
	if errors.Is(err, errNoKey) {
		return backend.Presence{}, false, nil
	}
	if err != nil {
		return backend.Presence{}, false, fmt.Errorf("natsbackend: presence of %s: %w", dev, b.classify(err))
	}
	return b.presenceOf(ctx, p, rev), true, nil
}

// presenceOf is the presence a record says, read against its node's
// heartbeat: connected to a node that stopped beating is offline since the
// node's last beat.
func (b *Backend) presenceOf(ctx context.Context, p presenceRec, rev uint64) backend.Presence {
	claim := rev
	if !p.Connected && p.Claim != 0 {
		claim = p.Claim
	}
	out := backend.Presence{Node: p.Node, Connected: p.Connected, Since: p.Since, Claim: claim}
	if p.Connected {
		if down, last := b.nodeDown(ctx, p.Node); down {
			out.Connected = false
			if last.After(out.Since) {
				out.Since = last
			}
		}
	}
	return out
}

// Hand implements backend.Router: a read of the device's presence record
// from the leader, then a core NATS message to the node holding it (unless
// that node stopped beating: the device gets it when it reconnects).
func (b *Backend) Hand(ctx context.Context, n *backend.Notification, replaced uint64) (backend.Presence, bool, error) {
	ctx, cancel, err := b.op(ctx)
	defer cancel()
	if err != nil {
		return backend.Presence{}, false, err
	}
	key := token(n.DeviceID)
	msg := nodeMsg{Kind: "deliver", DeviceID: n.DeviceID, N: n, Replaced: replaced}
	// A device this node's cache says is connected: to that node, which
	// passes it on if the device moved meanwhile (see passOn).
	if obj, gone, ok := b.presence.cache.lookup(key, time.Now()); ok && !gone {
		pe := obj.(presenceEntry)
		if p := b.presenceOf(ctx, pe.rec, pe.rev); p.Connected {
			msg.Check = true
			if err := b.tell(p.Node, msg); err != nil {
				return backend.Presence{}, false, fmt.Errorf("natsbackend: hand %d to %s: %w", n.Seq, n.DeviceID, b.classify(err))
			}
			return p, true, nil
		}
	}
	// Else the leader says (the device may have connected a moment ago).
	e, epoch := b.presence.cache.reserve(key)
	rec, rev, err := b.readPresence(ctx, n.DeviceID)
	if errors.Is(err, errNoKey) {
		return backend.Presence{}, false, nil
	}
	if err != nil {
		return backend.Presence{}, false, fmt.Errorf("natsbackend: hand %d to %s: %w", n.Seq, n.DeviceID, b.classify(err))
	}
	b.presence.cache.fill(key, e, epoch, presenceEntry{rec, rev}, rev, false, time.Now())
	p := b.presenceOf(ctx, rec, rev)
	if p.Connected {
		if err := b.tell(p.Node, msg); err != nil {
			return backend.Presence{}, false, fmt.Errorf("natsbackend: hand %d to %s: %w", n.Seq, n.DeviceID, b.classify(err))
		}
	}
	return p, true, nil
}

// presenceEntry is a presence record as the cache holds it.
type presenceEntry struct {
	rec presenceRec
	rev uint64
}

func decodePresence(b []byte, rev uint64) (any, error) {
	var p presenceRec
	if err := json.Unmarshal(b, &p); err != nil {
		return nil, fmt.Errorf("decode presence: %w", err)
	}
	return presenceEntry{p, rev}, nil
}
