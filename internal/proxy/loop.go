package proxy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/panjf2000/gnet/v2"

	"shoal/internal/cluster"
	"shoal/internal/command"
	"shoal/internal/gnetlog"
	"shoal/internal/resp"
)

// The event-loop front: the fast path for plain RESP clients.
//
// Clients accepted on the RESP port (not TLS, not memcached) are enrolled
// in a gnet event loop, and so are the backend connections that loop's
// clients use (a pool of LoopPoolSize per node and loop). On a loop, with no
// goroutine switch and no lock:
//
//   - a client's readable event parses every complete request in its
//     input; a keyed command whose keys live on one shard is appended as
//     is (the client's bytes) to the output buffer of the pool connection
//     the client is pinned to, and its reply slot is queued in the
//     client's FIFO (request order);
//   - a backend's readable event pairs each reply with the oldest call on
//     that connection and appends it to its client's output, or holds it
//     when an earlier reply of the client is still missing;
//   - once per loop iteration (a task queued by the first buffer touched,
//     run after the events of the next poll), every backend and client
//     buffer touched is written with one write each.
//
// With 50 clients at pipeline 1 that is one read and one write per
// client request and about one backend write and read per poll, as
// twemproxy does, and no goroutine wake-up at all.
//
// Slow path. Anything else — commands the proxy answers itself (but
// PING, ECHO, SELECT 0, HELLO [2|3], CLIENT SETINFO / SETNAME / GETNAME /
// ID: local), fan-outs to every shard, transactions, blocking commands,
// pub/sub, SCAN, AUTH, a protocol error, a request over 256 KB — hands
// the client over, for good, to the goroutine-per-client code (client.go):
// the loop stops parsing at that request, waits until every earlier reply
// is written, duplicates the socket and closes its own copy, and a reader
// goroutine starts on the rest of the input. A redirect, TRYAGAIN or a
// lost backend connection hands just that request to the retry code
// (route.go's shardCall), whose final reply comes back to the loop in
// order.
//
// Bounds, as on the slow path: a client has at most MaxPending requests
// queued (then its input is not parsed until replies are written), the
// replies held for it count against ClientOutputLimit, a backend
// connection past maxOut unwritten bytes stops the clients appending to
// it until it replies. gnet keeps reading a client whose input is not
// parsed: past ClientQueryLimit unparsed bytes it is disconnected
// (Redis's client-query-buffer-limit).

// maxLoopRequest: a request announced bigger is handed over to a reader
// goroutine (the loop would re-read the growing input on every event).
const maxLoopRequest = 256 << 10

type loopFront struct {
	gnet.BuiltinEventEngine
	p        *Proxy
	cli      *gnet.Client
	stopping atomic.Bool

	mu  sync.Mutex
	evs map[gnet.EventLoop]*evloop
}

// evloop is one event loop's state; only its loop touches it.
type evloop struct {
	f      *loopFront
	el     gnet.EventLoop
	pools  map[string][]*lbconn // node address → LoopPoolSize connections
	pools3 map[string][]*lbconn // the same for RESP3 clients (said HELLO 3)
	dirtyB []*lbconn
	dirtyC []*lconn
	armed  bool
	args   [][]byte
	sub    [][]byte // a split's arguments for one shard
}

// lconn is a client on a loop.
type lconn struct {
	ev     *evloop
	gc     gnet.Conn
	id     int64
	authed bool
	name   string // CLIENT SETNAME
	proto3 bool   // said HELLO 3: its requests go to RESP3 connections
	rng    uint64

	head, tail *lslot // reply order
	qn         int
	free       []*lslot
	freeFan    []*lfan // splits done, with their parts and buffers
	out        []byte  // replies ready to write
	held       int     // bytes of replies answered ahead of an earlier one

	dirty    bool
	paused   bool    // MaxPending queued, or waitB over maxOut: input not parsed
	waitB    *lbconn // the backend connection it waits for
	handover bool    // a slow-path request is next: hand over once drained
	closed   bool    // no more output (closed, dropped or handed over)

	batchStart time.Duration
	outBytes   atomic.Int64 // for INFO: held + unwritten, updated per write
}

// lslot is one request of a loop client: its place in the reply order
// and, while in flight, in a backend connection's FIFO.
type lslot struct {
	cl       *lconn
	next     *lslot // client FIFO
	bnext    *lslot // backend FIFO
	reply    []byte // held reply (answered before an earlier one)
	frame    []byte // the request, kept for a retry on the slow path
	done     bool
	readonly bool
	slot     int
	cmd      int32
	start    time.Duration
	// A part of a split (MGET, MSET, DEL... over several shards): not in
	// the client FIFO; its reply goes to fan.replies[part].
	fan  *lfan
	part int
}

