package proxy

import (
	"errors"
	"net"
	"sync/atomic"
	"time"

	"shoal/internal/acl"
	"shoal/internal/resp"
)

// A req is one client request's slot in the client's reply order.
type req struct {
	reply []byte
	done  atomic.Bool
	close bool // close the connection after this reply
	cl    *conn
	// reached, if set, is closed when the writer gets to this request:
	// every earlier request of the client has been answered (barrier).
	reached chan struct{}
	// Hot-key cache invalidations due when the reply arrives (the
	// request writes these key hashes, or flushes everything).
	inval    []uint64
	invalAll bool
	// The command this request answers (label id + 1; 0: none, e.g. a
	// barrier) and when it was parsed (since Proxy.t0), for the latency
	// histogram.
	cmd   int32
	start time.Duration
}

// complete delivers the reply (exactly once) and wakes the writer.
// The reply's bytes count against the client's output limit until the
// writer has written them.
func (r *req) complete(reply []byte) {
	c := r.cl
	if lim := c.p.cfg.ClientOutputLimit; lim > 0 {
		// A reply that would take the client past its limit is not held
		// (nor counted): the client is dropped, and so is every later
		// reply, so the bytes held never exceed the limit.
		switch n := int64(len(reply)); {
		case c.overLim.Load():
			reply = nil
		case c.outBytes.Add(n) > lim:
			c.outBytes.Add(-n)
			c.overLimit()
			reply = nil
		}
	}
	if r.cmd != 0 {
		c.p.met.observe(int(r.cmd-1), time.Since(c.p.t0)-r.start)
	}
	if r.inval != nil || r.invalAll {
		hc := c.p.hot.cache
		for _, h := range r.inval {
			hc.invalidate(h)
		}
		if r.invalAll {
			hc.invalidateAll()
		}
	}
	r.reply = reply
	r.done.Store(true)
	select {
	case r.cl.sig <- struct{}{}:
	default:
	}
}

// conn is one client connection (RESP or memcached). The reader
// goroutine parses and routes; writeLoop delivers replies strictly in
// request order, writing everything ready in one write. q bounds the
// outstanding requests: when it is full the reader stops reading.
type conn struct {
	p    *Proxy
	nc   net.Conn
	id   int64
	name string
	q    chan *req
	sig  chan struct{}
	dead chan struct{} // closed when the writer stops

	// Output accounting: bytes of replies answered but not yet written
	// (in reqs and the writer's buffer). Past cfg.ClientOutputLimit the
	// client is disconnected: a client that pipelines without reading
	// would otherwise make the proxy hold up to MaxPending replies of
	// any size.
	outBytes atomic.Int64
	overLim  atomic.Bool

	fs flushSet // backend connections written to in this read batch (reader only)

	// Hot keys (reader only): the sampling generator, and the cache
	// invalidations the next request pushed takes (hotkeys.go).
	rng      uint64
	inval    []uint64
	invalAll bool

	// Authentication (reader-owned): the client's user, and whether it
	// has authenticated (or needs not: a nopass default user).
	user   *acl.User
	authed bool

	proto3 bool        // the client said HELLO 3 (reader-owned)
	push3  atomic.Bool // proto3, for the pub/sub readers (messages as RESP3 pushes)

	// The command being handled (label id + 1) and when it was parsed:
	// the next request pushed takes them (metrics.go).
	curCmd   int32
	curStart time.Duration

	// Reader-owned state of the slower paths (nil for ordinary traffic).
	tx   *txState      // WATCH or MULTI in progress (tx.go)
	hold chan struct{} // set by a handler: read no further command until it is closed
	blk  *blockState   // the blocking command in progress (blocking.go)
	sub  *subState     // pub/sub subscriptions (pubsub.go)
}

func (p *Proxy) newConn(nc net.Conn) *conn {
	c := &conn{p: p, nc: nc, id: p.nextID.Add(1), q: make(chan *req, p.cfg.MaxPending), sig: make(chan struct{}, 1), dead: make(chan struct{})}
	c.rng = uint64(c.id)*0x9e3779b97f4a7c15 | 1
	c.user = p.acl.Default()
	dp := c.user.Perms()
	c.authed = dp.NoPass && dp.Enabled
	p.mu.Lock()
	p.mu.conns[c] = struct{}{}
	p.mu.Unlock()
	return c
}

// forget unregisters a finished client.
func (c *conn) forget() {
	c.p.mu.Lock()
	delete(c.p.mu.conns, c)
	c.p.mu.Unlock()
}

// overLimit disconnects a client past its output limit (once).
func (c *conn) overLimit() {
	if c.overLim.Swap(true) {
		return
	}
	c.p.stats.outputLimitDrops.Add(1)
	c.p.log.Warn("client output limit reached: disconnecting the client", "client", c.nc.RemoteAddr().String(), "limit", c.p.cfg.ClientOutputLimit)
	c.nc.Close()
}

// push queues r in order; false when the writer is gone.
func (c *conn) push(r *req) bool {
	r.cl = c
	if r.reached == nil {
		if c.curCmd != 0 {
			r.cmd, r.start = c.curCmd, c.curStart
			c.curCmd = 0
		}
		if c.inval != nil || c.invalAll {
			r.inval, r.invalAll = c.inval, c.invalAll
			c.inval, c.invalAll = nil, false
		}
	}
	select {
	case c.q <- r:
		return true
	default:
	}
	// Full: the requests still unflushed must go out before waiting for
	// their replies to make room.
	c.fs.flush()
	select {
	case c.q <- r:
		return true
	case <-c.dead:
		return false
	}
}

