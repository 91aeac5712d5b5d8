package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"fyne.io/fyne/v2/test"

	"github.com/openmpns/openmpns/shared/payload"
	"github.com/openmpns/openmpns/shared/sender"
)

// TestRunRefusesBadFlags checks the flags before any window exists.
func TestRunRefusesBadFlags(t *testing.T) {
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"help", []string{"-h"}, 0, "-server"},
		{"scale out of range", []string{"--scale", "9"}, 2, "--scale 9: must be between 0.5 and 4"},
		{"consent", []string{"--auto-consent", "maybe"}, 2, `--auto-consent "maybe"`},
		{"log level", []string{"--log-level", "loud"}, 2, "--log-level"},
		{"argument", []string{"news"}, 2, `unexpected argument "news"`},
		{"profile", []string{"--profile", "qvga"}, 2, `--profile: tile: unknown screen profile "qvga"`},
		{"no phones", []string{"--phones", "0"}, 2, "--phones 0: want 1 to 8"},
		{"too many phones", []string{"--phones", "9"}, 2, "--phones 9: want 1 to 8"},
		{"unknown flag", []string{"--phone-count", "3"}, 2, "flag provided but not defined"},
		{"listen with a server", []string{"--server", "http://127.0.0.1:1", "--listen", "127.0.0.1:0"}, 2, "--listen is the embedded server's address"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			if code := run(tt.args, &out, &errb); code != tt.code || !strings.Contains(errb.String(), tt.want) {
				t.Errorf("run(%q) = %d, stderr %q; want %d and %q", tt.args, code, errb.String(), tt.code, tt.want)
			}
		})
	}
}

// TestStartListensWhereTold: --listen puts the embedded server where the
// demo backend expects its Channel URIs, and a busy address is an error
// rather than another port.
func TestStartListensWhereTold(t *testing.T) {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	a := test.NewApp()
	defer a.Quit()
	if _, err := start(a, options{StateDir: t.TempDir(), Listen: busy.Addr().String(), Logger: quiet}); err == nil || !strings.Contains(err.Error(), "--listen") {
		t.Fatalf("start on a busy address: %v", err)
	}
	addr := busy.Addr().String()
	busy.Close()
	ses, err := start(a, options{StateDir: t.TempDir(), Listen: addr, AutoConsent: "allow", Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer ses.Close()
	if ses.ServerURL != "http://"+addr {
		t.Errorf("server %s, want http://%s", ses.ServerURL, addr)
	}
}

// TestStartKeepsTheServerAddress starts the emulator twice on one state
// directory: the embedded server comes back on the same address, so the
// apps' Channel URIs stay put across runs.
func TestStartKeepsTheServerAddress(t *testing.T) {
	dir := t.TempDir()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	var urls []string
	for range 2 {
		a := test.NewApp()
		ses, err := start(a, options{StateDir: dir, AutoConsent: "allow", Logger: quiet})
		if err != nil {
			t.Fatal(err)
		}
		if ses.Server == nil || ses.Window.Content() == nil || len(ses.Phones) != 1 || ses.Shell.Devices()[0].Phone() != ses.Phones[0] {
			t.Fatalf("session: server %v, content %v, %d phones", ses.Server, ses.Window.Content(), len(ses.Phones))
		}
		urls = append(urls, ses.ServerURL)
		if err := ses.Close(); err != nil {
			t.Fatal(err)
		}
		a.Quit()
	}
	if urls[0] != urls[1] {
		t.Errorf("the embedded server moved from %s to %s", urls[0], urls[1])
	}
}

func TestNodesFor(t *testing.T) {
	nodes := []string{"a", "b", "c"}
	tests := []struct {
		i     int
		first string
		rest  string
	}{
		{0, "a", "b,c"}, {1, "b", "c,a"}, {2, "c", "a,b"}, {3, "a", "b,c"},
	}
	for _, tt := range tests {
		first, rest := nodesFor(nodes, tt.i)
		if first != tt.first || strings.Join(rest, ",") != tt.rest {
			t.Errorf("nodesFor(%d) = %s, %v; want %s, %s", tt.i, first, rest, tt.first, tt.rest)
		}
	}
	if first, rest := nodesFor([]string{"only"}, 5); first != "only" || len(rest) != 0 {
		t.Errorf("one node: %s, %v", first, rest)
	}
}

// TestTwoPhones starts two phones on one embedded server: each is a device
// of its own (two identities, two Channel URIs for one app), and the
// composer's "every phone" reaches both, each saying so in the inspector.
func TestTwoPhones(t *testing.T) {
	a := test.NewApp()
	defer a.Quit()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	ses, err := start(a, options{StateDir: t.TempDir(), Phones: 2, AutoConsent: "allow", Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer ses.Close()
	devs := ses.Shell.Devices()
	if len(ses.Phones) != 2 || len(devs) != 2 || devs[1].Name() != "phone 2" {
		t.Fatalf("%d phones, %d devices", len(ses.Phones), len(devs))
	}
	uris := map[string]bool{}
	waitFor(t, "two Channel URIs", func() bool {
		for _, p := range ses.Phones {
			if pg, _ := p.Page("com.openmpns.news"); pg.URI != "" && pg.TileBound {
				uris[pg.URI] = true
			}
		}
		return len(uris) == 2
	})
	body := (&payload.Tile{Template: payload.TemplateFlip, Fields: map[string]string{payload.Title: "Both"}}).Encode()
	for _, p := range ses.Phones {
		if resp, err := p.Compose(context.Background(), "com.openmpns.news", sender.Request{Kind: payload.KindTile, Class: 1, Body: body}); err != nil || !resp.Delivered() {
			t.Fatalf("compose: %v %v", resp, err)
		}
	}
	for _, p := range ses.Phones {
		waitFor(t, "the tile on each phone", func() bool {
			tl, _ := p.TileByKey("com.openmpns.news")
			return tl.State.Get(payload.Title) == "Both"
		})
	}
}

// waitFor checks cond every few milliseconds until it holds, for at most 20
// seconds: the phones report to the window, not to the test.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(20 * time.Second)
	defer deadline.Stop()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-tick.C:
		case <-deadline.C:
			t.Fatalf("waited 20s for %s", what)
		}
	}
}
