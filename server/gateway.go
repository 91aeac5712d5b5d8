package server

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/gorilla/websocket"

	"github.com/openmpns/openmpns/server/backend"
	"github.com/openmpns/openmpns/shared/wire"
)

// GatewayPath is where devices open their WebSocket.
const GatewayPath = "/ws"

// DeviceRouter is what the WebSocket gateway needs from the routing engine.
type DeviceRouter interface {
	Authenticate(id, token string) (devID, newToken string, err error)
	// Attach calls claimed (when not nil) once the device's claim is
	// written, before anything queued is sent.
	Attach(devID string, c Conn, claimed func()) error
	Disconnect(devID string, c Conn)
	// Open opens the app's channel, or returns the one it has; admit is
	// called (when not nil) only before a new channel is created, and its
	// error refuses the open.
	Open(devID, app, name, service string, admit func() error) (backend.Channel, error)
	Bind(devID, app, target string, on bool, domains []string) (backend.Channel, error)
	CloseChannel(devID, app string) error
	SetPower(devID, level string) error
	Ack(devID string, c Conn, nids []string)
	// AckWaits reports whether Ack may wait (on the network, for one):
	// when it never does, a device's acknowledgements are handled on the
	// poller's own goroutine (pollReg.quick).
	AckWaits() bool
}

var _ DeviceRouter = (*Engine)(nil)

// maxOutbox bounds the frames waiting for one device beyond its in-flight
// notifications; a device that lets more pile up is cut off.
const maxOutbox = 64

// noWriteBuffers is the upgrader's write buffer pool: a pool that is
// never used, since no message is written through gorilla's Conn.
var noWriteBuffers sync.Pool

type gateway struct {
	cfg    *Config
	router DeviceRouter
	// quickAcks: the router's Ack never waits, so a plain connection's
	// turns run first on the poller's goroutine (pollReg.quick).
	quickAcks bool
	log       *slog.Logger
	upgrader  websocket.Upgrader

	// Per-address rates (nil: no limit), keyed by limitKey.
	newDevices   *keyedLimiter
	channelOpens *keyedLimiter
	met          *metrics

	// attachSlots holds a token per hello being handled (MaxAttaching;
	// nil: no limit); a hello waits up to attachWait for one.
	attachSlots chan struct{}
	attachWait  time.Duration

	mu         sync.Mutex
	sessions   map[*session]struct{}
	pingSlots  pingSlots // the sessions again, for the pinger
	perIP      map[string]int
	stopped    bool
	started    bool          // start ran: the pinger runs until kickAll
	poll       *poller       // nil: a reader goroutine per connection
	quit       chan struct{} // closed by kickAll: the pinger stops
	pingerDone chan struct{}
	wg         sync.WaitGroup
}

// attachWait is how long a hello waits for one of MaxAttaching places
// before it is refused: a burst (a fleet starting, a node restarting) waits
// a moment; only a backend slower than the hellos arriving, for that long,
// turns devices away.
const attachWait = 2 * time.Second

// takeAttachSlot takes a place among the hellos handled at once, waiting
// up to attachWait; false: none came free.
func (g *gateway) takeAttachSlot() bool {
	if g.attachSlots == nil {
		return true
	}
	select {
	case g.attachSlots <- struct{}{}:
		return true
	default:
	}
	if g.attachWait <= 0 {
		return false
	}
	t := time.NewTimer(g.attachWait)
	defer t.Stop()
	select {
	case g.attachSlots <- struct{}{}:
		return true
	case <-t.C:
		return false
	}
}

func (g *gateway) dropAttachSlot() {
	if g.attachSlots != nil {
		<-g.attachSlots
	}
}

func newGateway(cfg *Config, r DeviceRouter, met *metrics) *gateway {
	g := &gateway{
		cfg: cfg, router: r, log: cfg.Logger, met: met, attachWait: attachWait,
		newDevices:   newKeyedLimiter(cfg.NewDevicesPerMinute, cfg.NewDeviceBurst),
		channelOpens: newKeyedLimiter(cfg.ChannelOpensPerMinute, cfg.ChannelOpenBurst),
		upgrader: websocket.Upgrader{
			HandshakeTimeout: 10 * time.Second,
			// The upgrader's Conn is dropped after the handshake (the
			// session reads and writes frames itself): its buffers are
			// the smallest the library makes, and the write buffer is
			// never allocated.
			ReadBufferSize:  128,
			WriteBufferPool: &noWriteBuffers,
			Subprotocols:    []string{wire.Subprotocol},
			// Devices are not browsers; any origin may connect.
			CheckOrigin: func(*http.Request) bool { return true },
		},
		sessions: make(map[*session]struct{}),
		perIP:    make(map[string]int),
		quit:     make(chan struct{}), pingerDone: make(chan struct{}),
	}
	g.quickAcks = r != nil && !r.AckWaits()
	if cfg.MaxAttaching >= 0 {
		g.attachSlots = make(chan struct{}, max(cfg.MaxAttaching, 1))
	}
	return g
}

// start starts the poller (where there is epoll) and the pinger; kickAll
// stops them.
func (g *gateway) start() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.started || g.stopped {
		return
	}
	g.started = true
	if useEpoll && !g.cfg.ReaderGoroutines {
		p, err := newPoller()
		if err != nil {
			g.log.Warn("no epoll: each device connection gets a reader goroutine", "err", err)
		} else {
			g.poll = p
		}
	}
	go g.pinger()
}

