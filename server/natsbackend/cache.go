package natsbackend

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/openmpns/openmpns/server/backend"
)

// Records on the push path (a channel and its device, read by Target for
// every push) are cached on each node. A node that writes a cached record
// (create, update, delete) updates its own cache and tells every node of
// the service on <p>.all, the same way and in the same order as it hands
// them notifications (see nodeLoop), so the others apply the write within
// the time a core NATS message takes. What may still miss the broadcast
// (a node that dies between its write and its broadcast, a message lost
// when a connection breaks) is bounded: entries are read again after
// cacheTTL, and a node drops its whole cache when its connection to NATS
// comes back or a subscription falls behind.

const (
	// cacheTTL bounds how long a cached record is used without a read:
	// the backstop for a broadcast lost without a reconnect (a node that
	// died between its write and its broadcast). Ten seconds made the
	// caches useless where they matter: with 10,000 channels pushed at
	// 1,000/s each channel comes round every 10 s, and every push read
	// its channel, device and presence again (3 reads instead of 0).
	cacheTTL = 5 * time.Minute
	// cacheMax bounds the entries of one cache; past it a random eighth
	// is dropped.
	cacheMax = 1 << 18
)

// recordCache holds decoded records of one bucket by key.
type recordCache struct {
	decode func([]byte, uint64) (any, error)
	mu     sync.Mutex
	m      map[string]*cacheEntry
}

type cacheEntry struct {
	obj    any    // the decoded record (nil when gone)
	rev    uint64 // its revision (or the delete marker's)
	gone   bool   // the key holds no record
	loaded bool   // obj, rev and gone are set (else a read is in flight)
	at     time.Time
	epoch  uint64 // bumped by every update, so a read in flight cannot undo one
}

func newRecordCache(decode func([]byte, uint64) (any, error)) *recordCache {
	return &recordCache{decode: decode, m: map[string]*cacheEntry{}}
}

// lookup returns the cached record of key if it is there and fresh.
func (c *recordCache) lookup(key string, now time.Time) (obj any, gone, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.m[key]
	if e == nil || !e.loaded || now.Sub(e.at) > cacheTTL {
		return nil, false, false
	}
	return e.obj, e.gone, true
}

// reserve marks a read of key as started; fill stores its result unless an
// update came meanwhile.
func (c *recordCache) reserve(key string) (*cacheEntry, uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.m[key]
	if e == nil {
		c.evict()
		e = &cacheEntry{}
		c.m[key] = e
	}
	return e, e.epoch
}

// fill stores what a read of key found, if nothing changed the entry since
// reserve returned it.
func (c *recordCache) fill(key string, e *cacheEntry, epoch uint64, obj any, rev uint64, gone bool, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m[key] != e || e.epoch != epoch || (e.loaded && e.rev > rev) {
		return
	}
	e.obj, e.rev, e.gone, e.loaded, e.at = obj, rev, gone, true, now
}

// update applies a write of key (rev is the written revision) to an entry
// that is cached or being read; keys not cached are left alone.
func (c *recordCache) update(key string, val []byte, rev uint64, gone bool, now time.Time) {
	var obj any
	if !gone {
		var err error
		if obj, err = c.decode(val, rev); err != nil {
			c.drop(key)
			return
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.m[key]
	if e == nil {
		return
	}
	e.epoch++
	if e.loaded && e.rev > rev {
		return
	}
	e.obj, e.rev, e.gone, e.loaded, e.at = obj, rev, gone, true, now
}

// drop forgets key (a write of it failed its revision check: what the
// cache holds is old).
func (c *recordCache) drop(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e := c.m[key]; e != nil {
		e.epoch++
		delete(c.m, key)
	}
}

// clear forgets everything.
func (c *recordCache) clear() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, e := range c.m {
		e.epoch++
	}
	clear(c.m)
}

// evict drops a random eighth of the entries when the cache is full; the
// caller holds mu.
func (c *recordCache) evict() {
	if len(c.m) < cacheMax {
		return
	}
	n := len(c.m) / 8
	for k, e := range c.m {
		if n == 0 {
			break
		}
		e.epoch++
		delete(c.m, k)
		n--
	}
}

func decodeChannel(b []byte, rev uint64) (any, error) {
	var c backend.Channel
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("decode channel: %w", err)
	}
	c.Rev = rev
	return c, nil
}

