package scenario_test

import (
	"bytes"
	"context"
	"encoding/xml"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/openmpns/openmpns/device/fleet/scenario"
)

func run(t *testing.T, src string) *scenario.Outcome {
	t.Helper()
	s, err := scenario.Parse([]byte(src))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var progress bytes.Buffer
	out, err := scenario.Run(ctx, s, scenario.Options{DataDir: t.TempDir(), StateDir: t.TempDir(), Progress: &progress})
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
	files, err := filepath.Glob("../../../assets/scenarios/*.yaml")
	if err != nil || len(files) < 2 {
		t.Fatalf("example scenarios: %v %v", files, err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			out := run(t, string(b))
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
	out := run(t, `
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

func TestParseErrors(t *testing.T) {
	for _, bad := range []string{
		``,
		`devices: 0`,
		"devices: 1\napps: [a]",
		"devices: 1\napps: [a]\nphases: [{send: {kind: toast, count: 1}}]",
		"devices: 1\napps: [a]\nphases: [{connect: {}}, {connect: {}}]",
		"devices: 1\napps: [a]\nphases: [{connect: {}, wait: 1s}]",
		"devices: 1\napps: [a]\nphases: [{connect: {}}, {send: {kind: mail, count: 1}}]",
		"devices: 1\napps: [a]\nphases: [{connect: {}}, {send: {kind: toast, count: 1, app: b}}]",
		"devices: 1\napps: [a]\nphases: [{connect: {}}, {expect: {}}]",
		"devices: 1\napps: [a]\nphases: [{connect: {}}, {expect: {toasts: 1, devices: some}}]",
		"devices: 1\napps: [a]\nopt_out: 120%\nphases: [{connect: {}}]",
		"devices: 1\napps: [a]\nphases: [{connect: {within: soon}}]",
		"devices: 1\napps: [a]\nbogus: 1\nphases: [{connect: {}}]",
		"server: http://x\ndevices: 1\napps: [a]\nphases: [{connect: {}}, {restart: {server: true}}]",
	} {
		if _, err := scenario.Parse([]byte(bad)); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
}

func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("../../../assets/scenarios/*.yaml")
	for _, p := range files {
		b, _ := os.ReadFile(p)
		f.Add(b)
	}
	f.Add([]byte("devices: 1\napps: [a]\nphases: [{connect: {}}]"))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := scenario.Parse(b)
		if err == nil && (s.Devices <= 0 || len(s.Apps) == 0 || s.Phases[0].Connect == nil) {
			t.Fatalf("accepted an invalid scenario: %+v", s)
		}
	})
}
