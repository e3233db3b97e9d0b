package server_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"shoal/internal/cluster"
	"shoal/internal/manager"
)

// moveGate holds the moves ready for an op (manager.Config.MoveGate)
// while closed.
type moveGate struct{ cutover, done atomic.Bool }

func (g *moveGate) open(op string, _ int) bool {
	switch op {
	case cluster.OpMigrateCutover:
		return !g.cutover.Load()
	case cluster.OpMigrateDone:
		return !g.done.Load()
	}
	return true
}

func (g *moveGate) config(c *manager.Config) { c.MoveGate = g.open }

// moveRig is a cluster of two shards (a primary each, no replica) whose
// moves wait at the gate, and a slot of shard 1 to move: its hash tag,
// writable on the source.
type moveRig struct {
	c        *tcluster
	g        *moveGate
	tag      string
	slot     int
	src, dst *fnode
}

// newMoveRig starts the rig; hold says which steps the gate holds at
// first (cluster.OpMigrateCutover, OpMigrateDone).
func newMoveRig(t *testing.T, prefix string, hold ...string) *moveRig {
	g := &moveGate{}
	for _, op := range hold {
		switch op {
		case cluster.OpMigrateCutover:
			g.cutover.Store(true)
		case cluster.OpMigrateDone:
			g.done.Store(true)
		}
	}
	c := newTClusterWith(t, 1, 2, 0, g.config)
	r := &moveRig{c: c, g: g, tag: c.keyIn(1, prefix)}
	r.slot = cluster.SlotString(r.tag)
	r.src, _ = c.shard(1)
	r.dst, _ = c.shard(2)
	waitWritable(t, r.src, "{"+r.tag+"}:0")
	return r
}

// migStatus is CLUSTER MIGRATION slot on n, as strings.
func migStatus(n *fnode, slot int) map[string]string {
	out := map[string]string{}
	r, err := n.rdb.Do(context.Background(), "CLUSTER", "MIGRATION", slot).Slice()
	if err != nil {
		return out
	}
	for i := 0; i+1 < len(r); i += 2 {
		out[fmt.Sprint(r[i])] = fmt.Sprint(r[i+1])
	}
	return out
}

func countInSlot(n *fnode, slot int) int64 {
	v, err := n.rdb.Do(context.Background(), "CLUSTER", "COUNTKEYSINSLOT", slot).Int64()
	if err != nil {
		return -1
	}
	return v
}

func (c *tcluster) leaderMap() *cluster.Map {
	mp, err := c.client().Map(context.Background(), 0, 0)
	if err != nil {
		c.t.Fatal(err)
	}
	return mp
}

