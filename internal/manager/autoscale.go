package manager

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"shoal/internal/cluster"
)

// The leader's autoscaling loop: it smooths the load the primaries
// report (EWMA), asks the autopilot (internal/cluster/autopilot.go) for
// one step per tick, carries it out (add a shard of standby nodes and
// fill it, drain a shard, queue hot-slot moves), releases drained shards'
// nodes to the standby pool, runs the provisioner hook when the pool is
// short, and keeps the recent decisions for shoal ctl autoscale status.
// Goroutine: autoscaler (one per manager, acting only while leader); it
// owns the autopilot; status readers take ap.mu.

// AutoscaleOptions configure the loop (shoal manager --autoscale...).
type AutoscaleOptions struct {
	// Enabled runs the decisions; without it the loop only releases
	// drained shards and the load is only measured.
	Enabled bool
	Pilot   cluster.AutopilotConfig
	// Interval between decisions (0: 1 s).
	Interval time.Duration
	// Smoothing is the EWMA time constant of the measured load (0: 10 s;
	// negative: none, the last report).
	Smoothing time.Duration
	// ProvisionerCommand runs (sh -c) when a scale-out is due and the
	// standby pool is short; see docs/operations.md for its contract.
	ProvisionerCommand string
	ProvisionerTimeout time.Duration // 0: 5 min
	// MoveBatch bounds the slot moves a scale-out or scale-in queues at
	// once (0: 1024, cluster.MoveWindow); the next batch is planned when
	// they are done. (With a stream per slot, a target importing
	// thousands of slots at once starved its own heartbeats and was
	// failed over; a batch larger than the window only waits in the map.)
	MoveBatch int
}

// DefaultAutoscaleOptions: off; when on, the autopilot's defaults.
func DefaultAutoscaleOptions() AutoscaleOptions {
	return AutoscaleOptions{Pilot: cluster.DefaultAutopilotConfig(), Interval: time.Second, Smoothing: 10 * time.Second,
		ProvisionerTimeout: 5 * time.Minute, MoveBatch: cluster.MoveWindow}
}

// Validate checks the options (the thresholds only when enabled).
func (o AutoscaleOptions) Validate() error {
	if o.Interval < 0 || o.ProvisionerTimeout < 0 || o.MoveBatch < 0 {
		return errors.New("autoscale interval, provisioner timeout and move batch must be >= 0")
	}
	if o.Enabled {
		return o.Pilot.Validate()
	}
	return nil
}

// AutoscaleDecision is one entry of the decision history.
type AutoscaleDecision struct {
	Time   time.Time `json:"time"`
	Action string    `json:"action"` // none, scale-out, scale-in, rebalance, release, provision, done
	Kind   string    `json:"kind,omitempty"`
	Shard  int       `json:"shard,omitempty"`
	Nodes  []string  `json:"nodes,omitempty"`
	Moves  int       `json:"moves,omitempty"`
	Reason string    `json:"reason"`
	Error  string    `json:"error,omitempty"`
}

// maxDecisions bounds the history kept in memory on the leader.
const maxDecisions = 100

// AutoscaleStatus is GET /v1/autoscale.
type AutoscaleStatus struct {
	Enabled     bool                   `json:"enabled"`
	Config      AutoscaleConfigView    `json:"config"`
	State       cluster.AutopilotState `json:"state"`
	Action      string                 `json:"action"` // the last step's
	Kind        string                 `json:"kind"`
	Reason      string                 `json:"reason"`
	Busy        string                 `json:"busy,omitempty"`
	InFlight    string                 `json:"in_flight,omitempty"`
	Pool        []string               `json:"pool"` // live pool nodes (RESP addresses), in the order a new shard takes them
	Provisioner ProvisionerStatus      `json:"provisioner"`
	Decisions   []AutoscaleDecision    `json:"decisions"` // oldest first
}