// admit counts a connection from the request's client (clientAddr),
// refusing it over the per-address limit; release gives the slot back. ip
// is the client's limitKey, "" when it is exempt (loopback, unless
// LimitLoopback).
func (g *gateway) admit(r *http.Request) (ip string, ok bool) {
	addr, known := clientAddr(r, g.cfg.TrustedProxies, g.cfg.ForwardedHeader)
	if !known || (addr.IsLoopback() && !g.cfg.LimitLoopback) {
		return "", true
	}
	ip = limitKey(addr)
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.cfg.MaxConnsPerIP >= 0 && g.perIP[ip] >= g.cfg.MaxConnsPerIP {
		return "", false
	}
	g.perIP[ip]++
	return ip, true
}

func (g *gateway) release(ip string) {
	if ip == "" {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.perIP[ip]--; g.perIP[ip] <= 0 {
		delete(g.perIP, ip)
	}
}

// session is one device connection. With the poller an idle session has
// no goroutine and a few small objects (the session, the socket, the
// router's device record: see docs/benchmarks.md); without, one reader
// goroutine blocked in a read. A handler goroutine runs only while frames
// wait to be handled, a writer only while frames wait to be written, and
// one gateway goroutine pings every session. This is what lets one process
// hold tens of thousands of devices.
//
// After the upgrade the session keeps only the connection: frames are read
// by frameReader and written by writeLoop, so no *websocket.Conn (nor its
// buffers) outlives the handshake.
type session struct {
	g      *gateway
	conn   net.Conn    // the TCP connection, or the *tls.Conn over it
	devID  string      // set by the handler at hello; read by others only after hwg.Wait
	authed atomic.Bool // hello accepted (the reader's view of devID != "")
	ip     string      // the client's limitKey, counted against the per-address limits; "" when exempt
	// slot is where the pinger finds the session (pingSlots), at slotAt
	// in it (-1: not there); both under the gateway's mu.
	slot   uint16
	slotAt int32
	hwg    sync.WaitGroup

	// With the poller (Linux): no goroutine waits on the connection; the
	// poller runs onReadable when bytes arrive.
	epoll   bool
	reading atomic.Bool // an onReadable runs
	// quick: the turn running is a quick one (readTurn), so enqueue never
	// waits for the handler; behind: it left the handler maxInbox frames
	// or more behind. Both the turn's own.
	quick, behind bool
	reg           pollReg         // the poller's registration
	raw           syscall.RawConn // plain connections: read without waiting
	tls           *tls.Conn       // TLS: read through it (its pollConn never waits)
	fr            frameReader     // touched only by the one reader
	lastSeen      atomic.Int64    // the last frame or pong (monoNow)
	sentAt        atomic.Int64    // the last notification or answer queued to the device (monoNow)
	pingedAt      int64           // the last ping (monoNow); the pinger's own
	helloTimer    *time.Timer     // with the poller, until hello
	firstFrame    atomic.Bool     // a text message came (the hello deadline is over)

	mu        sync.Mutex
	writing   bool // a writer goroutine is running
	closing   bool
	closed    bool // the close frame was written and the connection closed
	handling  bool // a handler goroutine is running
	dead      bool // a frame ended the session: handle nothing more
	closeCode int
	closeMsg  string
	goAway    bool // the server is going away: a goaway frame before the close
	outbox    []*wire.Frame
	// pending is the rest of a frame that send wrote in part: the writer
	// writes it first.
	pending []byte
	inbox   [][]byte      // frames read, waiting for the handler
	done    chan struct{} // closed once the connection is closed; made when first waited for
	room    chan struct{} // the handler took frames: the reader may go on; made when first waited for
}

// closedChan is a session's done once it ended before anyone waited for it.
var closedChan = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// doneChan returns a channel closed once the connection is closed. s.mu is held.
func (s *session) doneChan() chan struct{} {
	if s.done == nil {
		if s.closed {
			return closedChan
		}
		s.done = make(chan struct{})
	}
	return s.done
}

// maxInbox is how many frames the reader reads ahead of the handler; a
// device that sends faster waits (TCP pushes back).
const maxInbox = 64

// useEpoll lets tests run the gateway with a reader goroutine per
// connection, as on systems without epoll.
var useEpoll = true

// pingFrame marks a ping in a session's outbox.
var pingFrame = &wire.Frame{}

func (g *gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ip, ok := g.admit(r)
	if !ok {
		w.Header().Set("Retry-After", "60")
		http.Error(w, "too many device connections from this address", http.StatusTooManyRequests)
		return
	}
	ws, err := g.upgrader.Upgrade(w, r, nil)
	if err != nil {
		g.release(ip)
		return // the upgrader has answered
	}
	s := &session{g: g, conn: ws.NetConn(), ip: ip, slotAt: -1}
	if hc, ok := s.conn.(*headerTimeoutConn); ok {
		s.conn = hc.Conn // its watch ended with the request
	}
	if pc, ok := s.conn.(*prefixConn); ok && pc.drained() {
		s.conn = pc.Conn // the push front's first read, read by net/http
	}
	if tc, ok := s.conn.(*tls.Conn); ok {
		if pc, ok := tc.NetConn().(*pollConn); ok {
			pc.deadlineEachWrite(g.cfg.WriteTimeout)
		}
	}
	if g.poll != nil {
		s.epoll = s.takeOver()
	}
	g.mu.Lock()
	if g.stopped {
		g.mu.Unlock()
		s.writeClose(websocket.CloseGoingAway, "server shutting down", true)
		s.conn.Close()
		g.release(ip)
		return
	}
	g.sessions[s] = struct{}{}
	g.pingSlots.add(s)
	g.wg.Add(1)
	// With the poller, the session is armed before anyone else can see it:
	// nothing (a shutdown, a failed ping) can close it before it is watched.
	var watchErr error
	s.lastSeen.Store(monoNow())
	if s.epoll {
		hello := g.cfg.HelloTimeout
		s.mu.Lock()
		s.helloTimer = time.AfterFunc(hello, func() {
			if !s.firstFrame.Load() {
				s.kick(websocket.ClosePolicyViolation, "no hello within "+hello.String())
			}
		})
		s.mu.Unlock()
		s.reg.onReadable = s.onReadable
		if s.tls == nil && g.quickAcks {
			// Not under TLS: a *tls.Conn's Read may wait for its writer
			// (it answers a key update).
			s.reg.quick = s.quickTurn
		}
		watchErr = g.poll.watch(&s.reg)
	}
	g.mu.Unlock()
	// This handler returns at once, so that net/http's connection state
	// (request, buffers, the handler's stack) is freed rather than held for
	// the life of the WebSocket; gorilla's Conn (and its buffers) goes too.
	// With the poller, the connection then has no goroutine at all while
	// idle; without, it has one reader.
	if !s.epoll {
		go s.run()
		return
	}
	if watchErr != nil {
		g.log.Error("device connection not watched", "remote", s.conn.RemoteAddr(), "err", watchErr)
		s.kick(websocket.CloseInternalServerErr, "internal")
	}
}

// takeOver readies the connection for the poller: its descriptor, and
// under TLS reads through the *tls.Conn that never wait. It reports false
// when the connection cannot be polled (then it gets a reader goroutine).
func (s *session) takeOver() bool {
	s.fr.limit = wire.MaxFrameBytes
	if tc, ok := s.conn.(*tls.Conn); ok {
		pc, ok := tc.NetConn().(*pollConn)
		if !ok {
			return false
		}
		fd, _, err := pc.setNonblocking()
		if err != nil {
			return false
		}
		s.reg.fd, s.tls = int32(fd), tc
		return true
	}
	fd, raw, err := connFD(s.conn)
	if err != nil {
		return false
	}
	s.reg.fd, s.raw = int32(fd), raw
	return true
}

// readBufs are the buffers onReadable reads into; an idle connection holds none.
var readBufs = sync.Pool{New: func() any { b := make([]byte, 4096); return &b }}

// onReadable reads what the socket holds, without waiting, turns it into
// events, and ends its turn with the poller's rearm. The poller runs one
// turn at a time per session, and another after it when bytes came
// during it, so nothing readable is missed.
//
// Under TLS it reads until the *tls.Conn says it would block: the socket may
// be drained while whole records (or the rest of one) wait in the
// *tls.Conn's buffers, where epoll cannot see them.
func (s *session) onReadable() { s.readTurn(false) }

// quickTurn is onReadable on the poller's goroutine (pollReg.quick): it
// never waits for the handler, and reads at most maxQuickReads buffers.
// When the handler is maxInbox frames behind or the socket is not drained
// by then, it returns false and leaves the rest of the turn to a worker.
func (s *session) quickTurn() bool { return s.readTurn(true) }

// maxQuickReads bounds a quick turn: a device that keeps its socket full
// is read on a worker, not ahead of every other device.
const maxQuickReads = 4

// readTurn is a turn: onReadable's, or (quick) quickTurn's, which reports
// whether it ended the turn.
func (s *session) readTurn(quick bool) bool {
	if !s.reading.CompareAndSwap(false, true) {
		return true
	}
	if quick {
		s.mu.Lock()
		behind := len(s.inbox) >= maxInbox
		s.mu.Unlock()
		if behind { // a worker reads, once the handler has taken frames
			s.reading.Store(false)
			return false
		}
	}
	bp := readBufs.Get().(*[]byte)
	defer readBufs.Put(bp)
	s.quick = quick // cleared before the turn ends: the next may be another goroutine's
	for reads := 1; ; reads++ {
		var n int
		var err error
		if s.tls != nil {
			n, err = s.tls.Read(*bp)
		} else {
			n, err = readNow(s.raw, *bp)
		}
		if n > 0 {
			if werr := s.fr.feed((*bp)[:n], s.onEvent); werr != nil {
				s.kick(werr.code, werr.reason) // as the reader path: no error frame, the close says why
				return true
			}
			if s.isClosing() {
				return true
			}
		}
		if err == nil {
			if s.tls == nil && s.reg.drained(n, len(*bp)) {
				// Drained: a TCP read takes all that is queued, up to the
				// buffer, and what arrives later brings an event of its
				// own (edge-triggered). This saves a read that would find
				// nothing.
				break
			}
			if quick && (s.behind || reads == maxQuickReads) {
				s.quick, s.behind = false, false
				s.reading.Store(false)
				return false // a worker goes on, and may wait for the handler
			}
			continue
		}
		if errors.Is(err, errWouldBlock) {
			break
		}
		s.g.log.Debug("device read failed", "remote", s.conn.RemoteAddr(), "err", err)
		s.kick(websocket.CloseNormalClosure, "")
		return true
	}
	s.quick, s.behind = false, false
	s.reading.Store(false)
	s.g.poll.rearm(&s.reg)
	return true
}

func (s *session) isClosing() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closing || s.dead
}

