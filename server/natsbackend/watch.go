package natsbackend

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/openmpns/openmpns/server/backend"
	"github.com/openmpns/openmpns/shared/clock"
)

// Health reports whether this node can serve: connected to NATS, and a
// write is stored (a key of its own in the counters bucket, forgotten
// after a minute), which takes a quorum of the bucket's replicas as a push
// does. It waits at most a second.
func (b *Backend) Health(ctx context.Context) error {
	if b.closed.Load() {
		return backend.ErrClosed
	}
	if st := b.nc.Status(); st != nats.CONNECTED {
		return fmt.Errorf("%w: the connection to NATS is %s", backend.ErrUnavailable, st)
	}
	ctx, cancel, err := b.op(ctx)
	defer cancel()
	if err != nil {
		return err
	}
	ctx, cancel2 := context.WithTimeout(ctx, time.Second)
	defer cancel2()
	key := "health." + token(b.cfg.NodeID)
	if _, err := b.counters.write(ctx, key, []byte(time.Now().UTC().Format(time.RFC3339Nano)), nil, nil, time.Minute); err != nil {
		return fmt.Errorf("NATS does not store writes (no quorum?): %w", b.classify(err))
	}
	return nil
}

// authFollow is the incarnation of the auth bucket's stream this node
// follows, and what its services watches delivered of it. The stream may
// be deleted and made again (an operator's reset: `nats stream rm`, then
// a tool registering services again) or restored from a backup: its
// sequences then start again, below what the node saw of the stream it
// replaced, and a wait for those (authStore.caughtUp) would never end. So
// every read of the stream's info is checked against the incarnation
// followed: a stream created at another time (StreamInfo.Created) is a new
// one, whose sequences the node starts over with, and its watches begin
// again on it (restartWatches).
type authFollow struct {
	mu sync.Mutex
	// epoch counts the incarnations followed; a watch's deliveries count
	// only in the epoch its consumer began in.
	epoch uint64
	// created is the followed stream's creation time.
	created time.Time
	// seen is the greatest sequence a services watch of this epoch
	// delivered: the auth store's reads wait until the stream leader has
	// stored it (authStore.caughtUp).
	seen uint64
	// fresh: NATS announced the stream created or restored (an advisory):
	// the next info read begins a new epoch, whatever its creation time (a
	// restored stream keeps its original's).
	fresh bool
	// behindSince is when the reads first found the leader behind seen,
	// in this epoch (zero: not behind).
	behindSince time.Time
}

// authRegressAfter is how long the auth stream's leader may stay behind
// what a watch delivered before the node takes it for a stream that went
// back (restored from a backup while the node did not hear NATS announce
// it) and starts over with it. A leader applies a commit within
// milliseconds of a follower: seconds behind is no lag.
const authRegressAfter = 10 * time.Second

// followAuth begins following the auth stream as info describes it: at
// Open, and when a watch (re)starts. It returns the epoch, and whether
// info is of another incarnation than the one followed (whose watches
// must then begin again).
func (b *Backend) followAuth(info *jetstream.StreamInfo) (epoch uint64, renewed bool) {
	f := &b.authFollow
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.another(info) {
		f.renew(info)
		renewed = true
	}
	return f.epoch, renewed
}

// another reports whether info is of another incarnation than the one
// followed (or NATS announced one). f.mu is held.
func (f *authFollow) another(info *jetstream.StreamInfo) bool {
	return f.fresh || !info.Created.Equal(f.created)
}

// renew starts a new epoch at info: nothing of it was delivered that the
// leader does not have. f.mu is held.
func (f *authFollow) renew(info *jetstream.StreamInfo) {
	f.epoch++
	f.created = info.Created
	f.seen = info.State.LastSeq
	f.fresh = false
	f.behindSince = time.Time{}
}

