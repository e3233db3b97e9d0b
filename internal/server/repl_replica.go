package server

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"shoal/internal/cluster"
	"shoal/internal/config"
	"shoal/internal/persist"
	"shoal/internal/resp"
)

// The replica's side: one goroutine per link connects to the primary,
// asks PSYNC from its position, loads a full copy if it gets one, then
// applies the records it receives and acknowledges them.

type replicaLink struct {
	s    *Server
	host string
	port int

	quit     chan struct{}
	done     chan struct{}
	stopOnce sync.Once

	mu   sync.Mutex // guards conn and acks written on it
	conn net.Conn

	state     atomic.Pointer[string]
	lastIO    atomic.Int64 // unix ms of the last bytes from the primary
	syncing   atomic.Bool
	applied   atomic.Uint64
	acked     atomic.Uint64 // last offset acknowledged
	eager     atomic.Bool   // ack every batch (the primary asked)
	upSince   atomic.Int64  // unix ms the link came up; 0 = down
	downSince atomic.Int64  // unix ms the link went down
	// holds: the data is a complete copy of this primary's history up to
	// applied (a sync finished on this link and no full copy has begun
	// since): the manager may promote this replica even with the link down.
	holds     atomic.Bool
	seenSaved int64 // cron only

	marks   []uint64 // per-slot marks of a full copy (link goroutine only)
	maxMark uint64
}

var (
	lsConnect    = "connect"
	lsConnecting = "connecting"
	lsSync       = "sync"
	lsConnected  = "connected"
)

func newReplicaLink(s *Server, host string, port int) *replicaLink {
	l := &replicaLink{s: s, host: host, port: port, quit: make(chan struct{}), done: make(chan struct{})}
	l.state.Store(&lsConnect)
	l.downSince.Store(time.Now().UnixMilli())
	return l
}

func (l *replicaLink) addr() string { return net.JoinHostPort(l.host, strconv.Itoa(l.port)) }

// stop ends the link and waits for its goroutine.
func (l *replicaLink) stop() {
	l.stopOnce.Do(func() {
		close(l.quit)
		l.mu.Lock()
		if l.conn != nil {
			_ = l.conn.Close()
		}
		l.mu.Unlock()
	})
	<-l.done
}

func (l *replicaLink) stopped() bool {
	select {
	case <-l.quit:
		return true
	default:
		return false
	}
}

func (l *replicaLink) run() {
	defer close(l.done)
	backoff := 50 * time.Millisecond
	for !l.stopped() {
		streamed, err := l.session()
		l.upSince.Store(0)
		l.downSince.Store(time.Now().UnixMilli())
		l.state.Store(&lsConnect)
		if l.stopped() {
			return
		}
		if streamed {
			backoff = 50 * time.Millisecond
		}
		l.s.log.Warn("replication link to the primary is down", "primary", l.addr(), "err", err)
		select {
		case <-l.quit:
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, time.Second)
	}
}