// lfan merges the parts of a split into the reply of its slot.
type lfan struct {
	s       *lslot
	replies [][]byte
	bufs    [][]byte // replies[g]'s storage, kept for the next split
	pos     [][]int
	parts   []*lslot
	left    int
	merge   func(pos [][]int, replies [][]byte) []byte
}

// lbconn is a backend connection of one loop.
type lbconn struct {
	ev        *evloop
	addr      string
	idx       int
	gc        gnet.Conn // nil while dialing
	out       []byte
	head      *lslot
	tail      *lslot
	n         int // calls in the FIFO
	unwritten int // of which the last ones are still in out
	dirty     bool
	dead      bool
	r3        bool // said HELLO 3 (in pools3)
	waiters   []*lconn
}

func (p *Proxy) startLoops() error {
	n := p.cfg.EventLoops
	f := &loopFront{p: p, evs: map[gnet.EventLoop]*evloop{}}
	cli, err := gnet.NewClient(f, gnet.WithNumEventLoop(n),
		// Not locked to its thread: gnet yields (runtime.Gosched) after
		// every poll that found nothing, and a locked loop hands its P to
		// another thread and back for it, two context switches and
		// futexes per loop iteration. One client at pipeline 1: 41-48 µs
		// of proxy CPU per request locked, 27-32 unlocked (twemproxy
		// 30-51 in the same minutes); no difference with 50 clients.
		gnet.WithLockOSThread(false),
		gnet.WithReadBufferCap(64<<10), gnet.WithTCPNoDelay(gnet.TCPNoDelay), gnet.WithTicker(false),
		gnet.WithLogger(gnetlog.Logger{L: p.log}))
	if err != nil {
		return fmt.Errorf("proxy: event loops: %w", err)
	}
	if err := cli.Start(); err != nil {
		return fmt.Errorf("proxy: event loops: %w", err)
	}
	f.cli = cli
	p.front = f
	return nil
}

func (f *loopFront) stop() {
	f.stopping.Store(true)
	_ = f.cli.Stop()
}

// enroll moves an accepted RESP client onto a loop.
func (f *loopFront) enroll(nc net.Conn) {
	p := f.p
	cl := &lconn{id: p.nextID.Add(1)}
	cl.rng = sampleSeed(cl.id)
	dp := p.acl.Default().Perms()
	cl.authed = dp.NoPass && dp.Enabled
	p.mu.Lock()
	p.mu.lconns[cl] = struct{}{}
	p.mu.Unlock()
	if _, err := f.cli.EnrollContext(nc, cl); err != nil {
		p.mu.Lock()
		delete(p.mu.lconns, cl)
		p.mu.Unlock()
		nc.Close()
	}
}

func (f *loopFront) loopOf(el gnet.EventLoop) *evloop {
	f.mu.Lock()
	defer f.mu.Unlock()
	ev := f.evs[el]
	if ev == nil {
		ev = &evloop{f: f, el: el, pools: map[string][]*lbconn{}, pools3: map[string][]*lbconn{}}
		f.evs[el] = ev
	}
	return ev
}

// OnOpen implements gnet.EventHandler.
func (f *loopFront) OnOpen(gc gnet.Conn) ([]byte, gnet.Action) {
	switch x := gc.Context().(type) {
	case *lconn:
		x.gc = gc
		x.ev = f.loopOf(gc.EventLoop())
	case *lbconn:
		if x.dead {
			return nil, gnet.Close
		}
		x.gc = gc
		if len(x.out) > 0 {
			x.ev.markB(x)
		}
	}
	return nil, gnet.None
}

// OnClose implements gnet.EventHandler.
func (f *loopFront) OnClose(gc gnet.Conn, err error) gnet.Action {
	switch x := gc.Context().(type) {
	case *lconn:
		x.closed = true
		x.outBytes.Store(0)
		f.p.mu.Lock()
		delete(f.p.mu.lconns, x)
		f.p.mu.Unlock()
	case *lbconn:
		if !x.dead {
			if err == nil {
				err = errBackendClosed
			}
			if !f.stopping.Load() {
				f.p.backendError(x.addr)
			}
			x.fail(err)
		}
	}
	return gnet.None
}

// OnTraffic implements gnet.EventHandler.
func (f *loopFront) OnTraffic(gc gnet.Conn) gnet.Action {
	switch x := gc.Context().(type) {
	case *lconn:
		return x.traffic()
	case *lbconn:
		return x.traffic()
	}
	return gnet.None
}

