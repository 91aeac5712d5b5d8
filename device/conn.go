package device

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/openmpns/openmpns/shared/wire"
)

var errConnClosed = errors.New("device: connection closed")

// conn is one WebSocket session: a reader goroutine that routes answers to
// waiting requests and notifications to the event queue, and a writer,
// running only while something waits to be sent, that sends requests and
// coalesced acks in order: a goroutine of its own, or the event goroutine
// when it acknowledges a notification (ack; the reader itself when it
// handled the notification, with Config.PromptHandlers). An idle connection
// holds one goroutine (a fleet runs thousands of devices).
type conn struct {
	d  *Device
	ws *websocket.Conn
	hb time.Duration
	// restored is the device's restoreGen when the connection last began
	// restoring the device's state on the server (connect, attach); the
	// connect loop's own.
	restored uint64

	mu      sync.Mutex
	nextID  uint64
	pending map[uint64]chan *wire.Frame
	outbox  []*wire.Frame
	acks    []string
	// spareAcks is an emptied acks array the writer takes for the next
	// acks (no allocation per ack).
	spareAcks []string
	closed    bool
	err       error
	// writeErr is the writer's failure, kept while the reader looks for
	// the close frame that says why (see writeLoop).
	writeErr error

	// wmu is held by whoever writes a message (writeMessage) or a close
	// frame (sendClose), a token in a channel so that a close can give up
	// waiting for it, as gorilla's own write lock does; closeSent, under
	// it, says a close frame went out: no message follows one.
	wmu       chan struct{}
	closeSent bool
	// writeDeadlineSet is when writeMessage last moved the write deadline
	// (under wmu).
	writeDeadlineSet time.Time

	writing bool          // a writer goroutine runs
	active  int           // goroutines running: the reader, and the writer if any (its own, or the event goroutine in ack)
	ended   bool          // done is closed
	done    chan struct{} // closed once the connection is closed and its goroutines ended
	failed  chan struct{} // closed when the connection is closed (fail)
}

func newConn(d *Device, ws *websocket.Conn, hb time.Duration) *conn {
	c := &conn{d: d, ws: ws, hb: hb, pending: map[uint64]chan *wire.Frame{},
		active: 1, done: make(chan struct{}), failed: make(chan struct{}), wmu: make(chan struct{}, 1)}
	// The answer to the server's close frame, as gorilla's default
	// handler writes it, under wmu.
	ws.SetCloseHandler(func(code int, _ string) error {
		c.sendClose(websocket.FormatCloseMessage(code, ""))
		return nil
	})
	// A connection never outlives its device: connect closes it when its
	// requests fail (they run under the device's context), and setConn
	// refuses it once the device is closed.
	go func() {
		defer c.exit()
		c.readLoop()
	}()
	return c
}

// exit is the last thing the reader and the writer do: the last one out
// of a closed connection closes done. (The reader ends only once the
// connection failed, so the last one out always finds it closed.)
func (c *conn) exit() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.active--
	if c.active == 0 && c.closed && !c.ended {
		c.ended = true
		close(c.done)
	}
}

// wait blocks until the connection ends and returns why.
func (c *conn) wait() error {
	<-c.done
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

func (c *conn) fail(err error) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	c.err = err
	close(c.failed)
	for id, ch := range c.pending {
		close(ch)
		delete(c.pending, id)
	}
	c.mu.Unlock()
	c.ws.Close()
}

func (c *conn) close() {
	c.mu.Lock()
	closed := c.closed
	c.mu.Unlock()
	if !closed {
		c.sendClose(websocket.FormatCloseMessage(websocket.CloseNormalClosure, "bye"))
	}
	c.fail(errConnClosed)
	<-c.done
}

// signal starts the writer if something waits to be sent and none runs.
func (c *conn) signal() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed || c.writing || c.writeErr != nil || (len(c.outbox) == 0 && len(c.acks) == 0) {
		return
	}
	c.writing = true
	c.active++
	go func() {
		defer c.exit()
		c.writeLoop()
	}()
}

