package device

import (
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestSeenSetEvictsOldest(t *testing.T) {
	s := newSeenSet(nil)
	for i := 0; i < maxSeen+10; i++ {
		if !s.add(fmt.Sprint(i)) {
			t.Fatalf("%d reported as seen", i)
		}
	}
	if s.add(fmt.Sprint(maxSeen + 5)) {
		t.Fatal("a recent id was not remembered")
	}
	if !s.add("3") {
		t.Fatal("an evicted id is still remembered")
	}
	l := s.list()
	if len(l) != maxSeen || l[len(l)-1] != "3" {
		t.Fatalf("list: len %d, last %q", len(l), l[len(l)-1])
	}
	// Reloading keeps the order, so the next eviction is still the oldest.
	r := newSeenSet(l)
	if r.add(l[0]) || r.add("3") {
		t.Fatal("reloaded set forgot ids")
	}
}

func TestStateRoundTripAndDamage(t *testing.T) {
	dir := t.TempDir()
	p := persisted{DeviceID: "d1", DeviceToken: "tok", Power: PowerLow,
		Channels: []channelRecord{{App: "a", Name: "main", URI: "http://x/push/y", Toast: true, Domains: []string{"img.example.com"}}},
		Seen:     []string{"1", "2"}}
	if err := saveState(dir, &p); err != nil {
		t.Fatal(err)
	}
	got, err := loadState(dir, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if got.DeviceID != "d1" || got.Power != PowerLow || len(got.Channels) != 1 || got.Channels[0].Domains[0] != "img.example.com" || len(got.Seen) != 2 {
		t.Fatalf("state %+v", got)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("temporary files left behind: %v", entries)
	}
	os.WriteFile(filepath.Join(dir, stateFile), []byte("{not json"), 0o600)
	if _, err := loadState(dir, slog.New(slog.DiscardHandler)); err == nil || !strings.Contains(err.Error(), "damaged") {
		t.Fatalf("damaged state: %v", err)
	}
	if got, err := loadState(t.TempDir(), slog.New(slog.DiscardHandler)); err != nil || got.DeviceID != "" {
		t.Fatalf("missing state: %+v %v", got, err)
	}
}

func TestNewRejectsBadServerURL(t *testing.T) {
	for _, u := range []string{"", "ftp://x", "127.0.0.1:8080", "http://"} {
		if _, err := New(Config{Server: u}); err == nil {
			t.Errorf("New(%q) succeeded", u)
		}
	}
}

// A save that races Close (an Open or bind answered just before the device
// closed) must not recreate a state directory removed after Close: the
// emulator's Reset removes it and starts a fresh device there.
func TestNoStateWrittenAfterClose(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "device")
	d, err := New(Config{Server: "http://127.0.0.1:1", StateDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, stateFile)); err != nil {
		t.Fatalf("Close did not save the state: %v", err)
	}
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if err := d.save(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("state written after Close: %v", err)
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for in, want := range map[string]time.Duration{
		"60": time.Minute, "0": 0, now.Add(90 * time.Second).Format(http.TimeFormat): 90 * time.Second,
		now.Add(-time.Hour).Format(http.TimeFormat): 0, "999999999": 24 * time.Hour,
	} {
		if got, ok := parseRetryAfter(in, now); !ok || got != want {
			t.Errorf("parseRetryAfter(%q) = %v, %v; want %v", in, got, ok, want)
		}
	}
	for _, bad := range []string{"", "soon", "-5", "1.5"} {
		if _, ok := parseRetryAfter(bad, now); ok {
			t.Errorf("parseRetryAfter(%q) accepted", bad)
		}
	}
}

// TestLoadStateRepairsWhatTheServerRefuses: values in a state file that
// parses but that the server would refuse at every connect are replaced
// at load with safe ones, each with a log line naming the file and what
// was done: the power level, credentials not in a pair, a channel with a
// bad app id, name or service or a second one of an app (dropped), tile
// domains (the binding unbound). Sound values are kept as they are.
func TestLoadStateRepairsWhatTheServerRefuses(t *testing.T) {
	dir := t.TempDir()
	state := `{"device_id":"d1","power":"bogus","channels":[
		{"app":"a","name":"main","toast":true,"tile":true,"domains":["img.example.com"]},
		{"app":"b c","name":"main"},
		{"app":"d","name":""},
		{"app":"e","name":"main","service":"` + strings.Repeat("s", 65) + `"},
		{"app":"f","name":"main","tile":true,"domains":["bad domain"]},
		{"app":"a","name":"other"}]}`
	if err := os.WriteFile(filepath.Join(dir, stateFile), []byte(state), 0o600); err != nil {
		t.Fatal(err)
	}
	var logs strings.Builder
	p, err := loadState(dir, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatalf("a state file with bad values: %v", err)
	}
	if p.Power != PowerNormal || p.DeviceID != "" || p.DeviceToken != "" {
		t.Errorf("power %q, credentials %q/%q; want normal and none", p.Power, p.DeviceID, p.DeviceToken)
	}
	want := []channelRecord{
		{App: "a", Name: "main", Toast: true, Tile: true, Domains: []string{"img.example.com"}},
		{App: "f", Name: "main"},
	}
	if fmt.Sprint(p.Channels) != fmt.Sprint(want) {
		t.Errorf("channels %+v, want %+v", p.Channels, want)
	}
	for _, line := range []string{"bad power level", "bad device credentials", `app="b c"`, "app=d", "app=e", "app=f", "channel=other", stateFile} {
		if !strings.Contains(logs.String(), line) {
			t.Errorf("no log line with %s:\n%s", line, logs.String())
		}
	}
}
