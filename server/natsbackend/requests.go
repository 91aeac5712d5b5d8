package natsbackend

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// Requests counts what this node asked of NATS since Open, by kind: the
// cost of the backend in the units NATS pays for. Reads and deletes are
// JetStream API requests (a delete is replicated like a publish); a
// publish is a write acknowledged by the stream's quorum; a node message
// is a core NATS message to another node (hands, removal notices, cache
// updates).
type Requests struct {
	// Reads: message gets (and stream infos counting messages) answered
	// by a stream leader.
	Reads uint64
	// DirectGets: pages of batched direct gets (any replica).
	DirectGets uint64
	// Publishes: JetStream publishes (notifications, records, markers).
	Publishes uint64
	// Deletes: messages deleted by sequence.
	Deletes uint64
	// NodeMessages: core NATS messages sent to other nodes.
	NodeMessages uint64
}

type requestCounters struct {
	reads, directGets, publishes, deletes, nodeMsgs atomic.Uint64
}

// Requests returns what this node asked of NATS so far.
func (b *Backend) Requests() Requests {
	c := &b.reqs
	return Requests{Reads: c.reads.Load(), DirectGets: c.directGets.Load(), Publishes: c.publishes.Load(),
		Deletes: c.deletes.Load(), NodeMessages: c.nodeMsgs.Load()}
}

// Collector exports Requests as the counter openmpns_nats_requests_total
// by kind; the server registers it beside its own metrics.
func (b *Backend) Collector() prometheus.Collector { return requestCollector{b} }

type requestCollector struct{ b *Backend }

var requestsDesc = prometheus.NewDesc("openmpns_nats_requests_total",
	"Requests this node made of NATS, by kind: read (leader get or stream info), direct_get (a page), publish, delete, node_message (core NATS to another node).",
	[]string{"kind"}, nil)

func (c requestCollector) Describe(ch chan<- *prometheus.Desc) { ch <- requestsDesc }

func (c requestCollector) Collect(ch chan<- prometheus.Metric) {
	r := c.b.Requests()
	for _, kv := range []struct {
		kind string
		n    uint64
	}{{"read", r.Reads}, {"direct_get", r.DirectGets}, {"publish", r.Publishes}, {"delete", r.Deletes}, {"node_message", r.NodeMessages}} {
		ch <- prometheus.MustNewConstMetric(requestsDesc, prometheus.CounterValue, float64(kv.n), kv.kind)
	}
}
