package server_test

import (
	"bytes"
	"io"
	"os/exec"
	"sync"
	"testing"
	"time"

	"github.com/openmpns/openmpns/internal/servertest"
	"github.com/openmpns/openmpns/server"
)

// watchedOutput is what a child process printed, with a wait for a marker.
type watchedOutput struct {
	mu      sync.Mutex
	b       bytes.Buffer
	changed chan struct{}
}

func (w *watchedOutput) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.b.Write(p)
	close(w.changed)
	w.changed = make(chan struct{})
	return len(p), nil
}

// waitFor waits until the output holds marker, or fails the test.
func (w *watchedOutput) waitFor(t *testing.T, marker string) {
	t.Helper()
	limit := time.After(servertest.WaitLimit)
	for {
		w.mu.Lock()
		found, changed := bytes.Contains(w.b.Bytes(), []byte(marker)), w.changed
		w.mu.Unlock()
		if found {
			return
		}
		select {
		case <-changed:
		case <-limit:
			t.Fatalf("no %q in what openssl printed", marker)
		}
	}
}

// zeroMasked is a client's frame of opcode op with a zero masking key
// (the payload goes as it is).
func zeroMasked(op byte, p string) []byte {
	return append([]byte{0x80 | op, 0x80 | byte(len(p)), 0, 0, 0, 0}, p...)
}

// A TLS 1.3 client may ask, at any time, for the server to update its
// keys; the *tls.Conn answers from inside a read. Long after the last
// frame's write (past its write deadline), that answer and the frames
// after it still go out: the device gets the pong of its next ping.
// openssl's s_client sends the KeyUpdate (Go's client cannot be made to).
func TestTLSKeyUpdateLeavesTheConnectionWritable(t *testing.T) {
	openssl, err := exec.LookPath("openssl")
	if err != nil {
		t.Skip("no openssl to send a TLS 1.3 KeyUpdate")
	}
	cert, key, _ := servertest.SelfSignedCert(t)
	const writeTimeout = 50 * time.Millisecond
	srv := servertest.Start(t, server.Config{TLSCert: cert, TLSKey: key, WriteTimeout: writeTimeout})
	// Interactive (no -quiet): a line "K" asks for a key update.
	cmd := exec.Command(openssl, "s_client", "-connect", srv.Addr(), "-tls1_3")
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out := &watchedOutput{changed: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = out, out // it says KEYUPDATE on stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { in.Close(); cmd.Process.Kill(); cmd.Wait() }()
	io.WriteString(in, "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
	out.waitFor(t, "101 Switching Protocols")
	in.Write(zeroMasked(0x1, `{"type":"hello","version":1}`))
	out.waitFor(t, `"welcome"`)
	time.Sleep(3 * writeTimeout) // the welcome's write deadline passes
	io.WriteString(in, "K\n")
	out.waitFor(t, "KEYUPDATE")
	in.Write(zeroMasked(0x9, "PINGPAYLOAD"))
	out.waitFor(t, "PINGPAYLOAD")
}
