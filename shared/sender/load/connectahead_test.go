package load

import (
	"bufio"
	"context"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// An open-loop sender connects connectAhead before its first notification
// is due, not when the run starts: a server closes a connection that
// brings no request within its header timeout (openmpns serve: 10 s), and
// a sender whose first notification came later would find its connection
// dead and connect again on the clock (from the review: 7 or 8
// connections for 5 senders). Here the header timeout is 300 ms, and
// connectAhead 60 ms for the test.
func TestSendersConnectShortlyBeforeTheirFirstNotification(t *testing.T) {
	defer func(d time.Duration) { connectAhead = d }(connectAhead)
	connectAhead = 60 * time.Millisecond
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var accepted, timedOut atomic.Int32
	var wg sync.WaitGroup
	defer wg.Wait()
	defer ln.Close()
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				br := bufio.NewReader(c)
				c.SetReadDeadline(time.Now().Add(300 * time.Millisecond)) // the header timeout
				for {
					line, err := br.ReadString('\n')
					if err != nil {
						if ne, ok := err.(net.Error); ok && ne.Timeout() {
							timedOut.Add(1)
						}
						return
					}
					c.SetReadDeadline(time.Now().Add(10 * time.Second))
					if line == "\r\n" {
						br.Discard(len(rawBody(8)))
						io.WriteString(c, "HTTP/1.1 200 OK\r\nX-NotificationStatus: Received\r\nContent-Length: 0\r\n\r\n")
						c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
					}
				}
			}()
		}
	}()
	const senders = 5 // at 10/s: due 0, 100, ..., 400 ms after the start
	rep, err := Run(context.Background(), Config{Targets: []Target{{URI: "http://" + ln.Addr().String() + "/push/x"}},
		Rate: 10, Concurrency: senders, Count: senders, Mix: Mix{Raw: 1}, RawSize: 8})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Received != senders || len(rep.Errors) != 0 {
		t.Fatalf("received %d, errors %v", rep.Received, rep.Errors)
	}
	if n := accepted.Load(); n != senders {
		t.Fatalf("%d connections for %d senders (%d closed by the header timeout)", n, senders, timedOut.Load())
	}
	if !strings.Contains(rep.Mode, "rate") {
		t.Fatalf("mode %q", rep.Mode)
	}
}
