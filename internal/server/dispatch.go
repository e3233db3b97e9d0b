package server

import (
	"math/bits"
	"slices"
	"unsafe"

	"github.com/panjf2000/gnet/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"shoal/internal/cluster"
	"shoal/internal/command"
	"shoal/internal/engine"
	"shoal/internal/resp"
)

// Ctx is what a handler sees: the arguments, the reply writer and the
// keyspace with the command's slots already locked.
type Ctx struct {
	srv  *Server
	db   *engine.DB
	cl   *Client
	args [][]byte
	w    *resp.Writer
	spec *command.Spec

	// allLocked: every slot is locked by the caller (EXEC of a transaction
	// with a whole-keyspace command); whole-keyspace handlers must not lock.
	allLocked bool
	inExec    bool

	// slot1 caches the slot of args[1] when it is a key (-1 otherwise):
	// single-key commands then hash their key once.
	slot1 int

	// sink collects the command's log effects; nil when the log is off
	// or the command is not a write (aof.go).
	sink *effSink
}

type handlerFunc func(c *Ctx)

// cmdDef binds a spec to its handler.
type cmdDef struct {
	spec    *command.Spec
	fn      handlerFunc
	idx     int  // index into Server.cmdStats
	logRule int  // how the log records it (aof.go)
	logNoop bool // a "nothing changed" reply means nothing to log
}

var handlers = map[string]handlerFunc{}

// register binds name's handler; called from init in the cmd_*.go files.
func register(name string, fn handlerFunc) {
	if command.Table[name] == nil {
		panic("BUG: handler for unknown command " + name)
	}
	if _, dup := handlers[name]; dup {
		panic("BUG: duplicate handler " + name)
	}
	handlers[name] = fn
}

var (
	defsOnce sync.Once
	defs     map[string]*cmdDef
)

// cmdStat is one command's counters in one event loop, written only by
// that loop (inc). lat is a latency histogram with fixed power-of-two
// buckets (latBucket): the loop adds one to a bucket, and a scrape sums
// the loops' buckets (metrics.go) — no Prometheus call, lock or
// allocation per command. The calls are the buckets' sum (calls()), not
// a counter of their own: every inc is an atomic store (an XCHG on
// amd64, ~20 cycles), so a command still costs the two it cost before
// the histogram (calls and time then; a bucket and time now).
type cmdStat struct {
	nsec, rejected, failed atomic.Int64
	lat                    [latBuckets]atomic.Int64
}

// calls is the number of calls recorded (the sum of the buckets).
func (st *cmdStat) calls() int64 {
	var n int64
	for i := range st.lat {
		n += st.lat[i].Load()
	}
	return n
}

// Latency buckets of cmdStat.lat: bucket i counts the commands that took
// at most 1024·2^i ns and more than half that (Prometheus' le: 1.024 µs,
// 2.048 µs, ... 1.07 s); the last one counts the slower ones (+Inf).
const (
	latBuckets = 22
	latShift   = 10 // the first bucket's bound: 2^10 ns
)

// latBucket is the bucket of a command that took ns nanoseconds: a
// bit length and two conditional moves, no branch to mispredict.
func latBucket(ns int64) int {
	return min(bits.Len64(uint64(max(ns, 1)-1)>>latShift), latBuckets-1)
}

// latBound is bucket i's upper bound in seconds (i < latBuckets-1).
func latBound(i int) float64 { return float64(int64(1)<<(latShift+i)) / 1e9 }

// statShard holds one event loop's counters.
type statShard struct {
	cmd           []cmdStat
	netIn, netOut atomic.Int64
	mc            [mcNumStats]atomic.Int64 // memcached command counters (memcache_conn.go)

	// Loop-owned (aof.go): clients whose replies wait for this
	// iteration's log write, and the wake that will do it.
	loopHeld   []*Client
	flushArmed bool
	flushArmer *Client
}

func newStatShard() *statShard {
	initDefs()
	return &statShard{cmd: make([]cmdStat, len(defs))}
}

