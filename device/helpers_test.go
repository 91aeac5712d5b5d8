package device

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/gorilla/websocket"
)

// ServeWebSocket starts a test server that upgrades each request to a
// websocket connection and hands it to handle, which scripts the server's
// side; the connection is closed when handle returns, and the server when
// the test ends (tb's cleanup). It is exported, in a test file, for the
// tests of package device_test as well.
func ServeWebSocket(tb testing.TB, handle func(ws *websocket.Conn)) *httptest.Server {
	up := websocket.Upgrader{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer ws.Close()
		handle(ws)
	}))
	tb.Cleanup(srv.Close)
	return srv
}
