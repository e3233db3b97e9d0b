package proxy

import (
	"bufio"
	"bytes"
	"net"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"shoal/internal/cluster"
	"shoal/internal/command"
	"shoal/internal/resp"
)

// Pub/sub (docs/proxy.md, "Pub/sub"). Storage nodes deliver a message
// only to their own subscribers, so every proxy must agree where a
// channel lives: PUBLISH goes, over the shared pool, to the primary of
// the shard owning the channel name's slot (hash tags apply), and a
// SUBSCRIBE to that same shard. A pattern may match a channel of any
// shard, so PSUBSCRIBE subscribes on every shard. Each publish reaches
// one shard, hence a subscriber gets a message once.
//
// A subscribed client has its own goroutine (psLoop) owning its backend
// subscription connections (one per shard at most) and which names are
// subscribed on each; the client reader sends it the (P)(UN)SUBSCRIBE
// commands in order and keeps the client-visible state (names, counts,
// subscribed mode) itself. A reader goroutine per backend connection
// forwards messages to the client's reply queue and counts the node's
// confirmations; the client's confirmation reply is released once every
// node concerned confirmed, so a message published after the client saw
// "subscribe" is delivered. On a new map (or a dropped connection) the
// loop moves each channel to its slot's current owner and each pattern
// to every current primary. Messages published during the move may be
// lost (pub/sub is at most once, as in Redis).

// subState is the client-visible subscription state (reader-owned).
type subState struct {
	channels map[string]struct{}
	patterns map[string]struct{}
	ops      chan psMsg
	stop     chan struct{} // closed by the reader when the client ends
	done     chan struct{} // closed when the loop and its readers are gone
}

func (s *subState) count() int { return len(s.channels) + len(s.patterns) }

// A psMsg is one (P)(UN)SUBSCRIBE for the loop.
type psMsg struct {
	cmd   string // "SUBSCRIBE", "UNSUBSCRIBE", "PSUBSCRIBE", "PUNSUBSCRIBE"
	names []string
	op    *psOp
}

// psOp releases a client's confirmation reply once every backend
// confirmation it waits for is in (left starts at 1: the sender's own).
type psOp struct {
	left  atomic.Int32
	r     *req
	reply []byte
}

func (o *psOp) dec(n int) {
	if o != nil && o.left.Add(-int32(n)) == 0 {
		o.r.complete(o.reply)
	}
}

// psConn is one backend subscription connection of a client.
type psConn struct {
	shard int
	addr  string
	nc    net.Conn
	chans map[string]bool // subscribed here (loop-owned)
	pats  map[string]bool

	mu   sync.Mutex
	pend []*psPend // confirmations awaited, in order
	dead bool
}

type psPend struct {
	left int
	op   *psOp
}

func (pc *psConn) isDead() bool {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	return pc.dead
}

// confirm counts one confirmation (all: an error reply, which answers a
// whole command).
func (pc *psConn) confirm(all bool) {
	pc.mu.Lock()
	if len(pc.pend) == 0 {
		pc.mu.Unlock()
		return
	}
	h := pc.pend[0]
	n := 1
	if all {
		n = h.left
	}
	h.left -= n
	if h.left == 0 {
		pc.pend = pc.pend[1:]
	}
	pc.mu.Unlock()
	h.op.dec(n)
}

// psLoop owns a subscribed client's backend connections.
type psLoop struct {
	c         *conn
	p         *Proxy
	s         *subState
	chans     map[string]bool // wanted
	pats      map[string]bool
	conns     map[int]*psConn // shard → connection
	broken    chan struct{}
	needRetry bool
	wg        sync.WaitGroup // connection readers
}

// subs returns the client's subscription state, starting its loop.
func (c *conn) subs() *subState {
	if c.sub != nil {
		return c.sub
	}
	s := &subState{channels: map[string]struct{}{}, patterns: map[string]struct{}{}, ops: make(chan psMsg, 16),
		stop: make(chan struct{}), done: make(chan struct{})}
	c.sub = s
	l := &psLoop{c: c, p: c.p, s: s, chans: map[string]bool{}, pats: map[string]bool{}, conns: map[int]*psConn{}, broken: make(chan struct{}, 1)}
	c.p.wg.Add(1)
	go l.run()
	return s
}

