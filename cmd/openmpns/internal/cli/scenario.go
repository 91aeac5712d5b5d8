package cli

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/openmpns/openmpns/device/fleet/scenario"
	"github.com/openmpns/openmpns/server"
)

// scenarioRun is what a scenario run writes besides its table.
type scenarioRun struct {
	file, serverURL, state    string
	junit, report, htmlReport string
}

// runScenario runs a scenario file; it fails when any phase fails (exit 1),
// and an unreadable or invalid file is a usage error (exit 2).
func runScenario(ctx context.Context, e *env, o scenarioRun, log *slog.Logger) error {
	b, err := os.ReadFile(o.file)
	if err != nil {
		return &usageError{fmt.Errorf("--scenario: %w", err)}
	}
	s, err := scenario.Parse(b)
	if err != nil {
		return &usageError{fmt.Errorf("%s: %w", o.file, err)}
	}
	if o.serverURL != "" {
		s.Server = o.serverURL
	}
	// The outputs are created first: a path that cannot be written is
	// found now, not at the end of the run.
	var outs [3]*outputFile
	for i, f := range []struct{ flag, path string }{{"--junit", o.junit}, {"--report", o.report}, {"--report-html", o.htmlReport}} {
		if outs[i], err = createOutput(f.flag, f.path); err != nil {
			return err
		}
		defer outs[i].discard()
	}
	junit, report, htmlReport := outs[0], outs[1], outs[2]
	opt := scenario.Options{StateDir: o.state, Logger: log, Progress: e.stderr, SampleEvery: 250 * time.Millisecond}
	if s.Server == "embedded" || s.Server == "process" {
		data, err := os.MkdirTemp("", "openmpns-scenario-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(data)
		var srv interface {
			scenario.Server
			Close() error
		}
		if s.Server == "embedded" {
			srv, err = startEmbedded(server.Config{Listen: "127.0.0.1:0", DataDir: data, Logger: log})
		} else {
			srv, err = startServeProcess(ctx, data, e.stderr)
		}
		if err != nil {
			return err
		}
		defer srv.Close()
		fmt.Fprintf(e.stderr, "scenario %q: %s server on %s\n", s.Name, s.Server, srv.URL())
		opt.Server = srv
	}
	out, err := scenario.Run(ctx, s, opt)
	if err != nil {
		return err
	}
	for _, r := range out.Results {
		fmt.Fprintf(e.stdout, "%-4s  %s", r.Verdict(), r.Phase)
		switch {
		case r.Failed():
			fmt.Fprintf(e.stdout, ": %s%s", r.Failure, r.Error)
		case r.Skipped != "":
			fmt.Fprintf(e.stdout, " (%s)", r.Skipped)
		}
		fmt.Fprintln(e.stdout)
	}
	if out.CloseError != "" {
		fmt.Fprintf(e.stdout, "%-4s  %s: %s\n", "ERROR", scenario.ClosePhase, out.CloseError)
	}
	if out.Report != nil {
		out.Report.WriteTable(e.stdout)
	}
	var errs []error
	if junit != nil {
		var b bytes.Buffer
		if err := out.WriteJUnit(&b); err != nil {
			junit.discard()
			errs = append(errs, fmt.Errorf("--junit: %w", err))
		} else {
			errs = append(errs, reportWritten(e, "scenario "+strconv.Quote(s.Name), junit, junit.commit(b.Bytes())))
		}
	}
	if report != nil && out.Report != nil {
		errs = append(errs, writeJSONReport(e, "scenario "+strconv.Quote(s.Name), report, out.Report))
	}
	if htmlReport != nil {
		errs = append(errs, reportWritten(e, "scenario "+strconv.Quote(s.Name), htmlReport, writeScenarioHTML(htmlReport, o.file, out)))
	}
	if !out.Passed() {
		errs = append([]error{fmt.Errorf("scenario %q: %s", s.Name, verdictLine(out))}, errs...)
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	fmt.Fprintf(e.stderr, "scenario %q: all %d phases passed\n", s.Name, len(out.Results))
	return nil
}

// verdictLine says in one line why a run did not pass: how many of its
// phases failed or did not run, and whether it was interrupted.
func verdictLine(out *scenario.Outcome) string {
	failed, skipped := out.Failed(), out.Skipped()
	if failed == 0 && skipped == 0 && out.CloseError != "" {
		return fmt.Sprintf("every phase passed, but the devices' state was not all saved: %s", out.CloseError)
	}
	var why []string
	if failed > 0 {
		why = append(why, fmt.Sprintf("%d failed", failed))
	}
	if skipped > 0 {
		why = append(why, fmt.Sprintf("%d not run", skipped))
	}
	msg := fmt.Sprintf("%d of %d phases did not pass (%s)", failed+skipped, len(out.Results), strings.Join(why, ", "))
	if out.CloseError != "" {
		msg += "; the devices' state was not all saved: " + out.CloseError
	}
	if out.Interrupted {
		msg = "interrupted (Ctrl-C or SIGTERM): " + msg
	}
	return msg
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

// serveProcess is the server of a scenario that says server: process: a
// child `openmpns serve` on a temporary data directory, restarted by a
// restart phase on the same address, with SIGTERM (an orderly stop) or,
// with kill, SIGKILL (a crash).
type serveProcess struct {
	exe, data, addr string
	stderr          io.Writer
	cmd             *exec.Cmd
	exited          chan struct{}
}

var _ scenario.Killer = (*serveProcess)(nil)

// startServeProcess starts `openmpns serve` (this program, or the one
// OPENMPNS_FLEET_EXE names) on a loopback port and data.
func startServeProcess(ctx context.Context, data string, stderr io.Writer) (*serveProcess, error) {
	exe := os.Getenv(workerEnv)
	if exe == "" {
		var err error
		if exe, err = os.Executable(); err != nil {
			return nil, fmt.Errorf("finding this program to run the server: %w", err)
		}
	}
	p := &serveProcess{exe: exe, data: data, stderr: stderr}
	if err := p.start(ctx, "127.0.0.1:0"); err != nil {
		return nil, err
	}
	return p, nil
}

// start runs the server on listen and waits until it listens.
func (p *serveProcess) start(ctx context.Context, listen string) error {
	cmd := exec.Command(p.exe, "serve", "--listen", listen, "--data", p.data, "--log-level", "warn")
	cmd.Stderr = p.stderr
	dieWithParent(cmd)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting openmpns serve: %w", err)
	}
	addr := make(chan string, 1)
	exited := make(chan struct{})
	go func() {
		defer close(exited)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if rest, ok := strings.CutPrefix(sc.Text(), "openmpns server on "); ok {
				if f := strings.Fields(rest); len(f) > 0 {
					select {
					case addr <- f[0]:
					default:
					}
				}
			}
		}
		cmd.Wait()
	}()
	t := time.NewTimer(30 * time.Second)
	defer t.Stop()
	select {
	case a := <-addr:
		p.cmd, p.exited, p.addr = cmd, exited, a
		return nil
	case <-exited:
		return fmt.Errorf("openmpns serve --listen %s exited: %v", listen, cmd.ProcessState)
	case <-t.C:
	case <-ctx.Done():
	}
	cmd.Process.Kill()
	<-exited
	return fmt.Errorf("openmpns serve --listen %s did not start listening", listen)
}

// URL is the server's base URL.
func (p *serveProcess) URL() string { return "http://" + p.addr }

// stop signals the server and waits for it to exit (killing it after 30 s).
// Where the signal cannot be sent (Windows has no SIGTERM) the server is
// killed, as in a crash, which loses nothing it answered Received for.
func (p *serveProcess) stop(sig os.Signal) error {
	if err := p.cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		if kerr := p.cmd.Process.Kill(); kerr != nil && !errors.Is(kerr, os.ErrProcessDone) {
			return fmt.Errorf("stop openmpns serve: %w", errors.Join(err, kerr))
		}
	}
	t := time.NewTimer(30 * time.Second)
	defer t.Stop()
	select {
	case <-p.exited:
	case <-t.C:
		p.cmd.Process.Kill()
		<-p.exited
	}
	return nil
}

// Restart stops the server with SIGTERM and starts it again.
func (p *serveProcess) Restart(ctx context.Context) error {
	if err := p.stop(syscall.SIGTERM); err != nil {
		return err
	}
	return p.start(ctx, p.addr)
}

// Kill ends the server with SIGKILL, as a crash would, and starts it again.
func (p *serveProcess) Kill(ctx context.Context) error {
	if err := p.stop(syscall.SIGKILL); err != nil {
		return err
	}
	return p.start(ctx, p.addr)
}

// Close stops the server.
func (p *serveProcess) Close() error { return p.stop(syscall.SIGTERM) }