// shardFor returns the statistics shard of an event loop.
func (s *Server) shardFor(el any) *statShard {
	s.shardsMu.Lock()
	defer s.shardsMu.Unlock()
	key, _ := el.(gnet.EventLoop)
	sh := s.shards[key]
	if sh == nil {
		sh = newStatShard()
		s.shards[key] = sh
	}
	return sh
}

// cmdTotals sums per-command counters over all loops, indexed like defs,
// less the baseline of the last CONFIG RESETSTAT.
func (s *Server) cmdTotals() []CmdStat {
	s.shardsMu.Lock()
	defer s.shardsMu.Unlock()
	out := s.rawTotalsLocked()
	for i := range out {
		if i < len(s.statBase.cmd) {
			b := s.statBase.cmd[i]
			out[i].Calls -= b.Calls
			out[i].Nsec -= b.Nsec
			out[i].Rejected -= b.Rejected
			out[i].Failed -= b.Failed
		}
	}
	for i := range out {
		out[i].Usec = out[i].Nsec / 1000
	}
	return out
}

func (s *Server) rawTotalsLocked() []CmdStat {
	initDefs()
	out := make([]CmdStat, len(defs))
	for _, sh := range s.shards {
		for i := range sh.cmd {
			st := &sh.cmd[i]
			out[i].Calls += st.calls()
			out[i].Nsec += st.nsec.Load()
			out[i].Rejected += st.rejected.Load()
			out[i].Failed += st.failed.Load()
		}
	}
	return out
}

// totalCommands is total_commands_processed.
func (s *Server) totalCommands() int64 {
	var n int64
	for _, t := range s.cmdTotals() {
		n += t.Calls + t.Rejected
	}
	return n
}

// CmdStat is one command's totals (Usec is Nsec/1000, as INFO
// commandstats shows it).
type CmdStat struct{ Calls, Usec, Nsec, Rejected, Failed int64 }

// NetBytes sums network input and output bytes over all loops.
func (s *Server) NetBytes() (in, out int64) {
	s.shardsMu.Lock()
	defer s.shardsMu.Unlock()
	for _, sh := range s.shards {
		in += sh.netIn.Load()
		out += sh.netOut.Load()
	}
	return in - s.statBase.netIn, out - s.statBase.netOut
}

// ResetCommandStats clears per-command and network counters.
func (s *Server) ResetCommandStats() {
	// Counters are only ever incremented by their own loop (plain load +
	// store, no locked instruction on the hot path), so a reset records a
	// baseline instead of writing zeros under the owner's feet.
	s.shardsMu.Lock()
	defer s.shardsMu.Unlock()
	s.statBase.cmd = s.rawTotalsLocked()
	s.statBase.netIn, s.statBase.netOut = 0, 0
	for _, sh := range s.shards {
		s.statBase.netIn += sh.netIn.Load()
		s.statBase.netOut += sh.netOut.Load()
	}
}

// inc adds d to a counter that only its owning event loop writes: a load
// and a store, readable by others without a race. On amd64 the atomic
// store is an XCHG (implicitly locked, ~20 cycles, about what Add's LOCK
// XADD costs); what single writers save is contention: no other core
// writes the cache line. Count the incs on the per-command path.
func inc(a *atomic.Int64, d int64) { a.Store(a.Load() + d) }

func initDefs() {
	defsOnce.Do(func() {
		defs = make(map[string]*cmdDef, len(handlers))
		names := make([]string, 0, len(handlers))
		for n := range handlers {
			names = append(names, n)
		}
		slices.Sort(names)
		for i, n := range names {
			defs[n] = &cmdDef{spec: command.Table[n], fn: handlers[n], idx: i, logRule: logRules[n], logNoop: logNoop[n]}
		}
	})
}

func (s *Server) lookup(name []byte) *cmdDef {
	var buf [32]byte
	if len(name) > len(buf) {
		return defs[strings.ToLower(string(name))]
	}
	for i, c := range name {
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		buf[i] = c
	}
	return defs[string(buf[:len(name)])]
}

