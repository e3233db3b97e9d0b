package server

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"shoal/internal/config"
	"shoal/internal/persist"
	"shoal/internal/repl"
	"shoal/internal/resp"
)

// The primary's side of replication: PSYNC hands the connection from the
// event loop to a sender goroutine (the socket is duplicated out of gnet,
// which then closes its own descriptor), so a slow replica or a full copy
// never occupies a loop.
//
// Wire protocol after PSYNC <id> <from> (from = the first LSN wanted, as
// Redis's offset+1; "? -1" asks for a full copy):
//
//	+CONTINUE <id>\r\n records...
//	+FULLRESYNC <id> <base>\r\n frame* end-frame records...
//
// A frame is a uint32 (little-endian) length and that many bytes of the
// snapshot; a zero length ends it. Records are the log's (persist
// AppendRecord: length, CRC-32C, LSN, payload); LSN 0 is a control
// record: an empty payload is a keepalive, ctlEagerAcks asks the replica
// to acknowledge every batch it applies (sync-replicas, WAIT) and at once,
// ctlLazyAcks every 100 ms. The replica sends REPLCONF ACK <lsn> (RESP).

const (
	ctlEagerAcks = 1
	ctlLazyAcks  = 2
)

type replica struct {
	s      *Server
	conn   net.Conn
	ip     string
	port   int
	cur    *repl.Cursor
	curA   atomic.Pointer[repl.Cursor] // cur, for the cron's output-limit check
	online atomic.Bool
	state  atomic.Pointer[string]
	ack    atomic.Uint64
	ackMs  atomic.Int64
	since  int64 // unix ms connected
	soft   atomic.Int64

	// Sending: the sender goroutine holds sendMu while it writes (and
	// leaves nothing buffered when it lets go); an event loop that finds
	// it free writes the new records itself (sendInline), without a
	// blocking write: what the socket does not take waits in pend.
	sendMu sync.Mutex
	pend   []byte
	raw    syscall.RawConn
	done   chan struct{}
	once   sync.Once
}

var (
	stWaitBgsave = "wait_bgsave"
	stSendBulk   = "send_bulk"
	stOnline     = "online"
)

func cmdPsync(c *Ctx) {
	s, cl := c.srv, c.cl
	if cl.inMulti || c.inExec {
		c.w.Error("ERR Replica can't interact with the keyspace")
		return
	}
	id, from := "?", int64(-1)
	if eq(c.args[0], "psync") {
		if len(c.args) != 3 {
			c.w.Error("ERR wrong number of arguments for 'psync' command")
			return
		}
		id = string(c.args[1])
		n, err := strconv.ParseInt(string(c.args[2]), 10, 64)
		if err != nil || n < -1 || (id != "?" && len(id) != 40) {
			c.w.Error("ERR PSYNC expects a 40-character replication id (or ?) and an offset")
			return
		}
		from = n
	} else if len(c.args) != 1 {
		c.w.Error("ERR wrong number of arguments for 'sync' command")
		return
	}
	// A replica that never said REPLCONF version speaks protocol 0.
	if err := s.checkReplicaProtocol(cl.replProto); err != nil {
		c.w.Error(err.Error())
		return
	}
	nc, pending, ok := c.takeOver("replica")
	if !ok {
		return
	}
	ip := cl.replIP
	if ip == "" {
		ip, _, _ = net.SplitHostPort(cl.addr)
	}
	r := &replica{s: s, conn: nc, ip: ip, port: cl.replPort, done: make(chan struct{}), since: time.Now().UnixMilli()}
	r.state.Store(&stWaitBgsave)
	s.repl.mu.Lock()
	if s.repl.replicas == nil {
		s.repl.replicas = make(map[*replica]struct{})
	}
	s.repl.replicas[r] = struct{}{}
	s.repl.wg.Add(1)
	s.repl.mu.Unlock()
	go func() {
		defer s.repl.wg.Done()
		r.serve(pending, id, from)
	}()
}

