package device

import (
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// The device's dialer (rawDial under gorilla's Dialer) works where the
// wrapped connection is under TLS and reached through an HTTP proxy's
// CONNECT: messages go both ways, big ones too.
func TestRawDialUnderTLSThroughAProxy(t *testing.T) {
	up := websocket.Upgrader{}
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer ws.Close()
		for {
			typ, m, err := ws.ReadMessage()
			if err != nil {
				return
			}
			if ws.WriteMessage(typ, m) != nil {
				return
			}
		}
	}))
	defer srv.Close()
	connects := 0
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodConnect {
			http.Error(w, "CONNECT only", http.StatusMethodNotAllowed)
			return
		}
		connects++
		up, err := net.Dial("tcp", r.Host)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer up.Close()
		c, brw, err := w.(http.Hijacker).Hijack()
		if err != nil {
			return
		}
		defer c.Close()
		brw.WriteString("HTTP/1.1 200 Connection established\r\n\r\n")
		brw.Flush()
		go io.Copy(up, brw)
		io.Copy(c, up)
	}))
	defer proxy.Close()
	pu, _ := url.Parse(proxy.URL)
	d := &websocket.Dialer{Proxy: http.ProxyURL(pu), NetDialContext: rawDial(nil), HandshakeTimeout: 10 * time.Second,
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}
	ws, _, err := d.Dial("wss"+strings.TrimPrefix(srv.URL, "https"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	if connects != 1 {
		t.Fatalf("%d CONNECTs", connects)
	}
	ws.SetReadLimit(1 << 22)
	for _, size := range []int{1, 1000, 1 << 20} {
		msg := strings.Repeat("x", size)
		if err := ws.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
			t.Fatal(err)
		}
		ws.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, m, err := ws.ReadMessage(); err != nil || string(m) != msg {
			t.Fatalf("echo of %d bytes: %d bytes, %v", size, len(m), err)
		}
	}
}
