package server

import (
	"slices"
	"strconv"
	"sync/atomic"
	"time"

	"shoal/internal/cluster"
	"shoal/internal/engine"
	"shoal/internal/resp"
)

// serveFunc pops for a blocked client from key's entry e (slot locked) and
// writes the reply to w. It is called only when e has the waiter's type and
// is not empty, and must then succeed.
type serveFunc func(c *Ctx, key []byte, e *engine.Entry, w *resp.Writer)

// waiter is a client blocked on keys (BLPOP, BZPOPMIN, BLMOVE...).
//
// Life cycle: registered in the Waiters map of each key's slot; claimed
// exactly once (done CAS) by a pusher that serves it, by its timer, or by
// its connection closing; the claimer puts the reply in the client's
// outbox and sets delivered; the client's loop then removes the stale
// registrations and resumes reading.
type waiter struct {
	cl        *Client
	keys      []string
	wantType  uint8
	serve     serveFunc // nil: retry the whole command when a key is ready
	def       *cmdDef   // the command, for retries
	args      [][]byte  // a private copy, for retries
	deadline  time.Time // zero = block forever
	onTimeout func(w *resp.Writer)
	timer     *time.Timer
	done      atomic.Bool
	delivered atomic.Bool
	timedOut  bool // set by the timer before delivered; a timed-out retry waiter is not retried
	retry     bool

	// WAIT: the record the client's writes reached and the replicas asked for.
	waitLSN uint64
	waitN   int
}

// answer hands reply b to the blocked client of a waiter it has claimed
// (done), then marks it delivered and wakes the client's loop: a loop
// woken by the delivery alone may have drained the outbox before
// delivered was set, and would not look again.
func (w *waiter) answer(b []byte) {
	w.cl.deliver(b)
	w.delivered.Store(true)
	_ = w.cl.conn.Wake(nil)
}

// canBlock reports whether the command may block: not inside EXEC.
func (c *Ctx) canBlock() bool { return !c.inExec }

// offLoop runs fn, which writes the command's reply to rw, in a
// goroutine of its own while the client waits as a blocked one (its
// later commands wait behind it): a command that may take milliseconds
// (the status of a move's window of 1024 slots, each slot's lock taken
// behind the import or the workload; MOVEWAIT's wait) must not hold the
// event loop, and with it every other client of the loop. gone reports
// that the client went away (fn may stop early). fn must not use c,
// whose arguments the loop reuses. Its callers refuse to run in a
// transaction: a client cannot block inside EXEC, and EXEC holds the
// slot locks a status takes.
func (c *Ctx) offLoop(fn func(rw *resp.Writer, gone func() bool)) {
	cl := c.cl
	w := &waiter{cl: cl}
	cl.block(w)
	proto := cl.proto
	go func() {
		rw := resp.Writer{Proto: proto}
		fn(&rw, w.done.Load)
		if w.done.CompareAndSwap(false, true) {
			w.answer(rw.B)
		}
	}()
}

// parseTimeout parses a blocking command's timeout in seconds (a float).
func parseTimeout(b []byte) (time.Duration, string) {
	f, err := strconv.ParseFloat(string(b), 64)
	if err != nil || f != f {
		return 0, errTimeout
	}
	if f < 0 {
		return 0, errNegTimeout
	}
	if f > 1e9 {
		return 0, errTimeout
	}
	return time.Duration(f * float64(time.Second)), ""
}

// block registers the client as waiting on keys (their slots locked by
// the dispatcher). timeout 0 blocks forever. serve nil means "retry the
// command when one of the keys gets a value".
func (c *Ctx) block(keys [][]byte, wantType uint8, timeout time.Duration, serve serveFunc, onTimeout func(w *resp.Writer)) {
	c.effectNone() // blocking changes nothing (the pop is logged when it happens)
	cl := c.cl
	w := &waiter{cl: cl, wantType: wantType, serve: serve, onTimeout: onTimeout, retry: serve == nil}
	for _, k := range keys {
		w.keys = append(w.keys, string(k))
	}
	if serve == nil {
		w.def = c.srv.lookup(c.args[0])
		w.args = make([][]byte, len(c.args))
		for i, a := range c.args {
			w.args[i] = append([]byte(nil), a...)
		}
	}
	if !cl.retryDeadline.IsZero() {
		w.deadline = cl.retryDeadline
	} else if timeout > 0 {
		w.deadline = time.Now().Add(timeout)
	}
	for _, k := range w.keys {
		sl := c.db.Slot(cluster.SlotString(k))
		if sl.Waiters == nil {
			sl.Waiters = make(map[string][]any)
		}
		sl.Waiters[k] = append(sl.Waiters[k], w)
	}
	cl.block(w)
	if !w.deadline.IsZero() {
		proto := cl.proto
		w.timer = time.AfterFunc(time.Until(w.deadline), func() {
			if w.done.CompareAndSwap(false, true) {
				rw := resp.Writer{Proto: proto}
				w.onTimeout(&rw)
				w.timedOut = true
				w.answer(rw.B)
			}
		})
	}
}

