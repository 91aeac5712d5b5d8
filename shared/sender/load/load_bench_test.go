package load_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/openmpns/openmpns/shared/proccpu"
	"github.com/openmpns/openmpns/shared/sender/load"
)

// cannedServer answers every HTTP/1.1 request on its keep-alive
// connections with the same 200 Received, allocating nothing per request:
// a benchmark against it measures the sender, not a server.
type cannedServer struct {
	ln    net.Listener
	wg    sync.WaitGroup
	mu    sync.Mutex
	conns []net.Conn
}

var cannedAnswer = []byte("HTTP/1.1 200 OK\r\nX-Notificationstatus: Received\r\nX-Subscriptionstatus: Active\r\n" +
	"X-Deviceconnectionstatus: Connected\r\nContent-Length: 0\r\n\r\n")

func startCanned(tb testing.TB) *cannedServer {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	s := &cannedServer{ln: ln}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.conns = append(s.conns, c)
			s.mu.Unlock()
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				defer c.Close()
				serveCanned(c)
			}()
		}
	}()
	tb.Cleanup(func() {
		ln.Close()
		s.mu.Lock()
		for _, c := range s.conns {
			c.Close() // the sender's idle keep-alive connections
		}
		s.mu.Unlock()
		s.wg.Wait()
	})
	return s
}

// serveCanned reads requests (head, then Content-Length bytes of body) and
// answers each, until the connection ends.
func serveCanned(c net.Conn) {
	br := bufio.NewReaderSize(c, 8<<10)
	for {
		n := 0
		for {
			line, err := br.ReadSlice('\n')
			if err != nil {
				return
			}
			if len(line) <= 2 {
				break
			}
			if k, v, ok := bytes.Cut(line, []byte(":")); ok && bytes.EqualFold(k, []byte("Content-Length")) {
				n, _ = strconv.Atoi(string(bytes.TrimSpace(v)))
			}
		}
		if _, err := br.Discard(n); err != nil {
			return
		}
		if _, err := c.Write(cannedAnswer); err != nil {
			return
		}
	}
}

// BenchmarkRun is the load tool's own cost per request: b.N raw
// notifications of 64 bytes to 1,000 Channel URIs from 8 closed-loop
// senders, against a server that does no work, on the tool's own HTTP/1.1
// connections ("own") and through net/http ("nethttp", the only path
// before issue 10). ns/op is wall time per request, which on a shared
// machine says little; cpu-ns/op is the CPU the process used per request
// (user and system), the canned server's reads and writes included;
// allocs/op are the sender's (the canned server allocates nothing per
// request).
func BenchmarkRun(b *testing.B) {
	for _, bc := range []struct {
		name    string
		netHTTP bool
	}{{"own", false}, {"nethttp", true}} {
		b.Run(bc.name, func(b *testing.B) {
			runCanned(b, load.Config{Concurrency: 8, Mix: load.Mix{Raw: 1}, RawSize: 64, NetHTTP: bc.netHTTP})
		})
	}
}

// BenchmarkRunPaced is the load tool's own cost per request in open loop:
// b.N raw notifications of 64 bytes paced at 2,000/s to 1,000 Channel URIs
// (at most 64 in flight) against the canned server, on the tool's own
// connections. A paced sender is idle between notifications, so what each
// costs is mostly waking up: the pacing and the answer. cpu-ns/op as in
// BenchmarkRun; ns/op is the pacing's 500 µs. Run it with -benchtime
// 4000x or so (2 s).
func BenchmarkRunPaced(b *testing.B) {
	rep := runCanned(b, load.Config{Rate: 2000, Concurrency: 64, Mix: load.Mix{Raw: 1}, RawSize: 64})
	b.ReportMetric(float64(rep.Late), "late")
}

// runCanned is the timed part of a benchmark of the load tool: it runs
// cfg, with Count b.N and Targets 1,000 Channel URIs on a canned server
// (set here), reports the CPU the process used per request as cpu-ns/op,
// and returns the run's report, once every notification was received.
func runCanned(b *testing.B, cfg load.Config) *load.Report {
	s := startCanned(b)
	cfg.Targets = make([]load.Target, 1000)
	for i := range cfg.Targets {
		cfg.Targets[i] = load.Target{URI: fmt.Sprintf("http://%s/push/%027d", s.ln.Addr(), i), Device: i}
	}
	cfg.Count = b.N
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuTime(b)
	rep, err := load.Run(context.Background(), cfg)
	cpu := cpuTime(b) - cpu0
	b.StopTimer()
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/op")
	if err != nil {
		b.Fatal(err)
	}
	if rep.Received != int64(b.N) {
		b.Fatalf("received %d of %d: %v %v", rep.Received, b.N, rep.Answers, rep.Errors)
	}
	return rep
}

// cpuTime is the CPU (user and system) the process has used so far.
func cpuTime(tb testing.TB) time.Duration {
	d, err := proccpu.Time()
	if err != nil {
		tb.Skip(err)
	}
	return d
}
