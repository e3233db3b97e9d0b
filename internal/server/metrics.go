package server

import (
	"errors"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"shoal/internal/admin"
	"shoal/internal/config"
)

// Prometheus metrics of a storage node, served on its admin port
// (admin-port / admin-addr; docs/metrics.md lists every name and
// TestServerMetrics checks the list against scrapes).
//
// Nothing here runs per command. The hot path keeps the counters it
// always kept for INFO (per event loop, single writer: dispatch.go's
// statShard, including a fixed-bucket latency histogram per command);
// a scrape reads them through one custom Collector and builds constant
// metrics. Each server has its own registry (many run in one test
// process).

// metricDesc is one metric of the collector: its description and how a
// scrape reads it (nil read: emitted by the collector's own code).
type metricDesc struct {
	d    *prometheus.Desc
	kind prometheus.ValueType
	read func(s *Server) float64
}

func newDesc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(name, help, labels, nil)
}

var (
	descCmdDuration = newDesc("shoal_server_command_duration_seconds",
		"Time of each executed command, from the end of the previous command of its batch (or the batch's start) to its reply ready; by command (_count counts the calls, as INFO commandstats).", "command")
	descCmdRejected = newDesc("shoal_server_commands_rejected_total",
		"Commands refused before running (-OOM, -READONLY, -MISCONF, redirects...), by command.", "command")
	descCmdFailed = newDesc("shoal_server_commands_failed_total",
		"Commands that ran and replied with an error, by command.", "command")
	descRole = newDesc("shoal_server_replication_role",
		"1 for the node's replication role (primary or replica).", "role")
	descReplicaOffset = newDesc("shoal_server_replica_offset",
		"Replication offset a connected replica acknowledged, by replica address (primary side).", "replica")
	descReplicaLagRecords = newDesc("shoal_server_replica_lag_records",
		"Records a connected replica trails this primary by (offset minus its acknowledged offset).", "replica")
	descReplicaLagSeconds = newDesc("shoal_server_replica_lag_seconds",
		"Seconds since a connected replica last acknowledged (INFO's lag).", "replica")
	descReplicaInSync = newDesc("shoal_server_replica_in_sync",
		"1 when a connected replica is in sync (within repl-in-sync-lag of this primary).", "replica")
	descLinkUp = newDesc("shoal_server_replication_link_up",
		"A replica's link to its primary: 1 up, 0 down (replicas only).")
	descMasterLastIO = newDesc("shoal_server_replication_last_io_seconds",
		"Seconds since a replica last heard from its primary (replicas only; -1 never).")
	descMCCommands = newDesc("shoal_server_memcached_commands_total",
		"Memcached commands as memcached's stats count them (get: keys requested; meta: mg, ms, md, ma), by command.", "command")
	descMCGetHits   = newDesc("shoal_server_memcached_get_hits_total", "Memcached keys requested and found (get, gets, gat, gats, mg).")
	descMCGetMisses = newDesc("shoal_server_memcached_get_misses_total", "Memcached keys requested and not found.")
)

// mcCommandStats are the memcached counters exported by command.
var mcCommandStats = []struct {
	idx  int
	name string
}{{mcCmdGet, "get"}, {mcCmdSet, "set"}, {mcCmdTouch, "touch"}, {mcCmdFlush, "flush"}, {mcCmdMeta, "meta"}}

