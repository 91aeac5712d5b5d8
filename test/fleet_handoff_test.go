package test

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/openmpns/openmpns/device"
	"github.com/openmpns/openmpns/device/fleet"
	"github.com/openmpns/openmpns/server"
)

// handoffRecorder is a cloud service that takes every handoff and keeps
// what each one carried.
type handoffRecorder struct {
	mu   sync.Mutex
	recs []device.HandoffRecord
}

func (h *handoffRecorder) start(t *testing.T) string {
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec, ok := readHandoff(w, r)
		if !ok {
			return
		}
		h.mu.Lock()
		h.recs = append(h.recs, rec)
		h.mu.Unlock()
		w.WriteHeader(http.StatusCreated)
	}))
	t.Cleanup(hs.Close)
	return hs.URL
}

// readHandoff reads the handoff record r carries, to the end of the body
// (the server notices a client gone only then); a body that is not one is
// answered 400, and ok is false.
func readHandoff(w http.ResponseWriter, r *http.Request) (rec device.HandoffRecord, ok bool) {
	body, err := io.ReadAll(r.Body)
	if err == nil {
		err = json.Unmarshal(body, &rec)
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return rec, false
	}
	return rec, true
}

// take returns the records so far and forgets them.
func (h *handoffRecorder) take() []device.HandoffRecord {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := h.recs
	h.recs = nil
	return out
}

