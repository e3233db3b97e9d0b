package server_test

import (
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"shoal/internal/cluster"
	tu "shoal/internal/testutil"
)

// Cluster mode: in-process servers on loopback handed a cluster map
// built by hand (Map.Apply, as the managers would), driven with raw
// RESP and memcached connections and with real clients.

// cnode is an in-process cluster-mode server with its id in the map.
type cnode struct {
	*tu.Node
	id     string
	mcAddr string // "" without a memcached port
}

// startClusterNode starts a cluster-enabled server; mc adds a memcached
// port.
func startClusterNode(t *testing.T, id string, mc bool, directives ...string) *cnode {
	t.Helper()
	d := append([]string{"cluster-enabled", "yes"}, directives...)
	if !mc {
		return &cnode{Node: tu.StartServer(t, d...), id: id}
	}
	n, mcAddr := startMC(t, d...)
	return &cnode{Node: n, id: id, mcAddr: mcAddr}
}

// buildMap registers the nodes (ids in that order must sort as wanted:
// create makes the first `shards` ids primaries and spreads the others
// over the shards as replicas) and creates the shards.
func buildMap(t *testing.T, shards int, nodes ...*cnode) *cluster.Map {
	t.Helper()
	m := cluster.NewMap()
	for _, n := range nodes {
		if err := m.Apply(cluster.Command{Op: cluster.OpRegister, Node: &cluster.Node{ID: n.id, Addr: n.Addr, MCAddr: n.mcAddr}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := m.Apply(cluster.Command{Op: cluster.OpCreate, Shards: shards}); err != nil {
		t.Fatal(err)
	}
	return m
}

// install hands every node its own copy of m.
func install(m *cluster.Map, nodes ...*cnode) {
	for _, n := range nodes {
		n.Srv.SetClusterMap(m.Clone(), n.id)
	}
}

// keyIn returns a key (with prefix) whose slot shard owns in m and
// that is not in avoid's slots.
func keyIn(t *testing.T, m *cluster.Map, shard int, prefix string, avoid ...string) string {
	t.Helper()
outer:
	for i := 0; i < 100000; i++ {
		k := prefix + strconv.Itoa(i)
		s := cluster.Slot([]byte(k))
		if int(m.Slots[s]) != shard {
			continue
		}
		for _, a := range avoid {
			if cluster.Slot([]byte(a)) == s {
				continue outer
			}
		}
		return k
	}
	t.Fatalf("no key in shard %d", shard)
	return ""
}

func slotOf(k string) string { return strconv.Itoa(cluster.Slot([]byte(k))) }

func moved(k string, n *cnode) string {
	return "(error) MOVED " + slotOf(k) + " " + n.Addr
}

// threeNodes starts a (primary of shard 1), b (primary of shard 2) and
// c (replica of shard 1, in the map only: nothing replicates here) and
// installs the map on all three; the slot of the returned "nowhere" key
// is left unassigned.
func threeNodes(t *testing.T, mc bool) (a, b, c *cnode, m *cluster.Map, nowhere string) {
	t.Helper()
	a = startClusterNode(t, "node-a", mc)
	b = startClusterNode(t, "node-b", mc)
	c = startClusterNode(t, "node-c", mc)
	m = buildMap(t, 2, a, b, c)
	for i := 0; ; i++ { // a hole inside shard 2's range, not at its ends
		nowhere = keyIn(t, m, 2, "nowhere"+strconv.Itoa(i)+"-")
		if s := cluster.Slot([]byte(nowhere)); s > 0 && m.Slots[s-1] == 2 && s < cluster.NumSlots-1 {
			break
		}
	}
	m.Slots[cluster.Slot([]byte(nowhere))] = 0
	install(m, a, b, c)
	return a, b, c, m, nowhere
}

func TestClusterRouting(t *testing.T) {
	a, b, c, m, nowhere := threeNodes(t, false)
	ka := keyIn(t, m, 1, "a")
	ka2 := keyIn(t, m, 1, "a", ka) // another slot of shard 1
	kb := keyIn(t, m, 2, "b")
	tag := "{" + ka + "}" // hashes like ka

	ca := tu.Dial(t, a.Addr)
	tu.Run(t, ca, []tu.Case{
		{Cmd: []string{"SET", ka, "1"}, Want: "OK"},
		{Cmd: []string{"GET", ka}, Want: `"1"`},
		{Cmd: []string{"SET", kb, "1"}, Want: moved(kb, b)},
		{Cmd: []string{"GET", kb}, Want: moved(kb, b)},
		{Cmd: []string{"GET", nowhere}, Want: "(error) CLUSTERDOWN Hash slot not served"},
		// several slots, all shard 1's: run here, atomically
		{Cmd: []string{"MSET", ka, "x", ka2, "y"}, Want: "OK"},
		{Cmd: []string{"MGET", ka, ka2}, Want: `["x" "y"]`},
		{Cmd: []string{"DEL", ka2, ka2 + "{" + ka + "}"}, Want: "(integer) 1"},
		{Cmd: []string{"MGET", ka, kb}, Want: "(error) CROSSSLOT Keys in request don't hash to the same slot"},
		{Cmd: []string{"MGET", kb, ka}, Want: "(error) CROSSSLOT Keys in request don't hash to the same slot"},
		{Cmd: []string{"MGET", ka, nowhere}, Want: "(error) CROSSSLOT Keys in request don't hash to the same slot"},
		{Cmd: []string{"RENAME", ka, tag + "new"}, Want: "OK"},
		{Cmd: []string{"RENAME", tag + "new", kb}, Want: "(error) CROSSSLOT Keys in request don't hash to the same slot"},
		// the first key decides MOVED when every key is in one slot
		{Cmd: []string{"MSET", "{" + kb + "}1", "1", "{" + kb + "}2", "2"}, Want: moved(kb, b)},
		{Cmd: []string{"EXISTS", tag + "new"}, Want: "(integer) 1"},
		// keyless and whole-keyspace commands are answered here
		{Cmd: []string{"PING"}, Want: "PONG"},
		{Cmd: []string{"DBSIZE"}, Want: "(integer) 1"},
		{Cmd: []string{"KEYS", "*"}, Want: `["` + tag + `new"]`},
		{Cmd: []string{"PUBLISH", "ch", "m"}, Want: "(integer) 0"},
		{Cmd: []string{"CLUSTER", "KEYSLOT", "foo"}, Want: "(integer) 12182"},
		// blocking commands route by key
		{Cmd: []string{"BLPOP", kb, "0"}, Want: moved(kb, b)},
		{Cmd: []string{"BLPOP", ka, kb, "0"}, Want: "(error) CROSSSLOT Keys in request don't hash to the same slot"},
		// ASKING is one-command state (no -ASK yet)
		{Cmd: []string{"ASKING"}, Want: "OK"},
		{Cmd: []string{"GET", kb}, Want: moved(kb, b)},
		{Cmd: []string{"WATCH", kb}, Want: moved(kb, b)},
		// a replica-only flag does nothing on a primary
		{Cmd: []string{"READONLY"}, Want: "OK"},
		{Cmd: []string{"GET", kb}, Want: moved(kb, b)},
	})
	if got := infoField(t, ca, "cluster", "cluster_enabled"); got != "1" {
		t.Errorf("cluster_enabled:%s", got)
	}

	// c is a replica of shard 1: reads only with READONLY, writes never
	cc := tu.Dial(t, c.Addr)
	tu.Run(t, cc, []tu.Case{
		{Cmd: []string{"GET", ka}, Want: moved(ka, a)},
		{Cmd: []string{"SET", ka, "1"}, Want: moved(ka, a)},
		{Cmd: []string{"GET", kb}, Want: moved(kb, b)},
		{Cmd: []string{"READONLY"}, Want: "OK"},
		{Cmd: []string{"GET", ka}, Want: "(nil)"},
		{Cmd: []string{"ECHO", "x"}, Want: `"x"`},
		{Cmd: []string{"MGET", ka, ka2}, Want: "[(nil) (nil)]"},
		{Cmd: []string{"EXISTS", ka}, Want: "(integer) 0"},
		{Cmd: []string{"SET", ka, "1"}, Want: moved(ka, a)},
		{Cmd: []string{"MSET", ka, "1", ka2, "2"}, Want: "(error) MOVED " + slotOf(ka) + " " + a.Addr},
		{Cmd: []string{"GET", kb}, Want: moved(kb, b)},
		{Cmd: []string{"BLPOP", ka, "0"}, Want: moved(ka, a)}, // a write
		{Cmd: []string{"READWRITE"}, Want: "OK"},
		{Cmd: []string{"GET", ka}, Want: moved(ka, a)},
		{Cmd: []string{"READONLY"}, Want: "OK"},
		{Cmd: []string{"RESET"}, Want: "RESET"}, // clears READONLY
		{Cmd: []string{"GET", ka}, Want: moved(ka, a)},
	})

	cc.Do("READONLY")
	if info := cc.Do("CLIENT", "INFO"); !strings.Contains(info, " flags=r ") {
		t.Errorf("CLIENT INFO of a READONLY connection: %s", info)
	}

	// A cluster-mode node without a map: keyed commands are refused,
	// the rest answered.
	d := startClusterNode(t, "node-d", false)
	cd := tu.Dial(t, d.Addr)
	tu.Run(t, cd, []tu.Case{
		{Cmd: []string{"GET", ka}, Want: "(error) CLUSTERDOWN The cluster is down"},
		{Cmd: []string{"SET", ka, "1"}, Want: "(error) CLUSTERDOWN The cluster is down"},
		{Cmd: []string{"PING"}, Want: "PONG"},
		{Cmd: []string{"DBSIZE"}, Want: "(integer) 0"},
		{Cmd: []string{"CLUSTER", "SLOTS"}, Want: "[]"},
		{Cmd: []string{"CLUSTER", "MYID"}, Want: "(error) CLUSTERDOWN The cluster is down"},
	})
	if got := clusterInfoField(t, cd, "cluster_state"); got != "fail" {
		t.Errorf("no map: cluster_state:%s", got)
	}
	// the id alone (nil map): MYID answers, keys still refused
	d.Srv.SetClusterMap(nil, "node-d")
	tu.Run(t, cd, []tu.Case{
		{Cmd: []string{"CLUSTER", "MYID"}, Want: `"node-d"`},
		{Cmd: []string{"GET", ka}, Want: "(error) CLUSTERDOWN The cluster is down"},
	})
	// not in the map: everything is elsewhere
	d.Srv.SetClusterMap(m.Clone(), "node-d")
	tu.Run(t, cd, []tu.Case{
		{Cmd: []string{"GET", ka}, Want: moved(ka, a)},
		{Cmd: []string{"GET", kb}, Want: moved(kb, b)},
		{Cmd: []string{"GET", nowhere}, Want: "(error) CLUSTERDOWN Hash slot not served"},
	})
}

// Rejected commands count as rejected_calls in INFO commandstats.
func TestClusterRejectedStats(t *testing.T) {
	a, b, _, m, _ := threeNodes(t, false)
	_ = b
	ca := tu.Dial(t, a.Addr)
	kb := keyIn(t, m, 2, "b")
	ca.Do("GET", kb)
	ca.Do("GET", kb)
	r, _ := ca.DoReply("INFO", "commandstats")
	if !strings.Contains(r.Str, "cmdstat_get:calls=0,") || !strings.Contains(r.Str, "rejected_calls=2,") {
		t.Errorf("commandstats after two MOVED GETs:\n%s", r.Str)
	}
}

func clusterInfoField(t *testing.T, c *tu.Conn, field string) string {
	t.Helper()
	r, err := c.DoReply("CLUSTER", "INFO")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(r.Str, "\r\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && k == field {
			return v
		}
	}
	t.Fatalf("CLUSTER INFO has no %s:\n%s", field, r.Str)
	return ""
}

func TestClusterCommandsStandalone(t *testing.T) {
	n := tu.StartServer(t)
	c := tu.Dial(t, n.Addr)
	const disabled = "(error) ERR This instance has cluster support disabled"
	tu.Run(t, c, []tu.Case{
		{Cmd: tu.C("CLUSTER INFO"), Want: disabled},
		{Cmd: tu.C("CLUSTER SLOTS"), Want: disabled},
		{Cmd: tu.C("CLUSTER KEYSLOT foo"), Want: disabled},
		{Cmd: tu.C("READONLY"), Want: disabled},
		{Cmd: tu.C("READWRITE"), Want: disabled},
		{Cmd: tu.C("ASKING"), Want: disabled},
		// the subcommand and its arity are checked first, as Redis does
		{Cmd: tu.C("CLUSTER NOSUCH"), Want: "(error) ERR unknown subcommand 'NOSUCH'. Try CLUSTER HELP."},
		{Cmd: tu.C("CLUSTER KEYSLOT"), Want: "(error) ERR wrong number of arguments for 'cluster|keyslot' command"},
		{Cmd: tu.C("CLUSTER"), Want: "(error) ERR wrong number of arguments for 'cluster' command"},
		{Cmd: tu.C("READONLY x"), Want: "(error) ERR wrong number of arguments for 'readonly' command"},
	})
	if got := infoField(t, c, "cluster", "cluster_enabled"); got != "0" {
		t.Errorf("cluster_enabled:%s", got)
	}
	// COMMAND describes them as Redis 7 does
	r, _ := c.DoReply("COMMAND", "INFO", "readonly", "asking", "cluster")
	if got := r.Elems[0].String(); got != `["readonly" (integer) 1 [loading stale fast] (integer) 0 (integer) 0 (integer) 0 [@connection @fast] [] [] []]` {
		t.Errorf("COMMAND INFO readonly = %s", got)
	}
	if got := r.Elems[1].Elems[2].String(); got != "[fast]" {
		t.Errorf("COMMAND INFO asking flags = %s", got)
	}
	var subs []string
	for _, e := range r.Elems[2].Elems[9].Elems {
		subs = append(subs, e.Elems[0].Str+"/"+strconv.FormatInt(e.Elems[1].Int, 10))
	}
	if got := strings.Join(subs, " "); got != "cluster|countkeysinslot/3 cluster|getkeysinslot/4 cluster|help/2 cluster|info/2 "+
		"cluster|keyslot/3 cluster|migration/-3 cluster|movedone/-6 cluster|movefence/-5 cluster|movesync/-3 cluster|movewait/-6 cluster|myid/2 cluster|nodes/2 cluster|shards/2 cluster|slots/2 cluster|slotsync/3" {
		t.Errorf("COMMAND INFO cluster subcommands: %s", got)
	}
}

func TestClusterKeyslotAndSlotKeys(t *testing.T) {
	a, _, _, m, _ := threeNodes(t, false)
	ca := tu.Dial(t, a.Addr)
	ka := keyIn(t, m, 1, "a")
	s := slotOf(ka)
	for i := 0; i < 3; i++ {
		ca.Do("SET", "{"+ka+"}"+strconv.Itoa(i), "v")
	}
	tu.Run(t, ca, []tu.Case{
		{Cmd: tu.C("CLUSTER KEYSLOT {user1000}.following"), Want: "(integer) 3443"},
		{Cmd: []string{"CLUSTER", "KEYSLOT", ""}, Want: "(integer) 0"},
		{Cmd: tu.C("CLUSTER KEYSLOT a b"), Want: "(error) ERR wrong number of arguments for 'cluster|keyslot' command"},
		{Cmd: []string{"CLUSTER", "COUNTKEYSINSLOT", s}, Want: "(integer) 3"},
		{Cmd: tu.C("CLUSTER COUNTKEYSINSLOT 0"), Want: "(integer) 0"},
		{Cmd: tu.C("CLUSTER COUNTKEYSINSLOT x"), Want: "(error) ERR value is not an integer or out of range"},
		{Cmd: tu.C("CLUSTER COUNTKEYSINSLOT 16384"), Want: "(error) ERR Invalid slot"},
		{Cmd: tu.C("CLUSTER COUNTKEYSINSLOT -1"), Want: "(error) ERR Invalid slot"},
		{Cmd: tu.C("CLUSTER COUNTKEYSINSLOT"), Want: "(error) ERR wrong number of arguments for 'cluster|countkeysinslot' command"},
		{Cmd: []string{"CLUSTER", "GETKEYSINSLOT", s, "0"}, Want: "[]"},
		{Cmd: tu.C("CLUSTER GETKEYSINSLOT 0 10"), Want: "[]"},
		{Cmd: tu.C("CLUSTER GETKEYSINSLOT 16384 1"), Want: "(error) ERR Invalid slot or number of keys"},
		{Cmd: tu.C("CLUSTER GETKEYSINSLOT 1 -1"), Want: "(error) ERR Invalid slot or number of keys"},
		{Cmd: tu.C("CLUSTER GETKEYSINSLOT 1 x"), Want: "(error) ERR value is not an integer or out of range"},
		{Cmd: tu.C("CLUSTER GETKEYSINSLOT 1"), Want: "(error) ERR wrong number of arguments for 'cluster|getkeysinslot' command"},
		{Cmd: tu.C("CLUSTER MEET 127.0.0.1 7000"), Want: "(error) ERR CLUSTER MEET is not supported: the cluster map is managed by the shoal managers (shoal ctl)"},
		{Cmd: tu.C("CLUSTER MYID"), Want: `"node-a"`},
	})
	r, _ := ca.DoReply("CLUSTER", "GETKEYSINSLOT", s, "2")
	if len(r.Elems) != 2 || !strings.HasPrefix(r.Elems[0].Str, "{"+ka+"}") {
		t.Errorf("GETKEYSINSLOT %s 2 = %s", s, r)
	}
	r, _ = ca.DoReply("CLUSTER", "GETKEYSINSLOT", s, "10")
	if len(r.Elems) != 3 {
		t.Errorf("GETKEYSINSLOT %s 10 = %s", s, r)
	}
	// inside a transaction (CLUSTER makes EXEC hold every slot)
	ca.Do("MULTI")
	ca.Do("SET", ka, "1")
	ca.Do("CLUSTER", "COUNTKEYSINSLOT", s)
	if got := ca.Do("EXEC"); got != "[OK (integer) 4]" {
		t.Errorf("EXEC = %s", got)
	}
	r, _ = ca.DoReply("CLUSTER", "HELP")
	if len(r.Elems) < 10 || !strings.HasPrefix(r.Elems[0].Str, "CLUSTER <subcommand>") {
		t.Errorf("CLUSTER HELP = %s", r)
	}
}

func TestClusterSlotsShape(t *testing.T) {
	a, b, c, m, nowhere := threeNodes(t, false)
	hp := func(n *cnode) (string, string) {
		h, p, _ := strings.Cut(n.Addr, ":")
		return h, p
	}
	ah, ap := hp(a)
	bh, bp := hp(b)
	ch, cp := hp(c)
	hole, _ := strconv.Atoi(slotOf(nowhere))
	r1 := m.SlotRanges(1)[0]
	if r1.First != 0 {
		t.Fatalf("shard 1 ranges %v", m.SlotRanges(1))
	}
	want := fmt.Sprintf("[[(integer) 0 (integer) %d [%q (integer) %s \"node-a\" {}] [%q (integer) %s \"node-c\" {}]] "+
		"[(integer) %d (integer) %d [%q (integer) %s \"node-b\" {}]] "+
		"[(integer) %d (integer) 16383 [%q (integer) %s \"node-b\" {}]]]",
		r1.Last, ah, ap, ch, cp, r1.Last+1, hole-1, bh, bp, hole+1, bh, bp)
	want2 := strings.ReplaceAll(want, "{}", "[]") // RESP2: the empty map is an empty array
	cc := tu.Dial(t, c.Addr)
	if got := cc.Do("CLUSTER", "SLOTS"); got != want2 {
		t.Errorf("RESP2 CLUSTER SLOTS:\n got  %s\n want %s", got, want2)
	}
	cc.Do("HELLO", "3")
	if got := cc.Do("CLUSTER", "SLOTS"); got != want {
		t.Errorf("RESP3 CLUSTER SLOTS:\n got  %s\n want %s", got, want)
	}

	// SHARDS: per shard, slots as flat pairs, nodes primary first
	r, err := cc.DoReply("CLUSTER", "SHARDS")
	if err != nil || len(r.Elems) != 2 {
		t.Fatalf("CLUSTER SHARDS = %s %v", r, err)
	}
	wantShard1 := fmt.Sprintf(`{"slots":[(integer) 0 (integer) %d] "nodes":[`+
		`{"id":"node-a" "port":(integer) %s "ip":%q "endpoint":%q "role":"master" "replication-offset":(integer) 0 "health":"online"} `+
		`{"id":"node-c" "port":(integer) %s "ip":%q "endpoint":%q "role":"replica" "replication-offset":(integer) 0 "health":"online"}]}`,
		r1.Last, ap, ah, ah, cp, ch, ch)
	if got := r.Elems[0].String(); got != wantShard1 {
		t.Errorf("CLUSTER SHARDS shard 1:\n got  %s\n want %s", got, wantShard1)
	}
	wantShard2 := fmt.Sprintf(`{"slots":[(integer) %d (integer) %d (integer) %d (integer) 16383] "nodes":[`+
		`{"id":"node-b" "port":(integer) %s "ip":%q "endpoint":%q "role":"master" "replication-offset":(integer) 0 "health":"online"}]}`,
		r1.Last+1, hole-1, hole+1, bp, bh, bh)
	if got := r.Elems[1].String(); got != wantShard2 {
		t.Errorf("CLUSTER SHARDS shard 2:\n got  %s\n want %s", got, wantShard2)
	}
	cc.Do("HELLO", "2")
	r, _ = cc.DoReply("CLUSTER", "SHARDS")
	if len(r.Elems) != 2 || len(r.Elems[0].Elems) != 4 || r.Elems[0].Elems[0].Str != "slots" || len(r.Elems[0].Elems[3].Elems[0].Elems) != 14 {
		t.Errorf("RESP2 CLUSTER SHARDS = %s", r)
	}

	// NODES: Redis's line format, this node flagged myself
	r, _ = cc.DoReply("CLUSTER", "NODES")
	lines := strings.Split(strings.TrimSuffix(r.Str, "\n"), "\n")
	if len(lines) != 3 {
		t.Fatalf("CLUSTER NODES:\n%s", r.Str)
	}
	wantLines := []string{
		fmt.Sprintf("node-a %s:%s@%d master - 0 <pong> 1 connected 0-%d", ah, ap, atoi(ap)+10000, r1.Last),
		fmt.Sprintf("node-c %s:%s@%d myself,slave node-a 0 0 1 connected", ch, cp, atoi(cp)+10000),
		fmt.Sprintf("node-b %s:%s@%d master - 0 <pong> 1 connected %d-%d %d-16383", bh, bp, atoi(bp)+10000, r1.Last+1, hole-1, hole+1),
	}
	for i, l := range lines {
		f := strings.Fields(l)
		if len(f) > 5 && f[5] != "0" {
			f[5] = "<pong>"
		}
		if got := strings.Join(f, " "); got != wantLines[i] {
			t.Errorf("CLUSTER NODES line %d:\n got  %s\n want %s", i, got, wantLines[i])
		}
	}
	cc.Do("HELLO", "3")
	r, _ = cc.DoReply("CLUSTER", "NODES")
	if r.Kind != '=' {
		t.Errorf("RESP3 CLUSTER NODES is not a verbatim string: %c", r.Kind)
	}

	// INFO
	for field, want := range map[string]string{
		"cluster_state": "fail", "cluster_slots_assigned": "16383", "cluster_slots_ok": "16383",
		"cluster_slots_pfail": "0", "cluster_slots_fail": "0", "cluster_known_nodes": "3", "cluster_size": "2",
		"cluster_current_epoch": strconv.FormatUint(m.Epoch, 10), "cluster_my_epoch": "1",
		"cluster_stats_messages_sent": "0", "cluster_stats_messages_received": "0",
	} {
		if got := clusterInfoField(t, cc, field); got != want {
			t.Errorf("CLUSTER INFO %s:%s, want %s", field, got, want)
		}
	}
	// every slot assigned, shard 1 failed over: ok, epochs move
	m2 := m.Clone()
	m2.Slots[hole] = 2
	if err := m2.Apply(cluster.Command{Op: cluster.OpPromote, ShardID: 1, NodeID: "node-c"}); err != nil {
		t.Fatal(err)
	}
	install(m2, a, b, c)
	for field, want := range map[string]string{
		"cluster_state": "ok", "cluster_slots_assigned": "16384",
		"cluster_current_epoch": strconv.FormatUint(m2.Epoch, 10), "cluster_my_epoch": "2",
	} {
		if got := clusterInfoField(t, cc, field); got != want {
			t.Errorf("after failover: CLUSTER INFO %s:%s, want %s", field, got, want)
		}
	}
	r, _ = cc.DoReply("CLUSTER", "NODES")
	if !strings.Contains(r.Str, "node-c "+c.Addr+"@"+strconv.Itoa(atoi(cp)+10000)+" myself,master - 0 0 2 connected 0-") ||
		!strings.Contains(r.Str, "node-a "+a.Addr+"@"+strconv.Itoa(atoi(ap)+10000)+" slave node-c 0 ") {
		t.Errorf("CLUSTER NODES after failover:\n%s", r.Str)
	}
}

func atoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}

func TestClusterMultiExec(t *testing.T) {
	a, b, _, m, _ := threeNodes(t, false)
	ka := keyIn(t, m, 1, "a")
	ka2 := keyIn(t, m, 1, "a", ka)
	kb := keyIn(t, m, 2, "b")
	ca := tu.Dial(t, a.Addr)
	tu.Run(t, ca, []tu.Case{
		// a redirected command flags the transaction
		{Cmd: tu.C("MULTI"), Want: "OK"},
		{Cmd: []string{"SET", ka, "1"}, Want: "QUEUED"},
		{Cmd: []string{"SET", kb, "1"}, Want: moved(kb, b)},
		{Cmd: tu.C("EXEC"), Want: "(error) EXECABORT Transaction discarded because of previous errors."},
		{Cmd: []string{"EXISTS", ka}, Want: "(integer) 0"},
		// several slots, all served here: atomic as today
		{Cmd: tu.C("MULTI"), Want: "OK"},
		{Cmd: []string{"SET", ka, "1"}, Want: "QUEUED"},
		{Cmd: []string{"SET", ka2, "2"}, Want: "QUEUED"},
		{Cmd: []string{"MGET", ka, ka2}, Want: "QUEUED"},
		{Cmd: tu.C("PING"), Want: "QUEUED"},
		{Cmd: tu.C("EXEC"), Want: `[OK OK ["1" "2"] PONG]`},
		{Cmd: tu.C("MULTI"), Want: "OK"},
		{Cmd: []string{"MGET", ka, kb}, Want: "(error) CROSSSLOT Keys in request don't hash to the same slot"},
		{Cmd: tu.C("EXEC"), Want: "(error) EXECABORT Transaction discarded because of previous errors."},
	})

	// The map changes between MULTI and EXEC: EXEC is answered with the
	// redirection and the transaction discarded (Redis's behaviour).
	tag2 := "{" + ka2 + "}"
	tu.Run(t, ca, []tu.Case{
		{Cmd: []string{"WATCH", ka2}, Want: "OK"},
		{Cmd: tu.C("MULTI"), Want: "OK"},
		{Cmd: []string{"SET", tag2 + "x", "changed"}, Want: "QUEUED"},
		{Cmd: []string{"INCR", ka2}, Want: "QUEUED"},
	})
	m2 := m.Clone()
	m2.Slots[cluster.Slot([]byte(ka2))] = 2
	m2.Epoch++
	install(m2, a, b)
	tu.Run(t, ca, []tu.Case{
		{Cmd: tu.C("EXEC"), Want: "(error) MOVED " + slotOf(ka2) + " " + b.Addr},
		{Cmd: tu.C("EXEC"), Want: "(error) ERR EXEC without MULTI"},
		{Cmd: tu.C("DBSIZE"), Want: "(integer) 2"}, // ka and ka2 as they were
		{Cmd: []string{"GET", ka2}, Want: moved(ka2, b)},
	})
	// Several slots, one of them taken away: no node can run it whole.
	ka3 := keyIn(t, m, 1, "a", ka, ka2)
	tu.Run(t, ca, []tu.Case{
		{Cmd: tu.C("MULTI"), Want: "OK"},
		{Cmd: []string{"SET", ka, "changed"}, Want: "QUEUED"},
		{Cmd: []string{"SET", ka3, "changed"}, Want: "QUEUED"},
	})
	m3 := m2.Clone()
	m3.Slots[cluster.Slot([]byte(ka3))] = 2
	m3.Epoch++
	install(m3, a, b)
	tu.Run(t, ca, []tu.Case{
		{Cmd: tu.C("EXEC"), Want: "(error) CROSSSLOT Keys in request don't hash to the same slot"},
		{Cmd: []string{"GET", ka}, Want: `"1"`},
	})
	// a transaction on slots still served here runs
	tu.Run(t, ca, []tu.Case{
		{Cmd: tu.C("MULTI"), Want: "OK"},
		{Cmd: []string{"INCR", ka + "{" + ka + "}"}, Want: "QUEUED"},
	})
	m4 := m3.Clone()
	m4.Slots[cluster.Slot([]byte(kb))] = 1 // moves toward a: harmless
	m4.Epoch++
	install(m4, a, b)
	if got := ca.Do("EXEC"); got != "[(integer) 1]" {
		t.Errorf("EXEC after an unrelated map change = %s", got)
	}
}

// A client blocked on a key whose slot a new map takes away is woken
// with the redirection (Redis Cluster does the same).
func TestClusterBlockedClientRedirected(t *testing.T) {
	a, b, _, m, _ := threeNodes(t, false)
	ka := keyIn(t, m, 1, "a")
	ka2 := keyIn(t, m, 1, "a", ka)
	blocked := tu.Dial(t, a.Addr)
	blocked.Send([]byte("*3\r\n$5\r\nBLPOP\r\n$" + strconv.Itoa(len(ka)) + "\r\n" + ka + "\r\n$1\r\n0\r\n"))
	other := tu.Dial(t, a.Addr)
	other.Send([]byte("*3\r\n$5\r\nBLPOP\r\n$" + strconv.Itoa(len(ka2)) + "\r\n" + ka2 + "\r\n$1\r\n0\r\n"))
	waitUntil(t, "two blocked clients", func() bool { return a.Srv.BlockedClients() == 2 })
	m2 := m.Clone()
	m2.Slots[cluster.Slot([]byte(ka))] = 2
	m2.Epoch++
	install(m2, a, b)
	r, err := blocked.Read()
	if err != nil || r.String() != moved(ka, b) {
		t.Fatalf("blocked client got %s %v, want %s", r, err, moved(ka, b))
	}
	// the other one still waits, and is served by a push
	ca := tu.Dial(t, a.Addr)
	if got := ca.Do("RPUSH", ka2, "x"); got != "(integer) 1" {
		t.Fatalf("RPUSH = %s", got)
	}
	if r, err := other.Read(); err != nil || r.String() != `["`+ka2+`" "x"]` {
		t.Fatalf("other blocked client got %s %v", r, err)
	}
	waitUntil(t, "no blocked client", func() bool { return a.Srv.BlockedClients() == 0 })
	// the redirected connection is usable
	if got := blocked.Do("GET", ka); got != moved(ka, b) {
		t.Errorf("GET after redirect = %s", got)
	}
}

func TestClusterMemcached(t *testing.T) {
	a, b, c, m, nowhere := threeNodes(t, true)
	ka := keyIn(t, m, 1, "a")
	kb := keyIn(t, m, 2, "b")
	movedMC := func(k string, n *cnode) string { return "SERVER_ERROR MOVED " + slotOf(k) + " " + n.mcAddr + "|" }
	ma := mcDial(t, a.mcAddr)
	mcRun(t, ma, []mcCase{
		{"set " + ka + " 0 0 1\r\nx\r\n", "STORED|"},
		{"get " + ka + "\r\n", "VALUE " + ka + " 0 1|x|END|"},
		{"get " + kb + "\r\n", movedMC(kb, b)},
		{"get " + ka + " " + kb + "\r\n", movedMC(kb, b)}, // the whole command
		{"gets " + kb + " " + ka + "\r\n", movedMC(kb, b)},
		{"set " + kb + " 0 0 1\r\ny\r\n", movedMC(kb, b)},
		{"set " + kb + " 0 0 1 noreply\r\ny\r\n", movedMC(kb, b)}, // sent even with noreply
		{"delete " + kb + "\r\n", movedMC(kb, b)},
		{"incr " + kb + " 1\r\n", movedMC(kb, b)},
		{"touch " + kb + " 10\r\n", movedMC(kb, b)},
		{"mg " + kb + " v\r\n", movedMC(kb, b)},
		{"ms " + kb + " 1\r\nz\r\n", movedMC(kb, b)},
		{"get " + nowhere + "\r\n", "SERVER_ERROR CLUSTERDOWN Hash slot not served|"},
		{"version\r\n", "VERSION 1.6.21|"},
	})
	// the replica of shard 1 serves reads, redirects writes
	mc := mcDial(t, c.mcAddr)
	mcRun(t, mc, []mcCase{
		{"get " + ka + "\r\n", "END|"},
		{"mg " + ka + " v\r\n", "EN|"},
		{"set " + ka + " 0 0 1\r\nx\r\n", movedMC(ka, a)},
		{"gat 10 " + ka + "\r\n", movedMC(ka, a)},
		{"mg " + ka + " v T10\r\n", movedMC(ka, a)},
		{"get " + kb + "\r\n", movedMC(kb, b)},
	})
	// a node without a map
	d := startClusterNode(t, "node-d", true)
	md := mcDial(t, d.mcAddr)
	mcRun(t, md, []mcCase{
		{"get " + ka + "\r\n", "SERVER_ERROR CLUSTERDOWN The cluster is down|"},
		{"set " + ka + " 0 0 1\r\nx\r\n", "SERVER_ERROR CLUSTERDOWN The cluster is down|"},
	})
	// without a memcached address in the map, MOVED names the RESP one
	m2 := m.Clone()
	m2.Nodes["node-b"].MCAddr = ""
	m2.Epoch++
	install(m2, a)
	mcRun(t, ma, []mcCase{{"get " + kb + "\r\n", "SERVER_ERROR MOVED " + slotOf(kb) + " " + b.Addr + "|"}})
}

// ownerOf returns the node that is the primary of key's shard in m.
func ownerOf(m *cluster.Map, key string, nodes []*cnode) *cnode {
	id := m.Shards[int(m.Slots[cluster.Slot([]byte(key))])].Primary
	for _, n := range nodes {
		if n.id == id {
			return n
		}
	}
	return nil
}

// A go-redis v9 ClusterClient against three in-process shards: it reads
// the topology with CLUSTER SLOTS and routes by slot; single-slot
// multi-key commands (hash tags) and pipelines across shards work.
func TestClusterGoRedisClient(t *testing.T) {
	nodes := []*cnode{startClusterNode(t, "p1", false), startClusterNode(t, "p2", false), startClusterNode(t, "p3", false)}
	m := buildMap(t, 3, nodes...)
	install(m, nodes...)
	ctx := context.Background()
	rc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{nodes[0].Addr}})
	defer rc.Close()

	const n = 300
	for i := 0; i < n; i++ {
		if err := rc.Set(ctx, "key:"+strconv.Itoa(i), "v"+strconv.Itoa(i), 0).Err(); err != nil {
			t.Fatalf("SET key:%d: %v", i, err)
		}
	}
	for i := 0; i < n; i++ {
		if v, err := rc.Get(ctx, "key:"+strconv.Itoa(i)).Result(); err != nil || v != "v"+strconv.Itoa(i) {
			t.Fatalf("GET key:%d = %q, %v", i, v, err)
		}
	}
	if err := rc.MSet(ctx, "{user1}.a", "1", "{user1}.b", "2").Err(); err != nil {
		t.Fatal(err)
	}
	if v, err := rc.MGet(ctx, "{user1}.a", "{user1}.b", "{user1}.c").Result(); err != nil || fmt.Sprint(v) != "[1 2 <nil>]" {
		t.Fatalf("MGET = %v, %v", v, err)
	}
	// a pipeline spanning the three shards, split by the client
	var gets []*redis.StringCmd
	cmds, err := rc.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i := 0; i < 100; i++ {
			p.Set(ctx, "pipe:"+strconv.Itoa(i), i, 0)
			gets = append(gets, p.Get(ctx, "pipe:"+strconv.Itoa(i)))
		}
		return nil
	})
	if err != nil || len(cmds) != 200 {
		t.Fatalf("pipeline: %d commands, %v", len(cmds), err)
	}
	for i, g := range gets {
		if g.Val() != strconv.Itoa(i) {
			t.Fatalf("pipelined GET pipe:%d = %q", i, g.Val())
		}
	}
	// Every key is on the primary of its slot's shard, nowhere else.
	total := 0
	for _, nd := range nodes {
		total += int(nd.Srv.DB().KeyCount())
		if nd.Srv.DB().KeyCount() == 0 {
			t.Errorf("%s holds no key", nd.id)
		}
	}
	if total != n+2+100 {
		t.Errorf("%d keys over the nodes, want %d", total, n+2+100)
	}
	for i := 0; i < n; i += 17 {
		k := "key:" + strconv.Itoa(i)
		if got := tu.Dial(t, ownerOf(m, k, nodes).Addr).Do("EXISTS", k); got != "(integer) 1" {
			t.Errorf("%s not on its owner: %s", k, got)
		}
	}

	// redis-cli -c follows MOVED the same way.
	if _, err := exec.LookPath("redis-cli"); err != nil {
		t.Log("redis-cli not installed: skipping its check")
		return
	}
	other := keyIn(t, m, 2, "cli:")
	_, port, _ := strings.Cut(nodes[0].Addr, ":")
	for _, step := range [][2]string{{"SET " + other + " hello", "OK"}, {"GET " + other, "hello"}} {
		out, err := exec.Command("redis-cli", append([]string{"-c", "-h", "127.0.0.1", "-p", port}, strings.Fields(step[0])...)...).CombinedOutput()
		if err != nil || strings.TrimSpace(string(out)) != step[1] {
			t.Errorf("redis-cli -c %s: %q %v", step[0], out, err)
		}
	}
	if got := tu.Dial(t, ownerOf(m, other, nodes).Addr).Do("GET", other); got != `"hello"` {
		t.Errorf("redis-cli's SET landed elsewhere: %s", got)
	}
}

