package manager

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"

	"shoal/internal/acl"
	"shoal/internal/admin"
	"shoal/internal/cluster"
)

// Config configures one manager.
type Config struct {
	ID        string   // raft server id (unique among the managers)
	RaftAddr  string   // host:port for Raft traffic (advertised as given)
	HTTPAddr  string   // host:port of the admin/heartbeat HTTP API ("127.0.0.1:0" picks a port)
	Dir       string   // data directory (Raft log, snapshots)
	Bootstrap bool     // start a new cluster with this manager as its only voter (ignored once state exists)
	Join      []string // HTTP addresses of running managers to join (ignored once state exists)
	Logger    *slog.Logger

	// RaftAdvertise and HTTPAdvertise, when set, are the host:port the
	// other managers (and the map) know this one by, instead of RaftAddr
	// and the HTTP listener's address. They may be DNS names, resolved at
	// each dial: on Kubernetes a pod's stable name, since its IP changes
	// when it is rescheduled and Raft keeps peer addresses in its log.
	RaftAdvertise, HTTPAdvertise string

	// MinNodeProtocol refuses storage nodes speaking an older protocol
	// than this (never below cluster.MinProtocolVersion): to keep
	// out-of-date builds from joining, and for tests.
	MinNodeProtocol int

	// Raft timings (0: defaults suited to a LAN: 500/500/250 ms).
	RaftHeartbeat, RaftElection, RaftLeaderLease time.Duration

	// Autoscale configures the leader's autoscaling loop (zero: off).
	Autoscale AutoscaleOptions

	// DisableMigrator turns the built-in migrator off (shoal manager
	// --migrator=false): standalone `shoal migrator` processes drive the
	// slot moves.
	DisableMigrator bool
	// MigratorLease is the built-in migrator's lease (0: migrator.DefaultLease).
	MigratorLease time.Duration
	// AdminToken, if set, must be sent as "Authorization: Bearer <token>"
	// on every /v1 endpoint (401 otherwise); /healthz stays open. The
	// managers of one cluster share it (a joining manager sends it).
	// ClusterToken, if set, is accepted besides it on the endpoints
	// storage nodes and proxies use (GET /v1/map, POST /v1/heartbeat),
	// so they need not hold the operators' token (docs/operations.md,
	// "Security"). It requires AdminToken.
	AdminToken, ClusterToken string

	// TLS, if set, serves the HTTP API over HTTPS. PeerTLS is the client
	// side of manager-to-manager calls (forwarding to the leader,
	// joining): it must trust the other managers' certificates. The
	// managers of a cluster all use HTTPS or all plain HTTP.
	TLS, PeerTLS *tls.Config

	// RaftTLS, if set, runs the Raft traffic between managers over
	// mutual TLS: it serves with RaftTLS (which should require and verify
	// client certificates: only managers take part in the consensus) and
	// dials the others with RaftPeerTLS (presenting this manager's
	// certificate, trusting the managers' CA). All managers of a cluster
	// use it or none does.
	RaftTLS, RaftPeerTLS *tls.Config

	// NodeAuth is what the manager sends (AUTH) to storage nodes that
	// require a password when it probes a slot move (CLUSTER MIGRATION).
	NodeAuth acl.Credentials
	// NodeTLS, if set, makes those probes TLS to the nodes' tls-port
	// (Node.TLSAddr), trusting the nodes' CA.
	NodeTLS *tls.Config

	// MoveGate, for tests: the migrator holds a move ready for op
	// (cluster.OpMigrateCutover or OpMigrateDone) while it returns false.
	MoveGate func(op string, slot int) bool

	// HistoryInterval and HistorySamples size the dashboard's ring of
	// per-shard load samples (0: one every 10 s, 360 of them: an hour).
	HistoryInterval time.Duration
	HistorySamples  int
}

