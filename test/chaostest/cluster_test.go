//go:build linux

package chaostest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/openmpns/openmpns/internal/natstest"
)

// publicURL is the origin the nodes put in Channel URIs (a load
// balancer's); the sender's Route sends each push to a node of its choice.
const publicURL = "http://push.chaos.test"

// TestClusterFailures runs two openmpns nodes as real child processes on a
// 3-server NATS JetStream cluster (in the test process), a fleet of real
// devices that know both nodes, and senders POSTing continuously through
// both nodes in turn. Under that load it
//
//  1. SIGKILLs node A: its devices come back on node B within their
//     backoff; a push in flight on A gets an error or no answer, never
//     Received and then lost;
//  2. stops one NATS server of three: the service goes on;
//  3. starts it again, and restarts node A.
//
// At the end every push answered 200 Received has reached its app exactly
// once, nothing else arrived, and nothing arrived twice.
//
// Short variant (make test): 20 devices, 1 kill. Long variant
// (OPENMPNS_CHAOS=long, make chaos): 100 devices, 5 rounds.
func TestClusterFailures(t *testing.T) {
	devices, workers, rounds := 20, 4, 1
	if long() {
		devices, workers, rounds = 100, 8, 5
	}
	nc := natstest.RunCluster(t, 3)
	b := make([]byte, 4)
	rand.Read(b)
	node := func(id string) *Proc {
		return StartServer(t, ChildConfig{DataDir: t.TempDir(), NATS: nc.URLs(), Prefix: "chaos" + hex.EncodeToString(b),
			PublicURL: publicURL, NodeID: id, DailyQuota: -1})
	}
	a, bn := node("a"), node("b")
	fleet := NewFleet(t, FleetConfig{Server: a.URL(), Servers: []string{bn.URL()}, N: devices,
		MinBackoff: 20 * time.Millisecond, MaxBackoff: 500 * time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := fleet.WaitFor(ctx, func() bool { return fleet.ConnectedCount() == devices }); err != nil {
		t.Fatalf("%d of %d devices connected: %v", fleet.ConnectedCount(), devices, err)
	}

	s := NewSender()
	defer s.Close()
	var turn atomic.Uint64
	nodes := []*Proc{a, bn}
	s.Route = func(uri string) string {
		// Each push goes to the next node, as a round-robin balancer
		// sends it; a push to a node that is down gets an error.
		u, _ := url.Parse(uri)
		b, _ := url.Parse(nodes[turn.Add(1)%2].URL())
		u.Scheme, u.Host = b.Scheme, b.Host
		return u.String()
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; ; i += workers {
				select {
				case <-stop:
					return
				default:
				}
				class := 3
				if i%2 == 0 {
					class = 2
				}
				s.Push(ctx, fleet.Devs[i%devices], class)
			}
		}()
	}
	// waitPushes lets the senders answer n more pushes.
	waitPushes := func(n int) {
		t.Helper()
		if err := s.WaitAnswers(ctx, s.Answered()+n); err != nil {
			t.Fatal(err)
		}
	}
	for r := range rounds {
		waitPushes(200)
		a.Kill()
		t.Logf("round %d: node a killed", r)
		waitPushes(200)
		if err := fleet.WaitFor(ctx, func() bool { return fleet.ConnectedCount() == devices }); err != nil {
			t.Fatalf("round %d: %d of %d devices back on node b: %v", r, fleet.ConnectedCount(), devices, err)
		}
		nc.Stop(2)
		t.Logf("round %d: NATS server 2 stopped", r)
		waitPushes(200)
		nc.Start(2)
		a.Restart()
		nc.WaitJetStream()
		t.Logf("round %d: NATS server 2 and node a back", r)
		waitPushes(200)
	}
	close(stop)
	wg.Wait()
	// Bounded: a push that never arrives is reported with examples below.
	wctx, wcancel := context.WithTimeout(ctx, time.Minute)
	if err := fleet.WaitFor(wctx, s.AllReceivedArrived); err != nil {
		t.Errorf("waiting for every Received push to arrive: %v", err)
	}
	wcancel()
	rep := s.Check(fleet, Expiry{})
	t.Logf("%s; answers: %s", rep, s.Answers())
	if rep.Lost > 0 || rep.Duplicates > 0 || rep.Spurious > 0 || rep.Checked == 0 {
		t.Fatalf("%s\nexamples: %q", rep, rep.Examples)
	}
}
