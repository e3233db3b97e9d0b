package cluster

import "sort"

// Read-only helpers over a Map for the nodes that route by it (the
// storage node's CLUSTER SLOTS / SHARDS / NODES, later the proxy). None
// of them changes the map.

// ShardNodes returns a shard's nodes, its primary first, then its
// replicas in the map's order; ids the map has no node for are skipped.
func (m *Map) ShardNodes(shard int) []*Node {
	s := m.Shards[shard]
	if s == nil {
		return nil
	}
	out := make([]*Node, 0, 1+len(s.Replicas))
	if n := m.Nodes[s.Primary]; n != nil && s.Primary != "" {
		out = append(out, n)
	}
	for _, id := range s.Replicas {
		if n := m.Nodes[id]; n != nil {
			out = append(out, n)
		}
	}
	return out
}

// SlotRanges returns the runs of consecutive slots a shard owns, in
// slot order.
func (m *Map) SlotRanges(shard int) []Range {
	var out []Range
	for _, r := range m.Slots.Ranges() {
		if r.Shard == shard {
			out = append(out, r)
		}
	}
	return out
}

// NodeIDs returns the ids of every node, sorted.
func (m *Map) NodeIDs() []string {
	ids := make([]string, 0, len(m.Nodes))
	for id := range m.Nodes {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}
