package proxy

import (
	"shoal/internal/cluster"
	"shoal/internal/command"
	"shoal/internal/resp"
)

// Transactions (MULTI/EXEC/DISCARD/WATCH/UNWATCH) run on one shard over
// a dedicated backend connection (docs/proxy.md, "Transactions"):
//
//   - WATCH, or the first keyed command after MULTI, picks the shard and
//     pins the client to a dedicated connection to its primary (after a
//     barrier: the client's earlier commands on the shared pool are
//     answered first). MULTI and keyless commands queued before the
//     shard is known are held and sent ahead of that first command.
//   - While pinned, the client's commands on that shard go over the
//     pinned connection; inside MULTI every command does, and a command
//     whose keys are on another shard gets -CROSSSLOT and dooms the
//     transaction: EXEC then sends DISCARD and answers -EXECABORT, as
//     Redis does after a queueing error.
//   - EXEC, DISCARD, UNWATCH (outside MULTI) end the pin once their reply
//     is in (the reader holds the client's later commands until then);
//     the connection goes back to the backend's idle set. A client that
//     disconnects closes it.
//
// No retry happens inside a transaction: a redirect (-MOVED after a map
// change) is relayed, and the node itself aborts the transaction. A new
// map in which the pinned node is no longer its shard's primary closes
// the pinned connection (Proxy.dropStale; a demoted, stopped or
// partitioned node must not leave EXEC waiting), and so does the node's
// death: the node forgets the MULTI and the WATCHes, and EXEC, or the
// next command of a WATCH-pinned client, is answered -EXECABORT without
// anything being sent (nothing of the transaction was applied).

// txState is a client's transaction; reader-owned.
type txState struct {
	c       *conn
	multi   bool     // between MULTI and EXEC/DISCARD
	doomed  bool     // a command was refused while queueing
	shard   int      // valid when bc != nil
	be      *backend // bc's node
	bc      *bconn   // the pinned connection; nil until the shard is known
	held    [][]byte // frames to send ahead of the first pinned command (MULTI first)
	discard int      // replies of held frames to drop (answered locally)
	inval   []uint64 // hashes of the keys queued writes touch (hot-key cache)
	lost    bool     // the pinned connection was lost (txCheckLost)
}

const (
	errExecAbort  = "EXECABORT Transaction discarded because of previous errors."
	errTxLost     = "EXECABORT Transaction discarded: the shoal proxy lost its connection to the shard's primary (failover or node failure) before EXEC; nothing was applied, retry the transaction"
	errTxCrossKey = "CROSSSLOT Keys in request don't hash to the same shard (the shoal proxy runs a transaction on one shard; the transaction is discarded)"
)

// drop closes the pinned connection (the node forgets MULTI and WATCH).
func (t *txState) drop() {
	if t.bc != nil {
		t.be.release(t.bc, false)
		t.bc = nil
	}
}

