package server_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net"
	"runtime"
	"runtime/pprof"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/openmpns/openmpns/internal/servertest"
	"github.com/openmpns/openmpns/server"
	"github.com/openmpns/openmpns/shared/wire"
)

// sessionGoroutines counts the goroutines running a device session's code
// (reading, handling, writing) in this process's server.
func sessionGoroutines() int {
	var b bytes.Buffer
	pprof.Lookup("goroutine").WriteTo(&b, 1)
	_, recs, _ := strings.Cut(b.String(), "\n") // past "goroutine profile: total N"
	n := 0
	for _, rec := range strings.Split(recs, "\n\n") {
		var count int
		if _, err := fmt.Sscanf(rec, "%d @", &count); err != nil {
			continue
		}
		if strings.Contains(rec, "openmpns/server.(*session)") {
			n += count
		}
	}
	return n
}

// settledSessionGoroutines waits (bounded) until want goroutines run
// session code and returns the last count: handlers and writers end on
// their own once their work is done.
func settledSessionGoroutines(want int) int {
	deadline := time.Now().Add(10 * time.Second)
	for {
		n := sessionGoroutines()
		if n == want || time.Now().After(deadline) {
			return n
		}
		time.Sleep(5 * time.Millisecond) // polling a count no event announces
	}
}

// TestGatewayTLSIdleSessionsHoldNoGoroutine: devices over wss (real TLS,
// a self-signed certificate) hold no goroutine of the server while idle,
// as plain ones do: the poller reads their TLS records when the socket is
// readable. Each then still gets its answers. With a reader goroutine per
// connection (OPENMPNS_GATEWAY_READERS=1) the same count finds one each,
// which shows the count sees what it looks for.
func TestGatewayTLSIdleSessionsHoldNoGoroutine(t *testing.T) {
	certFile, keyFile, client := servertest.SelfSignedCert(t)
	srv := servertest.Start(t, server.Config{TLSCert: certFile, TLSKey: keyFile})
	if !strings.HasPrefix(srv.URL(), "https://") {
		t.Fatalf("server URL %s: not TLS", srv.URL())
	}
	want := 0
	if servertest.Readers() {
		want = 1
	}
	if n := settledSessionGoroutines(0); n != 0 {
		t.Fatalf("%d session goroutines before any device", n)
	}
	before := runtime.NumGoroutine()
	const n = 40
	dialer := websocket.Dialer{TLSClientConfig: client, HandshakeTimeout: servertest.WaitLimit}
	conns := make([]*websocket.Conn, n)
	for i := range conns {
		ws, _, err := dialer.Dial("wss://"+srv.Addr()+server.GatewayPath, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ws.Close() })
		ws.SetReadDeadline(time.Now().Add(servertest.WaitLimit))
		conns[i] = ws
		servertest.SendFrame(t, ws, &wire.Frame{Type: wire.TypeHello, ID: 1, Version: wire.ProtocolVersion})
		if f := servertest.ReadFrame(t, ws); f.Type != wire.TypeWelcome {
			t.Fatalf("device %d: got %+v, want welcome", i, f)
		}
	}
	if got := settledSessionGoroutines(want * n); got != want*n {
		t.Fatalf("%d idle TLS sessions run %d session goroutines, want %d", n, got, want*n)
	}
	// The clients hold no goroutine; the server's connection goroutines
	// ended with the upgrade.
	if grew := runtime.NumGoroutine() - before; want == 0 && grew >= n/4 {
		t.Fatalf("%d idle TLS sessions added %d goroutines", n, grew)
	}
	// Idle sessions still read and answer (the poller re-armed them).
	for i, ws := range conns {
		servertest.SendFrame(t, ws, &wire.Frame{Type: wire.TypeOpen, ID: 2, App: "com.example.tls", Channel: "main"})
		if f := servertest.ReadFrame(t, ws); f.Type != wire.TypeOpened || f.Re != 2 || !strings.HasPrefix(f.URI, "https://") {
			t.Fatalf("device %d: got %+v, want opened with an https URI", i, f)
		}
	}
	if got := settledSessionGoroutines(want * n); got != want*n {
		t.Fatalf("after a request each, %d session goroutines, want %d", got, want*n)
	}
	// And every one ends cleanly with the server.
	srv.Close()
	if got := settledSessionGoroutines(0); got != 0 {
		t.Fatalf("%d session goroutines after Close", got)
	}
}

// recordConn is a client's TCP connection that can hold what the TLS layer
// writes, so that a test chooses where TLS records meet TCP writes.
type recordConn struct {
	net.Conn
	mu   sync.Mutex
	hold bool
	held []byte
}

func (c *recordConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.hold {
		c.held = append(c.held, p...)
		return len(p), nil
	}
	return c.Conn.Write(p)
}

// take returns what was held since the last take, and holds on.
func (c *recordConn) take() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.hold = true
	b := c.held
	c.held = nil
	return b
}

// send writes b to the socket in one write.
func (c *recordConn) send(t *testing.T, b []byte) {
	t.Helper()
	if _, err := c.Conn.Write(b); err != nil {
		t.Fatal(err)
	}
}

