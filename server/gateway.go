package server

import (
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/openmpns/openmpns/server/store"
	"github.com/openmpns/openmpns/shared/wire"
)

// GatewayPath is where devices open their WebSocket.
const GatewayPath = "/ws"

// DeviceRouter is what the WebSocket gateway needs from the routing engine.
type DeviceRouter interface {
	Authenticate(id, token string) (devID, newToken string, err error)
	Attach(devID string, c deviceConn)
	Disconnect(devID string, c deviceConn)
	Open(devID, app, name, service string) (store.Channel, error)
	Bind(devID, app, target string, on bool, domains []string) (store.Channel, error)
	CloseChannel(devID, app string) error
	SetPower(devID, level string) error
	Ack(devID string, c deviceConn, nids []string)
}

var _ DeviceRouter = (*Engine)(nil)

// maxOutbox bounds the frames waiting for one device beyond its in-flight
// notifications; a device that lets more pile up is cut off.
const maxOutbox = 64

// writeBufferPool shares write buffers between connections: an idle
// connection holds none.
var writeBufferPool sync.Pool

type gateway struct {
	cfg      *Config
	router   DeviceRouter
	log      *slog.Logger
	upgrader websocket.Upgrader

	mu       sync.Mutex
	sessions map[*session]struct{}
	perIP    map[string]int
	wg       sync.WaitGroup
}

func newGateway(cfg *Config, r DeviceRouter) *gateway {
	return &gateway{
		cfg: cfg, router: r, log: cfg.Logger,
		upgrader: websocket.Upgrader{
			HandshakeTimeout: 10 * time.Second,
			ReadBufferSize:   1024,
			WriteBufferSize:  1024,
			WriteBufferPool:  &writeBufferPool,
			Subprotocols:     []string{wire.Subprotocol},
			// Devices are not browsers; any origin may connect.
			CheckOrigin: func(*http.Request) bool { return true },
		},
		sessions: make(map[*session]struct{}),
		perIP:    make(map[string]int),
	}
}

// admit counts a connection from remote, refusing it over the per-address
// limit; release gives the slot back.
func (g *gateway) admit(remote string) (ip string, ok bool) {
	ip, _, err := net.SplitHostPort(remote)
	if err != nil {
		ip = remote
	}
	if addr := net.ParseIP(ip); addr != nil && addr.IsLoopback() {
		return "", true
	}
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

// session is one device connection: the handler goroutine reads, one writer
// goroutine writes everything queued in outbox, in order.
type session struct {
	g     *gateway
	ws    *websocket.Conn
	devID string
	log   *slog.Logger

	mu        sync.Mutex
	outbox    []*wire.Frame
	closing   bool
	closeCode int
	closeMsg  string
	wake      chan struct{}
	done      chan struct{} // closed when the writer has finished
}

func (g *gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ip, ok := g.admit(r.RemoteAddr)
	if !ok {
		w.Header().Set("Retry-After", "60")
		http.Error(w, "too many device connections from this address", http.StatusTooManyRequests)
		return
	}
	defer g.release(ip)
	ws, err := g.upgrader.Upgrade(w, r, nil)
	if err != nil {
		return // the upgrader has answered
	}
	s := &session{g: g, ws: ws, log: g.log, wake: make(chan struct{}, 1), done: make(chan struct{})}
	g.mu.Lock()
	g.sessions[s] = struct{}{}
	g.wg.Add(1)
	g.mu.Unlock()
	defer func() {
		g.mu.Lock()
		delete(g.sessions, s)
		g.mu.Unlock()
		g.wg.Done()
	}()
	go s.writeLoop()
	s.readLoop(r.RemoteAddr)
	s.kick(websocket.CloseNormalClosure, "")
	<-s.done
	if s.devID != "" {
		g.router.Disconnect(s.devID, s)
	}
}

// kickAll closes every session with code and reason and waits for them.
func (g *gateway) kickAll(code int, reason string) {
	g.mu.Lock()
	for s := range g.sessions {
		s.kick(code, reason)
	}
	g.mu.Unlock()
	g.wg.Wait()
}

func (s *session) send(f *wire.Frame) bool {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return false
	}
	s.outbox = append(s.outbox, f)
	over := len(s.outbox) > s.g.cfg.InFlight+maxOutbox
	s.mu.Unlock()
	if over {
		s.kick(wire.CloseSlowConsumer, "too many frames waiting: the device is not reading")
		return false
	}
	select {
	case s.wake <- struct{}{}:
	default:
	}
	return true
}

