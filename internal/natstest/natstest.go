// Package natstest starts NATS servers with JetStream, embedded in the test
// process on loopback ports, as nats-server's own tests run them: one
// server, or a cluster whose servers a test may stop and start again. Tests
// of the NATS backend and the black-box cluster tests (test/) use it.
package natstest

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Embedded NATS servers with JetStream, on loopback ports, in the test
// process (as nats-server's own tests run them).

// FreePort returns a loopback port nobody listens on now.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// StartServer starts a server with opts and waits until it takes clients.
func StartServer(t testing.TB, opts *server.Options) *server.Server {
	t.Helper()
	s, err := startServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func startServer(opts *server.Options) (*server.Server, error) {
	s, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("nats-server: %w", err)
	}
	go s.Start()
	if !s.ReadyForConnections(60 * time.Second) {
		s.Shutdown()
		return nil, fmt.Errorf("nats-server %s did not start (its ports %d, %d taken meanwhile?)", opts.ServerName, opts.Port, opts.Cluster.Port)
	}
	return s, nil
}

// RunServer starts one JetStream server and stops it at the end of t.
func RunServer(t testing.TB) *server.Server {
	t.Helper()
	s := StartServer(t, &server.Options{
		ServerName: "single", Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true,
		JetStream: true, StoreDir: t.TempDir(),
	})
	t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	return s
}

// Cluster is a JetStream cluster on loopback ports whose servers a test
// may stop and start again (same ports, same store directories).
type Cluster struct {
	t       testing.TB
	opts    []*server.Options
	servers []*server.Server
}

// RunCluster starts n servers with JetStream as one cluster and waits for
// its meta leader; they stop at the end of t.
func RunCluster(t testing.TB, n int) *Cluster {
	t.Helper()
	// A free port may be taken by another process before the server
	// listens on it (fleets on this machine use thousands): start again
	// on other ports.
	var err error
	for range 3 {
		var c *Cluster
		if c, err = runCluster(t, n); err == nil {
			return c
		}
		t.Logf("natstest: %v; starting the cluster again on other ports", err)
	}
	t.Fatal(err)
	return nil
}

func runCluster(t testing.TB, n int) (*Cluster, error) {
	c := &Cluster{t: t}
	var routes []string
	ports := make([]int, n)
	for i := range n {
		ports[i] = FreePort(t)
		routes = append(routes, fmt.Sprintf("nats://127.0.0.1:%d", ports[i]))
	}
	for i := range n {
		c.opts = append(c.opts, &server.Options{
			ServerName: fmt.Sprintf("s%d", i), Host: "127.0.0.1", Port: FreePort(t), NoLog: true, NoSigs: true,
			JetStream: true, StoreDir: t.TempDir(),
			Cluster: server.ClusterOpts{Name: "test", Host: "127.0.0.1", Port: ports[i]},
			Routes:  server.RoutesFromStr(strings.Join(routes, ",")),
		})
	}
	shutdown := func() {
		for _, s := range c.servers {
			if s != nil {
				s.Shutdown()
				s.WaitForShutdown()
			}
		}
	}
	for i := range n {
		s, err := startServer(c.opts[i])
		if err != nil {
			shutdown()
			return nil, err
		}
		c.servers = append(c.servers, s)
	}
	t.Cleanup(shutdown)
	c.WaitJetStream()
	return c, nil
}

// URL is the client URL of server i.
func (c *Cluster) URL(i int) string { return fmt.Sprintf("nats://127.0.0.1:%d", c.opts[i].Port) }

// Stop shuts server i down.
func (c *Cluster) Stop(i int) {
	c.servers[i].Shutdown()
	c.servers[i].WaitForShutdown()
	c.servers[i] = nil
}

// Start starts server i again.
func (c *Cluster) Start(i int) { c.servers[i] = StartServer(c.t, c.opts[i]) }

// WaitJetStream waits (bounded) until the JetStream meta group has a
// leader every running server follows. There is no event for it: it polls.
func (c *Cluster) WaitJetStream() {
	c.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for range tick.C {
		leader, current := false, true
		for _, s := range c.servers {
			if s == nil {
				continue
			}
			leader = leader || s.JetStreamIsLeader()
			current = current && s.JetStreamIsCurrent()
		}
		if leader && current {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatal("the JetStream cluster has no meta leader after 20s")
		}
	}
}

// DeleteStreams removes every stream of prefix (the service's queue and
// buckets), so that a long test run does not pile up raft groups.
func DeleteStreams(t testing.TB, url, prefix string) {
	nc, err := nats.Connect(url)
	if err != nil {
		t.Logf("cleanup: %v", err)
		return
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	names := js.StreamNames(ctx)
	var del []string
	for name := range names.Name() {
		if strings.HasPrefix(name, prefix+"_") || strings.HasPrefix(name, "KV_"+prefix+"_") {
			del = append(del, name)
		}
	}
	for _, name := range del {
		if err := js.DeleteStream(ctx, name); err != nil {
			t.Logf("cleanup: delete stream %s: %v", name, err)
		}
	}
}

// URLs are the client URLs of every server, comma-separated, as a client
// (or `openmpns serve --nats`) takes them.
func (c *Cluster) URLs() string {
	urls := make([]string, len(c.opts))
	for i := range c.opts {
		urls[i] = c.URL(i)
	}
	return strings.Join(urls, ",")
}
