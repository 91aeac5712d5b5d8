package device_test

import (
	"context"
	"io"
	"log/slog"
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

// waitClock is the system clock that reports every reconnect wait it is asked for.
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
	return c.System.AfterFunc(d, f)
}

// TestReplacedConnectionBacksOff: a device whose connection is taken over
// by another instance with the same identity (close 4001) waits a long,
// jittered backoff before reconnecting, instead of knocking the other
// instance off at once.
func TestReplacedConnectionBacksOff(t *testing.T) {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	srv, err := server.New(server.Config{DataDir: t.TempDir(), Listen: "127.0.0.1:0", Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
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
	// with it they grow from attempt 4 (ceiling 32×min) on.
	var sum time.Duration
	for i := range 3 {
		select {
		case d := <-clkA.ch:
			if ceil := min << (replacedAttempt + i + 1); d < min/2 || d > ceil {
				t.Fatalf("wait %d after 4001 is %v, want within [%v, %v]", i, d, min/2, ceil)
			}
			sum += d
		case <-ctx.Done():
			t.Fatal("device A never backed off after being replaced")
		}
	}
	if sum <= 6*min {
		t.Fatalf("three waits after 4001 sum to %v: no longer than immediate retries (at most %v)", sum, 6*min)
	}
}
