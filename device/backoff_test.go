package device_test

import (
	"context"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/openmpns/openmpns/device"
	"github.com/openmpns/openmpns/server"
	"github.com/openmpns/openmpns/shared/clock"
)

// TestFirstReconnectIsJittered: attempt 0 is spread over [min/2, 2×min], so
// devices cut off together by a restart do not come back together.
func TestFirstReconnectIsJittered(t *testing.T) {
	min, max := 250*time.Millisecond, 30*time.Second
	r := rand.New(rand.NewPCG(1, 2))
	seen := map[time.Duration]bool{}
	lo, hi := max, time.Duration(0)
	for range 1000 {
		d := device.Backoff(0, min, max, r.Int64N)
		if d < min/2 || d > 2*min {
			t.Fatalf("attempt 0 delay %v outside [%v, %v]", d, min/2, 2*min)
		}
		seen[d] = true
		lo, hi = mmin(lo, d), mmax(hi, d)
	}
	// 1000 draws over a 375 ms range: distinct values and a wide spread.
	if len(seen) < 900 || hi-lo < min {
		t.Fatalf("attempt 0 is not jittered: %d distinct delays in [%v, %v]", len(seen), lo, hi)
	}
}

func mmin(a, b time.Duration) time.Duration { return min(a, b) }
func mmax(a, b time.Duration) time.Duration { return max(a, b) }

// replacedAttempt mirrors device.replacedBackoff.
const replacedAttempt = 4

// waitClock is the system clock that reports every reconnect wait it is
// asked for, and waits an eighth of it to keep the test quick.
type waitClock struct {
	clock.System
	mu    sync.Mutex
	waits []time.Duration
	ch    chan time.Duration
}

func (c *waitClock) AfterFunc(d time.Duration, f func()) clock.Timer {
	c.mu.Lock()
	c.waits = append(c.waits, d)
	c.mu.Unlock()
	select {
	case c.ch <- d:
	default:
	}
	return c.System.AfterFunc(d/8, f)
}

// TestReplacedConnectionBacksOff: a device whose connection is taken over
// by another instance with the same identity (close 4001) waits a long,
// jittered backoff before reconnecting, instead of knocking the other
// instance off at once.
func TestReplacedConnectionBacksOff(t *testing.T) {
	quiet := quietLogger()
	srv := startServer(t)
	min := 5 * time.Millisecond
	dirA := t.TempDir()
	clkA := &waitClock{ch: make(chan time.Duration, 16)}
	a, err := device.New(device.Config{Server: srv.URL(), StateDir: dirA, MinBackoff: min, MaxBackoff: time.Hour,
		Logger: quiet, Clock: clkA})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := a.NewChannel("com.example.twin", "main", "").Open(ctx); err != nil {
		t.Fatal(err)
	}
	// A second instance with the same identity.
	dirB := t.TempDir()
	b, err := os.ReadFile(filepath.Join(dirA, "device.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dirB, "device.json"), b, 0o600); err != nil {
		t.Fatal(err)
	}
	twin, err := device.New(device.Config{Server: srv.URL(), StateDir: dirB, MinBackoff: min, MaxBackoff: time.Hour, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer twin.Close()
	// The twins now take the connection from each other in turn. Without
	// the backoff each of A's waits would be at most 2×min (attempt 0);
	// with it wait i lies in the upper half of attempt 4+i's ceiling,
	// [min×2^(4+i), min×2^(5+i)]. A wait below that means A lost the
	// server's close reason (a write racing the close).
	for i := range 3 {
		select {
		case d := <-clkA.ch:
			if lo, hi := min<<(replacedAttempt+i), min<<(replacedAttempt+i+1); d < lo || d > hi {
				t.Fatalf("wait %d after 4001 is %v, want within [%v, %v]", i, d, lo, hi)
			}
		case <-ctx.Done():
			t.Fatal("device A never backed off after being replaced")
		}
	}
}

// TestReplacedBackoffBounds: the upper half of the ceiling, whatever the
// random draw, capped by max.
func TestReplacedBackoffBounds(t *testing.T) {
	min, max := 250*time.Millisecond, 30*time.Second
	lowest := func(int64) int64 { return 0 }
	highest := func(k int64) int64 { return k - 1 }
	for n, want := range map[int][2]time.Duration{
		0:  {250 * time.Millisecond, 500 * time.Millisecond},
		4:  {4 * time.Second, 8 * time.Second},
		6:  {15 * time.Second, 30 * time.Second}, // 16 s–32 s, capped at 30 s
		40: {15 * time.Second, 30 * time.Second},
	} {
		if lo, hi := device.ReplacedBackoff(n, min, max, lowest), device.ReplacedBackoff(n, min, max, highest); lo != want[0] || hi != want[1] {
			t.Errorf("ReplacedBackoff(%d) spans [%v, %v], want [%v, %v]", n, lo, hi, want[0], want[1])
		}
	}
}

// startServer starts a real server on a loopback port for the test.
func startServer(t *testing.T) *server.Server {
	t.Helper()
	srv, err := server.New(server.Config{DataDir: t.TempDir(), Listen: "127.0.0.1:0", Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv
}
