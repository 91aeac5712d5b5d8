package test

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/openmpns/openmpns/device"
	"github.com/openmpns/openmpns/server"
	"github.com/openmpns/openmpns/shared/payload"
	"github.com/openmpns/openmpns/shared/sender"
)

// BenchmarkEndToEnd measures the whole path: HTTP POST accepted (and
// persisted), delivered over the WebSocket, handled and acknowledged by a
// device runtime. 100 devices, 64 concurrent senders with keep-alive.
// Reported: deliveries/s and POST-to-device latency percentiles.
func BenchmarkEndToEnd(b *testing.B) {
	for _, devices := range []int{100} {
		b.Run(fmt.Sprintf("devices=%d/senders=64", devices), func(b *testing.B) { benchEndToEnd(b, devices, 64) })
	}
}

func benchEndToEnd(b *testing.B, nDevices, senders int) {
	srv := startServer(b, server.Config{QueueLimit: 1 << 20, DailyQuota: -1})

	var delivered atomic.Int64
	var mu sync.Mutex
	var lat []time.Duration
	all := make(chan struct{})
	var want atomic.Int64
	want.Store(-1)
	h := device.Handlers{Raw: func(m device.Meta, _ []byte) {
		d := m.ReceivedAt.Sub(m.AcceptedAt)
		mu.Lock()
		lat = append(lat, d)
		mu.Unlock()
		if delivered.Add(1) == want.Load() {
			close(all)
		}
	}}
	uris := make([]string, nDevices)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for i := range uris {
		d, err := device.New(device.Config{Server: srv.URL(), Handlers: h, Logger: quietLogger()})
		if err != nil {
			b.Fatal(err)
		}
		defer d.Close()
		d.SetAppState("com.example.bench", device.AppState{Running: true})
		ch := d.NewChannel("com.example.bench", "main", "")
		if err := ch.Open(ctx); err != nil {
			b.Fatal(err)
		}
		uris[i] = ch.ChannelURI()
	}
	tr := &http.Transport{MaxIdleConnsPerHost: senders, MaxConnsPerHost: senders}
	defer tr.CloseIdleConnections()
	client := &sender.Client{HTTP: &http.Client{Transport: tr, Timeout: 30 * time.Second}}
	body := []byte("0123456789abcdef0123456789abcdef") // 32-byte raw payload
	var next atomic.Int64
	want.Store(int64(b.N))
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(b.N) {
					return
				}
				resp, err := client.Send(ctx, sender.Request{URI: uris[i%int64(nDevices)], Kind: payload.KindRaw, Body: body})
				if err != nil || !resp.Delivered() {
					b.Errorf("push %d: %v %+v", i, err, resp)
					return
				}
			}
		}()
	}
	wg.Wait()
	select {
	case <-all:
	case <-ctx.Done():
		b.Fatalf("only %d of %d delivered", delivered.Load(), b.N)
	}
	el := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/el.Seconds(), "deliveries/s")
	slices.Sort(lat)
	pct := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))].Microseconds()) / 1000 }
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
}
