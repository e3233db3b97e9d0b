package server

// What the memcached commands do to the keyspace. Items are string
// entries: the value, engine.Entry.Flags (client flags) and Entry.CAS (cas
// unique, bumped by the engine on every write, RESP writes included).
//
// Other types: a key holding a list, hash, set or sorted set is invisible
// to memcached reads and conditional writes (get, gets, gat, touch,
// incr/decr, append/prepend, replace, cas, mg, ma, md with C): they answer
// as for a missing key. set and delete (and ms in set mode) replace or
// remove it like RESP SET and DEL. add never overwrites an existing key of
// any type (NOT_STORED).
//
// Every command locks one slot at a time; a multi-key get locks each key's
// slot in turn (the keys are independent, as in memcached).

import (
	"os"
	"runtime"
	"strconv"
	"sync"
	"syscall"
	"time"

	"shoal/internal/cluster"
	"shoal/internal/config"
	"shoal/internal/engine"
	"shoal/internal/memcache"
	"shoal/internal/persist"
)

// MemcachedVersion is the memcached protocol level Shoal implements (the
// "version" reply: clients parse it as memcached's).
const MemcachedVersion = "1.6.21"

// Entry.MC bits (meta protocol item state).
const (
	mcStale     = 1 << 0 // invalidated (md I / ms I): served with X, one W
	mcTokenSent = 1 << 1 // a win token (W) was handed out
	mcFetched   = 1 << 2 // read at least once (mg h)
)

// Store outcomes.
const (
	mcStored = iota
	mcNotStored
	mcExists
	mcNotFound
)

// mcExpireAt converts a memcached exptime to an absolute unix ms (0 =
// none); gone reports an exptime that is already past.
func mcExpireAt(now, exp int64) (at int64, gone bool) {
	const maxSecs = 1 << 40 // keeps ms arithmetic far from overflow
	switch {
	case exp == 0:
		return 0, false
	case exp < 0:
		return 0, true
	case exp > maxSecs:
		exp = maxSecs
	}
	if exp > memcache.RelativeExpiryLimit {
		at = exp * 1000
		if at <= now {
			return 0, true
		}
		return at, false
	}
	return now + exp*1000, false
}

// mcTTL is the remaining time to live in seconds (-1 = none), rounded up.
func mcTTL(e *engine.Entry, now int64) int64 {
	if e.ExpireAt == 0 {
		return -1
	}
	return max(0, (e.ExpireAt-now+999)/1000)
}

func isString(e *engine.Entry) bool { return e != nil && e.Type == engine.TypeString }

// mcWrote lets WATCH see a memcached write and logs the key's resulting
// value (the key's slot is locked).
func (s *Server) mcWrote(sl *engine.Slot, key []byte) {
	if len(sl.Watchers) > 0 {
		s.signalModified(key)
	}
	if s.journaling() {
		k := sinkPool.Get().(*effSink)
		c := Ctx{srv: s, db: s.db, sink: k}
		c.addValue(key)
		s.emit(k)
		sinkPool.Put(k)
	}
}

var sinkPool = sync.Pool{New: func() any { return new(effSink) }}

// mcWriteOp reports the memcached commands that change data (refused
// while the node cannot persist).
func mcWriteOp(op memcache.Op) bool {
	switch op {
	case memcache.OpTouch, memcache.OpSet, memcache.OpAdd, memcache.OpReplace, memcache.OpAppend,
		memcache.OpPrepend, memcache.OpCas, memcache.OpDelete, memcache.OpIncr, memcache.OpDecr,
		memcache.OpFlushAll, memcache.OpMetaSet, memcache.OpMetaDelete, memcache.OpMetaArith:
		return true
	}
	return false
}

// mcDataOp reports the memcached commands that read or change data.
func mcDataOp(op memcache.Op) bool {
	switch op {
	case memcache.OpError, memcache.OpVersion, memcache.OpVerbosity, memcache.OpQuit, memcache.OpStats,
		memcache.OpMetaNoop, memcache.OpMetaDebug:
		return false
	}
	return true
}

func (cl *Client) mcReply(line string) {
	cl.w.B = memcache.AppendLine(cl.w.B, line)
}

