package server

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"shoal/internal/cluster"
	"shoal/internal/engine"
	"shoal/internal/persist"
	"shoal/internal/repl"
	"shoal/internal/resp"
)

// Slot moves, the storage node's part (the map's states are described in
// internal/cluster/migration.go; the manager's migrator drives them).
//
// The target shard's primary imports: on every map install it starts an
// importer for the new moves to its shard, one per source shard (and
// stops the imports of moves that ended). The importer connects to the
// source shard's primary and sends CLUSTER MOVESYNC slot [slot ...]; the
// source answers with frames, RESP arrays of bulk strings:
//
//	image <slot> <mark>   the slot's image follows (taken under its lock)
//	put <entry>           one key (the snapshot encoding)
//	part <entry>          part of a big key (above migratePartLimit): an
//	                      entry of the key with some of its elements, or a
//	                      byte range of a string (persist.EncodeEntryParts)
//	parted <key>          the key's last part was sent
//	imaged <slot> <keys>  the slot's image is complete
//	eff <lsn> <slot> <args...>  an effect of a record of the source's
//	                      stream on one of the slots, in order
//	pos <lsn>             the source's stream is read up to lsn
//
// The images come one slot after the other, then the stream. A source of
// protocol 1 knows only CLUSTER SLOTSYNC slot: one slot a connection, and
// its frames name no slot (image <mark>, imaged <keys>, eff <lsn> <args>).
//
// The importer applies puts and effects as local writes, journaled, so the
// target's own replicas receive them like any write. It reports the
// source position it has applied (CLUSTER MIGRATION slot). The source
// keeps serving the slot until cutover: then it refuses writes to it, and
// once the target has applied the source's last change to the slot the
// migrator flips the owner. A source that no longer owns a slot it owned
// drops its keys, and an importer that stops without its shard owning the
// slot drops the partial copy.

// migratePartLimit bounds the frames of a move's image: a value whose
// size is above it is sent in parts of about this size (one element
// more at most), which the target merges aside and installs whole
// after the last (so no client, replica or log ever sees it half there).
const migratePartLimit = 256 << 10

// importer pulls a set of slots from one source primary over one
// connection (CLUSTER MOVESYNC slot...): the slots of the moves from that
// source that entered the window together. One stream for many slots: a
// stream per slot had the source read and decode its whole write stream
// once per slot moving. Each slot ends on its own (slotImport.halt); the
// connection ends with the last. A source of protocol 1 serves one slot
// a connection (CLUSTER SLOTSYNC slot, legacy framing).
type importer struct {
	s      *Server
	from   string // source primary's address
	legacy bool   // one slot, CLUSTER SLOTSYNC's frames
	slots  []*slotImport
	bySlot map[int]*slotImport

	stop     chan struct{}
	stopOnce sync.Once
	done     chan struct{}
	applied  atomic.Uint64 // the source's stream position applied and acknowledged here
	// mu guards the fields below and the slots' halted and err; it is
	// held while a frame is applied, so a halted slot is written no more.
	mu    sync.Mutex
	err   string
	conn  net.Conn
	marks []posMark // source positions applied, not yet acknowledged here
	live  int       // slots not halted
}

// slotImport is one slot of an importer.
type slotImport struct {
	im     *importer
	slot   int
	ident  string        // the move's identity: a new attempt restarts the import
	after  chan struct{} // the slot's previous cleanup (nil: none); the import waits for it
	state  atomic.Pointer[string]
	keys   atomic.Int64 // keys of the image applied
	halted bool         // im.mu
	err    string       // im.mu: why this slot alone failed
}

// posMark: the source's stream position pos was applied here by the time
// this node's own log reached local. The importer reports pos once local
// is acknowledged (ackedLSN: in the log per appendfsync, and with
// sync-replicas N on N of this shard's replicas), so the migrator never
// flips the owner to a copy that a crash of this node could lose.
type posMark struct{ pos, local uint64 }

// maxPosMarks bounds marks; when full the two oldest merge (the earlier
// position at the later LSN: reported later, never early).
const maxPosMarks = 256

// noteApplied records that the source's position pos is applied, by the
// time the local log reached local.
func (im *importer) noteApplied(pos, local uint64) {
	im.mu.Lock()
	defer im.mu.Unlock()
	if n := len(im.marks); n > 0 && im.marks[n-1].local == local {
		im.marks[n-1].pos = pos
	} else {
		if n == maxPosMarks {
			im.marks[1].pos = im.marks[0].pos
			im.marks = append(im.marks[:0], im.marks[1:]...)
		}
		im.marks = append(im.marks, posMark{pos, local})
	}
	im.advanceLocked(im.s.ackedLSN())
}

// advance reports the positions whose local LSN is acknowledged.
func (im *importer) advance() {
	im.mu.Lock()
	im.advanceLocked(im.s.ackedLSN())
	im.mu.Unlock()
}

func (im *importer) advanceLocked(acked uint64) {
	i := 0
	for i < len(im.marks) && im.marks[i].local <= acked {
		im.applied.Store(im.marks[i].pos)
		i++
	}
	if i > 0 {
		im.marks = append(im.marks[:0], im.marks[i:]...)
		im.s.moves.appliedAdvanced()
	}
}

var (
	impConnecting = "connecting"
	impImage      = "image"
	impStreaming  = "streaming"
	impFailed     = "failed"
)

