package cli

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// run runs the command line and returns its exit code, stdout and stderr.
func run(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb syncBuffer // child processes write to stderr too
	code := RunContext(context.Background(), args, nil, &out, &errb)
	return code, out.String(), errb.String()
}

// A word that is not a flag is refused: the flag package stops at it and
// the flags after it would be dropped (`fleet --devices 5 extra --duration
// 1s` ran for ten minutes; `send toast Hello --uri X` said --uri was
// missing).
func TestStrayWordsAreRefused(t *testing.T) {
	for _, args := range [][]string{
		{"fleet", "--devices", "5", "extra", "--duration", "1s"},
		{"send", "toast", "Hello", "--uri", "http://127.0.0.1:1/push/x"},
		{"device", "--app", "a", "extra"},
		{"load", "--fleet", "1", "--rate", "1", "--count", "1", "extra"},
		{"demo", "extra"},
		{"render", "--xml", "x.xml", "-o", "x.png", "extra"},
		{"version", "extra"},
	} {
		code, _, stderr := run(t, args...)
		if code != 2 || !strings.Contains(stderr, `unexpected argument "`) {
			t.Errorf("%v: exit %d, stderr %q", args, code, stderr)
		}
		if strings.Contains(stderr, "--uri is required") {
			t.Errorf("%v: %q", args, stderr)
		}
	}
}

// Each kind of send has its own help, with only its flags and examples, on
// one stream; another kind's flags are refused; --class takes a number or
// an interval, nothing else.
func TestSendHelpAndFlagsPerKind(t *testing.T) {
	code, out, stderr := run(t, "send", "toast", "--help")
	if code != 0 || stderr != "" {
		t.Fatalf("send toast --help: exit %d, stderr %q", code, stderr)
	}
	for _, want := range []string{"Usage: openmpns send toast", "-text1", "-uri", "Examples:", "openmpns send toast --uri URI --text1"} {
		if !strings.Contains(out, want) {
			t.Errorf("send toast --help lacks %q:\n%s", want, out)
		}
	}
	for _, other := range []string{"-template", "-data", "send tile", "send raw"} {
		if strings.Contains(out, other) {
			t.Errorf("send toast --help shows %q:\n%s", other, out)
		}
	}
	if code, out, _ := run(t, "send", "--help"); code != 0 || !strings.Contains(out, "send tile --help") || !strings.Contains(out, "Examples:") {
		t.Errorf("send --help: exit %d\n%s", code, out)
	}
	if code, _, stderr := run(t, "send", "raw", "--uri", "http://127.0.0.1:1/push/x", "--text1", "Hi"); code != 2 || !strings.Contains(stderr, "--text1 is a flag of send toast") {
		t.Errorf("a toast flag on a raw: exit %d, %q", code, stderr)
	}
	for _, bad := range []string{"7x", "-1", "1.5"} {
		if code, _, stderr := run(t, "send", "raw", "--uri", "http://127.0.0.1:1/push/x", "--class", bad); code != 2 || !strings.Contains(stderr, "--class") {
			t.Errorf("--class %s: exit %d, %q", bad, code, stderr)
		}
	}
}

func TestVersion(t *testing.T) {
	for _, args := range [][]string{{"version"}, {"--version"}} {
		code, out, _ := run(t, args...)
		if code != 0 || !strings.HasPrefix(out, "openmpns ") || !strings.Contains(out, "go1.") {
			t.Errorf("%v: exit %d, %q", args, code, out)
		}
	}
}

// The command list is aligned, internal flags are not shown, and
// long-running commands take --log-level.
func TestHelpTexts(t *testing.T) {
	_, out, _ := run(t, "help")
	col := -1
	for _, c := range commands() {
		for _, l := range strings.Split(out, "\n") {
			if strings.HasPrefix(l, "  "+c.name+" ") {
				at := strings.Index(l, c.summary)
				if col >= 0 && at != col {
					t.Errorf("summary of %s starts at column %d, others at %d:\n%s", c.name, at, col, out)
				}
				col = at
			}
		}
	}
	_, out, _ = run(t, "fleet", "--help")
	for _, hidden := range []string{"-worker", "-first-index", "internal"} {
		if strings.Contains(out, hidden) {
			t.Errorf("fleet --help shows %q", hidden)
		}
	}
	for c, args := range map[string][]string{
		"device":       {"--app", "a"},
		"fleet":        {"--devices", "1"},
		"load":         {"--fleet", "1", "--rate", "1", "--count", "1"},
		"demo-backend": {"--listen", "127.0.0.1:0"},
	} {
		if _, out, _ := run(t, c, "--help"); !strings.Contains(out, "-log-level") {
			t.Errorf("%s has no --log-level", c)
		}
		code, _, stderr := run(t, append([]string{c, "--log-level", "loud"}, args...)...)
		if code != 2 || !strings.Contains(stderr, "--log-level") {
			t.Errorf("%s --log-level loud: exit %d, want 2 (%q)", c, code, stderr)
		}
	}
}

