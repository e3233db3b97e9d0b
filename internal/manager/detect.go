package manager

import (
	"sort"
	"time"

	"shoal/internal/cluster"
)

// The failure detector's decision, a pure function of the map, what the
// leader has heard from each node (kept in memory, never in the Raft
// log) and the clock. It is called every heartbeat period on the leader;
// its promotions are then proposed through Raft, each tagged with the
// shard epoch it was decided at, so a stale decision cannot apply.

// Health is what the leader knows of one node from its heartbeats.
type Health struct {
	Seen time.Time // leader clock when the last heartbeat arrived
	// Granted is when the leader last granted the node a primary lease
	// (zero if never, under this leader).
	Granted time.Time
	HB      cluster.Heartbeat // the last heartbeat
}

// Promotion is one decided failover.
type Promotion struct {
	Shard  int
	Node   string
	Epoch  uint64 // the shard epoch the decision was taken at
	Reason string
}

// ShardState describes why a shard is or is not being failed over (for
// status output).
type ShardState struct {
	Shard   int
	Healthy bool
	Reason  string
}

// Decide returns the promotions due at now. leaderSince is when this
// manager became leader: it judges nobody before a whole lease + margin
// has passed since then, because a primary may hold a lease granted by
// the previous leader that it has not heard of.
//
// A shard's primary is dead when neither a heartbeat nor a lease grant
// has come from it for lease + margin: by then its own lease, counted
// from the send time of the heartbeat whose reply granted it, has surely
// ended (margin covers clock-rate drift and scheduling). The replacement
// is the live, synced replica with the highest offset that follows the
// primary's history (same replication id as the primary last reported,
// when known); ties go to the lowest node id so every manager would pick
// the same one.
func Decide(m *cluster.Map, health map[string]*Health, now, leaderSince time.Time) ([]Promotion, []ShardState) {
	set := m.Settings
	dead := time.Duration(set.LeaseMs+set.MarginMs) * time.Millisecond
	alive := time.Duration(set.LeaseMs) * time.Millisecond
	var out []Promotion
	var states []ShardState
	for _, id := range m.ShardIDs() {
		s := m.Shards[id]
		last := leaderSince
		var primaryRepl string
		if h := health[s.Primary]; h != nil {
			if h.Seen.After(last) {
				last = h.Seen
			}
			if h.Granted.After(last) {
				last = h.Granted
			}
			if h.HB.Role == cluster.RolePrimary {
				primaryRepl = h.HB.ReplID
			}
		}
		if h := health[s.Primary]; h != nil && now.Sub(h.Seen) < alive && h.HB.Role != cluster.RolePrimary {
			// The primary is up but not acting as one: it restarted (or
			// was just promoted). It takes the role only if no replica
			// holds more of its history; otherwise that replica does (the
			// restarted node lost what it had not persisted).
			if r := Ahead(s, health, now, alive, h.HB); r != "" {
				out = append(out, Promotion{Shard: id, Node: r, Epoch: s.Epoch, Reason: "primary " + s.Primary + " restarted behind replica " + r})
				states = append(states, ShardState{Shard: id, Reason: "failing over to " + r + " (primary restarted behind it)"})
				continue
			}
		}
		if s.Primary != "" && now.Sub(last) < dead {
			states = append(states, ShardState{Shard: id, Healthy: true})
			continue
		}
		cands := candidates(s, health, now, alive, primaryRepl)
		if len(cands) == 0 {
			states = append(states, ShardState{Shard: id, Reason: "primary unreachable and no live synced replica"})
			continue
		}
		out = append(out, Promotion{Shard: id, Node: cands[0], Epoch: s.Epoch, Reason: "primary " + s.Primary + " unreachable for " + now.Sub(last).Round(time.Millisecond).String()})
		states = append(states, ShardState{Shard: id, Reason: "failing over to " + cands[0]})
	}
	return out, states
}

// candidates returns the replicas of s that may take over, best first:
// heard from within alive, synced (a complete copy), acting on the
// shard's current epoch, and on the primary's history (repl, when known).
func candidates(s *cluster.Shard, health map[string]*Health, now time.Time, alive time.Duration, repl string) []string {
	var cands []string
	for _, r := range s.Replicas {
		h := health[r]
		if h == nil || now.Sub(h.Seen) >= alive {
			continue // not heard from lately
		}
		if h.HB.Role != cluster.RoleReplica || !h.HB.Synced || h.HB.ShardEpoch != s.Epoch {
			continue // loading, resyncing, or acting on another view
		}
		if repl != "" && h.HB.ReplID != repl {
			continue // not on the primary's history
		}
		cands = append(cands, r)
	}
	sort.Slice(cands, func(i, j int) bool {
		a, b := health[cands[i]].HB.Offset, health[cands[j]].HB.Offset
		if a != b {
			return a > b
		}
		return cands[i] < cands[j]
	})
	return cands
}

// Ahead returns the best replica of s holding more of the primary's
// history than the primary reports in hb ("" if none): a primary that
// is not acting as one yet must not take the role then.
func Ahead(s *cluster.Shard, health map[string]*Health, now time.Time, alive time.Duration, hb cluster.Heartbeat) string {
	c := candidates(s, health, now, alive, hb.ReplID)
	if len(c) > 0 && health[c[0]].HB.Offset > hb.Offset {
		return c[0]
	}
	return ""
}
