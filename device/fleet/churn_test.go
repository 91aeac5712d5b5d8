package fleet

import (
	"context"
	"io"
	"log/slog"
	"math/rand/v2"
	"sync/atomic"
	"testing"
	"time"

	"github.com/openmpns/openmpns/device"
	"github.com/openmpns/openmpns/shared/clock"
)

// --churn is a share of the devices per minute: the devices it drops are
// picked among those that can drop (registered and online). A pick that
// fell on an airplane-mode device, or on one already away, was lost, so
// 10 %/min with 30 % of the fleet in airplane mode dropped about 7 %/min.
func TestChurnDropsTheShareAsked(t *testing.T) {
	clk := clock.NewFake(time.Unix(1_000_000, 0))
	ctx, cancel := context.WithCancel(context.Background())
	f := &Fleet{ctx: ctx, cancel: cancel, clk: clk, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	defer f.Close()
	for i := range 10 {
		// Devices whose server refuses: they stay offline, which churn does
		// not look at; it looks at the fleet's view of them.
		dev, err := device.New(device.Config{Server: "http://127.0.0.1:1", Clock: clk, Logger: f.log,
			MinBackoff: time.Hour, MaxBackoff: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		m := &member{f: f, idx: i, counts: make([]atomic.Int32, kinds)}
		m.dev.Store(dev)
		m.ready.Store(true)
		m.offline.Store(i != 7) // all but device 7 in airplane mode
		f.members = append(f.members, m)
	}
	for seed := range uint64(20) {
		if n := f.churnSome(rand.New(rand.NewPCG(seed, 0xc4)), 1); n != 1 || !f.members[7].offline.Load() {
			t.Fatalf("seed %d: one device to drop, device 7 the only one online: dropped %d", seed, n)
		}
		if n := f.churnSome(rand.New(rand.NewPCG(seed, 0xc4)), 1); n != 0 {
			t.Fatalf("seed %d: nobody online, dropped %d", seed, n)
		}
		f.members[7].offline.Store(false)
	}
}