// endSubs stops the loop and waits for it (cleanup).
func (c *conn) endSubs() {
	if c.sub != nil {
		close(c.sub.stop)
		<-c.sub.done
		c.sub = nil
	}
}

// pushFrame appends a (p)(un)subscribe confirmation: an array in
// RESP2, a push in RESP3.
func pushFrame(b []byte, proto3 bool, kind string, name []byte, count int) []byte {
	if proto3 {
		b = append(b, ">3\r\n"...)
	} else {
		b = append(b, "*3\r\n"...)
	}
	b = bulk(b, []byte(kind))
	if name == nil {
		b = append(b, "$-1\r\n"...)
	} else {
		b = bulk(b, name)
	}
	b = append(b, ':')
	b = strconv.AppendInt(b, int64(count), 10)
	return append(b, '\r', '\n')
}

// subscribedOK reports whether a subscribed RESP2 client may run name.
func subscribedOK(name string) bool {
	switch name {
	case "subscribe", "psubscribe", "unsubscribe", "punsubscribe", "ping", "quit":
		return true
	}
	return false
}

// subscribed serves a command of a client in subscribed mode.
func (c *conn) subscribed(spec *command.Spec, args [][]byte) (ok, handled bool) {
	if spec.Name == "ping" {
		if len(args) > 2 {
			return c.local(errLine("ERR wrong number of arguments for 'ping' command")), true
		}
		b := []byte("*2\r\n$4\r\npong\r\n")
		if len(args) == 2 {
			b = bulk(b, args[1])
		} else {
			b = append(b, "$0\r\n\r\n"...)
		}
		return c.local(b), true
	}
	if !subscribedOK(spec.Name) {
		return c.local(errLine("ERR Can't execute '" + spec.Name + "': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context")), true
	}
	return true, false
}

// pubsub serves SUBSCRIBE, PSUBSCRIBE, UNSUBSCRIBE, PUNSUBSCRIBE,
// PUBLISH and PUBSUB.
func (c *conn) pubsub(spec *command.Spec, args [][]byte) bool {
	switch spec.Name {
	case "publish":
		return c.forward(args, cluster.Slot(args[1]), false)
	case "pubsub":
		return c.pubsubInfo(args)
	}
	s := c.subs()
	set, cmd := s.channels, "SUBSCRIBE"
	if spec.Name == "psubscribe" || spec.Name == "punsubscribe" {
		set, cmd = s.patterns, "PSUBSCRIBE"
	}
	var names []string
	var reply []byte
	switch spec.Name {
	case "subscribe", "psubscribe":
		for _, a := range args[1:] {
			set[string(a)] = struct{}{}
			names = append(names, string(a))
			reply = pushFrame(reply, c.proto3, spec.Name, a, s.count())
		}
	default:
		cmd = "UN" + cmd
		if cmd == "UNPSUBSCRIBE" {
			cmd = "PUNSUBSCRIBE"
		}
		if len(args) == 1 {
			for n := range set {
				names = append(names, n)
			}
			sort.Strings(names)
			if len(names) == 0 {
				return c.local(pushFrame(nil, c.proto3, spec.Name, nil, s.count()))
			}
		} else {
			for _, a := range args[1:] {
				names = append(names, string(a))
			}
		}
		for _, n := range names {
			delete(set, n)
			reply = pushFrame(reply, c.proto3, spec.Name, []byte(n), s.count())
		}
	}
	r := &req{}
	if !c.push(r) {
		return false
	}
	op := &psOp{r: r, reply: reply}
	op.left.Store(1)
	select {
	case s.ops <- psMsg{cmd: cmd, names: names, op: op}:
	case <-c.dead:
		return false
	}
	return true
}

