package server

// The migrator's pushes at a slot move's cutover (docs/cluster.md,
// "Moving slots"): the write pause of a moving slot lasts from its fence
// on the source to the flip of its owner, and waiting for each of the
// two maps to reach the nodes through their long poll (the commit's
// wake-up, the map's JSON, its decoding and install on every node) was
// most of it. So once a cutover or a done step is committed, the
// migrator tells the two primaries directly:
//
//	CLUSTER MOVEFENCE epoch slot ident [slot ident ...]
//	    the cutover committed at map epoch `epoch`: the source fences the
//	    slots (writes get TRYAGAIN) and answers their status as CLUSTER
//	    MIGRATION's compact form does (the slots' LSNs are final then).
//	CLUSTER MOVEDONE epoch slot ident lsn [slot ident lsn ...]
//	    the flip committed at map epoch `epoch`: the source answers MOVED
//	    to the target, the target serves the slot; an array of 1 (taken,
//	    or already so) or 0 (refused) per slot.
//
// The map stays the only authority: a push is only the news of a
// committed step reaching a node before its map does. It applies to a
// slot only while the installed map is older than `epoch` and still
// holds the same attempt of the move (ident, cluster.MoveIdent); a map
// of that epoch or later replaces it (that map has the step, or
// something newer). A fence is always safe (it only refuses writes). A
// flip is taken only where the committed one would be: on the source
// when the slot is fenced here and its last change is at most lsn (the
// position the target applied), on the target when its import of this
// attempt is streaming and has applied lsn. Anything else refuses the
// slot: the map brings the step as before.

import (
	"strconv"
	"strings"
	"time"

	"shoal/internal/cluster"
	"shoal/internal/resp"
)

// pushedStep is a step the migrator pushed for one slot.
type pushedStep struct {
	flip  bool   // MOVEDONE (else MOVEFENCE)
	epoch uint64 // the map epoch that commits it
	ident string // the move's attempt (cluster.MoveIdent)
	to    int    // the move's target shard
}

// applyPushedLocked drops the pushed steps that view v's map replaces
// and applies the others to v (not yet published; s.clus.mu held).
func (s *Server) applyPushedLocked(v *clusterView) {
	for slot, p := range s.clus.pushed {
		mg := (*cluster.Migration)(nil)
		if v.m != nil {
			mg = v.m.Migrations[slot]
		}
		if v.m == nil || v.m.Epoch >= p.epoch || mg == nil || moveIdent(mg) != p.ident || mg.To != p.to {
			delete(s.clus.pushed, slot)
			continue
		}
		v.applyPushed(slot, p)
	}
}

// applyPushed changes slot's route in v as the pushed step says.
func (v *clusterView) applyPushed(slot int, p pushedStep) {
	r := &v.slots[slot]
	if !p.flip {
		r.fenced = true // only a primary's writes look at it
		return
	}
	r.shard, r.fenced, r.incoming = uint16(p.to), false, false
	switch {
	case p.to != v.shard:
		r.state = slotRemote
	case v.role == cluster.RolePrimary:
		r.state = slotPrimary
	default:
		r.state = slotReplica
	}
}

// pushArgs parses the pushes' arguments after the subcommand: a number
// that lead parses (an epoch, mapEpochArg; MOVEWAIT's timeout), then
// groups of width (slot ident [lsn]); false: the error is written.
func pushArgs(c *Ctx, width int, lead func([]byte) (uint64, string)) (first uint64, slots []int, idents []string, lsns []uint64, ok bool) {
	args := c.args[2:]
	if len(args) < 1+width || (len(args)-1)%width != 0 {
		c.w.Error("ERR wrong number of arguments for 'cluster|" + strings.ToLower(string(c.args[1])) + "' command")
		return
	}
	first, msg := lead(args[0])
	if msg != "" {
		c.w.Error(msg)
		return
	}
	seen := map[int]bool{}
	for i := 1; i < len(args); i += width {
		slot, msg := slotArg(args[i], seen)
		if msg != "" {
			c.w.Error(msg)
			return
		}
		if len(args[i+1]) == 0 {
			c.w.Error("ERR Empty move ident")
			return
		}
		slots, idents = append(slots, slot), append(idents, string(args[i+1]))
		if width == 3 {
			lsn, err := strconv.ParseUint(string(args[i+2]), 10, 64)
			if err != nil {
				c.w.Error("ERR Invalid LSN")
				return
			}
			lsns = append(lsns, lsn)
		}
	}
	if c.cl.inMulti || c.inExec {
		c.w.Error("ERR CLUSTER " + strings.ToUpper(string(c.args[1])) + " cannot run in a transaction")
		return
	}
	return first, slots, idents, lsns, true
}

