package proxy

import (
	"sync/atomic"

	"shoal/internal/cluster"
	"shoal/internal/command"
	"shoal/internal/resp"
)

// Blocking commands (BLPOP, BRPOP, BLMOVE, BRPOPLPUSH, BLMPOP, BZPOPMIN,
// BZPOPMAX, BZMPOP: the command table's Blocking flag) with their keys on
// one shard run on a dedicated backend connection (an idle one of the
// node's, or a new one), so a client blocked for a minute holds no
// shared pipelined connection. As on a single server, the client's later
// commands wait for the blocking reply (conn.hold); its earlier ones are
// answered before the command is sent (conn.barrier). A client that
// disconnects while blocked closes the connection (the node forgets the
// waiter). The retry rules apply: a node that loses the slot while the
// client waits answers -MOVED, and the command is sent to the new owner.

// blockState is a blocking command's link to its current dedicated
// connection, for a client that disconnects meanwhile.
type blockState struct {
	be   *backend
	cur  atomic.Pointer[bconn]
	gone atomic.Bool
}

// abandon closes the dedicated connection of a client that went away.
func (bs *blockState) abandon() {
	bs.gone.Store(true)
	if bc := bs.cur.Load(); bc != nil {
		bc.fail(errClientGone)
	}
}

// blocking serves a blocking command.
func (c *conn) blocking(spec *command.Spec, args [][]byte) bool {
	keys := spec.KeyIndexes(args, nil)
	if len(keys) == 0 {
		// A bad numkeys (BLMPOP, BZMPOP): the node answers its syntax
		// error at once, it cannot block without keys.
		rt := c.p.table.Load()
		if len(rt.shards) == 0 {
			return c.local(errLine("CLUSTERDOWN The cluster is down"))
		}
		return c.forwardShard(args, rt.shards[0], false)
	}
	shard, one := c.oneShard(spec, args)
	if !one {
		return c.local(errLine(errCrossShard))
	}
	if !c.barrier() {
		return false
	}
	r := &req{}
	if !c.push(r) {
		return false
	}
	h := make(chan struct{})
	bs := &blockState{}
	c.blk, c.hold = bs, h
	sc := &shardCall{r3: c.proto3, body: resp.AppendCommandBytes(nil, args...), slot: cluster.Slot(args[keys[0]]), shard: shard, blk: bs}
	sc.finish = func(reply []byte) {
		r.complete(reply)
		c.unhold(h)
	}
	c.p.start(sc, nil)
	return true
}

// dispatchBlocking sends sc on a dedicated connection to addr.
func (p *Proxy) dispatchBlocking(sc *shardCall, addr string) {
	bs := sc.blk
	b := p.backendFor(addr, false, false, sc.r3)
	bc, err := b.acquire()
	if err != nil {
		sc.err, sc.written = err, false
		sc.onDone(&sc.call)
		return
	}
	bs.be = b
	bs.cur.Store(bc)
	if bs.gone.Load() {
		bc.fail(errClientGone)
	}
	if bc.enqueue(&sc.call) {
		bc.flush()
	}
}

// endBlocking gives the dedicated connection back once the blocking
// call's attempt is over (reused when it was answered).
func (sc *shardCall) endBlocking() {
	bs := sc.blk
	if bc := bs.cur.Swap(nil); bc != nil {
		bs.be.release(bc, sc.err == nil)
	}
}
