package server_test

import (
	"context"
	"strconv"
	"strings"
	"testing"

	"shoal/internal/cluster"
	"shoal/internal/resp"
	tu "shoal/internal/testutil"
)

// installMoves hands every node its own copy of m, as its agent would
// (importers included).
func installMoves(m *cluster.Map, nodes ...*cnode) {
	for _, n := range nodes {
		n.Srv.InstallMapMoves(m.Clone(), n.id)
	}
}

// pushPair starts a (primary of shard 1) and b (shard 2) with a map in
// which the slot of the returned key moves from 1 to 2 (copying), waits
// until b's import of it streams, and returns the map, the key, its slot
// and the move's ident.
func pushPair(t *testing.T) (a, b *cnode, m *cluster.Map, key string, slot int, ident string) {
	t.Helper()
	a = startClusterNode(t, "node-a", false)
	b = startClusterNode(t, "node-b", false)
	m = buildMap(t, 2, a, b)
	installMoves(m, a, b)
	key = keyIn(t, m, 1, "push")
	slot = cluster.Slot([]byte(key))
	ca := tu.Dial(t, a.Addr)
	tu.Run(t, ca, []tu.Case{{Cmd: []string{"SET", key, "v1"}, Want: "OK"}})
	if err := m.Apply(cluster.Command{Op: cluster.OpMigrate, Slots: []int{slot}, ShardID: 2}); err != nil {
		t.Fatal(err)
	}
	installMoves(m, a, b)
	ident = cluster.MoveIdent(m.Migrations[slot])
	cb := tu.Dial(t, b.Addr)
	waitUntil(t, "the target's import streams", func() bool {
		st := cb.Do("CLUSTER", "MIGRATION", strconv.Itoa(slot))
		return strings.Contains(st, `"streaming"`)
	})
	return a, b, m, key, slot, ident
}

// slotLSN is CLUSTER MIGRATION's slot_lsn on c.
func slotLSN(t *testing.T, c *tu.Conn, slot int) uint64 {
	t.Helper()
	r, err := c.DoReply("CLUSTER", "MIGRATION", strconv.Itoa(slot))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(r.Elems); i += 2 {
		if r.Elems[i].Str == "slot_lsn" {
			return uint64(r.Elems[i+1].Int)
		}
	}
	t.Fatal("no slot_lsn")
	return 0
}

