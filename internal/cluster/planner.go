package cluster

import (
	"cmp"
	"fmt"
	"slices"
	"sort"
	"strings"
)

// The planner: pure functions from a cluster map (and measured load) to
// lists of slot moves. It decides WHAT should move and why; moving a slot
// (streaming it, the cutover, recording the migration in the map) is the
// migration mechanism's job, which takes these lists as input. Nothing
// here does I/O, keeps state between calls or reads the clock, so every
// rule is tested on plain values (docs/cluster.md, "Placement and
// rebalancing plans").
//
// Plans are computed against the map as given: the caller passes the map
// with the moves already under way applied (or does not plan while moves
// run), so a plan never fights an unfinished one.

// Move is one planned slot move between shards.
type Move struct {
	Slot     int
	From, To int // shard ids; From 0: the slot is unassigned (nothing to copy)
	Reason   string
}

// Targets returns each shard's target slot count: proportional to its
// weight (its primary's), summing to NumSlots (largest remainder, ties to
// the lower shard id). The same split create uses to lay out a new cluster.
func Targets(m *Map) map[int]int { return targetsWithout(m, 0) }

// targetsWithout is Targets as if shard skip did not exist (0: none).
// Draining shards have no target either: their slots are on their way out.
func targetsWithout(m *Map, skip int) map[int]int {
	var ids, w []int
	for _, id := range m.shardIDs() {
		if id != skip && !m.Shards[id].Draining {
			ids = append(ids, id)
			w = append(w, m.shardWeight(id))
		}
	}
	out := make(map[int]int, len(ids))
	for i, n := range apportion(w, NumSlots) {
		out[ids[i]] = n
	}
	return out
}

// slotCounts returns how many slots every owner holds, 0 (unassigned) and
// ids the map has no shard for included.
func slotCounts(t *SlotTable) map[int]int {
	c := map[int]int{}
	for _, o := range t {
		c[int(o)]++
	}
	return c
}

// share splits n units over the keys of avail, one at a time to the key
// with the most left (ties: the lower key), so the largest are evened out
// first. It gives no key more than it has and stops when all are spent.
func share(avail map[int]int, n int) map[int]int {
	left := make(map[int]int, len(avail))
	keys := make([]int, 0, len(avail))
	for k, v := range avail {
		if v > 0 {
			left[k] = v
			keys = append(keys, k)
		}
	}
	sort.Ints(keys)
	out := map[int]int{}
	for ; n > 0; n-- {
		best := -1
		for _, k := range keys {
			if left[k] > 0 && (best < 0 || left[k] > left[best]) {
				best = k
			}
		}
		if best < 0 {
			break
		}
		left[best]--
		out[best]++
	}
	return out
}

// pickSlots chooses n slots of shard from for shard to in t, marks them
// as to's in t and returns them in slot order. It keeps ranges whole
// where that costs nothing: first runs of from lying between two runs of
// to (taken whole, the two merge), then runs touching a run of to (eaten
// from that side), then the longest runs, whole, and the rest from one
// edge of the next longest: the edge whose neighbour prefer accepts
// (e.g. the next donor, whose slots will then extend this range), else
// the high edge.
func pickSlots(t *SlotTable, from, to, n int, prefer func(owner int) bool) []int {
	owner := func(s int) int {
		if s < 0 || s >= NumSlots {
			return -1
		}
		return int(t[s])
	}
	var out []int
	take := func(a, b int) {
		for s := a; s <= b; s++ {
			t[s] = uint16(to)
			out = append(out, s)
		}
		n -= b - a + 1
	}
	var runs []Range
	for _, r := range t.Ranges() {
		if r.Shard == from {
			runs = append(runs, r)
		}
	}
	size := func(r Range) int { return r.Last - r.First + 1 }
	// Between two runs of to.
	for i := range runs {
		r := runs[i]
		if n > 0 && size(r) <= n && owner(r.First-1) == to && owner(r.Last+1) == to {
			take(r.First, r.Last)
			runs[i].First = r.Last + 1 // empty
		}
	}
	// Touching one.
	for i := range runs {
		r := runs[i]
		if n == 0 || size(r) <= 0 {
			continue
		}
		k := min(n, size(r))
		switch {
		case owner(r.First-1) == to:
			take(r.First, r.First+k-1)
			runs[i].First += k
		case owner(r.Last+1) == to:
			take(r.Last-k+1, r.Last)
			runs[i].Last -= k
		}
	}
	// The longest first.
	runs = slices.DeleteFunc(runs, func(r Range) bool { return size(r) <= 0 })
	slices.SortStableFunc(runs, func(a, b Range) int { return size(b) - size(a) })
	for _, r := range runs {
		if n == 0 {
			break
		}
		if size(r) <= n {
			take(r.First, r.Last)
			continue
		}
		if prefer != nil && prefer(owner(r.First-1)) && !prefer(owner(r.Last+1)) {
			take(r.First, r.First+n-1)
		} else {
			take(r.Last-n+1, r.Last)
		}
	}
	if n != 0 {
		panic(fmt.Sprintf("BUG: pickSlots: shard %d lacks %d slots", from, n))
	}
	slices.Sort(out)
	return out
}

