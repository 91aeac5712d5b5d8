package server

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/openmpns/openmpns/server/backend"
	"github.com/openmpns/openmpns/shared/wire"
)

// frontTarget is a real server with one device and a toast channel, and
// the raw connections a test opens to it.
type frontTarget struct {
	srv *Server
	tok string
}

func newFrontTarget(t *testing.T, netHTTP bool, tune func(*Config)) *frontTarget {
	t.Helper()
	if !netHTTP && !useEpoll {
		t.Skip("no push front without epoll (OPENMPNS_GATEWAY_READERS=1)")
	}
	cfg := Config{DailyQuota: -1, NetHTTPPushes: netHTTP}
	if tune != nil {
		tune(&cfg)
	}
	srv := startServer(t, cfg)
	if (srv.front != nil) == netHTTP {
		t.Fatalf("push front %v with NetHTTPPushes %v", srv.front != nil, netHTTP)
	}
	dev, _, err := srv.eng.Authenticate("", "")
	if err != nil {
		t.Fatal(err)
	}
	ch, err := srv.eng.Open(dev, "com.example.toast", "main", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := srv.eng.Bind(dev, "com.example.toast", wire.BindToast, true, nil); err != nil {
		t.Fatal(err)
	}
	return &frontTarget{srv: srv, tok: ch.Token}
}

// handovers is openmpns_push_front_handovers_total: the connections the
// front gave to net/http.
func handovers(t *testing.T, srv *Server) int64 {
	t.Helper()
	var m dto.Metric
	if err := srv.met.frontHandovers.Write(&m); err != nil {
		t.Fatal(err)
	}
	return int64(m.GetCounter().GetValue())
}

func (ft *frontTarget) dial(t *testing.T) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", ft.srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(20 * time.Second))
	t.Cleanup(func() { c.Close() })
	return c
}

// exchange sends raw (with {TOKEN} made the channel's token) on a new
// connection and reads the answers to n requests; the last answer says
// whether the connection was closed after it.
func (ft *frontTarget) exchange(t *testing.T, raw string, n int) []string {
	t.Helper()
	c := ft.dial(t)
	if _, err := io.WriteString(c, strings.ReplaceAll(raw, "{TOKEN}", ft.tok)); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	var out []string
	for range n {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("answer %d of %d: %v", len(out)+1, n, err)
		}
		out = append(out, describe(t, resp))
	}
	return out
}