// session runs one connection; streamed reports whether it got as far as
// the record stream.
func (l *replicaLink) session() (streamed bool, err error) {
	s := l.s
	l.state.Store(&lsConnecting)
	conn, err := s.dialPeer(l.addr(), 5*time.Second)
	if err != nil {
		return false, err
	}
	l.mu.Lock()
	if l.stopped() {
		l.mu.Unlock()
		conn.Close()
		return false, errLinkStopped
	}
	l.conn = conn
	l.mu.Unlock()
	defer func() {
		l.mu.Lock()
		l.conn = nil
		l.mu.Unlock()
		conn.Close()
	}()
	timeout := s.replTimeout()
	br := bufio.NewReaderSize(conn, 256<<10)
	call := func(args ...string) (resp.Reply, error) {
		_ = conn.SetDeadline(time.Now().Add(timeout))
		if _, err := conn.Write(resp.AppendCommand(nil, args...)); err != nil {
			return resp.Reply{}, err
		}
		rp, err := resp.ReadReply(br, 1<<20)
		if err == nil && rp.Kind == '-' {
			err = fmt.Errorf("%s: %s", strings.ToUpper(args[0]), rp.Str)
		}
		return rp, err
	}
	var port, fullAfter int
	s.cfg.Read(func(c *config.Config) { port, fullAfter = c.Port, c.ReplFullSyncAfter })
	if auth := s.nodeCredentials().AuthArgs(); auth != nil {
		if _, err := call(auth...); err != nil {
			return false, err
		}
	}
	if _, err := call("REPLCONF", "listening-port", strconv.Itoa(port), "capa", "shoal1"); err != nil {
		return false, err
	}
	// Our protocol version, on its own: a primary of protocol 0 (before
	// versions) does not know the option and answers an error we pass
	// over (it speaks what protocol 1 does); a newer primary that no
	// longer streams to us says so, and the link stops with its reason.
	if _, err := call("REPLCONF", "version", strconv.Itoa(s.protocol())); err != nil &&
		!strings.Contains(err.Error(), "Unrecognized REPLCONF option") {
		return false, err
	}
	id, _, _ := s.replIDs()
	from := int64(s.lastLSN() + 1)
	s.repl.mu.Lock()
	seen := s.repl.seen
	noData := s.repl.noData
	s.repl.mu.Unlock()
	switch {
	case noData:
		id, from = "?", -1
	case !s.persist.exact.Load():
		id, from = "?", -1 // the local data is not at one offset
	case fullAfter > 0 && seen > 0 && time.Now().UnixMilli()-seen > int64(fullAfter)*1000:
		s.log.Info("away from the primary longer than repl-full-sync-after: asking for a full copy",
			"away_seconds", (time.Now().UnixMilli()-seen)/1000, "repl_full_sync_after", fullAfter)
		id, from = "?", -1
	}
	_ = conn.SetDeadline(time.Now().Add(timeout))
	if _, err := conn.Write(resp.AppendCommand(nil, "PSYNC", id, strconv.FormatInt(from, 10))); err != nil {
		return false, err
	}
	line, err := br.ReadString('\n')
	if err != nil {
		return false, err
	}
	line = strings.TrimRight(line, "\r\n")
	f := strings.Fields(line)
	switch {
	case len(f) == 3 && f[0] == "+FULLRESYNC":
		base, perr := strconv.ParseUint(f[2], 10, 64)
		if perr != nil || len(f[1]) != 40 {
			return false, fmt.Errorf("bad reply to PSYNC: %q", line)
		}
		l.state.Store(&lsSync)
		if err := l.fullSync(conn, br, f[1], base); err != nil {
			return false, fmt.Errorf("full copy: %w", err)
		}
	case len(f) >= 1 && f[0] == "+CONTINUE":
		if len(f) == 2 && f[1] != id {
			// The primary has a new id (it was promoted): ours becomes
			// id2, valid up to where we are, for our own replicas.
			s.repl.mu.Lock()
			s.repl.id2, s.repl.off2, s.repl.id = s.repl.id, uint64(from), f[1]
			s.writeReplStateLocked()
			s.repl.mu.Unlock()
		}
		l.marks = nil
		s.log.Info("incremental resync with the primary", "primary", l.addr(), "from", from)
	default:
		return false, fmt.Errorf("PSYNC refused: %q", line)
	}
	l.state.Store(&lsConnected)
	l.upSince.Store(time.Now().UnixMilli())
	l.holds.Store(true)
	return true, l.apply(conn, br)
}

// fullSync replaces the data with the primary's snapshot. With
// persistence on, the received snapshot is also stored as the local one
// and the log restarts after its base, so a restart resumes from here.
func (l *replicaLink) fullSync(conn net.Conn, br *bufio.Reader, id string, base uint64) error {
	s := l.s
	p := &s.persist
	l.syncing.Store(true)
	l.holds.Store(false)
	defer l.syncing.Store(false)
	p.saveMu.Lock() // no local snapshot meanwhile
	defer p.saveMu.Unlock()
	p.loadStart.Store(time.Now().Unix())
	p.loadedBytes.Store(0)
	p.loadTotal.Store(0)
	p.loading.Store(true)
	defer p.loading.Store(false)
	s.dropReplicas("this replica is taking a full copy")
	persistent := s.persistent()
	if persistent {
		s.removeReplState()
	}
	aofOn := false
	if lg := s.aof.Load(); lg != nil {
		aofOn = true
		s.aof.Store(nil)
		if err := lg.Close(); err != nil {
			s.log.Warn("closing the log before a full copy", "err", err)
		}
		s.removeLogSegments()
	}
	s.flushForSync()
	p.exact.Store(false)
	cr := &chunkReader{r: br}
	var local *persist.AtomicFile // the copy kept as this node's snapshot
	if persistent {
		a, err := persist.CreateAtomic(s.fsys, s.snapshotPath())
		if err != nil {
			s.log.Warn("cannot store the full copy locally; a restart will need another", "err", err)
		} else {
			local = a
			cr.tee = a
		}
	}
	_ = conn.SetReadDeadline(time.Time{}) // a large copy takes long; repl-timeout applies to each read below
	// As at start-up (recoverAtStart): a load allocates almost only what
	// it keeps, so collecting during it is wasted work.
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	marks := make([]uint64, cluster.NumSlots)
	dl := &deadlineReader{r: cr, conn: conn, timeout: s.replTimeout()}
	st, err := persist.Load(s.db, dl, persist.LoadOptions{KeepExpired: true, Progress: &p.loadedBytes,
		OnSection: func(slot int, mark uint64) { marks[slot] = mark }})
	if err == nil {
		err = cr.drain()
	}
	if err == nil && st.Base != base {
		err = fmt.Errorf("snapshot base %d differs from the announced %d", st.Base, base)
	}
	if err != nil {
		if local != nil {
			local.Abort()
		}
		s.flushForSync() // no partial dataset
		s.reopenAfterSync(aofOn, 0)
		return err
	}
	var maxMark uint64
	for i := range marks {
		marks[i] = max(marks[i], base)
		maxMark = max(maxMark, marks[i])
		s.db.Lock(i)
		s.db.Slot(i).LSN = marks[i]
		s.db.Unlock(i)
	}
	if local != nil {
		if err := local.Commit(); err != nil {
			s.log.Warn("cannot store the full copy locally; a restart will need another", "err", err)
		}
	}
	p.lastLSN.Store(base)
	p.exact.Store(maxMark == base)
	s.reopenAfterSync(aofOn, base)
	l.marks, l.maxMark = marks, maxMark
	s.repl.mu.Lock()
	s.repl.id, s.repl.id2, s.repl.off2 = id, "", 0
	s.repl.noData = false
	s.repl.seen = time.Now().UnixMilli()
	s.writeReplStateLocked()
	s.repl.mu.Unlock()
	s.log.Info("full copy loaded from the primary", "primary", l.addr(), "keys", st.Keys, "bytes", st.Bytes,
		"seconds", st.Duration.Seconds(), "base", base)
	return nil
}