// onEvent handles one complete thing the device sent; false stops reading.
func (s *session) onEvent(ev wsEvent) bool {
	switch ev.op {
	case websocket.TextMessage:
		if !s.firstFrame.Swap(true) {
			s.helloOver()
		}
		if !utf8.Valid(ev.data) { // RFC 6455 section 8.1
			s.send(&wire.Frame{Type: wire.TypeError, Code: wire.CodeBadFrame, Message: "a text message must be UTF-8"})
			s.kick(websocket.CloseInvalidFramePayloadData, "text message not UTF-8")
			return false
		}
		// Frames and pongs show the device is alive; its own pings do not
		// (docs/protocol.md section 6).
		s.alive()
		return s.enqueue(ev.data)
	case websocket.BinaryMessage:
		s.send(&wire.Frame{Type: wire.TypeError, Code: wire.CodeBadFrame, Message: "binary messages are not accepted: send each frame as one JSON text message"})
		s.kick(websocket.CloseUnsupportedData, "binary message")
		return false
	case websocket.PingMessage:
		s.send(&wire.Frame{Message: string(ev.data)}) // a pong (see writeLoop)
		return true
	case websocket.CloseMessage:
		// Echo the device's code (RFC 6455 section 5.5.1); a code it may
		// not send, or a reason not in UTF-8, fails the connection
		// (section 7.4.1, 8.1).
		code := websocket.CloseNormalClosure
		if len(ev.data) >= 2 {
			code = int(ev.data[0])<<8 | int(ev.data[1])
			switch {
			case !validCloseCode(code):
				code = websocket.CloseProtocolError
			case !utf8.Valid(ev.data[2:]):
				code = websocket.CloseInvalidFramePayloadData
			}
		}
		s.kick(code, "")
		return false
	}
	s.alive() // a pong
	return true
}