// describe is what a sender sees of an answer: status, headers but Date
// (names sorted), body, and whether the connection closes after it.
func describe(t *testing.T, resp *http.Response) string {
	t.Helper()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for k := range resp.Header {
		if k != "Date" {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	var b strings.Builder
	fmt.Fprintf(&b, "%s close=%v", resp.Status, resp.Close)
	for _, k := range keys {
		fmt.Fprintf(&b, " | %s: %q", k, resp.Header[k])
	}
	fmt.Fprintf(&b, " | body %q", body)
	if resp.Header.Get("Date") == "" {
		b.WriteString(" | no Date")
	}
	return b.String()
}

// push is a raw push request of a toast (or body) to {TOKEN}.
func push(headers, body string) string {
	return "POST /push/{TOKEN} HTTP/1.1\r\nHost: push.example.com\r\n" + headers +
		"Content-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body
}

const frontToast = `<?xml version="1.0" encoding="utf-8"?><wp:Notification xmlns:wp="WPNotification"><wp:Toast><wp:Text1>Hi</wp:Text1></wp:Toast></wp:Notification>`

// Whatever a sender sends, it sees the same answers, byte for byte but the
// Date, from the push front as from net/http: pushes served by the front,
// refusals, pipelined requests, requests the front hands over, a closed
// connection. And the front served the whole pushes itself.
func TestPushFrontAnswersAsNetHTTP(t *testing.T) {
	front := newFrontTarget(t, false, nil)
	plain := newFrontTarget(t, true, nil)
	cases := []struct {
		name    string
		raw     string
		answers int
		served  bool // by the front, without a handover
	}{
		{"toast", push("X-WindowsPhone-Target: toast\r\nX-NotificationClass: 2\r\nX-MessageID: 3f1c0c2e-1\r\n", frontToast), 1, true},
		{"raw, names in lower case", push("x-windowsphone-target: raw\r\nx-notificationclass: 3\r\ncontent-type: text/xml\r\n", "ping"), 1, true},
		{"empty raw", push("", ""), 1, true},
		{"invalid toast", push("X-WindowsPhone-Target: toast\r\n", "<nope/>"), 1, true},
		{"unknown class", push("X-WindowsPhone-Target: raw\r\nX-NotificationClass: 7\r\n", "x"), 1, true},
		{"unknown target", push("X-WindowsPhone-Target: rawish\r\n", "x"), 1, true},
		{"message id with obs-text", push("X-MessageID: caf\xe9 \t\r\n", "x"), 1, true},
		{"headers over the 1 KB limit", push("X-Padding: "+strings.Repeat("p", 2000)+"\r\n", "x"), 1, true},
		{"payload over the limit", push("", strings.Repeat("x", 3073)), 1, false},
		{"Connection: close", push("Connection: close\r\n", "x"), 1, true},
		{"three pipelined", push("", "a") + push("X-WindowsPhone-Target: toast\r\n", "<bad") + push("", "c"), 3, true},
		{"a push, then a GET", push("", "a") + "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", 2, false},
		{"a line break after a push's body", push("", "a") + "\r\n" + push("", "b"), 2, true},
		{"six line-break bytes after a push's body", push("", "a") + "\r\n\r\n\r\n" + push("", "b"), 2, false},
		{"unknown channel", strings.ReplaceAll(push("", "x"), "{TOKEN}", strings.Repeat("A", 27)), 1, true},
		{"malformed channel", strings.ReplaceAll(push("", "x"), "{TOKEN}", "short"), 1, false},
		{"GET to a channel", "GET /push/{TOKEN} HTTP/1.1\r\nHost: x\r\n\r\n", 1, false},
		{"chunked", "POST /push/{TOKEN} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\n\r\n", 1, false},
		{"HTTP/1.0", "POST /push/{TOKEN} HTTP/1.0\r\nHost: x\r\nContent-Length: 1\r\n\r\nx", 1, false},
		{"no Host", "POST /push/{TOKEN} HTTP/1.1\r\nContent-Length: 1\r\n\r\nx", 1, false},
		{"two Content-Lengths", "POST /push/{TOKEN} HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx", 1, false},
		{"Expect: 100-continue", "POST /push/{TOKEN} HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\nx", 2, false},
		{"a folded header", "POST /push/{TOKEN} HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n 2\r\nContent-Length: 1\r\n\r\nx", 1, false},
		{"a query", "POST /push/{TOKEN}?a=1 HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\nx", 1, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := handovers(t, front.srv)
			got := front.exchange(t, c.raw, c.answers)
			want := plain.exchange(t, c.raw, c.answers)
			if !slices.Equal(got, want) {
				t.Fatalf("the front answers\n%s\nnet/http answers\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
			if handed := handovers(t, front.srv) - before; (handed == 0) != c.served {
				t.Fatalf("%d connections handed to net/http, want the front to serve: %v", handed, c.served)
			}
			t.Logf("%s", got[len(got)-1])
		})
	}
}

// A push that arrives in parts (its head, then its body) goes to net/http
// with what was read, and is answered in full; so is the next one on the
// same connection.
func TestPushFrontHandsOverAPushInParts(t *testing.T) {
	ft := newFrontTarget(t, false, nil)
	c := ft.dial(t)
	raw := strings.ReplaceAll(push("X-WindowsPhone-Target: toast\r\n", frontToast), "{TOKEN}", ft.tok)
	cut := strings.Index(raw, "\r\n\r\n") + 4
	io.WriteString(c, raw[:cut])
	for handovers(t, ft.srv) == 0 {
		runtime.Gosched() // the front reads the head and hands it over
	}
	io.WriteString(c, raw[cut:]+raw)
	br := bufio.NewReader(c)
	for i := range 2 {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		if resp.StatusCode != 200 || resp.Header.Get(HeaderNotificationStatus) != StatusReceived {
			t.Fatalf("push %d: %s %q", i+1, resp.Status, resp.Header.Get(HeaderError))
		}
	}
}

// Connections the front holds are closed as net/http closes them: one that
// sent nothing after ReadHeaderTimeout, one idle after a push after
// IdleTimeout, quietly (no answer, a FIN).
func TestPushFrontClosesIdleConnections(t *testing.T) {
	ft := newFrontTarget(t, false, func(c *Config) {
		c.ReadHeaderTimeout = 50 * time.Millisecond
		c.IdleTimeout = 80 * time.Millisecond
	})
	silent := ft.dial(t)
	idle := ft.dial(t)
	io.WriteString(idle, strings.ReplaceAll(push("", "x"), "{TOKEN}", ft.tok))
	br := bufio.NewReader(idle)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != 200 || resp.Close {
		t.Fatalf("push: %v %v", resp, err)
	}
	io.Copy(io.Discard, resp.Body)
	for name, r := range map[string]io.Reader{"silent": silent, "idle": br} {
		if b, err := io.ReadAll(r); err != nil || len(b) > 0 {
			t.Fatalf("%s connection: read %q, %v; want a quiet close", name, b, err)
		}
	}
	if n := handovers(t, ft.srv); n != 0 {
		t.Fatalf("%d connections handed over, want the front to close them", n)
	}
}

// A sender's connection holds no goroutine until its first request, nor
// once idle for parkAfter (the poller watches it); a push on it is served
// as before, by a goroutine that keeps it while in use.
func TestPushFrontParksIdleConnections(t *testing.T) {
	ft := newFrontTarget(t, false, func(c *Config) {
		c.parkAfter = 20 * time.Millisecond
		c.sweepEvery = 100 * time.Millisecond
		// No connection closed for its sender's slowness: a loaded machine
		// may keep a sender from pushing for a while after its dial.
		c.ReadHeaderTimeout = time.Hour
	})
	const n = 40
	before := runtime.NumGoroutine()
	conns := make([]net.Conn, n)
	readers := make([]*bufio.Reader, n)
	pushOn := func(i int) {
		t.Helper()
		io.WriteString(conns[i], strings.ReplaceAll(push("", "x"), "{TOKEN}", ft.tok))
		resp, err := http.ReadResponse(readers[i], nil)
		if err != nil || resp.StatusCode != 200 || resp.Close {
			t.Fatalf("push %d: %v %v", i, resp, err)
		}
		io.Copy(io.Discard, resp.Body)
	}
	// waitParked waits until the front's open connections number open and
	// are all parked, and checks that no goroutines are left for them
	// (fewer than n/4 more than before they were opened, not counting the
	// poller's idle workers: those that served pushes wait for other
	// connections).
	waitParked := func(open int) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for {
			parked, all := 0, 0
			ft.srv.front.mu.Lock()
			for c := range ft.srv.front.open {
				all++
				if c.parked.Load() {
					parked++
				}
			}
			ft.srv.front.mu.Unlock()
			if all == open && parked == open {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d of %d open sender connections parked, want %d", parked, all, open)
			}
			runtime.Gosched()
		}
		more := func() int { return runtime.NumGoroutine() - before - int(ft.srv.front.poll.idle.Load()) }
		for more() >= n/4 { // they end just after parking
			if time.Now().After(deadline) {
				t.Fatalf("%d goroutines more for %d parked sender connections", more(), open)
			}
			runtime.Gosched()
		}
	}
	// Each connection is parked from its accept, and pushed on.
	for i := range conns {
		conns[i] = ft.dial(t)
		readers[i] = bufio.NewReader(conns[i])
		waitParked(i + 1)
		pushOn(i)
	}
	waitParked(n) // idle after a push
	for i := range conns {
		pushOn(i) // each unparked by a push
	}
	waitParked(n)
	if n := handovers(t, ft.srv); n != 0 {
		t.Fatalf("%d connections handed over to net/http, want none", n)
	}
}

// In use, a sender's connection has a goroutine of its own (no hand-off
// from a poller to a worker per push): after a second push on each, none
// is parked and each has a goroutine serving it.
func TestPushFrontKeepsAGoroutineForAConnectionInUse(t *testing.T) {
	ft := newFrontTarget(t, false, func(c *Config) { c.parkAfter = time.Hour })
	const n = 20
	for range n {
		c := ft.dial(t)
		br := bufio.NewReader(c)
		for range 2 {
			io.WriteString(c, strings.ReplaceAll(push("", "x"), "{TOKEN}", ft.tok))
			resp, err := http.ReadResponse(br, nil)
			if err != nil || resp.StatusCode != 200 {
				t.Fatalf("push: %v %v", resp, err)
			}
			io.Copy(io.Discard, resp.Body)
		}
	}
	ft.srv.front.mu.Lock()
	for c := range ft.srv.front.open {
		if c.parked.Load() {
			t.Errorf("a connection in use is parked")
		}
	}
	ft.srv.front.mu.Unlock()
	buf := make([]byte, 1<<20)
	if got := strings.Count(string(buf[:runtime.Stack(buf, true)]), "(*frontConn).run("); got != n {
		t.Fatalf("%d goroutines serving %d sender connections in use, want one each", got, n)
	}
}

// Senders that go quiet for about parkAfter and then push, sometimes many
// pipelined, while the sweeper parks their connections: every push is
// answered (a second of random timing; found a turn that closed a
// connection when it met the sweeper's deadline). The sweeper looks every
// 10 ms, and closes nothing: with a ReadHeaderTimeout of 40 ms (once the
// way to make it look that often) a sender kept from its first push for
// 50 ms after its dial by a loaded machine saw its connection closed.
func TestPushFrontParksAndUnparksUnderPipelinedLoad(t *testing.T) {
	ft := newFrontTarget(t, false, func(c *Config) {
		c.parkAfter = 2 * time.Millisecond
		c.sweepEvery = 10 * time.Millisecond
		c.ReadHeaderTimeout = time.Hour
	})
	one := func(body string) string { return strings.ReplaceAll(push("", body), "{TOKEN}", ft.tok) }
	body := ""
	for len(one(body)) < 256 { // 32 fill the front's buffer exactly
		body += "x"
	}
	p := one(body)
	const senders = 12
	stop := time.Now().Add(time.Second)
	var wg sync.WaitGroup
	errs := make(chan error, senders)
	var answered atomic.Int64
	for s := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(s), 0))
			c := ft.dial(t)
			br := bufio.NewReader(c)
			for time.Now().Before(stop) {
				k := 1
				if r.IntN(4) == 0 {
					k = 1 + r.IntN(40)
				}
				c.SetDeadline(time.Now().Add(10 * time.Second))
				if _, err := io.WriteString(c, strings.Repeat(p, k)); err != nil {
					errs <- fmt.Errorf("sender %d: write: %w", s, err)
					return
				}
				for i := range k {
					resp, err := http.ReadResponse(br, nil)
					if err != nil || resp.StatusCode != 200 {
						errs <- fmt.Errorf("sender %d: answer %d of %d: %v %v", s, i+1, k, resp, err)
						return
					}
					io.Copy(io.Discard, resp.Body)
					answered.Add(1)
				}
				time.Sleep(time.Duration(r.IntN(12000)) * time.Microsecond) // quiet: the sweeper may park it
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	t.Logf("%d pushes answered, %d connections handed over", answered.Load(), handovers(t, ft.srv))
}

// The sweeper parks a connection with a read deadline in the past; one
// that got a request just before serves it, and a turn that then finds the
// deadline when it reads on (its first read filled the buffer: more
// pipelined pushes wait) parks the connection instead of closing it: every
// push is answered.
func TestPushFrontTurnThatMeetsTheSweepersDeadlineParks(t *testing.T) {
	ft := newFrontTarget(t, false, nil)
	f := ft.srv.front
	peer, conn := tcpPair(t)
	fd, raw, err := connFD(conn)
	if err != nil {
		t.Fatal(err)
	}
	fc := f.newConn(conn, fd, raw)
	f.mu.Lock()
	f.open[fc] = struct{}{}
	f.mu.Unlock()
	// Pushes of 256 bytes each: 32 fill the front's 8 KiB buffer exactly.
	one := func(body string) string { return strings.ReplaceAll(push("", body), "{TOKEN}", ft.tok) }
	body := ""
	for len(one(body)) < 256 {
		body += "x"
	}
	if len(one(body)) != 256 {
		t.Fatalf("a push of %d bytes, want 256", len(one(body)))
	}
	const first, more = 32, 8
	if _, err := io.WriteString(peer, strings.Repeat(one(body), first+more)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 8<<10)
	if _, err := io.ReadFull(conn, buf); err != nil { // what the goroutine's read took
		t.Fatal(err)
	}
	conn.SetReadDeadline(time.Unix(1, 0)) // the sweeper, meanwhile
	if !fc.turn(buf, len(buf)) {
		t.Fatal("the turn gave the connection up")
	}
	go fc.run() // meets the deadline: parked, then served by the poller
	peer.SetReadDeadline(time.Now().Add(20 * time.Second))
	br := bufio.NewReader(peer)
	for i := range first + more {
		resp, err := http.ReadResponse(br, nil)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("answer %d of %d: %v %v", i+1, first+more, resp, err)
		}
		io.Copy(io.Discard, resp.Body)
	}
}

