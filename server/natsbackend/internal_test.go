package natsbackend

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/openmpns/openmpns/server/auth"
	"github.com/openmpns/openmpns/server/backend"
)

func TestToken(t *testing.T) {
	for in, want := range map[string]string{
		"abc-DEF_09":    "abc-DEF_09",
		"":              "=",
		"a.b":           "=YS5i",
		"{5B04B775}":    "=ezVCMDRCNzc1fQ",
		"/P.xaml?id=1 ": "=L1AueGFtbD9pZD0xIA",
	} {
		if got := token(in); got != want {
			t.Errorf("token(%q) = %q, want %q", in, got, want)
		}
	}
	// Distinct strings, distinct tokens: "=..." is never a plain token.
	if token("=YS5i") == token("a.b") {
		t.Error("token is not injective")
	}
}

func TestVersionAtLeast(t *testing.T) {
	for _, tc := range []struct {
		v    string
		want bool
	}{{"2.11.0", true}, {"2.15.3", true}, {"v2.12.0-beta.1", true}, {"2.10.29", false}, {"1.99.99", false}, {"", false}, {"3.0.0", true}} {
		if got := versionAtLeast(tc.v, minServer); got != tc.want {
			t.Errorf("versionAtLeast(%q) = %v", tc.v, got)
		}
	}
}

func runTestServer(t *testing.T) *server.Server {
	t.Helper()
	s, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true, JetStream: true, StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	go s.Start()
	if !s.ReadyForConnections(60 * time.Second) {
		t.Fatal("nats-server did not start")
	}
	t.Cleanup(s.Shutdown)
	return s
}

