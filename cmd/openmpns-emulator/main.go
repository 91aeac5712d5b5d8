// Command openmpns-emulator is the desktop Windows Phone emulator: a phone
// on the desktop whose live tiles and toasts change when a cloud service
// POSTs to its apps' Channel URIs, with an inspector beside it.
package main

import (
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"

	"fyne.io/fyne/v2/app"

	_ "github.com/openmpns/openmpns/cmd/internal/posixlocale" // before fyne reads LANG

	"github.com/openmpns/openmpns/emulator/shell"
)

func main() {
	var o shell.Options
	flag.StringVar(&o.Server, "server", "", "pair with a running OpenMPNS server (http://HOST:PORT); default: start an embedded one")
	flag.StringVar(&o.StateDir, "state", defaultState(), "directory for the phone's identity, consent, tiles and the embedded server's data")
	flag.StringVar(&o.AppsFile, "apps", "", "apps manifest (JSON); default: the built-in News, Photos, Mail, ... set")
	flag.StringVar(&o.Backend, "backend", "", "base URL of the apps' cloud service (replaces {backend} in the manifest), e.g. http://127.0.0.1:8090 from 'openmpns demo-backend'")
	flag.StringVar(&o.AutoConsent, "auto-consent", "", "answer every notification opt-in prompt: allow or deny (default: ask)")
	flag.Float64Var(&o.TimeScale, "time-scale", 1, "embedded server: divide the 450 s / 900 s batching windows by this")
	flag.DurationVar(&o.FrameStats, "frame-stats", 0, "measure the window's frame cost for this long (after a 5 s warm-up), print it and quit, e.g. 30s")
	level := flag.String("log-level", "warn", "log level: debug, info, warn, error")
	scale := flag.Float64("scale", 0, "draw everything this much larger or smaller, e.g. 1.5 (default: the display's scale)")
	flag.Parse()
	if *scale != 0 {
		if *scale < 0.5 || *scale > 4 {
			fmt.Fprintln(os.Stderr, "openmpns-emulator: --scale must be between 0.5 and 4")
			os.Exit(2)
		}
		// fyne reads its scale from the environment when the app starts;
		// text and tiles are vectors or rescaled images, so it stays sharp.
		os.Setenv("FYNE_SCALE", strconv.FormatFloat(*scale, 'f', -1, 64))
	}
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(*level)); err != nil {
		fmt.Fprintln(os.Stderr, "openmpns-emulator: --log-level:", err)
		os.Exit(2)
	}
	o.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lv}))

	a := app.NewWithID("org.openmpns.emulator")
	ses, err := shell.Start(a, o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "openmpns-emulator:", err)
		os.Exit(1)
	}
	fmt.Printf("openmpns-emulator: server %s, state in %s\n", ses.ServerURL, o.StateDir)
	ses.Window.ShowAndRun()
	if err := ses.Close(); err != nil {
		fmt.Fprintln(os.Stderr, "openmpns-emulator:", err)
		os.Exit(1)
	}
}

func defaultState() string {
	if dir, err := os.UserConfigDir(); err == nil {
		return filepath.Join(dir, "openmpns", "emulator")
	}
	return ".openmpns-emulator"
}
