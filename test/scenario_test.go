package test

import (
	"bytes"
	"context"
	"encoding/xml"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/openmpns/openmpns/device/fleet/scenario"
	"github.com/openmpns/openmpns/server"
)

// embedded is the in-process server of a scenario run: a real server that
// a restart phase closes and starts again on the same address and data
// directory.
type embedded struct {
	t   *testing.T
	cfg server.Config
	srv *server.Server
}

var _ scenario.Server = (*embedded)(nil)

func startEmbedded(t *testing.T) *embedded {
	t.Helper()
	e := &embedded{t: t, cfg: server.Config{DataDir: t.TempDir()}}
	e.srv = startServer(t, e.cfg)
	e.cfg.Listen = e.srv.Addr()
	return e
}

func (e *embedded) URL() string { return e.srv.URL() }

func (e *embedded) Restart(context.Context) error {
	if err := e.srv.Close(); err != nil {
		return fmt.Errorf("closing the server: %w", err)
	}
	e.srv = startServer(e.t, e.cfg)
	return nil
}

// runScenario runs the scenario src against an embedded server.
func runScenario(t *testing.T, src string) *scenario.Outcome {
	t.Helper()
	s, err := scenario.Parse([]byte(src))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var progress bytes.Buffer
	out, err := scenario.Run(ctx, s, scenario.Options{Server: startEmbedded(t), StateDir: t.TempDir(), Progress: &progress})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("progress:\n%s", progress.String())
	return out
}

// The example scenarios shipped in assets/ parse, and run green against an
// embedded server: offline phones, device reboots and a server restart lose
// nothing and duplicate nothing.
func TestShippedScenariosPass(t *testing.T) {
	files, err := filepath.Glob("../assets/scenarios/*.yaml")
	if err != nil || len(files) < 2 {
		t.Fatalf("example scenarios: %v %v", files, err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			if s, err := scenario.Parse(b); err == nil && s.Server == "process" {
				t.Skip("server: process needs a child openmpns serve: cmd/openmpns/internal/cli's TestShippedProcessScenariosPass runs it")
			}
			out := runScenario(t, string(b))
			for _, r := range out.Results {
				if r.Failed() {
					t.Errorf("phase %s: %s%s", r.Phase, r.Failure, r.Error)
				}
			}
			if out.Report == nil || out.Report.Total() == 0 || out.Report.Duplicates != 0 {
				t.Fatalf("report %+v", out.Report)
			}
		})
	}
}

// A failing expectation fails the run and shows in the JUnit XML with the
// devices that fell short.
func TestFailingExpectationInJUnit(t *testing.T) {
	out := runScenario(t, `
name: too many toasts expected
devices: 5
apps: [a]
phases:
  - connect: {}
  - send: {kind: toast, count: 1}
  - expect: {name: five toasts, toasts: 5, within: 100ms}
  - expect: {name: no duplicates, no_duplicates: true}
`)
	if out.Failed() != 1 || !out.Results[2].Failed() || !strings.Contains(out.Results[2].Failure, "1 toasts, want 5") {
		t.Fatalf("results %+v", out.Results)
	}
	su, x := junitOf(t, out)
	if su.Tests != 4 || su.Failures != 1 || su.Cases[2].Failure == nil || su.Cases[3].Failure != nil || !strings.Contains(su.Cases[2].Name, "five toasts") {
		t.Fatalf("junit:\n%s", x)
	}
}

// junitSuite is the test suite of a run's JUnit XML, as a CI reads it.
type junitSuite struct {
	Tests    int `xml:"tests,attr"`
	Failures int `xml:"failures,attr"`
	Errors   int `xml:"errors,attr"`
	Cases    []struct {
		Name    string        `xml:"name,attr"`
		Failure *junitMessage `xml:"failure"`
		Error   *junitMessage `xml:"error"`
	} `xml:"testcase"`
}

type junitMessage struct {
	Message string `xml:"message,attr"`
}

// junitOf returns the test suite of out's JUnit XML, and the XML.
func junitOf(t *testing.T, out *scenario.Outcome) (junitSuite, string) {
	t.Helper()
	var b bytes.Buffer
	if err := out.WriteJUnit(&b); err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Suites []junitSuite `xml:"testsuite"`
	}
	if err := xml.Unmarshal(b.Bytes(), &doc); err != nil {
		t.Fatalf("%v\n%s", err, b.String())
	}
	return doc.Suites[0], b.String()
}

// breakStateAfter is the Progress of a scenario run: when the line a phase
// ends with (want) is written, it puts a file in the place of device 1's
// state directory, so that its state cannot be saved when the fleet
// closes. Run writes its progress as it goes, so this happens between
// that phase and the next step.
type breakStateAfter struct {
	t     *testing.T
	want  string
	dir   string
	done  bool
	lines bytes.Buffer
}

func (b *breakStateAfter) Write(p []byte) (int, error) {
	b.lines.Write(p)
	if !b.done && strings.Contains(b.lines.String(), b.want) {
		b.done = true
		if err := os.RemoveAll(b.dir); err != nil {
			b.t.Error(err)
		}
		if err := os.WriteFile(b.dir, []byte("not a directory"), 0o600); err != nil {
			b.t.Error(err)
		}
	}
	return len(p), nil
}

// A scenario whose every phase passed but whose devices' state could not
// be saved when the fleet closed did not pass: the outcome says why, and
// the JUnit XML has a test case in error for it. Run dropped Close's
// error, so such a run passed and exited 0 with the state lost.
func TestScenarioFailsWhenStateIsNotSaved(t *testing.T) {
	s, err := scenario.Parse([]byte(`
name: state lost
devices: 3
apps: [a]
phases:
  - connect: {}
`))
	if err != nil {
		t.Fatal(err)
	}
	state := t.TempDir()
	progress := &breakStateAfter{t: t, want: "phase 1: ok", dir: filepath.Join(state, "000001")}
	out, err := scenario.Run(waitCtx(t), s, scenario.Options{Server: startEmbedded(t), StateDir: state, Progress: progress})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("progress:\n%s", progress.lines.String())
	if !progress.done {
		t.Fatal("the connect phase did not pass")
	}
	if out.Failed() != 0 || out.Passed() || !strings.Contains(out.CloseError, "closing 1 device(s) failed") || !strings.Contains(out.CloseError, "device 1:") {
		t.Fatalf("passed %v, %d failed, close error %q; want a failed run naming device 1", out.Passed(), out.Failed(), out.CloseError)
	}
	su, x := junitOf(t, out)
	if su.Tests != 2 || su.Errors != 1 || su.Cases[1].Name != scenario.ClosePhase || su.Cases[1].Error == nil ||
		!strings.Contains(su.Cases[1].Error.Message, "device 1:") {
		t.Fatalf("junit:\n%s", x)
	}
}
