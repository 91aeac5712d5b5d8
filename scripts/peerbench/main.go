// Command peerbench runs issue 10's unicast workload against Centrifugo, so
// that OpenMPNS can be measured beside it in one sitting, rounds
// interleaved (scripts/bench-peers.sh): host speed moves both alike, and
// the ratio holds where the absolute figure does not.
//
//	peerbench subs --url ws://127.0.0.1:18300/connection/websocket --n 1000
//	peerbench pub --api http://127.0.0.1:18300/api/publish --channels 1000 --concurrency 64 --count 50000
//
// subs holds N subscribers, each on a connection and a channel of its own
// (ch0 … chN-1), answers Centrifugo's pings, prints "N subscribed" once
// all are, a progress line a second ("… received"), and on SIGINT or
// SIGTERM a JSON report: received, and publish-to-subscriber latency from
// the time the publisher put in the data. pub POSTs COUNT publications of
// RAW-byte JSON data (channels in turn) from CONCURRENCY keep-alive
// connections, each sending its next once the last is answered (or, with
// --rate, when it is due), with
// prebuilt requests over a bare HTTP/1.1 client, and prints one JSON line:
// sent, errors, elapsed_ns. Both read and write their sockets with raw
// system calls (shared/rawsock), as `openmpns fleet`'s devices and
// `openmpns load` do, so that the peer's clients cost no more than ours.
//
// It is a benchmark helper, not part of the product: it speaks only as
// much of Centrifugo's JSON protocol as the workload needs.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gorilla/websocket"

	"github.com/openmpns/openmpns/shared/histogram"
	"github.com/openmpns/openmpns/shared/rawsock"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: peerbench subs|pub [flags] (-h for each)")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "subs":
		err = subs(os.Args[2:])
	case "pub":
		err = pub(os.Args[2:])
	default:
		err = fmt.Errorf("unknown command %q (subs, pub)", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "peerbench:", err)
		os.Exit(1)
	}
}

// subsReport is what subs prints when it stops.
type subsReport struct {
	Subscribers int                 `json:"subscribers"`
	Received    int64               `json:"received"`
	P50NS       int64               `json:"p50_ns"`
	P99NS       int64               `json:"p99_ns"`
	MaxNS       int64               `json:"max_ns"`
	Latency     *histogram.Snapshot `json:"latency"`
}

func subs(args []string) error {
	fs := flag.NewFlagSet("subs", flag.ExitOnError)
	wsURL := fs.String("url", "ws://127.0.0.1:18300/connection/websocket", "Centrifugo's WebSocket endpoint")
	n := fs.Int("n", 1000, "subscribers, each on its own connection and channel")
	dials := fs.Int("dials", 256, "connections being opened at once (more overflow the server's listen backlog)")
	fs.Parse(args)
	dialing := make(chan struct{}, max(*dials, 1))

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var received atomic.Int64
	var mu sync.Mutex
	var all histogram.Snapshot
	var wg sync.WaitGroup
	ready := make(chan error, *n)
	for i := range *n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var h histogram.Histogram
			err := subscriber(ctx, *wsURL, "ch"+strconv.Itoa(i), dialing, ready, &received, &h)
			if err != nil && ctx.Err() == nil {
				fmt.Fprintln(os.Stderr, "subscriber", i, err)
			}
			mu.Lock()
			all.Merge(h.Snapshot())
			mu.Unlock()
		}()
	}
	for range *n {
		if err := <-ready; err != nil {
			stop()
			wg.Wait()
			return err
		}
	}
	fmt.Fprintf(os.Stderr, "%d subscribed\n", *n)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for done := false; !done; {
		select {
		case <-tick.C:
			fmt.Fprintf(os.Stderr, "%d received\n", received.Load())
		case <-ctx.Done():
			done = true
		}
	}
	wg.Wait()
	fmt.Fprintf(os.Stderr, "%d received\n", received.Load())
	return json.NewEncoder(os.Stdout).Encode(subsReport{Subscribers: *n, Received: received.Load(),
		P50NS: all.Quantile(0.5).Nanoseconds(), P99NS: all.Quantile(0.99).Nanoseconds(), MaxNS: all.Quantile(1).Nanoseconds(), Latency: &all})
}

