package server

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"shoal/internal/config"
	"shoal/internal/engine"
	"shoal/internal/glob"
)

// Server administration: INFO, CONFIG, DEBUG, SHUTDOWN, LATENCY, LASTSAVE,
// ROLE, MEMORY. CLIENT is in cmd_client.go, COMMAND in cmd_command.go.

func init() {
	register("info", cmdInfo)
	register("config", cmdConfig)
	register("debug", cmdDebug)
	register("shutdown", cmdShutdown)
	register("latency", cmdLatency)
	register("lastsave", func(c *Ctx) { c.w.Int(c.srv.persist.lastSave.Load()) })
	register("role", cmdRole)
	register("memory", cmdMemory)
}

// statsSamples is how many 100 ms samples the instantaneous_* metrics
// average over (Redis's STATS_METRIC_SAMPLES).
const statsSamples = 16

type metricRing struct {
	samples [statsSamples]float64
	idx     int
	last    int64
}

// add records the rate of counter since the previous sample.
func (m *metricRing) add(counter int64, elapsed time.Duration) {
	if elapsed <= 0 {
		return
	}
	m.samples[m.idx] = float64(counter-m.last) / elapsed.Seconds()
	m.idx = (m.idx + 1) % statsSamples
	m.last = counter
}

func (m *metricRing) avg() float64 {
	var sum float64
	for _, v := range m.samples {
		sum += v
	}
	return sum / statsSamples
}

// adminState holds what INFO and the admin commands need beyond the
// server's counters. The rings are written by the cron only.
type adminState struct {
	mu         sync.Mutex // guards the rings and lastSample
	ops        metricRing
	netIn      metricRing
	netOut     metricRing
	lastSample time.Time

	peakMem        atomic.Int64
	noActiveExpire atomic.Bool // DEBUG SET-ACTIVE-EXPIRE 0

	idsOnce sync.Once
	runID   string
	replID  string
}

func (a *adminState) ids() (runID, replID string) {
	a.idsOnce.Do(func() {
		a.runID, a.replID = randomHex40(), randomHex40()
	})
	return a.runID, a.replID
}

