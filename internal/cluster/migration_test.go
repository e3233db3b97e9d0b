package cluster

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"testing"
)

func twoShards(t *testing.T) *Map {
	t.Helper()
	m := NewMap()
	m.Settings.ReplicasPerShard = 1
	for i := 0; i < 4; i++ {
		register(t, m, fmt.Sprint(7000+i), 1)
	}
	if err := m.Apply(Command{Op: OpCreate, Shards: 2}); err != nil {
		t.Fatal(err)
	}
	return m
}

func mustApply(t *testing.T, m *Map, c Command) {
	t.Helper()
	if err := m.Apply(c); err != nil {
		t.Fatalf("%s: %v", c.Op, err)
	}
}

func TestMigrationLifecycle(t *testing.T) {
	m := twoShards(t)
	slot := 5 // shard 1's
	if m.Slots[slot] != 1 {
		t.Fatalf("slot %d on shard %d", slot, m.Slots[slot])
	}
	for _, bad := range []Command{
		{Op: OpMigrate, Slots: []int{slot}, ShardID: 1}, // already there
		{Op: OpMigrate, Slots: []int{slot}, ShardID: 9}, // no such shard
		{Op: OpMigrate, Slots: []int{NumSlots}, ShardID: 2},
		{Op: OpMigrate, ShardID: 2},
		{Op: OpMigrateCutover, Slot: slot}, // not moving
		{Op: OpMigrateDone, Slot: slot},
	} {
		before, _ := json.Marshal(m)
		if err := m.Apply(bad); err == nil {
			t.Errorf("%+v accepted", bad)
		}
		if after, _ := json.Marshal(m); string(after) != string(before) {
			t.Errorf("%+v changed the map", bad)
		}
	}
	mustApply(t, m, Command{Op: OpMigrate, Slots: []int{slot, slot + 1}, ShardID: 2})
	if err := m.Apply(Command{Op: OpMigrate, Slots: []int{slot}, ShardID: 2}); err == nil {
		t.Fatal("a second move of a moving slot accepted")
	}
	if got := m.Importing(2); len(got) != 2 || got[0] != slot {
		t.Fatalf("Importing(2) = %v", got)
	}
	if err := m.Apply(Command{Op: OpMigrateDone, Slot: slot}); err == nil {
		t.Fatal("done before cutover accepted")
	}
	mustApply(t, m, Command{Op: OpMigrateCutover, Slot: slot})
	if !m.Fenced(slot) || m.Fenced(slot+1) {
		t.Fatal("fence wrong after cutover")
	}
	// A clone shares the moves, but its steps change copies of them.
	c := m.Clone()
	mustApply(t, c, Command{Op: OpMigratePause, Slots: []int{slot}})
	if !c.Migrations[slot].Paused || c.Migrations[slot].State != MigrateCopying {
		t.Fatalf("the clone's move after a pause: %+v", c.Migrations[slot])
	}
	if m.Migrations[slot].Paused || m.Migrations[slot].State != MigrateCutover {
		t.Fatalf("a step of a clone changed the original's move: %+v", m.Migrations[slot])
	}
	mustApply(t, c, Command{Op: OpMigrateResume, Slots: []int{slot}})
	mustApply(t, c, Command{Op: OpMigrateCancel, Slot: slot, Error: "x"})
	if m.Migrations[slot].Paused || m.Migrations[slot].State != MigrateCutover || m.Migrations[slot].Attempts != 0 {
		t.Fatalf("a step of a clone changed the original's move: %+v", m.Migrations[slot])
	}
	mustApply(t, m, Command{Op: OpMigrateDone, Slot: slot})
	if m.Slots[slot] != 2 || m.Migrations[slot] != nil || m.Fenced(slot) {
		t.Fatalf("after done: owner %d, move %v", m.Slots[slot], m.Migrations[slot])
	}
	// JSON round trip keeps the remaining move.
	b, _ := json.Marshal(m)
	var back Map
	if err := json.Unmarshal(b, &back); err != nil || back.Migrations[slot+1] == nil || back.Migrations[slot+1].To != 2 {
		t.Fatalf("round trip: %v %+v", err, back.Migrations)
	}
}

// A failover of the source during a move: cutover and done are refused;
// cancel restarts the move at the new epochs.
func TestMigrationFailoverCancels(t *testing.T) {
	m := twoShards(t)
	slot := 7
	mustApply(t, m, Command{Op: OpMigrate, Slots: []int{slot}, ShardID: 2})
	sh := m.Shards[1]
	mustApply(t, m, Command{Op: OpPromote, ShardID: 1, NodeID: sh.Replicas[0], Epoch: sh.Epoch})
	if err := m.Apply(Command{Op: OpMigrateCutover, Slot: slot}); err == nil {
		t.Fatal("cutover accepted after the source failed over")
	}
	mustApply(t, m, Command{Op: OpMigrateCancel, Slot: slot, Error: "source failed over"})
	mg := m.Migrations[slot]
	if mg == nil || mg.State != MigrateCopying || mg.Attempts != 1 || mg.FromEpoch != m.Shards[1].Epoch || mg.Error == "" {
		t.Fatalf("after cancel: %+v", mg)
	}
	mustApply(t, m, Command{Op: OpMigrateCutover, Slot: slot})
	mustApply(t, m, Command{Op: OpMigrateCancel, Slot: slot, Drop: true})
	if m.Migrations[slot] != nil || m.Slots[slot] != 1 {
		t.Fatal("drop did not forget the move")
	}
}

