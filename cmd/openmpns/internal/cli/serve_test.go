package cli

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/openmpns/openmpns/shared/procs"
)

// TestServeAdaptsProcessors: a server adapts the process's processors to
// its load when told to (--adapt-procs) and GOMAXPROCS is not set; while
// it does, nothing else in the process may (procs.ErrRunning), and once it
// has stopped something else may.
func TestServeAdaptsProcessors(t *testing.T) {
	serve := func(t *testing.T, args ...string) *running {
		t.Helper()
		srv := start(t, append([]string{"serve", "--listen", "127.0.0.1:0", "--data", t.TempDir(), "--log-level", "warn"}, args...)...)
		srv.next(t, "openmpns server on ")
		return srv
	}
	stopped := func(t *testing.T, srv *running) {
		t.Helper()
		srv.cancel()
		select {
		case code := <-srv.code:
			srv.code <- code // for start's cleanup
		case <-time.After(20 * time.Second):
			t.Fatal("serve did not stop")
		}
	}
	adapted := func() bool {
		stop, err := procs.Start(procs.Config{})
		if errors.Is(err, procs.ErrRunning) {
			return true
		}
		if err != nil {
			t.Fatal(err)
		}
		stop()
		return false
	}
	t.Setenv("GOMAXPROCS", "") // as a user's shell would have it, unless a case sets it
	t.Run("default", func(t *testing.T) {
		srv := serve(t)
		if adapted() {
			t.Fatal("serve adapts the processors by default")
		}
		stopped(t, srv)
	})
	t.Run("--adapt-procs", func(t *testing.T) {
		srv := serve(t, "--adapt-procs")
		if !adapted() {
			t.Fatal("serve --adapt-procs does not adapt the processors")
		}
		stopped(t, srv)
		if adapted() {
			t.Fatal("the processors are still adapted after serve stopped")
		}
	})
	t.Run("GOMAXPROCS=0, which the runtime ignores", func(t *testing.T) {
		t.Setenv("GOMAXPROCS", "0")
		srv := serve(t, "--adapt-procs")
		if !adapted() {
			t.Fatal("serve --adapt-procs does not adapt the processors with GOMAXPROCS=0")
		}
		stopped(t, srv)
	})
	t.Run("GOMAXPROCS set", func(t *testing.T) {
		t.Setenv("GOMAXPROCS", "2")
		srv := serve(t, "--adapt-procs")
		if adapted() {
			t.Fatal("serve --adapt-procs adapts the processors although GOMAXPROCS is set")
		}
		stopped(t, srv)
	})
}

// serve refuses, before it starts, a negative time that means nothing
// (--heartbeat -1s started a server that closed every device right after
// its hello, over and over, with nothing in the log to say why) and a 0
// that server.Config would silently read as the default (--daily-quota 0
// was 500 a day).
func TestServeRefusesNegativeAndZeroValues(t *testing.T) {
	for _, c := range []struct{ flag, value, want string }{
		{"--heartbeat", "-1s", "openmpns serve: heartbeat -1s: must not be negative\n"},
		{"--write-timeout", "-1s", "openmpns serve: write-timeout -1s: must not be negative\n"},
		{"--queue-ttl", "-1s", "openmpns serve: queue-ttl -1s: must not be negative\n"},
		{"--queue-limit", "-1", "openmpns serve: queue-limit -1: must not be negative\n"},
		{"--time-scale", "-1", "openmpns serve: time scale -1: must be between 1 and 1000000\n"},
		{"--daily-quota", "0", "openmpns serve: --daily-quota 0: want at least 1, or -1 for no quota\n"},
		{"--queue-limit", "0", "openmpns serve: --queue-limit 0: want at least 1\n"},
		{"--heartbeat", "0", "openmpns serve: --heartbeat 0s: want a positive time\n"},
		{"--time-scale", "0", "openmpns serve: --time-scale 0: want 1 to 1000000 (1: real time)\n"},
		{"--max-devices", "0", "openmpns serve: --max-devices 0: want at least 1, or -1 for no cap\n"},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		code, out, stderr := runRecover(t, ctx, "serve", "--listen", "127.0.0.1:0", "--data", t.TempDir(), c.flag, c.value)
		cancel()
		if code != 2 || stderr != c.want || strings.Contains(out, "openmpns server on") {
			t.Errorf("serve %s %s: exit %d, stderr %q; want 2 and %q", c.flag, c.value, code, stderr, c.want)
		}
	}
	// Several at once, on one line.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, _, stderr := runRecover(t, ctx, "serve", "--listen", "127.0.0.1:0", "--data", t.TempDir(), "--heartbeat", "-1s", "--write-timeout", "-1s")
	if stderr != "openmpns serve: heartbeat -1s: must not be negative; write-timeout -1s: must not be negative\n" {
		t.Errorf("two negative values: %q", stderr)
	}
	// -1 means no limit where the help says so.
	srv := start(t, "serve", "--listen", "127.0.0.1:0", "--data", t.TempDir(), "--log-level", "warn", "--daily-quota", "-1", "--max-devices", "-1", "--inactive-grace", "-1s")
	srv.next(t, "openmpns server on ")
}

// Every flag of serve that takes -1 for "no limit" (or -1s for "never")
// says so in its help: --max-pending-pushes -1 was taken, and its 0 was
// refused with "or -1 for no limit", but its help did not say so.
func TestServeHelpSaysWhereMinusOneMeansNoLimit(t *testing.T) {
	var out, errb bytes.Buffer
	RunContext(context.Background(), []string{"serve", "--help"}, nil, &out, &errb)
	help := map[string]string{} // flag name: its lines of help
	for _, part := range strings.Split(out.String(), "\n  -")[1:] {
		name, _, _ := strings.Cut(part, " ")
		name, _, _ = strings.Cut(name, "\n")
		help[name] = part
	}
	for name, want := range zeroRefused {
		if !strings.Contains(want, "-1") {
			continue
		}
		h, ok := help[name]
		if !ok {
			t.Errorf("--%s is not in serve --help", name)
			continue
		}
		if !strings.Contains(h, "-1") {
			t.Errorf("--%s takes -1 (%q), its help does not say so: %q", name, want, h)
		}
	}
}
