package proxy

import (
	"bufio"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
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
	pin     int   // picks the pool connection: one client's requests to a node share one connection, so they run in order
	next    *call // FIFO link
	mcGet   bool  // memcached retrieval: the reply is VALUE blocks up to END
}

var errBackendClosed = errors.New("backend connection closed")

// backend is the pool of pipelined connections to one node address.
type backend struct {
	p     *Proxy
	addr  string
	mc    bool // memcached protocol (replies framed differently)
	mu    sync.Mutex
	conns []*bconn
	shut  bool
}

func (p *Proxy) backend(addr string, mc bool) *backend {
	key := addr
	if mc {
		key = "mc:" + addr
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	b := p.mu.backends[key]
	if b == nil {
		b = &backend{p: p, addr: addr, mc: mc, conns: make([]*bconn, p.cfg.PoolSize)}
		if p.mu.closed {
			b.shut = true
		}
		p.mu.backends[key] = b
	}
	return b
}

// send queues c on the pool connection c.pin selects, dialing if needed.
// It blocks while that connection's queue is full (backpressure on the
// calling client reader). On a dial failure c completes with err set and
// written false.
func (b *backend) send(c *call) {
	i := c.pin % len(b.conns)
	b.mu.Lock()
	if b.shut {
		b.mu.Unlock()
		c.err = errBackendClosed
		c.done(c)
		return
	}
	bc := b.conns[i]
	if bc == nil || bc.dead.Load() {
		b.mu.Unlock()
		nc, err := net.DialTimeout("tcp", b.addr, time.Second)
		if err != nil {
			b.p.stats.backendErrs.Add(1)
			c.err = err
			c.done(c)
			return
		}
		b.mu.Lock()
		if b.shut {
			b.mu.Unlock()
			nc.Close()
			c.err = errBackendClosed
			c.done(c)
			return
		}
		if cur := b.conns[i]; cur != nil && !cur.dead.Load() {
			nc.Close() // another sender won the race
			bc = cur
		} else {
			bc = newBconn(b, nc)
			b.conns[i] = bc
		}
	}
	b.mu.Unlock()
	bc.enqueue(c)
}

// reset fails the pool's current connections (new ones are dialed on demand).
func (b *backend) reset(err error) {
	b.mu.Lock()
	conns := append([]*bconn(nil), b.conns...)
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
	conns := b.conns
	b.mu.Unlock()
	for _, bc := range conns {
		if bc != nil {
			bc.fail(errBackendClosed)
		}
	}
}

// bconn is one pipelined backend connection. Requests go through queue
// (bounded: cap) to the writer goroutine, which writes every queued
// request in one write and appends them to the in-flight FIFO; the reader
// goroutine pairs replies with that FIFO in order.
type bconn struct {
	b     *backend
	nc    net.Conn
	queue chan *call
	dead  atomic.Bool
	quit  chan struct{}
	once  sync.Once

	mu       sync.Mutex // guards the in-flight FIFO and failure
	head     *call
	tail     *call
	failed   error
	inflight chan struct{} // signalled when the FIFO gets a call
}

func newBconn(b *backend, nc net.Conn) *bconn {
	bc := &bconn{b: b, nc: nc, queue: make(chan *call, b.p.cfg.BackendQueue), quit: make(chan struct{}), inflight: make(chan struct{}, 1)}
	b.p.wg.Add(2)
	go bc.writeLoop()
	go bc.readLoop()
	return bc
}

func (bc *bconn) enqueue(c *call) {
	select {
	case bc.queue <- c:
		// The writer may have drained the queue for the last time just
		// before c landed: dead is set before that drain, so whoever sees
		// it drains again and no call is stranded.
		if bc.dead.Load() {
			bc.drainQueue()
		}
	case <-bc.quit:
		c.err = errBackendClosed
		c.done(c)
	}
}

// fail marks the connection dead and completes every call it holds with
// err: queued ones as not written (safe to retry), in-flight ones as
// possibly written.
func (bc *bconn) fail(err error) {
	bc.once.Do(func() {
		bc.dead.Store(true)
		bc.b.p.stats.backendErrs.Add(1)
		close(bc.quit)
		bc.nc.Close()
		bc.mu.Lock()
		bc.failed = err
		head := bc.head
		bc.head, bc.tail = nil, nil
		bc.mu.Unlock()
		for c := head; c != nil; {
			next := c.next
			c.next = nil
			c.err, c.written = err, true
			c.done(c)
			c = next
		}
	})
}

func (bc *bconn) writeLoop() {
	defer bc.b.p.wg.Done()
	var buf []byte
	var batch []*call
	for {
		var c *call
		select {
		case c = <-bc.queue:
		case <-bc.quit:
			bc.drainQueue()
			return
		}
		buf, batch = buf[:0], batch[:0]
		for {
			buf = append(buf, c.frame...)
			batch = append(batch, c)
			if len(buf) > 256<<10 {
				break
			}
			select {
			case c = <-bc.queue:
				continue
			default:
			}
			break
		}
		// Into the FIFO before the write: a fast reply must find its call.
		bc.mu.Lock()
		if bc.failed != nil {
			bc.mu.Unlock()
			for _, c := range batch {
				c.err = bc.failed
				c.done(c)
			}
			bc.drainQueue()
			return
		}
		for _, c := range batch {
			c.written = true
			if bc.tail == nil {
				bc.head = c
			} else {
				bc.tail.next = c
			}
			bc.tail = c
		}
		bc.mu.Unlock()
		select {
		case bc.inflight <- struct{}{}:
		default:
		}
		if _, err := bc.nc.Write(buf); err != nil {
			bc.fail(err)
			bc.drainQueue()
			return
		}
		if cap(buf) > 1<<20 {
			buf = nil
		}
	}
}

// drainQueue completes the calls still queued (never written).
func (bc *bconn) drainQueue() {
	for {
		select {
		case c := <-bc.queue:
			c.err = errBackendClosed
			c.done(c)
		default:
			return
		}
	}
}

const maxBackendBulk = 512 << 20

func (bc *bconn) readLoop() {
	defer bc.b.p.wg.Done()
	r := bufio.NewReaderSize(bc.nc, 32<<10)
	var acc []byte // accumulates one reply across reads
	for {
		var c *call
		bc.mu.Lock()
		c = bc.head
		bc.mu.Unlock()
		if c == nil {
			// Nothing in flight: wait for the writer (or an unsolicited
			// byte, which is a protocol error).
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
		c.done(c)
	}
}

// readRaw reads one complete RESP reply from r and appends it to dst.
// Announced lengths are bounded; memory follows the bytes received.
func readRaw(r *bufio.Reader, dst []byte) ([]byte, error) {
	return readRawAt(r, dst, 0)
}

func readRawAt(r *bufio.Reader, dst []byte, depth int) ([]byte, error) {
	if depth > maxReplyDepth {
		return dst, errBadReply
	}
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
		if err != nil {
			return dst, err
		}
		break
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
