package server

// CLUSTER (the read side Redis Cluster clients use), READONLY, READWRITE
// and ASKING. Replies follow redis-server 7 (docs/cluster.md); node ids,
// addresses and epochs come from the cluster map (cluster.go).

import (
	"strconv"
	"strings"

	"shoal/internal/cluster"
	"shoal/internal/engine"
)

func init() {
	register("cluster", cmdCluster)
	register("readonly", cmdReadonly)
	register("readwrite", cmdReadwrite)
	register("asking", cmdAsking)
}

const errClusterDisabled = "ERR This instance has cluster support disabled"

// managedSubcommands are Redis Cluster's subcommands that change the
// cluster's configuration: Shoal's managers own the map.
var managedSubcommands = map[string]bool{
	"addslots": true, "addslotsrange": true, "bumpepoch": true, "count-failure-reports": true, "delslots": true,
	"delslotsrange": true, "failover": true, "flushslots": true, "forget": true, "links": true, "meet": true,
	"myshardid": true, "replicas": true, "replicate": true, "reset": true, "saveconfig": true,
	"set-config-epoch": true, "setslot": true, "slaves": true,
}

func cmdCluster(c *Ctx) {
	sub := strings.ToLower(string(c.args[1]))
	arity := 0
	for _, s := range subcommands["cluster"] {
		if s.name == sub {
			arity = s.arity
		}
	}
	// Redis checks the subcommand and its arity before cluster support.
	switch {
	case arity == 0 && managedSubcommands[sub]:
		c.w.Error("ERR CLUSTER " + strings.ToUpper(sub) + " is not supported: the cluster map is managed by the shoal managers (shoal ctl)")
		return
	case arity == 0:
		unknownSubcommand(c)
		return
	case !c.subArity(arity):
		return
	case !c.srv.clusterMode:
		c.w.Error(errClusterDisabled)
		return
	}
	v := c.srv.clus.view.Load()
	switch sub {
	case "slotsync", "movesync":
		cmdSlotSync(c)
		return
	case "migration":
		cmdMigrationStatus(c)
		return
	case "movefence":
		cmdMoveFence(c)
		return
	case "movedone":
		cmdMoveDone(c)
		return
	case "movewait":
		cmdMoveWait(c)
		return
	case "keyslot":
		c.w.Int(int64(cluster.Slot(c.args[2])))
	case "countkeysinslot":
		slot, ok := c.intArg(2)
		if !ok {
			return
		}
		if slot < 0 || slot >= cluster.NumSlots {
			c.w.Error("ERR Invalid slot")
			return
		}
		n := 0
		c.withSlot(int(slot), func(sl *engine.Slot) { n = sl.Len() })
		c.w.Int(int64(n))
	case "getkeysinslot":
		clusterGetKeysInSlot(c)
	case "myid":
		if v == nil || v.self == "" {
			c.w.Error("CLUSTERDOWN The cluster is down")
			return
		}
		c.w.BulkString(v.self)
	case "info":
		c.w.Verbatim(v.infoText())
	case "nodes":
		c.w.Verbatim(v.nodesText())
	case "slots":
		c.clusterSlots(v)
	case "shards":
		c.clusterShards(v)
	case "help":
		helpReply(c.w, "CLUSTER", []string{
			"COUNTKEYSINSLOT <slot>",
			"    Return the number of keys in <slot>.",
			"GETKEYSINSLOT <slot> <count>",
			"    Return key names stored by current node in a slot.",
			"INFO",
			"    Return information about the cluster.",
			"KEYSLOT <key>",
			"    Return the hash slot for <key>.",
			"MYID",
			"    Return the node id.",
			"NODES",
			"    Return cluster configuration seen by node. Output format:",
			"    <id> <ip:port@bus-port> <flags> <master> <pings> <pongs> <epoch> <link> <slot> ...",
			"SHARDS",
			"    Return information about slot range mappings and the nodes associated with them.",
			"SLOTS",
			"    Return information about slots range mappings. Each range is made of:",
			"    start, end, master and replicas IP addresses, ports and ids",
		})
	}
}

// withSlot runs fn on slot i's table, locked unless EXEC holds every
// slot (CLUSTER is AllSlots: a transaction with it locks them all).
func (c *Ctx) withSlot(i int, fn func(sl *engine.Slot)) {
	if !c.allLocked {
		c.db.Lock(i)
		defer c.db.Unlock(i)
	}
	fn(c.db.Slot(i))
}

