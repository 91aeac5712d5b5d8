package server

import (
	"encoding/binary"

	"github.com/gorilla/websocket"
)

// frameReader assembles a client's WebSocket messages (RFC 6455) from bytes
// as they arrive, so that the gateway can read without a goroutine blocked
// on each idle connection. It holds memory only while a frame or a
// fragmented message is incomplete. Text is checked for UTF-8 once whole
// (session.onEvent), so that a character split across fragments is read.
type frameReader struct {
	part    *partial // nil while no frame or message is incomplete (an idle connection)
	limit   int32    // largest message, in bytes
	discard int32    // bytes of an oversized message still to drop (at most maxDiscard)
	msgOp   uint8    // the opcode of the message being assembled; 0 when none
}

// partial is what a frameReader holds of an incomplete frame or message:
// made when one is, so that an idle session does not carry it.
type partial struct {
	buf []byte // bytes of an incomplete frame
	msg []byte // fragments of the message being assembled
}

func (r *frameReader) buf() []byte {
	if r.part == nil {
		return nil
	}
	return r.part.buf
}

func (r *frameReader) msg() []byte {
	if r.part == nil {
		return nil
	}
	return r.part.msg
}

func (r *frameReader) setBuf(b []byte) {
	if r.part == nil {
		if b == nil {
			return
		}
		r.part = &partial{}
	}
	r.part.buf = b
	r.tidy()
}

func (r *frameReader) setMsg(m []byte) {
	if r.part == nil {
		if m == nil {
			return
		}
		r.part = &partial{}
	}
	r.part.msg = m
	r.tidy()
}

// tidy drops part once it holds nothing.
func (r *frameReader) tidy() {
	if r.part.buf == nil && r.part.msg == nil {
		r.part = nil
	}
}

// wsEvent is one complete thing a client sent.
type wsEvent struct {
	op   int // websocket.TextMessage, BinaryMessage, CloseMessage, PingMessage, PongMessage
	data []byte
}

// wsError is a protocol violation or an oversized message: the connection
// must close with code and reason.
type wsError struct {
	code   int
	reason string
}

func (e *wsError) Error() string { return e.reason }

var errTooBig = &wsError{websocket.CloseMessageTooBig, "frame larger than the limit"}

// maxDiscard bounds how much of an oversized message is read and dropped
// before the connection is closed, so that the close frame is not lost to a
// reset caused by unread data.
const maxDiscard = 1 << 20

// feed takes the next bytes from the connection and calls emit for every
// complete event, in order; emit returns false to stop. An event's data is
// valid during its emit only (it may be part of p): emit copies what it
// keeps. A returned error ends the connection. p is not kept.
func (r *frameReader) feed(p []byte, emit func(wsEvent) bool) *wsError {
	if buf := r.buf(); len(buf) > 0 {
		p = append(buf, p...)
		r.setBuf(p)
	}
	for len(p) > 0 {
		if r.discard > 0 {
			n := min(int(r.discard), len(p))
			r.discard -= int32(n)
			p = p[n:]
			if r.discard == 0 {
				r.setBuf(nil)
				return errTooBig
			}
			continue
		}
		n, err := r.frame(p, emit)
		if err != nil {
			r.setBuf(nil)
			return err
		}
		if n < 0 {
			r.setBuf(nil)
			return nil // emit asked to stop
		}
		if n == 0 {
			break // incomplete: wait for more
		}
		p = p[n:]
	}
	switch buf := r.buf(); {
	case len(p) == 0:
		r.setBuf(nil)
	case len(buf) > 0 && &p[0] == &buf[0]:
		// Still the start of buf: nothing consumed.
	default:
		r.setBuf(append([]byte(nil), p...))
	}
	return nil
}