// Run is the end-of-iteration flush (gnet.Runnable, queued by arm).
func (ev *evloop) Run(context.Context) error {
	ev.flush()
	return nil
}

func (ev *evloop) arm() {
	if ev.armed {
		return
	}
	ev.armed = true
	if ev.el.Execute(context.Background(), ev) != nil {
		ev.armed = false // the loop is stopping
	}
}

func (ev *evloop) markB(lb *lbconn) {
	if !lb.dirty {
		lb.dirty = true
		ev.dirtyB = append(ev.dirtyB, lb)
		ev.arm()
	}
}

func (ev *evloop) markC(cl *lconn) {
	if !cl.dirty {
		cl.dirty = true
		ev.dirtyC = append(ev.dirtyC, cl)
		ev.arm()
	}
}

// flush writes every buffer touched since the last flush, one write each:
// backends first (requests), then clients (replies).
func (ev *evloop) flush() {
	for i := 0; i < len(ev.dirtyB); i++ {
		lb := ev.dirtyB[i]
		ev.dirtyB[i] = nil
		lb.dirty = false
		lb.write()
	}
	ev.dirtyB = ev.dirtyB[:0]
	for i := 0; i < len(ev.dirtyC); i++ {
		cl := ev.dirtyC[i]
		ev.dirtyC[i] = nil
		cl.dirty = false
		cl.write()
	}
	ev.dirtyC = ev.dirtyC[:0]
	ev.armed = false
	if len(ev.dirtyB) > 0 || len(ev.dirtyC) > 0 {
		ev.arm()
	}
}

func (lb *lbconn) write() {
	if lb.gc == nil || lb.dead || len(lb.out) == 0 {
		return // dialing: written when it opens
	}
	lb.unwritten = 0
	buf := lb.out
	_, _ = lb.gc.Write(buf) // gnet keeps what the socket does not take now
	if cap(buf) <= 1<<20 {
		lb.out = buf[:0]
	} else {
		lb.out = nil
	}
}

func (cl *lconn) write() {
	if cl.closed {
		return
	}
	if len(cl.out) > 0 {
		_, _ = cl.gc.Write(cl.out) // a failure closes the connection (OnClose)
		if cap(cl.out) <= 1<<20 {
			cl.out = cl.out[:0]
		} else {
			cl.out = nil
		}
		if cl.closed {
			return
		}
	}
	if cl.ev.f.p.cfg.ClientOutputLimit > 0 {
		cl.outBytes.Store(int64(cl.held + cl.gc.OutboundBuffered()))
	}
	if cl.paused && cl.waitB == nil && cl.qn < cl.ev.f.p.cfg.MaxPending {
		cl.paused = false
		_ = cl.gc.Wake(nil) // parse the input that waited
	} else if cl.handover && cl.head == nil {
		_ = cl.gc.Wake(nil)
	}
}

// traffic parses and routes a client's requests (loop goroutine).
func (cl *lconn) traffic() gnet.Action {
	if cl.closed {
		return gnet.Close
	}
	gc := cl.gc
	if cl.handover {
		return cl.tryHandover()
	}
	if cl.paused {
		if p := cl.ev.f.p; int64(gc.InboundBuffered()) > p.cfg.ClientQueryLimit {
			p.stats.queryLimitDisconnects.Add(1)
			p.log.Warn("closing a client whose unparsed input exceeded the limit while the proxy waited", "client", gc.RemoteAddr().String(), "limit", p.cfg.ClientQueryLimit)
			return gnet.Close
		}
		return gnet.None
	}
	buf, _ := gc.Peek(-1)
	if len(buf) == 0 {
		return gnet.None
	}
	ev := cl.ev
	p := ev.f.p
	cl.batchStart = time.Since(p.t0)
	off := 0
	for off < len(buf) {
		if cl.qn >= p.cfg.MaxPending {
			cl.paused = true
			break
		}
		args, n, need, err := resp.Parse(buf[off:], ev.args[:0], resp.DefaultLimits)
		ev.args = args
		if err != nil {
			cl.handover = true // the reader goroutine answers the error
			break
		}
		if n == 0 {
			if need > maxLoopRequest {
				cl.handover = true
			}
			break
		}
		if len(args) == 0 {
			off += n
			continue
		}
		if !cl.fast(args, buf[off:off+n]) {
			cl.handover = true
			break
		}
		off += n
		if cl.paused {
			break // a backend connection is over maxOut
		}
	}
	for i := range ev.args {
		ev.args[i] = nil
	}
	if off > 0 {
		_, _ = gc.Discard(off)
	}
	if cl.handover {
		return cl.tryHandover()
	}
	return gnet.None
}

