package cluster

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// The autopilot: the manager leader's one decision per tick, combining
// the autoscaler (scale-out, scale-in) and load rebalancing (hot slots
// off a shard past the imbalance threshold), with one cooldown shared by
// every action and at most one action in flight. Pure: fed the time, the
// map, the smoothed load and the live pool; the manager carries the step
// out and calls Done when it has finished (docs/cluster.md, "Autoscaling").

// Autopilot step kinds (Step.Kind): what the autopilot is waiting for
// when it does nothing, so a history of steps can keep only the changes.
const (
	KindAct       = "act"       // an action (Step.Action says which)
	KindBusy      = "busy"      // an action or slot moves under way
	KindSteady    = "steady"    // within every threshold
	KindSustain   = "sustain"   // a threshold is passed, not yet for long enough
	KindCooldown  = "cooldown"  // due, but cooling down after the last action
	KindStandby   = "standby"   // scale-out due, the pool is short
	KindBlocked   = "blocked"   // no decision possible (no load report, at min or max shards, stuck plan)
	KindDisabled  = "disabled"  // autoscaling off
	ActionBalance = "rebalance" // Step.Action: move hot slots
)

// AutopilotConfig configures the autopilot.
type AutopilotConfig struct {
	Scale     AutoscaleConfig // thresholds, Sustain, Cooldown (shared by every action), min/max shards
	ScaleOut  bool            // act on scale-out decisions
	ScaleIn   bool            // act on scale-in decisions
	Balance   bool            // move hot slots when load is imbalanced
	Rebalance RebalanceConfig // imbalance threshold, moves per plan, noise floors
	// BalanceSustain is how long an imbalance must last before slots move.
	BalanceSustain time.Duration
}

// DefaultAutopilotConfig: the autoscaler's and rebalancer's defaults,
// every action on, imbalance sustained 2 minutes.
func DefaultAutopilotConfig() AutopilotConfig {
	return AutopilotConfig{Scale: DefaultAutoscaleConfig(), ScaleOut: true, ScaleIn: true, Balance: true,
		Rebalance: DefaultRebalanceConfig(), BalanceSustain: 2 * time.Minute}
}

// Validate checks both parts.
func (c AutopilotConfig) Validate() error {
	if err := c.Scale.Validate(); err != nil {
		return err
	}
	if err := c.Rebalance.Validate(); err != nil {
		return err
	}
	if c.BalanceSustain < 0 {
		return fmt.Errorf("rebalance sustain must be >= 0")
	}
	return nil
}

// AutopilotInput is one observation.
type AutopilotInput struct {
	Load  map[int]ShardLoad // smoothed, per shard (a shard without one blocks scaling)
	Slots SlotLoad          // per-slot ops/s (CombineSlotLoad)
	// Measured holds the shards whose hottest slots have been measured
	// (nil: all). Load moves wait for the hot shard's measure: without it
	// the plan could only guess which slots are hot.
	Measured map[int]bool
	Pool     []string // live pool nodes, in the order to take them: the first is the primary
	Busy     string   // non-empty: an action or slot moves are under way (why): nothing is decided
}

// Step is what the autopilot wants done now.
type Step struct {
	Action      string // ActionNone, ActionScaleOut, ActionScaleIn, ActionBalance
	Kind        string // Kind*
	Nodes       []string
	Shard       int    // scale-in: the shard to drain
	Moves       []Move // rebalance
	NeedStandby int    // scale-out wanted, the pool lacks this many nodes
	Reason      string
}

// AutopilotState is the autopilot's view at its last step, for status.
type AutopilotState struct {
	Shards         int           `json:"shards"`
	OpsPerShard    float64       `json:"ops_per_shard"`
	MemFrac        float64       `json:"mem_frac"`  // -1: no maxmemory reported
	Imbalance      float64       `json:"imbalance"` // the hottest shard's load per capacity / the mean (0: not compared)
	ImbalanceShard int           `json:"imbalance_shard,omitempty"`
	ImbalanceDim   string        `json:"imbalance_dim,omitempty"`
	ScaleOutFor    time.Duration `json:"scale_out_for"`
	ScaleInFor     time.Duration `json:"scale_in_for"`
	BalanceFor     time.Duration `json:"rebalance_for"`
	CooldownLeft   time.Duration `json:"cooldown_left"`
	LastAction     string        `json:"last_action,omitempty"`
	LastActionAt   time.Time     `json:"last_action_at,omitempty"`
}

// Autopilot decides; one lives in the leader's loop. Not safe for
// concurrent use.
type Autopilot struct {
	cfg   AutopilotConfig
	scale *Autoscaler
	imb   Sustain
	state AutopilotState
}

// NewAutopilot returns an autopilot with cfg (assumed valid).
func NewAutopilot(cfg AutopilotConfig) *Autopilot {
	return &Autopilot{cfg: cfg, scale: NewAutoscaler(cfg.Scale), imb: Sustain{Period: cfg.BalanceSustain}}
}

