package events

import (
	"runtime"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Metrics holds one node's Prometheus collectors. Each node has its own
// registry so several nodes can run in one process (tests, demo).
type Metrics struct {
	Registry *prometheus.Registry

	requests         *prometheus.CounterVec
	requestDuration  *prometheus.HistogramVec
	ReconcileResults *prometheus.CounterVec
	ReconcileSeconds *prometheus.HistogramVec
	QueueDepth       *prometheus.GaugeVec
	ReplicationLag   *prometheus.GaugeVec

	// The children of requests and requestDuration by their labels, found
	// once: WithLabelValues checks and hashes the values and takes the vec's
	// lock on every call. Both label sets are bounded (registered operation
	// names and "unknown"; a few statuses).
	requestCounters  sync.Map // requestKey -> prometheus.Counter
	requestObservers sync.Map // operation -> prometheus.Observer
}

type requestKey struct {
	op     string
	status int
}

// NewMetrics registers clusterd's collectors on a fresh registry.
func NewMetrics(version string) *Metrics {
	reg := prometheus.NewRegistry()
	m := &Metrics{
		Registry: reg,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "clusterd_requests_total", Help: "Operation requests by operation and reply status.",
		}, []string{"operation", "status"}),
		requestDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "clusterd_request_duration_seconds", Help: "Time from intake to reply, by operation.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"operation"}),
		ReconcileResults: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "clusterd_reconcile_total", Help: "Reconcile passes by worker and result (converged, changed, error).",
		}, []string{"worker", "result"}),
		ReconcileSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "clusterd_reconcile_duration_seconds", Help: "Duration of reconcile passes by worker.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 4, 10),
		}, []string{"worker"}),
		QueueDepth: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "clusterd_worker_queue_depth", Help: "Items still to converge after the worker's latest pass (routes: routes differing from the servers; replication: subscribed tables no healthy source carries; notices: notices not yet delivered), by worker.",
		}, []string{"worker"}),
		ReplicationLag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "clusterd_replication_lag_messages", Help: "Messages a peer holds that this node has not yet received, by peer, as the stream's sources report it at each replication pass (cluster_status counts it exactly, per table).",
		}, []string{"peer"}),
	}
	build := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "clusterd_build_info", Help: "Build information; the value is always 1.",
	}, []string{"version", "go_version"})
	build.WithLabelValues(version, runtime.Version()).Set(1)
	reg.MustRegister(m.requests, m.requestDuration, m.ReconcileResults, m.ReconcileSeconds, m.QueueDepth, m.ReplicationLag, build,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

func (m *Metrics) observeRequest(op string, status int, d time.Duration) {
	k := requestKey{op, status}
	c, ok := m.requestCounters.Load(k)
	if !ok {
		c, _ = m.requestCounters.LoadOrStore(k, m.requests.WithLabelValues(op, strconv.Itoa(status)))
	}
	c.(prometheus.Counter).Inc()
	o, ok := m.requestObservers.Load(op)
	if !ok {
		o, _ = m.requestObservers.LoadOrStore(op, m.requestDuration.WithLabelValues(op))
	}
	o.(prometheus.Observer).Observe(d.Seconds())
}
