package manager

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"shoal/internal/cluster"
	"shoal/internal/migrator"
)

// The manager's side of the migrators (internal/migrator): its built-in
// migrator, run by the leader unless Config.DisableMigrator, and the HTTP
// API standalone `shoal migrator` processes drive the moves through.
// Both propose the same commands; the leader stamps them with its clock
// (cluster.Command.Time), by which the map judges the migrator lease.

// runMigrator runs the built-in migrator until the manager stops; it
// stands by while this manager does not lead.
func (m *Manager) runMigrator() {
	defer m.wg.Done()
	g, err := migrator.New(migrator.Config{ID: cluster.ManagerMigrator, Lease: m.cfg.MigratorLease,
		Logger: m.cfg.Logger.With("id", m.cfg.ID), MoveGate: m.cfg.MoveGate,
		NodeAuth: m.cfg.NodeAuth, NodeTLS: m.cfg.NodeTLS}, localMigratorAPI{m})
	if err != nil {
		m.log.Error("built-in migrator not started", "err", err)
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-m.stop
		cancel()
	}()
	g.Run(ctx)
}

// localMigratorAPI is migrator.Manager on the leader itself.
type localMigratorAPI struct{ m *Manager }

func (a localMigratorAPI) Map(context.Context) (*cluster.Map, error) {
	if !a.m.leading() {
		return nil, ErrNotLeader
	}
	return a.m.Map(), nil
}

func (a localMigratorAPI) Lease(_ context.Context, id string, d time.Duration) (*cluster.Map, error) {
	return a.m.migratorPropose(cluster.Command{Op: cluster.OpMigratorLease, Migrator: id, LeaseMs: int(d.Milliseconds())})
}

func (a localMigratorAPI) Release(_ context.Context, id string) error {
	_, err := a.m.migratorPropose(cluster.Command{Op: cluster.OpMigratorRelease, Migrator: id})
	return err
}

func (a localMigratorAPI) Step(_ context.Context, id string, c cluster.Command) (*cluster.Map, error) {
	c.Migrator = id
	return a.m.migratorPropose(c)
}

// migratorPropose proposes a migrator's command stamped with the
// leader's clock and returns the map after it.
func (m *Manager) migratorPropose(c cluster.Command) (*cluster.Map, error) {
	switch c.Op {
	case cluster.OpMigratorLease, cluster.OpMigratorRelease, cluster.OpMigrateCutover, cluster.OpMigrateDone:
	case cluster.OpMigrateCancel:
		if len(c.Slots) > 0 || c.All || c.Drop {
			return nil, errors.New("a migrator cancels one attempt (slot_id, error), not moves")
		}
	default:
		return nil, fmt.Errorf("%q is not a migrator's op", c.Op)
	}
	if c.Migrator == "" {
		return nil, errors.New("no migrator id")
	}
	if !m.leading() {
		return nil, ErrNotLeader
	}
	c.Time = time.Now().UnixMilli()
	if l := m.Map().MigratorLease; c.Op == cluster.OpMigratorLease && l != nil && l.Holder != c.Migrator && c.Time < l.Until {
		// Refused without a Raft entry: standbys ask every few ticks.
		return nil, fmt.Errorf("%w: held by %s for %d ms more", cluster.ErrMigratorLease, l.Holder, l.Until-c.Time)
	}
	if err := m.propose(c); err != nil {
		return nil, err
	}
	// Counted here, on the leader, whichever migrator stepped (metrics.go).
	switch c.Op {
	case cluster.OpMigrateDone:
		m.met.movesDone.Add(int64(max(1, len(c.Slots))))
	case cluster.OpMigrateCancel:
		m.met.movesFailed.Add(1)
	}
	return m.Map(), nil
}

// handleMigrator is POST /v1/migrator/{lease,release,step}: a standalone
// migrator's lease and steps. lease: {"id", "lease_ms"}; release: {"id"};
// step: {"id", "op", "slot_id", "slots", "error"}. Each returns {"epoch"}
// of the map after the command (not the map: with thousands of moves
// queued it is megabytes; the migrator long-polls it); 409 when the
// lease is another's.
func (m *Manager) handleMigrator(w http.ResponseWriter, r *http.Request) {
	var req struct {
		ID      string `json:"id"`
		LeaseMs int    `json:"lease_ms"`
		Op      string `json:"op"`
		Slot    int    `json:"slot_id"`
		Slots   []int  `json:"slots"`
		Error   string `json:"error"`
	}
	if err := decode(r, &req); err != nil {
		m.fail(w, err)
		return
	}
	if req.ID == cluster.ManagerMigrator || strings.TrimSpace(req.ID) == "" {
		m.fail(w, fmt.Errorf("migrator id %q not allowed (%q is the managers' own)", req.ID, cluster.ManagerMigrator))
		return
	}
	var c cluster.Command
	switch r.PathValue("action") {
	case "lease":
		c = cluster.Command{Op: cluster.OpMigratorLease, Migrator: req.ID, LeaseMs: req.LeaseMs}
	case "release":
		c = cluster.Command{Op: cluster.OpMigratorRelease, Migrator: req.ID}
	case "step":
		c = cluster.Command{Op: req.Op, Migrator: req.ID, Slot: req.Slot, Slots: req.Slots, Error: req.Error}
		if req.Op != cluster.OpMigrateCutover && req.Op != cluster.OpMigrateDone && req.Op != cluster.OpMigrateCancel {
			m.fail(w, fmt.Errorf("%q is not a step", req.Op))
			return
		}
	default:
		m.fail(w, fmt.Errorf("unknown migrator action %q (lease, release or step)", r.PathValue("action")))
		return
	}
	mp, err := m.migratorPropose(c)
	if errors.Is(err, cluster.ErrMigratorLease) {
		writeJSON(w, http.StatusConflict, apiError{Error: err.Error()})
		return
	}
	if err != nil {
		m.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]uint64{"epoch": mp.Epoch})
}

