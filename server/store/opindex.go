package store

import "sync"

// opIndex finds the notifications a log has not written yet by Seq, so
// that an acknowledgement can cancel their write. A mutex and a map per
// shard, not a sync.Map, whose every store allocated.
type opIndex struct {
	shards [16]opShard
}

type opShard struct {
	mu sync.Mutex
	m  map[uint64]*op
	_  [48]byte // a shard per cache line
}

func (x *opIndex) shard(seq uint64) *opShard { return &x.shards[seq%uint64(len(x.shards))] }

func (x *opIndex) store(seq uint64, o *op) {
	s := x.shard(seq)
	s.mu.Lock()
	if s.m == nil {
		s.m = make(map[uint64]*op)
	}
	s.m[seq] = o
	s.mu.Unlock()
}

func (x *opIndex) load(seq uint64) *op {
	s := x.shard(seq)
	s.mu.Lock()
	o := s.m[seq]
	s.mu.Unlock()
	return o
}

func (x *opIndex) delete(seq uint64) {
	s := x.shard(seq)
	s.mu.Lock()
	delete(s.m, seq)
	s.mu.Unlock()
}
