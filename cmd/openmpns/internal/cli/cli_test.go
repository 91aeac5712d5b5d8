package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"image/png"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openmpns/openmpns/shared/payload"
)

func TestHelpForEveryCommand(t *testing.T) {
	for _, c := range append(commands(), command{name: "help"}) {
		t.Run(c.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			args := []string{c.name, "--help"}
			if c.name == "help" {
				args = []string{"help"}
			}
			if code := RunContext(context.Background(), args, nil, &out, &errb); code != 0 {
				t.Fatalf("exit %d; stderr %s", code, errb.String())
			}
			if !strings.Contains(out.String()+errb.String(), "Usage: openmpns") {
				t.Fatalf("no usage text: %q %q", out.String(), errb.String())
			}
		})
	}
}

// Every flag in every help names its value in one word: the flag package
// takes a back-quoted word of a usage as the value's name (serve --help
// showed "-admin openmpns service").
func TestEveryFlagNamesItsValueInOneWord(t *testing.T) {
	var helps [][]string
	for _, c := range commands() {
		helps = append(helps, []string{c.name, "--help"})
	}
	helps = append(helps, []string{"send", "toast", "--help"}, []string{"send", "tile", "--help"}, []string{"send", "raw", "--help"})
	for _, args := range helps {
		var out, errb bytes.Buffer
		RunContext(context.Background(), args, nil, &out, &errb)
		for _, l := range strings.Split(out.String()+errb.String(), "\n") {
			if strings.HasPrefix(l, "  -") && len(strings.Fields(l)) > 2 {
				t.Errorf("%v: %q", args, l)
			}
		}
	}
	var out, errb bytes.Buffer
	RunContext(context.Background(), []string{"serve", "--help"}, nil, &out, &errb)
	if !strings.Contains(out.String(), "  -admin PATH\n") {
		t.Errorf("serve --help: %s", out.String())
	}
}

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{{"nope"}, {"device"}, {"send"}, {"send", "toast"}, {"serve", "--bogus"}} {
		var out, errb bytes.Buffer
		if code := RunContext(context.Background(), args, nil, &out, &errb); code != 2 {
			t.Errorf("%v: exit %d, want 2 (stderr %q)", args, code, errb.String())
		}
	}
}

// runRecover is run for a command that might go on running or panic when
// it does not refuse its arguments: it ends with ctx, and a panic fails the
// test instead of ending the test binary.
func runRecover(t *testing.T, ctx context.Context, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb syncBuffer
	defer func() {
		if p := recover(); p != nil {
			t.Errorf("%v panicked: %v", args, p)
			code, stdout, stderr = -1, out.String(), errb.String()
		}
	}()
	code = RunContext(ctx, args, nil, &out, &errb)
	return code, out.String(), errb.String()
}

// lines runs a long-lived command and streams its stdout lines.
type running struct {
	cancel context.CancelFunc
	lines  chan string
	code   chan int
	stderr *syncBuffer
}

type syncBuffer struct {
	mu      sync.Mutex
	b       bytes.Buffer
	changed chan struct{} // closed and replaced on every write
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.changed != nil {
		close(s.changed)
	}
	s.changed = make(chan struct{})
	return s.b.Write(p)
}

// wait waits until the buffer holds want.
func (s *syncBuffer) wait(t *testing.T, want string) {
	t.Helper()
	timeout := time.NewTimer(20 * time.Second)
	defer timeout.Stop()
	for {
		s.mu.Lock()
		if s.changed == nil {
			s.changed = make(chan struct{})
		}
		ch, has := s.changed, strings.Contains(s.b.String(), want)
		s.mu.Unlock()
		if has {
			return
		}
		select {
		case <-ch:
		case <-timeout.C:
			t.Fatalf("no %q in %q", want, s.String())
		}
	}
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func start(t *testing.T, args ...string) *running {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	r := &running{cancel: cancel, lines: make(chan string, 100), code: make(chan int, 1), stderr: &syncBuffer{}}
	go func() {
		r.code <- RunContext(ctx, args, nil, pw, r.stderr)
		pw.Close()
	}()
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			r.lines <- sc.Text()
		}
		close(r.lines)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-r.code:
		case <-time.After(20 * time.Second):
			t.Errorf("%v did not stop", args)
		}
	})
	return r
}

// waitStderr waits until stderr holds want.
func (r *running) waitStderr(t *testing.T, want string) {
	t.Helper()
	r.stderr.wait(t, want)
}

