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
	"slices"
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
		{"identity", "revoke device identities: revoke one device, rotate-key for all of them", runIdentity},
		{"fleet", "run many headless devices for QA and load tests, with progress and a report", runFleet},
		{"load", "send notifications to the channels of a channels file (or of a fleet) at a rate or concurrency", runLoad},
		{"render", "render a toast or tile payload to a PNG, as the emulator draws it", runRender},
		{"demo-backend", "a demo cloud service: takes Channel URI handoffs and pushes news, photo and mail notifications", runDemoBackend},
		{"demo", "show the whole path in the terminal: server, phone and cloud service", runDemo},
		{"version", "print the version of this program", runVersion},
	}
}

// errUsage marks an error already explained by the flag package.
var errUsage = errors.New("usage")

// usageError is a usage error that Run prints (exit 2), for mistakes found
// after the flags parsed: an invalid scenario file, flags that do not go
// together.
type usageError struct{ err error }

func (u *usageError) Error() string { return u.err.Error() }
func (u *usageError) Unwrap() error { return u.err }

// badUsage returns a usageError with a formatted message.
func badUsage(format string, a ...any) error { return &usageError{fmt.Errorf(format, a...)} }

// Run runs the command line args and returns the exit code: 0 on success, 1
// on failure, 2 on a usage error.
func Run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// A second Ctrl-C stops the program at once, while the orderly stop
	// the first one began is still under way.
	context.AfterFunc(ctx, stop)
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
	if args[0] == "--version" || args[0] == "-version" {
		args = []string{"version"}
	}
	for _, c := range commands() {
		if c.name != args[0] {
			continue
		}
		err := c.run(ctx, e, args[1:])
		var ue *usageError
		switch {
		case err == nil, errors.Is(err, flag.ErrHelp):
			return 0
		case errors.Is(err, errUsage):
			return 2
		case errors.As(err, &ue):
			fmt.Fprintf(stderr, "openmpns %s: %s\n", c.name, trimPrefix(ue.Error(), c.name))
			return 2
		}
		fmt.Fprintf(stderr, "openmpns %s: %s\n", c.name, trimPrefix(err.Error(), c.name))
		return 1
	}
	fmt.Fprintf(stderr, "openmpns: unknown command %q\n\n", args[0])
	usage(stderr)
	return 2
}

// trimPrefix drops a leading "name: " (or "name: name: ") from an error
// message that Run prefixes with "openmpns name: " anyway: errors from the
// packages a command uses carry the package's name, often the command's.
func trimPrefix(msg, name string) string {
	for _, p := range []string{name + ": ", "openmpns " + name + ": "} {
		for strings.HasPrefix(msg, p) {
			msg = strings.TrimPrefix(msg, p)
		}
	}
	return msg
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "OpenMPNS: the Microsoft Push Notification Service, brought back.")
	fmt.Fprintln(w, "\nUsage: openmpns <command> [flags]   (openmpns <command> --help for its flags)")
	fmt.Fprintln(w, "       openmpns --version")
	fmt.Fprintln(w, "\nCommands:")
	width := 0
	for _, c := range commands() {
		width = max(width, len(c.name))
	}
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-*s  %s\n", width, c.name, c.summary)
	}
}

// internalFlag starts the usage text of a flag that only the program itself
// passes (to its worker processes): such flags are left out of --help.
const internalFlag = "internal: "

// newFlags returns a flag set that prints a usage text with the command's
// synopsis to stderr and returns errors instead of exiting. Flags whose
// usage starts with internalFlag are not shown.
func newFlags(e *env, name, synopsis string) *flag.FlagSet {
	fs := flag.NewFlagSet("openmpns "+name, flag.ContinueOnError)
	fs.SetOutput(&usageOutput{stdout: e.stdout, stderr: e.stderr})
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: openmpns %s %s\n\nFlags:\n", name, synopsis)
		printFlags(fs)
	}
	return fs
}

// usageOutput is a flag set's output: stderr for usage errors, stdout once
// the user asked for --help, so that the whole help (synopsis, flags and
// examples) goes to one stream, the one a pager reads.
type usageOutput struct {
	stdout, stderr io.Writer
	help           bool
}

