package natsbackend

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/openmpns/openmpns/server/auth"
)

// counter is the value of a key in the counters bucket.
type counter struct {
	N int64 `json:"n"`
	// Until is when the counter is forgotten (Unix nanoseconds): first
	// taken plus the ttl. Past it the counter reads as 0, whether or not
	// NATS has removed it yet.
	Until int64 `json:"until"`
}

// Take implements backend.Counters: a revision-checked increment of the
// key's record, which carries a Nats-TTL so that NATS removes it when it is
// forgotten. It writes nothing when the limit is reached. Exact across
// nodes: of concurrent takes, the ones that lose the revision check read
// again.
func (b *Backend) Take(ctx context.Context, key string, limit int64, ttl time.Duration) (bool, error) {
	ctx, cancel, err := b.op(ctx)
	defer cancel()
	if err != nil {
		return false, err
	}
	k := token(key)
	for attempt := 0; ; attempt++ {
		var c counter
		var rev uint64
		// The record as this node last wrote it, if it did: the
		// revision check says whether it is still current.
		found := false
		if attempt == 0 {
			c, rev, found = b.counted.get(k)
		}
		if !found {
			e, err := b.counters.get(ctx, k)
			found = err == nil
			if err != nil && !errors.Is(err, errNoKey) {
				return false, fmt.Errorf("natsbackend: take %s: %w", key, b.classify(err))
			}
			if found {
				if err := json.Unmarshal(e.val, &c); err != nil {
					return false, fmt.Errorf("natsbackend: decode counter %s: %w", key, err)
				}
				rev = e.rev
			}
		}
		now := time.Now()
		if !found || c.Until <= now.UnixNano() {
			c = counter{Until: now.Add(ttl).UnixNano()}
		}
		if c.N >= limit {
			return false, nil
		}
		c.N++
		val, _ := json.Marshal(c)
		left := time.Duration(c.Until - now.UnixNano())
		left = max((left+time.Second-1)/time.Second, 1) * time.Second
		var err error
		if found {
			rev, err = b.counters.update(ctx, k, val, rev, left)
		} else {
			rev, err = b.counters.create(ctx, k, val, left)
		}
		if errors.Is(err, errRevMismatch) || errors.Is(err, errKeyExists) || errors.Is(err, errNoKey) {
			b.counted.drop(k)
			if err := backoff(ctx, attempt); err != nil {
				return false, fmt.Errorf("natsbackend: take %s: %w", key, b.classify(err))
			}
			continue
		}
		if err != nil {
			b.counted.drop(k)
			return false, fmt.Errorf("natsbackend: take %s: %w", key, b.classify(err))
		}
		b.counted.put(k, c, rev)
		return true, nil
	}
}

// countedCache holds the counters this node wrote last, with their
// revisions: a Take on one of them writes without reading first (the
// revision check catches a write by another node, and Take reads again).
type countedCache struct {
	mu sync.Mutex
	m  map[string]countedEntry
}

type countedEntry struct {
	c   counter
	rev uint64
}

func (cc *countedCache) get(k string) (counter, uint64, bool) {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	e, ok := cc.m[k]
	return e.c, e.rev, ok
}

func (cc *countedCache) put(k string, c counter, rev uint64) {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if cc.m == nil {
		cc.m = map[string]countedEntry{}
	}
	if len(cc.m) >= cacheMax {
		n := len(cc.m) / 8
		for key := range cc.m {
			if n == 0 {
				break
			}
			delete(cc.m, key)
			n--
		}
	}
	cc.m[k] = countedEntry{c, rev}
}

func (cc *countedCache) drop(k string) {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	delete(cc.m, k)
}

// authStore is the auth.Store of the service, in the auth bucket: key
// svc.<name> holds a service, server_key the signing key. A service's
// revision is its message's stream sequence, and its writes are checked by
// the stream (expected last subject sequence), so the nodes and the tools
// sharing the registry never overwrite each other's changes. Its methods
// take no context: each is bounded by Config.RequestTimeout.
type authStore struct{ b *Backend }

var _ auth.Store = authStore{}

const keyServerKey = "server_key"

func svcKey(name string) string { return "svc." + token(name) }

func (s authStore) ctx() (context.Context, context.CancelFunc, error) {
	return s.b.op(context.Background())
}

func (s authStore) fail(what string, err error) error {
	return fmt.Errorf("natsbackend: auth: %s: %w", what, s.b.classify(err))
}

