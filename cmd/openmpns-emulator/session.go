package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"

	"github.com/openmpns/openmpns/emulator/apps"
	"github.com/openmpns/openmpns/emulator/images"
	"github.com/openmpns/openmpns/emulator/phone"
	"github.com/openmpns/openmpns/emulator/shell"
	"github.com/openmpns/openmpns/server"
)

// options are the emulator's command-line choices.
type options struct {
	// Server pairs with a running server (http://host:port), or with the
	// nodes of a cluster (several URLs, comma-separated: phone i's first
	// node is the i-th, the others its fallbacks); "" starts an embedded
	// server on a loopback port.
	Server string
	// Listen is the embedded server's address; "" uses the one it had last
	// time, or a free loopback port. The demo backend must know it, to take
	// only this server's Channel URIs (make demo passes both).
	Listen string
	// Phones is how many phones the window shows at start (1 when 0).
	Phones int
	// StateDir keeps the phone (identity, consent, tiles) and the embedded
	// server's data.
	StateDir string
	// AppsFile is a manifest of apps; "" uses the built-in example set.
	AppsFile string
	// Backend is the demo backend's base URL that {backend} in the manifest
	// stands for; "" leaves such apps without a handoff.
	Backend string
	// Profile is the phone's screen (a tile.Profile name); "" keeps the
	// one chosen last time.
	Profile string
	// AutoConsent answers every opt-in prompt: "allow", "deny" or "" to ask.
	AutoConsent string
	// TimeScale shortens the embedded server's batching windows.
	TimeScale float64
	// FrameStats, if positive, measures the window's frame cost for this
	// long after FrameWarmUp, writes it to FrameStatsOut and quits the
	// app; see FrameSampler.
	FrameStats    time.Duration
	FrameStatsOut io.Writer
	Logger        *slog.Logger
}

// MaxPhones is the most phones one window shows.
const MaxPhones = 8

// session is a running emulator: server (if embedded), phones, window.
type session struct {
	Shell  *shell.Shell
	Window fyne.Window
	Phones []*phone.Phone
	// Server is the embedded server, nil when pairing with another.
	Server    *server.Server
	ServerURL string
	servers   []string
	newPhone  func(i int) (*phone.Phone, error)
	stop      chan struct{}
	stopOnce  sync.Once
	done      chan struct{}
	// stopFrames cancels the frame sampler, if any.
	stopFrames func()
}

// start builds everything and returns with the window ready to show.
func start(a fyne.App, o options) (*session, error) {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	var auto *bool
	switch o.AutoConsent {
	case "":
	case "allow", "deny":
		v := o.AutoConsent == "allow"
		auto = &v
	default:
		return nil, fmt.Errorf("--auto-consent %q: want allow or deny", o.AutoConsent)
	}
	var man *apps.Manifest
	var err error
	if o.AppsFile != "" {
		man, err = apps.Load(o.AppsFile)
	} else {
		man, err = apps.Default()
	}
	if err != nil {
		return nil, err
	}
	// {backend} in image_domains is the demo backend's host and port, for
	// the phone and the shell alike.
	man.ResolveBackend(o.Backend)
	ses := &session{stop: make(chan struct{}), done: make(chan struct{}), ServerURL: o.Server}
	for _, u := range strings.Split(o.Server, ",") {
		if u = strings.TrimSpace(u); u != "" {
			ses.servers = append(ses.servers, u)
		}
	}
	if o.Server == "" {
		srv, err := startEmbedded(filepath.Join(o.StateDir, "server"), o)
		if err != nil {
			return nil, err
		}
		ses.Server, ses.ServerURL = srv, srv.URL()
		ses.servers = []string{srv.URL()}
	}
	loader := images.NewLoader(images.Config{})
	w := a.NewWindow("OpenMPNS emulator")
	sh := shell.New(a, w.Clipboard(), man, loader)
	ses.Shell, ses.Window = sh, w
	// newPhone makes phone i (from 0): a whole device with its own state
	// directory (identity, consent, tiles, settings, profile), on the i-th
	// node of a cluster, with the others to fall back to.
	ses.newPhone = func(i int) (*phone.Phone, error) {
		dir, name := "phone", "phone 1"
		if i > 0 {
			dir, name = "phone"+strconv.Itoa(i+1), "phone "+strconv.Itoa(i+1)
		}
		first, rest := nodesFor(ses.servers, i)
		d := sh.AddDevice(name)
		ph, err := phone.New(phone.Config{
			Server: first, Servers: rest, StateDir: filepath.Join(o.StateDir, dir),
			Apps: phone.FromManifest(man, o.Backend), AutoConsent: auto, OnChange: d.Handle, Logger: o.Logger,
			Profile: o.Profile,
			Prefetch: func(ctx context.Context, ref string, domains []string) error {
				_, err := loader.Fetch(ctx, ref, domains, nil)
				return err
			},
		})
		if err != nil {
			return nil, err
		}
		d.Attach(ph)
		ses.Phones = append(ses.Phones, ph)
		return ph, nil
	}
	for i := range max(1, o.Phones) {
		if _, err := ses.newPhone(i); err != nil {
			ses.closePhones()
			if ses.Server != nil {
				ses.Server.Close()
			}
			return nil, err
		}
	}
	sh.OnAddPhone = func() {
		if len(ses.Phones) >= MaxPhones {
			return
		}
		if _, err := ses.newPhone(len(ses.Phones)); err != nil {
			o.Logger.Error("add phone", "err", err)
			return
		}
		sh.Update(func() { w.Resize(sh.WindowSize()) })
	}
	content := sh.Content()
	if o.FrameStats > 0 {
		fs := NewFrameSampler(nil, nil)
		content = container.NewStack(fs.Probe, content)
		ses.stopFrames = SampleFrames(fs, o.FrameStats, o.FrameStatsOut, a.Quit)
	}
	// Setting the content lays the views out and creates their renderers:
	// that touches the views, so it holds the UI lock like everything else
	// (the phone's goroutines may already be applying changes through Handle).
	sh.Update(func() {
		w.SetContent(content)
		w.SetPadded(false)
		w.Resize(sh.WindowSize())
		// F12 is the power button, as in Microsoft's emulator.
		w.Canvas().SetOnTypedKey(func(k *fyne.KeyEvent) {
			if k.Name == fyne.KeyF12 {
				sh.Update(sh.Power)
			}
		})
	})
	a.Lifecycle().SetOnStopped(ses.halt)
	go ses.tick()
	return ses, nil
}

