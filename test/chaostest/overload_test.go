//go:build linux

package chaostest

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openmpns/openmpns/device/fleet"
	"github.com/openmpns/openmpns/shared/sender"
	"github.com/openmpns/openmpns/shared/sender/load"
)

// rssKiB reads a process's resident set size.
func rssKiB(pid int) (int, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			return strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
		}
	}
	return 0, fmt.Errorf("no VmRSS for %d", pid)
}

// TestOverloadLong: a real server process with connected devices is pushed
// at ten times the rate it sustains, open loop: 200 devices for 20 s in
// make chaos, 20 devices for 2 s in make test (TestFaultOverload in ./server
// is the in-process form). Every answer is
// 200 Received, 200 QueueFull or 503; the server's memory stays under the
// bound docs/reliability.md states; when the load drops it accepts every
// push again by itself; and every push it answered Received reaches its
// device exactly once.
func TestOverloadLong(t *testing.T) {
	// The short form (race detector on, slower senders) keeps few pushes
	// pending so that it too is refused; its memory is not checked, as the
	// race detector multiplies it.
	devices, measure, overload, senders, pending := 20, time.Second, 2*time.Second, 256, 8
	if long() {
		devices, measure, overload, senders, pending = 200, 3*time.Second, 20*time.Second, 2048, 1024
	}
	srv := StartServer(t, ChildConfig{DataDir: t.TempDir(), DailyQuota: -1, MaxPending: pending})
	// No tiles: a tile update replaces one of the same tile still queued
	// (MPNS's rule), so under a deep queue some accepted tiles are rightly
	// never delivered, and "every Received arrives" would not hold.
	mix := load.Mix{Toast: 9, Raw: 1}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	fl, err := fleet.Start(ctx, fleet.Config{Servers: []string{srv.URL()}, Devices: devices, Apps: []string{"com.example.load"}})
	if err != nil {
		t.Fatal(err)
	}
	defer fl.Close()
	if err := fl.WaitRegistered(ctx); err != nil {
		t.Fatal(err)
	}
	var targets []load.Target
	for _, c := range fl.Channels() {
		targets = append(targets, load.Target{URI: c.URI})
	}
	base, err := rssKiB(srv.Pid())
	if err != nil {
		t.Fatal(err)
	}
	// What it sustains: closed loop, 32 senders.
	sus, err := load.Run(ctx, load.Config{Targets: targets, Concurrency: 32, Duration: measure, Mix: mix})
	if err != nil {
		t.Fatal(err)
	}
	rate := 10 * sus.AchievedRate
	t.Logf("sustained %.0f/s (%v); overloading at %.0f/s", sus.AchievedRate, sus.Answers, rate)

	// Watch the server's memory while it is overloaded.
	bound := base + senders*48 + pending*16 + devices*100*4 // KiB: see docs/reliability.md
	var peak int
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-tick.C:
				if r, err := rssKiB(srv.Pid()); err == nil {
					peak = max(peak, r)
				}
			case <-stop:
				return
			}
		}
	}()
	over, err := load.Run(ctx, load.Config{Targets: targets, Rate: rate, Concurrency: senders, Duration: overload,
		Mix: mix, HTTP: sender.NewHTTPClient(senders)})
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("overload: offered %.0f/s for %v, %d late; answers %v; errors %v", over.AchievedRate, over.Elapsed.Round(time.Millisecond), over.Late, over.Answers, over.Errors)
	t.Logf("server RSS: %d KiB before, %d KiB peak, bound %d KiB", base, peak, bound)
	for k := range over.Answers {
		switch k {
		case "200 Received", "200 QueueFull", "503":
		default:
			t.Errorf("answer %q under overload", k)
		}
	}
	if len(over.Errors) > 0 {
		t.Errorf("transport errors under overload: %v", over.Errors)
	}
	if over.Answers["503"]+over.Answers["200 QueueFull"] == 0 {
		t.Errorf("nothing refused at 10x the sustained rate: %v", over.Answers)
	}
	if long() && peak > bound {
		t.Errorf("server RSS peaked at %d KiB, over the bound of %d KiB", peak, bound)
	}
	// Recovery, by itself: once the devices have what the overload left
	// queued, a gentle rate is accepted in full. (Started before that, its
	// first pushes could wait behind the backlog, past MaxPending: a 503
	// under a loaded make test, 1 run in about 10.)
	drained, dcancel0 := context.WithTimeout(ctx, 2*time.Minute)
	defer dcancel0()
	if err := fl.Wait(drained, func(s fleet.Stats) bool { return s.Total() >= sus.Received+over.Received }); err != nil {
		t.Fatalf("the overload's backlog: received %d of %d accepted: %v", fl.Stats().Total(), sus.Received+over.Received, err)
	}
	// A gentle rate accepted in full, within three runs: a server stuck
	// refusing fails all three, while a single stall of the loaded host
	// (past the short form's 8 pending pushes, 40 ms at 200/s: 1 push in
	// 212 once, in a make test beside other tests) fails one.
	var accepted int64
	for try := 1; ; try++ {
		after, err := load.Run(ctx, load.Config{Targets: targets, Rate: 200, Duration: measure, Mix: load.Mix{Raw: 1}})
		if err != nil {
			t.Fatal(err)
		}
		accepted += after.Received
		if after.Received == after.Sent && after.Sent > 0 {
			t.Logf("recovered at run %d: %d/%d accepted", try, after.Received, after.Sent)
			break
		}
		if try == 3 {
			t.Fatalf("after the overload, three runs at 200/s were refused in part; the last: %v", after.Answers)
		}
		t.Logf("after the overload, run %d: %v", try, after.Answers)
	}
	want := sus.Received + over.Received + accepted
	dctx, dcancel := context.WithTimeout(ctx, 2*time.Minute)
	defer dcancel()
	if err := fl.Wait(dctx, func(s fleet.Stats) bool { return s.Total() >= want }); err != nil {
		r := fl.Report()
		t.Fatalf("received %d of %d accepted: %v; reconnects %d, errors %v, redelivered %d", fl.Stats().Total(), want, err, r.Reconnects, r.Errors, r.Redelivered)
	}
	r := fl.Report()
	if r.Total() != want || r.Duplicates != 0 {
		t.Fatalf("devices received %d, server accepted %d, duplicates %d", r.Total(), want, r.Duplicates)
	}
	t.Logf("%d notifications received exactly once", want)
}
