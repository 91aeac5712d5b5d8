package rawsock_test

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/openmpns/openmpns/shared/rawsock"
)

// pair returns both ends of a loopback TCP connection, closed when the
// test ends.
func pair(t *testing.T) (a, b net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	a, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	b = <-accepted
	if b == nil {
		a.Close()
		t.Fatal("no connection accepted")
	}
	t.Cleanup(func() { a.Close(); b.Close() })
	return a, b
}

func wrapped(t *testing.T, c net.Conn) net.Conn {
	t.Helper()
	w := rawsock.Wrap(c)
	if runtime.GOOS == "linux" && !rawsock.Raw(w) {
		t.Fatalf("Wrap gave %T on Linux", w)
	}
	return w
}

// A wrapped connection moves bytes as the connection would: a write larger
// than the socket's buffers waits for the reader and writes it all, a read
// after the peer closed says io.EOF, and a read past its deadline says so.
func TestWrapMovesBytesAsTheConnectionWould(t *testing.T) {
	a, b := pair(t)
	wa, rb := wrapped(t, a), wrapped(t, b)
	want := bytes.Repeat([]byte("openmpns raw io "), 1<<19) // 8 MiB
	wrote := make(chan error, 1)
	go func() {
		n, err := wa.Write(want)
		if err == nil && n != len(want) {
			err = io.ErrShortWrite
		}
		wa.Close()
		wrote <- err
	}()
	got, err := io.ReadAll(rb) // to io.EOF, which ReadAll does not return
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("read %d bytes of %d: %v", len(got), len(want), err)
	}
	if err := <-wrote; err != nil {
		t.Fatalf("write: %v", err)
	}
	if n, err := rb.Read(make([]byte, 8)); n != 0 || err != io.EOF {
		t.Fatalf("read after the peer closed: %d, %v", n, err)
	}
	rb.SetReadDeadline(time.Unix(1, 0))
	if _, err := rb.Read(make([]byte, 8)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read past its deadline: %v", err)
	}
	if n, err := rb.Read(nil); n != 0 || err != nil {
		t.Fatalf("an empty read: %d, %v", n, err)
	}
}

// A Read waiting on a connection and Writes on it run at once (a
// WebSocket client's reader and its writer), each direction with its own
// state: an echo of 1,000 messages comes back whole, under -race.
func TestWrapReadsAndWritesAtOnce(t *testing.T) {
	a, b := pair(t)
	wa := wrapped(t, a)
	go io.Copy(b, b) // the peer echoes
	const n, size = 1000, 100
	read := make(chan error, 1)
	go func() {
		buf := make([]byte, n*size)
		_, err := io.ReadFull(wa, buf)
		for i := range n {
			if err == nil && buf[i*size] != byte(i) {
				err = errors.New("out of order")
			}
		}
		read <- err
	}()
	msg := make([]byte, size)
	for i := range n {
		msg[0] = byte(i)
		if _, err := wa.Write(msg); err != nil {
			t.Fatal(err)
		}
	}
	if err := <-read; err != nil {
		t.Fatal(err)
	}
}

// Close ends a Read that waits, with net.ErrClosed, as it does on the
// connection itself (a device ends its reader that way).
func TestCloseEndsAWaitingRead(t *testing.T) {
	a, _ := pair(t)
	wa := wrapped(t, a)
	done := make(chan error, 1)
	go func() {
		_, err := wa.Read(make([]byte, 8))
		done <- err
	}()
	// The Read either waits already or finds the connection closed: both
	// end in net.ErrClosed, never a hang.
	wa.Close()
	if err := <-done; !errors.Is(err, net.ErrClosed) {
		t.Fatalf("read on a closed connection: %v", err)
	}
	if _, err := wa.Write([]byte("x")); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("write on a closed connection: %v", err)
	}
}

// ReadWriter takes a non-blocking *os.File (the load tool's timerfd): a
// pipe's bytes come through, and a value without a descriptor comes back
// as it is.
func TestReadWriterOnAFile(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	rr, ww := rawsock.ReadWriter(r), rawsock.ReadWriter(w)
	if runtime.GOOS == "linux" && (!rawsock.Raw(rr) || !rawsock.Raw(ww)) {
		t.Fatalf("ReadWriter gave %T and %T on Linux", rr, ww)
	}
	if _, err := ww.Write([]byte("tick")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 8)
	if n, err := rr.Read(buf); err != nil || string(buf[:n]) != "tick" {
		t.Fatalf("read %q, %v", buf[:n], err)
	}
	var b bytes.Buffer
	if got := rawsock.ReadWriter(&b); got != io.ReadWriter(&b) || rawsock.Raw(got) {
		t.Fatalf("a bytes.Buffer came back as %T", got)
	}
}