type migrations struct {
	mu      sync.Mutex
	imports map[int]*slotImport
	// cleaning holds, per slot, the end of the last cleanup (an importer
	// halted, a slot dropped) begun for it: a new importer of the slot
	// waits for it, so an old drop never deletes what the new one copied.
	cleaning map[int]chan struct{}
	// queued: the cleanups begun since the last startCleanupsLocked.
	queued []cleanup
	// drops: the slots whose keys the cleanups queued for the dropper
	// (dropQueued), and whether its goroutine runs.
	dropMu   sync.Mutex
	drops    []dropJob
	dropping bool
	senders  map[net.Conn]struct{} // CLUSTER SLOTSYNC connections served (source side)
	// swept is the shard this node swept unowned slots for at the last
	// map it installed as that shard's primary (0: it was not), and
	// sweptAll when it last looked at every slot (sweepUnownedLocked).
	swept    int
	sweptAll time.Time
	// cursors: the backlog cursors of the streams sent (copy on write,
	// under mu): the event loops wake them with the replicas' (sendInline).
	cursors atomic.Pointer[[]*repl.Cursor]
	sent    atomic.Int64  // bytes sent for moves (each reserved from Server.migLimit first)
	closed  bool          // the server is closing: no new importer or sender
	quit    chan struct{} // closed when closed is set (senders waiting on the limiter)

	// Totals for metrics: keys of the images sent and received, bytes
	// received, and slots handed over (sent: a map moved a slot from this
	// primary's shard to the move's target; received: an import ended
	// with this shard owning the slot).
	sentKeys, sentSlots            atomic.Int64
	recvBytes, recvKeys, recvSlots atomic.Int64

	// CLUSTER MOVEWAIT: its waiting clients (waiters) are woken when an
	// import's applied position advances (appliedCh closed and replaced).
	waiters   atomic.Int32
	appliedMu sync.Mutex
	appliedCh chan struct{}
}

// appliedChan returns the channel closed at the next advance of an
// import's applied position.
func (mv *migrations) appliedChan() chan struct{} {
	mv.appliedMu.Lock()
	defer mv.appliedMu.Unlock()
	if mv.appliedCh == nil {
		mv.appliedCh = make(chan struct{})
	}
	return mv.appliedCh
}

// appliedAdvanced wakes the MOVEWAIT clients, if any.
func (mv *migrations) appliedAdvanced() {
	if mv.waiters.Load() == 0 {
		return
	}
	mv.appliedMu.Lock()
	if mv.appliedCh != nil {
		close(mv.appliedCh)
		mv.appliedCh = nil
	}
	mv.appliedMu.Unlock()
}

// quitLocked returns the channel closed when the server closes.
func (mv *migrations) quitLocked() chan struct{} {
	if mv.quit == nil {
		mv.quit = make(chan struct{})
	}
	return mv.quit
}

// stopMoves ends this node's part in every move (Server.Close): the
// slots it sends are cut off and its importers halted, so that no
// goroutine outlives the server and no peer keeps it waiting.
func (s *Server) stopMoves() {
	s.moves.mu.Lock()
	s.moves.closed = true
	close(s.moves.quitLocked())
	ims := map[*importer]struct{}{}
	for _, si := range s.moves.imports {
		ims[si.im] = struct{}{}
	}
	s.moves.imports = nil
	for nc := range s.moves.senders {
		_ = nc.Close()
	}
	s.moves.mu.Unlock()
	for im := range ims {
		im.halt()
	}
}

// watchCursor adds a stream's backlog cursor to those the event loops
// wake when they add records (on), or removes it. With replicas attached
// the loops wake only the replicas' cursors (sendInline), so a stream
// woke at its 500 ms ping: a cutover waited that long for the slot's last
// change to reach the target.
func (mv *migrations) watchCursor(c *repl.Cursor, on bool) {
	mv.mu.Lock()
	defer mv.mu.Unlock()
	var cs []*repl.Cursor
	if p := mv.cursors.Load(); p != nil {
		cs = slices.Clone(*p)
	}
	if on {
		cs = append(cs, c)
	} else if i := slices.Index(cs, c); i >= 0 {
		cs = slices.Delete(cs, i, i+1)
	}
	mv.cursors.Store(&cs)
}

// wakeCursors wakes the streams' cursors (an event loop added records).
func (mv *migrations) wakeCursors() {
	if p := mv.cursors.Load(); p != nil {
		for _, c := range *p {
			c.Wake()
		}
	}
}

// cleanup is fn, run for a slot once the slot's previous cleanup (prev)
// ended; done is closed when it did.
type cleanup struct {
	prev, done chan struct{}
	fn         func()
}

// cleanupLocked begins fn for slot, to run after the slot's previous
// cleanup, and records it as the slot's last cleanup; it runs once
// startCleanupsLocked is called.
func (mv *migrations) cleanupLocked(slot int, fn func()) {
	if mv.cleaning == nil {
		mv.cleaning = map[int]chan struct{}{}
	}
	prev, done := mv.cleaning[slot], make(chan struct{})
	mv.cleaning[slot] = done
	mv.queued = append(mv.queued, cleanup{prev, done, fn})
}

// startCleanupsLocked runs the cleanups begun since its last call in one
// goroutine, one after the other. A goroutine per cleanup meant 1024 at
// every window's flip, on the source (its drops) and on the target (its
// imports' ends): in a runtime trace of a source at 20 MB/s they sat
// runnable 5-10 ms each, and its event loop with them, and GETs of slots
// that were not moving stalled 20-30 ms at each flip. Each cleanup only
// waits for ones begun before it (its slot's previous one, those ahead
// of it here), so one goroutine per batch cannot deadlock.
func (mv *migrations) startCleanupsLocked() {
	batch := mv.queued
	mv.queued = nil
	if len(batch) == 0 {
		return
	}
	go func() {
		for _, c := range batch {
			if c.prev != nil {
				<-c.prev
			}
			c.fn()
			close(c.done)
		}
	}()
}

func moveIdent(mg *cluster.Migration) string { return cluster.MoveIdent(mg) }

