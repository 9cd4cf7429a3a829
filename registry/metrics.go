package registry

import (
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the node's Prometheus collectors, registered on the
// Registerer given to Open and unregistered on Close.
type metrics struct {
	reg            prometheus.Registerer
	cs             []prometheus.Collector
	applyDuration  *prometheus.HistogramVec
	tickDuration   prometheus.Histogram
	keepAliveBatch prometheus.Histogram
	isLeader       prometheus.Gauge

	checkpointDuration prometheus.Histogram
}

func newMetrics(n *Node, reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		reg: reg,
		applyDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "roster_raft_apply_duration_seconds",
			Help:    "Time from proposing a command to its commit and apply, by command.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}, []string{"command"}),
		tickDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "roster_tick_duration_seconds",
			Help:    "Time to commit one lease tick, including the expiries it carries.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}),
		keepAliveBatch: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "roster_keepalive_batch_leases",
			Help:    "Leases per coalesced keep-alive group: a raft entry on the leader, a forwarded batch on a follower.",
			Buckets: prometheus.ExponentialBuckets(1, 4, 9),
		}),
		isLeader: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "roster_is_leader", Help: "1 while this member is the raft leader.",
		}),
		checkpointDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "roster_checkpoint_duration_seconds",
			Help:    "Time to commit one background checkpoint of the state machine to the state file.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}),
	}
	m.cs = []prometheus.Collector{
		m.applyDuration, m.tickDuration, m.keepAliveBatch, m.isLeader, m.checkpointDuration,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "roster_checkpoint_index", Help: "Raft index of the last checkpoint committed to the state file."},
			func() float64 { return float64(n.fsm.DurableIndex()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "roster_leases_alive", Help: "Live leases."},
			func() float64 { return float64(n.fsm.State().LeaseCount()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "roster_keys", Help: "Stored keys."},
			func() float64 { return float64(n.fsm.State().KeyCount()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "roster_revision", Help: "Store revision."},
			func() float64 { return float64(n.fsm.State().Revision()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "roster_applied_index", Help: "Raft index applied to the state machine."},
			func() float64 { return float64(n.fsm.State().AppliedIndex()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "roster_lease_expirations_total", Help: "Leases expired by ticks applied on this member since it started."},
			func() float64 { return float64(n.fsm.Expired()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "roster_checkpoints_total", Help: "Checkpoint transactions committed to the state file since this member started."},
			func() float64 { return float64(n.fsm.Checkpoints()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "roster_checkpoint_merges_total", Help: "Checkpoints that wrote the journal's records in place and emptied it, since this member started."},
			func() float64 { return float64(n.fsm.Merges()) }),
	}
	if reg == nil {
		return m, nil
	}
	for i, c := range m.cs {
		if err := reg.Register(c); err != nil {
			for _, done := range m.cs[:i] {
				reg.Unregister(done)
			}
			return nil, err
		}
	}
	return m, nil
}

func (m *metrics) unregister() {
	if m == nil || m.reg == nil {
		return
	}
	for _, c := range m.cs {
		m.reg.Unregister(c)
	}
}
