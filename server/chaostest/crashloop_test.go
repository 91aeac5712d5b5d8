package chaostest

import (
	"context"
	"math/rand/v2"
	"sync"
	"testing"
	"time"
)

// TestCrashLoop runs a real server process with a fleet of real devices,
// a third of them offline, while senders POST continuously; it kills the
// server with SIGKILL at random moments and restarts it on the same data
// directory and port. At the end every notification answered 200 Received
// must have reached its app exactly once, nothing refused or never sent
// may have arrived, and nothing may have arrived twice.
//
// Short variant (make test): 12 devices, 3 crashes. Long variant
// (OPENMPNS_CHAOS=long, make chaos): 60 devices, 30 crashes.
func TestCrashLoop(t *testing.T) {
	devices, offline, workers, crashes := 12, 4, 4, 3
	if long() {
		devices, offline, workers, crashes = 60, 20, 8, 30
	}
	if v := envInt("OPENMPNS_CHAOS_CRASHES"); v > 0 {
		crashes = v
	}
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rnd := rand.New(rand.NewPCG(seed, 1))

	ttl := 24 * time.Hour
	// Time scale 1000: the 450 s and 900 s batching classes wait 0.45 s
	// and 0.9 s, so batched notifications are in flight across crashes too.
	srv := StartServer(t, ChildConfig{DataDir: t.TempDir(), DailyQuota: -1, TimeScale: 1000, QueueTTL: ttl})
	fleet := NewFleet(t, FleetConfig{Server: srv.URL(), N: devices, MinBackoff: 10 * time.Millisecond, MaxBackoff: 300 * time.Millisecond})
	for _, d := range fleet.Devs[:offline] {
		d.SetOnline(false) // airplane mode: their notifications wait in the store
	}
	snd := NewSender()
	defer snd.Close()

	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	classes := []int{2, 2, 2, 3, 3, 12, 13, 22, 23}
	for w := range workers {
		wr := rand.New(rand.NewPCG(seed, uint64(w)+2))
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				d := fleet.Devs[wr.IntN(len(fleet.Devs))]
				x := snd.Push(ctx, d, classes[wr.IntN(len(classes))])
				if x.Status == "error" && ctx.Err() == nil {
					select { // the server is down: wait for the restart
					case <-srv.Up():
					case <-ctx.Done():
					}
				}
			}
		}()
	}

	for i := range crashes {
		// A random moment: after a random number of answers since the
		// restart, plus a random sub-commit delay.
		wctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		spread := 80
		if long() {
			spread = 400
		}
		err := snd.WaitAnswers(wctx, snd.Answered()+10+rnd.IntN(spread))
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		<-time.After(time.Duration(rnd.IntN(3000)) * time.Microsecond)
		srv.Kill()
		t.Logf("crash %d after %d answers", i+1, snd.Answered())
		srv.Restart()
	}
	stop()
	wg.Wait()

	// Everyone comes back; every Received notification must arrive.
	for _, d := range fleet.Devs[:offline] {
		d.SetOnline(true)
	}
	wctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := fleet.WaitFor(wctx, snd.AllReceivedArrived); err != nil {
		t.Errorf("not every Received notification arrived: %v", err)
	}
	// A last immediate notification to each device: the queue is in order,
	// so once it arrives whatever was due before it has been sent.
	for _, d := range fleet.Devs {
		if x := snd.Push(wctx, d, 2); x.Outcome != Received {
			t.Fatalf("marker push to device %d: %s", d.Index, x.Status)
		}
	}
	if err := fleet.WaitFor(wctx, snd.AllReceivedArrived); err != nil {
		t.Errorf("markers did not arrive: %v", err)
	}
	r := snd.Check(fleet, ttl, time.Now())
	t.Logf("crashes survived: %d (server started %d times); %s", crashes, srv.Starts(), r)
	t.Logf("answers: %s", snd.Answers())
	if r.Lost != 0 || r.Duplicates != 0 || r.Spurious != 0 || r.Checked == 0 {
		t.Fatalf("crash loop verdict: %s\n%v", r, r.Examples)
	}
}