// Error replies used in several places (Redis's exact texts).
const (
	errWrongType   = "WRONGTYPE Operation against a key holding the wrong kind of value"
	errNotInt      = "ERR value is not an integer or out of range"
	errNotFloat    = "ERR value is not a valid float"
	errSyntax      = "ERR syntax error"
	errNoAuth      = "NOAUTH Authentication required."
	errOOM         = "OOM command not allowed when used memory > 'maxmemory'."
	errOverflow    = "ERR increment or decrement would overflow"
	errNoSuchKey   = "ERR no such key"
	errIndexRange  = "ERR index out of range"
	errTimeout     = "ERR timeout is not a float or out of range"
	errNegTimeout  = "ERR timeout is negative"
	errExpire      = "ERR invalid expire time in '%s' command"
	errMultiNested = "ERR MULTI calls can not be nested"
)

func errArity(name string) string {
	return "ERR wrong number of arguments for '" + name + "' command"
}

// quoteArgs renders the arguments of an unknown command as redis-server 7
// does: "'a' 'b' ", stopping once 128 bytes are written.
func quoteArgs(args [][]byte) string {
	var b strings.Builder
	for _, a := range args {
		room := 128 - b.Len()
		if room <= 0 {
			break
		}
		if len(a) > room {
			a = a[:room]
		}
		b.WriteByte('\'')
		b.Write(a)
		b.WriteString("' ")
	}
	return b.String()
}

// dispatch validates and runs one command (on the client's loop).
func (s *Server) dispatch(cl *Client, args [][]byte) {
	d := s.lookup(args[0])
	w := &cl.w
	if d == nil {
		name := string(args[0])
		if len(name) > 128 {
			name = name[:128]
		}
		w.Error("ERR unknown command '" + name + "', with args beginning with: " + quoteArgs(args[1:]))
		cl.flagMultiError()
		return
	}
	spec := d.spec
	if !cl.authed && spec.Flags&command.NoAuth == 0 {
		w.Error(errNoAuth)
		cl.flagMultiError()
		return
	}
	if !spec.ArityOK(len(args)) {
		w.Error(errArity(spec.Name))
		cl.flagMultiError()
		return
	}
	// ACL: one predictable branch while every user may run everything
	// (no users configured); the slow path checks the command, its keys
	// and channels.
	if s.acl.Restricted() {
		if msg := s.aclCheck(cl, spec, args); msg != "" {
			w.Error(msg)
			cl.flagMultiError()
			return
		}
	}
	if (cl.loadGate || s.persist.loading.Load()) && s.refuseWhileLoading(cl, d, args) {
		return
	}
	if cl.nsubs.Load() > 0 && cl.proto == 2 && spec.Flags&command.SubscribeOK == 0 {
		w.Error("ERR Can't execute '" + spec.Name + "': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context")
		return
	}
	if cl.inMulti && spec.Flags&command.NoMulti == 0 {
		if s.clusterMode && !s.routeQueued(cl, d, args) {
			cl.multiErr = true
			return
		}
		q := queued{spec: d, args: make([][]byte, len(args))}
		for i, a := range args {
			q.args[i] = append([]byte(nil), a...)
		}
		cl.queue = append(cl.queue, q)
		cl.multiLen.Store(int32(len(cl.queue) + 1))
		w.Simple("QUEUED")
		return
	}
	s.call(cl, d, args, false, false)
}

func (cl *Client) flagMultiError() {
	if cl.inMulti {
		cl.multiErr = true
	}
}

