package server

// Cluster mode, the storage node's side (docs/cluster.md): the routing
// view built from the cluster map, the routing rules the dispatcher and
// the memcached front end apply, and redirection of clients blocked on
// slots a new map takes away. The CLUSTER, READONLY, READWRITE and
// ASKING commands are in cmd_cluster.go.
//
// The map arrives from outside (the heartbeat agent, tests) through
// SetClusterMap; the event loops read the view it builds through an
// atomic pointer and never take a lock to route.

import (
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"shoal/internal/cluster"
	"shoal/internal/command"
	"shoal/internal/memcache"
	"shoal/internal/resp"
)

// slotState is what this node is for a slot.
type slotState uint8

const (
	slotRemote  slotState = iota // another shard's, or unassigned
	slotPrimary                  // this node's shard's, this node its primary
	slotReplica                  // this node's shard's, this node a replica
)

type slotRoute struct {
	shard  uint16 // owner, 0 = unassigned
	state  slotState
	fenced bool // moving away, in cutover: writes get TRYAGAIN
	// incoming: moving to this node's shard, in cutover. The source may
	// already have installed the flip and redirect clients here before
	// this node has: they get TRYAGAIN, not a MOVED back to the source
	// (which would bounce them between the two until both maps agree).
	incoming bool
}

// shardAddrs are the addresses of a shard's primary.
type shardAddrs struct {
	addr   string // RESP host:port
	mcAddr string // memcached host:port (addr when the node serves none)
}

// clusterView is an immutable routing view of one cluster map: built
// once by SetClusterMap, then only read (by any goroutine, without
// locks).
type clusterView struct {
	m          *cluster.Map // nil: no map yet (the node id may be known)
	self       string
	epoch      uint64 // the map's epoch
	shard      int    // this node's shard, 0 = none
	role       string // cluster.RolePrimary, RoleReplica or RoleNone
	shardEpoch uint64 // this node's shard's epoch
	slots      [cluster.NumSlots]slotRoute
	primaries  map[int]shardAddrs // shard id → its primary's addresses
	assigned   int                // slots with an owner
	size       int                // shards owning at least one slot
	installed  int64              // unix ms the view was installed
}

// clusterState is the server's cluster-mode state.
type clusterState struct {
	mu   sync.Mutex // serializes SetClusterMap
	view atomic.Pointer[clusterView]

	// pauseStart: when each slot's cutover write pause began here (a
	// nanotime; 0: none), guarded by mu. A slot is paused on the source's
	// primary while fenced, and on the target's primary while incoming
	// (the source may redirect to it before it has the flip): from the
	// map that cuts the move over to the one that ends it (the flip, or
	// a cancel). What clients see is at most the longer of the two plus
	// their retry backoff. INFO cluster: cluster_cutover_*.
	pauseStart [cluster.NumSlots]int64
	pauses     atomic.Int64 // cutover pauses ended here
	pauseMaxUs atomic.Int64 // the longest, in µs
	pauseLast  atomic.Int64 // the last one ended, in µs

	// pushed: the migrator's fences and flips that reached this node
	// before the map that commits them (movepush.go), by slot, guarded
	// by mu; each holds until a map of its epoch or a later one is
	// installed.
	pushed       map[int]pushedStep
	pushedFences atomic.Int64 // CLUSTER MOVEFENCE slots taken (INFO)
	pushedFlips  atomic.Int64 // CLUSTER MOVEDONE slots taken (INFO)
	moveWaits    atomic.Int64 // CLUSTER MOVEWAIT slots found applied (INFO)
}

// paused reports whether writes to slot r wait for a cutover on this node.
func (v *clusterView) paused(i int) bool {
	r := v.slots[i]
	return (r.state == slotPrimary && r.fenced) || (r.state == slotRemote && r.incoming && v.role == cluster.RolePrimary)
}

// notePausesLocked records the cutover pauses that begin or end as the
// view goes from old to v (s.clus.mu held).
func (s *Server) notePausesLocked(old, v *clusterView, changed []int) {
	now := nanotime()
	for _, i := range changed {
		was, is := old.paused(i), v.paused(i)
		switch {
		case is && !was:
			s.clus.pauseStart[i] = now
		case was && !is && s.clus.pauseStart[i] != 0:
			d := (now - s.clus.pauseStart[i]) / 1000
			s.clus.pauseStart[i] = 0
			s.clus.pauses.Add(1)
			s.clus.pauseLast.Store(d)
			if d > s.clus.pauseMaxUs.Load() {
				s.clus.pauseMaxUs.Store(d) // one writer: SetClusterMap, under mu
			}
		}
	}
}