// maskedText is f as a client's masked text frame.
func maskedText(t *testing.T, f *wire.Frame) []byte {
	t.Helper()
	p, err := json.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	out := []byte{0x80 | websocket.TextMessage}
	if len(p) < 126 {
		out = append(out, 0x80|byte(len(p)))
	} else {
		out = append(out, 0x80|126)
		out = binary.BigEndian.AppendUint16(out, uint16(len(p)))
	}
	key := [4]byte{0x11, 0x22, 0x33, 0x44}
	out = append(out, key[:]...)
	for i, c := range p {
		out = append(out, c^key[i&3])
	}
	return out
}

// TestGatewayTLSFramesAcrossAndWithinRecords: however WebSocket frames and
// TLS records and TCP writes fall, every frame is read. The hard case for a
// reader woken by epoll is several records arriving in one TCP write: one
// socket read takes them all, and the *tls.Conn hands them over one record
// at a time, with nothing left on the socket to wake the poller again.
func TestGatewayTLSFramesAcrossAndWithinRecords(t *testing.T) {
	certFile, keyFile, client := servertest.SelfSignedCert(t)
	srv := servertest.Start(t, server.Config{TLSCert: certFile, TLSKey: keyFile})
	tcp, err := net.Dial("tcp", srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	rc := &recordConn{Conn: tcp}
	client.ServerName = "127.0.0.1"
	tc := tls.Client(rc, client)
	ctx, cancel := context.WithTimeout(context.Background(), servertest.WaitLimit)
	defer cancel()
	if err := tc.HandshakeContext(ctx); err != nil {
		t.Fatal(err)
	}
	dialer := websocket.Dialer{NetDialTLSContext: func(context.Context, string, string) (net.Conn, error) { return tc, nil }}
	ws, _, err := dialer.DialContext(ctx, "wss://"+srv.Addr()+server.GatewayPath, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	ws.SetReadDeadline(time.Now().Add(servertest.WaitLimit))
	// writeRecord writes b through TLS: one record, held or sent.
	writeRecord := func(b []byte) {
		t.Helper()
		if _, err := tc.Write(b); err != nil {
			t.Fatal(err)
		}
	}
	expect := func(typ string, re uint64) {
		t.Helper()
		if f := servertest.ReadFrame(t, ws); f.Type != typ || f.Re != re {
			t.Fatalf("got %+v, want %s for request %d", f, typ, re)
		}
	}
	power := func(id uint64) []byte {
		return maskedText(t, &wire.Frame{Type: wire.TypePower, ID: id, Power: wire.PowerNormal})
	}

	// Several frames in one record.
	writeRecord(append(maskedText(t, &wire.Frame{Type: wire.TypeHello, ID: 1, Version: wire.ProtocolVersion}), power(2)...))
	expect(wire.TypeWelcome, 0)
	expect(wire.TypeOK, 2)

	// One frame split over three records, then two records of a frame
	// each, all five records in one TCP write.
	rc.take()
	f3 := power(3)
	writeRecord(f3[:1])
	writeRecord(f3[1:9])
	writeRecord(f3[9:])
	writeRecord(power(4))
	writeRecord(power(5))
	rc.send(t, rc.take())
	expect(wire.TypeOK, 3)
	expect(wire.TypeOK, 4)
	expect(wire.TypeOK, 5)

	// A record split over two TCP writes, the first of which also carries
	// a whole record: the server reads the whole one and half of the next
	// (it answers 6), then the rest (it answers 7).
	writeRecord(power(6))
	r6 := rc.take()
	writeRecord(power(7))
	r7 := rc.take()
	rc.send(t, append(r6, r7[:len(r7)/2]...))
	expect(wire.TypeOK, 6)
	rc.send(t, r7[len(r7)/2:])
	expect(wire.TypeOK, 7)
}

// A device that sends more requests in one go than its handler may lag
// behind (the inbox: the reader waits for the handler meanwhile) gets
// every answer, in order. Fewer than the answers a session may hold for a
// device that does not read (InFlight + 64, close 4008 beyond): this
// device reads only once it has sent them all.
func TestGatewayBurstOfRequestsGetsEveryAnswer(t *testing.T) {
	srv := servertest.Start(t, server.Config{})
	ws := servertest.DialWS(t, srv)
	servertest.SendFrame(t, ws, &wire.Frame{Type: wire.TypeHello, Version: wire.ProtocolVersion})
	if w := servertest.ReadFrame(t, ws); w.Type != wire.TypeWelcome {
		t.Fatalf("welcome: %+v", w)
	}
	const n = 120
	var burst []byte
	for i := 1; i <= n; i++ {
		burst = append(burst, maskedText(t, &wire.Frame{Type: wire.TypePower, ID: uint64(i), Power: wire.PowerNormal})...)
	}
	if _, err := ws.NetConn().Write(burst); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= n; i++ {
		if f := servertest.ReadFrame(t, ws); f.Type != wire.TypeOK || f.Re != uint64(i) {
			t.Fatalf("answer %d: %+v", i, f)
		}
	}
}
