package server

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"sync"
	"time"

	"shoal/internal/cluster"
	"shoal/internal/command"
	"shoal/internal/engine"
	"shoal/internal/persist"
)

// The append-only log: every write becomes a deterministic effect record
// (internal/persist/aof.go has the format).
//
// Effects are bound to one slot each, so recovery can replay a record's
// effect on slot s only if the record is newer than s's snapshot mark.
// A command's effects are one of:
//   - the command itself, for single-key commands whose result depends
//     only on the key's value (LPUSH, HSET, ZADD, SETRANGE...);
//   - the key's resulting value ("put": the snapshot encoding of the
//     entry, absolute expiry included) or DEL when it is gone: the
//     default, used for INCRBYFLOAT (the resulting value), MSET, RENAME, the
//     *STORE commands, memcached writes, and any write command without a
//     rule of its own;
//   - what the handler states (c.effect): a pop for blocking pops and
//     SPOP (the members removed), HSET for HINCRBY, ZADD for ZINCRBY,
//     pop + push for LMOVE, SREM + SADD for SMOVE, PEXPIREAT for EXPIRE
//     (an absolute time), FLUSH for FLUSHALL.
//
// Expiries and evictions log a DEL of their own (KeyDropped hook).
// A command's (or transaction's) effects are appended as one record while
// its slots are still locked, so the records of a slot are in the order
// their effects were applied, and the slot's LSN is set.
//
// Acknowledgement: a client's replies are held until the log has its
// last record written (everysec, no) or fsynced (always); the flusher
// then wakes the client (many clients share one write and one fsync:
// group commit).

// Internal effect names (not reachable as commands: they start with 0).
var (
	opPut   = []byte("\x00put")
	opFlush = []byte("\x00flush")
	opDel   = []byte("del")
)

// effSink collects the effects of a command or a transaction.
type effSink struct {
	buf      []byte
	n        int
	slots    []int
	all      bool
	explicit bool // the handler stated the command's effects
	enc      persist.SectionEncoder
}

func (k *effSink) add(slot int, args ...[]byte) {
	k.buf = persist.AppendEffect(k.buf, slot, args...)
	k.n++
	if slot == persist.AllSlots {
		k.all = true
	} else {
		k.slots = append(k.slots, slot)
	}
}

func (k *effSink) reset() {
	k.n = 0
	k.all = false
	k.slots = k.slots[:0]
	if cap(k.buf) > 1<<20 {
		k.buf = nil
	} else {
		k.buf = k.buf[:0]
	}
}

// effect records an effect stated by the handler (no-op when the log is off).
func (c *Ctx) effect(slot int, args ...[]byte) {
	if c.sink == nil {
		return
	}
	c.sink.explicit = true
	c.sink.add(slot, args...)
}

// effectNone states that the command changed nothing.
func (c *Ctx) effectNone() {
	if c.sink != nil {
		c.sink.explicit = true
	}
}

// effectValue states key's resulting value (or its deletion).
func (c *Ctx) effectValue(key []byte) {
	if c.sink == nil {
		return
	}
	c.sink.explicit = true
	c.addValue(key)
}

func (c *Ctx) addValue(key []byte) {
	k := c.sink
	slot := cluster.Slot(key)
	sl := c.db.Slot(slot)
	e := c.db.Peek(sl, key)
	if e == nil || (e.Type != engine.TypeString && e.Len() == 0) {
		k.add(slot, opDel, key)
		return
	}
	k.add(slot, opPut, k.enc.EncodeEntry(string(key), e))
}

// effectTTL states key's resulting expiry (or its deletion).
func (c *Ctx) effectTTL(key []byte) {
	if c.sink == nil {
		return
	}
	c.sink.explicit = true
	slot := cluster.Slot(key)
	e := c.db.Peek(c.db.Slot(slot), key)
	switch {
	case e == nil:
		c.sink.add(slot, opDel, key)
	case e.ExpireAt != 0:
		c.sink.add(slot, []byte("pexpireat"), key, strconv.AppendInt(nil, e.ExpireAt, 10))
	default:
		c.sink.add(slot, []byte("persist"), key)
	}
}

