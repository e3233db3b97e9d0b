package server

import (
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/panjf2000/gnet/v2"

	"shoal/internal/acl"
	"shoal/internal/resp"
)

// Client is one connection's state. Fields without a comment are owned by
// the connection's event loop.
type Client struct {
	id       uint64
	conn     gnet.Conn
	srv      *Server
	shard    *statShard // the owning loop's counters
	ctx      Ctx        // reused by call for the outermost command
	ctxDepth int
	lastNano int64 // monotonic time the previous command ended (or the batch began)
	addr     string
	laddr    string
	created  int64 // unix ms

	lastCmd     atomic.Int64 // unix ms of the last command (read by cron)
	name        atomic.Pointer[string]
	libName     atomic.Pointer[string]
	libVer      atomic.Pointer[string]
	lastCmdName atomic.Pointer[string]

	proto           int
	protoShared     atomic.Int32 // proto, for other goroutines (publishers, pushers)
	authed          bool
	user            atomic.Pointer[acl.User] // the authenticated user (the default user until AUTH)
	loadGate        bool                     // connected while the snapshot was loading: check before each command (persist.go)
	w               resp.Writer
	args            [][]byte
	need            int // bytes the inbound buffer must hold before re-parsing
	closeAfterReply bool
	noEvict         bool
	noTouch         bool    // CLIENT NO-TOUCH: reads leave LRU/LFU metadata alone
	readonly        bool    // READONLY (cluster mode): a replica serves this connection's reads of its shard
	asking          bool    // ASKING (cluster mode): set for the next command only
	mc              *mcConn // memcached protocol state; nil for RESP clients

	// MULTI state.
	inMulti      bool
	multiErr     bool
	queue        []queued
	watched      []watchedKey
	watchDirty   atomic.Bool  // set by writers of a watched key (any loop)
	readyKeys    [][]byte     // keys EXEC made ready for blocked clients
	inbuf        []byte       // own input buffer while gathering a large request (nil otherwise)
	inbufDonated bool         // a handler took ownership of an argument inside inbuf
	multiLen     atomic.Int32 // queued commands + 1 while in MULTI, 0 outside (for CLIENT LIST)

	// Blocking state.
	blocked       *waiter
	blockedFlag   atomic.Bool // blocked != nil, for the cron
	retryDeadline time.Time   // set while a retried blocking command runs

	// Pub/sub subscriptions (owned by the loop; the hub has its own copy).
	subs  map[string]struct{}
	psubs map[string]struct{}
	nsubs atomic.Int32 // len(subs)+len(psubs), read by cron and CLIENT LIST

	// outbox holds replies produced by other goroutines (pub/sub messages,
	// a served or timed-out blocked command) until the loop flushes them.
	outMu      sync.Mutex
	outbox     []byte
	outPending atomic.Bool
	outBytes   atomic.Int64 // len(outbox) + what gnet still buffers
	softSince  atomic.Int64 // unix ms since the output went over the soft limit; 0 = under
	killed     atomic.Bool

	// The log (aof.go): effects of the running command or transaction,
	// the last record this client's commands produced, one produced for
	// it by another client (a served blocking pop), and replies held
	// until those records are persisted.
	sink       effSink
	walLSN     uint64
	extLSN     atomic.Uint64
	held       []byte
	inDurWait  atomic.Bool // registered in Server.durWait
	inLoopHeld bool        // in its loop's loopHeld list
	lastWrite  uint64      // LSN of the client's last write (WAIT)
	syncFailed atomic.Bool // its held replies waited for sync-replicas past sync-timeout

	// REPLCONF before PSYNC (repl_primary.go).
	replPort int
	// replProto: the protocol version a replica announced (REPLCONF
	// version); 0 for builds from before versions were announced.
	replProto int
	replIP    string
}

type queued struct {
	args [][]byte
	spec *cmdDef
}

