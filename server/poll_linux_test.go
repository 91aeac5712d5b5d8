package server

import (
	"net"
	"runtime"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// An event that comes while a connection's turn runs brings another turn
// after it, on the same worker, even once the poller is closed; one turn
// runs at a time, and what arrived during the first is read by the second.
func TestPollerRunsATurnAgainForAnEventDuringIt(t *testing.T) {
	client, raw, p, reg := pollerPair(t)
	started := make(chan int, 4)   // a turn started (its number)
	proceed := make(chan struct{}) // the first turn may read
	read := make(chan string, 4)   // what each turn read
	var turns, running atomic.Int32
	reg.onReadable = func() {
		n := turns.Add(1)
		if running.Add(1) != 1 {
			t.Error("two turns at once")
		}
		started <- int(n)
		if n == 1 {
			<-proceed
		}
		read <- readDrained(raw)
		running.Add(-1)
		p.rearm(reg)
	}
	if err := p.watch(reg); err != nil {
		t.Fatal(err)
	}

	client.Write([]byte("a"))
	if n := waitFor(t, started); n != 1 {
		t.Fatalf("turn %d started first", n)
	}
	// The turn waits before reading: these bytes bring an event during it.
	client.Write([]byte("b"))
	deadline := time.Now().Add(pollTestWait)
	for reg.run.Load() != regAgain {
		if time.Now().After(deadline) {
			t.Fatal("the event during the turn was not noted")
		}
		runtime.Gosched()
	}
	p.unwatch(reg)
	p.close() // its workers no longer wait for work; the turn runs on
	close(proceed)
	if got := waitFor(t, read); got != "ab" {
		t.Fatalf("the first turn read %q, want both writes", got)
	}
	if n := waitFor(t, started); n != 2 {
		t.Fatalf("turn %d started second", n)
	}
	if got := waitFor(t, read); got != "" {
		t.Fatalf("the second turn read %q, want nothing left", got)
	}
	deadline = time.Now().Add(pollTestWait)
	for reg.run.Load() != regIdle {
		if time.Now().After(deadline) {
			t.Fatalf("the turns ended in state %d, want idle", reg.run.Load())
		}
		runtime.Gosched()
	}
}

// pollerPair is a loopback connection and a poller to watch its accepted
// end: the peer's end, the accepted end's RawConn, the poller (closed when
// the test ends) and a registration of the accepted end's descriptor, not
// yet watched.
func pollerPair(t *testing.T) (peer net.Conn, raw syscall.RawConn, p *poller, reg *pollReg) {
	t.Helper()
	peer, conn := tcpPair(t)
	fd, raw, err := connFD(conn)
	if err != nil {
		t.Fatal(err)
	}
	p, err = newPoller()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.close)
	return peer, raw, p, &pollReg{fd: int32(fd)}
}

// readDrained reads what the socket holds, without waiting.
func readDrained(raw syscall.RawConn) string {
	var got []byte
	buf := make([]byte, 64)
	for {
		k, err := readNow(raw, buf)
		got = append(got, buf[:k]...)
		if err != nil || k < len(buf) {
			return string(got)
		}
	}
}

func waitFor[T any](t *testing.T, c <-chan T) T {
	t.Helper()
	select {
	case v := <-c:
		return v
	case <-time.After(pollTestWait):
		t.Fatal("nothing came")
		panic("unreachable")
	}
}

// pollTestWait bounds the poller tests' waits for an event (a failure,
// never a pause).
const pollTestWait = 20 * time.Second

// tcpPair returns both ends of a TCP connection on loopback: the peer's
// and the accepted one. Both close when the test ends.
func tcpPair(t *testing.T) (peer, conn net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	peer, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { peer.Close() })
	conn, err = ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return peer, conn
}

// A registration's quick turn runs on the poller's goroutine; one that
// cannot finish there (it returns false, without rearming) is finished by
// onReadable on a worker, and the registration is idle again after it.
func TestPollerHandsAnUnfinishedQuickTurnToAWorker(t *testing.T) {
	client, raw, p, reg := pollerPair(t)
	quick := make(chan string, 4)  // what each quick turn read
	worker := make(chan string, 4) // what each worker turn read
	readAll := func() string { return readDrained(raw) }
	reg.quick = func() bool {
		// The first byte only: "s" asks for the rest on a worker.
		var b [1]byte
		if k, _ := readNow(raw, b[:]); k == 1 && b[0] == 's' {
			quick <- "s"
			return false
		}
		quick <- string(b[:]) + readAll()
		p.rearm(reg)
		return true
	}
	reg.onReadable = func() {
		worker <- readAll()
		p.rearm(reg)
	}
	if err := p.watch(reg); err != nil {
		t.Fatal(err)
	}
	idle := func() {
		t.Helper()
		deadline := time.Now().Add(pollTestWait)
		for reg.run.Load() != regIdle {
			if time.Now().After(deadline) {
				t.Fatalf("the turn ended in state %d, want idle", reg.run.Load())
			}
			runtime.Gosched()
		}
	}

	client.Write([]byte("abc"))
	if got := waitFor(t, quick); got != "abc" {
		t.Fatalf("the quick turn read %q, want abc", got)
	}
	idle()
	client.Write([]byte("slow"))
	if got := waitFor(t, quick); got != "s" {
		t.Fatalf("the quick turn read %q, want s", got)
	}
	if got := waitFor(t, worker); got != "low" {
		t.Fatalf("the worker read %q, want the rest of the turn, low", got)
	}
	idle()
	client.Write([]byte("xyz")) // quick again: the worker's turn ended
	if got := waitFor(t, quick); got != "xyz" {
		t.Fatalf("the quick turn read %q, want xyz", got)
	}
	select {
	case got := <-worker:
		t.Fatalf("a worker ran a turn that the quick one finished (read %q)", got)
	default:
	}
}
