package test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
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
		var rec device.HandoffRecord
		if err := json.NewDecoder(r.Body).Decode(&rec); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
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
		var rec device.HandoffRecord
		if err := json.NewDecoder(r.Body).Decode(&rec); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
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