// Errors of the packages a command uses are not prefixed twice.
func TestNoDoubledErrorPrefix(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	code, _, stderr := runRecover(t, ctx, "device", "--app", "a", "--state", t.TempDir(), "--server", "ftp://127.0.0.1:1")
	if code != 1 || !strings.Contains(stderr, "openmpns device: server URL") || strings.Contains(stderr, "device: device:") {
		t.Fatalf("exit %d, %q", code, stderr)
	}
	if got := trimPrefix("fleet: fleet: closed", "fleet"); got != "closed" {
		t.Fatalf("trimPrefix: %q", got)
	}
}

// demo --time-scale takes 1 to 1000000, as the server does: 0 divided by
// zero and failed with "the phone did not receive the toast", a wrong
// reason. A batched step says what it waits for (at 1, 7.5 minutes).
func TestDemoTimeScaleIsFromOneToAMillion(t *testing.T) {
	for _, s := range []string{"0", "-1", "0.5", "2e6", "NaN"} {
		code, _, stderr := run(t, "demo", "--time-scale", s)
		if code != 2 || !strings.HasPrefix(stderr, "openmpns demo: --time-scale ") || !strings.Contains(stderr, ": want 1 to 1000000") {
			t.Errorf("demo --time-scale %s: exit %d, stderr %q; want 2 and a word on --time-scale", s, code, stderr)
		}
	}
	code, out, stderr := run(t, "demo", "--time-scale", "10000")
	if code != 0 || !strings.Contains(out, "(batched: the server holds it for up to 45ms, the 7m30s window / --time-scale 10000; waiting for it)") {
		t.Fatalf("exit %d: %s\n%s", code, out, stderr)
	}
}

// An unknown --power is a usage error found before the state directory is
// made (it was made, then the device failed with exit 1).
func TestDevicePowerIsCheckedFirst(t *testing.T) {
	state := filepath.Join(t.TempDir(), "state")
	code, _, stderr := run(t, "device", "--app", "a", "--state", state, "--server", "http://127.0.0.1:1", "--power", "half")
	if code != 2 || stderr != "openmpns device: --power \"half\": want normal, low or critically_low\n" {
		t.Errorf("exit %d, %q", code, stderr)
	}
	if _, err := os.Stat(state); err == nil {
		t.Errorf("the state directory was made")
	}
}

// The demo prints sentences, not Go values.
func TestDemoIsReadable(t *testing.T) {
	code, out, stderr := run(t, "demo", "--time-scale", "10000")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if strings.Contains(out, "map[") || strings.Contains(out, "[]") || !strings.Contains(out, `the primary FlipTile tile: Count "3", Title "News"`) {
		t.Fatalf("demo output:\n%s", out)
	}
}

// Two devices on one state directory would share one identity and knock
// each other off: the second is refused with a clear message. By default
// each app has a directory of its own.
func TestDeviceStateDirectoryIsLocked(t *testing.T) {
	if defaultStateDir("com.example.a") == defaultStateDir("com.example.b") {
		t.Fatal("two apps share a default state directory")
	}
	srv := start(t, "serve", "--listen", "127.0.0.1:0", "--data", t.TempDir(), "--log-level", "warn")
	line := srv.next(t, "openmpns server on ")
	base := "http://" + strings.Fields(strings.TrimPrefix(line, "openmpns server on "))[0]
	state := t.TempDir()
	first := start(t, "device", "--server", base, "--app", "com.example.a", "--state", state)
	first.next(t, `"event":"ready"`)
	code, _, stderr := run(t, "device", "--server", base, "--app", "com.example.b", "--state", state)
	if code != 1 || !strings.Contains(stderr, "is in use by another openmpns device") || !strings.Contains(stderr, "--state") {
		t.Fatalf("second device on the same state: exit %d, %q", code, stderr)
	}
}

// A device, a fleet and load --fleet that cannot reach their server say so
// within a few seconds, with the reason, and go on trying.
func TestUnreachableServerIsReported(t *testing.T) {
	const nowhere = "http://127.0.0.1:1"
	began := time.Now()
	dev := start(t, "device", "--server", nowhere, "--app", "a", "--state", t.TempDir())
	var ev map[string]any
	json.Unmarshal([]byte(dev.next(t, `"event":"connect_failed"`)), &ev)
	if msg, _ := ev["error"].(string); !strings.Contains(msg, "connection refused") || time.Since(began) > 5*time.Second {
		t.Fatalf("connect_failed %v after %v", ev, time.Since(began))
	}
	dev.next(t, `"event":"connect_failed"`) // and it keeps trying
	dev.waitStderr(t, "cannot reach "+nowhere)

	fl := start(t, "fleet", "--server", nowhere, "--devices", "2", "--progress", "200ms")
	fl.waitStderr(t, "last error: connect:")
	fl.waitStderr(t, "connection refused")
	ld := start(t, "load", "--fleet", "2", "--server", nowhere, "--rate", "1", "--count", "1")
	ld.waitStderr(t, "load: last error: connect:")
	if time.Since(began) > 15*time.Second {
		t.Fatalf("took %v", time.Since(began))
	}
}

