package server

import (
	"slices"

	"shoal/internal/cluster"
	"shoal/internal/command"
)

// watchedKey is one WATCH registration; the client is also listed in the
// slot's Watchers map under the key.
type watchedKey struct {
	key  string
	slot int
	// expireAt at WATCH time: a key that was live then and has expired by
	// EXEC counts as modified (Redis 7 semantics).
	expireAt int64
	existed  bool
}

func init() {
	register("multi", cmdMulti)
	register("exec", cmdExec)
	register("discard", cmdDiscard)
	register("watch", cmdWatch)
	register("unwatch", cmdUnwatch)
}

func cmdMulti(c *Ctx) {
	if c.cl.inMulti {
		c.w.Error(errMultiNested)
		return
	}
	c.cl.inMulti = true
	c.cl.multiLen.Store(1)
	c.cl.multiErr = false
	c.cl.queue = c.cl.queue[:0]
	c.w.OK()
}

func cmdDiscard(c *Ctx) {
	if !c.cl.inMulti {
		c.w.Error("ERR DISCARD without MULTI")
		return
	}
	c.cl.resetMulti()
	c.srv.unwatchAll(c.cl)
	c.w.OK()
}

func (cl *Client) resetMulti() {
	cl.inMulti = false
	cl.multiLen.Store(0)
	cl.multiErr = false
	clear(cl.queue)
	cl.queue = cl.queue[:0]
}

func cmdWatch(c *Ctx) {
	if c.cl.inMulti {
		c.w.Error("ERR WATCH inside MULTI is not allowed")
		return
	}
	for _, k := range c.args[1:] {
		c.srv.watch(c.cl, k)
	}
	c.w.OK()
}

func cmdUnwatch(c *Ctx) {
	c.srv.unwatchAll(c.cl)
	c.w.OK()
}

func (s *Server) watch(cl *Client, key []byte) {
	for _, wk := range cl.watched {
		if wk.key == string(key) {
			return
		}
	}
	id := cluster.Slot(key)
	s.db.Lock(id)
	sl := s.db.Slot(id)
	wk := watchedKey{key: string(key), slot: id}
	if e := s.db.Peek(sl, key); e != nil {
		wk.existed, wk.expireAt = true, e.ExpireAt
	}
	if sl.Watchers == nil {
		sl.Watchers = make(map[string][]any)
	}
	sl.Watchers[wk.key] = append(sl.Watchers[wk.key], cl)
	s.db.Unlock(id)
	cl.watched = append(cl.watched, wk)
}

// unwatchAll drops the client's WATCH registrations.
func (s *Server) unwatchAll(cl *Client) {
	for _, wk := range cl.watched {
		s.db.Lock(wk.slot)
		sl := s.db.Slot(wk.slot)
		list := sl.Watchers[wk.key]
		for i, w := range list {
			if w == any(cl) {
				list = slices.Delete(list, i, i+1)
				break
			}
		}
		if len(list) == 0 {
			delete(sl.Watchers, wk.key)
		} else {
			sl.Watchers[wk.key] = list
		}
		s.db.Unlock(wk.slot)
	}
	cl.watched = cl.watched[:0]
	cl.watchDirty.Store(false)
}

func cmdExec(c *Ctx) {
	cl, s := c.cl, c.srv
	if !cl.inMulti {
		c.w.Error("ERR EXEC without MULTI")
		return
	}
	if cl.multiErr {
		cl.resetMulti()
		s.unwatchAll(cl)
		c.w.Error("EXECABORT Transaction discarded because of previous errors.")
		return
	}
	queue := cl.queue
	cl.inMulti = false

	// Lock every slot the transaction touches, in ascending order; a
	// whole-keyspace command locks them all.
	all := false
	var slots []int
	oom, write := false, false
	for _, q := range queue {
		f := q.spec.spec.Flags
		if f&command.AllSlots != 0 {
			all = true
		}
		if f&command.DenyOOM != 0 {
			oom = true
		}
		if f&command.Write != 0 {
			write = true
		}
		for _, k := range q.spec.spec.KeyIndexes(q.args, nil) {
			slots = append(slots, cluster.Slot(q.args[k]))
		}
	}
	// Cluster mode: the queued keys' slots, checked once locked (each
	// command was checked as it was queued; the map may have changed).
	var routed []int
	if s.clusterMode && len(slots) > 0 {
		routed = slices.Clone(slots)
	}
	for _, wk := range cl.watched {
		slots = append(slots, wk.slot)
	}
	if oom && s.db.OverLimit() && !s.db.Evict() {
		cl.resetMulti()
		s.unwatchAll(cl)
		c.w.Error("EXECABORT Transaction discarded because of: " + errOOM[4:])
		return
	}
	slices.Sort(slots)
	slots = slices.Compact(slots)
	if all {
		s.db.LockAll()
	} else {
		s.db.LockSlots(slots)
	}
	if routed != nil && !s.routeExec(cl, routed[0], routed, write) {
		// As Redis: the transaction is discarded, EXEC gets the
		// redirection (-MOVED, -CROSSSLOT, -CLUSTERDOWN).
		if all {
			s.db.UnlockAll()
		} else {
			s.db.UnlockSlots(slots)
		}
		cl.resetMulti()
		s.unwatchAll(cl)
		return
	}
	aborted := cl.watchDirty.Load()
	if !aborted {
		now := s.db.Tick()
		for _, wk := range cl.watched {
			if wk.existed && wk.expireAt != 0 && wk.expireAt <= now {
				aborted = true
				break
			}
		}
	}
	if aborted {
		c.w.NullArray()
	} else {
		c.w.Array(len(queue))
		restricted := s.acl.Restricted()
		for _, q := range queue {
			// The user's rules may have changed since the command was
			// queued (ACL SETUSER): checked again, as Redis does.
			if restricted {
				if msg := s.aclCheck(cl, q.spec.spec, q.args); msg != "" {
					c.w.Error(msg)
					continue
				}
			}
			s.call(cl, q.spec, q.args, true, all)
		}
		// The transaction is one log record: replayed whole or not at all.
		if lsn := s.emit(&cl.sink); lsn > 0 {
			cl.walLSN = lsn
		}
		for _, k := range cl.readyKeys {
			c.serveWaiters(c.slot(k), k)
		}
		clear(cl.readyKeys)
		cl.readyKeys = cl.readyKeys[:0]
	}
	if all {
		s.db.UnlockAll()
	} else {
		s.db.UnlockSlots(slots)
	}
	cl.resetMulti()
	s.unwatchAll(cl)
}
