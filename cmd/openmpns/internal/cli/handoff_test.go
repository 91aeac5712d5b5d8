package cli

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openmpns/openmpns/device"
	"github.com/openmpns/openmpns/emulator/apps"
)

// stop ends a command started with start and returns its exit code (and
// leaves it for start's cleanup).
func (r *running) stop(t *testing.T) int {
	t.Helper()
	r.cancel()
	select {
	case code := <-r.code:
		r.code <- code
		return code
	case <-time.After(20 * time.Second):
		t.Fatal("the command did not stop")
		return -1
	}
}

// drainAtEnd reads r's output from the end of the test on, so that a
// command that still prints (the demo backend's pushes) can stop.
func drainAtEnd(t *testing.T, r *running) {
	t.Cleanup(func() {
		go func() {
			for range r.lines {
			}
		}()
	})
}

// pushPair starts a real push server and a real demo backend paired with
// it (the built-in apps manifest, a round every 200 ms) and returns the
// server's base URL and the backend's.
func pushPair(t *testing.T) (string, string, *running) {
	t.Helper()
	srv := start(t, "serve", "--listen", "127.0.0.1:0", "--data", t.TempDir(), "--log-level", "warn")
	line := srv.next(t, "openmpns server on ")
	base := "http://" + strings.Fields(strings.TrimPrefix(line, "openmpns server on "))[0]
	be := start(t, "demo-backend", "--listen", "127.0.0.1:0", "--push-server", base, "--interval", "200ms")
	drainAtEnd(t, be)
	line = be.next(t, "demo backend on ")
	beURL := strings.TrimSuffix(strings.Fields(strings.TrimPrefix(line, "demo backend on "))[0], ":")
	return base, beURL, be
}

// registrations returns what the demo backend at beURL holds.
func registrations(t *testing.T, beURL string) []map[string]any {
	t.Helper()
	resp, err := http.Get(beURL + "/registrations")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var regs []map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&regs); err != nil {
		t.Fatal(err)
	}
	return regs
}

// builtinSecret is the built-in manifest's handoff secret of app.
func builtinSecret(t *testing.T, app string) string {
	t.Helper()
	man, err := apps.Default()
	if err != nil {
		t.Fatal(err)
	}
	a, ok := man.App(app)
	if !ok || a.HandoffSecret == "" {
		t.Fatalf("no built-in handoff secret for %s", app)
	}
	return a.HandoffSecret
}