func (r *replica) serve(pending []byte, id string, from int64) {
	s := r.s
	defer r.close("")
	bl := s.ensureBacklog()
	myID, id2, off2 := s.replIDs()
	var cur *repl.Cursor
	if id != "?" && from > 0 && (id == myID || id2 != "" && id == id2 && uint64(from) <= off2) && bl.Has(uint64(from)) {
		cur, _ = bl.NewCursor(uint64(from))
	}
	bw := bufio.NewWriterSize(r.conn, 64<<10)
	_, _ = bw.Write(pending)
	timeout := s.replTimeout()
	incremental := cur != nil
	if incremental {
		s.repl.syncPartialOK.Add(1)
		s.log.Info("replica resyncs incrementally", "replica", r.name(), "from", from)
		fmt.Fprintf(bw, "+CONTINUE %s\r\n", myID)
	} else {
		if id != "?" {
			s.repl.syncPartialErr.Add(1)
		}
		s.repl.syncFull.Add(1)
		r.state.Store(&stSendBulk)
		base := bl.Last()
		var err error
		if cur, err = bl.NewCursor(base + 1); err != nil {
			s.log.Warn("full copy to replica failed", "replica", r.name(), "err", err)
			return
		}
		r.curA.Store(cur)
		s.log.Info("replica takes a full copy", "replica", r.name(), "asked_id", id, "asked_from", from, "base", base)
		fmt.Fprintf(bw, "+FULLRESYNC %s %d\r\n", myID, base)
		cw := &chunkWriter{w: bw, conn: r.conn, timeout: timeout, check: func() error { return r.checkLag(cur) }}
		st, err := persist.Dump(s.db, cw, persist.DumpOptions{Base: base, All: true,
			Mark: func(i int) uint64 { return s.db.Slot(i).LSN }})
		if err == nil {
			err = cw.end()
		}
		if err != nil {
			cur.Close()
			s.log.Warn("full copy to replica failed", "replica", r.name(), "err", err)
			return
		}
		s.log.Info("full copy sent to replica", "replica", r.name(), "keys", st.Keys, "bytes", st.Bytes,
			"seconds", st.Duration.Seconds())
	}
	r.cur = cur
	r.curA.Store(cur)
	defer cur.Close()
	if sc, ok := r.conn.(syscall.Conn); ok {
		r.raw, _ = sc.SyscallConn()
	}
	_ = r.conn.SetWriteDeadline(time.Now().Add(timeout))
	if err := bw.Flush(); err != nil {
		return
	}
	r.ackMs.Store(time.Now().UnixMilli())
	if incremental {
		r.ack.Store(uint64(from) - 1) // what it told us it has
	} // a full copy counts once the replica acks what it loaded
	r.state.Store(&stOnline)
	r.online.Store(true)
	s.updateQuorum()
	s.refreshReplicaSnap()
	go r.readAcks()
	r.stream(bw)
}

// refreshReplicaSnap republishes the online replicas for the loops.
func (s *Server) refreshReplicaSnap() {
	s.repl.mu.Lock()
	var list []*replica
	for x := range s.repl.replicas {
		if x.online.Load() {
			list = append(list, x)
		}
	}
	s.repl.mu.Unlock()
	s.repl.snap.Store(&list)
}

// sendInline runs on an event loop after its iteration appended records:
// each online replica whose sender is idle gets them written at once
// (one non-blocking write); the others' senders are woken.
func (s *Server) sendInline(bl *repl.Backlog) {
	p := s.repl.snap.Load()
	if p == nil || len(*p) == 0 {
		bl.Notify()
		return
	}
	// An async stream is sent in batches by the senders (repl-batch-delay);
	// one a client waits for goes out now.
	inline := s.repl.batchDelay.Load() == 0 || s.eagerAcks()
	upTo := bl.Last()
	for _, r := range *p {
		if !inline || !r.tryInlineSend() {
			r.cur.Wake()
		}
	}
	s.moves.wakeCursors() // slot moves' streams: not woken by Notify now
	bl.MarkNotified(upTo)
}

// tryInlineSend writes the replica's new records without blocking and
// reports whether nothing is left for its sender.
func (r *replica) tryInlineSend() bool {
	if !r.online.Load() || r.raw == nil || !r.sendMu.TryLock() {
		return false
	}
	defer r.sendMu.Unlock()
	if len(r.pend) > 0 {
		return false
	}
	for i := 0; i < 4; i++ {
		data, err := r.cur.Next(256 << 10)
		if err != nil {
			return false // the sender reports it
		}
		if data == nil {
			return true
		}
		n := 0
		werr := r.raw.Write(func(fd uintptr) bool {
			for n < len(data) {
				m, err := syscall.Write(int(fd), data[n:])
				if m <= 0 || err != nil {
					break
				}
				n += m
			}
			return true
		})
		if n < len(data) || werr != nil {
			r.pend = append(r.pend[:0], data[n:]...)
			return false
		}
	}
	return false // a lot at once: the sender takes the rest
}

func (s *Server) replTimeout() time.Duration {
	var t int
	s.cfg.Read(func(c *config.Config) { t = c.ReplTimeout })
	return time.Duration(t) * time.Second
}

func (r *replica) name() string { return net.JoinHostPort(r.ip, strconv.Itoa(r.port)) }