// reconcileMoves starts and stops importers and drops slots moved away,
// after map m was installed (prev: the map installed before, or nil).
func (s *Server) reconcileMoves(prev, m *cluster.Map, self string) {
	role, sh := m.Role(self)
	want := map[int]*cluster.Migration{}
	if role == cluster.RolePrimary && sh != nil {
		// Only the moves under way (the migrator's window; paused ones
		// import nothing, what was copied is dropped): the rest wait.
		for _, mg := range m.Window() {
			if mg.To == sh.ID {
				want[mg.Slot] = mg
			}
		}
	}
	if role == cluster.RolePrimary && sh != nil && prev != nil {
		// Slots this shard handed over: a move from it in the previous
		// map, now owned by the move's target.
		for slot, mg := range prev.Migrations {
			if mg.From == sh.ID && m.Migrations[slot] == nil && int(m.Slots[slot]) == mg.To {
				s.moves.sentSlots.Add(1)
			}
		}
	}
	s.moves.mu.Lock()
	defer s.moves.mu.Unlock()
	if s.moves.closed {
		return
	}
	defer s.moves.startCleanupsLocked()
	if s.moves.imports == nil {
		s.moves.imports = map[int]*slotImport{}
	}
	for slot, si := range s.moves.imports {
		mg := want[slot]
		if mg != nil && moveIdent(mg) == si.ident {
			continue
		}
		delete(s.moves.imports, slot)
		owned := sh != nil && int(m.Slots[slot]) == sh.ID
		if owned {
			s.moves.recvSlots.Add(1)
		}
		s.moves.cleanupLocked(slot, func() {
			si.halt()
			if !owned && role == cluster.RolePrimary {
				s.dropQueued(slot, "the move to this shard ended without it")
			}
		})
	}
	// The new moves, one importer per source (per slot for a source that
	// only speaks SLOTSYNC), in slot order.
	newSlots := make([]int, 0, len(want))
	for slot := range want {
		if s.moves.imports[slot] == nil {
			newSlots = append(newSlots, slot)
		}
	}
	slices.Sort(newSlots)
	bySource := map[string]*importer{}
	var started []*importer
	for _, slot := range newSlots {
		mg := want[slot]
		from := m.Shards[mg.From]
		if from == nil || m.Addr(from.Primary) == "" {
			continue
		}
		addr := m.PeerAddr(from.Primary, s.peerTLSOn())
		legacy := m.Nodes[from.Primary].Protocol < cluster.MoveBatchProtocol
		im := bySource[addr]
		if im == nil || legacy {
			im = &importer{s: s, from: addr, legacy: legacy, bySlot: map[int]*slotImport{},
				stop: make(chan struct{}), done: make(chan struct{})}
			if !legacy {
				bySource[addr] = im
			}
			started = append(started, im)
		}
		si := &slotImport{im: im, slot: slot, ident: moveIdent(mg), after: s.moves.cleaning[slot]}
		si.state.Store(&impConnecting)
		im.slots = append(im.slots, si)
		im.bySlot[slot] = si
		im.live++
		s.moves.imports[slot] = si
	}
	for _, im := range started {
		go im.run()
	}
	// A source starts numbering its writes (the backlog) as soon as a move
	// appears, well before the target asks for the slot: a write decides
	// whether to journal before it locks its slot, so one that decided
	// just before the backlog existed must have run by the time the image
	// is taken (the target connects after installing this map too).
	if role == cluster.RolePrimary && sh != nil {
		if slices.Contains(m.QueuedFrom, sh.ID) { // moves behind the window (a window view)
			s.ensureBacklog()
		}
		for _, mg := range m.Migrations {
			if mg.From == sh.ID {
				s.ensureBacklog()
				break
			}
		}
	}
	if role == cluster.RolePrimary && sh != nil && !s.repl.isReplica.Load() {
		s.sweepUnownedLocked(prev, m, sh.ID)
	} else {
		s.moves.swept = 0
	}
}

// SweepUnowned drops the keys of slots map m gives to other shards
// (sweepUnownedLocked); the agent calls it when this node starts acting
// as its shard's primary.
func (s *Server) sweepUnowned(m *cluster.Map, shard int) {
	s.moves.mu.Lock()
	defer s.moves.mu.Unlock()
	s.sweepUnownedLocked(nil, m, shard)
	s.moves.startCleanupsLocked()
}

// sweepUnownedLocked: a primary drops the keys it holds of slots another
// shard owns and that it does not import: a slot that just moved away,
// and also one that moved while this node was down or a replica (it
// crashed before dropping, or a replica that never saw the drop was
// promoted). The deletes are journaled, so its replicas drop them too.
// prev is the map installed before m (nil: unknown).
//
// It looks at every slot when the previous map is unknown, when the
// previous sweep was not for this shard, and at most a second apart;
// otherwise only at the slots the previous map gave this shard: the
// others were not this shard's at the previous sweep, which dropped
// their keys or left them to an import (whose end without the slot
// drops them, reconcileMoves). Looking at all 16384 slots (a lock each)
// at every map epoch of a rebalance was a fifth of a target's CPU.
func (s *Server) sweepUnownedLocked(prev, m *cluster.Map, shard int) {
	all := prev == nil || s.moves.swept != shard || time.Since(s.moves.sweptAll) >= time.Second
	s.moves.swept = shard
	if all {
		s.moves.sweptAll = time.Now()
	}
	for i := range m.Slots {
		if int(m.Slots[i]) == shard || m.Slots[i] == 0 || (!all && int(prev.Slots[i]) != shard) || s.moves.imports[i] != nil {
			continue
		}
		s.db.Lock(i)
		n := s.db.Slot(i).Len()
		s.db.Unlock(i)
		if n == 0 {
			continue
		}
		why := "the slot is shard " + strconv.Itoa(int(m.Slots[i])) + "'s"
		if prev == nil || int(prev.Slots[i]) != shard {
			why += " (it moved while this node was not acting as its shard's primary)"
		}
		s.moves.cleanupLocked(i, func() { s.dropQueued(i, why) })
	}
}

// dropJob is a slot whose keys the dropper deletes; done is closed then.
type dropJob struct {
	slot int
	why  string
	done chan struct{}
}