// Done restarts the cooldown at now: an action (the autopilot's or a
// manual one) has finished.
func (p *Autopilot) Done(now time.Time, what string) {
	p.scale.Acted(now, what)
	p.imb.Reset()
}

// State returns the view at the last Decide, with the cooldown at now.
func (p *Autopilot) State(now time.Time) AutopilotState {
	st := p.state
	st.LastAction, st.LastActionAt = p.scale.lastWhat, p.scale.last
	if !p.scale.last.IsZero() {
		st.CooldownLeft = max(0, p.cfg.Scale.Cooldown-now.Sub(p.scale.last))
	}
	return st
}

func (p *Autopilot) cooling(now time.Time) bool {
	return !p.scale.last.IsZero() && now.Sub(p.scale.last) < p.cfg.Scale.Cooldown
}

// Decide observes the cluster at now and returns the step to take.
func (p *Autopilot) Decide(now time.Time, m *Map, in AutopilotInput) Step {
	p.measure(m, in.Load)
	defer func() {
		p.state.ScaleOutFor, p.state.ScaleInFor = p.scale.out.For(now), p.scale.in.For(now)
		p.state.BalanceFor = p.imb.For(now)
	}()
	if in.Busy != "" {
		// Nothing is observed meanwhile; Done resets the periods.
		return Step{Action: ActionNone, Kind: KindBusy, Reason: "waiting: " + in.Busy}
	}
	d := p.scale.Decide(now, m, in.Load, len(in.Pool))
	switch {
	case d.Action == ActionScaleOut && p.cfg.ScaleOut:
		need := 1 + m.Settings.ReplicasPerShard
		return Step{Action: ActionScaleOut, Kind: KindAct, Nodes: slices.Clone(in.Pool[:need]), Reason: d.Reason}
	case d.Action == ActionScaleIn && p.cfg.ScaleIn:
		return Step{Action: ActionScaleIn, Kind: KindAct, Shard: d.Shard, Reason: d.Reason}
	case d.Action != ActionNone:
		// Decided but that action is off: undo Decide's cooldown.
		p.scale.last, p.scale.lastWhat = time.Time{}, ""
		d.Reason += fmt.Sprintf(" (%s is disabled)", d.Action)
		d.Action = ActionNone
	}
	step := Step{Action: ActionNone, Kind: p.kindOf(d), NeedStandby: d.NeedStandby, Reason: d.Reason}
	if !p.cfg.ScaleOut {
		step.NeedStandby = 0
	}
	if !p.cfg.Balance {
		return step
	}
	r, sh, dim := p.state.Imbalance, p.state.ImbalanceShard, p.state.ImbalanceDim
	level := 1 + p.cfg.Rebalance.Threshold
	over := r > level+overEps
	due := p.imb.Observe(now, over)
	if !over {
		if r > 0 {
			step.Reason += fmt.Sprintf("; load balanced (hottest %s %.2fx the mean, threshold %.2fx)", dim, r, level)
		}
		return step
	}
	why := fmt.Sprintf("shard %d at %.2fx the mean %s (threshold %.2fx)", sh, r, dim, level)
	switch {
	case !due:
		step.Reason += fmt.Sprintf("; %s for %s of %s needed to rebalance", why, p.imb.For(now).Round(time.Second), p.cfg.BalanceSustain)
		if step.Kind == KindSteady {
			step.Kind = KindSustain
		}
		return step
	case p.cooling(now):
		step.Reason += fmt.Sprintf("; %s, rebalance due but cooling down %s more after %s", why,
			(p.cfg.Scale.Cooldown - now.Sub(p.scale.last)).Round(time.Second), p.scale.lastWhat)
		if step.Kind == KindSteady || step.Kind == KindSustain {
			step.Kind = KindCooldown
		}
		return step
	}
	if in.Measured != nil && !in.Measured[sh] {
		step.Reason += fmt.Sprintf("; %s, rebalance due but waiting for its per-slot load", why)
		if step.Kind == KindSteady || step.Kind == KindSustain {
			step.Kind = KindSustain
		}
		return step
	}
	moves, plan := PlanLoadRebalance(m, in.Load, in.Slots, p.cfg.Rebalance)
	if len(moves) == 0 {
		step.Reason += fmt.Sprintf("; %s for %s, but no plan: %s", why, p.cfg.BalanceSustain, plan)
		if step.Kind == KindSteady || step.Kind == KindSustain {
			step.Kind = KindBlocked
		}
		return step
	}
	p.scale.Acted(now, ActionBalance)
	p.imb.Reset()
	return Step{Action: ActionBalance, Kind: KindAct, Moves: moves,
		Reason: fmt.Sprintf("%s for %s: %s", why, p.cfg.BalanceSustain, plan)}
}

