package proxy

import (
	"errors"
	"net"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"shoal/internal/cluster"
	"shoal/internal/command"
	"shoal/internal/memcache"
)

// Prometheus metrics of the proxy (docs/metrics.md lists every name;
// TestProxyMetrics checks the list against a scrape). Each proxy has its
// own registry (many proxies run in one test process).
//
// The per-command series are indexed by command id, not looked up by
// name: a request costs two clock reads and one histogram observation.
// The command label is bounded: the command table's names, "shoal",
// "unknown", and "mc_" + the memcached command names.

// Command label ids beyond the command table.
var (
	cmdShoal   = len(command.ByID)
	cmdUnknown = len(command.ByID) + 1
	cmdMCBase  = len(command.ByID) + 2 // + memcache.Op
	mcOpNames  = map[memcache.Op]string{
		memcache.OpGet: "get", memcache.OpGets: "gets", memcache.OpGat: "gat", memcache.OpGats: "gats",
		memcache.OpTouch: "touch", memcache.OpSet: "set", memcache.OpAdd: "add", memcache.OpReplace: "replace",
		memcache.OpAppend: "append", memcache.OpPrepend: "prepend", memcache.OpCas: "cas", memcache.OpDelete: "delete",
		memcache.OpIncr: "incr", memcache.OpDecr: "decr", memcache.OpFlushAll: "flush_all", memcache.OpVersion: "version",
		memcache.OpVerbosity: "verbosity", memcache.OpQuit: "quit", memcache.OpStats: "stats", memcache.OpMetaGet: "mg",
		memcache.OpMetaSet: "ms", memcache.OpMetaDelete: "md", memcache.OpMetaArith: "ma", memcache.OpMetaNoop: "mn",
		memcache.OpMetaDebug: "me",
	}
	numCmdLabels = cmdMCBase + int(memcache.OpMetaDebug) + 1
)

func cmdLabel(id int) string {
	switch {
	case id < len(command.ByID):
		return command.ByID[id].Name
	case id == cmdShoal:
		return "shoal"
	case id >= cmdMCBase:
		if n, ok := mcOpNames[memcache.Op(id-cmdMCBase)]; ok {
			return "mc_" + n
		}
		return "mc_unknown"
	}
	return "unknown"
}

// mcCmdID is the label id of a memcached request.
func mcCmdID(op memcache.Op) int {
	if _, ok := mcOpNames[op]; ok {
		return cmdMCBase + int(op)
	}
	return cmdMCBase + int(memcache.OpNone)
}

// Retry reasons (the reason label).
const (
	retryMoved = iota
	retryAsk
	retryTryAgain
	retryConn
)

var retryReasons = [...]string{"moved", "ask", "tryagain", "connection"}

type metrics struct {
	reg     *prometheus.Registry
	cmdDur  *prometheus.HistogramVec
	obs     []atomic.Pointer[obsBox] // by command label id, created on first use
	errs    *prometheus.CounterVec
	retries *prometheus.CounterVec
}

type obsBox struct{ o prometheus.Observer }

// latencyBuckets span a pipelined GET (~100 µs) to a blocked command
// or a retried one near its budget (seconds).
var latencyBuckets = []float64{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}