// AutoscaleConfigView is the configuration as shown by status.
type AutoscaleConfigView struct {
	ScaleOut            bool    `json:"scale_out"`
	ScaleIn             bool    `json:"scale_in"`
	Rebalance           bool    `json:"rebalance"`
	ScaleOutMemFrac     float64 `json:"scale_out_mem"`
	ScaleOutOpsPerShard float64 `json:"scale_out_ops"`
	ScaleInMemFrac      float64 `json:"scale_in_mem"`
	ScaleInOpsPerShard  float64 `json:"scale_in_ops"`
	RebalanceThreshold  float64 `json:"rebalance_threshold"`
	SustainMs           int64   `json:"sustain_ms"`
	RebalanceSustainMs  int64   `json:"rebalance_sustain_ms"`
	CooldownMs          int64   `json:"cooldown_ms"`
	MinShards           int     `json:"min_shards"`
	MaxShards           int     `json:"max_shards"`
	ReplicasPerShard    int     `json:"replicas_per_shard"`
}

// ProvisionerStatus is the provisioner hook's state.
type ProvisionerStatus struct {
	Command  string    `json:"command,omitempty"`
	Running  bool      `json:"running"`
	LastRun  time.Time `json:"last_run,omitempty"`
	LastErr  string    `json:"last_error,omitempty"`
	NotUntil time.Time `json:"not_until,omitempty"` // no new run before
}

// autoscaleState is the loop's state shown to readers.
type autoscaleState struct {
	mu        sync.Mutex
	pilot     *cluster.Autopilot
	last      cluster.Step
	busy      string
	job       *autoJob // the autoscaler's action in flight
	decisions []AutoscaleDecision
	prov      ProvisionerStatus
}

func (a *autoscaleState) record(d AutoscaleDecision) {
	a.mu.Lock()
	a.decisions = append(a.decisions, d)
	if len(a.decisions) > maxDecisions {
		a.decisions = slices.Delete(a.decisions, 0, len(a.decisions)-maxDecisions)
	}
	a.mu.Unlock()
}

// ---- load smoothing -------------------------------------------------

// loadTracker smooths each shard's load (its primary's heartbeats) with
// an exponentially weighted moving average of time constant tau:
// a report after dt moves the average by 1 - exp(-dt/tau) of the way.
// Guarded by Manager.mu.
type loadTracker struct {
	tau    time.Duration
	shards map[int]*shardEWMA
}

type shardEWMA struct {
	at      time.Time
	ops     float64
	used    float64
	max     int64
	slotsAt time.Time
	slots   map[int]float64 // the hottest slots reported (decaying when no longer reported)
}

func (t *loadTracker) alpha(dt time.Duration) float64 {
	if t.tau <= 0 || dt <= 0 {
		return 1
	}
	return 1 - math.Exp(-float64(dt)/float64(t.tau))
}

// observe folds in one heartbeat of shard's primary.
func (t *loadTracker) observe(now time.Time, shard int, hb *cluster.Heartbeat) {
	e := t.shards[shard]
	if e == nil {
		e = &shardEWMA{at: now, ops: hb.OpsPerSec, used: float64(hb.UsedMemory), slots: map[int]float64{}}
		t.shards[shard] = e
	} else {
		a := t.alpha(now.Sub(e.at))
		e.ops += a * (hb.OpsPerSec - e.ops)
		e.used += a * (float64(hb.UsedMemory) - e.used)
		e.at = now
	}
	e.max = hb.MaxMemory
	if hb.SlotOps == nil {
		return
	}
	a := 1.0
	if !e.slotsAt.IsZero() {
		a = t.alpha(now.Sub(e.slotsAt))
	}
	e.slotsAt = now
	seen := make(map[int]bool, len(hb.SlotOps))
	for _, p := range hb.SlotOps {
		s := int(p[0])
		if s < 0 || s >= cluster.NumSlots {
			continue
		}
		seen[s] = true
		if old, ok := e.slots[s]; ok {
			e.slots[s] = old + a*(p[1]-old)
		} else {
			e.slots[s] = p[1] // first seen: its measure, not a rise from 0
		}
	}
	for s, v := range e.slots {
		if !seen[s] {
			if v *= 1 - a; v < 0.01 {
				delete(e.slots, s)
			} else {
				e.slots[s] = v
			}
		}
	}
}

