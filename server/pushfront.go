package server

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// pushFront accepts the plain-HTTP connections and serves the common push
// itself, without net/http: a POST of a whole request (parsePush) read at
// once. Every other request, and a connection whose request arrives in
// parts, goes to net/http with the bytes already read, and stays there.
//
// Why (docs/benchmarks.md, "The push front"): per push, net/http spends
// about a fifth of the server's CPU on its own machinery (a goroutine per
// connection, a second goroutine reading in the background during each
// request and the hand-offs to stop it, a context, buffered readers and
// writers, the header-timeout watch), and its system calls wake the
// runtime's monitor thread. The front reads and writes with raw system
// calls and runs the same pushHandler on a request it builds.
//
// A connection in use has a goroutine of its own, which waits for the
// next request parked in the runtime's network poller: the goroutine that
// learns of a push is the one that serves it. One idle for parkAfter is
// parked: its goroutine ends and one epoll instance watches it, so that
// idle connections hold no goroutine; when a request comes, a goroutine
// of the poller serves it and the ones after it.
type pushFront struct {
	cfg  *Config
	ln   net.Listener
	h    http.Handler // the push handler
	poll *poller      // watches the parked connections
	log  *slog.Logger
	// parkAfter is how long a connection stays idle with its goroutine.
	parkAfter time.Duration
	conns     chan net.Conn // to net/http (frontListener)

	mu     sync.Mutex
	open   map[*frontConn]struct{}
	closed bool
	busy   sync.WaitGroup // connections serving a request
	quit   chan struct{}
	done   sync.WaitGroup // the accept loop and the sweeper

	// failed is closed when the listener failed for good (err says why):
	// net/http's Serve then returns.
	failed chan struct{}
	err    error

	// handed counts the connections given to net/http
	// (openmpns_push_front_handovers_total).
	handed prometheus.Counter
}

// defaultParkAfter is how long a sender's connection keeps its goroutine
// between two requests. One in use every second or more often keeps it;
// the goroutine's stack (about 8 KiB once it served a push) is the memory
// an idle connection would otherwise hold until IdleTimeout.
const defaultParkAfter = time.Second

// newPushFront starts a front on ln; net/http serves what it hands over
// through frontListener. It fails where there is no epoll.
func newPushFront(cfg *Config, ln net.Listener, h http.Handler, met *metrics) (*pushFront, error) {
	p, err := newPoller()
	if err != nil {
		return nil, err
	}
	park := cfg.parkAfter
	if park <= 0 {
		park = defaultParkAfter
	}
	f := &pushFront{cfg: cfg, ln: ln, h: h, poll: p, parkAfter: park, log: cfg.Logger, conns: make(chan net.Conn),
		open: map[*frontConn]struct{}{}, quit: make(chan struct{}), failed: make(chan struct{}),
		handed: met.frontHandovers}
	f.done.Add(2)
	go f.acceptLoop()
	go f.sweeper()
	return f, nil
}

// frontConn is one connection while the front has it.
type frontConn struct {
	f      *pushFront
	conn   net.Conn
	remote string // conn.RemoteAddr(), the requests' RemoteAddr
	raw    syscall.RawConn
	reg    pollReg // while parked
	// parked: the poller watches the connection and no goroutine reads it
	// (set under f.mu, with the registration; cleared by unpark once it
	// unwatched it). The sweeper parks a connection by setting a read
	// deadline in the past, which ends its goroutine's wait.
	parked atomic.Bool
	// panicked: a handler panicked serving a request read into bp, which
	// is then not reused (the serving goroutine's).
	panicked bool
	// readFn is readOnce, made once; bp, n and rerr are its read (run's).
	readFn func(fd uintptr) bool
	bp     *[]byte
	n      int
	rerr   error
	// state: idle (between requests: parked, or its goroutine waits for
	// the next), busy (a request is read or served), gone.
	state atomic.Int32
	// since: when it became idle (monoNow), for the sweeper; served: it
	// answered a request (an idle keep-alive connection, not a new one).
	since  atomic.Int64
	served atomic.Bool
	// header is where the pushes' headers are parsed into, reused from one
	// push to the next (the serving goroutine's; a panic ends the
	// connection, so what panicked never sees it reused).
	header headerSpace
	// crlf is how many more CR or LF bytes may be skipped before the next
	// request: as net/http, up to 4 after a POST (old senders end a body
	// with a line break). The one goroutine serving the connection's reads
	// owns it.
	crlf int
}