// mcExec runs one parsed command, appending its reply to cl.w.B.
func (s *Server) mcExec(cl *Client, cmd *memcache.Command) {
	st := &cl.shard.mc
	if s.clusterMode && mcDataOp(cmd.Op) && !s.mcRoute(cl, cmd) {
		return // redirected (before -LOADING, as RESP commands)
	}
	if s.persist.loading.Load() && mcDataOp(cmd.Op) {
		// The dataset is being loaded (start-up, or a replica's full copy).
		cl.mcReply("SERVER_ERROR " + errLoading)
		return
	}
	if mcWriteOp(cmd.Op) {
		if msg := s.writeRefusal(); msg != "" {
			cl.mcReply("SERVER_ERROR " + msg)
			return
		}
	}
	switch cmd.Op {
	case memcache.OpError:
		if cmd.DeleteKey {
			// memcached drops the old value when a set is refused.
			s.mcLocked(cmd.Key, func(sl *engine.Slot) {
				if s.db.Delete(sl, cmd.Key) {
					s.mcWrote(sl, cmd.Key)
				}
			})
		}
		if !cmd.NoReply || cmd.Close {
			cl.mcReply(cmd.Err)
		}
		if cmd.Close {
			cl.closeAfterReply = true
		}
	case memcache.OpGet, memcache.OpGets, memcache.OpGat, memcache.OpGats:
		s.mcGet(cl, cmd)
	case memcache.OpSet, memcache.OpAdd, memcache.OpReplace, memcache.OpAppend, memcache.OpPrepend, memcache.OpCas:
		s.mcStore(cl, cmd)
	case memcache.OpDelete:
		var ok bool
		s.mcLocked(cmd.Key, func(sl *engine.Slot) {
			if ok = s.db.Delete(sl, cmd.Key); ok {
				s.mcWrote(sl, cmd.Key)
			}
		})
		if ok {
			st[mcDeleteHits].Add(1)
		} else {
			st[mcDeleteMisses].Add(1)
		}
		if !cmd.NoReply {
			cl.mcReply(pick(ok, "DELETED", "NOT_FOUND"))
		}
	case memcache.OpIncr, memcache.OpDecr:
		s.mcIncr(cl, cmd)
	case memcache.OpTouch:
		st[mcCmdTouch].Add(1)
		var ok bool
		at, gone := mcExpireAt(s.db.Now(), cmd.Exptime)
		s.mcLocked(cmd.Key, func(sl *engine.Slot) {
			e := s.db.Lookup(sl, cmd.Key)
			if ok = isString(e); ok {
				s.mcSetExpire(sl, cmd.Key, e, at, gone)
			}
		})
		if ok {
			st[mcTouchHits].Add(1)
		} else {
			st[mcTouchMisses].Add(1)
		}
		if !cmd.NoReply {
			cl.mcReply(pick(ok, "TOUCHED", "NOT_FOUND"))
		}
	case memcache.OpFlushAll:
		st[mcCmdFlush].Add(1)
		if cmd.Exptime > 0 {
			at, gone := mcExpireAt(s.db.Now(), cmd.Exptime)
			if !gone {
				s.mcFlushAt.Store(at)
				if !cmd.NoReply {
					cl.mcReply("OK")
				}
				return
			}
		}
		s.mcFlushAt.Store(0)
		s.mcFlushAll()
		if !cmd.NoReply {
			cl.mcReply("OK")
		}
	case memcache.OpVersion:
		cl.mcReply("VERSION " + MemcachedVersion)
	case memcache.OpVerbosity:
		if !cmd.NoReply {
			cl.mcReply("OK")
		}
	case memcache.OpQuit:
		cl.closeAfterReply = true
	case memcache.OpStats:
		s.mcStats(cl, cmd.Args)
	case memcache.OpMetaNoop:
		cl.mcReply("MN")
	case memcache.OpMetaDebug:
		s.mcMetaDebug(cl, cmd)
	case memcache.OpMetaGet:
		st[mcCmdMeta].Add(1)
		s.mcMetaGet(cl, cmd)
	case memcache.OpMetaSet:
		st[mcCmdMeta].Add(1)
		s.mcMetaSet(cl, cmd)
	case memcache.OpMetaDelete:
		st[mcCmdMeta].Add(1)
		s.mcMetaDelete(cl, cmd)
	case memcache.OpMetaArith:
		st[mcCmdMeta].Add(1)
		s.mcMetaArith(cl, cmd)
	}
}

