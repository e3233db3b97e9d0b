package server

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"shoal/internal/cluster"
	"shoal/internal/config"
	"shoal/internal/manager"
	"shoal/internal/persist"
	"shoal/internal/tlsconf"
)

// The cluster agent of a storage node started with --manager: it
// heartbeats the manager leader, installs each new cluster map (routing,
// role: primary or replica of whom, sync-replicas), and holds the
// primary's write lease.
//
// The lease is the fence of design.md: a primary accepts writes only
// until lease (a monotonic-clock instant), set from each heartbeat reply
// that grants one to SEND time + lease_ms. The manager counts its own
// view of the lease from when it RECEIVED that heartbeat and promotes
// another node only lease + margin after the last grant, so the old
// primary has stopped writing before the new one starts: at no time do
// two nodes of a shard accept writes. A node that cannot reach the
// manager stops writing when its lease runs out (-TRYAGAIN), and a node
// starting up writes nothing before its first grant.

type agent struct {
	s      *Server
	client *manager.Client
	self   cluster.Node

	lease  atomic.Int64 // nanotime() until which this primary may write; 0: no lease
	fenced atomic.Bool  // the manager asked this primary to stop writing (graceful failover)

	installMu sync.Mutex // one map install at a time (heartbeat replies, the watcher)

	mu         sync.Mutex // guards the fields below (agent goroutine + INFO)
	mp         *cluster.Map
	role       string
	shardEpoch uint64
	lastErr    string
	lastOK     time.Time
	beats      int

	// Per-slot ops at the last SlotOps report (collect only).
	slotOps   []uint64
	slotOpsAt time.Time

	quit chan struct{}
	done chan struct{}
}

// errLease is the reply to a write on a primary without a valid lease.
const errLease = "TRYAGAIN Write lease expired: this primary has no contact with the cluster manager"

// leaseRefusal returns the error for a write refused by the lease, or "".
func (s *Server) leaseRefusal() string {
	a := s.agent
	if a == nil {
		return ""
	}
	if nanotime() >= a.lease.Load() {
		return errLease
	}
	return ""
}

// nodeID returns this node's cluster id, stored in dir/node.id (created
// on first start, crash-safely).
func (s *Server) nodeID() (string, error) {
	var dir string
	s.cfg.Read(func(c *config.Config) { dir = c.Dir })
	p := filepath.Join(dir, "node.id")
	if b, err := os.ReadFile(p); err == nil {
		if id := strings.TrimSpace(string(b)); len(id) == 40 {
			return id, nil
		}
	}
	var raw [20]byte
	rand.Read(raw[:])
	id := hex.EncodeToString(raw[:])
	f, err := persist.CreateAtomic(s.fsys, p)
	if err != nil {
		return "", err
	}
	if _, err := f.Write([]byte(id + "\n")); err != nil {
		f.Abort()
		return "", err
	}
	return id, f.Commit()
}

// protocol is the protocol version this node speaks (cluster.ProtocolVersion
// unless a test claims another).
func (s *Server) protocol() int {
	if s.opts.Protocol != 0 {
		return s.opts.Protocol
	}
	return cluster.ProtocolVersion
}

// minReplicaProtocol is the oldest protocol a replica of this node may
// speak.
func (s *Server) minReplicaProtocol() int {
	return max(cluster.MinProtocolVersion, s.opts.MinReplicaProtocol)
}