// shardLoads returns each shard's smoothed load (shards whose primary
// reported within stale), and the hottest slots' smoothed ops/s combined
// with the per-slot key counts into a whole SlotLoad.
func (m *Manager) shardLoads(mp *cluster.Map) (map[int]cluster.ShardLoad, cluster.SlotLoad) {
	load, slots, _ := m.shardLoadsMeasured(mp)
	return load, slots
}

// shardLoadsMeasured is shardLoads, with the shards whose hottest slots
// have been reported.
func (m *Manager) shardLoadsMeasured(mp *cluster.Map) (map[int]cluster.ShardLoad, cluster.SlotLoad, map[int]bool) {
	now := time.Now()
	stale := 5 * time.Duration(mp.Settings.LeaseMs) * time.Millisecond
	m.mu.Lock()
	load := map[int]cluster.ShardLoad{}
	measured := map[int]bool{}
	top := map[int]float64{}
	keys := map[int]int64{}
	for id, sh := range mp.Shards {
		e := m.load.shards[id]
		if e == nil || now.Sub(e.at) > stale {
			continue
		}
		load[id] = cluster.ShardLoad{OpsPerSec: e.ops, UsedMemory: int64(e.used), MaxMemory: e.max}
		measured[id] = !e.slotsAt.IsZero()
		for s, v := range e.slots {
			if int(mp.Slots[s]) == id {
				top[s] = v
			}
		}
		if h := m.health[sh.Primary]; h != nil {
			for _, p := range h.HB.SlotKeys {
				keys[int(p[0])] = p[1]
			}
		}
	}
	m.mu.Unlock()
	return load, cluster.CombineSlotLoad(mp, load, top, keys), measured
}

// livePool returns the pool nodes heard from within a lease, in the
// order a new shard takes them: the highest weight first (the primary:
// the shard's capacity is its primary's weight), then by id.
func (m *Manager) livePool(mp *cluster.Map) []*cluster.Node {
	now := time.Now()
	alive := time.Duration(mp.Settings.LeaseMs) * time.Millisecond
	m.mu.Lock()
	var out []*cluster.Node
	for _, n := range mp.Pool() {
		if h := m.health[n.ID]; h != nil && now.Sub(h.Seen) < alive {
			out = append(out, n)
		}
	}
	m.mu.Unlock()
	sort.SliceStable(out, func(i, j int) bool { return out[i].Weight > out[j].Weight })
	return out
}

// poolShard picks 1 + replicas_per_shard live pool nodes for a new shard.
func (m *Manager) poolShard(mp *cluster.Map) ([]string, error) {
	pool := m.livePool(mp)
	need := 1 + mp.Settings.ReplicasPerShard
	if len(pool) < need {
		return nil, fmt.Errorf("the standby pool has %d live nodes; a shard needs %d (a primary + replicas_per_shard %d)",
			len(pool), need, mp.Settings.ReplicasPerShard)
	}
	ids := make([]string, need)
	for i := range ids {
		ids[i] = pool[i].ID
	}
	return ids, nil
}

// addShardAndFill makes a shard of nodes (ids, primary first) and, with
// fill, queues the moves of its weighted share onto it. It returns the
// new shard's id and the number of moves.
func (m *Manager) addShardAndFill(ids []string, fill bool) (int, int, error) {
	if err := m.propose(cluster.Command{Op: cluster.OpAddShard, Nodes: ids}); err != nil {
		return 0, 0, err
	}
	mp := m.Map()
	n := mp.Nodes[ids[0]]
	if n == nil || n.Shard == 0 {
		return 0, 0, errors.New("the new shard vanished")
	}
	if !fill {
		return n.Shard, 0, nil
	}
	moves := cluster.PlanAddShard(mp, n.Shard, 0)
	moves = slices.DeleteFunc(moves, func(mv cluster.Move) bool { return mp.Migrations[mv.Slot] != nil })
	if err := m.queueMoves(moves); err != nil {
		return n.Shard, 0, fmt.Errorf("shard %d added, but its slots could not be queued: %w", n.Shard, err)
	}
	m.log.Info("new shard: slot moves queued", "shard", n.Shard, "moves", len(moves))
	return n.Shard, len(moves), nil
}

