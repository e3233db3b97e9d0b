package cluster

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strconv"
)

// The cluster map: which storage nodes exist, how they form shards (one
// primary and its replicas), which shard owns each of the 16384 slots,
// and the cluster-wide settings. The managers replicate it with Raft:
// every change is a Command applied by Map.Apply, a pure function of the
// map and the command, so every manager computes the same map from the
// same log. Every applied command bumps Map.Epoch; a promotion also bumps
// the shard's Epoch (its term of primaryship), which is what fences an old
// primary (design.md, "Management").

// Node states.
const (
	NodeIdle   = "idle"   // registered, in no shard (the pool add-shard takes from)
	NodeActive = "active" // primary or replica of a shard
	// NodeStandby: in no shard and reserved for new shards (started with
	// --standby, or released by a drain): never made a replica of an
	// existing shard on registration, never taken by create. The
	// standby pool is the idle and standby nodes together.
	NodeStandby = "standby"
)

// Roles, as a node is told by its view and reports in heartbeats.
const (
	RolePrimary = "primary"
	RoleReplica = "replica"
	RoleNone    = "none"
)

// Node is a storage node as the map knows it.
type Node struct {
	ID     string `json:"id"`
	Addr   string `json:"addr"`              // RESP host:port (also the replication address)
	MCAddr string `json:"mc_addr,omitempty"` // memcached host:port, if served
	// TLSAddr is the node's tls-port host:port, if served: peers with
	// tls-replication, proxies and managers with TLS to the nodes dial it.
	TLSAddr string `json:"tls_addr,omitempty"`
	Weight  int    `json:"weight"`
	Shard   int    `json:"shard,omitempty"` // 0: none
	State   string `json:"state"`
	// Version is the node's build (shoal --version) and Protocol the
	// protocol version it speaks (ProtocolVersion), as it last reported
	// them; 0 and "" for builds from before they were reported.
	Version  string `json:"version,omitempty"`
	Protocol int    `json:"protocol,omitempty"`
}

// Shard is a replica group.
type Shard struct {
	ID       int      `json:"id"`
	Primary  string   `json:"primary"` // node id
	Replicas []string `json:"replicas"`
	Epoch    uint64   `json:"epoch"`
	// Weight overrides the primary node's weight as the shard's capacity
	// share (set-weight); 0: the primary's weight.
	Weight int `json:"weight,omitempty"`
	// Draining: a drain moves every slot away; once it owns none and no
	// move involves it, the leader releases its nodes to the standby pool.
	Draining bool `json:"draining,omitempty"`
}

// Settings are the cluster-wide settings (shoal ctl config get|set).
type Settings struct {
	HeartbeatMs      int `json:"heartbeat_ms"`       // storage node → manager heartbeat period
	LeaseMs          int `json:"lease_ms"`           // a primary's write lease, from the heartbeat's send time
	MarginMs         int `json:"margin_ms"`          // the manager waits lease + margin before promoting
	SyncReplicas     int `json:"sync_replicas"`      // per-shard sync-replicas pushed to primaries
	ReplicasPerShard int `json:"replicas_per_shard"` // new nodes join shards with fewer replicas than this
}

// DefaultSettings: a killed primary's slots are writable again about
// lease + margin + one heartbeat after its death (~1.5 s).
func DefaultSettings() Settings {
	return Settings{HeartbeatMs: 200, LeaseMs: 1000, MarginMs: 250, SyncReplicas: 0, ReplicasPerShard: 1}
}

// settingKeys are the keys of Settings for config get|set.
var settingKeys = []string{"heartbeat_ms", "lease_ms", "margin_ms", "sync_replicas", "replicas_per_shard"}

// SettingKeys lists the settable keys.
func SettingKeys() []string { return slices.Clone(settingKeys) }

func (s *Settings) field(key string) *int {
	switch key {
	case "heartbeat_ms":
		return &s.HeartbeatMs
	case "lease_ms":
		return &s.LeaseMs
	case "margin_ms":
		return &s.MarginMs
	case "sync_replicas":
		return &s.SyncReplicas
	case "replicas_per_shard":
		return &s.ReplicasPerShard
	}
	return nil
}

// Get returns a setting's value.
func (s Settings) Get(key string) (int, bool) {
	p := s.field(key)
	if p == nil {
		return 0, false
	}
	return *p, true
}

