package server

import (
	"errors"
	"net"
	"os"
	"testing"
	"time"
)

// A pollConn that gives each write a deadline of its own keeps a deadline
// its caller set that is still ahead (a close's second, a frame's write
// timeout): against a peer that does not read, the write ends at it.
func TestPollConnKeepsTheCallersDeadline(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close() // never reads
	sc, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	c := &pollConn{Conn: sc}
	defer c.Close()
	c.deadlineEachWrite(time.Hour)
	done := make(chan error, 1)
	big := make([]byte, 64<<20) // more than the sockets hold
	go func() {
		// As a caller does: its deadline, then at once its write.
		c.SetWriteDeadline(time.Now().Add(200 * time.Millisecond))
		_, err := c.Write(big)
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("write: %v, want the caller's deadline exceeded", err)
		}
	case <-time.After(time.Minute): // a guard against a hang, not a measure
		t.Fatal("the write outlived the deadline its caller set")
	}
}
