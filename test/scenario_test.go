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
	var b bytes.Buffer
	if err := out.WriteJUnit(&b); err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Suites []struct {
			Tests    int `xml:"tests,attr"`
			Failures int `xml:"failures,attr"`
			Cases    []struct {
				Name    string `xml:"name,attr"`
				Failure *struct {
					Message string `xml:"message,attr"`
				} `xml:"failure"`
			} `xml:"testcase"`
		} `xml:"testsuite"`
	}
	if err := xml.Unmarshal(b.Bytes(), &doc); err != nil {
		t.Fatalf("%v\n%s", err, b.String())
	}
	su := doc.Suites[0]
	if su.Tests != 4 || su.Failures != 1 || su.Cases[2].Failure == nil || su.Cases[3].Failure != nil || !strings.Contains(su.Cases[2].Name, "five toasts") {
		t.Fatalf("junit:\n%s", b.String())
	}
}
