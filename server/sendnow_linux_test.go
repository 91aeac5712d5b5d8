package server

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/openmpns/openmpns/shared/wire"
)

// A frame that the socket does not take at once (here not a byte of it:
// the socket is full) is left to the writer goroutine, and frames sent
// meanwhile follow it, in order, once the device reads.
func TestSendNowLeavesAFullSocketToTheWriter(t *testing.T) {
	device, conn := tcpPair(t)
	_, raw, err := connFD(conn)
	if err != nil {
		t.Fatal(err)
	}
	g := &gateway{cfg: &Config{WriteTimeout: time.Minute}, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	s := &session{g: g, conn: conn, epoll: true, raw: raw}

	// Fill the socket (and the device's receive buffer) until it takes
	// nothing more.
	filler := bytes.Repeat([]byte{'x'}, 4096)
	filled := 0
	for {
		n, err := writeNow(raw, filler)
		filled += n
		if errors.Is(err, errWouldBlock) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	first := &wire.Frame{Type: wire.TypeNotify, NID: "1", App: "a", Kind: "raw", Payload: []byte("one")}
	second := &wire.Frame{Type: wire.TypeNotify, NID: "2", App: "a", Kind: "raw", Payload: []byte("two")}
	if !s.send(first) || !s.send(second) {
		t.Fatal("send refused")
	}
	s.mu.Lock()
	writing := s.writing
	s.mu.Unlock()
	if !writing {
		t.Fatal("nothing is left to write, though the socket took nothing")
	}

	device.SetReadDeadline(time.Now().Add(time.Minute)) // a failure, never a wait
	if _, err := io.CopyN(io.Discard, device, int64(filled)); err != nil {
		t.Fatal(err)
	}
	for _, want := range []*wire.Frame{first, second} {
		var h [2]byte
		if _, err := io.ReadFull(device, h[:]); err != nil {
			t.Fatal(err)
		}
		payload := make([]byte, h[1]&0x7f) // short frames: the length is in the header
		if _, err := io.ReadFull(device, payload); err != nil {
			t.Fatal(err)
		}
		b, _ := wire.Encode(want)
		if h[0] != 0x81 || !bytes.Equal(payload, b) {
			t.Fatalf("got frame %#x %s, want a text frame %s", h[0], payload, b)
		}
	}
}