// authCaughtUp reports whether the auth stream's leader, as info says, has
// stored every change a services watch of this node delivered. A stream
// of another incarnation has (the node starts over with it, and its
// watches begin again); so has one whose leader stayed behind for
// authRegressAfter (a stream restored from an older backup).
func (b *Backend) authCaughtUp(info *jetstream.StreamInfo) bool {
	f := &b.authFollow
	f.mu.Lock()
	switch {
	case f.another(info):
		f.renew(info)
		f.mu.Unlock()
		b.log.Info("natsbackend: the auth stream was made again: following the new one", "stream", info.Config.Name,
			"created", info.Created, "last_seq", info.State.LastSeq)
		b.restartWatches(nil)
		return true
	case info.State.LastSeq >= f.seen:
		f.behindSince = time.Time{}
		f.mu.Unlock()
		return true
	}
	now := b.clk.Now()
	if f.behindSince.IsZero() {
		f.behindSince = now
	}
	if now.Sub(f.behindSince) < authRegressAfter {
		f.mu.Unlock()
		return false
	}
	seen := f.seen
	f.renew(info)
	f.mu.Unlock()
	b.log.Warn("natsbackend: the auth stream went back (restored from a backup?): following it from where it is",
		"stream", info.Config.Name, "last_seq", info.State.LastSeq, "seen", seen, "behind_for", authRegressAfter)
	b.restartWatches(nil)
	return true
}

// authStreamMadeAgain marks the auth stream as made again (NATS announced
// its creation or restore): the next read of its info begins a new
// epoch, and the watches begin again.
func (b *Backend) authStreamMadeAgain(m *nats.Msg) {
	if b.closed.Load() {
		return
	}
	b.authFollow.mu.Lock()
	b.authFollow.fresh = true
	b.authFollow.mu.Unlock()
	b.log.Info("natsbackend: the auth stream was created or restored: following it anew")
	b.restartWatches(nil)
}

// sawAuth notes that a services watch whose consumer began in epoch
// delivered the auth stream's message seq.
func (b *Backend) sawAuth(epoch, seq uint64) {
	f := &b.authFollow
	f.mu.Lock()
	defer f.mu.Unlock()
	if epoch == f.epoch && seq > f.seen {
		f.seen = seq
	}
}

// authEpoch is the epoch followed now.
func (b *Backend) authEpoch() uint64 {
	b.authFollow.mu.Lock()
	defer b.authFollow.mu.Unlock()
	return b.authFollow.epoch
}

// authSeen is what the watches delivered of the followed epoch.
func (b *Backend) authSeen() uint64 {
	b.authFollow.mu.Lock()
	defer b.authFollow.mu.Unlock()
	return b.authFollow.seen
}

// servicesWatch is one running WatchServices: a consumer of the auth
// stream, begun again when the stream is made again.
type servicesWatch struct {
	b *Backend
	// kick asks for a reload: a change was delivered, the consumer
	// reported an error, the connection came back.
	kick chan struct{}
	// restart asks for a new consumer: the stream was made again.
	restart chan struct{}

	// Of the running goroutine only.
	cc    jetstream.ConsumeContext
	retry clock.Timer // a failed restart's next attempt
}

func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// WatchServices calls changed (on a goroutine of its own, one call at a
// time) whenever another node or a tool has stored a change to the
// registry of senders or the server key, until ctx ends. It is how a
// running node follows `openmpns service --nats ...` with no restart. An
// ordered consumer of the auth bucket's stream (one per node) delivers each
// change once the server that hosts the consumer has stored it. That is
// any of the stream's replicas, and a follower may store a change before
// the leader, which the reload reads, does (each applies the commit on
// its own; a reload that read the leader then found the registry as it
// was, and the node never heard of a service another node had added:
// TestCluster/ServicesAndTokensAcrossNodes, under load). So the auth
// store's reads wait until the leader has stored every change a watch of
// this node delivered (authStore.caughtUp).
//
// A consumer that is reset (its connection broke and came back, the
// server lost it, its heartbeats were missed) resumes after the last
// message it delivered, and finds nothing of a change whose message is
// gone meanwhile: a service's removal leaves only a marker, which NATS
// drops after markerTTL. So changed is also called after every error the
// consumer reports and after every reconnect of this node: a reload reads
// the whole registry, whatever the watch missed.
//
// A stream deleted and made again, or restored from a backup, numbers its
// messages afresh: a consumer resumed after the last message it delivered
// would wait for a sequence the new stream has not reached. When NATS
// announces that the stream was created or restored, or a read finds it
// made at another time (authFollow), the watch begins a new consumer on
// it, from its end, and changed is called.
func (b *Backend) WatchServices(ctx context.Context, changed func()) error {
	octx, cancel, err := b.op(ctx)
	defer cancel()
	if err != nil {
		return err
	}
	w := &servicesWatch{b: b, kick: make(chan struct{}, 1), restart: make(chan struct{}, 1)}
	b.addWatch(w)
	if err := w.start(octx); err != nil {
		b.dropWatch(w)
		return fmt.Errorf("natsbackend: watch services: %w", b.classify(err))
	}
	go w.run(ctx, changed)
	return nil
}