// pubsubInfo fans PUBSUB CHANNELS / NUMSUB / NUMPAT out to every shard
// (a channel may linger on its previous owner during a map change).
func (c *conn) pubsubInfo(args [][]byte) bool {
	switch string(bytes.ToLower(args[1])) {
	case "channels":
		if len(args) <= 3 {
			return c.fanAll(args, mergeChannels)
		}
	case "numsub":
		return c.fanAll(args, mergeNumsub)
	case "numpat":
		if len(args) == 2 {
			// Every proxy subscribes a pattern on every shard: each
			// shard counts all patterns.
			return c.fanAll(args, maxInts)
		}
	}
	rt := c.p.table.Load()
	if len(rt.shards) == 0 {
		return c.local(errLine("CLUSTERDOWN The cluster is down"))
	}
	return c.forwardShard(args, rt.shards[0], true)
}

func mergeChannels(replies [][]byte) []byte {
	if e := firstErr(replies); e != nil {
		return e
	}
	seen := map[string]bool{}
	var names []string
	for _, rp := range replies {
		elems, ok := arrayElems(rp, nil)
		if !ok {
			return errLine("ERR shoal proxy: unexpected backend reply")
		}
		for _, e := range elems {
			if !seen[string(e)] {
				seen[string(e)] = true
				names = append(names, string(e))
			}
		}
	}
	sort.Slice(names, func(i, j int) bool { return bulkBody(names[i]) < bulkBody(names[j]) })
	out := strconv.AppendInt([]byte{'*'}, int64(len(names)), 10)
	out = append(out, '\r', '\n')
	for _, n := range names {
		out = append(out, n...)
	}
	return out
}

// bulkBody is the payload of a raw bulk string reply.
func bulkBody(raw string) string {
	i := bytes.IndexByte([]byte(raw), '\n')
	if i < 0 || len(raw) < i+3 {
		return raw
	}
	return raw[i+1 : len(raw)-2]
}

// mergeNumsub sums PUBSUB NUMSUB's counts (a flat array from RESP2
// connections, a map from RESP3 ones; the reply keeps the shape).
func mergeNumsub(replies [][]byte) []byte {
	if e := firstErr(replies); e != nil {
		return e
	}
	isMap := len(replies) > 0 && len(replies[0]) > 0 && replies[0][0] == '%'
	if isMap {
		for i, rp := range replies {
			if len(rp) == 0 || rp[0] != '%' {
				return errLine("ERR shoal proxy: unexpected backend reply")
			}
			n, ok := atoi(rp[1:bytes.IndexByte(rp, '\r')])
			if !ok {
				return errLine("ERR shoal proxy: unexpected backend reply")
			}
			// As a flat array of 2n elements for arrayElems.
			flat := append(strconv.AppendInt([]byte{'*'}, 2*n, 10), rp[bytes.IndexByte(rp, '\r'):]...)
			replies[i] = flat
		}
	}
	var names [][]byte
	var sums []int64
	for ri, rp := range replies {
		elems, ok := arrayElems(rp, nil)
		if !ok || len(elems)%2 != 0 || (ri > 0 && len(elems) != 2*len(names)) {
			return errLine("ERR shoal proxy: unexpected backend reply")
		}
		for i := 0; i < len(elems); i += 2 {
			v, ok := replyInt(elems[i+1])
			if !ok {
				return errLine("ERR shoal proxy: unexpected backend reply")
			}
			if ri == 0 {
				names = append(names, elems[i])
				sums = append(sums, v)
			} else {
				sums[i/2] += v
			}
		}
	}
	out := strconv.AppendInt([]byte{'*'}, int64(2*len(names)), 10)
	if isMap {
		out = strconv.AppendInt(out[:0], int64(len(names)), 10)
		out = append([]byte{'%'}, out...)
	}
	out = append(out, '\r', '\n')
	for i, n := range names {
		out = append(out, n...)
		out = append(out, ':')
		out = strconv.AppendInt(out, sums[i], 10)
		out = append(out, '\r', '\n')
	}
	return out
}