// A sender that pipelines more pushes than one read holds gets every
// answer, in order: the front serves the whole ones and hands the
// connection over with the part of the next one it read.
func TestPushFrontPipelinedFlood(t *testing.T) {
	ft := newFrontTarget(t, false, nil)
	c := ft.dial(t)
	const n = 400
	var all bytes.Buffer
	for i := range n {
		all.WriteString(strings.ReplaceAll(push("X-MessageID: m"+strconv.Itoa(i)+"\r\n", strings.Repeat("y", 100)), "{TOKEN}", ft.tok))
	}
	go c.Write(all.Bytes())
	br := bufio.NewReader(c)
	for i := range n {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("answer %d: %v", i, err)
		}
		io.Copy(io.Discard, resp.Body)
		if resp.StatusCode != 200 || resp.Header.Get(HeaderMessageID) != "m"+strconv.Itoa(i) {
			t.Fatalf("answer %d: %s for %q", i, resp.Status, resp.Header.Get(HeaderMessageID))
		}
	}
}

// FuzzParsePush: whatever parsePush takes as a whole push, net/http reads
// the same request from the same bytes: method, path, Host, headers,
// length, body, Connection: close, and where the request ends.
func FuzzParsePush(f *testing.F) {
	tok := strings.Repeat("A", 27)
	for _, s := range []string{
		push("X-WindowsPhone-Target: toast\r\nX-NotificationClass: 2\r\n", frontToast),
		push("x-messageid: a\r\nX-MessageID: b\r\nConnection: close\r\n", "zz"),
		push("Authorization: Bearer abc.def\r\n", ""),
		push("X-A: \t spaced \t\r\n", "1") + push("", "2"),
		"POST /push/{TOKEN} HTTP/1.1\r\nHost: [::1]:80\r\nContent-Length: 0\r\n\r\n",
		"POST /push/{TOKEN} HTTP/1.1\r\nHost: x\r\nContent-Length: 01\r\n\r\nx",
	} {
		f.Add([]byte(strings.ReplaceAll(s, "{TOKEN}", tok)))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r, n, verdict := parsePush(b, DefaultMaxPayloadBytes, nil)
		if verdict != pushComplete {
			return
		}
		br := bufio.NewReader(bytes.NewReader(b))
		req, err := http.ReadRequest(br)
		if err != nil {
			t.Fatalf("the front takes %q, net/http refuses it: %v", b, err)
		}
		body, err := io.ReadAll(req.Body)
		if err != nil {
			t.Fatalf("net/http cannot read the body of %q: %v", b, err)
		}
		rest, _ := io.ReadAll(br)
		switch {
		case req.Method != http.MethodPost || req.URL.Path != r.path || req.URL.RawQuery != "" || req.Host != r.host:
			t.Fatalf("net/http reads %s %s (host %q), the front %s (host %q)", req.Method, req.URL, req.Host, r.path, r.host)
		case req.ContentLength != int64(len(r.body)) || !bytes.Equal(body, r.body):
			t.Fatalf("net/http reads a body of %d %q, the front %d %q", req.ContentLength, body, len(r.body), r.body)
		case req.Close != r.close:
			t.Fatalf("net/http reads Close %v, the front %v", req.Close, r.close)
		case len(b)-len(rest) != n:
			t.Fatalf("net/http's request ends at %d, the front's at %d", len(b)-len(rest), n)
		case fmt.Sprint(req.Header) != fmt.Sprint(r.header):
			t.Fatalf("net/http reads headers %v, the front %v", req.Header, r.header)
		}
	})
}