// RemoteMigrator is migrator.Manager over the managers' HTTP API: what a
// standalone `shoal migrator` drives the moves through. Watch (run by the
// migrator) long-polls the map's window view (the moves under way: what
// a migrator steps), so each map crosses the network once, not once per
// tick, and without the thousands of moves queued behind the window.
type RemoteMigrator struct {
	C *Client

	mu      sync.Mutex
	cur     *cluster.Map  // the newest map seen (never goes back in epoch)
	lastOK  time.Time     // the watch's last answer
	watched bool          // Watch runs: Map serves cur
	changed chan struct{} // closed and replaced when cur changes
}

// staleAfter: Map fails once the watch has not heard from a manager for
// this long (its long polls last 30 s).
const staleAfter = 40 * time.Second

// newest keeps mp if it is newer than what was seen: a follower's map
// may lag the leader's, and a migrator that saw its own step applied must
// not act on a map from before it.
func (r *RemoteMigrator) newest(mp *cluster.Map) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lastOK = time.Now()
	if r.changed == nil {
		r.changed = make(chan struct{})
	}
	if r.cur == nil || mp.Epoch > r.cur.Epoch {
		r.cur = mp
		close(r.changed)
		r.changed = make(chan struct{})
	}
}

// Watch keeps the map fresh until ctx ends.
func (r *RemoteMigrator) Watch(ctx context.Context) {
	r.mu.Lock()
	r.watched = true
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		r.watched = false
		r.mu.Unlock()
	}()
	for ctx.Err() == nil {
		var after uint64
		r.mu.Lock()
		if r.cur != nil {
			after = r.cur.Epoch
		}
		r.mu.Unlock()
		mp, err := r.C.WindowMap(ctx, after, 30*time.Second)
		if err != nil {
			select {
			case <-ctx.Done():
			case <-time.After(200 * time.Millisecond):
			}
			continue
		}
		r.newest(mp)
	}
}

// Map returns the watched map (fetched once if the watch has none yet).
func (r *RemoteMigrator) Map(ctx context.Context) (*cluster.Map, error) {
	r.mu.Lock()
	cur, last, watched := r.cur, r.lastOK, r.watched
	r.mu.Unlock()
	if watched && cur != nil && time.Since(last) < staleAfter {
		return cur, nil
	}
	mp, err := r.C.WindowMap(ctx, 0, 0)
	if err != nil {
		return nil, err
	}
	r.newest(mp)
	return r.atLeast(ctx, 0)
}

// atLeast returns the newest map once its epoch is at least epoch (the
// watch delivers it), fetching it after a second without.
func (r *RemoteMigrator) atLeast(ctx context.Context, epoch uint64) (*cluster.Map, error) {
	deadline := time.After(time.Second)
	for {
		r.mu.Lock()
		cur, ch := r.cur, r.changed
		if ch == nil {
			r.changed = make(chan struct{})
			ch = r.changed
		}
		r.mu.Unlock()
		if cur != nil && cur.Epoch >= epoch {
			return cur, nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-deadline:
			mp, err := r.C.WindowMap(ctx, 0, 0)
			if err != nil {
				return nil, err
			}
			r.newest(mp)
			deadline = time.After(time.Second)
		}
	}
}

// call posts a migrator action and returns the map after it, once the
// watch has it; committed (if set) gets its epoch before.
func (r *RemoteMigrator) call(ctx context.Context, action string, body map[string]any, committed func(uint64)) (*cluster.Map, error) {
	var reply struct {
		Epoch uint64 `json:"epoch"`
	}
	if err := r.C.do(ctx, http.MethodPost, "/v1/migrator/"+action, mustJSON(body), &reply); err != nil {
		return nil, err
	}
	if committed != nil {
		committed(reply.Epoch)
	}
	return r.atLeast(ctx, reply.Epoch)
}

func (r *RemoteMigrator) Lease(ctx context.Context, id string, d time.Duration) (*cluster.Map, error) {
	return r.call(ctx, "lease", map[string]any{"id": id, "lease_ms": d.Milliseconds()}, nil)
}

func (r *RemoteMigrator) Release(ctx context.Context, id string) error {
	var reply struct{}
	return r.C.do(ctx, http.MethodPost, "/v1/migrator/release", mustJSON(map[string]any{"id": id}), &reply)
}

func (r *RemoteMigrator) Step(ctx context.Context, id string, c cluster.Command) (*cluster.Map, error) {
	return r.StepCommitted(ctx, id, c, nil)
}

// StepCommitted is Step telling committed the epoch of the map with the
// step as soon as the leader answers, before the watch brings that map
// (migrator.Committer): the migrator pushes a flip to the nodes meanwhile.
func (r *RemoteMigrator) StepCommitted(ctx context.Context, id string, c cluster.Command, committed func(uint64)) (*cluster.Map, error) {
	return r.call(ctx, "step", map[string]any{"id": id, "op": c.Op, "slot_id": c.Slot, "slots": c.Slots, "error": c.Error}, committed)
}
