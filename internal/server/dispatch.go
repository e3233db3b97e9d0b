package server

import (
	"slices"
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
}

type handlerFunc func(c *Ctx)

// cmdDef binds a spec to its handler.
type cmdDef struct {
	spec *command.Spec
	fn   handlerFunc
	idx  int // index into Server.cmdStats
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

type cmdStat struct {
	calls, usec, rejected, failed atomic.Int64
}

func newCmdStats() []cmdStat {
	initDefs()
	return make([]cmdStat, len(defs))
}

func initDefs() {
	defsOnce.Do(func() {
		defs = make(map[string]*cmdDef, len(handlers))
		names := make([]string, 0, len(handlers))
		for n := range handlers {
			names = append(names, n)
		}
		slices.Sort(names)
		for i, n := range names {
			defs[n] = &cmdDef{spec: command.Table[n], fn: handlers[n], idx: i}
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

func quoteArgs(args [][]byte) string {
	var b strings.Builder
	for i, a := range args {
		if i == 10 {
			break
		}
		b.WriteString("'")
		if len(a) > 128 {
			a = a[:128]
		}
		b.Write(a)
		b.WriteString("', ")
	}
	return b.String()
}

// dispatch validates and runs one command (on the client's loop).
func (s *Server) dispatch(cl *Client, args [][]byte) {
	s.statCmds.Add(1)
	cl.lastCmd.Store(s.db.Now())
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
	if cl.nsubs.Load() > 0 && cl.proto == 2 && spec.Flags&command.SubscribeOK == 0 {
		w.Error("ERR Can't execute '" + spec.Name + "': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context")
		return
	}
	if cl.inMulti && spec.Flags&command.NoMulti == 0 {
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
	if spec.Flags&command.DenyOOM != 0 && s.db.OverLimit() && !inExec {
		if !s.db.Evict() {
			cl.w.Error(errOOM)
			s.cmdStats[d.idx].rejected.Add(1)
			return
		}
	}
	var keyBuf [16]int
	var slotBuf [16]int
	keys := spec.KeyIndexes(args, keyBuf[:0])
	slots := slotBuf[:0]
	locked := !inExec
	if spec.Flags&command.NoMulti != 0 || spec.Flags&command.AllSlots != 0 {
		locked = false // these lock for themselves (or take no keys)
	}
	if locked {
		for _, k := range keys {
			slots = append(slots, cluster.Slot(args[k]))
		}
		if len(slots) > 1 {
			slices.Sort(slots)
			slots = slices.Compact(slots)
		}
		s.db.LockSlots(slots)
	}
	c := Ctx{srv: s, db: s.db, cl: cl, args: args, w: &cl.w, spec: spec, inExec: inExec, allLocked: allLocked}
	cl.lastCmdName.Store(&spec.Name)
	replyAt := len(cl.w.B)
	start := time.Now()
	d.fn(&c)
	failed := len(cl.w.B) > replyAt && cl.w.B[replyAt] == '-'
	if spec.Flags&command.Write != 0 {
		for _, k := range keys {
			if k < len(args) {
				s.signalModified(args[k])
				if sl := c.slot(args[k]); len(sl.Waiters) > 0 {
					c.serveWaiters(sl, args[k])
				}
			}
		}
	}
	if locked {
		s.db.UnlockSlots(slots)
	}
	el := time.Since(start)
	st := &s.cmdStats[d.idx]
	st.calls.Add(1)
	st.usec.Add(el.Microseconds())
	if failed {
		st.failed.Add(1)
	}
	if lim := s.limits.Load(); lim.slowerThan >= 0 && el.Microseconds() >= lim.slowerThan {
		s.slow.add(cl, args, el, lim.slowMax)
	}
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
func (c *Ctx) slot(key []byte) *engine.Slot { return c.db.Slot(cluster.Slot(key)) }
