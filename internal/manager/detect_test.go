package manager

import (
	"testing"
	"time"

	"shoal/internal/cluster"
)

// testMap: shard 1 = a (primary), b, c; shard 2 = d (primary), e.
func testMap(t *testing.T) *cluster.Map {
	t.Helper()
	m := cluster.NewMap()
	m.Settings.ReplicasPerShard = 0
	for _, id := range []string{"a", "b", "c", "d", "e"} {
		if err := m.Apply(cluster.Command{Op: cluster.OpRegister, Node: &cluster.Node{ID: id, Addr: id + ":1"}}); err != nil {
			t.Fatal(err)
		}
	}
	for _, nodes := range [][]string{{"a", "b", "c"}, {"d", "e"}} {
		if err := m.Apply(cluster.Command{Op: cluster.OpAddShard, Nodes: nodes}); err != nil {
			t.Fatal(err)
		}
	}
	return m
}

var t0 = time.Unix(1_000_000, 0)

func ms(n int) time.Duration { return time.Duration(n) * time.Millisecond }

func primaryHB(repl string, off uint64) cluster.Heartbeat {
	return cluster.Heartbeat{Role: cluster.RolePrimary, ShardEpoch: 1, ReplID: repl, Offset: off}
}

func replicaHB(repl string, off uint64) cluster.Heartbeat {
	return cluster.Heartbeat{Role: cluster.RoleReplica, ShardEpoch: 1, ReplID: repl, Offset: off, Synced: true}
}

func TestDecide(t *testing.T) {
	// Default settings: lease 1000 ms, margin 250 ms.
	type hs map[string]*Health
	seen := func(at int, hb cluster.Heartbeat) *Health { return &Health{Seen: t0.Add(ms(at)), HB: hb} }
	cases := []struct {
		name        string
		health      hs
		now         int // ms since t0
		leaderSince int
		want        map[int]string // shard → promoted node
	}{
		{
			name: "everyone alive",
			health: hs{"a": seen(900, primaryHB("r1", 10)), "b": seen(900, replicaHB("r1", 10)),
				"d": seen(900, primaryHB("r2", 5)), "e": seen(900, replicaHB("r2", 5))},
			now: 1000, want: map[int]string{},
		},
		{
			name: "primary silent for less than lease+margin",
			health: hs{"a": seen(0, primaryHB("r1", 10)), "b": seen(1200, replicaHB("r1", 10)),
				"d": seen(1200, primaryHB("r2", 5))},
			now: 1249, want: map[int]string{},
		},
		{
			name: "primary dead: the replica with the highest offset wins",
			health: hs{"a": seen(0, primaryHB("r1", 10)), "b": seen(1200, replicaHB("r1", 8)), "c": seen(1200, replicaHB("r1", 9)),
				"d": seen(1200, primaryHB("r2", 5))},
			now: 1250, want: map[int]string{1: "c"},
		},
		{
			name: "equal offsets: lowest id",
			health: hs{"a": seen(0, primaryHB("r1", 10)), "b": seen(1200, replicaHB("r1", 9)), "c": seen(1200, replicaHB("r1", 9)),
				"d": seen(1200, primaryHB("r2", 5))},
			now: 1300, want: map[int]string{1: "b"},
		},
		{
			name: "a lease granted after the last heartbeat counts",
			health: hs{"a": {Seen: t0, Granted: t0.Add(ms(100)), HB: primaryHB("r1", 1)}, "b": seen(1300, replicaHB("r1", 1)),
				"d": seen(1300, primaryHB("r2", 5))},
			now: 1300, want: map[int]string{},
		},
		{
			name:   "new leader waits a whole lease+margin before judging",
			health: hs{"b": seen(1900, replicaHB("r1", 9)), "d": seen(1900, primaryHB("r2", 5))},
			now:    2000, leaderSince: 1000, want: map[int]string{},
		},
		{
			name:   "new leader, primary never heard: promotes after lease+margin",
			health: hs{"b": seen(2200, replicaHB("r1", 9)), "d": seen(2200, primaryHB("r2", 5)), "e": seen(2200, replicaHB("r2", 5))},
			now:    2250, leaderSince: 1000, want: map[int]string{1: "b"},
		},
		{
			name: "replica not heard from for a lease is not a candidate",
			health: hs{"a": seen(0, primaryHB("r1", 10)), "b": seen(200, replicaHB("r1", 10)), "c": seen(1500, replicaHB("r1", 3)),
				"d": seen(1500, primaryHB("r2", 5))},
			now: 1600, want: map[int]string{1: "c"},
		},
		{
			name: "unsynced, other-history and stale-epoch replicas are skipped",
			health: hs{"a": seen(0, primaryHB("r1", 10)),
				"b": seen(1500, cluster.Heartbeat{Role: cluster.RoleReplica, ShardEpoch: 1, ReplID: "r1", Offset: 50, Synced: false}),
				"c": seen(1500, replicaHB("other", 60)),
				"d": seen(1500, primaryHB("r2", 5))},
			now: 1600, want: map[int]string{},
		},
		{
			name: "stale shard epoch is skipped",
			health: hs{"a": seen(0, primaryHB("r1", 10)),
				"b": seen(1500, cluster.Heartbeat{Role: cluster.RoleReplica, ShardEpoch: 0, ReplID: "r1", Offset: 50, Synced: true}),
				"c": seen(1500, replicaHB("r1", 2)),
				"d": seen(1500, primaryHB("r2", 5))},
			now: 1600, want: map[int]string{1: "c"},
		},
		{
			name: "primary restarted behind its replica: the replica takes over at once",
			health: hs{"a": seen(1000, cluster.Heartbeat{Role: cluster.RoleReplica, ShardEpoch: 1, ReplID: "r1", Offset: 7}),
				"b": seen(1000, replicaHB("r1", 10)), "c": seen(1000, replicaHB("r1", 9)),
				"d": seen(1000, primaryHB("r2", 5))},
			now: 1100, want: map[int]string{1: "b"},
		},
		{
			name: "primary restarted with everything: keeps the role",
			health: hs{"a": seen(1000, cluster.Heartbeat{Role: cluster.RoleReplica, ShardEpoch: 1, ReplID: "r1", Offset: 10}),
				"b": seen(1000, replicaHB("r1", 10)),
				"d": seen(1000, primaryHB("r2", 5))},
			now: 1100, want: map[int]string{},
		},
		{
			name: "both primaries dead",
			health: hs{"a": seen(0, primaryHB("r1", 10)), "b": seen(1500, replicaHB("r1", 10)),
				"d": seen(0, primaryHB("r2", 5)), "e": seen(1500, replicaHB("r2", 4))},
			now: 1500, want: map[int]string{1: "b", 2: "e"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := testMap(t)
			got, states := Decide(m, tc.health, t0.Add(ms(tc.now)), t0.Add(ms(tc.leaderSince)))
			if len(got) != len(tc.want) {
				t.Fatalf("got %+v, want %v (states %+v)", got, tc.want, states)
			}
			for _, p := range got {
				if tc.want[p.Shard] != p.Node {
					t.Fatalf("shard %d: promoted %s, want %s", p.Shard, p.Node, tc.want[p.Shard])
				}
				if p.Epoch != m.Shards[p.Shard].Epoch {
					t.Fatalf("decision epoch %d, shard at %d", p.Epoch, m.Shards[p.Shard].Epoch)
				}
			}
			if len(states) != len(m.Shards) {
				t.Fatalf("states %+v", states)
			}
		})
	}
}

