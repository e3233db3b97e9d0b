package manager

import (
	"errors"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"shoal/internal/admin"
	"shoal/internal/cluster"
)

// Prometheus metrics of a manager, on its HTTP address next to the API
// (/metrics, /readyz; /healthz is the API's). docs/metrics.md lists
// every name; TestClusterMetrics (internal/server) checks the list
// against a scrape. Each manager has its own registry.
//
// The map's figures are read from any manager's map. What only the
// leader knows (node health, leases) reads 0 on a follower, and the
// counters count what this manager did while it led: sum them over the
// managers.

// counters are what the leader's loops did (atomic: several goroutines).
type counters struct {
	failovers   atomic.Int64           // promotions proposed and applied (automatic and manual)
	movesDone   atomic.Int64           // slots whose move completed (OpMigrateDone applied)
	movesFailed atomic.Int64           // move attempts cancelled by the migrator (they retry)
	decisions   *prometheus.CounterVec // by action (decided)
}

// autoscaleActions are the decision actions created at 0 (others
// appear on first use).
var autoscaleActions = []string{cluster.ActionNone, cluster.ActionScaleOut, cluster.ActionScaleIn, cluster.ActionBalance,
	"release", "provision", "add-shard", "drain", "done", "error"}

var nodeStates = []string{cluster.NodeActive, cluster.NodeIdle, cluster.NodeStandby}

var (
	descNodes = prometheus.NewDesc("shoal_manager_nodes", "Storage nodes in the map, by state (active: in a shard; idle, standby: the pool).", []string{"state"}, nil)
)

type mapCollector struct{ m *Manager }

func (c mapCollector) Describe(ch chan<- *prometheus.Desc) { ch <- descNodes }

func (c mapCollector) Collect(ch chan<- prometheus.Metric) {
	mp := c.m.Map()
	n := map[string]int{}
	for _, nd := range mp.Nodes {
		n[nd.State]++
	}
	for _, st := range nodeStates {
		ch <- prometheus.MustNewConstMetric(descNodes, prometheus.GaugeValue, float64(n[st]), st)
	}
}

// leaderView counts, on the leader, the shards whose primary is judged
// down (Decide: not healthy) and the primaries without a live lease
// from this leader. A follower reports 0, 0.
func (m *Manager) leaderView() (down, noLease int) {
	if !m.leading() {
		return 0, 0
	}
	mp := m.Map()
	now := time.Now()
	lease := time.Duration(mp.Settings.LeaseMs) * time.Millisecond
	m.mu.Lock()
	defer m.mu.Unlock()
	_, states := Decide(mp, m.health, now, m.leaderSince)
	for _, s := range states {
		if !s.Healthy {
			down++
		}
	}
	for _, id := range mp.ShardIDs() {
		h := m.health[mp.Shards[id].Primary]
		if h == nil || h.Granted.IsZero() || now.Sub(h.Granted) >= lease {
			noLease++
		}
	}
	return down, noLease
}

func (m *Manager) newRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	gauge := func(name, help string, f func() float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, f)
	}
	counter := func(name, help string, v *atomic.Int64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, func() float64 { return float64(v.Load()) })
	}
	mapGauge := func(name, help string, f func(mp *cluster.Map) int) prometheus.Collector {
		return gauge(name, help, func() float64 { return float64(f(m.Map())) })
	}
	b2f := func(b bool) float64 {
		if b {
			return 1
		}
		return 0
	}
	m.met.decisions = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "shoal_manager_autoscale_decisions_total",
		Help: "Decisions of the autoscaler and manual add-shard taken while this manager led, by action.",
	}, []string{"action"})
	for _, a := range autoscaleActions {
		m.met.decisions.WithLabelValues(a)
	}
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		mapCollector{m}, m.met.decisions,
		gauge("shoal_manager_raft_leader", "1 when this manager is the Raft leader.", func() float64 { return b2f(m.IsLeader()) }),
		gauge("shoal_manager_raft_has_leader", "1 when this manager knows a Raft leader (itself or another).", func() float64 {
			addr, _ := m.raft.LeaderWithID()
			return b2f(addr != "")
		}),
		gauge("shoal_manager_raft_term", "Current Raft term.", func() float64 { return float64(m.raft.CurrentTerm()) }),
		gauge("shoal_manager_raft_commit_index", "Raft commit index.", func() float64 { return float64(m.raft.CommitIndex()) }),
		gauge("shoal_manager_raft_applied_index", "Raft index applied to the map.", func() float64 { return float64(m.raft.AppliedIndex()) }),
		gauge("shoal_manager_raft_last_contact_seconds", "Seconds since a follower last heard from the leader (0 on the leader, -1 never).", func() float64 {
			if m.raft.State() == raft.Leader {
				return 0
			}
			t := m.raft.LastContact()
			if t.IsZero() {
				return -1
			}
			return time.Since(t).Seconds()
		}),
		mapGauge("shoal_manager_map_epoch", "Epoch of the cluster map (this manager's copy).", func(mp *cluster.Map) int { return int(mp.Epoch) }),
		mapGauge("shoal_manager_shards", "Shards in the map.", func(mp *cluster.Map) int { return len(mp.Shards) }),
		mapGauge("shoal_manager_unassigned_slots", "Slots no shard owns.", func(mp *cluster.Map) int { return mp.Slots.Count(0) }),
		mapGauge("shoal_manager_migrations_in_progress", "Slot moves in the map (copying, cutover or paused).", func(mp *cluster.Map) int { return len(mp.Migrations) }),
		mapGauge("shoal_manager_migrations_paused", "Slot moves paused by an operator.", func(mp *cluster.Map) int {
			n := 0
			for _, mg := range mp.Migrations {
				if mg.Paused {
					n++
				}
			}
			return n
		}),
		gauge("shoal_manager_shards_unhealthy", "Shards whose primary the leader judges down or is failing over (leader only; 0 on a follower).", func() float64 {
			d, _ := m.leaderView()
			return float64(d)
		}),
		gauge("shoal_manager_primaries_without_lease", "Shard primaries without a live lease granted by this leader: they refuse writes (leader only; 0 on a follower).", func() float64 {
			_, n := m.leaderView()
			return float64(n)
		}),
		counter("shoal_manager_failovers_total", "Failovers (promotions) this manager applied as leader, automatic and manual.", &m.met.failovers),
		counter("shoal_manager_migrations_done_total", "Slot moves this manager completed as leader.", &m.met.movesDone),
		counter("shoal_manager_migrations_failed_total", "Slot move attempts this manager cancelled as leader (the move goes back to copying and retries).", &m.met.movesFailed),
	)
	return reg
}

// adminHandler serves /metrics and /readyz (internal/admin).
func (m *Manager) adminHandler() *admin.Server {
	return admin.New(admin.Config{Gatherer: m.newRegistry(), Ready: m.ready, Log: m.log})
}

// ready is /readyz: Raft has a leader and this manager has applied a
// map (a manager that just started or joined has none yet).
func (m *Manager) ready() error {
	if addr, _ := m.raft.LeaderWithID(); addr == "" {
		return errors.New("no Raft leader known")
	}
	if m.Map().Epoch == 0 {
		return errors.New("no cluster map applied yet")
	}
	return nil
}
