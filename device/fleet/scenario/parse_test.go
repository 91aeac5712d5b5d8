package scenario_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/openmpns/openmpns/device/fleet/scenario"
)

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
