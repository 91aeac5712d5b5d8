package device_test

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/openmpns/openmpns/device"
	"github.com/openmpns/openmpns/shared/wire"
)

// TestNothingArrivesInAirplaneMode: airplane mode switched on while the
// device is still setting up a connection (after hello, before the power
// report is answered) must keep out a notification the server sends in
// that window: a phone with its radio off receives nothing, and the
// notification is not acknowledged, so a real server keeps it for later.
// The server here is scripted, because the real one cannot be made to send
// at that instant.
func TestNothingArrivesInAirplaneMode(t *testing.T) {
	var mu sync.Mutex
	var acked []string
	powerSeen := make(chan struct{})
	switched := make(chan struct{})
	gone := make(chan struct{}) // the device closed its connection
	srv := device.ServeWebSocket(t, func(ws *websocket.Conn) {
		defer close(gone)
		for {
			_, b, err := ws.ReadMessage()
			if err != nil {
				return
			}
			f, err := wire.Decode(b)
			if err != nil {
				t.Errorf("device sent a bad frame: %v", err)
				return
			}
			var out []*wire.Frame
			switch f.Type {
			case wire.TypeHello:
				out = append(out, &wire.Frame{Type: wire.TypeWelcome, Version: wire.ProtocolVersion, DeviceID: "d1", DeviceToken: "t1", Heartbeat: 30000})
			case wire.TypePower:
				close(powerSeen)
				<-switched
				out = append(out,
					&wire.Frame{Type: wire.TypeNotify, NID: "n1", App: "com.example.air", Channel: "tok", Kind: "raw", Class: 3, Payload: []byte("x")},
					&wire.Frame{Type: wire.TypeOK, Re: f.ID})
			case wire.TypeOpen:
				out = append(out, &wire.Frame{Type: wire.TypeOpened, Re: f.ID, App: f.App, Channel: f.Channel, URI: "http://x/push/tok"})
			case wire.TypeAck:
				mu.Lock()
				acked = append(acked, f.NIDs...)
				mu.Unlock()
			}
			for _, o := range out {
				b, _ := wire.Encode(o)
				if err := ws.WriteMessage(websocket.TextMessage, b); err != nil {
					return
				}
			}
		}
	})

	// A device that already has a channel for the app (its state file, as
	// a phone keeps it), so that a notification for it would be delivered.
	dir := t.TempDir()
	state := `{"device_id":"d1","device_token":"t1","channels":[{"app":"com.example.air","name":"main","uri":"http://x/push/tok"}]}`
	if err := os.WriteFile(filepath.Join(dir, "device.json"), []byte(state), 0o600); err != nil {
		t.Fatal(err)
	}
	got := make(chan string, 4)
	d, err := device.New(device.Config{Server: srv.URL, StateDir: dir, Logger: quietLogger(),
		MinBackoff: time.Hour, MaxBackoff: time.Hour, // one connection attempt is all this test needs
		Handlers: device.Handlers{
			Raw:        func(m device.Meta, _ []byte) { got <- m.ID },
			RawDropped: func(m device.Meta) { got <- m.ID },
		}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	select {
	case <-powerSeen:
	case <-ctx.Done():
		t.Fatal("the device never reported its power level")
	}
	d.SetOnline(false)
	close(switched)
	// The device reads the notification and the answer, finds itself in
	// airplane mode and hangs up.
	select {
	case <-gone:
	case <-ctx.Done():
		t.Fatal("the device kept its connection in airplane mode")
	}
	// Close waits for every event to be handled.
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case id := <-got:
		t.Fatalf("notification %s reached the app in airplane mode", id)
	default:
	}
	mu.Lock()
	defer mu.Unlock()
	if len(acked) > 0 {
		t.Fatalf("the device acked %v in airplane mode", acked)
	}
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