// CLUSTER MOVEFENCE and MOVEDONE: bad arguments, the refusals, and a
// fence and a flip taken ahead of the map, which the map then replaces.
func TestMovePushCommands(t *testing.T) {
	a, b, m, key, slot, ident := pushPair(t)
	s := strconv.Itoa(slot)
	ca, cb := tu.Dial(t, a.Addr), tu.Dial(t, b.Addr)
	e := m.Epoch
	next, after := strconv.FormatUint(e+1, 10), strconv.FormatUint(e+2, 10)

	tu.Run(t, ca, []tu.Case{
		{Cmd: []string{"CLUSTER", "MOVEFENCE", next, s}, Want: "(error) ERR wrong number of arguments for 'cluster|movefence' command"},
		{Cmd: []string{"CLUSTER", "MOVEFENCE", next, s, ident, "7"}, Want: "(error) ERR wrong number of arguments for 'cluster|movefence' command"},
		{Cmd: []string{"CLUSTER", "MOVEFENCE", "x", s, ident}, Want: "(error) ERR Invalid map epoch"},
		{Cmd: []string{"CLUSTER", "MOVEFENCE", "0", s, ident}, Want: "(error) ERR Invalid map epoch"},
		{Cmd: []string{"CLUSTER", "MOVEFENCE", next, "16384", ident}, Want: "(error) ERR Invalid or out of range slot"},
		{Cmd: []string{"CLUSTER", "MOVEFENCE", next, s, ident, s, ident}, Want: "(error) ERR Slot " + s + " specified multiple times"},
		{Cmd: []string{"CLUSTER", "MOVEFENCE", next, s, ""}, Want: "(error) ERR Empty move ident"},
		{Cmd: []string{"CLUSTER", "MOVEDONE", next, s, ident}, Want: "(error) ERR wrong number of arguments for 'cluster|movedone' command"},
		{Cmd: []string{"CLUSTER", "MOVEDONE", next, s, ident, "-1"}, Want: "(error) ERR Invalid LSN"},
		{Cmd: []string{"MULTI"}, Want: "OK"},
		{Cmd: []string{"CLUSTER", "MOVEFENCE", next, s, ident}, Want: "QUEUED"},
		{Cmd: []string{"EXEC"}, Want: "[(error) ERR CLUSTER MOVEFENCE cannot run in a transaction]"},
	})
	fenced := func(c *tu.Conn, epoch, ident string) int64 {
		t.Helper()
		r, err := c.DoReply("CLUSTER", "MOVEFENCE", epoch, s, ident)
		if err != nil || len(r.Elems) != 2 || len(r.Elems[1].Elems) != 8 {
			t.Fatalf("CLUSTER MOVEFENCE: %v %v", r, err)
		}
		if got := r.Elems[1].Elems[0].Int; got != int64(slot) {
			t.Fatalf("status of slot %d, want %d", got, slot)
		}
		return r.Elems[1].Elems[2].Int
	}
	// Refused: another attempt, a map already as new, the target.
	if fenced(ca, next, "1/1/1/7") != 0 || fenced(ca, strconv.FormatUint(e, 10), ident) != 0 || fenced(cb, next, ident) != 0 {
		t.Fatal("a fence was taken that should not be")
	}
	tu.Run(t, ca, []tu.Case{{Cmd: []string{"SET", key, "v2"}, Want: "OK"}})
	lsn := slotLSN(t, ca, slot)
	// A flip is refused while the source is not fenced.
	l := strconv.FormatUint(lsn, 10)
	tu.Run(t, ca, []tu.Case{{Cmd: []string{"CLUSTER", "MOVEDONE", after, s, ident, l}, Want: "[(integer) 0]"}})

	// The fence: writes wait, reads go on; the slot's LSN is final.
	if fenced(ca, next, ident) != 1 {
		t.Fatal("the fence was not taken")
	}
	tu.Run(t, ca, []tu.Case{
		{Cmd: []string{"SET", key, "v3"}, Want: "(error) TRYAGAIN Slot " + s + " is moving to another shard: writes resume in a moment"},
		{Cmd: []string{"GET", key}, Want: `"v2"`},
		{Cmd: []string{"CLUSTER", "MOVEDONE", after, s, ident, strconv.FormatUint(lsn-1, 10)}, Want: "[(integer) 0]"},
	})
	if got := infoField(t, ca, "cluster", "cluster_cutover_pushed_fences"); got != "1" {
		t.Fatalf("cluster_cutover_pushed_fences %s", got)
	}
	// The target takes the flip once its import has applied lsn.
	tu.Run(t, cb, []tu.Case{
		{Cmd: []string{"CLUSTER", "MOVEDONE", after, s, ident, strconv.FormatUint(lsn+1000, 10)}, Want: "[(integer) 0]"},
		{Cmd: []string{"CLUSTER", "MOVEDONE", after, s, "1/1/1/7", l}, Want: "[(integer) 0]"},
	})
	waitUntil(t, "the target applied the slot's last change", func() bool {
		return cb.Do("CLUSTER", "MOVEDONE", after, s, ident, l) == "[(integer) 1]"
	})
	tu.Run(t, cb, []tu.Case{
		{Cmd: []string{"GET", key}, Want: `"v2"`},
		{Cmd: []string{"SET", key, "v4"}, Want: "OK"},
	})
	tu.Run(t, ca, []tu.Case{
		{Cmd: []string{"CLUSTER", "MOVEDONE", after, s, ident, l}, Want: "[(integer) 1]"},
		{Cmd: []string{"CLUSTER", "MOVEDONE", after, s, ident, l}, Want: "[(integer) 1]"}, // again: already
		{Cmd: []string{"GET", key}, Want: moved(key, b)},
	})
	if got := infoField(t, ca, "cluster", "cluster_cutover_pauses"); got != "1" {
		t.Fatalf("cluster_cutover_pauses on the source %s", got)
	}
	if got := infoField(t, cb, "cluster", "cluster_cutover_pushed_flips"); got != "1" {
		t.Fatalf("cluster_cutover_pushed_flips on the target %s", got)
	}
	// The maps of the cutover and the flip change nothing more; the
	// source drops its copy with the flip's map.
	if err := m.Apply(cluster.Command{Op: cluster.OpMigrateCutover, Slot: slot}); err != nil {
		t.Fatal(err)
	}
	installMoves(m, a, b)
	tu.Run(t, ca, []tu.Case{{Cmd: []string{"GET", key}, Want: moved(key, b)}})
	tu.Run(t, cb, []tu.Case{{Cmd: []string{"GET", key}, Want: `"v4"`}})
	if err := m.Apply(cluster.Command{Op: cluster.OpMigrateDone, Slot: slot}); err != nil {
		t.Fatal(err)
	}
	installMoves(m, a, b)
	tu.Run(t, cb, []tu.Case{
		{Cmd: []string{"GET", key}, Want: `"v4"`},
		{Cmd: []string{"CLUSTER", "MOVEDONE", after, s, ident, l}, Want: "[(integer) 1]"}, // the map has it
	})
	waitUntil(t, "the source dropped the slot", func() bool {
		return ca.Do("CLUSTER", "COUNTKEYSINSLOT", s) == "(integer) 0"
	})
	tu.Run(t, ca, []tu.Case{{Cmd: []string{"GET", key}, Want: moved(key, b)}})
}