// PlanAddShard plans the moves that fill shard newShard (already in the
// map, e.g. just made by add-shard) up to its target. Monotonic: every
// move goes onto newShard; the slots come from the shards most above
// their targets first (unassigned slots count as above target). maxMoves
// bounds the plan (0: all needed); a bounded plan is a prefix of the
// rebalancing, and planning again on the updated map continues it. Nil
// if newShard is not in the map or already holds its target.
func PlanAddShard(m *Map, newShard int, maxMoves int) []Move {
	if m.Shards[newShard] == nil {
		return nil
	}
	targets := Targets(m)
	counts := slotCounts(&m.Slots)
	need := targets[newShard] - counts[newShard]
	if need <= 0 {
		return nil
	}
	if maxMoves > 0 {
		need = min(need, maxMoves)
	}
	surplus := map[int]int{}
	for o, c := range counts {
		if o != newShard {
			surplus[o] = c - targets[o]
		}
	}
	quota := share(surplus, need)
	donors := make([]int, 0, len(quota))
	for d := range quota {
		donors = append(donors, d)
	}
	sort.Ints(donors)
	t := m.Slots
	var moves []Move
	for i, d := range donors {
		later := donors[i+1:]
		prefer := func(o int) bool { return slices.Contains(later, o) }
		reason := fmt.Sprintf("fill new shard %d (target %d slots) from shard %d (%d slots, target %d)",
			newShard, targets[newShard], d, counts[d], targets[d])
		if d == 0 {
			reason = fmt.Sprintf("fill new shard %d (target %d slots) with an unassigned slot", newShard, targets[newShard])
		} else if m.Shards[d] == nil {
			reason = fmt.Sprintf("fill new shard %d (target %d slots) from shard %d, which is not in the map", newShard, targets[newShard], d)
		}
		for _, s := range pickSlots(&t, d, newShard, quota[d], prefer) {
			moves = append(moves, Move{Slot: s, From: d, To: newShard, Reason: reason})
		}
	}
	return moves
}

// PlanDrain plans the moves that empty shard: only its slots move, each
// onto the shard most below its target as recomputed without the drained
// shard. maxMoves bounds the plan (0: all). Nil if the shard is not in
// the map, owns no slot, or is the only shard.
func PlanDrain(m *Map, shard int, maxMoves int) []Move {
	if m.Shards[shard] == nil || len(m.Shards) < 2 {
		return nil
	}
	targets := targetsWithout(m, shard)
	counts := slotCounts(&m.Slots)
	n := counts[shard]
	if maxMoves > 0 {
		n = min(n, maxMoves)
	}
	if n == 0 {
		return nil
	}
	deficit := map[int]int{}
	for id, tg := range targets {
		deficit[id] = tg - counts[id]
	}
	quota := share(deficit, n)
	if got := sum(quota); got < n {
		// The other shards' targets sum to NumSlots, so while shard
		// holds slots they lack at least as many.
		panic(fmt.Sprintf("BUG: PlanDrain: room for %d of %d slots", got, n))
	}
	recv := make([]int, 0, len(quota))
	for r := range quota {
		recv = append(recv, r)
	}
	sort.Ints(recv)
	t := m.Slots
	var moves []Move
	for i, r := range recv {
		later := recv[i+1:]
		// Leave the edges next to a later receiver's slots to it.
		prefer := func(o int) bool { return !slices.Contains(later, o) }
		reason := fmt.Sprintf("drain shard %d onto shard %d (%d slots, target %d without shard %d)",
			shard, r, counts[r], targets[r], shard)
		for _, s := range pickSlots(&t, shard, r, quota[r], prefer) {
			moves = append(moves, Move{Slot: s, From: shard, To: r, Reason: reason})
		}
	}
	return moves
}