// frame parses one frame from the start of p. It returns the bytes it used,
// 0 when p holds no whole frame yet, and a negative count when emit asked
// to stop.
func (r *frameReader) frame(p []byte, emit func(wsEvent) bool) (int, *wsError) {
	if len(p) < 2 {
		return 0, nil
	}
	fin, rsv, op := p[0]&0x80 != 0, p[0]&0x70, int(p[0]&0x0f)
	masked, n7 := p[1]&0x80 != 0, int(p[1]&0x7f)
	if rsv != 0 {
		return 0, &wsError{websocket.CloseProtocolError, "reserved bits set"}
	}
	if !masked {
		return 0, &wsError{websocket.CloseProtocolError, "client frames must be masked"}
	}
	control := op >= 8
	switch op {
	case 0, websocket.TextMessage, websocket.BinaryMessage:
	case websocket.CloseMessage, websocket.PingMessage, websocket.PongMessage:
		if !fin || n7 > 125 {
			return 0, &wsError{websocket.CloseProtocolError, "bad control frame"}
		}
	default:
		return 0, &wsError{websocket.CloseProtocolError, "unknown opcode"}
	}
	hdr := 2
	var length uint64
	switch n7 {
	case 126:
		hdr += 2
		if len(p) < hdr {
			return 0, nil
		}
		length = uint64(binary.BigEndian.Uint16(p[2:4]))
	case 127:
		hdr += 8
		if len(p) < hdr {
			return 0, nil
		}
		length = binary.BigEndian.Uint64(p[2:10])
		if length>>63 != 0 {
			return 0, &wsError{websocket.CloseProtocolError, "bad frame length"}
		}
	default:
		length = uint64(n7)
	}
	if !control {
		switch {
		case op == 0 && r.msgOp == 0:
			return 0, &wsError{websocket.CloseProtocolError, "continuation without a message"}
		case op != 0 && r.msgOp != 0:
			return 0, &wsError{websocket.CloseProtocolError, "new message inside a fragmented one"}
		}
		if uint64(len(r.msg()))+length > uint64(r.limit) {
			// Drop the rest of the message, then close with 1009.
			r.msgOp = 0
			r.setMsg(nil)
			drop := uint64(hdr+4) + length
			if drop > maxDiscard {
				drop = maxDiscard
			}
			if uint64(len(p)) >= drop {
				return 0, errTooBig
			}
			r.discard = int32(int(drop) - len(p))
			return len(p), nil
		}
	}
	hdr += 4 // the mask key
	total := hdr + int(length)
	if len(p) < total {
		return 0, nil
	}
	key := p[hdr-4 : hdr]
	payload := p[hdr:total]
	for i := range payload {
		payload[i] ^= key[i&3]
	}
	if control {
		ev := wsEvent{op: op, data: payload}
		if op == websocket.CloseMessage && len(payload) == 1 {
			return 0, &wsError{websocket.CloseProtocolError, "bad close frame"}
		}
		if !emit(ev) {
			return -total, nil
		}
		return total, nil
	}
	if op != 0 {
		r.msgOp = uint8(op)
	}
	if fin && r.msg() == nil {
		// An unfragmented message: handed over in place (most are an
		// acknowledgement handled within emit, which keeps nothing).
		mop := int(r.msgOp)
		r.msgOp = 0
		if !emit(wsEvent{op: mop, data: payload}) {
			return -total, nil
		}
		return total, nil
	}
	r.setMsg(append(r.msg(), payload...))
	if !fin {
		return total, nil
	}
	msg, mop := r.msg(), int(r.msgOp)
	r.msgOp = 0
	r.setMsg(nil)
	if !emit(wsEvent{op: mop, data: msg}) {
		return -total, nil
	}
	return total, nil
}

// appendServerFrame appends one final, unmasked frame (as a server sends
// them, RFC 6455 section 5.2) of opcode op carrying payload.
func appendServerFrame(b []byte, op int, payload []byte) []byte {
	return append(appendServerHeader(b, op, len(payload)), payload...)
}

// appendServerHeader appends the header of a final, unmasked frame of
// opcode op carrying n bytes: serverHeaderLen(n) bytes.
func appendServerHeader(b []byte, op, n int) []byte {
	b = append(b, 0x80|byte(op))
	switch {
	case n <= 125:
		return append(b, byte(n))
	case n <= 0xffff:
		return append(b, 126, byte(n>>8), byte(n))
	}
	b = append(b, 127)
	return binary.BigEndian.AppendUint64(b, uint64(n))
}

// serverHeaderLen is the length of the header of a server's frame of n bytes.
func serverHeaderLen(n int) int {
	switch {
	case n <= 125:
		return 2
	case n <= 0xffff:
		return 4
	}
	return 10
}

// serverHeadroom is the room frameInPlace needs before a message for its
// frame's header: 2 bytes, 8 more of length at most (no mask key).
const serverHeadroom = 10

// frameInPlace frames buf[serverHeadroom:] as one final, unmasked frame of
// type op, its header written into the headroom right before the message,
// and returns the frame (a part of buf): the frame appendServerFrame
// would make, without copying the message.
func frameInPlace(buf []byte, op int) []byte {
	n := len(buf) - serverHeadroom
	start := serverHeadroom - serverHeaderLen(n)
	appendServerHeader(buf[start:start], op, n) // within the headroom: no new array
	return buf[start:]
}

// appendCloseFrame appends a close frame with code and reason (cut to the
// 123 bytes a control frame leaves for it); 1005 means no code at all.
func appendCloseFrame(b []byte, code int, reason string) []byte {
	if code == websocket.CloseNoStatusReceived {
		return appendServerFrame(b, websocket.CloseMessage, nil)
	}
	var p [125]byte
	p[0], p[1] = byte(code>>8), byte(code)
	n := 2 + copy(p[2:], reason)
	return appendServerFrame(b, websocket.CloseMessage, p[:n])
}