func (s *session) notify(f *wire.Frame) { s.send(f) }

// kick makes the writer send a close frame and end the connection.
func (s *session) kick(code int, reason string) {
	s.mu.Lock()
	if !s.closing {
		s.closing, s.closeCode, s.closeMsg = true, code, reason
	}
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func (s *session) writeLoop() {
	defer close(s.done)
	defer s.ws.Close() // unblocks the reader
	hb := s.g.cfg.Heartbeat
	ping := time.NewTicker(hb)
	defer ping.Stop()
	var batch []*wire.Frame
	for {
		select {
		case <-s.wake:
		case <-ping.C:
			if err := s.ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(s.g.cfg.WriteTimeout)); err != nil {
				return
			}
			continue
		}
		s.mu.Lock()
		batch, s.outbox = s.outbox, batch[:0]
		closing, code, msg := s.closing, s.closeCode, s.closeMsg
		s.mu.Unlock()
		for _, f := range batch {
			if err := s.write(f); err != nil {
				s.log.Debug("device write failed", "device", s.devID, "err", err)
				return
			}
		}
		clear(batch)
		if closing {
			if code == websocket.CloseGoingAway {
				s.write(&wire.Frame{Type: wire.TypeGoAway, Code: wire.CodeShuttingDown, Message: msg})
			}
			s.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, msg), time.Now().Add(time.Second))
			return
		}
	}
}

func (s *session) write(f *wire.Frame) error {
	b, err := wire.Encode(f)
	if err != nil {
		return err
	}
	s.ws.SetWriteDeadline(time.Now().Add(s.g.cfg.WriteTimeout))
	return s.ws.WriteMessage(websocket.TextMessage, b)
}

func (s *session) readLoop(remote string) {
	cfg := s.g.cfg
	alive := func() { s.ws.SetReadDeadline(time.Now().Add(2 * cfg.Heartbeat)) }
	// Pongs keep a session alive only after hello; before it, the hello
	// must come within the handshake deadline whatever else arrives.
	s.ws.SetPongHandler(func(string) error {
		if s.devID != "" {
			alive()
		}
		return nil
	})
	s.ws.SetReadDeadline(time.Now().Add(cfg.HelloTimeout))
	for {
		mt, b, err := s.readMessage()
		if err != nil {
			s.readFailed(err)
			return
		}
		if mt != websocket.TextMessage {
			s.send(&wire.Frame{Type: wire.TypeError, Code: wire.CodeBadFrame, Message: "binary messages are not accepted: send each frame as one JSON text message"})
			s.kick(websocket.CloseUnsupportedData, "binary message")
			return
		}
		f, err := wire.Decode(b)
		if err != nil {
			if !s.badFrame(b, err) {
				return
			}
			if s.devID != "" {
				alive()
			}
			continue
		}
		if s.devID != "" {
			alive()
		}
		if !s.handle(f, remote) {
			return
		}
	}
}

// errFrameTooBig is readMessage's error for a message over wire.MaxFrameBytes.
var errFrameTooBig = errors.New("frame larger than the limit")

// maxDiscard bounds what readMessage reads and drops of an oversized
// message, so that the close frame is not lost to a connection reset
// caused by unread data.
const maxDiscard = 1 << 20

