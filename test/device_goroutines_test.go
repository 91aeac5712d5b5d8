package test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"runtime/pprof"
	"strings"
	"testing"
	"time"

	"github.com/openmpns/openmpns/device"
	"github.com/openmpns/openmpns/internal/servertest"
	"github.com/openmpns/openmpns/server"
	"github.com/openmpns/openmpns/shared/sender"
)

// deviceGoroutines counts the goroutines running code of package device.
func deviceGoroutines() int { return goroutinesIn("openmpns/openmpns/device.") }

// sessionGoroutines counts the goroutines running a server's device
// session code (reading, handling, writing a connection).
func sessionGoroutines() int { return goroutinesIn("openmpns/server.(*session)") }

// goroutinesIn counts the goroutines whose stack has a function whose name
// holds fn.
func goroutinesIn(fn string) int {
	var b bytes.Buffer
	pprof.Lookup("goroutine").WriteTo(&b, 1)
	_, recs, _ := strings.Cut(b.String(), "\n") // past "goroutine profile: total N"
	n := 0
	for _, rec := range strings.Split(recs, "\n\n") {
		var count int
		if _, err := fmt.Sscanf(rec, "%d @", &count); err != nil {
			continue
		}
		if strings.Contains(rec, fn) {
			n += count
		}
	}
	return n
}

// settledDeviceGoroutines waits (bounded) until at most want goroutines
// run device code, and returns the last count: goroutines that delivered an
// event or wrote a frame end on their own once their work is done.
func settledDeviceGoroutines(want int) int { return settled(deviceGoroutines, want) }

// settled waits (bounded) until count reports at most want, and returns the
// last count.
func settled(count func() int, want int) int {
	deadline := time.Now().Add(10 * time.Second)
	for {
		n := count()
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

// TestDevicesOverWSSHoldNoServerGoroutine: devices of the device runtime
// connected over wss (real TLS, a self-signed certificate) hold no
// goroutine of the server while idle, before and after a notification
// (sent over https) reached each: the server's poller reads their TLS
// records as it reads plain connections.
func TestDevicesOverWSSHoldNoServerGoroutine(t *testing.T) {
	if servertest.Readers() {
		t.Skip("OPENMPNS_GATEWAY_READERS=1 gives every connection a reader goroutine")
	}
	certFile, keyFile, roots := servertest.SelfSignedCert(t)
	srv := startServer(t, server.Config{TLSCert: certFile, TLSKey: keyFile})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	tr := &http.Transport{TLSClientConfig: roots}
	defer tr.CloseIdleConnections()
	client := sender.Client{HTTP: &http.Client{Transport: tr}}
	const n = 10
	got := make(chan struct{}, n)
	var chans []*device.Channel
	for i := range n {
		d, err := device.New(device.Config{Server: srv.URL(), Logger: quietLogger(), TLSConfig: roots,
			Handlers: device.Handlers{RawDropped: func(device.Meta) { got <- struct{}{} }}})
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		ch := d.NewChannel("com.example.wss", fmt.Sprint("main", i), "")
		if err := ch.Open(ctx); err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(ch.ChannelURI(), "https://") {
			t.Fatalf("channel URI %s over TLS", ch.ChannelURI())
		}
		chans = append(chans, ch)
	}
	if g := settled(sessionGoroutines, 0); g != 0 {
		t.Fatalf("%d idle devices over wss: %d server session goroutines, want 0", n, g)
	}
	for _, ch := range chans {
		if _, err := client.Send(ctx, sender.NewRaw(ch.ChannelURI(), []byte("hi"), sender.Immediate)); err != nil {
			t.Fatal(err)
		}
	}
	for range n {
		select {
		case <-got:
		case <-ctx.Done():
			t.Fatal("a device did not receive its notification over wss")
		}
	}
	if g := settled(sessionGoroutines, 0); g != 0 {
		t.Fatalf("after a notification each: %d server session goroutines, want 0", g)
	}
}