func pick(ok bool, a, b string) string {
	if ok {
		return a
	}
	return b
}

// mcLocked runs fn with key's slot locked.
func (s *Server) mcLocked(key []byte, fn func(sl *engine.Slot)) {
	i := cluster.Slot(key)
	s.db.Lock(i)
	sl := s.db.Slot(i)
	sl.Ops.Add(1)
	fn(sl)
	s.db.Unlock(i)
}

// mcSetExpire applies a touch: a past exptime deletes the item.
func (s *Server) mcSetExpire(sl *engine.Slot, key []byte, e *engine.Entry, at int64, gone bool) {
	if gone {
		s.db.Delete(sl, key)
	} else {
		s.db.SetExpire(sl, key, e, at)
	}
	s.mcWrote(sl, key)
}

func (s *Server) mcGet(cl *Client, cmd *memcache.Command) {
	withCAS := cmd.Op == memcache.OpGets || cmd.Op == memcache.OpGats
	touch := cmd.Op == memcache.OpGat || cmd.Op == memcache.OpGats
	at, gone := mcExpireAt(s.db.Now(), cmd.Exptime)
	var hits, misses int64
	for k := cmd.NextKey(); k != nil; k = cmd.NextKey() {
		i := cluster.Slot(k)
		s.db.Lock(i)
		sl := s.db.Slot(i)
		sl.Ops.Add(1)
		if e := s.db.Lookup(sl, k); isString(e) {
			hits++
			e.MC |= mcFetched
			cl.w.B = memcache.AppendValue(cl.w.B, k, e.Flags, e.Bytes(), e.CAS, withCAS)
			if touch {
				s.mcSetExpire(sl, k, e, at, gone)
			}
		} else {
			misses++
		}
		s.db.Unlock(i)
	}
	st := &cl.shard.mc
	if touch {
		st[mcCmdTouch].Add(hits + misses)
		st[mcTouchHits].Add(hits)
		st[mcTouchMisses].Add(misses)
	}
	st[mcCmdGet].Add(hits + misses)
	st[mcGetHits].Add(hits)
	st[mcGetMisses].Add(misses)
	cl.w.B = append(cl.w.B, "END\r\n"...)
}

// mcAdmit applies maxmemory before a write: evict per policy, or refuse.
func (s *Server) mcAdmit() bool {
	return !s.db.OverLimit() || s.db.Evict()
}

func (s *Server) mcStore(cl *Client, cmd *memcache.Command) {
	st := &cl.shard.mc
	st[mcCmdSet].Add(1)
	if !s.mcAdmit() {
		cl.mcReply(memcache.ErrOOM) // memcached sends it even with noreply
		return
	}
	var res int
	s.mcLocked(cmd.Key, func(sl *engine.Slot) {
		_, res = s.mcStoreLocked(sl, cmd.Op, cmd.Key, cmd.Data, cmd.Flags, cmd.Exptime, cmd.CAS, cmd.Op == memcache.OpCas, false)
	})
	if res == mcStored {
		st[mcTotalItems].Add(1)
	}
	if cmd.Op == memcache.OpCas {
		switch res {
		case mcStored:
			st[mcCasHits].Add(1)
		case mcExists:
			st[mcCasBadval].Add(1)
		case mcNotFound:
			st[mcCasMisses].Add(1)
		}
	}
	if !cmd.NoReply {
		cl.mcReply([...]string{"STORED", "NOT_STORED", "EXISTS", "NOT_FOUND"}[res])
	}
}