// skipCRLF drops the CR and LF bytes that may come after a push.
func (c *frontConn) skipCRLF(b []byte) []byte {
	for c.crlf > 0 && len(b) > 0 && (b[0] == '\r' || b[0] == '\n') {
		b = b[1:]
		c.crlf--
	}
	if len(b) > 0 {
		c.crlf = 0
	}
	return b
}

const (
	connIdle int32 = iota
	connBusy
	connGone
)

func (f *pushFront) acceptLoop() {
	defer f.done.Done()
	wait := time.Duration(0)
	for {
		c, err := f.ln.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Temporary() { //nolint:staticcheck // as net/http: too many open files
				wait = min(max(2*wait, 5*time.Millisecond), time.Second)
				f.log.Warn("accept", "err", err, "retry_in", wait)
				select {
				case <-time.After(wait):
					continue
				case <-f.quit:
					return
				}
			}
			select {
			case <-f.quit:
			default:
				f.err = err
				close(f.failed)
			}
			return
		}
		wait = 0
		f.add(c)
	}
}

// add watches a new connection, parked until its first request comes (a
// connection that sends nothing holds no goroutine), or gives it to
// net/http when it cannot.
func (f *pushFront) add(c net.Conn) {
	fd, raw, err := connFD(c)
	if err != nil {
		f.handOver(c, nil)
		return
	}
	fc := f.newConn(c, fd, raw)
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		c.Close()
		return
	}
	f.open[fc] = struct{}{}
	fc.parked.Store(true)
	err = f.poll.watch(&fc.reg)
	if err != nil {
		fc.parked.Store(false)
	}
	f.mu.Unlock()
	if err != nil {
		f.drop(fc)
		f.handOver(c, nil)
	}
}

// newConn is the front's state of c (descriptor fd, raw), idle since now,
// not yet in f.open.
func (f *pushFront) newConn(c net.Conn, fd int, raw syscall.RawConn) *frontConn {
	fc := &frontConn{f: f, conn: c, remote: c.RemoteAddr().String(), raw: raw, reg: pollReg{fd: int32(fd)}}
	fc.readFn = fc.readOnce
	fc.reg.onReadable = fc.unpark
	fc.since.Store(monoNow())
	return fc
}

// drop forgets fc (unwatched, if parked, before its descriptor can be
// reused).
func (f *pushFront) drop(fc *frontConn) {
	f.mu.Lock()
	if fc.parked.Load() {
		f.poll.unwatch(&fc.reg)
	}
	delete(f.open, fc)
	f.mu.Unlock()
}

// frontBufs are what a readable connection is read into; an idle one holds
// none.
// 8 KiB holds the largest push MPNS allows (a 3 KB payload, 1 KB of
// headers) with a long Authorization; a request that does not fit goes to
// net/http.
var frontBufs = sync.Pool{New: func() any { b := make([]byte, 8<<10); return &b }}

// run serves the connection's requests until it ends. Between two, it
// waits parked in the runtime's network poller, holding no buffer: the
// goroutine that learns the connection is readable is the one that
// serves it (a poller of our own handed each readable connection to a
// worker goroutine, one more hand-off and thread wake-up per push).
func (c *frontConn) run() {
	for {
		err := c.raw.Read(c.readFn)
		bp, n := c.bp, c.n
		c.bp = nil
		if err == nil && c.rerr != nil {
			err = c.rerr
		}
		if errors.Is(err, os.ErrDeadlineExceeded) { // the sweeper's only deadline
			c.toPoller()
			return
		}
		if err != nil || n == 0 { // closed by the sender (EOF), reset, or closed here
			if bp != nil {
				frontBufs.Put(bp)
			}
			c.closeIdle()
			return
		}
		more := c.turn(*bp, n)
		if !c.panicked {
			frontBufs.Put(bp)
		}
		if !more {
			return
		}
	}
}