// Service implements auth.Store: the record from the stream leader; its
// revision is its stream sequence.
func (s authStore) Service(name string) (auth.Service, uint64, bool, error) {
	ctx, cancel, err := s.ctx()
	defer cancel()
	if err != nil {
		return auth.Service{}, 0, false, err
	}
	if _, err := s.caughtUp(ctx); err != nil {
		return auth.Service{}, 0, false, s.fail("read service "+name, err)
	}
	e, err := s.b.authKV.get(ctx, svcKey(name))
	if errors.Is(err, errNoKey) {
		return auth.Service{}, 0, false, nil
	}
	if err != nil {
		return auth.Service{}, 0, false, s.fail("read service "+name, err)
	}
	var svc auth.Service
	if err := json.Unmarshal(e.val, &svc); err != nil {
		return auth.Service{}, 0, false, fmt.Errorf("natsbackend: auth: decode service %s: %w", name, err)
	}
	return svc, e.rev, true, nil
}

// CreateService implements auth.Store: a create (the key has no message,
// or a removal's marker), checked by the stream.
func (s authStore) CreateService(svc auth.Service) error {
	ctx, cancel, err := s.ctx()
	defer cancel()
	if err != nil {
		return err
	}
	val, err := json.Marshal(svc)
	if err != nil {
		return fmt.Errorf("natsbackend: auth: encode service: %w", err)
	}
	if len(svc.Keys) > 0 {
		return s.writeWithKeys(ctx, svc, val, nil)
	}
	_, err = s.b.authKV.create(ctx, svcKey(svc.Name), val, 0)
	switch {
	case errors.Is(err, errKeyExists):
		return fmt.Errorf("natsbackend: auth: create service %s: %w", svc.Name, auth.ErrServiceExists)
	case err != nil:
		return s.fail("create service "+svc.Name, err)
	}
	return nil
}

// UpdateService implements auth.Store: a write the stream makes only if
// the key's last message is still rev. A record that gains a public key
// is written only if no other service holds it (writeWithKeys).
func (s authStore) UpdateService(svc auth.Service, rev uint64) error {
	ctx, cancel, err := s.ctx()
	defer cancel()
	if err != nil {
		return err
	}
	val, err := json.Marshal(svc)
	if err != nil {
		return fmt.Errorf("natsbackend: auth: encode service: %w", err)
	}
	if len(svc.Keys) > 0 {
		return s.writeWithKeys(ctx, svc, val, &rev)
	}
	_, err = s.b.authKV.update(ctx, svcKey(svc.Name), val, rev, 0)
	return s.writeErr("update service "+svc.Name, err)
}

// keyWriteAttempts bounds how many times writeWithKeys reads the registry
// again because another write to the auth stream came between its read
// and its write.
const keyWriteAttempts = 32