// Manager is a running management node.
type Manager struct {
	cfg  Config
	log  *slog.Logger
	fsm  *fsm
	raft *raft.Raft
	tr   *raft.NetworkTransport
	bolt *raftboltdb.BoltStore

	ln   net.Listener
	http *http.Server

	fwdOnce sync.Once
	fwd     *http.Transport // HTTPS forwarding to the leader (api.go)

	mu          sync.Mutex
	health      map[string]*Health
	leaderSince time.Time
	leader      bool
	handoffs    map[int]*handoff // graceful failovers in progress, by shard
	failovers   []FailoverEvent  // recent automatic and manual failovers (newest last)
	load        loadTracker      // smoothed load of each shard (primaries' heartbeats)

	dash dashState // the dashboard's history and move progress (dashboard.go)

	ap autoscaleState // the autoscaling loop's state, for status

	met counters      // for metrics.go
	adm *admin.Server // /metrics and /readyz, served by the API's mux

	// mapJSON: the last map served by GET /v1/map, encoded, per view
	// (mapView).
	mapJSON  [numViews]atomic.Pointer[encodedMap]
	encodeMu sync.Mutex // one encoding of a map at a time (writeMap)

	stop chan struct{}
	wg   sync.WaitGroup
}

// FailoverEvent records one failover for status output.
type FailoverEvent struct {
	Time     time.Time `json:"time"`
	Shard    int       `json:"shard"`
	From, To string    `json:"-"`
	FromNode string    `json:"from"`
	ToNode   string    `json:"to"`
	Reason   string    `json:"reason"`
	Epoch    uint64    `json:"epoch"` // the shard's new epoch
}

// handoff is a graceful failover: the primary is fenced (told to stop
// writes) until the target replica has its last offset.
type handoff struct {
	target   string
	deadline time.Time
	fenced   bool   // the primary reported it stopped writes
	final    uint64 // the primary's offset once fenced
}

// ErrNotLeader is returned by operations that need the Raft leader.
var ErrNotLeader = errors.New("not the leader")

// New opens the manager's Raft state; Start begins serving.
func New(cfg Config) (*Manager, error) {
	if cfg.ID == "" || cfg.RaftAddr == "" || cfg.HTTPAddr == "" || cfg.Dir == "" {
		return nil, errors.New("manager needs an id, a raft address, an HTTP address and a data directory")
	}
	if cfg.ClusterToken != "" && cfg.AdminToken == "" {
		return nil, errors.New("manager: a cluster token needs an admin token (without one the API is open)")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if cfg.RaftHeartbeat == 0 {
		cfg.RaftHeartbeat = 500 * time.Millisecond
	}
	if cfg.RaftElection == 0 {
		cfg.RaftElection = 500 * time.Millisecond
	}
	if cfg.RaftLeaderLease == 0 {
		cfg.RaftLeaderLease = 250 * time.Millisecond
	}
	a := &cfg.Autoscale
	if a.Pilot.Scale.MaxShards == 0 {
		a.Pilot = cluster.DefaultAutopilotConfig()
	}
	if a.Interval == 0 {
		a.Interval = time.Second
	}
	if a.Smoothing == 0 {
		a.Smoothing = 10 * time.Second
	}
	if a.ProvisionerTimeout == 0 {
		a.ProvisionerTimeout = 5 * time.Minute
	}
	if a.MoveBatch == 0 {
		a.MoveBatch = cluster.MoveWindow
	}
	if cfg.HistoryInterval <= 0 {
		cfg.HistoryInterval = defaultHistoryInterval
	}
	if cfg.HistorySamples <= 0 {
		cfg.HistorySamples = defaultHistorySamples
	}
	if err := a.Validate(); err != nil {
		return nil, fmt.Errorf("autoscale: %w", err)
	}
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, err
	}
	m := &Manager{cfg: cfg, log: cfg.Logger.With("component", "manager", "id", cfg.ID), fsm: newFSM(),
		health: map[string]*Health{}, handoffs: map[int]*handoff{}, stop: make(chan struct{}),
		load: loadTracker{tau: cfg.Autoscale.Smoothing, shards: map[int]*shardEWMA{}}}
	m.adm = m.adminHandler()
	return m, nil
}

