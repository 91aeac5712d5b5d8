package test

import (
	"net"
	"strings"
	"testing"
	"time"

	"github.com/openmpns/openmpns/device"
	"github.com/openmpns/openmpns/server"
)

// A device given several servers tries the next one when a connect fails,
// and its channel opens there.
func TestDeviceTriesTheNextServer(t *testing.T) {
	srv := startServer(t, server.Config{})
	// An address nothing listens on: listen, note the port, close.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + ln.Addr().String()
	ln.Close()
	rec := newRecorder()
	d, err := device.New(device.Config{Servers: []string{dead, srv.URL()}, StateDir: t.TempDir(), Handlers: rec.handlers(),
		MinBackoff: 5 * time.Millisecond, MaxBackoff: 50 * time.Millisecond, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	p := &phone{Device: d, rec: rec}
	ch := p.openChannel(t, "com.example.app", "", true, false)
	if uri := ch.ChannelURI(); !strings.HasPrefix(uri, srv.URL()+server.PushPath) {
		t.Fatalf("channel URI %q is not the live server's", uri)
	}
}

// Servers alone (no Server) is enough; a bad URL among them is refused.
func TestDeviceServersAreChecked(t *testing.T) {
	if _, err := device.New(device.Config{Servers: []string{"http://127.0.0.1:1", "ftp://x"}}); err == nil || !strings.Contains(err.Error(), "ftp://x") {
		t.Fatalf("bad URL among Servers: %v", err)
	}
	if _, err := device.New(device.Config{}); err == nil {
		t.Fatal("no server at all was accepted")
	}
}