// A pushed fence lasts only until a map replaces it: here the map that
// cancels the attempt (a new ident) unfences the slot though its epoch
// is below the fence's.
func TestMovePushFenceReplacedByMap(t *testing.T) {
	a, b, m, key, slot, ident := pushPair(t)
	s := strconv.Itoa(slot)
	ca := tu.Dial(t, a.Addr)
	far := strconv.FormatUint(m.Epoch+10, 10)
	r, err := ca.DoReply("CLUSTER", "MOVEFENCE", far, s, ident)
	if err != nil || r.Elems[1].Elems[2].Int != 1 {
		t.Fatalf("fence: %v %v", r, err)
	}
	tu.Run(t, ca, []tu.Case{{Cmd: []string{"SET", key, "x"}, Want: "(error) TRYAGAIN Slot " + s + " is moving to another shard: writes resume in a moment"}})
	// A map of the same attempt, older than the fence: still fenced.
	if err := m.Apply(cluster.Command{Op: cluster.OpSetConfig, Key: "heartbeat_ms", Value: 200}); err != nil {
		t.Fatal(err)
	}
	installMoves(m, a, b)
	tu.Run(t, ca, []tu.Case{{Cmd: []string{"SET", key, "x"}, Want: "(error) TRYAGAIN Slot " + s + " is moving to another shard: writes resume in a moment"}})
	if err := m.Apply(cluster.Command{Op: cluster.OpMigrateCancel, Slot: slot, Error: "test", Drop: true}); err != nil {
		t.Fatal(err)
	}
	installMoves(m, a, b)
	tu.Run(t, ca, []tu.Case{{Cmd: []string{"SET", key, "x"}, Want: "OK"}})
	if got := infoField(t, ca, "cluster", "cluster_cutover_pauses"); got != "1" {
		t.Fatalf("cluster_cutover_pauses %s", got)
	}
}