// call locks the command's slots, runs it, records stats and slowlog, and
// signals watchers of the keys a write touched. inExec/allLocked are set
// when EXEC already holds the locks.
func (s *Server) call(cl *Client, d *cmdDef, args [][]byte, inExec, allLocked bool) {
	spec := d.spec
	var keyBuf [16]int
	var slotBuf [16]int
	keys := spec.KeyIndexes(args, keyBuf[:0])
	if len(keys) > 2 {
		// MGET, MSET, DEL...: overlap the keys' memory accesses (the
		// batch prefetch in processInput covered the first key only).
		var kb [16][]byte
		n := 0
		for _, k := range keys[1:] {
			if n == len(kb) {
				break
			}
			if k < len(args) {
				kb[n] = args[k]
				n++
			}
		}
		s.db.Prefetch(kb[:n])
	}
	slots := slotBuf[:0]
	slot1 := -1
	if len(keys) > 0 && keys[0] == 1 && len(args[1]) > 0 {
		slot1 = cluster.Slot(args[1])
	}
	// Cluster mode routes first, as Redis Cluster does (before -READONLY,
	// -MISCONF or -OOM). Standalone pays this one predictable branch.
	var view *clusterView
	if s.clusterMode && !inExec {
		var ok bool
		if slots, view, ok = s.routeCommand(cl, d, args, keys, slot1, slots); !ok {
			return
		}
	}
	write := spec.Flags&command.Write != 0
	if write {
		if msg := s.writeRefusal(); msg != "" {
			cl.w.Error(msg)
			inc(&cl.shard.cmd[d.idx].rejected, 1)
			return
		}
	}
	if spec.Flags&command.DenyOOM != 0 && s.db.OverLimit() && !inExec {
		if !s.db.Evict() {
			cl.w.Error(errOOM)
			inc(&cl.shard.cmd[d.idx].rejected, 1)
			return
		}
	}
	locked := !inExec
	if spec.Flags&command.NoMulti != 0 || spec.Flags&command.AllSlots != 0 {
		locked = false // these lock for themselves (or take no keys)
	}
	if locked {
		first := -1
		if view == nil {
			for _, k := range keys {
				if k == 1 && slot1 >= 0 {
					slots = append(slots, slot1)
				} else {
					slots = append(slots, cluster.Slot(args[k]))
				}
			}
		} else {
			first = slots[0] // routeCommand hashed them, in key order
		}
		if len(slots) > 1 {
			slices.Sort(slots)
			slots = slices.Compact(slots)
		}
		s.db.LockSlots(slots)
		if view != nil && !s.rerouteLocked(cl, d, view, first, slots) {
			// The map changed between routing and locking.
			s.db.UnlockSlots(slots)
			return
		}
		if write && s.repl.isReplica.Load() {
			// Became a replica between the refusal check and the lock
			// (REPLICAOF waits for commands holding slot locks).
			s.db.UnlockSlots(slots)
			cl.w.Error(s.writeRefusal())
			inc(&cl.shard.cmd[d.idx].rejected, 1)
			return
		}
		for _, i := range slots {
			s.db.Slot(i).Ops.Add(1) // per-slot load (heartbeats): under the lock, no contention
		}
		if cl.noTouch {
			for _, i := range slots {
				s.db.Slot(i).NoTouch = true
			}
		}
	}
	// The Ctx lives in the client (handlers are called through a function
	// value, so a stack Ctx would escape to the heap on every command);
	// nested calls (EXEC's queued commands) get their own.
	var c *Ctx
	if cl.ctxDepth == 0 {
		c = &cl.ctx
	} else {
		c = new(Ctx)
	}
	*c = Ctx{srv: s, db: s.db, cl: cl, args: args, w: &cl.w, spec: spec, inExec: inExec, allLocked: allLocked, slot1: slot1}
	if write && s.journaling() {
		c.sink = &cl.sink
		c.sink.explicit = false
	}
	if cl.lastCmdName.Load() != &spec.Name {
		cl.lastCmdName.Store(&spec.Name)
	}
	replyAt := len(cl.w.B)
	cl.ctxDepth++
	d.fn(c)
	cl.ctxDepth--
	failed := len(cl.w.B) > replyAt && cl.w.B[replyAt] == '-'
	if !write && locked && s.repl.syncN.Load() > 0 {
		s.holdDirtyRead(cl, slots)
	}
	if c.sink != nil {
		s.commandEffects(c, d, keys, failed, cl.w.B[replyAt:])
		if !inExec {
			if lsn := s.emit(c.sink); lsn > 0 {
				cl.walLSN = lsn
			}
		}
	}
	if write {
		for _, k := range keys {
			if k < len(args) {
				sl := c.slot(args[k])
				if len(sl.Watchers) > 0 {
					s.signalModified(args[k])
				}
				if len(sl.Waiters) > 0 {
					if inExec {
						// Redis serves blocked clients after the whole
						// transaction: a later LPOP in it sees the element.
						cl.readyKeys = append(cl.readyKeys, append([]byte(nil), args[k]...))
					} else {
						c.serveWaiters(sl, args[k])
					}
				}
			}
		}
	}
	if locked {
		if cl.noTouch {
			for _, i := range slots {
				s.db.Slot(i).NoTouch = false
			}
		}
		s.db.UnlockSlots(slots)
	}
	// One clock read per command: a command's time runs from the end of
	// the previous one in the batch (or the batch's start), so it includes
	// its parsing — a few ns — and saves a clock read (~40 ns in a VM).
	now := nanotime()
	el := time.Duration(now - cl.lastNano)
	cl.lastNano = now
	us := el.Microseconds()
	st := &cl.shard.cmd[d.idx]
	inc(&st.lat[latBucket(int64(el))], 1) // counts the call too
	inc(&st.nsec, int64(el))
	if failed {
		inc(&st.failed, 1)
	}
	if lim := s.limits.Load(); lim.slowerThan >= 0 && us >= lim.slowerThan {
		s.slow.add(cl, args, el, lim.slowMax)
	}
	c.args = nil
}

