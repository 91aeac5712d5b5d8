package load

import (
	"net"
	"testing"
)

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
