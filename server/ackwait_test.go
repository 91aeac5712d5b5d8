package server

import "testing"

// A signal reaches the push that waits for it, and never a later push
// that reuses its channel: one signalled after its wait ended, or one
// signalled and not read.
func TestAckWaitsSignalOnlyTheirPush(t *testing.T) {
	var w ackWaits
	c := w.add(7)
	w.signal(7)
	select {
	case <-c:
	default:
		t.Fatal("the acknowledged push was not signalled")
	}
	w.signal(7) // a second acknowledgement: nobody waits
	w.done(7, c)

	// Signalled, then done without reading the signal (the write was
	// durable first): the channel goes back empty.
	c = w.add(8)
	w.signal(8)
	w.done(8, c)
	w.signal(8) // late: gone

	for seq := uint64(9); seq < 200; seq++ {
		c := w.add(seq)
		select {
		case <-c:
			t.Fatalf("push %d woken by a signal meant for another", seq)
		default:
		}
		w.done(seq, c)
	}
	for i := range w.shards {
		if n := len(w.shards[i].m); n != 0 {
			t.Fatalf("shard %d holds %d waits after every push ended", i, n)
		}
	}
}