func (s *session) tick() {
	defer close(s.done)
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case now := <-t.C:
			fyne.Do(func() { s.Shell.Update(func() { s.Shell.Tick(now) }) })
		}
	}
}

// halt stops the clock and the shell's updates when the window's event
// loop stops: after it, fyne.Do would run them on the caller's goroutine,
// off the UI thread. It may be called more than once.
func (s *session) halt() {
	s.stopOnce.Do(func() {
		close(s.stop)
		s.Shell.Halt()
	})
}

// Close stops the phones, the embedded server and the ticker.
func (s *session) Close() error {
	s.halt()
	<-s.done
	if s.stopFrames != nil {
		s.stopFrames()
	}
	s.Shell.Close()
	err := s.closePhones()
	if s.Server != nil {
		err = errors.Join(err, s.Server.Close())
	}
	return err
}

// nodesFor spreads phones over the nodes of a cluster: phone i (from 0)
// starts on node i (round the list), and falls back to the others in order.
func nodesFor(servers []string, i int) (first string, rest []string) {
	n := len(servers)
	for j := 1; j < n; j++ {
		rest = append(rest, servers[(i+j)%n])
	}
	return servers[i%n], rest
}

// closePhones stops every phone.
func (s *session) closePhones() error {
	var err error
	for _, p := range s.Phones {
		err = errors.Join(err, p.Close())
	}
	return err
}

// startEmbedded starts the embedded server on the address it had last time,
// so the apps' Channel URIs stay the same across runs, or on a free port.
func startEmbedded(dir string, o options) (*server.Server, error) {
	srv, err := server.New(server.Config{Listen: "127.0.0.1:0", DataDir: dir, TimeScale: o.TimeScale, Logger: o.Logger})
	if err != nil {
		return nil, err
	}
	addrFile := filepath.Join(dir, "listen-addr")
	var ln net.Listener
	if o.Listen != "" {
		if ln, err = net.Listen("tcp", o.Listen); err != nil {
			srv.Close()
			return nil, fmt.Errorf("embedded server: --listen: %w", err)
		}
	} else if last, err := os.ReadFile(addrFile); err == nil {
		ln, _ = net.Listen("tcp", strings.TrimSpace(string(last)))
	}
	if ln == nil {
		if ln, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			srv.Close()
			return nil, fmt.Errorf("embedded server: %w", err)
		}
	}
	if err := srv.Serve(ln); err != nil {
		srv.Close()
		return nil, err
	}
	if err := os.WriteFile(addrFile, []byte(ln.Addr().String()+"\n"), 0o600); err != nil {
		o.Logger.Warn("remember the embedded server's address", "err", err)
	}
	return srv, nil
}
