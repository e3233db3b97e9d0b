package server

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"shoal/internal/cluster"
	"shoal/internal/config"
	"shoal/internal/persist"
	"shoal/internal/repl"
	"shoal/internal/resp"
)

// Replication (docs/replication.md).
//
// The stream is the log's: every write is one effect record with an LSN
// (aof.go), and the replication offset is that LSN. A primary keeps the
// newest records in a backlog (internal/repl) fed by the log's tee, or
// directly by emit when the log is off; each replica connection has a
// sender goroutine that reads the backlog from the replica's position and
// writes to its socket, and a reader for its acknowledgements. A full
// copy is a snapshot dumped straight into the socket while writes go on
// (each slot with its mark), followed by the records after the dump's
// base; the replica skips, per slot, the records its copy already holds,
// as recovery does.
//
// A replica applies the records as recovery replays the log (replayEffect)
// and appends the same records, LSNs unchanged, to its own log and
// backlog, so it can be restarted from its files, be promoted, and feed
// replicas of its own.
//
// Identity (PSYNC2): a node has a replication id and, after a promotion
// or a restart as primary, the previous id with the offset up to which
// the two histories agree (id2, off2). A replica asking for (id, from) is
// served incrementally if id is the current id, or id2 with from <= off2,
// and the backlog still holds record from.

const replStateFile = "replication.state"

type replState struct {
	mu       sync.Mutex
	id       string // current replication id
	id2      string // previous id ("" = none)
	off2     uint64 // id2 is valid for offsets (next-wanted LSNs) up to off2
	noData   bool   // a replica that never synced: its id names no history (PSYNC ? -1)
	replicas map[*replica]struct{}
	waits    []*waiter // WAIT clients
	link     *replicaLink
	wg       sync.WaitGroup // replica senders
	seen     int64          // unix ms the link last streamed (repl-full-sync-after)
	// acting is closed when this node starts acting as a primary
	// (becomePrimary); nil until a waiter (actingPrimary) asks for it.
	acting chan struct{}

	backlog    atomic.Pointer[repl.Backlog]
	isReplica  atomic.Bool
	ready      atomic.Bool   // replStart ran: the offset is known
	quorum     atomic.Uint64 // highest LSN that sync-replicas replicas have
	syncN      atomic.Int32
	syncTO     atomic.Int64 // sync-timeout in ms
	batchDelay atomic.Int64 // repl-batch-delay in ns
	nOnline    atomic.Int32
	nWaits     atomic.Int32               // len(waits)
	snap       atomic.Pointer[[]*replica] // online replicas, for the event loops (sendInline)

	syncFull, syncPartialOK, syncPartialErr atomic.Int64
	promotions                              atomic.Int64 // replica → primary (becomePrimary): failovers to this node, REPLICAOF NO ONE

	// samples of the offset for the in-sync test: ring of (unix ms, last LSN)
	sampMu  sync.Mutex
	samples [64]offSample
	sampAt  int
}

type offSample struct {
	ms  int64
	off uint64
}

func (s *Server) replApplyConfig(c *config.Config) {
	s.repl.syncN.Store(int32(c.SyncReplicas))
	s.repl.syncTO.Store(int64(c.SyncTimeout))
	s.repl.batchDelay.Store(int64(c.ReplBatchDelay) * int64(time.Microsecond))
	if bl := s.repl.backlog.Load(); bl != nil {
		bl.SetLimit(c.ReplBacklogSize)
		bl.Notify() // senders re-read the ack mode (sync-replicas)
	}
}

// journaling reports whether writes are turned into records (the log or
// the backlog is on).
func (s *Server) journaling() bool {
	return s.aof.Load() != nil || s.repl.backlog.Load() != nil
}

// journal appends a record of n effects and returns its LSN (0: nothing
// records writes).
func (s *Server) journal(n int, effects []byte) uint64 {
	if lg := s.aof.Load(); lg != nil {
		return lg.Append(n, effects) // tees to the backlog
	}
	if bl := s.repl.backlog.Load(); bl != nil {
		return bl.Append(n, effects)
	}
	return 0
}