// toPoller parks the connection, idle: its goroutine ends, and the poller
// runs unpark when a request comes. Bytes that came meanwhile make an
// event at once (an edge-triggered registration reports what is already
// readable).
func (c *frontConn) toPoller() {
	// Under f.mu, as drop: a connection closed meanwhile is not watched,
	// and one watched is unwatched before it is closed.
	c.f.mu.Lock()
	if c.state.Load() != connIdle {
		c.f.mu.Unlock()
		return // closed meanwhile
	}
	c.header = headerSpace{} // a parked connection holds nothing of its pushes
	c.parked.Store(true)
	err := c.f.poll.watch(&c.reg)
	if err != nil {
		c.parked.Store(false)
	}
	c.f.mu.Unlock()
	if err != nil { // the front is closing
		c.closeIdle()
	}
}

// unpark serves a parked connection that became readable, on the
// poller's worker, which stays its goroutine until it is parked again.
func (c *frontConn) unpark() {
	c.f.poll.unwatch(&c.reg)
	// Not idle since long ago: the sweeper would park it again before its
	// request is read.
	c.since.Store(monoNow())
	c.parked.Store(false)
	c.conn.SetReadDeadline(time.Time{})
	c.run()
}

// readOnce is run's read, which the runtime calls again once the socket
// is readable when it returns false: it takes a buffer only for the bytes
// that came.
func (c *frontConn) readOnce(fd uintptr) bool {
	bp := frontBufs.Get().(*[]byte)
	c.n, c.rerr = readFD(fd, *bp)
	if c.rerr == syscall.EAGAIN {
		frontBufs.Put(bp)
		return false
	}
	c.bp = bp
	return true
}

// turn serves the pushes in the n bytes read into buf and what follows
// them on the socket, one after the other (a sender may pipeline), until
// the socket is drained; false when the connection is no longer the
// front's (closed, or handed over to net/http with what is left when that
// is not a whole push).
func (c *frontConn) turn(buf []byte, n int) bool {
	if !c.state.CompareAndSwap(connIdle, connBusy) {
		return false // the sweeper or a shutdown closed it
	}
	// Counted under f.mu, so that stop, which sets closed under it, either
	// sees this connection busy before wait counts, or is seen here.
	c.f.mu.Lock()
	if c.f.closed {
		c.f.mu.Unlock()
		c.close()
		return false
	}
	c.f.busy.Add(1)
	c.f.mu.Unlock()
	defer c.f.busy.Done()
	for {
		b := c.skipCRLF(buf[:n])
		for len(b) > 0 {
			req, used, verdict := parsePush(b, c.f.cfg.MaxPayloadBytes, &c.header)
			if verdict != pushComplete {
				// Not a push, or its rest is still on the way: net/http's,
				// with what was read.
				c.f.drop(c)
				c.state.Store(connGone)
				c.conn.SetReadDeadline(time.Time{}) // the sweeper's, if it set one
				c.f.handOver(c.conn, b)
				return false
			}
			keep := c.serve(&req)
			if !c.panicked {
				c.header.forget() // answered: the response no longer points into it
			}
			if !keep {
				c.closeAfterAnswer()
				return false
			}
			c.crlf = 4
			b = c.skipCRLF(b[used:])
		}
		if n < len(buf) {
			return c.idle() // a short read drained the socket
		}
		var err error
		n, err = readNow(c.raw, buf)
		switch {
		case errors.Is(err, errWouldBlock), errors.Is(err, os.ErrDeadlineExceeded):
			// Drained; or the sweeper parks the connection (it looked as
			// this turn began): run meets the deadline too and parks it,
			// and what is left brings the poller's event at once.
			return c.idle()
		case err != nil: // closed by the sender (EOF), or reset
			c.close()
			return false
		}
	}
}

