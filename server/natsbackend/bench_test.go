package natsbackend_test

import (
	"context"
	"fmt"
	"github.com/openmpns/openmpns/internal/natstest"
	"testing"
	"time"

	"github.com/openmpns/openmpns/server/backend"
	"github.com/openmpns/openmpns/server/natsbackend"
)

// Benchmarks of the calls on the push path, against embedded servers in
// this process (so client and servers share the CPU):
//
//	go test -run '^$' -bench . -benchtime 2000x ./server/natsbackend/

func benchNote(dev, ch, kind string, size int) *backend.Notification {
	now := time.Now()
	return &backend.Notification{DeviceID: dev, Channel: ch, App: "app", Kind: kind, Class: 2,
		Payload: make([]byte, size), AcceptedAt: now, DeliverAt: now, ExpiresAt: now.Add(time.Hour)}
}

// benchBackends returns a node on one server (R1) and a node on a
// 3-server cluster (R3).
func benchBackends(b *testing.B) map[string]*natsbackend.Backend {
	out := map[string]*natsbackend.Backend{}
	single := natstest.RunServer(b)
	out["R1"] = openB(b, natsbackend.Config{URLs: []string{single.ClientURL()}, Prefix: newPrefix(), Replicas: 1})
	c := natstest.RunCluster(b, 3)
	out["R3"] = openB(b, natsbackend.Config{URLs: []string{c.URL(0)}, Prefix: newPrefix(), Replicas: 3})
	return out
}

func openB(b *testing.B, cfg natsbackend.Config) *natsbackend.Backend {
	b.Helper()
	cfg.Logger = quiet
	n, err := natsbackend.Open(context.Background(), cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { n.Close() })
	return n
}

// BenchmarkAppend: a 1 KiB toast to an empty channel (a fresh channel each
// time), and a 1 KiB tile update replacing the previous one in a channel
// that holds 99 more (the read of a nearly full queue of 100).
func BenchmarkAppend(b *testing.B) {
	ctx := context.Background()
	for name, n := range benchBackends(b) {
		b.Run(name+"/EmptyChannel", func(b *testing.B) {
			for i := 0; b.Loop(); i++ {
				if _, err := n.Append(ctx, benchNote("dev", fmt.Sprint("c", name, i), "toast", 1024), 100); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(name+"/Holding100", func(b *testing.B) {
			ch := "full" + name
			for range 99 {
				if _, err := n.Append(ctx, benchNote("dev2", ch, "toast", 1024), 0); err != nil {
					b.Fatal(err)
				}
			}
			for b.Loop() {
				if _, err := n.Append(ctx, benchNote("dev2", ch, "tile", 1024), 100); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkPending reads a device's 10 queued 1 KiB notifications.
func BenchmarkPending(b *testing.B) {
	ctx := context.Background()
	for name, n := range benchBackends(b) {
		for i := range 10 {
			if _, err := n.Append(ctx, benchNote("devp", fmt.Sprint("c", i%3), "toast", 1024), 0); err != nil {
				b.Fatal(err)
			}
		}
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				ns, err := n.Pending(ctx, "devp", time.Now())
				if err != nil || len(ns) != 10 {
					b.Fatal(len(ns), err)
				}
			}
		})
	}
}

// BenchmarkTake takes from one counter (limit never reached).
func BenchmarkTake(b *testing.B) {
	ctx := context.Background()
	for name, n := range benchBackends(b) {
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				if ok, err := n.Take(ctx, "quota", 1<<40, time.Hour); err != nil || !ok {
					b.Fatal(ok, err)
				}
			}
		})
	}
}

// chanInbox hands deliveries to a channel.
type chanInbox chan *backend.Notification

func (c chanInbox) Deliver(_ string, n *backend.Notification, _ uint64) { c <- n }
func (c chanInbox) TakenOver(string, uint64)                            {}
func (c chanInbox) Resync()                                             {}

// BenchmarkHand hands a notification from one node to the node holding
// the device, on another server of a 3-server cluster, until its Inbox has
// it: the presence read from the leader plus one core NATS message.
func BenchmarkHand(b *testing.B) {
	ctx := context.Background()
	c := natstest.RunCluster(b, 3)
	prefix := newPrefix()
	from := openB(b, natsbackend.Config{URLs: []string{c.URL(0)}, Prefix: prefix, Replicas: 3, NodeID: "from"})
	to := openB(b, natsbackend.Config{URLs: []string{c.URL(1)}, Prefix: prefix, Replicas: 3, NodeID: "to"})
	in := make(chanInbox, 1)
	to.Listen(in)
	from.Listen(make(chanInbox, 1))
	if _, err := to.Claim(ctx, "devh", time.Now()); err != nil {
		b.Fatal(err)
	}
	n := benchNote("devh", "c", "toast", 1024)
	n.Seq = 1
	for b.Loop() {
		if _, _, err := from.Hand(ctx, n, 0); err != nil {
			b.Fatal(err)
		}
		select {
		case <-in:
		case <-time.After(10 * time.Second):
			b.Fatal("no delivery")
		}
	}
}