// drainShard marks shard draining and queues the moves of all its
// slots; once they are done the loop releases its nodes.
func (m *Manager) drainShard(id int) ([]cluster.Move, error) {
	if err := m.propose(cluster.Command{Op: cluster.OpDrainShard, ShardID: id}); err != nil {
		return nil, err
	}
	mp := m.Map()
	moves := cluster.PlanDrain(mp, id, 0)
	moves = slices.DeleteFunc(moves, func(mv cluster.Move) bool { return mp.Migrations[mv.Slot] != nil })
	if err := m.queueMoves(moves); err != nil {
		return nil, err
	}
	m.log.Info("drain queued", "shard", id, "moves", len(moves))
	return moves, nil
}

// shardReady reports whether a shard's primary acts as one (it has its
// lease) and its replicas hold a complete copy: a new shard takes slots
// only then (a node still starting up as a replica of nobody would
// import slots before it is a primary).
func (m *Manager) shardReady(mp *cluster.Map, id int) bool {
	sh := mp.Shards[id]
	now := time.Now()
	alive := time.Duration(mp.Settings.LeaseMs) * time.Millisecond
	m.mu.Lock()
	defer m.mu.Unlock()
	h := m.health[sh.Primary]
	if h == nil || now.Sub(h.Seen) > alive || h.HB.Role != cluster.RolePrimary || h.HB.ShardEpoch != sh.Epoch {
		return false
	}
	for _, r := range sh.Replicas {
		h := m.health[r]
		if h == nil || now.Sub(h.Seen) > alive || h.HB.Role != cluster.RoleReplica || !h.HB.Synced {
			return false
		}
	}
	return true
}

// busyReason says what is under way: slot moves or a drain.
func busyReason(mp *cluster.Map) string {
	var why []string
	if n := len(mp.Migrations); n > 0 {
		why = append(why, fmt.Sprintf("%d slot moves in progress", n))
	}
	for _, id := range mp.ShardIDs() {
		if mp.Shards[id].Draining {
			why = append(why, fmt.Sprintf("shard %d draining", id))
		}
	}
	return strings.Join(why, ", ")
}

// ---- the loop ----------------------------------------------------------

// autoJob is an action in flight: a new shard being filled or a shard
// being drained, batch after batch, or a rebalance's moves.
type autoJob struct {
	what  string
	fill  int // shard being filled (scale-out)
	drain int // shard being drained (scale-in)
	moved int // moves queued so far
}

// continueJob queues the job's next batch once the last one is done,
// and reports whether the job is finished (its moves done, a drained
// shard released).
func (m *Manager) continueJob(j *autoJob, mp *cluster.Map) (bool, error) {
	if len(mp.Migrations) > 0 {
		return false, nil
	}
	batch := m.cfg.Autoscale.MoveBatch
	var moves []cluster.Move
	switch {
	case j.fill != 0:
		if mp.Shards[j.fill] == nil {
			return true, fmt.Errorf("shard %d is gone", j.fill)
		}
		if j.moved == 0 && !m.shardReady(mp, j.fill) {
			return false, nil
		}
		moves = cluster.PlanAddShard(mp, j.fill, batch)
	case j.drain != 0:
		if sh := mp.Shards[j.drain]; sh == nil {
			return true, nil // released
		} else if !sh.Draining {
			return true, fmt.Errorf("shard %d is no longer draining", j.drain)
		}
		moves = cluster.PlanDrain(mp, j.drain, batch)
		if len(moves) == 0 {
			return false, nil // empty: releaseDrained removes it
		}
	}
	if len(moves) == 0 {
		return true, nil
	}
	if err := m.queueMoves(moves); err != nil {
		return false, err
	}
	j.moved += len(moves)
	return false, nil
}

