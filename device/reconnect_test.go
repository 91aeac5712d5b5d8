package device_test

import (
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/openmpns/openmpns/device"
	"github.com/openmpns/openmpns/shared/clock"
	"github.com/openmpns/openmpns/shared/wire"
)

// heldClock is the system clock, moved forward by skip, whose timers (the
// device's reconnect waits) are reported on waits and end only when the
// test releases them: a test steps the device through its reconnects and
// reads the delays it chose, without waiting for them.
type heldClock struct {
	clock.System
	skip  atomic.Int64 // nanoseconds added to the system time
	asked atomic.Int64 // how many waits were asked for
	waits chan *heldTimer
}

func newHeldClock() *heldClock { return &heldClock{waits: make(chan *heldTimer, 64)} }

func (c *heldClock) Now() time.Time { return time.Now().Add(time.Duration(c.skip.Load())) }

func (c *heldClock) AfterFunc(d time.Duration, f func()) clock.Timer {
	t := &heldTimer{d: d, f: f}
	c.asked.Add(1)
	c.waits <- t
	return t
}

// next returns the device's next wait, failing the test if none comes.
func (c *heldClock) next(t *testing.T) *heldTimer {
	t.Helper()
	select {
	case w := <-c.waits:
		return w
	case <-time.After(20 * time.Second):
		t.Fatal("the device never waited to reconnect")
		return nil
	}
}

// heldTimer is a wait of a heldClock.
type heldTimer struct {
	d       time.Duration
	f       func()
	mu      sync.Mutex
	stopped bool
}

func (t *heldTimer) Stop() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	was := !t.stopped
	t.stopped = true
	return was
}

// release ends the wait now, unless the device stopped it.
func (t *heldTimer) release() {
	if t.Stop() {
		t.f()
	}
}

// TestConnectionsDroppedRightAfterSetUpBackOff: a server that completes
// set-up and drops every connection at once (a crash on a queued
// notification, a frame too large...) sees the reconnect delays grow as
// after failed connects; a connection that held longer than MaxBackoff
// starts the count again, so the next delay is a first attempt's.
func TestConnectionsDroppedRightAfterSetUpBackOff(t *testing.T) {
	const min = 10 * time.Millisecond
	var hold atomic.Bool
	held := make(chan struct{}, 1)
	drop := make(chan struct{})
	srv := device.ServeWebSocket(t, func(ws *websocket.Conn) {
		for {
			f, ok := device.ReadFrame(t, ws)
			if !ok {
				return
			}
			if out := device.SetupAnswer(f, 30*time.Second); out != nil {
				device.WriteFrame(ws, out)
			}
			if f.Type == wire.TypePower {
				if hold.Load() {
					held <- struct{}{}
					<-drop
				}
				return // the connection ends right after set-up
			}
		}
	})
	clk := newHeldClock()
	connected := make(chan struct{}, 64) // a connection was set up, and its start taken
	d, err := device.New(device.Config{Server: srv.URL, Logger: quietLogger(), Clock: clk, MinBackoff: min, MaxBackoff: time.Hour,
		Handlers: device.Handlers{ConnectionStatusChanged: func(s device.ConnectionStatus) {
			if s == device.Connected {
				connected <- struct{}{}
			}
		}}})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	// Each wait of attempt n is drawn from [min/2, min×2^(n+1)]: with the
	// count reset by every connection, all of them from [min/2, 2×min];
	// growing, ten of them all that short has a chance below 1e-11.
	var waits []time.Duration
	for range 10 {
		w := clk.next(t)
		waits = append(waits, w.d)
		if len(waits) == 10 {
			hold.Store(true) // the next connection holds
		}
		w.release()
	}
	if slices.Max(waits) <= 2*min {
		t.Fatalf("reconnect delays after connections dropped right after set-up: %v (MinBackoff %v): the backoff never grows", waits, min)
	}
	// The eleventh connection holds: once the device announced it, it
	// lives two hours on the device's clock.
	timeout := time.After(20 * time.Second)
	for range 11 {
		select {
		case <-connected:
		case <-timeout:
			t.Fatal("the device never connected again")
		}
	}
	<-held
	clk.skip.Store(int64(2 * time.Hour)) // the connection lived longer than MaxBackoff
	close(drop)
	if w := clk.next(t); w.d > 2*min {
		t.Fatalf("the device waits %v after a connection that held for longer than MaxBackoff; want a first attempt's delay (at most %v)", w.d, 2*min)
	}
}