// cutoverInfo adds the cutover pause figures to INFO cluster.
func (s *Server) cutoverInfo(line func(string, any)) {
	line("cluster_cutover_pauses", s.clus.pauses.Load())
	line("cluster_cutover_pause_max_ms", strconv.FormatFloat(float64(s.clus.pauseMaxUs.Load())/1000, 'f', 3, 64))
	line("cluster_cutover_pause_last_ms", strconv.FormatFloat(float64(s.clus.pauseLast.Load())/1000, 'f', 3, 64))
	line("cluster_cutover_pushed_fences", s.clus.pushedFences.Load())
	line("cluster_cutover_pushed_flips", s.clus.pushedFlips.Load())
	line("cluster_cutover_waited_slots", s.clus.moveWaits.Load())
}

func newClusterView(m *cluster.Map, self string) *clusterView {
	v := &clusterView{m: m, self: self, role: cluster.RoleNone, installed: time.Now().UnixMilli()}
	if m == nil {
		return v
	}
	v.epoch = m.Epoch
	role, sh := m.Role(self)
	if sh != nil {
		v.shard, v.role, v.shardEpoch = sh.ID, role, sh.Epoch
	}
	mine := slotPrimary
	if role == cluster.RoleReplica {
		mine = slotReplica
	}
	owning := map[int]bool{}
	for i, o := range m.Slots {
		r := slotRoute{shard: o}
		if o != 0 {
			v.assigned++
			owning[int(o)] = true
			if int(o) == v.shard {
				r.state = mine
			}
		}
		r.fenced = m.Fenced(i)
		if r.fenced && v.shard != 0 && m.Migrations[i].To == v.shard {
			r.incoming = true
		}
		v.slots[i] = r
	}
	v.size = len(owning)
	v.primaries = make(map[int]shardAddrs, len(m.Shards))
	for id, s := range m.Shards {
		n := m.Nodes[s.Primary]
		if n == nil || n.Addr == "" {
			continue // its slots answer CLUSTERDOWN (route)
		}
		a := shardAddrs{addr: n.Addr, mcAddr: n.MCAddr}
		if a.mcAddr == "" {
			a.mcAddr = n.Addr
		}
		v.primaries[id] = a
	}
	return v
}

// SetClusterMap installs a cluster map and this node's id in it. m is
// the caller's private copy: the server keeps it and never changes it;
// nil means no map yet (only the id is known). Maps are installed in the
// order given: the caller drops maps older than the one it last passed.
//
// The switch is atomic for commands: the slots whose state here changes
// are locked while the view is replaced, so a command on them ran wholly
// before the switch or is routed by the new map. Clients blocked (BLPOP...)
// on a slot this node no longer serves as primary are woken with the
// redirection, as Redis Cluster does.
func (s *Server) SetClusterMap(m *cluster.Map, self string) {
	v := newClusterView(m, self)
	s.clus.mu.Lock()
	defer s.clus.mu.Unlock()
	s.applyPushedLocked(v)
	s.swapViewLocked(v)
}

// swapViewLocked replaces the routing view by v (s.clus.mu held): the
// slots whose route changes are locked meanwhile, so a command on them
// runs wholly before or after the switch.
func (s *Server) swapViewLocked(v *clusterView) {
	old := s.clus.view.Load()
	if old == nil || !s.clusterMode {
		// Nothing was routed by a map yet: no command or waiter can
		// depend on the old state.
		s.clus.view.Store(v)
		return
	}
	var changed []int
	for i := range v.slots {
		if v.slots[i] != old.slots[i] {
			changed = append(changed, i)
		}
	}
	s.notePausesLocked(old, v, changed)
	s.db.LockSlots(changed)
	s.clus.view.Store(v)
	for _, i := range changed {
		if v.slots[i].state != slotPrimary {
			s.redirectWaitersLocked(v, i)
		}
	}
	s.db.UnlockSlots(changed)
}

// ClusterEnabled reports whether the node runs in cluster mode
// (cluster-enabled yes).
func (s *Server) ClusterEnabled() bool { return s.clusterMode }

// redirectWaitersLocked wakes the clients blocked on keys of slot i (its
// lock held), which this node no longer serves as primary, with the
// redirection the new view gives; they are not retried.
func (s *Server) redirectWaitersLocked(v *clusterView, i int) {
	sl := s.db.Slot(i)
	if len(sl.Waiters) == 0 {
		return
	}
	code := v.route(i, nil, true, false)
	for _, list := range sl.Waiters {
		for _, x := range list {
			w := x.(*waiter)
			if !w.done.CompareAndSwap(false, true) {
				continue
			}
			if w.timer != nil {
				w.timer.Stop()
			}
			rw := resp.Writer{Proto: int(w.cl.protoShared.Load())}
			rw.B = v.appendRouteError(rw.B, code, i, false)
			w.timedOut = true // answered: finishWait must not run it again
			w.answer(rw.B)
		}
	}
}

