// Package server wires a storage node: the connection layer (a gnet event
// loop per core), the command dispatcher and the command handlers on top of
// the engine.
//
// Goroutines:
//   - gnet event loops (one per core): read, parse, execute and reply for
//     the connections they own. A command runs on its connection's loop.
//   - cron: refreshes the clock, runs active expiry, enforces idle
//     timeouts and output-buffer soft limits.
//   - a BGSAVE goroutine while a background snapshot runs (persist.go).
//   - timers for blocked clients (time.AfterFunc), which only hand a reply
//     to the client's outbox and wake its loop.
//
// Nothing but the owning loop writes to a connection: other goroutines
// (PUBLISH on another loop, a push that serves a blocked client, a timeout)
// append to the client's outbox and call Wake, and the loop flushes it.
package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/panjf2000/gnet/v2"
	"github.com/prometheus/client_golang/prometheus"

	"shoal/internal/acl"
	"shoal/internal/admin"
	"shoal/internal/config"
	"shoal/internal/engine"
	"shoal/internal/gnetlog"
	"shoal/internal/memcache"
	"shoal/internal/persist"
	"shoal/internal/resp"
)

// Version is the Redis version Shoal reports to clients (the command set
// it follows) and ShoalVersion its own.
const (
	RedisVersion = "7.2.0"
	ShoalVersion = "0.1.0"
)

// Server is one storage node.
type Server struct {
	opts  Options
	agent *agent // cluster agent (agent.go); nil for a standalone server
	cfg   *config.Config
	db    *engine.DB
	log   *slog.Logger
	hub   *pubsubHub
	slow  *slowlog

	eng     gnet.Engine
	engMu   sync.Mutex
	started chan struct{}
	done    chan struct{}
	runErr  error

	clientsMu sync.Mutex
	clients   map[uint64]*Client
	nextID    atomic.Uint64
	nclients  atomic.Int64

	limits atomic.Pointer[runtimeLimits]

	// Users (cmd_acl.go). aclPass is the requirepass last applied to the
	// default user (applyConfig applies a change once).
	acl     *acl.Registry
	aclMu   sync.Mutex
	aclPass string

	startTime   time.Time
	statConns   atomic.Int64
	statRejects atomic.Int64

	// Per-event-loop statistics: the hot path only touches its own
	// loop's counters, so cores never contend on a shared cache line.
	shardsMu sync.Mutex
	shards   map[gnet.EventLoop]*statShard
	statBase struct { // totals at the last CONFIG RESETSTAT
		cmd           []CmdStat
		netIn, netOut int64
	}

	cronStop chan struct{}
	cronDone chan struct{}
	closing  atomic.Bool
	shutdown chan struct{} // closed by SHUTDOWN
	shutOnce sync.Once

	admin   adminState   // INFO sampling, peak memory, DEBUG switches (cmd_server.go)
	persist persistState // snapshots and loading (persist.go)

	fsys    persist.FS                  // where snapshots and the log are written
	aof     atomic.Pointer[persist.Log] // the append-only log; nil when appendonly is off (aof.go)
	durWait durWaitList                 // clients whose replies wait for their records
	repl    replState                   // replication (repl.go)

	// Cluster mode (cluster.go): fixed at New (cluster-enabled), read
	// by every command; the routing view SetClusterMap installs.
	clusterMode bool
	clus        clusterState
	moves       migrations  // slot moves (migrate.go)
	migLimit    tokenBucket // migrate-max-bytes-per-sec (ratelimit.go)

	tls     atomic.Pointer[tlsFront]   // the tls-port listeners (tls.go); nil when off
	mcTLS   atomic.Pointer[tlsFront]   // the memcached-tls-port listeners (tls.go); nil when off
	peerTLS atomic.Pointer[tls.Config] // tls-replication's client side (tls.go); nil: plain TCP to peers
	// The admin endpoint (metrics.go): /metrics, /healthz, /readyz;
	// nil when admin-port and admin-addr are unset. Set by Start.
	adm *admin.Server
	reg *prometheus.Registry

	mcPort    int          // memcached-port (0 = off), fixed at New
	mcConns   atomic.Int64 // open memcached connections
	mcFlushAt atomic.Int64 // unix ms of a delayed flush_all; 0 = none (run by cron)
}

