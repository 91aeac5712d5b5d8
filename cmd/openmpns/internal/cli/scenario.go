package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"

	"github.com/openmpns/openmpns/device/fleet/scenario"
)

// runScenario runs a scenario file; it fails when any phase fails.
func runScenario(ctx context.Context, e *env, file, server, state, junit, report string, log *slog.Logger) error {
	b, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	s, err := scenario.Parse(b)
	if err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	if server != "" {
		s.Server = server
	}
	data, err := os.MkdirTemp("", "openmpns-scenario-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(data)
	out, err := scenario.Run(ctx, s, scenario.Options{DataDir: data, StateDir: state, Logger: log, Progress: e.stderr})
	if err != nil {
		return err
	}
	for _, r := range out.Results {
		mark := "PASS"
		if r.Failed() {
			mark = "FAIL"
		}
		fmt.Fprintf(e.stdout, "%s  %s", mark, r.Phase)
		if r.Failed() {
			fmt.Fprintf(e.stdout, ": %s%s", r.Failure, r.Error)
		}
		fmt.Fprintln(e.stdout)
	}
	if out.Report != nil {
		out.Report.WriteTable(e.stdout)
	}
	if junit != "" {
		f, err := os.Create(junit)
		if err != nil {
			return fmt.Errorf("--junit: %w", err)
		}
		werr := out.WriteJUnit(f)
		if cerr := f.Close(); werr == nil {
			werr = cerr
		}
		if werr != nil {
			return fmt.Errorf("--junit: %w", werr)
		}
	}
	if report != "" && out.Report != nil {
		b, _ := json.MarshalIndent(out.Report, "", "  ")
		if err := os.WriteFile(report, append(b, '\n'), 0o644); err != nil {
			return fmt.Errorf("--report: %w", err)
		}
	}
	if n := out.Failed(); n > 0 {
		return fmt.Errorf("scenario %q: %d of %d phases failed", s.Name, n, len(out.Results))
	}
	fmt.Fprintf(e.stderr, "scenario %q: all %d phases passed\n", s.Name, len(out.Results))
	return nil
}