// Validate checks ranges and the relations between the timings.
func (s Settings) Validate() error {
	switch {
	case s.HeartbeatMs < 10 || s.HeartbeatMs > 60000:
		return errors.New("heartbeat_ms must be between 10 and 60000")
	case s.LeaseMs < 2*s.HeartbeatMs:
		return errors.New("lease_ms must be at least twice heartbeat_ms (a lost heartbeat must not drop the lease)")
	case s.LeaseMs > 600000:
		return errors.New("lease_ms must be at most 600000")
	case s.MarginMs < 0 || s.MarginMs > 600000:
		return errors.New("margin_ms must be between 0 and 600000")
	case s.SyncReplicas < 0 || s.SyncReplicas > 16:
		return errors.New("sync_replicas must be between 0 and 16")
	case s.ReplicasPerShard < 0 || s.ReplicasPerShard > 16:
		return errors.New("replicas_per_shard must be between 0 and 16")
	}
	return nil
}

// Map is the cluster map.
type Map struct {
	Epoch     uint64            `json:"epoch"`
	Nodes     map[string]*Node  `json:"nodes"`
	Shards    map[int]*Shard    `json:"shards"`
	Slots     SlotTable         `json:"slots"`
	NextShard int               `json:"next_shard"`
	Settings  Settings          `json:"settings"`
	Managers  map[string]string `json:"managers"` // raft server id → HTTP address
	// Migrations are the slot moves in progress, by slot.
	Migrations MigrationSet `json:"migrations,omitempty"`
	// MigratorLease: which migrator drives the moves (lease.go).
	MigratorLease *MigratorLease `json:"migrator_lease,omitempty"`
	// QueuedFrom and QueuedMoves are set only in a window view
	// (WindowView): the source shards of the moves it leaves out, and how
	// many those are.
	QueuedFrom  []int `json:"queued_from,omitempty"`
	QueuedMoves int   `json:"queued_moves,omitempty"`
}

// NewMap returns an empty map with default settings.
func NewMap() *Map {
	return &Map{Nodes: map[string]*Node{}, Shards: map[int]*Shard{}, NextShard: 1, Settings: DefaultSettings(), Managers: map[string]string{}}
}

// Clone returns a deep copy (the FSM hands copies to readers).
func (m *Map) Clone() *Map {
	c := *m
	c.Nodes = make(map[string]*Node, len(m.Nodes))
	for k, n := range m.Nodes {
		nn := *n
		c.Nodes[k] = &nn
	}
	c.Shards = make(map[int]*Shard, len(m.Shards))
	for k, s := range m.Shards {
		ss := *s
		ss.Replicas = slices.Clone(s.Replicas)
		c.Shards[k] = &ss
	}
	// The moves are shared: the map's own steps copy a move before they
	// change it (ownMigration). A rebalance queues up to 16384 moves, and
	// copying each one at every Raft entry was 5 ms of the leader's CPU
	// per entry, in every cutover's write pause.
	c.Migrations = maps.Clone(m.Migrations)
	if m.MigratorLease != nil {
		l := *m.MigratorLease
		c.MigratorLease = &l
	}
	c.Managers = make(map[string]string, len(m.Managers))
	for k, v := range m.Managers {
		c.Managers[k] = v
	}
	return &c
}

// SlotTable maps each slot to a shard id (0: unassigned). It marshals as
// ranges, [[first, last, shard], ...], not 16384 numbers.
type SlotTable [NumSlots]uint16

// Range is a run of consecutive slots owned by one shard.
type Range struct{ First, Last, Shard int }

// Ranges returns the table as runs of consecutive slots, unassigned
// runs included (Shard 0).
func (t *SlotTable) Ranges() []Range {
	var out []Range
	for i := 0; i < NumSlots; {
		j := i
		for j+1 < NumSlots && t[j+1] == t[i] {
			j++
		}
		out = append(out, Range{i, j, int(t[i])})
		i = j + 1
	}
	return out
}

// Count returns the number of slots shard owns.
func (t *SlotTable) Count(shard int) int {
	n := 0
	for _, s := range t {
		if int(s) == shard {
			n++
		}
	}
	return n
}

