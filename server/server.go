// Package server is the OpenMPNS push service: the MPNS HTTP push API that
// cloud services POST notifications to, the WebSocket gateway that devices
// hold open, the routing engine with its per-channel queues and batching
// classes, and the durable store behind them.
//
// Concurrency: a Server is safe for concurrent use. Start runs it; Shutdown
// drains it (new pushes get 503, devices get a goaway frame and a 1001
// close) and releases everything it started.
package server

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"github.com/prometheus/client_golang/prometheus"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/openmpns/openmpns/server/auth"
	"github.com/openmpns/openmpns/server/backend"
	"github.com/openmpns/openmpns/server/store"
	"github.com/openmpns/openmpns/shared/wire"
)

// DBFile is the name of the store file inside the data directory.
const DBFile = "openmpns.db"

// Server is a running push service.
type Server struct {
	cfg    Config
	log    *slog.Logger
	be     backend.Backend
	eng    *Engine
	met    *metrics
	gw     *gateway
	http   *http.Server
	ln     net.Listener
	served chan error
	// addr and origin are known once serving (Serve); cfg never changes
	// after New.
	addr, origin string
	// stopWatch ends the watch of the services, if any.
	stopWatch context.CancelFunc
	// The admin API on its Unix socket (see admin.go).
	admin *http.Server
	// front serves the common push on plain HTTP (nil: net/http serves all).
	front     *pushFront
	adminPath string

	// Sender authentication (server/auth): the service registry is loaded
	// in New; the token issuer needs the origin, known once listening.
	registry *auth.Registry
	issuer   *auth.Issuer

	stopOnce sync.Once
	stopErr  error
}

// New opens the backend (cfg.Backend, or the embedded one in cfg.DataDir)
// and loads what the server needs from it. It starts nothing: Start or
// Serve does. The server owns cfg.Backend from here: it is closed if New
// fails, else at Shutdown.
func New(cfg Config) (*Server, error) {
	if err := cfg.Normalize(); err != nil {
		if cfg.Backend != nil {
			cfg.Backend.Close()
		}
		return nil, fmt.Errorf("server: config: %w", err)
	}
	be := cfg.Backend
	if be == nil {
		path := filepath.Join(cfg.DataDir, DBFile)
		emb, err := store.Open(path, store.Options{RemoveDelay: cfg.RemoveDelay, CommitLinger: cfg.CommitLinger, Now: cfg.Clock.Now})
		if err != nil {
			return nil, fmt.Errorf("server: %w", err)
		}
		be = emb
	}
	s := &Server{cfg: cfg, log: cfg.Logger, be: be}
	s.met = newMetrics(func() backend.Stats {
		st, err := be.Stats(context.Background())
		if err != nil {
			s.log.Warn("backend stats", "err", err)
		}
		return st
	})
	// A backend with metrics of its own (natsbackend: its requests to
	// NATS) shows them beside the server's.
	if c, ok := be.(interface{ Collector() prometheus.Collector }); ok {
		s.met.reg.MustRegister(c.Collector())
	}
	var err error
	if s.registry, err = auth.NewRegistry(be.Services(), cfg.Clock.Now); err != nil {
		be.Close()
		return nil, fmt.Errorf("server: load services: %w", err)
	}
	s.eng = NewEngine(&s.cfg, be, s.met)
	s.gw = newGateway(&s.cfg, s.eng, s.met)
	return s, nil
}

// servicesWatcher is a backend whose registry of senders other nodes or
// tools may change under a running server (a cluster's).
type servicesWatcher interface {
	WatchServices(ctx context.Context, changed func()) error
}

// healthChecker is a backend that can tell whether it can serve now (a
// NATS backend that lost its connection cannot).
type healthChecker interface {
	Health(ctx context.Context) error
}

// pushHandler is the push API's handler: senders authenticated by the
// configured Authenticator, else by the service tokens and certificates
// the server issues (once Serve has made its issuer).
func (s *Server) pushHandler() *pushHandler {
	authn := s.cfg.Authenticator
	if authn == nil && s.issuer != nil {
		authn = auth.NewVerifier(s.registry, s.issuer).Optional()
	}
	return &pushHandler{cfg: &s.cfg, pusher: s.eng, met: s.met, auth: authn}
}

