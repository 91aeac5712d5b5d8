package load

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/openmpns/openmpns/shared/payload"
	"github.com/openmpns/openmpns/shared/rawsock"
	"github.com/openmpns/openmpns/shared/sender"
)

// The plain-HTTP path: each sender goroutine owns its keep-alive
// connections and writes every request with one write from a buffer it
// reuses, then reads the answer's head itself. No goroutine, timer,
// context or header map per request (net/http's client spends three
// goroutine hand-offs, a deadline timer and about 90 allocations on each),
// so the tool that shares the cores with the server under test costs as
// little as it can. https Channel URIs, a Config.HTTP client or
// Config.NetHTTP take net/http instead.

// ioTimeout bounds each request (as sender.NewHTTPClient's 30 s does).
const ioTimeout = 30 * time.Second

// maxBody is the longest answer body read to keep a connection; a longer
// one closes it instead.
const maxBody = 64 << 10

// fastTarget is a Channel URI ready to be written.
type fastTarget struct {
	addr string // host:port to dial
	head []byte // "POST /path HTTP/1.1\r\nHost: host\r\n"
}

// fastPlan is what the plain-HTTP senders share: the targets, and per kind
// the rest of the head up to the X-MessageID value.
type fastPlan struct {
	targets []fastTarget
	addrs   []string // the targets' distinct addresses, at most maxConnectAhead
	kind    [4][]byte
}

// planFast prepares the targets for the plain-HTTP path; ok is false if
// some Channel URI is not plain http (then net/http sends everything).
func planFast(cfg *Config, bodies *[4][]byte) (p *fastPlan, ok bool, err error) {
	p = &fastPlan{targets: make([]fastTarget, len(cfg.Targets))}
	seen := map[string]bool{}
	for i, t := range cfg.Targets {
		u, err := url.Parse(t.URI)
		if err != nil || u.Scheme != "http" || u.Host == "" || u.User != nil {
			return nil, false, nil
		}
		addr := u.Host
		if u.Port() == "" {
			addr = net.JoinHostPort(u.Hostname(), "80")
		}
		p.targets[i] = fastTarget{addr: addr, head: fmt.Appendf(nil, "POST %s HTTP/1.1\r\nHost: %s\r\n", u.RequestURI(), u.Host)}
		if !seen[addr] && len(p.addrs) < maxConnectAhead {
			seen[addr] = true
			p.addrs = append(p.addrs, addr)
		}
	}
	var extra []byte
	for k, vs := range cfg.Header {
		switch http.CanonicalHeaderKey(k) {
		case "Host", "Content-Length", "Content-Type", "User-Agent", "Transfer-Encoding", "Connection",
			sender.HeaderTarget, sender.HeaderClass, sender.HeaderMessageID:
			// These replace the ones the tool sets (sender.Request.Header):
			// net/http does that.
			return nil, false, nil
		}
		for _, v := range vs {
			if strings.ContainsAny(k, "\r\n: ") || strings.ContainsAny(v, "\r\n") {
				return nil, false, fmt.Errorf("load: header %q: a name or value with a line break", k)
			}
			extra = fmt.Appendf(extra, "%s: %s\r\n", http.CanonicalHeaderKey(k), v)
		}
	}
	for _, k := range []payload.Kind{payload.KindToast, payload.KindTile, payload.KindRaw} {
		var h []byte
		switch k {
		case payload.KindToast:
			h = fmt.Appendf(h, "Content-Type: %s\r\n%s: %s\r\n", sender.ContentTypeXML, sender.HeaderTarget, sender.TargetToast)
		case payload.KindTile:
			h = fmt.Appendf(h, "Content-Type: %s\r\n%s: %s\r\n", sender.ContentTypeXML, sender.HeaderTarget, sender.TargetTile)
		default:
			h = fmt.Appendf(h, "Content-Type: %s\r\n", sender.ContentTypeRaw)
		}
		if c := sender.ClassFor(k, cfg.Interval); c != 0 {
			h = fmt.Appendf(h, "%s: %d\r\n", sender.HeaderClass, c)
		}
		h = fmt.Appendf(h, "User-Agent: %s\r\n%sContent-Length: %d\r\n%s: ", userAgent, extra, len(bodies[k]), sender.HeaderMessageID)
		p.kind[k] = h
	}
	return p, true, nil
}

// answerKey is an answer as counted: the HTTP status and X-NotificationStatus.
type answerKey struct {
	code   int
	status string
}

