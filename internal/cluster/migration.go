package cluster

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
)

// Slot moves (see docs/cluster.md, "Moving slots"). A move's state lives
// in the map so that whichever manager leads drives it on, and every node
// learns from its map which slots it imports and which are fenced:
//
//	copying  the target's primary pulls the slot from the source's
//	         primary: an image of the slot, then the source's changes to
//	         it. The source owns the slot and serves it.
//	cutover  the source refuses writes to the slot (-TRYAGAIN) from the
//	         moment it installs this map (or hears it from the migrator
//	         first); the target applies the source's last changes.
//	done     the owner flips to the target in the same command that ends
//	         the move; the source drops its copy.
//
// A move that fails (a party crashed, a timeout) is cancelled: it goes
// back to copying at the shards' current epochs (a new attempt), the
// source unfences, the target drops its partial copy and imports again.
//
// An operator may pause a move (it goes back to copying if it was in
// cutover, the target stops importing and drops what it copied, the
// migrator leaves it alone), resume it (a fresh import), or cancel it:
// the entry goes, the source keeps the slot, the target drops its copy.
// Only the done step changes the owner, in the same command that removes
// the entry, so a move is never half-done: before done the source owns
// the slot, after it the target does.
type Migration struct {
	Slot  int    `json:"slot"`
	From  int    `json:"from"` // source shard
	To    int    `json:"to"`   // target shard
	State string `json:"state"`
	// FromEpoch is the source shard's epoch when the move began: a
	// failover of the source (or the target) cancels the move, since the
	// new primary's history may differ from what the target copied.
	FromEpoch uint64 `json:"from_epoch"`
	ToEpoch   uint64 `json:"to_epoch"`
	Attempts  int    `json:"attempts,omitempty"`
	Error     string `json:"error,omitempty"` // why the last attempt failed
	// Paused: an operator paused the move (shoal ctl migrations pause):
	// nothing imports it and no migrator steps it until resumed.
	Paused bool `json:"paused,omitempty"`
}

// Migration states.
const (
	MigrateCopying = "copying"
	MigrateCutover = "cutover"
)

// Migration ops (Command.Op).
const (
	OpMigrate        = "migrate"         // Slots, ShardID (target): queue moves
	OpMigrateCutover = "migrate-cutover" // Slot
	OpMigrateDone    = "migrate-done"    // Slot: flip the owner
	OpMigrateCancel  = "migrate-cancel"  // Slot, Error: back to copying (retry) or, with Drop, forget it (Slots or All too)
	OpMigratePause   = "migrate-pause"   // Slots or All: stop importing and stepping (cutover goes back to copying)
	OpMigrateResume  = "migrate-resume"  // Slots or All: import again from a fresh image
)

// MoveIdent names one attempt of a move: an importer reports it, so the
// migrator never takes an import of an earlier attempt for this one.
func MoveIdent(mg *Migration) string {
	// Appended, not formatted: the migrator compares it for every move of
	// the window at every tick.
	var b [64]byte
	out := strconv.AppendInt(b[:0], int64(mg.From), 10)
	out = append(out, '/')
	out = strconv.AppendUint(out, mg.FromEpoch, 10)
	out = append(out, '/')
	out = strconv.AppendUint(out, mg.ToEpoch, 10)
	out = append(out, '/')
	out = strconv.AppendInt(out, int64(mg.Attempts), 10)
	return string(out)
}

// MoveWindow is how many moves are under way at once: the migrator steps,
// and target primaries import, only the first MoveWindow moves that are
// not paused, in slot order (Window). A rebalance queues thousands; a
// target imports the window's slots from each source on one stream
// (CLUSTER MOVESYNC), and the migrator steps them together (one map epoch
// for all those ready to cut over, one for all those done). 1024: a
// quarter of a shard's slots move in four windows (bench/migrate.sh: 32
// moved 290 slots/s, 256 1000, 1024 2000, with the workload's share the
// same for 256 and 1024).
const MoveWindow = 1024

// Window returns the moves under way: the first MoveWindow moves that
// are not paused, in slot order.
func (m *Map) Window() []*Migration {
	out := make([]*Migration, 0, min(MoveWindow, len(m.Migrations)))
	if len(m.Migrations) > 2*MoveWindow {
		// Many queued (a rebalance): the slots in order until the window
		// is full, instead of sorting every move at every epoch.
		for s := 0; s < NumSlots && len(out) < MoveWindow; s++ {
			if mg := m.Migrations[s]; mg != nil && !mg.Paused {
				out = append(out, mg)
			}
		}
		return out
	}
	for _, mg := range m.SortedMigrations() {
		if mg.Paused {
			continue
		}
		if len(out) == MoveWindow {
			break
		}
		out = append(out, mg)
	}
	return out
}