// subscriber connects (holding a place in dialing meanwhile), subscribes
// to channel and counts its publications until ctx ends; it sends one
// value on ready (nil once subscribed).
func subscriber(ctx context.Context, wsURL, channel string, dialing chan struct{}, ready chan<- error, received *atomic.Int64, h *histogram.Histogram) error {
	dialing <- struct{}{}
	ws, _, err := rawDialer.DialContext(ctx, wsURL, nil)
	<-dialing
	if err != nil {
		ready <- fmt.Errorf("dial: %w", err)
		return err
	}
	stop := context.AfterFunc(ctx, func() { ws.Close() })
	defer stop()
	defer ws.Close()
	cmd := `{"id":1,"connect":{}}` + "\n" + `{"id":2,"subscribe":{"channel":"` + channel + `"}}`
	if err := ws.WriteMessage(websocket.TextMessage, []byte(cmd)); err != nil {
		ready <- fmt.Errorf("connect: %w", err)
		return err
	}
	subscribed := false
	for {
		_, msg, err := ws.ReadMessage()
		if err != nil {
			if !subscribed {
				ready <- fmt.Errorf("subscribe %s: %w", channel, err)
			}
			return err
		}
		// A message holds one or more replies, a line each.
		for len(msg) > 0 {
			line := msg
			if i := bytes.IndexByte(msg, '\n'); i >= 0 {
				line, msg = msg[:i], msg[i+1:]
			} else {
				msg = nil
			}
			switch {
			case len(line) == 0:
			case string(line) == "{}": // a ping: answered with a pong
				if err := ws.WriteMessage(websocket.TextMessage, []byte("{}")); err != nil {
					return err
				}
			case bytes.HasPrefix(line, []byte(`{"push"`)):
				received.Add(1)
				if t, ok := sentAt(line); ok {
					h.Record(time.Duration(time.Now().UnixNano() - t))
				}
			case bytes.Contains(line, []byte(`"error"`)):
				err := fmt.Errorf("%s: %s", channel, line)
				if !subscribed {
					ready <- err
				}
				return err
			case bytes.HasPrefix(line, []byte(`{"id":2`)):
				subscribed = true
				ready <- nil
			}
		}
	}
}

// rawDialer is gorilla's default dialer over connections read and written
// with raw system calls.
var rawDialer = &websocket.Dialer{
	Proxy:            websocket.DefaultDialer.Proxy,
	HandshakeTimeout: websocket.DefaultDialer.HandshakeTimeout,
	NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		var d net.Dialer
		c, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return rawsock.Wrap(c), nil
	},
}

// sentAt finds the publisher's "t" (Unix nanoseconds) in a push.
func sentAt(line []byte) (int64, bool) {
	i := bytes.Index(line, []byte(`"t":`))
	if i < 0 {
		return 0, false
	}
	rest := line[i+4:]
	j := 0
	for j < len(rest) && rest[j] >= '0' && rest[j] <= '9' {
		j++
	}
	t, err := strconv.ParseInt(string(rest[:j]), 10, 64)
	return t, err == nil
}

// pubReport is the line pub prints.
type pubReport struct {
	Sent      int64 `json:"sent"`
	Errors    int64 `json:"errors"`
	ElapsedNS int64 `json:"elapsed_ns"`
}

