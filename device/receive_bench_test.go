package device_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/openmpns/openmpns/device"
	"github.com/openmpns/openmpns/shared/proccpu"
	"github.com/openmpns/openmpns/shared/wire"
)

// BenchmarkReceiveAndAck: one device receives raw notifications one at a
// time from a scripted server over loopback and acknowledges each (what
// every device of a fleet does under load): the device runtime's cost per
// notification, plus the scripted server's, which stays the same.
// PromptHandlers handles them on the reader, as a fleet does.
func BenchmarkReceiveAndAck(b *testing.B) {
	for _, prompt := range []bool{false, true} {
		b.Run("PromptHandlers="+strconv.FormatBool(prompt), func(b *testing.B) {
			_, ws := scriptedDevice(b, device.Config{PromptHandlers: prompt, BufferSize: 512,
				Handlers: device.Handlers{Raw: func(device.Meta, []byte) {}}})
			payload := make([]byte, 64)
			n := 0
			b.ReportAllocs()
			cpu0, cerr := proccpu.Time()
			for b.Loop() {
				n++
				nid := strconv.Itoa(n)
				notify(b, ws, nid, payload)
				if got := readAck(b, ws); got != nid {
					b.Fatalf("want the ack of %s, got that of %s", nid, got)
				}
			}
			if cpu1, err := proccpu.Time(); err == nil && cerr == nil {
				b.ReportMetric(float64(cpu1-cpu0)/float64(b.N), "cpu-ns/op")
			}
		})
	}
}

// scriptedDevice starts a device with cfg (its Server and Logger set
// here) against a scripted server, opens a channel of app
// com.example.bench, running, and returns the device and the server's end
// of its connection, which the caller then scripts.
func scriptedDevice(tb testing.TB, cfg device.Config) (*device.Device, *websocket.Conn) {
	ready := make(chan *websocket.Conn, 1)
	done := make(chan struct{})
	srv := device.ServeWebSocket(tb, func(ws *websocket.Conn) {
		for {
			f, ok := device.ReadFrame(tb, ws)
			if !ok {
				return
			}
			if out := device.SetupAnswer(f, 30*time.Second); out != nil {
				if err := device.WriteFrame(ws, out); err != nil {
					return
				}
			}
			if f.Type == wire.TypeOpen {
				ready <- ws // the caller takes the connection over
				<-done
				return
			}
		}
	})
	cfg.Server, cfg.Logger = srv.URL, quietLogger()
	d, err := device.New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { d.Close() })
	tb.Cleanup(func() { close(done) }) // before the device closes: the server hangs up
	d.SetAppState("com.example.bench", device.AppState{Running: true})
	ch := d.NewChannel("com.example.bench", "main", "")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	openErr := make(chan error, 1)
	go func() { openErr <- ch.Open(ctx) }()
	var ws *websocket.Conn
	select {
	case ws = <-ready:
	case <-ctx.Done():
		tb.Fatal("the device did not open its channel")
	}
	if err := <-openErr; err != nil {
		tb.Fatal(err)
	}
	return d, ws
}

// notify sends the device a raw notification for com.example.bench.
func notify(tb testing.TB, ws *websocket.Conn, nid string, payload []byte) {
	m, _ := wire.Encode(&wire.Frame{Type: wire.TypeNotify, NID: nid, App: "com.example.bench", Channel: "tok", Kind: "raw", Class: 3,
		MessageID: "9f3a1c2e-0000-4000-8000-000000000001", Payload: payload, AcceptedAt: time.Now().UnixNano()})
	if err := ws.WriteMessage(websocket.TextMessage, m); err != nil {
		tb.Fatal(err)
	}
}

// readAck reads the device's next frame, an ack of one notification, and
// returns its id.
func readAck(tb testing.TB, ws *websocket.Conn) string {
	_, m, err := ws.ReadMessage()
	if err != nil {
		tb.Fatal(err)
	}
	f, err := wire.Decode(m)
	if err != nil || f.Type != wire.TypeAck || len(f.NIDs) != 1 {
		tb.Fatalf("want the ack of one notification, got %s (%v)", m, err)
	}
	return f.NIDs[0]
}
