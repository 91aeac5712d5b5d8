package test

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/openmpns/openmpns/device"
	"github.com/openmpns/openmpns/server"
	"github.com/openmpns/openmpns/shared/clock"
)

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
	srv := startServer(t, server.Config{})
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
