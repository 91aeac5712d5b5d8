package device_test

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"runtime"
	"slices"
	"testing"
	"time"
	"weak"

	"github.com/gorilla/websocket"

	"github.com/openmpns/openmpns/device"
	"github.com/openmpns/openmpns/shared/wire"
)

// TestChannelObjectsOpeningAtOnceBothRaiseEvents: a Channel whose Open
// is still waiting for the server's answer when a second object of the
// app and name opens the channel (the first Open answered last) leaves
// both objects raising the channel's events: the Open answered last does
// not take the channel from the other object. The server is scripted, so
// that it answers the two opens in that order. An object that another's
// handler disposes raises no more, not even the event being raised.
func TestChannelObjectsOpeningAtOnceBothRaiseEvents(t *testing.T) {
	const app = "com.example.app"
	s := newScripted(t, app)
	s.d.SetAppState(app, device.AppState{Running: true})
	object := func(name string) *device.Channel {
		ch := s.d.NewChannel(app, "main", "")
		ch.SetEvents(device.ChannelEvents{HTTPNotificationReceived: func(_ device.Meta, b []byte) { s.got <- name + ": " + string(b) }})
		return ch
	}
	first := object("first")
	done := s.open(first)
	s.out <- opened(<-s.opens)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// The first object opens again (an app that calls Open at each
	// launch); the server answers once the second object's Open is done.
	again := s.open(first)
	held := <-s.opens
	second := object("second")
	done = s.open(second)
	s.out <- opened(<-s.opens)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	s.out <- opened(held)
	if err := <-again; err != nil {
		t.Fatal(err)
	}
	s.notify("n1", "x", "first: x", "second: x")
	// Disposed by the first object's handler: the second's handler does
	// not start, not even for the event being raised.
	first.SetEvents(device.ChannelEvents{HTTPNotificationReceived: func(_ device.Meta, b []byte) {
		second.Dispose()
		s.got <- "first: " + string(b)
	}})
	s.notify("n2", "y", "first: y")
	runtime.KeepAlive(first) // the device holds its objects weakly
}

// scripted is a device whose server is scripted (holdOpens), for a test
// that ends, at the latest, when ctx does.
type scripted struct {
	t     *testing.T
	app   string // notify's
	d     *device.Device
	ctx   context.Context
	opens chan *wire.Frame
	acks  chan string
	out   chan *wire.Frame
	// got is where the test's handlers say what they heard.
	got chan string
}