func (t SlotTable) MarshalJSON() ([]byte, error) {
	var rs [][3]int
	for _, r := range t.Ranges() {
		if r.Shard != 0 {
			rs = append(rs, [3]int{r.First, r.Last, r.Shard})
		}
	}
	if rs == nil {
		rs = [][3]int{}
	}
	return json.Marshal(rs)
}

func (t *SlotTable) UnmarshalJSON(b []byte) error {
	var rs [][3]int
	if err := json.Unmarshal(b, &rs); err != nil {
		return err
	}
	*t = SlotTable{}
	for _, r := range rs {
		if r[0] < 0 || r[1] >= NumSlots || r[0] > r[1] || r[2] < 0 || r[2] > 65535 {
			return fmt.Errorf("bad slot range %v", r)
		}
		for i := r[0]; i <= r[1]; i++ {
			t[i] = uint16(r[2])
		}
	}
	return nil
}

// Command is one change to the map: the Raft log's entry.
type Command struct {
	Op string `json:"op"`

	Node     *Node    `json:"node,omitempty"`      // register
	NodeID   string   `json:"node_id,omitempty"`   // remove-node, promote
	Nodes    []string `json:"nodes,omitempty"`     // add-shard
	Shards   int      `json:"shards,omitempty"`    // create
	ShardID  int      `json:"shard,omitempty"`     // promote
	Epoch    uint64   `json:"epoch,omitempty"`     // promote: the shard epoch the decision was made at
	Key      string   `json:"key,omitempty"`       // set-config
	Value    int      `json:"value,omitempty"`     // set-config
	Manager  string   `json:"manager,omitempty"`   // add-manager, remove-manager: raft id
	HTTPAddr string   `json:"http_addr,omitempty"` // add-manager
	Slots    []int    `json:"slots,omitempty"`     // migrate
	Slot     int      `json:"slot_id,omitempty"`   // migrate-cutover, -done, -cancel
	Error    string   `json:"error,omitempty"`     // migrate-cancel
	Drop     bool     `json:"drop,omitempty"`      // migrate-cancel
	All      bool     `json:"all,omitempty"`       // migrate-pause, -resume, -cancel: every move
	// Migrator: the migrator proposing a lease op or a step (cutover,
	// done, its cancel of an attempt); Time: the leader's clock (Unix ms)
	// when it proposed it; LeaseMs: the lease asked for.
	Migrator string `json:"migrator,omitempty"`
	Time     int64  `json:"time_ms,omitempty"`
	LeaseMs  int    `json:"lease_ms,omitempty"`
}

// Command ops.
const (
	OpRegister      = "register"
	OpCreate        = "create"
	OpAddShard      = "add-shard"
	OpRemoveNode    = "remove-node"
	OpPromote       = "promote"
	OpSetConfig     = "set-config"
	OpAddManager    = "add-manager"
	OpRemoveManager = "remove-manager"
	OpSetWeight     = "set-weight"    // ShardID, Value (0: the primary's weight)
	OpDrainShard    = "drain-shard"   // ShardID: mark it draining (its moves are queued apart)
	OpReleaseShard  = "release-shard" // ShardID: an empty shard goes, its nodes to standby
)

// Apply applies c. A command that fails leaves the map unchanged and
// returns why; every command that succeeds bumps Epoch.
func (m *Map) Apply(c Command) error {
	var err error
	switch c.Op {
	case OpRegister:
		err = m.register(c.Node)
	case OpCreate:
		err = m.create(c.Shards)
	case OpAddShard:
		err = m.addShard(c.Nodes)
	case OpRemoveNode:
		err = m.removeNode(c.NodeID)
	case OpPromote:
		err = m.promote(c.ShardID, c.NodeID, c.Epoch)
	case OpSetConfig:
		err = m.setConfig(c.Key, c.Value)
	case OpAddManager:
		if c.Manager == "" || c.HTTPAddr == "" {
			err = errors.New("add-manager needs an id and an HTTP address")
		} else {
			m.Managers[c.Manager] = c.HTTPAddr
		}
	case OpRemoveManager:
		delete(m.Managers, c.Manager)
	case OpSetWeight:
		err = m.setWeight(c.ShardID, c.Value)
	case OpDrainShard:
		err = m.drainShard(c.ShardID)
	case OpReleaseShard:
		err = m.releaseShard(c.ShardID)
	case OpMigrate:
		err = m.migrate(c.Slots, c.ShardID)
	case OpMigrateCutover:
		if err = m.checkStepper(c); err == nil {
			err = m.migrateBatch(c, MigrateCopying, m.migrateCutover)
		}
	case OpMigrateDone:
		if err = m.checkStepper(c); err == nil {
			err = m.migrateBatch(c, MigrateCutover, m.migrateDone)
		}
	case OpMigrateCancel:
		err = m.migrateCancelOp(c)
	case OpMigratorLease:
		err = m.migratorLease(c)
	case OpMigratorRelease:
		err = m.migratorRelease(c)
	case OpMigratePause:
		err = m.migratePause(c)
	case OpMigrateResume:
		err = m.migrateResume(c)
	default:
		err = fmt.Errorf("unknown op %q", c.Op)
	}
	if err == nil {
		m.Epoch++
	}
	return err
}

