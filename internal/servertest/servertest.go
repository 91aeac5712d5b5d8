// Package servertest starts real OpenMPNS servers for tests, on loopback
// ports with a data directory of the test's own, and speaks the device
// protocol to them over raw WebSockets. The server's own black-box tests
// (server/) and the tests that run servers and devices together (test/)
// share it; it does not import the device runtime, so server/ tests never
// depend on device/.
package servertest

import (
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/openmpns/openmpns/server"
	"github.com/openmpns/openmpns/shared/wire"
)

// WaitLimit bounds every wait for an event; tests never sleep.
const WaitLimit = 20 * time.Second

// ReadersEnv is the environment variable that, set to 1, makes Start give
// every device connection a reader goroutine (server.Config.ReaderGoroutines)
// instead of the epoll poller, and serve every push through net/http
// (server.Config.NetHTTPPushes) instead of the push front, as on systems
// without epoll: `make test` runs the gateway and push tests both ways.
const ReadersEnv = "OPENMPNS_GATEWAY_READERS"

// Readers reports whether ReadersEnv asks for reader goroutines.
func Readers() bool { return os.Getenv(ReadersEnv) == "1" }

// QuietLogger is a logger that discards everything.
func QuietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// Start runs a real server for the test: on a loopback port unless
// cfg.Listen says otherwise, on a temporary data directory unless
// cfg.DataDir is set, quiet unless cfg.Logger is set, and with reader
// goroutines when Readers says so. The server is closed when the test ends;
// a test may close it earlier (Close is safe to call twice).
func Start(tb testing.TB, cfg server.Config) *server.Server {
	tb.Helper()
	if cfg.DataDir == "" {
		cfg.DataDir = tb.TempDir()
	}
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:0"
	}
	if cfg.Logger == nil {
		cfg.Logger = QuietLogger()
	}
	if Readers() {
		cfg.ReaderGoroutines = true
		cfg.NetHTTPPushes = true
	}
	srv, err := server.New(cfg)
	if err != nil {
		tb.Fatalf("server.New: %v", err)
	}
	if err := srv.Start(); err != nil {
		tb.Fatalf("server.Start: %v", err)
	}
	tb.Cleanup(func() { srv.Close() })
	return srv
}

// DialWS opens a WebSocket to srv's device gateway, as a device would,
// without sending anything. Reads on it fail after WaitLimit; it is closed
// when the test ends.
func DialWS(tb testing.TB, srv *server.Server) *websocket.Conn {
	tb.Helper()
	ws, _, err := websocket.DefaultDialer.Dial("ws://"+srv.Addr()+"/ws", nil)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { ws.Close() })
	ws.SetReadDeadline(time.Now().Add(WaitLimit))
	return ws
}

// SendFrame writes f to ws as a text message.
func SendFrame(tb testing.TB, ws *websocket.Conn, f *wire.Frame) {
	tb.Helper()
	b, _ := json.Marshal(f)
	if err := ws.WriteMessage(websocket.TextMessage, b); err != nil {
		tb.Fatal(err)
	}
}

// ReadFrame reads the next frame from ws; it fails the test if the
// connection ends or the message is not a JSON frame.
func ReadFrame(tb testing.TB, ws *websocket.Conn) *wire.Frame {
	tb.Helper()
	_, b, err := ws.ReadMessage()
	if err != nil {
		tb.Fatalf("read: %v", err)
	}
	var f wire.Frame
	if err := json.Unmarshal(b, &f); err != nil {
		tb.Fatal(err)
	}
	return &f
}