// stream sends the backlog from the replica's position on, batching what
// accumulated while the previous write ran.
func (r *replica) stream(bw *bufio.Writer) {
	s := r.s
	var period int
	s.cfg.Read(func(c *config.Config) { period = c.ReplPingPeriod })
	ping := time.NewTicker(time.Duration(period) * time.Second)
	defer ping.Stop()
	keepalive := persist.AppendRecord(nil, 0, 0, nil)
	eagerOn := persist.AppendRecord(nil, 0, 0, []byte{ctlEagerAcks})
	eagerOff := persist.AppendRecord(nil, 0, 0, []byte{ctlLazyAcks})
	eager := false
	timeout := s.replTimeout()
	// send writes what is due: the ack mode if it changed, what an event
	// loop could not write, then the backlog from the cursor on. It
	// leaves nothing in bw.
	send := func(extra []byte) bool {
		r.sendMu.Lock()
		defer r.sendMu.Unlock()
		_ = r.conn.SetWriteDeadline(time.Now().Add(timeout))
		if len(r.pend) > 0 {
			// The rest of a record an event loop began: first.
			if _, err := bw.Write(r.pend); err != nil {
				return false
			}
			r.pend = r.pend[:0]
		}
		if want := s.eagerAcks(); want != eager {
			eager = want
			ctl := eagerOff
			if want {
				ctl = eagerOn
			}
			if _, err := bw.Write(ctl); err != nil {
				return false
			}
		}
		if extra != nil {
			if _, err := bw.Write(extra); err != nil {
				return false
			}
		}
		for {
			data, err := r.cur.Next(256 << 10)
			if err != nil {
				s.log.Warn("replica disconnected", "replica", r.name(), "err", err)
				return false
			}
			if data == nil {
				break
			}
			_ = r.conn.SetWriteDeadline(time.Now().Add(timeout))
			if _, err := bw.Write(data); err != nil {
				return false
			}
			if err := r.checkLag(r.cur); err != nil {
				s.log.Warn("replica disconnected", "replica", r.name(), "err", err)
				return false
			}
		}
		return bw.Flush() == nil
	}
	var lastSend time.Time
	for {
		if !send(nil) {
			return
		}
		lastSend = time.Now()
		select {
		case <-r.cur.Wait():
		case <-ping.C:
			if !send(keepalive) {
				return
			}
			lastSend = time.Now()
			continue
		case <-r.done:
			return
		}
		// Async: gather what arrives within repl-batch-delay of the last
		// send into one write (at pipeline 1 the loops append a record
		// or two per iteration; a send each cost the replica a wake-up,
		// a read and the scheduler, ~10 us per record).
		if d := s.repl.batchDelay.Load(); d > 0 && !s.eagerAcks() {
			if wait := time.Duration(d) - time.Since(lastSend); wait > 0 {
				t := time.NewTimer(wait)
				select {
				case <-t.C:
				case <-r.done:
					t.Stop()
					return
				}
			}
		}
	}
}

// checkLag applies client-output-buffer-limit replica to the bytes of
// the stream the replica has not been sent yet.
func (r *replica) checkLag(cur *repl.Cursor) error {
	var lim config.OutputLimit
	r.s.cfg.Read(func(c *config.Config) { lim = c.OutputReplica })
	lag := cur.Lag()
	if lim.Hard > 0 && lag > lim.Hard {
		return fmt.Errorf("replica output buffer %d bytes over the hard limit %d (client-output-buffer-limit replica)", lag, lim.Hard)
	}
	if lim.Soft > 0 && lag > lim.Soft {
		now := time.Now().UnixMilli()
		if r.soft.Load() == 0 {
			r.soft.Store(now)
		} else if now-r.soft.Load() > lim.SoftSeconds*1000 {
			return fmt.Errorf("replica output buffer over the soft limit %d for %d s (client-output-buffer-limit replica)", lim.Soft, lim.SoftSeconds)
		}
	} else {
		r.soft.Store(0)
	}
	return nil
}

// readAcks reads REPLCONF ACK from the replica; anything else, or silence
// longer than repl-timeout, ends the connection.
func (r *replica) readAcks() {
	s := r.s
	br := bufio.NewReaderSize(r.conn, 4096)
	timeout := s.replTimeout()
	for {
		_ = r.conn.SetReadDeadline(time.Now().Add(timeout))
		rp, err := resp.ReadReply(br, 1024)
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				r.close("reading from the replica: " + err.Error())
			}
			return
		}
		if len(rp.Elems) != 3 || !strings.EqualFold(rp.Elems[0].Str, "replconf") || !strings.EqualFold(rp.Elems[1].Str, "ack") {
			r.close(fmt.Sprintf("unexpected command from the replica: %s", rp.String()))
			return
		}
		n, err := strconv.ParseUint(rp.Elems[2].Str, 10, 64)
		if err != nil {
			r.close("bad REPLCONF ACK offset from the replica")
			return
		}
		r.ackMs.Store(time.Now().UnixMilli())
		if n > r.ack.Load() {
			r.ack.Store(n)
			s.updateQuorum()
		}
	}
}