func clusterGetKeysInSlot(c *Ctx) {
	slot, ok := c.intArg(2)
	if !ok {
		return
	}
	count, ok := c.intArg(3)
	if !ok {
		return
	}
	if slot < 0 || slot >= cluster.NumSlots || count < 0 {
		c.w.Error("ERR Invalid slot or number of keys")
		return
	}
	var keys []string
	c.withSlot(int(slot), func(sl *engine.Slot) {
		// As Redis: the slot's keys as stored, expired ones not yet
		// reclaimed included (COUNTKEYSINSLOT counts them too).
		c.db.ForEachHeld(sl, func(k string, _ *engine.Entry) bool {
			if int64(len(keys)) >= count {
				return false
			}
			keys = append(keys, k)
			return true
		})
	})
	c.w.Array(len(keys))
	for _, k := range keys {
		c.w.BulkString(k)
	}
}

// clusterSlots is CLUSTER SLOTS: one entry per run of slots, [first,
// last, primary, replicas...], each node [host, port, id, {}] (Redis 7's
// shape: the fourth element is the map of extra endpoints, empty).
func (c *Ctx) clusterSlots(v *clusterView) {
	if v == nil || v.m == nil {
		c.w.Array(0)
		return
	}
	var ranges []cluster.Range
	for _, r := range v.m.Slots.Ranges() {
		if _, ok := v.primaries[r.Shard]; ok && r.Shard != 0 {
			ranges = append(ranges, r)
		}
	}
	c.w.Array(len(ranges))
	for _, r := range ranges {
		nodes := v.m.ShardNodes(r.Shard)
		c.w.Array(2 + len(nodes))
		c.w.Int(int64(r.First))
		c.w.Int(int64(r.Last))
		for _, n := range nodes {
			host, port := splitAddr(n.Addr)
			c.w.Array(4)
			c.w.BulkString(host)
			c.w.Int(int64(port))
			c.w.BulkString(n.ID)
			c.w.Map(0)
		}
	}
}

// clusterShards is CLUSTER SHARDS: per shard (by id) a map of its slot
// ranges (flat first/last pairs) and its nodes, the primary first.
// Replication offsets are known for this node only (others show 0), and
// the map carries no health: every node is "online".
func (c *Ctx) clusterShards(v *clusterView) {
	if v == nil || v.m == nil {
		c.w.Array(0)
		return
	}
	ids := v.m.ShardIDs()
	c.w.Array(len(ids))
	for _, id := range ids {
		sh := v.m.Shards[id]
		c.w.Map(2)
		c.w.BulkString("slots")
		ranges := v.m.SlotRanges(id)
		c.w.Array(2 * len(ranges))
		for _, r := range ranges {
			c.w.Int(int64(r.First))
			c.w.Int(int64(r.Last))
		}
		c.w.BulkString("nodes")
		nodes := v.m.ShardNodes(id)
		c.w.Array(len(nodes))
		for _, n := range nodes {
			host, port := splitAddr(n.Addr)
			role := "replica"
			if n.ID == sh.Primary {
				role = "master"
			}
			var off int64
			if n.ID == v.self {
				off = int64(c.srv.lastLSN())
			}
			c.w.Map(7)
			c.w.BulkString("id")
			c.w.BulkString(n.ID)
			c.w.BulkString("port")
			c.w.Int(int64(port))
			c.w.BulkString("ip")
			c.w.BulkString(host)
			c.w.BulkString("endpoint")
			c.w.BulkString(host)
			c.w.BulkString("role")
			c.w.BulkString(role)
			c.w.BulkString("replication-offset")
			c.w.Int(off)
			c.w.BulkString("health")
			c.w.BulkString("online")
		}
	}
}

