package cluster

import (
	"errors"
	"fmt"
)

// The migrator lease: one migrator at a time drives the slot moves (see
// docs/cluster.md, "Who drives the moves"). The leader manager's built-in
// migrator and any standalone `shoal migrator` processes compete for it
// through the manager; whoever holds it steps every move, the others
// stand by and take over once it expires.
//
// Expiry is judged on the manager's clock, which the leader stamps into
// the command (Command.Time) before proposing it, so Apply stays a pure
// function of the map and the log. Safety does not rest on clocks: a
// step (cutover, done, a migrator's cancel) is applied only when its
// Command.Migrator holds the lease at the command's time, so a migrator
// that lost it (paused, partitioned, killed) can never step a move its
// successor drives. Clocks only decide when a takeover may happen: a new
// leader whose clock is behind delays it, one ahead advances it.
type MigratorLease struct {
	Holder string `json:"holder"`   // migrator id
	Until  int64  `json:"until_ms"` // expiry, Unix ms on the proposing leader's clock
}

// ManagerMigrator is the holder id of the managers' built-in migrators.
// They share it: only the Raft leader runs its built-in migrator and only
// the leader can commit, so a new leader's takes over from its
// predecessor's at once. A standalone migrator may not use it.
const ManagerMigrator = "manager"

// MaxLeaseMs bounds a lease's duration.
const MaxLeaseMs = 10 * 60 * 1000

// Lease ops (Command.Op).
const (
	// OpMigratorLease takes or renews the lease: Migrator, Time, LeaseMs.
	// Granted when nobody holds it, the holder renews, or the current
	// lease has expired at Time.
	OpMigratorLease = "migrator-lease"
	// OpMigratorRelease gives the lease up (Migrator must hold it), so a
	// standby takes over without waiting for the expiry.
	OpMigratorRelease = "migrator-release"
)

// ErrMigratorLease refuses a lease or a step: another migrator holds the
// lease, or the proposer's has expired.
var ErrMigratorLease = errors.New("migrator lease not held")

func (m *Map) migratorLease(c Command) error {
	if c.Migrator == "" || c.Time <= 0 {
		return errors.New("migrator-lease needs a migrator id and a time")
	}
	if c.LeaseMs <= 0 || c.LeaseMs > MaxLeaseMs {
		return fmt.Errorf("lease of %d ms out of range (1 to %d)", c.LeaseMs, MaxLeaseMs)
	}
	until := c.Time + int64(c.LeaseMs)
	cur := m.MigratorLease
	switch {
	case cur == nil || c.Time >= cur.Until:
	case cur.Holder == c.Migrator:
		// A renewal never shortens the lease (a new leader's clock may be
		// behind the one that granted it).
		until = max(until, cur.Until)
	default:
		return fmt.Errorf("%w: held by %s for %d ms more", ErrMigratorLease, cur.Holder, cur.Until-c.Time)
	}
	m.MigratorLease = &MigratorLease{Holder: c.Migrator, Until: until}
	return nil
}

func (m *Map) migratorRelease(c Command) error {
	if cur := m.MigratorLease; cur == nil || cur.Holder != c.Migrator {
		return fmt.Errorf("%w: %q does not hold it", ErrMigratorLease, c.Migrator)
	}
	m.MigratorLease = nil
	return nil
}

// checkStepper refuses a migrator's step unless its proposer holds an
// unexpired lease at the command's time. A step without a migrator id
// is accepted only while no lease was ever taken: log entries written
// before leases existed replay as they applied then.
func (m *Map) checkStepper(c Command) error {
	cur := m.MigratorLease
	if c.Migrator == "" && cur == nil {
		return nil
	}
	if cur == nil || cur.Holder != c.Migrator {
		holder := "nobody"
		if cur != nil {
			holder = cur.Holder
		}
		return fmt.Errorf("%w: %q steps a move, the lease is %s's", ErrMigratorLease, c.Migrator, holder)
	}
	if c.Time >= cur.Until {
		return fmt.Errorf("%w: %s's lease expired %d ms ago", ErrMigratorLease, c.Migrator, c.Time-cur.Until)
	}
	return nil
}

// LeaseHolder returns the lease's holder at now (Unix ms), "" if none.
func (m *Map) LeaseHolder(now int64) string {
	if l := m.MigratorLease; l != nil && now < l.Until {
		return l.Holder
	}
	return ""
}