// mcStoreLocked stores data under key (its slot locked) with the
// semantics of op; hasCAS compares cas first. invalidate (meta I) stores
// an item whose cas is older than the current one, marked stale.
func (s *Server) mcStoreLocked(sl *engine.Slot, op memcache.Op, key, data []byte, flags uint32, exptime int64,
	cas uint64, hasCAS, invalidate bool) (*engine.Entry, int) {
	at, gone := mcExpireAt(s.db.Now(), exptime)
	e := s.db.Peek(sl, key)
	str := isString(e)
	stale := false
	if hasCAS {
		if !str {
			return nil, mcNotFound
		}
		if e.CAS != cas {
			if !invalidate || cas > e.CAS {
				return nil, mcExists
			}
			stale = true
		}
	}
	switch op {
	case memcache.OpAdd:
		if e != nil {
			return nil, mcNotStored
		}
	case memcache.OpReplace:
		if !str {
			return nil, mcNotStored
		}
	case memcache.OpAppend, memcache.OpPrepend:
		if !str {
			return nil, mcNotStored
		}
		old := e.Bytes()
		if len(old)+len(data) > s.limits.Load().mc.MaxItemSize {
			return nil, mcNotStored
		}
		e = s.db.LookupWrite(sl, key) // bumps the cas
		size := e.MemSize()
		var nb []byte
		if op == memcache.OpAppend {
			nb = append(old, data...) // in place when the buffer has room
		} else {
			nb = make([]byte, 0, len(old)+len(data))
			nb = append(append(nb, data...), old...)
		}
		e.SetBytes(nb)
		s.db.Resized(sl, size, e)
		s.mcWrote(sl, key)
		return e, mcStored
	}
	if gone {
		// Stored and expired at once: the old value is gone either way.
		s.db.Delete(sl, key)
		s.mcWrote(sl, key)
		return nil, mcStored
	}
	e = s.db.SetString(sl, key, data, at, false)
	e.Flags = flags
	if stale {
		e.MC |= mcStale
	}
	s.mcWrote(sl, key)
	return e, mcStored
}

// mcCounter parses an item's value as a counter: decimal digits,
// optionally followed by spaces (memcached pads counters it shrinks).
func mcCounter(v []byte) (uint64, bool) {
	for len(v) > 0 && v[len(v)-1] == ' ' {
		v = v[:len(v)-1]
	}
	return memcache.ParseUint(v)
}

// mcArith applies incr/decr to a live string entry: the new value, or
// ok=false for a non-numeric value. incr wraps at 2^64, decr stops at 0.
func (s *Server) mcArith(sl *engine.Slot, key []byte, e *engine.Entry, incr bool, delta uint64) (*engine.Entry, uint64, bool) {
	v, ok := mcCounter(e.Bytes())
	if !ok {
		return e, 0, false
	}
	if incr {
		v += delta
	} else if delta > v {
		v = 0
	} else {
		v -= delta
	}
	var tmp [20]byte
	flags, mc := e.Flags, e.MC
	e = s.db.SetString(sl, key, strconv.AppendUint(tmp[:0], v, 10), 0, true)
	e.Flags, e.MC = flags, mc
	s.mcWrote(sl, key)
	return e, v, true
}

func (s *Server) mcIncr(cl *Client, cmd *memcache.Command) {
	incr := cmd.Op == memcache.OpIncr
	found, numeric := false, false
	var v uint64
	s.mcLocked(cmd.Key, func(sl *engine.Slot) {
		e := s.db.Peek(sl, cmd.Key)
		if !isString(e) {
			return
		}
		found = true
		_, v, numeric = s.mcArith(sl, cmd.Key, e, incr, cmd.Delta)
	})
	st := &cl.shard.mc
	switch {
	case !found && incr:
		st[mcIncrMisses].Add(1)
	case !found:
		st[mcDecrMisses].Add(1)
	case incr:
		st[mcIncrHits].Add(1)
	default:
		st[mcDecrHits].Add(1)
	}
	switch {
	case !found:
		if !cmd.NoReply {
			cl.mcReply("NOT_FOUND")
		}
	case !numeric:
		if !cmd.NoReply {
			cl.mcReply(memcache.ErrNonNumeric)
		}
	case !cmd.NoReply:
		cl.w.B = memcache.AppendUint(cl.w.B, v)
	}
}