var (
	pingID     = command.Table["ping"].ID
	echoID     = command.Table["echo"].ID
	selectID   = command.Table["select"].ID
	helloID    = command.Table["hello"].ID
	clientID   = command.Table["client"].ID
	okReply    = []byte("+OK\r\n")
	nilReply   = []byte("$-1\r\n")
	nullReply3 = []byte("_\r\n")
)

// local answers on the loop what clients send on connecting (go-redis:
// HELLO 3 or 2, CLIENT SETINFO, CLIENT MAINT_NOTIFICATIONS; others
// SELECT 0, CLIENT SETNAME) and ECHO, as the slow path (commands.go)
// does, so that such a client stays on the loop. nil: the slow path
// takes the request (HELLO with options, or switching protocol with
// requests in flight; SELECT of another database; bad arguments: it
// answers them or their error).
func (cl *lconn) local(id int, args [][]byte) []byte {
	switch id {
	case echoID:
		return bulk(nil, args[1])
	case selectID:
		if string(args[1]) == "0" {
			return okReply
		}
	case helloID:
		proto := 2
		if cl.proto3 {
			proto = 3
		}
		if len(args) == 2 {
			switch string(args[1]) {
			case "2":
				proto = 2
			case "3":
				proto = 3
			default:
				return nil
			}
		} else if len(args) > 2 {
			return nil
		}
		if (proto == 3) != cl.proto3 {
			if cl.head != nil {
				// Earlier requests went to connections of the other
				// protocol: the slow path waits for them (barrier).
				return nil
			}
			cl.proto3 = proto == 3
		}
		return helloReply(proto, cl.id)
	case clientID:
		switch sub := strings.ToLower(string(args[1])); {
		case sub == "setinfo":
			if len(args) == 4 {
				return okReply
			}
		case sub == "setname":
			if len(args) == 3 && validClientName(args[2]) {
				cl.name = string(args[2])
				return okReply
			}
		case sub == "getname":
			if len(args) == 2 {
				if cl.name != "" {
					return bulk(nil, []byte(cl.name))
				}
				if cl.proto3 {
					return nullReply3
				}
				return nilReply
			}
		case sub == "id":
			if len(args) == 2 {
				return append(strconv.AppendInt([]byte{':'}, cl.id, 10), '\r', '\n')
			}
		default:
			// As the slow path (go-redis's RESP3 connections send CLIENT
			// MAINT_NOTIFICATIONS, best effort).
			return notSupported("client " + sub)
		}
	}
	return nil
}

// fast serves one request on the loop; false: it takes the slow path
// (nothing was done).
func (cl *lconn) fast(args [][]byte, raw []byte) bool {
	if !cl.authed {
		return false
	}
	p := cl.ev.f.p
	var lower [32]byte
	name := args[0]
	if len(name) > len(lower) {
		return false
	}
	for i, ch := range name {
		if ch >= 'A' && ch <= 'Z' {
			ch += 'a' - 'A'
		}
		lower[i] = ch
	}
	spec := command.Lookup(lower[:len(name)])
	if spec == nil || !spec.ArityOK(len(args)) || p.acl.Restricted() {
		return false
	}
	if spec.ID == pingID && len(args) == 1 {
		s := cl.newSlot()
		s.cmd, s.start = int32(spec.ID+1), cl.batchStart
		cl.complete(s, pong, false)
		return true
	}
	if reply := cl.local(spec.ID, args); reply != nil {
		s := cl.newSlot()
		s.cmd, s.start = int32(spec.ID+1), cl.batchStart
		cl.complete(s, reply, false)
		return true
	}
	if spec.Flags&(command.Blocking|command.PubSub|command.NoMulti|command.Admin|command.AllSlots) != 0 ||
		p.replicaRead && spec.Flags&command.ReadOnly != 0 {
		return false
	}
	var kb [8]int
	keys := spec.KeyIndexes(args, kb[:0])
	if len(keys) == 0 {
		return false
	}
	rt := p.table.Load()
	first := cluster.Slot(args[keys[0]])
	shard := rt.slots[first]
	for _, k := range keys[1:] {
		if rt.slots[cluster.Slot(args[k])] != shard {
			return cl.split(spec, args, rt)
		}
	}
	if cl.sampled() {
		for _, k := range keys {
			p.hot.record(args[k])
		}
	}
	p.stats.cmds.Add(1)
	s := cl.newSlot()
	s.cmd, s.start = int32(spec.ID+1), cl.batchStart
	s.slot = first
	s.readonly = spec.Flags&command.ReadOnly != 0 || idempotent(spec.Name, args)
	if raw[0] == '*' {
		s.frame = append(s.frame[:0], raw...)
	} else {
		s.frame = resp.AppendCommandBytes(s.frame[:0], args...) // inline
	}
	addr := rt.addr(int(shard), false)
	if addr == "" {
		cl.ev.retry(s, []byte("-CLUSTERDOWN Hash slot not served\r\n"), nil, false, "")
		return true
	}
	lb := cl.ev.conn(addr, cl.id, cl.proto3)
	lb.send(s)
	if lb.full() {
		cl.paused = true
		cl.waitB = lb
		lb.waiters = append(lb.waiters, cl)
	}
	return true
}