// startAgent starts the cluster agent when a manager is configured.
func (s *Server) startAgent() error {
	var mgr, announce, token, caFile string
	var weight, port, mcport int
	var bind []string
	var standby bool
	s.cfg.Read(func(c *config.Config) {
		mgr, announce, weight, port, mcport, bind = c.Manager, c.ClusterAnnounceIP, c.ClusterWeight, c.Port, c.MemcachedPort, c.Bind
		standby, token, caFile = c.Standby, c.ManagerToken, c.ManagerCAFile
	})
	if mgr == "" {
		return nil
	}
	id, err := s.nodeID()
	if err != nil {
		return err
	}
	host := announce
	if host == "" {
		host = "127.0.0.1"
		for _, b := range bind {
			if b != "" && b != "*" && b != "0.0.0.0" && b != "::" && !strings.HasPrefix(b, "-") {
				host = strings.TrimPrefix(b, "-")
				break
			}
		}
	}
	if port == 0 {
		// The map publishes the node's address: it needs a port peers can
		// dial (port 0 would register 127.0.0.1:0).
		return errors.New("cluster mode needs a TCP port (--port N, not 0): the cluster map publishes it")
	}
	self := cluster.Node{ID: id, Addr: net.JoinHostPort(host, strconv.Itoa(port)), Weight: max(1, weight),
		Version: ShoalVersion, Protocol: s.protocol()}
	if mcport > 0 {
		self.MCAddr = net.JoinHostPort(host, strconv.Itoa(mcport))
	}
	self.TLSAddr = s.tlsAddr(host)
	if standby {
		self.State = cluster.NodeStandby // registers in the standby pool
	}
	c := manager.NewClient(mgr)
	c.Retry = -1 // the heartbeat loop is the retry
	c.HTTP = s.opts.ManagerHTTP
	c.Token = token
	if caFile != "" {
		if c.TLS, err = tlsconf.Client(caFile, "", ""); err != nil {
			return fmt.Errorf("manager-tls-ca-cert-file: %w", err)
		}
	}
	a := &agent{s: s, client: c, self: self, role: cluster.RoleNone, quit: make(chan struct{}), done: make(chan struct{})}
	s.agent = a
	go a.run()
	s.log.Info("cluster mode", "node", id, "addr", self.Addr, "managers", mgr)
	return nil
}

func (a *agent) stop() {
	select {
	case <-a.quit:
	default:
		close(a.quit)
	}
	<-a.done
}

func (a *agent) period() time.Duration {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.mp != nil && a.mp.Settings.HeartbeatMs > 0 {
		return time.Duration(a.mp.Settings.HeartbeatMs) * time.Millisecond
	}
	return 200 * time.Millisecond
}

func (a *agent) run() {
	defer close(a.done)
	ctx, cancel := context.WithCancel(context.Background())
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		a.watch(ctx)
	}()
	defer func() {
		cancel()
		<-watched
	}()
	next := time.Now()
	for {
		select {
		case <-a.quit:
			return
		case <-time.After(time.Until(next)):
		}
		p := a.period()
		next = time.Now().Add(p)
		a.beat(p)
	}
}

// watch long-polls the managers for new maps, so a change reaches the
// node as soon as it is committed rather than at its next heartbeat (a
// slot move's cutover and flip pause the slot's writes for that long).
// The heartbeat stays the authority for leases; a map only ever demotes.
func (a *agent) watch(ctx context.Context) {
	for ctx.Err() == nil {
		a.mu.Lock()
		var epoch uint64
		if a.mp != nil {
			epoch = a.mp.Epoch
		}
		a.mu.Unlock()
		wctx, cancel := context.WithTimeout(ctx, 35*time.Second)
		m, err := a.client.WindowMap(wctx, epoch, 30*time.Second)
		cancel()
		if err != nil {
			select {
			case <-ctx.Done():
			case <-time.After(a.period()):
			}
			continue
		}
		if m != nil && m.Epoch > epoch {
			a.install(m)
		}
	}
}

