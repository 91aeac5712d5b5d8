package cli

import (
	"errors"
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