func (u *usageOutput) Write(p []byte) (int, error) {
	if u.help {
		return u.stdout.Write(p)
	}
	return u.stderr.Write(p)
}

// isHelp reports whether arg asks for help.
func isHelp(arg string) bool { return arg == "-h" || arg == "-help" || arg == "--help" || arg == "--h" }

// wantsHelp reports whether args ask for help before any word that ends
// the flags.
func wantsHelp(args []string) bool {
	for _, a := range args {
		if a == "--" || !strings.HasPrefix(a, "-") {
			return false
		}
		if isHelp(a) {
			return true
		}
	}
	return false
}

// printFlags is fs.PrintDefaults without the internal flags.
func printFlags(fs *flag.FlagSet) {
	shown := flag.NewFlagSet(fs.Name(), flag.ContinueOnError)
	shown.SetOutput(fs.Output())
	fs.VisitAll(func(f *flag.Flag) {
		if !strings.HasPrefix(f.Usage, internalFlag) {
			shown.Var(f.Value, f.Name, f.Usage)
			shown.Lookup(f.Name).DefValue = f.DefValue // not the value parsed so far
		}
	})
	shown.PrintDefaults()
}

// takesOperands names the commands whose words after the flags are
// operands they read themselves (fs.Args); every other command refuses
// stray words.
var takesOperands = map[string]bool{"openmpns service": true, "openmpns identity": true}

// verb is one verb of a command of verbs, with the names of its operands.
type verb struct {
	name     string
	operands []string // such as NAME, KEY.pem
}

// parseVerb reads a command of verbs (openmpns service, openmpns identity):
// its flags, anywhere, and its words, the first of which is the verb, one
// of verbs; the others are its operands. What is wrong (no verb, an
// unknown one, an operand missing or one too many) is a usage error that
// says so, then gives the synopsis; --help is flag.ErrHelp, after the help.
func parseVerb(e *env, fs *flag.FlagSet, synopsis string, verbs []verb, args []string) (name string, operands []string, err error) {
	var words []string
	for rest := args; ; rest = rest[1:] {
		if err := parse(fs, rest); err != nil {
			return "", nil, err
		}
		if rest = fs.Args(); len(rest) == 0 {
			break
		}
		words = append(words, rest[0])
	}
	var names []string
	for _, v := range verbs {
		names = append(names, v.name)
	}
	want := strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
	refuse := func(format string, a ...any) (string, []string, error) {
		fmt.Fprintf(e.stderr, "%s: %s\nusage: %s %s\n", fs.Name(), fmt.Sprintf(format, a...), fs.Name(), synopsis)
		return "", nil, errUsage
	}
	if len(words) == 0 {
		return refuse("no verb: want %s", want)
	}
	name, operands = words[0], words[1:]
	i := slices.IndexFunc(verbs, func(v verb) bool { return v.name == name })
	if i < 0 {
		return refuse("unknown verb %q: want %s", name, want)
	}
	v := verbs[i]
	switch {
	case len(operands) < len(v.operands):
		return refuse("%s needs %s", name, strings.Join(v.operands[len(operands):], " and "))
	case len(operands) > len(v.operands) && len(v.operands) == 0:
		return refuse("%s takes no operand: unexpected %q", name, operands[0])
	case len(operands) > len(v.operands):
		return refuse("%s takes %s only: unexpected %q", name, strings.Join(v.operands, " and "), operands[len(v.operands)])
	}
	return name, operands, nil
}

// parse parses flags; a usage error has been printed when it returns
// errUsage. A word that is not a flag is refused (unless the command takes
// operands): the flag package stops at it, so the flags after it would be
// silently dropped.
func parse(fs *flag.FlagSet, args []string) error {
	if u, ok := fs.Output().(*usageOutput); ok && wantsHelp(args) {
		u.help = true
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	if fs.NArg() > 0 && !takesOperands[fs.Name()] {
		fmt.Fprintf(fs.Output(), "%s: unexpected argument %q: every value belongs to a flag (--name value); quote values that have spaces\n", fs.Name(), fs.Arg(0))
		fs.Usage()
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