// dropQueued has the dropper delete the slot's keys (dropUnowned) and
// waits until it did. One goroutine drops every slot, one after the
// other, yielding after each: when the cleanups of a window's 1024 slots
// each dropped their own at once, they contended for the backlog's lock
// and the Go scheduler with the event loops, which waited for a
// processor up to 27 ms (PING at the source of a move stalled 20-40 ms
// every second).
func (s *Server) dropQueued(slot int, why string) {
	mv := &s.moves
	job := dropJob{slot, why, make(chan struct{})}
	mv.dropMu.Lock()
	mv.drops = append(mv.drops, job)
	start := !mv.dropping
	mv.dropping = true
	mv.dropMu.Unlock()
	if start {
		go s.dropper()
	}
	<-job.done
}

// dropper runs the queued drops until there is none left.
func (s *Server) dropper() {
	mv := &s.moves
	for {
		mv.dropMu.Lock()
		if len(mv.drops) == 0 {
			mv.drops, mv.dropping = nil, false
			mv.dropMu.Unlock()
			return
		}
		job := mv.drops[0]
		mv.drops[0] = dropJob{}
		mv.drops = mv.drops[1:]
		mv.dropMu.Unlock()
		s.dropUnowned(job.slot, job.why)
		close(job.done)
		runtime.Gosched()
	}
}

// halt stops the importer (every slot) and waits for its goroutine.
func (im *importer) halt() {
	im.stopOnce.Do(func() { close(im.stop) })
	im.mu.Lock()
	if im.conn != nil {
		_ = im.conn.Close()
	}
	im.mu.Unlock()
	<-im.done
}

// halt ends the slot's import: once it returns, the importer writes no
// more to the slot. The last slot's halt stops the importer.
func (si *slotImport) halt() {
	im := si.im
	im.mu.Lock()
	last := false
	if !si.halted {
		si.halted = true
		im.live--
		last = im.live == 0
	}
	im.mu.Unlock()
	if last {
		im.halt()
	}
}

// fail marks every slot of the importer failed.
func (im *importer) fail(err error) {
	im.mu.Lock()
	im.err = err.Error()
	im.mu.Unlock()
	for _, si := range im.slots {
		si.state.Store(&impFailed)
	}
}

// status returns what CLUSTER MIGRATION reports of the slot's import.
func (si *slotImport) status() (state string, applied uint64, keys int64, lastErr string) {
	x := importStatuses([]*slotImport{si})[0]
	return x.state, x.applied, x.keys, x.err
}

// importStatus is what CLUSTER MIGRATION reports of a slot's import.
type importStatus struct {
	state   string
	applied uint64
	keys    int64
	err     string
}

// importStatuses is the status of every import of sis (nil: none, a
// zero status), locking each importer once: the importer holds its lock
// while it applies a frame, and a status of a window's 1024 slots that
// locked it once per slot waited behind up to 1024 frames (7-10 ms of
// the event loop in CLUSTER MOVEDONE during a move under load).
func importStatuses(sis []*slotImport) []importStatus {
	out := make([]importStatus, len(sis))
	var seen []*importer // few: one per source
	for i, si := range sis {
		if si == nil || slices.Contains(seen, si.im) {
			continue
		}
		im := si.im
		seen = append(seen, im)
		im.mu.Lock()
		im.advanceLocked(im.s.ackedLSN())
		for j := i; j < len(sis); j++ {
			if x := sis[j]; x != nil && x.im == im {
				out[j].err = x.err
				if out[j].err == "" {
					out[j].err = im.err
				}
			}
		}
		im.mu.Unlock()
	}
	for i, si := range sis {
		if si != nil {
			out[i].state, out[i].applied, out[i].keys = *si.state.Load(), si.im.applied.Load(), si.keys.Load()
		}
	}
	return out
}

func (im *importer) stopped() bool {
	select {
	case <-im.stop:
		return true
	default:
		return false
	}
}

// run imports once, from empty slots. It never retries by itself: a
// failed import stays failed until the migrator cancels the attempts and
// the next attempts start a new importer (a retry here could drop a copy
// the migrator has just made the slot's owner).
func (im *importer) run() {
	defer close(im.done)
	s := im.s
	for _, si := range im.slots {
		if si.after != nil {
			select {
			case <-si.after:
			case <-im.stop:
				return
			}
		}
	}
	// A map names this node its shard's primary before it acts as one
	// (on its lease): until then it follows no primary but is still a
	// replica, whose log continues its old primary's stream, and the
	// import's writes would be records of its own there (actingPrimary).
	select {
	case <-s.actingPrimary():
	case <-im.stop:
		return
	}
	var slots []*slotImport
	for _, si := range im.slots {
		if s.dropUnowned(si.slot, "an import begins") {
			slots = append(slots, si)
			continue
		}
		im.mu.Lock()
		si.err = "this node serves the slot, or no longer acts as a primary: not importing it"
		im.mu.Unlock()
		si.state.Store(&impFailed)
	}
	if len(slots) == 0 {
		return
	}
	err := im.once(slots)
	if im.stopped() {
		return
	}
	s.log.Warn("slot import failed", "slots", len(slots), "first", slots[0].slot, "from", im.from, "err", err)
	im.fail(err)
}