// routeCode is a routing decision.
type routeCode uint8

const (
	routeLocal     routeCode = iota // run it here
	routeDown                       // no map yet, or the owner has no known primary
	routeUnbound                    // the slot has no owner
	routeCrossSlot                  // keys in several slots not all served here
	routeMoved                      // another node serves it: MOVED to the owner's primary
	routeFenced                     // a write to a slot in the cutover of a move: TRYAGAIN
)

// route decides where a command runs. first is its first key's slot,
// slots all its keys' slots (first included, any order; nil for a single
// slot). write: the command changes data; readonly: the connection sent
// READONLY (replicas then serve reads of their shard's slots). A nil
// view (cluster mode before any map) is down.
func (v *clusterView) route(first int, slots []int, write, readonly bool) routeCode {
	if v == nil || v.m == nil {
		return routeDown
	}
	r := v.slots[first]
	if r.shard == 0 {
		return routeUnbound
	}
	for _, sl := range slots {
		if sl == first {
			continue
		}
		// Keys in several slots run together (atomically, as today)
		// only when this node's shard owns every one of them.
		for _, x := range slots {
			if v.slots[x].state == slotRemote {
				return routeCrossSlot
			}
		}
		break
	}
	switch r.state {
	case slotRemote:
		if r.incoming {
			return routeFenced
		}
	case slotPrimary:
		if write {
			if r.fenced {
				return routeFenced
			}
			for _, x := range slots {
				if v.slots[x].fenced {
					return routeFenced
				}
			}
		}
		return routeLocal
	case slotReplica:
		if readonly && !write {
			return routeLocal
		}
	}
	if _, ok := v.primaries[int(r.shard)]; !ok {
		return routeDown
	}
	return routeMoved
}

// appendRouteError appends the reply for a routing decision other than
// routeLocal about slot: a RESP error, or for memcached (mc) a
// SERVER_ERROR line naming the primary's memcached address.
func (v *clusterView) appendRouteError(b []byte, code routeCode, slot int, mc bool) []byte {
	if mc {
		b = append(b, "SERVER_ERROR "...)
	} else {
		b = append(b, '-')
	}
	switch code {
	case routeUnbound:
		b = append(b, "CLUSTERDOWN Hash slot not served"...)
	case routeCrossSlot:
		b = append(b, "CROSSSLOT Keys in request don't hash to the same slot"...)
	case routeFenced:
		b = append(b, "TRYAGAIN Slot "...)
		b = strconv.AppendInt(b, int64(slot), 10)
		b = append(b, " is moving to another shard: writes resume in a moment"...)
	case routeMoved:
		a := v.primaries[int(v.slots[slot].shard)]
		b = append(b, "MOVED "...)
		b = strconv.AppendInt(b, int64(slot), 10)
		b = append(b, ' ')
		if mc {
			b = append(b, a.mcAddr...)
		} else {
			b = append(b, a.addr...)
		}
	default:
		b = append(b, "CLUSTERDOWN The cluster is down"...)
	}
	return append(b, '\r', '\n')
}

// appendKeySlots appends the slots of args' keys (indexes keys), in key
// order; slot1 is args[1]'s slot when already computed (else -1).
func appendKeySlots(dst []int, args [][]byte, keys []int, slot1 int) []int {
	for _, k := range keys {
		if k == 1 && slot1 >= 0 {
			dst = append(dst, slot1)
		} else {
			dst = append(dst, cluster.Slot(args[k]))
		}
	}
	return dst
}

// routeCommand applies the routing rules to a command about to run
// (cluster mode, outside EXEC). It returns its keys' slots in key order,
// appended to slots (the caller locks them without hashing again), and
// the view it was routed by (nil for a keyless command). ok false: the
// reply (a redirection or error) is written.
func (s *Server) routeCommand(cl *Client, d *cmdDef, args [][]byte, keys []int, slot1 int, slots []int) (_ []int, _ *clusterView, ok bool) {
	cl.asking = false // one command only (ASKING sets it again)
	if len(keys) == 0 {
		return slots, nil, true // keyless: answered here
	}
	slots = appendKeySlots(slots, args, keys, slot1)
	v := s.clus.view.Load()
	code := v.route(slots[0], slots, d.spec.Flags&command.Write != 0, cl.readonly)
	if code == routeLocal {
		if s.notActing(v, slots[0]) {
			cl.w.Error(errNotActing)
			inc(&cl.shard.cmd[d.idx].rejected, 1)
			return slots, nil, false
		}
		return slots, v, true
	}
	cl.w.B = v.appendRouteError(cl.w.B, code, slots[0], false)
	inc(&cl.shard.cmd[d.idx].rejected, 1)
	return slots, nil, false
}

