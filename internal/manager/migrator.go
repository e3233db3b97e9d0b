package manager

import (
	"bufio"
	"crypto/tls"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"shoal/internal/acl"
	"shoal/internal/cluster"
	"shoal/internal/resp"
)

// The migrator drives the slot moves recorded in the map (see
// internal/cluster/migration.go and internal/server/migrate.go). It runs
// in the leader: the states are in the map, so a new leader carries on
// where the old one stopped; what it keeps in memory (when a phase began)
// only bounds the phases' durations.
//
//	copying → cutover  once the target has applied the source's stream up
//	                   to the slot's last change
//	cutover → done     once the source reports the slot fenced (it has
//	                   installed the cutover map: no more writes to it) and
//	                   the target has applied up to the slot's final change
//
// A phase that takes too long, an import that fails, or a shard that
// fails over cancels the attempt (the move goes back to copying).

// Migrator settings (fixed for now; see docs/cluster.md).
const (
	migrateConcurrent = 32              // moves in progress at once
	copyTimeout       = 5 * time.Minute // image + catch-up
	cutoverTimeout    = 3 * time.Second // writes to the slot wait this long at most
	importFailGrace   = 2 * time.Second // an import reported failed this long is cancelled
	migrateTick       = 50 * time.Millisecond
	// cutoverLag: the copy is caught up enough to cut over when the
	// target has applied the source's stream to within this many records
	// of the slot's last change (under steady writes to the slot it is
	// never exactly caught up; the rest is applied during the cutover).
	cutoverLag = 5000
)

type moveProgress struct {
	ident       string
	since       time.Time // the current phase's start
	failedSince time.Time
}

