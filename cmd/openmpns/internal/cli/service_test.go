package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/openmpns/openmpns/server"
)

// A running server takes service commands on its admin socket: a service
// added while it runs can fetch a token at once, with no restart.
func TestServiceCommandsOnARunningServer(t *testing.T) {
	dir := t.TempDir()
	srv, err := server.New(server.Config{Listen: "127.0.0.1:0", DataDir: dir, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	if srv.AdminSocket() != filepath.Join(dir, server.AdminSocketFile) {
		t.Fatalf("admin socket at %q", srv.AdminSocket())
	}
	if fi, err := os.Stat(srv.AdminSocket()); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("admin socket mode: %v %v, want 0600", fi.Mode(), err)
	}
	run := func(args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		code := RunContext(context.Background(), append([]string{"service"}, args...), nil, &out, &errb)
		return code, out.String(), errb.String()
	}
	code, out, errs := run("add", "news", "--data", dir, "--json")
	var creds map[string]string
	if err := json.Unmarshal([]byte(out), &creds); code != 0 || err != nil || creds["client_secret"] == "" {
		t.Fatalf("add on a running server: %d %q %q", code, out, errs)
	}
	if !strings.Contains(errs, "running server") {
		t.Fatalf("the command did not say it used the running server: %q", errs)
	}
	resp, err := http.PostForm(srv.URL()+"/accesstoken", url.Values{"grant_type": {"client_credentials"},
		"client_id": {creds["client_id"]}, "client_secret": {creds["client_secret"]}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("token for a service added while the server runs: %d", resp.StatusCode)
	}
	if code, _, errs := run("add", "news", "--data", dir); code != 1 || !strings.Contains(errs, "already registered") {
		t.Fatalf("add twice: %d %q", code, errs)
	}
	if code, out, _ := run("list", "--data", dir, "--json"); code != 0 || !strings.Contains(out, `"service":"news"`) {
		t.Fatalf("list: %d %q", code, out)
	}
	if code, _, errs := run("remove", "nosuch", "--data", dir); code != 1 || !strings.Contains(errs, "no such service") {
		t.Fatalf("remove unknown: %d %q", code, errs)
	}
	if code, _, _ := run("remove", "news", "--data", dir); code != 0 {
		t.Fatal("remove")
	}
	resp, err = http.PostForm(srv.URL()+"/accesstoken", url.Values{"grant_type": {"client_credentials"},
		"client_id": {creds["client_id"]}, "client_secret": {creds["client_secret"]}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode == 200 {
		t.Fatal("a removed service still gets tokens")
	}
}

// A mistyped --data is an error, not a new empty store.
func TestServiceRefusesAMissingDataDirectory(t *testing.T) {
	var out, errb bytes.Buffer
	missing := filepath.Join(t.TempDir(), "typo")
	code := RunContext(context.Background(), []string{"service", "list", "--data", missing}, nil, &out, &errb)
	if code != 1 || !strings.Contains(errb.String(), "no data directory") {
		t.Fatalf("exit %d, %q", code, errb.String())
	}
}

// A node that cannot reach NATS says so and exits non-zero; --nats without
// --public-url is refused before anything is started.
func TestServeWithNATSRefusals(t *testing.T) {
	run := func(args ...string) (int, string) {
		var out, errb bytes.Buffer
		code := RunContext(context.Background(), append([]string{"serve", "--listen", "127.0.0.1:0", "--data", t.TempDir(), "--log-level", "error"}, args...), nil, &out, &errb)
		return code, errb.String()
	}
	if code, errs := run("--nats", "nats://127.0.0.1:1"); code != 1 || !strings.Contains(errs, "--public-url") {
		t.Fatalf("--nats without --public-url: %d %q", code, errs)
	}
	if code, errs := run("--nats", "nats://127.0.0.1:1", "--public-url", "http://push.example.com", "--nats-timeout", "1s"); code != 1 || !strings.Contains(errs, "cannot reach NATS") {
		t.Fatalf("NATS unreachable: %d %q", code, errs)
	}
}

// service and identity say what is wrong before their synopsis (they
// printed only the synopsis), and take their flags before the verb too.
func TestServiceAndIdentitySayWhatIsWrong(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"service"}, "openmpns service: no verb: want add, list, remove, rotate-secret, add-key or remove-key\nusage: openmpns service add NAME"},
		{[]string{"service", "--data", dir}, "openmpns service: no verb: want add"},
		{[]string{"service", "frobnicate"}, `openmpns service: unknown verb "frobnicate": want add, list,`},
		{[]string{"service", "add", "--data", dir}, "openmpns service: add needs NAME\nusage: "},
		{[]string{"service", "add-key", "news"}, "openmpns service: add-key needs KEY.pem\n"},
		{[]string{"service", "remove-key"}, "openmpns service: remove-key needs NAME and KID\n"},
		{[]string{"service", "add", "a", "b"}, `openmpns service: add takes NAME only: unexpected "b"`},
		{[]string{"service", "list", "x"}, `openmpns service: list takes no operand: unexpected "x"`},
		{[]string{"identity", "revoke"}, "openmpns identity: revoke needs DEVICE_ID\nusage: openmpns identity revoke DEVICE_ID | rotate-key"},
		{[]string{"identity", "rotate"}, `openmpns identity: unknown verb "rotate": want revoke or rotate-key`},
	} {
		code, _, stderr := run(t, c.args...)
		if code != 2 || !strings.HasPrefix(stderr, c.want) {
			t.Errorf("%v: exit %d, stderr %q; want 2 and %q first", c.args, code, stderr, c.want)
		}
	}
	if code, out, stderr := run(t, "service", "--data", dir, "--json", "list"); code != 0 || strings.TrimSpace(out) != "[]" {
		t.Errorf("flags before the verb: exit %d, %q %q", code, out, stderr)
	}
	if code, out, _ := run(t, "service", "add", "--help"); code != 0 || !strings.HasPrefix(out, "Usage: openmpns service") {
		t.Errorf("service add --help: exit %d, %q", code, out)
	}
}

// --nats-timeout of the tools that work on a cluster's state says what a
// timeout does to them: they send no push (their help said "past it the
// push gets 503", which is serve's).
func TestToolsNATSTimeoutHelpSpeaksOfTheTool(t *testing.T) {
	for _, cmd := range []string{"service", "identity"} {
		var out, errb bytes.Buffer
		RunContext(context.Background(), []string{cmd, "--help"}, nil, &out, &errb)
		_, h, ok := strings.Cut(out.String(), "  -nats-timeout duration\n")
		h, _, _ = strings.Cut(h, "\n  -")
		if !ok || strings.Contains(h, "push") || !strings.Contains(h, "the command fails") {
			t.Errorf("%s --help: --nats-timeout %q, want what a timeout does to the command", cmd, h)
		}
	}
}