func randomHex40() string {
	var b [20]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// adminCron samples the rate metrics and tracks the memory peak; the
// cron calls it every 100 ms.
func (s *Server) adminCron() {
	s.trackPeak()
	a := &s.admin
	now := time.Now()
	a.mu.Lock()
	cmds := s.totalCommands()
	in, out := s.NetBytes()
	if !a.lastSample.IsZero() {
		el := now.Sub(a.lastSample)
		a.ops.add(cmds, el)
		a.netIn.add(in, el)
		a.netOut.add(out, el)
	} else {
		a.ops.last, a.netIn.last, a.netOut.last = cmds, in, out
	}
	a.lastSample = now
	a.mu.Unlock()
}

func (s *Server) trackPeak() int64 {
	used := s.db.UsedMemory()
	for {
		p := s.admin.peakMem.Load()
		if used <= p {
			return p
		}
		if s.admin.peakMem.CompareAndSwap(p, used) {
			return used
		}
	}
}

// ---------------------------------------------------------------- INFO

var defaultSections = []string{"server", "clients", "memory", "persistence", "stats", "replication", "cpu", "modules", "errorstats", "cluster", "keyspace"}
var allSections = []string{"server", "clients", "memory", "persistence", "stats", "replication", "cpu", "modules", "commandstats", "errorstats", "cluster", "keyspace"}

func cmdInfo(c *Ctx) {
	want := map[string]bool{}
	if len(c.args) == 1 {
		for _, s := range defaultSections {
			want[s] = true
		}
	}
	for _, a := range c.args[1:] {
		switch n := strings.ToLower(string(a)); n {
		case "all", "everything":
			for _, s := range allSections {
				want[s] = true
			}
		case "default":
			for _, s := range defaultSections {
				want[s] = true
			}
		default:
			want[n] = true
		}
	}
	c.w.Verbatim(c.srv.info(want))
}

// info renders the wanted sections in Redis's order.
func (s *Server) info(want map[string]bool) string {
	var b strings.Builder
	first := true
	for _, sec := range allSections {
		if !want[sec] {
			continue
		}
		if !first {
			b.WriteString("\r\n")
		}
		first = false
		s.infoSection(&b, sec)
	}
	return b.String()
}

func bytesHuman(n int64) string {
	f := float64(n)
	switch {
	case n < 1024:
		return strconv.FormatInt(n, 10) + "B"
	case n < 1<<20:
		return fmt.Sprintf("%.2fK", f/(1<<10))
	case n < 1<<30:
		return fmt.Sprintf("%.2fM", f/(1<<20))
	case n < 1<<40:
		return fmt.Sprintf("%.2fG", f/(1<<30))
	default:
		return fmt.Sprintf("%.2fT", f/(1<<40))
	}
}

// rssBytes is the process's resident set size (Linux /proc), falling back
// to the memory the Go runtime obtained from the OS.
func rssBytes() int64 {
	if b, err := os.ReadFile("/proc/self/statm"); err == nil {
		f := strings.Fields(string(b))
		if len(f) > 1 {
			if pages, err := strconv.ParseInt(f[1], 10, 64); err == nil {
				return pages * int64(os.Getpagesize())
			}
		}
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.Sys)
}

func tvSeconds(tv syscall.Timeval) float64 {
	return float64(tv.Sec) + float64(tv.Usec)/1e6
}

func (s *Server) countClients() (total, blocked, pubsub int) {
	s.clientsMu.Lock()
	defer s.clientsMu.Unlock()
	for _, cl := range s.clients {
		total++
		if cl.isBlocked() {
			blocked++
		}
		if cl.nsubs.Load() > 0 {
			pubsub++
		}
	}
	return
}

func (s *Server) infoSection(b *strings.Builder, sec string) {
	line := func(k string, v any) { fmt.Fprintf(b, "%s:%v\r\n", k, v) }
	var cf struct {
		port, hz, maxClients int
		maxmem               int64
		policy               string
	}
	s.cfg.Read(func(c *config.Config) {
		cf.port, cf.hz, cf.maxClients, cf.maxmem, cf.policy = c.Port, c.Hz, c.MaxClients, c.MaxMemory, c.MaxMemoryPolicy
	})
	now := time.Now()
	runID, _ := s.admin.ids()
	switch sec {
	case "server":
		b.WriteString("# Server\r\n")
		line("redis_version", RedisVersion)
		line("shoal_version", ShoalVersion)
		line("redis_git_sha1", "00000000")
		line("redis_git_dirty", 0)
		line("redis_build_id", "0")
		line("redis_mode", "standalone")
		line("os", runtime.GOOS+" "+runtime.GOARCH)
		line("arch_bits", strconv.IntSize)
		line("monotonic_clock", "POSIX clock_gettime")
		line("multiplexing_api", "epoll")
		line("go_version", runtime.Version())
		line("process_id", os.Getpid())
		line("process_supervised", "no")
		line("run_id", runID)
		line("tcp_port", cf.port)
		line("server_time_usec", now.UnixMicro())
		up := int64(now.Sub(s.startTime).Seconds())
		line("uptime_in_seconds", up)
		line("uptime_in_days", up/86400)
		line("hz", cf.hz)
		line("configured_hz", cf.hz)
		line("lru_clock", s.db.LRUClock())
		exe, _ := os.Executable()
		line("executable", exe)
		line("config_file", s.cfg.File())
		line("io_threads_active", 0)
	case "clients":
		total, blocked, _ := s.countClients()
		b.WriteString("# Clients\r\n")
		line("connected_clients", total)
		line("cluster_connections", 0)
		line("maxclients", cf.maxClients)
		line("client_recent_max_input_buffer", 0)
		line("client_recent_max_output_buffer", 0)
		line("blocked_clients", blocked)
		line("tracking_clients", 0)
		line("clients_in_timeout_table", blocked)
	case "memory":
		used := s.db.UsedMemory()
		peak := s.trackPeak()
		rss := rssBytes()
		b.WriteString("# Memory\r\n")
		line("used_memory", used)
		line("used_memory_human", bytesHuman(used))
		line("used_memory_rss", rss)
		line("used_memory_rss_human", bytesHuman(rss))
		line("used_memory_peak", peak)
		line("used_memory_peak_human", bytesHuman(peak))
		perc := 100.0
		if peak > 0 {
			perc = float64(used) * 100 / float64(peak)
		}
		line("used_memory_peak_perc", fmt.Sprintf("%.2f%%", perc))
		line("used_memory_overhead", 0)
		line("used_memory_startup", 0)
		line("used_memory_dataset", used)
		line("used_memory_dataset_perc", "100.00%")
		line("maxmemory", cf.maxmem)
		line("maxmemory_human", bytesHuman(cf.maxmem))
		line("maxmemory_policy", cf.policy)
		ratio := 0.0
		if used > 0 {
			ratio = float64(rss) / float64(used)
		}
		line("mem_fragmentation_ratio", fmt.Sprintf("%.2f", ratio))
		line("mem_fragmentation_bytes", rss-used)
		line("mem_not_counted_for_evict", 0)
		line("mem_replication_backlog", 0)
		line("mem_clients_slaves", 0)
		line("mem_clients_normal", s.clientOutputBytes())
		line("mem_aof_buffer", 0)
		line("mem_allocator", "go")
		line("lazyfree_pending_objects", 0)
	case "persistence":
		s.infoPersistence(b, line)
	case "stats":
		s.admin.mu.Lock()
		ops, in, out := s.admin.ops.avg(), s.admin.netIn.avg(), s.admin.netOut.avg()
		s.admin.mu.Unlock()
		s.hub.mu.RLock()
		nch, npat := len(s.hub.channels), len(s.hub.patterns)
		s.hub.mu.RUnlock()
		st := &s.db.Stats
		var failed, rejected, cmds int64
		for _, t := range s.cmdTotals() {
			failed += t.Failed
			rejected += t.Rejected
			cmds += t.Calls + t.Rejected
		}
		netIn, netOut := s.NetBytes()
		hits, misses := s.db.HitsMisses()
		b.WriteString("# Stats\r\n")
		line("total_connections_received", s.statConns.Load())
		line("total_commands_processed", cmds)
		line("instantaneous_ops_per_sec", int64(ops+0.5))
		line("total_net_input_bytes", netIn)
		line("total_net_output_bytes", netOut)
		line("instantaneous_input_kbps", fmt.Sprintf("%.2f", in/1024))
		line("instantaneous_output_kbps", fmt.Sprintf("%.2f", out/1024))
		line("rejected_connections", s.statRejects.Load())
		// Where redis reports them (INFO replication repeats them).
		line("sync_full", s.repl.syncFull.Load())
		line("sync_partial_ok", s.repl.syncPartialOK.Load())
		line("sync_partial_err", s.repl.syncPartialErr.Load())
		line("expired_keys", st.Expired.Load())
		line("expired_stale_perc", "0.00")
		line("expired_time_cap_reached_count", 0)
		line("evicted_keys", st.Evicted.Load())
		line("evicted_clients", 0)
		line("keyspace_hits", hits)
		line("keyspace_misses", misses)
		line("pubsub_channels", nch)
		line("pubsub_patterns", npat)
		line("pubsubshard_channels", 0)
		line("latest_fork_usec", 0)
		line("total_forks", 0)
		line("total_error_replies", failed+rejected)
	case "replication":
		b.WriteString("# Replication\r\n")
		s.infoReplication(line)
	case "cpu":
		var self, children syscall.Rusage
		_ = syscall.Getrusage(syscall.RUSAGE_SELF, &self)
		_ = syscall.Getrusage(syscall.RUSAGE_CHILDREN, &children)
		b.WriteString("# CPU\r\n")
		line("used_cpu_sys", fmt.Sprintf("%.6f", tvSeconds(self.Stime)))
		line("used_cpu_user", fmt.Sprintf("%.6f", tvSeconds(self.Utime)))
		line("used_cpu_sys_children", fmt.Sprintf("%.6f", tvSeconds(children.Stime)))
		line("used_cpu_user_children", fmt.Sprintf("%.6f", tvSeconds(children.Utime)))
	case "modules":
		b.WriteString("# Modules\r\n")
	case "commandstats":
		b.WriteString("# Commandstats\r\n")
		names := make([]string, 0, len(defs))
		for n := range defs {
			names = append(names, n)
		}
		sort.Strings(names)
		totals := s.cmdTotals()
		for _, n := range names {
			t := totals[defs[n].idx]
			calls, usec, rej, fail := t.Calls, t.Usec, t.Rejected, t.Failed
			if calls == 0 && rej == 0 && fail == 0 {
				continue
			}
			per := 0.0
			if calls > 0 {
				per = float64(usec) / float64(calls)
			}
			fmt.Fprintf(b, "cmdstat_%s:calls=%d,usec=%d,usec_per_call=%.2f,rejected_calls=%d,failed_calls=%d\r\n",
				n, calls, usec, per, rej, fail)
		}
	case "errorstats":
		b.WriteString("# Errorstats\r\n")
	case "cluster":
		b.WriteString("# Cluster\r\n")
		line("cluster_enabled", b2i(s.clusterMode))
		s.agentInfo(line)
		if s.clusterMode {
			s.cutoverInfo(line)
		}
	case "keyspace":
		b.WriteString("# Keyspace\r\n")
		if n := s.db.KeyCount(); n > 0 {
			fmt.Fprintf(b, "db0:keys=%d,expires=%d,avg_ttl=0\r\n", n, s.db.VolatileCount())
		}
	}
}

func (s *Server) clientOutputBytes() int64 {
	s.clientsMu.Lock()
	defer s.clientsMu.Unlock()
	var n int64
	for _, cl := range s.clients {
		n += cl.outBytes.Load()
	}
	return n
}

// resetStats is CONFIG RESETSTAT.
func (s *Server) resetStats() {
	s.statConns.Store(0)
	s.statRejects.Store(0)
	s.clus.pauses.Store(0)
	s.clus.pauseMaxUs.Store(0)
	s.clus.pauseLast.Store(0)
	s.ResetCommandStats()
	s.db.ResetStats()
	s.admin.peakMem.Store(s.db.UsedMemory())
	s.admin.mu.Lock()
	s.admin.ops, s.admin.netIn, s.admin.netOut = metricRing{}, metricRing{}, metricRing{}
	s.admin.lastSample = time.Time{}
	s.admin.mu.Unlock()
}

// ---------------------------------------------------------------- CONFIG

// subArity checks a subcommand's argument count (Redis's arity rules)
// and writes the standard error for "container|sub".
func (c *Ctx) subArity(arity int) bool {
	n := len(c.args)
	if (arity >= 0 && n == arity) || (arity < 0 && n >= -arity) {
		return true
	}
	c.w.Error(errArity(c.spec.Name + "|" + strings.ToLower(string(c.args[1]))))
	return false
}

func cmdConfig(c *Ctx) {
	switch strings.ToLower(string(c.args[1])) {
	case "get":
		if !c.subArity(-3) {
			return
		}
		var out [][2]string
		seen := map[string]bool{}
		for _, p := range c.args[2:] {
			for _, kv := range c.srv.cfg.Get(string(p), glob.Match) {
				if !seen[kv[0]] {
					seen[kv[0]] = true
					out = append(out, kv)
				}
			}
		}
		c.w.Map(len(out))
		for _, kv := range out {
			c.w.BulkString(kv[0])
			c.w.BulkString(kv[1])
		}
	case "set":
		if len(c.args) < 4 || len(c.args)%2 != 0 {
			if len(c.args) < 4 {
				c.subArity(-4)
				return
			}
			c.w.Error("ERR Unknown option or number of arguments for CONFIG SET - '" + string(c.args[len(c.args)-1]) + "'")
			return
		}
		pairs := make([][2]string, 0, (len(c.args)-2)/2)
		for i := 2; i+1 < len(c.args); i += 2 {
			pairs = append(pairs, [2]string{string(c.args[i]), string(c.args[i+1])})
		}
		if err := c.srv.cfg.SetMany(pairs, true); err != nil {
			var se *config.SetError
			if errors.As(err, &se) && se.Unknown {
				c.w.Error("ERR Unknown option or number of arguments for CONFIG SET - '" + se.Name + "'")
			} else if se != nil {
				c.w.Error("ERR CONFIG SET failed (possibly related to argument '" + se.Name + "') - " + se.Err.Error())
			} else {
				c.w.Error("ERR " + err.Error())
			}
			return
		}
		c.w.OK()
	case "resetstat":
		if !c.subArity(2) {
			return
		}
		c.srv.resetStats()
		c.srv.slow.mu.Lock()
		c.srv.slow.entries = nil
		c.srv.slow.mu.Unlock()
		c.w.OK()
	case "rewrite":
		if !c.subArity(2) {
			return
		}
		if err := c.srv.cfg.Rewrite(c.srv.aclLines()); err != nil {
			if errors.Is(err, config.ErrNoFile) {
				c.w.Error("ERR The server is running without a config file")
				return
			}
			c.srv.log.Warn("CONFIG REWRITE failed", "err", err)
			c.w.Error("ERR Rewriting config file: " + err.Error())
			return
		}
		c.w.OK()
	case "help":
		helpReply(c.w, "CONFIG", []string{
			"GET <pattern>",
			"    Return parameters matching the glob-like <pattern> and their values.",
			"SET <directive> <value>",
			"    Set the configuration <directive> to <value>.",
			"RESETSTAT",
			"    Reset statistics reported by the INFO command.",
			"REWRITE",
			"    Rewrite the configuration file.",
		})
	default:
		unknownSubcommand(c)
	}
}

// ---------------------------------------------------------------- DEBUG

func cmdDebug(c *Ctx) {
	switch strings.ToLower(string(c.args[1])) {
	case "sleep":
		if len(c.args) != 3 {
			break
		}
		f, ok := parseFloat(c.args[2])
		if !ok || f < 0 || f > 1e6 {
			c.w.Error(errNotFloat)
			return
		}
		// Like Redis, this blocks the event loop (the connections it owns).
		time.Sleep(time.Duration(f * float64(time.Second)))
		c.w.OK()
		return
	case "set-active-expire":
		if len(c.args) != 3 {
			break
		}
		v, ok := parseInt(c.args[2])
		if !ok {
			c.w.Error(errNotInt)
			return
		}
		c.srv.admin.noActiveExpire.Store(v == 0)
		c.w.OK()
		return
	case "reload":
		if len(c.args) != 2 {
			break
		}
		debugReload(c)
		return
	case "digest-slot":
		debugDigestSlot(c)
		return
	case "digest":
		if len(c.args) != 2 {
			break
		}
		debugDigest(c)
		return
	case "help":
		helpReply(c.w, "DEBUG", []string{
			"DIGEST",
			"    Output a hex signature representing the current DB content.",
			"DIGEST-SLOT <slot>",
			"    Output a hex signature of one slot's content (equal on a primary and its in-sync replicas).",
			"RELOAD",
			"    Save the RDB on disk and reload it back to memory.",
			"SET-ACTIVE-EXPIRE <0|1>",
			"    Setting it to 0 disables expiring keys in background when they are not accessed.",
			"SLEEP <seconds>",
			"    Stop the server for <seconds>. Decimals allowed.",
		})
		return
	}
	c.w.Error("ERR unknown subcommand or wrong number of arguments for '" + string(c.args[1]) + "'. Try DEBUG HELP.")
}

// ---------------------------------------------------------------- SHUTDOWN

func cmdShutdown(c *Ctx) {
	if c.cl.inMulti {
		c.w.Error("ERR Command not allowed inside a transaction")
		c.cl.flagMultiError()
		return
	}
	var save, nosave, abort, force bool
	for _, a := range c.args[1:] {
		switch {
		case eq(a, "save"):
			save = true
		case eq(a, "nosave"):
			nosave = true
		case eq(a, "now"):
		case eq(a, "force"):
			force = true
		case eq(a, "abort"):
			abort = true
		default:
			c.w.Error(errSyntax)
			return
		}
	}
	if (abort && len(c.args) != 2) || (save && nosave) {
		c.w.Error(errSyntax)
		return
	}
	if abort {
		c.w.Error("ERR No shutdown in progress.")
		return
	}
	// As Redis: save when asked to, or by default when a save policy is
	// configured; NOSAVE never saves. FORCE shuts down even if it fails.
	var policy bool
	c.srv.cfg.Read(func(cf *config.Config) { policy = len(cf.SavePoints) > 0 })
	if save || (policy && !nosave) {
		if err := c.srv.save("SHUTDOWN"); err != nil && !force {
			c.srv.log.Warn("SHUTDOWN aborted: the snapshot could not be saved", "err", err)
			c.w.Error("ERR Errors trying to SHUTDOWN. Check logs.")
			return
		}
	}
	c.srv.requestShutdown()
	// Redis sends no reply: the connection just closes.
	c.cl.closeAfterReply = true
}

// requestShutdown signals ShutdownRequested and stops the server. Close
// waits for the event loops, so it runs on its own goroutine, not on the
// loop that ran SHUTDOWN.
func (s *Server) requestShutdown() {
	s.shutOnce.Do(func() {
		s.log.Info("user requested shutdown")
		close(s.shutdown)
		go func() { _ = s.Close() }()
	})
}

// ---------------------------------------------------------------- LATENCY

func cmdLatency(c *Ctx) {
	// The latency monitor is disabled (latency-monitor-threshold 0), so
	// there are never events: every subcommand answers with no samples.
	switch strings.ToLower(string(c.args[1])) {
	case "latest":
		if c.subArity(2) {
			c.w.Array(0)
		}
	case "history":
		if c.subArity(3) {
			c.w.Array(0)
		}
	case "reset":
		if c.subArity(-2) {
			c.w.Int(0)
		}
	case "graph":
		if c.subArity(3) {
			c.w.Error("ERR No samples available for event '" + string(c.args[2]) + "'")
		}
	case "histogram":
		if c.subArity(-2) {
			c.w.Map(0)
		}
	case "doctor":
		if c.subArity(2) {
			c.w.Verbatim("I'm sorry, Dave, I can't do that. Latency monitoring is disabled in this Shoal instance.\n")
		}
	case "help":
		helpReply(c.w, "LATENCY", []string{
			"DOCTOR",
			"    Return a human readable latency analysis report.",
			"GRAPH <event>",
			"    Return an ASCII latency graph for the <event> class.",
			"HISTORY <event>",
			"    Return time-latency samples for the <event> class.",
			"LATEST",
			"    Return the latest latency samples for all events.",
			"RESET [<event> ...]",
			"    Reset latency data of one or more <event> classes.",
			"    (default: reset all data for all event classes)",
			"HISTOGRAM [COMMAND ...]",
			"    Return a cumulative distribution of latencies in the format of a histogram for the specified command names.",
			"    If no commands are specified then all histograms are replied.",
		})
	default:
		unknownSubcommand(c)
	}
}

func cmdRole(c *Ctx) {
	s := c.srv
	if s.repl.isReplica.Load() {
		s.repl.mu.Lock()
		l := s.repl.link
		s.repl.mu.Unlock()
		c.w.Array(5)
		c.w.BulkString("slave")
		if l == nil {
			c.w.BulkString("")
			c.w.Int(0)
			c.w.BulkString("connect")
			c.w.Int(-1)
			return
		}
		c.w.BulkString(l.host)
		c.w.Int(int64(l.port))
		c.w.BulkString(*l.state.Load())
		c.w.Int(int64(s.lastLSN()))
		return
	}
	reps := s.replicaList()
	c.w.Array(3)
	c.w.BulkString("master")
	c.w.Int(int64(s.lastLSN()))
	c.w.Array(len(reps))
	for _, r := range reps {
		c.w.Array(3)
		c.w.BulkString(r.ip)
		c.w.BulkString(strconv.Itoa(r.port))
		c.w.BulkString(strconv.FormatUint(r.ack.Load(), 10))
	}
}

// ---------------------------------------------------------------- MEMORY

func cmdMemory(c *Ctx) {
	s := c.srv
	switch strings.ToLower(string(c.args[1])) {
	case "usage":
		if len(c.args) != 3 && len(c.args) != 5 {
			c.w.Error(errSyntax)
			return
		}
		if len(c.args) == 5 {
			if !eq(c.args[3], "samples") {
				c.w.Error(errSyntax)
				return
			}
			if _, ok := c.intArg(4); !ok {
				return
			}
		}
		key := c.args[2]
		e := c.db.Peek(c.slot(key), key)
		if e == nil {
			c.w.Null()
			return
		}
		c.w.Int(engine.KeyCost(len(key)) + e.MemSize())
	case "stats":
		if !c.subArity(2) {
			return
		}
		used := s.db.UsedMemory()
		peak := s.trackPeak()
		keys := s.db.KeyCount()
		perKey := int64(0)
		if keys > 0 {
			perKey = used / keys
		}
		rss := rssBytes()
		c.w.Map(14)
		c.w.BulkString("peak.allocated")
		c.w.Int(peak)
		c.w.BulkString("total.allocated")
		c.w.Int(used)
		c.w.BulkString("startup.allocated")
		c.w.Int(0)
		c.w.BulkString("replication.backlog")
		c.w.Int(0)
		c.w.BulkString("clients.slaves")
		c.w.Int(0)
		c.w.BulkString("clients.normal")
		c.w.Int(s.clientOutputBytes())
		c.w.BulkString("aof.buffer")
		c.w.Int(0)
		c.w.BulkString("overhead.total")
		c.w.Int(keys * engine.KeyCost(0))
		c.w.BulkString("keys.count")
		c.w.Int(keys)
		c.w.BulkString("keys.bytes-per-key")
		c.w.Int(perKey)
		c.w.BulkString("dataset.bytes")
		c.w.Int(used)
		c.w.BulkString("dataset.percentage")
		c.w.Double(100)
		c.w.BulkString("peak.percentage")
		if peak > 0 {
			c.w.Double(float64(used) * 100 / float64(peak))
		} else {
			c.w.Double(100)
		}
		c.w.BulkString("rss-bytes")
		c.w.Int(rss)
	case "doctor":
		if !c.subArity(2) {
			return
		}
		used, max := s.db.UsedMemory(), s.db.MaxMemory()
		var msg string
		switch {
		case s.db.KeyCount() == 0:
			msg = "Hi Sam, this instance is empty or is using very little memory, my issues detector can't be used in these conditions. Please, leave for your mission on Earth and fill it with some data. The new Sam and I will be back to our programming as soon as I finished rebooting."
		case max > 0 && used > max*9/10:
			msg = fmt.Sprintf("Sam, I detected a few issues in this Shoal instance memory implants:\n\n * High memory usage: the dataset uses %s of maxmemory %s. Consider raising maxmemory or choosing an eviction policy.\n", bytesHuman(used), bytesHuman(max))
		default:
			msg = "Hi Sam, I can't find any memory issue in your instance. I can only account for what occurs on this base."
		}
		c.w.Verbatim(msg + "\n")
	case "malloc-stats":
		if c.subArity(2) {
			c.w.Verbatim("Stats not supported for the current allocator\n")
		}
	case "purge":
		if c.subArity(2) {
			debug.FreeOSMemory()
			c.w.OK()
		}
	case "help":
		helpReply(c.w, "MEMORY", []string{
			"DOCTOR",
			"    Return memory problems reports.",
			"MALLOC-STATS",
			"    Return internal statistics report from the memory allocator.",
			"PURGE",
			"    Attempt to purge dirty pages for reclamation by the allocator.",
			"STATS",
			"    Return information about the memory usage of the server.",
			"USAGE <key> [SAMPLES <count>]",
			"    Return memory in bytes used by <key> and its value. Nested values are",
			"    sampled up to <count> times (default: 5, 0 means sample all).",
		})
	default:
		unknownSubcommand(c)
	}
}