// kindOf classifies a none decision of the autoscaler.
func (p *Autopilot) kindOf(d Decision) string {
	if d.NeedStandby > 0 {
		return KindStandby
	}
	if p.state.Shards == 0 {
		return KindBlocked
	}
	for _, x := range []string{"no load report", "at max shards", "at min shards", "would pass", "would carry"} {
		if strings.Contains(d.Reason, x) {
			return KindBlocked
		}
	}
	if strings.Contains(d.Reason, "cooling down") {
		return KindCooldown
	}
	if p.scale.out.on || p.scale.in.on {
		return KindSustain
	}
	return KindSteady
}

// measure fills the state's cluster metrics from the load.
func (p *Autopilot) measure(m *Map, load map[int]ShardLoad) {
	st := &p.state
	st.Shards = len(m.Shards)
	var ops float64
	var used, limit int64
	for id := range m.Shards {
		l := load[id]
		ops += l.OpsPerSec
		if l.MaxMemory > 0 {
			used += l.UsedMemory
			limit += l.MaxMemory
		}
	}
	st.OpsPerShard, st.MemFrac = 0, -1
	if st.Shards > 0 {
		st.OpsPerShard = ops / float64(st.Shards)
	}
	if limit > 0 {
		st.MemFrac = float64(used) / float64(limit)
	}
	st.Imbalance, st.ImbalanceShard, st.ImbalanceDim = Imbalance(m, load, p.cfg.Rebalance)
}

// Imbalance returns the hottest shard's load per unit of capacity as a
// multiple of the mean, in the worse of the compared dimensions (ops/s
// per weight; memory per byte of maxmemory, or per weight if a shard
// reports none), as PlanRebalance compares them: shards without a load
// report and draining shards take no part, and a dimension whose cluster
// total is under cfg's floor is not compared. 0 when nothing is compared.
func Imbalance(m *Map, load map[int]ShardLoad, cfg RebalanceConfig) (ratio float64, shard int, dim string) {
	var ids []int
	byMax := true
	for _, id := range m.shardIDs() {
		if l, ok := load[id]; ok && !m.Shards[id].Draining {
			ids = append(ids, id)
			byMax = byMax && l.MaxMemory > 0
		}
	}
	if len(ids) < 2 {
		return 0, 0, ""
	}
	var totOps, totMem, capOps, capMem float64
	for _, id := range ids {
		l, w := load[id], float64(m.shardWeight(id))
		totOps += l.OpsPerSec
		totMem += float64(l.UsedMemory)
		capOps += w
		if byMax {
			capMem += float64(l.MaxMemory)
		} else {
			capMem += w
		}
	}
	check := func(name string, tot, capTot float64, get func(ShardLoad) float64, capOf func(int) float64) {
		mean := tot / capTot
		for _, id := range ids {
			if r := get(load[id]) / capOf(id) / mean; r > ratio {
				ratio, shard, dim = r, id, name
			}
		}
	}
	weight := func(id int) float64 { return float64(m.shardWeight(id)) }
	if totOps > 0 && totOps >= cfg.MinOpsPerSec {
		check("ops/s", totOps, capOps, func(l ShardLoad) float64 { return l.OpsPerSec }, weight)
	}
	if totMem > 0 && totMem >= float64(cfg.MinUsedMemory) {
		capOf := weight
		if byMax {
			capOf = func(id int) float64 { return float64(load[id].MaxMemory) }
		}
		check("memory", totMem, capMem, func(l ShardLoad) float64 { return float64(l.UsedMemory) }, capOf)
	}
	return ratio, shard, dim
}

// CombineSlotLoad builds a whole SlotLoad from each shard's total ops/s
// and the ops/s measured for its hottest slots (top, by slot): the
// measured slots keep their measure, and the rest of the shard's ops/s
// (its total less the measured part) is spread over its other slots by
// their key counts (slotKeys), evenly if it has none. Slots of shards
// without a load report are left out.
func CombineSlotLoad(m *Map, load map[int]ShardLoad, top map[int]float64, slotKeys map[int]int64) SlotLoad {
	type acc struct {
		measured float64
		keys     int64
		others   int
	}
	per := map[int]*acc{}
	for s, o := range m.Slots {
		id := int(o)
		if _, ok := load[id]; !ok || id == 0 {
			continue
		}
		a := per[id]
		if a == nil {
			a = &acc{}
			per[id] = a
		}
		if v, ok := top[s]; ok {
			a.measured += v
		} else {
			a.keys += slotKeys[s]
			a.others++
		}
	}
	out := SlotLoad{}
	for s, o := range m.Slots {
		id := int(o)
		a := per[id]
		if a == nil {
			continue
		}
		if v, ok := top[s]; ok {
			out[s] = v
			continue
		}
		rest := max(0, load[id].OpsPerSec-a.measured)
		switch {
		case rest == 0:
		case a.keys > 0:
			out[s] = rest * float64(slotKeys[s]) / float64(a.keys)
		default:
			out[s] = rest / float64(a.others)
		}
	}
	return out
}