// The flip reaches both primaries of a move from the migrator (CLUSTER
// MOVEFENCE, MOVEDONE) while their maps are held back: the source
// answers MOVED and the target serves the slot before either has the
// map of the cutover or of the flip; once the maps come, nothing
// changes but the source's copy, which goes.
func TestSlotMoveFlipWithoutMap(t *testing.T) {
	rig := newMoveRig(t, "flip", cluster.OpMigrateCutover)
	c, g, tag, slot, src, dst := rig.c, rig.g, rig.tag, rig.slot, rig.src, rig.dst
	ctx := context.Background()
	key := "{" + tag + "}:k"
	if err := src.set(key, "v1"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.client().Migrate(ctx, []int{slot}, 2); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the target's import streams", func() bool { return migStatus(dst, slot)["import_state"] == "streaming" })
	info := func(n *fnode, field string) float64 { return infoNum(n.rdb.Info(ctx, "cluster").Val(), field) }
	// The held cutover leaves the map still, so once both nodes have its
	// epoch no map is on its way to them when the hold begins (the
	// target can start streaming from the source's push before its long
	// poll brings the move's map).
	waitUntil(t, "both nodes have the move's map", func() bool {
		e := float64(c.leaderMap().Epoch)
		return info(src, "cluster_map_epoch") == e && info(dst, "cluster_map_epoch") == e
	})
	c.net.holdMaps(src.key, true)
	c.net.holdMaps(dst.key, true)
	e0s, e0d := info(src, "cluster_map_epoch"), info(dst, "cluster_map_epoch")
	g.cutover.Store(false)
	waitUntil(t, "the target serves the slot", func() bool {
		v, err := dst.rdb.Get(ctx, key).Result()
		return err == nil && v == "v1"
	})
	if err := src.rdb.Get(ctx, key).Err(); err == nil || err.Error() != "MOVED "+strconv.Itoa(slot)+" "+dst.addr {
		t.Fatalf("GET on the source after the flip: %v", err)
	}
	if e1s, e1d := info(src, "cluster_map_epoch"), info(dst, "cluster_map_epoch"); e1s != e0s || e1d != e0d {
		t.Fatalf("a map got through: epochs %v -> %v (source), %v -> %v (target)", e0s, e1s, e0d, e1d)
	}
	if f, s, d := info(src, "cluster_cutover_pushed_fences"), info(src, "cluster_cutover_pushed_flips"), info(dst, "cluster_cutover_pushed_flips"); f != 1 || s != 1 || d != 1 {
		t.Fatalf("pushed: fences %v on the source, flips %v on the source and %v on the target", f, s, d)
	}
	if err := dst.set(key, "v2"); err != nil {
		t.Fatal(err)
	}
	c.net.holdMaps(src.key, false)
	c.net.holdMaps(dst.key, false)
	want := float64(c.leaderMap().Epoch)
	waitUntil(t, "both nodes have the flip's map", func() bool {
		return info(src, "cluster_map_epoch") >= want && info(dst, "cluster_map_epoch") >= want
	})
	waitUntil(t, "the source dropped its copy", func() bool { return countInSlot(src, slot) == 0 })
	if v, err := dst.rdb.Get(ctx, key).Result(); err != nil || v != "v2" {
		t.Fatalf("GET on the target: %q %v", v, err)
	}
	if mp := c.leaderMap(); int(mp.Slots[slot]) != 2 || mp.Migrations[slot] != nil {
		t.Fatalf("the map: slot %d owned by %d, move %+v", slot, mp.Slots[slot], mp.Migrations[slot])
	}
}

// CLUSTER MOVEWAIT: bad arguments; an answer at once when the import has
// applied the LSN or the timeout is 0; otherwise the client (not the
// event loop) waits until the source's next change is applied, or until
// the timeout; a client that goes away while waiting frees nothing else.
func TestMoveWait(t *testing.T) {
	a, b, _, key, slot, ident := pushPair(t)
	s := strconv.Itoa(slot)
	ca, cb := tu.Dial(t, a.Addr), tu.Dial(t, b.Addr)
	tu.Run(t, cb, []tu.Case{
		{Cmd: []string{"CLUSTER", "MOVEWAIT", "0", s, ident}, Want: "(error) ERR wrong number of arguments for 'cluster|movewait' command"},
		{Cmd: []string{"CLUSTER", "MOVEWAIT", "x", s, ident, "1"}, Want: "(error) ERR timeout is not an integer or out of range"},
		{Cmd: []string{"CLUSTER", "MOVEWAIT", "-1", s, ident, "1"}, Want: "(error) ERR timeout is not an integer or out of range"},
		{Cmd: []string{"CLUSTER", "MOVEWAIT", "60001", s, ident, "1"}, Want: "(error) ERR timeout is not an integer or out of range"},
		{Cmd: []string{"CLUSTER", "MOVEWAIT", "0", s, ident, "x"}, Want: "(error) ERR Invalid LSN"},
		{Cmd: []string{"CLUSTER", "MOVEWAIT", "0", s, "", "1"}, Want: "(error) ERR Empty move ident"},
		{Cmd: []string{"CLUSTER", "MOVEWAIT", "0", "16384", ident, "1"}, Want: "(error) ERR Invalid or out of range slot"},
	})
	lsn := slotLSN(t, ca, slot)
	l, next := strconv.FormatUint(lsn, 10), strconv.FormatUint(lsn+1, 10)
	other := strconv.Itoa((slot + 1) % cluster.NumSlots) // not imported here
	waitUntil(t, "the target applied the slot's last change", func() bool {
		return cb.Do("CLUSTER", "MOVEWAIT", "0", s, ident, l) == "[(integer) 1]"
	})
	tu.Run(t, cb, []tu.Case{
		{Cmd: []string{"CLUSTER", "MOVEWAIT", "1000", s, ident, l}, Want: "[(integer) 1]"}, // at once
		{Cmd: []string{"CLUSTER", "MOVEWAIT", "0", s, ident, next}, Want: "[(integer) 0]"},
		{Cmd: []string{"CLUSTER", "MOVEWAIT", "0", s, "1/1/1/7", l}, Want: "[(integer) 0]"},
		{Cmd: []string{"CLUSTER", "MOVEWAIT", "0", other, ident, l, s, ident, l}, Want: "[(integer) 0 (integer) 1]"},
		{Cmd: []string{"CLUSTER", "MOVEWAIT", "20", s, ident, next}, Want: "[(integer) 0]"}, // the timeout
	})
	// Waiting for the next change: the client blocks, the node serves
	// others, and the change's arrival answers it.
	w := tu.Dial(t, b.Addr)
	w.Send(resp.AppendCommand(nil, "CLUSTER", "MOVEWAIT", "10000", s, ident, next))
	waitUntil(t, "the MOVEWAIT client blocks", func() bool { return b.Srv.BlockedClients() == 1 })
	tu.Run(t, cb, []tu.Case{{Cmd: []string{"PING"}, Want: "PONG"}})
	tu.Run(t, ca, []tu.Case{{Cmd: []string{"SET", key, "v2"}, Want: "OK"}})
	if r, err := w.Read(); err != nil || r.String() != "[(integer) 1]" {
		t.Fatalf("MOVEWAIT after the change: %v %v", r, err)
	}
	tu.Run(t, w, []tu.Case{{Cmd: []string{"PING"}, Want: "PONG"}}) // unblocked
	if got := infoField(t, cb, "cluster", "cluster_cutover_waited_slots"); got == "0" {
		t.Fatalf("cluster_cutover_waited_slots %s", got)
	}
	// A waiting client that disconnects is dropped.
	gone := tu.Dial(t, b.Addr)
	gone.Send(resp.AppendCommand(nil, "CLUSTER", "MOVEWAIT", "10000", s, ident, strconv.FormatUint(lsn+100, 10)))
	waitUntil(t, "the MOVEWAIT client blocks", func() bool { return b.Srv.BlockedClients() == 1 })
	gone.C.Close()
	waitUntil(t, "the closed client is no longer blocked", func() bool { return b.Srv.BlockedClients() == 0 })
	tu.Run(t, cb, []tu.Case{{Cmd: []string{"PING"}, Want: "PONG"}})
}

// The move's control commands run off the event loop: while CLUSTER
// MIGRATION waits for a slot's lock (held here, as the import or the
// workload holds it), another client of the same (only) loop is served,
// and the waiting client gets its reply once the lock is free.
func TestMoveStatusRunsOffTheEventLoop(t *testing.T) {
	n := startClusterNode(t, "node-a", false, "io-threads", "1")
	db := n.Srv.DB()
	db.Lock(42)
	a, b := tu.Dial(t, n.Addr), tu.Dial(t, n.Addr)
	a.Send(resp.AppendCommand(nil, "CLUSTER", "MIGRATION", "41", "42"))
	waitUntil(t, "CLUSTER MIGRATION waits off the loop", func() bool { return n.Srv.BlockedClients() == 1 })
	tu.Run(t, b, []tu.Case{{Cmd: []string{"PING"}, Want: "PONG"}})
	db.Unlock(42)
	if r, err := a.Read(); err != nil || r.String() != `[(integer) 0 [(integer) 41 (integer) 0 (integer) 0 "none" (integer) 0 (integer) 0 "" ""] [(integer) 42 (integer) 0 (integer) 0 "none" (integer) 0 (integer) 0 "" ""]]` {
		t.Fatalf("CLUSTER MIGRATION: %v %v", r, err)
	}
	tu.Run(t, a, []tu.Case{{Cmd: []string{"PING"}, Want: "PONG"}})
	// Inside a transaction it is refused (EXEC holds every slot's lock,
	// which the status takes: the node's loop hung).
	tu.Run(t, a, []tu.Case{
		{Cmd: []string{"MULTI"}, Want: "OK"},
		{Cmd: []string{"CLUSTER", "MIGRATION", "1", "2"}, Want: "QUEUED"},
		{Cmd: []string{"EXEC"}, Want: "[(error) ERR CLUSTER MIGRATION cannot run in a transaction]"},
		{Cmd: []string{"PING"}, Want: "PONG"},
	})
}