// alive notes that the device showed it is alive, for the pinger (which
// closes a session silent for two heartbeats after hello).
func (s *session) alive() {
	s.lastSeen.Store(monoNow())
}

// validCloseCode reports whether code may be sent in a close frame (RFC
// 6455 section 7.4): the defined codes, less those reserved for local use,
// and the ranges for libraries and applications.
func validCloseCode(code int) bool {
	switch {
	case code >= 1000 && code <= 1003, code >= 1007 && code <= 1014:
		return true
	case code >= 3000 && code <= 4999:
		return true
	}
	return false
}

// finish runs once the connection is closed: it waits for the handler,
// tells the router, and gives back the session's slot.
func (s *session) finish() {
	g := s.g
	s.mu.Lock()
	if s.helloTimer != nil {
		s.helloTimer.Stop()
	}
	s.mu.Unlock()
	s.hwg.Wait()
	if s.devID != "" {
		g.router.Disconnect(s.devID, s)
	}
	g.mu.Lock()
	delete(g.sessions, s)
	g.pingSlots.remove(s)
	g.mu.Unlock()
	g.release(s.ip)
	g.wg.Done()
}

// ackFrames are the frames enqueue decodes a frame into to find an
// acknowledgement: a Frame of its own for each was the largest allocation
// of a notification's round trip.
var ackFrames = sync.Pool{New: func() any { return new(wire.Frame) }}

// enqueue hands a frame (a copy of b, which is the reader's) to the
// handler goroutine, starting it if needed, and waits while the handler is
// maxInbox frames behind (a quick turn does not wait: it notes the handler
// behind, and a worker goes on). It returns false once a frame has ended
// the session.
func (s *session) enqueue(b []byte) bool {
	// With the poller, an acknowledgement is handled here, in the reader
	// (a worker, or the poller's goroutine in a quick turn, either of
	// which moves on once the socket is drained), when no handler runs:
	// the router's Ack does not wait, and a handler goroutine started for
	// each acknowledgement costs its start and a wake-up. A
	// reader goroutine of its own (no poller) hands everything over, so
	// that its stack, which an idle connection keeps, stays small.
	var ack *wire.Frame
	if s.epoll && s.authed.Load() {
		f := ackFrames.Get().(*wire.Frame)
		if err := wire.DecodeInto(b, f); err == nil && f.Type == wire.TypeAck {
			ack = f
			defer ackFrames.Put(f) // handle keeps nothing of an ack
		} else {
			ackFrames.Put(f)
		}
	}
	s.mu.Lock()
	if ack != nil && !s.handling && len(s.inbox) == 0 && !s.dead && !s.closed {
		s.handling = true // what the reader reads next waits for it
		s.hwg.Add(1)
		s.mu.Unlock()
		ok := s.handle(ack)
		s.mu.Lock()
		s.handling = false
		if !ok {
			s.dead = true
		}
		s.mu.Unlock()
		s.hwg.Done()
		return ok
	}
	for len(s.inbox) >= maxInbox && !s.dead && !s.closed {
		if s.quick {
			// On the poller's goroutine: the frame is taken (at most a
			// read buffer's worth past maxInbox), and the turn goes on
			// on a worker, which waits before it reads more.
			s.behind = true
			break
		}
		if s.room == nil {
			s.room = make(chan struct{}, 1)
		}
		room, done := s.room, s.doneChan()
		s.mu.Unlock()
		select {
		case <-room:
		case <-done:
			return false
		}
		s.mu.Lock()
	}
	if s.dead || s.closed {
		s.mu.Unlock()
		return false
	}
	s.inbox = append(s.inbox, bytes.Clone(b)) // b is the reader's (frameReader.feed)
	if !s.handling {
		s.handling = true
		s.hwg.Add(1)
		go s.handleLoop()
	}
	s.mu.Unlock()
	return true
}