func (s *Server) OnOpen(c gnet.Conn) ([]byte, gnet.Action) {
	if s.closing.Load() {
		return nil, gnet.Close
	}
	lim := s.limits.Load()
	isMC := s.isMemcachedConn(c)
	if s.nclients.Load() >= int64(lim.maxClients) {
		s.statRejects.Add(1)
		if isMC {
			return []byte("SERVER_ERROR Too many open connections\r\n"), gnet.Close
		}
		return []byte("-ERR max number of clients reached\r\n"), gnet.Close
	}
	defUser := s.acl.Default()
	defPerms := defUser.Perms()
	remote := c.RemoteAddr()
	for _, f := range [...]*tlsFront{s.tls.Load(), s.mcTLS.Load()} {
		if p := f.peer(remote); p != nil {
			remote = p // a TLS client through the relay (tls.go)
			break
		}
	}
	if lim.protectedMode && defPerms.NoPass && !isLoopback(remote) {
		if isMC {
			return []byte("SERVER_ERROR protected mode: only loopback clients are accepted while no password is set\r\n"), gnet.Close
		}
		return []byte("-DENIED Running in protected mode because protected mode is enabled and no password is set for the default user. " +
			"In this mode connections are only accepted from the loopback interface. Set a password with requirepass, " +
			"bind to specific addresses, or disable protected mode with CONFIG SET protected-mode no.\r\n"), gnet.Close
	}
	now := time.Now().UnixMilli()
	cl := &Client{
		id: s.nextID.Add(1), conn: c, srv: s, created: now,
		proto: 2, authed: defPerms.NoPass && defPerms.Enabled, loadGate: s.persist.loading.Load(),
		shard: s.shardFor(c.EventLoop()),
	}
	cl.user.Store(defUser)
	if remote != nil {
		cl.addr = remote.String()
	}
	if a := c.LocalAddr(); a != nil {
		cl.laddr = a.String()
	}
	if isMC {
		cl.mc = &mcConn{}
		s.mcConns.Add(1)
	}
	cl.w.Proto = 2
	cl.protoShared.Store(2)
	cl.lastCmd.Store(now)
	c.SetContext(cl)
	s.clientsMu.Lock()
	s.clients[cl.id] = cl
	s.clientsMu.Unlock()
	s.nclients.Add(1)
	s.statConns.Add(1)
	return nil, gnet.None
}

func isLoopback(a net.Addr) bool {
	ta, ok := a.(*net.TCPAddr)
	return !ok || ta.IP.IsLoopback()
}

func (s *Server) OnClose(c gnet.Conn, _ error) gnet.Action {
	cl, _ := c.Context().(*Client)
	if cl == nil {
		return gnet.None
	}
	s.clientsMu.Lock()
	delete(s.clients, cl.id)
	s.clientsMu.Unlock()
	s.nclients.Add(-1)
	if cl.mc != nil {
		s.mcConns.Add(-1)
	}
	cl.killed.Store(true)
	if cl.shard.flushArmed && cl.shard.flushArmer == cl {
		s.loopFlush(cl.shard) // its queued wake will not run
	}
	if cl.blocked != nil {
		s.cancelWait(cl.blocked)
		cl.blocked = nil
	}
	s.unwatchAll(cl)
	s.hub.removeClient(cl)
	return gnet.None
}

// deliver hands bytes produced outside the client's loop to its outbox and
// wakes the loop. It enforces the output buffer limits of the client's
// class; a client over its hard limit is closed.
func (cl *Client) deliver(b []byte) {
	if cl.killed.Load() {
		return
	}
	cl.outMu.Lock()
	cl.outbox = append(cl.outbox, b...)
	n := cl.outBytes.Add(int64(len(b)))
	cl.outMu.Unlock()
	if cl.overOutputLimit(n) {
		cl.kill()
		return
	}
	if cl.outPending.CompareAndSwap(false, true) {
		_ = cl.conn.Wake(nil)
	}
}

func (cl *Client) kill() {
	if cl.killed.CompareAndSwap(false, true) {
		_ = cl.conn.Close()
	}
}

// overOutputLimit applies client-output-buffer-limit to n pending bytes.
func (cl *Client) overOutputLimit(n int64) bool {
	lim := cl.srv.limits.Load()
	l := lim.outNormal
	if cl.nsubs.Load() > 0 {
		l = lim.outPubsub
	}
	if l.Hard > 0 && n > l.Hard {
		return true
	}
	if l.Soft > 0 {
		if n > l.Soft {
			now := time.Now().UnixMilli()
			since := cl.softSince.Load()
			if since == 0 {
				cl.softSince.CompareAndSwap(0, now)
			} else if now-since > l.SoftSeconds*1000 {
				return true
			}
		} else {
			cl.softSince.Store(0)
		}
	}
	return false
}

// drainOutbox moves the outbox into the reply buffer (loop only).
func (cl *Client) drainOutbox() {
	if !cl.outPending.Load() {
		return
	}
	cl.outMu.Lock()
	cl.outPending.Store(false)
	cl.w.B = append(cl.w.B, cl.outbox...)
	if cap(cl.outbox) > 64<<10 {
		cl.outbox = nil
	} else {
		cl.outbox = cl.outbox[:0]
	}
	cl.outMu.Unlock()
}