func pub(args []string) error {
	fs := flag.NewFlagSet("pub", flag.ExitOnError)
	api := fs.String("api", "http://127.0.0.1:18300/api/publish", "Centrifugo's publish endpoint")
	channels := fs.Int("channels", 1000, "channels ch0 … chN-1, published to in turn")
	conc := fs.Int("concurrency", 64, "keep-alive connections, one publication in flight on each")
	count := fs.Int64("count", 50000, "publications")
	raw := fs.Int("raw-size", 64, "bytes of JSON data per publication")
	rate := fs.Float64("rate", 0, "publications a second, on a fixed schedule (0: each connection sends its next once the last is answered)")
	fs.Parse(args)
	u, err := url.Parse(*api)
	if err != nil {
		return fmt.Errorf("--api: %w", err)
	}
	conns := make([]net.Conn, *conc)
	for i := range conns {
		c, err := net.Dial("tcp", u.Host)
		if err != nil {
			return fmt.Errorf("dial %s: %w", u.Host, err)
		}
		conns[i] = rawsock.Wrap(c)
		defer conns[i].Close()
	}
	var next, sent, failed atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for _, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := bufio.NewReader(c)
			var req []byte
			for {
				k := next.Add(1) - 1
				if k >= *count {
					return
				}
				if *rate > 0 { // the k-th is due k/rate after the start
					time.Sleep(time.Until(start.Add(time.Duration(float64(k) / *rate * float64(time.Second)))))
				}
				req = publishRequest(req[:0], u, "ch"+strconv.FormatInt(k%int64(*channels), 10), *raw)
				if _, err := c.Write(req); err != nil {
					failed.Add(1)
					fmt.Fprintln(os.Stderr, "write:", err)
					return
				}
				ok, err := readResponse(r)
				if err != nil {
					failed.Add(1)
					fmt.Fprintln(os.Stderr, "read:", err)
					return
				}
				if ok {
					sent.Add(1)
				} else {
					failed.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	return json.NewEncoder(os.Stdout).Encode(pubReport{Sent: sent.Load(), Errors: failed.Load(), ElapsedNS: time.Since(start).Nanoseconds()})
}

// publishRequest appends a POST of size bytes of data for channel.
func publishRequest(b []byte, u *url.URL, channel string, size int) []byte {
	data := `{"t":` + strconv.FormatInt(time.Now().UnixNano(), 10) + `,"p":""}`
	if pad := size - len(data); pad > 0 {
		data = data[:len(data)-2] + string(bytes.Repeat([]byte("x"), pad)) + `"}`
	}
	body := `{"channel":"` + channel + `","data":` + data + `}`
	b = append(b, "POST "+u.Path+" HTTP/1.1\r\nHost: "+u.Host+"\r\nContent-Type: application/json\r\nContent-Length: "...)
	b = strconv.AppendInt(b, int64(len(body)), 10)
	b = append(b, "\r\n\r\n"...)
	return append(b, body...)
}

// readResponse reads one HTTP/1.1 response with a Content-Length (what
// Centrifugo's API answers) and reports whether it was a 200 without an
// error in its body.
func readResponse(r *bufio.Reader) (bool, error) {
	status, err := r.ReadSlice('\n')
	if err != nil {
		return false, err
	}
	ok := bytes.HasPrefix(status, []byte("HTTP/1.1 200"))
	length := -1
	for {
		line, err := r.ReadSlice('\n')
		if err != nil {
			return false, err
		}
		if len(bytes.TrimSpace(line)) == 0 {
			break
		}
		if k, v, found := bytes.Cut(line, []byte(":")); found && bytes.EqualFold(bytes.TrimSpace(k), []byte("Content-Length")) {
			if length, err = strconv.Atoi(string(bytes.TrimSpace(v))); err != nil {
				return false, fmt.Errorf("content-length %q: %w", v, err)
			}
		}
	}
	if length < 0 {
		return false, errors.New("a response without Content-Length")
	}
	body := make([]byte, length)
	if _, err := io.ReadFull(r, body); err != nil {
		return false, err
	}
	return ok && !bytes.Contains(body, []byte(`"error"`)), nil
}