// lastLSN is the node's replication offset: the last record's LSN.
func (s *Server) lastLSN() uint64 {
	if lg := s.aof.Load(); lg != nil {
		return lg.Last()
	}
	if bl := s.repl.backlog.Load(); bl != nil {
		return bl.Last()
	}
	return s.persist.lastLSN.Load()
}

// ensureBacklog creates the backlog (at the first replica, or when this
// node becomes a replica) and returns it.
func (s *Server) ensureBacklog() *repl.Backlog {
	if bl := s.repl.backlog.Load(); bl != nil {
		return bl
	}
	s.repl.mu.Lock()
	defer s.repl.mu.Unlock()
	if bl := s.repl.backlog.Load(); bl != nil {
		return bl
	}
	var size int64
	s.cfg.Read(func(c *config.Config) { size = c.ReplBacklogSize })
	// Without the log, writers check for the backlog without a lock: one
	// that read nil just before the store gets no LSN, as before the
	// backlog existed; the records start after the last one handed out.
	bl := repl.New(size, s.lastLSN()+1)
	if lg := s.aof.Load(); lg != nil {
		lg.SetTee(bl.Tee, func(last uint64) { bl.Reset(last + 1) })
	}
	s.repl.backlog.Store(bl)
	return bl
}

// journalEncoded appends a record received from the primary (replica).
func (s *Server) journalEncoded(rec []byte) error {
	if lg := s.aof.Load(); lg != nil {
		_, err := lg.AppendEncoded(rec)
		return err
	}
	return s.ensureBacklog().AppendEncoded(rec)
}

// ackedLSN is the highest LSN a client may be told is done: the log has
// it (written or fsynced per appendfsync) and, with sync-replicas N on a
// primary, N replicas have it.
func (s *Server) ackedLSN() uint64 {
	a := uint64(math.MaxUint64)
	if lg := s.aof.Load(); lg != nil {
		a = lg.Acked()
	}
	if s.repl.syncN.Load() > 0 && !s.repl.isReplica.Load() {
		a = min(a, s.repl.quorum.Load())
	}
	return a
}

// Replication identity, kept with the data when persistence is on.

func (s *Server) persistent() bool {
	var on bool
	s.cfg.Read(func(c *config.Config) { on = c.AppendOnly || len(c.SavePoints) > 0 })
	return on
}

func (s *Server) replStatePath() string {
	var dir string
	s.cfg.Read(func(c *config.Config) { dir = c.Dir })
	return filepath.Join(dir, replStateFile)
}

// writeReplState stores id, id2, off2 and the last time the link streamed
// (repl.mu held), crash-safely (persist.AtomicFile).
func (s *Server) writeReplStateLocked() {
	if !s.persistent() {
		return
	}
	path := s.replStatePath()
	a, err := persist.CreateAtomic(s.fsys, path)
	if err == nil {
		if _, err = fmt.Fprintf(a, "%s %s %d %d\n", s.repl.id, orDash(s.repl.id2), s.repl.off2, s.repl.seen); err != nil {
			a.Abort()
		} else {
			err = a.Commit()
		}
	}
	if err != nil {
		s.log.Warn("could not store the replication id", "path", path, "err", err)
	}
}

func (s *Server) removeReplState() {
	_ = s.fsys.Remove(s.replStatePath())
}

func orDash(v string) string {
	if v == "" {
		return "-"
	}
	return v
}

// readReplState reads the stored identity ("" if none or unreadable).
func (s *Server) readReplState() (id, id2 string, off2 uint64, seen int64) {
	f, err := s.fsys.Open(s.replStatePath())
	if err != nil {
		return
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, 4096))
	if err != nil {
		return
	}
	fl := strings.Fields(string(b))
	if len(fl) != 4 || len(fl[0]) != 40 {
		s.log.Warn("ignoring a malformed replication state file", "path", s.replStatePath())
		return
	}
	id, id2 = fl[0], fl[1]
	if id2 == "-" {
		id2 = ""
	}
	off2, _ = strconv.ParseUint(fl[2], 10, 64)
	seen, _ = strconv.ParseInt(fl[3], 10, 64)
	return
}

