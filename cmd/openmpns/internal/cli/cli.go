// Package cli implements the openmpns subcommands. Run is the whole program,
// so tests drive it as a user would.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

// command is one subcommand.
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, env *env, args []string) error
}

// env is what a command may touch.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
}

func commands() []command {
	return []command{
		{"serve", "run the push server (HTTP push API and device gateway)", runServe},
		{"device", "run one headless device app and print its events as JSON lines", runDevice},
		{"send", "send a toast, tile or raw notification to a Channel URI", runSend},
		{"service", "register authenticated senders: add, list, remove, rotate-secret, add-key, remove-key", runService},
		{"fleet", "run many headless devices for QA and load tests, with progress and a report", runFleet},
		{"load", "send notifications to the channels of a channels file (or of a fleet) at a rate or concurrency", runLoad},
		{"render", "render a toast or tile payload to a PNG, as the emulator draws it", runRender},
		{"demo-backend", "a demo cloud service: takes Channel URI handoffs and pushes news, photo and mail notifications", runDemoBackend},
		{"demo", "show the whole path in the terminal: server, phone and cloud service", runDemo},
	}
}

// errUsage marks an error already explained by the flag package.
var errUsage = errors.New("usage")

// Run runs the command line args and returns the exit code: 0 on success, 1
// on failure, 2 on a usage error.
func Run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return RunContext(ctx, args, stdin, stdout, stderr)
}

// RunContext is Run with a context that ends the command when cancelled.
func RunContext(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	e := &env{stdin: stdin, stdout: stdout, stderr: stderr}
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" || args[0] == "-help" {
		usage(stdout)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	for _, c := range commands() {
		if c.name != args[0] {
			continue
		}
		err := c.run(ctx, e, args[1:])
		switch {
		case err == nil, errors.Is(err, flag.ErrHelp):
			return 0
		case errors.Is(err, errUsage):
			return 2
		}
		fmt.Fprintf(stderr, "openmpns %s: %v\n", c.name, err)
		return 1
	}
	fmt.Fprintf(stderr, "openmpns: unknown command %q\n\n", args[0])
	usage(stderr)
	return 2
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "OpenMPNS: the Microsoft Push Notification Service, brought back.")
	fmt.Fprintln(w, "\nUsage: openmpns <command> [flags]   (openmpns <command> --help for its flags)")
	fmt.Fprintln(w, "\nCommands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-8s %s\n", c.name, c.summary)
	}
}

// newFlags returns a flag set that prints a usage text with the command's
// synopsis to stderr and returns errors instead of exiting.
func newFlags(e *env, name, synopsis string) *flag.FlagSet {
	fs := flag.NewFlagSet("openmpns "+name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: openmpns %s %s\n\nFlags:\n", name, synopsis)
		fs.PrintDefaults()
	}
	return fs
}

// parse parses flags; a usage error has been printed when it returns errUsage.
func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	return nil
}

// newLogger makes the structured logger of a long-running command.
func newLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch strings.ToLower(format) {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: want text or json", format)
}