func decodeDevice(b []byte, rev uint64) (any, error) {
	var d backend.Device
	if err := json.Unmarshal(b, &d); err != nil {
		return nil, fmt.Errorf("decode device: %w", err)
	}
	d.Rev = rev
	return d, nil
}

// cacheMsg is a write of a cached record, told to every node.
type cacheMsg struct {
	Bucket string `json:"bucket"` // kv.bucket
	Key    string `json:"key"`
	Rev    uint64 `json:"rev"`
	Gone   bool   `json:"gone,omitempty"`
	Val    []byte `json:"val,omitempty"`
}

// wrote applies a successful write of a cached bucket here and tells the
// other nodes (at most once: see cacheTTL).
func (k *kv) wrote(key string, val []byte, rev uint64, gone bool) {
	k.cache.update(key, val, rev, gone, time.Now())
	b := k.b
	msg := nodeMsg{Kind: "cache", Cache: &cacheMsg{Bucket: k.bucket, Key: key, Rev: rev, Gone: gone, Val: val}, From: b.cfg.NodeID}
	data, err := json.Marshal(msg)
	if err != nil {
		return
	}
	b.reqs.nodeMsgs.Add(1)
	if err := b.nc.Publish(b.allSubj, data); err != nil {
		b.log.Warn("natsbackend: tell the nodes of a write", "bucket", k.bucket, "key", key, "err", err)
	}
}

// onCacheMsg applies another node's write.
func (b *Backend) onCacheMsg(m *cacheMsg) {
	for _, k := range []*kv{b.channels, b.devices, b.presence} {
		if k.bucket == m.Bucket {
			k.cache.update(m.Key, m.Val, m.Rev, m.Gone, time.Now())
		}
	}
}

// clearCaches forgets every cached record (updates may have been lost).
func (b *Backend) clearCaches() {
	for _, k := range []*kv{b.channels, b.devices, b.presence} {
		if k != nil && k.cache != nil {
			k.cache.clear()
		}
	}
	b.views.clear()
}

// cachedGet returns the key's entry from the cache, or reads it from the
// leader and caches what it found.
func (k *kv) cachedGet(ctx context.Context, key string) (any, error) {
	if obj, gone, ok := k.cache.lookup(key, time.Now()); ok {
		if gone {
			return nil, errNoKey
		}
		return obj, nil
	}
	e, epoch := k.cache.reserve(key)
	got, err := k.get(ctx, key)
	switch {
	case err == nil:
		obj, derr := k.cache.decode(got.val, got.rev)
		if derr != nil {
			return nil, derr
		}
		k.cache.fill(key, e, epoch, obj, got.rev, false, time.Now())
		return obj, nil
	case errors.Is(err, errNoKey):
		k.cache.fill(key, e, epoch, nil, got.rev, true, time.Now())
	}
	return nil, err
}

// Target implements backend.Directory from the node's cache (see above):
// a write made through another node may be seen as late as its broadcast
// takes to arrive.
func (b *Backend) Target(ctx context.Context, tok string) (backend.Channel, backend.Device, error) {
	ctx, cancel, err := b.op(ctx)
	defer cancel()
	if err != nil {
		return backend.Channel{}, backend.Device{}, err
	}
	obj, err := b.channels.cachedGet(ctx, token(tok))
	if err != nil {
		return backend.Channel{}, backend.Device{}, b.dirErr("channel "+tok, err)
	}
	c := obj.(backend.Channel)
	obj, err = b.devices.cachedGet(ctx, token(c.DeviceID))
	if err != nil {
		return backend.Channel{}, backend.Device{}, b.dirErr("device "+c.DeviceID, err)
	}
	d := obj.(backend.Device)
	c.Domains = slices.Clone(c.Domains)
	d.TokenHash = nil // not a push's (backend.Directory.Target)
	return c, d, nil
}