// TestReadsPageAndAgree appends more notifications to one device than one
// batched direct get returns, and checks that the paged direct get, the
// leader scan and Pending see the same, in order.
func TestReadsPageAndAgree(t *testing.T) {
	s := runTestServer(t)
	ctx := context.Background()
	b, err := Open(ctx, Config{URLs: []string{s.ClientURL()}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	var want []uint64
	for i := range directBatch + 40 {
		ch := []string{"c1", "c2", "c3"}[i%3]
		n := &backend.Notification{DeviceID: "d", Channel: ch, Kind: "raw", Payload: make([]byte, 100),
			ExpiresAt: time.Now().Add(time.Hour)}
		if _, err := b.Append(ctx, n, 0); err != nil {
			t.Fatal(err)
		}
		want = append(want, n.Seq)
	}
	// Another device's notification is in none of the reads.
	if _, err := b.Append(ctx, &backend.Notification{DeviceID: "d2", Channel: "c1", Kind: "raw", ExpiresAt: time.Now().Add(time.Hour)}, 0); err != nil {
		t.Fatal(err)
	}
	seqsOf := func(ms []directMsg) []uint64 {
		var out []uint64
		for _, m := range ms {
			out = append(out, m.Seq)
		}
		return out
	}
	direct, err := b.directGet(ctx, b.queueSt, b.deviceFilter("d"))
	if err != nil || !slices.Equal(seqsOf(direct), want) {
		t.Fatalf("directGet: %d messages, %v; want %d", len(direct), err, len(want))
	}
	scan, err := b.leaderScan(ctx, b.deviceFilter("d"), false)
	if err != nil || !slices.Equal(seqsOf(scan), want) {
		t.Fatalf("leaderScan: %d messages, %v; want %d", len(scan), err, len(want))
	}
	ns, err := b.Pending(ctx, "d", time.Now())
	if err != nil || len(ns) != len(want) {
		t.Fatalf("Pending: %d, %v", len(ns), err)
	}
	// Counting for the limit pages too: channel c1 holds 99.
	if _, err := b.Append(ctx, &backend.Notification{DeviceID: "d", Channel: "c1", Kind: "raw", ExpiresAt: time.Now().Add(time.Hour)}, 99); !errors.Is(err, backend.ErrQueueFull) {
		t.Fatalf("Append past a limit of 99: %v, want ErrQueueFull", err)
	}
}

// TestCloseLeavesNoGoroutine opens a node, uses it and closes it: the
// goroutines it started (the connection's, the subscriptions') end.
func TestCloseLeavesNoGoroutine(t *testing.T) {
	s := runTestServer(t)
	ctx := context.Background()
	before := clientGoroutines()
	b, err := Open(ctx, Config{URLs: []string{s.ClientURL()}, NodeID: "n1", Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan struct{}, 1)
	b.Listen(inboxFunc(func() { got <- struct{}{} }))
	n := &backend.Notification{DeviceID: "d", Channel: "c", Kind: "toast", ExpiresAt: time.Now().Add(time.Hour)}
	if _, err := b.Append(ctx, n, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Claim(ctx, "d", time.Now()); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Pending(ctx, "d", time.Now()); err != nil {
		t.Fatal(err)
	}
	if _, _, err := b.Hand(ctx, n, 0); err != nil {
		t.Fatal(err)
	}
	select {
	case <-got:
	case <-time.After(10 * time.Second):
		t.Fatal("no delivery")
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	// Goroutines end asynchronously after the connection closed: poll,
	// bounded.
	deadline := time.Now().Add(5 * time.Second)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for left := clientGoroutines(); len(left) > len(before); left = clientGoroutines() {
		<-tick.C
		if time.Now().After(deadline) {
			t.Fatalf("%d client goroutines after Close, %d before:\n%s", len(left), len(before), strings.Join(left, "\n\n"))
		}
	}
}

// clientGoroutines returns the stacks of the goroutines running the NATS
// client or this package (not the embedded server's, nor the test's).
func clientGoroutines() []string {
	buf := make([]byte, 4<<20)
	var out []string
	for _, g := range strings.Split(string(buf[:runtime.Stack(buf, true)]), "\n\n") {
		if strings.Contains(g, "nats-io/nats.go") || (strings.Contains(g, "natsbackend.") && !strings.Contains(g, "testing.tRunner")) {
			out = append(out, g)
		}
	}
	return out
}

type inboxFunc func()

func (f inboxFunc) Deliver(string, *backend.Notification, uint64) { f() }
func (f inboxFunc) TakenOver(string, uint64)                      {}
func (f inboxFunc) Resync()                                       {}

// A node reads a channel into a view (set) while a removal notice drops
// from it (removed): set counts the view under the lock, as plan does
// (found by the race detector in TestCluster: Append counted the view it
// had just set without the lock, while an Ack's Remove dropped from it).
func TestQueueViewSetCountsUnderTheLock(t *testing.T) {
	q := newQueueViews("n1")
	k := viewKey{"dev", "ch"}
	msgs := []directMsg{{Subject: "a", Seq: 1}, {Subject: "b", Seq: 2}, {Subject: "c", Seq: 3}}
	exp := func(directMsg) int64 { return 1 << 62 }
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 2000 {
			q.removed([]removedNote{{Dev: k.dev, Ch: k.ch, Seq: 2}})
		}
	}()
	for range 2000 {
		_, last, _, count := q.set(k, msgs, exp, "x", false, 0)
		if last != 3 || count < 2 || count > 3 {
			t.Fatalf("set counted %d up to %d, want 2 or 3 up to 3", count, last)
		}
	}
	<-done
}

// A stream that cannot be placed because a server of the cluster is away
// is worth waiting for (Open retries it); replicas the cluster can never
// hold are not.
func TestTransientPlacement(t *testing.T) {
	for _, c := range []struct {
		err  *jetstream.APIError
		want bool
	}{
		{&jetstream.APIError{Code: 400, ErrorCode: codeNoSuitablePeers, Description: "no suitable peers for placement, peer offline"}, true},
		{&jetstream.APIError{Code: 400, ErrorCode: codeNoSuitablePeers, Description: "no suitable peers for placement, insufficient resources"}, false},
		{&jetstream.APIError{Code: 400, ErrorCode: codeNoSuitablePeers, Description: "no suitable peers for placement"}, false},
		{&jetstream.APIError{Code: 500, ErrorCode: 10074, Description: "replicas > 1 not supported in non-clustered mode"}, false},
		{&jetstream.APIError{Code: 503, ErrorCode: 10008, Description: "JetStream system temporarily unavailable"}, true},
	} {
		if got := transient(fmt.Errorf("create stream: %w", c.err)); got != c.want {
			t.Errorf("transient(%d %q) = %v, want %v", c.err.ErrorCode, c.err.Description, got, c.want)
		}
	}
}

// A services watch whose consumer is reset before it delivered anything
// (the server lost it, or its heartbeats were missed under load) still
// hears of a change stored before the reset: an ordered consumer made
// again with "deliver new" skipped it, and the node never reloaded (node b
// never took a service node a added, once, under make test's load). Node
// b reaches NATS through a proxy held while its consumer is deleted and
// the change stored, so that it learns of the deletion only after.
func TestWatchServicesHearsAChangeAcrossAReset(t *testing.T) {
	s := runTestServer(t)
	ctx := context.Background()
	proxy := newHeldProxy(t, s.Addr().String())
	open := func(id, url string) *Backend {
		b, err := Open(ctx, Config{URLs: []string{url}, NodeID: id, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { b.Close() })
		return b
	}
	a, b := open("a", s.ClientURL()), open("b", "nats://"+proxy.addr())
	changed := make(chan struct{}, 10)
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if err := b.WatchServices(wctx, func() { changed <- struct{}{} }); err != nil {
		t.Fatal(err)
	}
	stream := a.authKV.stream
	names := stream.ConsumerNames(ctx)
	var watch []string
	for n := range names.Name() {
		watch = append(watch, n)
	}
	if err := names.Err(); err != nil || len(watch) != 1 {
		t.Fatalf("the auth stream's consumers: %v %v, want the watch's alone", watch, err)
	}
	proxy.hold()
	if err := stream.DeleteConsumer(ctx, watch[0]); err != nil {
		t.Fatal(err)
	}
	if err := a.Services().CreateService(auth.Service{Name: "news", ClientID: "svc_1", Created: time.Now()}); err != nil {
		t.Fatal(err)
	}
	proxy.release()
	select {
	case <-changed:
	case <-time.After(20 * time.Second): // a failure, never a pause
		t.Fatal("node b's watch, reset before it delivered anything, missed the service node a stored")
	}
}

// A services watch may deliver a change before the stream leader, which
// the auth store reads, has stored it: the watch's consumer may be on a
// follower, and each replica applies a commit on its own. A reload that
// read the leader then found the registry as it was, and was not asked
// again (node b never heard of the service node a added, TestCluster
// under load). So a node notes what its watch delivered, and the store's
// reads wait until the leader has it: here, for a change the leader never
// stores, they fail (unavailable, a reload tries again later) instead of
// answering from before it.
func TestAuthReadsWaitForWhatTheWatchDelivered(t *testing.T) {
	s := runTestServer(t)
	ctx := context.Background()
	open := func(id string, timeout time.Duration) *Backend {
		b, err := Open(ctx, Config{URLs: []string{s.ClientURL()}, NodeID: id, RequestTimeout: timeout, Logger: quietLog()})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { b.Close() })
		return b
	}
	// b's reads give up soon: it is only asked what it cannot answer.
	a, b := open("a", 0), open("b", 300*time.Millisecond)
	changed := make(chan struct{}, 10)
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if err := a.WatchServices(wctx, func() { changed <- struct{}{} }); err != nil {
		t.Fatal(err)
	}
	st := a.Services()
	if err := st.CreateService(auth.Service{Name: "news", ClientID: "svc_1", Created: time.Now()}); err != nil {
		t.Fatal(err)
	}
	_, rev, ok, err := st.Service("news")
	if err != nil || !ok {
		t.Fatalf("service news: %v %v", ok, err)
	}
	deadline := time.NewTimer(20 * time.Second) // a failure, never a pause
	defer deadline.Stop()
	for a.authSeen() < rev {
		select {
		case <-changed:
		case <-deadline.C:
			t.Fatalf("node a's watch delivered up to %d; the service is %d", a.authSeen(), rev)
		}
	}

	b.sawAuth(b.authEpoch(), rev+1) // as if b's watch had delivered a change the leader has not stored
	bs := b.Services()
	if svcs, err := bs.Services(); !errors.Is(err, backend.ErrUnavailable) {
		t.Errorf("Services before the leader has what the watch delivered: %v %v, want unavailable", svcs, err)
	}
	if svc, _, _, err := bs.Service("news"); !errors.Is(err, backend.ErrUnavailable) {
		t.Errorf("Service before the leader has what the watch delivered: %+v %v, want unavailable", svc, err)
	}
	if k, _, err := bs.ServerKey(); !errors.Is(err, backend.ErrUnavailable) {
		t.Errorf("ServerKey before the leader has what the watch delivered: %+v %v, want unavailable", k, err)
	}
	// Once the leader has it, the reads answer.
	if err := st.CreateService(auth.Service{Name: "mail", ClientID: "svc_2", Created: time.Now()}); err != nil {
		t.Fatal(err)
	}
	a.sawAuth(a.authEpoch(), rev+1)
	if svcs, err := st.Services(); err != nil || len(svcs) != 2 {
		t.Fatalf("Services once the leader has the change: %v %v", svcs, err)
	}
}

// removeService removes the named service as it is stored.
func removeService(st auth.Store, name string) error {
	_, rev, ok, err := st.Service(name)
	if err != nil || !ok {
		return fmt.Errorf("service %s: %v %w", name, ok, err)
	}
	return st.DeleteService(name, rev)
}

// serviceMarker returns the sequence of the marker a removal of the
// service left in the auth stream (0: none).
func serviceMarker(t *testing.T, b *Backend, name string) uint64 {
	t.Helper()
	e, err := b.authKV.get(context.Background(), svcKey(name))
	if !errors.Is(err, errNoKey) {
		t.Fatalf("service %s after its removal: %+v %v", name, e, err)
	}
	if !e.deleted {
		return 0
	}
	return e.rev
}

// dropServiceMarker deletes the marker a removal of the service left in
// the auth stream, if any, as NATS does markerTTL after the removal: what
// a node whose watch was away longer finds (nothing to deliver).
func dropServiceMarker(t *testing.T, b *Backend, name string) {
	t.Helper()
	if seq := serviceMarker(t, b, name); seq != 0 {
		if err := b.authKV.stream.DeleteMsg(context.Background(), seq); err != nil {
			t.Fatal(err)
		}
	}
}

// TestServiceRemovalLeavesAMarker: a removed service's marker stays in
// the auth stream (for markerTTL), so that a services watch delivers it,
// even one whose consumer is being reset meanwhile; a marker deleted at
// once could be gone before any consumer read it.
func TestServiceRemovalLeavesAMarker(t *testing.T) {
	nodes, _ := openNodes(t, 1)
	st := nodes[0].Services()
	if err := st.CreateService(auth.Service{Name: "news", ClientID: "svc_1", Created: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if err := removeService(st, "news"); err != nil {
		t.Fatal(err)
	}
	if svcs, err := st.Services(); err != nil || len(svcs) != 0 {
		t.Fatalf("Services after the removal: %v %v", svcs, err)
	}
	if serviceMarker(t, nodes[0], "news") == 0 {
		t.Fatal("the removal of service news left no marker in the auth stream: a watch reset meanwhile never hears of it")
	}
}

// openThroughProxy opens node a on the server and node b through a proxy
// to it, whose bytes to node b can be held.
func openThroughProxy(t *testing.T) (a, b *Backend, proxy *heldProxy) {
	t.Helper()
	s := runTestServer(t)
	proxy = newHeldProxy(t, s.Addr().String())
	open := func(id, url string) *Backend {
		b, err := Open(context.Background(), Config{URLs: []string{url}, NodeID: id, Logger: quietLog()})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { b.Close() })
		return b
	}
	return open("a", s.ClientURL()), open("b", "nats://"+proxy.addr()), proxy
}

// TestWatchServicesHearsARemovalAcrossAReset: a service removed while a
// node's services watch is being reset (its consumer lost, or its
// heartbeats missed) is heard of there, also when the removal's marker is
// gone before the watch resumes (after the last message it delivered,
// where it finds nothing): the reset makes the node reload the registry.
// Unheard, the node would accept the removed service's secret and tokens
// until something else changed in the registry or it restarted.
func TestWatchServicesHearsARemovalAcrossAReset(t *testing.T) {
	ctx := context.Background()
	a, b, proxy := openThroughProxy(t)
	if err := a.Services().CreateService(auth.Service{Name: "news", ClientID: "svc_1", Created: time.Now()}); err != nil {
		t.Fatal(err)
	}
	changed := make(chan struct{}, 10)
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if err := b.WatchServices(wctx, func() { changed <- struct{}{} }); err != nil {
		t.Fatal(err)
	}
	stream := a.authKV.stream
	var watch []string
	names := stream.ConsumerNames(ctx)
	for n := range names.Name() {
		watch = append(watch, n)
	}
	if err := names.Err(); err != nil || len(watch) != 1 {
		t.Fatalf("the auth stream's consumers: %v %v, want the watch's alone", watch, err)
	}
	proxy.hold()
	if err := stream.DeleteConsumer(ctx, watch[0]); err != nil {
		t.Fatal(err)
	}
	if err := removeService(a.Services(), "news"); err != nil {
		t.Fatal(err)
	}
	dropServiceMarker(t, a, "news")
	proxy.release()
	select {
	case <-changed:
	case <-time.After(20 * time.Second): // a failure, never a pause
		t.Fatal("node b's watch, reset while service news was removed, never heard of the removal: b keeps accepting its credentials")
	}
}

// TestWatchServicesHearsARemovalAcrossAReconnect: the same with no
// consumer deleted by hand: node b's connection breaks (while the
// server's bytes to it were held) at the moment the service is removed,
// and comes back; its watch resumes after the last message it delivered
// and finds nothing, but the reconnect makes the node reload the
// registry.
func TestWatchServicesHearsARemovalAcrossAReconnect(t *testing.T) {
	ctx := context.Background()
	a, b, proxy := openThroughProxy(t)
	if err := a.Services().CreateService(auth.Service{Name: "news", ClientID: "svc_1", Created: time.Now()}); err != nil {
		t.Fatal(err)
	}
	changed := make(chan struct{}, 10)
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if err := b.WatchServices(wctx, func() { changed <- struct{}{} }); err != nil {
		t.Fatal(err)
	}
	proxy.hold()
	if err := removeService(a.Services(), "news"); err != nil {
		t.Fatal(err)
	}
	dropServiceMarker(t, a, "news")
	proxy.breakConns() // what the server sent meanwhile is lost
	proxy.release()
	select {
	case <-changed:
	case <-time.After(20 * time.Second): // a failure, never a pause
		t.Fatalf("node b reconnected (%d reconnects), but its watch never heard that service news was removed meanwhile: b keeps accepting its credentials", b.nc.Stats().Reconnects)
	}
}

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// heldProxy forwards TCP connections to a server; while held, nothing
// goes from the server to the clients.
type heldProxy struct {
	ln   net.Listener
	gate sync.RWMutex // held (locked) while the server's bytes wait

	mu     sync.Mutex
	closed bool
	held   bool // the gate is locked (under mu)
	conns  []net.Conn
	copies sync.WaitGroup
}

func newHeldProxy(t *testing.T, server string) *heldProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &heldProxy{ln: ln}
	t.Cleanup(p.close)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			srv, err := net.Dial("tcp", server)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			if p.closed {
				p.mu.Unlock()
				c.Close()
				srv.Close()
				return
			}
			p.conns = append(p.conns, c, srv)
			p.copies.Add(2)
			p.mu.Unlock()
			go func() { defer p.copies.Done(); io.Copy(srv, c); srv.Close() }()
			go func() { defer p.copies.Done(); p.toClient(c, srv); c.Close() }()
		}
	}()
	return p
}

// close stops the proxy and its connections (releasing them if a test
// that failed left them held), and waits for its copies.
func (p *heldProxy) close() {
	p.ln.Close()
	p.release()
	p.mu.Lock()
	p.closed = true
	for _, c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.copies.Wait()
}

func (p *heldProxy) addr() string { return p.ln.Addr().String() }

// breakConns closes the connections the proxy has made so far (both
// sides): their clients reconnect, and what the server's side held is
// lost.
func (p *heldProxy) breakConns() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

// hold stops the server's bytes to the clients until release.
func (p *heldProxy) hold() {
	p.gate.Lock()
	p.mu.Lock()
	p.held = true
	p.mu.Unlock()
}

// release lets the server's bytes through again (if held).
func (p *heldProxy) release() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.held {
		p.held = false
		p.gate.Unlock()
	}
}

// toClient copies the server's bytes to the client, waiting while held.
func (p *heldProxy) toClient(c, srv net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := srv.Read(buf)
		if n > 0 {
			p.gate.RLock()
			_, werr := c.Write(buf[:n])
			p.gate.RUnlock()
			if werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}