// Writes at once on a wrapped connection take turns, as on a net.Conn
// (whose Writes hold the descriptor's write lock throughout): each is
// written whole, none lost or interleaved with another. A device writes
// acks itself while gorilla writes its pongs.
func TestWrapWritesAtOnceStayWhole(t *testing.T) {
	a, b := pair(t)
	wa := wrapped(t, a)
	const writers, n, size = 4, 2000, 100
	got := make(chan []byte, 1)
	go func() {
		all, _ := io.ReadAll(io.LimitReader(b, writers*n*size))
		got <- all
	}()
	errs := make(chan error, writers)
	for w := range writers {
		go func() {
			msg := bytes.Repeat([]byte{byte('a' + w)}, size)
			for range n {
				if _, err := wa.Write(msg); err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for range writers {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	b.SetReadDeadline(time.Now().Add(10 * time.Second))
	all := <-got
	if len(all) != writers*n*size {
		t.Fatalf("read %d bytes, want %d", len(all), writers*n*size)
	}
	count := map[byte]int{}
	for i := 0; i < len(all); i += size {
		m := all[i : i+size]
		if !bytes.Equal(m, bytes.Repeat(m[:1], size)) {
			t.Fatalf("message %d is mixed: %q", i/size, m)
		}
		count[m[0]]++
	}
	for w := range writers {
		if count[byte('a'+w)] != n {
			t.Fatalf("writer %d: %d messages whole, want %d", w, count[byte('a'+w)], n)
		}
	}
}

// countingConn is a connection type of the kind a Config.NetDial may
// return (a byte counter, a throttle, a fault injector): it embeds
// *net.TCPConn, and with it SyscallConn, but reads and writes through its
// own methods.
type countingConn struct {
	*net.TCPConn
	reads, writes int
}

func (c *countingConn) Read(p []byte) (int, error)  { c.reads++; return c.TCPConn.Read(p) }
func (c *countingConn) Write(p []byte) (int, error) { c.writes++; return c.TCPConn.Write(p) }

// Wrap leaves alone a connection whose Read and Write are its own: raw
// system calls on its descriptor would go around them.
func TestWrapLeavesAConnWithItsOwnReadAndWrite(t *testing.T) {
	a, b := pair(t)
	cc := &countingConn{TCPConn: a.(*net.TCPConn)}
	w := rawsock.Wrap(cc)
	go b.Write([]byte("x"))
	if _, err := io.ReadFull(w, make([]byte, 1)); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("y")); err != nil {
		t.Fatal(err)
	}
	if cc.reads == 0 || cc.writes == 0 {
		t.Fatalf("Wrap gave %T, which went around the connection's own Read (%d calls) and Write (%d calls)", w, cc.reads, cc.writes)
	}
}

// Errors read as a net.Conn's do: a *net.OpError that names the operation
// ("read", not the poller's "raw-read") and the addresses, and still
// answers errors.Is for a deadline, a closed connection and a reset.
func TestWrapErrorsLookLikeTheConnections(t *testing.T) {
	a, b := pair(t)
	wa := wrapped(t, a)
	wa.SetReadDeadline(time.Unix(1, 0))
	_, err := wa.Read(make([]byte, 8))
	var oe *net.OpError
	if !errors.As(err, &oe) || oe.Op != "read" || oe.Addr == nil || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read past its deadline: %#v (%v)", err, err)
	}
	// A reset: the peer closes with unread bytes, which sends an RST.
	b.(*net.TCPConn).SetLinger(0)
	b.Close()
	wa.SetDeadline(time.Now().Add(10 * time.Second))
	var werr error
	for range 100 { // the reset arrives after the first write or two
		if _, werr = wa.Write([]byte("x")); werr != nil {
			break
		}
	}
	if !errors.As(werr, &oe) || oe.Op != "write" || oe.Addr == nil || oe.Source == nil || oe.Net != "tcp" {
		t.Fatalf("write to a reset connection: %#v (%v)", werr, werr)
	}
	if !errors.Is(werr, syscall.ECONNRESET) && !errors.Is(werr, syscall.EPIPE) {
		t.Fatalf("write to a reset connection: %v, want ECONNRESET or EPIPE", werr)
	}
	wa.Close()
	if _, err := wa.Read(make([]byte, 8)); !errors.As(err, &oe) || oe.Op != "read" || !errors.Is(err, net.ErrClosed) {
		t.Fatalf("read on a closed connection: %#v (%v)", err, err)
	}
}