// serverMetrics are the plain gauges and counters, read at scrape time.
var serverMetrics = []metricDesc{
	{newDesc("shoal_server_connected_clients", "Client connections open (RESP and memcached)."), prometheus.GaugeValue,
		func(s *Server) float64 { return float64(s.nclients.Load()) }},
	{newDesc("shoal_server_memcached_connections", "Memcached connections open."), prometheus.GaugeValue,
		func(s *Server) float64 { return float64(s.mcConns.Load()) }},
	{newDesc("shoal_server_connections_received_total", "Client connections accepted (reset by CONFIG RESETSTAT)."), prometheus.CounterValue,
		func(s *Server) float64 { return float64(s.statConns.Load()) }},
	{newDesc("shoal_server_connections_rejected_total", "Client connections refused (maxclients; reset by CONFIG RESETSTAT)."), prometheus.CounterValue,
		func(s *Server) float64 { return float64(s.statRejects.Load()) }},
	{newDesc("shoal_server_memory_used_bytes", "Memory used by the keyspace as Shoal accounts it (INFO used_memory; what maxmemory limits)."), prometheus.GaugeValue,
		func(s *Server) float64 { return float64(s.db.UsedMemory()) }},
	{newDesc("shoal_server_memory_max_bytes", "maxmemory (0: no limit)."), prometheus.GaugeValue,
		func(s *Server) float64 { return float64(s.db.MaxMemory()) }},
	{newDesc("shoal_server_evicted_keys_total", "Keys evicted under maxmemory (reset by CONFIG RESETSTAT)."), prometheus.CounterValue,
		func(s *Server) float64 { return float64(s.db.Stats.Evicted.Load()) }},
	{newDesc("shoal_server_expired_keys_total", "Keys deleted because their TTL passed (reset by CONFIG RESETSTAT)."), prometheus.CounterValue,
		func(s *Server) float64 { return float64(s.db.Stats.Expired.Load()) }},
	{newDesc("shoal_server_keyspace_hits_total", "Key lookups that found the key (reset by CONFIG RESETSTAT)."), prometheus.CounterValue,
		func(s *Server) float64 { h, _ := s.db.HitsMisses(); return float64(h) }},
	{newDesc("shoal_server_keyspace_misses_total", "Key lookups that did not find the key (reset by CONFIG RESETSTAT)."), prometheus.CounterValue,
		func(s *Server) float64 { _, m := s.db.HitsMisses(); return float64(m) }},
	{newDesc("shoal_server_keys", "Keys in the keyspace."), prometheus.GaugeValue,
		func(s *Server) float64 { return float64(s.db.KeyCount()) }},
	{newDesc("shoal_server_keys_volatile", "Keys with a TTL."), prometheus.GaugeValue,
		func(s *Server) float64 { return float64(s.db.VolatileCount()) }},
	{newDesc("shoal_server_loading", "1 while the node loads its data at start (clients get -LOADING)."), prometheus.GaugeValue,
		func(s *Server) float64 { return b2f(s.persist.loading.Load()) }},
	{newDesc("shoal_server_replication_offset", "The node's replication offset: its last record's sequence number (INFO master_repl_offset)."), prometheus.GaugeValue,
		func(s *Server) float64 { return float64(s.lastLSN()) }},
	{newDesc("shoal_server_connected_replicas", "Replicas connected to this node."), prometheus.GaugeValue,
		func(s *Server) float64 { return float64(len(s.replicaList())) }},
	{newDesc("shoal_server_replication_full_syncs_total", "Full resyncs served to replicas."), prometheus.CounterValue,
		func(s *Server) float64 { return float64(s.repl.syncFull.Load()) }},
	{newDesc("shoal_server_replication_partial_syncs_total", "Incremental resyncs served to replicas."), prometheus.CounterValue,
		func(s *Server) float64 { return float64(s.repl.syncPartialOK.Load()) }},
	{newDesc("shoal_server_promotions_total", "Times this node went from replica to primary (a failover to it, or REPLICAOF NO ONE)."), prometheus.CounterValue,
		func(s *Server) float64 { return float64(s.repl.promotions.Load()) }},
	{newDesc("shoal_server_aof_enabled", "1 when the append-only log is on."), prometheus.GaugeValue,
		func(s *Server) float64 { return b2f(s.aof.Load() != nil) }},
	{newDesc("shoal_server_aof_last_write_ok", "0 when the log's last write or fsync failed (writes are refused, -MISCONF), else 1."), prometheus.GaugeValue,
		func(s *Server) float64 {
			lg := s.aof.Load()
			return b2f(lg == nil || lg.Err() == nil)
		}},
	{newDesc("shoal_server_aof_write_errors_total", "Failed writes or fsyncs of the log."), prometheus.CounterValue,
		func(s *Server) float64 {
			if lg := s.aof.Load(); lg != nil {
				return float64(lg.Errors())
			}
			return 0
		}},
	{newDesc("shoal_server_aof_size_bytes", "Bytes in the log's segments (0 when it is off)."), prometheus.GaugeValue,
		func(s *Server) float64 {
			if lg := s.aof.Load(); lg != nil {
				return float64(lg.TotalSize())
			}
			return 0
		}},
	{newDesc("shoal_server_aof_rewrite_in_progress", "1 while the log is being rewritten (a snapshot that lets the log's older segments go)."), prometheus.GaugeValue,
		func(s *Server) float64 { return b2f(s.persist.bgRunning.Load() && s.aof.Load() != nil) }},
	{newDesc("shoal_server_aof_last_rewrite_ok", "0 when the last log rewrite (background snapshot) failed, else 1."), prometheus.GaugeValue,
		func(s *Server) float64 { return b2f(!s.persist.lastFailed.Load()) }},
	{newDesc("shoal_server_aof_rewrites_total", "Log rewrites done."), prometheus.CounterValue,
		func(s *Server) float64 { return float64(s.persist.rewrites.Load()) }},
	{newDesc("shoal_server_snapshot_in_progress", "1 while a snapshot (BGSAVE, save policy, rewrite) is written."), prometheus.GaugeValue,
		func(s *Server) float64 { return b2f(s.persist.bgRunning.Load()) }},
	{newDesc("shoal_server_snapshot_last_save_timestamp_seconds", "Unix time of the last successful snapshot (the start time if none yet)."), prometheus.GaugeValue,
		func(s *Server) float64 { return float64(s.persist.lastSave.Load()) }},
	{newDesc("shoal_server_snapshot_last_save_ok", "0 when the last snapshot failed, else 1."), prometheus.GaugeValue,
		func(s *Server) float64 { return b2f(!s.persist.lastFailed.Load()) }},
	{newDesc("shoal_server_snapshot_changes_since_save", "Writes since the last successful snapshot (INFO rdb_changes_since_last_save)."), prometheus.GaugeValue,
		func(s *Server) float64 { return float64(s.dirty()) }},
	{newDesc("shoal_server_snapshots_total", "Snapshots written."), prometheus.CounterValue,
		func(s *Server) float64 { return float64(s.persist.saves.Load()) }},
	{newDesc("shoal_server_migration_sent_bytes_total", "Bytes sent for slot moves (images and streams) by this node as a source."), prometheus.CounterValue,
		func(s *Server) float64 { return float64(s.moves.sent.Load()) }},
	{newDesc("shoal_server_migration_sent_keys_total", "Keys of slot images this node sent."), prometheus.CounterValue,
		func(s *Server) float64 { return float64(s.moves.sentKeys.Load()) }},
	{newDesc("shoal_server_migration_sent_slots_total", "Slots handed over: moves from this primary's shard that a map it installed completed."), prometheus.CounterValue,
		func(s *Server) float64 { return float64(s.moves.sentSlots.Load()) }},
	{newDesc("shoal_server_migration_received_bytes_total", "Bytes received by this node's slot imports."), prometheus.CounterValue,
		func(s *Server) float64 { return float64(s.moves.recvBytes.Load()) }},
	{newDesc("shoal_server_migration_received_keys_total", "Keys of slot images this node applied."), prometheus.CounterValue,
		func(s *Server) float64 { return float64(s.moves.recvKeys.Load()) }},
	{newDesc("shoal_server_migration_received_slots_total", "Slot imports that ended with this node's shard owning the slot."), prometheus.CounterValue,
		func(s *Server) float64 { return float64(s.moves.recvSlots.Load()) }},
	{newDesc("shoal_server_migration_imports", "Slot imports running on this node."), prometheus.GaugeValue,
		func(s *Server) float64 {
			s.moves.mu.Lock()
			defer s.moves.mu.Unlock()
			return float64(len(s.moves.imports))
		}},
	{newDesc("shoal_server_cluster_map_epoch", "Epoch of the cluster map the node routes by (0: standalone, or none yet)."), prometheus.GaugeValue,
		func(s *Server) float64 {
			if v := s.clus.view.Load(); v != nil {
				return float64(v.epoch)
			}
			return 0
		}},
	{newDesc("shoal_server_cluster_lease_seconds", "Time left on a cluster primary's lease from the manager (0: none; a primary without a lease refuses writes)."), prometheus.GaugeValue,
		func(s *Server) float64 {
			if s.agent == nil {
				return 0
			}
			return max(0, float64(s.agent.lease.Load()-nanotime())/1e9)
		}},
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// collector is the server's prometheus.Collector.
type collector struct{ s *Server }

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descCmdDuration, descCmdRejected, descCmdFailed, descRole,
		descReplicaOffset, descReplicaLagRecords, descReplicaLagSeconds, descReplicaInSync, descLinkUp, descMasterLastIO,
		descMCCommands, descMCGetHits, descMCGetMisses} {
		ch <- d
	}
	for _, m := range serverMetrics {
		ch <- m.d
	}
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	s := c.s
	for _, m := range serverMetrics {
		ch <- prometheus.MustNewConstMetric(m.d, m.kind, m.read(s))
	}
	s.collectCommands(ch)
	s.collectReplication(ch)
	mc := s.mcCounters()
	for _, c := range mcCommandStats {
		ch <- prometheus.MustNewConstMetric(descMCCommands, prometheus.CounterValue, float64(mc[c.idx]), c.name)
	}
	ch <- prometheus.MustNewConstMetric(descMCGetHits, prometheus.CounterValue, float64(mc[mcGetHits]))
	ch <- prometheus.MustNewConstMetric(descMCGetMisses, prometheus.CounterValue, float64(mc[mcGetMisses]))
}

