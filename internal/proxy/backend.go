package proxy

import (
	"bufio"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"shoal/internal/acl"
)

// A call is one request to one backend node: the encoded frame(s), and
// the raw reply once it arrives. done runs on the backend reader
// goroutine (or the failing writer's), so it must not block.
type call struct {
	frame   []byte // the request, multibulk encoded (ASKING prepended when asking)
	skip    int    // replies to discard before this call's own (ASKING's +OK)
	reply   []byte // raw reply, owned by the call
	err     error  // connection failure
	written bool   // the frame may have reached the backend
	done    func(*call)
	pin     int        // picks the pool connection: one client's requests to a node share one connection, so they run in order
	next    *call      // FIFO link
	mcGet   bool       // memcached retrieval: the reply is VALUE blocks up to END
	sc      *shardCall // the shardCall embedding this call, if any (shardCallDone)
	// batch: set by the reader goroutine just before done, taken (and
	// cleared) by shardCallDone: the reader's batch of client writes.
	batch *outBatch
}

var (
	errBackendClosed = errors.New("backend connection closed")
	// errReleased and errClientGone close dedicated connections on
	// purpose; they are not backend errors.
	errReleased   = errors.New("dedicated backend connection released")
	errClientGone = errors.New("the client disconnected")
)

// maxIdleDedicated bounds the idle dedicated connections kept per node
// for reuse by the next transaction or blocking command.
const maxIdleDedicated = 8

// backend is the pool of pipelined connections to one node address,
// plus the dedicated connections (one client's transaction or blocking
// command at a time) to it: busy ones, and up to maxIdleDedicated idle
// ones for reuse.
type backend struct {
	p     *Proxy
	addr  string
	mc    bool // memcached protocol (replies framed differently)
	ro    bool // a replica: RESP connections start with READONLY
	r3    bool // RESP3: connections start with HELLO 3
	mu    sync.Mutex
	conns []*bconn
	idle  []*bconn
	busy  map[*bconn]struct{}
	shut  bool
}

// backendKey names the pool of addr: ro pools (replica reads) are kept
// apart from the primaries' so that a new map closes them by role, and
// RESP3 pools (r3: their connections said HELLO 3, for clients that did)
// from the RESP2 ones.
func backendKey(addr string, mc, ro, r3 bool) string {
	switch {
	case mc && ro:
		return "romc:" + addr
	case mc:
		return "mc:" + addr
	case ro && r3:
		return "ro3:" + addr
	case ro:
		return "ro:" + addr
	case r3:
		return "r3:" + addr
	}
	return addr
}

// backendFor returns the pool for addr (r3 is ignored for memcached).
func (p *Proxy) backendFor(addr string, mc, ro, r3 bool) *backend {
	r3 = r3 && !mc
	key := backendKey(addr, mc, ro, r3)
	p.mu.Lock()
	defer p.mu.Unlock()
	b := p.mu.backends[key]
	if b == nil {
		b = &backend{p: p, addr: addr, mc: mc, ro: ro, r3: r3, conns: make([]*bconn, p.cfg.PoolSize), busy: map[*bconn]struct{}{}}
		if p.mu.closed {
			b.shut = true
		}
		p.mu.backends[key] = b
	}
	return b
}

// dialBackend connects to a node, authenticating first when the proxy
// has backend credentials (memcached ports take no AUTH).
func (p *Proxy) dialBackend(addr string, mc bool) (net.Conn, error) {
	if mc {
		return net.DialTimeout("tcp", addr, time.Second)
	}
	var tc *tls.Config
	if p.cfg.BackendTLS != nil {
		// Backends are keyed by their RESP address (the map's, MOVED's):
		// dial the same node's TLS port.
		taddr := p.table.Load().tlsOf[addr]
		if taddr == "" {
			return nil, fmt.Errorf("backend %s serves no tls-port (the proxy has --backend-tls-ca-cert-file)", addr)
		}
		addr, tc = taddr, p.cfg.BackendTLS
	}
	nc, err := acl.Dial(addr, p.cfg.Backend, tc, time.Second)
	var ne net.Error
	if err != nil && p.cfg.Backend.Pass != "" && !errors.As(err, &ne) {
		p.log.Warn("backend refused the proxy's credentials", "addr", addr, "err", err)
	}
	return nc, err
}

