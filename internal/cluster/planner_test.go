package cluster

import (
	"fmt"
	"math/rand"
	"strings"
	"testing"
	"time"
)

// newCluster makes a map of len(weights) shards, one node each (no
// replicas), slots laid out by create.
func newCluster(t testing.TB, weights ...int) *Map {
	t.Helper()
	m := NewMap()
	m.Settings.ReplicasPerShard = 0
	for i, w := range weights {
		if err := m.Apply(Command{Op: OpRegister, Node: &Node{ID: fmt.Sprintf("n%03d", i), Addr: fmt.Sprintf("h:%d", i), Weight: w}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := m.Apply(Command{Op: OpCreate, Shards: len(weights)}); err != nil {
		t.Fatal(err)
	}
	return m
}

// addEmptyShard adds a shard of one new node of weight w, owning no slot.
func addEmptyShard(t testing.TB, m *Map, w int) int {
	t.Helper()
	id := fmt.Sprintf("x%03d", m.NextShard)
	if err := m.Apply(Command{Op: OpRegister, Node: &Node{ID: id, Addr: "h:" + id, Weight: w}}); err != nil {
		t.Fatal(err)
	}
	if err := m.Apply(Command{Op: OpAddShard, Nodes: []string{id}}); err != nil {
		t.Fatal(err)
	}
	return m.NextShard - 1
}

// applyMoves applies moves to m's table, checking each From is the
// slot's owner and no slot moves twice.
func applyMoves(t testing.TB, m *Map, moves []Move) {
	t.Helper()
	seen := map[int]bool{}
	for _, mv := range moves {
		switch {
		case mv.Slot < 0 || mv.Slot >= NumSlots:
			t.Fatalf("bad slot in %+v", mv)
		case seen[mv.Slot]:
			t.Fatalf("slot %d moves twice", mv.Slot)
		case int(m.Slots[mv.Slot]) != mv.From:
			t.Fatalf("%+v: slot is owned by %d", mv, m.Slots[mv.Slot])
		case mv.From == mv.To:
			t.Fatalf("%+v: a move to itself", mv)
		case mv.Reason == "":
			t.Fatalf("%+v: no reason", mv)
		}
		seen[mv.Slot] = true
		m.Slots[mv.Slot] = uint16(mv.To)
	}
}

func checkNearTargets(t testing.TB, m *Map, skip int) {
	t.Helper()
	for id, tg := range targetsWithout(m, skip) {
		if c := m.Slots.Count(id); abs(c-tg) > 1 {
			t.Errorf("shard %d holds %d slots, target %d", id, c, tg)
		}
	}
}

func TestTargetsProportionalToWeight(t *testing.T) {
	for _, tc := range []struct {
		weights []int
		want    []int
	}{
		{[]int{1}, []int{16384}},
		{[]int{1, 1}, []int{8192, 8192}},
		{[]int{1, 1, 2}, []int{4096, 4096, 8192}},
		{[]int{1, 3}, []int{4096, 12288}},
		{[]int{1, 1, 1}, []int{5462, 5461, 5461}},                            // remainders tie: lower id first
		{[]int{2, 1, 1, 1, 1, 1}, []int{4681, 2341, 2341, 2341, 2340, 2340}}, // remainders 1 (2/7) and 4 (1/7)
		{[]int{100, 1}, []int{16222, 162}},
	} {
		m := newCluster(t, tc.weights...)
		got := Targets(m)
		total := 0
		for i, w := range tc.want {
			total += got[i+1]
			if got[i+1] != w {
				t.Errorf("weights %v: shard %d target %d, want %d", tc.weights, i+1, got[i+1], w)
			}
			if c := m.Slots.Count(i + 1); c != got[i+1] {
				t.Errorf("weights %v: create gave shard %d %d slots, target %d", tc.weights, i+1, c, got[i+1])
			}
		}
		if total != NumSlots {
			t.Errorf("weights %v: targets sum to %d", tc.weights, total)
		}
	}
}

// The shard weight is the primary's; a missing primary weighs 1.
func TestTargetsFollowPrimaryWeight(t *testing.T) {
	m := newCluster(t, 1, 1)
	m.Nodes[m.Shards[2].Primary].Weight = 3
	if got := Targets(m); got[1] != 4096 || got[2] != 12288 {
		t.Fatalf("targets %v", got)
	}
	m.Shards[2].Primary = "gone"
	if got := Targets(m); got[1] != 8192 || got[2] != 8192 {
		t.Fatalf("targets without primary %v", got)
	}
}

func TestPlanAddShardMonotonic(t *testing.T) {
	for _, tc := range []struct {
		weights []int
		add     int
	}{
		{[]int{1}, 1},
		{[]int{1, 1, 1}, 1},
		{[]int{1, 1, 2}, 2},
		{[]int{3, 1, 1, 2, 1}, 5},
		{[]int{1, 1}, 100},
	} {
		t.Run(fmt.Sprint(tc.weights, tc.add), func(t *testing.T) {
			m := newCluster(t, tc.weights...)
			before := m.Slots
			n := addEmptyShard(t, m, tc.add)
			moves := PlanAddShard(m, n, 0)
			for _, mv := range moves {
				if mv.To != n {
					t.Fatalf("move onto shard %d, not the new %d: %+v", mv.To, n, mv)
				}
			}
			applyMoves(t, m, moves)
			changed := 0
			for s := range m.Slots {
				if m.Slots[s] != before[s] {
					changed++
					if int(m.Slots[s]) != n {
						t.Fatalf("slot %d went from %d to %d", s, before[s], m.Slots[s])
					}
				}
			}
			if changed != len(moves) || changed != Targets(m)[n] {
				t.Fatalf("%d slots changed owner, %d moves, target %d", changed, len(moves), Targets(m)[n])
			}
			checkNearTargets(t, m, 0)
			if again := PlanAddShard(m, n, 0); again != nil {
				t.Fatalf("a second plan moves %d slots", len(again))
			}
		})
	}
}

// Adding a 4th equal shard to a fresh 3-shard layout takes the tail of
// shard 1 and the head of shard 2 (one range) and the tail of shard 3:
// 2 ranges, not 3.
func TestPlanAddShardContiguous(t *testing.T) {
	m := newCluster(t, 1, 1, 1)
	n := addEmptyShard(t, m, 1)
	applyMoves(t, m, PlanAddShard(m, n, 0))
	if r := m.SlotRanges(n); len(r) != 2 {
		t.Fatalf("new shard ranges %v", r)
	}
	for id := 1; id <= 3; id++ {
		if r := m.SlotRanges(id); len(r) != 1 {
			t.Fatalf("shard %d ranges %v", id, r)
		}
	}
}

func TestPlanDrainMonotonic(t *testing.T) {
	for _, tc := range []struct {
		weights []int
		drain   int
	}{
		{[]int{1, 1}, 1},
		{[]int{1, 1, 1, 1}, 2},
		{[]int{1, 1, 2}, 3},
		{[]int{3, 1, 1, 2, 1}, 1},
	} {
		t.Run(fmt.Sprint(tc.weights, tc.drain), func(t *testing.T) {
			m := newCluster(t, tc.weights...)
			before := m.Slots
			moves := PlanDrain(m, tc.drain, 0)
			for _, mv := range moves {
				if mv.From != tc.drain {
					t.Fatalf("move from shard %d, not the drained %d: %+v", mv.From, tc.drain, mv)
				}
			}
			applyMoves(t, m, moves)
			for s := range m.Slots {
				if m.Slots[s] != before[s] && int(before[s]) != tc.drain {
					t.Fatalf("slot %d of shard %d changed owner", s, before[s])
				}
			}
			if c := m.Slots.Count(tc.drain); c != 0 {
				t.Fatalf("drained shard keeps %d slots", c)
			}
			checkNearTargets(t, m, tc.drain)
		})
	}
	if PlanDrain(newCluster(t, 1), 1, 0) != nil {
		t.Fatal("planned draining the only shard")
	}
}

// Add then drain a shard: the layout comes back exactly, in as many
// ranges as before.
func TestAddThenDrainRestores(t *testing.T) {
	m := newCluster(t, 1, 1, 1)
	orig := m.Slots
	n := addEmptyShard(t, m, 1)
	applyMoves(t, m, PlanAddShard(m, n, 0))
	applyMoves(t, m, PlanDrain(m, n, 0))
	if m.Slots != orig {
		t.Fatalf("layout changed: %v", m.Slots.Ranges())
	}
}

// Bounded plans take from the shard most above target first, and
// repeated bounded plans end where one unbounded plan does.
func TestPlanAddShardBounded(t *testing.T) {
	m := newCluster(t, 1, 1)
	for s := 8192; s < 10000; s++ { // shard 1: 10000 slots, shard 2: 6384
		m.Slots[s] = 1
	}
	n := addEmptyShard(t, m, 1)
	moves := PlanAddShard(m, n, 100)
	if len(moves) != 100 {
		t.Fatalf("%d moves, want 100", len(moves))
	}
	for _, mv := range moves {
		if mv.From != 1 {
			t.Fatalf("took from shard %d first: %+v", mv.From, mv)
		}
	}
	all := PlanAddShard(m, n, 0)
	if len(all) != Targets(m)[n] {
		t.Fatalf("unbounded plan %d moves", len(all))
	}
	rounds := 0
	for mv := PlanAddShard(m, n, 1000); mv != nil; mv = PlanAddShard(m, n, 1000) {
		applyMoves(t, m, mv)
		rounds++
	}
	if rounds != 6 { // 5461 slots, 1000 a round
		t.Fatalf("%d rounds", rounds)
	}
	checkNearTargets(t, m, 0)

	d := PlanDrain(m, 2, 10)
	if len(d) != 10 {
		t.Fatalf("bounded drain %d moves", len(d))
	}
}

// Unassigned slots (and slots of a shard no longer in the map) go to
// the new shard first: they are the most above target (0).
func TestPlanAddShardTakesUnassigned(t *testing.T) {
	m := newCluster(t, 1, 1)
	for s := 0; s < 10; s++ {
		m.Slots[s] = 0
	}
	n := addEmptyShard(t, m, 1)
	moves := PlanAddShard(m, n, 0)
	from0 := 0
	for _, mv := range moves {
		if mv.From == 0 {
			from0++
		}
	}
	if from0 != 10 {
		t.Fatalf("%d unassigned slots moved", from0)
	}
	applyMoves(t, m, moves)
	checkNearTargets(t, m, 0)
}

func loads(ops ...float64) map[int]ShardLoad {
	out := map[int]ShardLoad{}
	for i, o := range ops {
		out[i+1] = ShardLoad{OpsPerSec: o}
	}
	return out
}

func TestPlanRebalanceNoopWhenBalanced(t *testing.T) {
	cfg := DefaultRebalanceConfig()
	m := newCluster(t, 1, 1, 2)
	for _, tc := range []struct {
		name string
		load map[int]ShardLoad
	}{
		{"equal per weight", loads(10000, 10000, 20000)},
		{"no load reports", nil},
		{"below min ops", loads(10, 500, 20)},
		{"exactly at threshold", loads(12000, 8000, 20000)}, // mean 10000 per weight: 1.2x is not over 1.2x
	} {
		moves, reason := PlanRebalance(m, tc.load, nil, cfg)
		if moves != nil || !strings.HasPrefix(reason, "balanced") {
			t.Errorf("%s: %d moves, reason %q", tc.name, len(moves), reason)
		}
	}
	moves, reason := PlanRebalance(m, loads(12100, 7900, 20000), nil, cfg)
	if len(moves) == 0 || !strings.Contains(reason, "shard 1 at 1.21x mean ops/s per weight") {
		t.Fatalf("just over the threshold: %d moves, %q", len(moves), reason)
	}
}

// The hottest slots move first; one too hot to move without overshoot
// is skipped; the plan stops once the hottest shard is within
// Threshold/2 of the mean.
func TestPlanRebalanceHotSlots(t *testing.T) {
	m := newCluster(t, 1, 1)
	slots := SlotLoad{100: 300, 101: 200, 102: 100, 103: 50, 9000: 100}
	// Shard 1 1650 ops/s, shard 2 1000: mean 1325, shard 1 at 1.25x.
	moves, reason := PlanRebalance(m, loads(1650, 1000), slots, DefaultRebalanceConfig())
	if len(moves) != 1 || moves[0].Slot != 100 || moves[0].From != 1 || moves[0].To != 2 {
		t.Fatalf("moves %+v (%s)", moves, reason)
	}
	if !strings.Contains(moves[0].Reason, "slot 100 (300 ops/s)") {
		t.Fatalf("move reason %q", moves[0].Reason)
	}

	// Slot 100 alone carries most of shard 1's load: moving it would make
	// shard 2 the hot one, so the next hottest go instead.
	slots = SlotLoad{100: 1000, 101: 200, 102: 150, 103: 100, 104: 90, 9000: 400}
	moves, reason = PlanRebalance(m, loads(1600, 400), slots, DefaultRebalanceConfig())
	var got []int
	for _, mv := range moves {
		got = append(got, mv.Slot)
	}
	if fmt.Sprint(got) != "[101 102 103 104]" {
		t.Fatalf("moved %v (%s)", got, reason)
	}

	// Bounded.
	cfg := DefaultRebalanceConfig()
	cfg.MaxMoves = 2
	moves, reason = PlanRebalance(m, loads(1600, 400), slots, cfg)
	if len(moves) != 2 || moves[0].Slot != 101 || moves[1].Slot != 102 || !strings.Contains(reason, "bounded at 2") {
		t.Fatalf("bounded: %+v (%s)", moves, reason)
	}

	// Nothing can move: a single slot is the whole imbalance.
	moves, reason = PlanRebalance(m, loads(1500, 500), SlotLoad{100: 1500, 9000: 500}, DefaultRebalanceConfig())
	if moves != nil || !strings.Contains(reason, "overshooting") {
		t.Fatalf("single hot slot: %+v (%s)", moves, reason)
	}
}

// Load is compared per unit of weight: a weight-3 shard carrying 3x the
// ops is balanced; with equal loads it is the cool one.
func TestPlanRebalanceWeighted(t *testing.T) {
	m := newCluster(t, 1, 3)
	if moves, reason := PlanRebalance(m, loads(5000, 15000), nil, DefaultRebalanceConfig()); moves != nil {
		t.Fatalf("balanced per weight: %d moves (%s)", len(moves), reason)
	}
	moves, reason := PlanRebalance(m, loads(10000, 10000), nil, DefaultRebalanceConfig())
	if len(moves) == 0 || !strings.Contains(reason, "shard 1 at 2.00x") {
		t.Fatalf("%d moves (%s)", len(moves), reason)
	}
	for _, mv := range moves {
		if mv.From != 1 || mv.To != 2 {
			t.Fatalf("move %+v", mv)
		}
	}
	// Without per-slot measures every slot of shard 1 carries 10000/4096
	// ops/s: the lowest slots go first, in one range.
	applyMoves(t, m, moves)
	if r := m.SlotRanges(2); len(r) != 1 {
		t.Fatalf("shard 2 ranges %v", r)
	}
}

func TestPlanRebalanceMemory(t *testing.T) {
	m := newCluster(t, 1, 1, 1)
	load := map[int]ShardLoad{
		1: {OpsPerSec: 5000, UsedMemory: 900 << 20, MaxMemory: 1 << 30},
		2: {OpsPerSec: 5000, UsedMemory: 300 << 20, MaxMemory: 1 << 30},
		3: {OpsPerSec: 5000, UsedMemory: 300 << 20, MaxMemory: 1 << 30},
	}
	moves, reason := PlanRebalance(m, load, nil, DefaultRebalanceConfig())
	if len(moves) != 64 || !strings.Contains(reason, "shard 1 at 1.80x mean memory per byte of maxmemory") {
		t.Fatalf("%d moves (%s)", len(moves), reason)
	}
	for _, mv := range moves {
		if mv.From != 1 {
			t.Fatalf("move %+v", mv)
		}
	}
}

// Without load imbalance the planner evens out slot counts against the
// weighted targets: a new empty shard fills up, bounded per plan.
func TestPlanRebalanceSlotCounts(t *testing.T) {
	m := newCluster(t, 1, 1, 1)
	n := addEmptyShard(t, m, 1)
	cfg := DefaultRebalanceConfig()
	moves, reason := PlanRebalance(m, nil, nil, cfg)
	if len(moves) != 64 || !strings.Contains(reason, "slot counts off target: shard 4 holds 0 slots, target 4096") {
		t.Fatalf("%d moves (%s)", len(moves), reason)
	}
	for _, mv := range moves {
		if mv.To != n {
			t.Fatalf("move %+v", mv)
		}
	}
	cfg.MaxMoves = 0
	moves, _ = PlanRebalance(m, nil, nil, cfg)
	applyMoves(t, m, moves)
	checkNearTargets(t, m, 0)
	if moves, reason := PlanRebalance(m, nil, nil, cfg); moves != nil {
		t.Fatalf("second plan: %d moves (%s)", len(moves), reason)
	}

	// With per-slot measures the coldest slots move, and none that would
	// make the receiver hot.
	m = newCluster(t, 1, 1)
	for s := 8192; s < 8292; s++ {
		m.Slots[s] = 1 // shard 1: 100 slots above target
	}
	slots := SlotLoad{}
	for s := 0; s < 8292; s++ {
		slots[s] = 1
	}
	slots[5] = 0
	slots[7] = 0
	for s := 8292; s < NumSlots; s++ {
		slots[s] = 1.2
	}
	l := loads(8292, 9490) // 0.93x and 1.07x the mean: balanced
	moves, reason = PlanRebalance(m, l, slots, DefaultRebalanceConfig())
	if len(moves) != 64 || moves[0].Slot != 5 || moves[1].Slot != 7 {
		t.Fatalf("%d moves, first %+v (%s)", len(moves), moves[:min(2, len(moves))], reason)
	}
}

func TestEstimateSlotLoad(t *testing.T) {
	m := newCluster(t, 1, 1)
	est := EstimateSlotLoad(m, loads(900, 8192), map[int]int64{0: 2, 1: 1})
	if est[0] != 600 || est[1] != 300 || est[2] != 0 || est[8192] != 1 {
		t.Fatalf("estimate %v %v %v %v", est[0], est[1], est[2], est[8192])
	}
}

func TestSustain(t *testing.T) {
	t0 := time.Unix(1000, 0)
	s := Sustain{Period: 10 * time.Second}
	steps := []struct {
		at   time.Duration
		over bool
		want bool
	}{
		{0, true, false},
		{5 * time.Second, true, false},
		{9*time.Second + 999*time.Millisecond, true, false},
		{10 * time.Second, true, true},
		{11 * time.Second, true, true},
		{12 * time.Second, false, false}, // a dip restarts the period
		{13 * time.Second, true, false},
		{22 * time.Second, true, false},
		{23 * time.Second, true, true},
	}
	for _, st := range steps {
		if got := s.Observe(t0.Add(st.at), st.over); got != st.want {
			t.Fatalf("at %v over=%v: %v", st.at, st.over, got)
		}
	}
	if d := s.For(t0.Add(25 * time.Second)); d != 12*time.Second {
		t.Fatalf("For %v", d)
	}
	z := Sustain{}
	if !z.Observe(t0, true) {
		t.Fatal("zero period not immediate")
	}
}

func TestAutoscale(t *testing.T) {
	t0 := time.Unix(1000, 0)
	cfg := DefaultAutoscaleConfig()
	cfg.Sustain, cfg.Cooldown, cfg.MaxShards = time.Minute, 5*time.Minute, 3
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	m := newCluster(t, 1, 1)
	m.Settings.ReplicasPerShard = 1
	a := NewAutoscaler(cfg)
	hot := loads(60000, 60000)

	d := a.Decide(t0, m, hot, 2)
	if d.Action != ActionNone || !strings.Contains(d.Reason, "ops/s per shard above 50000 for 0s of 1m0s") {
		t.Fatalf("not sustained yet: %+v", d)
	}
	// Sustained, but the pool is short: say so, ask for the provisioner.
	d = a.Decide(t0.Add(time.Minute), m, hot, 1)
	if d.Action != ActionNone || d.NeedStandby != 1 || !strings.Contains(d.Reason, "provisioner") {
		t.Fatalf("short pool: %+v", d)
	}
	d = a.Decide(t0.Add(61*time.Second), m, hot, 2)
	if d.Action != ActionScaleOut {
		t.Fatalf("scale-out: %+v", d)
	}
	// Cooldown: still hot, still sustained, but no second action.
	m3 := newCluster(t, 1, 1, 1)
	m3.Settings.ReplicasPerShard = 1
	hot3 := loads(60000, 60000, 60000)
	for at := 62 * time.Second; at < 61*time.Second+cfg.Cooldown; at += 30 * time.Second {
		d = a.Decide(t0.Add(at), m, hot, 2)
		if d.Action != ActionNone {
			t.Fatalf("action during cooldown at %v: %+v", at, d)
		}
	}
	if !strings.Contains(d.Reason, "cooling down") {
		t.Fatalf("reason %q", d.Reason)
	}
	// At max shards: never scale out.
	for at := 10 * time.Minute; at < 20*time.Minute; at += 30 * time.Second {
		if d = a.Decide(t0.Add(at), m3, hot3, 10); d.Action != ActionNone {
			t.Fatalf("scale-out at max shards: %+v", d)
		}
	}
	if !strings.Contains(d.Reason, "at max shards (3)") {
		t.Fatalf("reason %q", d.Reason)
	}

	// Scale-in after the sustain period, draining the least loaded shard;
	// not below MinShards.
	a = NewAutoscaler(cfg)
	cool := loads(3000, 1000, 2000)
	a.Decide(t0, m3, cool, 0)
	d = a.Decide(t0.Add(time.Minute), m3, cool, 0)
	if d.Action != ActionScaleIn || d.Shard != 2 {
		t.Fatalf("scale-in: %+v", d)
	}
	a = NewAutoscaler(cfg)
	a.Decide(t0, m, loads(10, 10), 0)
	if d = a.Decide(t0.Add(time.Hour), m, loads(10, 10), 0); d.Action != ActionScaleIn {
		t.Fatalf("scale-in to 1: %+v", d)
	}
	m1 := newCluster(t, 1)
	a = NewAutoscaler(cfg)
	a.Decide(t0, m1, loads(10), 0)
	if d = a.Decide(t0.Add(time.Hour), m1, loads(10), 0); d.Action != ActionNone || !strings.Contains(d.Reason, "min shards (1)") {
		t.Fatalf("min shards: %+v", d)
	}
	// A scale-in that would push the rest above scale-out is refused.
	cfg.ScaleInOpsPerShard, cfg.ScaleOutOpsPerShard = 9000, 10000
	a = NewAutoscaler(cfg)
	for at := time.Duration(0); at < time.Hour; at += time.Minute {
		if d = a.Decide(t0.Add(at), m3, loads(8000, 8000, 8000), 0); d.Action != ActionNone {
			t.Fatalf("flapping scale-in: %+v", d)
		}
	}
	if !strings.Contains(d.Reason, "above scale-out") {
		t.Fatalf("reason %q", d.Reason)
	}
	// A missing report blocks decisions.
	if d = a.Decide(t0, m3, loads(1, 1), 0); d.Action != ActionNone || !strings.Contains(d.Reason, "shard 3") {
		t.Fatalf("missing report: %+v", d)
	}
}

func TestAutoscaleMemory(t *testing.T) {
	t0 := time.Unix(0, 0)
	cfg := DefaultAutoscaleConfig()
	cfg.Sustain = 0
	m := newCluster(t, 1, 1)
	a := NewAutoscaler(cfg)
	full := map[int]ShardLoad{1: {UsedMemory: 80, MaxMemory: 100}, 2: {UsedMemory: 80, MaxMemory: 100}}
	if d := a.Decide(t0, m, full, 2); d.Action != ActionScaleOut || !strings.Contains(d.Reason, "memory above 75%") {
		t.Fatalf("%+v", d)
	}
	// Under scale-in by ops, but draining one of two half-full shards
	// would fill the other: refused.
	a = NewAutoscaler(cfg)
	half := map[int]ShardLoad{1: {UsedMemory: 20, MaxMemory: 100}, 2: {UsedMemory: 20, MaxMemory: 100}}
	if d := a.Decide(t0, m, half, 0); d.Action != ActionScaleIn {
		t.Fatalf("%+v", d)
	}
	cfg.ScaleInMemFrac = 0.5
	a = NewAutoscaler(cfg)
	mid := map[int]ShardLoad{1: {UsedMemory: 40, MaxMemory: 100}, 2: {UsedMemory: 40, MaxMemory: 100}}
	if d := a.Decide(t0, m, mid, 0); d.Action != ActionNone || !strings.Contains(d.Reason, "memory would pass") {
		t.Fatalf("%+v", d)
	}
}

// FuzzPlanAddDrain checks the monotonicity invariants of PlanAddShard
// and PlanDrain on random weights and tables: every move from the
// slot's owner, onto the new shard (add) or from the drained shard
// (drain), no slot twice, at most maxMoves; unbounded on a table at its
// targets, every count ends within 1 of its new target.
func FuzzPlanAddDrain(f *testing.F) {
	f.Add(int64(1), uint8(3), false, uint16(0))
	f.Add(int64(2), uint8(1), true, uint16(0))
	f.Add(int64(3), uint8(9), true, uint16(77))
	f.Fuzz(func(t *testing.T, seed int64, shards uint8, scattered bool, maxMoves uint16) {
		rng := rand.New(rand.NewSource(seed))
		n := 1 + int(shards)%12
		w := make([]int, n)
		for i := range w {
			w[i] = 1 + rng.Intn(8)
		}
		m := newCluster(t, w...)
		if scattered {
			// Shuffle owners: counts stay at their targets, ranges scatter;
			// then sometimes unbalance them.
			rng.Shuffle(NumSlots, func(i, j int) { m.Slots[i], m.Slots[j] = m.Slots[j], m.Slots[i] })
			if rng.Intn(2) == 0 {
				for k := rng.Intn(3000); k > 0; k-- {
					m.Slots[rng.Intn(NumSlots)] = uint16(rng.Intn(n + 1)) // 0: unassigned
				}
			}
		}
		atTargets := true
		for id, tg := range Targets(m) {
			atTargets = atTargets && m.Slots.Count(id) == tg
		}
		mm := int(maxMoves) % 3000

		// Add.
		am := m.Clone()
		ns := addEmptyShard(t, am, 1+rng.Intn(8))
		moves := PlanAddShard(am, ns, mm)
		if mm > 0 && len(moves) > mm {
			t.Fatalf("%d moves > max %d", len(moves), mm)
		}
		for _, mv := range moves {
			if mv.To != ns {
				t.Fatalf("add: move onto %d: %+v", mv.To, mv)
			}
		}
		applyMoves(t, am, moves)
		if mm == 0 {
			if c, tg := am.Slots.Count(ns), Targets(am)[ns]; c != tg {
				t.Fatalf("new shard %d slots, target %d", c, tg)
			}
			if atTargets {
				checkNearTargets(t, am, 0)
			}
		}

		// Drain.
		if n < 2 {
			return
		}
		dm := m.Clone()
		drain := 1 + rng.Intn(n)
		targets := targetsWithout(dm, drain)
		moves = PlanDrain(dm, drain, mm)
		if mm > 0 && len(moves) > mm {
			t.Fatalf("%d moves > max %d", len(moves), mm)
		}
		for _, mv := range moves {
			if mv.From != drain || mv.To == 0 || dm.Shards[mv.To] == nil {
				t.Fatalf("drain %d: move %+v", drain, mv)
			}
		}
		before := dm.Slots
		applyMoves(t, dm, moves)
		for id, tg := range targets {
			// A receiver never passes its target (unless it was above).
			if c := dm.Slots.Count(id); c > max(tg, before.Count(id)) {
				t.Fatalf("shard %d got %d slots, target %d", id, c, tg)
			}
		}
		if mm == 0 {
			if c := dm.Slots.Count(drain); c != 0 {
				t.Fatalf("drained shard keeps %d", c)
			}
			if atTargets {
				checkNearTargets(t, dm, drain)
			}
		}
	})
}

// Ops lead, but the coolest shard by ops is nearly full: slots move only
// while its memory stays within the threshold.
func TestPlanRebalanceGuardsOtherDimension(t *testing.T) {
	m := newCluster(t, 1, 1)
	load := map[int]ShardLoad{
		1: {OpsPerSec: 3000, UsedMemory: 400 << 20, MaxMemory: 1 << 30},
		2: {OpsPerSec: 1000, UsedMemory: 594 << 20, MaxMemory: 1 << 30}, // 1.195x mean memory
	}
	moves, reason := PlanRebalance(m, load, nil, DefaultRebalanceConfig())
	if len(moves) == 0 || len(moves) >= 64 || !strings.Contains(reason, "ops/s") {
		t.Fatalf("%d moves (%s)", len(moves), reason)
	}
	perSlot := float64(400<<20) / 8192
	mean := float64(994<<20) / 2
	if after := float64(594<<20) + float64(len(moves))*perSlot; after > 1.2*mean {
		t.Fatalf("receiver memory %.3fx mean after %d moves", after/mean, len(moves))
	}
	if after := float64(594<<20) + float64(len(moves)+1)*perSlot; after <= 1.2*mean {
		t.Fatalf("stopped early at %d moves", len(moves))
	}
}
