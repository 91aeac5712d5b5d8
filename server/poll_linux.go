package server

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"unsafe"

	"github.com/openmpns/openmpns/shared/rawsock"
)

// poller waits for device connections to become readable with one epoll
// instance and one goroutine for all of them, so that an idle connection
// has no goroutine of its own. Registrations are edge-triggered: a turn of
// the session's onReadable, on a worker goroutine (or its quick turn, on
// the poller's own: see pollReg), reads until the socket is drained and
// ends with rearm; an event during the turn brings another turn after it
// (pollReg.run). The epoll descriptor is itself
// waited on by the Go runtime's network poller (an epoll descriptor is
// readable while it has events): the loop parks like any goroutine reading
// a socket instead of holding a thread in epoll_wait, which the runtime
// would hand its processor away from, and back, at every wake-up.
type poller struct {
	epfd   int
	ep     *os.File        // epfd, registered with the runtime's poller
	raw    syscall.RawConn // ep's, to wait for events
	mu     sync.Mutex
	byFD   map[int32]*pollReg
	gen    int32 // stamps each registration; carried in the event's Pad
	closed bool
	done   chan struct{}

	// work hands a readable registration to an idle worker; the loop
	// starts a new worker when none is waiting. idle counts the waiting
	// ones, at most maxIdleWorkers (the rest end).
	work chan *pollReg
	idle atomic.Int32
}

// maxIdleWorkers bounds the goroutines kept waiting for the next readable
// connection. A worker keeps the stack it grew serving a push or a
// device's frames; a goroutine started per event began with the smallest
// and copied it up to that size each time, which was an eighth of the
// server's CPU in a closed-loop profile (docs/benchmarks.md, session 8).
// 128 covers the 64 senders of the benchmark with their devices' acks.
const maxIdleWorkers = 128

// pollEvents registers a descriptor edge-triggered: an event comes when
// bytes arrive, and the registration stays, so nothing is asked of epoll
// between two reads (a one-shot registration cost an epoll_ctl per
// event). A session reads until the socket is drained (a short read or
// EAGAIN); what arrives after that brings an event of its own.
const pollEvents = syscall.EPOLLIN | syscall.EPOLLRDHUP | syscall.EPOLLET&0xffffffff

func newPoller() (*poller, error) {
	epfd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("epoll: %w", err)
	}
	// Non-blocking, so that os.NewFile registers it with the runtime's
	// poller.
	if err := syscall.SetNonblock(epfd, true); err != nil {
		syscall.Close(epfd)
		return nil, fmt.Errorf("epoll: %w", err)
	}
	ep := os.NewFile(uintptr(epfd), "epoll")
	raw, err := ep.SyscallConn()
	if err != nil {
		ep.Close()
		return nil, fmt.Errorf("epoll: %w", err)
	}
	p := &poller{epfd: epfd, ep: ep, raw: raw, byFD: map[int32]*pollReg{}, done: make(chan struct{}), work: make(chan *pollReg)}
	go p.loop()
	return p, nil
}

// connFD returns the descriptor of a TCP connection.
func connFD(c net.Conn) (int, syscall.RawConn, error) {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return -1, nil, errors.New("not a socket")
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return -1, nil, err
	}
	fd := -1
	if err := raw.Control(func(f uintptr) { fd = int(f) }); err != nil {
		return -1, nil, err
	}
	return fd, raw, nil
}

// watch registers s; when its descriptor has data, s.quick runs on the
// poller's goroutine (when s has one), and s.onReadable on a worker
// goroutine (for what a quick turn left, or for every turn).
func (p *poller) watch(s *pollReg) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return errors.New("poller closed")
	}
	p.gen++
	s.gen = p.gen
	// A registration starts afresh: no turn running, no close seen (the
	// push front watches a connection again each time it parks it).
	s.run.Store(regIdle)
	s.hup.Store(false)
	ev := syscall.EpollEvent{Events: pollEvents, Fd: s.fd, Pad: s.gen}
	if err := syscall.EpollCtl(p.epfd, syscall.EPOLL_CTL_ADD, int(s.fd), &ev); err != nil {
		return fmt.Errorf("epoll add: %w", err)
	}
	p.byFD[s.fd] = s
	return nil
}

// rearm ends s.onReadable's turn, which drained the socket: the next
// event runs it again. It is called by onReadable itself, last; when an
// event came during the turn, the worker runs another turn once it
// returns.
func (p *poller) rearm(s *pollReg) {
	if s.run.CompareAndSwap(regRunning, regIdle) {
		return
	}
	s.run.Store(regRunning) // regAgain
	s.rerun.Store(true)
}

// unwatch removes s; it must run before the connection is closed, so that
// a new connection given the same descriptor number is not touched.
func (p *poller) unwatch(s *pollReg) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.closed && p.byFD[s.fd] == s {
		delete(p.byFD, int32(s.fd))
		_ = syscall.EpollCtl(p.epfd, syscall.EPOLL_CTL_DEL, int(s.fd), nil)
	}
}