// runtimeLimits is the hot-path copy of limits that CONFIG SET may change.
type runtimeLimits struct {
	proto         resp.Limits
	queryBuf      int64
	maxClients    int
	timeout       int64 // ms
	protectedMode bool
	outNormal     config.OutputLimit
	outPubsub     config.OutputLimit
	slowerThan    int64
	slowMax       int
	mc            memcache.Limits
}

// Options are test hooks of New.
type Options struct {
	// FS replaces the real file system for snapshots and the log.
	FS persist.FS
	// ManagerHTTP, if set, carries the cluster agent's calls to the
	// managers (tests inject network faults through it).
	ManagerHTTP *http.Client
	// Protocol, if not 0, is the protocol version the node claims to the
	// managers and to its primary instead of cluster.ProtocolVersion, and
	// MinReplicaProtocol raises the oldest protocol it streams to as a
	// primary (never below cluster.MinProtocolVersion): tests of
	// mixed-version clusters without a second build.
	Protocol, MinReplicaProtocol int
}

// New builds a server; it starts nothing.
func New(cfg *config.Config, log *slog.Logger) (*Server, error) {
	return NewWithOptions(cfg, log, Options{})
}

// NewWithOptions is New with test hooks.
func NewWithOptions(cfg *config.Config, log *slog.Logger, opt Options) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	s := &Server{
		cfg: cfg, log: log.With("component", "server"),
		started: make(chan struct{}), done: make(chan struct{}),
		clients: make(map[uint64]*Client), startTime: time.Now(),
		cronStop: make(chan struct{}), cronDone: make(chan struct{}),
		shutdown: make(chan struct{}),
	}
	s.opts = opt
	s.fsys = opt.FS
	if s.fsys == nil {
		s.fsys = persist.OS
	}
	s.db = engine.New(engine.Hooks{KeyDeleted: s.keyDeleted, KeyDropped: s.keyDropped})
	s.hub = newPubsubHub()
	s.slow = &slowlog{}
	s.shards = make(map[gnet.EventLoop]*statShard)
	cfg.Read(func(c *config.Config) { s.mcPort, s.clusterMode = c.MemcachedPort, c.ClusterEnabled || c.Manager != "" })
	s.persist.lastSave.Store(s.startTime.Unix())
	s.persist.lastBgSecs.Store(-1)
	s.acl = acl.NewRegistry()
	var users []string
	cfg.Read(func(c *config.Config) { users = slices.Clone(c.Users) })
	for _, line := range users {
		name, rules, err := acl.ParseUserLine(line)
		if err == nil {
			err = s.acl.SetUser(name, rules)
		}
		if err != nil {
			return nil, fmt.Errorf("user %q: %w", line, err)
		}
	}
	s.applyConfig()
	cfg.OnChange(func(string) { s.applyConfig() })
	return s, nil
}

// DB exposes the keyspace (for the memcached front end and tests).
func (s *Server) DB() *engine.DB { return s.db }

func (s *Server) applyConfig() {
	var fsync string
	var groupDelay time.Duration
	s.cfg.Read(func(c *config.Config) {
		l := &runtimeLimits{
			proto:      resp.Limits{MaxBulkLen: c.ProtoMaxBulkLen, MaxMultibulkLen: c.MaxMultibulkLen, MaxInlineLen: int(c.MaxInlineLen)},
			queryBuf:   c.QueryBufferLimit,
			maxClients: c.MaxClients, timeout: int64(c.Timeout) * 1000,
			protectedMode: c.ProtectedMode, outNormal: c.OutputNormal, outPubsub: c.OutputPubsub,
			slowerThan: c.SlowlogSlower, slowMax: c.SlowlogMaxLen,
			mc: memcache.Limits{MaxLine: memcache.DefaultLimits.MaxLine, MaxGetLine: memcache.DefaultLimits.MaxGetLine,
				MaxItemSize: int(c.MemcachedMaxItem)},
		}
		s.limits.Store(l)
		s.db.SetMaxMemory(c.MaxMemory, engine.PolicyNames[c.MaxMemoryPolicy], c.MaxMemorySamples)
		s.db.SetLFU(c.LFULogFactor, c.LFUDecayTime)
		s.persist.keyDelay.Store(int64(c.KeyLoadDelay))
		// The keyspace is one large, long-lived heap: Go's default GOGC=100
		// lets the heap reach twice the live data before collecting. A
		// lower target trades some GC CPU on allocation-heavy loads for
		// memory per key close to redis-server's (docs/benchmarks.md).
		if os.Getenv("GOGC") == "" {
			debug.SetGCPercent(c.GCPercent)
		}
		s.replApplyConfig(c)
		s.aclMu.Lock()
		if c.RequirePass != s.aclPass {
			s.acl.SetDefaultPassword(c.RequirePass)
			s.aclPass = c.RequirePass
		}
		s.aclMu.Unlock()
		s.migLimit.setRate(c.MigrateMaxBytesPerSec)
		fsync = c.AppendFsync
		groupDelay = time.Duration(c.AOFGroupCommitDelay) * time.Microsecond
	})
	// appendfsync applies to the running log; stop-writes-on-bgsave-error
	// and save are re-evaluated at once (not only at the next save).
	if lg := s.aof.Load(); lg != nil {
		if p, ok := persist.ParseFsync(fsync); ok {
			lg.SetPolicy(p)
		}
		lg.SetGroupCommitDelay(groupDelay)
	}
	s.updateStopWrites()
	if s.repl.ready.Load() {
		if s.repl.syncN.Load() > 0 {
			s.ensureBacklog()
		}
		s.updateQuorum() // sync-replicas may have changed
	}
}

