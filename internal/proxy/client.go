package proxy

import (
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"shoal/internal/acl"
	"shoal/internal/resp"
)

// A req is one client request's slot in the client's reply order.
type req struct {
	reply []byte
	done  bool // the reply is in (guarded by cl.omu)
	close bool // close the connection after this reply
	cl    *conn
	next  *req // the client's reply queue (guarded by cl.omu)
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

// complete delivers the reply (exactly once). If it is the oldest
// reply the client waits for and nobody is writing, the caller writes it
// (and every answered reply behind it) at once, without blocking.
func (r *req) complete(reply []byte) {
	r.completeIn(reply, nil)
}

// completeIn is complete for a backend reader in the middle of a batch
// of replies (b non-nil): the write is left to the end of the batch
// (outBatch.flush), so that a client with many replies in the batch gets
// them in one write.
func (r *req) completeIn(reply []byte, b *outBatch) {
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
	c.omu.Lock()
	r.reply = reply
	r.done = true
	if !c.owner && c.qhead == r && !c.gone {
		c.owner = true
		if b != nil {
			b.add(c)
		} else {
			c.writeOut(false)
		}
	}
	c.omu.Unlock()
}

// An outBatch collects the clients a backend reader owes a write (it
// took their output over in completeIn) until the end of its batch.
type outBatch []*conn

func (b *outBatch) add(c *conn) { *b = append(*b, c) }

// flush writes every collected client's answered replies.
func (b *outBatch) flush() {
	for i, c := range *b {
		c.omu.Lock()
		c.writeOut(false)
		c.omu.Unlock()
		(*b)[i] = nil
	}
	*b = (*b)[:0]
}

// conn is one client connection (RESP or memcached). The reader
// goroutine parses and routes; replies are queued strictly in request
// order and written by whoever completes the oldest (writeOut), with
// writeLoop waiting for a client that does not read. MaxPending bounds
// the queued requests: when it is full the reader stops reading.
type conn struct {
	p    *Proxy
	nc   net.Conn
	rc   syscall.RawConn // nc's, for writes that must not block (nil: nc has none)
	id   int64
	name string
	dead chan struct{} // closed when the output stops (written out, or failed)

	// The reply queue, in request order (see writeOut). owner: a
	// goroutine is taking answered replies off the head and writing
	// them; only the owner touches out and the socket's writes. pend:
	// bytes a non-blocking write left, handed to writeLoop (which owns
	// the output until it wrote them). room and wake are signals with a
	// buffer of one.
	omu        sync.Mutex
	qhead      *req
	qtail      *req
	qn         int
	owner      bool
	gone       bool // the output stopped: later replies are dropped
	ending     bool // the reader is done: stop once the queue is written
	out        []byte
	pend       []byte
	closeAfter bool // with pend: close the connection once it is written
	room       chan struct{}
	wake       chan struct{}
	deadOnce   sync.Once

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
	// When the bytes being parsed arrived (since Proxy.t0): one clock
	// read per read batch, the start of every command parsed from it.
	batchStart time.Duration

	// Reader-owned state of the slower paths (nil for ordinary traffic).
	tx   *txState      // WATCH or MULTI in progress (tx.go)
	hold chan struct{} // set by a handler: read no further command until it is closed
	blk  *blockState   // the blocking command in progress (blocking.go)
	sub  *subState     // pub/sub subscriptions (pubsub.go)
}

func (p *Proxy) newConn(nc net.Conn) *conn {
	c := &conn{p: p, nc: nc, id: p.nextID.Add(1), room: make(chan struct{}, 1), wake: make(chan struct{}, 1), dead: make(chan struct{})}
	if sc, ok := nc.(syscall.Conn); ok {
		c.rc, _ = sc.SyscallConn()
	}
	c.rng = sampleSeed(c.id)
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

// push queues r in order; false when the output is gone. The reader
// waits while MaxPending requests are unanswered or unwritten, after
// flushing what it has not sent yet (their replies make the room).
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
	return c.enqueue(r, nil, true)
}

// enqueue appends r to the reply queue, waiting for room; false when the
// output is gone or stop is closed. flush: the caller is the reader.
func (c *conn) enqueue(r *req, stop chan struct{}, flush bool) bool {
	r.cl = c
	c.omu.Lock()
	for c.qn >= c.p.cfg.MaxPending && !c.gone {
		c.omu.Unlock()
		if flush {
			c.fs.flush()
		}
		select {
		case <-c.room:
		case <-c.dead:
			return false
		case <-stop:
			return false
		}
		c.omu.Lock()
	}
	if c.gone {
		c.omu.Unlock()
		return false
	}
	if c.qtail == nil {
		c.qhead = r
	} else {
		c.qtail.next = r
	}
	c.qtail = r
	c.qn++
	c.omu.Unlock()
	return true
}

// local queues a reply the proxy makes itself.
func (c *conn) local(reply []byte) bool {
	r := &req{}
	ok := c.push(r)
	r.complete(reply)
	return ok
}

// writeOut takes the answered replies off the head of the queue and
// writes them, until the head is unanswered. Called with omu held and
// owner set; returns with omu held and, unless it handed the output to
// writeLoop, owner cleared. block: the caller may wait for the client
// (writeLoop); otherwise a write that cannot complete now is handed over.
func (c *conn) writeOut(block bool) {
	for {
		closing := false
		popped := false
		for r := c.qhead; r != nil && r.done; r = c.qhead {
			c.out = append(c.out, r.reply...)
			r.reply = nil
			c.qhead = r.next
			if c.qhead == nil {
				c.qtail = nil
			}
			r.next = nil
			c.qn--
			popped = true
			if r.reached != nil {
				close(r.reached)
			}
			if r.close {
				closing = true
				break
			}
		}
		if popped {
			select {
			case c.room <- struct{}{}:
			default:
			}
		}
		if len(c.out) == 0 && !closing {
			c.owner = false
			if c.ending && c.qhead == nil {
				c.signalWake()
			}
			return
		}
		buf := c.out
		c.out = nil
		c.omu.Unlock()
		var n int
		var err error
		if block || c.rc == nil {
			n, err = c.nc.Write(buf)
		} else {
			n, err = c.tryWrite(buf)
		}
		if c.p.cfg.ClientOutputLimit > 0 && n > 0 {
			c.outBytes.Add(-int64(n))
		}
		c.omu.Lock()
		if err != nil {
			c.stopLocked()
			return
		}
		if n < len(buf) {
			// The client is not reading fast enough: writeLoop waits
			// for it, owning the output until then.
			c.pend = buf[n:]
			c.closeAfter = closing
			c.signalWake()
			return
		}
		if cap(buf) <= 1<<20 {
			c.out = buf[:0]
		}
		if closing {
			c.stopLocked()
			return
		}
	}
}

// tryWrite writes what the socket takes now, without waiting.
func (c *conn) tryWrite(b []byte) (int, error) {
	var n int
	var werr error
	err := c.rc.Write(func(fd uintptr) bool {
		for {
			n, werr = syscall.Write(int(fd), b)
			if werr != syscall.EINTR {
				return true
			}
		}
	})
	if n < 0 {
		n = 0
	}
	if werr == syscall.EAGAIN {
		werr = nil
	}
	if err != nil {
		return n, err
	}
	return n, werr
}

func (c *conn) signalWake() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// stopLocked ends the output (a failed write, a reply that closes the
// connection): the connection is closed, later replies are dropped, dead
// is closed and writeLoop is woken to end. omu is held; owner stays set
// (nobody writes again).
func (c *conn) stopLocked() {
	c.gone = true
	c.owner = true
	c.nc.Close()
	c.deadOnce.Do(func() { close(c.dead) })
	c.signalWake() // writeLoop ends (stopped by a completer, it would wait forever)
}

// writeLoop writes what a non-blocking write left (waiting for the
// client as long as it takes) and ends the output once the reader is
// done and every queued reply is written.
func (c *conn) writeLoop() {
	for range c.wake {
		c.omu.Lock()
		if c.gone {
			c.omu.Unlock()
			return
		}
		if c.pend != nil {
			buf, closing := c.pend, c.closeAfter
			c.pend, c.closeAfter = nil, false
			c.omu.Unlock()
			n, err := c.nc.Write(buf)
			if c.p.cfg.ClientOutputLimit > 0 && n > 0 {
				c.outBytes.Add(-int64(n))
			}
			c.omu.Lock()
			if err != nil || closing {
				c.stopLocked()
				c.omu.Unlock()
				return
			}
			c.writeOut(true)
		} else if !c.owner && c.qhead != nil && c.qhead.done {
			c.owner = true
			c.writeOut(true)
		}
		if c.ending && !c.owner && c.qhead == nil && !c.gone {
			c.stopLocked()
		}
		gone := c.gone
		c.omu.Unlock()
		if gone {
			return
		}
	}
}

// endOutput tells the output the reader is done, and waits until every
// queued reply is written (or the output failed).
func (c *conn) endOutput() {
	c.omu.Lock()
	c.ending = true
	c.omu.Unlock()
	c.signalWake()
	<-c.dead
}

// serveRESP runs one RESP client connection until it closes.
func (p *Proxy) serveRESP(nc net.Conn) { p.serveRESPFrom(nc, nil, 0, "", false) }

// serveRESPFrom is serveRESP for a client whose first bytes were read
// already (in: a client handed over by an event loop).
func (p *Proxy) serveRESPFrom(nc net.Conn, in []byte, id int64, name string, proto3 bool) {
	c := p.newConn(nc)
	if id != 0 { // handed over by an event loop: the client keeps its id, name and protocol
		c.id, c.name = id, name
		c.rng = sampleSeed(c.id)
		c.proto3 = proto3
		c.push3.Store(proto3)
	}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		c.writeLoop()
	}()
	c.readRESP(in)
	c.cleanup()
	c.endOutput()
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

func (c *conn) readRESP(in []byte) {
	defer c.fs.flush()
	lim := resp.DefaultLimits
	buf := append(make([]byte, 0, max(16<<10, len(in))), in...)
	c.batchStart = time.Since(c.p.t0)
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
		c.batchStart = time.Since(c.p.t0)
	}
	return buf, off, err
}