// handleLoop decodes and answers the frames in the inbox, in order, and
// exits when none is left. Keeping this work off the reader keeps the
// reader's stack (what an idle connection holds) small.
func (s *session) handleLoop() {
	defer s.hwg.Done()
	var batch [][]byte
	for {
		s.mu.Lock()
		if len(s.inbox) == 0 || s.dead {
			s.handling, s.inbox = false, nil
			s.mu.Unlock()
			return
		}
		batch, s.inbox = s.inbox, batch[:0]
		room := s.room
		s.mu.Unlock()
		select {
		case room <- struct{}{}: // nil (nobody ever waited): never ready
		default:
		}
		for _, b := range batch {
			ok := true
			if f, err := wire.Decode(b); err != nil {
				ok = s.badFrame(b, err)
			} else {
				ok = s.handle(f)
			}
			if !ok {
				s.mu.Lock()
				s.dead = true
				s.mu.Unlock()
				break
			}
		}
		clear(batch)
	}
}

// run reads until the connection ends, then cleans up.
func (s *session) run() {
	s.readLoop()
	s.kick(websocket.CloseNormalClosure, "")
	s.mu.Lock()
	done := s.doneChan()
	s.mu.Unlock()
	<-done
	s.finish()
}

// pinger pings every session once per heartbeat, each at its slot's time
// in it (see pingSlots), until the gateway stops.
func (g *gateway) pinger() {
	defer close(g.pingerDone)
	hb := g.cfg.Heartbeat
	sched := newPingSchedule(time.Now(), hb)
	t := time.NewTimer(sched.every)
	defer t.Stop()
	var batch []*session
	for {
		select {
		case <-t.C:
		case <-g.quit:
			return
		}
		at := time.Now()
		from, to := sched.look(at)
		g.mu.Lock()
		batch = g.pingSlots.span(from, to, batch)
		n := g.pingSlots.n
		g.mu.Unlock()
		t.Reset(sched.wait(n))
		// Silence is found here, with the poller and with reader
		// goroutines alike (silentDevice).
		now := monoAt(at)
		for _, s := range batch {
			seen := s.lastSeen.Load()
			if s.authed.Load() && silentDevice(now, seen, s.pingedAt, hb) {
				s.kick(websocket.CloseNormalClosure, "timeout: nothing from the device for 2 heartbeats")
				continue
			}
			if !pingNeeded(now, seen, s.sentAt.Load(), hb) {
				continue
			}
			s.pingedAt = now
			s.send(pingFrame)
		}
		clear(batch)
		batch = batch[:0]
	}
}

// kickAll closes every session with code and reason and waits for them;
// sessions arriving later are turned away. It stops the pinger.
func (g *gateway) kickAll(code int, reason string) {
	g.mu.Lock()
	if !g.stopped {
		g.stopped = true
		close(g.quit)
	}
	for s := range g.sessions {
		s.kickGoingAway(code, reason)
	}
	started := g.started
	g.mu.Unlock()
	g.wg.Wait()
	if started {
		<-g.pingerDone
	}
	if g.poll != nil {
		g.poll.close()
	}
}

// send queues f (or a ping) and makes sure a writer runs. It reports false
// when the session is closing.
func (s *session) send(f *wire.Frame) bool {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return false
	}
	message := f != pingFrame && f.Type != "" // not a ping, nor a pong
	if message {
		s.sentAt.Store(monoNow())
	}
	if s.raw != nil && s.epoll && !s.writing && len(s.outbox) == 0 && message {
		s.writing = true // what is sent meanwhile waits for this write
		s.mu.Unlock()
		s.sendNow(f)
		return true
	}
	if f != pingFrame && f.Type == "" {
		// A pong: one waiting to be written answers this ping instead
		// (RFC 6455 section 5.5.3 lets a pong answer only the latest), so
		// that a burst of pings queues one pong, not a slow consumer's
		// backlog.
		for i := len(s.outbox) - 1; i >= 0; i-- {
			if q := s.outbox[i]; q != pingFrame && q.Type == "" {
				s.outbox[i] = f
				s.mu.Unlock()
				return true
			}
		}
	}
	s.outbox = append(s.outbox, f)
	if len(s.outbox) > s.g.cfg.InFlight+maxOutbox {
		s.closing, s.closeCode, s.closeMsg = true, wire.CloseSlowConsumer, "too many frames waiting: the device is not reading"
	}
	s.startWriter()
	s.mu.Unlock()
	return true
}