// readMessage reads one message of at most wire.MaxFrameBytes. The limit is
// applied here rather than with SetReadLimit, whose own close frame (1009)
// carries no reason.
func (s *session) readMessage() (int, []byte, error) {
	mt, r, err := s.ws.NextReader()
	if err != nil {
		return 0, nil, err
	}
	b, err := io.ReadAll(io.LimitReader(r, wire.MaxFrameBytes+1))
	if err != nil {
		return 0, nil, err
	}
	if len(b) > wire.MaxFrameBytes {
		io.Copy(io.Discard, io.LimitReader(r, maxDiscard))
		return 0, nil, errFrameTooBig
	}
	return mt, b, nil
}

// readFailed ends the session after a failed read, telling the device why
// when it can still hear it: a frame over the limit (1009), no hello in
// time (1008), or silence past the heartbeat deadline (1000). Other errors
// (the device closed or the network failed) get a plain 1000.
func (s *session) readFailed(err error) {
	var ne net.Error
	switch {
	case errors.Is(err, errFrameTooBig):
		s.kick(websocket.CloseMessageTooBig, "frame larger than the limit")
	case errors.As(err, &ne) && ne.Timeout() && s.devID == "":
		s.kick(websocket.ClosePolicyViolation, "no hello within "+s.g.cfg.HelloTimeout.String())
	case errors.As(err, &ne) && ne.Timeout():
		s.kick(websocket.CloseNormalClosure, "timeout: nothing from the device for 2 heartbeats")
	default:
		s.log.Debug("device read failed", "err", err)
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

// isDeviceRequest reports whether t is a frame type a device sends after hello.
func isDeviceRequest(t string) bool {
	switch t {
	case wire.TypeOpen, wire.TypeClose, wire.TypeBind, wire.TypeUnbind, wire.TypePower, wire.TypeAck:
		return true
	}
	return false
}

// handle answers one frame; it returns false when the connection must end.
func (s *session) handle(f *wire.Frame, remote string) bool {
	r := s.g.router
	if s.devID == "" {
		if f.Type != wire.TypeHello {
			s.send(&wire.Frame{Type: wire.TypeError, Re: f.ID, Code: wire.CodeHelloRequired, Message: "the first frame must be hello"})
			s.kick(websocket.ClosePolicyViolation, "hello required")
			return false
		}
		id, tok, err := r.Authenticate(f.DeviceID, f.DeviceToken)
		if err != nil {
			code, closeCode := wire.CodeUnauthorized, wire.CloseUnauthorized
			if errors.Is(err, errDraining) {
				code, closeCode = wire.CodeShuttingDown, websocket.CloseTryAgainLater
			} else if !errors.Is(err, errUnauthorized) {
				code, closeCode = wire.CodeInternal, websocket.CloseInternalServerErr
			}
			s.send(&wire.Frame{Type: wire.TypeError, Code: code, Message: err.Error()})
			s.kick(closeCode, code)
			return false
		}
		s.devID = id
		s.log = s.log.With("device", id)
		s.send(&wire.Frame{Type: wire.TypeWelcome, Version: wire.ProtocolVersion, DeviceID: id, DeviceToken: tok,
			Heartbeat: s.g.cfg.Heartbeat.Milliseconds()})
		r.Attach(id, s)
		s.ws.SetReadDeadline(time.Now().Add(2 * s.g.cfg.Heartbeat))
		s.log.Debug("device connected", "remote", remote, "new", tok != "")
		return true
	}
	var err error
	switch f.Type {
	case wire.TypeHello:
		s.send(&wire.Frame{Type: wire.TypeError, Re: f.ID, Code: wire.CodeBadFrame, Message: "hello was already sent"})
		return true
	case wire.TypeOpen:
		var c store.Channel
		if c, err = r.Open(s.devID, f.App, f.Channel, f.Service); err == nil {
			s.send(openedFrame(f.ID, c))
			return true
		}
	case wire.TypeBind, wire.TypeUnbind:
		var c store.Channel
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

func openedFrame(re uint64, c store.Channel) *wire.Frame {
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