func (im *importer) once(slots []*slotImport) error {
	s := im.s
	im.applied.Store(0)
	im.mu.Lock()
	im.marks = nil
	im.mu.Unlock()
	conn, err := s.dialPeer(im.from, 5*time.Second)
	if err != nil {
		return err
	}
	im.mu.Lock()
	im.conn = conn
	im.mu.Unlock()
	if im.stopped() {
		conn.Close()
		return errors.New("stopped")
	}
	defer conn.Close()
	// The source may require a password: AUTH first (masteruser /
	// masterauth, as for replication), its reply read ahead of the stream.
	auth := s.nodeCredentials().AuthArgs()
	var out []byte
	if auth != nil {
		out = resp.AppendCommand(out, auth...)
	}
	if im.legacy {
		out = resp.AppendCommand(out, "CLUSTER", "SLOTSYNC", strconv.Itoa(slots[0].slot))
	} else {
		req := []string{"CLUSTER", "MOVESYNC"}
		for _, si := range slots {
			req = append(req, strconv.Itoa(si.slot))
		}
		out = resp.AppendCommand(out, req...)
	}
	if _, err := conn.Write(out); err != nil {
		return err
	}
	cr := &countReader{conn, &s.moves.recvBytes, 5 * time.Second}
	fr := &frameReader{r: cr, buf: make([]byte, 256<<10)}
	if auth != nil {
		if _, err := fr.next(); err != nil {
			return fmt.Errorf("auth to the source %s: %w", im.from, err)
		}
	}
	cr.timeout = 3 * s.replTimeout()
	rs := &replayState{cl: s.replayClient(), journal: true}
	putArgs := [][]byte{opPut, nil}
	slotArg := func(b []byte) (*slotImport, error) {
		if im.legacy {
			return slots[0], nil
		}
		n, err := strconv.Atoi(string(b))
		if si := im.bySlot[n]; err == nil && si != nil {
			return si, nil
		}
		return nil, fmt.Errorf("a frame for slot %q, not asked for", b)
	}
	var cur *slotImport // the slot whose image is coming
	imaging := len(slots)
	var aside *engine.Entry // a big key being assembled from its parts
	var asideKey []byte
	var enc persist.SectionEncoder
	for {
		// The frame's arguments alias the reader's buffer until the next
		// frame: what is applied is copied by the writes it makes.
		args, err := fr.next()
		if err != nil {
			return err
		}
		if len(args) < 2 {
			return fmt.Errorf("unexpected frame from the source: %q", args)
		}
		op := string(args[0])
		if cur == nil && (op == "put" || op == "part" || op == "parted") {
			return fmt.Errorf("a %s frame outside an image", op)
		}
		switch op {
		case "image":
			si, err := slotArg(args[1])
			if err != nil {
				return err
			}
			cur = si
			si.state.Store(&impImage)
		case "put":
			si := cur
			putArgs[1] = args[1]
			if err := im.replay(si, rs, putArgs); err != nil {
				return err
			}
			si.keys.Add(1)
			s.moves.recvKeys.Add(1)
		case "part":
			key, e, err := persist.DecodeEntry(args[1])
			if err != nil {
				return fmt.Errorf("part frame: %w", err)
			}
			if aside == nil {
				aside, asideKey = e, append(asideKey[:0], key...)
			} else if string(key) != string(asideKey) {
				return fmt.Errorf("a part of %q before the end of %q", key, asideKey)
			} else if err := persist.MergeEntryPart(aside, e); err != nil {
				return fmt.Errorf("part of %q: %w", key, err)
			}
		case "parted":
			if aside == nil {
				break // an empty collection: nothing was sent
			}
			if string(args[1]) != string(asideKey) {
				return fmt.Errorf("end of %q while building %q", args[1], asideKey)
			}
			// Journaled whole: the target's replicas and log get one put.
			si := cur
			putArgs[1] = enc.EncodeEntry(string(asideKey), aside)
			im.mu.Lock() // as in replay
			if !si.halted {
				err = s.putEntry(rs, 0, si.slot, asideKey, aside, putArgs)
			}
			im.mu.Unlock()
			if err != nil {
				return err
			}
			aside = nil
			si.keys.Add(1)
			s.moves.recvKeys.Add(1)
		case "imaged":
			if aside != nil {
				return fmt.Errorf("the image ended inside %q", asideKey)
			}
			if !im.legacy {
				if si, err := slotArg(args[1]); err != nil || si != cur {
					return fmt.Errorf("the end of slot %q's image inside another", args[1])
				}
			}
			// The slot streams once every image of the connection is in:
			// only then do the source's positions come, so until then its
			// applied position says nothing about the slot (a migrator
			// that took the slot for caught up fenced it, and its writes
			// waited for the other slots' images: seconds at a low
			// migrate-max-bytes-per-sec).
			cur = nil
			if imaging--; imaging == 0 {
				for _, si := range slots {
					si.state.Store(&impStreaming)
				}
			}
		case "eff":
			first := 2 // eff <lsn> <slot> <args...> (legacy: eff <lsn> <args...>)
			if !im.legacy {
				first = 3
			}
			if len(args) <= first {
				return errors.New("short effect frame")
			}
			si, err := slotArg(args[2])
			if err != nil {
				return err
			}
			if err := im.replay(si, rs, args[first:]); err != nil {
				return err
			}
		case "pos":
			lsn, err := strconv.ParseUint(string(args[1]), 10, 64)
			if err != nil {
				return fmt.Errorf("bad position %q", args[1])
			}
			if imaging == 0 && cur == nil {
				local := s.lastLSN()
				s.writeLogNow()
				im.noteApplied(lsn, local)
			}
		default:
			return fmt.Errorf("unknown frame %q", args[0])
		}
	}
}

// replay applies args, an effect on si's slot, unless the slot was
// halted; under im.mu, so once halt returns no write is made to it.
func (im *importer) replay(si *slotImport, rs *replayState, args [][]byte) error {
	im.mu.Lock()
	defer im.mu.Unlock()
	if si.halted {
		return nil
	}
	return im.s.replayEffect(rs, 0, si.slot, args)
}

// writeLogNow hands the log the records appended so far, as an event
// loop does before it answers (WriteNow; SyncNow under appendfsync
// always). An importer calls it at each source position it applied:
// its writes come from no event loop, so they waited for the log's
// flusher (100 ms), and the position was reported that much later, or
// at the source's next position (up to 500 ms when nothing else was
// written there): inside a cutover's write pause.
func (s *Server) writeLogNow() {
	if lg := s.aof.Load(); lg != nil {
		if lg.Policy() == persist.FsyncAlways {
			_ = lg.SyncNow()
		} else {
			_ = lg.WriteNow()
		}
	}
}