// TestDeviceHandsOffToDemoBackend: openmpns device hands its Channel URI
// to a real openmpns demo-backend paired with a real server. Without the
// app's secret, or with a wrong one, it says what to do and nothing is
// registered; with it the backend registers the device and its pushes
// reach it. Its device key, kept with the device's state, is the same
// after a restart; a replaced one is refused (409) with an explanation.
// (That another device key cannot take a registration over is the
// backend's TestHandoffRefusesAnAttacker.)
func TestDeviceHandsOffToDemoBackend(t *testing.T) {
	const app = "com.openmpns.news"
	base, beURL, be := pushPair(t)
	handoff := beURL + "/handoff"
	runDev := func(state string, extra ...string) *running {
		args := append([]string{"device", "--server", base, "--app", app, "--state", state, "--tile", "--handoff", handoff}, extra...)
		r := start(t, args...)
		drainAtEnd(t, r)
		return r
	}

	t.Setenv(handoffSecretEnv, "")
	dev := runDev(t.TempDir())
	dev.waitStderr(t, "without a handoff secret")
	dev.waitStderr(t, "refused it with 401: the app's handoff secret is required; the backend wants the app's handoff secret: give it with --handoff-secret")
	if l := dev.next(t, `"event":"handoff"`); !strings.Contains(l, `"status":401`) {
		t.Errorf("handoff event %s", l)
	}
	dev.stop(t)

	dev = runDev(t.TempDir(), "--handoff-secret", "not-the-news-secret-0123456789")
	dev.waitStderr(t, "the backend did not take the handoff secret from --handoff-secret")
	dev.stop(t)
	if regs := registrations(t, beURL); len(regs) != 0 {
		t.Fatalf("refused handoffs registered %v", regs)
	}

	state := t.TempDir()
	dev = runDev(state, "--handoff-secret", builtinSecret(t, app))
	dev.waitStderr(t, "with the app's handoff secret from --handoff-secret and a device key from "+filepath.Join(state, device.HandoffKeyFile))
	dev.waitStderr(t, "took "+app+"'s Channel URI (201)")
	be.next(t, "handoff: "+app)
	if l := dev.next(t, `"event":"tile"`); !strings.Contains(l, `"app":"`+app+`"`) {
		t.Fatalf("tile event %s", l)
	}
	regs := registrations(t, beURL)
	if len(regs) != 1 || regs[0]["app"] != app {
		t.Fatalf("registrations %v", regs)
	}
	dev.stop(t)

	// The same device again, with the secret from the built-in manifest
	// this time: the same device key, so the backend takes it.
	dev = runDev(state, "--handoff-manifest", "builtin")
	dev.waitStderr(t, "with the app's handoff secret from --handoff-manifest builtin")
	dev.waitStderr(t, "took "+app+"'s Channel URI (201)")
	dev.stop(t)

	// A device whose key file was replaced is another device to the backend.
	if err := os.WriteFile(filepath.Join(state, device.HandoffKeyFile), []byte(strings.Repeat("ab", 32)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	dev = runDev(state, "--handoff-manifest", "builtin")
	dev.waitStderr(t, "refused it with 409: this device's app is registered with another device key; the backend holds the device's app under another device key than the one from "+filepath.Join(state, device.HandoffKeyFile)+" (was the file replaced?)")
	dev.stop(t)
	if regs := registrations(t, beURL); len(regs) != 1 {
		t.Fatalf("registrations after the refused key: %v", regs)
	}
}

// TestFleetHandsOffToDemoBackend: a fleet in two worker processes hands
// off every device's Channel URIs to a real demo-backend with each app's
// secret from the built-in manifest; every (device, app) is registered,
// the backend's pushes reach every one of them while connected, and the
// fleet counts what arrives. Without the secret, or with a wrong one (from
// the environment), it says what to do and nothing is registered.
func TestFleetHandsOffToDemoBackend(t *testing.T) {
	fleetWorkers(t)
	t.Setenv(handoffSecretEnv, "")
	base, beURL, be := pushPair(t)
	handoff := beURL + "/handoff"
	fleetArgs := func(extra ...string) []string {
		return append([]string{"fleet", "--server", base, "--devices", "4", "--per-process", "2", "--apps", "com.openmpns.news,com.openmpns.mail",
			"--connect-rate", "0", "--progress", "50ms", "--min-backoff", "10ms", "--handoff", handoff}, extra...)
	}

	fl := start(t, fleetArgs()...)
	drainAtEnd(t, fl)
	fl.waitStderr(t, "without a handoff secret")
	fl.waitStderr(t, "refuses handoffs with 401: the backend wants the app's handoff secret: give it with --handoff-secret")
	fl.stop(t)
	fl.waitStderr(t, "fleet: handoffs refused by "+handoff+": ")
	if !strings.Contains(fl.stderr.String(), " with 401\n") {
		t.Errorf("no count of refusals: %s", fl.stderr.String())
	}

	t.Setenv(handoffSecretEnv, "not-the-secret-0123456789")
	fl = start(t, fleetArgs()...)
	drainAtEnd(t, fl)
	fl.waitStderr(t, "refuses handoffs with 401: the backend did not take the handoff secret from $"+handoffSecretEnv)
	fl.stop(t)
	if regs := registrations(t, beURL); len(regs) != 0 {
		t.Fatalf("refused handoffs registered %v", regs)
	}

	state := t.TempDir()
	fl = start(t, fleetArgs("--handoff-manifest", "builtin", "--state", state, "--until-received", "80")...)
	drainAtEnd(t, fl)
	fl.waitStderr(t, "with the app's handoff secret from --handoff-manifest builtin and a device key per device and app from the handoff.key kept with each device's state under "+state)
	// Every (device, app) is handed off, then pushed to while connected.
	want := map[string]bool{}
	for len(want) < 8 {
		l := be.next(t, "handoff: ")
		f := strings.Fields(l) // 15:04:05 handoff: APP on device ID (...)
		want[f[2]+" on device "+f[5]] = true
	}
	for len(want) > 0 {
		l := be.next(t, ": 200 Received/Active/Connected")
		for k := range want {
			if strings.Contains(l, " to "+k+":") {
				delete(want, k)
			}
		}
	}
	fl.waitStderr(t, "fleet: stopping (received 80)")
	// Both workers' reports are in the table (one taken while a push
	// arrived was once refused as unreadable, and its figures missing).
	if l := fl.next(t, "handoffs done / failed / superseded / unfinished"); !strings.Contains(l, "8 / 0 / 0 / 0") {
		code := fl.stop(t)
		t.Fatalf("report line %q; exit %d; stderr:\n%s", l, code, fl.stderr.String())
	}
	if code := fl.stop(t); code != 0 {
		t.Fatalf("fleet exit %d; stderr:\n%s", code, fl.stderr.String())
	}
	if regs := registrations(t, beURL); len(regs) != 8 {
		t.Fatalf("%d registrations, want 8: %v", len(regs), regs)
	}
}

// The handoff flags go together as documented.
func TestHandoffFlags(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"device", "--app", "a", "--handoff-secret", "s"}, "--handoff-secret goes with --handoff URL"},
		{[]string{"device", "--app", "a", "--handoff", "ftp://x/h"}, "--handoff"},
		{[]string{"device", "--app", "a", "--handoff", "http://127.0.0.1:1/h", "--handoff-secret", "s", "--handoff-manifest", "builtin"}, "give one"},
		{[]string{"device", "--app", "a", "--handoff", "http://127.0.0.1:1/h", "--handoff-manifest", "builtin"}, "no handoff_secret for a there"},
		{[]string{"device", "--app", "a", "--handoff", "http://127.0.0.1:1/h", "--handoff-secret", ""}, "--handoff-secret is empty"},
		{[]string{"fleet", "--apps", "com.openmpns.news,x", "--handoff", "http://127.0.0.1:1/h", "--handoff-manifest", "builtin"}, "no handoff_secret for x there"},
		{[]string{"fleet", "--handoff-manifest", "builtin"}, "--handoff-manifest goes with --handoff URL"},
		{[]string{"fleet", "--handoff-timeout", "5s"}, "--handoff-timeout goes with --handoff URL"},
		{[]string{"fleet", "--handoff", "http://127.0.0.1:1/h", "--handoff-timeout", "0s"}, "--handoff-timeout 0s: want a positive time"},
		{[]string{"fleet", "--handoff-concurrency", "2"}, "--handoff-concurrency goes with --handoff URL"},
		{[]string{"fleet", "--handoff", "http://127.0.0.1:1/h", "--handoff-concurrency", "0"}, "--handoff-concurrency 0"},
	} {
		code, _, stderr := run(t, c.args...)
		if code != 2 || !strings.Contains(stderr, c.want) {
			t.Errorf("%v: exit %d, %q; want 2 and %q", c.args, code, stderr, c.want)
		}
	}
	for _, cmd := range []string{"device", "fleet"} {
		_, out, _ := run(t, cmd, "--help")
		for _, f := range []string{"-handoff-secret", "-handoff-manifest", "$" + handoffSecretEnv, "builtin"} {
			if !strings.Contains(out, f) {
				t.Errorf("%s --help does not mention %s", cmd, f)
			}
		}
	}
	_, out, _ := run(t, "fleet", "--help")
	for _, f := range []string{"-handoff-concurrency", "-handoff-timeout", "superseded"} {
		if !strings.Contains(out, f) {
			t.Errorf("fleet --help does not mention %s", f)
		}
	}
}