// Addrs returns the listen addresses derived from bind and port.
func (s *Server) Addrs() []string {
	var port int
	s.cfg.Read(func(c *config.Config) { port = c.Port })
	return s.addrsFor(port)
}

// MemcachedAddrs returns the memcached listen addresses (the same bind
// addresses on memcached-port), none when it is 0.
func (s *Server) MemcachedAddrs() []string {
	if s.mcPort == 0 {
		return nil
	}
	return s.addrsFor(s.mcPort)
}

func (s *Server) addrsFor(port int) []string {
	var out []string
	s.cfg.Read(func(c *config.Config) {
		for _, b := range c.Bind {
			optional := false
			if len(b) > 0 && b[0] == '-' {
				optional, b = true, b[1:]
			}
			if optional && !canBind(b) {
				continue
			}
			if b == "*" {
				b = "0.0.0.0"
			}
			out = append(out, "tcp://"+net.JoinHostPort(b, strconv.Itoa(port)))
		}
	})
	return out
}

func canBind(host string) bool {
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return false
	}
	l.Close()
	return true
}

// Start begins serving and returns once the listeners are up and the
// snapshot, if there is one, is loaded. Clients connecting during the
// load get -LOADING. A snapshot that cannot be loaded stops the server:
// the error names the file and the offset of the damage.
func (s *Server) Start(ctx context.Context) error {
	addrs := s.Addrs()
	if len(addrs) == 0 {
		return errors.New("no address to listen on (check bind)")
	}
	// The memcached listeners share the event loops (and the keyspace):
	// OnOpen tells the protocols apart by the local port.
	addrs = append(addrs, s.MemcachedAddrs()...)
	var loops int
	s.cfg.Read(func(c *config.Config) { loops = c.IOThreads })
	opts := []gnet.Option{
		gnet.WithMulticore(true), gnet.WithReuseAddr(true), gnet.WithTicker(false),
		// Each loop keeps its OS thread: measured 5-15% less server CPU per
		// request at P16 (no thread hand-offs around epoll_wait).
		gnet.WithLockOSThread(true),
		gnet.WithTCPNoDelay(gnet.TCPNoDelay), gnet.WithLogger(gnetlog.Logger{L: s.log}),
		gnet.WithReadBufferCap(64 << 10), gnet.WithTCPKeepAlive(300 * time.Second),
	}
	if loops <= 0 {
		// One event loop per core but one: the last core is left to the
		// kernel's network stack, the GC and the cron. On the 2-core
		// benchmark machine, with the load generator on the same cores,
		// one loop beat two on every GET/SET scenario (docs/benchmarks.md).
		loops = max(1, runtime.NumCPU()-1)
	}
	opts = append(opts, gnet.WithNumEventLoop(loops))
	snapPath := s.snapshotPath()
	logDir, logBase := s.logPaths()
	segs, _ := persist.Segments(s.fsys, logDir, logBase)
	load := s.snapshotExistsAt(snapPath) || len(segs) > 0
	var aofOn bool
	s.cfg.Read(func(c *config.Config) { aofOn = c.AppendOnly })
	// Clients are answered -LOADING until the data is loaded and, with
	// appendonly, the log is open: a write accepted before that would be
	// acknowledged without being logged.
	s.persist.loading.Store(load || aofOn) // before the first OnOpen
	s.persist.exact.Store(true)
	go func() {
		var err error
		if len(addrs) == 1 {
			err = gnet.Run(s, addrs[0], opts...)
		} else {
			err = gnet.Rotate(s, addrs, opts...)
		}
		s.runErr = err
		close(s.done)
	}()
	select {
	case <-s.started:
	case <-s.done:
		return fmt.Errorf("listen %v: %w", addrs, s.runErr)
	case <-ctx.Done():
		return ctx.Err()
	}
	// The admin endpoint answers during the load (/readyz: not ready).
	if err := s.startAdmin(); err != nil {
		s.abortStart()
		return err
	}
	if load {
		if err := s.recoverAtStart(); err != nil {
			s.abortStart()
			return err
		}
	}
	if aofOn {
		if err := s.openLog(); err != nil {
			s.abortStart()
			return fmt.Errorf("open the append-only log: %w", err)
		}
	}
	if err := s.startTLS(); err != nil {
		s.abortStart()
		return err
	}
	s.updateStopWrites()
	s.persist.loading.Store(false)
	s.replStart()
	if err := s.startAgent(); err != nil {
		s.abortStart()
		return fmt.Errorf("cluster agent: %w", err)
	}
	go s.cron()
	s.log.Info("ready to accept connections", "addrs", addrs)
	return nil
}