func (m *Manager) autoscaler() {
	defer m.wg.Done()
	o := m.cfg.Autoscale
	tick := time.NewTicker(o.Interval)
	defer tick.Stop()
	wasBusy := false
	for {
		select {
		case <-m.stop:
			return
		case <-tick.C:
		}
		if !m.leading() {
			m.ap.mu.Lock()
			m.ap.pilot, m.ap.job, m.ap.busy = nil, nil, ""
			m.ap.mu.Unlock()
			wasBusy = false
			continue
		}
		now := time.Now()
		m.releaseDrained()
		mp := m.Map()
		m.ap.mu.Lock()
		if m.ap.pilot == nil {
			// A new leader starts a new autopilot: sustain periods start
			// again (the cooldown of an earlier leader's action is lost,
			// and so is its job: its moves are in the map and finish).
			m.ap.pilot = cluster.NewAutopilot(o.Pilot)
		}
		p := m.ap.pilot
		job := m.ap.job
		m.ap.mu.Unlock()
		if job != nil {
			done, err := m.continueJob(job, mp)
			if err != nil {
				m.decided(AutoscaleDecision{Time: now, Action: "error", Reason: job.what, Error: err.Error()})
			}
			if done {
				m.ap.mu.Lock()
				m.ap.job = nil
				p.Done(now, job.what)
				m.ap.mu.Unlock()
				m.decided(AutoscaleDecision{Time: now, Action: "done", Moves: job.moved,
					Reason: fmt.Sprintf("%s finished (%d slot moves); cooldown starts", job.what, job.moved)})
				job, wasBusy = nil, false
			}
			mp = m.Map()
		}
		busy := busyReason(mp)
		if job != nil {
			busy = strings.TrimPrefix(busy+", "+fmt.Sprintf("%s: %d moves queued so far", job.what, job.moved), ", ")
		}
		m.ap.mu.Lock()
		m.ap.busy = busy
		if wasBusy && busy == "" {
			p.Done(now, "slot moves") // a manual action ended
		}
		m.ap.mu.Unlock()
		wasBusy = busy != ""
		if !o.Enabled {
			continue
		}
		load, slots, measured := m.shardLoadsMeasured(mp)
		var pool []string
		for _, n := range m.livePool(mp) {
			pool = append(pool, n.ID)
		}
		m.ap.mu.Lock()
		step := p.Decide(now, mp, cluster.AutopilotInput{Load: load, Slots: slots, Measured: measured, Pool: pool, Busy: busy})
		prev := m.ap.last
		m.ap.last = step
		m.ap.mu.Unlock()
		if step.Action == cluster.ActionNone {
			if step.Kind != prev.Kind {
				m.decided(AutoscaleDecision{Time: now, Action: step.Action, Kind: step.Kind, Reason: step.Reason})
			}
			if step.NeedStandby > 0 {
				m.provision(now, mp, step)
			}
			continue
		}
		m.act(now, p, step)
		wasBusy = true
	}
}

