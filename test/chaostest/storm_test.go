//go:build linux

package chaostest

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestReconnectStorm: N devices connected to a real server process lose it
// at once (SIGKILL) and all reconnect when it comes back on the same port:
// the reconnects are spread by the devices' jittered backoff, every device
// ends up connected with its channel (a push to each answers Received,
// Connected and reaches its app), and the server counts N connections.
//
// Short variant (make test): 300 devices. Long variant (make chaos):
// 10,000 devices with the default backoff (250 ms to 30 s).
func TestReconnectStorm(t *testing.T) {
	n := 300
	minB, maxB := 50*time.Millisecond, 2*time.Second
	if long() {
		n, minB, maxB = 10000, 0, 0 // the device defaults
	}
	if v := envInt("OPENMPNS_CHAOS_DEVICES"); v > 0 {
		n = v
	}
	srv := StartServer(t, ChildConfig{DataDir: t.TempDir(), DailyQuota: -1})
	start := time.Now()
	fleet := NewFleet(t, FleetConfig{Server: srv.URL(), N: n, MinBackoff: minB, MaxBackoff: maxB, Parallel: 64})
	t.Logf("%d devices set up in %v", n, time.Since(start).Round(time.Millisecond))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if err := fleet.WaitFor(ctx, func() bool { return fleet.ConnectedCount() == n }); err != nil {
		t.Fatalf("%d of %d connected before the restart: %v", fleet.ConnectedCount(), n, err)
	}

	// Record when each device comes back.
	var mu sync.Mutex
	var back []time.Duration
	srv.Kill()
	if err := fleet.WaitFor(ctx, func() bool { return fleet.ConnectedCount() == 0 }); err != nil {
		t.Fatalf("%d devices still think they are connected: %v", fleet.ConnectedCount(), err)
	}
	restarted := time.Now()
	srv.Restart()
	seen := make([]bool, n)
	err := fleet.WaitFor(ctx, func() bool {
		mu.Lock()
		defer mu.Unlock()
		for i, d := range fleet.Devs {
			if !seen[i] && d.Connected() {
				seen[i] = true
				back = append(back, time.Since(restarted))
			}
		}
		return len(back) == n
	})
	if err != nil {
		t.Fatalf("%d of %d devices reconnected: %v", len(back), n, err)
	}
	slices.Sort(back)
	t.Logf("all %d devices reconnected; since restart: first %v, median %v, 90%% %v, last %v", n,
		back[0].Round(time.Millisecond), back[n/2].Round(time.Millisecond), back[n*9/10].Round(time.Millisecond), back[n-1].Round(time.Millisecond))

	// The server agrees, and every channel works.
	if got := scrape(t, srv.URL(), "openmpns_device_connections"); got != fmt.Sprint(n) {
		t.Fatalf("server counts %s connections, want %d", got, n)
	}
	snd := NewSender()
	defer snd.Close()
	var wg sync.WaitGroup
	sem := make(chan struct{}, 32)
	for _, d := range fleet.Devs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if x := snd.Push(ctx, d, 2); x.Outcome != Received {
				t.Errorf("push to device %d after the storm: %s", d.Index, x.Status)
			}
		}()
	}
	wg.Wait()
	if err := fleet.WaitFor(ctx, snd.AllReceivedArrived); err != nil {
		t.Fatal(err)
	}
	if r := snd.Check(fleet, Expiry{}); r.Delivered != n || r.Duplicates != 0 || r.Spurious != 0 {
		t.Fatalf("after the storm: %s", r)
	}
}

// scrape returns the value of an unlabelled metric of the server.
func scrape(t *testing.T, base, name string) string {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			return v
		}
	}
	return ""
}