// A handler that panics ends its connection without an answer, as under
// net/http, and the front goes on serving other connections.
func TestPushFrontSurvivesAPanickingHandler(t *testing.T) {
	if !useEpoll {
		t.Skip("no push front without epoll (OPENMPNS_GATEWAY_READERS=1)")
	}
	var logged syncBuffer
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Header.Get("X-Panic") {
		case "":
		case "abort":
			panic(http.ErrAbortHandler)
		default:
			panic("handler bug")
		}
		w.WriteHeader(http.StatusOK)
	})
	f, ln := newBareFront(t, h, &logged)
	defer f.close(context.Background())
	ft := &frontTarget{srv: &Server{addr: ln.Addr().String()}, tok: strings.Repeat("A", 27)}
	c := ft.dial(t)
	io.WriteString(c, strings.ReplaceAll(push("X-Panic: 1\r\n", "x"), "{TOKEN}", ft.tok))
	if b, err := io.ReadAll(c); err != nil || len(b) > 0 {
		t.Fatalf("after a panic: read %q, %v; want the connection closed without an answer", b, err)
	}
	if got := ft.exchange(t, push("", "x"), 1); !strings.HasPrefix(got[0], "200 OK") {
		t.Fatalf("after a panic elsewhere: %s", got[0])
	}
	if n := strings.Count(logged.String(), "panic serving a push"); n != 1 {
		t.Fatalf("%d panics logged, want 1:\n%s", n, logged.String())
	}
	// http.ErrAbortHandler ends the connection the same way, and quietly,
	// as net/http does.
	c = ft.dial(t)
	io.WriteString(c, strings.ReplaceAll(push("X-Panic: abort\r\n", "x"), "{TOKEN}", ft.tok))
	if b, err := io.ReadAll(c); err != nil || len(b) > 0 {
		t.Fatalf("after an abort: read %q, %v; want the connection closed without an answer", b, err)
	}
	if n := strings.Count(logged.String(), "panic serving a push"); n != 1 {
		t.Fatalf("%d panics logged after an abort, want still 1:\n%s", n, logged.String())
	}
}