// beat sends one heartbeat and acts on the reply.
func (a *agent) beat(period time.Duration) {
	hb := a.collect()
	sent := nanotime()
	ctx, cancel := context.WithTimeout(context.Background(), max(2*period, 500*time.Millisecond))
	reply, err := a.client.Heartbeat(ctx, hb)
	cancel()
	if err != nil {
		a.mu.Lock()
		var ae *manager.APIError
		switch {
		case a.lastErr == err.Error():
		case errors.As(err, &ae) && strings.Contains(ae.Msg, manager.ErrProtocol.Error()):
			// Not transient: this build is too old for the cluster.
			a.s.log.Error("the managers refuse this node: its protocol version is too old", "protocol", a.self.Protocol,
				"version", ShoalVersion, "err", err)
		default:
			a.s.log.Warn("heartbeat failed", "err", err)
		}
		a.lastErr = err.Error()
		a.mu.Unlock()
		return // the lease, if any, runs out by itself
	}
	if reply.Map != nil {
		a.install(reply.Map)
	}
	a.mu.Lock()
	a.lastErr, a.lastOK = "", time.Now()
	role, mp := a.role, a.mp
	a.mu.Unlock()
	switch {
	case reply.Fence && role == cluster.RolePrimary:
		if !a.fenced.Load() {
			// Stop writing, then wait for commands already past the
			// lease check: the next heartbeat's offset is final.
			a.lease.Store(0)
			a.fenced.Store(true)
			a.s.db.LockAll()
			a.s.db.UnlockAll()
			a.s.log.Info("fenced by the manager (graceful failover)")
		}
	case reply.LeaseMs > 0 && role == cluster.RolePrimary:
		// The grant, not the map, makes this node act as primary: the
		// manager withholds it from a node that restarted behind a replica.
		if a.s.repl.isReplica.Load() {
			a.s.becomePrimary()
			_ = a.s.cfg.Set("replicaof", "no one", false)
			if _, sh := mp.Role(a.self.ID); sh != nil {
				// Keys of slots that moved away while this node was not
				// acting as primary go now (journaled: replicas follow).
				a.s.sweepUnowned(mp, sh.ID)
			}
		}
		a.fenced.Store(false)
		a.lease.Store(sent + int64(reply.LeaseMs)*int64(time.Millisecond))
	default:
		a.fenced.Store(false)
		a.lease.Store(0)
	}
}

// collect builds the heartbeat.
func (a *agent) collect() *cluster.Heartbeat {
	s := a.s
	a.mu.Lock()
	hb := &cluster.Heartbeat{Node: a.self, ShardEpoch: a.shardEpoch}
	if a.mp != nil {
		hb.MapEpoch = a.mp.Epoch
	}
	a.beats++
	slotKeys := a.beats%25 == 1 // every ~5 s at the default period
	slotOps := a.beats%slotOpsEvery == 1
	mapRole := a.role
	a.mu.Unlock()
	id, _, _ := s.replIDs()
	hb.ReplID = id
	hb.Offset = s.lastLSN()
	switch {
	case s.repl.isReplica.Load():
		hb.Role = cluster.RoleReplica
		s.repl.mu.Lock()
		l := s.repl.link
		s.repl.mu.Unlock()
		// Synced: a complete copy of the primary's history, even if the
		// link is down now (the primary died): a failover candidate.
		hb.Synced = l != nil && l.holds.Load() && !l.syncing.Load()
	case mapRole == cluster.RolePrimary:
		hb.Role = cluster.RolePrimary
		hb.Fenced = a.fenced.Load()
		hb.InSync = int(s.repl.nOnline.Load())
	default:
		hb.Role = cluster.RoleNone
	}
	s.admin.mu.Lock()
	hb.OpsPerSec = s.admin.ops.avg()
	s.admin.mu.Unlock()
	hb.UsedMemory = s.db.UsedMemory()
	hb.MaxMemory = s.db.MaxMemory()
	hb.Keys = s.db.KeyCount()
	if slotOps {
		hb.SlotOps = a.hottestSlots()
	}
	if slotKeys {
		for i := 0; i < cluster.NumSlots; i++ {
			sl := s.db.Slot(i)
			s.db.Lock(i)
			n := sl.Len()
			s.db.Unlock(i)
			if n > 0 {
				hb.SlotKeys = append(hb.SlotKeys, [2]int64{int64(i), int64(n)})
			}
		}
	}
	return hb
}

// slotOpsEvery: SlotOps go out every this many beats (~1 s at the
// default period): reading them takes every slot's lock in turn.
const slotOpsEvery = 5

// hottestSlots returns the cluster.MaxSlotOps slots with the most
// commands since the previous call, as ops/s, hottest first (nil on the
// first call: no interval yet).
func (a *agent) hottestSlots() [][2]float64 {
	s := a.s
	now := time.Now()
	first := a.slotOps == nil
	if first {
		a.slotOps = make([]uint64, cluster.NumSlots)
	}
	secs := now.Sub(a.slotOpsAt).Seconds()
	a.slotOpsAt = now
	out := [][2]float64{} // non-nil: a report, even of no load
	for i := 0; i < cluster.NumSlots; i++ {
		n := s.db.Slot(i).Ops.Load()
		d := n - a.slotOps[i]
		a.slotOps[i] = n
		if d > 0 && secs > 0 {
			out = append(out, [2]float64{float64(i), float64(d) / secs})
		}
	}
	slices.SortFunc(out, func(x, y [2]float64) int {
		if x[1] != y[1] {
			return cmp.Compare(y[1], x[1])
		}
		return cmp.Compare(x[0], y[0])
	})
	if len(out) > cluster.MaxSlotOps {
		out = out[:cluster.MaxSlotOps]
	}
	if first {
		return nil
	}
	return out
}

