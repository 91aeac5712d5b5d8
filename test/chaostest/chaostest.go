//go:build linux

// Package chaostest is the fault harness of OpenMPNS: it runs the server as
// a real child process (the test binary itself, re-executed by Main), kills
// it with SIGKILL at random moments and restarts it on the same data
// directory and port, drives a fleet of real device.Device clients over
// real WebSockets on loopback and a sender that POSTs continuously, and
// keeps a ledger of every answer the sender got and every notification the
// apps saw, so that a test can check that what was answered "200 Received"
// arrived exactly once (or, its device offline past the queue TTL, never)
// and nothing else arrived.
//
// Nothing is mocked: the child is server.New on a bbolt file, faults are
// real (SIGKILL, RLIMIT_FSIZE, a damaged file). A test package that uses
// the harness calls Main from its TestMain.
package chaostest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/openmpns/openmpns/server"
	"github.com/openmpns/openmpns/server/natsbackend"
)

// childEnv carries a ChildConfig (JSON) to a re-executed test binary.
const childEnv = "OPENMPNS_CHAOSTEST_CHILD"

// ChildConfig is the configuration of a server child process.
type ChildConfig struct {
	DataDir string `json:"data_dir"`
	Listen  string `json:"listen"`
	// Server settings; zero means the server's default.
	QueueLimit  int           `json:"queue_limit,omitempty"`
	QueueTTL    time.Duration `json:"queue_ttl,omitempty"`
	TimeScale   float64       `json:"time_scale,omitempty"`
	DailyQuota  int           `json:"daily_quota,omitempty"`
	Heartbeat   time.Duration `json:"heartbeat,omitempty"`
	MaxPending  int           `json:"max_pending,omitempty"`
	MaxConnsIP  int           `json:"max_conns_ip,omitempty"`
	RemoveDelay time.Duration `json:"remove_delay,omitempty"`
	ServerDebug bool          `json:"server_debug,omitempty"`
	// NATS, if set, makes the child a node of a cluster: the service lives
	// in the NATS JetStream cluster at these URLs (comma-separated), under
	// Prefix, with PublicURL in Channel URIs and NodeID as its name.
	NATS      string `json:"nats,omitempty"`
	Prefix    string `json:"prefix,omitempty"`
	PublicURL string `json:"public_url,omitempty"`
	NodeID    string `json:"node_id,omitempty"`
	// FileSizeLimit, if positive, is the RLIMIT_FSIZE of the child in bytes:
	// a real "disk full" for the data file. SIGUSR1 lifts it ("space
	// returns").
	FileSizeLimit uint64 `json:"file_size_limit,omitempty"`
}

// Main runs the tests, or, in a child started by StartServer, the server.
func Main(m *testing.M) {
	if cfg := os.Getenv(childEnv); cfg != "" {
		os.Exit(serveChild(cfg))
	}
	os.Exit(m.Run())
}

// serveChild is the server process: it prints "listening ADDR" once
// serving, or "error: ..." on stderr and exits 1 when the server refuses to
// start, as openmpns serve does.
func serveChild(js string) int {
	var c ChildConfig
	if err := json.Unmarshal([]byte(js), &c); err != nil {
		fmt.Fprintln(os.Stderr, "error: child config:", err)
		return 2
	}
	// A write beyond RLIMIT_FSIZE raises SIGXFSZ, whose default action
	// kills the process; ignored, the write fails with EFBIG instead, as a
	// full disk fails with ENOSPC.
	signal.Ignore(syscall.SIGXFSZ)
	if c.FileSizeLimit > 0 {
		lim := &syscall.Rlimit{Cur: c.FileSizeLimit, Max: ^uint64(0)}
		if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, lim); err != nil {
			fmt.Fprintln(os.Stderr, "error: setrlimit:", err)
			return 2
		}
		usr1 := make(chan os.Signal, 1)
		signal.Notify(usr1, syscall.SIGUSR1)
		go func() {
			for range usr1 {
				lim := &syscall.Rlimit{Cur: ^uint64(0), Max: ^uint64(0)}
				if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, lim); err != nil {
					fmt.Fprintln(os.Stderr, "error: lift rlimit:", err)
				}
				fmt.Fprintln(os.Stderr, "file size limit lifted")
			}
		}()
	}
	level := slog.LevelWarn
	if c.ServerDebug {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	cfg := server.Config{
		DataDir: c.DataDir, Listen: c.Listen, Logger: log,
		QueueLimit: c.QueueLimit, QueueTTL: c.QueueTTL, TimeScale: c.TimeScale, DailyQuota: c.DailyQuota,
		Heartbeat: c.Heartbeat, MaxPendingPushes: c.MaxPending, MaxConnsPerIP: c.MaxConnsIP, RemoveDelay: c.RemoveDelay,
	}
	if c.NATS != "" {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		be, err := natsbackend.Open(ctx, natsbackend.Config{URLs: strings.Split(c.NATS, ","), Prefix: c.Prefix,
			NodeID: c.NodeID, QueueTTL: c.QueueTTL, RequestTimeout: 2 * time.Second, Logger: log})
		cancel()
		if err != nil {
			fmt.Fprintln(os.Stderr, "error:", err)
			return 1
		}
		cfg.Backend, cfg.PublicURL, cfg.AdminSocket = be, c.PublicURL, "-"
	}
	srv, err := server.New(cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		return 1
	}
	if err := srv.Start(); err != nil {
		srv.Close()
		fmt.Fprintln(os.Stderr, "error:", err)
		return 1
	}
	fmt.Println("listening", srv.Addr())
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	<-sig
	if err := srv.Close(); err != nil {
		fmt.Fprintln(os.Stderr, "error: close:", err)
		return 1
	}
	return 0
}