// signalModified marks clients watching key as dirty. The key's slot must
// be locked (it is: the caller holds the command's locks).
func (s *Server) signalModified(key []byte) {
	sl := s.db.Slot(cluster.Slot(key))
	if len(sl.Watchers) == 0 {
		return
	}
	for _, w := range sl.Watchers[string(key)] {
		w.(*Client).watchDirty.Store(true)
	}
}

// keyDeleted is the engine's hook for expiry and eviction.
func (s *Server) keyDeleted(sl *engine.Slot, key string) {
	for _, w := range sl.Watchers[key] {
		w.(*Client).watchDirty.Store(true)
	}
}

// forEachSlot runs fn on every slot, locking each unless EXEC holds them all.
func (c *Ctx) forEachSlot(fn func(i int, s *engine.Slot) bool) {
	for i := 0; i < cluster.NumSlots; i++ {
		sl := c.db.Slot(i)
		if !c.allLocked {
			c.db.Lock(i)
		}
		ok := fn(i, sl)
		if !c.allLocked {
			c.db.Unlock(i)
		}
		if !ok {
			return
		}
	}
}

// slot returns the (locked) slot table for key.
func (c *Ctx) slot(key []byte) *engine.Slot {
	if c.slot1 >= 0 && len(key) > 0 && len(c.args) > 1 && len(key) == len(c.args[1]) && &key[0] == &c.args[1][0] {
		return c.db.Slot(c.slot1)
	}
	return c.db.Slot(cluster.Slot(key))
}

// nanotime is the runtime's monotonic clock: per-command timing without
// reading the wall clock twice (time.Now costs ~10% of a GET).
//
//go:linkname nanotime runtime.nanotime
func nanotime() int64

// retainArg reports whether the handler may keep args[i] without copying
// and, if so, takes it: large arguments gathered in the client's own input
// buffer (a big SET value) are handed to the engine as they are, as
// redis-server does with big arguments, saving a copy of the value.
func (c *Ctx) retainArg(i int) bool {
	cl := c.cl
	a := c.args[i]
	if cl == nil || cl.inbuf == nil || len(a) < bigRequest {
		return false
	}
	start := uintptr(unsafe.Pointer(unsafe.SliceData(cl.inbuf)))
	p := uintptr(unsafe.Pointer(unsafe.SliceData(a)))
	if p < start || p >= start+uintptr(cap(cl.inbuf)) {
		return false
	}
	cl.inbufDonated = true
	return true
}