// dropUnowned deletes the slot's keys in batches, each delete journaled
// (this node's replicas drop them too). It stops, returning false, as
// soon as the installed map has this node serve the slot (as its shard's
// primary or replica; checked under the slot's lock, which a map change
// that affects the slot holds while it switches), or the node is a
// replica (a record of its own would sit in its primary's stream:
// actingPrimary; its primary's drop reaches it, or it sweeps the slot
// when it starts acting as primary: sweepUnowned).
func (s *Server) dropUnowned(slot int, why string) bool {
	sl := s.db.Slot(slot)
	n := 0
	var eff []byte
	del := [][]byte{opDel, nil}
	for {
		if s.closing.Load() {
			return false // the log may be closed: the next start drops them (sweepUnowned)
		}
		var keys []string
		s.db.Lock(slot)
		if v := s.clus.view.Load(); v != nil && v.slots[slot].state != slotRemote {
			s.db.Unlock(slot)
			if n > 0 {
				s.log.Warn("stopped dropping a slot this node now serves", "slot", slot, "dropped", n)
			}
			return false
		}
		if s.repl.isReplica.Load() {
			s.db.Unlock(slot)
			if n > 0 {
				s.log.Warn("stopped dropping a slot: this node became a replica", "slot", slot, "dropped", n)
			}
			return false
		}
		s.db.ForEachHeld(sl, func(k string, _ *engine.Entry) bool {
			keys = append(keys, k)
			return len(keys) < 512
		})
		for _, k := range keys {
			del[1] = []byte(k)
			s.db.Delete(sl, del[1])
			if lsn := s.journalEffect(&eff, slot, del); lsn > 0 {
				sl.LSN = lsn
			}
			if len(sl.Watchers) > 0 {
				s.signalModified(del[1])
			}
		}
		s.db.Unlock(slot)
		n += len(keys)
		if len(keys) < 512 {
			break
		}
		runtime.Gosched() // the event loops first (dropQueued)
	}
	if n > 0 {
		s.log.Info("dropped a slot's keys", "slot", slot, "keys", n, "why", why)
	}
	return true
}

// cmdSlotSync serves CLUSTER MOVESYNC slot [slot ...] and, for targets
// of protocol 1, CLUSTER SLOTSYNC slot: the source's side of moves (see
// the frames above). It takes the connection over, like PSYNC.
func cmdSlotSync(c *Ctx) {
	s, cl := c.srv, c.cl
	legacy := strings.EqualFold(string(c.args[1]), "slotsync")
	slots, ok := slotArgs(c, c.args[2:], true)
	if !ok {
		return
	}
	if cl.inMulti || c.inExec {
		c.w.Error("ERR SLOTSYNC cannot run in a transaction")
		return
	}
	if s.repl.isReplica.Load() {
		c.w.Error("ERR SLOTSYNC: this node is not acting as a primary")
		return
	}
	nc, pending, ok := c.takeOver("slotsync")
	if !ok {
		return
	}
	s.moves.mu.Lock()
	if s.moves.closed {
		s.moves.mu.Unlock()
		nc.Close()
		return
	}
	if s.moves.senders == nil {
		s.moves.senders = map[net.Conn]struct{}{}
	}
	s.moves.senders[nc] = struct{}{}
	s.moves.mu.Unlock()
	s.repl.wg.Add(1)
	go func() {
		defer s.repl.wg.Done()
		defer func() {
			s.moves.mu.Lock()
			delete(s.moves.senders, nc)
			s.moves.mu.Unlock()
			nc.Close()
		}()
		if err := s.sendSlots(nc, slots, legacy, pending); err != nil {
			s.log.Info("slot sync ended", "slots", len(slots), "first", slots[0], "to", nc.RemoteAddr().String(), "err", err)
		}
	}()
}

var (
	frameImage  = []byte("image")
	frameImaged = []byte("imaged")
	framePut    = []byte("put")
	framePart   = []byte("part")
	frameParted = []byte("parted")
	frameEff    = []byte("eff")
	framePos    = []byte("pos")
)