// mapEpochArg parses the map epoch of CLUSTER MOVEFENCE and MOVEDONE.
func mapEpochArg(b []byte) (uint64, string) {
	epoch, err := strconv.ParseUint(string(b), 10, 64)
	if err != nil || epoch == 0 {
		return 0, "ERR Invalid map epoch"
	}
	return epoch, ""
}

// moveWaitArg parses CLUSTER MOVEWAIT's timeout (ms).
func moveWaitArg(b []byte) (uint64, string) {
	ms, err := strconv.ParseUint(string(b), 10, 64)
	if err != nil || ms > maxMoveWait {
		return 0, "ERR timeout is not an integer or out of range"
	}
	return ms, ""
}

// cmdMoveFence serves CLUSTER MOVEFENCE epoch slot ident [slot ident ...]
// (the source of a move whose cutover is committed at epoch).
func cmdMoveFence(c *Ctx) {
	s := c.srv
	epoch, slots, idents, _, ok := pushArgs(c, 2, mapEpochArg)
	if !ok {
		return
	}
	// On the loop, unlike CLUSTER MIGRATION: the reply is inside the
	// slots' write pause, and an answer from another goroutine would
	// wait for a wake-up of the loop. With each importer locked once
	// (importStatuses) it takes 0.5-2 ms for 1024 slots under load.
	s.moveFence(c.w, epoch, slots, idents)
}

// moveFence fences slots as CLUSTER MOVEFENCE asks and writes its reply.
func (s *Server) moveFence(rw *resp.Writer, epoch uint64, slots []int, idents []string) {
	s.clus.mu.Lock()
	v := s.clus.view.Load()
	if v != nil && v.m != nil && v.m.Epoch < epoch && v.role == cluster.RolePrimary && !s.repl.isReplica.Load() {
		var nv *clusterView
		for i, slot := range slots {
			mg := v.m.Migrations[slot]
			if mg == nil || moveIdent(mg) != idents[i] || mg.From != v.shard {
				continue
			}
			if p, ok := s.clus.pushed[slot]; ok && p.epoch >= epoch {
				continue // a flip or this fence already
			}
			if nv == nil {
				cp := *v
				nv = &cp
			}
			p := pushedStep{epoch: epoch, ident: idents[i], to: mg.To}
			if s.clus.pushed == nil {
				s.clus.pushed = map[int]pushedStep{}
			}
			s.clus.pushed[slot] = p
			nv.applyPushed(slot, p)
			s.clus.pushedFences.Add(1)
		}
		if nv != nil {
			s.swapViewLocked(nv)
		}
	}
	s.clus.mu.Unlock()
	// After the switch: the slots' LSNs read now are final if fenced.
	s.writeMoveStatus(rw, slots, true)
}

// cmdMoveDone serves CLUSTER MOVEDONE epoch slot ident lsn [...] (the
// source and the target of a move whose flip is committed at epoch).
func cmdMoveDone(c *Ctx) {
	s := c.srv
	epoch, slots, idents, lsns, ok := pushArgs(c, 3, mapEpochArg)
	if !ok {
		return
	}
	s.moveDone(c.w, epoch, slots, idents, lsns) // on the loop, as MOVEFENCE
}

// moveDone takes the flips CLUSTER MOVEDONE pushes and writes its reply.
func (s *Server) moveDone(rw *resp.Writer, epoch uint64, slots []int, idents []string, lsns []uint64) {
	taken := make([]bool, len(slots))
	// The target's half of flipReady, for every slot at once (before
	// the lock: an import's position only moves on).
	imported := make([]bool, len(slots))
	s.importsReady(slots, idents, lsns, imported)
	s.clus.mu.Lock()
	v := s.clus.view.Load()
	switch {
	case v == nil || v.m == nil:
	case v.m.Epoch >= epoch:
		// The map has the flip already (and maybe something newer).
		for i := range taken {
			taken[i] = true
		}
	case v.role == cluster.RolePrimary && !s.repl.isReplica.Load():
		var nv *clusterView
		for i, slot := range slots {
			mg := v.m.Migrations[slot]
			if mg == nil || moveIdent(mg) != idents[i] {
				continue
			}
			if p, ok := s.clus.pushed[slot]; ok && p.flip {
				taken[i] = true
				continue
			}
			if !s.flipReady(v, mg, lsns[i], imported[i]) {
				continue
			}
			if nv == nil {
				cp := *v
				nv = &cp
			}
			p := pushedStep{flip: true, epoch: epoch, ident: idents[i], to: mg.To}
			if s.clus.pushed == nil {
				s.clus.pushed = map[int]pushedStep{}
			}
			s.clus.pushed[slot] = p
			nv.applyPushed(slot, p)
			s.clus.pushedFlips.Add(1)
			taken[i] = true
		}
		if nv != nil {
			s.swapViewLocked(nv)
		}
	}
	s.clus.mu.Unlock()
	rw.Array(len(slots))
	for _, t := range taken {
		rw.Int(b2i(t))
	}
}

