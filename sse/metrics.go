package sse

import (
	"strconv"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// metrics are the SSE process's Prometheus series (SYSTEM §5). Each Server
// has its own registry, so tests running several servers in one binary do
// not collide and nothing is global.
type metrics struct {
	registry     *prometheus.Registry
	connections  *prometheus.GaugeVec
	fannedOut    prometheus.Counter
	slowDrops    prometheus.Counter
	handshakes   *prometheus.CounterVec
	readerErrors prometheus.Counter
	readerGaps   prometheus.Counter
	readerFills  prometheus.Counter
	revoked      prometheus.Counter
	drops        atomic.Int64 // slowDrops, readable without scraping
}

func newMetrics() *metrics {
	m := &metrics{
		registry: prometheus.NewRegistry(),
		connections: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "mazenet_sse_connections",
			Help: "Open SSE streams, by endpoint (topology or overview).",
		}, []string{"endpoint"}),
		fannedOut: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mazenet_sse_events_fanned_out_total",
			Help: "Event frames queued to subscribers by the shared reader.",
		}),
		slowDrops: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mazenet_sse_slow_client_drops_total",
			Help: "Subscribers disconnected because their buffer was full.",
		}),
		handshakes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mazenet_sse_handshakes_total",
			Help: "SSE handshakes by HTTP status (200 = stream opened).",
		}, []string{"endpoint", "status"}),
		readerErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mazenet_sse_reader_errors_total",
			Help: "Redis errors of the shared stream reader (it reconnects with backoff).",
		}),
		readerGaps: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mazenet_sse_reader_gaps_total",
			Help: "Times events the shared reader missed were gone from the outbox too, so it ended every stream.",
		}),
		readerFills: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mazenet_sse_reader_fills_total",
			Help: "Times the shared reader filled positions the stream skipped from the outbox.",
		}),
		revoked: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mazenet_sse_revoked_streams_total",
			Help: "Streams ended because their credential was revoked (logout, password or role change, deleted user, expiry).",
		}),
	}
	m.registry.MustRegister(m.connections, m.fannedOut, m.slowDrops, m.handshakes, m.readerErrors, m.readerGaps, m.readerFills, m.revoked,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// slowDrop counts one subscriber dropped for a full buffer.
func (m *metrics) slowDrop() {
	m.slowDrops.Inc()
	m.drops.Add(1)
}

// handshake counts one handshake result.
func (m *metrics) handshake(endpoint string, status int) {
	m.handshakes.WithLabelValues(endpoint, strconv.Itoa(status)).Inc()
}
