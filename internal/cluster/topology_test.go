package cluster

import (
	"encoding/json"
	"fmt"
	"testing"
)

func register(t *testing.T, m *Map, id string, weight int) {
	t.Helper()
	if err := m.Apply(Command{Op: OpRegister, Node: &Node{ID: id, Addr: "127.0.0.1:" + id, Weight: weight}}); err != nil {
		t.Fatal(err)
	}
}

func TestCreateDistributesByWeight(t *testing.T) {
	m := NewMap()
	for i, w := range []int{1, 1, 2, 1, 1, 1} {
		register(t, m, fmt.Sprint(7000+i), w)
	}
	// Nodes sort by id: 7000 (w1), 7001 (w1), 7002 (w2) are primaries.
	if err := m.Apply(Command{Op: OpCreate, Shards: 3}); err != nil {
		t.Fatal(err)
	}
	if len(m.Shards) != 3 {
		t.Fatalf("shards %d", len(m.Shards))
	}
	total := 0
	want := map[int]int{1: 4096, 2: 4096, 3: 8192}
	for id, s := range m.Shards {
		n := m.Slots.Count(id)
		total += n
		if n != want[id] {
			t.Errorf("shard %d owns %d slots, want %d", id, n, want[id])
		}
		if len(s.Replicas) != 1 {
			t.Errorf("shard %d replicas %v", id, s.Replicas)
		}
	}
	if total != NumSlots {
		t.Fatalf("total %d", total)
	}
	if err := m.Apply(Command{Op: OpCreate, Shards: 1}); err == nil {
		t.Fatal("second create accepted")
	}
}

func TestRegisterFillsShardsLackingReplicas(t *testing.T) {
	m := NewMap()
	register(t, m, "a", 1)
	register(t, m, "b", 1)
	if err := m.Apply(Command{Op: OpCreate, Shards: 2}); err != nil {
		t.Fatal(err)
	}
	register(t, m, "c", 1)
	register(t, m, "d", 1)
	register(t, m, "e", 1) // both shards have their replica: stays idle
	if m.Shards[1].Replicas[0] != "c" || m.Shards[2].Replicas[0] != "d" {
		t.Fatalf("replicas %v %v", m.Shards[1].Replicas, m.Shards[2].Replicas)
	}
	if m.Nodes["e"].State != NodeIdle {
		t.Fatalf("e: %+v", m.Nodes["e"])
	}
	// A restarted node re-registers: same place, new address.
	epoch := m.Epoch
	if err := m.Apply(Command{Op: OpRegister, Node: &Node{ID: "c", Addr: "127.0.0.1:9999"}}); err != nil {
		t.Fatal(err)
	}
	if m.Nodes["c"].Shard != 1 || m.Nodes["c"].Addr != "127.0.0.1:9999" || m.Epoch != epoch+1 {
		t.Fatalf("c after re-register: %+v", m.Nodes["c"])
	}
	// An address already taken by another node is refused.
	if err := m.Apply(Command{Op: OpRegister, Node: &Node{ID: "z", Addr: "127.0.0.1:9999"}}); err == nil {
		t.Fatal("duplicate address accepted")
	}
	// add-shard takes idle nodes only; no slots move to it (rebalancing does that).
	if err := m.Apply(Command{Op: OpAddShard, Nodes: []string{"c"}}); err == nil {
		t.Fatal("add-shard took an active node")
	}
	if err := m.Apply(Command{Op: OpAddShard, Nodes: []string{"e"}}); err != nil {
		t.Fatal(err)
	}
	if n := m.Slots.Count(3); n != 0 {
		t.Fatalf("new shard got %d slots", n)
	}
	// remove-node: a primary with slots is refused, a replica is removed.
	if err := m.Apply(Command{Op: OpRemoveNode, NodeID: "a"}); err == nil {
		t.Fatal("removed a primary owning slots")
	}
	if err := m.Apply(Command{Op: OpRemoveNode, NodeID: "d"}); err != nil {
		t.Fatal(err)
	}
	if len(m.Shards[2].Replicas) != 0 || m.Nodes["d"] != nil {
		t.Fatalf("d still there")
	}
	// The now-empty shard 3 (primary only, no slots) can be removed.
	if err := m.Apply(Command{Op: OpRemoveNode, NodeID: "e"}); err != nil || m.Shards[3] != nil {
		t.Fatalf("remove e: %v", err)
	}
}

func TestFailedCommandLeavesMapUnchanged(t *testing.T) {
	m := NewMap()
	register(t, m, "a", 1)
	before, _ := json.Marshal(m)
	for _, c := range []Command{
		{Op: "bogus"},
		{Op: OpRegister},
		{Op: OpCreate, Shards: 2},
		{Op: OpPromote, ShardID: 1, NodeID: "a"},
		{Op: OpSetConfig, Key: "lease_ms", Value: 10},
		{Op: OpSetConfig, Key: "nope", Value: 1},
		{Op: OpRemoveNode, NodeID: "zz"},
	} {
		if err := m.Apply(c); err == nil {
			t.Errorf("%+v accepted", c)
		}
	}
	after, _ := json.Marshal(m)
	if string(before) != string(after) {
		t.Fatalf("map changed:\n%s\n%s", before, after)
	}
	if err := m.Apply(Command{Op: OpSetConfig, Key: "sync_replicas", Value: 1}); err != nil || m.Settings.SyncReplicas != 1 {
		t.Fatalf("set-config: %v", err)
	}
}

