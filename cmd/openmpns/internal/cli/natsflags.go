package cli

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/openmpns/openmpns/server/natsbackend"
)

// natsFlags are the options of a node (or a tool) that joins the service
// living in a NATS JetStream cluster.
type natsFlags struct {
	urls, creds, tlsCert, tlsKey, tlsCA, prefix, nodeID string
	replicas                                            int
	timeout                                             time.Duration
}

// add registers the flags; node adds the ones only a serving node has.
func (n *natsFlags) add(fs *flag.FlagSet, node bool) {
	fs.StringVar(&n.urls, "nats", "", "join the service that lives in this NATS JetStream cluster: its server URLs, comma-separated (nats://h1:4222,nats://h2:4222)")
	fs.StringVar(&n.creds, "nats-creds", "", "NATS credentials file (user JWT and nkey seed)")
	fs.StringVar(&n.tlsCert, "nats-tls-cert", "", "PEM client certificate for NATS (with --nats-tls-key)")
	fs.StringVar(&n.tlsKey, "nats-tls-key", "", "PEM private key of --nats-tls-cert")
	fs.StringVar(&n.tlsCA, "nats-tls-ca", "", "PEM CA that signs the NATS servers' certificates (default: the system roots)")
	fs.StringVar(&n.prefix, "nats-prefix", natsbackend.DefaultPrefix, "names this service's streams, buckets and subjects, so several deployments share one NATS")
	timeoutHelp := "bound of one call to NATS; past it the command fails"
	if node {
		timeoutHelp = "bound of one call to NATS; past it the push gets 503"
	}
	fs.DurationVar(&n.timeout, "nats-timeout", natsbackend.DefaultRequestTimeout, timeoutHelp)
	if node {
		fs.IntVar(&n.replicas, "nats-replicas", 0, "replicas of the streams and buckets created at first start (default: 3 where the NATS cluster has 3 servers or more, else 1)")
		fs.StringVar(&n.nodeID, "node-id", "", "this node's name among the service's nodes, unique among those running (default: host name and a random suffix)")
	}
}

func (n *natsFlags) set() bool { return n.urls != "" }

// open connects to NATS and opens the service's state.
func (n *natsFlags) open(ctx context.Context, log *slog.Logger, queueTTL time.Duration) (*natsbackend.Backend, error) {
	cfg := natsbackend.Config{URLs: splitList(n.urls), CredsFile: n.creds, Prefix: n.prefix, Replicas: n.replicas,
		NodeID: n.nodeID, QueueTTL: queueTTL, RequestTimeout: n.timeout, Logger: log}
	if n.tlsCert != "" || n.tlsKey != "" || n.tlsCA != "" {
		tc := &tls.Config{MinVersion: tls.VersionTLS12}
		if (n.tlsCert == "") != (n.tlsKey == "") {
			return nil, errors.New("--nats-tls-cert and --nats-tls-key go together")
		}
		if n.tlsCert != "" {
			cert, err := tls.LoadX509KeyPair(n.tlsCert, n.tlsKey)
			if err != nil {
				return nil, fmt.Errorf("--nats-tls-cert: %w", err)
			}
			tc.Certificates = []tls.Certificate{cert}
		}
		if n.tlsCA != "" {
			pem, err := os.ReadFile(n.tlsCA)
			if err != nil {
				return nil, fmt.Errorf("--nats-tls-ca: %w", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("--nats-tls-ca %s holds no PEM certificate", n.tlsCA)
			}
			tc.RootCAs = pool
		}
		cfg.TLS = tc
	}
	return natsbackend.Open(ctx, cfg)
}