// flushForSync empties the keyspace before a full copy.
func (s *Server) flushForSync() {
	s.db.LockAll()
	for i := 0; i < cluster.NumSlots; i++ {
		sl := s.db.Slot(i)
		s.db.Flush(sl)
		sl.LSN = 0
	}
	s.db.UnlockAll()
}

// reopenAfterSync restarts the backlog (and the log) after base.
func (s *Server) reopenAfterSync(aofOn bool, base uint64) {
	bl := s.ensureBacklog()
	bl.Reset(base + 1)
	s.persist.lastLSN.Store(base)
	if aofOn {
		if err := s.openLog(); err != nil {
			s.log.Error("cannot reopen the append-only log after a full copy", "err", err)
			return
		}
	}
}

// deadlineReader applies repl-timeout to each read of a full copy.
type deadlineReader struct {
	r       io.Reader
	conn    net.Conn
	timeout time.Duration
}

func (d *deadlineReader) Read(p []byte) (int, error) {
	_ = d.conn.SetReadDeadline(time.Now().Add(d.timeout))
	return d.r.Read(p)
}

// apply reads, applies and logs the primary's records.
func (l *replicaLink) apply(conn net.Conn, br *bufio.Reader) error {
	s := l.s
	rs := &replayState{cl: s.replayClient(), live: true, marks: l.marks}
	timeout := s.replTimeout()
	expect := s.lastLSN() + 1
	l.applied.Store(expect - 1)
	l.eager.Store(false)
	ackStop := make(chan struct{})
	defer close(ackStop)
	go func() {
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-ackStop:
				return
			case <-t.C:
				l.sendAck(conn, l.applied.Load())
			}
		}
	}()
	l.sendAck(conn, expect-1)
	var hdr [persist.RecordHeaderLen]byte
	var rec []byte
	var pf streamPrefetch
	for {
		pf.next(s, br)
		if br.Buffered() < persist.RecordHeaderLen {
			// About to wait for the network: repl-timeout applies.
			now := time.Now()
			l.lastIO.Store(now.UnixMilli())
			_ = conn.SetReadDeadline(now.Add(timeout))
		}
		var lsn uint64
		var payload []byte
		var err error
		if rec, lsn, payload, err = readStreamRecord(br, rec, hdr[:]); err != nil {
			return err
		}
		if lsn == 0 {
			// Control: keepalive, or the primary's ack mode.
			if len(payload) == 2 {
				l.eager.Store(payload[1] == ctlEagerAcks)
				if payload[1] == ctlEagerAcks {
					l.sendAck(conn, l.applied.Load())
				}
			}
			continue
		}
		if lsn != expect {
			return fmt.Errorf("record %d from the primary where %d was expected", lsn, expect)
		}
		if err := s.applyRecord(rs, lsn, payload); err != nil {
			return err
		}
		if err := s.journalEncoded(rec); err != nil {
			// The local history has a record the primary's stream does
			// not: only a full copy can make them agree.
			s.persist.exact.Store(false)
			return err
		}
		expect++
		l.applied.Store(lsn)
		if rs.marks != nil && lsn >= l.maxMark {
			rs.marks, l.marks = nil, nil
			s.persist.exact.Store(true)
		}
		if br.Buffered() == 0 {
			if bl := s.repl.backlog.Load(); bl != nil {
				bl.Notify() // this replica's own replicas
			}
			if l.eager.Load() {
				l.sendAck(conn, lsn)
			}
		}
		if len(rec) > 1<<20 {
			rec = nil
		}
	}
}