func newScripted(t *testing.T, app string) *scripted {
	srv, opens, acks, out := holdOpens(t)
	d, err := device.New(device.Config{Server: srv.URL, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	t.Cleanup(cancel)
	return &scripted{t: t, app: app, d: d, ctx: ctx, opens: opens, acks: acks, out: out, got: make(chan string, 8)}
}

// open opens ch in the background: its Open's error comes on the channel
// returned.
func (s *scripted) open(ch *device.Channel) <-chan error {
	done := make(chan error, 1)
	go func() { done <- ch.Open(s.ctx) }()
	return done
}

// opened is the server's answer to f, an open: the channel has the URI
// http://x/push/tok.
func opened(f *wire.Frame) *wire.Frame {
	return &wire.Frame{Type: wire.TypeOpened, Re: f.ID, App: f.App, Channel: f.Channel, URI: "http://x/push/tok"}
}

// notify has the server push raw data to s.app's channel and checks the
// events its handlers raised (got): all of them once the device acks it.
func (s *scripted) notify(nid, data string, want ...string) {
	s.t.Helper()
	s.out <- &wire.Frame{Type: wire.TypeNotify, NID: nid, App: s.app, Channel: "tok", Kind: "raw", Class: 3, Payload: []byte(data)}
	select {
	case id := <-s.acks:
		if id != nid {
			s.t.Fatalf("acked %q, want %s", id, nid)
		}
	case <-s.ctx.Done():
		s.t.Fatalf("%s was not acked", nid)
	}
	var events []string
	for len(s.got) > 0 {
		events = append(events, <-s.got)
	}
	if !slices.Equal(events, want) {
		s.t.Fatalf("events %q, want %q", events, want)
	}
}

// holdOpens starts a scripted server: it answers a device's hello and
// setup, hands the test each open frame unanswered (opens) and each id
// the device acks (acks), and writes the frames the test gives it (out).
func holdOpens(t *testing.T) (srv *httptest.Server, opens chan *wire.Frame, acks chan string, out chan *wire.Frame) {
	opens = make(chan *wire.Frame)
	acks = make(chan string, 4)
	out = make(chan *wire.Frame)
	srv = device.ServeWebSocket(t, func(ws *websocket.Conn) {
		in := make(chan *wire.Frame)
		go func() {
			defer close(in)
			for {
				f, ok := device.ReadFrame(t, ws)
				if !ok {
					return
				}
				in <- f
			}
		}()
		for {
			select {
			case f, ok := <-in:
				if !ok {
					return
				}
				switch f.Type {
				case wire.TypeOpen:
					opens <- f
				case wire.TypeAck:
					for _, id := range f.NIDs {
						acks <- id
					}
				default:
					if a := device.SetupAnswer(f, 30*time.Second); a != nil {
						device.WriteFrame(ws, a)
					}
				}
			case f := <-out:
				device.WriteFrame(ws, f)
			}
		}
	})
	return srv, opens, acks, out
}

// TestDisposedWhileOpeningStandsForNothing: an object disposed while its
// Open waits for the server's answer is not brought back when the answer
// comes: Open returns ErrNotOpen, and Find returns another object for the
// channel, which is open.
func TestDisposedWhileOpeningStandsForNothing(t *testing.T) {
	const app = "com.example.app"
	s := newScripted(t, app)
	ch := s.d.NewChannel(app, "main", "")
	done := s.open(ch)
	f := <-s.opens
	ch.Dispose()
	s.out <- opened(f)
	if err := <-done; !errors.Is(err, device.ErrNotOpen) {
		t.Fatalf("Open of an object disposed while it opened: %v, want ErrNotOpen", err)
	}
	if ch.ChannelURI() != "" {
		t.Errorf("the disposed object reports the URI %q", ch.ChannelURI())
	}
	found := s.d.Find(app, "main")
	if found == nil || found == ch {
		t.Fatalf("Find returned %p (the disposed object is %p)", found, ch)
	}
	if found.ChannelURI() != "http://x/push/tok" {
		t.Errorf("the channel found has the URI %q", found.ChannelURI())
	}
}

// TestDroppedObjectsStopRaisingEvents: the device holds an app's channel
// objects weakly. An object the program no longer references is freed by
// the next collection, though its handler references it, and its handlers
// run no more, while the object the program holds raises the channel's
// events as before. Objects opened anew and dropped (an app that opens a
// channel object at each launch), and objects Find made for a channel
// whose objects were all dropped, do not pile up on the channel, and Find
// returns the last object the program still holds.
func TestDroppedObjectsStopRaisingEvents(t *testing.T) {
	const app = "com.example.app"
	s := newScripted(t, app)
	d := s.d
	d.SetAppState(app, device.AppState{Running: true})
	// listen sets ch's handler, which references ch.
	listen := func(ch *device.Channel, name string) {
		ch.SetEvents(device.ChannelEvents{HTTPNotificationReceived: func(_ device.Meta, b []byte) {
			s.got <- name + ": " + string(b) + " on " + ch.Name()
		}})
	}
	object := func(name string) *device.Channel {
		ch := d.NewChannel(app, "main", "")
		listen(ch, name)
		done := s.open(ch)
		s.out <- opened(<-s.opens)
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		return ch
	}
	held := object("held")
	dropped := object("dropped")
	freed := weak.Make(dropped)
	s.notify("n1", "a", "held: a on main", "dropped: a on main")
	runtime.KeepAlive(dropped) // and no further
	runtime.GC()
	if freed.Value() != nil {
		t.Fatal("an object the program dropped, whose handler references it, was not freed")
	}
	s.notify("n2", "b", "held: b on main")

	for i := range 20 {
		object(fmt.Sprint("launch ", i))
		runtime.GC()
	}
	if found := d.Find(app, "main"); found != held {
		t.Fatal("Find does not return the last object the program holds")
	}
	s.notify("n3", "c", "held: c on main")
	if n := d.ObjectsOf(app); n != 1 {
		t.Fatalf("the channel keeps %d objects, want the one held", n)
	}

	runtime.KeepAlive(held) // and no further
	runtime.GC()
	for i := range 20 {
		listen(d.Find(app, "main"), fmt.Sprint("find ", i))
		runtime.GC()
	}
	if n := d.ObjectsOf(app); n > 1 {
		t.Fatalf("after 20 objects found and dropped, the channel keeps %d", n)
	}
	last := d.Find(app, "main")
	listen(last, "last")
	s.notify("n4", "d", "last: d on main")
	if n := d.ObjectsOf(app); n != 1 {
		t.Fatalf("the channel keeps %d objects, want the one held", n)
	}
	runtime.KeepAlive(last)
}