// TestUnauthorizedNewDeviceBacksOff: a device whose saved identity the
// server refuses (unauthorized) forgets it and comes back at once as a new
// device; when the server refuses that hello too, the device waits, with
// growing delays, before each further hello, and the app hears of the
// refusals once, not at every try: one ChannelOpenFailed for the forgotten
// identity, one for the refused new device.
func TestUnauthorizedNewDeviceBacksOff(t *testing.T) {
	const min = 10 * time.Millisecond
	type hello struct {
		credentials bool
		waited      int64 // how many waits the device had asked for before it
	}
	clk := newHeldClock()
	hellos := make(chan hello, 64)
	srv := device.ServeWebSocket(t, func(ws *websocket.Conn) {
		f, ok := device.ReadFrame(t, ws)
		if !ok || f.Type != wire.TypeHello {
			return
		}
		select {
		case hellos <- hello{f.DeviceToken != "", clk.asked.Load()}:
		default: // the test has failed already
		}
		device.WriteFrame(ws, &wire.Frame{Type: wire.TypeError, Code: wire.CodeUnauthorized, Message: "unknown device or wrong device token"})
		ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(wire.CloseUnauthorized, "unauthorized"), time.Now().Add(time.Second))
	})
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "device.json"), []byte(`{"device_id":"d1","device_token":"t1"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	var refusals atomic.Int64
	d, err := device.New(device.Config{Server: srv.URL, StateDir: dir, Logger: quietLogger(), Clock: clk, MinBackoff: min, MaxBackoff: time.Hour,
		Handlers: device.Handlers{Error: func(e *device.ChannelError) {
			if e.Type == device.ChannelOpenFailed {
				refusals.Add(1)
			}
		}}})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	timeout := time.After(20 * time.Second)
	nextHello := func() hello {
		t.Helper()
		select {
		case h := <-hellos:
			return h
		case <-timeout:
			t.Fatal("no hello")
			return hello{}
		}
	}
	if h := nextHello(); !h.credentials {
		t.Fatal("the first hello carried no credentials")
	}
	if h := nextHello(); h.credentials || h.waited != 0 {
		t.Fatalf("after unauthorized the device said hello again with credentials %v, after %d waits; want none and at once", h.credentials, h.waited)
	}
	// From now on each hello follows a wait the test releases.
	var waits []time.Duration
	for i := range int64(10) {
		select {
		case w := <-clk.waits:
			waits = append(waits, w.d)
			w.release()
		case h := <-hellos:
			t.Fatalf("hello %d came after %d waits: the device does not wait after the server refused it as a new device", i+3, h.waited)
		case <-timeout:
			t.Fatal("the device neither waited nor said hello")
		}
		if h := nextHello(); h.credentials || h.waited != i+1 {
			t.Fatalf("hello %d: credentials %v, after %d waits; want none, after %d", i+3, h.credentials, h.waited, i+1)
		}
	}
	if slices.Max(waits) <= 2*min {
		t.Fatalf("delays between refused hellos: %v (MinBackoff %v): the backoff never grows", waits, min)
	}
	d.Close() // delivers the events raised before it
	if n := refusals.Load(); n != 2 {
		t.Fatalf("%d ChannelOpenFailed events for one forgotten identity and 11 refused hellos as a new device; want 2", n)
	}
}
