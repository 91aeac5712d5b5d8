package phone

import (
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openmpns/openmpns/device"
	"github.com/openmpns/openmpns/server"
	"github.com/openmpns/openmpns/shared/payload"
)

var quietLog = slog.New(slog.NewTextHandler(io.Discard, nil))

// openTestPhone opens a phone of apps, its state in dir, paired with a
// real push server on loopback; both are closed when the test ends.
func openTestPhone(t *testing.T, dir string, apps []App) *Phone {
	t.Helper()
	p, err := New(Config{Server: StartTestServer(t).URL(), StateDir: dir, Apps: apps, OnChange: func(Change) {}, Logger: quietLog, MinBackoff: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// StartTestServer starts a push server on loopback, closed when the test
// ends (exported for the package's external tests).
func StartTestServer(t *testing.T) *server.Server {
	t.Helper()
	srv, err := server.New(server.Config{Listen: "127.0.0.1:0", DataDir: t.TempDir(), Logger: quietLog})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv
}

// TestConcurrentSavesLeaveTheNewestWholePhoneJSON plays a tile update (the
// device's goroutine, onTile) and the user's settings (the UI goroutine,
// SetLook) saving phone.json at the same time, long and short files in
// turn. Once both are done, phone.json must be valid JSON (a damaged one
// stops the next start: "settings file ... is damaged") and hold the
// phone's last state, not an older snapshot renamed over a newer one.
func TestConcurrentSavesLeaveTheNewestWholePhoneJSON(t *testing.T) {
	dir := t.TempDir()
	apps := []App{{ID: "news", Name: "News", Template: payload.TemplateFlip}}
	p := openTestPhone(t, dir, apps)
	at := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	big := strings.Repeat("x", 2800)
	const rounds, saves = 60, 2
	for round := range rounds {
		var wg sync.WaitGroup
		wg.Add(2)
		start := make(chan struct{})
		go func() { // the device delivering tile updates, large then small
			defer wg.Done()
			<-start
			for i := range saves {
				title := big
				if i%2 == 1 {
					title = "t"
				}
				p.onTile(device.Meta{App: "news", ReceivedAt: at}, &payload.Tile{Template: payload.TemplateFlip,
					Fields: map[string]string{payload.BackContent: title}}, nil)
			}
		}()
		go func() { // the user in Settings
			defer wg.Done()
			<-start
			for i := range saves {
				p.SetLook(i%2 == 0, "cobalt")
			}
		}()
		close(start)
		wg.Wait()
		b, err := os.ReadFile(p.settingsPath())
		if err != nil || !json.Valid(b) {
			t.Errorf("round %d: phone.json is not valid JSON (%d bytes, %v)", round, len(b), err)
			again := t.TempDir()
			if err := os.WriteFile(filepath.Join(again, "phone.json"), b, 0o600); err != nil {
				t.Fatal(err)
			}
			if q, err := New(Config{Server: "http://127.0.0.1:1", StateDir: again, Apps: apps, OnChange: func(Change) {}, Logger: quietLog}); err != nil {
				t.Errorf("the next start fails: %v", err)
			} else {
				q.Close()
			}
			return
		}
		p.mu.Lock()
		want, err := json.MarshalIndent(&p.set, "", "  ")
		p.mu.Unlock()
		if err != nil {
			t.Fatal(err)
		}
		if string(b) != string(want) {
			t.Fatalf("round %d: with both writers done, phone.json holds an older state than the phone's (%d bytes, want %d): a tile update or the user's setting is lost at the next start", round, len(b), len(want))
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "phone.json.") {
			t.Errorf("a temporary file stays in the state directory: %s", e.Name())
		}
	}
}