var pong = []byte("+PONG\r\n")

// split serves MGET, MSET, DEL, UNLINK, EXISTS and TOUCH over several
// shards as conn.split does: one request per shard with that shard's keys
// (groups of width arguments), sent in parallel on the loop's
// connections, merged in the client's order when the last part is in.
// Other multi-shard commands take the slow path (CROSSSLOT).
func (cl *lconn) split(spec *command.Spec, args [][]byte, rt *route) bool {
	var width int
	var merge func([][]int, [][]byte) []byte
	switch spec.Name {
	case "mget":
		width, merge = 1, mergeMGET
	case "mset":
		width, merge = 2, ignorePos(allOK)
	case "del", "unlink", "exists", "touch":
		width, merge = 1, ignorePos(sumInts)
	default:
		return false
	}
	p := cl.ev.f.p
	readonly := spec.Flags&command.ReadOnly != 0 || idempotent(spec.Name, args)
	var shards [8]uint16
	order := shards[:0]
	var firstSlot [8]int
	slots := firstSlot[:0]
	f := cl.newFan(merge)
	for i := 1; i+width-1 < len(args); i += width {
		sl := cluster.Slot(args[i])
		sh := rt.slots[sl]
		g := 0
		for g < len(order) && order[g] != sh {
			g++
		}
		if g == len(order) {
			order = append(order, sh)
			slots = append(slots, sl)
			if g < cap(f.pos) {
				f.pos = f.pos[:g+1]
				f.pos[g] = f.pos[g][:0]
			} else {
				f.pos = append(f.pos, nil)
			}
		}
		f.pos[g] = append(f.pos[g], (i-1)/width)
	}
	if cl.sampled() {
		for i := 1; i < len(args); i += width {
			p.hot.record(args[i])
		}
	}
	s := cl.newSlot()
	s.cmd, s.start = int32(spec.ID+1), cl.batchStart
	f.s = s
	f.left = len(order)
	for len(f.replies) < len(order) {
		f.replies = append(f.replies, nil)
		f.bufs = append(f.bufs, nil)
	}
	f.replies = f.replies[:len(order)]
	for len(f.parts) < len(order) {
		f.parts = append(f.parts, &lslot{cl: cl})
	}
	sub := cl.ev.sub[:0]
	for g, sh := range order {
		sub = append(sub[:0], args[0])
		for _, k := range f.pos[g] {
			i := 1 + k*width
			sub = append(sub, args[i:i+width]...)
		}
		part := f.parts[g]
		part.fan, part.part, part.slot, part.readonly = f, g, slots[g], readonly
		part.frame = resp.AppendCommandBytes(part.frame[:0], sub...)
		p.stats.cmds.Add(1)
		addr := rt.addr(int(sh), false)
		if addr == "" {
			cl.ev.retry(part, []byte("-CLUSTERDOWN Hash slot not served\r\n"), nil, false, "")
			continue
		}
		lb := cl.ev.conn(addr, cl.id, cl.proto3)
		lb.send(part)
		if lb.full() && cl.waitB == nil {
			cl.paused = true
			cl.waitB = lb
			lb.waiters = append(lb.waiters, cl)
		}
	}
	for i := range sub {
		sub[i] = nil
	}
	cl.ev.sub = sub[:0]
	return true
}

// deliver routes a reply from a backend or the retry code: a split's part
// to its merge, anything else to complete.
func (cl *lconn) deliver(s *lslot, reply []byte, owned bool) {
	f := s.fan
	if f == nil {
		cl.complete(s, reply, owned)
		return
	}
	if !owned {
		f.bufs[s.part] = append(f.bufs[s.part][:0], reply...)
		reply = f.bufs[s.part]
	}
	f.replies[s.part] = reply
	if f.left--; f.left == 0 {
		cl.complete(f.s, f.merge(f.pos, f.replies), true)
		cl.doneFan(f)
	}
}

