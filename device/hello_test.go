package device_test

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/openmpns/openmpns/device"
)

// silentHelloServer is a server that reads the device's hello and never
// answers it: hello reports each hello read, gone each connection the
// device left.
func silentHelloServer(t *testing.T) (url string, hello, gone chan struct{}) {
	hello, gone = make(chan struct{}, 4), make(chan struct{}, 4)
	srv := device.ServeWebSocket(t, func(ws *websocket.Conn) {
		defer func() { gone <- struct{}{} }()
		if _, ok := device.ReadFrame(t, ws); !ok {
			return
		}
		hello <- struct{}{}
		ws.ReadMessage() // until the device goes
	})
	return srv.URL, hello, gone
}

// within fails the test unless ch yields within limit. The limit is far
// from both sides: what it checks takes milliseconds, and the device's
// own deadline on the hello's answer, which ended it before, is 10 s.
func within(t *testing.T, ch <-chan struct{}, limit time.Duration, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(limit):
		t.Fatalf("%s took more than %v", what, limit)
	}
}

// TestCloseWhileWaitingForWelcomeIsPrompt: Close while the device waits
// for the server's answer to its hello returns at once (not when the
// answer's 10 s deadline passes), and reports no failed connect.
func TestCloseWhileWaitingForWelcomeIsPrompt(t *testing.T) {
	url, hello, _ := silentHelloServer(t)
	var failed atomic.Int64
	d, err := device.New(device.Config{Server: url, Logger: quietLogger(),
		Handlers: device.Handlers{ConnectFailed: func(error, time.Duration) { failed.Add(1) }}})
	if err != nil {
		t.Fatal(err)
	}
	within(t, hello, 20*time.Second, "the first hello")
	closed := make(chan struct{})
	go func() {
		d.Close()
		close(closed)
	}()
	within(t, closed, 5*time.Second, "Close while the device waited for welcome")
	if n := failed.Load(); n != 0 {
		t.Fatalf("ConnectFailed raised %d times by Close", n)
	}
}

// TestAirplaneModeWhileWaitingForWelcomeHangsUp: airplane mode switched
// on while the device waits for the answer to its hello ends the
// connection attempt at once; it is no failed connect, and the device
// says hello again at once when airplane mode goes off.
func TestAirplaneModeWhileWaitingForWelcomeHangsUp(t *testing.T) {
	url, hello, gone := silentHelloServer(t)
	var failed atomic.Int64
	d, err := device.New(device.Config{Server: url, Logger: quietLogger(), MinBackoff: time.Hour, MaxBackoff: time.Hour,
		Handlers: device.Handlers{ConnectFailed: func(error, time.Duration) { failed.Add(1) }}})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	within(t, hello, 20*time.Second, "the first hello")
	d.SetOnline(false)
	within(t, gone, 5*time.Second, "hanging up in airplane mode while waiting for welcome")
	d.SetOnline(true)
	within(t, hello, 5*time.Second, "the hello after airplane mode") // no backoff (an hour) either
	d.Close()
	if n := failed.Load(); n != 0 {
		t.Fatalf("ConnectFailed raised %d times by airplane mode and Close", n)
	}
}
