package server

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/openmpns/openmpns/server/backend"
	"github.com/openmpns/openmpns/server/store"
	"github.com/openmpns/openmpns/shared/payload"
	"github.com/openmpns/openmpns/shared/wire"
)

// These tests drive the engine on the real embedded backend, with gates
// that stop a backend call until the test opens them, to reach the
// interleavings a reviewer found.

// gated is the embedded backend whose Pending and Claim can be held.
type gated struct {
	*store.Embedded
	mu      sync.Mutex
	pending chan struct{} // non-nil: Pending waits for it to close
	claim   chan struct{} // non-nil: the next Claim, once made, waits for it to close
	inside  chan struct{} // closed when a held call has started
}

func (g *gated) hold(which *chan struct{}) (release func(), started <-chan struct{}) {
	g.mu.Lock()
	defer g.mu.Unlock()
	c := make(chan struct{})
	*which, g.inside = c, make(chan struct{})
	return func() { close(c) }, g.inside
}

func (g *gated) wait(which *chan struct{}) {
	g.mu.Lock()
	c, in := *which, g.inside
	*which = nil
	g.mu.Unlock()
	if c != nil {
		close(in)
		<-c
	}
}

func (g *gated) Pending(ctx context.Context, dev string, now time.Time) ([]*backend.Notification, error) {
	g.wait(&g.pending)
	return g.Embedded.Pending(ctx, dev, now)
}

// Claim claims, then waits: the caller holds a claim it has not acted on.
func (g *gated) Claim(ctx context.Context, dev string, now time.Time) (uint64, error) {
	c, err := g.Embedded.Claim(ctx, dev, now)
	g.wait(&g.claim)
	return c, err
}

// recConn is a device connection that records what the engine sends.
type recConn struct {
	mu     sync.Mutex
	frames []*wire.Frame
	kicked int
}

func (c *recConn) Notify(f *wire.Frame) { c.mu.Lock(); c.frames = append(c.frames, f); c.mu.Unlock() }
func (c *recConn) Kick(code int, _ string) {
	c.mu.Lock()
	c.kicked = code
	c.mu.Unlock()
}

func (c *recConn) sent() (nids []string, kicked int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, f := range c.frames {
		nids = append(nids, f.NID)
	}
	return nids, c.kicked
}

