package natsbackend

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"time"
)

// Node liveness: every node writes node.<id> in the counters bucket every
// NodeTTL/4 with the time it wrote it (kept 30 days). A presence record
// that says Connected on a node whose last heartbeat is older than NodeTTL
// is read as offline since that heartbeat: a node that died (SIGKILL) does
// not leave its devices Connected for ever.

// nodeRecordTTL is how long a node's heartbeat record is kept after its
// last write (then a device still "connected" to it reads as offline since
// it connected).
const nodeRecordTTL = 30 * 24 * time.Hour

type heartbeat struct {
	At time.Time `json:"at"`
}

// liveness caches what the node records said, for a second.
type liveness struct {
	mu    sync.Mutex
	known map[string]nodeSeen
	stop  chan struct{}
	done  chan struct{}
}

type nodeSeen struct {
	last    time.Time // the node's last heartbeat (zero: no record)
	checked time.Time
	ok      bool // a record was read (false: the read failed)
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
	_, err = b.counters.write(ctx, nodeKey(b.cfg.NodeID), v, nil, nil, nodeRecordTTL)
	return err
}

// startHeartbeat writes the heartbeat now and every NodeTTL/4 until Close.
func (b *Backend) startHeartbeat(ctx context.Context) error {
	b.live = liveness{known: map[string]nodeSeen{}, stop: make(chan struct{}), done: make(chan struct{})}
	if err := b.beat(ctx); err != nil {
		return err
	}
	go func() {
		defer close(b.live.done)
		t := time.NewTicker(b.cfg.NodeTTL / 4)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				if err := b.beat(context.Background()); err != nil && !b.closed.Load() {
					b.log.Warn("natsbackend: heartbeat", "err", err)
				}
			case <-b.live.stop:
				return
			}
		}
	}()
	return nil
}

// stopHeartbeat ends the heartbeat; a node that stops beating is read as
// gone by the others NodeTTL later.
func (b *Backend) stopHeartbeat() {
	if b.live.stop != nil {
		close(b.live.stop)
		<-b.live.done
	}
}

// nodeDown reports whether node has stopped beating, and since when (zero
// when no record is left). Read failures count as alive: a transient error
// must not mark a node's devices offline.
func (b *Backend) nodeDown(ctx context.Context, node string) (bool, time.Time) {
	if node == b.cfg.NodeID || node == "" {
		return false, time.Time{}
	}
	now := time.Now()
	b.live.mu.Lock()
	seen, cached := b.live.known[node]
	b.live.mu.Unlock()
	if !cached || now.Sub(seen.checked) > time.Second {
		seen = nodeSeen{checked: now}
		e, err := b.counters.get(ctx, nodeKey(node))
		switch {
		case err == nil:
			var hb heartbeat
			if json.Unmarshal(e.val, &hb) == nil {
				seen.last, seen.ok = hb.At, true
			}
		case errors.Is(err, errNoKey):
			seen.ok = true
		}
		b.live.mu.Lock()
		b.live.known[node] = seen
		b.live.mu.Unlock()
	}
	if !seen.ok {
		return false, time.Time{}
	}
	return now.Sub(seen.last) > b.cfg.NodeTTL, seen.last
}