// sendNow writes f from the caller, without waiting, when nothing else is
// being written (s.writing, set by the caller): what the socket does not
// take at once, and anything queued meanwhile, is left to a writer
// goroutine. A frame to a connected device usually goes out here, without
// a writer goroutine started (and a thread woken) for it.
func (s *session) sendNow(f *wire.Frame) {
	bp := writeBufs.Get().(*[]byte)
	// The frame is encoded after room for its header, which is then
	// written in front of it: no array for the JSON alone, and no copy.
	buf, err := wire.AppendEncode((*bp)[:serverHeadroom], f)
	var out []byte
	n := 0
	if err == nil {
		out = frameInPlace(buf, websocket.TextMessage)
		n, err = writeNow(s.raw, out)
	}
	s.mu.Lock()
	switch {
	case err == nil && n == len(out):
	case n == 0:
		// Nothing went out (the socket is full, or failed): the writer
		// writes it, first, and handles any failure as for any frame.
		s.outbox = slices.Insert(s.outbox, 0, f)
	default:
		s.pending = append(s.pending, out[n:]...)
	}
	if len(s.outbox) > 0 || len(s.pending) > 0 || s.closing {
		go s.writeLoop() // s.writing stays set
	} else {
		s.writing = false
	}
	s.mu.Unlock()
	if cap(buf) <= 2*maxWriteChunk {
		*bp = buf
		writeBufs.Put(bp)
	}
}

// Notify implements Conn.
func (s *session) Notify(f *wire.Frame) { s.send(f) }

// Kick implements Conn.
func (s *session) Kick(code int, reason string) { s.kick(code, reason) }

// kick makes the writer send a close frame and end the connection.
func (s *session) kick(code int, reason string) { s.close(code, reason, false) }

// kickGoingAway is kick for a server going away: the device hears a
// goaway frame (shutting_down) before the close, and so knows to come back
// elsewhere or later. A close the device started is only echoed.
func (s *session) kickGoingAway(code int, reason string) { s.close(code, reason, true) }

func (s *session) close(code int, reason string, goAway bool) {
	s.mu.Lock()
	if !s.closing {
		s.closing, s.closeCode, s.closeMsg, s.goAway = true, code, reason, goAway
	}
	s.startWriter()
	s.mu.Unlock()
}

// startWriter starts the writer goroutine unless one runs or the
// connection is closed. s.mu is held.
func (s *session) startWriter() {
	if s.writing || s.closed {
		return
	}
	s.writing = true
	go s.writeLoop()
}

// writeLoop writes what is queued, in order, and exits when nothing is
// left. After a close (asked for, or a failed write) it closes the
// connection, which also ends the reader.
func (s *session) writeLoop() {
	var batch []*wire.Frame
	for {
		s.mu.Lock()
		if len(s.outbox) == 0 && len(s.pending) == 0 && !s.closing {
			s.writing = false
			s.mu.Unlock()
			return
		}
		batch, s.outbox = s.outbox, batch[:0]
		pending := s.pending
		s.pending = nil
		closing, code, msg, goAway := s.closing, s.closeCode, s.closeMsg, s.goAway
		s.mu.Unlock()
		err := s.writeFrames(pending, batch)
		clear(batch)
		if err != nil {
			s.g.log.Debug("device write failed", "remote", s.conn.RemoteAddr(), "err", err)
		}
		if err != nil || closing {
			if err == nil {
				s.writeClose(code, msg, goAway)
			}
			if s.epoll {
				s.g.poll.unwatch(&s.reg) // before the descriptor can be reused
			}
			s.conn.Close() // unblocks the reader
			s.mu.Lock()
			s.closing, s.closed, s.writing, s.outbox = true, true, false, nil
			if s.done != nil {
				close(s.done)
			}
			s.mu.Unlock()
			if s.epoll {
				s.finish()
			}
			return
		}
	}
}

// writeBufs are the buffers writeLoop assembles frames in; an idle
// connection holds none.
var writeBufs = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

// maxWriteChunk is how many bytes of frames writeFrames gathers before it
// writes them; a buffer grown much past it is not kept for reuse.
const maxWriteChunk = 64 << 10

// writeFrames writes prefix (the rest of a frame begun by sendNow), then
// frames (pings and pongs included) as WebSocket messages, several in one
// write where they fit, each write within the write timeout.
func (s *session) writeFrames(prefix []byte, frames []*wire.Frame) error {
	bp := writeBufs.Get().(*[]byte)
	buf := append((*bp)[:0], prefix...)
	var err error
	if len(frames) == 0 && len(buf) > 0 {
		s.conn.SetWriteDeadline(time.Now().Add(s.g.cfg.WriteTimeout))
		_, err = s.conn.Write(buf)
		buf = buf[:0]
	}
	for i, f := range frames {
		switch {
		case f == pingFrame:
			buf = appendServerFrame(buf, websocket.PingMessage, nil)
		case f.Type == "": // a pong, answering the device's ping
			buf = appendServerFrame(buf, websocket.PongMessage, []byte(f.Message))
		default:
			var b []byte
			if b, err = wire.Encode(f); err != nil {
				break
			}
			buf = appendServerFrame(buf, websocket.TextMessage, b)
		}
		if err != nil || len(buf) >= maxWriteChunk || i == len(frames)-1 {
			if len(buf) > 0 {
				s.conn.SetWriteDeadline(time.Now().Add(s.g.cfg.WriteTimeout))
				if _, werr := s.conn.Write(buf); werr != nil && err == nil {
					err = werr
				}
			}
			buf = buf[:0]
			if err != nil {
				break
			}
		}
	}
	if cap(buf) <= 2*maxWriteChunk {
		*bp = buf
		writeBufs.Put(bp)
	}
	if err != nil {
		return fmt.Errorf("write to device: %w", err)
	}
	return nil
}