// Ctrl-C (the context ending) during a slow connect ramp stops the fleet
// at once, with its report.
func TestFleetStopsDuringTheRamp(t *testing.T) {
	srv := start(t, "serve", "--listen", "127.0.0.1:0", "--data", t.TempDir(), "--log-level", "warn")
	line := srv.next(t, "openmpns server on ")
	base := "http://" + strings.Fields(strings.TrimPrefix(line, "openmpns server on "))[0]
	fl := start(t, "fleet", "--server", base, "--devices", "1000", "--connect-rate", "20", "--progress", "100ms")
	fl.waitStderr(t, "/1000 started") // the ramp takes 50 s
	fl.cancel()
	select {
	case code := <-fl.code:
		fl.code <- code
		if code != 0 || !strings.Contains(fl.stderr.String(), "stopping (interrupted)") {
			t.Fatalf("exit %d: %s", code, fl.stderr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the fleet did not stop within 10 s of Ctrl-C")
	}
}

// --report-html writes one self-contained page with the plots inline.
func TestFleetHTMLReport(t *testing.T) {
	srv := start(t, "serve", "--listen", "127.0.0.1:0", "--data", t.TempDir(), "--log-level", "warn")
	line := srv.next(t, "openmpns server on ")
	base := "http://" + strings.Fields(strings.TrimPrefix(line, "openmpns server on "))[0]
	html := filepath.Join(t.TempDir(), "fleet.html")
	if code, _, stderr := run(t, "fleet", "--server", base, "--devices", "4", "--duration", "700ms", "--progress", "100ms", "--report-html", html); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	b, err := os.ReadFile(html)
	if err != nil {
		t.Fatal(err)
	}
	page := string(b)
	for _, want := range []string{"<!DOCTYPE html>", "Summary", "Latency distribution", "Deliveries per second", "Connected devices", "Reconnects and errors", "<svg"} {
		if !strings.Contains(page, want) {
			t.Errorf("the page lacks %q", want)
		}
	}
	for _, remote := range []string{"http://", "https://"} {
		if i := strings.Index(page, remote); i >= 0 && !strings.Contains(page[max(0, i-40):i], "xmlns") {
			t.Errorf("the page loads something remote: %q", page[max(0, i-40):min(len(page), i+60)])
		}
	}
}

// Fleet flags are refused with --scenario (the file describes the fleet:
// `--devices 50` used to run the file's 200 silently); an invalid scenario
// is a usage error (2), a failed expectation a failure (1).
func TestScenarioUsageAndExitCodes(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	os.WriteFile(good, []byte("name: ok\ndevices: 2\napps: [a]\nphases:\n  - connect: {}\n"), 0o644)
	invalid := filepath.Join(dir, "invalid.yaml")
	os.WriteFile(invalid, []byte("name: bad\ndevices: 2\napps: [a]\nphases:\n  - expect: {raws: 1}\n"), 0o644)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"fleet", "--scenario", good, "--devices", "50"}, "--devices does not go with --scenario"},
		{[]string{"fleet", "--scenario", good, "--duration", "1s"}, "--duration does not go with --scenario"},
		{[]string{"fleet", "--scenario", invalid}, "the first phase must be connect"},
		{[]string{"fleet", "--scenario", filepath.Join(dir, "missing.yaml")}, "no such file"},
		{[]string{"fleet", "--devices", "1", "--junit", "x.xml"}, "--junit goes with --scenario"},
	} {
		code, _, stderr := run(t, c.args...)
		if code != 2 || !strings.Contains(stderr, c.want) {
			t.Errorf("%v: exit %d, want 2 and %q; stderr %q", c.args, code, c.want, stderr)
		}
	}
}