// newFan takes a split's state from the client's free list (a split's
// parts, positions and reply buffers are reused: MGET of 10 keys at
// pipeline 1 allocated ~25 times per request).
func (cl *lconn) newFan(merge func([][]int, [][]byte) []byte) *lfan {
	if n := len(cl.freeFan); n > 0 {
		f := cl.freeFan[n-1]
		cl.freeFan = cl.freeFan[:n-1]
		f.merge = merge
		f.pos = f.pos[:0]
		return f
	}
	return &lfan{merge: merge}
}

// doneFan returns a merged split to the free list: every part has been
// delivered (no backend FIFO or retry holds one any more).
func (cl *lconn) doneFan(f *lfan) {
	f.s, f.merge = nil, nil
	for i := range f.replies {
		f.replies[i] = nil
	}
	for i, b := range f.bufs {
		if cap(b) > 64<<10 {
			f.bufs[i] = nil
		}
	}
	for _, pt := range f.parts {
		pt.fan = nil
		if cap(pt.frame) > 64<<10 {
			pt.frame = nil
		}
	}
	if len(cl.freeFan) < 64 {
		cl.freeFan = append(cl.freeFan, f)
	}
}

func (cl *lconn) sampled() bool { return cl.ev.f.p.hot.sampled(&cl.rng) }

func (cl *lconn) newSlot() *lslot {
	var s *lslot
	if n := len(cl.free); n > 0 {
		s = cl.free[n-1]
		cl.free = cl.free[:n-1]
	} else {
		s = &lslot{cl: cl}
	}
	if cl.tail == nil {
		cl.head = s
	} else {
		cl.tail.next = s
	}
	cl.tail = s
	cl.qn++
	return s
}

// complete delivers s's reply (borrowed unless owned): written in order
// at the next flush, or held until the earlier replies are in.
func (cl *lconn) complete(s *lslot, reply []byte, owned bool) {
	if cl.closed {
		return
	}
	p := cl.ev.f.p
	if s.cmd != 0 {
		p.met.observe(int(s.cmd-1), time.Since(p.t0)-s.start)
	}
	if lim := p.cfg.ClientOutputLimit; lim > 0 && int64(cl.held+len(cl.out)+len(reply)+cl.gc.OutboundBuffered()) > lim {
		cl.overLimit()
		return
	}
	if s != cl.head {
		if owned {
			s.reply = reply
		} else {
			s.reply = append(s.reply[:0], reply...)
		}
		s.done = true
		cl.held += len(reply)
		return
	}
	cl.out = append(cl.out, reply...)
	for {
		h := cl.head
		cl.head = h.next
		if cl.head == nil {
			cl.tail = nil
		}
		cl.qn--
		h.next, h.done = nil, false
		if cap(h.reply) > 64<<10 {
			h.reply = nil
		} else {
			h.reply = h.reply[:0]
		}
		cl.free = append(cl.free, h)
		if cl.head == nil || !cl.head.done {
			break
		}
		cl.out = append(cl.out, cl.head.reply...)
		cl.held -= len(cl.head.reply)
	}
	cl.ev.markC(cl)
}

// overLimit drops a client past ClientOutputLimit (as conn.overLimit).
func (cl *lconn) overLimit() {
	p := cl.ev.f.p
	cl.closed = true
	p.stats.outputLimitDrops.Add(1)
	p.log.Warn("client output limit reached: disconnecting the client", "client", cl.gc.RemoteAddr().String(), "limit", p.cfg.ClientOutputLimit)
	// Reset, not FIN: gnet has read the client's input, so a plain
	// close would leave the kernel trickling megabytes of queued replies
	// to a client that does not read (the reader goroutine's close resets
	// because it left input unread).
	_ = cl.gc.SetLinger(0)
	_ = cl.gc.Close()
}

// tryHandover moves the client to a reader goroutine once every reply
// it is owed is written (from traffic, so that gnet closes its copy of
// the socket when it returns).
func (cl *lconn) tryHandover() gnet.Action {
	gc := cl.gc
	if cl.head != nil || len(cl.out) > 0 {
		return gnet.None // write wakes it when the last reply is out
	}
	if gc.OutboundBuffered() > 0 {
		// The client has not read everything yet: look again shortly
		// (gnet has no event for a drained output buffer).
		time.AfterFunc(time.Millisecond, func() { _ = gc.Wake(nil) })
		return gnet.None
	}
	p := cl.ev.f.p
	fd, err := gc.Dup()
	if err != nil {
		return gnet.Close
	}
	rest, _ := gc.Peek(-1)
	in := append([]byte(nil), rest...)
	cl.closed = true
	p.stats.loopHandovers.Add(1)
	p.wg.Add(1)
	go p.adopt(fd, in, cl.id, cl.name, cl.proto3)
	return gnet.Close
}