// request sends f with a fresh id and waits for its answer. An error frame
// comes back as an error.
func (c *conn) request(ctx context.Context, f *wire.Frame) (*wire.Frame, error) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil, errConnClosed
	}
	c.nextID++
	f.ID = c.nextID
	ch := make(chan *wire.Frame, 1)
	c.pending[f.ID] = ch
	c.outbox = append(c.outbox, f)
	c.mu.Unlock()
	c.signal()
	select {
	case r, ok := <-ch:
		if !ok {
			return nil, errConnClosed
		}
		if r.Type == wire.TypeError {
			return r, &serverError{code: r.Code, msg: r.Message}
		}
		return r, nil
	case <-ctx.Done():
		c.mu.Lock()
		delete(c.pending, f.ID)
		c.mu.Unlock()
		return nil, ctx.Err()
	}
}

type serverError struct{ code, msg string }

func (e *serverError) Error() string {
	return fmt.Sprintf("device: server answered %s: %s", e.code, e.msg)
}

// ack sends an acknowledgement of nid, coalesced with those waiting. It
// is called on the event goroutine (or the reader, with
// Config.PromptHandlers), after the handler: when no writer runs,
// that goroutine writes (what waits, until nothing does) rather than start
// a writer goroutine, which would cost a goroutine's start and a thread's
// wake-up per notification. Events queued meanwhile wait for the write.
func (c *conn) ack(nid string) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.acks = append(c.acks, nid)
	if c.writing || c.writeErr != nil {
		c.mu.Unlock()
		return // the writer sends it, or nothing more is sent
	}
	c.writing = true
	c.active++
	c.mu.Unlock()
	defer c.exit()
	c.writeLoop()
}

// writeLoop sends what waits, in order, and returns when nothing is left
// (or the connection is closed, or a write failed).
func (c *conn) writeLoop() {
	var frames []*wire.Frame
	var spare []string // the acks array just sent, emptied
	for {
		c.mu.Lock()
		if spare != nil {
			c.spareAcks = spare
		}
		if c.closed || (len(c.outbox) == 0 && len(c.acks) == 0) {
			c.writing = false
			c.mu.Unlock()
			return
		}
		frames, c.outbox = c.outbox, frames[:0]
		acks := c.acks
		c.acks, c.spareAcks = c.spareAcks, nil
		c.mu.Unlock()
		err := c.writeFrames(frames, acks)
		if err != nil {
			c.mu.Lock()
			c.writing = false
			c.writeFailedLocked(err) // in the same hold: no new writer starts
			c.mu.Unlock()
			return
		}
		clear(frames)
		clear(acks)
		spare = nil
		if cap(acks) <= maxSpareAcks {
			spare = acks[:0]
		}
	}
}

// maxSpareAcks is the largest acks array writeLoop hands back for reuse:
// an idle connection keeps no large one.
const maxSpareAcks = 16

// encodeBufs are the buffers messages are framed in, shared by every
// connection of the process (a device acks every notification).
var encodeBufs = sync.Pool{New: func() any { b := make([]byte, 0, 256); return &b }}

// writeFrames writes frames, then acks in frames of at most MaxAckIDs.
func (c *conn) writeFrames(frames []*wire.Frame, acks []string) error {
	bp := encodeBufs.Get().(*[]byte)
	defer func() {
		if cap(*bp) <= maxPooledRead {
			encodeBufs.Put(bp)
		}
	}()
	for _, f := range frames {
		b, err := wire.Encode(f)
		if err != nil {
			return err
		}
		*bp = append((*bp)[:frameHeadroom], b...)
		if err := c.writeMessage(*bp); err != nil {
			return err
		}
	}
	for len(acks) > 0 {
		n := min(len(acks), wire.MaxAckIDs)
		b, ok := wire.AppendAck((*bp)[:frameHeadroom], acks[:n])
		if !ok { // ids only encoding/json writes
			m, err := wire.Encode(&wire.Frame{Type: wire.TypeAck, NIDs: acks[:n]})
			if err != nil {
				return err
			}
			b = append(b[:frameHeadroom], m...)
		}
		*bp = b
		if err := c.writeMessage(b); err != nil {
			return err
		}
		acks = acks[n:]
	}
	return nil
}