// writeClose ends the conversation: a goaway frame first when the server
// is going away, then the close frame, within a second.
func (s *session) writeClose(code int, msg string, goAway bool) {
	var b []byte
	if goAway {
		if f, err := wire.Encode(&wire.Frame{Type: wire.TypeGoAway, Code: wire.CodeShuttingDown, Message: msg}); err == nil {
			b = appendServerFrame(b, websocket.TextMessage, f)
		}
	}
	b = appendCloseFrame(b, code, msg)
	s.conn.SetWriteDeadline(time.Now().Add(time.Second))
	s.conn.Write(b) // best effort: the connection closes next either way
}

// readLoop reads frames and hands them to the handler until the
// connection ends (without the poller: a goroutine per connection). It
// decodes nothing itself, so that its stack stays shallow while it waits.
func (s *session) readLoop() {
	s.fr.limit = wire.MaxFrameBytes
	s.conn.SetReadDeadline(time.Now().Add(s.g.cfg.HelloTimeout))
	buf := make([]byte, 512)
	for {
		n, err := s.conn.Read(buf)
		if n > 0 {
			if werr := s.fr.feed(buf[:n], s.onEvent); werr != nil {
				s.kick(werr.code, werr.reason)
				return
			}
			if s.isClosing() {
				return
			}
		}
		if err != nil {
			s.readFailed(err)
			return
		}
	}
}

// readFailed ends the session after a failed read, telling the device why
// when it can still hear it: no hello in time (1008, the only read deadline
// there is). Other errors (the device closed or the network failed) get a
// plain 1000.
func (s *session) readFailed(err error) {
	var ne net.Error
	switch {
	case errors.As(err, &ne) && ne.Timeout() && !s.firstFrame.Load():
		s.kick(websocket.ClosePolicyViolation, "no hello within "+s.g.cfg.HelloTimeout.String())
	default:
		s.g.log.Debug("device read failed", "remote", s.conn.RemoteAddr(), "err", err)
	}
}

// badFrame answers a frame that wire.Decode refused, with re = the frame's
// id when the id is readable. After hello, a request of a known device type
// that carries an id only fails its checks: the device learns which request
// failed and the session goes on. Anything else (not JSON, no id, an
// unknown type, anything before hello) ends the session with 1008. It
// returns false when the session must end.
func (s *session) badFrame(b []byte, err error) bool {
	// Unmarshal fills what it can read when only some members have the
	// wrong type; it fills nothing from invalid JSON.
	var peek struct {
		Type string `json:"type"`
		ID   uint64 `json:"id"`
	}
	_ = json.Unmarshal(b, &peek)
	s.send(&wire.Frame{Type: wire.TypeError, Re: peek.ID, Code: wire.CodeBadFrame, Message: err.Error()})
	if s.devID != "" && peek.ID != 0 && isDeviceRequest(peek.Type) {
		return true
	}
	s.kick(websocket.ClosePolicyViolation, "bad frame")
	return false
}

// helloOver ends the hello deadline at the first text message, on the
// reader before it reads again: if it is a hello, its answer may wait for
// an attach slot (up to 2 s) and the backend, and a device whose hello
// came in time is not to be closed for that (a new one would lose the
// identity just made for it); if not, handling it closes the session.
// (The timer and readFailed look at firstFrame too: either may fire
// before this runs.)
func (s *session) helloOver() {
	if !s.epoll {
		s.conn.SetReadDeadline(time.Time{})
		return
	}
	s.mu.Lock()
	if s.helloTimer != nil {
		s.helloTimer.Stop()
		s.helloTimer = nil
	}
	s.mu.Unlock()
}

// isDeviceRequest reports whether t is a frame type a device sends after hello.
func isDeviceRequest(t string) bool {
	switch t {
	case wire.TypeOpen, wire.TypeClose, wire.TypeBind, wire.TypeUnbind, wire.TypePower, wire.TypeAck:
		return true
	}
	return false
}