// local queues a reply the proxy makes itself.
func (c *conn) local(reply []byte) bool {
	r := &req{}
	ok := c.push(r)
	r.complete(reply)
	return ok
}

func (c *conn) writeLoop() {
	defer close(c.dead)
	var out []byte
	flush := func() bool {
		if len(out) == 0 {
			return true
		}
		_, err := c.nc.Write(out)
		if c.p.cfg.ClientOutputLimit > 0 {
			c.outBytes.Add(-int64(len(out)))
		}
		if cap(out) > 1<<20 {
			out = nil
		} else {
			out = out[:0]
		}
		return err == nil
	}
	for {
		var r *req
		var ok bool
		select {
		case r, ok = <-c.q:
		default:
			if !flush() {
				c.nc.Close()
				return
			}
			r, ok = <-c.q
		}
		if !ok {
			flush()
			return
		}
		for !r.done.Load() {
			if !flush() {
				c.nc.Close()
				return
			}
			<-c.sig
		}
		out = append(out, r.reply...)
		r.reply = nil
		if r.reached != nil {
			close(r.reached)
		}
		if r.close {
			flush()
			c.nc.Close()
			return
		}
	}
}

// serveRESP runs one RESP client connection until it closes.
func (p *Proxy) serveRESP(nc net.Conn) {
	c := p.newConn(nc)
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		c.writeLoop()
	}()
	c.readRESP()
	c.cleanup()
	close(c.q)
	<-c.dead
	c.forget()
}

// cleanup ends what a disconnecting client leaves on dedicated backend
// connections: an open transaction's connection is closed (the node
// drops its MULTI and WATCH state), a blocked command's connection too
// (the node forgets the waiter), subscriptions end with their
// connections.
func (c *conn) cleanup() {
	if c.tx != nil {
		c.tx.drop()
		c.tx = nil
	}
	if c.blk != nil {
		c.blk.abandon()
		c.blk = nil
	}
	c.endSubs()
}

// barrier flushes the client's unsent requests and waits until every
// request it sent before has been answered. A command that moves the
// client to a dedicated backend connection (a transaction's first, a
// blocking command) waits for it, so it cannot overtake the client's
// earlier commands still in flight on the shared pool. false: the
// client is gone.
func (c *conn) barrier() bool {
	r := &req{reached: make(chan struct{})}
	if !c.push(r) {
		return false
	}
	r.complete(nil)
	c.fs.flush()
	select {
	case <-r.reached:
		return true
	case <-c.dead:
		return false
	}
}

// unhold releases a reader waiting in awaitHold on h: the read deadline
// interrupts its pending Read first, then h is closed (in this order, so
// the reader never clears the deadline before it was set).
func (c *conn) unhold(h chan struct{}) {
	c.nc.SetReadDeadline(time.Unix(1, 0))
	close(h)
}

// maxHeldInput bounds the bytes a held reader buffers without parsing;
// past it the reader stops reading until the hold ends.
const maxHeldInput = 1 << 20

// awaitHold waits until the hold a handler set is released (its reply
// arrived: EXEC's, a blocking command's), so the client's later commands
// run after it, as on a single server. Meanwhile it keeps reading the
// client's bytes (without parsing them) to notice a disconnect, which
// ends a blocked command at once. false: the client is gone.
func (c *conn) awaitHold(buf []byte, off int) ([]byte, int, bool) {
	h := c.hold
	c.hold = nil
	c.fs.flush()
	for {
		select {
		case <-h:
			c.nc.SetReadDeadline(time.Time{})
			return buf, off, true
		default:
		}
		if len(buf)-off >= maxHeldInput {
			select {
			case <-h:
				continue
			case <-c.dead:
				return buf, off, false
			}
		}
		var err error
		buf, off, err = c.readMore(buf, off)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				<-h // unhold closes h right after setting the deadline
				continue
			}
			return buf, off, false
		}
	}
}

func (c *conn) readRESP() {
	defer c.fs.flush()
	lim := resp.DefaultLimits
	buf := make([]byte, 0, 16<<10)
	var args [][]byte
	off := 0
	for {
		for off < len(buf) {
			var n int
			var err error
			args, n, _, err = resp.Parse(buf[off:], args, lim)
			if err != nil {
				r := &req{close: true}
				c.push(r)
				r.complete([]byte("-ERR " + err.Error() + "\r\n"))
				return
			}
			if n == 0 {
				break // incomplete: the buffer grows by doubling as bytes arrive
			}
			off += n
			if len(args) == 0 {
				continue
			}
			if !c.handle(args) {
				return
			}
			if c.hold != nil {
				var ok bool
				if buf, off, ok = c.awaitHold(buf, off); !ok {
					return
				}
				c.blk = nil
			}
		}
		c.fs.flush()
		var err error
		if buf, off, err = c.readMore(buf, off); err != nil {
			return
		}
	}
}

// readMore makes room in the input buffer (dropping the consumed prefix
// buf[:off], shrinking a large empty buffer, doubling a full one) and
// reads once more from the connection.
func (c *conn) readMore(buf []byte, off int) ([]byte, int, error) {
	if off == len(buf) {
		buf, off = buf[:0], 0
		if cap(buf) > 1<<20 {
			buf = make([]byte, 0, 16<<10)
		}
	} else if len(buf) == cap(buf) {
		n := copy(buf, buf[off:])
		buf, off = buf[:n], 0
		if n == cap(buf) {
			nb := make([]byte, n, 2*cap(buf))
			copy(nb, buf)
			buf = nb
		}
	}
	n, err := c.nc.Read(buf[len(buf):cap(buf)])
	if n > 0 {
		buf = buf[:len(buf)+n]
	}
	return buf, off, err
}