// latBounds are the histogram's upper bounds, in seconds.
var latBounds = func() []float64 {
	b := make([]float64, latBuckets-1)
	for i := range b {
		b[i] = latBound(i)
	}
	return b
}()

// collectCommands sums the loops' per-command counters and histograms
// (raw totals: CONFIG RESETSTAT does not reset these counters). A
// command appears once it was called, refused or failed.
func (s *Server) collectCommands(ch chan<- prometheus.Metric) {
	initDefs()
	type total struct {
		nsec, rejected, failed int64
		lat                    [latBuckets]uint64
	}
	tot := make([]total, len(defs))
	s.shardsMu.Lock()
	for _, sh := range s.shards {
		for i := range sh.cmd {
			st, t := &sh.cmd[i], &tot[i]
			t.nsec += st.nsec.Load()
			t.rejected += st.rejected.Load()
			t.failed += st.failed.Load()
			for j := range st.lat {
				t.lat[j] += uint64(st.lat[j].Load())
			}
		}
	}
	s.shardsMu.Unlock()
	for name, d := range defs {
		t := &tot[d.idx]
		var calls uint64
		for _, n := range t.lat {
			calls += n
		}
		if calls == 0 && t.rejected == 0 && t.failed == 0 {
			continue
		}
		// Cumulative buckets; the count (the calls) is their sum.
		buckets := make(map[float64]uint64, len(latBounds))
		var cum uint64
		for j, b := range latBounds {
			cum += t.lat[j]
			buckets[b] = cum
		}
		cum += t.lat[latBuckets-1]
		ch <- prometheus.MustNewConstHistogram(descCmdDuration, cum, float64(t.nsec)/1e9, buckets, name)
		ch <- prometheus.MustNewConstMetric(descCmdRejected, prometheus.CounterValue, float64(t.rejected), name)
		ch <- prometheus.MustNewConstMetric(descCmdFailed, prometheus.CounterValue, float64(t.failed), name)
	}
}