// frameHeadroom is the room writeMessage needs before a message for its
// frame's header: 2 bytes, 8 more of length at most, 4 of mask key.
const frameHeadroom = 14

// writeMessage sends buf[frameHeadroom:] as one text message, framed in
// place, in one write. gorilla's WriteMessage cost a message writer and a
// write buffer from its pool (and an allocation putting it back), its
// locks, for every ack; here a message costs the write. A write of the
// connection is whole (net.Conn's writes do not interleave), so gorilla's
// control frames (pongs) may go out between two messages, never inside
// one. Close frames go through sendClose, and no message follows one;
// only those gorilla writes itself, on a protocol error or an oversized
// message from the server, bypass it (the reader ends the connection
// right after, as it did when gorilla then refused the messages).
func (c *conn) writeMessage(buf []byte) error {
	msg := buf[frameHeadroom:]
	n := len(msg)
	start := frameHeadroom - 6 // 2 bytes of header, 4 of mask key
	switch {
	case n > 65535:
		start = 0
		buf[1] = 0x80 | 127
		binary.BigEndian.PutUint64(buf[2:], uint64(n))
	case n > 125:
		start = frameHeadroom - 8
		buf[start+1] = 0x80 | 126
		binary.BigEndian.PutUint16(buf[start+2:], uint16(n))
	default:
		buf[start+1] = 0x80 | byte(n) // 0x80: masked, as a client's frames are
	}
	buf[start] = 0x80 | websocket.TextMessage // the final (only) frame
	key := rand.Uint32()
	binary.LittleEndian.PutUint32(buf[frameHeadroom-4:], key)
	maskBytes(msg, key)
	c.wmu <- struct{}{}
	defer func() { <-c.wmu }()
	if c.closeSent {
		return websocket.ErrCloseSent
	}
	nc := c.ws.NetConn()
	// A write gets between writeTimeout-1s and writeTimeout: the deadline
	// is moved (a lock and a runtime timer) at most once a second, not for
	// every ack.
	if now := time.Now(); now.Sub(c.writeDeadlineSet) >= time.Second {
		nc.SetWriteDeadline(now.Add(writeTimeout))
		c.writeDeadlineSet = now
	}
	_, err := nc.Write(buf[start:])
	return err
}

// writeTimeout bounds a message's write.
const writeTimeout = 10 * time.Second

// maskBytes masks b with key, the 4 bytes of the mask (in order) in
// little-endian order.
func maskBytes(b []byte, key uint32) {
	k := uint64(key) | uint64(key)<<32
	for len(b) >= 8 {
		binary.LittleEndian.PutUint64(b, binary.LittleEndian.Uint64(b)^k)
		b = b[8:]
	}
	for i := range b {
		b[i] ^= byte(k >> (8 * (i & 3)))
	}
}

// sendClose writes a close frame holding data, waiting at most a second
// for a message being written (gorilla's WriteControl waits as long for
// its write lock), and no message follows it.
func (c *conn) sendClose(data []byte) {
	t := time.NewTimer(time.Second)
	defer t.Stop()
	select {
	case c.wmu <- struct{}{}:
	case <-t.C:
		return
	}
	defer func() { <-c.wmu }()
	c.closeSent = true
	c.ws.WriteControl(websocket.CloseMessage, data, time.Now().Add(time.Second))
}

// writeFailed records a failed write (a frame or a pong). The server may
// have closed the connection with a reason (4001: replaced) that the reader
// has yet to read, and a write racing that close fails first: the reader
// gets closeReasonGrace to find the close frame rather than lose the
// reason, and then ends the connection. Nothing more is written.
func (c *conn) writeFailed(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.writeFailedLocked(err)
}