// Handler returns the server's HTTP handler: push API, gateway, health, metrics.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	push := s.pushHandler()
	mux.Handle(PushPath, push)
	mux.Handle(GatewayPath, s.gw)
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		if s.eng.draining() {
			http.Error(w, "draining", http.StatusServiceUnavailable)
			return
		}
		if h, ok := s.be.(healthChecker); ok {
			if err := h.Health(r.Context()); err != nil {
				http.Error(w, "backend unavailable: "+err.Error(), http.StatusServiceUnavailable)
				return
			}
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "ok")
	})
	mux.Handle("/metrics", promhttp.HandlerFor(s.met.reg, promhttp.HandlerOpts{}))
	// Anything else is a 404 that says why, as every refusal of the push
	// API does; a push path the mux did not match (an escaped slash) goes
	// to the push API.
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, PushPath) {
			push.ServeHTTP(w, r) // an escaped slash: still the push API, which says what is wrong
			return
		}
		reason := "no such path: notifications are POSTed to a Channel URI, " + PushPath + "<token>"
		w.Header().Set(HeaderError, headerSafe(reason))
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusNotFound)
		io.WriteString(w, reason+"\n")
	})
	if s.issuer != nil {
		mux.Handle(auth.TokenPath, auth.NewTokenHandler(s.registry, s.issuer, s.cfg.Clock.Now))
	}
	return mux
}

// Start listens on cfg.Listen and serves in the background. With port 0 the
// chosen address is what Addr and Channel URIs then use.
func (s *Server) Start() error {
	ln, err := net.Listen("tcp", s.cfg.Listen)
	if err != nil {
		return fmt.Errorf("server: listen: %w", err)
	}
	return s.Serve(ln)
}