// tally is one sender's counts, merged into the report at the end.
type tally struct {
	answers map[answerKey]int64
	errors  map[string]int64
	byKind  [4]int64
}

func newTally() *tally {
	return &tally{answers: map[answerKey]int64{}, errors: map[string]int64{}}
}

// h1conn is one keep-alive connection of a sender.
type h1conn struct {
	c       net.Conn
	rw      io.ReadWriter // c, through raw system calls where it can (rawsock)
	br      *bufio.Reader
	refresh time.Time // when to push the I/O deadline forward again
}

// h1sender is one sender goroutine's state on the plain-HTTP path.
type h1sender struct {
	plan *fastPlan
	buf  []byte
	t    *tally

	// connectErr is connect's failure to reach a server, which the first
	// send to it returns (the sender's own, like buf and t).
	connectErr map[string]error

	mu    sync.Mutex // conns, against the context's closer
	conns map[string]*h1conn
	done  bool
}

var errMalformed = errors.New("malformed HTTP answer")

// closeAll closes every connection; the sender's I/O then fails at once.
func (s *h1sender) closeAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.done = true
	for k, c := range s.conns {
		c.c.Close()
		delete(s.conns, k)
	}
}

func (s *h1sender) conn(ctx context.Context, addr string) (*h1conn, bool, error) {
	if err, ok := s.connectErr[addr]; ok { // connect's, for the first send
		delete(s.connectErr, addr)
		return nil, false, err
	}
	s.mu.Lock()
	c, done := s.conns[addr], s.done
	s.mu.Unlock()
	if c != nil {
		return c, true, nil
	}
	if done {
		return nil, false, context.Canceled
	}
	d := net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, false, err
	}
	rw := rawsock.ReadWriter(nc)
	c = &h1conn{c: nc, rw: rw, br: bufio.NewReaderSize(rw, 4096)}
	s.mu.Lock()
	if s.done {
		s.mu.Unlock()
		nc.Close()
		return nil, false, context.Canceled
	}
	s.conns[addr] = c
	s.mu.Unlock()
	return c, false, nil
}

// maxConnectAhead is how many servers a sender connects to before the
// clock starts (connect); it connects to any others at its first send to
// them.
const maxConnectAhead = 64

// connect opens a connection to each of the plan's servers before the
// sender's first send. When one fails, the first send to that server
// fails at once with its error (and counts it), rather than wait for
// another dial.
func (s *h1sender) connect(ctx context.Context) {
	for _, addr := range s.plan.addrs {
		if _, _, err := s.conn(ctx, addr); err != nil {
			if s.connectErr == nil {
				s.connectErr = map[string]error{}
			}
			s.connectErr[addr] = err
			return // the others, left to their first sends, would most likely fail the same way
		}
	}
}

func (s *h1sender) drop(addr string, c *h1conn) {
	c.c.Close()
	s.mu.Lock()
	if s.conns[addr] == c {
		delete(s.conns, addr)
	}
	s.mu.Unlock()
}

// roundTrip writes the request in s.buf to addr and reads the answer's
// status and X-NotificationStatus. A reused connection that fails before
// any answer arrives (the server closed it while idle) is replaced once,
// as net/http does.
func (s *h1sender) roundTrip(ctx context.Context, addr string, now time.Time) (code int, status string, err error) {
	for attempt := 0; ; attempt++ {
		c, reused, err := s.conn(ctx, addr)
		if err != nil {
			return 0, "", err
		}
		if now.After(c.refresh) {
			c.c.SetDeadline(now.Add(ioTimeout))
			c.refresh = now.Add(time.Second)
		}
		var got bool
		code, status, got, err = s.exchange(c)
		if err == nil {
			return code, status, nil
		}
		s.drop(addr, c)
		if !reused || got || attempt > 0 || ctx.Err() != nil {
			return 0, "", err
		}
	}
}