// --handoff-concurrency bounds the handoffs in flight per process, in
// worker processes too; the progress lines count those in flight and
// queued, and once the backend answers every one is done. The workers
// get --handoff-timeout too (TestHandoffFlags: the flags go with --handoff
// only).
func TestFleetHandoffConcurrency(t *testing.T) {
	fleetWorkers(t)
	release := make(chan struct{})
	var mu sync.Mutex
	held, most := 0, 0
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		held++
		most = max(most, held)
		mu.Unlock()
		select {
		case <-release:
		case <-r.Context().Done():
		}
		mu.Lock()
		held--
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	defer be.Close()
	released := false
	defer func() {
		if !released {
			close(release)
		}
	}()
	srv := start(t, "serve", "--listen", "127.0.0.1:0", "--data", t.TempDir(), "--log-level", "warn")
	line := srv.next(t, "openmpns server on ")
	base := "http://" + strings.Fields(strings.TrimPrefix(line, "openmpns server on "))[0]
	// Two worker processes of 3 devices, 2 handoffs in flight each.
	fl := start(t, "fleet", "--server", base, "--devices", "6", "--per-process", "3", "--handoff", be.URL,
		"--handoff-concurrency", "2", "--handoff-timeout", "1m30s", "--progress", "50ms", "--min-backoff", "10ms")
	fl.waitStderr(t, "6 registered")
	fl.waitStderr(t, "handoffs 0 done, 4 in flight, 2 queued, 0 superseded")
	if runtime.GOOS == "linux" {
		// The workers get --handoff-timeout (they used 10 s whatever it was).
		for _, first := range []int{0, 3} {
			cmdline, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(childWorker(t, first)), "cmdline"))
			if err != nil || !bytes.Contains(cmdline, []byte("\x00--handoff-timeout\x001m30s\x00")) {
				t.Errorf("worker of device %d: %q, %v; want --handoff-timeout 1m30s", first, bytes.ReplaceAll(cmdline, []byte{0}, []byte{' '}), err)
			}
		}
	}
	close(release)
	released = true
	fl.waitStderr(t, "handoffs 6 done, 0 in flight, 0 queued, 0 superseded")
	if code := fl.stop(t); code != 0 {
		t.Fatalf("fleet exit %d: %s", code, fl.stderr.String())
	}
	if l := fl.next(t, "handoffs done / failed / superseded / unfinished"); !strings.Contains(l, "6 / 0 / 0 / 0") {
		t.Fatalf("report line %q", l)
	}
	if l := fl.next(t, "of the unfinished, queued"); !strings.HasSuffix(strings.TrimSpace(l), " 0") {
		t.Fatalf("report line %q", l)
	}
	mu.Lock()
	defer mu.Unlock()
	if most > 4 {
		t.Fatalf("the backend held %d handoffs at once: 2 per process, want at most 4", most)
	}
}
