package backendtest

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/openmpns/openmpns/server/auth"
	"github.com/openmpns/openmpns/server/backend"
)

var counterTests = []test{
	{"TakeUpToLimit", testTakeUpToLimit},
	{"TakeKeysIndependent", testTakeKeys},
	{"TakeConcurrent", testTakeConcurrent},
}

var serviceTests = []test{
	{"SharedStore", testServices},
}

var statsTests = []test{
	{"Sizes", testStats},
}

var closeTests = []test{
	{"ThenErrClosed", testClosed},
}

func (h *harness) take(t *testing.T, i int, key string, limit int64) bool {
	t.Helper()
	ok, err := h.node(i).Take(h.ctx, key, limit, time.Hour)
	if err != nil {
		t.Fatalf("Take(%s): %v", key, err)
	}
	return ok
}

func testTakeUpToLimit(t *testing.T, h *harness) {
	key := h.name("quota") + "|https://sender.example/a b"
	for i := range 3 {
		if !h.take(t, i%len(h.nodes), key, 3) {
			t.Fatalf("take %d of 3 refused", i+1)
		}
	}
	for i := range h.nodes {
		if h.take(t, i, key, 3) {
			t.Fatalf("node %d: take past the limit allowed", i)
		}
	}
	// A higher limit on the same key counts on from where it is.
	if !h.take(t, 0, key, 4) || h.take(t, 1, key, 4) {
		t.Fatal("limit 4 after 3 takes: want exactly one more")
	}
}

func testTakeKeys(t *testing.T, h *harness) {
	a, b := h.name("quota-a"), h.name("quota-b")
	if !h.take(t, 0, a, 1) || h.take(t, 0, a, 1) {
		t.Fatal("key a: want one take")
	}
	if !h.take(t, 1, b, 1) {
		t.Fatal("key b was refused because of key a")
	}
	if h.take(t, 1, b, 1) {
		t.Fatal("key b: second take allowed")
	}
}

func testTakeConcurrent(t *testing.T, h *harness) {
	key := h.name("quota")
	const limit, per, each = 20, 4, 8
	var taken atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, per*len(h.nodes))
	for i := range h.nodes {
		for range per {
			wg.Go(func() {
				for range each {
					ok, err := h.node(i).Take(h.ctx, key, limit, time.Hour)
					if err != nil {
						errs <- err
						return
					}
					if ok {
						taken.Add(1)
					}
				}
			})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("concurrent Take: %v", err)
	}
	if got := taken.Load(); got != limit {
		t.Fatalf("%d concurrent takes succeeded, want exactly the limit %d", got, limit)
	}
}

// testServices: the nodes share one auth.Store, whose service writes are
// conditional (see auth.Store): a name is created once, and a write with
// a revision another node's write made stale is refused.
func testServices(t *testing.T, h *harness) {
	st0, st1 := h.node(0).Services(), h.node(1).Services()
	if svcs, err := st0.Services(); err != nil || len(svcs) != 0 {
		t.Fatalf("empty store: Services = %v, %v", svcs, err)
	}
	if _, ok, err := st1.ServerKey(); ok || err != nil {
		t.Fatalf("empty store: ServerKey ok %v, %v", ok, err)
	}
	s := auth.Service{Name: "weather", ClientID: "svc_00112233445566778899aabbccddeeff", SecretHash: []byte("hash"),
		Generation: 2, Keys: []auth.Key{{ID: "kid1", Alg: auth.AlgEdDSA, PKIX: []byte{1, 2, 3}}}}
	if err := st0.CreateService(s); err != nil {
		t.Fatal(err)
	}
	if err := st0.CreateService(auth.Service{Name: "news.example", ClientID: "svc_n"}); err != nil {
		t.Fatal(err)
	}
	if err := st1.CreateService(auth.Service{Name: "weather", ClientID: "svc_other"}); !errors.Is(err, auth.ErrServiceExists) {
		t.Fatalf("CreateService of a name another node created: %v, want ErrServiceExists", err)
	}
	_, rev, ok, err := st1.Service("weather")
	if err != nil || !ok {
		t.Fatalf("Service(weather) from the other node: %v %v", ok, err)
	}
	s.Generation = 3
	if err := st1.UpdateService(s, rev); err != nil { // replace, from the other node
		t.Fatal(err)
	}
	s.Generation = 4
	if err := st0.UpdateService(s, rev); !errors.Is(err, auth.ErrRevisionMismatch) {
		t.Fatalf("UpdateService with a revision the other node's write made stale: %v, want ErrRevisionMismatch", err)
	}
	got, err := st0.Services()
	if err != nil || len(got) != 2 {
		t.Fatalf("Services = %+v, %v; want two", got, err)
	}
	byName := map[string]auth.Service{got[0].Name: got[0], got[1].Name: got[1]}
	if w := byName["weather"]; w.Generation != 3 || string(w.SecretHash) != "hash" || len(w.Keys) != 1 || w.Keys[0].PKIX[2] != 3 {
		t.Fatalf("weather = %+v", w)
	}
	_, nrev, _, err := st0.Service("news.example")
	if err != nil {
		t.Fatal(err)
	}
	if err := st1.DeleteService("news.example", nrev); err != nil {
		t.Fatal(err)
	}
	if err := st1.DeleteService("news.example", nrev); !errors.Is(err, auth.ErrNoSuchService) {
		t.Fatalf("DeleteService of a service gone: %v, want ErrNoSuchService", err)
	}
	if _, _, ok, err := st0.Service("news.example"); ok || err != nil {
		t.Fatalf("Service(news.example) after its delete: %v %v", ok, err)
	}
	if got, err := st0.Services(); err != nil || len(got) != 1 || got[0].Name != "weather" {
		t.Fatalf("after delete: %+v, %v", got, err)
	}
	if err := st0.CreateService(auth.Service{Name: "news.example", ClientID: "svc_n2"}); err != nil {
		t.Fatalf("CreateService of a name deleted: %v", err)
	}
	k := auth.ServerKey{ID: "kid", Seed: []byte("0123456789abcdef0123456789abcdef"), Created: time.Unix(5, 0).UTC()}
	if err := st0.PutServerKey(k); err != nil {
		t.Fatal(err)
	}
	if k2, ok, err := st1.ServerKey(); !ok || err != nil || k2.ID != "kid" || string(k2.Seed) != string(k.Seed) || !k2.Created.Equal(k.Created) {
		t.Fatalf("ServerKey = %+v, %v, %v", k2, ok, err)
	}
}

