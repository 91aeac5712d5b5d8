package store

import (
	"context"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/openmpns/openmpns/shared/proccpu"
)

// BenchmarkAppendDurable measures what a push costs the store: Append and
// Hand (to a device not connected), wait until Durable, then Remove (the device's acknowledgement, which rides on a
// later commit). "paced" has one append outstanding at a time, as at a
// steady 1,000/s where there is nothing to batch; "closed" has 64 appenders
// at once, each on its own device, sharing group commits. Besides ns/op it
// reports the process's CPU (user+system) per append; count the
// fdatasyncs with strace on the test binary (docs/benchmarks.md).
func BenchmarkAppendDurable(b *testing.B) {
	for _, c := range []struct {
		name      string
		appenders int
	}{{"paced", 1}, {"closed", 64}} {
		b.Run(c.name, func(b *testing.B) {
			e, err := Open(filepath.Join(b.TempDir(), "db"), Options{})
			if err != nil {
				b.Fatal(err)
			}
			defer e.Close()
			ctx := context.Background()
			for i := range c.appenders {
				dev := fmt.Sprintf("d%d", i)
				if _, err := e.PutDevice(ctx, Device{ID: dev}); err != nil {
					b.Fatal(err)
				}
				if _, err := e.PutChannel(ctx, Channel{Token: "t" + dev, DeviceID: dev, App: "a"}); err != nil {
					b.Fatal(err)
				}
			}
			payload := make([]byte, 64)
			var next atomic.Int64
			var ops atomic.Int64
			ops.Store(int64(b.N))
			cpu0, cerr := proccpu.Time()
			b.ResetTimer()
			done := make(chan error, c.appenders)
			for range c.appenders {
				dev := fmt.Sprintf("d%d", next.Add(1)-1)
				go func() {
					for ops.Add(-1) >= 0 {
						now := time.Now()
						n := &Notification{DeviceID: dev, Channel: "t" + dev, App: "a", Kind: "raw", Payload: payload,
							AcceptedAt: now, DeliverAt: now, ExpiresAt: now.Add(time.Hour)}
						a, err := e.Append(ctx, n, 0)
						if err != nil {
							done <- err
							return
						}
						// As the engine does: the hand finds no device
						// connected, so the write does not linger.
						if _, _, err := e.Hand(ctx, n, 0); err != nil {
							done <- err
							return
						}
						if err := <-a.Durable; err != nil {
							done <- err
							return
						}
						if err := e.Remove(ctx, dev, []uint64{a.Seq}); err != nil {
							done <- err
							return
						}
					}
					done <- nil
				}()
			}
			for range c.appenders {
				if err := <-done; err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			if cpu1, err := proccpu.Time(); err == nil && cerr == nil {
				b.ReportMetric(float64((cpu1-cpu0).Microseconds())/float64(b.N), "cpu-µs/op")
			}
		})
	}
}