// idle ends the turn of a connection left idle, or closes it when the
// front is closing; false when it closed it.
func (c *frontConn) idle() bool {
	c.since.Store(monoNow())
	c.state.Store(connIdle)
	c.f.mu.Lock()
	closing := c.f.closed
	c.f.mu.Unlock()
	if closing && c.closeIdle() {
		return false
	}
	return true
}

// closeIdle closes the connection if it is idle; false when it was not
// (busy, or closed already).
func (c *frontConn) closeIdle() bool {
	if !c.state.CompareAndSwap(connIdle, connGone) {
		return false
	}
	c.f.drop(c)
	c.conn.Close()
	return true
}

func (c *frontConn) close() {
	c.state.Store(connGone)
	c.f.drop(c)
	c.conn.Close()
}

// closeAfterAnswer ends a connection whose answer said Connection: close
// as net/http does: it stops writing, and closes a while later, so that
// what the sender may still send meets a FIN, not a reset that could wipe
// out the answer before the sender read it.
func (c *frontConn) closeAfterAnswer() {
	c.state.Store(connGone)
	c.f.drop(c)
	closeWrite(c.conn)
	time.AfterFunc(rstAvoidanceDelay, func() { c.conn.Close() })
}

// rstAvoidanceDelay is net/http's wait between the half-close and the close.
const rstAvoidanceDelay = 500 * time.Millisecond

// serve answers one push; false when the connection is to be closed.
func (c *frontConn) serve(fr *frontRequest) bool {
	c.served.Store(true)
	q := frontRequests.Get().(*frontReq)
	q.url.Path = fr.path
	q.body.Reset(fr.body)
	q.r = http.Request{
		Method: http.MethodPost, URL: &q.url, RequestURI: fr.path,
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1, Header: fr.header, Host: fr.host,
		ContentLength: int64(len(fr.body)), Body: &q.body,
		RemoteAddr: c.remote, Close: fr.close,
	}
	w := frontWriters.Get().(*frontWriter)
	if !c.f.handle(w, &q.r) {
		// Neither the request, the writer nor the buffer read into is
		// reused: what panicked may still hold them.
		c.panicked = true
		return false
	}
	defer w.release()
	q.release()
	c.f.mu.Lock()
	closing := c.f.closed
	c.f.mu.Unlock()
	keep := !fr.close && !closing
	out := w.response(keep)
	n, err := writeNow(c.raw, out)
	if err != nil && !errors.Is(err, errWouldBlock) {
		return false
	}
	if n < len(out) { // the sender is not reading: wait a while
		c.conn.SetWriteDeadline(time.Now().Add(c.f.cfg.WriteTimeout))
		if _, err := c.conn.Write(out[n:]); err != nil {
			return false
		}
		c.conn.SetWriteDeadline(time.Time{})
	}
	return keep
}

// frontReq is the request a push is served as, with what it points to:
// pooled, as the push handler keeps nothing of a request once it returns.
type frontReq struct {
	r    http.Request
	url  url.URL
	body frontBody
}

// frontBody is a push's body, already read.
type frontBody struct{ bytes.Reader }

// Close implements io.Closer.
func (*frontBody) Close() error { return nil }

var frontRequests = sync.Pool{New: func() any { return new(frontReq) }}

func (q *frontReq) release() {
	q.r = http.Request{}
	q.url = url.URL{}
	q.body.Reset(nil)
	frontRequests.Put(q)
}

// handle runs the handler as net/http does: a panic is logged and ends
// the connection without an answer, never the server.
func (f *pushFront) handle(w http.ResponseWriter, r *http.Request) (ok bool) {
	defer func() {
		if v := recover(); v != nil {
			if v != http.ErrAbortHandler { // the handler's way to end the connection, quiet under net/http
				buf := make([]byte, 16<<10)
				buf = buf[:runtime.Stack(buf, false)]
				f.log.Error("panic serving a push", "remote", r.RemoteAddr, "panic", v, "stack", string(buf))
			}
			ok = false
		}
	}()
	f.h.ServeHTTP(w, r)
	return true
}