// OnTraffic implements gnet.EventHandler: it runs on the connection's loop
// when bytes arrived or the connection was woken.
//
// Fast path: parse every complete request in the inbound buffer, execute
// each, append all replies to one buffer and write it once.
func (s *Server) OnTraffic(c gnet.Conn) gnet.Action {
	cl := c.Context().(*Client)
	if cl.shard.flushArmed && cl.shard.flushArmer == cl {
		s.loopFlush(cl.shard)
	}
	if cl.mc != nil {
		return s.mcTraffic(c, cl)
	}
	if s.closing.Load() {
		return s.drainTraffic(c, cl)
	}
	if cl.blocked != nil {
		// delivered is set after the reply is in the outbox, so drain
		// after reading it to keep replies in order.
		ready := cl.blocked.delivered.Load()
		cl.drainOutbox()
		if !ready {
			return s.finishTraffic(c, cl)
		}
		s.finishWait(cl)
		if cl.blocked != nil {
			return s.finishTraffic(c, cl)
		}
	} else {
		cl.drainOutbox()
	}
	lim := s.limits.Load()
	if len(cl.held) > maxHeld {
		// Replies are held for the log (a failing disk): leave the input
		// where it is until they go out.
		if int64(c.InboundBuffered()) > lim.queryBuf {
			s.log.Warn("closing client that exceeded client-query-buffer-limit", "addr", cl.addr, "id", cl.id)
			cl.closeAfterReply = true
		}
		act := s.finishTraffic(c, cl)
		if act == gnet.None && len(cl.held) == 0 && c.InboundBuffered() > 0 {
			_ = c.Wake(nil) // released: process the input that waited
		}
		return act
	}
	if cl.inbuf != nil {
		// Large-request mode: a request bigger than bigRequest is gathered
		// in the client's own buffer, grown geometrically but never past
		// what was received or announced, instead of gnet's ring buffer
		// (which regrows by a quarter and re-copies on every read).
		if c.InboundBuffered() > 0 {
			b, _ := c.Next(-1)
			cl.inbuf = growAppend(cl.inbuf, b, cl.need)
		}
		if len(cl.inbuf) >= cl.need {
			consumed := s.processInput(cl, cl.inbuf, lim)
			switch rest := len(cl.inbuf) - consumed; {
			case rest == 0:
				cl.inbuf = nil
			case cl.inbufDonated:
				// A handler kept an argument that lives in inbuf.
				cl.inbuf = append([]byte(nil), cl.inbuf[consumed:]...)
			default:
				cl.inbuf = append(cl.inbuf[:0], cl.inbuf[consumed:]...)
			}
			cl.inbufDonated = false
		}
		if int64(cl.need) > lim.queryBuf || int64(len(cl.inbuf)) > lim.queryBuf {
			s.log.Warn("closing client that exceeded client-query-buffer-limit", "addr", cl.addr, "id", cl.id)
			cl.closeAfterReply = true
		}
		return s.finishTraffic(c, cl)
	}
	inb := c.InboundBuffered()
	if inb > 0 && inb >= cl.need {
		buf, _ := c.Peek(-1)
		consumed := s.processInput(cl, buf, lim)
		if consumed > 0 {
			_, _ = c.Discard(consumed)
		}
		if cl.need > 0 && int64(cl.need) > lim.queryBuf || int64(c.InboundBuffered()) > lim.queryBuf {
			s.log.Warn("closing client that exceeded client-query-buffer-limit", "addr", cl.addr, "id", cl.id)
			cl.closeAfterReply = true
		} else if cl.need > bigRequest && !cl.closeAfterReply {
			b, _ := c.Next(-1)
			cl.inbuf = growAppend(nil, b, cl.need)
		}
	}
	return s.finishTraffic(c, cl)
}

// bigRequest is the size from which an incomplete request is gathered in
// the client's own buffer (see OnTraffic).
const bigRequest = 1 << 20

// growAppend appends b to buf, growing capacity geometrically but not
// beyond need when need is known: memory follows the bytes received (at
// most 8x them), so a client announcing a huge bulk and sending little
// holds little.
func growAppend(buf, b []byte, need int) []byte {
	if len(buf)+len(b) <= cap(buf) {
		return append(buf, b...)
	}
	have := len(buf) + len(b)
	n := max(2*cap(buf), have, 64<<10)
	if need > have && (n > need || have >= need/8) {
		// Once an eighth of the announced request has arrived, take the
		// whole buffer at once: every regrowth of a large buffer costs a
		// copy and, through heap growth, a GC cycle.
		n = need
	}
	nb := make([]byte, len(buf), n)
	copy(nb, buf)
	return append(nb, b...)
}