// act starts an autopilot step: the job the loop then carries on.
func (m *Manager) act(now time.Time, p *cluster.Autopilot, step cluster.Step) {
	d := AutoscaleDecision{Time: now, Action: step.Action, Kind: step.Kind, Reason: step.Reason}
	var job *autoJob
	var err error
	switch step.Action {
	case cluster.ActionScaleOut:
		var id int
		id, _, err = m.addShardAndFill(step.Nodes, false)
		d.Shard, d.Nodes = id, m.addrs(step.Nodes)
		job = &autoJob{what: fmt.Sprintf("scale-out: fill new shard %d", id), fill: id}
	case cluster.ActionScaleIn:
		if err = m.propose(cluster.Command{Op: cluster.OpDrainShard, ShardID: step.Shard}); err == nil {
			d.Shard = step.Shard
			job = &autoJob{what: fmt.Sprintf("scale-in: drain shard %d", step.Shard), drain: step.Shard}
		}
	case cluster.ActionBalance:
		err = m.queueMoves(step.Moves)
		d.Moves = len(step.Moves)
		job = &autoJob{what: fmt.Sprintf("rebalance: %d hot slot moves", len(step.Moves)), moved: len(step.Moves)}
	}
	if err == nil && job != nil && job.fill+job.drain != 0 {
		_, err = m.continueJob(job, m.Map()) // the first batch
		d.Moves = job.moved
	}
	m.ap.mu.Lock()
	if err != nil {
		d.Error = err.Error()
		p.Done(now, step.Action+" failed")
	}
	if job != nil && (err == nil || job.fill+job.drain != 0) {
		m.ap.job = job
	}
	m.ap.mu.Unlock()
	m.decided(d)
}

func (m *Manager) addrs(ids []string) []string {
	mp := m.Map()
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = mp.Addr(id)
		if out[i] == "" {
			out[i] = id
		}
	}
	return out
}

// decided logs a decision and keeps it in the history.
func (m *Manager) decided(d AutoscaleDecision) {
	args := []any{"action", d.Action, "reason", d.Reason}
	if d.Kind != "" {
		args = append(args, "kind", d.Kind)
	}
	if d.Shard != 0 {
		args = append(args, "shard", d.Shard)
	}
	if len(d.Nodes) > 0 {
		args = append(args, "nodes", d.Nodes)
	}
	if d.Moves > 0 {
		args = append(args, "moves", d.Moves)
	}
	if d.Error != "" {
		m.log.Warn("autoscale", append(args, "err", d.Error)...)
	} else {
		m.log.Info("autoscale", args...)
	}
	m.ap.record(d)
	m.met.decisions.WithLabelValues(d.Action).Inc()
}

// releaseDrained releases every draining shard that owns no slot and
// takes part in no move: its nodes go back to the standby pool.
func (m *Manager) releaseDrained() {
	mp := m.Map()
	for _, id := range mp.ShardIDs() {
		sh := mp.Shards[id]
		if !sh.Draining || mp.Slots.Count(id) > 0 {
			continue
		}
		moving := false
		for _, mg := range mp.Migrations {
			if mg.From == id || mg.To == id {
				moving = true
				break
			}
		}
		if moving {
			continue
		}
		nodes := m.addrs(append([]string{sh.Primary}, sh.Replicas...))
		d := AutoscaleDecision{Time: time.Now(), Action: "release", Shard: id, Nodes: nodes,
			Reason: fmt.Sprintf("shard %d drained: its %d nodes go back to the standby pool", id, len(nodes))}
		if err := m.propose(cluster.Command{Op: cluster.OpReleaseShard, ShardID: id}); err != nil {
			d.Error = err.Error()
		}
		m.decided(d)
	}
}

// ---- provisioner hook ------------------------------------------------------

