package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/app"

	"github.com/openmpns/openmpns/emulator/tile"
	"github.com/openmpns/openmpns/emulator/ui/tileview"
)

// run is the program: it parses args, starts the emulator, shows its window
// until the user closes it, and stops it. It returns the exit code: 0, 1
// when the emulator failed, 2 for bad flags.
func run(args []string, stdout, stderr io.Writer) int {
	o, scale, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "openmpns-emulator:", err)
		return 2
	}
	if scale != 0 {
		// fyne reads its scale from the environment when the app starts;
		// text and tiles are vectors or rescaled images, so it stays sharp.
		os.Setenv("FYNE_SCALE", strconv.FormatFloat(scale, 'f', -1, 64))
	}
	o.FrameStatsOut = stdout
	a := app.NewWithID("org.openmpns.emulator")
	// fyne's GL driver knows each object's canvas and its pixels (the
	// framebuffer's scale included): tiles hand it their images at those
	// pixels, so that it never scales them itself (tileview.PixelScale).
	tileview.PixelScale = func(obj fyne.CanvasObject) float32 {
		c := a.Driver().CanvasForObject(obj)
		if c == nil {
			return 0
		}
		x, _ := c.PixelCoordinateForPosition(fyne.NewPos(1000, 0))
		return float32(x) / 1000
	}
	ses, err := start(a, o)
	if err != nil {
		fmt.Fprintln(stderr, "openmpns-emulator:", err)
		return 1
	}
	fmt.Fprintf(stdout, "openmpns-emulator: server %s, %d phone(s), state in %s\n", ses.ServerURL, len(ses.Phones), o.StateDir)
	ses.Window.ShowAndRun()
	if err := ses.Close(); err != nil {
		fmt.Fprintln(stderr, "openmpns-emulator:", err)
		return 1
	}
	return 0
}

// parseFlags reads the command line into options, and the --scale factor
// (0: the display's).
func parseFlags(args []string, stderr io.Writer) (options, float64, error) {
	var o options
	fs := flag.NewFlagSet("openmpns-emulator", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.Server, "server", "", "pair with a running OpenMPNS server (http://HOST:PORT), or the nodes of a cluster (URL1,URL2,...: phone i starts on the i-th); default: start an embedded one")
	fs.StringVar(&o.Listen, "listen", "", "address of the embedded server, e.g. 127.0.0.1:8091 (what 'openmpns demo-backend --push-server' must name); default: the one it had last time, else a free loopback port")
	fs.IntVar(&o.Phones, "phones", 1, fmt.Sprintf("how many phones the window shows, side by side (1 to %d); each is a whole device with its own identity and state; \"add phone\" in the window adds more", MaxPhones))
	fs.StringVar(&o.StateDir, "state", defaultState(), "directory for the phone's identity, consent, tiles and the embedded server's data")
	fs.StringVar(&o.AppsFile, "apps", "", "apps manifest (JSON); default: the built-in News, Photos, Mail, ... set")
	fs.StringVar(&o.Backend, "backend", "", "base URL of the apps' cloud service (replaces {backend} in the manifest), e.g. http://127.0.0.1:8090 from 'openmpns demo-backend'")
	fs.StringVar(&o.Profile, "profile", "", "the phone's screen: wvga (480x800), wxga (768x1280), 720p (720x1280) or 1080p (1080x1920, six columns); default: the one chosen last time in Settings, else wvga")
	fs.StringVar(&o.AutoConsent, "auto-consent", "", "answer every notification opt-in prompt: allow or deny (default: ask)")
	fs.Float64Var(&o.TimeScale, "time-scale", 1, "embedded server: divide the 450 s / 900 s batching windows by this")
	fs.DurationVar(&o.FrameStats, "frame-stats", 0, "measure the window's frame cost for this long (after a 5 s warm-up), print it and quit, e.g. 30s")
	level := fs.String("log-level", "warn", "log level: debug, info, warn, error")
	scale := fs.Float64("scale", 0, "draw everything this much larger or smaller, e.g. 1.5 (default: the display's scale)")
	if err := fs.Parse(args); err != nil {
		return o, 0, err
	}
	if fs.NArg() > 0 {
		return o, 0, fmt.Errorf("unexpected argument %q (flags only; see -h)", fs.Arg(0))
	}
	if o.Listen != "" && o.Server != "" {
		return o, 0, errors.New("--listen is the embedded server's address: leave it out with --server")
	}
	if *scale != 0 && (*scale < 0.5 || *scale > 4) {
		return o, 0, fmt.Errorf("--scale %v: must be between 0.5 and 4", *scale)
	}
	if o.Phones < 1 || o.Phones > MaxPhones {
		return o, 0, fmt.Errorf("--phones %d: want 1 to %d", o.Phones, MaxPhones)
	}
	if o.Profile != "" {
		if _, err := tile.LookupProfile(o.Profile); err != nil {
			return o, 0, fmt.Errorf("--profile: %w", err)
		}
	}
	switch o.AutoConsent {
	case "", "allow", "deny":
	default:
		return o, 0, fmt.Errorf("--auto-consent %q: want allow or deny", o.AutoConsent)
	}
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(*level)); err != nil {
		return o, 0, fmt.Errorf("--log-level: %w", err)
	}
	o.Logger = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: lv}))
	return o, *scale, nil
}

func defaultState() string {
	if dir, err := os.UserConfigDir(); err == nil {
		return filepath.Join(dir, "openmpns", "emulator")
	}
	return ".openmpns-emulator"
}