// Pause, resume and cancel of a move, at copying and at cutover.
func TestSlotMovePauseResumeCancel(t *testing.T) {
	rig := newMoveRig(t, "pause", cluster.OpMigrateCutover)
	c, g, tag, slot, src, dst := rig.c, rig.g, rig.tag, rig.slot, rig.src, rig.dst
	mc := c.client()
	ctx := context.Background()
	// The source's moves go through its limiter (runtime setting).
	if err := src.rdb.ConfigSet(ctx, "migrate-max-bytes-per-sec", "10mb").Err(); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 100; i++ {
		if err := src.set("{"+tag+"}:"+strconv.Itoa(i), "v"); err != nil {
			t.Fatal(err)
		}
	}
	streaming := func() bool {
		st := migStatus(dst, slot)
		return st["import_state"] == "streaming" && st["import_keys"] == "100"
	}
	if _, err := mc.Migrate(ctx, []int{slot}, 2); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the target streams the slot", streaming)
	// Several slots at once: [map_epoch, [slot, lsn, fenced, state,
	// applied, keys, error, move], ...], in the order asked.
	// The two queries agree once the import has applied the stream's
	// last change (the applied LSN moves on after the keys arrive).
	other := (slot + 1) % cluster.NumSlots
	var r []any
	var got string
	var single map[string]string
	waitUntil(t, "the two queries agree", func() bool {
		var err error
		r, err = dst.rdb.Do(ctx, "CLUSTER", "MIGRATION", other, slot).Slice()
		if err != nil || len(r) != 3 {
			t.Fatalf("CLUSTER MIGRATION of two slots: %v %v", r, err)
		}
		single = migStatus(dst, slot)
		got = fmt.Sprint(r[2])
		return got == fmt.Sprintf("[%d %s 0 streaming %s 100  %s]", slot, single["slot_lsn"], single["import_applied"], single["import_move"])
	})
	if got := fmt.Sprint(r[1]); got != fmt.Sprintf("[%d 0 0 none 0 0  ]", other) {
		t.Errorf("a slot not moving: %s", got)
	}

	// Pause at copying: the target stops importing and drops its copy.
	ms, err := mc.MigrationAction(ctx, "pause", []int{slot}, false)
	if err != nil || len(ms) != 1 || !ms[0].Paused {
		t.Fatalf("pause: %v %+v", err, ms)
	}
	waitUntil(t, "the paused import stops and its copy goes", func() bool {
		return migStatus(dst, slot)["import_state"] == "none" && countInSlot(dst, slot) == 0
	})
	if err := src.set("{"+tag+"}:paused", "w"); err != nil {
		t.Fatalf("the source refuses writes to a paused move's slot: %v", err)
	}
	// Resume: a fresh copy, with the write made while paused.
	if _, err := mc.MigrationAction(ctx, "resume", nil, true); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the resumed move streams again", func() bool {
		st := migStatus(dst, slot)
		return st["import_state"] == "streaming" && countInSlot(dst, slot) == 101
	})

	// Pause at cutover: the source unfences.
	g.done.Store(true)
	g.cutover.Store(false)
	waitUntil(t, "cutover", func() bool { return c.leaderMap().Fenced(slot) })
	waitUntil(t, "the source fences the slot", func() bool {
		err := src.set("{"+tag+"}:x", "y")
		return err != nil && strings.HasPrefix(err.Error(), "TRYAGAIN")
	})
	g.cutover.Store(true)
	if _, err := mc.MigrationAction(ctx, "pause", []int{slot}, false); err != nil {
		t.Fatal(err)
	}
	if mp := c.leaderMap(); mp.Fenced(slot) || !mp.Migrations[slot].Paused {
		t.Fatalf("after pause in cutover: %+v", mp.Migrations[slot])
	}
	waitWritable(t, src, "{"+tag+"}:x")

	// Cancel: the move goes, the source keeps the slot, the target drops its copy.
	if _, err := mc.MigrationAction(ctx, "resume", []int{slot}, false); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "streaming again", func() bool { return countInSlot(dst, slot) == 102 })
	if _, err := mc.MigrationAction(ctx, "cancel", []int{slot}, false); err != nil {
		t.Fatal(err)
	}
	mp := c.leaderMap()
	if mp.Migrations[slot] != nil || int(mp.Slots[slot]) != 1 {
		t.Fatalf("after cancel: owner %d, move %+v", mp.Slots[slot], mp.Migrations[slot])
	}
	waitUntil(t, "the target drops the cancelled copy", func() bool { return countInSlot(dst, slot) == 0 })
	if n := countInSlot(src, slot); n != 102 {
		t.Fatalf("the source holds %d keys after cancel, want 102", n)
	}
	if _, err := mc.MigrationAction(ctx, "cancel", []int{slot}, false); err == nil {
		t.Fatal("cancel of a slot not moving accepted")
	}

	// And the move still works afterwards.
	g.cutover.Store(false)
	g.done.Store(false)
	if _, err := mc.Migrate(ctx, []int{slot}, 2); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the slot moved", func() bool {
		mp := c.leaderMap()
		return int(mp.Slots[slot]) == 2 && mp.Migrations[slot] == nil
	})
	if n := countInSlot(dst, slot); n != 102 {
		t.Fatalf("target holds %d keys, want 102", n)
	}
	// Every byte sent was granted first (equal once no piece is in flight).
	waitUntil(t, "bytes sent = bytes granted", func() bool {
		info := src.rdb.Info(ctx, "replication").Val()
		sent, granted := infoLine(info, "migrate_sent_bytes"), infoLine(info, "migrate_limiter_granted_bytes")
		return sent != "" && sent != "0" && sent == granted
	})
	if v := src.rdb.ConfigGet(ctx, "migrate-max-bytes-per-sec").Val()["migrate-max-bytes-per-sec"]; v != "10485760" {
		t.Fatalf("migrate-max-bytes-per-sec = %q", v)
	}
}

