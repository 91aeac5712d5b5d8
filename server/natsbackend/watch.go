package natsbackend

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/openmpns/openmpns/server/backend"
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
func (b *Backend) WatchServices(ctx context.Context, changed func()) error {
	octx, cancel, err := b.op(ctx)
	defer cancel()
	if err != nil {
		return err
	}
	// From the stream's next message, by number: an ordered consumer that
	// is reset (heartbeats missed, under load) before it delivered
	// anything is made again with the policy it began with, and "new"
	// would then skip what was stored in between (node b never heard of a
	// service node a added: TestCluster met it once under make test).
	info, err := b.authKV.stream.Info(octx)
	if err != nil {
		return fmt.Errorf("natsbackend: watch services: %w", b.classify(err))
	}
	cons, err := b.authKV.stream.OrderedConsumer(octx, watchFrom(info.State.LastSeq))
	if err != nil {
		return fmt.Errorf("natsbackend: watch services: %w", b.classify(err))
	}
	kick := make(chan struct{}, 1)
	poke := func() {
		select {
		case kick <- struct{}{}:
		default:
		}
	}
	// Called by the client with the consumer's lock held: it must not
	// block (poke does not).
	onErr := jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
		if b.closed.Load() {
			return
		}
		b.log.Info("natsbackend: services watch interrupted: reloading the registry", "err", err)
		poke()
	})
	b.addWatch(kick)
	cc, err := cons.Consume(func(m jetstream.Msg) {
		// Noted before the poke: the reload it causes reads no older
		// state than this message's (authStore.caughtUp).
		if md, err := m.Metadata(); err == nil {
			b.sawAuth(md.Sequence.Stream)
		}
		poke()
	}, onErr)
	if err != nil {
		b.dropWatch(kick)
		return fmt.Errorf("natsbackend: watch services: %w", b.classify(err))
	}
	go func() {
		defer cc.Stop()
		defer b.dropWatch(kick)
		for {
			select {
			case <-kick:
				changed()
			case <-ctx.Done():
				return
			case <-b.connDone:
				return
			}
		}
	}()
	return nil
}

// sawAuth notes that a services watch delivered the auth stream's message
// seq.
func (b *Backend) sawAuth(seq uint64) {
	for {
		cur := b.authSeen.Load()
		if seq <= cur || b.authSeen.CompareAndSwap(cur, seq) {
			return
		}
	}
}

// addWatch registers a services watch's wake-up, which pokeWatches pokes.
func (b *Backend) addWatch(kick chan struct{}) {
	b.watchMu.Lock()
	defer b.watchMu.Unlock()
	b.watches[kick] = struct{}{}
}

// dropWatch forgets a services watch's wake-up.
func (b *Backend) dropWatch(kick chan struct{}) {
	b.watchMu.Lock()
	defer b.watchMu.Unlock()
	delete(b.watches, kick)
}

// pokeWatches wakes every services watch (without blocking), so that each
// reloads the registry: the reconnect handler calls it.
func (b *Backend) pokeWatches() {
	b.watchMu.Lock()
	defer b.watchMu.Unlock()
	for kick := range b.watches {
		select {
		case kick <- struct{}{}:
		default:
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