func (s *Server) collectReplication(ch chan<- prometheus.Metric) {
	r := &s.repl
	now := time.Now().UnixMilli()
	if r.isReplica.Load() {
		ch <- prometheus.MustNewConstMetric(descRole, prometheus.GaugeValue, 1, "replica")
		r.mu.Lock()
		l := r.link
		r.mu.Unlock()
		up, io := false, -1.0
		if l != nil {
			up = l.upSince.Load() != 0
			if t := l.lastIO.Load(); t > 0 {
				io = float64(now-t) / 1000
			}
		}
		ch <- prometheus.MustNewConstMetric(descLinkUp, prometheus.GaugeValue, b2f(up))
		ch <- prometheus.MustNewConstMetric(descMasterLastIO, prometheus.GaugeValue, io)
	} else {
		ch <- prometheus.MustNewConstMetric(descRole, prometheus.GaugeValue, 1, "primary")
	}
	var lagMs int
	s.cfg.Read(func(c *config.Config) { lagMs = c.ReplInSyncLag })
	off := s.lastLSN()
	for _, x := range s.replicaList() {
		addr := net.JoinHostPort(x.ip, strconv.Itoa(x.port))
		ack := x.ack.Load()
		ch <- prometheus.MustNewConstMetric(descReplicaOffset, prometheus.GaugeValue, float64(ack), addr)
		ch <- prometheus.MustNewConstMetric(descReplicaLagRecords, prometheus.GaugeValue, float64(off-min(off, ack)), addr)
		ch <- prometheus.MustNewConstMetric(descReplicaLagSeconds, prometheus.GaugeValue, float64(now-x.ackMs.Load())/1000, addr)
		ch <- prometheus.MustNewConstMetric(descReplicaInSync, prometheus.GaugeValue, b2f(s.inSync(x, now, lagMs)), addr)
	}
}