// serveWaiters hands key's new value to clients blocked on it, oldest
// first, while the pusher still holds the slot lock.
func (c *Ctx) serveWaiters(sl *engine.Slot, key []byte) {
	list := sl.Waiters[string(key)]
	if len(list) == 0 {
		return
	}
	kept := list[:0]
	for i, x := range list {
		w := x.(*waiter)
		if w.done.Load() {
			continue
		}
		e := c.db.Peek(sl, key)
		if e == nil || e.Type != w.wantType || e.Len() == 0 {
			kept = append(kept, list[i:]...)
			break
		}
		if !w.done.CompareAndSwap(false, true) {
			continue
		}
		if w.timer != nil {
			w.timer.Stop()
		}
		if w.retry {
			// The retried command pops (or blocks again) and, being a
			// write, then serves the waiters behind it. Waking those now
			// would let them overtake it: stop here to keep FIFO order.
			w.delivered.Store(true)
			_ = w.cl.conn.Wake(nil)
			kept = append(kept, list[i+1:]...)
			break
		}
		rw := resp.Writer{Proto: int(w.cl.protoShared.Load())}
		old := e.MemSize()
		wc := Ctx{srv: c.srv, db: c.db, cl: w.cl, w: &rw, inExec: true, slot1: -1}
		var sink *effSink
		if c.srv.journaling() {
			sink = new(effSink)
			wc.sink = sink
		}
		w.serve(&wc, key, e, &rw)
		if sink != nil {
			// The pop is logged after the push that fed it; the served
			// client's reply waits for its record like any write's.
			if lsn := c.srv.emit(sink); lsn > 0 {
				for {
					old := w.cl.extLSN.Load()
					if old >= lsn || w.cl.extLSN.CompareAndSwap(old, lsn) {
						break
					}
				}
			}
		}
		if e2 := c.db.Peek(sl, key); e2 == e {
			if e.Len() == 0 {
				c.db.Delete(sl, key)
			} else {
				c.db.Resized(sl, old, e)
			}
		}
		c.srv.signalModified(key)
		w.answer(rw.B)
	}
	clear(list[len(kept):])
	if len(kept) == 0 {
		delete(sl.Waiters, string(key))
	} else {
		sl.Waiters[string(key)] = kept
	}
}

// cancelWait claims a waiter for a closing connection.
func (s *Server) cancelWait(w *waiter) {
	claimed := w.done.CompareAndSwap(false, true)
	if claimed && w.timer != nil {
		w.timer.Stop()
	}
	s.removeRegistrations(w)
	w.cl.blockedFlag.Store(false)
	if !claimed && w.retry {
		s.passTurn(w)
	}
}

// passTurn serves the waiters behind a woken retry waiter that will never
// run its retry (its connection went away): serveWaiters stopped at it.
func (s *Server) passTurn(w *waiter) {
	c := Ctx{srv: s, db: s.db}
	for _, k := range w.keys {
		id := cluster.SlotString(k)
		s.db.Lock(id)
		c.serveWaiters(s.db.Slot(id), []byte(k))
		s.db.Unlock(id)
	}
}

func (s *Server) removeRegistrations(w *waiter) {
	for _, k := range w.keys {
		id := cluster.SlotString(k)
		s.db.Lock(id)
		sl := s.db.Slot(id)
		list := sl.Waiters[k]
		for i, x := range list {
			if x == any(w) {
				list = slices.Delete(list, i, i+1)
				break
			}
		}
		if len(list) == 0 {
			delete(sl.Waiters, k)
		} else {
			sl.Waiters[k] = list
		}
		s.db.Unlock(id)
	}
}

// finishWait runs on the client's loop once its waiter was claimed and its
// reply delivered: it drops the registrations and, for retry waiters,
// runs the command again (which may block again until the same deadline).
func (s *Server) finishWait(cl *Client) {
	w := cl.blocked
	cl.blocked = nil
	cl.blockedFlag.Store(false)
	s.removeRegistrations(w)
	if w.retry && cl.killed.Load() {
		s.passTurn(w)
	}
	if w.retry && !w.timedOut && !cl.killed.Load() {
		if w.deadline.IsZero() {
			cl.retryDeadline = time.Time{}
		} else {
			cl.retryDeadline = w.deadline
		}
		s.db.Tick()
		cl.lastNano = nanotime()
		s.call(cl, w.def, w.args, false, false)
		cl.retryDeadline = time.Time{}
	}
}

// BlockedClients counts the clients blocked in a command (INFO's
// blocked_clients; tests await it instead of sleeping).
func (s *Server) BlockedClients() int {
	s.clientsMu.Lock()
	defer s.clientsMu.Unlock()
	n := 0
	for _, cl := range s.clients {
		if cl.isBlocked() {
			n++
		}
	}
	return n
}
