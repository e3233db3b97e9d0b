package cluster

import (
	"encoding/json"
	"errors"
	"testing"
)

func lease(id string, at int64, ms int) Command {
	return Command{Op: OpMigratorLease, Migrator: id, Time: at, LeaseMs: ms}
}

// refused applies c, which must fail with ErrMigratorLease (when lease
// is set) and leave the map as it was.
func refused(t *testing.T, m *Map, c Command, leaseErr bool) {
	t.Helper()
	before, _ := json.Marshal(m)
	err := m.Apply(c)
	if err == nil {
		t.Fatalf("%s by %q at %d accepted", c.Op, c.Migrator, c.Time)
	}
	if leaseErr != errors.Is(err, ErrMigratorLease) {
		t.Fatalf("%s by %q: error %v, want ErrMigratorLease %v", c.Op, c.Migrator, err, leaseErr)
	}
	if after, _ := json.Marshal(m); string(after) != string(before) {
		t.Fatalf("refused %s changed the map", c.Op)
	}
}

func TestMigratorLeaseRules(t *testing.T) {
	m := NewMap()
	refused(t, m, lease("", 1000, 5000), false) // no id
	refused(t, m, lease("a", 0, 5000), false)   // no time
	refused(t, m, lease("a", 1000, 0), false)   // no duration
	refused(t, m, lease("a", 1000, MaxLeaseMs+1), false)

	mustApply(t, m, lease("a", 1000, 5000))
	if m.MigratorLease.Holder != "a" || m.MigratorLease.Until != 6000 {
		t.Fatalf("lease %+v", m.MigratorLease)
	}
	// Held: nobody else gets it until it expires, to the millisecond.
	refused(t, m, lease("b", 1000, 5000), true)
	refused(t, m, lease("b", 5999, 5000), true)
	// The holder renews; a renewal at an earlier clock (a new leader
	// behind) never shortens it.
	mustApply(t, m, lease("a", 3000, 5000))
	if m.MigratorLease.Until != 8000 {
		t.Fatalf("renewed until %d, want 8000", m.MigratorLease.Until)
	}
	mustApply(t, m, lease("a", 2000, 1000))
	if m.MigratorLease.Until != 8000 {
		t.Fatalf("an earlier renewal moved the expiry to %d", m.MigratorLease.Until)
	}
	if m.LeaseHolder(7999) != "a" || m.LeaseHolder(8000) != "" {
		t.Fatal("LeaseHolder disagrees with the expiry")
	}
	// Expired: a new holder takes over, with its own expiry.
	mustApply(t, m, lease("b", 8000, 2000))
	if m.MigratorLease.Holder != "b" || m.MigratorLease.Until != 10000 {
		t.Fatalf("takeover: %+v", m.MigratorLease)
	}
	refused(t, m, lease("a", 9000, 5000), true)
	// Release: only by the holder; then anyone at once.
	refused(t, m, Command{Op: OpMigratorRelease, Migrator: "a"}, true)
	mustApply(t, m, Command{Op: OpMigratorRelease, Migrator: "b"})
	if m.MigratorLease != nil {
		t.Fatal("released lease still in the map")
	}
	refused(t, m, Command{Op: OpMigratorRelease, Migrator: "b"}, true)
	mustApply(t, m, lease("a", 9000, 5000))

	// The lease survives a clone and a JSON round trip (Raft snapshots).
	c := m.Clone()
	c.MigratorLease.Holder = "x"
	if m.MigratorLease.Holder != "a" {
		t.Fatal("Clone shares the lease")
	}
	b, _ := json.Marshal(m)
	back := NewMap()
	if err := json.Unmarshal(b, back); err != nil || *back.MigratorLease != *m.MigratorLease {
		t.Fatalf("round trip: %v %+v", err, back.MigratorLease)
	}
}

// Only the lease holder, within its lease, steps a move; operators'
// pause, resume and cancel need no lease.
func TestMigratorLeaseGuardsSteps(t *testing.T) {
	m := twoShards(t)
	slot := 5
	mustApply(t, m, Command{Op: OpMigrate, Slots: []int{slot, slot + 1}, ShardID: 2})
	// Before any lease: steps without an id apply (log entries written
	// before leases existed).
	mustApply(t, m, Command{Op: OpMigrateCutover, Slot: slot + 1})
	mustApply(t, m, Command{Op: OpMigrateDone, Slot: slot + 1})
	// A step naming a migrator needs the lease even when nobody holds it.
	refused(t, m, Command{Op: OpMigrateCutover, Slot: slot, Migrator: "a", Time: 1000}, true)

	mustApply(t, m, lease("a", 1000, 5000))
	for _, c := range []Command{
		{Op: OpMigrateCutover, Slot: slot},                            // no id once a lease exists
		{Op: OpMigrateCutover, Slot: slot, Migrator: "b", Time: 2000}, // not the holder
		{Op: OpMigrateCutover, Slot: slot, Migrator: "a", Time: 6000}, // expired
		{Op: OpMigrateCancel, Slot: slot, Migrator: "b", Time: 2000, Error: "x"},
	} {
		refused(t, m, c, true)
	}
	mustApply(t, m, Command{Op: OpMigrateCutover, Slot: slot, Migrator: "a", Time: 2000})
	mustApply(t, m, Command{Op: OpMigrateCancel, Slot: slot, Migrator: "a", Time: 2500, Error: "timeout"})
	if mg := m.Migrations[slot]; mg.State != MigrateCopying || mg.Attempts != 1 {
		t.Fatalf("after the holder's cancel: %+v", mg)
	}
	// b takes over after the expiry; a's late steps are refused.
	mustApply(t, m, lease("b", 6000, 5000))
	refused(t, m, Command{Op: OpMigrateCutover, Slot: slot, Migrator: "a", Time: 6100}, true)
	mustApply(t, m, Command{Op: OpMigrateCutover, Slot: slot, Migrator: "b", Time: 6100})
	refused(t, m, Command{Op: OpMigrateDone, Slots: []int{slot}, Migrator: "a", Time: 6200}, true)
	mustApply(t, m, Command{Op: OpMigrateDone, Slots: []int{slot}, Migrator: "b", Time: 6200})
	if m.Slots[slot] != 2 || m.Migrations[slot] != nil {
		t.Fatalf("slot %d on shard %d, move %+v", slot, m.Slots[slot], m.Migrations[slot])
	}
	// Operators act without the lease.
	mustApply(t, m, Command{Op: OpMigrate, Slots: []int{slot}, ShardID: 1})
	mustApply(t, m, Command{Op: OpMigratePause, Slots: []int{slot}})
	mustApply(t, m, Command{Op: OpMigrateResume, All: true})
	mustApply(t, m, Command{Op: OpMigrateCancel, Slots: []int{slot}, Drop: true})
	if m.Migrations[slot] != nil {
		t.Fatal("operator cancel kept the move")
	}
}