func newGatedEngine(t *testing.T) (*Engine, *gated, string) {
	t.Helper()
	emb, err := store.Open(filepath.Join(t.TempDir(), "db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { emb.Close() })
	g := &gated{Embedded: emb}
	cfg := Config{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	if err := cfg.Normalize(); err != nil {
		t.Fatal(err)
	}
	e := NewEngine(&cfg, g, newMetrics(func() backend.Stats { return backend.Stats{} }))
	t.Cleanup(e.Stop)
	dev, _, err := e.Authenticate("", "")
	if err != nil {
		t.Fatal(err)
	}
	ch, err := e.Open(dev, "app", "main", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	return e, g, ch.Token
}

func pushRaw(t *testing.T, e *Engine, token string) {
	t.Helper()
	res, err := e.Push(context.Background(), &PushRequest{Token: token, Kind: payload.KindRaw, Class: 3, Body: []byte("x")})
	if err != nil || res.Notification != StatusReceived {
		t.Fatalf("push: %+v %v", res, err)
	}
}

// A notification handed over while a connection is being attached is held
// until the queue is merged: the device gets everything once, in Seq order.
func TestAttachSendsInSeqOrderWhatArrivesWhileLoading(t *testing.T) {
	e, g, token := newGatedEngine(t)
	ch, _ := g.Channel(context.Background(), token)
	pushRaw(t, e, token) // n1, n2: queued while the device is away
	pushRaw(t, e, token)
	release, started := g.hold(&g.pending)
	conn := &recConn{}
	attached := make(chan error, 1)
	go func() { attached <- e.Attach(ch.DeviceID, conn, nil) }()
	<-started            // Attach registered the device and waits in Pending
	pushRaw(t, e, token) // n3, handed over now
	if nids, _ := conn.sent(); len(nids) != 0 {
		t.Fatalf("sent %v before the queue was merged", nids)
	}
	release()
	if err := <-attached; err != nil {
		t.Fatal(err)
	}
	nids, _ := conn.sent()
	if len(nids) != 3 {
		t.Fatalf("sent %v, want 3 notifications once each", nids)
	}
	for i := 1; i < len(nids); i++ {
		a, _ := backend.ParseID(nids[i-1])
		b, _ := backend.ParseID(nids[i])
		if a >= b {
			t.Fatalf("sent %v: not in Seq order", nids)
		}
	}
}

// Attach calls claimed (where the gateway welcomes the device) once the
// device's claim is written and before anything queued is sent: a device
// that reconnects as soon as it is welcomed claims after this connection.
func TestAttachCallsClaimedAfterTheClaimBeforeTheQueue(t *testing.T) {
	e, g, token := newGatedEngine(t)
	ch, _ := g.Channel(context.Background(), token)
	pushRaw(t, e, token) // queued while the device is away
	pushRaw(t, e, token)
	release, started := g.hold(&g.claim)
	conn := &recConn{}
	var calls atomic.Int32
	var sentBefore []string
	var claimSeen uint64
	attached := make(chan error, 1)
	go func() {
		attached <- e.Attach(ch.DeviceID, conn, func() {
			calls.Add(1)
			sentBefore, _ = conn.sent()
			p, _, _ := g.Presence(context.Background(), ch.DeviceID)
			claimSeen = p.Claim
		})
	}()
	<-started // the claim is being written: no welcome yet
	if n := calls.Load(); n != 0 {
		t.Fatalf("claimed called %d times before the claim returned", n)
	}
	release()
	if err := <-attached; err != nil {
		t.Fatal(err)
	}
	d := e.conn(ch.DeviceID)
	if calls.Load() != 1 || len(sentBefore) != 0 || d == nil || claimSeen == 0 || claimSeen != d.claim {
		t.Fatalf("claimed called %d times, with %v already sent and claim %d written (the connection's: %+v)", calls.Load(), sentBefore, claimSeen, d)
	}
	if nids, _ := conn.sent(); len(nids) != 2 {
		t.Fatalf("sent %v after the welcome, want the 2 queued", nids)
	}
}

// Two connections of one device attaching at once, the older claim
// registering last: the newer keeps the device, the older is closed with
// 4001, and the backend's presence names the claim the engine holds (a
// Release of the older claim then changes nothing).
func TestTheNewerClaimWinsWhenTheOlderRegistersLast(t *testing.T) {
	e, g, token := newGatedEngine(t)
	ch, _ := g.Channel(context.Background(), token)
	release, started := g.hold(&g.claim)
	older, newer := &recConn{}, &recConn{}
	done := make(chan error, 1)
	go func() { done <- e.Attach(ch.DeviceID, older, nil) }()
	<-started // the older one has its claim and waits before registering
	if err := e.Attach(ch.DeviceID, newer, nil); err != nil {
		t.Fatal(err)
	}
	release()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	_, kickedOlder := older.sent()
	_, kickedNewer := newer.sent()
	if kickedOlder != wire.CloseReplaced || kickedNewer != 0 {
		t.Fatalf("older kicked with %d, newer with %d; want the older closed with %d, the newer kept", kickedOlder, kickedNewer, wire.CloseReplaced)
	}
	d := e.conn(ch.DeviceID)
	p, _, _ := g.Presence(context.Background(), ch.DeviceID)
	if d == nil || d.conn != newer || d.claim != p.Claim || !p.Connected {
		t.Fatalf("the engine holds %+v, presence %+v", d, p)
	}
	e.Disconnect(ch.DeviceID, older) // the older connection ends: nothing changes
	if p, _, _ := g.Presence(context.Background(), ch.DeviceID); !p.Connected {
		t.Fatal("the older connection's end marked the device offline")
	}
}

// Acknowledgements are handled on the gateway's poller only over a backend
// whose Remove never waits: the embedded store's; any other backend (NATS,
// whose Remove is a round trip) is taken to wait.
func TestAckWaitsUnlessTheBackendSaysItNeverDoes(t *testing.T) {
	e, _, _ := newGatedEngine(t)
	if e.AckWaits() {
		t.Error("over the embedded store, Ack is said to wait")
	}
	other := &Engine{be: struct{ backend.Backend }{}} // AckWaits reads be alone
	if !other.AckWaits() {
		t.Error("over a backend that says nothing of its Remove, Ack is said never to wait")
	}
}