// Log rules per command (see the comment at the top).
const (
	logValue   = iota // resulting value of every key (default)
	logVerbat         // the command as it is
	logTTL            // resulting expiry of args[1]
	logSet            // SET: as it is unless it has a relative expiry
	logDstOnly        // resulting value of the first key only (the destination)
	logCopy           // resulting value of the second key
)

// logNoop marks verbatim commands whose reply shows they changed nothing
// (an integer 0, a null or an empty array): those are not logged, as
// Redis does not propagate them (an SADD of a member already there costs
// no log write, and no fsync under always).
var logNoop = func() map[string]bool {
	m := map[string]bool{}
	for _, n := range []string{"sadd", "srem", "hdel", "zrem", "lrem", "lpushx", "rpushx", "hsetnx",
		"setnx", "persist", "zremrangebyscore", "zremrangebyrank", "zremrangebylex", "lpop", "rpop",
		"getdel", "zpopmin", "zpopmax"} {
		m[n] = true
	}
	return m
}()

// noopReply reports a reply that means "nothing changed".
func noopReply(b []byte) bool {
	switch string(b) {
	case ":0\r\n", "$-1\r\n", "*-1\r\n", "_\r\n", "*0\r\n":
		return true
	}
	return false
}

var logRules = func() map[string]int {
	m := map[string]int{}
	for _, n := range []string{"setnx", "getset", "getdel", "append", "setrange", "setbit",
		"hset", "hmset", "hsetnx", "hdel", "lpush", "rpush", "lpushx", "rpushx", "lpop", "rpop",
		"lset", "linsert", "lrem", "ltrim", "sadd", "srem", "zadd", "zrem", "zpopmin", "zpopmax",
		"zremrangebyscore", "zremrangebyrank", "zremrangebylex", "persist",
		// Integer arithmetic is exact: the command is smaller to send and
		// cheaper to apply than the resulting value (INCRBYFLOAT is not:
		// its result is logged).
		"incr", "decr", "incrby", "decrby"} {
		m[n] = logVerbat
	}
	for _, n := range []string{"expire", "pexpire", "expireat", "pexpireat", "getex"} {
		m[n] = logTTL
	}
	for _, n := range []string{"bitop", "sinterstore", "sunionstore", "sdiffstore", "zunionstore",
		"zinterstore", "zdiffstore", "zrangestore"} {
		m[n] = logDstOnly
	}
	m["set"] = logSet
	m["copy"] = logCopy
	return m
}()

// commandEffects adds the effects of the command that just ran, unless its
// handler stated them.
func (s *Server) commandEffects(c *Ctx, d *cmdDef, keys []int, failed bool, reply []byte) {
	k := c.sink
	if k.explicit {
		return
	}
	if failed {
		return
	}
	args := c.args
	switch d.logRule {
	case logVerbat:
		if d.logNoop && noopReply(reply) {
			return
		}
		k.add(cluster.Slot(args[1]), args...)
	case logTTL:
		c.effectTTL(args[1])
	case logSet:
		for _, a := range args[3:] {
			if len(a) == 2 && (eq(a, "ex") || eq(a, "px")) || len(a) == 4 && (eq(a, "exat") || eq(a, "pxat")) {
				c.addValue(args[1])
				return
			}
		}
		k.add(cluster.Slot(args[1]), args...)
	case logDstOnly:
		if len(keys) > 0 {
			c.addValue(args[keys[0]])
		}
	case logCopy:
		if len(keys) > 1 {
			c.addValue(args[keys[1]])
		}
	default:
		for _, i := range keys {
			if i < len(args) {
				c.addValue(args[i])
			}
		}
	}
}

// emit appends the sink's effects as one record (the slots locked) and
// returns its LSN (0 if there was nothing to log).
func (s *Server) emit(k *effSink) uint64 {
	if k.n == 0 {
		k.reset()
		return 0
	}
	lsn := s.journal(k.n, k.buf)
	if lsn == 0 {
		k.reset()
		return 0
	}
	if k.all {
		for i := 0; i < cluster.NumSlots; i++ {
			s.db.Slot(i).LSN = lsn
		}
	} else {
		for _, i := range k.slots {
			s.db.Slot(i).LSN = lsn
		}
	}
	k.reset()
	return lsn
}