func (m *Map) register(n *Node) error {
	if n == nil || n.ID == "" || n.Addr == "" {
		return errors.New("register needs a node id and address")
	}
	if n.Weight <= 0 {
		n.Weight = 1
	}
	if old := m.Nodes[n.ID]; old != nil {
		// A node coming back (restart): new addresses, same place. An
		// idle node restarted with --standby joins the standby pool.
		old.Addr, old.MCAddr, old.TLSAddr, old.Weight = n.Addr, n.MCAddr, n.TLSAddr, n.Weight
		old.Version, old.Protocol = n.Version, n.Protocol
		if old.State == NodeIdle && n.State == NodeStandby {
			old.State = NodeStandby
		}
		return nil
	}
	for _, o := range m.Nodes {
		if o.Addr == n.Addr {
			return fmt.Errorf("address %s is already registered by node %s (remove it first)", n.Addr, o.ID)
		}
	}
	nn := &Node{ID: n.ID, Addr: n.Addr, MCAddr: n.MCAddr, TLSAddr: n.TLSAddr, Weight: n.Weight, State: NodeIdle, Version: n.Version, Protocol: n.Protocol}
	m.Nodes[n.ID] = nn
	if n.State == NodeStandby {
		nn.State = NodeStandby // reserved for new shards
		return nil
	}
	// A new node first fills shards lacking replicas (fewest first, then
	// the lowest id): the manager's automatic placement.
	var best *Shard
	for _, id := range m.shardIDs() {
		s := m.Shards[id]
		if len(s.Replicas) < m.Settings.ReplicasPerShard && (best == nil || len(s.Replicas) < len(best.Replicas)) {
			best = s
		}
	}
	if best != nil {
		best.Replicas = append(best.Replicas, n.ID)
		nn.Shard, nn.State = best.ID, NodeActive
	}
	return nil
}

// shardIDs returns the shard ids in ascending order.
func (m *Map) shardIDs() []int {
	ids := make([]int, 0, len(m.Shards))
	for id := range m.Shards {
		ids = append(ids, id)
	}
	sort.Ints(ids)
	return ids
}

// ShardIDs returns the shard ids in ascending order.
func (m *Map) ShardIDs() []int { return m.shardIDs() }