// adopt serves a client handed over by a loop on a reader goroutine,
// starting with the input the loop had not parsed.
func (p *Proxy) adopt(fd int, in []byte, id int64, name string, proto3 bool) {
	defer p.wg.Done()
	f := os.NewFile(uintptr(fd), "client")
	nc, err := net.FileConn(f)
	f.Close()
	if err != nil {
		p.log.Warn("cannot hand a client over from its event loop", "err", err)
		return
	}
	if !p.trackClient(nc) {
		return
	}
	p.serveRESPFrom(nc, in, id, name, proto3)
	p.untrackClient(nc)
}

// conn returns the pool connection of addr that client id is pinned to
// (dialing it if needed): one client's requests to a node share one
// connection, so they run in order.
func (ev *evloop) conn(addr string, id int64, r3 bool) *lbconn {
	pools := ev.pools
	if r3 {
		pools = ev.pools3
	}
	pool := pools[addr]
	if pool == nil {
		pool = make([]*lbconn, ev.f.p.cfg.LoopPoolSize)
		pools[addr] = pool
	}
	i := int(id % int64(len(pool)))
	lb := pool[i]
	if lb == nil || lb.dead {
		lb = ev.dial(addr, i, r3)
		pool[i] = lb
	}
	return lb
}

// hello3 says HELLO 3 on a new backend connection and reads the answer
// (nothing else is in flight on it yet).
func hello3(nc net.Conn) error {
	_ = nc.SetDeadline(time.Now().Add(time.Second))
	defer nc.SetDeadline(time.Time{})
	if _, err := nc.Write(hello3Frame); err != nil {
		return err
	}
	var buf []byte
	tmp := make([]byte, 1024)
	for {
		n, err := nc.Read(tmp)
		if err != nil {
			return err
		}
		buf = append(buf, tmp[:n]...)
		m, err := replyLen(buf, maxBackendBulk)
		if err != nil {
			return err
		}
		if m > 0 {
			if m != len(buf) {
				return errors.New("proxy: unsolicited backend reply after HELLO 3")
			}
			if buf[0] == '-' {
				return fmt.Errorf("proxy: the node refused HELLO 3: %s", bytes.TrimSpace(buf[1:]))
			}
			return nil
		}
	}
}

// poolOf is the pool map lb belongs to.
func (ev *evloop) poolOf(lb *lbconn) map[string][]*lbconn {
	if lb.r3 {
		return ev.pools3
	}
	return ev.pools
}

// dial connects (and authenticates) on a goroutine, then enrolls the
// connection in this loop; requests queue in out meanwhile.
func (ev *evloop) dial(addr string, i int, r3 bool) *lbconn {
	lb := &lbconn{ev: ev, addr: addr, idx: i, r3: r3}
	p := ev.f.p
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		nc, err := p.dialBackend(addr, false)
		if err == nil && r3 {
			if err = hello3(nc); err != nil {
				nc.Close()
			}
		}
		if err == nil {
			var ch <-chan gnet.RegisteredResult
			if ch, err = ev.el.Enroll(gnet.NewContext(context.Background(), lb), nc); err == nil {
				err = (<-ch).Err // the enrolment closes nc (the loop has a copy)
			} else {
				nc.Close()
			}
		}
		if err != nil {
			if !ev.f.stopping.Load() {
				p.backendError(addr)
			}
			_ = ev.el.Execute(context.Background(), gnet.RunnableFunc(func(context.Context) error {
				lb.fail(err)
				return nil
			}))
		}
	}()
	return lb
}

func (lb *lbconn) send(s *lslot) {
	lb.out = append(lb.out, s.frame...)
	lb.unwritten++
	lb.n++
	if lb.tail == nil {
		lb.head = s
	} else {
		lb.tail.bnext = s
	}
	lb.tail = s
	if lb.gc != nil {
		lb.ev.markB(lb)
	}
}