// Start opens Raft and the HTTP listener; it returns once both run (the
// manager may not be leader yet).
func (m *Manager) Start() error {
	ln, err := net.Listen("tcp", m.cfg.HTTPAddr)
	if err != nil {
		return err
	}
	if m.cfg.TLS != nil {
		ln = tls.NewListener(ln, m.cfg.TLS)
	}
	m.ln = ln
	if err := m.startRaft(); err != nil {
		ln.Close()
		return err
	}
	// net/http's own errors (a client's failed TLS handshake...) go to
	// the manager's log at debug level, not to stderr.
	m.http = &http.Server{Handler: m.routes(), ReadHeaderTimeout: 10 * time.Second,
		ErrorLog: slog.NewLogLogger(m.log.Handler(), slog.LevelDebug)}
	m.wg.Add(4) // http, leadership, autoscaler, historian (the migrator below)
	go func() {
		defer m.wg.Done()
		if err := m.http.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			m.log.Error("http server stopped", "err", err)
		}
	}()
	go m.leadership()
	if !m.cfg.DisableMigrator {
		m.wg.Add(1)
		go m.runMigrator()
	}
	go m.autoscaler()
	go m.historian()
	if len(m.cfg.Join) > 0 && !m.hadState() {
		if err := m.join(); err != nil {
			m.Close()
			return err
		}
	}
	m.log.Info("manager started", "raft", m.cfg.RaftAddr, "http", m.HTTPAddr())
	return nil
}

func (m *Manager) hadState() bool {
	return m.raft.LastIndex() > 0 && len(m.raft.GetConfiguration().Configuration().Servers) > 0
}

func (m *Manager) startRaft() error {
	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(m.cfg.ID)
	rc.HeartbeatTimeout = m.cfg.RaftHeartbeat
	rc.ElectionTimeout = m.cfg.RaftElection
	rc.LeaderLeaseTimeout = m.cfg.RaftLeaderLease
	rc.SnapshotThreshold = 1024
	rc.Logger = hclog.New(&hclog.LoggerOptions{Name: "raft", Level: hclog.Warn, Output: slogWriter{m.log}, DisableTime: true})
	addr, err := net.ResolveTCPAddr("tcp", m.cfg.RaftAddr)
	if err != nil {
		return fmt.Errorf("raft address: %w", err)
	}
	var tr *raft.NetworkTransport
	if m.cfg.RaftAdvertise != "" || m.cfg.RaftTLS != nil {
		if (m.cfg.RaftTLS == nil) != (m.cfg.RaftPeerTLS == nil) {
			return errors.New("raft TLS needs both the serving and the dialing configuration")
		}
		ln, lerr := net.Listen("tcp", m.cfg.RaftAddr)
		if lerr != nil {
			return fmt.Errorf("raft transport: %w", lerr)
		}
		var adv net.Addr = addr
		if m.cfg.RaftAdvertise != "" {
			adv = namedAddr(m.cfg.RaftAdvertise)
		}
		st := &namedStream{Listener: ln, addr: adv, tls: m.cfg.RaftPeerTLS}
		if m.cfg.RaftTLS != nil {
			st.Listener = tls.NewListener(ln, m.cfg.RaftTLS)
		}
		tr = raft.NewNetworkTransport(st, 3, 10*time.Second, io.Discard)
	} else if tr, err = raft.NewTCPTransport(m.cfg.RaftAddr, addr, 3, 10*time.Second, io.Discard); err != nil {
		return fmt.Errorf("raft transport: %w", err)
	}
	bolt, err := raftboltdb.NewBoltStore(filepath.Join(m.cfg.Dir, "raft.db"))
	if err != nil {
		tr.Close()
		return fmt.Errorf("raft log store: %w", err)
	}
	snaps, err := raft.NewFileSnapshotStore(m.cfg.Dir, 2, io.Discard)
	if err != nil {
		tr.Close()
		bolt.Close()
		return fmt.Errorf("raft snapshot store: %w", err)
	}
	existing, err := raft.HasExistingState(bolt, bolt, snaps)
	if err != nil {
		tr.Close()
		bolt.Close()
		return err
	}
	r, err := raft.NewRaft(rc, m.fsm, bolt, bolt, snaps, tr)
	if err != nil {
		tr.Close()
		bolt.Close()
		return fmt.Errorf("raft: %w", err)
	}
	m.raft, m.tr, m.bolt = r, tr, bolt
	if m.cfg.Bootstrap && !existing {
		f := r.BootstrapCluster(raft.Configuration{Servers: []raft.Server{{ID: rc.LocalID, Address: tr.LocalAddr()}}})
		if err := f.Error(); err != nil && !errors.Is(err, raft.ErrCantBootstrap) {
			return fmt.Errorf("bootstrap: %w", err)
		}
	}
	return nil
}