// newRegistry builds the server's registry: its collector plus the Go
// runtime's and the process's.
func (s *Server) newRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collector{s},
		// With the scheduler's latencies: how long runnable goroutines
		// (event loops included) wait for a processor.
		collectors.NewGoCollector(collectors.WithGoCollectorRuntimeMetrics(collectors.MetricsGC, collectors.MetricsMemory, collectors.MetricsScheduler)),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// adminAddr is where the admin endpoint listens ("" = off): admin-addr,
// or admin-port on the first bind address that can be bound.
func (s *Server) adminAddr() string {
	var addr string
	var port int
	var binds []string
	s.cfg.Read(func(c *config.Config) { addr, port, binds = c.AdminAddr, c.AdminPort, c.Bind })
	if addr != "" || port == 0 {
		return addr
	}
	for _, b := range binds {
		optional := strings.HasPrefix(b, "-")
		b = strings.TrimPrefix(b, "-")
		if optional && !canBind(b) {
			continue
		}
		if b == "*" {
			b = "0.0.0.0"
		}
		return net.JoinHostPort(b, strconv.Itoa(port))
	}
	return ""
}

// startAdmin starts the admin endpoint when one is configured.
func (s *Server) startAdmin() error {
	addr := s.adminAddr()
	if addr == "" {
		return nil
	}
	reg := s.newRegistry()
	a := admin.New(admin.Config{Addr: addr, Gatherer: reg, Ready: s.ready, Log: s.log})
	if err := a.Start(); err != nil {
		return err
	}
	s.reg, s.adm = reg, a
	s.log.Info("admin endpoint", "addr", a.Addr())
	return nil
}

// AdminAddr is the admin endpoint's address ("" when it is off).
func (s *Server) AdminAddr() string {
	if s.adm == nil {
		return ""
	}
	return s.adm.Addr()
}

// Registry is the server's Prometheus registry (nil when the admin
// endpoint is off).
func (s *Server) Registry() *prometheus.Registry { return s.reg }

// ready is /readyz: the data is loaded; in cluster mode a map is
// installed; a replica's link to its primary is up.
func (s *Server) ready() error {
	if s.persist.loading.Load() {
		return errors.New("loading the data set")
	}
	if s.clusterMode {
		if v := s.clus.view.Load(); v == nil || v.m == nil {
			return errors.New("no cluster map installed yet")
		}
	}
	if s.repl.isReplica.Load() {
		s.repl.mu.Lock()
		l := s.repl.link
		s.repl.mu.Unlock()
		if l == nil || l.upSince.Load() == 0 {
			return errors.New("the link to the primary is down")
		}
	}
	return nil
}
