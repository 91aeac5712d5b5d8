package load_test

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/openmpns/openmpns/device/fleet"
	"github.com/openmpns/openmpns/server"
	"github.com/openmpns/openmpns/shared/sender/load"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func TestParseMix(t *testing.T) {
	m, err := load.ParseMix("toast=60, tile=30,raw=10")
	if err != nil || m != (load.Mix{Toast: 60, Tile: 30, Raw: 10}) {
		t.Fatalf("%+v %v", m, err)
	}
	if m, err := load.ParseMix("raw=1"); err != nil || m != (load.Mix{Raw: 1}) {
		t.Fatalf("%+v %v", m, err)
	}
	for _, bad := range []string{"", "toast=0", "toast", "toast=-1", "mail=3", "toast=x"} {
		if _, err := load.ParseMix(bad); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
}

func TestReadTargets(t *testing.T) {
	csv := "device,device_id,app,channel,uri\n1,d1,news,main,http://h/push/a\n2,d2,mail,main,http://h/push/b\n"
	got, replaced, err := load.ReadTargets(strings.NewReader(csv))
	if err != nil || replaced != 0 || len(got) != 2 || got[1] != (load.Target{URI: "http://h/push/b", App: "mail", Device: 2}) {
		t.Fatalf("csv: %+v %d %v", got, replaced, err)
	}
	jl := `{"device":1,"app":"news","uri":"http://h/push/a"}` + "\n" + `{"uri":"http://h/push/b"}` + "\n"
	got, replaced, err = load.ReadTargets(strings.NewReader(jl))
	if err != nil || replaced != 0 || len(got) != 2 || got[0].App != "news" || got[0].Device != 1 {
		t.Fatalf("jsonl: %+v %d %v", got, replaced, err)
	}
	if _, _, err := load.ReadTargets(strings.NewReader("device,uri\nx,http://h/push/a\n")); err == nil {
		t.Error("accepted a device that is not an index")
	}
	for _, bad := range []string{"", "a,b\n1,2\n", "uri\n", `{"app":"x"}`, `{"uri":`} {
		if _, _, err := load.ReadTargets(strings.NewReader(bad)); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
}

// A channel whose URI changed has two lines in a fleet's channels file,
// the old one first: only the newest is a target, whether the later line
// names the URI it replaces (as the fleet now writes it) or has the same
// device_id, app and channel (a file without a replaces column). Every
// line was a target, so load also sent to URIs the server had forgotten
// and counted their 404s as the server's.
func TestReadTargetsKeepsTheCurrentURI(t *testing.T) {
	const csvFile = "device,device_id,app,channel,uri,toast,replaces\n" +
		"0,d0,news,main,http://h/push/old0,true,\n" +
		"1,d1,news,main,http://h/push/b,true,\n" +
		"0,d0,mail,main,http://h/push/m0,true,\n" +
		// Device 0 registered as a new device: another device id.
		"0,d0new,news,main,http://h/push/new0,true,http://h/push/old0\n" +
		"0,d0new,news,main,http://h/push/newer0,true,http://h/push/new0\n"
	// The same without the replaces column: device 1's news channel got
	// a new URI under its id.
	const jsonl = `{"device":0,"device_id":"d0","app":"news","channel":"main","uri":"http://h/push/a0"}
{"device":1,"device_id":"d1","app":"news","channel":"main","uri":"http://h/push/b1"}
{"device":1,"device_id":"d1","app":"mail","channel":"main","uri":"http://h/push/m1"}
{"device":1,"device_id":"d1","app":"news","channel":"main","uri":"http://h/push/b1new"}
{"uri":"http://h/push/x"}
{"uri":"http://h/push/x"}
`
	for _, c := range []struct {
		name, file string
		want       []string
		replaced   int
	}{
		{"csv", csvFile, []string{"http://h/push/b", "http://h/push/m0", "http://h/push/newer0"}, 2},
		// Lines without a device id and not replaced are all kept.
		{"jsonl", jsonl, []string{"http://h/push/a0", "http://h/push/m1", "http://h/push/b1new", "http://h/push/x", "http://h/push/x"}, 1},
	} {
		got, replaced, err := load.ReadTargets(strings.NewReader(c.file))
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		var uris []string
		for _, tg := range got {
			uris = append(uris, tg.URI)
		}
		if !slices.Equal(uris, c.want) || replaced != c.replaced {
			t.Errorf("%s: targets %v, %d replaced; want %v, %d", c.name, uris, replaced, c.want, c.replaced)
		}
	}
}

// A Channel URI can come back: a device that failed over to another
// server (a new URI there) and back to the first, which still holds its
// channel, gets the first URI again, on a line whose replaces is the
// second's. Only a later line replaces one: that line is the channel's
// current URI. A replaces naming the URI of a later line left the channel
// out of the targets altogether (and a file of that channel alone was an
// error).
func TestReadTargetsURIComesBack(t *testing.T) {
	for _, c := range []struct {
		name, file string
		want       []string
		replaced   int
	}{
		{"csv", "device,device_id,app,channel,uri,toast,replaces\n" +
			"0,d0,news,main,http://s1/push/a,true,\n" +
			"1,d1,news,main,http://s1/push/x,true,\n" +
			"0,d0,news,main,http://s2/push/b,true,http://s1/push/a\n" +
			"0,d0,news,main,http://s1/push/a,true,http://s2/push/b\n",
			[]string{"http://s1/push/x", "http://s1/push/a"}, 2},
		// Without device ids, by replaces alone.
		{"jsonl", `{"uri":"http://h/push/a","replaces":"http://h/push/b"}` + "\n" + `{"uri":"http://h/push/b","replaces":"http://h/push/a"}` + "\n",
			[]string{"http://h/push/b"}, 1},
	} {
		got, replaced, err := load.ReadTargets(strings.NewReader(c.file))
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		var uris []string
		for _, tg := range got {
			uris = append(uris, tg.URI)
		}
		if !slices.Equal(uris, c.want) || replaced != c.replaced {
			t.Errorf("%s: targets %v, %d replaced; want %v, %d", c.name, uris, replaced, c.want, c.replaced)
		}
	}
}

func FuzzReadTargets(f *testing.F) {
	f.Add("uri,app\nhttp://h/push/a,x\n")
	f.Add(`{"uri":"http://h/push/a"}`)
	f.Add(`{"device_id":"d","app":"a","channel":"c","uri":"http://h/push/a"}` + "\n" + `{"device_id":"d","app":"a","channel":"c","uri":"http://h/push/b","replaces":"http://h/push/a"}`)
	f.Fuzz(func(t *testing.T, s string) {
		ts, replaced, err := load.ReadTargets(strings.NewReader(s))
		if err == nil && len(ts) == 0 {
			t.Fatal("no error and no targets")
		}
		if replaced < 0 {
			t.Fatalf("%d replaced", replaced)
		}
	})
}

// Closed and open loop against a real server and a real fleet: every
// notification is answered, the mix is followed exactly, and the fleet
// receives exactly what the server answered Received.
func TestLoadAgainstFleet(t *testing.T) {
	srv, err := server.New(server.Config{Listen: "127.0.0.1:0", DataDir: t.TempDir(), Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	fl, err := fleet.Start(ctx, fleet.Config{Servers: []string{srv.URL()}, Devices: 50, Apps: []string{"a", "b"},
		OptOut: 0.3, Seed: 3, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer fl.Close()
	if err := fl.WaitRegistered(ctx); err != nil {
		t.Fatal(err)
	}
	var targets []load.Target
	for _, c := range fl.Channels() {
		targets = append(targets, load.Target{URI: c.URI, App: c.App})
	}
	progress := 0
	closed, err := load.Run(ctx, load.Config{Targets: targets, Concurrency: 8, Count: 1000,
		Mix: load.Mix{Toast: 5, Tile: 3, Raw: 2}, Progress: func(load.Progress) { progress++ }, ProgressEvery: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	// The open loop through net/http, the closed one on the tool's own connections.
	open, err := load.Run(ctx, load.Config{Targets: targets, Rate: 2000, Count: 400, Mix: load.Mix{Raw: 1}, NetHTTP: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []*load.Report{closed, open} {
		var answered int64
		for _, n := range r.Answers {
			answered += n
		}
		if len(r.Errors) != 0 || answered != r.Sent || r.RTT.Count != uint64(r.Sent) {
			t.Fatalf("%s: sent %d, answered %d, errors %v", r.Mode, r.Sent, answered, r.Errors)
		}
	}
	if closed.Sent != 1000 || closed.ByKind["toast"] != 500 || closed.ByKind["tile"] != 300 || closed.ByKind["raw"] != 200 {
		t.Fatalf("closed loop: sent %d by kind %v", closed.Sent, closed.ByKind)
	}
	if closed.Answers["200 Suppressed"] == 0 || closed.Received+closed.Answers["200 Suppressed"] != 1000 {
		t.Fatalf("closed loop answers %v", closed.Answers)
	}
	if open.Sent != 400 || open.Received != 400 || open.Mode != "rate" {
		t.Fatalf("open loop: %+v", open)
	}
	if progress == 0 {
		t.Fatal("no progress reported")
	}
	want := closed.Received + open.Received
	if err := fl.Wait(ctx, func(s fleet.Stats) bool { return s.Total() >= want }); err != nil {
		t.Fatal(err)
	}
	rep := fl.Report()
	if rep.SendLatency == nil || rep.SendLatency.Count != uint64(want) || rep.SendLatencySummary.P50 <= 0 {
		t.Fatalf("POST-to-device latency not measured: %+v", rep.SendLatencySummary)
	}
	if rep.SendToAccept == nil || rep.SendToAccept.Count != uint64(want) || rep.SendToAcceptSummary.Max > rep.SendLatencySummary.Max {
		t.Fatalf("POST-to-accept latency not measured, or longer than POST to device: %+v vs %+v", rep.SendToAcceptSummary, rep.SendLatencySummary)
	}
	if rep.Total() != want || rep.Duplicates != 0 || rep.OutOfOrder != 0 {
		t.Fatalf("fleet received %d (want %d), duplicates %d, out of order %d", rep.Total(), want, rep.Duplicates, rep.OutOfOrder)
	}
	if _, err := load.Run(ctx, load.Config{Targets: targets, Count: 1}); err == nil {
		t.Fatal("no rate and no concurrency accepted")
	}
	if _, err := load.Run(ctx, load.Config{Targets: targets, Rate: 1}); err == nil {
		t.Fatal("no count and no duration accepted")
	}
}

// scriptedAnswers are what scriptedServer answers, in turn: every shape an
// HTTP/1.1 answer may take that the tool's own client must read right, and
// the answer each is counted as.
var scriptedAnswers = []scripted{
	{"HTTP/1.1 200 OK\r\nX-Notificationstatus: Received\r\nContent-Length: 0\r\n\r\n", false, "200 Received"},
	{"HTTP/1.1 400 Bad Request\r\nX-OpenMPNS-Error: bad\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", false, "400"},
	{"HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Length: 3\r\n\r\nbye", true, "503"},
	{"HTTP/1.1 200 OK\r\nX-Long: " + strings.Repeat("x", 5000) + "\r\nx-notificationstatus:QueueFull\r\nContent-Length: 2\r\n\r\nok", false, "200 QueueFull"},
	{"HTTP/1.0 404 Not Found\r\nX-SubscriptionStatus: Expired\r\n\r\n", true, "404"},
	// An informational answer first, then the real one.
	{"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\nX-NotificationStatus: Dropped\r\nContent-Length: 1\r\n\r\nx", false, "200 Dropped"},
}

// silentClose is closed after the answer without saying so, as an idle
// keep-alive connection that times out: the tool's own client sends the
// next request again on a new connection (net/http does not resend a
// POST, and reports an error).
var silentClose = scripted{"HTTP/1.1 200 OK\r\nX-NotificationStatus: Suppressed\r\nContent-Length: 0\r\n\r\n", true, "200 Suppressed"}

type scripted struct {
	text  string
	close bool // the server closes the connection after it
	key   string
}

// startScripted serves answers in turn, one request at a time.
func startScripted(t *testing.T, answers []scripted) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	next := 0
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					if err := readRequest(br); err != nil {
						return
					}
					mu.Lock()
					a := answers[next%len(answers)]
					next++
					mu.Unlock()
					if _, err := io.WriteString(c, a.text); err != nil || a.close {
						return
					}
				}
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close() // a client's idle keep-alive connections
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String()
}

// readRequest reads one request's head and body.
func readRequest(br *bufio.Reader) error {
	n := 0
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return err
		}
		if line == "\r\n" {
			break
		}
		if k, v, ok := strings.Cut(line, ":"); ok && strings.EqualFold(k, "Content-Length") {
			n, _ = strconv.Atoi(strings.TrimSpace(v))
		}
	}
	_, err := br.Discard(n)
	return err
}

// The tool's own HTTP/1.1 client and net/http count the same answers, for
// every shape of answer, and neither reports an error.
func TestOwnClientReadsWhatNetHTTPReads(t *testing.T) {
	const rounds = 5
	for _, netHTTP := range []bool{false, true} {
		answers := scriptedAnswers
		if !netHTTP {
			answers = append(slices.Clone(answers), silentClose)
		}
		want := map[string]int64{}
		for _, a := range answers {
			want[a.key] += rounds
		}
		addr := startScripted(t, answers)
		rep, err := load.Run(context.Background(), load.Config{Targets: []load.Target{{URI: "http://" + addr + "/push/x"}},
			Concurrency: 1, Count: rounds * len(answers), Mix: load.Mix{Raw: 1}, NetHTTP: netHTTP,
			Header: http.Header{"Authorization": {"Bearer t"}}})
		if err != nil {
			t.Fatal(err)
		}
		if len(rep.Errors) != 0 || !maps.Equal(rep.Answers, want) {
			t.Errorf("NetHTTP %v: answers %v, errors %v; want %v", netHTTP, rep.Answers, rep.Errors, want)
		}
	}
}

// A request the server never answers fails when the run's context ends,
// at once, and is not counted.
func TestOwnClientEndsWithTheContext(t *testing.T) {
	addr, accepted := load.AcceptOne(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan *load.Report, 1)
	go func() {
		rep, _ := load.Run(ctx, load.Config{Targets: []load.Target{{URI: "http://" + addr + "/push/x"}},
			Concurrency: 1, Count: 1, Mix: load.Mix{Raw: 1}})
		done <- rep
	}()
	c := <-accepted
	if c == nil {
		t.Fatal("no connection accepted")
	}
	defer c.Close()
	readRequest(bufio.NewReader(c)) // the request arrived; it will never be answered
	cancel()
	if rep := <-done; rep == nil || rep.Sent != 0 {
		t.Fatalf("report after cancel: %+v", rep)
	}
}

// Open loop, the senders connect before the clock starts: when the first
// notification arrives, every sender's connection is there already (set
// up on the clock, the second sender connected only at its first send, a
// second later). No more senders start than there are notifications.
func TestSendersConnectBeforeTheClockStarts(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	const count = 3
	type result struct {
		conns int // connections there when the first request came
		err   error
	}
	res := make(chan result, 1)
	var wg sync.WaitGroup
	defer wg.Wait()
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	serve := func(c net.Conn, first chan<- struct{}) {
		defer wg.Done()
		br := bufio.NewReader(c)
		for readRequest(br) == nil {
			if first != nil {
				close(first)
				first = nil
			}
			io.WriteString(c, "HTTP/1.1 200 OK\r\nX-NotificationStatus: Received\r\nContent-Length: 0\r\n\r\n")
		}
	}
	done := make(chan *load.Report, 1)
	go func() {
		rep, err := load.Run(context.Background(), load.Config{Targets: []load.Target{{URI: "http://" + ln.Addr().String() + "/push/x"}},
			Rate: 2, Concurrency: 64, Count: count, Mix: load.Mix{Raw: 1}})
		if err != nil {
			t.Error(err)
		}
		done <- rep
	}()
	c, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	conns = append(conns, c)
	first := make(chan struct{})
	wg.Add(1)
	go serve(c, first)
	<-first
	// The others are in the listener's queue already; set up on the clock
	// they would come 0.5 and 1 s after the first request.
	ln.(*net.TCPListener).SetDeadline(time.Now().Add(300 * time.Millisecond))
	for len(conns) < count {
		c, err := ln.Accept()
		if err != nil {
			res <- result{len(conns), err}
			break
		}
		conns = append(conns, c)
		wg.Add(1)
		go serve(c, nil)
	}
	ln.(*net.TCPListener).SetDeadline(time.Time{})
	if len(conns) < count {
		r := <-res
		t.Fatalf("%d connections when the first notification came, want %d: %v", r.conns, count, r.err)
	}
	rep := <-done
	if rep.Concurrency != count || rep.Received != count || rep.Ready <= 0 {
		t.Fatalf("report: %d senders (want %d), %d received, ready in %v", rep.Concurrency, count, rep.Received, rep.Ready)
	}
}

// blackhole returns an address whose dials hang (its accept queue is
// full), or skips the test where the kernel does not make one.
func blackhole(t *testing.T) string {
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Skip(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Skip(err)
	}
	if err := syscall.Listen(fd, 0); err != nil {
		t.Skip(err)
	}
	sa, _ := syscall.Getsockname(fd)
	addr := (&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: sa.(*syscall.SockaddrInet4).Port}).String()
	first, err := net.DialTimeout("tcp", addr, time.Second) // fills the queue
	if err != nil {
		t.Skip(err)
	}
	t.Cleanup(func() { first.Close() })
	if c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond); err == nil {
		c.Close()
		t.Skip("the kernel still takes connections")
	}
	return addr
}

// A run cancelled while its senders are still connecting ends at once,
// closed loop and open (from the review).
func TestRunCancelledWhileConnecting(t *testing.T) {
	addr := blackhole(t)
	for _, rate := range []float64{0, 100} {
		ctx, cancel := context.WithCancel(context.Background())
		connecting := time.AfterFunc(200*time.Millisecond, cancel)
		rep, err := load.Run(ctx, load.Config{Targets: []load.Target{{URI: "http://" + addr + "/push/x"}},
			Rate: rate, Concurrency: 8, Duration: time.Minute, Mix: load.Mix{Raw: 1}})
		connecting.Stop()
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		// A run that waited for the dials would end after their 10 s
		// timeout, and a minute later still if the clock had started.
		if rep.Sent != 0 || rep.Ready >= 5*time.Second {
			t.Fatalf("rate %v: sent %d, ready in %v, errors %v", rate, rep.Sent, rep.Ready, rep.Errors)
		}
	}
}

// No more senders than notifications, on the net/http path too (from the
// review).
func TestFewerSendersThanConcurrencyNetHTTP(t *testing.T) {
	addr := startScripted(t, []scripted{{text: "HTTP/1.1 200 OK\r\nX-NotificationStatus: Received\r\nContent-Length: 0\r\n\r\n", key: "200 Received"}})
	for _, rate := range []float64{0, 50} {
		rep, err := load.Run(context.Background(), load.Config{Targets: []load.Target{{URI: "http://" + addr + "/push/x"}},
			Rate: rate, Concurrency: 64, Count: 3, Mix: load.Mix{Raw: 1}, NetHTTP: true})
		if err != nil {
			t.Fatal(err)
		}
		if rep.Concurrency != 3 || rep.Received != 3 || rep.Ready <= 0 {
			t.Fatalf("rate %v: %d senders, %d received, ready in %v", rate, rep.Concurrency, rep.Received, rep.Ready)
		}
	}
}