func (h *harness) stats(t *testing.T, i int) backend.Stats {
	t.Helper()
	s, err := h.node(i).Stats(h.ctx)
	if err != nil {
		t.Fatalf("Stats: %v", err)
	}
	return s
}

func testStats(t *testing.T, h *harness) {
	if s := h.stats(t, 0); s != (backend.Stats{}) {
		t.Fatalf("Stats of an empty service = %+v", s)
	}
	a, b := h.device(t, 0), h.device(t, 1)
	ca := h.channel(t, 0, a.ID, "app")
	h.channel(t, 1, a.ID, "app.two")
	cb := h.channel(t, 1, b.ID, "app")
	h.appendOK(t, 0, note(ca, "toast", ""), 0)
	h.appendOK(t, 1, note(ca, "tile", ""), 0)
	h.appendOK(t, 1, note(ca, "tile", ""), 0) // replaces the previous one
	rm := h.appendOK(t, 0, note(cb, "raw", ""), 0)
	h.appendOK(t, 0, note(cb, "raw", ""), 0)
	if err := h.node(1).Remove(h.ctx, b.ID, []uint64{rm.Seq}); err != nil {
		t.Fatal(err)
	}
	want := backend.Stats{Devices: 2, Channels: 3, Queued: 3}
	var full int64
	for i := range h.nodes {
		s := h.stats(t, i)
		if s.QueuedBytes < 3*int64(len(note(ca, "raw", "").Payload)) {
			t.Fatalf("node %d: QueuedBytes = %d with 3 notifications queued", i, s.QueuedBytes)
		}
		full = s.QueuedBytes
		if s.QueuedBytes = 0; s != want {
			t.Fatalf("node %d: Stats = %+v, want %+v", i, s, want)
		}
	}
	if err := h.node(0).DeleteChannel(h.ctx, ca); err != nil {
		t.Fatal(err)
	}
	want = backend.Stats{Devices: 2, Channels: 2, Queued: 1}
	for i := range h.nodes {
		s := h.stats(t, i)
		if s.QueuedBytes <= 0 || s.QueuedBytes >= full {
			t.Fatalf("node %d: after DeleteChannel, QueuedBytes = %d, want less than %d and more than 0", i, s.QueuedBytes, full)
		}
		if s.QueuedBytes = 0; s != want {
			t.Fatalf("node %d: after DeleteChannel, Stats = %+v, want %+v", i, s, want)
		}
	}
}

func testClosed(t *testing.T, h *harness) {
	d := h.device(t, 0)
	c := h.channel(t, 0, d.ID, "app")
	last := h.nodes[len(h.nodes)-1]
	if err := last.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if _, err := last.Device(h.ctx, d.ID); !errors.Is(err, backend.ErrClosed) {
		t.Fatalf("Device after Close: %v, want ErrClosed", err)
	}
	if _, err := last.Append(h.ctx, note(c, "toast", ""), 0); !errors.Is(err, backend.ErrClosed) {
		t.Fatalf("Append after Close: %v, want ErrClosed", err)
	}
	if _, err := last.Claim(h.ctx, d.ID, now()); !errors.Is(err, backend.ErrClosed) {
		t.Fatalf("Claim after Close: %v, want ErrClosed", err)
	}
	if len(h.nodes) > 1 {
		// The other nodes go on.
		h.appendOK(t, 0, note(c, "toast", ""), 0)
	}
}
