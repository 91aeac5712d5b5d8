package device_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/openmpns/openmpns/device"
	"github.com/openmpns/openmpns/shared/wire"
)

// BenchmarkReceiveAndAck: one device receives raw notifications one at a
// time from a scripted server over loopback and acknowledges each (what
// every device of a fleet does under load): the device runtime's cost per
// notification, plus the scripted server's, which stays the same.
func BenchmarkReceiveAndAck(b *testing.B) {
	ready := make(chan *websocket.Conn, 1)
	done := make(chan struct{})
	up := websocket.Upgrader{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		for {
			_, m, err := ws.ReadMessage()
			if err != nil {
				ws.Close()
				return
			}
			f, err := wire.Decode(m)
			if err != nil {
				b.Errorf("device sent a bad frame: %v", err)
				ws.Close()
				return
			}
			var out *wire.Frame
			switch f.Type {
			case wire.TypeHello:
				out = &wire.Frame{Type: wire.TypeWelcome, Version: wire.ProtocolVersion, DeviceID: "d1", DeviceToken: "t1", Heartbeat: 30000}
			case wire.TypePower:
				out = &wire.Frame{Type: wire.TypeOK, Re: f.ID}
			case wire.TypeOpen:
				out = &wire.Frame{Type: wire.TypeOpened, Re: f.ID, App: f.App, Channel: f.Channel, URI: "http://x/push/tok"}
			}
			if out != nil {
				m, _ := wire.Encode(out)
				if err := ws.WriteMessage(websocket.TextMessage, m); err != nil {
					ws.Close()
					return
				}
			}
			if f.Type == wire.TypeOpen {
				ready <- ws // the benchmark takes the connection over
				<-done
				ws.Close()
				return
			}
		}
	}))
	defer srv.Close()
	defer close(done)
	d, err := device.New(device.Config{Server: srv.URL, Logger: quietLogger(), BufferSize: 512,
		Handlers: device.Handlers{Raw: func(device.Meta, []byte) {}}})
	if err != nil {
		b.Fatal(err)
	}
	defer d.Close()
	d.SetAppState("com.example.bench", device.AppState{Running: true})
	ch := d.NewChannel("com.example.bench", "main", "")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	openErr := make(chan error, 1)
	go func() { openErr <- ch.Open(ctx) }()
	ws := <-ready
	if err := <-openErr; err != nil {
		b.Fatal(err)
	}
	payload := make([]byte, 64)
	n := 0
	b.ReportAllocs()
	cpu0 := cpuTime()
	for b.Loop() {
		n++
		nid := strconv.Itoa(n)
		m, _ := wire.Encode(&wire.Frame{Type: wire.TypeNotify, NID: nid, App: "com.example.bench", Channel: "tok", Kind: "raw", Class: 3,
			MessageID: "9f3a1c2e-0000-4000-8000-000000000001", Payload: payload, AcceptedAt: time.Now().UnixNano()})
		if err := ws.WriteMessage(websocket.TextMessage, m); err != nil {
			b.Fatal(err)
		}
		_, m, err := ws.ReadMessage()
		if err != nil {
			b.Fatal(err)
		}
		f, err := wire.Decode(m)
		if err != nil || f.Type != wire.TypeAck || len(f.NIDs) != 1 || f.NIDs[0] != nid {
			b.Fatalf("want the ack of %s, got %s (%v)", nid, m, err)
		}
	}
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
}

// cpuTime is the process's CPU time so far (user and system), in ns.
func cpuTime() int64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return ru.Utime.Nano() + ru.Stime.Nano()
}