// replStart sets the identity after recovery and starts the link of a
// replica (replicaof). A primary takes a new id and keeps the stored one
// as id2, valid up to the data it recovered: a replica of its previous
// run resumes incrementally if it has no record the primary lost.
func (s *Server) replStart() {
	id, id2, off2, seen := s.readReplState()
	var primary string
	var managed bool
	s.cfg.Read(func(c *config.Config) { primary, managed = c.ReplicaOf, c.Manager != ""; s.replApplyConfig(c) })
	r := &s.repl
	r.mu.Lock()
	r.seen = seen
	if managed && primary == "" {
		// A cluster node starts as a replica of nobody: no writes, no
		// expiry, its stored id kept, until the map gives it a role.
		// Promoted, it keeps that id as id2 (its replicas resume); made a
		// replica, it asks its primary for what follows its own offset.
		r.id, r.id2, r.off2 = id, id2, off2
		if r.id == "" {
			r.id = randomHex40()
			r.noData = true
		}
		r.mu.Unlock()
		s.ensureBacklog()
		r.isReplica.Store(true)
		s.db.SetReplicaMode(true)
		r.ready.Store(true)
		return
	}
	if primary != "" {
		r.id, r.id2, r.off2 = id, id2, off2
		if r.id == "" {
			r.id = randomHex40()
			r.noData = true
		}
		r.mu.Unlock()
		host, port, _ := strings.Cut(primary, " ")
		p, _ := strconv.Atoi(port)
		r.ready.Store(true)
		s.becomeReplica(host, p)
		return
	}
	r.id = randomHex40()
	if id != "" {
		r.id2, r.off2 = id, s.lastLSN()+1
	}
	s.writeReplStateLocked()
	r.mu.Unlock()
	r.ready.Store(true)
	if r.syncN.Load() > 0 || id != "" {
		// Writes need LSNs: to wait for (sync-replicas), or so that a
		// replica of the previous run resuming from id2 gets every write
		// made since the restart (an unrecorded write would be skipped).
		s.ensureBacklog()
	}
}

// becomeReplica turns this node into a replica of host:port (or changes
// its primary). Its own replicas are disconnected: they reconnect and
// resume from the same id.
func (s *Server) becomeReplica(host string, port int) {
	r := &s.repl
	s.ensureBacklog()
	// No record of this node's own may follow the offset it will ask its
	// primary for: writes are refused and expiry stops first, then every
	// command already holding slot locks (and appending its record) is
	// waited for.
	r.isReplica.Store(true)
	s.db.SetReplicaMode(true)
	s.db.LockAll()
	s.db.UnlockAll()
	r.mu.Lock()
	old := r.link
	r.link = nil
	r.mu.Unlock()
	if old != nil {
		old.stop()
	}
	s.dropReplicas("this node became a replica")
	l := newReplicaLink(s, host, port)
	r.mu.Lock()
	r.link = l
	r.mu.Unlock()
	go l.run()
}

// becomePrimary promotes a replica (REPLICAOF NO ONE): it keeps its data,
// takes a new id and keeps the old one as id2 up to its offset.
func (s *Server) becomePrimary() {
	r := &s.repl
	r.mu.Lock()
	l := r.link
	r.link = nil
	r.mu.Unlock()
	if l != nil {
		l.stop()
	}
	if !r.isReplica.Load() {
		return
	}
	s.dropReplicas("this node was promoted")
	r.mu.Lock()
	r.id2, r.off2 = r.id, s.lastLSN()+1
	r.id = randomHex40()
	s.writeReplStateLocked()
	r.mu.Unlock()
	s.db.SetReplicaMode(false)
	r.isReplica.Store(false)
	r.mu.Lock()
	if r.acting != nil {
		close(r.acting)
		r.acting = nil
	}
	r.mu.Unlock()
	r.promotions.Add(1)
	s.updateQuorum()
	s.log.Info("promoted to primary", "replid", r.id, "replid2", r.id2, "second_repl_offset", r.off2)
}

// closedChan is a channel that is always closed.
var closedChan = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// actingPrimary returns a channel closed once this node acts as a
// primary (at once if it does now). Until then it is a replica, even when
// the map already names it its shard's primary (it acts on the lease):
// its log and backlog continue its primary's stream, under that
// primary's replication id, so it must append no record of its own (an
// import, a drop of a slot). Promoted, it keeps that id as id2 up to its
// offset: a record of its own there would be taken for the old primary's
// by a replica resuming from it (the old primary back from a crash, whose
// own records at those offsets differ), which would then skip it.
func (s *Server) actingPrimary() <-chan struct{} {
	r := &s.repl
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.isReplica.Load() {
		return closedChan
	}
	if r.acting == nil {
		r.acting = make(chan struct{})
	}
	return r.acting
}