// sendSlots streams slots to a target: each slot's image in turn (taken
// under its lock), then every later change to them from the node's
// stream, read and decoded once for all of them. legacy: one slot, the
// frames without their slot (CLUSTER SLOTSYNC).
func (s *Server) sendSlots(nc net.Conn, slots []int, legacy bool, pending []byte) error {
	bl := s.ensureBacklog()
	// From before every image; each slot's own starting point is after
	// the records its image holds (skip).
	cur, err := bl.NewCursor(bl.Last() + 1)
	if err != nil {
		return err
	}
	defer cur.Close()
	s.moves.watchCursor(cur, true)
	defer s.moves.watchCursor(cur, false)
	timeout := s.replTimeout()
	s.moves.mu.Lock()
	quit := s.moves.quitLocked()
	s.moves.mu.Unlock()
	// write sends b in pieces of 64 KiB, each reserved from the node's
	// migrate-max-bytes-per-sec bucket (shared by every move it sends).
	// Only the images wait for it (bulk): the changes after them are
	// counted but never wait, so a fenced slot's last changes are not held
	// back behind other slots' images, which would stretch its cutover's
	// write pause to the limiter's debt (hundreds of ms at a low rate).
	// They come at the rate the slots are written, which the limit cannot
	// lower anyway.
	write := func(b []byte, bulk bool) error {
		for len(b) > 0 {
			n := min(len(b), 64<<10)
			changed := s.migLimit.changedChan()
			if d := s.migLimit.reserve(n); d > 0 && bulk {
				if err := s.migLimit.wait(d, changed, quit); err != nil {
					return err
				}
			}
			_ = nc.SetWriteDeadline(time.Now().Add(timeout))
			if _, err := nc.Write(b[:n]); err != nil {
				return err
			}
			s.moves.sent.Add(int64(n))
			b = b[n:]
		}
		return nil
	}
	var enc persist.SectionEncoder
	out := append([]byte(nil), pending...)
	var num, num2 []byte
	active := make([]bool, cluster.NumSlots)
	skip := make([]uint64, cluster.NumSlots) // a slot's records up to this LSN are in its image
	for _, slot := range slots {
		sl := s.db.Slot(slot)
		s.db.Lock(slot)
		// Every later change to the slot is numbered after bl.Last().
		skip[slot], active[slot] = bl.Last(), true
		num = strconv.AppendUint(num[:0], sl.LSN, 10)
		if legacy {
			out = resp.AppendCommandBytes(out, frameImage, num)
		} else {
			num2 = strconv.AppendInt(num2[:0], int64(slot), 10)
			out = resp.AppendCommandBytes(out, frameImage, num2, num)
		}
		keys := 0
		s.db.ForEachHeld(sl, func(k string, e *engine.Entry) bool {
			keys++
			if e.MemSize() <= migratePartLimit {
				out = resp.AppendCommandBytes(out, framePut, enc.EncodeEntry(k, e))
				return true
			}
			_ = persist.EncodeEntryParts(k, e, migratePartLimit, func(p []byte) error {
				out = resp.AppendCommandBytes(out, framePart, p)
				return nil
			})
			out = resp.AppendCommandBytes(out, frameParted, []byte(k))
			return true
		})
		s.db.Unlock(slot)
		num = strconv.AppendInt(num[:0], int64(keys), 10)
		if legacy {
			out = resp.AppendCommandBytes(out, frameImaged, num)
		} else {
			out = resp.AppendCommandBytes(out, frameImaged, num2, num)
		}
		if err := write(out, true); err != nil {
			return err
		}
		s.moves.sentKeys.Add(int64(keys))
		if cap(out) > 4<<20 {
			out = nil
		}
		out = out[:0]
	}
	s.log.Info("slot images sent", "slots", len(slots), "first", slots[0], "to", nc.RemoteAddr().String())
	// The target never writes after MOVESYNC: a read returns when it
	// closes the connection.
	closed := make(chan struct{})
	go func() {
		var b [1]byte
		_, _ = nc.Read(b[:])
		close(closed)
	}()
	ping := time.NewTicker(500 * time.Millisecond)
	defer ping.Stop()
	var args, frame [][]byte
	live := len(slots)
	for {
		out = out[:0]
		for len(out) < 1<<20 {
			data, err := cur.Next(256 << 10)
			if err != nil {
				return err
			}
			if data == nil {
				break
			}
			// Once this node no longer owns a slot (the flip), its stream
			// ends here: what follows is this node dropping its copy
			// (journaled deletes, for its replicas), which the target
			// must never apply. The flip came after the target applied
			// the fenced slot's last change, so nothing of it is lost.
			// Checked after reading the data: a delete in it was
			// journaled after the view changed, so it is seen here.
			if v := s.clus.view.Load(); v != nil {
				for _, slot := range slots {
					if active[slot] && v.slots[slot].state == slotRemote {
						active[slot] = false
						live--
					}
				}
			}
			if live == 0 {
				if err := write(out, false); err != nil {
					return err
				}
				return errors.New("the slots moved away: their stream ends")
			}
			for len(data) > 0 {
				n := persist.RecordLen(data)
				lsn, payload, err := persist.CheckRecord(data[:n])
				if err != nil {
					return err
				}
				data = data[n:]
				err = persist.ForEachEffectBuf(payload, &args, func(es int, eargs [][]byte) error {
					if es == persist.AllSlots {
						// FLUSHALL: the slots' keys go (as deletes: the
						// target flushes only these slots).
						return errors.New("the source flushed every slot during the move")
					}
					if !active[es] || lsn <= skip[es] {
						return nil
					}
					num = strconv.AppendUint(num[:0], lsn, 10)
					frame = append(frame[:0], frameEff, num)
					if !legacy {
						num2 = strconv.AppendInt(num2[:0], int64(es), 10)
						frame = append(frame, num2)
					}
					out = resp.AppendCommandBytes(out, append(frame, eargs...)...)
					return nil
				})
				if err != nil {
					return err
				}
			}
		}
		num = strconv.AppendUint(num[:0], cur.NextLSN()-1, 10)
		out = resp.AppendCommandBytes(out, framePos, num)
		if err := write(out, false); err != nil {
			return err
		}
		if cap(out) > 4<<20 {
			out = nil
		}
		select {
		case <-cur.Wait():
		case <-ping.C:
		case <-closed:
			return nil
		}
	}
}

// frameReader reads a move's frames (RESP arrays of bulk strings, the
// request encoding: resp.Parse) from one buffer, without copying them.
type frameReader struct {
	r          io.Reader
	buf        []byte
	start, end int
	args       [][]byte
}

// maxMoveFrame bounds a frame: the largest is a part of a big key
// (migratePartLimit, plus one element) or a key up to it.
const maxMoveFrame = 64 << 20

// next returns the next frame; an error reply ("-...") becomes an error.
func (f *frameReader) next() ([][]byte, error) {
	for {
		if f.start < f.end {
			b := f.buf[f.start:f.end]
			if b[0] == '-' || b[0] == '+' {
				if i := bytes.IndexByte(b, '\n'); i >= 0 {
					f.start += i + 1
					line := string(bytes.TrimRight(b[1:i], "\r"))
					if b[0] == '-' {
						return nil, errors.New(line)
					}
					f.args = append(f.args[:0], []byte(line))
					return f.args, nil
				}
			} else {
				args, n, need, err := resp.Parse(b, f.args, resp.Limits{MaxBulkLen: maxMoveFrame, MaxMultibulkLen: 1 << 20, MaxInlineLen: 64 << 10})
				if err != nil {
					return nil, err
				}
				f.args = args
				if n > 0 {
					f.start += n
					if len(args) == 0 {
						continue
					}
					return args, nil
				}
				if need > maxMoveFrame+1024 {
					return nil, fmt.Errorf("a frame of %d bytes from the source", need)
				}
				if need > len(f.buf) {
					nb := make([]byte, max(need, 2*len(f.buf)))
					f.end = copy(nb, f.buf[f.start:f.end])
					f.buf, f.start = nb, 0
				}
			}
		}
		if f.start > 0 && (f.start == f.end || len(f.buf)-f.end < 64<<10) {
			f.end = copy(f.buf, f.buf[f.start:f.end])
			f.start = 0
		}
		if f.end == len(f.buf) {
			if len(f.buf) > 2*maxMoveFrame {
				return nil, errors.New("a frame from the source too large")
			}
			nb := make([]byte, 2*len(f.buf))
			copy(nb, f.buf[:f.end])
			f.buf = nb
		}
		n, err := f.r.Read(f.buf[f.end:])
		f.end += n
		if err != nil && n == 0 {
			return nil, err
		}
	}
}