// handOver gives c to net/http, which reads read first.
func (f *pushFront) handOver(c net.Conn, read []byte) {
	f.handed.Inc()
	var pc net.Conn = c
	if len(read) > 0 {
		pc = &prefixConn{Conn: c, prefix: slices.Clone(read)}
	}
	hc := watchHeaders(pc, f.cfg.ReadHeaderTimeout)
	select {
	case f.conns <- hc:
	case <-f.quit:
		c.Close()
	case <-f.failed: // net/http's Serve has returned: nobody takes it
		c.Close()
	}
}

// sweeper closes connections idle too long: after IdleTimeout between
// requests, after ReadHeaderTimeout when nothing came since the accept
// (what net/http does).
func (f *pushFront) sweeper() {
	defer f.done.Done()
	every := f.cfg.sweepEvery
	if every <= 0 {
		every = min(f.cfg.ReadHeaderTimeout, f.cfg.IdleTimeout) / 4
		every = min(max(every, 10*time.Millisecond), 5*time.Second)
	}
	t := time.NewTicker(every)
	defer t.Stop()
	var stale []*frontConn
	for {
		select {
		case <-t.C:
		case <-f.quit:
			return
		}
		now := monoNow()
		stale = stale[:0]
		f.mu.Lock()
		for c := range f.open {
			limit := f.cfg.IdleTimeout
			if !c.served.Load() {
				limit = f.cfg.ReadHeaderTimeout
			}
			if c.state.Load() != connIdle {
				continue
			}
			switch idle := now - c.since.Load(); {
			case idle > int64(limit):
				stale = append(stale, c)
			case idle > int64(f.parkAfter) && !c.parked.Load():
				c.conn.SetReadDeadline(time.Unix(1, 0)) // ends its goroutine's wait
			}
		}
		f.mu.Unlock()
		for _, c := range stale {
			c.closeIdle()
		}
		clear(stale)
	}
}

// stop stops accepting and closes the idle connections; the requests
// being served go on (wait waits for them). Their connections close after
// their answer.
func (f *pushFront) stop() {
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return
	}
	f.closed = true
	idle := make([]*frontConn, 0, len(f.open))
	for c := range f.open {
		idle = append(idle, c)
	}
	f.mu.Unlock()
	close(f.quit)
	f.ln.Close()
	for _, c := range idle {
		c.closeIdle()
	}
}

// wait waits, until ctx ends, for the requests being served after stop,
// then releases the poller.
func (f *pushFront) wait(ctx context.Context) error {
	served := make(chan struct{})
	go func() { f.busy.Wait(); close(served) }()
	var err error
	select {
	case <-served:
	case <-ctx.Done():
		err = ctx.Err()
	}
	f.done.Wait()
	f.poll.close()
	return err
}

// close is stop and wait.
func (f *pushFront) close(ctx context.Context) error {
	f.stop()
	return f.wait(ctx)
}

// frontListener is what net/http serves: the connections the front hands
// over.
type frontListener struct {
	f      *pushFront
	once   sync.Once
	closed chan struct{}
}

func (l *frontListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.f.conns:
		return c, nil
	case <-l.f.failed:
		return nil, l.f.err
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

func (l *frontListener) Close() error {
	l.once.Do(func() { close(l.closed) })
	return nil
}

func (l *frontListener) Addr() net.Addr { return l.f.ln.Addr() }

// prefixConn is a connection whose first bytes were already read.
type prefixConn struct {
	net.Conn
	mu     sync.Mutex
	prefix []byte
}

func (c *prefixConn) Read(p []byte) (int, error) {
	c.mu.Lock()
	if len(c.prefix) > 0 {
		n := copy(p, c.prefix)
		c.prefix = c.prefix[n:]
		if len(c.prefix) == 0 {
			c.prefix = nil
		}
		c.mu.Unlock()
		return n, nil
	}
	c.mu.Unlock()
	return c.Conn.Read(p)
}

// drained reports whether the prefix has been read.
func (c *prefixConn) drained() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.prefix) == 0
}