// flipReady reports whether this primary may take the flip of move mg
// now (s.clus.mu held): as its source, the slot is fenced here and its
// last change is at most lsn; as its target, imported (importsReady:
// its import of this attempt streams and has applied lsn).
func (s *Server) flipReady(v *clusterView, mg *cluster.Migration, lsn uint64, imported bool) bool {
	switch v.shard {
	case mg.From:
		if !v.slots[mg.Slot].fenced {
			return false
		}
		s.db.Lock(mg.Slot)
		last := s.db.Slot(mg.Slot).LSN
		s.db.Unlock(mg.Slot)
		return last <= lsn
	case mg.To:
		return imported
	}
	return false
}

// importsReady sets ready[i], where it is false, to whether this node
// imports attempt idents[i] of slots[i]'s move, streams it and has
// applied the source's position lsns[i]; it reports whether all are.
// Each importer is locked once for all the slots (importStatuses).
func (s *Server) importsReady(slots []int, idents []string, lsns []uint64, ready []bool) bool {
	sis := make([]*slotImport, len(slots))
	s.moves.mu.Lock()
	for i, slot := range slots {
		if si := s.moves.imports[slot]; !ready[i] && si != nil && si.ident == idents[i] {
			sis[i] = si
		}
	}
	s.moves.mu.Unlock()
	all := true
	for i, x := range importStatuses(sis) {
		if !ready[i] {
			ready[i] = sis[i] != nil && x.state == impStreaming && x.applied >= lsns[i]
		}
		all = all && ready[i]
	}
	return all
}

// maxMoveWait bounds CLUSTER MOVEWAIT's timeout (ms): the migrator waits
// a cutover's catch-up for 250 ms.
const maxMoveWait = 60_000

// cmdMoveWait serves CLUSTER MOVEWAIT timeout slot ident lsn [...] (the
// target of moves whose sources the migrator just fenced at those
// LSNs): an array of 1 or 0 per slot, whether this node imports that
// attempt of the slot's move, streams it and has applied lsn (what
// MOVEDONE's flip needs here), once every slot is 1 or after timeout
// milliseconds (0: at once). It blocks the client, not the event loop:
// the migrator polled CLUSTER MIGRATION for it every millisecond, a
// status of up to 1024 slots each time.
func cmdMoveWait(c *Ctx) {
	s := c.srv
	ms, slots, idents, lsns, ok := pushArgs(c, 3, moveWaitArg)
	if !ok {
		return
	}
	ready := make([]bool, len(slots))
	// check updates ready and reports whether every slot is.
	check := func() bool { return s.importsReady(slots, idents, lsns, ready) }
	if check() || ms == 0 {
		s.writeReadyFlags(c.w, ready)
		return
	}
	s.moves.mu.Lock()
	quit := s.moves.quitLocked()
	s.moves.mu.Unlock()
	s.moves.waiters.Add(1)
	c.offLoop(func(rw *resp.Writer, gone func() bool) {
		defer s.moves.waiters.Add(-1)
		deadline := time.NewTimer(time.Duration(ms) * time.Millisecond)
		defer deadline.Stop()
		// A position is woken by (appliedChan); its acknowledgement by
		// the log's fsync or the replicas is not: checked every 2 ms.
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
	wait:
		for !gone() {
			ch := s.moves.appliedChan()
			if check() {
				break
			}
			select {
			case <-ch:
			case <-tick.C:
			case <-deadline.C:
				break wait
			case <-quit:
				break wait
			}
		}
		s.writeReadyFlags(rw, ready)
	})
}

// writeReadyFlags writes MOVEWAIT's reply and counts the slots ready.
func (s *Server) writeReadyFlags(w *resp.Writer, ready []bool) {
	w.Array(len(ready))
	for _, r := range ready {
		w.Int(b2i(r))
		if r {
			s.clus.moveWaits.Add(1)
		}
	}
}