// streamPrefetch prefetches the keys of the records waiting in the
// replica's read buffer, up to 16 records at a time (see
// engine.DB.Prefetch): applying a record is mostly waiting for the
// keyspace's memory, and this overlaps those waits across records.
type streamPrefetch struct {
	left int // records of the last window not applied yet
	keys [][]byte
	args [][]byte
}

// next is called before each record is read.
func (p *streamPrefetch) next(s *Server, br *bufio.Reader) {
	if p.left > 0 {
		p.left--
		return
	}
	buf, _ := br.Peek(br.Buffered())
	p.keys = p.keys[:0]
	recs := 0
	for recs < 16 && len(buf) >= persist.RecordHeaderLen {
		n := persist.RecordHeaderLen + int(binary.LittleEndian.Uint32(buf))
		if n > len(buf) {
			break
		}
		// Not checked yet (apply checks each record): a damaged one only
		// yields useless prefetches or stops the decoding.
		_ = persist.ForEachEffectBuf(buf[persist.RecordHeaderLen:n], &p.args, func(_ int, args [][]byte) error {
			if len(args) > 1 && len(p.keys) < 32 {
				p.keys = append(p.keys, args[1])
			}
			return nil
		})
		buf = buf[n:]
		recs++
	}
	if len(p.keys) > 1 {
		s.db.Prefetch(p.keys)
	}
	clear(p.keys)
	if recs > 0 {
		p.left = recs - 1
	}
}

// maxReplRecord bounds one record from the primary (a transaction of
// large values).
const maxReplRecord = 2 << 30

// readStreamRecord reads one record of the stream into rec (reused) and
// checks it; hdr is scratch of RecordHeaderLen bytes.
func readStreamRecord(br *bufio.Reader, rec, hdr []byte) ([]byte, uint64, []byte, error) {
	if _, err := io.ReadFull(br, hdr); err != nil {
		return rec, 0, nil, err
	}
	plen := int(binary.LittleEndian.Uint32(hdr))
	if plen > maxReplRecord {
		return rec, 0, nil, fmt.Errorf("record of %d bytes from the primary (at most %d)", plen, maxReplRecord)
	}
	rec = append(rec[:0], hdr...)
	// Memory follows the bytes received, not the announced length.
	for need := persist.RecordHeaderLen + plen; len(rec) < need; {
		at := len(rec)
		rec = growLen(rec, min(need, at+max(at, 64<<10)))
		if _, err := io.ReadFull(br, rec[at:]); err != nil {
			return rec, 0, nil, err
		}
	}
	lsn, payload, err := persist.CheckRecord(rec)
	return rec, lsn, payload, err
}

// applyRecord applies one record's effects (slots locked per effect).
func (s *Server) applyRecord(rs *replayState, lsn uint64, payload []byte) error {
	err := persist.ForEachEffectBuf(payload, &rs.args, func(slot int, args [][]byte) error {
		return s.replayEffect(rs, lsn, slot, args)
	})
	if err != nil {
		return fmt.Errorf("record %d: %w", lsn, err)
	}
	return nil
}

func growLen(b []byte, n int) []byte {
	if cap(b) >= n {
		return b[:n]
	}
	nb := make([]byte, n)
	copy(nb, b)
	return nb
}

func (l *replicaLink) sendAck(conn net.Conn, lsn uint64) {
	var buf [64]byte
	b := resp.AppendCommand(buf[:0], "REPLCONF", "ACK", strconv.FormatUint(lsn, 10))
	l.acked.Store(lsn)
	l.mu.Lock()
	_ = conn.SetWriteDeadline(time.Now().Add(l.s.replTimeout()))
	_, _ = conn.Write(b)
	l.mu.Unlock()
}

// cron records, every 10 s while the link is up, that the replica was in
// contact (repl-full-sync-after measures from it, across restarts).
func (l *replicaLink) cron(now int64) {
	if l.upSince.Load() == 0 || now-l.seenSaved < 10_000 {
		return
	}
	l.seenSaved = now
	s := l.s
	s.repl.mu.Lock()
	s.repl.seen = now
	s.writeReplStateLocked()
	s.repl.mu.Unlock()
}
