package cluster

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// pilotMap is a created cluster of two single-node shards (replicas per
// shard 1, so a scale-out takes two pool nodes) and a pool of three.
func pilotMap(t *testing.T) *Map {
	m := NewMap()
	register(t, m, "a", 1)
	register(t, m, "b", 1)
	if err := m.Apply(Command{Op: OpCreate, Shards: 2}); err != nil {
		t.Fatal(err)
	}
	m.Settings.ReplicasPerShard = 1
	for _, id := range []string{"p1", "p2", "p3"} {
		if err := m.Apply(Command{Op: OpRegister, Node: &Node{ID: id, Addr: "127.0.0.1:" + id, State: NodeStandby}}); err != nil {
			t.Fatal(err)
		}
	}
	return m
}

func testPilotConfig() AutopilotConfig {
	c := DefaultAutopilotConfig()
	c.Scale.Sustain, c.Scale.Cooldown, c.BalanceSustain = 10*time.Second, 30*time.Second, 5*time.Second
	c.Scale.ScaleOutOpsPerShard, c.Scale.ScaleInOpsPerShard = 1000, 100
	c.Rebalance.MinOpsPerSec = 10
	return c
}

func TestAutopilotScaleOutSustainBusyCooldown(t *testing.T) {
	m := pilotMap(t)
	p := NewAutopilot(testPilotConfig())
	t0 := time.Unix(1000, 0)
	hot := map[int]ShardLoad{1: {OpsPerSec: 1500}, 2: {OpsPerSec: 1500}}
	pool := []string{"p1", "p2", "p3"}
	in := AutopilotInput{Load: hot, Pool: pool}
	if s := p.Decide(t0, m, in); s.Action != ActionNone || s.Kind != KindSustain {
		t.Fatalf("first observation: %+v", s)
	}
	// A dip restarts the period.
	if s := p.Decide(t0.Add(5*time.Second), m, AutopilotInput{Load: map[int]ShardLoad{1: {OpsPerSec: 500}, 2: {OpsPerSec: 500}}, Pool: pool}); s.Kind != KindSteady {
		t.Fatalf("dip: %+v", s)
	}
	p.Decide(t0.Add(6*time.Second), m, in)
	if s := p.Decide(t0.Add(15*time.Second), m, in); s.Action != ActionNone {
		t.Fatalf("scaled out after 9s of 10s: %+v", s)
	}
	s := p.Decide(t0.Add(16*time.Second), m, in)
	if s.Action != ActionScaleOut || strings.Join(s.Nodes, ",") != "p1,p2" || !strings.Contains(s.Reason, "ops/s per shard above 1000") {
		t.Fatalf("scale-out: %+v", s)
	}
	// While it runs nothing is decided.
	if s := p.Decide(t0.Add(20*time.Second), m, AutopilotInput{Load: hot, Pool: pool[2:], Busy: "5461 slot moves in progress"}); s.Kind != KindBusy || s.Action != ActionNone {
		t.Fatalf("busy: %+v", s)
	}
	// Done at 60s: still hot (the new shard not yet loaded), sustained
	// again, but cooling down until 90s.
	p.Done(t0.Add(60*time.Second), ActionScaleOut)
	in.Pool = pool[2:]
	for _, at := range []int{61, 75, 85} {
		if s := p.Decide(t0.Add(time.Duration(at)*time.Second), m, in); s.Action != ActionNone {
			t.Fatalf("at %ds: %+v", at, s)
		}
	}
	if st := p.State(t0.Add(85 * time.Second)); st.CooldownLeft != 5*time.Second || st.ScaleOutFor != 24*time.Second || st.LastAction != ActionScaleOut {
		t.Fatalf("state %+v", st)
	}
	// Past the cooldown: due, but the pool has 1 node of 2.
	s = p.Decide(t0.Add(91*time.Second), m, in)
	if s.Action != ActionNone || s.Kind != KindStandby || s.NeedStandby != 1 || !strings.Contains(s.Reason, "provisioner") {
		t.Fatalf("short pool: %+v", s)
	}
}

func TestAutopilotScaleInAndDisabled(t *testing.T) {
	m := pilotMap(t)
	cold := map[int]ShardLoad{1: {OpsPerSec: 10}, 2: {OpsPerSec: 10}}
	t0 := time.Unix(1000, 0)
	p := NewAutopilot(testPilotConfig())
	p.Decide(t0, m, AutopilotInput{Load: cold})
	s := p.Decide(t0.Add(10*time.Second), m, AutopilotInput{Load: cold})
	if s.Action != ActionScaleIn || s.Shard != 2 {
		t.Fatalf("scale-in: %+v", s)
	}
	// Scale-in off: the decision is reported, nothing acts, no cooldown.
	cfg := testPilotConfig()
	cfg.ScaleIn = false
	p = NewAutopilot(cfg)
	p.Decide(t0, m, AutopilotInput{Load: cold})
	s = p.Decide(t0.Add(10*time.Second), m, AutopilotInput{Load: cold})
	if s.Action != ActionNone || !strings.Contains(s.Reason, "scale-in is disabled") {
		t.Fatalf("disabled scale-in: %+v", s)
	}
	if st := p.State(t0.Add(10 * time.Second)); st.CooldownLeft != 0 || st.LastAction != "" {
		t.Fatalf("a disabled action started the cooldown: %+v", st)
	}
	// At min shards.
	cfg = testPilotConfig()
	cfg.Scale.MinShards = 2
	p = NewAutopilot(cfg)
	if s := p.Decide(t0, m, AutopilotInput{Load: cold}); s.Kind != KindBlocked {
		t.Fatalf("min shards: %+v", s)
	}
}