// txCommand serves MULTI, EXEC, DISCARD, WATCH and UNWATCH.
func (c *conn) txCommand(spec *command.Spec, args [][]byte) bool {
	c.txCheckLost()
	t := c.tx
	name := spec.Name
	switch name {
	case "multi":
		if t != nil && t.multi {
			return c.local(errLine("ERR MULTI calls can not be nested"))
		}
		if t == nil || t.bc == nil {
			if t == nil {
				t = &txState{c: c}
				c.tx = t
			}
			// A lost WATCH dooms the transaction: its keys are no
			// longer watched anywhere.
			t.multi, t.doomed = true, t.lost
			t.held, t.discard = [][]byte{resp.AppendCommandBytes(nil, args...)}, 1
			return c.local([]byte("+OK\r\n"))
		}
		t.multi = true    // pinned by WATCH
		t.doomed = t.lost // a WATCH before the loss is not watched any more
		return c.txSend(resp.AppendCommandBytes(nil, args...), nil)
	case "watch":
		if t != nil && t.multi {
			return c.local(errLine("ERR WATCH inside MULTI is not allowed"))
		}
		shard, ok := c.oneShard(spec, args)
		if !ok || (t != nil && t.bc != nil && t.shard != shard) {
			return c.local(errLine(errCrossShard))
		}
		if t == nil {
			t = &txState{c: c}
			c.tx = t
		}
		if t.bc == nil {
			if msg := c.pin(shard); msg != "" {
				c.tx = nil
				return c.local(errLine(msg))
			}
		}
		return c.txSend(resp.AppendCommandBytes(nil, args...), nil)
	case "unwatch":
		if t == nil || t.bc == nil {
			if t != nil && !t.multi {
				c.tx = nil
			}
			return c.local([]byte("+OK\r\n"))
		}
		if t.multi {
			return c.txSend(resp.AppendCommandBytes(nil, args...), nil)
		}
		return c.txEnd(resp.AppendCommandBytes(nil, args...), nil)
	case "exec", "discard":
		if t == nil || !t.multi {
			return c.local(errLine("ERR " + map[string]string{"exec": "EXEC", "discard": "DISCARD"}[name] + " without MULTI"))
		}
		if t.bc == nil && (name == "discard" || t.doomed) {
			c.tx = nil // nothing was sent anywhere
			if name == "discard" {
				return c.local([]byte("+OK\r\n"))
			}
			return c.local(errLine(t.abortMsg()))
		}
		if t.doomed {
			if name == "discard" {
				return c.txEnd(resp.AppendCommandBytes(nil, args...), nil)
			}
			return c.txEnd(resp.AppendCommandBytes(nil, []byte("DISCARD")), errLine(t.abortMsg()))
		}
		if t.bc == nil {
			if len(t.held) == 1 { // nothing but MULTI: nothing to run anywhere
				c.tx = nil
				return c.local([]byte("*0\r\n"))
			}
			// Only keyless commands (PING, ECHO, TIME): any shard runs them.
			rt := c.p.table.Load()
			if len(rt.shards) == 0 {
				c.tx = nil
				return c.local(errLine("CLUSTERDOWN The cluster is down"))
			}
			if msg := c.pin(rt.shards[0]); msg != "" {
				c.tx = nil
				return c.local(errLine(msg))
			}
		}
		return c.txEnd(resp.AppendCommandBytes(nil, args...), nil)
	}
	return c.local(notSupported(name))
}

// txQueued serves a command inside MULTI (or, pinned by WATCH, a keyed
// command on the pinned shard: pinnedOnly). handled is false when the
// command is not the transaction's business (it is routed as usual).
func (c *conn) txQueued(spec *command.Spec, args [][]byte, pinnedOnly bool) (ok, handled bool) {
	c.txCheckLost()
	t := c.tx
	if t.lost {
		if pinnedOnly {
			return true, false // nothing pinned: routed as usual
		}
		if t.multi {
			// Doomed: EXEC answers errTxLost; nothing is sent.
			return c.local([]byte("+QUEUED\r\n")), true
		}
	}
	keys := spec.KeyIndexes(args, nil)
	if pinnedOnly {
		if len(keys) == 0 || spec.Flags&(command.Blocking|command.PubSub|command.Admin|command.AllSlots) != 0 {
			return true, false
		}
		shard, one := c.oneShard(spec, args)
		if !one || shard != t.shard {
			// Routed as usual, after what went over the pinned
			// connection (a split command may touch the pinned shard).
			return c.barrier(), false
		}
		return c.txSend(resp.AppendCommandBytes(nil, args...), nil), true
	}
	if spec.Flags&(command.PubSub|command.Admin|command.AllSlots) != 0 ||
		(len(keys) == 0 && spec.Name != "ping" && spec.Name != "echo" && spec.Name != "time") {
		t.doomed = true
		return c.local(errLine("ERR '" + spec.Name + "' is not supported inside MULTI by the shoal proxy (the transaction is discarded)")), true
	}
	if len(keys) == 0 {
		if t.bc == nil {
			t.held = append(t.held, resp.AppendCommandBytes(nil, args...))
			t.discard++
			return c.local([]byte("+QUEUED\r\n")), true
		}
		return c.txSend(resp.AppendCommandBytes(nil, args...), nil), true
	}
	shard, one := c.oneShard(spec, args)
	if !one || (t.bc != nil && shard != t.shard) {
		t.doomed = true
		return c.local(errLine(errTxCrossKey)), true
	}
	if t.bc == nil {
		if msg := c.pin(shard); msg != "" {
			t.doomed = true
			return c.local(errLine(msg)), true
		}
	}
	return c.txSend(resp.AppendCommandBytes(nil, args...), nil), true
}