// writeFailedLocked is writeFailed with c.mu held.
func (c *conn) writeFailedLocked(err error) {
	if c.writeErr != nil {
		return
	}
	c.writeErr = fmt.Errorf("device: write: %w", err)
	// Under c.mu, so that the reader cannot push the deadline out again.
	c.ws.NetConn().SetReadDeadline(time.Now().Add(closeReasonGrace))
}

// closeReasonGrace is how long the reader keeps reading after a failed
// write, looking for the server's close frame.
const closeReasonGrace = time.Second

// readBufs are the buffers readFrame reads messages into, shared by every
// connection of the process: a frame is decoded (its strings and payload
// copied out) before its buffer goes back, so a connection holds none
// between messages, and a message costs no allocation of its own.
var readBufs = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

// maxPooledRead is the largest buffer readBufs keeps.
const maxPooledRead = 4 << 10

// readFrame reads the next message and decodes it: readErr is a failed
// read (ReadMessage's error), decodeErr a message that is not a frame.
func (c *conn) readFrame() (f *wire.Frame, readErr, decodeErr error) {
	f = new(wire.Frame)
	if readErr, decodeErr = c.readFrameInto(f); readErr != nil || decodeErr != nil {
		return nil, readErr, decodeErr
	}
	return f, nil, nil
}

// readFrameInto is readFrame into f (wire.DecodeInto: the strings that
// repeat what f held are not copied again).
func (c *conn) readFrameInto(f *wire.Frame) (readErr, decodeErr error) {
	_, r, err := c.ws.NextReader()
	if err != nil {
		return err, nil
	}
	bp := readBufs.Get().(*[]byte)
	b := (*bp)[:0]
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)] // room for more
		}
		var n int
		n, err = r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err != nil {
			break
		}
	}
	if err == io.EOF {
		decodeErr = wire.DecodeInto(b, f)
	} else {
		readErr = err
	}
	if cap(b) <= maxPooledRead {
		*bp = b
		readBufs.Put(bp)
	}
	return readErr, decodeErr
}

// readDeadlineSlack is how much later than 2.5 heartbeats after the last
// message the reader may give up (a fraction of the heartbeat): the read
// deadline is pushed out by that much more, and only once that much time
// has passed, rather than at every message (setting a deadline locks the
// connection and moves a runtime timer: it showed in a fleet's profile).
const readDeadlineSlack = 8 // 1/8 heartbeat