// A hot shard (by measured slots) past the threshold for the sustain
// period gives moves of its hottest slots, only from it, to the other.
func TestAutopilotRebalancesHotSlots(t *testing.T) {
	m := pilotMap(t)
	p := NewAutopilot(testPilotConfig())
	load := map[int]ShardLoad{1: {OpsPerSec: 900}, 2: {OpsPerSec: 100}}
	top := map[int]float64{10: 300, 11: 200, 12: 100}
	slots := CombineSlotLoad(m, load, top, nil)
	in := AutopilotInput{Load: load, Slots: slots}
	t0 := time.Unix(1000, 0)
	s := p.Decide(t0, m, in)
	if s.Action != ActionNone || s.Kind != KindSustain || !strings.Contains(s.Reason, "shard 1 at 1.80x the mean ops/s") {
		t.Fatalf("first: %+v", s)
	}
	if st := p.State(t0); st.Imbalance < 1.79 || st.ImbalanceShard != 1 || st.ImbalanceDim != "ops/s" {
		t.Fatalf("state %+v", st)
	}
	// Not before the hot shard's slots are measured.
	in.Measured = map[int]bool{2: true}
	if s := p.Decide(t0.Add(5*time.Second), m, in); s.Action != ActionNone || !strings.Contains(s.Reason, "waiting for its per-slot load") {
		t.Fatalf("unmeasured: %+v", s)
	}
	in.Measured[1] = true
	s = p.Decide(t0.Add(5*time.Second), m, in)
	if s.Action != ActionBalance || len(s.Moves) == 0 {
		t.Fatalf("rebalance: %+v", s)
	}
	for _, mv := range s.Moves {
		if mv.From != 1 || mv.To != 2 {
			t.Fatalf("move %+v", mv)
		}
	}
	if s.Moves[0].Slot != 10 {
		t.Fatalf("the hottest slot first: %+v", s.Moves[0])
	}
	// Cooling down after it.
	if s := p.Decide(t0.Add(11*time.Second), m, in); s.Action != ActionNone {
		t.Fatalf("during cooldown: %+v", s)
	}
	// Rebalancing off.
	cfg := testPilotConfig()
	cfg.Balance = false
	p = NewAutopilot(cfg)
	p.Decide(t0, m, in)
	if s := p.Decide(t0.Add(time.Minute), m, in); s.Action != ActionNone {
		t.Fatalf("rebalance disabled: %+v", s)
	}
}

func TestImbalanceAndCombineSlotLoad(t *testing.T) {
	m := pilotMap(t)
	cfg := DefaultRebalanceConfig()
	cfg.MinOpsPerSec, cfg.MinUsedMemory = 0, 0
	// Memory by maxmemory: shard 2 is 80% full, shard 1 20%.
	load := map[int]ShardLoad{1: {UsedMemory: 20, MaxMemory: 100}, 2: {UsedMemory: 80, MaxMemory: 100}}
	if r, sh, dim := Imbalance(m, load, cfg); fmt.Sprintf("%.2f %d %s", r, sh, dim) != "1.60 2 memory" {
		t.Fatalf("imbalance %v %v %v", r, sh, dim)
	}
	// Weight 3 for shard 2: 3x the ops per weight 1 is even.
	m.Shards[2].Weight = 3
	load = map[int]ShardLoad{1: {OpsPerSec: 100}, 2: {OpsPerSec: 300}}
	if r, _, _ := Imbalance(m, load, cfg); r < 0.999 || r > 1.001 {
		t.Fatalf("weighted imbalance %v", r)
	}
	// Under the noise floor: not compared.
	if r, _, _ := Imbalance(m, load, DefaultRebalanceConfig()); r != 0 {
		t.Fatalf("below the floor: %v", r)
	}
	// Combine: measured slots keep their value, the rest spread evenly.
	m.Shards[2].Weight = 0
	load = map[int]ShardLoad{1: {OpsPerSec: 8191 + 100}}
	sl := CombineSlotLoad(m, load, map[int]float64{0: 100}, nil)
	if sl[0] != 100 || sl[1] != 1 || sl[8191] != 1 {
		t.Fatalf("combined %v %v %v", sl[0], sl[1], sl[8191])
	}
	if _, ok := sl[8192]; ok {
		t.Fatal("a slot of a shard without a report has a load")
	}
	// By key counts when known.
	sl = CombineSlotLoad(m, map[int]ShardLoad{1: {OpsPerSec: 50}}, nil, map[int]int64{3: 1, 4: 4})
	if sl[3] != 10 || sl[4] != 40 || sl[5] != 0 {
		t.Fatalf("by keys %v %v %v", sl[3], sl[4], sl[5])
	}
}