func maxInts(replies [][]byte) []byte {
	if e := firstErr(replies); e != nil {
		return e
	}
	var m int64
	for _, rp := range replies {
		v, ok := replyInt(rp)
		if !ok {
			return errLine("ERR shoal proxy: unexpected backend reply")
		}
		m = max(m, v)
	}
	return append(strconv.AppendInt([]byte{':'}, m, 10), '\r', '\n')
}

// deliver queues a message for the client; false when it is gone.
func (c *conn) deliver(b []byte, stop chan struct{}) bool {
	r := &req{}
	if !c.enqueue(r, stop, false) {
		return false
	}
	r.complete(b)
	return true
}

func (l *psLoop) run() {
	defer l.p.wg.Done()
	defer close(l.s.done)
	defer func() {
		for _, pc := range l.conns {
			pc.nc.Close()
		}
		l.wg.Wait()
	}()
	changed := *l.p.changed.Load()
	var retry <-chan time.Time
	for {
		select {
		case m := <-l.s.ops:
			l.apply(m)
		case <-changed:
			changed = *l.p.changed.Load()
			l.reconcile()
		case <-l.broken:
			l.reconcile()
		case <-retry:
			retry = nil
			l.reconcile()
		case <-l.s.stop:
			return
		}
		if l.needRetry && retry == nil {
			retry = time.After(100 * time.Millisecond)
		}
	}
}

// conn returns the live connection to shard's current primary, dialing
// it if needed; nil (and a retry later) when there is none.
func (l *psLoop) conn(rt *route, shard int) *psConn {
	addr := rt.addr(shard, false)
	pc := l.conns[shard]
	if pc != nil && pc.addr == addr && !pc.isDead() {
		return pc
	}
	if pc != nil {
		pc.nc.Close()
		delete(l.conns, shard)
	}
	if addr == "" {
		l.needRetry = true
		return nil
	}
	nc, err := l.p.dialBackend(addr, false)
	if err != nil {
		l.p.backendError(addr)
		l.needRetry = true
		return nil
	}
	pc = &psConn{shard: shard, addr: addr, nc: nc, chans: map[string]bool{}, pats: map[string]bool{}}
	l.conns[shard] = pc
	l.wg.Add(1)
	go l.read(pc)
	return pc
}

// send writes cmd with names on pc; op waits for their confirmations.
func (l *psLoop) send(pc *psConn, cmd string, names []string, op *psOp) {
	if len(names) == 0 {
		return
	}
	if op != nil {
		op.left.Add(int32(len(names)))
	}
	pc.mu.Lock()
	if pc.dead {
		pc.mu.Unlock()
		op.dec(len(names))
		return
	}
	pc.pend = append(pc.pend, &psPend{left: len(names), op: op})
	pc.mu.Unlock()
	args := make([][]byte, 0, 1+len(names))
	args = append(args, []byte(cmd))
	for _, n := range names {
		args = append(args, []byte(n))
	}
	// A node that stops reading must not stall the loop (and the
	// client's exit, which waits for it).
	pc.nc.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := pc.nc.Write(resp.AppendCommandBytes(nil, args...)); err != nil {
		pc.nc.Close() // the reader settles the pending confirmations
	}
}

// batch groups names per connection, in a stable order.
type batch struct {
	order []*psConn
	names map[*psConn][]string
}

func (b *batch) add(pc *psConn, n string) {
	if b.names == nil {
		b.names = map[*psConn][]string{}
	}
	if _, ok := b.names[pc]; !ok {
		b.order = append(b.order, pc)
	}
	b.names[pc] = append(b.names[pc], n)
}

func (l *psLoop) flush(b *batch, cmd string, op *psOp) {
	for _, pc := range b.order {
		l.send(pc, cmd, b.names[pc], op)
	}
}

