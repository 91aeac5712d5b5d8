package cli

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// demo-backend's flags: documented, and refused when they would leave it
// open to any URI or closed to every app.
func TestDemoBackendFlags(t *testing.T) {
	_, out, _ := run(t, "demo-backend", "--help")
	for _, f := range []string{"-push-server", "-apps", "-max-registrations", "http://127.0.0.1:8080"} {
		if !strings.Contains(out, f) {
			t.Errorf("demo-backend --help does not mention %s:\n%s", f, out)
		}
	}
	noSecrets := filepath.Join(t.TempDir(), "apps.json")
	icon, err := os.ReadFile("../../../../assets/apps/news/icons/news.png")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(filepath.Dir(noSecrets), "i.png"), icon, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(noSecrets, []byte(`{"apps":[{"id":"a","name":"A","icon":"i.png","backend":"{backend}/handoff/news"}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--push-server", "ftp://127.0.0.1:8080"}, "--push-server"},
		{[]string{"--push-server", "http://127.0.0.1:8080/push/x"}, "without a path"},
		{[]string{"--push-server", " , "}, "--push-server"},
		{[]string{"--max-registrations", "0"}, "--max-registrations"},
		{[]string{"--apps", noSecrets}, "handoff_secret"},
	} {
		code, _, stderr := run(t, append([]string{"demo-backend", "--listen", "127.0.0.1:0"}, c.args...)...)
		if code != 2 || !strings.Contains(stderr, c.want) {
			t.Errorf("%v: exit %d, %q; want 2 and %q", c.args, code, stderr, c.want)
		}
	}
}

// An --interval that is not positive is refused (0 panicked in
// time.NewTicker), and so is an --images directory that is not there (it
// was taken, and every image answered 404).
func TestDemoBackendRefusesANonPositiveIntervalAndMissingImages(t *testing.T) {
	file := filepath.Join(t.TempDir(), "f")
	os.WriteFile(file, nil, 0o644)
	for _, c := range []struct{ args []string }{
		{[]string{"--interval", "0"}},
		{[]string{"--interval", "-1s"}},
		{[]string{"--images", filepath.Join(t.TempDir(), "nonexistent")}},
		{[]string{"--images", file}},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		code, _, stderr := runRecover(t, ctx, append([]string{"demo-backend", "--listen", "127.0.0.1:0"}, c.args...)...)
		cancel()
		if code != 2 || !strings.Contains(stderr, "openmpns demo-backend: "+c.args[0]) {
			t.Errorf("demo-backend %v: exit %d, stderr %q; want 2 and a word on %s", c.args, code, stderr, c.args[0])
		}
	}
}