// A connect phase that fails ends the run: the later phases are skipped,
// not failed one after the other.
func TestScenarioFailedConnectEndsTheRun(t *testing.T) {
	file := filepath.Join(t.TempDir(), "s.yaml")
	os.WriteFile(file, []byte("name: nowhere\nserver: http://127.0.0.1:1\ndevices: 2\napps: [a]\nphases:\n"+
		"  - connect: {within: 300ms}\n  - send: {kind: raw, count: 1}\n  - expect: {raws: 1}\n"), 0o644)
	junit := filepath.Join(t.TempDir(), "j.xml")
	code, out, stderr := run(t, "fleet", "--scenario", file, "--junit", junit)
	if code != 1 || !strings.Contains(out, "FAIL  1 connect") || !strings.Contains(out, "SKIP  2 send") || !strings.Contains(out, "SKIP  3 expect") {
		t.Fatalf("exit %d\n%s\n%s", code, out, stderr)
	}
	if strings.Contains(out, "FAIL  2") || strings.Contains(out, "FAIL  3") {
		t.Fatalf("failures cascade:\n%s", out)
	}
	b, _ := os.ReadFile(junit)
	if !strings.Contains(string(b), "<skipped") {
		t.Fatalf("junit: %s", b)
	}
}

// server: process runs the scenario's server as a child `openmpns serve`;
// a restart phase with kill ends it with SIGKILL: what it answered
// Received while the devices were offline is still delivered, once. The
// HTML report shows each phase with its verdict.
func TestScenarioKillsAChildServer(t *testing.T) {
	fleetWorkers(t)
	dir := t.TempDir()
	file := filepath.Join(dir, "crash.yaml")
	src := "name: crash\nserver: process\ndevices: 3\napps: [a]\nphases:\n  - connect: {}\n" +
		"  - airplane: {share: 100%, on: true}\n  - send: {kind: raw, count: 2}\n" +
		"  - restart: {server: true, kill: true}\n  - airplane: {share: 100%, on: false}\n" +
		"  - expect: {name: every queued raw survives the crash, raws: 2, all_delivered: true, no_duplicates: true, within: 20s}\n"
	os.WriteFile(file, []byte(src), 0o644)
	html := filepath.Join(dir, "r.html")
	code, out, stderr := run(t, "fleet", "--scenario", file, "--state", filepath.Join(dir, "state"), "--report-html", html)
	if code != 0 || !strings.Contains(out, "PASS  4 kill the server (SIGKILL)") || !strings.Contains(out, "PASS  6 every queued raw survives the crash") {
		t.Fatalf("exit %d\n%s\n%s", code, out, stderr)
	}
	if !strings.Contains(stderr, "process server on http://127.0.0.1:") {
		t.Fatalf("stderr: %s", stderr)
	}
	b, err := os.ReadFile(html)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"every phase passed", "kill the server (SIGKILL)", `class="verdict pass"`, "<svg"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("the HTML report lacks %q", want)
		}
	}
}

// The shipped scenarios that crash a child server pass, from the command
// line as a QA lead runs them.
func TestShippedProcessScenariosPass(t *testing.T) {
	fleetWorkers(t)
	files, _ := filepath.Glob("../../../../assets/scenarios/*.yaml")
	ran := 0
	for _, f := range files {
		b, _ := os.ReadFile(f)
		if !strings.Contains(string(b), "\nserver: process") {
			continue
		}
		ran++
		t.Run(filepath.Base(f), func(t *testing.T) {
			code, out, stderr := run(t, "fleet", "--scenario", f, "--state", t.TempDir())
			if code != 0 {
				t.Fatalf("exit %d\n%s\n%s", code, out, stderr)
			}
		})
	}
	if ran == 0 {
		t.Fatal("no shipped scenario uses server: process")
	}
}

// Ctrl-C during a scenario's connect ramp ends the run at once; the phases
// after it are skipped.
func TestScenarioStopsDuringTheRamp(t *testing.T) {
	srv := start(t, "serve", "--listen", "127.0.0.1:0", "--data", t.TempDir(), "--log-level", "warn")
	line := srv.next(t, "openmpns server on ")
	base := "http://" + strings.Fields(strings.TrimPrefix(line, "openmpns server on "))[0]
	file := filepath.Join(t.TempDir(), "slow.yaml")
	os.WriteFile(file, []byte("name: slow\ndevices: 1000\napps: [a]\nphases:\n  - connect: {rate: 20}\n  - send: {kind: raw, count: 1}\n"), 0o644)
	sc := start(t, "fleet", "--scenario", file, "--server", base)
	sc.waitStderr(t, "phase 1: connect 1000 devices")
	sc.cancel()
	select {
	case code := <-sc.code:
		sc.code <- code
		if code != 1 {
			t.Fatalf("exit %d: %s", code, sc.stderr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the scenario did not stop within 10 s of Ctrl-C")
	}
	var out []string
	for l := range sc.lines {
		out = append(out, l)
	}
	if got := strings.Join(out, "\n"); !strings.Contains(got, "FAIL  1 connect") || !strings.Contains(got, "SKIP  2 send") {
		t.Fatalf("output:\n%s", got)
	}
}
