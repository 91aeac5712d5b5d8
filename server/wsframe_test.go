package server

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/gorilla/websocket"
)

// clientFrame builds a masked client frame.
func clientFrame(fin bool, op int, payload []byte) []byte {
	b0 := byte(op)
	if fin {
		b0 |= 0x80
	}
	out := []byte{b0}
	switch n := len(payload); {
	case n < 126:
		out = append(out, 0x80|byte(n))
	case n < 1<<16:
		out = append(out, 0x80|126, byte(n>>8), byte(n))
	default:
		out = append(out, 0x80|127)
		out = binary.BigEndian.AppendUint64(out, uint64(n))
	}
	key := []byte{1, 2, 3, 4}
	out = append(out, key...)
	for i, c := range payload {
		out = append(out, c^key[i&3])
	}
	return out
}

func collect(t *testing.T, r *frameReader, chunks ...[]byte) ([]wsEvent, *wsError) {
	t.Helper()
	var evs []wsEvent
	for _, c := range chunks {
		if err := r.feed(append([]byte(nil), c...), func(e wsEvent) bool {
			evs = append(evs, wsEvent{op: e.op, data: append([]byte(nil), e.data...)})
			return true
		}); err != nil {
			return evs, err
		}
	}
	return evs, nil
}

func TestFrameReaderAssemblesMessages(t *testing.T) {
	big := bytes.Repeat([]byte("x"), 70000)
	stream := bytes.Join([][]byte{
		clientFrame(true, websocket.TextMessage, []byte(`{"type":"ack"}`)),
		clientFrame(true, websocket.PingMessage, []byte("p")),
		clientFrame(false, websocket.TextMessage, []byte(`{"type":`)),
		clientFrame(true, websocket.PongMessage, nil), // control frames may come between fragments
		clientFrame(false, 0, []byte(`"hello"`)),
		clientFrame(true, 0, []byte(`}`)),
		clientFrame(true, websocket.BinaryMessage, big[:300]),
		clientFrame(true, websocket.CloseMessage, []byte{0x03, 0xe8, 'b', 'y', 'e'}),
	}, nil)
	want := []wsEvent{
		{websocket.TextMessage, []byte(`{"type":"ack"}`)},
		{websocket.PingMessage, []byte("p")},
		{websocket.PongMessage, []byte{}},
		{websocket.TextMessage, []byte(`{"type":"hello"}`)},
		{websocket.BinaryMessage, big[:300]},
		{websocket.CloseMessage, []byte{0x03, 0xe8, 'b', 'y', 'e'}},
	}
	// Whole, and split at every possible point into two reads, and byte by byte.
	splits := [][][]byte{{stream}}
	for i := 1; i < len(stream); i += 7 {
		splits = append(splits, [][]byte{stream[:i], stream[i:]})
	}
	var bytewise [][]byte
	for i := range stream {
		bytewise = append(bytewise, stream[i:i+1])
	}
	splits = append(splits, bytewise)
	for _, chunks := range splits {
		r := &frameReader{limit: 16384}
		got, err := collect(t, r, chunks...)
		if err != nil {
			t.Fatalf("split %d: %v", len(chunks[0]), err)
		}
		if len(got) != len(want) {
			t.Fatalf("split %d: %d events, want %d", len(chunks[0]), len(got), len(want))
		}
		for i := range want {
			if got[i].op != want[i].op || !bytes.Equal(got[i].data, want[i].data) {
				t.Fatalf("split %d: event %d = %d %q, want %d %q", len(chunks[0]), i, got[i].op, got[i].data, want[i].op, want[i].data)
			}
		}
		if r.part != nil {
			t.Fatalf("memory kept after complete frames: buf %d msg %d", len(r.buf()), len(r.msg()))
		}
	}
}

func TestFrameReaderRefuses(t *testing.T) {
	unmasked := clientFrame(true, websocket.TextMessage, []byte("hi"))
	unmasked[1] &^= 0x80
	rsv := clientFrame(true, websocket.TextMessage, []byte("hi"))
	rsv[0] |= 0x40
	for name, c := range map[string]struct {
		in   []byte
		code int
	}{
		"unmasked":          {unmasked, websocket.CloseProtocolError},
		"reserved bits":     {rsv, websocket.CloseProtocolError},
		"unknown opcode":    {clientFrame(true, 3, nil), websocket.CloseProtocolError},
		"fragmented ping":   {clientFrame(false, websocket.PingMessage, nil), websocket.CloseProtocolError},
		"long ping":         {clientFrame(true, websocket.PingMessage, make([]byte, 126)), websocket.CloseProtocolError},
		"lone continuation": {clientFrame(true, 0, []byte("x")), websocket.CloseProtocolError},
		"nested message":    {append(clientFrame(false, 1, []byte("a")), clientFrame(true, 1, []byte("b"))...), websocket.CloseProtocolError},
		"one-byte close":    {clientFrame(true, websocket.CloseMessage, []byte{1}), websocket.CloseProtocolError},
		"too big":           {clientFrame(true, 1, make([]byte, 16385)), websocket.CloseMessageTooBig},
		"too big in parts":  {append(clientFrame(false, 1, make([]byte, 10000)), clientFrame(true, 0, make([]byte, 7000))...), websocket.CloseMessageTooBig},
	} {
		r := &frameReader{limit: 16384}
		_, err := collect(t, r, c.in)
		if err == nil || err.code != c.code {
			t.Errorf("%s: %v, want close %d", name, err, c.code)
		}
	}
}

