package test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openmpns/openmpns/device/fleet"
	"github.com/openmpns/openmpns/server"
	"github.com/openmpns/openmpns/server/backend"
	"github.com/openmpns/openmpns/server/store"
	"github.com/openmpns/openmpns/shared/payload"
	"github.com/openmpns/openmpns/shared/sender"
)

// waitCtx bounds the waits of a fleet test.
func waitCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// A fleet of 300 devices against a real server: every channel gets one
// toast, one tile and one raw; the report counts exactly what the server
// answered Received, opted-out and low-power devices are honoured, offline
// devices get theirs once back, and nothing is duplicated or reordered.
func TestFleetCountsExactly(t *testing.T) {
	srv := startServer(t, server.Config{})
	var handoffs sync.Map
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var rec struct{ URI string }
		if err := json.NewDecoder(r.Body).Decode(&rec); err != nil || rec.URI == "" {
			http.Error(w, "bad handoff", 400)
			return
		}
		handoffs.Store(rec.URI, true)
		w.WriteHeader(http.StatusNoContent)
	}))
	defer backend.Close()
	var outMu sync.Mutex
	out := map[string]fleet.Channel{}
	const devices = 300
	apps := []string{"com.example.news", "com.example.mail"}
	f, err := fleet.Start(context.Background(), fleet.Config{
		Servers: []string{srv.URL()}, Devices: devices, Apps: apps, ConnectRate: 0,
		OptOut: 0.2, LowPower: 0.1, Airplane: 0.1, Seed: 7, Handoff: backend.URL, Logger: quietLogger(),
		MinBackoff: 10 * time.Millisecond, MaxBackoff: 200 * time.Millisecond, StateDir: t.TempDir(),
		OnChannel: func(c fleet.Channel) {
			outMu.Lock()
			out[c.URI] = c
			outMu.Unlock()
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ctx := waitCtx(t)
	if err := f.WaitRegistered(ctx); err != nil {
		t.Fatal(err)
	}
	// A device holds its channel objects weakly: the fleet's apps keep
	// theirs, whose handlers count the raw notifications, through this
	// collection.
	runtime.GC()
	chans := f.Channels()
	if len(chans) != devices*len(apps) || len(out) != len(chans) {
		t.Fatalf("%d channels, %d reported as they appeared; want %d", len(chans), len(out), devices*len(apps))
	}
	var optOut, lowPower, offline int
	for _, d := range f.Devices() {
		if d.OptedOut {
			optOut++
		}
		if d.LowPower {
			lowPower++
		}
		if d.Offline {
			offline++
		}
	}
	if optOut == 0 || lowPower == 0 || offline == 0 || optOut > devices/2 {
		t.Fatalf("shares not applied: %d opted out, %d low power, %d offline", optOut, lowPower, offline)
	}
	// Send one of each kind to every channel; count what the server accepted.
	want := map[string]int64{}
	statuses := map[string]int{}
	var reqs []sender.Request
	for _, c := range chans {
		toast, err := sender.NewToast(c.URI, &payload.Toast{Text1: "t", Text2: c.App}, sender.Immediate)
		if err != nil {
			t.Fatal(err)
		}
		tile, err := sender.NewTile(c.URI, &payload.Tile{Template: payload.TemplateFlip, Fields: map[string]string{payload.Count: "3"}}, sender.Immediate)
		if err != nil {
			t.Fatal(err)
		}
		reqs = append(reqs, toast, tile, sender.NewRaw(c.URI, []byte("r"), sender.Immediate))
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	work := make(chan sender.Request)
	client := &sender.Client{}
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for req := range work {
				resp, err := client.Send(ctx, req)
				mu.Lock()
				if err != nil {
					statuses["error "+err.Error()]++
				} else {
					statuses[req.Kind.String()+" "+resp.NotificationStatus]++
					if resp.NotificationStatus == "Received" {
						want[req.Kind.String()]++
					}
				}
				mu.Unlock()
			}
		}()
	}
	for _, r := range reqs {
		work <- r
	}
	close(work)
	wg.Wait()
	// Exactly the devices' choices decide what is suppressed.
	nApps := len(apps)
	if got := statuses["toast Suppressed"]; got == 0 {
		t.Fatalf("no toast suppressed: %v", statuses)
	}
	if f.SetAirplane(1, false) != offline {
		t.Fatalf("airplane devices not all switched back")
	}
	total := want["toast"] + want["tile"] + want["raw"]
	if err := f.Wait(ctx, func(s fleet.Stats) bool { return s.Total() >= total && s.Connected == devices }); err != nil {
		t.Fatalf("%v; want %d notifications (%v)", err, total, statuses)
	}
	r := f.Report()
	for _, k := range fleet.KindNames {
		if r.Notifications[k] != want[k] {
			t.Errorf("%s: received %d, server accepted %d", k, r.Notifications[k], want[k])
		}
	}
	if want["raw"] != int64(devices*nApps) {
		t.Errorf("raw accepted %d, want every channel (%d)", want["raw"], devices*nApps)
	}
	if r.Duplicates != 0 || r.OutOfOrder != 0 || r.RawDropped != 0 || len(r.Errors) != 0 {
		t.Errorf("duplicates %d, out of order %d, raw dropped %d, errors %v", r.Duplicates, r.OutOfOrder, r.RawDropped, r.Errors)
	}
	if r.Latency.Count != uint64(total) || r.LatencySummary.P99 <= 0 || r.LatencySummary.Max < r.LatencySummary.P50 {
		t.Errorf("latency %+v over %d samples", r.LatencySummary, r.Latency.Count)
	}
	if r.Registered != devices || r.Channels != int64(devices*nApps) || r.Reconnects != int64(offline) {
		t.Errorf("registered %d channels %d reconnects %d (offline %d)", r.Registered, r.Channels, r.Reconnects, offline)
	}
	// Per device: every opted-in, normal-power device shows one toast per app.
	for _, d := range f.Devices() {
		for _, app := range apps {
			c := d.Counts[app]
			wantToast := 1
			if d.OptedOut || d.LowPower {
				wantToast = 0
			}
			if c[fleet.Toast] != wantToast || c[fleet.Raw] != 1 {
				t.Fatalf("device %d %s: counts %v (opted out %v, low power %v)", d.Index, app, c, d.OptedOut, d.LowPower)
			}
		}
	}
	if err := f.Wait(ctx, func(fleet.Stats) bool { return f.Report().Handoffs == int64(len(chans)) }); err != nil {
		t.Fatalf("handoffs: %v", err)
	}
	n := 0
	handoffs.Range(func(k, _ any) bool { n++; return true })
	if n != len(chans) {
		t.Fatalf("backend got %d Channel URIs, want %d", n, len(chans))
	}
	// The report survives JSON and merges.
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var back fleet.Report
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	var merged fleet.Report
	merged.Merge(&back)
	merged.Merge(&back)
	if merged.Total() != 2*r.Total() || merged.Latency.Count != 2*r.Latency.Count || merged.Devices != 2*devices || merged.Shards != 2 {
		t.Fatalf("merged report: %+v", merged)
	}
}

// A restart (phone reboot) keeps the identity and Channel URIs when the
// fleet has a state directory.
func TestFleetRestartKeepsURIs(t *testing.T) {
	srv := startServer(t, server.Config{})
	f, err := fleet.Start(context.Background(), fleet.Config{Servers: []string{srv.URL()}, Devices: 20,
		Apps: []string{"a"}, StateDir: t.TempDir(), Logger: quietLogger(), MinBackoff: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ctx := waitCtx(t)
	if err := f.WaitRegistered(ctx); err != nil {
		t.Fatal(err)
	}
	before := f.Channels()
	n, err := f.Restart(ctx, 0.5)
	if err != nil || n != 10 {
		t.Fatalf("restarted %d: %v", n, err)
	}
	after := f.Channels()
	if len(after) != len(before) {
		t.Fatalf("%d channels after restart, %d before", len(after), len(before))
	}
	for i := range before {
		if before[i] != after[i] {
			t.Fatalf("channel changed on restart: %+v → %+v", before[i], after[i])
		}
	}
}

// Closing the fleet saves every device's state (identity, channels, the
// notifications it has seen); one that cannot be saved is an error of
// Close that names the device. Close returned nil, so a fleet stopped with
// Ctrl-C lost state without a word.
func TestFleetCloseReportsStateNotSaved(t *testing.T) {
	srv := startServer(t, server.Config{})
	state := t.TempDir()
	f, err := fleet.Start(context.Background(), fleet.Config{Servers: []string{srv.URL()}, Devices: 3,
		Apps: []string{"a"}, StateDir: state, Logger: quietLogger(), MinBackoff: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.WaitRegistered(waitCtx(t)); err != nil {
		f.Close()
		t.Fatal(err)
	}
	// Device 1's state directory is gone, a file in its place.
	dir := filepath.Join(state, "000001")
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dir, []byte("not a directory"), 0o600); err != nil {
		t.Fatal(err)
	}
	err = f.Close()
	if err == nil || !strings.Contains(err.Error(), "1 device") || !strings.Contains(err.Error(), "device 1:") {
		t.Fatalf("Close with device 1's state unwritable: %v", err)
	}
	if _, err := os.Stat(filepath.Join(state, "000002", "device.json")); err != nil {
		t.Fatalf("the others' state: %v", err)
	}
}

// heldOpens is a server backend that holds every new channel until
// release closes, saying on arrived that one came.
type heldOpens struct {
	backend.Backend
	arrived chan struct{}
	release chan struct{}
}

func (h *heldOpens) PutChannel(ctx context.Context, c backend.Channel) (backend.Channel, error) {
	if c.Rev == 0 {
		h.arrived <- struct{}{}
		<-h.release
	}
	return h.Backend.PutChannel(ctx, c)
}

// What goes wrong because the fleet is stopping is not an error of the
// run: a fleet stopped (Ctrl-C) while its devices were opening their
// channels reported those opens as ChannelOpenFailed errors, in its report
// and as warnings.
func TestFleetStoppingIsNoError(t *testing.T) {
	dir := t.TempDir()
	be, err := store.Open(filepath.Join(dir, server.DBFile), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	held := &heldOpens{Backend: be, arrived: make(chan struct{}), release: make(chan struct{})}
	srv := startServer(t, server.Config{DataDir: dir, Backend: held})
	defer close(held.release)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	const devices = 3
	f, err := fleet.Start(ctx, fleet.Config{Servers: []string{srv.URL()}, Devices: devices, Apps: []string{"a"},
		Logger: quietLogger(), MinBackoff: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	wait := waitCtx(t)
	for range devices {
		select {
		case <-held.arrived:
		case <-wait.Done():
			f.Close()
			t.Fatalf("the devices' opens did not reach the server: %v", f.Stats())
		}
	}
	cancel() // Ctrl-C, every device waiting for its channel
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if r := f.Report(); len(r.Errors) != 0 {
		t.Fatalf("errors of a fleet stopped while opening channels: %v (last: %s)", r.Errors, f.Stats().LastError)
	}
}