// runHandoffFleet starts a fleet handing off to url, waits for its n
// handoffs and closes it.
func runHandoffFleet(t *testing.T, srv *server.Server, url, state string, devices int, secrets map[string]string) {
	t.Helper()
	f, err := fleet.Start(context.Background(), fleet.Config{
		Servers: []string{srv.URL()}, Devices: devices, Apps: []string{"com.example.news", "com.example.mail"},
		Handoff: url, HandoffSecrets: secrets, StateDir: state, Logger: quietLogger(),
		MinBackoff: 10 * time.Millisecond, MaxBackoff: 200 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ctx := waitCtx(t)
	if err := f.Wait(ctx, func(fleet.Stats) bool { return f.Report().Handoffs == int64(devices*2) }); err != nil {
		t.Fatalf("handoffs: %v", err)
	}
	if r := f.Report(); r.HandoffFailures != 0 {
		t.Fatalf("%d handoffs failed", r.HandoffFailures)
	}
}

// TestFleetHandoffsCarrySecretsAndStableDeviceKeys: every fleet device
// hands off with its app's secret and a device key of its own for each
// app; with a state directory the key is kept beside the device's state
// (0600) and the same when the fleet runs again, as the emulator's phones
// do; without one the keys are still one per device and app.
func TestFleetHandoffsCarrySecretsAndStableDeviceKeys(t *testing.T) {
	srv := startServer(t, server.Config{})
	var rec handoffRecorder
	url := rec.start(t)
	secrets := map[string]string{"com.example.news": "news-secret-0123456789"}
	check := func(recs []device.HandoffRecord, want int) map[string]string {
		t.Helper()
		if len(recs) != want {
			t.Fatalf("%d handoffs, want %d", len(recs), want)
		}
		keys := map[string]string{} // device/app → device key
		seen := map[string]bool{}
		for _, r := range recs {
			if r.Secret != secrets[r.App] {
				t.Errorf("%s on %s: secret %q, want %q", r.App, r.DeviceID, r.Secret, secrets[r.App])
			}
			if len(r.DeviceKey) != 64 || seen[r.DeviceKey] {
				t.Errorf("%s on %s: device key %q (empty, malformed or another's)", r.App, r.DeviceID, r.DeviceKey)
			}
			seen[r.DeviceKey] = true
			keys[r.DeviceID+"/"+r.App] = r.DeviceKey
		}
		return keys
	}

	state := t.TempDir()
	runHandoffFleet(t, srv, url, state, 3, secrets)
	first := check(rec.take(), 6)
	st, err := os.Stat(filepath.Join(state, "000001", device.HandoffKeyFile))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("device 1's handoff key: %v, %v", st, err)
	}
	// The same devices again, as after a restart of the fleet.
	runHandoffFleet(t, srv, url, state, 3, secrets)
	again := check(rec.take(), 6)
	for k, v := range first {
		if again[k] != v {
			t.Errorf("%s: device key %q, then %q", k, v, again[k])
		}
	}

	runHandoffFleet(t, srv, url, "", 3, secrets)
	check(rec.take(), 6)
}

// Handoffs the cloud service has not answered when the report is made are
// counted as unfinished: with a slow backend the report said "handoffs
// (failed) 0 (0)" for a fleet whose every handoff was on its way, as if
// none had been tried.
func TestFleetReportsUnfinishedHandoffs(t *testing.T) {
	srv := startServer(t, server.Config{})
	arrived, release := make(chan struct{}, 8), make(chan struct{})
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		select {
		case <-release:
		case <-r.Context().Done():
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	defer hs.Close()
	defer close(release)
	f, err := fleet.Start(context.Background(), fleet.Config{Servers: []string{srv.URL()}, Devices: 2, Apps: []string{"a"},
		Handoff: hs.URL, Logger: quietLogger(), MinBackoff: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ctx := waitCtx(t)
	for range 2 {
		select {
		case <-arrived:
		case <-ctx.Done():
			t.Fatalf("the handoffs did not arrive: %v", f.Stats())
		}
	}
	b, err := json.Marshal(f.Report())
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Handoffs   int64 `json:"handoffs"`
		Failures   int64 `json:"handoff_failures"`
		Unfinished int64 `json:"handoffs_unfinished"`
	}
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if got.Handoffs != 0 || got.Failures != 0 || got.Unfinished != 2 {
		t.Fatalf("with both handoffs waiting for the backend: %+v, want 2 unfinished", got)
	}
}

// holdingBackend is a cloud service that holds every handoff until
// released, and counts the handoffs it holds at once.
type holdingBackend struct {
	url            string
	arrived        chan device.HandoffRecord
	release        chan struct{}
	mu             sync.Mutex
	inFlight, most int
	byURI          map[string]int
	releaseOnce    sync.Once
}

func startHoldingBackend(t *testing.T, capacity int) *holdingBackend {
	b := &holdingBackend{arrived: make(chan device.HandoffRecord, capacity), release: make(chan struct{}), byURI: map[string]int{}}
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec, ok := readHandoff(w, r)
		if !ok {
			return
		}
		b.mu.Lock()
		b.inFlight++
		b.most = max(b.most, b.inFlight)
		b.byURI[rec.URI]++
		b.mu.Unlock()
		select {
		case b.arrived <- rec:
		default: // a retry after the client's timeout: never blocks
		}
		select {
		case <-b.release:
		case <-r.Context().Done():
		}
		b.mu.Lock()
		b.inFlight--
		b.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	b.url = hs.URL
	t.Cleanup(hs.Close)
	t.Cleanup(b.releaseAll) // before hs.Close: the handlers end
	return b
}

func (b *holdingBackend) releaseAll() { b.releaseOnce.Do(func() { close(b.release) }) }

// A slow backend does not get more than HandoffConcurrency handoffs at
// once: the others wait in a queue, which the stats and the report count,
// and are all sent once the backend answers. Every handoff went out at
// once, each holding a connection until the backend answered, so a large
// fleet's could reach the process's limit of open files.
func TestFleetBoundsHandoffsInFlight(t *testing.T) {
	const devices, apps, limit = 10, 2, 3
	srv := startServer(t, server.Config{})
	be := startHoldingBackend(t, devices*apps)
	f, err := fleet.Start(context.Background(), fleet.Config{Servers: []string{srv.URL()}, Devices: devices, Apps: []string{"a", "b"},
		Handoff: be.url, HandoffConcurrency: limit, Logger: quietLogger(), MinBackoff: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ctx := waitCtx(t)
	// Every channel is registered and handed off: limit of them in
	// flight, held by the backend, the rest queued.
	if err := f.Wait(ctx, func(s fleet.Stats) bool {
		return s.Registered == devices && s.HandoffsInFlight+s.HandoffsQueued == devices*apps && s.HandoffsInFlight >= limit
	}); err != nil {
		t.Fatalf("handoffs: %v (%+v)", err, f.Stats())
	}
	if s := f.Stats(); s.HandoffsInFlight != limit || s.HandoffsQueued != devices*apps-limit {
		t.Fatalf("with the backend holding them: %d handoffs in flight, %d queued; want %d, %d",
			s.HandoffsInFlight, s.HandoffsQueued, limit, devices*apps-limit)
	}
	for range limit {
		select {
		case <-be.arrived:
		case <-ctx.Done():
			t.Fatal("the first handoffs did not arrive")
		}
	}
	r := f.Report()
	if r.Handoffs != 0 || r.HandoffFailures != 0 || r.HandoffsUnfinished != devices*apps || r.HandoffsQueued != devices*apps-limit {
		t.Fatalf("with %d handoffs held: done %d, failed %d, unfinished %d, queued %d; want 0, 0, %d, %d",
			limit, r.Handoffs, r.HandoffFailures, r.HandoffsUnfinished, r.HandoffsQueued, devices*apps, devices*apps-limit)
	}
	be.releaseAll()
	if err := f.Wait(ctx, func(s fleet.Stats) bool { return s.HandoffsDone == devices*apps }); err != nil {
		t.Fatalf("after the release: %v (%+v)", err, f.Stats())
	}
	r = f.Report()
	if r.Handoffs != devices*apps || r.HandoffFailures != 0 || r.HandoffsUnfinished != 0 || r.HandoffsQueued != 0 {
		t.Fatalf("all answered: done %d, failed %d, unfinished %d, queued %d; want %d, 0, 0, 0",
			r.Handoffs, r.HandoffFailures, r.HandoffsUnfinished, r.HandoffsQueued, devices*apps)
	}
	if s := f.Stats(); s.HandoffsInFlight != 0 || s.HandoffsQueued != 0 {
		t.Fatalf("stats after: %+v", s)
	}
	be.mu.Lock()
	defer be.mu.Unlock()
	if be.most > limit {
		t.Errorf("the backend held %d handoffs at once, want at most %d", be.most, limit)
	}
	if len(be.byURI) != devices*apps {
		t.Errorf("%d Channel URIs handed off, want %d: %v", len(be.byURI), devices*apps, be.byURI)
	}
	for uri, n := range be.byURI {
		if n != 1 {
			t.Errorf("%s handed off %d times", uri, n)
		}
	}
}

// steppedHandoff is a handoff a steppedBackend holds until the test
// answers it with a status on reply.
type steppedHandoff struct {
	rec   device.HandoffRecord
	reply chan int
}

// steppedBackend is a cloud service that passes every handoff to the test
// and answers it as the test says, keeping the URIs in the order they
// arrived and in the order it took them (a 2xx).
type steppedBackend struct {
	url     string
	arrived chan steppedHandoff
	mu      sync.Mutex
	order   []string // URIs, as they arrived
	took    []string // URIs, as they were taken
}

func startSteppedBackend(t *testing.T) *steppedBackend {
	b := &steppedBackend{arrived: make(chan steppedHandoff)}
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec, ok := readHandoff(w, r)
		if !ok {
			return
		}
		b.mu.Lock()
		b.order = append(b.order, rec.URI)
		b.mu.Unlock()
		h := steppedHandoff{rec: rec, reply: make(chan int)}
		select {
		case b.arrived <- h:
		case <-r.Context().Done():
			return
		}
		var status int
		select {
		case status = <-h.reply:
		case <-r.Context().Done():
			return
		}
		if status/100 == 2 {
			// Taken before it is answered: the device hears of it after.
			b.mu.Lock()
			b.took = append(b.took, rec.URI)
			b.mu.Unlock()
		}
		w.WriteHeader(status)
	}))
	b.url = hs.URL
	t.Cleanup(hs.Close)
	return b
}

// next returns the next handoff to arrive.
func (b *steppedBackend) next(t *testing.T, ctx context.Context, f *fleet.Fleet) steppedHandoff {
	t.Helper()
	select {
	case h := <-b.arrived:
		return h
	case <-ctx.Done():
		t.Fatalf("no handoff arrived: %+v", f.Stats())
		return steppedHandoff{}
	}
}

// A device hands off its current Channel URI only: when a channel's URI
// changes while the old one's handoff is queued, the old one is not sent;
// while it is being tried (held by the backend, or answered 503 and about
// to be tried again), it is not tried again, and the new URI goes out
// only once the old one's try has ended, so the backend never takes an
// older URI of a channel after a newer one. The handoffs not sent (again)
// count as superseded, not failed nor unfinished. Here the server forgets
// the devices (a new data directory), which register again with new URIs
// while one handoff at a time is allowed and the first is held; the fleet
// sent the old URIs after the new ones were known, oldest first, so the
// backend got device 1's old URI after device 0's new one, and tried the
// held one again after its 503.
func TestFleetHandsOffTheCurrentURIOnly(t *testing.T) {
	for _, tc := range []struct {
		name string
		// answer is the backend's answer to the held try of the first
		// channel's old URI, after the URIs changed.
		answer                   int
		retried                  bool // a 503 was answered to its first try
		done, superseded, oldURI int  // handoffs done and superseded, tries of the held URI
	}{
		{name: "held try taken", answer: http.StatusNoContent, done: 3, superseded: 1, oldURI: 1},
		{name: "retry refused with 503", answer: http.StatusServiceUnavailable, retried: true, done: 2, superseded: 2, oldURI: 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const devices = 2
			srv := startServer(t, server.Config{})
			be := startSteppedBackend(t)
			var mu sync.Mutex
			slotOf := map[string]int{}  // URI → device index
			current := map[int]string{} // device index → its current URI
			changed := make(chan fleet.Channel, devices)
			f, err := fleet.Start(context.Background(), fleet.Config{Servers: []string{srv.URL()}, Devices: devices, Apps: []string{"a"},
				Handoff: be.url, HandoffConcurrency: 1, Logger: quietLogger(), MinBackoff: 10 * time.Millisecond, MaxBackoff: 100 * time.Millisecond,
				OnChannel: func(c fleet.Channel) {
					mu.Lock()
					slotOf[c.URI], current[c.Device] = c.Device, c.URI
					mu.Unlock()
					if c.Replaces != "" {
						changed <- c
					}
				}})
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			ctx := waitCtx(t)
			held := be.next(t, ctx, f)
			mu.Lock()
			x, old := slotOf[held.rec.URI], held.rec.URI
			mu.Unlock()
			if tc.retried {
				held.reply <- http.StatusServiceUnavailable
				if held = be.next(t, ctx, f); held.rec.URI != old {
					t.Fatalf("after a 503 to %s, %s arrived", old, held.rec.URI)
				}
			}
			if err := f.WaitRegistered(ctx); err != nil {
				t.Fatal(err)
			}
			// Both channels get new URIs while the first handoff is held.
			srv.Close()
			startServer(t, server.Config{Listen: srv.Addr()})
			for range devices {
				select {
				case <-changed:
				case <-ctx.Done():
					t.Fatalf("the URIs did not change: %+v", f.Stats())
				}
			}
			// The other device's old URI, queued, was superseded; the new
			// URIs wait, the first device's behind its held handoff.
			if err := f.Wait(ctx, func(s fleet.Stats) bool {
				return s.HandoffsQueued+s.HandoffsSuperseded == 3 && s.HandoffsInFlight == 1
			}); err != nil {
				t.Fatalf("after the change: %v (%+v)", err, f.Stats())
			}
			if s := f.Stats(); s.HandoffsSuperseded != 1 || s.HandoffsQueued != 2 {
				t.Fatalf("after the change: %d handoffs superseded, %d queued; want 1, 2 (%+v)", s.HandoffsSuperseded, s.HandoffsQueued, s)
			}
			held.reply <- tc.answer
			// The first device's new URI, then the other's.
			for _, d := range []int{x, 1 - x} {
				h := be.next(t, ctx, f)
				mu.Lock()
				want := current[d]
				mu.Unlock()
				if h.rec.URI != want {
					t.Fatalf("device %d's current URI %s should come next; %s (device %d's) did", d, want, h.rec.URI, slotOf[h.rec.URI])
				}
				h.reply <- http.StatusCreated
			}
			if err := f.Wait(ctx, func(s fleet.Stats) bool { return s.HandoffsDone == int64(tc.done) }); err != nil {
				t.Fatalf("%v (%+v)", err, f.Stats())
			}
			r := f.Report()
			if r.Handoffs != int64(tc.done) || r.HandoffFailures != 0 || r.HandoffsSuperseded != int64(tc.superseded) || r.HandoffsUnfinished != 0 || r.HandoffsQueued != 0 {
				t.Fatalf("done %d, failed %d, superseded %d, unfinished %d, queued %d; want %d, 0, %d, 0, 0",
					r.Handoffs, r.HandoffFailures, r.HandoffsSuperseded, r.HandoffsUnfinished, r.HandoffsQueued, tc.done, tc.superseded)
			}
			if s := f.Stats(); s.HandoffsSuperseded != int64(tc.superseded) {
				t.Fatalf("stats: %d superseded, want %d", s.HandoffsSuperseded, tc.superseded)
			}
			mu.Lock()
			defer mu.Unlock()
			be.mu.Lock()
			defer be.mu.Unlock()
			tries := 0
			for _, u := range be.order {
				if u == old {
					tries++
				}
			}
			if tries != tc.oldURI || len(be.order) != tc.oldURI+devices {
				t.Errorf("the backend got %v: %d tries of the held %s, want %d, and each new URI once", be.order, tries, old, tc.oldURI)
			}
			// What the backend holds for each channel is its current URI.
			latest := map[int]string{}
			for _, u := range be.took {
				latest[slotOf[u]] = u
			}
			for d := range devices {
				if latest[d] != current[d] {
					t.Errorf("device %d: the backend took %q last, its URI is %q (took %v)", d, latest[d], current[d], be.took)
				}
			}
		})
	}
}

// The handoffs of a fleet share one HTTP client whose idle connections
// the next handoffs reuse: 200 handoffs, 8 at a time, open at most 16
// connections to the backend (counted as the backend's listener accepts
// them), and Close closes them. Each handoff had a client of its own on
// Go's default transport, which keeps 2 idle connections a host: the
// others were closed after one use: the 200 handoffs opened 60, 78 and
// 81 connections in three runs (9 now), leaving as many sockets in
// TIME_WAIT, and 2 stayed open after Close.
func TestFleetHandoffsReuseConnections(t *testing.T) {
	const devices, apps, limit = 100, 2, 8
	srv := startServer(t, server.Config{})
	var opened, closed atomic.Int64
	closing := make(chan struct{}, 1)
	hs := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, ok := readHandoff(w, r); !ok {
			return
		}
		w.WriteHeader(http.StatusCreated)
	}))
	hs.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		switch s {
		case http.StateNew:
			opened.Add(1)
		case http.StateClosed, http.StateHijacked:
			closed.Add(1)
			select {
			case closing <- struct{}{}:
			default:
			}
		}
	}
	hs.Start()
	defer hs.Close()
	f, err := fleet.Start(context.Background(), fleet.Config{Servers: []string{srv.URL()}, Devices: devices, Apps: []string{"a", "b"},
		Handoff: hs.URL, HandoffConcurrency: limit, Logger: quietLogger(), MinBackoff: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	closeFleet := sync.OnceFunc(func() { f.Close() })
	defer closeFleet()
	ctx := waitCtx(t)
	if err := f.Wait(ctx, func(s fleet.Stats) bool { return s.HandoffsDone == devices*apps }); err != nil {
		t.Fatalf("handoffs: %v (%+v)", err, f.Stats())
	}
	n := opened.Load()
	t.Logf("%d handoffs, %d at a time, opened %d connections", devices*apps, limit, n)
	if n > 2*limit {
		t.Errorf("%d handoffs, %d at a time, opened %d connections to the backend; want at most %d", devices*apps, limit, n, 2*limit)
	}
	// Close closes the idle connections: the backend sees each end.
	closeFleet()
	for closed.Load() < opened.Load() {
		select {
		case <-closing:
		case <-ctx.Done():
			t.Fatalf("after Close, %d of the %d connections are still open", opened.Load()-closed.Load(), opened.Load())
		}
	}
}

// HandoffTimeout bounds each try of a handoff: a backend that holds the
// first try longer gets it again, and takes the second. The timeout was
// 10 s, whatever the backend.
func TestFleetHandoffTimeout(t *testing.T) {
	srv := startServer(t, server.Config{})
	var tries atomic.Int32
	gaveUp, ended := make(chan struct{}), make(chan struct{})
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Read to the end: the server notices a client gone only then.
		if _, err := io.Copy(io.Discard, r.Body); err != nil {
			return
		}
		if tries.Add(1) == 1 {
			select {
			case <-r.Context().Done(): // the fleet gave the try up
				close(gaveUp)
			case <-ended:
			}
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	defer hs.Close()
	defer close(ended)
	f, err := fleet.Start(context.Background(), fleet.Config{Servers: []string{srv.URL()}, Devices: 1, Apps: []string{"a"},
		Handoff: hs.URL, HandoffTimeout: 100 * time.Millisecond, Logger: quietLogger(), MinBackoff: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	// Well before the default's 10 s (a bound against a hang, not a
	// measure of speed).
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Second)
	defer cancel()
	select {
	case <-gaveUp:
	case <-ctx.Done():
		t.Fatalf("the held try was not given up: %+v", f.Stats())
	}
	if err := f.Wait(waitCtx(t), func(s fleet.Stats) bool { return s.HandoffsDone == 1 }); err != nil {
		t.Fatalf("%v (%+v)", err, f.Stats())
	}
	if r := f.Report(); r.Handoffs != 1 || r.HandoffFailures != 0 || tries.Load() != 2 {
		t.Fatalf("done %d, failed %d after %d tries; want 1, 0 after 2", r.Handoffs, r.HandoffFailures, tries.Load())
	}
}
