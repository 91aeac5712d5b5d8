package main

import (
	"bytes"
	"io"
	"log/slog"
	"strings"
	"testing"

	"fyne.io/fyne/v2/test"
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
		{"unknown flag", []string{"--phone-count", "3"}, 2, "flag provided but not defined"},
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
		if ses.Server == nil || ses.Window.Content() == nil || ses.Shell.Phone() != ses.Phone {
			t.Fatalf("session: server %v, content %v, phone attached %v", ses.Server, ses.Window.Content(), ses.Shell.Phone() == ses.Phone)
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