// processInput parses and executes every complete request in buf and
// returns the bytes consumed. It sets cl.need when a request is
// incomplete. Arguments alias buf only during their command.
//
// Requests are parsed up to prefetchBatch at a time and the keyspace is
// asked to prefetch their first keys (engine.DB.Prefetch) before the
// first of them runs: at pipeline depth the lookups' memory accesses then
// overlap instead of each command waiting for its own. A request parsed
// ahead but not run (a command blocked the client, or an error closes
// it) is not consumed and is parsed again later.
func (s *Server) processInput(cl *Client, buf []byte, lim *runtimeLimits) int {
	cl.lastCmd.Store(s.db.Tick())
	cl.lastNano = nanotime()
	consumed := 0
	var ends [prefetchBatch]int  // end of each request's args in flat
	var sizes [prefetchBatch]int // bytes of each request
	var keys [prefetchBatch][]byte
	flat := cl.args[:0]
	for consumed < len(buf) && !cl.closeAfterReply {
		flat = flat[:0]
		nreq, nkeys, off, need := 0, 0, consumed, 0
		var perr error
		for nreq < prefetchBatch && off < len(buf) {
			args, n, nd, err := resp.Parse(buf[off:], flat[len(flat):], lim.proto)
			if err != nil {
				perr = err
				break
			}
			if n == 0 {
				// need counts from buf[off:], where the unconsumed input
				// will start once the batch has run.
				need = nd
				break
			}
			if len(args) > 1 {
				keys[nkeys] = args[1]
				nkeys++
			}
			if len(args) <= cap(flat)-len(flat) {
				flat = flat[:len(flat)+len(args)] // parsed in place
			} else {
				flat = append(flat, args...)
			}
			ends[nreq], sizes[nreq] = len(flat), n
			nreq++
			off += n
		}
		if nreq == 0 {
			cl.need = need
			if perr != nil {
				cl.w.Error("ERR " + perr.Error())
				cl.closeAfterReply = true
				consumed = len(buf)
			}
			break
		}
		if nkeys > 1 {
			s.db.Prefetch(keys[:nkeys])
		}
		start := 0
		for i := 0; i < nreq; i++ {
			args := flat[start:ends[i]:ends[i]]
			start = ends[i]
			cl.need = 0
			consumed += sizes[i]
			if len(args) > 0 {
				s.dispatch(cl, args)
			}
			if cl.blocked != nil || cl.closeAfterReply {
				break
			}
		}
		if cl.blocked != nil || perr == nil && nreq < prefetchBatch {
			if consumed == off {
				cl.need = need // the rest of buf is an incomplete request
			}
			break
		}
	}
	inc(&cl.shard.netIn, int64(consumed))
	clear(flat)
	clear(keys[:])
	cl.args = flat[:0]
	return consumed
}

// prefetchBatch is how many requests processInput parses ahead.
const prefetchBatch = 16

func (s *Server) finishTraffic(c gnet.Conn, cl *Client) gnet.Action {
	if (cl.walLSN > 0 || len(cl.held) > 0 || cl.extLSN.Load() > 0) && s.holdReplies(cl) {
		return gnet.None // written when the log has the records (logProgress wakes the loop)
	}
	if len(cl.w.B) > 0 {
		inc(&cl.shard.netOut, int64(len(cl.w.B)))
		_, _ = c.Write(cl.w.B)
		if cap(cl.w.B) > 1<<20 {
			cl.w.B = nil
		} else {
			cl.w.B = cl.w.B[:0]
		}
	}
	if cl.closeAfterReply || cl.killed.Load() {
		return gnet.Close
	}
	ob := int64(c.OutboundBuffered())
	if ob == 0 && cl.outBytes.Load() == 0 && !cl.outPending.Load() {
		// Fast path: everything was written and nothing waits in the
		// outbox (a concurrent deliver wakes the loop again).
		return gnet.None
	}
	cl.outMu.Lock()
	n := ob + int64(len(cl.outbox))
	cl.outBytes.Store(n)
	cl.outMu.Unlock()
	if n > 0 && cl.overOutputLimit(n) {
		s.log.Warn("closing client that exceeded client-output-buffer-limit", "addr", cl.addr, "id", cl.id, "bytes", n)
		return gnet.Close
	}
	return gnet.None
}

// clientsCron closes idle clients (timeout) and clients stuck over the
// output soft limit.
func (s *Server) clientsCron() {
	lim := s.limits.Load()
	now := time.Now().UnixMilli()
	s.clientsMu.Lock()
	var victims []*Client
	for _, cl := range s.clients {
		if lim.timeout > 0 && now-cl.lastCmd.Load() > lim.timeout && cl.nsubs.Load() == 0 && !cl.isBlocked() {
			victims = append(victims, cl)
			continue
		}
		if n := cl.outBytes.Load(); n > 0 && cl.overOutputLimit(n) {
			victims = append(victims, cl)
		}
	}
	s.clientsMu.Unlock()
	for _, cl := range victims {
		cl.kill()
	}
}

func (cl *Client) isBlocked() bool { return cl.blockedFlag.Load() }

// block makes w the client's waiter: it is blocked from now on (for its
// loop and, through blockedFlag, for the cron).
func (cl *Client) block(w *waiter) {
	cl.blocked = w
	cl.blockedFlag.Store(true)
}