// Batched cutover/done: all or nothing.
func TestMigrationBatch(t *testing.T) {
	m := twoShards(t)
	mustApply(t, m, Command{Op: OpMigrate, Slots: []int{1, 2, 3}, ShardID: 2})
	mustApply(t, m, Command{Op: OpMigrateCutover, Slots: []int{1, 2}})
	before, _ := json.Marshal(m)
	for _, bad := range []Command{
		{Op: OpMigrateDone, Slots: []int{1, 2, 3}}, // 3 is not in cutover
		{Op: OpMigrateDone, Slots: []int{1, 1}},    // listed twice
		{Op: OpMigrateCutover, Slots: []int{3, 1}}, // 1 already in cutover
	} {
		if err := m.Apply(bad); err == nil {
			t.Errorf("%+v accepted", bad)
		}
		if after, _ := json.Marshal(m); string(after) != string(before) {
			t.Fatalf("%+v changed the map", bad)
		}
	}
	mustApply(t, m, Command{Op: OpMigrateDone, Slots: []int{1, 2}})
	if m.Slots[1] != 2 || m.Slots[2] != 2 || m.Slots[3] != 1 || len(m.Migrations) != 1 {
		t.Fatalf("after the batch: owners %d %d %d, moves %d", m.Slots[1], m.Slots[2], m.Slots[3], len(m.Migrations))
	}
}

// Pause, resume and cancel by an operator.
func TestMigrationPauseResumeCancel(t *testing.T) {
	m := twoShards(t)
	mustApply(t, m, Command{Op: OpMigrate, Slots: []int{1, 2, 3}, ShardID: 2})
	mustApply(t, m, Command{Op: OpMigrateCutover, Slot: 1})
	for _, bad := range []Command{
		{Op: OpMigratePause},                      // nothing named
		{Op: OpMigratePause, Slots: []int{1, 9}},  // 9 is not moving
		{Op: OpMigrateResume, Slots: []int{4}},    // not moving
		{Op: OpMigrateCancel, Slots: []int{2, 7}}, // 7 is not moving
	} {
		before, _ := json.Marshal(m)
		if err := m.Apply(bad); err == nil {
			t.Errorf("%+v accepted", bad)
		}
		if after, _ := json.Marshal(m); string(after) != string(before) {
			t.Errorf("%+v changed the map", bad)
		}
	}
	mustApply(t, m, Command{Op: OpMigratePause, Slots: []int{1, 2}})
	if mg := m.Migrations[1]; !mg.Paused || mg.State != MigrateCopying || m.Fenced(1) {
		t.Fatalf("paused move in cutover: %+v (fenced %v)", mg, m.Fenced(1))
	}
	if got := m.Importing(2); len(got) != 1 || got[0] != 3 {
		t.Fatalf("Importing(2) with 1 and 2 paused = %v", got)
	}
	if err := m.Apply(Command{Op: OpMigrateCutover, Slot: 2}); err == nil {
		t.Fatal("cutover of a paused move accepted")
	}
	// A failover while paused: resume starts again at the new epochs.
	sh := m.Shards[1]
	mustApply(t, m, Command{Op: OpPromote, ShardID: 1, NodeID: sh.Replicas[0], Epoch: sh.Epoch})
	mustApply(t, m, Command{Op: OpMigrateResume, All: true})
	for _, s := range []int{1, 2} {
		if mg := m.Migrations[s]; mg.Paused || mg.FromEpoch != m.Shards[1].Epoch {
			t.Fatalf("resumed move %+v", mg)
		}
	}
	mustApply(t, m, Command{Op: OpMigrateCutover, Slot: 2})
	mustApply(t, m, Command{Op: OpMigrateCancel, Slots: []int{2}})
	if m.Migrations[2] != nil || m.Slots[2] != 1 || m.Fenced(2) {
		t.Fatal("cancel did not roll back the move to the source")
	}
	mustApply(t, m, Command{Op: OpMigrateCancel, All: true})
	if len(m.Migrations) != 0 || m.Slots[1] != 1 || m.Slots[3] != 1 {
		t.Fatalf("cancel all left %v", m.Migrations)
	}
	if err := m.Apply(Command{Op: OpMigratePause, All: true}); err == nil {
		t.Fatal("pause all with no moves accepted")
	}
}