// countReader adds the bytes read to n (an import's received bytes),
// each read bounded by timeout (set per read, not per frame: a deadline
// is a runtime timer to move, and a read batch holds hundreds of frames).
type countReader struct {
	r       net.Conn
	n       *atomic.Int64
	timeout time.Duration
}

func (c countReader) Read(p []byte) (int, error) {
	_ = c.r.SetReadDeadline(time.Now().Add(c.timeout))
	k, err := c.r.Read(p)
	c.n.Add(int64(k))
	return k, err
}

// cmdMigrationStatus serves CLUSTER MIGRATION slot: what the migrator
// reads from both sides of a move, as a flat map: the installed map's
// epoch, the slot's last change (LSN), whether writes to it are fenced
// here, and this node's import of it (state, source position applied,
// image keys, last error).
//
// With several slots (protocol 2) the reply is compact, one query for a
// whole window: [map_epoch, [slot, slot_lsn, fenced, import_state,
// import_applied, import_keys, import_error, import_move], ...] (a
// window's worth of single queries took the migrator 15-45 ms, twice
// inside every cutover's pause).
func cmdMigrationStatus(c *Ctx) {
	slots, ok := slotArgs(c, c.args[2:], false)
	if !ok {
		return
	}
	if c.cl.inMulti || c.inExec {
		// EXEC holds the slots' locks that the status takes: it hung
		// the node's event loop.
		c.w.Error("ERR CLUSTER MIGRATION cannot run in a transaction")
		return
	}
	s := c.srv
	c.offLoop(func(rw *resp.Writer, _ func() bool) { s.writeMoveStatus(rw, slots, len(slots) > 1) })
}

// writeMoveStatus writes CLUSTER MIGRATION's reply for slots: compact
// (the multi-slot form) or, for one slot, the flat map.
func (s *Server) writeMoveStatus(w *resp.Writer, slots []int, compact bool) {
	v := s.clus.view.Load()
	var epoch uint64
	if v != nil {
		epoch = v.epoch
	}
	type status struct {
		lsn, applied      uint64
		fenced            bool
		state, err, ident string
		keys              int64
	}
	st := make([]status, len(slots))
	for i, slot := range slots {
		s.db.Lock(slot)
		st[i].lsn = s.db.Slot(slot).LSN
		s.db.Unlock(slot)
		st[i].fenced = v != nil && v.slots[slot].fenced
		st[i].state = "none"
	}
	sis := make([]*slotImport, len(slots))
	s.moves.mu.Lock()
	for i, slot := range slots {
		if si := s.moves.imports[slot]; si != nil {
			sis[i] = si
			st[i].ident = si.ident
		}
	}
	for i, x := range importStatuses(sis) {
		if sis[i] != nil {
			st[i].state, st[i].applied, st[i].keys, st[i].err = x.state, x.applied, x.keys, x.err
		}
	}
	s.moves.mu.Unlock()
	if !compact {
		x := st[0]
		w.Array(16)
		w.Bulk([]byte("map_epoch"))
		w.Int(int64(epoch))
		w.Bulk([]byte("slot_lsn"))
		w.Int(int64(x.lsn))
		w.Bulk([]byte("fenced"))
		w.Int(b2i(x.fenced))
		w.Bulk([]byte("import_state"))
		w.Bulk([]byte(x.state))
		w.Bulk([]byte("import_applied"))
		w.Int(int64(x.applied))
		w.Bulk([]byte("import_keys"))
		w.Int(x.keys)
		w.Bulk([]byte("import_error"))
		w.Bulk([]byte(x.err))
		w.Bulk([]byte("import_move"))
		w.Bulk([]byte(x.ident))
		return
	}
	w.Array(1 + len(slots))
	w.Int(int64(epoch))
	for i, x := range st {
		w.Array(8)
		w.Int(int64(slots[i]))
		w.Int(int64(x.lsn))
		w.Int(b2i(x.fenced))
		w.Bulk([]byte(x.state))
		w.Int(int64(x.applied))
		w.Int(x.keys)
		w.Bulk([]byte(x.err))
		w.Bulk([]byte(x.ident))
	}
}

// slotArgs parses a list of slot arguments (with unique, a slot given
// twice is refused); false: the error is replied.
func slotArgs(c *Ctx, args [][]byte, unique bool) ([]int, bool) {
	var seen map[int]bool
	if unique {
		seen = map[int]bool{}
	}
	slots := make([]int, 0, len(args))
	for _, a := range args {
		slot, msg := slotArg(a, seen)
		if msg != "" {
			c.w.Error(msg)
			return nil, false
		}
		slots = append(slots, slot)
	}
	return slots, true
}

// slotArg parses a slot argument of the slot-move commands; with seen, a
// slot given twice is refused. msg is the error reply, "" if none.
func slotArg(a []byte, seen map[int]bool) (slot int, msg string) {
	slot, err := strconv.Atoi(string(a))
	if err != nil || slot < 0 || slot >= cluster.NumSlots {
		return 0, "ERR Invalid or out of range slot"
	}
	if seen != nil {
		if seen[slot] {
			return 0, "ERR Slot " + strconv.Itoa(slot) + " specified multiple times"
		}
		seen[slot] = true
	}
	return slot, ""
}