func (m *Manager) migrator() {
	defer m.wg.Done()
	tick := time.NewTicker(migrateTick)
	defer tick.Stop()
	prog := map[int]*moveProgress{}
	for {
		select {
		case <-m.stop:
			return
		case <-tick.C:
		}
		if !m.leading() {
			clear(prog)
			continue
		}
		mp := m.Map()
		if len(mp.Migrations) == 0 {
			clear(prog)
			continue
		}
		// Step the first moves (slot order) in parallel: each polls its two
		// nodes and may propose one command.
		var wg sync.WaitGroup
		var mu sync.Mutex
		var failed []int
		ready := map[string][]int{} // op → slots ready for it
		n := 0
		for _, mg := range mp.SortedMigrations() {
			if mg.Paused {
				delete(prog, mg.Slot)
				continue
			}
			if n == migrateConcurrent {
				break
			}
			n++
			id := fmt.Sprintf("%d/%s/%d/%d/%d", mg.Slot, mg.State, mg.FromEpoch, mg.ToEpoch, mg.Attempts)
			p := prog[mg.Slot]
			if p == nil || p.ident != id {
				p = &moveProgress{ident: id, since: time.Now()}
				prog[mg.Slot] = p
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				op, err := m.step(mp, mg, p)
				if err != nil {
					m.cancelMove(mg, err)
					mu.Lock()
					failed = append(failed, mg.Slot)
					mu.Unlock()
				} else if op != "" && (m.cfg.MoveGate == nil || m.cfg.MoveGate(op, mg.Slot)) {
					mu.Lock()
					ready[op] = append(ready[op], mg.Slot)
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		// One Raft entry per step for all the moves ready for it (a map
		// epoch per slot would have every node fetch the map thousands of
		// times in a rebalance); if the batch is refused (a move's shard
		// failed over meanwhile), one by one.
		for _, op := range []string{cluster.OpMigrateCutover, cluster.OpMigrateDone} {
			slots := ready[op]
			if len(slots) == 0 {
				continue
			}
			if err := m.propose(cluster.Command{Op: op, Slots: slots}); err == nil {
				if op == cluster.OpMigrateDone {
					m.log.Info("slots moved", "slots", len(slots), "first", slots[0])
					m.met.movesDone.Add(int64(len(slots)))
				}
				continue
			}
			for _, sl := range slots {
				err := m.propose(cluster.Command{Op: op, Slot: sl})
				if err == nil && op == cluster.OpMigrateDone {
					m.met.movesDone.Add(1)
				}
				if err != nil {
					// A move paused or cancelled meanwhile is not failed.
					if mg := m.Map().Migrations[sl]; mg != nil && !mg.Paused {
						m.cancelMove(mg, err)
					}
					failed = append(failed, sl)
				}
			}
		}
		for _, s := range failed {
			delete(prog, s)
		}
		for slot := range prog {
			if mp.Migrations[slot] == nil {
				delete(prog, slot)
			}
		}
	}
}

func (m *Manager) cancelMove(mg *cluster.Migration, err error) {
	m.log.Warn("slot move attempt failed", "slot", mg.Slot, "from", mg.From, "to", mg.To, "state", mg.State, "err", err)
	if perr := m.propose(cluster.Command{Op: cluster.OpMigrateCancel, Slot: mg.Slot, Error: err.Error()}); perr != nil {
		m.log.Warn("cannot cancel the slot move", "slot", mg.Slot, "err", perr)
	} else {
		m.met.movesFailed.Add(1)
	}
}

// step checks one move: the op it is ready for (OpMigrateCutover,
// OpMigrateDone, "" for none yet); an error cancels the attempt.
func (m *Manager) step(mp *cluster.Map, mg *cluster.Migration, p *moveProgress) (string, error) {
	from, to := mp.Shards[mg.From], mp.Shards[mg.To]
	if from == nil || to == nil {
		return "", errors.New("a shard of the move is gone")
	}
	if from.Epoch != mg.FromEpoch || to.Epoch != mg.ToEpoch {
		return "", errors.New("a shard of the move failed over")
	}
	src, err := migrationStatus(m.cfg.NodeAuth, m.cfg.NodeTLS, mp.PeerAddr(from.Primary, m.cfg.NodeTLS != nil), mg.Slot)
	if err != nil {
		return "", m.patience(mg, p, fmt.Errorf("source %s: %w", mp.Addr(from.Primary), err))
	}
	dst, err := migrationStatus(m.cfg.NodeAuth, m.cfg.NodeTLS, mp.PeerAddr(to.Primary, m.cfg.NodeTLS != nil), mg.Slot)
	if err != nil {
		return "", m.patience(mg, p, fmt.Errorf("target %s: %w", mp.Addr(to.Primary), err))
	}
	if dst.ident != cluster.MoveIdent(mg) {
		// The target has not installed this attempt's map yet.
		dst.state, dst.applied = "none", 0
	}
	if dst.state == "failed" {
		if p.failedSince.IsZero() {
			p.failedSince = time.Now()
		} else if time.Since(p.failedSince) > importFailGrace {
			return "", fmt.Errorf("import failed: %s", dst.err)
		}
	} else {
		p.failedSince = time.Time{}
	}
	switch mg.State {
	case cluster.MigrateCopying:
		if dst.state == "streaming" && dst.applied+cutoverLag >= src.lsn {
			return cluster.OpMigrateCutover, nil
		}
		if time.Since(p.since) > copyTimeout {
			return "", fmt.Errorf("copy not caught up after %s (target %s at %d, slot at %d)", copyTimeout, dst.state, dst.applied, src.lsn)
		}
	case cluster.MigrateCutover:
		if src.fenced && dst.state == "streaming" && dst.applied >= src.lsn {
			return cluster.OpMigrateDone, nil
		}
		if time.Since(p.since) > cutoverTimeout {
			return "", fmt.Errorf("cutover not done after %s (source fenced %v at %d, target %s at %d)", cutoverTimeout, src.fenced, src.lsn, dst.state, dst.applied)
		}
	}
	return "", nil
}

// patience turns a failed status query into a cancel only once the
// phase has lasted its limit (a node restarting is often back soon).
func (m *Manager) patience(mg *cluster.Migration, p *moveProgress, err error) error {
	limit := copyTimeout
	if mg.State == cluster.MigrateCutover {
		limit = cutoverTimeout
	}
	if time.Since(p.since) > limit {
		return err
	}
	return nil
}

type moveStatus struct {
	epoch   uint64
	lsn     uint64
	fenced  bool
	state   string
	applied uint64
	err     string
	ident   string // the attempt the import is for (cluster.MoveIdent)
}

// migrationStatus asks a node CLUSTER MIGRATION slot.
func migrationStatus(auth acl.Credentials, tc *tls.Config, addr string, slot int) (moveStatus, error) {
	var st moveStatus
	if addr == "" {
		return st, errors.New("no address")
	}
	c, err := acl.Dial(addr, auth, tc, time.Second)
	if err != nil {
		return st, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Write(resp.AppendCommand(nil, "CLUSTER", "MIGRATION", strconv.Itoa(slot))); err != nil {
		return st, err
	}
	r, err := resp.ReadReply(bufio.NewReader(c), 0)
	if err != nil {
		return st, err
	}
	if r.Kind == '-' {
		return st, errors.New(r.Str)
	}
	for i := 0; i+1 < len(r.Elems); i += 2 {
		v := r.Elems[i+1]
		switch r.Elems[i].Str {
		case "map_epoch":
			st.epoch = uint64(v.Int)
		case "slot_lsn":
			st.lsn = uint64(v.Int)
		case "fenced":
			st.fenced = v.Int == 1
		case "import_state":
			st.state = v.Str
		case "import_applied":
			st.applied = uint64(v.Int)
		case "import_error":
			st.err = v.Str
		case "import_move":
			st.ident = v.Str
		}
	}
	return st, nil
}
