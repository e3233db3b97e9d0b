package cluster

// The heartbeat protocol between storage nodes and the manager leader
// (HTTP JSON, POST /v1/heartbeat). A node sends one every
// Settings.HeartbeatMs; the reply renews a primary's write lease, which
// the node counts from the moment it SENT the heartbeat, so its lease
// always ends before the leader's view of it (the leader counts from when
// it received the heartbeat, and waits a margin more before promoting).

// Heartbeat is what a storage node reports.
type Heartbeat struct {
	Node     Node   `json:"node"` // id, addresses, weight (registers the node if new)
	MapEpoch uint64 `json:"map_epoch"`

	Role       string `json:"role"`        // what the node is doing now (RolePrimary...)
	ShardEpoch uint64 `json:"shard_epoch"` // the epoch of the shard view it acts on
	ReplID     string `json:"repl_id"`     // its replication id (a replica: its primary's)
	Offset     uint64 `json:"offset"`      // its replication offset (LSN)
	Synced     bool   `json:"synced"`      // a replica: link up, initial copy done
	Fenced     bool   `json:"fenced"`      // a primary that stopped writes on the manager's demand
	InSync     int    `json:"in_sync"`     // a primary: replicas caught up

	OpsPerSec  float64 `json:"ops_per_sec"`
	UsedMemory int64   `json:"used_memory"`
	MaxMemory  int64   `json:"max_memory,omitempty"` // maxmemory (0: no limit)
	Keys       int64   `json:"keys"`
	// SlotOps holds the hottest slots' ops/s as [slot, ops/s] pairs, at
	// most MaxSlotOps of them, hottest first: the commands this node ran
	// on each slot since its previous report. Sent every few beats: null
	// in the others, [] in a report when no slot had a command.
	SlotOps [][2]float64 `json:"slot_ops"`
	// SlotKeys holds the key count of every non-empty slot as
	// [slot, count] pairs; sent every few seconds, not every beat.
	SlotKeys [][2]int64 `json:"slot_keys,omitempty"`
}

// HeartbeatReply is the leader's answer.
type HeartbeatReply struct {
	Epoch uint64 `json:"epoch"`         // current map epoch
	Map   *Map   `json:"map,omitempty"` // set when the node's map is older
	// LeaseMs > 0 grants the primary a write lease of that many ms from
	// the heartbeat's send time; 0 means "do not write".
	LeaseMs int `json:"lease_ms"`
	// Fence asks a primary to stop writes now (graceful failover); the
	// node reports Fenced and its final offset in its next heartbeat.
	Fence bool `json:"fence,omitempty"`
}

// MaxSlotOps bounds Heartbeat.SlotOps: the hottest slots are what load
// moves pick; the rest of a shard's load counts as spread over its other
// slots (CombineSlotLoad).
const MaxSlotOps = 64
