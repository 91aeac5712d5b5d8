package natsbackend

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// kv is a key-value bucket: a stream laid out as NATS KV lays out its
// buckets (subject $KV.<bucket>.<key>, one message per subject, a key's
// revision is its message's stream sequence), with the writes the backend
// needs: create, revision-checked update and delete, and per-key TTLs.
// Reads go to the stream leader.
type kv struct {
	b      *Backend
	bucket string
	stream jetstream.Stream
	pre    string // $KV.<bucket>.
	// cache, if set, holds records read by cachedGet; write keeps it
	// current here and on every node (cache.go).
	cache *recordCache
}

// entry is a key's value and revision.
type entry struct {
	val []byte
	rev uint64
	// stored is when the stream stored the key's last message (the
	// stream leader's clock).
	stored time.Time
	// deleted: the key's last message is a delete marker (rev is its).
	deleted bool
}

// Errors of kv; the callers map them to the backend's sentinels.
var (
	errNoKey       = errors.New("no such key")
	errKeyExists   = errors.New("key exists")
	errRevMismatch = errors.New("revision mismatch")
)

// markerTTL is how long a delete marker lives if the delete that follows
// it (see del) fails.
const markerTTL = time.Minute

func (k *kv) name() string { return k.stream.CachedInfo().Config.Name }

// get returns the key's entry, or errNoKey (with the marker's revision if
// the key was deleted).
func (k *kv) get(ctx context.Context, key string) (entry, error) {
	m, err := k.b.leaderGet(ctx, k.name(), msgGetRequest{LastFor: k.pre + key})
	if err != nil {
		return entry{}, fmt.Errorf("%s: get %s: %w", k.bucket, key, err)
	}
	if m == nil {
		return entry{}, errNoKey
	}
	if isMarker(m.Header) {
		return entry{rev: m.Seq, stored: m.Time, deleted: true}, errNoKey
	}
	return entry{val: m.Data, rev: m.Seq, stored: m.Time}, nil
}

// isMarker reports whether raw NATS headers are those of a KV delete or
// purge marker (or a marker the server left).
func isMarker(hdr []byte) bool {
	return bytes.Contains(hdr, []byte("KV-Operation:")) || bytes.Contains(hdr, []byte(jetstream.MarkerReasonHeader+":"))
}

// write publishes a value for key; with expect set, only if the key's last
// message is *expect (0: the key has no message), else errRevMismatch.
func (k *kv) write(ctx context.Context, key string, val []byte, hdr nats.Header, expect *uint64, ttl time.Duration) (uint64, error) {
	m := nats.NewMsg(k.pre + key)
	m.Data = val
	for h, vs := range hdr {
		m.Header[h] = vs
	}
	var opts []jetstream.PublishOpt
	if expect != nil {
		opts = append(opts, jetstream.WithExpectLastSequencePerSubject(*expect))
	}
	if ttl > 0 {
		opts = append(opts, jetstream.WithMsgTTL(ttl))
	}
	for attempt := 1; ; attempt++ {
		k.b.reqs.publishes.Add(1)
		ack, err := k.b.js.PublishMsg(ctx, m, opts...)
		switch {
		case apiCode(err) == codeWrongLastSeqConstant:
			// A replicated stream cannot check the key now: a write of it
			// is in flight (or was just acknowledged and is not yet
			// cleared). Try again shortly.
			if err := backoff(ctx, attempt); err != nil {
				return 0, fmt.Errorf("%s: write %s: %w", k.bucket, key, err)
			}
			continue
		case wrongLastSeq(err):
			if k.cache != nil {
				k.cache.drop(key)
			}
			return 0, errRevMismatch
		case err != nil:
			return 0, fmt.Errorf("%s: write %s: %w", k.bucket, key, err)
		}
		if k.cache != nil {
			k.wrote(key, val, ack.Sequence, hdr.Get("KV-Operation") != "")
		}
		return ack.Sequence, nil
	}
}

// put writes the key whatever it holds.
func (k *kv) put(ctx context.Context, key string, val []byte) (uint64, error) {
	return k.write(ctx, key, val, nil, nil, 0)
}

// create writes the key if it does not exist (else errKeyExists); with
// ttl > 0 NATS removes it after ttl (rounded down to whole seconds, at
// least one).
func (k *kv) create(ctx context.Context, key string, val []byte, ttl time.Duration) (uint64, error) {
	expect := uint64(0)
	for range 3 {
		rev, err := k.write(ctx, key, val, nil, &expect, ttl)
		if !errors.Is(err, errRevMismatch) {
			return rev, err
		}
		e, err := k.get(ctx, key)
		switch {
		case err == nil:
			return 0, errKeyExists
		case !errors.Is(err, errNoKey):
			return 0, err
		}
		expect = e.rev // a marker (or nothing any more): write over it
	}
	return 0, errKeyExists
}

// update writes the key if its revision is rev: else errRevMismatch, or
// errNoKey if it is gone.
func (k *kv) update(ctx context.Context, key string, val []byte, rev uint64, ttl time.Duration) (uint64, error) {
	n, err := k.write(ctx, key, val, nil, &rev, ttl)
	if errors.Is(err, errRevMismatch) {
		return 0, k.why(ctx, key)
	}
	return n, err
}

// why explains a failed revision check: errNoKey if the key is gone, else
// errRevMismatch.
func (k *kv) why(ctx context.Context, key string) error {
	if _, err := k.get(ctx, key); err != nil {
		return err
	}
	return errRevMismatch
}

// del removes the key if its revision is rev (any revision if rev is 0):
// a purge marker written with the revision check (see mark), then the
// marker itself deleted, so that the bucket's message count is its number
// of keys.
func (k *kv) del(ctx context.Context, key string, rev uint64) error {
	var expect *uint64
	if rev != 0 {
		expect = &rev
	}
	seq, err := k.mark(ctx, key, expect)
	if err != nil {
		return err
	}
	if err := k.b.deleteMsg(ctx, k.name(), seq); err != nil {
		// The key is deleted; the marker goes by itself after markerTTL.
		k.b.log.Warn("natsbackend: delete marker", "bucket", k.bucket, "key", key, "err", err)
	}
	return nil
}

// mark removes the key, if its revision is *expect (whatever it is if
// expect is nil), by a purge marker, which rolls up the key's messages and
// is left in the stream for markerTTL: a consumer of the stream (a watch)
// delivers it. It returns the marker's sequence; errNoKey if the key is
// gone, else errRevMismatch if its revision is not *expect.
func (k *kv) mark(ctx context.Context, key string, expect *uint64) (uint64, error) {
	hdr := nats.Header{}
	hdr.Set("KV-Operation", "PURGE")
	hdr.Set(jetstream.MsgRollup, jetstream.MsgRollupSubject)
	seq, err := k.write(ctx, key, nil, hdr, expect, markerTTL)
	if errors.Is(err, errRevMismatch) {
		return 0, k.why(ctx, key)
	}
	return seq, err
}