// join asks the running managers to add this one as a voter.
func (m *Manager) join() error {
	raftAddr := m.cfg.RaftAddr
	if m.cfg.RaftAdvertise != "" {
		raftAddr = m.cfg.RaftAdvertise
	}
	body, _ := json.Marshal(joinRequest{ID: m.cfg.ID, RaftAddr: raftAddr, HTTPAddr: m.HTTPAddr()})
	var last error
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		for _, a := range m.cfg.Join {
			c := &Client{Addrs: []string{a}, Token: m.cfg.AdminToken, TLS: m.peerTLS()}
			if err := c.do(context.Background(), http.MethodPost, "/v1/join", body, nil); err != nil {
				last = err
				continue
			}
			return nil
		}
		select {
		case <-m.stop:
			return errors.New("stopped")
		case <-time.After(200 * time.Millisecond):
		}
	}
	return fmt.Errorf("join %v: %w", m.cfg.Join, last)
}

// peerTLS is the TLS client configuration for other managers (nil: HTTP).
func (m *Manager) peerTLS() *tls.Config {
	if m.cfg.TLS == nil {
		return nil
	}
	if m.cfg.PeerTLS != nil {
		return m.cfg.PeerTLS
	}
	return &tls.Config{MinVersion: tls.VersionTLS12} // the system's roots
}

// HTTPAddr is the address of the HTTP API: HTTPAdvertise if set, else
// the address it listens on.
func (m *Manager) HTTPAddr() string {
	if m.cfg.HTTPAdvertise != "" {
		return m.cfg.HTTPAdvertise
	}
	return m.ln.Addr().String()
}

// namedStream is a Raft stream layer that advertises a name (host:port,
// the host possibly a DNS name) rather than the listener's IP address,
// and dials peers by the names they advertise.
// namedStream is the Raft stream layer when the address Raft advertises
// is not the one it listens on (a DNS name), or when Raft runs over TLS.
type namedStream struct {
	net.Listener
	addr net.Addr
	tls  *tls.Config // dialing side of Raft TLS; nil: plain TCP
}

func (s *namedStream) Addr() net.Addr { return s.addr }

func (s *namedStream) Dial(a raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	if s.tls == nil {
		return net.DialTimeout("tcp", string(a), timeout)
	}
	// The handshake completes here, so a peer with a wrong certificate
	// fails the dial (not Raft's first read).
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: timeout}, "tcp", string(a), s.tls)
	if err != nil {
		return nil, err
	}
	return c, nil
}

type namedAddr string

func (a namedAddr) Network() string { return "tcp" }
func (a namedAddr) String() string  { return string(a) }

// Map returns the current cluster map (immutable).
func (m *Manager) Map() *cluster.Map { return m.fsm.current() }

// IsLeader reports whether this manager is the Raft leader.
func (m *Manager) IsLeader() bool { return m.raft.State() == raft.Leader }

// leading reports whether this manager has taken up leadership (its
// leader duties started) and Raft still has it leader: the check the
// leader's loops make on every tick.
func (m *Manager) leading() bool {
	m.mu.Lock()
	l := m.leader
	m.mu.Unlock()
	return l && m.IsLeader()
}

