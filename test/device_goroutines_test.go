package test

import (
	"bytes"
	"context"
	"fmt"
	"runtime/pprof"
	"strings"
	"testing"
	"time"

	"github.com/openmpns/openmpns/device"
	"github.com/openmpns/openmpns/server"
	"github.com/openmpns/openmpns/shared/sender"
)

// deviceGoroutines counts the goroutines running code of package device.
func deviceGoroutines() int {
	var b bytes.Buffer
	pprof.Lookup("goroutine").WriteTo(&b, 1)
	_, recs, _ := strings.Cut(b.String(), "\n") // past "goroutine profile: total N"
	n := 0
	for _, rec := range strings.Split(recs, "\n\n") {
		var count int
		if _, err := fmt.Sscanf(rec, "%d @", &count); err != nil {
			continue
		}
		if strings.Contains(rec, "openmpns/openmpns/device.") {
			n += count
		}
	}
	return n
}

// settledDeviceGoroutines waits (bounded) until at most want goroutines
// run device code, and returns the last count: goroutines that delivered an
// event or wrote a frame end on their own once their work is done.
func settledDeviceGoroutines(want int) int {
	deadline := time.Now().Add(10 * time.Second)
	for {
		n := deviceGoroutines()
		if n <= want || time.Now().After(deadline) {
			return n
		}
		time.Sleep(5 * time.Millisecond) // polling a count no event announces
	}
}

// TestIdleDeviceHoldsTwoGoroutines: a connected device with an open, bound
// channel that has received a notification (raw data for an app that is
// not running: handled and acked) holds two goroutines while idle
// (its connect loop and its connection's reader; events and writes start a
// goroutine only while there is work), and none once closed. A fleet runs
// tens of thousands of devices: every goroutine is 8 KiB of stack and
// garbage-collector work each.
func TestIdleDeviceHoldsTwoGoroutines(t *testing.T) {
	quiet := quietLogger()
	srv := startServer(t, server.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	client := sender.Client{HTTP: sender.NewHTTPClient(4)}
	defer client.HTTP.CloseIdleConnections()
	const n = 20
	var devs []*device.Device
	got := make(chan struct{}, n)
	for i := range n {
		d, err := device.New(device.Config{Server: srv.URL(), StateDir: t.TempDir(), Logger: quiet,
			Handlers: device.Handlers{RawDropped: func(device.Meta) { got <- struct{}{} }}})
		if err != nil {
			t.Fatal(err)
		}
		devs = append(devs, d)
		ch := d.NewChannel("com.example.idle", fmt.Sprint("main", i), "")
		if err := ch.Open(ctx); err != nil {
			t.Fatal(err)
		}
		if err := ch.BindToShellToast(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := client.Send(ctx, sender.NewRaw(ch.ChannelURI(), []byte("hi"), sender.Immediate)); err != nil {
			t.Fatal(err)
		}
	}
	for range n {
		select {
		case <-got:
		case <-ctx.Done():
			t.Fatal("a device did not receive its notification")
		}
	}
	if g := settledDeviceGoroutines(2 * n); g != 2*n {
		t.Fatalf("%d idle devices hold %d goroutines, want %d (2 each)", n, g, 2*n)
	}
	for _, d := range devs {
		if err := d.Close(); err != nil {
			t.Fatal(err)
		}
	}
	// Close has returned once the last goroutine signalled its end; that
	// goroutine may still be returning, hence the (bounded) wait.
	if g := settledDeviceGoroutines(0); g != 0 {
		t.Fatalf("%d device goroutines left after closing every device", g)
	}
}
