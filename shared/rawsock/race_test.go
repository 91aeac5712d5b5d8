//go:build race

package rawsock_test

import (
	"io"
	"net"
	"testing"
)

// What a goroutine wrote before it wrote to a socket is seen, race-free,
// by the goroutine that read that from the socket's peer: the race
// detector orders a read system call after the writes before it (the
// syscall package's ioSync), as it does for a net.Conn, so that a -race
// test of a client and a server in one process reports no false race.
func TestWrapKeepsTheRaceDetectorsOrderOfIO(t *testing.T) {
	for _, wrap := range []bool{false, true} {
		a, b := pair(t)
		r := b
		if wrap {
			r = wrapped(t, b)
		}
		x := 0
		go func(c net.Conn) {
			x = 1 // published by the write below, as a server's state is by its frames
			c.Write([]byte{1})
		}(a)
		if _, err := io.ReadFull(r, make([]byte, 1)); err != nil {
			t.Fatal(err)
		}
		if x != 1 {
			t.Fatalf("read x = %d after the byte written after it (wrapped: %v)", x, wrap)
		}
	}
}
