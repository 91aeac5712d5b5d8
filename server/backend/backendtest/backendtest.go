// Package backendtest is the conformance suite of package backend: every
// implementation of backend.Backend runs Run in its own tests and passes it.
//
// The suite tests each promise of the package doc of backend, one subtest
// per promise, against one or more nodes that share one service: an
// embedded implementation gives one node, a distributed one gives two (or
// more) nodes of one cluster, and the suite then also checks that what one
// node writes, another sees, and that concurrent writers on different nodes
// keep the limits.
//
// Asynchronous events (an Inbox call from another node) are awaited on
// channels with a bound (Wait); the suite never sleeps. Run it with -race.
package backendtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/openmpns/openmpns/server/backend"
)

// Wait bounds every wait for an asynchronous event (an Inbox call, a
// Durable) and every call of the backend made by the suite.
var Wait = 20 * time.Second

// Open returns a fresh, empty service as one or more nodes sharing it. The
// nodes have not been given an Inbox yet (the suite calls Listen on each).
// Open registers, with t.Cleanup, whatever releases them; that cleanup must
// tolerate a node the suite closed already.
type Open func(t *testing.T) []backend.Backend

// Run runs the conformance suite, each subtest on nodes from its own call of
// open.
func Run(t *testing.T, open Open) {
	groups := []struct {
		name  string
		tests []test
	}{
		{"Directory", directoryTests},
		{"Queue", queueTests},
		{"Router", routerTests},
		{"Counters", counterTests},
		{"Services", serviceTests},
		{"Stats", statsTests},
		{"Close", closeTests},
	}
	for _, g := range groups {
		t.Run(g.name, func(t *testing.T) {
			for _, tc := range g.tests {
				t.Run(tc.name, func(t *testing.T) {
					tc.run(t, newHarness(t, open))
				})
			}
		})
	}
}

// test is one promise of the contract.
type test struct {
	name string
	run  func(t *testing.T, h *harness)
}

// harness is one service: its nodes, each with a recording inbox.
type harness struct {
	nodes   []backend.Backend
	inboxes []*Inbox
	ctx     context.Context
	// id makes names unique within the service.
	id string
}

func newHarness(t *testing.T, open Open) *harness {
	t.Helper()
	nodes := open(t)
	if len(nodes) == 0 {
		t.Fatal("backendtest: Open returned no node")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*Wait)
	t.Cleanup(cancel)
	h := &harness{nodes: nodes, ctx: ctx, id: randomHex(4)}
	for _, n := range nodes {
		in := NewInbox()
		n.Listen(in)
		h.inboxes = append(h.inboxes, in)
	}
	return h
}

// node returns node i, or the last node when there are fewer: a test
// written for two nodes runs its "other node" on the only node of an
// embedded backend.
func (h *harness) node(i int) backend.Backend {
	if i >= len(h.nodes) {
		i = len(h.nodes) - 1
	}
	return h.nodes[i]
}

func (h *harness) inbox(i int) *Inbox {
	if i >= len(h.inboxes) {
		i = len(h.inboxes) - 1
	}
	return h.inboxes[i]
}

// name returns a name unique to this service.
func (h *harness) name(kind string) string { return kind + "-" + h.id + "-" + randomHex(4) }

// device stores a new device through node i.
func (h *harness) device(t *testing.T, i int) backend.Device {
	t.Helper()
	d, err := h.node(i).PutDevice(h.ctx, backend.Device{
		ID: h.name("dev"), TokenHash: []byte("0123456789abcdef0123456789abcdef"),
		CreatedAt: now(), Power: "normal",
	})
	if err != nil {
		t.Fatalf("PutDevice: %v", err)
	}
	return d
}

// channel stores a new channel of device dev for app through node i.
func (h *harness) channel(t *testing.T, i int, dev, app string) backend.Channel {
	t.Helper()
	c, err := h.node(i).PutChannel(h.ctx, backend.Channel{
		Token: h.name("tok"), DeviceID: dev, App: app, Name: "main",
		URI: "https://push.example/" + app, Toast: true, Tile: true,
		Domains: []string{"example.com"}, CreatedAt: now(),
	})
	if err != nil {
		t.Fatalf("PutChannel(%s, %s): %v", dev, app, err)
	}
	return c
}

// note returns a toast (tile "" is ignored) or, with kind "tile", a tile
// update for channel c expiring in an hour.
func note(c backend.Channel, kind, tileID string) *backend.Notification {
	t := now()
	return &backend.Notification{
		DeviceID: c.DeviceID, Channel: c.Token, App: c.App, Kind: kind, Class: 2,
		MessageID: "00000000-0000-0000-0000-000000000001", TileID: tileID,
		Payload:    []byte("<wp:Notification><wp:Toast>" + randomHex(3) + "</wp:Toast></wp:Notification>"),
		AcceptedAt: t, DeliverAt: t, ExpiresAt: t.Add(time.Hour),
	}
}