func (c *conn) readLoop() {
	// The read deadline stays between 2.5 and 2.5 + 1/readDeadlineSlack
	// heartbeats after the last message read: pushed out (at time pushed)
	// to the latter, it is pushed out again at the first message once
	// 1/readDeadlineSlack heartbeat has passed. pushed is the reader's own
	// (the ping handler runs on the reader).
	var pushed time.Time
	slack := c.hb / readDeadlineSlack
	deadline := func() {
		now := time.Now()
		if !pushed.IsZero() && now.Sub(pushed) < slack {
			return // still at least 2.5 heartbeats away
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.writeErr == nil { // else the grace deadline stands
			c.ws.NetConn().SetReadDeadline(now.Add(c.hb*2 + c.hb/2 + slack))
			pushed = now
		}
	}
	deadline()
	c.ws.SetPingHandler(func(data string) error {
		deadline()
		// A failed pong is not the end of the read: the close frame
		// that explains it may be next.
		err := c.ws.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(10*time.Second))
		if err != nil && !errors.Is(err, websocket.ErrCloseSent) {
			c.writeFailed(err)
		}
		return nil
	})
	// f is the frame every message is decoded into (its strings that
	// repeat, a notification's app and channel, cost no copy): what is
	// handled on the reader uses it, what is handed on gets a copy.
	f := new(wire.Frame)
	warnedNID := false // a notification with a bad id was logged at warning level
	for {
		err, bad := c.readFrameInto(f)
		if bad != nil {
			c.fail(bad)
			return
		}
		if err != nil {
			c.mu.Lock()
			werr := c.writeErr
			c.mu.Unlock()
			if werr != nil && closeCode(err) == 0 {
				err = werr // no close frame came: the write failure is the reason
			} else {
				err = fmt.Errorf("device: read: %w", err)
			}
			c.fail(err)
			return
		}
		deadline()
		switch f.Type {
		case wire.TypeNotify:
			if !validNID(f.NID) {
				// An id the protocol does not allow is neither delivered
				// nor remembered (the device would keep it in its seen
				// set and state file), nor acknowledged: an ack naming it
				// is a bad frame, which the server answers by closing the
				// connection, losing the acks sent with it. The server
				// keeps such a notification in flight; only a broken one
				// sends it.
				lvl := slog.LevelDebug
				if !warnedNID {
					lvl, warnedNID = slog.LevelWarn, true
				}
				c.d.log.Log(c.d.ctx, lvl, "notification with a bad id ignored", "app", f.App, "nid_bytes", len(f.NID), "max", wire.MaxIDStringLen)
				continue
			}
			if !c.d.isOnline() {
				// Airplane mode went on while this connection was being
				// set up: a phone with its radio off receives nothing.
				// Not acked, so the server keeps it for the next time.
				continue
			}
			received := c.d.clk.Now()
			if c.d.cfg.PromptHandlers && c.d.events.claim() {
				// Handled here, without a goroutine of its own
				// (Config.PromptHandlers).
				c.d.deliver(f, received)
				c.ack(f.NID)
				f.Payload = nil // the reader's frame keeps no payload while idle
				c.d.events.run()
				continue
			}
			waited, ok := c.queueSlot()
			if !ok {
				return // the connection was closed while the reader waited
			}
			if waited {
				// The time spent waiting for the app says nothing
				// about the server: the read deadline starts again.
				pushed = time.Time{}
				deadline()
			}
			f := ownCopy(f)
			c.d.events.push(func() {
				c.d.deliver(f, received)
				c.ack(f.NID)
				<-c.d.queued
			})
		case wire.TypeGoAway:
			c.fail(fmt.Errorf("device: server going away: %s", f.Message))
			return
		case wire.TypeOpened:
			if f.Re == 0 {
				c.d.uriChanged(f)
				continue
			}
			fallthrough
		default:
			c.mu.Lock()
			ch := c.pending[f.Re]
			delete(c.pending, f.Re)
			c.mu.Unlock()
			if ch != nil {
				ch <- ownCopy(f)
			} else if f.Type == wire.TypeError {
				c.d.raise(&ChannelError{Type: UnknownError, App: f.App, Message: f.Code + ": " + f.Message})
			}
		}
	}
}

// maxQueuedNotifications bounds the notifications of a device waiting in
// its event queue for the app's handlers. A server that honours the
// protocol's in-flight window (64 unacknowledged notifications on a
// connection, docs/protocol.md section 7.2) never has more out, and a
// notification is acknowledged only once it has been handled: the bound
// is reached only when a server ignores the window, or when a handler is
// stuck across several reconnects (each redelivers what was not
// acknowledged), and then nothing would be handled sooner anyway. At the
// bound the reader waits, reading nothing more from the socket, and the
// server's writes wait in turn.
const maxQueuedNotifications = 256

// queueSlot takes a place in the event queue for a notification, waiting
// while maxQueuedNotifications are there. ok is false when the connection
// was closed meanwhile; waited says the reader waited.
func (c *conn) queueSlot() (waited, ok bool) {
	select {
	case c.d.queued <- struct{}{}:
		return false, true
	default:
	}
	select {
	case c.d.queued <- struct{}{}:
		return true, true
	case <-c.failed:
		return true, false
	}
}

// validNID reports whether id is a notification id the protocol allows:
// 1 to wire.MaxIDStringLen bytes.
func validNID(id string) bool { return id != "" && len(id) <= wire.MaxIDStringLen }

// ownCopy returns a copy of f, the reader's frame, to hand on.
func ownCopy(f *wire.Frame) *wire.Frame {
	g := *f
	return &g
}