// Three shards with a replica each (really replicating: replicaof). A
// ReadOnly ClusterClient reads from the replicas; after shard 1's
// replica is promoted in a new map (and the replication roles are
// swapped, as the agent will do), a client still holding the old
// topology follows MOVED to the new primary.
func TestClusterGoRedisFailover(t *testing.T) {
	var ps, rs []*cnode
	for i := 1; i <= 3; i++ {
		ps = append(ps, startClusterNode(t, "p"+strconv.Itoa(i), false))
	}
	for i, p := range ps {
		rs = append(rs, startClusterNode(t, "r"+strconv.Itoa(i+1), false, "replicaof", "127.0.0.1 "+strings.Split(p.Addr, ":")[1]))
	}
	all := append(append([]*cnode{}, ps...), rs...)
	m := buildMap(t, 3, all...) // p1..p3 primaries of shards 1..3, r1..r3 their replicas
	for i := range ps {
		if sh := m.Shards[i+1]; sh.Primary != ps[i].id || len(sh.Replicas) != 1 || sh.Replicas[0] != rs[i].id {
			t.Fatalf("shard %d: %+v", i+1, sh)
		}
	}
	install(m, all...)
	for _, r := range rs {
		rc := tu.Dial(t, r.Addr)
		waitUntil(t, r.id+"'s link", func() bool { return infoField(t, rc, "replication", "master_link_status") == "up" })
	}
	ctx := context.Background()
	rc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{ps[1].Addr}})
	defer rc.Close()
	const n = 200
	for i := 0; i < n; i++ {
		if err := rc.Set(ctx, "key:"+strconv.Itoa(i), "v"+strconv.Itoa(i), 0).Err(); err != nil {
			t.Fatalf("SET key:%d: %v", i, err)
		}
	}
	for i, p := range ps { // every write on the replicas (WAIT would only cover this test's own connection's)
		waitUntil(t, rs[i].id+" caught up", func() bool { return rs[i].Srv.ReplOffset() == p.Srv.ReplOffset() })
	}

	// Reads from the replicas (READONLY connections).
	ro := redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{ps[0].Addr}, ReadOnly: true})
	defer ro.Close()
	for i := 0; i < n; i++ {
		if v, err := ro.Get(ctx, "key:"+strconv.Itoa(i)).Result(); err != nil || v != "v"+strconv.Itoa(i) {
			t.Fatalf("ReadOnly GET key:%d = %q, %v", i, v, err)
		}
	}
	replicaGets := int64(0)
	for _, r := range rs {
		replicaGets += cmdCalls(t, tu.Dial(t, r.Addr), "get")
	}
	if replicaGets == 0 { // go-redis sends them to a replica unless it marked it failing
		t.Errorf("replicas served none of the %d ReadOnly GETs", n)
	}
	t.Logf("replicas served %d of the %d ReadOnly GETs", replicaGets, n)

	// Fail shard 1 over to r1: the map first, then the replication roles.
	p1, r1 := ps[0], rs[0]
	m2 := m.Clone()
	if err := m2.Apply(cluster.Command{Op: cluster.OpPromote, ShardID: 1, NodeID: r1.id, Epoch: m.Shards[1].Epoch}); err != nil {
		t.Fatal(err)
	}
	if got := tu.Dial(t, r1.Addr).Do("REPLICAOF", "NO", "ONE"); got != "OK" {
		t.Fatalf("REPLICAOF NO ONE = %s", got)
	}
	install(m2, all...)
	p1c := tu.Dial(t, p1.Addr)
	if got := p1c.Do("REPLICAOF", "127.0.0.1", strings.Split(r1.Addr, ":")[1]); got != "OK" {
		t.Fatalf("REPLICAOF = %s", got)
	}
	k1 := keyIn(t, m, 1, "after:")
	if err := rc.Set(ctx, k1, "new", 0).Err(); err != nil {
		t.Fatalf("SET %s after the failover: %v", k1, err)
	}
	if got := tu.Dial(t, r1.Addr).Do("GET", k1); got != `"new"` {
		t.Errorf("SET after failover did not land on the new primary: %s", got)
	}
	if rej := cmdRejected(t, p1c, "set"); rej < 1 {
		t.Errorf("the old primary redirected no SET (rejected_calls=%d)", rej)
	}
	for i := 0; i < n; i++ {
		k := "key:" + strconv.Itoa(i)
		if v, err := rc.Get(ctx, k).Result(); err != nil || v != "v"+strconv.Itoa(i) {
			t.Fatalf("GET %s after failover = %q, %v", k, v, err)
		}
		if err := rc.Set(ctx, k, "w", 0).Err(); err != nil {
			t.Fatalf("SET %s after failover: %v", k, err)
		}
	}
	if v, err := rc.Get(ctx, keyIn(t, m, 1, "key:")).Result(); err != nil || v != "w" {
		t.Errorf("GET after rewrite = %q, %v", v, err)
	}
}