// start begins the watch's consumer, from the stream's next message by
// number: an ordered consumer that is reset (heartbeats missed, under
// load) before it delivered anything is made again with the policy it
// began with, and "new" would then skip what was stored in between (node
// b never heard of a service node a added: TestCluster met it once under
// make test).
func (w *servicesWatch) start(ctx context.Context) error {
	b := w.b
	info, err := b.authKV.stream.Info(ctx)
	if err != nil {
		return err
	}
	epoch, renewed := b.followAuth(info)
	if renewed {
		b.restartWatches(w) // the others follow the old stream
	}
	cons, err := b.authKV.stream.OrderedConsumer(ctx, watchFrom(info.State.LastSeq))
	if err != nil {
		return err
	}
	// Called by the client with the consumer's lock held: it must not
	// block (signal does not).
	onErr := jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
		if b.closed.Load() {
			return
		}
		b.log.Info("natsbackend: services watch interrupted: reloading the registry", "err", err)
		signal(w.kick)
	})
	cc, err := cons.Consume(func(m jetstream.Msg) {
		// Noted before the kick: the reload it causes reads no older
		// state than this message's (authStore.caughtUp).
		if md, err := m.Metadata(); err == nil {
			b.sawAuth(epoch, md.Sequence.Stream)
		}
		signal(w.kick)
	}, onErr)
	if err != nil {
		return err
	}
	w.cc = cc
	return nil
}

// run calls changed on kicks and begins the consumer again on restarts,
// until ctx ends or the connection is closed.
func (w *servicesWatch) run(ctx context.Context, changed func()) {
	b := w.b
	defer func() {
		b.dropWatch(w)
		w.stop()
	}()
	for wait := 100 * time.Millisecond; ; {
		select {
		case <-w.kick:
			changed()
		case <-w.restart:
			w.stop()
			octx, cancel, err := b.op(ctx)
			if err == nil {
				err = w.start(octx)
			}
			cancel()
			if err != nil {
				if b.closed.Load() || ctx.Err() != nil {
					return
				}
				b.log.Warn("natsbackend: services watch: begin again on the new auth stream", "err", err, "retry_in", wait)
				w.retry = b.clk.AfterFunc(wait, func() { signal(w.restart) })
				wait = min(2*wait, 5*time.Second)
				continue
			}
			wait = 100 * time.Millisecond
			// What the new stream holds, and whatever the old consumer
			// did not deliver.
			changed()
		case <-ctx.Done():
			return
		case <-b.connDone:
			return
		}
	}
}

// stop ends the watch's consumer and its pending retry, if any.
func (w *servicesWatch) stop() {
	if w.retry != nil {
		w.retry.Stop()
		w.retry = nil
	}
	if w.cc != nil {
		w.cc.Stop()
		w.cc = nil
	}
}

// addWatch registers a running services watch.
func (b *Backend) addWatch(w *servicesWatch) {
	b.watchMu.Lock()
	defer b.watchMu.Unlock()
	b.watches[w] = struct{}{}
}

// dropWatch forgets a services watch.
func (b *Backend) dropWatch(w *servicesWatch) {
	b.watchMu.Lock()
	defer b.watchMu.Unlock()
	delete(b.watches, w)
}

// pokeWatches wakes every services watch (without blocking), so that each
// reloads the registry: the reconnect handler calls it.
func (b *Backend) pokeWatches() {
	b.watchMu.Lock()
	defer b.watchMu.Unlock()
	for w := range b.watches {
		signal(w.kick)
	}
}

// restartWatches makes every services watch but except begin a new
// consumer (without blocking): the auth stream was made again.
func (b *Backend) restartWatches(except *servicesWatch) {
	b.watchMu.Lock()
	defer b.watchMu.Unlock()
	for w := range b.watches {
		if w != except {
			signal(w.restart)
		}
	}
}

// watchFrom is the services watch's consumer: headers only (a change is
// reloaded, not read from the message), from the message after last.
func watchFrom(last uint64) jetstream.OrderedConsumerConfig {
	return jetstream.OrderedConsumerConfig{
		DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: last + 1, HeadersOnly: true,
	}
}