// migrate-max-bytes-per-sec holds back the images, not the changes made
// after them: a slot's last changes before its cutover are not queued
// behind the limiter's debt (at a low rate that stretched the cutover's
// write pause to hundreds of ms).
func TestSlotMoveLimitSparesTheStream(t *testing.T) {
	rig := newMoveRig(t, "limit", cluster.OpMigrateCutover)
	c, tag, slot, src, dst := rig.c, rig.tag, rig.slot, rig.src, rig.dst
	ctx := context.Background()
	for i := 0; i < 10; i++ {
		if err := src.set("{"+tag+"}:"+strconv.Itoa(i), "v"); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.client().Migrate(ctx, []int{slot}, 2); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the target streams the slot", func() bool {
		st := migStatus(dst, slot)
		return st["import_state"] == "streaming" && st["import_keys"] == "10"
	})
	// 1 byte/s: an image piece of 64 KiB would wait 18 hours for it.
	if err := src.rdb.ConfigSet(ctx, "migrate-max-bytes-per-sec", "1").Err(); err != nil {
		t.Fatal(err)
	}
	big := strings.Repeat("x", 512<<10)
	for i := 0; i < 4; i++ {
		if err := src.set("{"+tag+"}:big"+strconv.Itoa(i), big); err != nil {
			t.Fatal(err)
		}
	}
	waitUntil(t, "the target has the 2 MiB written after the image", func() bool {
		return countInSlot(dst, slot) == 14
	})
	waitUntil(t, "the target applied the source's last change to the slot", func() bool {
		return migStatus(dst, slot)["import_applied"] == migStatus(src, slot)["slot_lsn"]
	})
	// Counted all the same: every byte sent was granted.
	info := src.rdb.Info(ctx, "replication").Val()
	if !strings.Contains(info, "migrate_limiter_granted_bytes:") || infoLine(info, "migrate_sent_bytes") != infoLine(info, "migrate_limiter_granted_bytes") {
		t.Fatalf("sent and granted bytes differ: %s", info)
	}
}

// A slot of a move streams (and may be cut over) only once every image
// of its connection is in: before that the source sends no position, and
// a slot taken for caught up waited, fenced, for the other slots' images.
func TestSlotMoveStreamsAfterEveryImage(t *testing.T) {
	c := newTClusterWith(t, 1, 2, 0, nil)
	ctx := context.Background()
	src, _ := c.shard(1)
	dst, _ := c.shard(2)
	// Two slots of shard 1, the small one first (images go in slot order).
	a, b := c.keyIn(1, "small"), c.keyIn(1, "large")
	if cluster.SlotString(a) > cluster.SlotString(b) {
		a, b = b, a
	}
	sa, sb := cluster.SlotString(a), cluster.SlotString(b)
	waitWritable(t, src, "{"+a+"}:0")
	if err := src.set("{"+a+"}:0", "v"); err != nil {
		t.Fatal(err)
	}
	// Values that do not compress: the image is as large as they are.
	rnd := rand.New(rand.NewPCG(1, 2))
	big := make([]byte, 200<<10)
	for i := range big {
		big[i] = byte(rnd.Uint32())
	}
	for i := 0; i < 4; i++ {
		if err := src.set("{"+b+"}:"+strconv.Itoa(i), string(big)); err != nil {
			t.Fatal(err)
		}
	}
	// 1 byte/s: the large slot's image stops after its first piece.
	if err := src.rdb.ConfigSet(ctx, "migrate-max-bytes-per-sec", "1").Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.client().Migrate(ctx, []int{sa, sb}, 2); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the small slot's image is in", func() bool { return migStatus(dst, sa)["import_keys"] == "1" })
	// The source writes to the small slot; its move must not cut over.
	if err := src.set("{"+a+"}:1", "w"); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 20; i++ {
		if st := migStatus(dst, sa)["import_state"]; st != "image" {
			t.Fatalf("the small slot is %q while the large one's image is still coming (%v, %v)", st, migStatus(dst, sa), migStatus(dst, sb))
		}
		if mp := c.leaderMap(); mp.Migrations[sa] == nil || mp.Migrations[sa].State != cluster.MigrateCopying {
			t.Fatalf("the small slot's move left copying before the large slot's image: %+v", mp.Migrations[sa])
		}
		time.Sleep(10 * time.Millisecond) // samples over a while: nothing to wait for
	}
	if err := src.rdb.ConfigSet(ctx, "migrate-max-bytes-per-sec", "0").Err(); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "both slots moved", func() bool {
		mp := c.leaderMap()
		return int(mp.Slots[sa]) == 2 && int(mp.Slots[sb]) == 2 && len(mp.Migrations) == 0
	})
	if n, m := countInSlot(dst, sa), countInSlot(dst, sb); n != 2 || m != 4 {
		t.Fatalf("the target holds %d and %d keys, want 2 and 4", n, m)
	}
}