// When the listener fails for good, net/http's Serve returns and takes no
// more connections: a connection the front then hands over (a request it
// does not serve) is closed, not left waiting for a taker.
func TestPushFrontClosesWhatItHandsOverAfterTheListenerFailed(t *testing.T) {
	if !useEpoll {
		t.Skip("no push front without epoll (OPENMPNS_GATEWAY_READERS=1)")
	}
	f, ln := newBareFront(t, http.NotFoundHandler(), io.Discard)
	defer f.close(context.Background())
	ln.Close() // not through the front: its accept loop sees a failure
	<-f.failed
	other, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	client, err := net.Dial("tcp", other.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	srvSide, err := other.Accept()
	if err != nil {
		t.Fatal(err)
	}
	handed := make(chan struct{})
	go func() { f.handOver(srvSide, []byte("GET / HTTP/1.1\r\n")); close(handed) }()
	select {
	case <-handed:
	case <-time.After(time.Minute): // a guard against a hang, not a measure
		t.Fatal("handOver still waits for a taker")
	}
	if b, err := io.ReadAll(client); err != nil || len(b) > 0 {
		t.Fatalf("read %q, %v; want the connection closed", b, err)
	}
}

// A line break a sender writes after a push's body, on its own, is
// skipped as net/http skips it: the next push on the connection is served
// by the front.
func TestPushFrontSkipsALineBreakAfterAPush(t *testing.T) {
	ft := newFrontTarget(t, false, nil)
	c := ft.dial(t)
	br := bufio.NewReader(c)
	raw := strings.ReplaceAll(push("", "x"), "{TOKEN}", ft.tok)
	for i, send := range []string{raw, "\r\n", raw} {
		io.WriteString(c, send)
		if send == "\r\n" {
			continue
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("write %d: %v %v", i, resp, err)
		}
		io.Copy(io.Discard, resp.Body)
	}
	if n := handovers(t, ft.srv); n != 0 {
		t.Fatalf("%d connections handed over, want none", n)
	}
}

// TestParsePushReusesItsHeaderSpace: with a connection's header space, a
// push's header costs one allocation (the copy of its head): the map and
// the array of values are the last push's, holding nothing of it.
func TestParsePushReusesItsHeaderSpace(t *testing.T) {
	tok := strings.Repeat("A", tokenLen)
	first := []byte(strings.ReplaceAll(push("X-WindowsPhone-Target: toast\r\nX-NotificationClass: 2\r\nX-MessageID: m1\r\n", frontToast), "{TOKEN}", tok))
	second := []byte(strings.ReplaceAll(push("X-NotificationClass: 1\r\n", "x"), "{TOKEN}", tok))
	var sp headerSpace
	r, _, v := parsePush(first, DefaultMaxPayloadBytes, &sp)
	if v != pushComplete || r.header.Get("X-MessageID") != "m1" || r.header.Get("X-WindowsPhone-Target") != "toast" {
		t.Fatalf("first push: verdict %d, header %v", v, r.header)
	}
	r, _, v = parsePush(second, DefaultMaxPayloadBytes, &sp)
	if v != pushComplete || len(r.header) != 2 || r.header.Get("X-NotificationClass") != "1" || r.header.Get("Content-Length") != "1" {
		t.Fatalf("second push: verdict %d, header %v (the first push's headers must be gone)", v, r.header)
	}
	if n := testing.AllocsPerRun(100, func() { parsePush(first, DefaultMaxPayloadBytes, &sp) }); n != 1 {
		t.Errorf("a push's header costs %v allocations with the header space reused; want 1 (its head)", n)
	}
}

// TestFrontConnKeepsLittleBetweenPushes plays a sender that sends one push
// of hundreds of header lines (refused with a 400 on a connection kept
// alive) and then an ordinary one, on each of 200 connections: the header
// space a connection reuses between pushes is kept only for an ordinary
// head, so an idle connection holds a few KiB, not the large head's map,
// array and copy (about 75 KB each when it was kept).
func TestFrontConnKeepsLittleBetweenPushes(t *testing.T) {
	ft := newFrontTarget(t, false, func(c *Config) { c.parkAfter = time.Hour })
	var h strings.Builder
	for i := 0; h.Len() < 7000; i++ {
		fmt.Fprintf(&h, "A%04d:a\r\n", i)
	}
	large := strings.ReplaceAll(push(h.String(), "x"), "{TOKEN}", ft.tok)
	small := strings.ReplaceAll(push("X-WindowsPhone-Target: toast\r\nX-NotificationClass: 2\r\n", frontToast), "{TOKEN}", ft.tok)
	heap := func() uint64 {
		var m runtime.MemStats
		for range 3 {
			runtime.GC()
		}
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	const conns = 200
	before := heap()
	for range conns {
		c := ft.dial(t)
		r := bufio.NewReader(c)
		for i, req := range []string{large, small} {
			if _, err := io.WriteString(c, req); err != nil {
				t.Fatal(err)
			}
			resp, err := http.ReadResponse(r, nil)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if want := []int{http.StatusBadRequest, http.StatusOK}[i]; resp.StatusCode != want || resp.Close {
				t.Fatalf("push %d: %s (closed %v), want %d on a connection kept alive", i, resp.Status, resp.Close, want)
			}
		}
	}
	if n := handovers(t, ft.srv); n != 0 {
		t.Fatalf("%d connections handed over to net/http: the front did not serve the pushes", n)
	}
	if per := (int64(heap()) - int64(before)) / conns; per > 8<<10 {
		t.Errorf("each idle connection holds %d bytes of heap after a push of many header lines", per)
	}
}

// TestHeaderSpaceForgets: once a push is answered, its connection's header
// space holds none of its values (they keep the whole head alive, a bearer
// token with it), and keeps its room.
func TestHeaderSpaceForgets(t *testing.T) {
	tok := strings.Repeat("A", tokenLen)
	b := []byte(strings.ReplaceAll(push("Authorization: Bearer secret\r\nX-MessageID: m1\r\n", "x"), "{TOKEN}", tok))
	var sp headerSpace
	if _, _, v := parsePush(b, DefaultMaxPayloadBytes, &sp); v != pushComplete {
		t.Fatalf("verdict %d", v)
	}
	room := cap(sp.vals)
	sp.forget()
	if len(sp.h) != 0 || cap(sp.vals) != room {
		t.Fatalf("after forget: %d header names, room for %d values (had %d)", len(sp.h), cap(sp.vals), room)
	}
	for i, v := range sp.vals[:cap(sp.vals)] {
		if v != "" {
			t.Errorf("value %d still holds %q", i, v)
		}
	}
}

// syncBuffer is a bytes.Buffer a logger may write from several goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// newBareFront is a push front alone on a loopback listener, serving h and
// logging to log, with timeouts that never end a test.
func newBareFront(t *testing.T, h http.Handler, log io.Writer) (*pushFront, net.Listener) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg := &Config{Logger: slog.New(slog.NewTextHandler(log, nil)), MaxPayloadBytes: DefaultMaxPayloadBytes,
		ReadHeaderTimeout: time.Minute, IdleTimeout: time.Minute, WriteTimeout: time.Minute}
	f, err := newPushFront(cfg, ln, h, newMetrics(func() backend.Stats { return backend.Stats{} }))
	if err != nil {
		t.Fatal(err)
	}
	return f, ln
}