// keyDropped logs the delete of a key the engine expired or evicted.
func (s *Server) keyDropped(sl *engine.Slot, key string) {
	if !s.journaling() {
		return
	}
	slot := cluster.Slot([]byte(key))
	if lsn := s.journal(1, persist.AppendEffect(nil, slot, opDel, []byte(key))); lsn > 0 {
		sl.LSN = lsn
	}
}

// logWrite logs a memcached write of key (its slot locked): the value.
func (s *Server) logWrite(cl *Client, key []byte) {
	if !s.journaling() {
		return
	}
	k := &cl.sink
	c := Ctx{srv: s, db: s.db, cl: cl, sink: k}
	c.addValue(key)
	if lsn := s.emit(k); lsn > cl.walLSN {
		cl.walLSN = lsn
	}
}

// writeRefusal is the error a write command gets while the node cannot
// persist ("" = writes allowed).
func (s *Server) writeRefusal() string {
	if s.repl.isReplica.Load() {
		return "READONLY You can't write against a read only replica."
	}
	if msg := s.leaseRefusal(); msg != "" {
		return msg
	}
	if lg := s.aof.Load(); lg != nil {
		if err := lg.Err(); err != nil {
			return "MISCONF Errors writing to the AOF file: " + errText(err)
		}
	}
	if s.persist.stopWrites.Load() {
		return "MISCONF Redis is configured to save RDB snapshots, but it's currently unable to persist to disk. " +
			"Commands that may modify the data set are disabled, because this instance is configured to report errors " +
			"during writes if RDB snapshotting fails (stop-writes-on-bgsave-error option). Please check the Redis logs for details about the RDB error."
	}
	return ""
}

// errText is the innermost error's text ("No space left on device").
func errText(err error) string {
	for {
		u := errors.Unwrap(err)
		if u == nil {
			break
		}
		err = u
	}
	t := err.Error()
	if t != "" {
		t = string(bytes.ToUpper([]byte(t[:1]))) + t[1:]
	}
	return t
}

// Holding replies until their records are persisted.

type durWaiter struct {
	cl    *Client
	need  uint64
	since int64 // unix ms registered (sync-timeout)
}

type durWaitList struct {
	mu   sync.Mutex
	list []durWaiter
}

// maxHeld is how many reply bytes a client may have held for the log
// before its further input waits (in the input buffer, bounded by
// client-query-buffer-limit): while the disk fails, a pipelining client
// cannot grow the server's memory without bound.
const maxHeld = 4 << 20

// holdReplies decides at the end of a batch whether the client's replies
// may go out: they wait while a record they depend on is not yet written
// (fsynced under always). It returns true if they are held.
func (s *Server) holdReplies(cl *Client) bool {
	lg := s.aof.Load()
	need := cl.walLSN
	if ext := cl.extLSN.Load(); ext > need {
		need = ext
	}
	if need > cl.lastWrite {
		cl.lastWrite = need
		if s.repl.backlog.Load() != nil {
			// Replicas are woken once per loop iteration (loopFlush).
			s.armLoopFlush(cl)
		}
	}
	if cl.syncFailed.Swap(false) {
		// sync-replicas did not confirm in time: every held reply (and
		// this batch's, which waits behind them) becomes an error.
		cl.held = append(cl.held, cl.w.B...)
		if cl.mc != nil {
			// memcached replies cannot be told apart reliably in a
			// pipeline: one error, then the connection closes.
			cl.w.B = append(cl.w.B[:0], "SERVER_ERROR "+errNoReplicas+"\r\n"...)
			cl.closeAfterReply = true
		} else {
			cl.w.B = append(cl.w.B[:0], failHeld(cl.held)...)
		}
		cl.held = cl.held[:0]
		cl.walLSN = 0
		cl.extLSN.CompareAndSwap(need, 0)
		return false
	}
	if lg != nil && need > lg.Acked() && lg.Err() == nil {
		// everysec / no: the loop writes the records itself, once per
		// event-loop iteration: the replies wait in held, and a wake
		// queued on this connection runs after the iteration's I/O
		// events (loopFlush), so one write covers every connection that
		// had input. The fsync stays with the flusher.
		if len(cl.held) == 0 {
			cl.held, cl.w.B = cl.w.B, cl.held[:0]
		} else {
			cl.held = append(cl.held, cl.w.B...)
			cl.w.B = cl.w.B[:0]
		}
		sh := cl.shard
		if !cl.inLoopHeld {
			cl.inLoopHeld = true
			sh.loopHeld = append(sh.loopHeld, cl)
		}
		s.armLoopFlush(cl)
		return true
	}
	if need <= s.ackedLSN() {
		cl.walLSN = 0
		if need > 0 {
			cl.extLSN.CompareAndSwap(need, 0)
		}
		if len(cl.held) > 0 {
			cl.held = append(cl.held, cl.w.B...)
			cl.w.B, cl.held = cl.held, cl.w.B[:0]
		}
		return false
	}
	if len(cl.held) == 0 {
		cl.held, cl.w.B = cl.w.B, cl.held[:0]
	} else {
		cl.held = append(cl.held, cl.w.B...)
		cl.w.B = cl.w.B[:0]
	}
	if !cl.inDurWait.Swap(true) {
		// One entry per client: a client that keeps sending while held
		// does not grow the list (its entry may name an older record;
		// woken early, it registers again).
		w := &s.durWait
		w.mu.Lock()
		w.list = append(w.list, durWaiter{cl, need, time.Now().UnixMilli()})
		w.mu.Unlock()
	}
	if need <= s.ackedLSN() {
		// The log or the replicas advanced between the check and the
		// registration.
		_ = cl.conn.Wake(nil)
	}
	return true
}