// mcFlushAll empties the keyspace, one slot at a time (all at once, and
// logged, with the log on). It returns the record's LSN.
func (s *Server) mcFlushAll() uint64 {
	if s.journaling() {
		s.db.LockAll()
		for i := 0; i < cluster.NumSlots; i++ {
			s.db.Flush(s.db.Slot(i))
		}
		var k effSink
		k.add(persist.AllSlots, opFlush)
		lsn := s.emit(&k)
		s.db.UnlockAll()
		return lsn
	}
	for i := 0; i < cluster.NumSlots; i++ {
		s.db.Lock(i)
		sl := s.db.Slot(i)
		if sl.Len() > 0 {
			s.db.Flush(sl)
		}
		s.db.Unlock(i)
	}
	return 0
}

// mcCron runs a delayed flush_all once its time has come.
func (s *Server) mcCron() {
	at := s.mcFlushAt.Load()
	if at != 0 && s.db.Now() >= at && s.mcFlushAt.CompareAndSwap(at, 0) {
		s.mcFlushAll()
	}
}

// mcCounters sums the memcached counters over all loops.
func (s *Server) mcCounters() (out [mcNumStats]int64) {
	s.shardsMu.Lock()
	defer s.shardsMu.Unlock()
	for _, sh := range s.shards {
		for i := range sh.mc {
			out[i] += sh.mc[i].Load()
		}
	}
	return out
}

func (s *Server) mcStats(cl *Client, args [][]byte) {
	b := cl.w.B
	group := ""
	if len(args) > 0 {
		group = string(args[0])
	}
	switch group {
	case "":
		b = s.mcGeneralStats(b)
	case "settings":
		var maxConns, item int64
		s.cfg.Read(func(c *config.Config) { maxConns, item = int64(c.MaxClients), c.MemcachedMaxItem })
		b = memcache.AppendStatInt(b, "maxbytes", s.db.MaxMemory())
		b = memcache.AppendStatInt(b, "maxconns", maxConns)
		b = memcache.AppendStatInt(b, "tcpport", int64(s.mcPort))
		b = memcache.AppendStatInt(b, "udpport", 0)
		b = memcache.AppendStat(b, "evictions", pick(s.db.Policy() == engine.PolicyNoEviction, "off", "on"))
		b = memcache.AppendStatInt(b, "item_size_max", item)
		b = memcache.AppendStatInt(b, "num_threads", int64(runtime.GOMAXPROCS(0)))
		b = memcache.AppendStat(b, "cas_enabled", "yes")
		b = memcache.AppendStatInt(b, "key_max_length", memcache.MaxKeyLen)
		b = memcache.AppendStat(b, "binding_protocol", "ascii")
	case "items", "slabs", "sizes", "conns":
		// Shoal has no slab allocator: one pseudo class 1 holding every item.
		n := s.db.KeyCount()
		switch group {
		case "items":
			if n > 0 {
				b = memcache.AppendStatInt(b, "items:1:number", n)
				b = memcache.AppendStatInt(b, "items:1:evicted", s.db.Stats.Evicted.Load())
			}
		case "slabs":
			if n > 0 {
				b = memcache.AppendStatInt(b, "1:used_chunks", n)
				b = memcache.AppendStatInt(b, "1:mem_requested", s.db.UsedMemory())
			}
			b = memcache.AppendStatInt(b, "active_slabs", min(n, 1))
			b = memcache.AppendStatInt(b, "total_malloced", s.db.UsedMemory())
		}
	case "reset":
		s.mcResetStats()
		cl.w.B = memcache.AppendLine(b, "RESET")
		return
	default:
		cl.w.B = memcache.AppendLine(b, memcache.ErrGeneric)
		return
	}
	cl.w.B = append(b, "END\r\n"...)
}

func (s *Server) mcResetStats() {
	s.shardsMu.Lock()
	defer s.shardsMu.Unlock()
	for _, sh := range s.shards {
		for i := range sh.mc {
			sh.mc[i].Store(0)
		}
	}
}