// oneShard returns the shard of args' keys; false when they span shards.
func (c *conn) oneShard(spec *command.Spec, args [][]byte) (int, bool) {
	rt := c.p.table.Load()
	keys := spec.KeyIndexes(args, nil)
	if len(keys) == 0 {
		return 0, false
	}
	shard := rt.slots[cluster.Slot(args[keys[0]])]
	for _, k := range keys[1:] {
		if rt.slots[cluster.Slot(args[k])] != shard {
			return 0, false
		}
	}
	return int(shard), true
}

// pin takes a dedicated connection to shard's primary for the client's
// transaction, after its earlier commands are answered. "" or the error
// message.
func (c *conn) pin(shard int) string {
	t := c.tx
	if !c.barrier() {
		return "ERR shoal proxy: the client is closing"
	}
	addr := c.p.table.Load().addr(shard, false)
	if addr == "" {
		return "CLUSTERDOWN Hash slot not served"
	}
	b := c.p.backendFor(addr, false, false, c.proto3)
	bc, err := b.acquire()
	if err != nil {
		return "ERR shoal proxy: cannot connect to the backend: " + err.Error()
	}
	bc.txPin.Store(true)
	t.be, t.bc, t.shard = b, bc, shard
	return ""
}

// txSend sends frame on the pinned connection (with the held frames
// first, their replies dropped) and queues its reply; replace, if set,
// is the reply the client gets instead of a non-error reply of the node.
func (c *conn) txSend(frame, replace []byte) bool {
	r := &req{}
	if !c.push(r) {
		return false
	}
	c.txCall(c.tx, frame, func(reply []byte, _ bool) {
		if replace != nil && !isErr(reply) {
			reply = replace
		}
		r.complete(reply)
	})
	return true
}

// txEnd sends the transaction's last command (EXEC, DISCARD, UNWATCH),
// holds the client's later commands until its reply, then ends the pin.
func (c *conn) txEnd(frame, replace []byte) bool {
	t := c.tx
	c.tx = nil
	r := &req{}
	if !c.push(r) {
		t.drop()
		return false
	}
	h := make(chan struct{})
	be, bc := t.be, t.bc
	c.hold = h
	c.txCall(t, frame, func(reply []byte, answered bool) {
		// Answered: nothing in flight, no MULTI or WATCH left on it.
		be.release(bc, answered)
		if replace != nil && !isErr(reply) {
			reply = replace
		}
		r.complete(reply)
		c.unhold(h)
	})
	t.bc = nil
	return true
}

// txCall queues frame on t's pinned connection; finish gets the reply
// (answered) or an error line when the connection failed.
func (c *conn) txCall(t *txState, frame []byte, finish func(reply []byte, answered bool)) {
	bc := t.bc
	skip := 0
	if len(t.held) > 0 {
		var all []byte
		for _, f := range t.held {
			all = append(all, f...)
		}
		frame = append(all, frame...)
		skip = t.discard
		t.held, t.discard = nil, 0
	}
	cl := &call{frame: frame, skip: skip}
	cl.done = func(cl *call) {
		if cl.err != nil {
			msg := "ERR shoal proxy: connection to the backend lost: " + cl.err.Error()
			if cl.written {
				msg += " (the command may have been applied)"
			}
			finish(errLine(msg), false)
			return
		}
		if kind, _ := redirect(cl.reply, false); kind != 0 {
			c.p.refresh()
		}
		finish(cl.reply, true)
	}
	c.p.stats.cmds.Add(1)
	if bc.enqueue(cl) {
		c.fs.add(bc)
	}
}

// txCheckLost replaces a transaction whose pinned connection is gone
// (its node stopped being primary, or died) by a lost one without a
// connection: the node forgot the MULTI and the WATCHes, so the
// transaction is doomed (inside MULTI now, or at the MULTI after a lost
// WATCH) and EXEC answers errTxLost.
func (c *conn) txCheckLost() {
	t := c.tx
	if t == nil || t.bc == nil || !t.bc.dead.Load() {
		return
	}
	t.drop()
	c.tx = &txState{c: c, multi: t.multi, doomed: t.multi, lost: true, inval: t.inval}
}

// abortMsg is EXEC's reply to a doomed transaction.
func (t *txState) abortMsg() string {
	if t.lost {
		return errTxLost
	}
	return errExecAbort
}
