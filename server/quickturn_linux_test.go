package server

import (
	"io"
	"log/slog"
	"runtime"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// quickSession is a session on the server end of a loopback connection,
// as ServeHTTP makes it, whose handler is taken to be running and
// stuck: nothing takes frames out of its inbox. The device's end is
// returned too.
func quickSession(t *testing.T) (*session, io.Writer) {
	t.Helper()
	client, conn := tcpPair(t)
	p, err := newPoller()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.close)
	cfg := Config{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	g := &gateway{cfg: &cfg, log: cfg.Logger, poll: p}
	s := &session{g: g, conn: conn, slotAt: -1, epoll: true, handling: true}
	if !s.takeOver() {
		t.Fatal("the connection cannot be polled")
	}
	s.reg.onReadable, s.reg.quick = s.onReadable, s.quickTurn
	s.reg.run.Store(regRunning) // as the poller's turn: rearm ends it
	return s, client
}

// quickTurnWithin runs s's quick turn, and fails rather than hangs when
// the turn waits.
func quickTurnWithin(t *testing.T, s *session) bool {
	t.Helper()
	ended := make(chan bool, 1)
	go func() { ended <- s.quickTurn() }()
	select {
	case e := <-ended:
		return e
	case <-time.After(pollTestWait): // a failure, never a pause
		t.Fatal("the quick turn waited")
		return false
	}
}

func (s *session) inboxLen() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.inbox)
}

// A quick turn (on the poller's goroutine, ahead of every other device)
// never waits for a handler that is behind: with maxInbox frames waiting
// it reads nothing and hands the turn to a worker; short of that, it takes
// at most one read buffer of frames past the bound before it hands the
// rest over, and what it leaves stays on the socket for the worker.
func TestQuickTurnNeverWaitsForTheHandler(t *testing.T) {
	frame := clientFrame(true, websocket.TextMessage, []byte(`{"type":"power","id":1,"power":"normal"}`))
	perBuffer := 4096/len(frame) + 1 // the frames one read may complete

	// A handler maxInbox frames behind: nothing is read.
	s, dev := quickSession(t)
	for range maxInbox {
		s.inbox = append(s.inbox, []byte("{}"))
	}
	if _, err := dev.Write(frame); err != nil {
		t.Fatal(err)
	}
	if quickTurnWithin(t, s) {
		t.Fatal("a quick turn ended with the handler maxInbox frames behind")
	}
	if n := s.inboxLen(); n != maxInbox {
		t.Fatalf("the quick turn took frames: %d in the inbox, want %d", n, maxInbox)
	}
	if s.reading.Load() {
		t.Fatal("the quick turn left the session marked as read: the worker's turn would not run")
	}
	var b [1]byte
	if n, err := readNow(s.raw, b[:]); n != 1 || err != nil {
		t.Fatalf("the frame is no longer on the socket for the worker: %d, %v", n, err)
	}

	// A handler one frame short of the bound, and a burst of many buffers.
	s, dev = quickSession(t)
	for range maxInbox - 1 {
		s.inbox = append(s.inbox, []byte("{}"))
	}
	const burst = 1000
	var all []byte
	for range burst {
		all = append(all, frame...)
	}
	written := make(chan error, 1)
	go func() { _, err := dev.Write(all); written <- err }()
	if err := <-written; err != nil { // fits in the loopback socket's buffers
		t.Fatal(err)
	}
	if quickTurnWithin(t, s) {
		t.Fatal("a quick turn ended with the handler behind and frames left on the socket")
	}
	taken := s.inboxLen() - (maxInbox - 1)
	if taken < 1 || s.inboxLen() > maxInbox+perBuffer {
		t.Fatalf("the quick turn took %d frames (inbox %d): want some, and at most one buffer's past %d", taken, s.inboxLen(), maxInbox)
	}
	// The worker's turn reads the rest, once the handler has taken frames
	// (the test takes them all, as the handler would).
	s.mu.Lock()
	s.inbox = nil
	s.mu.Unlock()
	turned := make(chan struct{})
	go func() {
		s.onReadable()
		close(turned)
	}()
	deadline := time.Now().Add(pollTestWait)
	for got := taken; got < burst; runtime.Gosched() {
		if time.Now().After(deadline) {
			t.Fatalf("the worker's turn read %d of the %d frames", got, burst)
		}
		s.mu.Lock()
		got += len(s.inbox)
		s.inbox = s.inbox[:0]
		if s.room != nil {
			select {
			case s.room <- struct{}{}:
			default:
			}
		}
		s.mu.Unlock()
		if got > burst {
			t.Fatalf("%d frames read, %d sent", got, burst)
		}
	}
	waitFor(t, turned)
	if s.reading.Load() || s.reg.run.Load() != regIdle {
		t.Fatalf("the worker's turn did not end: reading %v, state %d", s.reading.Load(), s.reg.run.Load())
	}
}

// A quick turn reads at most maxQuickReads buffers, even when nothing it
// reads goes to the handler: a device that keeps its socket full (of
// pongs, here) is read on to the end by a worker, not ahead of every other
// device.
func TestQuickTurnStopsAfterMaxQuickReads(t *testing.T) {
	pong := clientFrame(true, websocket.PongMessage, make([]byte, 125))
	s, dev := quickSession(t)
	var all []byte
	for len(all) <= (maxQuickReads+1)*4096 {
		all = append(all, pong...)
	}
	if _, err := dev.Write(all); err != nil {
		t.Fatal(err)
	}
	if quickTurnWithin(t, s) {
		t.Fatalf("a quick turn read all of %d bytes, more than %d reads of 4 KiB", len(all), maxQuickReads)
	}
	if s.reading.Load() || s.quick || s.behind {
		t.Fatalf("the hand-over left the turn's state: reading %v, quick %v, behind %v", s.reading.Load(), s.quick, s.behind)
	}
	var b [1]byte
	if n, err := readNow(s.raw, b[:]); n != 1 || err != nil {
		t.Fatalf("nothing was left on the socket for the worker: %d, %v", n, err)
	}
}