// provision runs the provisioner command for step.NeedStandby nodes,
// unless it is running, or ran less than a sustain period ago.
func (m *Manager) provision(now time.Time, mp *cluster.Map, step cluster.Step) {
	o := m.cfg.Autoscale
	if o.ProvisionerCommand == "" {
		return
	}
	m.ap.mu.Lock()
	if m.ap.prov.Running || now.Before(m.ap.prov.NotUntil) {
		m.ap.mu.Unlock()
		return
	}
	m.ap.prov.Running, m.ap.prov.LastRun = true, now
	m.ap.mu.Unlock()
	var mgrs []string
	for _, a := range mp.Managers {
		mgrs = append(mgrs, a)
	}
	sort.Strings(mgrs)
	env := append(os.Environ(),
		"SHOAL_PROVISION_NODES="+strconv.Itoa(step.NeedStandby),
		"SHOAL_PROVISION_REASON="+step.Reason,
		"SHOAL_MANAGERS="+strings.Join(mgrs, ","),
		"SHOAL_REPLICAS_PER_SHARD="+strconv.Itoa(mp.Settings.ReplicasPerShard),
		"SHOAL_STANDBY_NODES="+strconv.Itoa(len(m.livePool(mp))))
	m.decided(AutoscaleDecision{Time: now, Action: "provision", Kind: step.Kind,
		Reason: fmt.Sprintf("asking the provisioner for %d standby nodes: %s", step.NeedStandby, step.Reason)})
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		ctx, cancel := context.WithTimeout(context.Background(), o.ProvisionerTimeout)
		defer cancel()
		go func() {
			select {
			case <-m.stop:
				cancel()
			case <-ctx.Done():
			}
		}()
		cmd := exec.CommandContext(ctx, "/bin/sh", "-c", o.ProvisionerCommand)
		cmd.Env = env
		cmd.WaitDelay = time.Second
		var out tailBuffer
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		end := time.Now()
		m.ap.mu.Lock()
		m.ap.prov.Running = false
		m.ap.prov.NotUntil = end.Add(o.Pilot.Scale.Sustain)
		m.ap.prov.LastErr = ""
		if err != nil {
			m.ap.prov.LastErr = err.Error()
		}
		m.ap.mu.Unlock()
		d := AutoscaleDecision{Time: end, Action: "provision", Reason: fmt.Sprintf("provisioner finished in %s: %s",
			end.Sub(now).Round(time.Millisecond), strings.TrimSpace(out.String()))}
		if err != nil {
			d.Error = err.Error()
		}
		m.decided(d)
	}()
}

// tailBuffer keeps the last 2 KiB written to it.
type tailBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b.Write(p)
	if over := t.b.Len() - 2048; over > 0 {
		t.b.Next(over)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.b.String()
}

// ---- status ------------------------------------------------------------

func (m *Manager) autoscaleStatus() AutoscaleStatus {
	o := m.cfg.Autoscale
	c := o.Pilot
	mp := m.Map()
	st := AutoscaleStatus{Enabled: o.Enabled, Pool: []string{}, Config: AutoscaleConfigView{
		ScaleOut: c.ScaleOut, ScaleIn: c.ScaleIn, Rebalance: c.Balance,
		ScaleOutMemFrac: c.Scale.ScaleOutMemFrac, ScaleOutOpsPerShard: c.Scale.ScaleOutOpsPerShard,
		ScaleInMemFrac: c.Scale.ScaleInMemFrac, ScaleInOpsPerShard: c.Scale.ScaleInOpsPerShard,
		RebalanceThreshold: c.Rebalance.Threshold, SustainMs: c.Scale.Sustain.Milliseconds(),
		RebalanceSustainMs: c.BalanceSustain.Milliseconds(), CooldownMs: c.Scale.Cooldown.Milliseconds(),
		MinShards: c.Scale.MinShards, MaxShards: c.Scale.MaxShards, ReplicasPerShard: mp.Settings.ReplicasPerShard}}
	for _, n := range m.livePool(mp) {
		st.Pool = append(st.Pool, n.Addr)
	}
	m.ap.mu.Lock()
	defer m.ap.mu.Unlock()
	if m.ap.pilot != nil {
		st.State = m.ap.pilot.State(time.Now())
	}
	st.Action, st.Kind, st.Reason = m.ap.last.Action, m.ap.last.Kind, m.ap.last.Reason
	if !o.Enabled {
		st.Kind, st.Reason = cluster.KindDisabled, "autoscaling is off (shoal manager --autoscale)"
	}
	st.Busy = m.ap.busy
	if m.ap.job != nil {
		st.InFlight = m.ap.job.what
	}
	st.Provisioner = m.ap.prov
	st.Provisioner.Command = o.ProvisionerCommand
	st.Decisions = append([]AutoscaleDecision{}, m.ap.decisions...)
	return st
}