// RoutesView returns the map as a proxy needs it: the owners, shards,
// nodes and settings, without the moves. A proxy routes by owner (a
// moving slot's redirections come from its nodes), and a window of
// 1024 moves is ~85 KB of JSON, 0.4 ms to decode, at every epoch of a
// move and every refresh after a redirection, on the proxy's one
// thread. The view shares m's contents: read-only, like m.
func (m *Map) RoutesView() *Map {
	v := *m
	v.Migrations, v.MigratorLease, v.QueuedFrom, v.QueuedMoves = nil, nil, nil, 0
	return &v
}

// WindowView returns the map as storage nodes and migrators need it: the
// moves under way (Window) and, in QueuedFrom, the source shards of the
// others, instead of every move queued (a rebalance of 16384 slots made
// every map ~1.5 MB of JSON, fetched and decoded by every node and proxy
// at every epoch of the move, two of them inside each cutover's write
// pause). The view shares m's contents: read-only, like m.
func (m *Map) WindowView() *Map {
	w := m.Window()
	if len(w) == len(m.Migrations) {
		return m
	}
	v := *m
	v.Migrations = make(map[int]*Migration, len(w))
	for _, mg := range w {
		v.Migrations[mg.Slot] = mg
	}
	from := map[int]bool{}
	for slot, mg := range m.Migrations {
		if v.Migrations[slot] != nil {
			continue
		}
		v.QueuedMoves++
		if !from[mg.From] {
			from[mg.From] = true
			v.QueuedFrom = append(v.QueuedFrom, mg.From)
		}
	}
	slices.Sort(v.QueuedFrom)
	return &v
}

// MaxMigrations bounds the moves queued in the map at once.
const MaxMigrations = NumSlots

func (m *Map) migrate(slots []int, to int) error {
	t := m.Shards[to]
	if t == nil {
		return fmt.Errorf("no shard %d", to)
	}
	if len(slots) == 0 {
		return errors.New("no slots to move")
	}
	if t.Draining {
		return fmt.Errorf("shard %d is draining: no slot moves onto it", to)
	}
	for _, s := range slots {
		if s < 0 || s >= NumSlots {
			return fmt.Errorf("slot %d out of range", s)
		}
		if m.Migrations[s] != nil {
			return fmt.Errorf("slot %d is already moving to shard %d", s, m.Migrations[s].To)
		}
		from := int(m.Slots[s])
		if from == 0 {
			return fmt.Errorf("slot %d has no owner (create the cluster first)", s)
		}
		if from == to {
			return fmt.Errorf("slot %d is already on shard %d", s, to)
		}
	}
	if len(m.Migrations)+len(slots) > MaxMigrations {
		return fmt.Errorf("too many moves queued (%d, at most %d)", len(m.Migrations), MaxMigrations)
	}
	if m.Migrations == nil {
		m.Migrations = map[int]*Migration{}
	}
	for _, s := range slots {
		from := int(m.Slots[s])
		m.Migrations[s] = &Migration{Slot: s, From: from, To: to, State: MigrateCopying,
			FromEpoch: m.Shards[from].Epoch, ToEpoch: t.Epoch}
	}
	return nil
}

// current returns slot's move if both shards are still at the epochs it
// began at.
func (m *Map) current(slot int) (*Migration, error) {
	mg := m.Migrations[slot]
	if mg == nil {
		return nil, fmt.Errorf("slot %d is not moving", slot)
	}
	f, t := m.Shards[mg.From], m.Shards[mg.To]
	if f == nil || t == nil || f.Epoch != mg.FromEpoch || t.Epoch != mg.ToEpoch {
		return nil, fmt.Errorf("slot %d: a shard of the move failed over since it began", slot)
	}
	return mg, nil
}

// migrateBatch applies step to c.Slot, or to every slot of c.Slots (one
// Raft entry for many moves), after checking them all: each must be
// moving in state want at the epochs it began at, or nothing changes.
func (m *Map) migrateBatch(c Command, want string, step func(int) error) error {
	slots := c.Slots
	if len(slots) == 0 {
		slots = []int{c.Slot}
	}
	seen := map[int]bool{}
	for _, s := range slots {
		if seen[s] {
			return fmt.Errorf("slot %d listed twice", s)
		}
		seen[s] = true
		mg, err := m.current(s)
		if err != nil {
			return err
		}
		if mg.State != want {
			return fmt.Errorf("slot %d is in state %s, not %s", s, mg.State, want)
		}
	}
	for _, s := range slots {
		if err := step(s); err != nil {
			return err // not reached: checked above
		}
	}
	return nil
}

// ownMigration returns slot's move for changing it: a clone shares its
// moves with the map it was made from (Clone), so the move is copied
// into this map first.
func (m *Map) ownMigration(slot int) *Migration {
	cp := *m.Migrations[slot]
	m.Migrations[slot] = &cp
	return &cp
}