// errNotActing answers reads and writes on a node the map names primary
// before the manager granted it the role (a restart: it may be behind a
// replica that is about to be promoted, so its data must not be read).
const errNotActing = "TRYAGAIN This node is not serving as its shard's primary yet (waiting for the cluster manager)"

// notActing reports whether slot is this node's as primary in v while
// the node does not act as one yet.
func (s *Server) notActing(v *clusterView, slot int) bool {
	return v.slots[slot].state == slotPrimary && s.repl.isReplica.Load()
}

// rerouteLocked routes a command again once its slots are locked, if the
// view changed since routeCommand (SetClusterMap locks the slots it
// changes, so the view seen under the locks holds until they are
// released). first is the first key's slot; false: the reply is written.
func (s *Server) rerouteLocked(cl *Client, d *cmdDef, v *clusterView, first int, slots []int) bool {
	nv := s.clus.view.Load()
	if nv == v {
		return true
	}
	code := nv.route(first, slots, d.spec.Flags&command.Write != 0, cl.readonly)
	if code == routeLocal {
		return true
	}
	cl.w.B = nv.appendRouteError(cl.w.B, code, first, false)
	inc(&cl.shard.cmd[d.idx].rejected, 1)
	return false
}

// routeQueued checks a command as MULTI queues it; false: the error is
// written (the caller flags the transaction, EXEC then answers
// EXECABORT, as Redis does).
func (s *Server) routeQueued(cl *Client, d *cmdDef, args [][]byte) bool {
	var keyBuf, slotBuf [16]int
	keys := d.spec.KeyIndexes(args, keyBuf[:0])
	_, _, ok := s.routeCommand(cl, d, args, keys, -1, slotBuf[:0])
	return ok
}

// routeExec checks a transaction at EXEC, its slots locked: the queued
// commands' key slots (first: the first key's), write if any queued
// command writes. false: the reply is written.
func (s *Server) routeExec(cl *Client, first int, slots []int, write bool) bool {
	v := s.clus.view.Load()
	code := v.route(first, slots, write, cl.readonly)
	if code == routeLocal {
		return true
	}
	cl.w.B = v.appendRouteError(cl.w.B, code, first, false)
	return false
}

// splitAddr splits host:port; a port that does not parse is 0.
func splitAddr(addr string) (host string, port int) {
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		return addr, 0
	}
	port, _ = strconv.Atoi(p)
	return h, port
}

// mcRoute applies the routing rules to a memcached data command: a key
// whose slot this node does not serve (as primary; for reads, as primary
// or replica: memcached has no READONLY) gets SERVER_ERROR MOVED with
// the primary's memcached address, or SERVER_ERROR CLUSTERDOWN. A
// multi-key get is answered with the first such key's error alone.
// The error is sent even with noreply: the client must learn of it.
// false: the reply is written.
func (s *Server) mcRoute(cl *Client, cmd *memcache.Command) bool {
	v := s.clus.view.Load()
	write := mcWriteOp(cmd.Op) || cmd.Op == memcache.OpGat || cmd.Op == memcache.OpGats ||
		cmd.Op == memcache.OpMetaGet && (cmd.Meta.Flag('T') || cmd.Meta.Flag('N'))
	code, slot, keyed := routeLocal, 0, false
	switch cmd.Op {
	case memcache.OpGet, memcache.OpGets, memcache.OpGat, memcache.OpGats:
		cmd.EachKey(func(k []byte) bool {
			slot, keyed = cluster.Slot(k), true
			code = v.route(slot, nil, write, true)
			return code == routeLocal
		})
	case memcache.OpError:
		// A refused set drops the old value (memcached): only where the
		// key is served as primary. The error itself is answered.
		if cmd.DeleteKey && v.route(cluster.Slot(cmd.Key), nil, true, false) != routeLocal {
			cmd.DeleteKey = false
		}
	case memcache.OpFlushAll:
		// The local keyspace, as FLUSHALL.
	default:
		if cmd.Key != nil {
			slot, keyed = cluster.Slot(cmd.Key), true
			code = v.route(slot, nil, write, true)
		}
	}
	if code == routeLocal {
		if keyed && s.notActing(v, slot) {
			cl.w.B = append(cl.w.B, "SERVER_ERROR "+errNotActing+"\r\n"...)
			return false
		}
		return true
	}
	cl.w.B = v.appendRouteError(cl.w.B, code, slot, true)
	return false
}