// cmdCalls and cmdRejected read INFO commandstats for one command.
func cmdCalls(t *testing.T, c *tu.Conn, name string) int64 { return cmdStat(t, c, name, "calls") }
func cmdRejected(t *testing.T, c *tu.Conn, name string) int64 {
	return cmdStat(t, c, name, "rejected_calls")
}

func cmdStat(t *testing.T, c *tu.Conn, name, field string) int64 {
	t.Helper()
	r, err := c.DoReply("INFO", "commandstats")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(r.Str, "\r\n") {
		rest, ok := strings.CutPrefix(l, "cmdstat_"+name+":")
		if !ok {
			continue
		}
		for _, kv := range strings.Split(rest, ",") {
			if k, v, _ := strings.Cut(kv, "="); k == field {
				n, _ := strconv.ParseInt(v, 10, 64)
				return n
			}
		}
	}
	return 0
}

// While it loads its snapshot, a cluster-mode node redirects keys it
// does not serve (Redis Cluster checks before -LOADING) and answers
// -LOADING for its own.
func TestClusterRedirectWhileLoading(t *testing.T) {
	dir := t.TempDir()
	saveSample(t, dir, 200)
	mport := tu.FreePort(t)
	srv, addr := newServer(t, "--dir", dir, "--key-load-delay", "50000", "--memcached-port", strconv.Itoa(mport), "--cluster-enabled", "yes")
	self := &cnode{Node: &tu.Node{Addr: addr}, id: "self", mcAddr: "127.0.0.1:" + strconv.Itoa(mport)}
	other := &cnode{Node: &tu.Node{Addr: "127.0.0.1:1"}, id: "z-other", mcAddr: "127.0.0.1:2"}
	m := buildMap(t, 2, self, other)
	srv.SetClusterMap(m.Clone(), "self") // before Start: the map is there from the first command
	started := make(chan error, 1)
	go func() { started <- srv.Start(context.Background()) }()
	t.Cleanup(func() { srv.Close() })
	var c *tu.Conn
	for c == nil {
		if d, err := dialOnce(addr); err == nil {
			d.Close()
			c = tu.Dial(t, addr)
		} else {
			time.Sleep(2 * time.Millisecond)
		}
	}
	mine, theirs := keyIn(t, m, 1, "key:"), keyIn(t, m, 2, "key:")
	const loading = "(error) LOADING Redis is loading the dataset in memory"
	tu.Run(t, c, []tu.Case{
		{Cmd: []string{"GET", mine}, Want: loading},
		{Cmd: []string{"GET", theirs}, Want: moved(theirs, other)},
		{Cmd: tu.C("MULTI"), Want: "OK"},
		{Cmd: []string{"SET", theirs, "1"}, Want: moved(theirs, other)},
		{Cmd: tu.C("EXEC"), Want: "(error) EXECABORT Transaction discarded because of previous errors."},
	})
	mc := mcDial(t, self.mcAddr)
	mcRun(t, mc, []mcCase{
		{"get " + mine + "\r\n", "SERVER_ERROR LOADING Redis is loading the dataset in memory|"},
		{"get " + theirs + "\r\n", "SERVER_ERROR MOVED " + slotOf(theirs) + " 127.0.0.1:2|"},
	})
	steps(t, c, "CONFIG SET key-load-delay 0", "OK")
	if err := <-started; err != nil {
		t.Fatal(err)
	}
	tu.Run(t, c, []tu.Case{{Cmd: []string{"GET", mine}, Want: `"value-` + strings.TrimPrefix(mine, "key:") + `"`}})
	if got := c.Do("DBSIZE"); got != "(integer) 200" { // every key loaded, whatever its slot
		t.Errorf("DBSIZE = %s", got)
	}
}