func newMetrics(p *Proxy) *metrics {
	m := &metrics{reg: prometheus.NewRegistry(), obs: make([]atomic.Pointer[obsBox], numCmdLabels)}
	m.cmdDur = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "shoal_proxy_command_duration_seconds",
		Help:    "Time from a request parsed to its reply ready, by command (its _count counts the commands).",
		Buckets: latencyBuckets,
	}, []string{"command"})
	m.errs = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "shoal_proxy_backend_errors_total",
		Help: "Failed backend connections (dial errors, connections lost), by backend address.",
	}, []string{"backend"})
	m.retries = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "shoal_proxy_backend_retries_total",
		Help: "Requests sent again after a backend's redirect or failure, by that backend and reason (moved, ask, tryagain, connection).",
	}, []string{"backend", "reason"})
	counter := func(name, help string, f func() float64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, f)
	}
	gauge := func(name, help string, f func() float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, f)
	}
	ld := func(v *atomic.Int64) func() float64 { return func() float64 { return float64(v.Load()) } }
	hc := func(f func(*hotCache) float64) func() float64 {
		return func() float64 {
			if c := p.hot.cache; c != nil {
				return f(c)
			}
			return 0
		}
	}
	m.reg.MustRegister(
		// With the scheduler's latencies: how long runnable goroutines
		// (event loops included) wait for a processor.
		collectors.NewGoCollector(collectors.WithGoCollectorRuntimeMetrics(collectors.MetricsGC, collectors.MetricsMemory, collectors.MetricsScheduler)),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.cmdDur, m.errs, m.retries,
		gauge("shoal_proxy_connected_clients", "Client connections open (RESP and memcached).", func() float64 { return float64(p.clientCount()) }),
		counter("shoal_proxy_connections_received_total", "Client connections accepted.", ld(&p.stats.conns)),
		counter("shoal_proxy_backend_requests_total", "Requests sent to backends (a split command counts once per shard; retries not included).", ld(&p.stats.cmds)),
		gauge("shoal_proxy_client_output_bytes", "Reply bytes held for clients (answered, not yet written).", func() float64 { return float64(p.outputBytes()) }),
		counter("shoal_proxy_client_output_limit_disconnects_total", "Clients disconnected for passing --client-output-limit.", ld(&p.stats.outputLimitDrops)),
		counter("shoal_proxy_client_query_limit_disconnects_total", "Clients disconnected for passing --client-query-buffer-limit while waiting.", ld(&p.stats.queryLimitDisconnects)),
		counter("shoal_proxy_event_loop_handovers_total", "Clients moved from an event loop to the goroutine path (a command the loop does not serve).", ld(&p.stats.loopHandovers)),
		counter("shoal_proxy_map_refreshes_total", "Cluster maps fetched at once after a redirect or a failed backend (besides the long poll).", ld(&p.stats.mapRefreshes)),
		gauge("shoal_proxy_cluster_epoch", "Epoch of the cluster map the proxy routes by.", func() float64 {
			if rt := p.table.Load(); rt != nil {
				return float64(rt.epoch)
			}
			return 0
		}),
		gauge("shoal_proxy_cluster_shards", "Shards with a primary in the proxy's cluster map.", func() float64 {
			if rt := p.table.Load(); rt != nil {
				return float64(len(rt.shards))
			}
			return 0
		}),
		counter("shoal_proxy_hot_key_sampled_total", "Key accesses counted in the hot-key sketch (sampled: 1 in --hot-key-sample commands).", ld(&p.hot.recorded)),
		gauge("shoal_proxy_hot_key_top_score", "Score of the hottest key (decayed access count, ~accesses per half-life); keys are listed by SHOAL HOTKEYS, not here.", func() float64 {
			if top := p.hot.top(1); len(top) > 0 {
				return float64(top[0].Score)
			}
			return 0
		}),
		counter("shoal_proxy_hot_key_cache_hits_total", "Reads answered from the hot-key cache.", hc(func(c *hotCache) float64 { return float64(c.hits.Load()) })),
		counter("shoal_proxy_hot_key_cache_misses_total", "Reads of a cached hot key sent to the backend (not cached yet, or expired).", hc(func(c *hotCache) float64 { return float64(c.misses.Load()) })),
		counter("shoal_proxy_hot_key_cache_fills_total", "Replies stored in the hot-key cache.", hc(func(c *hotCache) float64 { return float64(c.fills.Load()) })),
		counter("shoal_proxy_hot_key_cache_invalidations_total", "Cached replies dropped by a write through this proxy.", hc(func(c *hotCache) float64 { return float64(c.invalidations.Load()) })),
		gauge("shoal_proxy_hot_key_cache_entries", "Hot keys with a cached reply.", hc(func(c *hotCache) float64 { return float64(c.entries()) })),
		gauge("shoal_proxy_hot_key_cache_bytes", "Bytes of cached replies.", hc(func(c *hotCache) float64 { return float64(c.bytes.Load()) })),
	)
	return m
}

// observe records one command's latency.
func (m *metrics) observe(id int, d time.Duration) {
	b := m.obs[id].Load()
	if b == nil {
		b = &obsBox{m.cmdDur.WithLabelValues(cmdLabel(id))}
		m.obs[id].Store(b) // a race stores the same child twice
	}
	b.o.Observe(d.Seconds())
}

// backendError counts a failed backend connection (rare: a label lookup is fine).
func (p *Proxy) backendError(addr string) {
	p.stats.backendErrs.Add(1)
	p.met.errs.WithLabelValues(addr).Inc()
}

func (m *metrics) retry(addr string, reason int) {
	if addr == "" {
		addr = "none" // the map had no primary for the slot
	}
	m.retries.WithLabelValues(addr, retryReasons[reason]).Inc()
}

// initBackends creates the per-backend series of rt's nodes at 0, so
// they exist (and rate() works) before the first error or retry.
func (m *metrics) initBackends(rt *route) {
	each := func(n *cluster.Node) {
		for _, a := range []string{n.Addr, n.MCAddr} {
			if a == "" {
				continue
			}
			m.errs.WithLabelValues(a)
			for _, r := range retryReasons {
				m.retries.WithLabelValues(a, r)
			}
		}
	}
	for _, n := range rt.prim {
		each(n)
	}
	for _, rs := range rt.repl {
		for _, n := range rs {
			each(n)
		}
	}
}

// Registry is the proxy's Prometheus registry (served on the admin port).
func (p *Proxy) Registry() *prometheus.Registry { return p.met.reg }

// outputBytes sums the reply bytes held for clients.
func (p *Proxy) outputBytes() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	var n int64
	for c := range p.mu.conns {
		n += c.outBytes.Load()
	}
	return n + p.loopOutputBytesLocked()
}

// ready is /readyz: the proxy has a cluster map with shards, and a
// backend connection is usable (a live pooled connection, or a primary
// that accepts a connection now).
func (p *Proxy) ready() error {
	rt := p.table.Load()
	if rt == nil || len(rt.shards) == 0 {
		return errors.New("no cluster map with shards yet")
	}
	p.mu.Lock()
	for _, b := range p.mu.backends {
		b.mu.Lock()
		for _, bc := range b.conns {
			if bc != nil && !bc.dead.Load() {
				b.mu.Unlock()
				p.mu.Unlock()
				return nil
			}
		}
		b.mu.Unlock()
	}
	p.mu.Unlock()
	var last error
	for _, id := range rt.shards {
		nc, err := net.DialTimeout("tcp", rt.addr(id, false), time.Second)
		if err == nil {
			nc.Close()
			return nil
		}
		last = err
	}
	return errors.New("no backend reachable: " + last.Error())
}