// TestDecideTwoFailuresInARow: after the first promotion is applied, the
// new primary dies too; the remaining replica (which follows the new
// primary's history) takes over at the next epoch.
func TestDecideTwoFailuresInARow(t *testing.T) {
	m := testMap(t)
	h := map[string]*Health{
		"a": {Seen: t0, HB: primaryHB("r1", 10)},
		"b": {Seen: t0.Add(ms(1200)), HB: replicaHB("r1", 10)},
		"c": {Seen: t0.Add(ms(1200)), HB: replicaHB("r1", 9)},
		"d": {Seen: t0.Add(ms(1200)), HB: primaryHB("r2", 1)},
	}
	ps, _ := Decide(m, h, t0.Add(ms(1300)), t0)
	if len(ps) != 1 || ps[0].Node != "b" {
		t.Fatalf("first decision %+v", ps)
	}
	if err := m.Apply(cluster.Command{Op: cluster.OpPromote, ShardID: 1, NodeID: "b", Epoch: ps[0].Epoch}); err != nil {
		t.Fatal(err)
	}
	// Re-applying the same decision is refused (epoch moved on).
	if err := m.Apply(cluster.Command{Op: cluster.OpPromote, ShardID: 1, NodeID: "c", Epoch: ps[0].Epoch}); err == nil {
		t.Fatal("a stale promotion applied")
	}
	// b serves as primary (new history b1), c follows it, then b dies.
	h["b"] = &Health{Seen: t0.Add(ms(1500)), Granted: t0.Add(ms(1500)), HB: cluster.Heartbeat{Role: cluster.RolePrimary, ShardEpoch: 2, ReplID: "b1", Offset: 20}}
	h["c"] = &Health{Seen: t0.Add(ms(2700)), HB: cluster.Heartbeat{Role: cluster.RoleReplica, ShardEpoch: 2, ReplID: "b1", Offset: 19, Synced: true}}
	h["d"].Seen = t0.Add(ms(2700))
	if ps, _ := Decide(m, h, t0.Add(ms(2700)), t0); len(ps) != 0 {
		t.Fatalf("decided too early: %+v", ps)
	}
	ps, _ = Decide(m, h, t0.Add(ms(2750)), t0)
	if len(ps) != 1 || ps[0].Node != "c" || ps[0].Epoch != 2 {
		t.Fatalf("second decision %+v", ps)
	}
	if err := m.Apply(cluster.Command{Op: cluster.OpPromote, ShardID: 1, NodeID: "c", Epoch: 2}); err != nil {
		t.Fatal(err)
	}
	if s := m.Shards[1]; s.Primary != "c" || s.Epoch != 3 || len(s.Replicas) != 2 {
		t.Fatalf("shard after two failovers: %+v", s)
	}
}
