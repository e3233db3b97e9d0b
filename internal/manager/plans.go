package manager

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"

	"shoal/internal/cluster"
)

// Plans on top of slot moves: rebalance (by load, else by weight) and
// drain. The planner (internal/cluster/planner.go) decides; these
// handlers feed it the leader's view of the load and queue its moves.

// PlanReply is what rebalance and drain answer: the moves planned (and
// queued unless DryRun) and why.
type PlanReply struct {
	Moves  []cluster.Move `json:"moves"`
	Reason string         `json:"reason"`
	DryRun bool           `json:"dry_run"`
}

// queueMoves proposes the moves, one command per target shard.
func (m *Manager) queueMoves(moves []cluster.Move) error {
	byTo := map[int][]int{}
	for _, mv := range moves {
		if mv.From == 0 {
			return fmt.Errorf("slot %d has no owner: create the cluster first", mv.Slot)
		}
		byTo[mv.To] = append(byTo[mv.To], mv.Slot)
	}
	tos := make([]int, 0, len(byTo))
	for to := range byTo {
		tos = append(tos, to)
	}
	slices.Sort(tos)
	for _, to := range tos {
		if err := m.propose(cluster.Command{Op: cluster.OpMigrate, Slots: byTo[to], ShardID: to}); err != nil {
			return err
		}
	}
	return nil
}

var errMoving = errors.New("slot moves are in progress (shoal ctl migrations): plan again when they are done")

// handleRebalance: {"dry_run": bool, "max_moves": n}.
func (m *Manager) handleRebalance(w http.ResponseWriter, r *http.Request) {
	var req struct {
		DryRun   bool `json:"dry_run"`
		MaxMoves int  `json:"max_moves"`
	}
	if err := decode(r, &req); err != nil {
		m.fail(w, err)
		return
	}
	mp := m.Map()
	if len(mp.Migrations) > 0 {
		m.fail(w, errMoving)
		return
	}
	cfg := cluster.DefaultRebalanceConfig()
	if req.MaxMoves > 0 {
		cfg.MaxMoves = req.MaxMoves
	}
	load, slots := m.shardLoads(mp)
	moves, reason := cluster.PlanRebalance(mp, load, slots, cfg)
	if !req.DryRun && len(moves) > 0 {
		if err := m.queueMoves(moves); err != nil {
			m.fail(w, err)
			return
		}
		m.log.Info("rebalance queued", "moves", len(moves), "reason", reason)
	}
	writeJSON(w, http.StatusOK, PlanReply{Moves: moves, Reason: reason, DryRun: req.DryRun})
}

// handleDrain moves every slot of a shard to the others: {"dry_run": bool}.
func (m *Manager) handleDrain(w http.ResponseWriter, r *http.Request) {
	id, err := cluster.ParseShard(r.PathValue("id"))
	if err != nil {
		m.fail(w, err)
		return
	}
	var req struct {
		DryRun bool `json:"dry_run"`
	}
	if err := decode(r, &req); err != nil {
		m.fail(w, err)
		return
	}
	mp := m.Map()
	if mp.Shards[id] == nil {
		m.fail(w, fmt.Errorf("no shard %d", id))
		return
	}
	for _, mg := range mp.Migrations {
		if mg.To == id {
			m.fail(w, fmt.Errorf("slots are moving to shard %d: cancel or finish them first", id))
			return
		}
	}
	moves := cluster.PlanDrain(mp, id, 0)
	moves = slices.DeleteFunc(moves, func(mv cluster.Move) bool { return mp.Migrations[mv.Slot] != nil })
	if !req.DryRun {
		// Marked draining in the map: once its slots are gone the leader
		// releases its nodes to the standby pool.
		var err error
		if moves, err = m.drainShard(id); err != nil {
			m.fail(w, err)
			return
		}
		m.decided(AutoscaleDecision{Time: time.Now(), Action: "drain", Shard: id, Moves: len(moves),
			Reason: fmt.Sprintf("manual drain of shard %d (shoal ctl drain)", id)})
	}
	reason := fmt.Sprintf("drain shard %d: %d slots to the other shards by weight; then its nodes go back to the standby pool", id, len(moves))
	writeJSON(w, http.StatusOK, PlanReply{Moves: moves, Reason: reason, DryRun: req.DryRun})
}