// Serve serves on ln in the background (over TLS when configured).
func (s *Server) Serve(ln net.Listener) error {
	s.addr = ln.Addr().String()
	s.origin = s.cfg.originFor(s.addr)
	s.eng.setOrigin(s.origin)
	if s.cfg.TLSCert != "" {
		tc, err := tlsConfig(&s.cfg)
		if err != nil {
			ln.Close()
			return err
		}
		ln = tlsListener{Listener: ln, config: tc}
	}
	iss, err := auth.NewIssuer(s.be.Services(), s.registry, s.origin, s.cfg.Clock.Now)
	if err != nil {
		ln.Close()
		return fmt.Errorf("server: token issuer: %w", err)
	}
	s.issuer = iss
	s.eng.SetDeviceTokens(iss)
	if w, ok := s.be.(servicesWatcher); ok {
		ctx, cancel := context.WithCancel(context.Background())
		s.stopWatch = cancel
		reload := func() {
			// A reload that fails (no quorum) is tried again, so that a
			// service removed elsewhere does not stay valid here.
			for wait := 100 * time.Millisecond; ; wait = min(2*wait, 5*time.Second) {
				kid := iss.KeyID()
				err := errors.Join(s.registry.Reload(), iss.Reload())
				if err == nil {
					if iss.KeyID() != kid {
						// The key was rotated elsewhere: the devices here
						// hold tokens of the old key, and register again.
						n := s.gw.kickSessions(wire.CloseUnauthorized, "the server key was rotated: register again")
						s.log.Info("server key rotated elsewhere: device connections closed", "kid", iss.KeyID(), "connections_closed", n)
					}
					return
				}
				s.log.Warn("reload services and server key", "err", err, "retry_in", wait)
				select {
				case <-time.After(wait):
				case <-ctx.Done():
					return
				}
			}
		}
		if err := w.WatchServices(ctx, reload); err != nil {
			ln.Close()
			return fmt.Errorf("server: watch services: %w", err)
		}
		// What changed between New's read and the watch's start.
		if err := errors.Join(s.registry.Reload(), iss.Reload()); err != nil {
			s.log.Warn("reload services and server key", "err", err)
		}
	}
	s.gw.start()
	if s.cfg.TLSCert == "" {
		plain := ln
		ln = headerTimeoutListener{Listener: plain, timeout: s.cfg.ReadHeaderTimeout}
		if !s.cfg.NetHTTPPushes && useEpoll {
			// The push front serves the common push itself and hands the
			// rest to net/http (pushfront.go); where there is no epoll,
			// net/http serves everything.
			f, err := newPushFront(&s.cfg, plain, s.pushHandler(), s.met)
			if err != nil {
				s.log.Info("no push front: net/http serves every request", "err", err)
			} else {
				s.front = f
				ln = &frontListener{f: f, closed: make(chan struct{})}
			}
		}
	}
	s.ln = ln
	s.http = &http.Server{
		Handler:           s.Handler(),
		ConnState:         watchConnState,
		ReadHeaderTimeout: s.cfg.ReadHeaderTimeout,
		ReadTimeout:       s.cfg.ReadTimeout,
		IdleTimeout:       s.cfg.IdleTimeout,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	if s.cfg.AdminSocket != "-" {
		// Without its admin socket the server still serves; services are
		// then managed with the server stopped.
		if err := s.serveAdmin(s.cfg.adminSocket()); err != nil {
			s.log.Warn("no admin socket: `openmpns service` needs the server stopped", "err", err)
		}
	}
	s.served = make(chan error, 1)
	go func() { s.served <- s.http.Serve(ln) }()
	s.log.Info("openmpns server listening", "addr", s.addr, "public_url", s.URL(), "data", s.cfg.DataDir, "time_scale", s.cfg.TimeScale)
	return nil
}

// Services is the registry of authenticated senders.
func (s *Server) Services() *auth.Registry { return s.registry }

// Addr is the address the server listens on.
func (s *Server) Addr() string { return s.addr }

// AdminSocket is the path of the admin socket ("" when there is none).
func (s *Server) AdminSocket() string { return s.adminPath }

// URL is the origin used in Channel URIs.
func (s *Server) URL() string { return s.origin }

// tlsConfig loads the server certificate and, for mutual TLS, the CA that
// signs senders' client certificates.
func tlsConfig(c *Config) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(c.TLSCert, c.TLSKey)
	if err != nil {
		return nil, fmt.Errorf("server: TLS certificate: %w", err)
	}
	tc := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if c.ClientCA != "" {
		pem, err := os.ReadFile(c.ClientCA)
		if err != nil {
			return nil, fmt.Errorf("server: client CA: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("server: client CA %s holds no PEM certificate", c.ClientCA)
		}
		// Devices and unauthenticated senders connect without a certificate;
		// a certificate that is given must verify.
		tc.ClientCAs, tc.ClientAuth = pool, tls.VerifyClientCertIfGiven
	}
	return tc, nil
}

// Done yields the HTTP server's exit error once it stops serving.
func (s *Server) Done() <-chan error { return s.served }

// Shutdown drains the server: pushes get 503, devices are sent goaway and
// closed with 1001, in-flight HTTP requests finish (until ctx ends), and the
// store is closed. It is safe to call more than once.
func (s *Server) Shutdown(ctx context.Context) error {
	s.stopOnce.Do(func() {
		s.eng.Drain()
		var errs []error
		if s.front != nil {
			s.front.stop() // net/http's requests get the grace too
		}
		if s.http != nil {
			if err := s.http.Shutdown(ctx); err != nil {
				errs = append(errs, fmt.Errorf("server: http shutdown: %w", err))
			}
		}
		if s.front != nil {
			if err := s.front.wait(ctx); err != nil {
				errs = append(errs, fmt.Errorf("server: push front shutdown: %w", err))
			}
		}
		if s.stopWatch != nil {
			s.stopWatch()
		}
		if s.admin != nil {
			s.admin.Close() // the listener unlinks its socket
		}
		s.gw.kickAll(1001, "server shutting down")
		s.eng.Stop()
		if err := s.be.Close(); err != nil {
			errs = append(errs, err)
		}
		s.stopErr = errors.Join(errs...)
		s.log.Info("openmpns server stopped")
	})
	return s.stopErr
}

// Close shuts down with the configured grace period.
func (s *Server) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownGrace)
	defer cancel()
	return s.Shutdown(ctx)
}
