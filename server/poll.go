package server

import "sync/atomic"

// pollReg is what the poller watches: a descriptor, the generation of its
// registration (an event from an earlier registration of a reused
// descriptor number carries an older one, and is dropped), and what runs
// when it is readable. onReadable reads until the socket is drained, then
// ends its turn with the poller's rearm (or unwatches the descriptor); one
// turn runs at a time.
//
// A turn runs on one of the poller's workers; or, when the registration
// has a quick turn, on the poller's own goroutine, which then reads no
// other socket until the turn ends: a quick turn never waits (no lock held
// across a wait, no network round trip) and reads a bounded amount. When
// it cannot finish so, it returns false without rearming, and a worker
// runs onReadable for the rest of the turn.
type pollReg struct {
	fd         int32
	gen        int32
	onReadable func()
	quick      func() bool // nil: every turn runs on a worker
	// run is regIdle, regRunning (a turn of onReadable runs or is
	// dispatched), or regAgain (an event came during the turn: it runs
	// again once the turn ends).
	run atomic.Int32
	// rerun: the turn that just ended is to run again (set by rearm, taken
	// by the goroutine that ran it; atomic, as a worker looks after its
	// turn's rearm, when another turn may have begun).
	rerun atomic.Bool
	// hup: epoll reported the peer's close or reset (or an error). A turn
	// then reads until the socket says so: with data before it, a FIN
	// comes with the data's edge, a short read returns the data alone,
	// and no later edge would tell of the end of file.
	hup atomic.Bool
}

const (
	regIdle = iota
	regRunning
	regAgain
)

// drained reports whether a read of n bytes into a buffer of size bytes
// drained the socket: a short read, unless the peer has closed (see hup).
func (r *pollReg) drained(n, size int) bool {
	return n < size && !r.hup.Load()
}

// fire notes an event of r: true when a turn of onReadable is to be
// dispatched, false when one runs (it then runs again).
func (r *pollReg) fire() bool {
	for {
		switch r.run.Load() {
		case regIdle:
			if r.run.CompareAndSwap(regIdle, regRunning) {
				return true
			}
		case regRunning:
			if r.run.CompareAndSwap(regRunning, regAgain) {
				return false
			}
		default:
			return false
		}
	}
}
