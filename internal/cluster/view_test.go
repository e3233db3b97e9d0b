package cluster

import (
	"reflect"
	"testing"
)

// testMap registers nodes n1..nN and creates shards from them.
func testMap(t *testing.T, nodes, shards int) *Map {
	t.Helper()
	m := NewMap()
	for i := 1; i <= nodes; i++ {
		id := "n" + string(rune('0'+i))
		if err := m.Apply(Command{Op: OpRegister, Node: &Node{ID: id, Addr: "127.0.0.1:700" + string(rune('0'+i))}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := m.Apply(Command{Op: OpCreate, Shards: shards}); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestShardNodesAndRanges(t *testing.T) {
	m := testMap(t, 4, 2) // n1, n2 primaries; n3 replica of shard 1, n4 of shard 2
	ids := func(ns []*Node) []string {
		var out []string
		for _, n := range ns {
			out = append(out, n.ID)
		}
		return out
	}
	if got := ids(m.ShardNodes(1)); !reflect.DeepEqual(got, []string{"n1", "n3"}) {
		t.Fatalf("shard 1 nodes %v", got)
	}
	if err := m.Apply(Command{Op: OpPromote, ShardID: 1, NodeID: "n3"}); err != nil {
		t.Fatal(err)
	}
	if got := ids(m.ShardNodes(1)); !reflect.DeepEqual(got, []string{"n3", "n1"}) {
		t.Fatalf("shard 1 nodes after promote %v", got)
	}
	if m.ShardNodes(9) != nil {
		t.Fatal("unknown shard has nodes")
	}
	if got := m.SlotRanges(2); !reflect.DeepEqual(got, []Range{{8192, 16383, 2}}) {
		t.Fatalf("shard 2 ranges %v", got)
	}
	m.Slots[100] = 2
	if got := m.SlotRanges(2); !reflect.DeepEqual(got, []Range{{100, 100, 2}, {8192, 16383, 2}}) {
		t.Fatalf("shard 2 ranges %v", got)
	}
	if got := m.NodeIDs(); !reflect.DeepEqual(got, []string{"n1", "n2", "n3", "n4"}) {
		t.Fatalf("node ids %v", got)
	}
}
