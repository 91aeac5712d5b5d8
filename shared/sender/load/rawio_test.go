package load

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"
)

// rawIO moves bytes as the connection would: a write larger than the
// socket's buffers waits for the reader and writes it all, a read after the
// peer closed says io.EOF, and a read past its deadline says so.
func TestRawIO(t *testing.T) {
	addr, accepted := AcceptOne(t)
	a, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b := <-accepted
	if b == nil {
		t.Fatal("no connection accepted")
	}
	defer b.Close()
	wa, rb := newRawIO(a), newRawIO(b)
	if _, ok := wa.(*rawIO); !ok {
		t.Skipf("no raw system calls here (%T)", wa)
	}

	want := bytes.Repeat([]byte("openmpns raw io "), 1<<19) // 8 MiB
	wrote := make(chan error, 1)
	go func() {
		n, err := wa.Write(want)
		if err == nil && n != len(want) {
			err = io.ErrShortWrite
		}
		a.Close()
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

	b.SetReadDeadline(time.Unix(1, 0))
	if _, err := rb.Read(make([]byte, 8)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read past its deadline: %v", err)
	}
}

// AcceptOne listens on a loopback port, until the test ends, and accepts
// one connection there in the background. It returns the port's address
// and a channel that delivers the connection, or is closed if accepting
// fails. It is exported, in a test file, for the tests of package
// load_test as well.
func AcceptOne(tb testing.TB) (addr string, accepted <-chan net.Conn) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { ln.Close() })
	conns := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			close(conns)
			return
		}
		conns <- c
	}()
	return ln.Addr().String(), conns
}