// writeWithKeys writes svc's record (val) if none of the public keys it
// gains is held by another service, else fails with auth.ErrKeyExists
// naming the service that holds it. With rev set it updates the record
// if its revision is still *rev (else auth.ErrRevisionMismatch, or
// auth.ErrNoSuchService); without, it creates it (else
// auth.ErrServiceExists).
//
// Each node's registry checks a new key against its own copy of the
// others, which may be behind: two nodes adding one key to two services at
// once both found it free, and both writes went in. So the check is made
// here, on the registry as the stream leader has it at the stream's last
// sequence, and the write is made with JetStream's compare-and-set on the
// whole stream (Nats-Expected-Last-Sequence: no message at all was stored
// since the registry was read) as well as on the record's subject. Of two
// such writes one is made; the other finds the stream moved on, reads
// again and is refused. One write: no claim of a key can be left behind
// by a crash. Records that gain no key (a secret rotated, a key removed)
// are written with the subject's check only, as before.
func (s authStore) writeWithKeys(ctx context.Context, svc auth.Service, val []byte, rev *uint64) error {
	what := "create service " + svc.Name
	if rev != nil {
		what = "update service " + svc.Name
	}
	kv := s.b.authKV
	key := svcKey(svc.Name)
	for attempt := 0; attempt < keyWriteAttempts; attempt++ {
		if err := backoff(ctx, attempt); err != nil {
			return s.fail(what, err)
		}
		// The record as stored now (the leader's): the write's check on
		// its subject makes sure it is still so.
		cur, err := kv.get(ctx, key)
		var expect uint64
		switch {
		case err != nil && !errors.Is(err, errNoKey):
			return s.fail(what, err)
		case rev == nil && err == nil:
			return fmt.Errorf("natsbackend: auth: %s: %w", what, auth.ErrServiceExists)
		case rev == nil:
			expect = cur.rev // nothing, or a removal's marker: write over it
		case err != nil:
			return fmt.Errorf("natsbackend: auth: %s: %w", what, auth.ErrNoSuchService)
		case cur.rev != *rev:
			return fmt.Errorf("natsbackend: auth: %s: %w", what, auth.ErrRevisionMismatch)
		default:
			expect = *rev
		}
		had := map[string]bool{}
		if err == nil {
			var stored auth.Service
			if err := json.Unmarshal(cur.val, &stored); err != nil {
				return fmt.Errorf("natsbackend: auth: decode service %s: %w", svc.Name, err)
			}
			for _, k := range stored.Keys {
				had[k.ID] = true
			}
		}
		gained := map[string]bool{}
		for _, k := range svc.Keys {
			if !had[k.ID] {
				gained[k.ID] = true
			}
		}
		var hdr nats.Header
		if len(gained) > 0 {
			// The stream's last sequence before the other services are
			// read: the write is made only if nothing was stored after
			// it, so what they hold is what was read.
			info, err := s.caughtUp(ctx, jetstream.WithSubjectFilter(kv.pre+"svc.*"))
			if err != nil {
				return s.fail(what, err)
			}
			if err := s.keysFree(ctx, info, svc.Name, gained, what); err != nil {
				return err
			}
			hdr = nats.Header{}
			hdr.Set(jetstream.ExpectedLastSeqHeader, strconv.FormatUint(info.State.LastSeq, 10))
		}
		_, err = kv.write(ctx, key, val, hdr, &expect, 0)
		if errors.Is(err, errRevMismatch) {
			continue // the record or the stream moved on: read again
		}
		if err != nil {
			return s.fail(what, err)
		}
		return nil
	}
	return s.fail(what, fmt.Errorf("the auth stream changed during each of %d attempts to check the service's keys: %w",
		keyWriteAttempts, errRevMismatch))
}

// keysFree fails with auth.ErrKeyExists if a service other than name holds
// one of the key ids in kids, in the registry whose subjects info lists.
func (s authStore) keysFree(ctx context.Context, info *jetstream.StreamInfo, name string, kids map[string]bool, what string) error {
	return s.eachService(ctx, info, svcKey(name), what, func(other auth.Service) error {
		for _, k := range other.Keys {
			if kids[k.ID] {
				return fmt.Errorf("natsbackend: auth: %s: %w: key %s belongs to service %q", what, auth.ErrKeyExists, k.ID, other.Name)
			}
		}
		return nil
	})
}

// eachService calls fn with each service record whose subject info lists
// but the one of key skip, as the stream leader has it, until fn fails; a
// read that fails is reported as what's failure.
func (s authStore) eachService(ctx context.Context, info *jetstream.StreamInfo, skip, what string, fn func(auth.Service) error) error {
	kv := s.b.authKV
	for subj := range info.State.Subjects {
		key := subj[len(kv.pre):]
		if key == skip {
			continue
		}
		e, err := kv.get(ctx, key)
		if errors.Is(err, errNoKey) {
			continue
		}
		if err != nil {
			return s.fail(what, err)
		}
		var svc auth.Service
		if err := json.Unmarshal(e.val, &svc); err != nil {
			return fmt.Errorf("natsbackend: auth: decode %s: %w", subj, err)
		}
		if err := fn(svc); err != nil {
			return err
		}
	}
	return nil
}

// writeErr maps a revision-checked write's error to auth's.
func (s authStore) writeErr(what string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, errRevMismatch):
		return fmt.Errorf("natsbackend: auth: %s: %w", what, auth.ErrRevisionMismatch)
	case errors.Is(err, errNoKey):
		return fmt.Errorf("natsbackend: auth: %s: %w", what, auth.ErrNoSuchService)
	}
	return s.fail(what, err)
}

// DeleteService implements auth.Store: a purge marker the stream writes
// only if the key's last message is still rev. The marker stays in the
// stream for markerTTL (kv.mark), not deleted at once as other buckets'
// are: a services watch delivers it, even one whose consumer is being
// reset meanwhile (past markerTTL, its reload on the reset finds the
// removal: WatchServices).
func (s authStore) DeleteService(name string, rev uint64) error {
	ctx, cancel, err := s.ctx()
	defer cancel()
	if err != nil {
		return err
	}
	_, err = s.b.authKV.mark(ctx, svcKey(name), &rev)
	return s.writeErr("delete service "+name, err)
}