// errNotActingPrimary is what a slot import's write gets on a node that
// is (again) a replica: see actingPrimary.
var errNotActingPrimary = errors.New("this node does not act as its shard's primary: it writes no record of its own")

// replIDs returns id, id2 and off2.
func (s *Server) replIDs() (string, string, uint64) {
	s.repl.mu.Lock()
	defer s.repl.mu.Unlock()
	return s.repl.id, s.repl.id2, s.repl.off2
}

// replCron samples the offset (for the in-sync test), times out writes
// waiting for replicas, and refreshes the link's state file.
func (s *Server) replCron() {
	now := time.Now().UnixMilli()
	r := &s.repl
	r.sampMu.Lock()
	r.samples[r.sampAt%len(r.samples)] = offSample{now, s.lastLSN()}
	r.sampAt++
	r.sampMu.Unlock()
	if bl := r.backlog.Load(); bl != nil && bl.Unnotified() {
		bl.Notify() // records of the cron's own (expiries) or missed by the loops
	}
	s.timeoutSyncWaits(now)
	s.checkReplicaLimits()
	r.mu.Lock()
	l := r.link
	r.mu.Unlock()
	if l != nil {
		l.cron(now)
	}
}

// offsetAt returns the offset the primary had at unix ms t (the oldest
// sample not after t; 0 if none is that old).
func (s *Server) offsetAt(t int64) uint64 {
	r := &s.repl
	r.sampMu.Lock()
	defer r.sampMu.Unlock()
	var best offSample
	for _, x := range r.samples {
		if x.ms != 0 && x.ms <= t && x.ms >= best.ms {
			best = x
		}
	}
	return best.off
}

// Acknowledgements.

// eagerAcks reports whether replicas must acknowledge every batch they
// apply (sync-replicas or a WAIT is pending); otherwise every 100 ms.
func (s *Server) eagerAcks() bool {
	return s.repl.syncN.Load() > 0 || s.repl.nWaits.Load() > 0
}

// updateQuorum recomputes the highest LSN held by sync-replicas replicas
// and wakes what waited for it.
func (s *Server) updateQuorum() {
	r := &s.repl
	n := int(r.syncN.Load())
	var acks []uint64
	online := 0
	// Computed and published under one lock: two ack readers racing
	// must not leave the older result in place.
	r.mu.Lock()
	for x := range r.replicas {
		if x.online.Load() {
			online++
			acks = append(acks, x.ack.Load())
		}
	}
	r.nOnline.Store(int32(online))
	var q uint64
	if n > 0 && len(acks) >= n {
		slices.Sort(acks)
		q = acks[len(acks)-n]
	}
	old := r.quorum.Swap(q)
	r.mu.Unlock()
	if n > 0 && q > old {
		s.logProgress()
	}
	s.serveWaits()
}

// replicasHaving counts the online replicas that acknowledged lsn.
func (s *Server) replicasHaving(lsn uint64) int {
	n := 0
	s.repl.mu.Lock()
	for x := range s.repl.replicas {
		if x.online.Load() && x.ack.Load() >= lsn {
			n++
		}
	}
	s.repl.mu.Unlock()
	return n
}

// serveWaits answers the WAIT clients whose replicas now suffice.
func (s *Server) serveWaits() {
	r := &s.repl
	r.mu.Lock()
	if len(r.waits) == 0 {
		r.mu.Unlock()
		return
	}
	waits := slices.Clone(r.waits)
	r.mu.Unlock()
	var done []*waiter
	for _, w := range waits {
		if w.done.Load() {
			done = append(done, w)
			continue
		}
		n := s.replicasHaving(w.waitLSN)
		if n < w.waitN {
			continue
		}
		if !w.done.CompareAndSwap(false, true) {
			continue
		}
		if w.timer != nil {
			w.timer.Stop()
		}
		done = append(done, w)
		rw := resp.Writer{Proto: int(w.cl.protoShared.Load())}
		rw.Int(int64(n))
		w.answer(rw.B)
	}
	if len(done) > 0 {
		r.mu.Lock()
		r.waits = slices.DeleteFunc(r.waits, func(w *waiter) bool { return slices.Contains(done, w) })
		r.nWaits.Store(int32(len(r.waits)))
		r.mu.Unlock()
	}
}