// SyscallConn gives the descriptor once the prefix has been read (the
// WebSocket gateway then reads the socket itself).
func (c *prefixConn) SyscallConn() (syscall.RawConn, error) {
	c.mu.Lock()
	left := len(c.prefix)
	c.mu.Unlock()
	sc, ok := c.Conn.(syscall.Conn)
	if left > 0 || !ok {
		return nil, errors.New("server: connection has unread bytes or no descriptor")
	}
	return sc.SyscallConn()
}

// CloseWrite half-closes the connection (see headerTimeoutConn).
func (c *prefixConn) CloseWrite() error { return closeWrite(c.Conn) }

// frontWriter is the http.ResponseWriter of a push the front serves.
type frontWriter struct {
	h    http.Header
	code int
	body []byte
	out  []byte
}

var frontWriters = sync.Pool{New: func() any { return &frontWriter{h: make(http.Header, 8)} }}

func (w *frontWriter) release() {
	clear(w.h)
	w.code, w.body = 0, w.body[:0]
	if cap(w.out) > 64<<10 {
		w.out = nil
	}
	frontWriters.Put(w)
}

func (w *frontWriter) Header() http.Header { return w.h }

func (w *frontWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
}

func (w *frontWriter) Write(b []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	w.body = append(w.body, b...)
	return len(b), nil
}

// response is the answer as net/http writes it: the status line, the
// headers in sorted order, Date, Content-Length (and a sniffed
// Content-Type for a body without one), Connection: close unless keep.
func (w *frontWriter) response(keep bool) []byte {
	w.WriteHeader(http.StatusOK)
	b := w.out[:0]
	b = append(b, "HTTP/1.1 "...)
	b = strconv.AppendInt(b, int64(w.code), 10)
	b = append(b, ' ')
	b = append(b, http.StatusText(w.code)...)
	b = append(b, "\r\n"...)
	if len(w.body) > 0 && w.h.Get("Content-Type") == "" {
		w.h.Set("Content-Type", http.DetectContentType(w.body))
	}
	var keys [16]string
	ks := keys[:0]
	for k := range w.h {
		switch k {
		case "Content-Length", "Connection", "Date", "Transfer-Encoding":
			continue // the front's own
		}
		ks = append(ks, k)
	}
	slices.Sort(ks)
	for _, k := range ks {
		for _, v := range w.h[k] {
			b = append(b, k...)
			b = append(b, ": "...)
			b = appendHeaderValue(b, v)
			b = append(b, "\r\n"...)
		}
	}
	if !keep {
		b = append(b, "Connection: close\r\n"...)
	}
	b = append(b, "Content-Length: "...)
	b = strconv.AppendInt(b, int64(len(w.body)), 10)
	b = append(b, "\r\nDate: "...)
	b = appendDate(b)
	b = append(b, "\r\n\r\n"...)
	b = append(b, w.body...)
	w.out = b
	return b
}

// date caches the Date header's value for the second it names.
var date atomic.Pointer[cachedDate]

type cachedDate struct {
	sec int64
	s   []byte
}

func appendDate(b []byte) []byte {
	now := time.Now()
	d := date.Load()
	if d == nil || d.sec != now.Unix() {
		d = &cachedDate{sec: now.Unix(), s: now.UTC().AppendFormat(nil, http.TimeFormat)}
		date.Store(d)
	}
	return append(b, d.s...)
}

// appendHeaderValue appends v as net/http writes a header value: line
// breaks made spaces, leading and trailing blanks trimmed.
func appendHeaderValue(b []byte, v string) []byte {
	for len(v) > 0 && (v[0] == ' ' || v[0] == '\t' || v[0] == '\r' || v[0] == '\n') {
		v = v[1:]
	}
	for len(v) > 0 && (v[len(v)-1] == ' ' || v[len(v)-1] == '\t' || v[len(v)-1] == '\r' || v[len(v)-1] == '\n') {
		v = v[:len(v)-1]
	}
	if strings.IndexAny(v, "\r\n") < 0 { // the usual value: copied at once
		return append(b, v...)
	}
	for i := 0; i < len(v); i++ {
		if c := v[i]; c == '\r' || c == '\n' {
			b = append(b, ' ')
		} else {
			b = append(b, c)
		}
	}
	return b
}