// Close stops the manager.
func (m *Manager) Close() error {
	select {
	case <-m.stop:
		return nil
	default:
	}
	close(m.stop)
	if m.http != nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		m.http.Shutdown(ctx)
		cancel()
	}
	var err error
	if m.raft != nil {
		err = m.raft.Shutdown().Error()
		m.tr.Close()
		m.bolt.Close()
	}
	m.wg.Wait()
	return err
}

// propose replicates c through Raft and returns once it is applied (or
// refused by the map).
func (m *Manager) propose(c cluster.Command) error {
	if m.raft.State() != raft.Leader {
		return ErrNotLeader
	}
	b, err := json.Marshal(c)
	if err != nil {
		return err
	}
	f := m.raft.Apply(b, 5*time.Second)
	// A closing manager stops waiting: Raft's shutdown can drop a
	// committed entry's future unanswered (its FSM goroutine exits with
	// the entry still queued to it), and Close, which waits for the
	// goroutines proposing (the migrator releases its lease as it
	// stops), then hung for good.
	errc := make(chan error, 1)
	go func() { errc <- f.Error() }()
	select {
	case err = <-errc:
	case <-m.stop:
		return ErrNotLeader
	}
	if err != nil {
		if errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipLost) {
			return ErrNotLeader
		}
		return err
	}
	if e, ok := f.Response().(error); ok {
		return e
	}
	return nil
}

// leadership runs the leader's duties while this manager leads: it
// forgets what an earlier term heard, registers itself in the map, and
// runs the failure detector every heartbeat period.
func (m *Manager) leadership() {
	defer m.wg.Done()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	var lastCheck time.Time
	for {
		select {
		case <-m.stop:
			return
		case isLeader := <-m.raft.LeaderCh():
			m.mu.Lock()
			m.leader = isLeader
			if !isLeader {
				m.health = map[string]*Health{}
				m.load.shards = map[int]*shardEWMA{}
			}
			if isLeader {
				// Liveness is never in the log: a new leader starts blind
				// and judges nobody for a whole lease + margin (Decide).
				m.leaderSince = time.Now()
				m.health = map[string]*Health{}
				m.handoffs = map[int]*handoff{}
			}
			m.mu.Unlock()
			if isLeader {
				m.log.Info("became leader")
				go m.registerSelf()
			} else {
				m.log.Info("lost leadership")
			}
		case now := <-tick.C:
			// m.leader, not the Raft state: it turns true only once this
			// loop has reset the health view and leaderSince for the term.
			if !m.leading() {
				continue
			}
			period := time.Duration(m.Map().Settings.HeartbeatMs) * time.Millisecond / 2
			if now.Sub(lastCheck) < period {
				continue
			}
			lastCheck = now
			m.detect(now)
		}
	}
}

func (m *Manager) registerSelf() {
	if m.Map().Managers[m.cfg.ID] == m.HTTPAddr() {
		return
	}
	if err := m.propose(cluster.Command{Op: cluster.OpAddManager, Manager: m.cfg.ID, HTTPAddr: m.HTTPAddr()}); err != nil {
		m.log.Warn("cannot record this manager in the map", "err", err)
	}
}

// detect runs the failure detector and proposes its promotions.
func (m *Manager) detect(now time.Time) {
	mp := m.Map()
	m.mu.Lock()
	ps, _ := Decide(mp, m.health, now, m.leaderSince)
	m.mu.Unlock()
	for _, p := range ps {
		m.log.Warn("failing over", "shard", p.Shard, "to", p.Node, "reason", p.Reason)
		m.promote(p, mp)
	}
}

func (m *Manager) promote(p Promotion, mp *cluster.Map) {
	from := mp.Shards[p.Shard].Primary
	if err := m.propose(cluster.Command{Op: cluster.OpPromote, ShardID: p.Shard, NodeID: p.Node, Epoch: p.Epoch}); err != nil {
		m.log.Warn("promotion refused", "shard", p.Shard, "node", p.Node, "err", err)
		return
	}
	m.met.failovers.Add(1)
	m.mu.Lock()
	m.failovers = append(m.failovers, FailoverEvent{Time: time.Now(), Shard: p.Shard, FromNode: from, ToNode: p.Node, Reason: p.Reason, Epoch: p.Epoch + 1})
	if len(m.failovers) > 100 {
		m.failovers = m.failovers[len(m.failovers)-100:]
	}
	m.mu.Unlock()
}

