package cli

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/openmpns/openmpns/cmd/openmpns/internal/demobackend"
	"github.com/openmpns/openmpns/emulator/apps"
	"github.com/openmpns/openmpns/server"
	"github.com/openmpns/openmpns/shared/sender"
)

// demoImages is the image set the demo backend serves; set by images.go.
var demoImages fs.FS

func runDemoBackend(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "demo-backend", "[--listen ADDR] [--push-server URL[,URL...]] [--apps FILE] [--max-registrations N] [--interval D]")
	listen := fs.String("listen", "127.0.0.1:8090", "address to listen on (apps POST their Channel URIs to /handoff/news, /handoff/photos, /handoff/mail)")
	pushServers := fs.String("push-server", "http://"+server.DefaultListen, "origin of the push server the phones use (comma-separated for a cluster's nodes): only Channel URIs with this scheme, host and port are taken; 'make demo' passes the emulator's embedded server")
	appsFile := fs.String("apps", "", "apps manifest whose handoff_secret each app's handoff must carry (default: the built-in News, Photos, Mail set)")
	maxRegs := fs.Int("max-registrations", demobackend.DefaultMaxRegistrations, "most (device, app) registrations held; more handoffs are refused with 503")
	interval := fs.Duration("interval", 5*time.Second, "time between rounds of notifications")
	images := fs.String("images", "", "directory of images to serve under /images/ (default: the built-in demo images)")
	logLevel := fs.String("log-level", "warn", "log level on stderr: debug, info, warn, error")
	if err := parse(fs, args); err != nil {
		return err
	}
	log, err := newLogger(e.stderr, *logLevel, "text")
	if err != nil {
		return &usageError{err}
	}
	var origins []string
	for _, s := range strings.Split(*pushServers, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		o, err := demobackend.ParseOrigin(s)
		if err != nil {
			return badUsage("--push-server: %v", err)
		}
		origins = append(origins, o)
	}
	if len(origins) == 0 {
		return badUsage("--push-server: name the push server the phones use, e.g. http://127.0.0.1:8080")
	}
	if *maxRegs < 1 {
		return badUsage("--max-registrations %d: want at least 1", *maxRegs)
	}
	if *interval <= 0 {
		return badUsage("--interval %v: want a positive time between rounds, such as 5s", *interval)
	}
	if *images != "" {
		if st, err := os.Stat(*images); err != nil {
			return badUsage("--images: %w", err)
		} else if !st.IsDir() {
			return badUsage("--images %s: not a directory", *images)
		}
	}
	var man *apps.Manifest
	if *appsFile != "" {
		man, err = apps.Load(*appsFile)
	} else {
		man, err = apps.Default()
	}
	if err != nil {
		return fmt.Errorf("--apps: %w", err)
	}
	secrets := map[string]string{}
	for _, a := range man.Apps {
		if a.HandoffSecret != "" {
			secrets[a.ID] = a.HandoffSecret
		}
	}
	if len(secrets) == 0 {
		return badUsage("--apps: no app in the manifest has a handoff_secret, so every handoff would be refused")
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	b := &demobackend.Backend{Base: "http://" + ln.Addr().String(), Sender: &sender.Client{}, Log: log, Out: e.stdout, Images: demoImages,
		PushServers: origins, Secrets: secrets, MaxRegistrations: *maxRegs}
	if *images != "" {
		b.Images = os.DirFS(*images)
	}
	hs := &http.Server{Handler: b.Handler(), ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
		IdleTimeout: 120 * time.Second, MaxHeaderBytes: 16 << 10}
	go hs.Serve(ln)
	fmt.Fprintf(e.stdout, "demo backend on %s: waiting for Channel URI handoffs of %s, pushing every %v\n", b.Base, strings.Join(origins, ", "), *interval)
	b.Run(ctx, *interval)
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
