package device_test

import (
	"fmt"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/openmpns/openmpns/device"
)

// handlerStack returns the names of the functions on the caller's stack.
func handlerStack() string {
	pcs := make([]uintptr, 256)
	frames := runtime.CallersFrames(pcs[:runtime.Callers(1, pcs)])
	var names []string
	for {
		f, more := frames.Next()
		names = append(names, f.Function)
		if !more {
			return strings.Join(names, "\n")
		}
	}
}

// TestPromptHandlersRunOnTheReader: with Config.PromptHandlers a
// notification that arrives while no event runs is handled on the
// connection's reader (no goroutine is started for it); without, always
// on an event goroutine. Either way the notifications reach the handler in
// order and each is acknowledged after its handler ran. (An event
// goroutine may still be finishing when the next notification arrives,
// which then goes to it: hence up to 50 notifications, until one is
// handled on the reader.)
func TestPromptHandlersRunOnTheReader(t *testing.T) {
	for _, prompt := range []bool{false, true} {
		stacks := make(chan string, 1)
		_, ws := scriptedDevice(t, device.Config{PromptHandlers: prompt,
			Handlers: device.Handlers{Raw: func(m device.Meta, _ []byte) { stacks <- m.ID + "\n" + handlerStack() }}})
		onReader := 0
		for i := range 50 {
			nid := fmt.Sprint("n", i)
			notify(t, ws, nid, []byte("x"))
			if got := readAck(t, ws); got != nid {
				t.Fatalf("PromptHandlers %v: the ack of %s, want %s's", prompt, got, nid)
			}
			st := <-stacks // the ack came after the handler ran
			id, st, _ := strings.Cut(st, "\n")
			if id != nid {
				t.Fatalf("PromptHandlers %v: the handler saw %s, want %s", prompt, id, nid)
			}
			reader := slices.Contains(strings.Split(st, "\n"), "github.com/openmpns/openmpns/device.(*conn).readLoop")
			events := slices.Contains(strings.Split(st, "\n"), "github.com/openmpns/openmpns/device.(*eventQueue).run")
			if reader == events {
				t.Fatalf("PromptHandlers %v: the handler runs on the reader %v, on an event goroutine %v:\n%s", prompt, reader, events, st)
			}
			if reader {
				onReader++
				if prompt {
					break
				}
			}
		}
		if prompt && onReader == 0 {
			t.Error("PromptHandlers: no notification of 50 was handled on the reader")
		}
		if !prompt && onReader > 0 {
			t.Errorf("without PromptHandlers, %d notifications were handled on the reader", onReader)
		}
	}
}