// heartbeat handles one storage node's heartbeat on the leader: it
// registers a new node (or its new addresses), records its health and
// grants a primary its lease.
func (m *Manager) heartbeat(hb cluster.Heartbeat) (cluster.HeartbeatReply, error) {
	now := time.Now()
	if min := m.minNodeProtocol(); hb.Node.Protocol < min {
		// Checked before registration: a refused node never enters the map.
		return cluster.HeartbeatReply{}, fmt.Errorf("%w: node %s (%s, shoal %s) speaks protocol %d; this cluster needs at least protocol %d (managers speak %d): upgrade the node",
			ErrProtocol, hb.Node.ID, hb.Node.Addr, orUnknown(hb.Node.Version), hb.Node.Protocol, min, cluster.ProtocolVersion)
	}
	mp := m.Map()
	id := hb.Node.ID
	if n := mp.Nodes[id]; n == nil || n.Addr != hb.Node.Addr || n.MCAddr != hb.Node.MCAddr || n.TLSAddr != hb.Node.TLSAddr || (hb.Node.Weight > 0 && n.Weight != hb.Node.Weight) ||
		n.Version != hb.Node.Version || n.Protocol != hb.Node.Protocol ||
		(hb.Node.State == cluster.NodeStandby && n.State == cluster.NodeIdle) {
		node := hb.Node
		if err := m.propose(cluster.Command{Op: cluster.OpRegister, Node: &node}); err != nil {
			return cluster.HeartbeatReply{}, err
		}
		mp = m.Map()
		m.log.Info("node registered", "node", id, "addr", hb.Node.Addr)
	}
	if !m.IsLeader() {
		return cluster.HeartbeatReply{}, ErrNotLeader
	}
	reply := cluster.HeartbeatReply{Epoch: mp.Epoch}
	if hb.MapEpoch != mp.Epoch {
		// The window view, as the nodes' map watch gets it: during a
		// rebalance the whole map is megabytes of queued moves, and a
		// node whose map lags its heartbeat (every few beats while
		// moves step) encoded, decoded and installed it each time.
		reply.Map = mp.WindowView()
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.leader {
		return cluster.HeartbeatReply{}, ErrNotLeader
	}
	h := m.health[id]
	if h == nil {
		h = &Health{}
		m.health[id] = h
	}
	h.Seen, h.HB = now, hb
	role, shard := mp.Role(id)
	if role == cluster.RolePrimary && hb.Role == cluster.RolePrimary {
		m.load.observe(now, shard.ID, &hb)
	}
	if role == cluster.RolePrimary {
		if ho := m.handoffs[shard.ID]; ho != nil {
			reply.Fence = true
			if hb.Fenced {
				ho.fenced, ho.final = true, hb.Offset
			}
		} else if hb.Role == cluster.RolePrimary || Ahead(shard, m.health, now, time.Duration(mp.Settings.LeaseMs)*time.Millisecond, hb) == "" {
			// A node not yet acting as primary (restarted, or just
			// promoted) gets the role only if no replica is ahead of it;
			// otherwise the detector promotes that replica.
			reply.LeaseMs = mp.Settings.LeaseMs
			h.Granted = now
		}
	}
	return reply, nil
}

// ErrProtocol: a node's protocol version is below what the cluster
// supports (cluster.MinProtocolVersion, Config.MinNodeProtocol).
var ErrProtocol = errors.New("protocol version not supported")

func (m *Manager) minNodeProtocol() int {
	return max(cluster.MinProtocolVersion, m.cfg.MinNodeProtocol)
}

func orUnknown(v string) string {
	if v == "" {
		return "version unknown"
	}
	return v
}

// Failover moves shard's primary role to its most advanced replica
// without losing writes: the primary is fenced, the target catches up to
// the primary's final offset, then the map flips. It gives up (and the
// primary writes again) after timeout.
func (m *Manager) Failover(ctx context.Context, shardID int, timeout time.Duration) (string, error) {
	if !m.IsLeader() {
		return "", ErrNotLeader
	}
	mp := m.Map()
	s := mp.Shards[shardID]
	if s == nil {
		return "", fmt.Errorf("no shard %d", shardID)
	}
	now := time.Now()
	m.mu.Lock()
	if m.handoffs[shardID] != nil {
		m.mu.Unlock()
		return "", fmt.Errorf("a failover of shard %d is already running", shardID)
	}
	var target string
	var best uint64
	for _, r := range s.Replicas {
		h := m.health[r]
		if h == nil || now.Sub(h.Seen) > time.Duration(mp.Settings.LeaseMs)*time.Millisecond || !h.HB.Synced || h.HB.Role != cluster.RoleReplica {
			continue
		}
		if target == "" || h.HB.Offset > best || (h.HB.Offset == best && r < target) {
			target, best = r, h.HB.Offset
		}
	}
	if target == "" {
		m.mu.Unlock()
		return "", fmt.Errorf("shard %d has no live, synced replica to fail over to", shardID)
	}
	ho := &handoff{target: target, deadline: now.Add(timeout)}
	m.handoffs[shardID] = ho
	m.mu.Unlock()
	defer func() {
		m.mu.Lock()
		if m.handoffs[shardID] == ho {
			delete(m.handoffs, shardID)
		}
		m.mu.Unlock()
	}()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		m.mu.Lock()
		h := m.health[target]
		ready := ho.fenced && h != nil && h.HB.Offset >= ho.final
		m.mu.Unlock()
		if ready {
			break
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-m.stop:
			return "", errors.New("manager stopping")
		case t := <-tick.C:
			if t.After(ho.deadline) {
				return "", fmt.Errorf("replica %s did not catch up with the fenced primary within %v; the primary writes again", target, timeout)
			}
		}
	}
	p := Promotion{Shard: shardID, Node: target, Epoch: s.Epoch, Reason: "manual failover"}
	if err := m.propose(cluster.Command{Op: cluster.OpPromote, ShardID: shardID, NodeID: target, Epoch: s.Epoch}); err != nil {
		return "", err
	}
	m.met.failovers.Add(1)
	m.mu.Lock()
	m.failovers = append(m.failovers, FailoverEvent{Time: time.Now(), Shard: shardID, FromNode: s.Primary, ToNode: target, Reason: p.Reason, Epoch: s.Epoch + 1})
	m.mu.Unlock()
	return target, nil
}