// exchange writes the request and reads one answer on c; got says whether
// any of the answer arrived. On an error the connection is not reusable.
func (s *h1sender) exchange(c *h1conn) (code int, status string, got bool, err error) {
	if _, err := c.rw.Write(s.buf); err != nil {
		return 0, "", false, err
	}
	var (
		clen             int64
		chunked, closing bool
	)
	for first := true; ; first = false {
		line, err := readLine(c.br)
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return 0, "", !first || len(line) > 0, err
		}
		if len(line) < 13 || !bytes.HasPrefix(line, []byte("HTTP/1.")) || line[12] != ' ' && line[12] != '\r' {
			return 0, "", true, errMalformed
		}
		code = 0
		for _, d := range line[9:12] {
			if d < '0' || d > '9' {
				return 0, "", true, errMalformed
			}
			code = code*10 + int(d-'0')
		}
		clen, chunked, closing, status = -1, false, line[7] == '0', "" // HTTP/1.0 closes by default
		for {
			line, err = readLine(c.br)
			if err != nil {
				return 0, "", true, err
			}
			if len(line) <= 2 {
				break
			}
			k, v, ok := bytes.Cut(line, []byte(":"))
			if !ok {
				return 0, "", true, errMalformed
			}
			v = bytes.TrimSpace(v)
			switch {
			case bytes.EqualFold(k, []byte(sender.HeaderNotificationStatus)):
				status = notificationStatus(v)
			case bytes.EqualFold(k, []byte("Content-Length")):
				if clen = parseLength(v); clen < 0 {
					return 0, "", true, errMalformed
				}
			case bytes.EqualFold(k, []byte("Transfer-Encoding")):
				chunked = !bytes.EqualFold(v, []byte("identity"))
			case bytes.EqualFold(k, []byte("Connection")):
				closing = bytes.EqualFold(v, []byte("close"))
			}
		}
		// An informational answer (103 Early Hints, say) comes before the
		// real one; 101 would switch protocols, which a POST never asks for.
		if code >= 200 || code == http.StatusSwitchingProtocols {
			break
		}
	}
	switch {
	case code == http.StatusSwitchingProtocols:
		return 0, "", true, errMalformed
	case code == http.StatusNoContent || code == http.StatusNotModified:
	case chunked:
		if err := discardChunked(c.br); err != nil {
			return 0, "", true, err
		}
	case clen > maxBody || clen < 0:
		closing = true // read to the end: not worth it; a new connection is cheaper
	case clen > 0:
		if _, err := c.br.Discard(int(clen)); err != nil {
			return 0, "", true, err
		}
	}
	if closing {
		// Answered; the connection goes (roundTrip's caller sees no error).
		c.c.Close()
		c.br.Reset(eofReader{})
	}
	return code, status, true, nil
}

// parseLength reads a Content-Length value; -1 if it is not one.
func parseLength(v []byte) int64 {
	if len(v) == 0 || len(v) > 18 {
		return -1
	}
	var n int64
	for _, d := range v {
		if d < '0' || d > '9' {
			return -1
		}
		n = n*10 + int64(d-'0')
	}
	return n
}

// eofReader ends a closed connection's reader: its next request fails
// before any answer and is retried on a new connection.
type eofReader struct{}

func (eofReader) Read([]byte) (int, error) { return 0, io.EOF }

// notificationStatus returns v as one of the MPNS values without
// allocating, or a copy of anything else.
func notificationStatus(v []byte) string {
	for _, s := range [...]string{sender.StatusReceived, sender.StatusQueueFull, sender.StatusSuppressed, sender.StatusDropped} {
		if string(v) == s {
			return s
		}
	}
	return string(v)
}

// longLine stands for a line longer than the reader's buffer: none of the
// headers the tool reads is that long, so it is skipped whole.
var longLine = []byte("X-Openmpns-Load-Skipped: a header line longer than 4 KiB\r\n")

// readLine returns the next line; one longer than the reader's buffer is
// read to its end and returned as longLine. The line is valid until the
// next read.
func readLine(br *bufio.Reader) ([]byte, error) {
	line, err := br.ReadSlice('\n')
	if err != bufio.ErrBufferFull {
		return line, err
	}
	for err == bufio.ErrBufferFull {
		_, err = br.ReadSlice('\n')
	}
	return longLine, err
}

// discardChunked reads a chunked body to its end.
func discardChunked(br *bufio.Reader) error {
	total := 0
	for {
		line, err := readLine(br)
		if err != nil {
			return err
		}
		size, _, _ := bytes.Cut(bytes.TrimSpace(line), []byte(";"))
		n, err := strconv.ParseInt(string(size), 16, 64)
		if err != nil || n < 0 || n > maxBody {
			return errMalformed
		}
		if total += int(n); total > maxBody {
			return errMalformed
		}
		if n == 0 {
			for {
				if line, err = readLine(br); err != nil || len(line) <= 2 {
					return err
				}
			}
		}
		if _, err := br.Discard(int(n) + 2); err != nil {
			return err
		}
	}
}