// An oversized message is read to its end (up to maxDiscard) before the
// error, so that closing does not reset the connection under the client.
func TestFrameReaderDrainsOversizedMessage(t *testing.T) {
	f := clientFrame(true, 1, make([]byte, 100000))
	r := &frameReader{limit: 16384}
	if _, err := collect(t, r, f[:5000]); err != nil {
		t.Fatalf("closed before the message was drained: %v", err)
	}
	if _, err := collect(t, r, f[5000:]); err != errTooBig {
		t.Fatalf("after draining: %v", err)
	}
}

func FuzzFrameReader(f *testing.F) {
	f.Add(clientFrame(true, 1, []byte(`{"type":"hello"}`)), 3)
	f.Add(append(clientFrame(false, 1, []byte("a")), clientFrame(true, 0, []byte("b"))...), 1)
	f.Add(clientFrame(true, 9, []byte("ping")), 2)
	f.Add(clientFrame(true, 8, []byte{3, 232}), 0)
	f.Add([]byte{0x81, 0xff, 0x7f, 0, 0, 0, 0, 0, 0, 0}, 4)
	f.Fuzz(func(t *testing.T, in []byte, split int) {
		// However the bytes are split into reads, the events are the same.
		whole := &frameReader{limit: 1024}
		a, errA := collect(t, whole, in)
		parts := &frameReader{limit: 1024}
		var chunks [][]byte
		step := (split%16+16)%16 + 1
		for i := 0; i < len(in); i += step {
			chunks = append(chunks, in[i:min(i+step, len(in))])
		}
		b, errB := collect(t, parts, chunks...)
		if (errA == nil) != (errB == nil) || len(a) != len(b) {
			t.Fatalf("whole: %d events, %v; in parts of %d: %d events, %v", len(a), errA, step, len(b), errB)
		}
		for i := range a {
			if a[i].op != b[i].op || !bytes.Equal(a[i].data, b[i].data) {
				t.Fatalf("event %d differs", i)
			}
			if a[i].op <= 2 && len(a[i].data) > 1024 {
				t.Fatalf("message of %d bytes over the limit", len(a[i].data))
			}
		}
	})
}

// TestServerFrameHeaders: a server frame's length takes 7 bits up to 125,
// 16 more up to 65,535 and 64 more beyond (RFC 6455 section 5.2); it is
// final and unmasked.
func TestServerFrameHeaders(t *testing.T) {
	for _, c := range []struct {
		n    int
		head []byte
	}{
		{0, []byte{0x81, 0}},
		{125, []byte{0x81, 125}},
		{126, []byte{0x81, 126, 0, 126}},
		{65535, []byte{0x81, 126, 0xff, 0xff}},
		{65536, []byte{0x81, 127, 0, 0, 0, 0, 0, 1, 0, 0}},
	} {
		p := bytes.Repeat([]byte("x"), c.n)
		// Framed in place, the frame is the same.
		in := frameInPlace(append(make([]byte, serverHeadroom), p...), websocket.TextMessage)
		if !bytes.Equal(in, appendServerFrame(nil, websocket.TextMessage, p)) {
			t.Errorf("%d bytes: framed in place, the frame starts % x", c.n, in[:min(len(in), 10)])
		}
		b := appendServerFrame([]byte("prev"), websocket.TextMessage, p)
		if !bytes.HasPrefix(b, []byte("prev")) || !bytes.Equal(b[4:4+len(c.head)], c.head) || !bytes.Equal(b[4+len(c.head):], p) {
			t.Errorf("%d bytes: frame starts % x", c.n, b[4:min(len(b), 14)])
		}
	}
	if b := appendCloseFrame(nil, 1001, "bye"); !bytes.Equal(b, []byte{0x88, 5, 0x03, 0xe9, 'b', 'y', 'e'}) {
		t.Errorf("close frame % x", b)
	}
	long := appendCloseFrame(nil, 1000, string(bytes.Repeat([]byte("r"), 200)))
	if long[1] != 125 || len(long) != 127 {
		t.Errorf("a long reason is not cut to a 125-byte control frame: length %d", long[1])
	}
	if b := appendCloseFrame(nil, websocket.CloseNoStatusReceived, "x"); !bytes.Equal(b, []byte{0x88, 0}) {
		t.Errorf("1005: close frame % x, want an empty one", b)
	}
}
