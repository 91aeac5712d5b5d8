package natsbackend

import (
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/openmpns/openmpns/shared/clock"
)

// Defaults of Config.
const (
	// DefaultURL is where Open looks for NATS when Config.URLs is empty.
	DefaultURL = "nats://127.0.0.1:4222"
	// DefaultPrefix names the streams, buckets and subjects of one service.
	DefaultPrefix = "openmpns"
	// DefaultQueueTTL is the queue stream's MaxAge: the longest a
	// notification is kept (the engine's own default TTL).
	DefaultQueueTTL = 24 * time.Hour
	// DefaultRequestTimeout bounds one call of the backend when its
	// context has no earlier deadline.
	DefaultRequestTimeout = 5 * time.Second
	// DefaultNodeTTL is how long a node may miss its heartbeat.
	DefaultNodeTTL = 10 * time.Second
)

// Config configures a node of the NATS backend. The zero value (plus a
// reachable NATS on DefaultURL) works; every node of one service must agree
// on Prefix, Replicas and QueueTTL.
type Config struct {
	// URLs are the NATS servers to connect to (any of a cluster's servers
	// will do; the client learns the others). Default: DefaultURL.
	URLs []string
	// CredsFile is a NATS credentials file (user JWT and nkey seed), or "".
	CredsFile string
	// TLS, if set, is used for the connection to NATS (client certificate,
	// root CAs); a tls:// URL alone asks for TLS with the system roots.
	TLS *tls.Config
	// Prefix names everything this service keeps in NATS: streams and
	// buckets <Prefix>_*, subjects <Prefix>.*; letters, digits, '-' and
	// '_'. Default: DefaultPrefix. Two services may share a NATS with
	// different prefixes.
	Prefix string
	// Replicas is the replication factor of the streams and buckets created
	// at first start (1 to 5). Default (0): what the existing streams have;
	// at first start, 3 if the client knows at least 3 servers of the
	// cluster, else 1.
	Replicas int
	// NodeID names this node among the nodes of the service: other nodes
	// hand it notifications on subject <Prefix>.node.<NodeID>. It must be
	// unique among running nodes. Default: the host name and a random
	// suffix.
	NodeID string
	// QueueTTL is the queue stream's MaxAge, the longest a notification is
	// kept; notifications expiring earlier (Notification.ExpiresAt) are
	// removed by NATS at their expiry. Default (0): what the existing queue
	// stream has (a tool such as `openmpns service --nats` need not know
	// it), at first start DefaultQueueTTL.
	QueueTTL time.Duration
	// RequestTimeout bounds one call of the backend (all its requests to
	// NATS) when the caller's context has no earlier deadline; past it the
	// call fails with backend.ErrUnavailable. A delete whose record is
	// gone has one more for the rest (see the package doc). Default:
	// DefaultRequestTimeout.
	RequestTimeout time.Duration
	// NodeTTL is how long a node may miss its heartbeat (written every
	// NodeTTL/4) before the others read its devices as offline. Default:
	// DefaultNodeTTL.
	NodeTTL time.Duration
	// Logger receives connection events and errors. Default: slog.Default().
	Logger *slog.Logger
	// Clock times this node's heartbeat (its timer, and the measure of a
	// lapse between two beats that succeeded). Default: the system clock;
	// tests move a clock.Fake.
	Clock clock.Clock
}

var prefixRe = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// normalize fills in the defaults and checks the values, joining every
// error.
func (c *Config) normalize() error {
	var errs []error
	if len(c.URLs) == 0 {
		c.URLs = []string{DefaultURL}
	}
	if c.Prefix == "" {
		c.Prefix = DefaultPrefix
	}
	if !prefixRe.MatchString(c.Prefix) {
		errs = append(errs, fmt.Errorf("prefix %q: use letters, digits, '-' and '_' only", c.Prefix))
	}
	if c.Replicas < 0 || c.Replicas > 5 {
		errs = append(errs, fmt.Errorf("replicas %d: NATS allows 1 to 5 (0 for the default)", c.Replicas))
	}
	if c.NodeID == "" {
		host, _ := os.Hostname()
		b := make([]byte, 4)
		_, _ = rand.Read(b)
		c.NodeID = strings.Trim(host+"-"+hex.EncodeToString(b), "-")
	}
	if c.QueueTTL != 0 && c.QueueTTL < time.Second {
		errs = append(errs, fmt.Errorf("queue TTL %v: at least 1s", c.QueueTTL))
	}
	if c.RequestTimeout == 0 {
		c.RequestTimeout = DefaultRequestTimeout
	}
	if c.NodeTTL == 0 {
		c.NodeTTL = DefaultNodeTTL
	}
	if c.NodeTTL < 100*time.Millisecond {
		errs = append(errs, fmt.Errorf("node TTL %v: at least 100ms", c.NodeTTL))
	}
	if c.RequestTimeout < 0 {
		errs = append(errs, fmt.Errorf("request timeout %v: must be positive", c.RequestTimeout))
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Clock == nil {
		c.Clock = clock.System{}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("natsbackend: config: %w", err)
	}
	return nil
}