// armLoopFlush makes loopFlush run after this event-loop iteration's I/O
// events: a wake queued on the client's connection runs after them.
func (s *Server) armLoopFlush(cl *Client) {
	sh := cl.shard
	if !sh.flushArmed {
		sh.flushArmed = true
		sh.flushArmer = cl
		_ = cl.conn.Wake(nil)
	}
}

// loopFlush writes the log records of this loop's iteration, wakes the
// replicas' senders, and sends the replies held for the log (loop
// goroutine; from OnTraffic of the connection that queued the wake, or
// from OnClose if it closed first).
func (s *Server) loopFlush(sh *statShard) {
	sh.flushArmed = false
	sh.flushArmer = nil
	if bl := s.repl.backlog.Load(); bl != nil {
		s.sendInline(bl)
	}
	lg := s.aof.Load()
	if lg != nil {
		if lg.Policy() == persist.FsyncAlways {
			_ = lg.SyncNow()
		} else {
			_ = lg.WriteNow()
		}
	}
	acked := s.ackedLSN()
	for i, cl := range sh.loopHeld {
		sh.loopHeld[i] = nil
		cl.inLoopHeld = false
		if cl.killed.Load() {
			cl.held = cl.held[:0]
			continue
		}
		need := cl.walLSN
		if ext := cl.extLSN.Load(); ext > need {
			need = ext
		}
		if need > acked || len(cl.w.B) > 0 || cl.blocked != nil {
			// Not written (a disk error) or not idle: finishTraffic on
			// its own turn releases or registers it.
			_ = cl.conn.Wake(nil)
			continue
		}
		cl.walLSN = 0
		if need > 0 {
			cl.extLSN.CompareAndSwap(need, 0)
		}
		inc(&cl.shard.netOut, int64(len(cl.held)))
		_, _ = cl.conn.Write(cl.held)
		if cap(cl.held) > 1<<20 {
			cl.held = nil
		} else {
			cl.held = cl.held[:0]
		}
		if cl.closeAfterReply {
			_ = cl.conn.Close()
		}
	}
	sh.loopHeld = sh.loopHeld[:0]
}

// logProgress wakes the clients whose records are now persisted (called
// by the log's flusher).
func (s *Server) logProgress() {
	acked := s.ackedLSN()
	for _, cl := range s.durWait.take(func(x durWaiter) bool { return x.need <= acked }) {
		cl.inDurWait.Store(false)
		_ = cl.conn.Wake(nil)
	}
}

// take removes the waiters that match and returns their clients.
func (w *durWaitList) take(match func(durWaiter) bool) []*Client {
	w.mu.Lock()
	defer w.mu.Unlock()
	keep := w.list[:0]
	var out []*Client
	for _, x := range w.list {
		if match(x) {
			out = append(out, x.cl)
		} else {
			keep = append(keep, x)
		}
	}
	clear(w.list[len(keep):])
	w.list = keep
	return out
}