// timeoutSyncWaits fails the replies that waited for sync-replicas longer
// than sync-timeout (the log has their records; the replicas do not).
func (s *Server) timeoutSyncWaits(now int64) {
	to := s.repl.syncTO.Load()
	if s.repl.syncN.Load() == 0 {
		to = 0
	}
	var logAcked uint64 = math.MaxUint64
	if lg := s.aof.Load(); lg != nil {
		logAcked = lg.Acked()
	}
	// Waiting past sync-timeout fails; with sync-replicas turned off, the
	// waiters the log is done with are released.
	fail := s.durWait.take(func(x durWaiter) bool {
		return x.need <= logAcked && (to == 0 || now-x.since > to)
	})
	for _, cl := range fail {
		if to > 0 {
			cl.syncFailed.Store(true)
		}
		cl.inDurWait.Store(false)
		_ = cl.conn.Wake(nil)
	}
	// WAIT clients whose waiter was claimed by its timer.
	r := &s.repl
	r.mu.Lock()
	r.waits = slices.DeleteFunc(r.waits, func(w *waiter) bool { return w.done.Load() })
	r.nWaits.Store(int32(len(r.waits)))
	r.mu.Unlock()
}

// errNoReplicas is the reply a write gets when sync-replicas replicas did
// not confirm it within sync-timeout.
const errNoReplicas = "NOREPLICAS Not enough good replicas confirmed the write within sync-timeout " +
	"(it is applied on the primary and may be lost if the primary fails)"

// failHeld replaces the replies held for a client by errNoReplicas, one
// per reply.
func failHeld(b []byte) []byte {
	n := 0
	r := bufio.NewReader(bytes.NewReader(b))
	for {
		if _, err := resp.ReadReply(r, math.MaxInt64); err != nil {
			break
		}
		n++
	}
	out := make([]byte, 0, n*(len(errNoReplicas)+3))
	for i := 0; i < n; i++ {
		out = append(out, '-')
		out = append(out, errNoReplicas...)
		out = append(out, '\r', '\n')
	}
	return out
}

// Commands.

func init() {
	register("replicaof", cmdReplicaof)
	register("slaveof", cmdReplicaof)
	register("wait", cmdWait)
	register("replconf", cmdReplconf)
	register("psync", cmdPsync)
	register("sync", cmdPsync)
}

func cmdReplicaof(c *Ctx) {
	s := c.srv
	host, port := string(c.args[1]), string(c.args[2])
	if strings.EqualFold(host, "no") && strings.EqualFold(port, "one") {
		if s.repl.isReplica.Load() {
			s.becomePrimary()
			_ = s.cfg.Set("replicaof", "no one", false)
		}
		c.w.OK()
		return
	}
	p, err := strconv.Atoi(port)
	if err != nil || p <= 0 || p > 65535 {
		c.w.Error("ERR Invalid master port")
		return
	}
	s.repl.mu.Lock()
	same := s.repl.link != nil && s.repl.link.host == host && s.repl.link.port == p
	s.repl.mu.Unlock()
	if same {
		c.w.Simple("OK Already connected to specified master")
		return
	}
	s.becomeReplica(host, p)
	_ = s.cfg.Set("replicaof", host+" "+port, false)
	c.w.OK()
}

