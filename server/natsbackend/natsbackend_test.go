package natsbackend_test

import (
	"context"
	"errors"
	"fmt"
	"github.com/openmpns/openmpns/internal/natstest"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/openmpns/openmpns/server/backend"
	"github.com/openmpns/openmpns/server/backend/backendtest"
	"github.com/openmpns/openmpns/server/natsbackend"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

var prefixes atomic.Int64

// newPrefix names a fresh service on a shared NATS.
func newPrefix() string { return fmt.Sprintf("t%d", prefixes.Add(1)) }

func open(t *testing.T, cfg natsbackend.Config) *natsbackend.Backend {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = quiet
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b, err := natsbackend.Open(ctx, cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// twoNodes opens two nodes of a fresh service, node i connected to urls[i].
func twoNodes(urls []string, replicas int) backendtest.Open {
	return func(t *testing.T) []backend.Backend {
		prefix := newPrefix()
		t.Cleanup(func() { natstest.DeleteStreams(t, urls[0], prefix) })
		var nodes []backend.Backend
		for i, u := range urls {
			nodes = append(nodes, open(t, natsbackend.Config{URLs: []string{u}, Prefix: prefix,
				Replicas: replicas, NodeID: fmt.Sprintf("node%d", i), RequestTimeout: 10 * time.Second}))
		}
		return nodes
	}
}

func TestConformanceSingleServer(t *testing.T) {
	s := natstest.RunServer(t)
	backendtest.Run(t, twoNodes([]string{s.ClientURL(), s.ClientURL()}, 1))
}

func TestConformanceCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("a 3-server cluster: not in -short")
	}
	c := natstest.RunCluster(t, 3)
	urls := []string{c.URL(0), c.URL(1)}
	t.Run("Suite", func(t *testing.T) { backendtest.Run(t, twoNodes(urls, 3)) })
	t.Run("WriteRightAfterAck", func(t *testing.T) { testWriteRightAfterAck(t, twoNodes(urls, 3)(t)) })
}

// testWriteRightAfterAck writes one record from alternating nodes, each
// write checked against the revision the previous one returned. A
// replicated stream acknowledges a write before it clears it from its
// in-flight checks, and refuses a check on the key meanwhile (10164): that
// must not surface as a conflict.
func testWriteRightAfterAck(t *testing.T, nodes []backend.Backend) {
	ctx := context.Background()
	for i := range 50 {
		d, err := nodes[0].PutDevice(ctx, backend.Device{ID: fmt.Sprint("d", i)})
		if err != nil {
			t.Fatal(err)
		}
		for j := range 6 {
			d.Power = fmt.Sprint(j)
			if d, err = nodes[j/3].PutDevice(ctx, d); err != nil {
				t.Fatalf("device %d, update %d: %v", i, j, err)
			}
		}
		c, err := nodes[1].Claim(ctx, d.ID, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if err := nodes[1].Release(ctx, d.ID, c, time.Now()); err != nil {
			t.Fatal(err)
		}
		if p, _, err := nodes[0].Presence(ctx, d.ID); err != nil || p.Connected {
			t.Fatalf("device %d: released right after its claim, Presence = %+v, %v", i, p, err)
		}
	}
}

func TestIncompatibleConfigurationRefused(t *testing.T) {
	s := natstest.RunServer(t)
	prefix := newPrefix()
	open(t, natsbackend.Config{URLs: []string{s.ClientURL()}, Prefix: prefix, QueueTTL: time.Hour})
	for _, tc := range []struct {
		name string
		cfg  natsbackend.Config
		want []string
	}{
		{"QueueTTL", natsbackend.Config{QueueTTL: 2 * time.Hour}, []string{prefix + "_queue", "max age (queue TTL) is 1h0m0s there, 2h0m0s here", "QueueTTL"}},
		{"Replicas", natsbackend.Config{Replicas: 3, QueueTTL: time.Hour}, []string{prefix + "_queue", "replicas is 1 there, 3 here", "Replicas"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg
			cfg.URLs, cfg.Prefix, cfg.Logger = []string{s.ClientURL()}, prefix, quiet
			b, err := natsbackend.Open(context.Background(), cfg)
			if err == nil {
				b.Close()
				t.Fatal("Open with an incompatible configuration succeeded")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
	// The default replicas follow what exists, and the same settings open.
	open(t, natsbackend.Config{URLs: []string{s.ClientURL()}, Prefix: prefix, QueueTTL: time.Hour})
}

func TestCannotReachNATS(t *testing.T) {
	url := fmt.Sprintf("nats://127.0.0.1:%d", natstest.FreePort(t))
	start := time.Now()
	_, err := natsbackend.Open(context.Background(), natsbackend.Config{URLs: []string{url}, Logger: quiet, RequestTimeout: time.Second})
	if err == nil {
		t.Fatal("Open without NATS succeeded")
	}
	if !errors.Is(err, backend.ErrUnavailable) || !strings.Contains(err.Error(), "cannot reach NATS at "+url) {
		t.Fatalf("Open: %v; want ErrUnavailable saying it cannot reach NATS at %s", err, url)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("Open took %v to fail", d)
	}
}

func TestBadConfig(t *testing.T) {
	_, err := natsbackend.Open(context.Background(), natsbackend.Config{Prefix: "a.b", Replicas: 7, QueueTTL: time.Millisecond})
	if err == nil {
		t.Fatal("Open with a bad config succeeded")
	}
	for _, w := range []string{`prefix "a.b"`, "replicas 7", "queue TTL 1ms"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not say %q", err, w)
		}
	}
}

// TestQuorumLost stops 2 of 3 servers: Append fails with ErrUnavailable
// within the request timeout, and works again once they are back.
func TestQuorumLost(t *testing.T) {
	if testing.Short() {
		t.Skip("a 3-server cluster: not in -short")
	}
	c := natstest.RunCluster(t, 3)
	const timeout = time.Second
	b := open(t, natsbackend.Config{URLs: []string{c.URL(0)}, Prefix: newPrefix(), Replicas: 3, RequestTimeout: timeout})
	ctx := context.Background()
	d, err := b.PutDevice(ctx, backend.Device{ID: "d1", CreatedAt: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	ch, err := b.PutChannel(ctx, backend.Channel{Token: "tok1", DeviceID: d.ID, App: "app", CreatedAt: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	note := func() *backend.Notification {
		return &backend.Notification{DeviceID: d.ID, Channel: ch.Token, App: ch.App, Kind: "toast",
			Payload: []byte("x"), AcceptedAt: time.Now(), ExpiresAt: time.Now().Add(time.Hour)}
	}
	if _, err := b.Append(ctx, note(), 10); err != nil {
		t.Fatalf("Append with a quorum: %v", err)
	}
	c.Stop(1)
	c.Stop(2)
	start := time.Now()
	_, err = b.Append(ctx, note(), 10)
	took := time.Since(start)
	if !errors.Is(err, backend.ErrUnavailable) {
		t.Fatalf("Append without a quorum: %v; want ErrUnavailable", err)
	}
	if took > 2*timeout {
		t.Fatalf("Append without a quorum took %v to fail; the request timeout is %v", took, timeout)
	}
	t.Logf("without a quorum, Append failed after %v: %v", took.Round(time.Millisecond), err)

	c.Start(1)
	c.Start(2)
	// The streams elect leaders again: Append works within a bounded time
	// (each attempt is bounded by the request timeout).
	deadline := time.Now().Add(30 * time.Second)
	var last error
	for attempts := 1; ; attempts++ {
		_, last = b.Append(ctx, note(), 10)
		if last == nil {
			t.Logf("with the quorum back, Append worked after %d attempts", attempts)
			break
		}
		if !errors.Is(last, backend.ErrUnavailable) {
			t.Fatalf("Append while the cluster recovers: %v; want nil or ErrUnavailable", last)
		}
		if time.Now().After(deadline) {
			t.Fatalf("Append still fails 30s after the servers came back: %v", last)
		}
	}
	ns, err := b.Pending(ctx, d.ID, time.Now())
	// An append that timed out may have been stored all the same.
	if err != nil || len(ns) < 2 {
		t.Fatalf("Pending = %d notifications, %v; want at least the 2 appended with a quorum", len(ns), err)
	}
}

// lockedBuffer is a log destination for a logger used from several
// goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// Close, or an Open that fails, ends the connection without a warning that
// it was lost: every openmpns service or identity command with --nats,
// every node's shutdown and a node refused for its configuration ended
// with "natsbackend: disconnected from NATS" err=<nil>.
func TestCloseIsNotADisconnect(t *testing.T) {
	s := natstest.RunServer(t)
	var logged lockedBuffer
	prefix := newPrefix()
	t.Cleanup(func() { natstest.DeleteStreams(t, s.ClientURL(), prefix) })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cfg := natsbackend.Config{URLs: []string{s.ClientURL()}, Prefix: prefix, QueueTTL: time.Hour,
		Logger: slog.New(slog.NewTextHandler(&logged, nil))}
	b, err := natsbackend.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	cfg.QueueTTL = 2 * time.Hour // not what the streams have: refused
	if _, err := natsbackend.Open(ctx, cfg); err == nil {
		t.Fatal("Open with another queue TTL than the stream's: no error")
	}
	if strings.Contains(logged.String(), "disconnected") {
		t.Errorf("Close, or a failed Open, logged a lost connection:\n%s", logged.String())
	}
}