// install acts on a new map: routing, then the node's role.
func (a *agent) install(m *cluster.Map) {
	a.installMu.Lock()
	defer a.installMu.Unlock()
	s := a.s
	role, shard := m.Role(a.self.ID)
	a.mu.Lock()
	if a.mp != nil && m.Epoch < a.mp.Epoch {
		// From a deposed leader that has not caught up: never go back.
		a.mu.Unlock()
		return
	}
	prev, prevMap := a.role, a.mp
	a.mp, a.role = m, role
	a.shardEpoch = 0
	if shard != nil {
		a.shardEpoch = shard.Epoch
	}
	a.mu.Unlock()
	if role != cluster.RolePrimary {
		a.lease.Store(0) // before anything else: no write after a demotion
	}
	s.SetClusterMap(m, a.self.ID)
	s.reconcileMoves(prevMap, m, a.self.ID)
	switch role {
	case cluster.RolePrimary:
		// Acts as primary once the manager grants a lease (beat).
		if s.repl.isReplica.Load() {
			s.repl.mu.Lock()
			l := s.repl.link
			s.repl.link = nil
			s.repl.mu.Unlock()
			if l != nil {
				l.stop() // stop following the old primary meanwhile
			}
		}
	case cluster.RoleNone:
		if prev == cluster.RoleReplica {
			// Released to the standby pool (its shard was drained and
			// removed): stop following the old primary. A later shard
			// makes it a replica (full copy) or a primary (on its lease).
			s.repl.mu.Lock()
			l := s.repl.link
			s.repl.link = nil
			s.repl.mu.Unlock()
			if l != nil {
				l.stop()
			}
		}
	case cluster.RoleReplica:
		host, port, err := net.SplitHostPort(m.PeerAddr(shard.Primary, s.peerTLSOn()))
		p, _ := strconv.Atoi(port)
		if err != nil || p == 0 {
			s.log.Warn("the map names no address for this shard's primary", "shard", shard.ID)
			break
		}
		s.repl.mu.Lock()
		same := s.repl.isReplica.Load() && s.repl.link != nil && s.repl.link.host == host && s.repl.link.port == p
		s.repl.mu.Unlock()
		if !same {
			s.becomeReplica(host, p)
			_ = s.cfg.Set("replicaof", host+" "+port, false)
		}
	}
	var sync int
	s.cfg.Read(func(c *config.Config) { sync = c.SyncReplicas })
	if sync != m.Settings.SyncReplicas {
		_ = s.cfg.Set("sync-replicas", strconv.Itoa(m.Settings.SyncReplicas), true)
	}
	if prev != role {
		s.log.Info("cluster role", "role", role, "map_epoch", m.Epoch, "shard_epoch", a.shardEpoch)
	}
}

// agentInfo adds the agent's state to INFO cluster (nothing without --manager).
func (s *Server) agentInfo(line func(string, any)) {
	a := s.agent
	if a == nil {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	line("cluster_node_id", a.self.ID)
	line("cluster_role", a.role)
	var epoch uint64
	if a.mp != nil {
		epoch = a.mp.Epoch
	}
	line("cluster_map_epoch", epoch)
	line("cluster_shard_epoch", a.shardEpoch)
	left := (a.lease.Load() - nanotime()) / int64(time.Millisecond)
	line("cluster_lease_ms", max(0, left))
	line("cluster_fenced", b2i(a.fenced.Load()))
	ago := int64(-1)
	if !a.lastOK.IsZero() {
		ago = time.Since(a.lastOK).Milliseconds()
	}
	line("cluster_manager_last_ok_ms", ago)
	if a.lastErr != "" {
		line("cluster_manager_error", strings.ReplaceAll(a.lastErr, "\r\n", " "))
	}
}