// Recovery.

// replayState is the recovery's view: each slot's snapshot mark.
type replayState struct {
	marks []uint64 // nil: apply every record
	cl    *Client
	args  [][]byte
	warns int
	live  bool // a replica applying its primary's stream: set slot LSNs, keep expired keys live
	// The last command looked up, by its name as sent (a stream repeats
	// a few commands: a byte compare instead of a map lookup per record).
	lastName []byte
	lastDef  *cmdDef
	// journal: log each applied effect as this node's own write (a slot
	// import: the target's replicas get it) and set the slot's LSN;
	// refused (errNotActingPrimary) while the node is a replica.
	journal bool
	effect  []byte // journalEffect's encoding, reused
}

// journalEffect logs args (an effect on slot) as this node's own record
// and returns its LSN (0: neither log nor backlog takes records). The
// record is encoded into *buf, reused from call to call (the log and the
// backlog copy it): a slot import journals every key it receives, and a
// buffer per record was a gigabyte of garbage per gigabyte moved.
func (s *Server) journalEffect(buf *[]byte, slot int, args [][]byte) uint64 {
	if !s.journaling() {
		return 0
	}
	*buf = persist.AppendEffect((*buf)[:0], slot, args...)
	lsn := s.journal(1, *buf)
	if cap(*buf) > 1<<20 {
		*buf = nil // a big value's buffer is not kept
	}
	return lsn
}

// skip reports whether slot's image already has record lsn.
func (rs *replayState) skip(slot int, lsn uint64) bool {
	return rs.marks != nil && lsn <= rs.marks[slot]
}

// replayLog applies the log records newer than each slot's mark.
func (s *Server) replayLog(dir, base string, marks []uint64) (persist.LogInfo, error) {
	rs := &replayState{marks: marks, cl: s.replayClient()}
	s.db.FreezeClock(true)
	defer s.db.FreezeClock(false)
	info, err := persist.ReadLog(s.fsys, dir, base, func(lsn uint64, p []byte) error {
		err := persist.ForEachEffectBuf(p, &rs.args, func(slot int, args [][]byte) error {
			return s.replayEffect(rs, lsn, slot, args)
		})
		s.persist.loadedBytes.Add(int64(len(p)) + 16)
		return err
	})
	if rs.warns > 0 {
		s.log.Warn("log replay: some records failed as commands (see above)", "count", rs.warns)
	}
	return info, err
}

func (s *Server) replayClient() *Client {
	cl := &Client{srv: s, authed: true, proto: 2, shard: newStatShard()}
	cl.user.Store(s.acl.Default())
	cl.w.Proto = 2
	return cl
}