func cmdWait(c *Ctx) {
	s := c.srv
	n, ok := c.intArg(1)
	if !ok {
		return
	}
	ms, ok := c.intArg(2)
	if !ok {
		return
	}
	if ms < 0 {
		c.w.Error("ERR timeout is negative")
		return
	}
	if s.repl.isReplica.Load() {
		c.w.Error("ERR WAIT cannot be used with replica instances. Please also note that since Redis 4.0 if a replica is configured to be writable (which is not the default) writes to replicas are just local and are not propagated.")
		return
	}
	cl := c.cl
	need := max(cl.lastWrite, cl.walLSN, cl.extLSN.Load())
	have := s.replicasHaving(need)
	if int64(have) >= n || c.inExec {
		c.w.Int(int64(have))
		return
	}
	w := &waiter{cl: cl, waitLSN: need, waitN: int(n)}
	cl.block(w)
	if ms > 0 {
		proto := cl.proto
		w.timer = time.AfterFunc(time.Duration(ms)*time.Millisecond, func() {
			if w.done.CompareAndSwap(false, true) {
				rw := resp.Writer{Proto: proto}
				rw.Int(int64(s.replicasHaving(need)))
				w.timedOut = true
				w.answer(rw.B)
			}
		})
	}
	// Published once complete (its timer set): ack readers read it.
	s.repl.mu.Lock()
	s.repl.waits = append(s.repl.waits, w)
	s.repl.nWaits.Store(int32(len(s.repl.waits)))
	s.repl.mu.Unlock()
	if bl := s.repl.backlog.Load(); bl != nil {
		bl.Notify() // the senders ask the replicas for prompt acks
	}
	// An ack may have arrived between the count and the registration.
	s.serveWaits()
}

// cmdReplconf takes a replica's settings before PSYNC.
func cmdReplconf(c *Ctx) {
	if len(c.args)%2 == 0 {
		c.w.Error(errSyntax)
		return
	}
	for i := 1; i < len(c.args); i += 2 {
		opt, val := strings.ToLower(string(c.args[i])), string(c.args[i+1])
		switch opt {
		case "listening-port":
			p, err := strconv.Atoi(val)
			if err != nil || p < 0 || p > 65535 {
				c.w.Error("ERR Invalid listening port")
				return
			}
			c.cl.replPort = p
		case "ip-address":
			c.cl.replIP = val
		case "version":
			v, err := strconv.Atoi(val)
			if err != nil || v < 0 {
				c.w.Error("ERR Invalid protocol version")
				return
			}
			if err := c.srv.checkReplicaProtocol(v); err != nil {
				c.w.Error(err.Error())
				return
			}
			c.cl.replProto = v
		case "capa", "ack", "getack", "rdb-only", "rdb-filter-only", "rdb-channel":
		default:
			c.w.Error("ERR Unrecognized REPLCONF option: " + string(c.args[i]))
			return
		}
	}
	c.w.OK()
}

// checkReplicaProtocol refuses a replica speaking a protocol older than
// this primary streams (the error is the replica's reply and is logged).
func (s *Server) checkReplicaProtocol(v int) error {
	if min := s.minReplicaProtocol(); v < min {
		err := fmt.Errorf("ERR replica protocol version %d is below %d, the oldest this primary (shoal %s, protocol %d) streams to: upgrade the replica",
			v, min, ShoalVersion, s.protocol())
		s.log.Warn("replica refused", "protocol", v, "min_protocol", min)
		return err
	}
	return nil
}

// Digests.

func debugDigestSlot(c *Ctx) {
	if len(c.args) != 3 {
		c.w.Error("ERR wrong number of arguments for 'debug|digest-slot' command")
		return
	}
	n, err := strconv.Atoi(string(c.args[2]))
	if err != nil || n < 0 || n >= cluster.NumSlots {
		c.w.Error("ERR slot out of range (0-16383)")
		return
	}
	c.db.Lock(n)
	d := c.db.Digest(c.db.Slot(n))
	c.db.Unlock(n)
	c.w.BulkString(fmt.Sprintf("%016x", d))
}

// debugDigest is DEBUG DIGEST: the XOR of all slot digests (40 hex
// digits as Redis's, zero-padded), 0 for an empty keyspace.
func debugDigest(c *Ctx) {
	var d uint64
	for i := 0; i < cluster.NumSlots; i++ {
		c.db.Lock(i)
		d ^= c.db.Digest(c.db.Slot(i))
		c.db.Unlock(i)
	}
	c.w.BulkString(fmt.Sprintf("%040x", d))
}

// ReplOffset is the node's replication offset (tests).
func (s *Server) ReplOffset() uint64 { return s.lastLSN() }

// errLinkStopped is what a link stopped while connecting reports.
var errLinkStopped = errors.New("replication link stopped")

