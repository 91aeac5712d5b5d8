package server

import "sync"

// ackWaits are the pushes waiting for their notification's write, by Seq:
// an acknowledgement from the device that comes first wakes its push,
// which then answers Received without waiting for the write. A mutex and
// a map per shard, not a sync.Map, whose every store allocated; the
// signal channels are reused.
type ackWaits struct {
	shards [32]ackShard
}

type ackShard struct {
	mu sync.Mutex
	m  map[uint64]chan struct{}
	_  [48]byte // a shard per cache line
}

var ackSignals = sync.Pool{New: func() any { return make(chan struct{}, 1) }}

func (w *ackWaits) shard(seq uint64) *ackShard { return &w.shards[seq%uint64(len(w.shards))] }

// add registers seq's push and returns the channel its acknowledgement is
// signalled on; the push calls done with it once it stops waiting.
func (w *ackWaits) add(seq uint64) chan struct{} {
	c := ackSignals.Get().(chan struct{})
	s := w.shard(seq)
	s.mu.Lock()
	if s.m == nil {
		s.m = make(map[uint64]chan struct{})
	}
	s.m[seq] = c
	s.mu.Unlock()
	return c
}

// done ends seq's wait. Once its entry is gone no signal can come (one is
// sent under the shard's lock), so the channel, emptied, is reused.
func (w *ackWaits) done(seq uint64, c chan struct{}) {
	s := w.shard(seq)
	s.mu.Lock()
	if s.m[seq] == c {
		delete(s.m, seq)
	}
	s.mu.Unlock()
	select {
	case <-c:
	default:
	}
	ackSignals.Put(c)
}

// signal wakes seq's push, if one waits.
func (w *ackWaits) signal(seq uint64) {
	s := w.shard(seq)
	s.mu.Lock()
	if c, ok := s.m[seq]; ok {
		delete(s.m, seq)
		c <- struct{}{} // never blocks: one signal per add, the channel holds one
	}
	s.mu.Unlock()
}
