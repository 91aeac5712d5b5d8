package server

import (
	"sync/atomic"

	"github.com/openmpns/openmpns/server/backend"
	"github.com/openmpns/openmpns/shared/payload"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// metrics are the server's Prometheus metrics, in a registry of its own so
// that several servers can run in one process (tests do).
type metrics struct {
	reg         *prometheus.Registry
	connections prometheus.Gauge
	channels    prometheus.GaugeFunc
	queueDepth  prometheus.GaugeFunc
	pushes      *prometheus.CounterVec
	delivered   *prometheus.CounterVec
	expired     prometheus.Counter
	latency     prometheus.Histogram
	pending     prometheus.Gauge
	overload    prometheus.Counter
	ackedFirst  prometheus.Counter
	// frontHandovers counts the connections the push front gave net/http.
	frontHandovers prometheus.Counter
	// received caches pushes' Received counter of each kind, by
	// payload.Kind (every push answered Received asks for one).
	received [4]atomic.Pointer[prometheus.Counter]
	// deliveredOf caches delivered's counter of each kind the same way.
	deliveredOf [4]atomic.Pointer[prometheus.Counter]
	// Abuse limits (limits.go, reap.go).
	rateLimited    *prometheus.CounterVec
	devicesDeleted *prometheus.CounterVec
	globalFull     *prometheus.CounterVec
}

// newMetrics makes the metrics; stats reads the backend's sizes (across
// the service) when they are scraped.
func newMetrics(stats func() backend.Stats) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		connections: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "openmpns_device_connections", Help: "Devices connected over the WebSocket gateway.",
		}),
		channels: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "openmpns_channels", Help: "Open push channels.",
		}, func() float64 { return float64(stats().Channels) }),
		queueDepth: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "openmpns_queue_depth", Help: "Notifications accepted and not yet acknowledged (nor expired).",
		}, func() float64 { return float64(stats().Queued) }),
		pushes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "openmpns_notifications_total", Help: "Push requests answered, by kind and X-NotificationStatus (or HTTP status when it has none).",
		}, []string{"kind", "status"}),
		delivered: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "openmpns_notifications_delivered_total", Help: "Notifications acknowledged by devices, by kind.",
		}, []string{"kind"}),
		expired: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "openmpns_notifications_expired_total", Help: "Queued notifications dropped because they expired before delivery.",
		}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "openmpns_delivery_latency_seconds",
			Help:    "Time from a push being accepted to its device acknowledging it.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2.5, 16), // 100 µs to ~15 min
		}),
		pending: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "openmpns_pushes_pending", Help: "Pushes admitted and waiting for their store write (bounded by MaxPendingPushes).",
		}),
		overload: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "openmpns_pushes_overload_total", Help: "Pushes refused with 503 because MaxPendingPushes were waiting to be stored.",
		}),
	}
	m.ackedFirst = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "openmpns_pushes_acked_before_stored_total", Help: "Pushes answered Received because the device acknowledged the notification before its write was durable.",
	})
	m.frontHandovers = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "openmpns_push_front_handovers_total", Help: "Plain-HTTP connections the push front gave to net/http: a request other than a push that arrived whole (a device's WebSocket upgrade, /metrics, a push in parts or of an unusual shape).",
	})
	m.rateLimited = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "openmpns_rate_limited_total", Help: "Device requests refused by a per-address rate (close 4029), by what: new devices or channel opens.",
	}, []string{"what"})
	m.devicesDeleted = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "openmpns_devices_deleted_total", Help: "Devices deleted with their channels, by reason: inactive (past --inactive-grace), revoked, key_rotated.",
	}, []string{"reason"})
	m.globalFull = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "openmpns_global_limit_refusals_total", Help: "Requests refused by a server-wide cap, by cap: devices, channels, queued_bytes, attaching (hellos handled at once).",
	}, []string{"cap"})
	m.reg.MustRegister(m.rateLimited, m.devicesDeleted, m.globalFull, m.frontHandovers)
	m.reg.MustRegister(m.ackedFirst, m.connections, m.channels, m.queueDepth, m.pushes, m.delivered, m.expired, m.latency, m.pending, m.overload,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// receivedCounter is openmpns_notifications_total{kind, status="Received"}.
func (m *metrics) receivedCounter(k payload.Kind) prometheus.Counter {
	return cachedCounter(&m.received, k, func() prometheus.Counter {
		return m.pushes.WithLabelValues(k.String(), StatusReceived)
	})
}

// deliveredCounter is openmpns_notifications_delivered_total{kind}, kind
// as a notification records it (Kind.String).
func (m *metrics) deliveredCounter(kind string) prometheus.Counter {
	k, err := payload.ParseKind(kind)
	if err != nil {
		return m.delivered.WithLabelValues(kind)
	}
	return cachedCounter(&m.deliveredOf, k, func() prometheus.Counter { return m.delivered.WithLabelValues(kind) })
}

// cachedCounter returns cache[k], made once by mk: a labelled counter
// looked up once, not hashed again on every push.
func cachedCounter(cache *[4]atomic.Pointer[prometheus.Counter], k payload.Kind, mk func() prometheus.Counter) prometheus.Counter {
	if int(k) >= len(cache) {
		return mk()
	}
	if c := cache[k].Load(); c != nil {
		return *c
	}
	c := mk()
	cache[k].Store(&c)
	return c
}
