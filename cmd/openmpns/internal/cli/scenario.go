package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"

	"github.com/openmpns/openmpns/device/fleet/scenario"
	"github.com/openmpns/openmpns/server"
)

// runScenario runs a scenario file; it fails when any phase fails.
func runScenario(ctx context.Context, e *env, file, serverURL, state, junit, report string, log *slog.Logger) error {
	b, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	s, err := scenario.Parse(b)
	if err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	if serverURL != "" {
		s.Server = serverURL
	}
	opt := scenario.Options{StateDir: state, Logger: log, Progress: e.stderr}
	if s.Server == "embedded" {
		data, err := os.MkdirTemp("", "openmpns-scenario-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(data)
		srv, err := startEmbedded(server.Config{Listen: "127.0.0.1:0", DataDir: data, Logger: log})
		if err != nil {
			return err
		}
		defer srv.Close()
		opt.Embedded = srv
	}
	out, err := scenario.Run(ctx, s, opt)
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

// embeddedServer is the server of a scenario that says server: embedded:
// in this process, on a temporary data directory, restarted by a restart
// phase on the same address.
type embeddedServer struct {
	cfg server.Config
	srv *server.Server
}

var _ scenario.Server = (*embeddedServer)(nil)

// startEmbedded starts a server with cfg; its restarts keep the address it
// got.
func startEmbedded(cfg server.Config) (*embeddedServer, error) {
	e := &embeddedServer{cfg: cfg}
	if err := e.start(); err != nil {
		return nil, err
	}
	e.cfg.Listen = e.srv.Addr()
	return e, nil
}

func (e *embeddedServer) start() error {
	srv, err := server.New(e.cfg)
	if err != nil {
		return fmt.Errorf("embedded server: %w", err)
	}
	if err := srv.Start(); err != nil {
		return fmt.Errorf("embedded server: %w", err)
	}
	e.srv = srv
	return nil
}

// URL is the server's base URL.
func (e *embeddedServer) URL() string { return e.srv.URL() }

// Restart closes the server and starts it again on the same address and
// data directory. An error from the close (a drain cut short by the grace
// period) does not stop the restart: whatever is wrong with the data shows
// when the server opens it again.
func (e *embeddedServer) Restart(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	e.srv.Close()
	return e.start()
}

// Close stops the server.
func (e *embeddedServer) Close() error { return e.srv.Close() }