// leaderHTTP returns the HTTP address of the current leader, if known.
func (m *Manager) leaderHTTP() string {
	_, id := m.raft.LeaderWithID()
	if id == "" {
		return ""
	}
	return m.Map().Managers[string(id)]
}

// addVoter adds a joining manager.
func (m *Manager) addVoter(req joinRequest) error {
	if m.raft.State() != raft.Leader {
		return ErrNotLeader
	}
	if req.ID == "" || req.RaftAddr == "" || req.HTTPAddr == "" {
		return errors.New("join needs id, raft_addr and http_addr")
	}
	if err := m.raft.AddVoter(raft.ServerID(req.ID), raft.ServerAddress(req.RaftAddr), 0, 10*time.Second).Error(); err != nil {
		return err
	}
	return m.propose(cluster.Command{Op: cluster.OpAddManager, Manager: req.ID, HTTPAddr: req.HTTPAddr})
}

type joinRequest struct {
	ID       string `json:"id"`
	RaftAddr string `json:"raft_addr"`
	HTTPAddr string `json:"http_addr"`
}

// slogWriter passes hashicorp/raft's log lines to the manager's logger.
type slogWriter struct{ log *slog.Logger }

func (w slogWriter) Write(p []byte) (int, error) {
	w.log.Warn(strings.TrimSpace(string(p)))
	return len(p), nil
}