// ShutdownRequested is closed when a client sends SHUTDOWN.
func (s *Server) ShutdownRequested() <-chan struct{} { return s.shutdown }

// Close stops accepting, flushes pending replies and closes every
// connection, then stops the background goroutines.
func (s *Server) Close() error {
	if !s.closing.CompareAndSwap(false, true) {
		<-s.done
		return nil
	}
	if s.agent != nil {
		s.agent.stop()
		s.agent.lease.Store(0)
	}
	if s.adm != nil {
		_ = s.adm.Close()
	}
	s.engMu.Lock()
	eng := s.eng
	s.engMu.Unlock()
	lg := s.aof.Load()
	if lg != nil {
		// Everything acknowledged so far goes to disk before the replies
		// held for it are flushed.
		if err := lg.Sync(); err != nil {
			s.log.Error("the log could not be written at shutdown", "err", err)
		}
	}
	s.repl.mu.Lock()
	link := s.repl.link
	s.repl.link = nil
	s.repl.mu.Unlock()
	if link != nil {
		link.stop()
	}
	s.closeTLSFronts() // no new TLS clients; their relays close with them
	s.dropReplicas("shutting down")
	s.stopMoves()
	s.repl.wg.Wait()
	s.drainClients(drainTimeout)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := eng.Stop(ctx)
	<-s.done
	close(s.cronStop)
	<-s.cronDone
	s.persist.bgWG.Wait()
	if lg != nil {
		if cerr := lg.Close(); cerr != nil {
			s.log.Error("closing the log", "err", cerr)
		} else {
			s.log.Info("log fsynced and closed", "last", lg.Last())
		}
	}
	if err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return nil
}

// OnBoot implements gnet.EventHandler.
func (s *Server) OnBoot(eng gnet.Engine) gnet.Action {
	s.engMu.Lock()
	s.eng = eng
	s.engMu.Unlock()
	close(s.started)
	return gnet.None
}

func (s *Server) OnShutdown(gnet.Engine) {}

func (s *Server) OnTick() (time.Duration, gnet.Action) { return time.Second, gnet.None }

func (s *Server) cron() {
	defer close(s.cronDone)
	var hz int
	s.cfg.Read(func(c *config.Config) { hz = c.Hz })
	period := time.Second / time.Duration(hz)
	t := time.NewTicker(period)
	defer t.Stop()
	lastClients := time.Now()
	for {
		select {
		case <-s.cronStop:
			return
		case <-t.C:
		}
		s.db.Tick()
		s.mcCron()
		// Active expiry: at most a quarter of each period, as Redis's 25%.
		if !s.admin.noActiveExpire.Load() && !s.db.ReplicaMode() {
			s.db.ActiveExpireCycle(period / 4)
		}
		if time.Since(lastClients) >= 100*time.Millisecond {
			lastClients = time.Now()
			s.clientsCron()
			s.adminCron()
			s.persistCron()
			s.replCron()
		}
	}
}