// next returns the next stdout line that contains want.
func (r *running) next(t *testing.T, want string) string {
	t.Helper()
	timeout := time.NewTimer(20 * time.Second)
	defer timeout.Stop()
	for {
		select {
		case l, ok := <-r.lines:
			if !ok {
				t.Fatalf("output ended before %q; stderr: %s", want, r.stderr.String())
			}
			if strings.Contains(l, want) {
				return l
			}
		case <-timeout.C:
			t.Fatalf("no line with %q; stderr: %s", want, r.stderr.String())
		}
	}
}

func TestServeDeviceSendAsAUserWould(t *testing.T) {
	handoffs := make(chan map[string]string, 4)
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var rec map[string]string
		json.NewDecoder(r.Body).Decode(&rec)
		handoffs <- rec
		w.WriteHeader(http.StatusCreated)
	}))
	defer backend.Close()

	srv := start(t, "serve", "--listen", "127.0.0.1:0", "--data", t.TempDir(), "--log-level", "warn")
	line := srv.next(t, "openmpns server on ")
	addr := strings.Fields(strings.TrimPrefix(line, "openmpns server on "))[0]
	base := "http://" + addr

	dev := start(t, "device", "--server", base, "--app", "com.example.news", "--state", t.TempDir(),
		"--toast", "--tile", "--handoff", backend.URL)
	var ev map[string]any
	json.Unmarshal([]byte(dev.next(t, `"event":"channel_uri"`)), &ev)
	uri, _ := ev["uri"].(string)
	if !strings.HasPrefix(uri, base+"/push/") {
		t.Fatalf("channel_uri event %v", ev)
	}
	select {
	case rec := <-handoffs:
		if rec["uri"] != uri || rec["app"] != "com.example.news" || rec["device_id"] == "" || rec["channel"] != "main" {
			t.Fatalf("handoff record %v", rec)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("no handoff")
	}
	if l := dev.next(t, `"event":"handoff"`); !strings.Contains(l, `"status":201`) {
		t.Fatalf("handoff event %s", l)
	}

	dev.next(t, `"event":"ready"`)
	var out, errb bytes.Buffer
	if code := RunContext(context.Background(), []string{"send", "toast", "--uri", uri, "--text1", "Hello", "--text2", "World", "--message-id", "m-1", "--json"}, nil, &out, &errb); code != 0 {
		t.Fatalf("send toast: exit %d: %s", code, errb.String())
	}
	var ans map[string]any
	if err := json.Unmarshal(out.Bytes(), &ans); err != nil || ans["status"] != float64(200) || ans["notification_status"] != "Received" || ans["message_id"] != "m-1" {
		t.Fatalf("send --json printed %q (%v)", out.String(), err)
	}
	json.Unmarshal([]byte(dev.next(t, `"event":"toast"`)), &ev)
	if ev["text1"] != "Hello" || ev["text2"] != "World" || ev["foreground"] != false {
		t.Fatalf("toast event %v", ev)
	}

	out.Reset()
	if code := RunContext(context.Background(), []string{"send", "tile", "--uri", uri, "--template", "FlipTile", "--title", "News", "--count", "3", "--clear", "BackTitle"}, nil, &out, &errb); code != 0 {
		t.Fatalf("send tile: exit %d: %s", code, errb.String())
	}
	if !strings.Contains(out.String(), "X-NotificationStatus: Received") {
		t.Fatalf("send tile printed %q", out.String())
	}
	json.Unmarshal([]byte(dev.next(t, `"event":"tile"`)), &ev)
	fields, _ := ev["fields"].(map[string]any)
	if ev["template"] != "FlipTile" || fields["Title"] != "News" || fields["Count"] != "3" || len(ev["cleared"].([]any)) != 1 {
		t.Fatalf("tile event %v", ev)
	}

	if code := RunContext(context.Background(), []string{"send", "raw", "--uri", uri, "--data", "hi"}, nil, &out, &errb); code != 0 {
		t.Fatalf("send raw: exit %d", code)
	}
	json.Unmarshal([]byte(dev.next(t, `"event":"raw"`)), &ev)
	if ev["data_base64"] != "aGk=" {
		t.Fatalf("raw event %v", ev)
	}

	// A refused push exits 1 and prints the reason.
	out.Reset()
	if code := RunContext(context.Background(), []string{"send", "raw", "--uri", base + "/push/bad"}, nil, &out, &errb); code != 1 || !strings.Contains(out.String(), "HTTP 400") {
		t.Fatalf("bad URI: exit %d, %q", code, out.String())
	}
}

func TestDemoRuns(t *testing.T) {
	var out, errb bytes.Buffer
	if code := RunContext(context.Background(), []string{"demo", "--time-scale", "10000"}, nil, &out, &errb); code != 0 {
		t.Fatalf("demo: exit %d: %s\n%s", code, errb.String(), out.String())
	}
	for _, want := range []string{"Received/Active/Connected", "phone shows toast", "FlipTile", "app receives raw data", "Suppressed", "404 Dropped/Expired"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("demo output lacks %q:\n%s", want, out.String())
		}
	}
}