func (r *replica) close(why string) {
	r.once.Do(func() {
		s := r.s
		if why != "" {
			s.log.Warn("replica disconnected", "replica", r.name(), "why", why)
		}
		r.online.Store(false)
		close(r.done)
		_ = r.conn.Close()
		s.repl.mu.Lock()
		delete(s.repl.replicas, r)
		s.repl.mu.Unlock()
		s.refreshReplicaSnap()
		s.updateQuorum()
	})
}

// checkReplicaLimits disconnects the replicas over their output limit
// (cron): a sender blocked in a write to a replica that stopped reading
// cannot check for itself.
func (s *Server) checkReplicaLimits() {
	for _, r := range s.replicaList() {
		if cur := r.curA.Load(); cur != nil {
			if err := r.checkLag(cur); err != nil {
				r.close(err.Error())
			}
		}
	}
}

// dropReplicas disconnects every replica.
func (s *Server) dropReplicas(why string) {
	s.repl.mu.Lock()
	var all []*replica
	for r := range s.repl.replicas {
		all = append(all, r)
	}
	s.repl.mu.Unlock()
	for _, r := range all {
		r.close(why)
	}
}

// inSync reports whether the replica has everything the primary had
// repl-in-sync-lag ms ago.
func (s *Server) inSync(r *replica, now int64, lagMs int) bool {
	if !r.online.Load() {
		return false
	}
	if r.ack.Load() >= s.lastLSN() {
		return true
	}
	if now-r.since < int64(lagMs) {
		return false
	}
	return r.ack.Load() >= s.offsetAt(now-int64(lagMs))
}

// chunkWriter frames a snapshot on the replication socket.
type chunkWriter struct {
	w       *bufio.Writer
	conn    net.Conn
	timeout time.Duration
	check   func() error
	n       int
}

const maxFrame = 1 << 20

func (c *chunkWriter) Write(p []byte) (int, error) {
	total := len(p)
	for len(p) > 0 {
		n := min(len(p), maxFrame)
		var h [4]byte
		binary.LittleEndian.PutUint32(h[:], uint32(n))
		_ = c.conn.SetWriteDeadline(time.Now().Add(c.timeout))
		if _, err := c.w.Write(h[:]); err != nil {
			return 0, err
		}
		if _, err := c.w.Write(p[:n]); err != nil {
			return 0, err
		}
		p = p[n:]
		c.n++
		if c.n%16 == 0 {
			if err := c.check(); err != nil {
				return 0, err
			}
		}
	}
	return total, nil
}

func (c *chunkWriter) end() error {
	_, err := c.w.Write([]byte{0, 0, 0, 0})
	return err
}

// chunkReader reads a framed snapshot (the replica's side).
type chunkReader struct {
	r    *bufio.Reader
	left int
	done bool
	tee  io.Writer // a copy for the local snapshot file; nil = none
}

func (c *chunkReader) Read(p []byte) (int, error) {
	for c.left == 0 {
		if c.done {
			return 0, io.EOF
		}
		var h [4]byte
		if _, err := io.ReadFull(c.r, h[:]); err != nil {
			return 0, noEOF(err)
		}
		c.left = int(binary.LittleEndian.Uint32(h[:]))
		if c.left == 0 {
			c.done = true
			return 0, io.EOF
		}
		if c.left > maxFrame {
			return 0, fmt.Errorf("snapshot frame of %d bytes (at most %d)", c.left, maxFrame)
		}
	}
	n, err := c.r.Read(p[:min(len(p), c.left)])
	c.left -= n
	if n > 0 && c.tee != nil {
		if _, werr := c.tee.Write(p[:n]); werr != nil {
			return n, werr
		}
	}
	return n, noEOF(err)
}

// drain reads the rest of the snapshot (after the loader stopped early).
func (c *chunkReader) drain() error {
	_, err := io.Copy(io.Discard, c)
	return err
}

func noEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// takeOver moves the client's connection out of the event loop for a
// long-running stream (PSYNC, CLUSTER SLOTSYNC): it returns a blocking
// net.Conn on a duplicate of the socket and the replies of earlier
// commands of the same batch, which go first on the new socket; the loop
// closes its descriptor without writing more. false: the error reply is
// written.
func (c *Ctx) takeOver(name string) (net.Conn, []byte, bool) {
	cl := c.cl
	fd, err := cl.conn.Dup()
	if err != nil {
		c.w.Error("ERR cannot take over the connection: " + err.Error())
		return nil, nil, false
	}
	f := os.NewFile(uintptr(fd), name)
	nc, err := net.FileConn(f)
	_ = f.Close()
	if err != nil {
		c.w.Error("ERR cannot take over the connection: " + err.Error())
		return nil, nil, false
	}
	pending := append([]byte(nil), c.w.B...)
	c.w.B = c.w.B[:0]
	cl.closeAfterReply = true
	return nc, pending, true
}