// Window: the first MoveWindow moves not paused, in slot order; a pause
// lets the next one in.
func TestMoveWindow(t *testing.T) {
	m := twoShards(t)
	var slots []int
	for s := 0; s < NumSlots && len(slots) < MoveWindow+10; s++ {
		if m.Slots[s] == 1 {
			slots = append(slots, s)
		}
	}
	mustApply(t, m, Command{Op: OpMigrate, Slots: slots, ShardID: 2})
	w := m.Window()
	if len(w) != MoveWindow || w[0].Slot != slots[0] || w[MoveWindow-1].Slot != slots[MoveWindow-1] {
		t.Fatalf("window of %d moves, %v..", len(w), w[0])
	}
	mustApply(t, m, Command{Op: OpMigratePause, Slots: []int{slots[0]}})
	w = m.Window()
	if len(w) != MoveWindow || w[0].Slot != slots[1] || w[MoveWindow-1].Slot != slots[MoveWindow] {
		t.Fatalf("after a pause: window %d..%d", w[0].Slot, w[len(w)-1].Slot)
	}
}

// WindowView keeps the moves under way and names the sources of the rest.
func TestWindowView(t *testing.T) {
	m := NewMap()
	m.Migrations = map[int]*Migration{}
	for s := 0; s < MoveWindow+20; s++ {
		from := 1
		if s >= MoveWindow+10 {
			from = 3
		}
		m.Migrations[s] = &Migration{Slot: s, From: from, To: 2, State: MigrateCopying}
	}
	m.Migrations[5].Paused = true
	v := m.WindowView()
	if len(v.Migrations) != MoveWindow || v.Migrations[5] != nil || v.Migrations[MoveWindow] == nil || v.Migrations[MoveWindow+1] != nil {
		t.Fatalf("view has %d moves (5: %v, %d: %v)", len(v.Migrations), v.Migrations[5], MoveWindow, v.Migrations[MoveWindow])
	}
	if !slices.Equal(v.QueuedFrom, []int{1, 3}) || v.QueuedMoves != 20 {
		t.Fatalf("queued from %v, %d moves, want [1 3], 20", v.QueuedFrom, v.QueuedMoves)
	}
	if len(m.Migrations) != MoveWindow+20 || m.QueuedFrom != nil {
		t.Fatal("the view changed the map")
	}
	small := NewMap()
	small.Migrations = map[int]*Migration{7: {Slot: 7, From: 1, To: 2, State: MigrateCopying}}
	if small.WindowView() != small {
		t.Fatal("a map whose moves are all under way is its own view")
	}
}

// RoutesView drops the moves and the migrator's lease and keeps what a
// proxy routes by; the map is unchanged.
func TestRoutesView(t *testing.T) {
	m := twoShards(t)
	mustApply(t, m, Command{Op: OpMigrate, Slots: []int{1, 3}, ShardID: 2})
	m.MigratorLease = &MigratorLease{Holder: "g1"}
	v := m.RoutesView()
	if v.Migrations != nil || v.MigratorLease != nil || v.QueuedFrom != nil || v.QueuedMoves != 0 {
		t.Fatalf("the routes view has moves: %+v", v)
	}
	if v.Epoch != m.Epoch || v.Slots != m.Slots || !reflect.DeepEqual(v.Shards, m.Shards) || !reflect.DeepEqual(v.Nodes, m.Nodes) || v.Settings != m.Settings {
		t.Fatal("the routes view lost the routes")
	}
	if len(m.Migrations) != 2 || m.MigratorLease == nil {
		t.Fatal("the view changed the map")
	}
	// What a proxy decodes: no move in the JSON.
	b, err := MarshalMap(v)
	if err != nil || bytes.Contains(b, []byte("migrations")) {
		t.Fatalf("routes view JSON %s %v", b, err)
	}
}

// A long queue (more than two windows) is scanned in slot order instead
// of sorted: the same window either way.
func TestMoveWindowLongQueue(t *testing.T) {
	for _, n := range []int{2 * MoveWindow, 2*MoveWindow + 1, NumSlots} {
		m := NewMap()
		m.Migrations = MigrationSet{}
		for i := range n { // slots all over the table, not in order
			s := i * 7919 % NumSlots
			m.Migrations[s] = &Migration{Slot: s, From: 1, To: 2, State: MigrateCopying, Paused: s%7 == 0}
		}
		var want []*Migration
		for _, mg := range m.SortedMigrations() {
			if !mg.Paused && len(want) < MoveWindow {
				want = append(want, mg)
			}
		}
		if got := m.Window(); !slices.Equal(got, want) {
			t.Fatalf("%d moves: window of %d from slot %d, want %d from %d", n, len(got), got[0].Slot, len(want), want[0].Slot)
		}
	}
}