// Proc is a server child process that can be killed and restarted on the
// same data directory and address.
type Proc struct {
	t   testing.TB
	cfg ChildConfig

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
	up     chan struct{} // closed while the server is serving
	addr   string
	logs   *lockedBuffer
	starts int
	down   []Span // from the kill (or stop) to listening again
}

// StartServer starts a server child and waits until it listens. The child
// is killed at the end of the test.
func StartServer(t testing.TB, cfg ChildConfig) *Proc {
	t.Helper()
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:0"
	}
	p := &Proc{t: t, cfg: cfg, up: make(chan struct{}), logs: &lockedBuffer{}}
	if err := p.start(); err != nil {
		t.Fatalf("start server: %v\n%s", err, p.Logs())
	}
	t.Cleanup(func() {
		p.Kill()
		if t.Failed() {
			t.Logf("server logs:\n%s", p.Logs())
		}
	})
	return p
}

// Run starts a child with cfg and waits for it to exit; it returns the exit
// code and what it wrote to stderr. For servers that must refuse to start.
func Run(t testing.TB, cfg ChildConfig) (code int, stderr string) {
	t.Helper()
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:0"
	}
	js, _ := json.Marshal(cfg)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+string(js))
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	cmd.Stdin = nil
	err := cmd.Start()
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err = <-done:
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		<-done
		t.Fatalf("server child did not exit; stdout %q", out.String())
	}
	if err == nil {
		return 0, errb.String()
	}
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode(), errb.String()
	}
	t.Fatal(err)
	return -1, ""
}

func (p *Proc) start() error {
	cfg := p.cfg
	p.mu.Lock()
	if p.addr != "" {
		cfg.Listen = p.addr // the same port: Channel URIs stay valid
	}
	p.starts++
	p.mu.Unlock()
	js, _ := json.Marshal(cfg)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+string(js))
	cmd.Stderr = p.logs
	out, err := cmd.StdoutPipe()
	if err != nil {
		return fmt.Errorf("stdout pipe: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start child: %w", err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "listening ") {
		cmd.Process.Kill()
		<-exited
		return fmt.Errorf("server child: first line %q: %w", line, err)
	}
	go io.Copy(io.Discard, out)
	p.mu.Lock()
	p.cmd, p.exited = cmd, exited
	p.addr = strings.TrimSpace(strings.TrimPrefix(line, "listening "))
	if n := len(p.down); n > 0 && p.down[n-1].To.IsZero() {
		p.down[n-1].To = time.Now()
	}
	close(p.up)
	p.mu.Unlock()
	return nil
}

// URL is the server's base URL.
func (p *Proc) URL() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return "http://" + p.addr
}

// Pid is the current child's process id.
func (p *Proc) Pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cmd.Process.Pid
}

// Up returns a channel closed while the server is serving (open while it is
// down: wait on it to wait for the restart).
func (p *Proc) Up() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.up
}

// Kill sends SIGKILL and waits for the process to end. No-op when down.
func (p *Proc) Kill() { p.stop(syscall.SIGKILL) }

// Stop sends SIGTERM (a graceful shutdown) and waits for the end.
func (p *Proc) Stop() { p.stop(syscall.SIGTERM) }

// Signal sends sig to the running child.
func (p *Proc) Signal(sig os.Signal) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return fmt.Errorf("server is down")
	}
	return p.cmd.Process.Signal(sig)
}

func (p *Proc) stop(sig syscall.Signal) {
	p.mu.Lock()
	cmd, exited := p.cmd, p.exited
	if cmd == nil {
		p.mu.Unlock()
		return
	}
	p.cmd = nil
	p.up = make(chan struct{})
	p.down = append(p.down, Span{From: time.Now()})
	p.mu.Unlock()
	cmd.Process.Signal(sig)
	<-exited
}

// Restart starts the server again on the same data directory and address.
func (p *Proc) Restart() {
	p.t.Helper()
	var err error
	// The port was just freed; a restart can race a socket still closing.
	for try := 0; try < 5; try++ {
		if err = p.start(); err == nil {
			return
		}
	}
	p.t.Fatalf("restart server: %v\n%s", err, p.Logs())
}

// Downtime returns the times the server was down after its first start,
// each from its kill (or stop) until it listened again.
func (p *Proc) Downtime() []Span {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Span(nil), p.down...)
}

// Starts is how many times the server was started.
func (p *Proc) Starts() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.starts
}

// Logs returns what the children wrote to stderr so far.
func (p *Proc) Logs() string { return p.logs.String() }

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.b.Len() > 4<<20 {
		return len(p), nil // enough to diagnose
	}
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
