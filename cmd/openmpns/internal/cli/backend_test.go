package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
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
