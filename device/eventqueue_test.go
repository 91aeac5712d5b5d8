package device

import (
	"io"
	"log/slog"
	"testing"
	"time"
)

// TestEventGoroutineIsRecognised: mayBeOnEventGoroutine is true in a
// function the queue runs, and false on any other goroutine: the caller of
// push, a goroutine a handler starts, and every goroutine once the queue
// is idle.
func TestEventGoroutineIsRecognised(t *testing.T) {
	e := newEventQueue()
	type answers struct{ inHandler, fromChild, fromOutside bool }
	got := make(chan answers, 1)
	release := make(chan struct{})
	asked := make(chan bool, 1)
	e.push(func() {
		var a answers
		a.inHandler = e.mayBeOnEventGoroutine()
		child := make(chan bool)
		go func() { child <- e.mayBeOnEventGoroutine() }()
		a.fromChild = <-child
		got <- a
		<-release
	})
	a := <-got
	go func() { asked <- e.mayBeOnEventGoroutine() }()
	a.fromOutside = <-asked
	close(release)
	e.close()
	e.wait()
	if !a.inHandler {
		t.Error("a handler is not recognised as running on the event goroutine")
	}
	if a.fromChild {
		t.Error("a goroutine started by a handler is taken for the event goroutine")
	}
	if a.fromOutside {
		t.Error("a goroutine outside the queue is taken for the event goroutine")
	}
	if e.mayBeOnEventGoroutine() {
		t.Error("an idle queue says its caller may be its event goroutine")
	}
}

// TestEventGoroutineIsRecognisedDeepInAHandler: the walk of the caller's
// stack finds the event goroutine's first frame under many others.
func TestEventGoroutineIsRecognisedDeepInAHandler(t *testing.T) {
	e := newEventQueue()
	got := make(chan bool, 1)
	var deep func(n int) bool
	deep = func(n int) bool {
		if n == 0 {
			return e.mayBeOnEventGoroutine()
		}
		return deep(n-1) && n > 0
	}
	e.push(func() { got <- deep(300) })
	if !<-got {
		t.Error("a handler 300 calls deep is not recognised as running on the event goroutine")
	}
	e.close()
	e.wait()
}

// TestCloseFromAnotherDevicesHandler: Close cannot tell a handler of its
// own device from another device's (Close's doc), so a handler of device A
// that closes device B while one of B's handlers runs gets Close's answer
// without waiting for B's handler; B's event goroutine ends once that
// handler returns.
func TestCloseFromAnotherDevicesHandler(t *testing.T) {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	a, err := New(Config{Server: "http://127.0.0.1:1", MinBackoff: time.Hour, MaxBackoff: time.Hour, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := New(Config{Server: "http://127.0.0.1:1", MinBackoff: time.Hour, MaxBackoff: time.Hour, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	inB := make(chan struct{})
	releaseB := make(chan struct{})
	b.events.push(func() { close(inB); <-releaseB })
	<-inB
	closed := make(chan error, 1)
	a.events.push(func() { closed <- b.Close() })
	select {
	case err := <-closed:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Close from another device's handler waited for this device's running handler")
	}
	close(releaseB)
	b.events.wait()
}

// TestClaimKeepsTheOrder: claim makes the caller the runner of an idle
// queue only; events pushed while it runs its own wait for it and run, in
// order, on the caller when it calls run, which gives the queue up. A
// closed queue or one with a runner cannot be claimed.
func TestClaimKeepsTheOrder(t *testing.T) {
	e := newEventQueue()
	if !e.claim() {
		t.Fatal("an idle queue cannot be claimed")
	}
	var order []int
	e.push(func() { order = append(order, 2) }) // queued behind the claimer, no goroutine started
	e.push(func() { order = append(order, 3) })
	if e.claim() {
		t.Fatal("a claimed queue was claimed again")
	}
	order = append(order, 1) // the claimer's own event
	e.run()
	if len(order) != 3 || order[0] != 1 || order[1] != 2 || order[2] != 3 {
		t.Fatalf("events ran in the order %v, want [1 2 3]", order)
	}
	if !e.claim() {
		t.Fatal("the queue given up by run cannot be claimed")
	}
	e.run()
	e.close()
	if e.claim() {
		t.Fatal("a closed queue was claimed")
	}
	e.wait()
}