// replicaList returns the connected replicas, oldest first.
func (s *Server) replicaList() []*replica {
	s.repl.mu.Lock()
	out := make([]*replica, 0, len(s.repl.replicas))
	for r := range s.repl.replicas {
		out = append(out, r)
	}
	s.repl.mu.Unlock()
	slices.SortFunc(out, func(a, b *replica) int { return int(a.since - b.since) })
	return out
}

// infoReplication writes INFO's replication section.
func (s *Server) infoReplication(line func(string, any)) {
	r := &s.repl
	now := time.Now().UnixMilli()
	id, id2, off2 := s.replIDs()
	off := s.lastLSN()
	var lagMs int
	s.cfg.Read(func(c *config.Config) { lagMs = c.ReplInSyncLag })
	if r.isReplica.Load() {
		line("role", "slave")
		r.mu.Lock()
		l := r.link
		r.mu.Unlock()
		if l != nil {
			line("master_host", l.host)
			line("master_port", l.port)
			up := l.upSince.Load() != 0
			status := "down"
			if up {
				status = "up"
			}
			line("master_link_status", status)
			io := int64(-1)
			if t := l.lastIO.Load(); t > 0 {
				io = (now - t) / 1000
			}
			line("master_last_io_seconds_ago", io)
			line("master_sync_in_progress", b2i(l.syncing.Load()))
			line("slave_read_repl_offset", l.applied.Load())
			line("slave_repl_offset", l.applied.Load())
			if !up {
				line("master_link_down_since_seconds", (now-l.downSince.Load())/1000)
			}
		}
		line("slave_priority", 100)
		line("slave_read_only", 1)
		line("replica_announced", 1)
	} else {
		line("role", "master")
	}
	reps := s.replicaList()
	line("connected_slaves", len(reps))
	inSync := 0
	for i, x := range reps {
		sync := s.inSync(x, now, lagMs)
		if sync {
			inSync++
		}
		lag := (now - x.ackMs.Load()) / 1000
		line("slave"+strconv.Itoa(i), fmt.Sprintf("ip=%s,port=%d,state=%s,offset=%d,lag=%d,in_sync=%d,lag_records=%d",
			x.ip, x.port, *x.state.Load(), x.ack.Load(), lag, b2i(sync), off-min(off, x.ack.Load())))
	}
	line("in_sync_replicas", inSync)
	line("sync_replicas", r.syncN.Load())
	// Slot moves sent: every byte is reserved from the limiter first.
	line("migrate_sent_bytes", s.moves.sent.Load())
	line("migrate_limiter_granted_bytes", s.migLimit.Granted())
	line("master_failover_state", "no-failover")
	line("master_replid", id)
	if id2 == "" {
		line("master_replid2", strings.Repeat("0", 40))
		line("second_repl_offset", -1)
	} else {
		line("master_replid2", id2)
		line("second_repl_offset", off2)
	}
	line("master_repl_offset", off)
	bl := r.backlog.Load()
	if bl == nil {
		var size int64
		s.cfg.Read(func(c *config.Config) { size = c.ReplBacklogSize })
		line("repl_backlog_active", 0)
		line("repl_backlog_size", size)
		line("repl_backlog_first_byte_offset", 0)
		line("repl_backlog_histlen", 0)
	} else {
		held, limit, _ := bl.Stats()
		line("repl_backlog_active", 1)
		line("repl_backlog_size", limit)
		line("repl_backlog_first_byte_offset", bl.First())
		line("repl_backlog_histlen", held)
	}
	line("sync_full", r.syncFull.Load())
	line("sync_partial_ok", r.syncPartialOK.Load())
	line("sync_partial_err", r.syncPartialErr.Load())
}

// holdDirtyRead makes a read's reply wait, under sync-replicas, until the
// last write to its slots is acknowledged by the replicas (the slots are
// locked). Without it a read could return a write that the primary's
// death then loses (its client got an error, or nothing): a value seen
// and then gone, which is not linearizable. The reply only waits when the
// slot has a write still unacknowledged, about one replica round trip.
func (s *Server) holdDirtyRead(cl *Client, slots []int) {
	if s.repl.isReplica.Load() {
		return
	}
	q := s.repl.quorum.Load()
	for _, i := range slots {
		if l := s.db.Slot(i).LSN; l > q && l > cl.walLSN {
			cl.walLSN = l
		}
	}
}
