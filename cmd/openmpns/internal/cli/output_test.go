package cli

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// names lists the files in dir.
func names(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	return out
}

// A report path that cannot be written is found before the run, not after
// it (a 2-minute fleet, a 10-minute scenario ran first), and nothing of
// the other outputs asked for is left behind.
func TestOutputPathsAreCheckedBeforeTheRun(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "no-such-dir", "r.json")
	scenarioFile := filepath.Join(t.TempDir(), "s.yaml")
	os.WriteFile(scenarioFile, []byte("name: s\ndevices: 1\napps: [a]\nphases:\n  - connect: {}\n"), 0o644)
	channels := channelsFile(t, "http://127.0.0.1:1/push/AAAAAAAAAAAAAAAAAAAAAAAAAAA")
	for _, c := range []struct {
		args      []string
		want, ran string
	}{
		{[]string{"fleet", "--server", "http://127.0.0.1:1", "--devices", "1", "--duration", "5s", "--report-html", filepath.Join(dir, "r.html"), "--report", missing},
			"--report " + missing + ": cannot write there: no such file or directory", "devices ×"},
		{[]string{"fleet", "--server", "http://127.0.0.1:1", "--devices", "1", "--duration", "5s", "--report", dir},
			"--report " + dir + ": is a directory", "devices ×"},
		{[]string{"fleet", "--scenario", scenarioFile, "--report", filepath.Join(dir, "r.json"), "--junit", missing},
			"--junit " + missing + ": cannot write there", "phase 1"},
		{[]string{"load", "--channels", channels, "--concurrency", "1", "--count", "1", "--report-html", missing},
			"--report-html " + missing + ": cannot write there", "load: sending"},
	} {
		code, _, stderr := run(t, c.args...)
		if code != 1 || !strings.Contains(stderr, c.want) || strings.Contains(stderr, c.ran) {
			t.Errorf("%v: exit %d, want 1 and %q before the run; stderr %q", c.args, code, c.want, stderr)
		}
		if left := names(t, dir); len(left) > 0 {
			t.Errorf("%v left %v behind", c.args, left)
		}
	}
}

// Reports are written whole (a temporary file renamed over the path), and
// each command says where it wrote each; a report from an earlier run is
// replaced.
func TestReportsAreWrittenWholeAndNamed(t *testing.T) {
	srv := start(t, "serve", "--listen", "127.0.0.1:0", "--data", t.TempDir(), "--log-level", "warn")
	line := srv.next(t, "openmpns server on ")
	base := "http://" + strings.Fields(strings.TrimPrefix(line, "openmpns server on "))[0]
	dir := t.TempDir()
	report, html := filepath.Join(dir, "r.json"), filepath.Join(dir, "r.html")
	os.WriteFile(report, []byte("an earlier report"), 0o644)
	code, _, stderr := run(t, "fleet", "--server", base, "--devices", "2", "--duration", "300ms", "--progress", "100ms", "--report", report, "--report-html", html)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{"fleet: report written to " + report + "\n", "fleet: HTML report written to " + html + "\n"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q: %s", want, stderr)
		}
	}
	if got := names(t, dir); !slices.Equal(got, []string{"r.html", "r.json"}) {
		t.Errorf("files: %v", got)
	}
	if b, _ := os.ReadFile(report); !strings.HasPrefix(string(b), "{") {
		t.Errorf("report: %.40q", b)
	}
	if st, err := os.Stat(report); err != nil || st.Mode().Perm() != 0o644 {
		t.Errorf("report mode: %v %v", st.Mode(), err)
	}

	file := filepath.Join(t.TempDir(), "s.yaml")
	os.WriteFile(file, []byte("name: s\ndevices: 1\napps: [a]\nphases:\n  - connect: {}\n"), 0o644)
	junit := filepath.Join(dir, "j.xml")
	code, _, stderr = run(t, "fleet", "--scenario", file, "--junit", junit, "--report", report, "--report-html", html)
	if code != 0 {
		t.Fatalf("scenario: exit %d: %s", code, stderr)
	}
	for _, want := range []string{`scenario "s": JUnit XML written to ` + junit + "\n", `scenario "s": report written to ` + report + "\n", `scenario "s": HTML report written to ` + html + "\n"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("scenario: stderr lacks %q: %s", want, stderr)
		}
	}
	if got := names(t, dir); !slices.Equal(got, []string{"j.xml", "r.html", "r.json"}) {
		t.Errorf("files: %v", got)
	}
}
