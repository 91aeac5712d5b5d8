package server

// pollReg is what the poller watches: a descriptor, the generation of its
// registration (an event from an earlier registration of a reused
// descriptor number carries an older one, and is dropped), and what runs,
// on one of the poller's workers, when it is readable. The registration is one-shot:
// onReadable reads what is there, then asks the poller to re-arm it.
type pollReg struct {
	fd         int32
	gen        int32
	onReadable func()
}