func (p *poller) loop() {
	defer close(p.done)
	defer close(p.work) // the waiting workers end
	events := make([]syscall.EpollEvent, 256)
	var n int
	// The runtime calls look, and waits for the descriptor to be readable
	// only when it returns false: no events are lost between a look that
	// found none and the wait. Made once: a closure made at each wait was
	// an allocation each time.
	look := func(fd uintptr) bool {
		var werr error
		for {
			n, werr = epollPoll(fd, events)
			if werr != syscall.EINTR {
				break
			}
		}
		if werr != nil {
			n = 0 // not an error epoll_pwait gives for a valid epoll descriptor
		}
		return n > 0
	}
	for {
		err := p.raw.Read(look)
		if err != nil {
			p.mu.Lock()
			closed := p.closed
			p.mu.Unlock()
			if !closed {
				slog.Error("epoll poller stopped: connections it watched are no longer read", "err", err)
			}
			return
		}
		for _, ev := range events[:n] {
			// Looked up, checked and fired under p.mu, as watch and unwatch
			// run: an event of a registration since unwatched (and perhaps
			// watched again: the push front parks a connection many times)
			// is dropped, never fired on the new one. An event from an
			// earlier registration of the descriptor number carries an
			// older generation.
			p.mu.Lock()
			s := p.byFD[ev.Fd]
			fire := s != nil && s.gen == ev.Pad
			if fire {
				if ev.Events&(syscall.EPOLLRDHUP|syscall.EPOLLHUP|syscall.EPOLLERR) != 0 {
					s.hup.Store(true) // before fire: the turn it starts, or reruns, sees it
				}
				fire = s.fire()
			}
			p.mu.Unlock()
			if fire {
				p.turn(s)
			}
		}
	}
}

// turn runs a turn of s: its quick turn here, on the poller's goroutine,
// when it has one, and what that leaves on a worker. A device's
// acknowledgement read here readies the push that waits for it, which then
// runs next on this processor: the hand-off to a worker cost a goroutine
// wake-up per notification, about 6 % of the closed loop's deliveries
// (docs/benchmarks.md, session 13).
func (p *poller) turn(s *pollReg) {
	if s.quick != nil && s.quick() && !s.rerun.Swap(false) {
		return
	}
	// The rest of the turn; or the turn again, for an event during the
	// quick one (which cannot come today: only this goroutine fires).
	p.dispatch(s)
}

// dispatch runs s.onReadable on an idle worker, or a new one.
func (p *poller) dispatch(s *pollReg) {
	select {
	case p.work <- s:
	default:
		go p.worker(s)
	}
}

// worker runs s.onReadable, then waits for the next readable registration
// unless maxIdleWorkers already wait.
func (p *poller) worker(s *pollReg) {
	for {
		s.onReadable()
		for s.rerun.Swap(false) {
			s.onReadable()
		}
		if p.idle.Add(1) > maxIdleWorkers {
			p.idle.Add(-1)
			return
		}
		var ok bool
		s, ok = <-p.work
		p.idle.Add(-1)
		if !ok {
			return
		}
	}
}

// close stops the loop; sessions must have been unwatched or be closing.
func (p *poller) close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	p.mu.Unlock()
	p.ep.Close() // the loop's wait ends with an error; it closes epfd
	<-p.done
}

// readFD reads the socket fd once, with a raw system call (no runtime
// bookkeeping): syscall.EAGAIN when it holds nothing.
func readFD(fd uintptr, p []byte) (int, error) { return rawsock.Call(syscall.SYS_READ, fd, p) }

// readNow reads what the socket holds without waiting: errWouldBlock when
// it holds nothing, io.EOF when the peer closed it.
func readNow(raw syscall.RawConn, buf []byte) (int, error) {
	op := rawOps.Get().(*rawOp)
	op.trap, op.b = syscall.SYS_READ, buf
	err := raw.Read(op.fn)
	n, rerr := op.n, op.err
	op.release()
	switch {
	case err != nil:
		return 0, err
	case rerr == syscall.EAGAIN:
		return 0, errWouldBlock
	case rerr != nil:
		return 0, rerr
	case n == 0:
		return 0, io.EOF
	}
	return n, nil
}

// writeNow writes what the socket takes of b without waiting: how many
// bytes, errWouldBlock when it takes none.
func writeNow(raw syscall.RawConn, b []byte) (int, error) {
	op := rawOps.Get().(*rawOp)
	op.trap, op.b = syscall.SYS_WRITE, b
	err := raw.Write(op.fn)
	n, werr := op.n, op.err
	op.release()
	switch {
	case err != nil:
		return 0, err
	case werr == syscall.EAGAIN:
		return 0, errWouldBlock
	case werr != nil:
		return 0, werr
	}
	return max(n, 0), nil
}

// rawOp is one read or write through a RawConn. Its function is made once
// per rawOp, which is pooled: a closure per call, and the variables it
// captures, were three to four allocations per notification.
type rawOp struct {
	trap uintptr
	b    []byte
	n    int
	err  error
	fn   func(fd uintptr) bool
}

var rawOps = sync.Pool{New: func() any {
	op := &rawOp{}
	op.fn = op.do
	return op
}}

// do makes the system call; it never lets the runtime wait.
func (op *rawOp) do(fd uintptr) bool {
	op.n, op.err = rawsock.Call(op.trap, fd, op.b)
	return true
}

func (op *rawOp) release() {
	op.b, op.err = nil, nil
	rawOps.Put(op)
}

// epollPoll returns the events ready now (epoll_pwait with no timeout: it
// never blocks, so a raw system call; see rawsock.Call).
func epollPoll(epfd uintptr, events []syscall.EpollEvent) (int, error) {
	n, _, errno := syscall.RawSyscall6(syscall.SYS_EPOLL_PWAIT, epfd, uintptr(unsafe.Pointer(&events[0])), uintptr(len(events)), 0, 0, 0)
	if errno != 0 {
		return 0, errno
	}
	return int(n), nil
}

// epollCtl is syscall.EpollCtl as a raw system call (it never blocks).
func epollCtl(epfd, op int, fd int32, ev *syscall.EpollEvent) error {
	_, _, errno := syscall.RawSyscall6(syscall.SYS_EPOLL_CTL, uintptr(epfd), uintptr(op), uintptr(fd), uintptr(unsafe.Pointer(ev)), 0, 0)
	if errno != 0 {
		return errno
	}
	return nil
}