// send queues c on the pool connection c.pin selects, dialing if needed,
// and returns that connection: the caller must flush it (at once, or
// after the rest of its read batch). nil: c is already completed (no
// connection: err set, written false).
func (b *backend) send(c *call) *bconn {
	i := c.pin % len(b.conns)
	b.mu.Lock()
	if b.shut {
		b.mu.Unlock()
		c.err = errBackendClosed
		c.done(c)
		return nil
	}
	bc := b.conns[i]
	if bc == nil || bc.dead.Load() {
		b.mu.Unlock()
		nc, err := b.p.dialBackend(b.addr, b.mc)
		if err != nil {
			b.p.backendError(b.addr)
			c.err = err
			c.done(c)
			return nil
		}
		b.mu.Lock()
		if b.shut {
			b.mu.Unlock()
			nc.Close()
			c.err = errBackendClosed
			c.done(c)
			return nil
		}
		if cur := b.conns[i]; cur != nil && !cur.dead.Load() {
			nc.Close() // another sender won the race
			bc = cur
		} else {
			bc = newBconn(b, nc)
			b.conns[i] = bc
			b.greet(bc)
		}
	}
	b.mu.Unlock()
	if !bc.enqueue(c) {
		return nil
	}
	return bc
}

// acquire returns a dedicated connection to the node: an idle one, or a
// new one. The caller owns it until release; nothing else is sent on it.
func (b *backend) acquire() (*bconn, error) {
	b.mu.Lock()
	for len(b.idle) > 0 {
		bc := b.idle[len(b.idle)-1]
		b.idle = b.idle[:len(b.idle)-1]
		if !bc.dead.Load() {
			b.busy[bc] = struct{}{}
			b.mu.Unlock()
			return bc, nil
		}
	}
	if b.shut {
		b.mu.Unlock()
		return nil, errBackendClosed
	}
	b.mu.Unlock()
	nc, err := b.p.dialBackend(b.addr, b.mc)
	if err != nil {
		b.p.backendError(b.addr)
		return nil, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.shut {
		nc.Close()
		return nil, errBackendClosed
	}
	bc := newBconn(b, nc)
	b.greet(bc)
	b.busy[bc] = struct{}{}
	return bc, nil
}

// greet queues what a new connection says ahead of everything else:
// READONLY on a replica (it then serves reads of its shard's slots),
// HELLO 3 in a RESP3 pool (the node then answers in RESP3 types).
func (b *backend) greet(bc *bconn) {
	if b.mc {
		return
	}
	if b.r3 {
		bc.enqueue(&call{frame: hello3Frame, done: func(*call) {}})
	}
	if b.ro {
		bc.enqueue(&call{frame: readonlyFrame, done: func(*call) {}})
	}
}

// release gives back a dedicated connection: kept for reuse when clean
// (reuse: nothing in flight, no transaction or subscription state left
// on it), closed otherwise.
func (b *backend) release(bc *bconn, reuse bool) {
	bc.txPin.Store(false)
	b.mu.Lock()
	delete(b.busy, bc)
	if reuse && !b.shut && !bc.dead.Load() && len(b.idle) < maxIdleDedicated {
		b.idle = append(b.idle, bc)
		b.mu.Unlock()
		return
	}
	b.mu.Unlock()
	if !bc.dead.Load() { // dead: released from its own fail (a call's done)
		bc.fail(errReleased)
	}
}

// reset fails the pool's current connections and the idle dedicated ones
// (new ones are dialed on demand), and with txToo the connections pinned
// by transactions (the node is no longer a primary: EXEC is answered
// -EXECABORT). Blocked commands' connections are left to the node: it
// answers a blocked command on a slot it no longer serves with a
// redirection, which the proxy follows.
func (b *backend) reset(err error, txToo bool) {
	b.mu.Lock()
	conns := append([]*bconn(nil), b.conns...)
	conns = append(conns, b.idle...)
	if txToo {
		for bc := range b.busy {
			if bc.txPin.Load() {
				conns = append(conns, bc)
			}
		}
	}
	b.idle = nil
	b.mu.Unlock()
	for _, bc := range conns {
		if bc != nil {
			bc.fail(err)
		}
	}
}

func (b *backend) close() {
	b.mu.Lock()
	b.shut = true
	conns := append(append([]*bconn(nil), b.conns...), b.idle...)
	for bc := range b.busy {
		conns = append(conns, bc)
	}
	b.idle = nil
	b.mu.Unlock()
	for _, bc := range conns {
		if bc != nil {
			bc.fail(errBackendClosed)
		}
	}
}

// bconn is one pipelined backend connection. Senders append their
// frames to out and the calls to the in-flight FIFO under mu, and whoever
// flushes first writes everything appended so far in one write (while it
// writes, others keep appending and it loops). A client reader ends its
// read batch with kick instead: the connection's flusher goroutine first
// yields, so that the other client readers woken by the same poll append
// their requests too, then writes them all at once — with many clients at
// pipeline 1 that is one backend write for many requests instead of one
// each (the write syscall was ~25 % of the proxy's CPU). The reader
// goroutine pairs replies with the FIFO in order.
//
// Bound: a sender that finds more than maxOut bytes unwritten waits until
// the flusher has written them (backpressure on the client reader).
type bconn struct {
	b     *backend
	nc    net.Conn
	dead  atomic.Bool
	txPin atomic.Bool // a transaction's pinned connection (closed when its node stops being primary)
	quit  chan struct{}
	once  sync.Once

	mu        sync.Mutex // guards everything below
	head      *call      // in-flight FIFO (written or about to be)
	tail      *call
	unwritten []*call // calls whose frames are in out
	out       []byte
	spare     []byte
	flushing  bool
	failed    error
	drained   *sync.Cond    // broadcast after each write and on failure
	inflight  chan struct{} // signalled when the FIFO gets a call
	kicked    bool          // a flush is due from the flusher goroutine
	kickc     chan struct{} // wakes the flusher goroutine
}

const maxOut = 4 << 20

var (
	readonlyFrame = []byte("*1\r\n$8\r\nREADONLY\r\n")
	hello3Frame   = []byte("*2\r\n$5\r\nHELLO\r\n$1\r\n3\r\n")
)

func newBconn(b *backend, nc net.Conn) *bconn {
	bc := &bconn{b: b, nc: nc, quit: make(chan struct{}), inflight: make(chan struct{}, 1), kickc: make(chan struct{}, 1)}
	bc.drained = sync.NewCond(&bc.mu)
	b.p.wg.Add(2)
	go bc.readLoop()
	go bc.flushLoop()
	return bc
}

// kick has the flusher goroutine write what is appended (soon: after the
// goroutines runnable now had their turn).
func (bc *bconn) kick() {
	bc.mu.Lock()
	if bc.kicked || bc.flushing || len(bc.out) == 0 {
		// A flush is due or under way: the writer loops until out is
		// empty, so it takes these bytes too.
		bc.mu.Unlock()
		return
	}
	bc.kicked = true
	bc.mu.Unlock()
	select {
	case bc.kickc <- struct{}{}:
	default:
	}
}

func (bc *bconn) flushLoop() {
	defer bc.b.p.wg.Done()
	for {
		select {
		case <-bc.kickc:
		case <-bc.quit:
			return
		}
		// Let the client readers woken with the one that kicked append
		// their requests first (they are queued ahead of this goroutine
		// now), so that one write carries them all.
		runtime.Gosched()
		bc.mu.Lock()
		bc.kicked = false
		if !bc.flushing {
			bc.flushLocked()
		}
		bc.mu.Unlock()
	}
}

// enqueue appends c; false when the connection has failed (c is then
// completed, not written).
func (bc *bconn) enqueue(c *call) bool {
	bc.mu.Lock()
	for bc.failed == nil && len(bc.out) > maxOut {
		if !bc.flushing {
			bc.flushLocked()
			continue
		}
		bc.drained.Wait()
	}
	if bc.failed != nil {
		bc.mu.Unlock()
		c.err = errBackendClosed
		c.done(c)
		return false
	}
	c.written = false
	bc.out = append(bc.out, c.frame...)
	bc.unwritten = append(bc.unwritten, c)
	if bc.tail == nil {
		bc.head = c
	} else {
		bc.tail.next = c
	}
	bc.tail = c
	bc.mu.Unlock()
	select {
	case bc.inflight <- struct{}{}:
	default:
	}
	return true
}

// flush writes whatever is appended, unless another goroutine is already
// writing (it will pick it up).
func (bc *bconn) flush() {
	bc.mu.Lock()
	if !bc.flushing {
		bc.flushLocked()
	}
	bc.mu.Unlock()
}

// flushLocked writes out until it is empty; mu is held on entry and exit
// and released around each write.
func (bc *bconn) flushLocked() {
	bc.flushing = true
	for len(bc.out) > 0 && bc.failed == nil {
		buf := bc.out
		bc.out = bc.spare[:0]
		for _, c := range bc.unwritten {
			c.written = true
		}
		bc.unwritten = bc.unwritten[:0]
		bc.mu.Unlock()
		_, err := bc.nc.Write(buf)
		if err != nil {
			bc.fail(err)
		}
		bc.mu.Lock()
		if cap(buf) <= 1<<20 {
			bc.spare = buf[:0]
		}
		bc.drained.Broadcast()
	}
	bc.flushing = false
}

// fail marks the connection dead and completes every call it holds with
// err; written tells whether its frame may have reached the backend.
func (bc *bconn) fail(err error) {
	bc.once.Do(func() {
		bc.dead.Store(true)
		if err != errReleased && err != errClientGone {
			bc.b.p.backendError(bc.b.addr)
		}
		close(bc.quit)
		bc.nc.Close()
		bc.mu.Lock()
		bc.failed = err
		head := bc.head
		bc.head, bc.tail = nil, nil
		bc.out, bc.unwritten = nil, nil
		bc.drained.Broadcast()
		bc.mu.Unlock()
		for c := head; c != nil; {
			next := c.next
			c.next = nil
			c.err = err
			c.done(c)
			c = next
		}
	})
}

const maxBackendBulk = 512 << 20

// batchReader reads from the connection after flushing the reader's
// batch of client writes: replies already in are written before the
// reader may wait for more.
type batchReader struct {
	nc    net.Conn
	batch *outBatch
}

func (br batchReader) Read(p []byte) (int, error) {
	br.batch.flush()
	return br.nc.Read(p)
}

func (bc *bconn) readLoop() {
	defer bc.b.p.wg.Done()
	var batch outBatch
	defer batch.flush()
	r := bufio.NewReaderSize(batchReader{bc.nc, &batch}, 32<<10)
	var acc []byte // accumulates one reply across reads
	for {
		var c *call
		bc.mu.Lock()
		c = bc.head
		bc.mu.Unlock()
		if c == nil {
			// Nothing in flight: wait for the writer (or an unsolicited
			// byte, which is a protocol error).
			batch.flush()
			select {
			case <-bc.inflight:
				continue
			case <-bc.quit:
				return
			}
		}
		var reply []byte
		var err error
		if bc.b.mc {
			reply, err = readMCReply(r, acc[:0], c)
		} else {
			reply, err = readRaw(r, acc[:0])
		}
		if err != nil {
			bc.fail(err)
			return
		}
		acc = reply
		if c.skip > 0 {
			c.skip--
			continue
		}
		bc.mu.Lock()
		if bc.head != c { // failed meanwhile
			bc.mu.Unlock()
			return
		}
		bc.head = c.next
		if bc.head == nil {
			bc.tail = nil
		}
		bc.mu.Unlock()
		c.next = nil
		c.reply = append([]byte(nil), reply...)
		if cap(acc) > 1<<20 {
			acc = nil
		}
		c.batch = &batch
		c.done(c)
	}
}

// readRaw reads one complete RESP reply from r and appends it to dst.
// Announced lengths are bounded; memory follows the bytes received.
func readRaw(r *bufio.Reader, dst []byte) ([]byte, error) {
	return readRawAt(r, dst, 0)
}

// appendLine appends one reply line, CRLF included, to dst; a line
// longer than 64 KiB is a broken reply.
func appendLine(r *bufio.Reader, dst []byte) ([]byte, error) {
	start := len(dst)
	for {
		line, err := r.ReadSlice('\n')
		dst = append(dst, line...)
		if err == bufio.ErrBufferFull {
			if len(dst)-start > 64<<10 {
				return dst, errBadReply
			}
			continue
		}
		return dst, err
	}
}

func readRawAt(r *bufio.Reader, dst []byte, depth int) ([]byte, error) {
	if depth > maxReplyDepth {
		return dst, errBadReply
	}
	start := len(dst)
	dst, err := appendLine(r, dst)
	if err != nil {
		return dst, err
	}
	end := len(dst)
	if end-start < 3 || dst[end-2] != '\r' {
		return dst, errBadReply
	}
	kind, arg := dst[start], dst[start+1:end-2]
	switch kind {
	case '+', '-', ':', ',', '(', '#', '_':
		return dst, nil
	case '$', '=', '!':
		n, ok := atoi(arg)
		if !ok || n > maxBackendBulk {
			return dst, errBadReply
		}
		if n < 0 {
			return dst, nil
		}
		for left := n + 2; left > 0; {
			step := min(left, 1<<20)
			at := len(dst)
			dst = append(dst, make([]byte, step)...)
			if _, err := io.ReadFull(r, dst[at:]); err != nil {
				return dst, err
			}
			left -= step
		}
		if dst[len(dst)-2] != '\r' || dst[len(dst)-1] != '\n' {
			return dst, errBadReply
		}
		return dst, nil
	case '*', '~', '>', '%', '|':
		n, ok := atoi(arg)
		if !ok || n > 1<<24 {
			return dst, errBadReply
		}
		if kind == '%' || kind == '|' {
			n *= 2
		}
		var err error
		for i := int64(0); i < n; i++ {
			if dst, err = readRawAt(r, dst, depth+1); err != nil {
				return dst, err
			}
		}
		return dst, nil
	}
	return dst, errBadReply
}