func TestMapJSONRoundTrip(t *testing.T) {
	m := NewMap()
	for _, id := range []string{"a", "b", "c"} {
		register(t, m, id, 1)
	}
	if err := m.Apply(Command{Op: OpCreate, Shards: 3}); err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) > 2000 {
		t.Fatalf("map JSON is %d bytes: slots not marshalled as ranges?", len(b))
	}
	var back Map
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back.Slots != m.Slots || back.Epoch != m.Epoch || len(back.Nodes) != 3 || back.Shards[2].Primary != "b" {
		t.Fatalf("round trip differs: %s", b)
	}
	var bad SlotTable
	if err := json.Unmarshal([]byte(`[[0,20000,1]]`), &bad); err == nil {
		t.Fatal("out-of-range slot range accepted")
	}
	c := m.Clone()
	c.Shards[1].Replicas = append(c.Shards[1].Replicas, "x")
	c.Nodes["a"].Addr = "changed"
	if len(m.Shards[1].Replicas) != 0 || m.Nodes["a"].Addr == "changed" {
		t.Fatal("Clone shares state")
	}
}

// Standby nodes stay in the pool (not made replicas, not taken by
// create); set-weight changes targets; a drained shard is released to
// the pool only once empty, and its nodes come back as standby.
func TestStandbyPoolWeightAndRelease(t *testing.T) {
	m := NewMap()
	register(t, m, "a", 1)
	register(t, m, "b", 1)
	if err := m.Apply(Command{Op: OpRegister, Node: &Node{ID: "s1", Addr: "127.0.0.1:s1", State: NodeStandby}}); err != nil {
		t.Fatal(err)
	}
	if err := m.Apply(Command{Op: OpCreate, Shards: 2}); err != nil {
		t.Fatal(err)
	}
	if m.Nodes["s1"].State != NodeStandby || m.Nodes["s1"].Shard != 0 {
		t.Fatalf("standby node placed: %+v", m.Nodes["s1"])
	}
	// A shard lacking a replica does not take a standby node.
	if err := m.Apply(Command{Op: OpRegister, Node: &Node{ID: "s2", Addr: "127.0.0.1:s2", State: NodeStandby}}); err != nil {
		t.Fatal(err)
	}
	if len(m.Shards[1].Replicas) != 0 || len(m.Pool()) != 2 {
		t.Fatalf("replicas %v pool %d", m.Shards[1].Replicas, len(m.Pool()))
	}
	// An idle node restarted with --standby joins the standby pool.
	m.Settings.ReplicasPerShard = 0
	register(t, m, "c", 1)
	if err := m.Apply(Command{Op: OpRegister, Node: &Node{ID: "c", Addr: "127.0.0.1:c", State: NodeStandby}}); err != nil {
		t.Fatal(err)
	}
	if m.Nodes["c"].State != NodeStandby {
		t.Fatalf("c is %s", m.Nodes["c"].State)
	}

	if err := m.Apply(Command{Op: OpSetWeight, ShardID: 2, Value: 3}); err != nil {
		t.Fatal(err)
	}
	if tg := Targets(m); tg[1] != 4096 || tg[2] != 12288 {
		t.Fatalf("targets %v", tg)
	}
	if err := m.Apply(Command{Op: OpSetWeight, ShardID: 9, Value: 3}); err == nil {
		t.Fatal("set-weight of a missing shard accepted")
	}
	if err := m.Apply(Command{Op: OpSetWeight, ShardID: 1, Value: -1}); err == nil {
		t.Fatal("negative weight accepted")
	}

	// add-shard from standby nodes, then drain it again.
	if err := m.Apply(Command{Op: OpAddShard, Nodes: []string{"s1", "s2"}}); err != nil {
		t.Fatal(err)
	}
	if m.Nodes["s1"].Shard != 3 || m.Shards[3].Replicas[0] != "s2" {
		t.Fatalf("shard 3: %+v", m.Shards[3])
	}
	if err := m.Apply(Command{Op: OpReleaseShard, ShardID: 1}); err == nil {
		t.Fatal("release of a shard owning slots accepted")
	}
	if err := m.Apply(Command{Op: OpDrainShard, ShardID: 1}); err != nil {
		t.Fatal(err)
	}
	if tg := Targets(m); tg[1] != 0 || tg[2]+tg[3] != NumSlots {
		t.Fatalf("targets with shard 1 draining: %v", tg)
	}
	if err := m.Apply(Command{Op: OpMigrate, Slots: []int{NumSlots - 1}, ShardID: 1}); err == nil {
		t.Fatal("a move onto a draining shard accepted")
	}
	moves := PlanDrain(m, 1, 0)
	for _, mv := range moves {
		m.Slots[mv.Slot] = uint16(mv.To)
	}
	if err := m.Apply(Command{Op: OpReleaseShard, ShardID: 1}); err != nil {
		t.Fatal(err)
	}
	if m.Shards[1] != nil || m.Nodes["a"].State != NodeStandby || m.Nodes["a"].Shard != 0 {
		t.Fatalf("after release: shard %+v node %+v", m.Shards[1], m.Nodes["a"])
	}
	if role, _ := m.Role("a"); role != RoleNone {
		t.Fatalf("released node's role %s", role)
	}
}
