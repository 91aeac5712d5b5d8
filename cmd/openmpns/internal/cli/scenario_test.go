package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/openmpns/openmpns/device/fleet/scenario"
)

// A scenario stopped by Ctrl-C (or CI's timeout, SIGTERM) in the middle of
// a phase is not a pass: the phase cut short says it was interrupted and
// fails, the phases after it show as not run, and the run exits 1 (it used
// to print PASS for the cut-short send, "all N phases passed" and exit 0).
func TestInterruptedScenarioIsNotAPass(t *testing.T) {
	file := filepath.Join(t.TempDir(), "s.yaml")
	// 80 raws at 10/s: the send phase takes 8 s, and is interrupted.
	os.WriteFile(file, []byte("name: waits\ndevices: 2\napps: [a]\nphases:\n  - connect: {}\n"+
		"  - send: {kind: raw, count: 40, rate: 10}\n  - expect: {name: every raw arrives, raws: 40, within: 10s}\n"), 0o644)
	junit := filepath.Join(t.TempDir(), "j.xml")
	sc := start(t, "fleet", "--scenario", file, "--junit", junit)
	sc.waitStderr(t, "phase 2: send")
	sc.cancel()
	var code int
	select {
	case code = <-sc.code:
		sc.code <- code
	case <-time.After(15 * time.Second):
		t.Fatal("the scenario did not stop")
	}
	var lines []string
	for l := range sc.lines {
		lines = append(lines, l)
	}
	out, stderr := strings.Join(lines, "\n"), sc.stderr.String()
	if code != 1 || strings.Contains(stderr, "phases passed") {
		t.Fatalf("an interrupted scenario exits %d and says:\n%s\n%s", code, out, stderr)
	}
	for _, want := range []string{"PASS  1 connect", "FAIL  2 send 40 raw to each channel of every app: interrupted before the phase finished: ",
		" of 80 notifications sent", "SKIP  3 every raw arrives (the run was interrupted)"} {
		if !strings.Contains(out, want) {
			t.Errorf("the table lacks %q:\n%s", want, out)
		}
	}
	if !strings.Contains(stderr, `scenario "waits": interrupted (Ctrl-C or SIGTERM): 2 of 3 phases did not pass (1 failed, 1 not run)`) {
		t.Errorf("stderr: %s", stderr)
	}
	if b, _ := os.ReadFile(junit); !strings.Contains(string(b), "interrupted before the phase finished") || !strings.Contains(string(b), "<skipped") {
		t.Errorf("junit: %s", b)
	}
}

// A run whose phases all passed but whose devices' state was not all saved
// fails (exit 1) with a line that says so; with failed phases too the line
// says both.
func TestVerdictLineSaysStateNotSaved(t *testing.T) {
	const closeErr = "fleet: closing 1 device(s) failed (their state may not be saved); device 1: disk full"
	out := &scenario.Outcome{Name: "s", Results: []scenario.Result{{Phase: "1 connect 3 devices"}}, CloseError: closeErr}
	if out.Passed() {
		t.Fatal("a run whose state was not saved passed")
	}
	if got, want := verdictLine(out), "every phase passed, but the devices' state was not all saved: "+closeErr; got != want {
		t.Errorf("verdict %q, want %q", got, want)
	}
	out.Results = append(out.Results, scenario.Result{Phase: "2 expect", Failure: "1 toasts, want 5"})
	if got := verdictLine(out); !strings.HasPrefix(got, "1 of 2 phases did not pass (1 failed); the devices' state was not all saved: ") {
		t.Errorf("verdict %q", got)
	}
}