// caughtUp returns the auth stream's info (with opts) once the stream
// leader, which the reads of the store go to, has stored every change a
// services watch of this node has delivered (see WatchServices): a reload
// that a watch asked for then finds that change. Until then it asks again
// (a moment later: the leader stores a commit within milliseconds), at
// most until ctx ends.
func (s authStore) caughtUp(ctx context.Context, opts ...jetstream.StreamInfoOpt) (*jetstream.StreamInfo, error) {
	for attempt := 0; ; attempt++ {
		if err := backoff(ctx, attempt); err != nil {
			return nil, fmt.Errorf("the stream leader has not stored change %d, which a watch delivered: %w", s.b.authSeen(), err)
		}
		s.b.reqs.reads.Add(1)
		info, err := s.b.authKV.stream.Info(ctx, opts...)
		if err != nil {
			return nil, err
		}
		if s.b.authCaughtUp(info) {
			return info, nil
		}
	}
}

// Services implements auth.Store: the bucket's subjects under svc. (from
// the stream's info, no consumer), then each; sorted by name.
func (s authStore) Services() ([]auth.Service, error) {
	ctx, cancel, err := s.ctx()
	defer cancel()
	if err != nil {
		return nil, err
	}
	kv := s.b.authKV
	info, err := s.caughtUp(ctx, jetstream.WithSubjectFilter(kv.pre+"svc.*"))
	if err != nil {
		return nil, s.fail("list services", err)
	}
	var out []auth.Service
	if err := s.eachService(ctx, info, "", "read service", func(svc auth.Service) error {
		out = append(out, svc)
		return nil
	}); err != nil {
		return nil, err
	}
	slices.SortFunc(out, func(a, b auth.Service) int {
		switch {
		case a.Name < b.Name:
			return -1
		case a.Name > b.Name:
			return 1
		}
		return 0
	})
	return out, nil
}

// ServerKey implements auth.Store.
func (s authStore) ServerKey() (auth.ServerKey, bool, error) {
	var k auth.ServerKey
	ctx, cancel, err := s.ctx()
	defer cancel()
	if err != nil {
		return k, false, err
	}
	if _, err := s.caughtUp(ctx); err != nil {
		return k, false, s.fail("read server key", err)
	}
	e, err := s.b.authKV.get(ctx, keyServerKey)
	if errors.Is(err, errNoKey) {
		return k, false, nil
	}
	if err != nil {
		return k, false, s.fail("read server key", err)
	}
	if err := json.Unmarshal(e.val, &k); err != nil {
		return k, false, fmt.Errorf("natsbackend: auth: decode server key: %w", err)
	}
	return k, true, nil
}

// PutServerKey implements auth.Store.
func (s authStore) PutServerKey(k auth.ServerKey) error {
	ctx, cancel, err := s.ctx()
	defer cancel()
	if err != nil {
		return err
	}
	val, err := json.Marshal(k)
	if err != nil {
		return fmt.Errorf("natsbackend: auth: encode server key: %w", err)
	}
	if _, err := s.b.authKV.put(ctx, keyServerKey, val); err != nil {
		return s.fail("store server key", err)
	}
	return nil
}

var _ auth.KeyCreator = authStore{}

// CreateServerKey implements auth.KeyCreator: the first key stored is every
// node's, however many start together.
func (s authStore) CreateServerKey(k auth.ServerKey) (auth.ServerKey, error) {
	ctx, cancel, err := s.ctx()
	defer cancel()
	if err != nil {
		return auth.ServerKey{}, err
	}
	val, err := json.Marshal(k)
	if err != nil {
		return auth.ServerKey{}, fmt.Errorf("natsbackend: auth: encode server key: %w", err)
	}
	_, err = s.b.authKV.create(ctx, keyServerKey, val, 0)
	switch {
	case err == nil:
		return k, nil
	case !errors.Is(err, errKeyExists):
		return auth.ServerKey{}, s.fail("create server key", err)
	}
	stored, ok, err := s.ServerKey()
	if err == nil && !ok {
		err = errors.New("the server key vanished while it was created")
	}
	return stored, err
}