func (l *psLoop) apply(m psMsg) {
	rt := l.p.table.Load()
	var b batch
	switch m.cmd {
	case "SUBSCRIBE":
		for _, n := range m.names {
			l.chans[n] = true
			if pc := l.conn(rt, int(rt.slots[cluster.SlotString(n)])); pc != nil && !pc.chans[n] {
				pc.chans[n] = true
				b.add(pc, n)
			}
		}
	case "PSUBSCRIBE":
		for _, n := range m.names {
			l.pats[n] = true
			for _, sh := range rt.shards {
				if pc := l.conn(rt, sh); pc != nil && !pc.pats[n] {
					pc.pats[n] = true
					b.add(pc, n)
				}
			}
		}
	case "UNSUBSCRIBE", "PUNSUBSCRIBE":
		for _, n := range m.names {
			for _, sh := range sortedShards(l.conns) {
				pc := l.conns[sh]
				set := pc.chans
				if m.cmd == "PUNSUBSCRIBE" {
					set = pc.pats
				}
				if set[n] {
					delete(set, n)
					b.add(pc, n)
				}
			}
			if m.cmd == "UNSUBSCRIBE" {
				delete(l.chans, n)
			} else {
				delete(l.pats, n)
			}
		}
	}
	l.flush(&b, m.cmd, m.op)
	m.op.dec(1)
}

func sortedShards(m map[int]*psConn) []int {
	ids := make([]int, 0, len(m))
	for id := range m {
		ids = append(ids, id)
	}
	sort.Ints(ids)
	return ids
}

// reconcile moves the subscriptions to the current map's owners: a
// connection to a node that is no longer its shard's primary (or that
// dropped) is closed and its names subscribed again on the new primary;
// a channel whose slot moved is unsubscribed from the old shard and
// subscribed on the new one; patterns go to every shard.
func (l *psLoop) reconcile() {
	l.needRetry = false
	rt := l.p.table.Load()
	for sh, pc := range l.conns {
		if pc.isDead() || rt.addr(sh, false) != pc.addr {
			pc.nc.Close()
			delete(l.conns, sh)
		}
	}
	var sub, unsub, psub batch
	for n := range l.chans {
		want := int(rt.slots[cluster.SlotString(n)])
		for sh, pc := range l.conns {
			if sh != want && pc.chans[n] {
				delete(pc.chans, n)
				unsub.add(pc, n)
			}
		}
		if pc := l.conn(rt, want); pc != nil && !pc.chans[n] {
			pc.chans[n] = true
			sub.add(pc, n)
		}
	}
	for n := range l.pats {
		for _, sh := range rt.shards {
			if pc := l.conn(rt, sh); pc != nil && !pc.pats[n] {
				pc.pats[n] = true
				psub.add(pc, n)
			}
		}
	}
	l.flush(&unsub, "UNSUBSCRIBE", nil)
	l.flush(&sub, "SUBSCRIBE", nil)
	l.flush(&psub, "PSUBSCRIBE", nil)
}

// read forwards pc's messages to the client and counts confirmations.
func (l *psLoop) read(pc *psConn) {
	defer l.wg.Done()
	r := bufio.NewReaderSize(pc.nc, 16<<10)
	for {
		reply, err := readRaw(r, nil)
		if err != nil {
			break
		}
		if isErr(reply) {
			pc.confirm(true)
			continue
		}
		elems, ok := arrayElems(reply, nil)
		if !ok || len(elems) < 3 {
			continue
		}
		switch bulkBody(string(elems[0])) {
		case "message", "pmessage":
			if l.c.push3.Load() {
				reply[0] = '>' // the node's RESP2 array, as a RESP3 push
			}
			if !l.c.deliver(reply, l.s.stop) {
				pc.nc.Close()
			}
		case "subscribe", "unsubscribe", "psubscribe", "punsubscribe":
			pc.confirm(false)
		}
	}
	pc.mu.Lock()
	pc.dead = true
	pend := pc.pend
	pc.pend = nil
	pc.mu.Unlock()
	pc.nc.Close()
	for _, pd := range pend {
		pd.op.dec(pd.left)
	}
	select {
	case l.broken <- struct{}{}:
	default:
	}
}