// handle answers one frame; it returns false when the connection must end.
func (s *session) handle(f *wire.Frame) bool {
	r := s.g.router
	if s.devID == "" {
		if f.Type != wire.TypeHello {
			s.send(&wire.Frame{Type: wire.TypeError, Re: f.ID, Code: wire.CodeHelloRequired, Message: "the first frame must be hello"})
			s.kick(websocket.ClosePolicyViolation, "hello required")
			return false
		}
		if f.DeviceID == "" {
			if ok, wait := s.g.newDevices.allow(s.ip, s.g.cfg.Clock.Now()); !ok {
				return s.refuseRate(f.ID, &rateLimited{what: "new devices", wait: wait})
			}
		}
		if !s.g.takeAttachSlot() {
			s.g.met.globalFull.WithLabelValues("attaching").Inc()
			s.send(&wire.Frame{Type: wire.TypeError, Code: wire.CodeServerFull, Message: "the server is taking many devices at once; retry later"})
			s.kick(websocket.CloseTryAgainLater, wire.CodeServerFull)
			return false
		}
		defer s.g.dropAttachSlot()
		id, tok, err := r.Authenticate(f.DeviceID, f.DeviceToken)
		if err != nil {
			code, closeCode := wire.CodeUnauthorized, wire.CloseUnauthorized
			if errors.Is(err, errDraining) {
				code, closeCode = wire.CodeShuttingDown, websocket.CloseTryAgainLater
			} else if errors.Is(err, errServerFull) {
				code, closeCode = wire.CodeServerFull, websocket.CloseTryAgainLater
				s.g.log.Warn("new device refused: the server holds as many devices as it may (--max-devices)", "remote", s.conn.RemoteAddr())
			}
			msg := err.Error()
			if code == wire.CodeUnauthorized && !errors.Is(err, errUnauthorized) {
				// A store's or backend's error: its text is the server's
				// business, not a stranger's (as errorFrame).
				s.g.log.Error("hello", "remote", s.conn.RemoteAddr(), "err", err)
				code, closeCode, msg = wire.CodeInternal, websocket.CloseInternalServerErr, "internal error; retry later"
			}
			s.send(&wire.Frame{Type: wire.TypeError, Code: code, Message: msg})
			s.kick(closeCode, code)
			return false
		}
		s.devID = id
		s.authed.Store(true)
		welcome := func() {
			s.send(&wire.Frame{Type: wire.TypeWelcome, Version: wire.ProtocolVersion, DeviceID: id, DeviceToken: tok,
				Heartbeat: s.g.cfg.Heartbeat.Milliseconds()})
		}
		// A known device is welcomed once its claim is written: one that
		// reconnects as soon as it hears the welcome (here or on another
		// node) claims after this connection, and wins. A new device is
		// welcomed at once: no other connection knows its identity yet,
		// and it keeps the identity whatever happens to this connection
		// next (a failed claim, a shutdown).
		claimed := welcome
		if tok != "" {
			welcome()
			claimed = nil
		}
		if err := r.Attach(id, s, claimed); errors.Is(err, errDeviceGone) {
			return false // closed 4003 already
		} else if err != nil {
			s.g.log.Error("attach device", "device", id, "err", err)
			s.send(&wire.Frame{Type: wire.TypeError, Code: wire.CodeInternal, Message: "the server could not take the connection; retry later"})
			s.kick(websocket.CloseTryAgainLater, wire.CodeInternal)
			return false
		}
		s.g.log.Debug("device connected", "device", id, "remote", s.conn.RemoteAddr(), "new", tok != "")
		return true
	}
	var err error
	switch f.Type {
	case wire.TypeHello:
		s.send(&wire.Frame{Type: wire.TypeError, Re: f.ID, Code: wire.CodeBadFrame, Message: "hello was already sent"})
		return true
	case wire.TypeOpen:
		var c backend.Channel
		admit := func() error {
			if ok, wait := s.g.channelOpens.allow(s.ip, s.g.cfg.Clock.Now()); !ok {
				return &rateLimited{what: "channel opens", wait: wait}
			}
			return nil
		}
		if c, err = r.Open(s.devID, f.App, f.Channel, f.Service, admit); err == nil {
			s.send(openedFrame(f.ID, c))
			return true
		}
		if rl := (*rateLimited)(nil); errors.As(err, &rl) {
			return s.refuseRate(f.ID, rl)
		}
	case wire.TypeBind, wire.TypeUnbind:
		var c backend.Channel
		if c, err = r.Bind(s.devID, f.App, f.Target, f.Type == wire.TypeBind, f.Domains); err == nil {
			s.send(openedFrame(f.ID, c))
			return true
		}
	case wire.TypeClose:
		err = r.CloseChannel(s.devID, f.App)
	case wire.TypePower:
		err = r.SetPower(s.devID, f.Power)
	case wire.TypeAck:
		r.Ack(s.devID, s, f.NIDs)
		return true
	default:
		s.send(&wire.Frame{Type: wire.TypeError, Re: f.ID, Code: wire.CodeUnsupported, Message: "a device may not send " + f.Type})
		s.kick(websocket.ClosePolicyViolation, "unexpected frame type")
		return false
	}
	if err != nil {
		s.send(errorFrame(f.ID, err))
		return true
	}
	s.send(&wire.Frame{Type: wire.TypeOK, Re: f.ID})
	return true
}

// refuseRate answers a request over a per-address rate with an error
// frame and closes the connection with 4029: the device backs off before
// it connects again. It returns false (the session ends).
func (s *session) refuseRate(re uint64, rl *rateLimited) bool {
	s.g.met.rateLimited.WithLabelValues(rl.what).Inc()
	s.g.log.Info("device refused: per-address rate", "what", rl.what, "address", s.ip, "remote", s.conn.RemoteAddr())
	s.send(&wire.Frame{Type: wire.TypeError, Re: re, Code: wire.CodeRateLimited, Message: rl.Error()})
	s.kick(wire.CloseRateLimited, "rate limited: "+rl.what)
	return false
}

// kickSessions closes every session with code and reason; unlike kickAll
// the gateway goes on taking connections.
func (g *gateway) kickSessions(code int, reason string) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	for s := range g.sessions {
		s.kick(code, reason)
	}
	return len(g.sessions)
}

func openedFrame(re uint64, c backend.Channel) *wire.Frame {
	return &wire.Frame{Type: wire.TypeOpened, Re: re, App: c.App, Channel: c.Name, Service: c.Service,
		URI: c.URI, Toast: c.Toast, Tile: c.Tile, Domains: c.Domains}
}

func errorFrame(re uint64, err error) *wire.Frame {
	f := &wire.Frame{Type: wire.TypeError, Re: re, Code: wire.CodeInternal, Message: err.Error()}
	var ce *channelError
	switch {
	case errors.As(err, &ce):
		f.Code = ce.code
	case errors.Is(err, errNotFound):
		f.Code = wire.CodeNotFound
	case errors.Is(err, errUnauthorized):
		f.Code = wire.CodeUnauthorized
	default:
		f.Message = "internal error; retry later"
	}
	return f
}