func (s *Server) replayEffect(rs *replayState, lsn uint64, slot int, args [][]byte) error {
	if slot == persist.AllSlots {
		if !bytes.Equal(args[0], opFlush) {
			return fmt.Errorf("effect %q on every slot", args[0])
		}
		for i := 0; i < cluster.NumSlots; i++ {
			if !rs.skip(i, lsn) {
				s.db.Lock(i)
				s.db.Flush(s.db.Slot(i))
				if rs.live {
					s.db.Slot(i).LSN = lsn
				}
				s.db.Unlock(i)
			}
		}
		return nil
	}
	if rs.skip(slot, lsn) {
		return nil // in the snapshot's image of the slot already
	}
	if bytes.Equal(args[0], opPut) {
		if len(args) != 2 {
			return errors.New("put effect with wrong arguments")
		}
		key, e, err := persist.DecodeEntry(args[1])
		if err != nil {
			return fmt.Errorf("put effect: %w", err)
		}
		if cluster.Slot(key) != slot {
			return fmt.Errorf("put effect for key %q in slot %d", key, slot)
		}
		return s.putEntry(rs, lsn, slot, key, e, args)
	}
	d := rs.lastDef
	if d == nil || !bytes.Equal(args[0], rs.lastName) {
		d = s.lookup(args[0])
		rs.lastDef, rs.lastName = d, append(rs.lastName[:0], args[0]...)
	}
	if d == nil || d.spec.Flags&command.Write == 0 || !d.spec.ArityOK(len(args)) {
		return fmt.Errorf("not a write command: %q with %d arguments", args[0], len(args))
	}
	var keyBuf, slotBuf [8]int
	keys := d.spec.KeyIndexes(args, keyBuf[:0])
	slots := slotBuf[:0]
	if rs.live && len(keys) == 1 && keys[0] < len(args) {
		// A replica trusts the slot its primary recorded for a one-key
		// effect (computed by the same function, the record checksummed
		// end to end): hashing the key again was ~5 % of its apply.
		slots = append(slots, slot)
	} else {
		for _, i := range keys {
			if i < len(args) {
				slots = append(slots, cluster.Slot(args[i]))
			}
		}
	}
	if len(slots) == 0 || slots[0] != slot {
		return fmt.Errorf("effect %q in slot %d for a key of another slot", args[0], slot)
	}
	slot1 := -1
	if keys[0] == 1 {
		slot1 = slot // the handler's c.slot(args[1]) skips the hash
	}
	watched := false
	if len(slots) > 1 {
		slices.Sort(slots)
		slots = slices.Compact(slots)
	}
	s.db.LockSlots(slots)
	if rs.journal && s.repl.isReplica.Load() {
		// Checked under the slots' locks: becomeReplica waits for the
		// writes that hold them before it asks its primary for a position.
		s.db.UnlockSlots(slots)
		return errNotActingPrimary
	}
	for _, i := range slots {
		sl := s.db.Slot(i)
		sl.NoExpire = true
		watched = watched || len(sl.Watchers) > 0
	}
	cl := rs.cl
	// The Ctx lives in the client: one on the stack would escape (the
	// handler is called through a function value), an allocation per
	// record.
	c := &cl.ctx
	*c = Ctx{srv: s, db: s.db, cl: cl, args: args, w: &cl.w, spec: d.spec, inExec: true, slot1: slot1}
	d.fn(c)
	var jl uint64
	if rs.journal {
		jl = s.journalEffect(&rs.effect, slot, args)
	}
	for _, i := range slots {
		sl := s.db.Slot(i)
		sl.NoExpire = false
		if rs.live {
			sl.LSN = lsn
		}
		if jl > 0 {
			sl.LSN = jl
		}
	}
	if watched {
		for _, i := range keys {
			if i < len(args) {
				s.signalModified(args[i])
			}
		}
	}
	s.db.UnlockSlots(slots)
	if len(cl.w.B) > 0 && cl.w.B[0] == '-' {
		rs.warns++
		if rs.warns <= 10 {
			s.log.Warn("log replay: record failed", "lsn", lsn, "command", string(args[0]),
				"reply", string(bytes.TrimSpace(cl.w.B)))
		}
	}
	cl.w.B = cl.w.B[:0]
	return nil
}

// logScore formats a score so that ZADD parses back the same float64.
func logScore(f float64) []byte {
	switch {
	case math.IsInf(f, 1):
		return []byte("+inf")
	case math.IsInf(f, -1):
		return []byte("-inf")
	}
	return strconv.AppendFloat(nil, f, 'g', -1, 64)
}

// putEntry replaces key (slot's) with e, the decoded value of the put
// effect args (journaled as such when rs.journal: then refused on a
// replica, errNotActingPrimary).
func (s *Server) putEntry(rs *replayState, lsn uint64, slot int, key []byte, e *engine.Entry, args [][]byte) error {
	sl := s.db.Slot(slot)
	s.db.Lock(slot)
	if rs.journal && s.repl.isReplica.Load() {
		s.db.Unlock(slot)
		return errNotActingPrimary
	}
	sl.NoExpire = true
	s.db.Delete(sl, key)
	exp := e.ExpireAt
	e.ExpireAt = 0
	e = s.db.Add(sl, key, e)
	if exp != 0 {
		s.db.SetExpire(sl, key, e, exp)
	}
	sl.NoExpire = false
	if rs.live {
		sl.LSN = lsn
	}
	if rs.journal {
		if l := s.journalEffect(&rs.effect, slot, args); l > 0 {
			sl.LSN = l
		}
	}
	if len(sl.Watchers) > 0 {
		s.signalModified(key)
	}
	s.db.Unlock(slot)
	return nil
}
