package cli

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/openmpns/openmpns/cmd/openmpns/internal/demobackend"
	"github.com/openmpns/openmpns/shared/sender"
)

// demoImages is the image set the demo backend serves; set by images.go.
var demoImages fs.FS

func runDemoBackend(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "demo-backend", "[--listen ADDR] [--interval D]")
	listen := fs.String("listen", "127.0.0.1:8090", "address to listen on (apps POST their Channel URIs to /handoff/news, /handoff/photos, /handoff/mail)")
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
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	b := &demobackend.Backend{Base: "http://" + ln.Addr().String(), Sender: &sender.Client{}, Log: log, Out: e.stdout, Images: demoImages}
	if *images != "" {
		b.Images = os.DirFS(*images)
	}
	hs := &http.Server{Handler: b.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go hs.Serve(ln)
	fmt.Fprintf(e.stdout, "demo backend on %s: waiting for Channel URI handoffs, pushing every %v\n", b.Base, *interval)
	b.Run(ctx, *interval)
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