// appendOK appends n through node i with no limit and checks the outcome.
func (h *harness) appendOK(t *testing.T, i int, n *backend.Notification, limit int) backend.Appended {
	t.Helper()
	a, err := h.node(i).Append(h.ctx, n, limit)
	if err != nil {
		t.Fatalf("Append(%s %q): %v", n.Kind, n.TileID, err)
	}
	if a.Seq == 0 || a.Seq != n.Seq {
		t.Fatalf("Append: Appended.Seq %d, n.Seq %d; want equal and > 0", a.Seq, n.Seq)
	}
	waitDurable(t, a)
	return a
}

// pending returns node i's Pending for dev at now.
func (h *harness) pending(t *testing.T, i int, dev string, at time.Time) []*backend.Notification {
	t.Helper()
	ns, err := h.node(i).Pending(h.ctx, dev, at)
	if err != nil {
		t.Fatalf("Pending(%s): %v", dev, err)
	}
	return ns
}

// waitDurable waits (bounded) for a.Durable to yield nil.
func waitDurable(t *testing.T, a backend.Appended) {
	t.Helper()
	if a.Durable == nil {
		t.Fatal("Appended.Durable is nil")
	}
	select {
	case err := <-a.Durable:
		if err != nil {
			t.Fatalf("Durable yielded %v", err)
		}
	case <-time.After(Wait):
		t.Fatalf("Durable did not yield within %v", Wait)
	}
}

// seqs returns the Seqs of ns.
func seqs(ns []*backend.Notification) []uint64 {
	out := make([]uint64, len(ns))
	for i, n := range ns {
		out[i] = n.Seq
	}
	return out
}

// now is the wall clock without its monotonic reading, in whole
// milliseconds, so that records compare equal after a round trip through
// any reasonable encoding.
func now() time.Time { return time.Now().UTC().Truncate(time.Millisecond) }

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

// wantErr fails t unless errors.Is(err, want).
func wantErr(t *testing.T, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("%s: err = %v, want %v", what, err, want)
	}
}

// Event is a call of an Inbox.
type Event struct {
	// Kind is "deliver" or "takenover".
	Kind     string
	DeviceID string
	// N and Replaced are Deliver's arguments.
	N        *backend.Notification
	Replaced uint64
	// Claim is TakenOver's argument.
	Claim uint64
}

// String describes the event for failure messages.
func (e Event) String() string {
	if e.Kind == "deliver" {
		return fmt.Sprintf("deliver(%s, seq %d, replaced %d)", e.DeviceID, e.N.Seq, e.Replaced)
	}
	return fmt.Sprintf("takenover(%s, claim %d)", e.DeviceID, e.Claim)
}

// Inbox is a backend.Inbox that records its calls on a buffered channel;
// it never blocks (a call that finds the buffer full is counted as lost).
type Inbox struct {
	events chan Event
	lost   chan struct{}
}

var _ backend.Inbox = (*Inbox)(nil)

// NewInbox returns an empty Inbox.
func NewInbox() *Inbox {
	return &Inbox{events: make(chan Event, 4096), lost: make(chan struct{}, 1)}
}

func (in *Inbox) record(e Event) {
	select {
	case in.events <- e:
	default:
		select {
		case in.lost <- struct{}{}:
		default:
		}
	}
}

// Deliver implements backend.Inbox.
func (in *Inbox) Deliver(deviceID string, n *backend.Notification, replaced uint64) {
	in.record(Event{Kind: "deliver", DeviceID: deviceID, N: n, Replaced: replaced})
}

// TakenOver implements backend.Inbox.
func (in *Inbox) TakenOver(deviceID string, claim uint64) {
	in.record(Event{Kind: "takenover", DeviceID: deviceID, Claim: claim})
}

// Resync implements backend.Inbox.
func (in *Inbox) Resync() { in.record(Event{Kind: "resync"}) }

// Next waits (at most Wait) for the next event and fails t if none comes.
func (in *Inbox) Next(t *testing.T, what string) Event {
	t.Helper()
	select {
	case e := <-in.events:
		return e
	case <-in.lost:
		t.Fatalf("%s: the inbox buffer overflowed", what)
	case <-time.After(Wait):
		t.Fatalf("%s: no inbox event within %v", what, Wait)
	}
	return Event{}
}

// Empty fails t if an event is waiting. Call it after a barrier: an event
// known to arrive after any that should not have come.
func (in *Inbox) Empty(t *testing.T, what string) {
	t.Helper()
	select {
	case e := <-in.events:
		t.Fatalf("%s: unexpected inbox event %v", what, e)
	default:
	}
}