// traffic pairs replies with calls in order (loop goroutine).
func (lb *lbconn) traffic() gnet.Action {
	if lb.dead {
		return gnet.Close
	}
	buf, _ := lb.gc.Peek(-1)
	off := 0
	for off < len(buf) {
		n, err := replyLen(buf[off:], maxBackendBulk)
		if err == nil && n > 0 && lb.head == nil {
			err = errors.New("proxy: unsolicited backend reply")
		}
		if err != nil {
			if !lb.ev.f.stopping.Load() {
				lb.ev.f.p.backendError(lb.addr)
			}
			lb.fail(err)
			return gnet.Close
		}
		if n == 0 {
			break
		}
		s := lb.head
		lb.head = s.bnext
		if lb.head == nil {
			lb.tail = nil
		}
		s.bnext = nil
		lb.n--
		reply := buf[off : off+n]
		off += n
		if reply[0] == '-' {
			if kind, _ := redirect(reply, false); kind != 0 {
				lb.ev.retry(s, append([]byte(nil), reply...), nil, true, lb.addr)
				continue
			}
		}
		s.cl.deliver(s, reply, false)
	}
	if off > 0 {
		_, _ = lb.gc.Discard(off)
	}
	if len(lb.waiters) > 0 && !lb.full() {
		lb.release()
	}
	return gnet.None
}

// full reports whether more than maxOut bytes wait to be written to the
// backend (queued while it dials, or not taken by its socket yet): its
// clients stop appending until it replies.
func (lb *lbconn) full() bool {
	n := len(lb.out)
	if lb.gc != nil {
		n += lb.gc.OutboundBuffered()
	}
	return n > maxOut
}

// release resumes the clients waiting for this connection's output.
func (lb *lbconn) release() {
	for i, cl := range lb.waiters {
		lb.waiters[i] = nil
		if cl.waitB == lb {
			cl.waitB = nil
			if !cl.closed && cl.qn < lb.ev.f.p.cfg.MaxPending {
				cl.paused = false
				_ = cl.gc.Wake(nil)
			}
		}
	}
	lb.waiters = lb.waiters[:0]
}

// fail ends the connection: its calls go to the retry code (resent when
// not written or read-only, else answered with an error, as on the slow
// path).
func (lb *lbconn) fail(err error) {
	if lb.dead {
		return
	}
	lb.dead = true
	if pool := lb.ev.poolOf(lb)[lb.addr]; pool != nil && pool[lb.idx] == lb {
		pool[lb.idx] = nil
	}
	firstUnwritten := lb.n - lb.unwritten
	i := 0
	for s := lb.head; s != nil; i++ {
		next := s.bnext
		s.bnext = nil
		lb.ev.retry(s, nil, err, i < firstUnwritten, lb.addr)
		s = next
	}
	lb.head, lb.tail, lb.n, lb.unwritten, lb.out = nil, nil, 0, 0, nil
	lb.release()
}

// retry hands one request to the slow path's retry code (a redirect, a
// lost connection, no primary for the slot); its final reply comes back
// to this loop in the client's order.
func (ev *evloop) retry(s *lslot, reply []byte, err error, written bool, addr string) {
	cl := s.cl
	if cl.closed {
		return
	}
	p := ev.f.p
	sc := &shardCall{call: call{pin: int(cl.id), reply: reply, err: err, written: written},
		body: append([]byte(nil), s.frame...), slot: s.slot, readonly: s.readonly, sentTo: addr, r3: cl.proto3}
	sc.p = p
	sc.sc = sc
	sc.done = shardCallDone
	sc.finish = func(b []byte) {
		_ = ev.el.Execute(context.Background(), gnet.RunnableFunc(func(context.Context) error {
			cl.deliver(s, b, true)
			return nil
		}))
	}
	sc.onDone(&sc.call)
}

// dropStale fails the loops' connections to nodes that are no longer a
// primary (as Proxy.dropStale for the pools).
func (f *loopFront) dropStale(live map[string]bool) {
	f.mu.Lock()
	evs := make([]*evloop, 0, len(f.evs))
	for _, ev := range f.evs {
		evs = append(evs, ev)
	}
	f.mu.Unlock()
	for _, ev := range evs {
		_ = ev.el.Execute(context.Background(), gnet.RunnableFunc(func(context.Context) error {
			for _, pools := range []map[string][]*lbconn{ev.pools, ev.pools3} {
				for addr, pool := range pools {
					if live[addr] {
						continue
					}
					for _, lb := range pool {
						if lb != nil && !lb.dead {
							lb.fail(errors.New("the node is no longer a primary"))
							if lb.gc != nil {
								_ = ev.el.Close(lb.gc)
							}
						}
					}
					delete(pools, addr)
				}
			}
			return nil
		}))
	}
}

// loopOutputBytes sums the loop clients' held output (INFO).
func (p *Proxy) loopOutputBytesLocked() int64 {
	var n int64
	for cl := range p.mu.lconns {
		n += cl.outBytes.Load()
	}
	return n
}