// idleNodes returns the idle nodes by id.
func (m *Map) idleNodes() []*Node {
	var out []*Node
	for _, n := range m.Nodes {
		if n.State == NodeIdle {
			out = append(out, n)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// create builds the first n shards from the idle pool: n primaries, the
// other idle nodes spread over them as replicas, slots by weight.
func (m *Map) create(n int) error {
	if len(m.Shards) > 0 {
		return errors.New("the cluster is already created (use add-shard)")
	}
	idle := m.idleNodes()
	if n < 1 || n > len(idle) {
		return fmt.Errorf("create needs 1..%d shards (the idle nodes), got %d", len(idle), n)
	}
	for i := 0; i < n; i++ {
		m.newShard(idle[i])
	}
	ids := m.shardIDs()
	for i, nd := range idle[n:] {
		s := m.Shards[ids[i%n]]
		s.Replicas = append(s.Replicas, nd.ID)
		nd.Shard, nd.State = s.ID, NodeActive
	}
	m.distributeSlots()
	return nil
}

func (m *Map) newShard(primary *Node) *Shard {
	s := &Shard{ID: m.NextShard, Primary: primary.ID, Replicas: []string{}, Epoch: 1}
	m.NextShard++
	m.Shards[s.ID] = s
	primary.Shard, primary.State = s.ID, NodeActive
	return s
}

// addShard makes a shard of idle nodes: the first the primary, the rest
// replicas. It owns no slots unless no slot is assigned yet (moving slots
// to it is the rebalancer's job).
func (m *Map) addShard(ids []string) error {
	if len(ids) == 0 {
		return errors.New("add-shard needs at least one node")
	}
	seen := map[string]bool{}
	for _, id := range ids {
		n := m.Nodes[id]
		switch {
		case n == nil:
			return fmt.Errorf("no node %q", id)
		case n.State != NodeIdle && n.State != NodeStandby:
			return fmt.Errorf("node %s is already in shard %d", id, n.Shard)
		case seen[id]:
			return fmt.Errorf("node %s named twice", id)
		}
		seen[id] = true
	}
	s := m.newShard(m.Nodes[ids[0]])
	for _, id := range ids[1:] {
		s.Replicas = append(s.Replicas, id)
		m.Nodes[id].Shard, m.Nodes[id].State = s.ID, NodeActive
	}
	assigned := false
	for _, o := range m.Slots {
		if o != 0 {
			assigned = true
			break
		}
	}
	if !assigned {
		m.distributeSlots()
	}
	return nil
}

// distributeSlots gives every slot to a shard, in contiguous ranges
// proportional to the weights of the shards' primaries (Targets).
func (m *Map) distributeSlots() {
	ids := m.shardIDs()
	targets := Targets(m)
	slot := 0
	for _, id := range ids {
		for j := 0; j < targets[id]; j++ {
			m.Slots[slot] = uint16(id)
			slot++
		}
	}
}

// shardWeight is a shard's weight: its own (set-weight) if set, else its
// primary node's (at least 1; 1 if the map has no such node, e.g. a
// shard whose primary was removed).
func (m *Map) shardWeight(id int) int {
	if s := m.Shards[id]; s != nil {
		if s.Weight > 0 {
			return s.Weight
		}
		if n := m.Nodes[s.Primary]; n != nil {
			return max(1, n.Weight)
		}
	}
	return 1
}

// apportion splits total into parts proportional to weights (all > 0)
// by largest remainder: part i is floor(total*w[i]/sum), and the parts
// with the largest remainders (ties: the lower index) get one more, so
// the parts sum to total and each is within 1 of its exact quota.
func apportion(weights []int, total int) []int {
	sum := 0
	for _, w := range weights {
		sum += w
	}
	parts := make([]int, len(weights))
	if sum == 0 {
		return parts
	}
	type rem struct{ i, r int }
	rems := make([]rem, len(weights))
	given := 0
	for i, w := range weights {
		parts[i] = total * w / sum
		given += parts[i]
		rems[i] = rem{i, total * w % sum}
	}
	sort.SliceStable(rems, func(a, b int) bool { return rems[a].r > rems[b].r })
	for k := 0; given < total; k++ {
		parts[rems[k].i]++
		given++
	}
	return parts
}

func (m *Map) removeNode(id string) error {
	n := m.Nodes[id]
	if n == nil {
		return fmt.Errorf("no node %q", id)
	}
	if n.Shard != 0 {
		s := m.Shards[n.Shard]
		if s.Primary == id {
			if m.Slots.Count(s.ID) > 0 || len(s.Replicas) > 0 {
				return fmt.Errorf("node %s is the primary of shard %d: fail over first (or move its slots away)", id, s.ID)
			}
			delete(m.Shards, s.ID)
		} else {
			s.Replicas = slices.DeleteFunc(s.Replicas, func(r string) bool { return r == id })
		}
	}
	delete(m.Nodes, id)
	return nil
}

// promote makes node the primary of shard, if the shard is still at the
// epoch the decision was taken at (a decision made on an older map is
// refused, so a retried or duplicated command cannot promote twice). The
// old primary becomes a replica of the new one.
func (m *Map) promote(shard int, node string, epoch uint64) error {
	s := m.Shards[shard]
	if s == nil {
		return fmt.Errorf("no shard %d", shard)
	}
	if epoch != 0 && s.Epoch != epoch {
		return fmt.Errorf("shard %d is at epoch %d, not %d", shard, s.Epoch, epoch)
	}
	if !slices.Contains(s.Replicas, node) {
		return fmt.Errorf("node %s is not a replica of shard %d", node, shard)
	}
	s.Replicas = slices.DeleteFunc(s.Replicas, func(r string) bool { return r == node })
	if s.Primary != "" {
		s.Replicas = append(s.Replicas, s.Primary)
	}
	s.Primary = node
	s.Epoch++
	return nil
}

func (m *Map) setConfig(key string, v int) error {
	next := m.Settings
	p := next.field(key)
	if p == nil {
		return fmt.Errorf("unknown setting %q (one of %v)", key, settingKeys)
	}
	*p = v
	if err := next.Validate(); err != nil {
		return err
	}
	m.Settings = next
	return nil
}

// ShardWeight is a shard's capacity share (see Targets).
func (m *Map) ShardWeight(id int) int { return m.shardWeight(id) }

// MaxWeight bounds node and shard weights.
const MaxWeight = 1000000

func (m *Map) setWeight(shard, w int) error {
	s := m.Shards[shard]
	switch {
	case s == nil:
		return fmt.Errorf("no shard %d", shard)
	case w < 0 || w > MaxWeight:
		return fmt.Errorf("weight must be between 1 and %d (0: the primary node's weight)", MaxWeight)
	}
	s.Weight = w
	return nil
}

func (m *Map) drainShard(shard int) error {
	s := m.Shards[shard]
	switch {
	case s == nil:
		return fmt.Errorf("no shard %d", shard)
	case len(m.Shards) < 2:
		return fmt.Errorf("shard %d is the only shard: nowhere to move its slots", shard)
	}
	for _, mg := range m.Migrations {
		if mg.To == shard {
			return fmt.Errorf("slots are moving to shard %d: cancel or finish them first", shard)
		}
	}
	s.Draining = true
	return nil
}

// releaseShard removes a shard that owns no slot and takes part in no
// move; its nodes go back to the pool as standby nodes.
func (m *Map) releaseShard(shard int) error {
	s := m.Shards[shard]
	if s == nil {
		return fmt.Errorf("no shard %d", shard)
	}
	if n := m.Slots.Count(shard); n > 0 {
		return fmt.Errorf("shard %d still owns %d slots (drain it first)", shard, n)
	}
	for _, mg := range m.Migrations {
		if mg.From == shard || mg.To == shard {
			return fmt.Errorf("slot %d is moving from shard %d to %d", mg.Slot, mg.From, mg.To)
		}
	}
	for _, id := range append([]string{s.Primary}, s.Replicas...) {
		if n := m.Nodes[id]; n != nil {
			n.Shard, n.State = 0, NodeStandby
		}
	}
	delete(m.Shards, shard)
	return nil
}

// Pool returns the nodes in no shard (idle or standby), by id.
func (m *Map) Pool() []*Node {
	var out []*Node
	for _, n := range m.Nodes {
		if n.Shard == 0 && (n.State == NodeIdle || n.State == NodeStandby) {
			out = append(out, n)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Role returns a node's role and shard.
func (m *Map) Role(id string) (role string, shard *Shard) {
	n := m.Nodes[id]
	if n == nil || n.Shard == 0 {
		return RoleNone, nil
	}
	s := m.Shards[n.Shard]
	if s == nil {
		return RoleNone, nil
	}
	if s.Primary == id {
		return RolePrimary, s
	}
	return RoleReplica, s
}

// Addr returns a node's RESP address ("" if unknown).
func (m *Map) Addr(id string) string {
	if n := m.Nodes[id]; n != nil {
		return n.Addr
	}
	return ""
}

// PeerAddr is the address to dial node id at: its TLS address when tls
// is set ("" if it serves no TLS port), else its RESP address.
func (m *Map) PeerAddr(id string, tls bool) string {
	n := m.Nodes[id]
	switch {
	case n == nil:
		return ""
	case tls:
		return n.TLSAddr
	}
	return n.Addr
}

// ParseShard parses a shard id argument.
func ParseShard(s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("bad shard id %q", s)
	}
	return n, nil
}