func (s *Server) mcGeneralStats(b []byte) []byte {
	c := s.mcCounters()
	now := time.Now()
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	tv := func(t syscall.Timeval) string {
		return strconv.FormatInt(int64(t.Sec), 10) + "." + leftPad(strconv.FormatInt(int64(t.Usec), 10), 6)
	}
	var maxConns int64
	s.cfg.Read(func(cf *config.Config) { maxConns = int64(cf.MaxClients) })
	in, out := s.NetBytes()
	b = memcache.AppendStatInt(b, "pid", int64(os.Getpid()))
	b = memcache.AppendStatInt(b, "uptime", int64(now.Sub(s.startTime).Seconds()))
	b = memcache.AppendStatInt(b, "time", now.Unix())
	b = memcache.AppendStat(b, "version", MemcachedVersion)
	b = memcache.AppendStat(b, "shoal_version", ShoalVersion)
	b = memcache.AppendStatInt(b, "pointer_size", 64)
	b = memcache.AppendStat(b, "rusage_user", tv(ru.Utime))
	b = memcache.AppendStat(b, "rusage_system", tv(ru.Stime))
	b = memcache.AppendStatInt(b, "max_connections", maxConns)
	b = memcache.AppendStatInt(b, "curr_connections", s.nclients.Load())
	b = memcache.AppendStatInt(b, "total_connections", s.statConns.Load())
	b = memcache.AppendStatInt(b, "rejected_connections", s.statRejects.Load())
	b = memcache.AppendStatInt(b, "cmd_get", c[mcCmdGet])
	b = memcache.AppendStatInt(b, "cmd_set", c[mcCmdSet])
	b = memcache.AppendStatInt(b, "cmd_flush", c[mcCmdFlush])
	b = memcache.AppendStatInt(b, "cmd_touch", c[mcCmdTouch])
	b = memcache.AppendStatInt(b, "cmd_meta", c[mcCmdMeta])
	b = memcache.AppendStatInt(b, "get_hits", c[mcGetHits])
	b = memcache.AppendStatInt(b, "get_misses", c[mcGetMisses])
	b = memcache.AppendStatInt(b, "get_expired", 0)
	b = memcache.AppendStatInt(b, "get_flushed", 0)
	b = memcache.AppendStatInt(b, "delete_misses", c[mcDeleteMisses])
	b = memcache.AppendStatInt(b, "delete_hits", c[mcDeleteHits])
	b = memcache.AppendStatInt(b, "incr_misses", c[mcIncrMisses])
	b = memcache.AppendStatInt(b, "incr_hits", c[mcIncrHits])
	b = memcache.AppendStatInt(b, "decr_misses", c[mcDecrMisses])
	b = memcache.AppendStatInt(b, "decr_hits", c[mcDecrHits])
	b = memcache.AppendStatInt(b, "cas_misses", c[mcCasMisses])
	b = memcache.AppendStatInt(b, "cas_hits", c[mcCasHits])
	b = memcache.AppendStatInt(b, "cas_badval", c[mcCasBadval])
	b = memcache.AppendStatInt(b, "touch_hits", c[mcTouchHits])
	b = memcache.AppendStatInt(b, "touch_misses", c[mcTouchMisses])
	b = memcache.AppendStatInt(b, "auth_cmds", 0)
	b = memcache.AppendStatInt(b, "auth_errors", 0)
	b = memcache.AppendStatInt(b, "bytes_read", in)
	b = memcache.AppendStatInt(b, "bytes_written", out)
	b = memcache.AppendStatInt(b, "limit_maxbytes", s.db.MaxMemory())
	b = memcache.AppendStatInt(b, "accepting_conns", 1)
	b = memcache.AppendStatInt(b, "threads", int64(runtime.GOMAXPROCS(0)))
	b = memcache.AppendStatInt(b, "bytes", s.db.UsedMemory())
	b = memcache.AppendStatInt(b, "curr_items", s.db.KeyCount())
	b = memcache.AppendStatInt(b, "total_items", c[mcTotalItems])
	b = memcache.AppendStatInt(b, "expired_unfetched", 0)
	b = memcache.AppendStatInt(b, "evicted_unfetched", 0)
	b = memcache.AppendStatInt(b, "evictions", s.db.Stats.Evicted.Load())
	b = memcache.AppendStatInt(b, "reclaimed", s.db.Stats.Expired.Load())
	return b
}

func leftPad(s string, n int) string {
	for len(s) < n {
		s = "0" + s
	}
	return s
}