func (m *Map) migrateCutover(slot int) error {
	mg, err := m.current(slot)
	if err != nil {
		return err
	}
	if mg.State != MigrateCopying {
		return fmt.Errorf("slot %d is in state %s", slot, mg.State)
	}
	if mg.Paused {
		return fmt.Errorf("slot %d: the move is paused", slot)
	}
	m.ownMigration(slot).State = MigrateCutover
	return nil
}

func (m *Map) migrateDone(slot int) error {
	mg, err := m.current(slot)
	if err != nil {
		return err
	}
	if mg.State != MigrateCutover {
		return fmt.Errorf("slot %d is in state %s, not cutover", slot, mg.State)
	}
	m.Slots[slot] = uint16(mg.To)
	delete(m.Migrations, slot)
	return nil
}

// migrateCancel ends an attempt: the move goes back to copying at the
// shards' current epochs (to be tried again), or is forgotten when drop
// is set or a shard is gone.
func (m *Map) migrateCancel(slot int, why string, drop bool) error {
	mg := m.Migrations[slot]
	if mg == nil {
		return fmt.Errorf("slot %d is not moving", slot)
	}
	f, t := m.Shards[mg.From], m.Shards[mg.To]
	if drop || f == nil || t == nil || int(m.Slots[slot]) != mg.From {
		delete(m.Migrations, slot)
		return nil
	}
	mg = m.ownMigration(slot)
	mg.State = MigrateCopying
	mg.FromEpoch, mg.ToEpoch = f.Epoch, t.Epoch
	mg.Attempts++
	mg.Error = why
	return nil
}

// operatorSlots are the moves an operator's pause, resume or cancel
// names: c.Slots, or every move with c.All. Every slot listed must be
// moving.
func (m *Map) operatorSlots(c Command) ([]int, error) {
	if c.All {
		if len(m.Migrations) == 0 {
			return nil, errors.New("no slot moves in progress")
		}
		out := make([]int, 0, len(m.Migrations))
		for s := range m.Migrations {
			out = append(out, s)
		}
		slices.Sort(out)
		return out, nil
	}
	if len(c.Slots) == 0 {
		return nil, errors.New("no slots given (or all)")
	}
	for _, s := range c.Slots {
		if m.Migrations[s] == nil {
			return nil, fmt.Errorf("slot %d is not moving", s)
		}
	}
	return c.Slots, nil
}

// migratePause pauses moves: a move in cutover goes back to copying (the
// source unfences), and nothing imports or steps a paused move.
func (m *Map) migratePause(c Command) error {
	slots, err := m.operatorSlots(c)
	if err != nil {
		return err
	}
	for _, s := range slots {
		mg := m.ownMigration(s)
		mg.Paused = true
		mg.State = MigrateCopying
	}
	return nil
}

// migrateResume resumes paused moves at the shards' current epochs (the
// target imports from a fresh image, so a failover while paused costs
// nothing).
func (m *Map) migrateResume(c Command) error {
	slots, err := m.operatorSlots(c)
	if err != nil {
		return err
	}
	for _, s := range slots {
		if !m.Migrations[s].Paused {
			continue
		}
		mg := m.ownMigration(s)
		mg.Paused = false
		if f, t := m.Shards[mg.From], m.Shards[mg.To]; f != nil && t != nil {
			mg.FromEpoch, mg.ToEpoch = f.Epoch, t.Epoch
		}
	}
	return nil
}

// migrateCancelOp is OpMigrateCancel: the migrator's cancel of one
// attempt (Slot), or an operator's cancel of moves (Slots or All, always
// dropped: the source keeps them).
func (m *Map) migrateCancelOp(c Command) error {
	if len(c.Slots) == 0 && !c.All {
		if !c.Drop {
			// A migrator ending an attempt: only the lease holder may.
			if err := m.checkStepper(c); err != nil {
				return err
			}
		}
		return m.migrateCancel(c.Slot, c.Error, c.Drop)
	}
	slots, err := m.operatorSlots(c)
	if err != nil {
		return err
	}
	for _, s := range slots {
		delete(m.Migrations, s)
	}
	return nil
}

// Importing reports the slots shard imports (moves to it in progress).
func (m *Map) Importing(shard int) []int {
	var out []int
	for s, mg := range m.Migrations {
		if mg.To == shard && !mg.Paused {
			out = append(out, s)
		}
	}
	slices.Sort(out)
	return out
}

// Fenced reports whether slot's writes are fenced on its source (cutover).
func (m *Map) Fenced(slot int) bool {
	mg := m.Migrations[slot]
	return mg != nil && mg.State == MigrateCutover
}

// SortedMigrations lists the moves by slot.
func (m *Map) SortedMigrations() []*Migration {
	out := make([]*Migration, 0, len(m.Migrations))
	for _, mg := range m.Migrations {
		out = append(out, mg)
	}
	slices.SortFunc(out, func(a, b *Migration) int { return a.Slot - b.Slot })
	return out
}