// nodesText is CLUSTER NODES: one line per node, Redis's format
//
//	<id> <ip:port@cport> <flags> <master-id|-> <ping-sent> <pong-recv> <config-epoch> <link-state> <slot ranges>
//
// shards in id order (primary, then replicas), then the idle nodes
// (masters without slots, as a node that joined a Redis cluster). The
// cluster bus port is the port + 10000 (Shoal has no bus); pong-recv is
// when the map arrived (0 for this node); config-epoch is the shard's
// epoch.
func (v *clusterView) nodesText() string {
	if v == nil || v.m == nil {
		return ""
	}
	var b strings.Builder
	line := func(n *cluster.Node, sh *cluster.Shard) {
		host, port := splitAddr(n.Addr)
		cport := 0
		if port > 0 {
			cport = port + 10000
		}
		b.WriteString(n.ID)
		b.WriteByte(' ')
		b.WriteString(host)
		b.WriteByte(':')
		b.WriteString(strconv.Itoa(port))
		b.WriteByte('@')
		b.WriteString(strconv.Itoa(cport))
		b.WriteByte(' ')
		if n.ID == v.self {
			b.WriteString("myself,")
		}
		primary := sh == nil || sh.Primary == n.ID
		if primary {
			b.WriteString("master -")
		} else {
			b.WriteString("slave ")
			b.WriteString(sh.Primary)
		}
		pong := v.installed
		if n.ID == v.self {
			pong = 0
		}
		var epoch uint64
		if sh != nil {
			epoch = sh.Epoch
		}
		b.WriteString(" 0 ")
		b.WriteString(strconv.FormatInt(pong, 10))
		b.WriteByte(' ')
		b.WriteString(strconv.FormatUint(epoch, 10))
		b.WriteString(" connected")
		if primary && sh != nil {
			for _, r := range v.m.SlotRanges(sh.ID) {
				b.WriteByte(' ')
				b.WriteString(strconv.Itoa(r.First))
				if r.Last != r.First {
					b.WriteByte('-')
					b.WriteString(strconv.Itoa(r.Last))
				}
			}
		}
		b.WriteByte('\n')
	}
	listed := make(map[string]bool, len(v.m.Nodes))
	for _, id := range v.m.ShardIDs() {
		sh := v.m.Shards[id]
		for _, n := range v.m.ShardNodes(id) {
			line(n, sh)
			listed[n.ID] = true
		}
	}
	for _, id := range v.m.NodeIDs() {
		if !listed[id] {
			line(v.m.Nodes[id], nil)
		}
	}
	return b.String()
}

// infoText is CLUSTER INFO. The state is ok when a map is installed and
// every slot has an owner; Shoal has no cluster bus, so the bus message
// counters are 0.
func (v *clusterView) infoText() string {
	state, assigned, known, size := "fail", 0, 0, 0
	var epoch, myEpoch uint64
	if v != nil && v.m != nil {
		assigned, known, size = v.assigned, len(v.m.Nodes), v.size
		epoch, myEpoch = v.epoch, v.shardEpoch
		if assigned == cluster.NumSlots {
			state = "ok"
		}
	}
	var b strings.Builder
	field := func(k string, val any) {
		b.WriteString(k)
		b.WriteByte(':')
		switch x := val.(type) {
		case string:
			b.WriteString(x)
		case int:
			b.WriteString(strconv.Itoa(x))
		case uint64:
			b.WriteString(strconv.FormatUint(x, 10))
		}
		b.WriteString("\r\n")
	}
	field("cluster_state", state)
	field("cluster_slots_assigned", assigned)
	field("cluster_slots_ok", assigned)
	field("cluster_slots_pfail", 0)
	field("cluster_slots_fail", 0)
	field("cluster_known_nodes", known)
	field("cluster_size", size)
	field("cluster_current_epoch", epoch)
	field("cluster_my_epoch", myEpoch)
	field("cluster_stats_messages_sent", 0)
	field("cluster_stats_messages_received", 0)
	field("total_cluster_links_buffer_limit_exceeded", 0)
	return b.String()
}

func cmdReadonly(c *Ctx) {
	if !c.srv.clusterMode {
		c.w.Error(errClusterDisabled)
		return
	}
	c.cl.readonly = true
	c.w.OK()
}

func cmdReadwrite(c *Ctx) {
	if !c.srv.clusterMode {
		c.w.Error(errClusterDisabled)
		return
	}
	c.cl.readonly = false
	c.w.OK()
}

// cmdAsking sets the client's one-command ASKING flag (the dispatcher
// clears it as the next command is routed). -ASK and importing slots
// come with slot migration; until then the flag changes nothing.
func cmdAsking(c *Ctx) {
	if !c.srv.clusterMode {
		c.w.Error(errClusterDisabled)
		return
	}
	c.cl.asking = true
	c.w.OK()
}