func sum(m map[int]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

// ShardLoad is a shard's measured load (its primary's heartbeats,
// smoothed by the caller).
type ShardLoad struct {
	OpsPerSec  float64
	UsedMemory int64
	MaxMemory  int64 // 0: no limit known
}

// SlotLoad is the measured ops/s of each slot. Slots missing from a
// non-empty SlotLoad count as idle; an empty one means "not measured"
// and each shard's ops/s is taken as spread evenly over its slots
// (EstimateSlotLoad spreads it by key counts instead).
type SlotLoad map[int]float64

// EstimateSlotLoad spreads each shard's ops/s over its slots in
// proportion to their key counts (the heartbeats' SlotKeys), for when
// per-slot ops are not measured; a shard without key counts is spread
// evenly.
func EstimateSlotLoad(m *Map, load map[int]ShardLoad, slotKeys map[int]int64) SlotLoad {
	keys := map[int]int64{}
	counts := slotCounts(&m.Slots)
	for s, o := range m.Slots {
		keys[int(o)] += slotKeys[s]
	}
	out := SlotLoad{}
	for s, o := range m.Slots {
		l, ok := load[int(o)]
		if !ok || o == 0 {
			continue
		}
		if k := keys[int(o)]; k > 0 {
			out[s] = l.OpsPerSec * float64(slotKeys[s]) / float64(k)
		} else {
			out[s] = l.OpsPerSec / float64(counts[int(o)])
		}
	}
	return out
}

// RebalanceConfig tunes PlanRebalance.
type RebalanceConfig struct {
	// Threshold is the imbalance that triggers load moves: 0.2 acts when
	// a shard's load per unit of capacity is more than 1.2x the mean.
	// Moves then continue until the hottest is within Threshold/2 of the
	// mean (hysteresis: a plan does not stop right at the trigger).
	Threshold float64
	// MaxMoves bounds one plan (0: no bound).
	MaxMoves int
	// Below these cluster totals load differences are noise, not
	// imbalance: that dimension is not compared.
	MinOpsPerSec  float64
	MinUsedMemory int64
}

// DefaultRebalanceConfig: act on 20% imbalance, 64 slots per plan.
func DefaultRebalanceConfig() RebalanceConfig {
	return RebalanceConfig{Threshold: 0.2, MaxMoves: 64, MinOpsPerSec: 1000, MinUsedMemory: 64 << 20}
}

// Validate checks the ranges.
func (c RebalanceConfig) Validate() error {
	switch {
	case !(c.Threshold > 0 && c.Threshold <= 10):
		return fmt.Errorf("rebalance threshold must be in (0, 10], got %v", c.Threshold)
	case c.MaxMoves < 0:
		return fmt.Errorf("rebalance max moves must be >= 0, got %d", c.MaxMoves)
	case c.MinOpsPerSec < 0 || c.MinUsedMemory < 0:
		return fmt.Errorf("rebalance minimums must be >= 0")
	}
	return nil
}

// overEps keeps float noise from deciding the threshold edge: a ratio
// exactly at 1+Threshold is not over it.
const overEps = 1e-9

// loadDim is one compared dimension (ops/s or memory) during planning.
type loadDim struct {
	name string
	load map[int]float64 // current, updated by planned moves
	cap  map[int]float64 // capacity: weight, or max memory
	mean float64         // total load / total capacity (moves keep it)
	slot []float64       // each slot's share of its owner's load
}

func (d *loadDim) ratio(s int) float64 { return d.load[s] / d.cap[s] / d.mean }

// PlanRebalance plans moves that even out load, bounded by
// cfg.MaxMoves, and says why in words. Load is compared per unit of
// capacity: ops/s per unit of weight, and memory per byte of MaxMemory
// (per unit of weight if a shard reports none). When a shard's ratio to
// the mean passes 1+Threshold in either dimension (the worse one leads;
// shards without a ShardLoad entry take no part), it moves the hottest
// slots (by SlotLoad) of the hottest shard to the coolest one, skipping
// any slot that would overshoot (leave the receiver hotter than the
// giver, so a fortiori hotter than the giver was) or push the receiver
// over the threshold in the other dimension; a slot moves at most once. Without load imbalance
// it balances slot counts against Targets (when some shard is more than
// one slot off), moving the coldest slots and keeping every receiver
// within Threshold/2 of the mean load. Nil moves when nothing needs to
// change; the reason says why either way.
func PlanRebalance(m *Map, load map[int]ShardLoad, slots SlotLoad, cfg RebalanceConfig) (moves []Move, reason string) {
	return planRebalance(m, load, slots, cfg, true)
}

// PlanLoadRebalance is PlanRebalance without the slot-count phase: only
// moves of hot slots off a shard past the load threshold (nil when no
// shard is, or none of its slots can move). The autoscaler's rebalancing.
func PlanLoadRebalance(m *Map, load map[int]ShardLoad, slots SlotLoad, cfg RebalanceConfig) (moves []Move, reason string) {
	return planRebalance(m, load, slots, cfg, false)
}

func planRebalance(m *Map, load map[int]ShardLoad, slots SlotLoad, cfg RebalanceConfig, byCount bool) (moves []Move, reason string) {
	if len(m.Shards) < 2 {
		return nil, "one shard: nothing to balance"
	}
	t := m.Slots
	counts := slotCounts(&t)
	var ids []int // shards with load reports
	known := map[int]bool{}
	for _, id := range m.shardIDs() {
		if _, ok := load[id]; ok && !m.Shards[id].Draining {
			ids = append(ids, id)
			known[id] = true
		}
	}
	ops := &loadDim{name: "ops/s", load: map[int]float64{}, cap: map[int]float64{}, slot: make([]float64, NumSlots)}
	mem := &loadDim{name: "memory", load: map[int]float64{}, cap: map[int]float64{}, slot: make([]float64, NumSlots)}
	byMax := len(ids) > 0
	for _, id := range ids {
		byMax = byMax && load[id].MaxMemory > 0
	}
	var totOps, totMem, capOps, capMem float64
	for _, id := range ids {
		l, w := load[id], float64(m.shardWeight(id))
		ops.load[id], ops.cap[id] = l.OpsPerSec, w
		mem.load[id], mem.cap[id] = float64(l.UsedMemory), w
		if byMax {
			mem.cap[id] = float64(l.MaxMemory)
		}
		totOps += l.OpsPerSec
		totMem += float64(l.UsedMemory)
		capOps += ops.cap[id]
		capMem += mem.cap[id]
	}
	ops.mean, mem.mean = totOps/capOps, totMem/capMem
	for s, o := range t {
		id := int(o)
		if !known[id] {
			continue
		}
		if len(slots) > 0 {
			ops.slot[s] = slots[s]
		} else {
			ops.slot[s] = ops.load[id] / float64(counts[id])
		}
		mem.slot[s] = mem.load[id] / float64(counts[id])
	}
	var dims []*loadDim // the dimensions worth comparing
	if len(ids) >= 2 && totOps > 0 && totOps >= cfg.MinOpsPerSec {
		dims = append(dims, ops)
	}
	if len(ids) >= 2 && totMem > 0 && totMem >= float64(cfg.MinUsedMemory) {
		dims = append(dims, mem)
	}
	hottest := func(d *loadDim, skip map[int]bool) (int, float64) {
		best, r := 0, 0.0
		for _, id := range ids {
			if !skip[id] && (best == 0 || d.ratio(id) > r) {
				best, r = id, d.ratio(id)
			}
		}
		return best, r
	}
	var lead *loadDim
	leadRatio := 0.0
	var summary []string
	for _, d := range dims {
		_, r := hottest(d, nil)
		summary = append(summary, fmt.Sprintf("%s max %.2fx mean", d.name, r))
		if r > 1+cfg.Threshold+overEps && r > leadRatio {
			lead, leadRatio = d, r
		}
	}
	if len(dims) == 0 {
		summary = append(summary, "no load to compare")
	}
	limit := cfg.MaxMoves
	if limit <= 0 {
		limit = NumSlots
	}
	// fits reports whether receiver r can take slot s without passing
	// the level (a ratio to the mean) in any compared dimension.
	fits := func(r, s int, level float64, except *loadDim) bool {
		if !known[r] {
			return true
		}
		for _, d := range dims {
			if d != except && d.slot[s] > 0 && (d.load[r]+d.slot[s])/d.cap[r]/d.mean > level+overEps {
				return false
			}
		}
		return true
	}
	apply := func(s, from, to int, why string) {
		for _, d := range dims {
			if known[from] {
				d.load[from] -= d.slot[s]
			}
			if known[to] {
				d.load[to] += d.slot[s]
			}
		}
		t[s] = uint16(to)
		counts[from]--
		counts[to]++
		moves = append(moves, Move{Slot: s, From: from, To: to, Reason: why})
	}

	if lead != nil {
		h0, _ := hottest(lead, nil)
		stuck := map[int]bool{}
		moved := map[int]bool{}
		cands := map[int][]int{} // per giver, sorted once; a slot moves at most once
		for len(moves) < limit {
			h, hr := hottest(lead, stuck)
			if h == 0 || hr <= 1+cfg.Threshold/2+overEps {
				break
			}
			c := 0
			for _, id := range ids {
				if id != h && (c == 0 || lead.ratio(id) < lead.ratio(c)) {
					c = id
				}
			}
			if cands[h] == nil {
				for s, o := range t {
					if int(o) == h && lead.slot[s] > 0 {
						cands[h] = append(cands[h], s)
					}
				}
				// The hottest slots first: by measured ops/s, lower
				// slots first among equals. When memory leads, the
				// biggest first, then the coldest, to move bytes without
				// moving ops.
				slices.SortStableFunc(cands[h], func(a, b int) int {
					if x := cmp.Compare(lead.slot[b], lead.slot[a]); x != 0 {
						return x
					}
					return cmp.Compare(ops.slot[a], ops.slot[b])
				})
			}
			cand := cands[h]
			done := false
			for i, s := range cand {
				if moved[s] {
					continue
				}
				l := lead.slot[s]
				if (lead.load[c]+l)/lead.cap[c] > (lead.load[h]-l)/lead.cap[h]*(1+overEps) {
					continue // overshoot: the receiver would end hotter than the giver
				}
				if !fits(c, s, 1+cfg.Threshold, lead) {
					continue
				}
				// Among slots tied with s, one next to the receiver's
				// slots keeps its ranges whole.
				for _, x := range cand[i+1:] {
					if lead.slot[x] != l || ops.slot[x] != ops.slot[s] {
						break
					}
					if !moved[x] && (x > 0 && int(t[x-1]) == c || x < NumSlots-1 && int(t[x+1]) == c) {
						s = x
						break
					}
				}
				why := fmt.Sprintf("slot %d (%s) from shard %d at %.2fx mean %s per %s to shard %d at %.2fx",
					s, lead.amount(s), h, hr, lead.name, lead.unit(byMax), c, lead.ratio(c))
				apply(s, h, c, why)
				moved[s] = true
				done = true
				break
			}
			if !done {
				stuck[h] = true
			}
		}
		head := fmt.Sprintf("shard %d at %.2fx mean %s per %s (threshold %.2fx)", h0, leadRatio, lead.name, lead.unit(byMax), 1+cfg.Threshold)
		if len(moves) > 0 {
			return moves, fmt.Sprintf("%s: %d moves of its hottest slots to cooler shards%s", head, len(moves), bounded(len(moves), cfg.MaxMoves))
		}
		summary = append([]string{head + ", but no slot of it can move without overshooting (a few hot slots carry its load)"}, summary...)
	}

	if !byCount {
		if lead == nil {
			summary = append(summary, fmt.Sprintf("no shard past %.2fx the mean", 1+cfg.Threshold))
		}
		return nil, strings.Join(summary, "; ")
	}
	// Slot-count balance against the weighted targets.
	targets := Targets(m)
	off := map[int]int{} // count - target, every shard and every other owner
	for id, tg := range targets {
		off[id] = counts[id] - tg
	}
	for o, c := range counts {
		if _, ok := targets[o]; !ok && c > 0 {
			off[o] = c
		}
	}
	worst := -1
	for o, d := range off {
		if worst < 0 || abs(d) > abs(off[worst]) || abs(d) == abs(off[worst]) && o < worst {
			worst = o
		}
	}
	if worst < 0 || abs(off[worst]) <= 1 {
		summary = append(summary, "slot counts within 1 of targets")
		if lead != nil {
			return nil, strings.Join(summary, "; ")
		}
		return nil, "balanced: " + strings.Join(summary, "; ")
	}
	summary = append(summary, fmt.Sprintf("slot counts off target: shard %d holds %d slots, target %d", worst, counts[worst], targets[worst]))
	// most returns the owner with the largest positive sign*off (ties:
	// the lower id), -1 if none.
	most := func(sign int, skip map[int]bool) int {
		best := -1
		for o, d := range off {
			if sign*d > 0 && !skip[o] && (best < 0 || sign*d > sign*off[best] || sign*d == sign*off[best] && o < best) {
				best = o
			}
		}
		return best
	}
	full := map[int]bool{} // receivers the load guard refuses
	for len(moves) < limit {
		from := most(+1, nil)
		to := most(-1, full)
		if from < 0 || to < 0 {
			break
		}
		k := min(off[from], -off[to], limit-len(moves))
		why := fmt.Sprintf("slot counts: shard %d holds %d slots (target %d), shard %d holds %d (target %d)",
			from, counts[from], targets[from], to, counts[to], targets[to])
		var picked []int
		if len(slots) == 0 || len(dims) == 0 {
			// No per-slot measure: keep ranges whole.
			tt := t
			picked = pickSlots(&tt, from, to, k, nil)
		} else {
			// The coldest slots that keep the receiver near the mean.
			var cand []int
			for x, o := range t {
				if int(o) == from {
					cand = append(cand, x)
				}
			}
			slices.SortStableFunc(cand, func(a, b int) int { return cmp.Compare(ops.slot[a], ops.slot[b]) })
			for _, x := range cand {
				if len(picked) == k {
					break
				}
				if fits(to, x, 1+cfg.Threshold/2, nil) {
					picked = append(picked, x)
					for _, d := range dims { // fits must see the earlier picks
						d.load[to] += d.slot[x]
					}
				}
			}
			for _, x := range picked {
				for _, d := range dims {
					d.load[to] -= d.slot[x]
				}
			}
		}
		if len(picked) < k {
			full[to] = true
		}
		for _, x := range picked {
			apply(x, from, to, why)
			off[from]--
			off[to]++
		}
	}
	if len(moves) == 0 {
		return nil, strings.Join(summary, "; ") + ", but no slot can move without unbalancing load"
	}
	head := "no load imbalance"
	if lead != nil {
		head = "load moves stuck"
	}
	return moves, fmt.Sprintf("%s (%s): %d moves toward weighted slot targets%s", head, strings.Join(summary, "; "), len(moves), bounded(len(moves), cfg.MaxMoves))
}

func (d *loadDim) amount(s int) string {
	if d.name == "memory" {
		return fmt.Sprintf("~%d bytes", int64(d.slot[s]))
	}
	return fmt.Sprintf("%.0f ops/s", d.slot[s])
}

func (d *loadDim) unit(byMax bool) string {
	if d.name == "memory" && byMax {
		return "byte of maxmemory"
	}
	return "weight"
}

func bounded(n, maxMoves int) string {
	if maxMoves > 0 && n >= maxMoves {
		return fmt.Sprintf(" (bounded at %d; more may follow)", maxMoves)
	}
	return ""
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}