func TestRenderTileAndToast(t *testing.T) {
	dir := t.TempDir()
	tileXML := filepath.Join(dir, "tile.xml")
	os.WriteFile(tileXML, []byte(`<?xml version="1.0" encoding="utf-8"?>
<wp:Notification xmlns:wp="WPNotification" Version="2.0">
  <wp:Tile Template="FlipTile"><wp:Title>News</wp:Title><wp:Count>3</wp:Count><wp:BackContent>Go 2 ships</wp:BackContent><wp:WideBackContent>Go 2 ships today</wp:WideBackContent></wp:Tile>
</wp:Notification>`), 0o644)
	for _, c := range []struct {
		args []string
		w, h int
	}{
		{[]string{"--xml", tileXML, "--size", "wide", "--back"}, 691, 336},
		{[]string{"--xml", tileXML, "--size", "small"}, 159, 159},
	} {
		out := filepath.Join(dir, "out.png")
		var so, se bytes.Buffer
		if code := RunContext(context.Background(), append([]string{"render", "-o", out}, c.args...), nil, &so, &se); code != 0 {
			t.Fatalf("%v: exit %d: %s", c.args, code, se.String())
		}
		f, err := os.Open(out)
		if err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(f)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		if b := img.Bounds(); b.Dx() != c.w || b.Dy() != c.h {
			t.Fatalf("%v: image %v, want %dx%d", c.args, b, c.w, c.h)
		}
	}
	var so, se bytes.Buffer
	toast := bytes.NewReader((&payload.Toast{Text1: "Hi", Text2: "there"}).Encode())
	if code := RunContext(context.Background(), []string{"render", "--xml", "-", "-o", filepath.Join(dir, "toast.png")}, toast, &so, &se); code != 0 || !strings.Contains(so.String(), "rendered toast") {
		t.Fatalf("toast: exit %d: %s %s", code, so.String(), se.String())
	}
	if code := RunContext(context.Background(), []string{"render", "--xml", "-", "-o", filepath.Join(dir, "x.png")}, strings.NewReader("<nope/>"), &so, &se); code != 1 {
		t.Fatalf("bad payload: exit %d", code)
	}
}

func TestServiceCommands(t *testing.T) {
	dir := t.TempDir()
	run := func(args ...string) (int, string) {
		var out, errb bytes.Buffer
		code := RunContext(context.Background(), append([]string{"service"}, args...), nil, &out, &errb)
		return code, out.String() + errb.String()
	}
	code, out := run("add", "news", "--data", dir, "--json")
	var creds map[string]string
	if err := json.Unmarshal([]byte(strings.SplitN(out, "\n", 2)[0]), &creds); code != 0 || err != nil ||
		creds["service"] != "news" || !strings.HasPrefix(creds["client_id"], "svc_") || len(creds["client_secret"]) < 40 {
		t.Fatalf("add: %d %q", code, out)
	}
	if code, out := run("add", "news", "--data", dir); code != 1 || !strings.Contains(out, "already registered") {
		t.Fatalf("add twice: %d %q", code, out)
	}
	code, out = run("rotate-secret", "news", "--data", dir, "--json")
	var rotated map[string]string
	json.Unmarshal([]byte(strings.SplitN(out, "\n", 2)[0]), &rotated)
	if code != 0 || rotated["client_secret"] == creds["client_secret"] || rotated["client_id"] != creds["client_id"] {
		t.Fatalf("rotate: %d %q", code, out)
	}
	if code, out := run("list", "--data", dir); code != 0 || !strings.Contains(out, "news") || strings.Contains(out, rotated["client_secret"]) {
		t.Fatalf("list: %d %q", code, out)
	}
	if code, out := run("remove", "news", "--data", dir); code != 0 {
		t.Fatalf("remove: %d %q", code, out)
	}
	if code, out := run("list", "--data", dir, "--json"); code != 0 || strings.TrimSpace(out) != "[]" {
		t.Fatalf("list after remove: %d %q", code, out)
	}
	if code, _ := run("frobnicate", "--data", dir); code != 2 {
		t.Fatalf("unknown verb: %d", code)
	}
	// The server sees services registered while it was stopped.
	if code, _ := run("add", "weather", "--data", dir); code != 0 {
		t.Fatal("add weather")
	}
	srv := start(t, "serve", "--listen", "127.0.0.1:0", "--data", dir, "--log-level", "warn")
	srv.next(t, "openmpns server on ")
}
