// Package migrator drives the slot moves recorded in the cluster map
// (internal/cluster/migration.go; the nodes' side is
// internal/server/migrate.go). The same code runs inside the leader
// manager (its built-in migrator) and as a standalone `shoal migrator`
// process that talks to the managers over HTTP: both see the manager
// through the Manager interface.
//
// The move states are in the map, so a migrator keeps nothing that
// matters: another one carries on where it stopped. What it keeps in
// memory (when a phase began) only bounds the phases' durations. One
// migrator at a time drives the moves: the holder of the migrator lease
// in the map (cluster.MigratorLease); the others stand by and take over
// once the holder stops renewing it.
//
//	copying → cutover  once the target has applied the source's stream up
//	                   to the slot's last change
//	cutover → done     once the source reports the slot fenced (it has
//	                   installed the cutover map: no more writes to it) and
//	                   the target has applied up to the slot's final change
//
// A phase that takes too long, an import that fails, or a shard that
// fails over cancels the attempt (the move goes back to copying).
//
// The cutover's fast path: the nodes learn maps through their long poll,
// and waiting for two maps (the cutover's, then the flip's) and for the
// step between was most of a slot's write pause. So right after a
// cutover commits the migrator fences the sources itself (CLUSTER
// MOVEFENCE), waits for the targets to apply the slots' last changes,
// commits the flip and tells both primaries (CLUSTER MOVEDONE), before
// their maps arrive; nodes of protocol 2 learn every step from the map.
package migrator

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"shoal/internal/acl"
	"shoal/internal/cluster"
	"shoal/internal/resp"
)

// Manager is what a migrator needs from the managers: the in-process
// leader (manager.Manager's built-in migrator) or the HTTP API
// (manager.RemoteMigrator).
type Manager interface {
	// Map returns a recent map; an error (no leader, not leading) makes
	// the migrator stand by for this tick.
	Map(ctx context.Context) (*cluster.Map, error)
	// Lease takes or renews the migrator lease for id for d.
	Lease(ctx context.Context, id string, d time.Duration) (*cluster.Map, error)
	// Release gives the lease up.
	Release(ctx context.Context, id string) error
	// Step proposes a step (OpMigrateCutover, OpMigrateDone,
	// OpMigrateCancel of one attempt) as id and returns the map after it;
	// an error wrapping cluster.ErrMigratorLease means id lost the lease.
	Step(ctx context.Context, id string, c cluster.Command) (*cluster.Map, error)
}

// Committer is a Manager that reports a step's commit before the map
// after it is at hand (a remote manager's map comes through its watch):
// the migrator tells the nodes meanwhile (pushDone).
type Committer interface {
	// StepCommitted is Step that calls committed with the map epoch that
	// has the step as soon as it is committed.
	StepCommitted(ctx context.Context, id string, c cluster.Command, committed func(epoch uint64)) (*cluster.Map, error)
}

// Watcher is a Manager that keeps its map fresh in the background: Run
// runs Watch until it stops.
type Watcher interface {
	Watch(ctx context.Context)
}

// Config configures a migrator.
type Config struct {
	ID     string        // lease holder id (cluster.ManagerMigrator for the managers' own)
	Lease  time.Duration // lease duration; 0: DefaultLease
	Logger *slog.Logger

	// MoveGate, for tests: the migrator holds a move ready for op
	// (cluster.OpMigrateCutover or OpMigrateDone) while it returns false.
	MoveGate func(op string, slot int) bool

	// NodeAuth is sent (AUTH) to storage nodes that require a password
	// when the migrator probes a move (CLUSTER MIGRATION); NodeTLS, if
	// set, makes those probes TLS to the nodes' tls-port (Node.TLSAddr).
	NodeAuth acl.Credentials
	NodeTLS  *tls.Config
}

// DefaultLease is how long a migrator that stops renewing (killed,
// partitioned) keeps the moves from others: a move in cutover stays
// fenced that long at most before a standby takes it on.
const DefaultLease = 5 * time.Second

// Settings (fixed for now; see docs/cluster.md).
const (
	copyTimeout     = 5 * time.Minute // image + catch-up
	cutoverTimeout  = 3 * time.Second // writes to the slot wait this long at most
	importFailGrace = 2 * time.Second // an import reported failed this long is cancelled
	tick            = 50 * time.Millisecond
	cutoverTick     = 5 * time.Millisecond // the step interval while moves are in cutover
	// cutoverWait: after a cutover's commit the migrator fences the
	// sources itself and waits this long at most for the targets to
	// apply the slots' last changes, then proposes the flip of those
	// that did (the others: at the next steps, as before).
	cutoverWait  = 250 * time.Millisecond
	pollEvery    = time.Millisecond       // the targets' status queries meanwhile
	standbyRetry = 200 * time.Millisecond // a standby's lease requests
	// cutoverLag: the copy is caught up enough to cut over when the
	// target has applied the source's stream to within this many records
	// of the slot's last change (under steady writes to the slot it is
	// never exactly caught up; the rest is applied during the cutover).
	cutoverLag = 5000
)

// Migrator is one migrator; Run drives the moves while it holds the lease.
type Migrator struct {
	cfg Config
	api Manager
	log *slog.Logger

	prog   map[int]*moveProgress // by slot; Run's goroutine only
	active atomic.Bool           // the map has moves to drive (the lease keeper renews only then)

	// Counters for /metrics (Stats).
	stats struct {
		mapOK      atomic.Bool   // the last map request succeeded
		window     atomic.Int64  // moves stepped in the last tick
		queued     atomic.Int64  // moves in the map at the last tick (paused ones included)
		cutovers   atomic.Uint64 // moves this migrator took to cutover
		done       atomic.Uint64 // moves this migrator finished
		cancels    atomic.Uint64 // attempts this migrator cancelled
		leaseTaken atomic.Uint64 // times the lease was taken (not renewals)
		leaseLost  atomic.Uint64 // times the lease was found lost
		// Slots that CLUSTER MOVEFENCE found fenced (by it or by the
		// node's map) and that CLUSTER MOVEDONE flipped (once per node).
		pushedFences, pushedFlips atomic.Uint64
	}

	connMu sync.Mutex
	conns  map[string]*statusConn // status connections by node address (probe)

	mu struct {
		sync.Mutex
		// until is when this migrator's lease ends at the latest, on
		// its own clock: counted from before the request that took it
		// was sent, so never later than the manager's expiry.
		until time.Time
		held  bool      // taken and not found lost since
		retry time.Time // a standby asks for the lease again no sooner
	}
}

type moveProgress struct {
	ident       progressKey
	since       time.Time // the current phase's start
	failedSince time.Time
}

// progressKey is a move's attempt and phase (its slot is prog's key).
type progressKey struct {
	state              string
	fromEpoch, toEpoch uint64
	attempts           int
}

// New returns a migrator; Run starts it.
func New(cfg Config, api Manager) (*Migrator, error) {
	if cfg.ID == "" {
		return nil, errors.New("migrator needs an id")
	}
	if cfg.Lease == 0 {
		cfg.Lease = DefaultLease
	}
	if cfg.Lease < 3*tick || cfg.Lease > cluster.MaxLeaseMs*time.Millisecond {
		return nil, fmt.Errorf("migrator lease %s out of range (%s to %s)", cfg.Lease, 3*tick, cluster.MaxLeaseMs*time.Millisecond)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return &Migrator{cfg: cfg, api: api, log: cfg.Logger.With("component", "migrator", "migrator", cfg.ID), prog: map[int]*moveProgress{}}, nil
}

// Run drives moves until ctx ends, then gives the lease up if it holds
// it. Two goroutines: Run's steps the moves every tick; the lease keeper
// renews the lease while there are moves, so a step that waits on a slow
// node (up to 2 s) does not let the lease lapse; and, for a remote
// manager, its map watch (Watcher).
func (g *Migrator) Run(ctx context.Context) {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		g.keepLease(ctx)
	}()
	if w, ok := g.api.(Watcher); ok {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w.Watch(ctx)
		}()
	}
	t := time.NewTimer(tick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			wg.Wait()
			g.closeConns()
			g.mu.Lock()
			held := g.mu.held
			g.mu.Unlock()
			if held {
				rctx, cancel := context.WithTimeout(context.Background(), time.Second)
				if err := g.api.Release(rctx, g.cfg.ID); err == nil {
					g.log.Info("migrator lease released")
				}
				cancel()
			}
			return
		case <-t.C:
		}
		// While slots are fenced (cutover), their writes wait for the
		// next step: it comes after cutoverTick instead of tick.
		if g.stepAll(ctx) {
			t.Reset(cutoverTick)
		} else {
			t.Reset(tick)
		}
	}
}

// keepLease renews a held lease while there are moves to drive.
func (g *Migrator) keepLease(ctx context.Context) {
	t := time.NewTicker(min(tick, g.cfg.Lease/6))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		g.mu.Lock()
		held := g.mu.held
		g.mu.Unlock()
		if held && g.active.Load() {
			g.lease(ctx)
		}
	}
}

// holding reports whether the lease is this migrator's now.
func (g *Migrator) holding() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.mu.held && time.Now().Before(g.mu.until)
}

// standBy forgets the moves' progress (another migrator may drive them,
// and the phases' clocks start again when this one takes them back) and
// the lease.
func (g *Migrator) standBy() {
	clear(g.prog)
	g.dropLease(time.Time{})
}

func (g *Migrator) dropLease(retry time.Time) {
	g.mu.Lock()
	g.mu.until, g.mu.held, g.mu.retry = time.Time{}, false, retry
	g.mu.Unlock()
}

// lease takes or renews the lease when a third of it has passed; it
// reports whether this migrator may step moves now (and the map after a
// renewal).
func (g *Migrator) lease(ctx context.Context) (*cluster.Map, bool) {
	sent := time.Now()
	g.mu.Lock()
	until, held, retry := g.mu.until, g.mu.held, g.mu.retry
	g.mu.Unlock()
	if held && until.Sub(sent) > g.cfg.Lease*2/3 {
		return nil, true
	}
	if !held && sent.Before(retry) {
		return nil, false
	}
	mp, err := g.api.Lease(ctx, g.cfg.ID, g.cfg.Lease)
	if err != nil && ctx.Err() != nil {
		return nil, false // stopping: Run releases a lease still held
	}
	if err != nil {
		if held {
			g.stats.leaseLost.Add(1)
			g.log.Warn("migrator lease lost: standing by", "err", err)
		}
		g.dropLease(sent.Add(standbyRetry))
		return nil, false
	}
	if !held {
		g.stats.leaseTaken.Add(1)
		g.log.Info("migrator lease taken: driving the slot moves")
	}
	g.mu.Lock()
	if !g.mu.held || sent.Add(g.cfg.Lease).After(g.mu.until) {
		g.mu.until = sent.Add(g.cfg.Lease)
	}
	g.mu.held = true
	g.mu.Unlock()
	return mp, true
}

// stepAll steps every move once (Run calls it every tick); it reports
// whether moves are in cutover (fenced) after the step.
func (g *Migrator) stepAll(ctx context.Context) (fenced bool) {
	mp, err := g.api.Map(ctx)
	g.stats.mapOK.Store(err == nil)
	if err != nil {
		g.standBy()
		return
	}
	g.stats.queued.Store(int64(len(mp.Migrations) + mp.QueuedMoves)) // a window view counts the rest
	g.stats.window.Store(0)
	active := false
	for _, mg := range mp.Migrations {
		if !mg.Paused {
			active = true
			break
		}
	}
	g.active.Store(active)
	if !active {
		// Nothing to drive: no lease renewals (each is a map epoch).
		clear(g.prog)
		return
	}
	if lmp, ok := g.lease(ctx); !ok {
		clear(g.prog)
		return
	} else if lmp != nil && lmp.Epoch > mp.Epoch {
		mp = lmp
	}
	// Step the first moves (slot order): the status of every move on its
	// two nodes is asked first, all the queries to a node pipelined on
	// one connection (kept from tick to tick), the nodes in parallel;
	// then each move may propose one command.
	var failed []int
	lost := false
	ready := map[string][]int{} // op → slots ready for it
	window := mp.Window()       // the moves the targets import (cluster.MoveWindow)
	g.stats.window.Store(int64(len(window)))
	for slot, mg := range mp.Migrations {
		if mg.Paused {
			delete(g.prog, slot)
		}
	}
	tlsOn := g.cfg.NodeTLS != nil
	want := map[string][]int{} // node address → slots to ask it about
	multi := map[string]bool{} // the node answers for several slots at once (protocol 2)
	for _, mg := range window {
		for _, sh := range []*cluster.Shard{mp.Shards[mg.From], mp.Shards[mg.To]} {
			if sh != nil {
				addr := mp.PeerAddr(sh.Primary, tlsOn)
				want[addr] = append(want[addr], mg.Slot)
				if n := mp.Nodes[sh.Primary]; n != nil && n.Protocol >= cluster.MoveBatchProtocol {
					multi[addr] = true
				}
			}
		}
	}
	statuses := g.probe(want, multi, true)
	moves := map[int]moveRef{} // slot → what a push about it needs
	for _, mg := range window {
		id := progressKey{mg.State, mg.FromEpoch, mg.ToEpoch, mg.Attempts}
		p := g.prog[mg.Slot]
		if p == nil || p.ident != id {
			p = &moveProgress{ident: id, since: time.Now()}
			g.prog[mg.Slot] = p
		}
		op, err := g.step(mp, mg, p, statuses)
		if err != nil {
			lost = g.cancelMove(ctx, mg, err) || lost
			failed = append(failed, mg.Slot)
		} else if op != "" && g.gate(op, mg.Slot) {
			ready[op] = append(ready[op], mg.Slot)
			moves[mg.Slot] = g.moveRef(mp, mg, statuses)
		}
	}
	if lost {
		g.log.Warn("migrator lease lost: standing by")
		g.standBy()
		return
	}
	// One Raft entry per step for all the moves ready for it (a map
	// epoch per slot would have every node fetch the map thousands of
	// times in a rebalance). The flips first: they end write pauses.
	if slots := ready[cluster.OpMigrateDone]; len(slots) > 0 {
		after, _, bad, stop := g.commit(ctx, cluster.OpMigrateDone, slots, moves, nil)
		if stop {
			return
		}
		mp = cmpMap(mp, after)
		failed = append(failed, bad...)
	}
	if slots := ready[cluster.OpMigrateCutover]; len(slots) > 0 {
		// Fast path, as soon as the cutover is committed (before this
		// migrator has its map, which the nodes get at the same time):
		// fence the sources, wait for the targets to apply the slots'
		// last changes, flip those that did.
		var fastMap *cluster.Map
		var fastStop bool
		fast := func(epoch uint64, cut []int) {
			if fastStop {
				return
			}
			t0 := time.Now()
			if flip := g.fastCutover(ctx, epoch, cut, moves); len(flip) > 0 {
				t1 := time.Now()
				after, _, bad, stop := g.commit(ctx, cluster.OpMigrateDone, flip, moves, nil)
				g.log.Info("cutover", "slots", len(cut), "flipped", len(flip),
					"fence_and_catch_up", t1.Sub(t0).Round(time.Microsecond), "flip_commit", time.Since(t1).Round(time.Microsecond))
				fastStop = stop
				if after != nil && (fastMap == nil || after.Epoch > fastMap.Epoch) {
					fastMap = after
				}
				failed = append(failed, bad...)
			}
		}
		after, _, bad, stop := g.commit(ctx, cluster.OpMigrateCutover, slots, moves, fast)
		if stop || fastStop {
			return
		}
		mp = cmpMap(cmpMap(mp, after), fastMap)
		failed = append(failed, bad...)
	}
	for _, s := range failed {
		delete(g.prog, s)
	}
	for slot := range g.prog {
		if mp.Migrations[slot] == nil {
			delete(g.prog, slot)
		}
	}
	for _, mg := range mp.Migrations {
		if mg.State == cluster.MigrateCutover && !mg.Paused {
			return true
		}
	}
	return false
}

// gate applies Config.MoveGate.
func (g *Migrator) gate(op string, slot int) bool {
	return g.cfg.MoveGate == nil || g.cfg.MoveGate(op, slot)
}

// cmpMap returns the newer of two maps (b may be nil).
func cmpMap(a, b *cluster.Map) *cluster.Map {
	if b != nil && b.Epoch >= a.Epoch {
		return b
	}
	return a
}

// moveRef is what the migrator tells the nodes of a move it steps.
type moveRef struct {
	ident    string // the attempt (cluster.MoveIdent)
	src, dst string // the primaries' addresses
	srcPush  bool   // the source takes CLUSTER MOVEFENCE (cluster.MovePushProtocol)
	push     bool   // both take CLUSTER MOVEDONE
	wait     bool   // the target takes CLUSTER MOVEWAIT (cluster.MoveWaitProtocol)
	lsn      uint64 // the slot's last change on the source, as last reported
}

func (g *Migrator) moveRef(mp *cluster.Map, mg *cluster.Migration, statuses map[string]nodeStatus) moveRef {
	tlsOn := g.cfg.NodeTLS != nil
	from, to := mp.Shards[mg.From], mp.Shards[mg.To]
	ref := moveRef{ident: cluster.MoveIdent(mg)}
	if from == nil || to == nil {
		return ref
	}
	ref.src, ref.dst = mp.PeerAddr(from.Primary, tlsOn), mp.PeerAddr(to.Primary, tlsOn)
	speaks := func(id string, protocol int) bool { n := mp.Nodes[id]; return n != nil && n.Protocol >= protocol }
	ref.srcPush = ref.src != "" && speaks(from.Primary, cluster.MovePushProtocol)
	ref.push = ref.srcPush && ref.dst != "" && speaks(to.Primary, cluster.MovePushProtocol)
	ref.wait = ref.push && speaks(to.Primary, cluster.MoveWaitProtocol)
	if st, err := statuses[ref.src].of(ref.src, mg.Slot); err == nil {
		ref.lsn = st.lsn
	}
	return ref
}

// commit proposes op for slots as one Raft entry, or one by one if the
// batch is refused (a move's shard failed over, or it was paused
// meanwhile: that move's attempt is cancelled); a committed flip is
// pushed to the nodes at once (pushDone). committed, if set, gets the
// epoch and the slots of each commit, before the map after it is at hand. It returns the newest map after them, the slots
// committed and those that failed; stop: the lease is lost (the
// migrator stands by).
func (g *Migrator) commit(ctx context.Context, op string, slots []int, moves map[int]moveRef, committed func(epoch uint64, slots []int)) (mp *cluster.Map, ok, failed []int, stop bool) {
	if !g.holding() {
		// The lease may have run out while the nodes were polled.
		g.standBy()
		return nil, nil, nil, true
	}
	tc := time.Now()
	onCommit := func(slots []int) func(uint64) {
		return func(epoch uint64) {
			if op == cluster.OpMigrateDone {
				t1 := time.Now()
				g.pushDone(epoch, slots, moves)
				g.log.Debug("flip committed and pushed", "slots", len(slots), "commit", t1.Sub(tc).Round(time.Microsecond), "push", time.Since(t1).Round(time.Microsecond))
			}
			if committed != nil {
				committed(epoch, slots)
			}
		}
	}
	after, err := g.stepCommitted(ctx, cluster.Command{Op: op, Slots: slots}, onCommit(slots))
	if err == nil {
		g.countStep(op, len(slots))
		if op == cluster.OpMigrateDone {
			g.log.Info("slots moved", "slots", len(slots), "first", slots[0])
		}
		return after, slots, nil, false
	}
	if errors.Is(err, cluster.ErrMigratorLease) {
		g.log.Warn("migrator lease lost: standing by", "err", err)
		g.standBy()
		return nil, nil, nil, true
	}
	for _, sl := range slots {
		after, err := g.stepCommitted(ctx, cluster.Command{Op: op, Slot: sl}, onCommit([]int{sl}))
		if err == nil {
			g.countStep(op, 1)
			mp = after
			ok = append(ok, sl)
			continue
		}
		if errors.Is(err, cluster.ErrMigratorLease) {
			g.standBy()
			return nil, nil, nil, true
		}
		// A move paused or cancelled meanwhile is not failed.
		if now, merr := g.api.Map(ctx); merr == nil {
			if mg := now.Migrations[sl]; mg != nil && !mg.Paused {
				g.cancelMove(ctx, mg, err)
			}
		}
		failed = append(failed, sl)
	}
	return mp, ok, failed, false
}

// stepCommitted proposes c; committed gets the epoch of the map that has
// it as soon as it is committed (Committer), before the map itself.
func (g *Migrator) stepCommitted(ctx context.Context, c cluster.Command, committed func(uint64)) (*cluster.Map, error) {
	if cm, ok := g.api.(Committer); ok {
		return cm.StepCommitted(ctx, g.cfg.ID, c, committed)
	}
	mp, err := g.api.Step(ctx, g.cfg.ID, c)
	if err == nil {
		committed(mp.Epoch)
	}
	return mp, err
}

// pushDone tells the sources and targets of slots (protocol 3) that
// their flip is committed at epoch (CLUSTER MOVEDONE), so the sources
// answer MOVED and the targets serve the slots without waiting for the
// map: the write pause of a slot ended only when the map reached both.
// Only after the commit: a node that hears it and crashes learns the
// same from the map when it is back. What a node refuses it learns
// from the map.
func (g *Migrator) pushDone(epoch uint64, slots []int, moves map[int]moveRef) {
	args := map[string][]string{} // node address → its command
	for _, sl := range slots {
		ref := moves[sl]
		if !ref.push {
			continue
		}
		for _, addr := range []string{ref.dst, ref.src} {
			if args[addr] == nil {
				args[addr] = []string{"CLUSTER", "MOVEDONE", strconv.FormatUint(epoch, 10)}
			}
			args[addr] = append(args[addr], strconv.Itoa(sl), ref.ident, strconv.FormatUint(ref.lsn, 10))
		}
	}
	var wg sync.WaitGroup
	for addr, a := range args {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := g.roundTrip(addr, a)
			if err == nil && r.Kind == '-' {
				err = errors.New(r.Str)
			}
			if err != nil {
				g.log.Debug("flip not pushed: the node learns it from the map", "node", addr, "err", err)
				return
			}
			n := 0
			for _, e := range r.Elems {
				n += int(e.Int)
			}
			g.stats.pushedFlips.Add(uint64(n))
		}()
	}
	wg.Wait()
}

// fastCutover runs right after the cutover of slots is committed at
// epoch: it fences them on their sources (CLUSTER MOVEFENCE, protocol
// 3: the sources need not wait for the map, and their reply gives the
// slots' final LSNs), then asks their targets until each has applied
// its slot's last change, for cutoverWait at most. It returns the slots
// ready for the flip; the others are stepped by the next steps as before.
func (g *Migrator) fastCutover(ctx context.Context, epoch uint64, slots []int, moves map[int]moveRef) []int {
	if epoch == 0 {
		return nil
	}
	bySrc := map[string][]int{}
	for _, sl := range slots {
		if ref := moves[sl]; ref.push && g.gate(cluster.OpMigrateDone, sl) {
			bySrc[ref.src] = append(bySrc[ref.src], sl)
		}
	}
	if len(bySrc) == 0 {
		return nil
	}
	// The sources in parallel; moves is this goroutine's: the commands
	// are built before and the replies read after.
	t0 := time.Now()
	cmds := map[string][]string{}
	for addr, sls := range bySrc {
		a := []string{"CLUSTER", "MOVEFENCE", strconv.FormatUint(epoch, 10)}
		for _, sl := range sls {
			a = append(a, strconv.Itoa(sl), moves[sl].ident)
		}
		cmds[addr] = a
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	replies := map[string]map[int]moveStatus{}
	for addr, a := range cmds {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var st map[int]moveStatus
			err := g.onConn(addr, func(c *statusConn) error {
				_ = c.nc.SetDeadline(time.Now().Add(2 * time.Second))
				var err error
				st, err = askStatus(c, a, len(bySrc[addr]))
				return err
			})
			if err != nil {
				g.log.Debug("fence not pushed: the node learns it from the map", "node", addr, "err", err)
				return
			}
			mu.Lock()
			replies[addr] = st
			mu.Unlock()
		}()
	}
	wg.Wait()
	tFence := time.Now()
	defer func() {
		g.log.Debug("cutover: sources fenced, targets caught up", "sources", len(bySrc), "fence", tFence.Sub(t0).Round(time.Microsecond), "catch_up", time.Since(tFence).Round(time.Microsecond))
	}()
	fenced := map[string][]int{} // target address → its slots fenced on their source
	for addr, st := range replies {
		for _, sl := range bySrc[addr] {
			if x, ok := st[sl]; ok && x.fenced {
				g.stats.pushedFences.Add(1)
				ref := moves[sl]
				ref.lsn = x.lsn
				moves[sl] = ref
				fenced[ref.dst] = append(fenced[ref.dst], sl)
			}
		}
	}
	deadline := time.Now().Add(cutoverWait)
	ready := g.waitTargets(deadline, fenced, moves)
	for len(fenced) > 0 && ctx.Err() == nil {
		statuses := g.probe(fenced, allMulti(fenced), false)
		for addr, sls := range fenced {
			var left []int
			for _, sl := range sls {
				ref := moves[sl]
				st, err := statuses[addr].of(addr, sl)
				if err == nil && st.ident == ref.ident && st.state == "streaming" && st.applied >= ref.lsn {
					ready = append(ready, sl)
				} else {
					left = append(left, sl)
				}
			}
			if len(left) == 0 {
				delete(fenced, addr)
			} else {
				fenced[addr] = left
			}
		}
		if len(fenced) == 0 || time.Now().After(deadline) {
			break
		}
		select {
		case <-ctx.Done():
		case <-time.After(pollEvery):
		}
	}
	slices.Sort(ready)
	return ready
}

// waitTargets asks each target of fenced (target address → its slots)
// whose slots' targets all take CLUSTER MOVEWAIT to answer once it has
// applied them (until deadline), in parallel. It returns the slots
// ready and removes those targets from fenced; the others are polled.
func (g *Migrator) waitTargets(deadline time.Time, fenced map[string][]int, moves map[int]moveRef) []int {
	cmds := map[string][]string{}
	asked := map[string][]int{} // target address → the slots of its command
	for addr, sls := range fenced {
		if slices.ContainsFunc(sls, func(sl int) bool { return !moves[sl].wait }) {
			continue
		}
		ms := max(time.Until(deadline).Milliseconds(), 0)
		a := []string{"CLUSTER", "MOVEWAIT", strconv.FormatInt(ms, 10)}
		for _, sl := range sls {
			ref := moves[sl]
			a = append(a, strconv.Itoa(sl), ref.ident, strconv.FormatUint(ref.lsn, 10))
		}
		cmds[addr], asked[addr] = a, sls
		delete(fenced, addr)
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	var ready []int
	for addr, a := range cmds {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sls := asked[addr]
			r, err := g.roundTrip(addr, a)
			if err == nil && (r.Kind != '*' || len(r.Elems) != len(sls)) {
				err = fmt.Errorf("CLUSTER MOVEWAIT: unexpected reply %q", r.Str)
			}
			if err != nil {
				g.log.Debug("cutover wait failed: the next steps poll the target", "node", addr, "err", err)
				return
			}
			mu.Lock()
			for i, e := range r.Elems {
				if e.Int == 1 {
					ready = append(ready, sls[i])
				}
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	return ready
}

// allMulti: every node in want answers for several slots at once (the
// targets asked in fastCutover speak protocol 3).
func allMulti(want map[string][]int) map[string]bool {
	out := make(map[string]bool, len(want))
	for addr := range want {
		out[addr] = true
	}
	return out
}

// cancelMove ends the move's attempt; it reports whether the lease was
// found lost.
func (g *Migrator) cancelMove(ctx context.Context, mg *cluster.Migration, err error) bool {
	g.log.Warn("slot move attempt failed", "slot", mg.Slot, "from", mg.From, "to", mg.To, "state", mg.State, "err", err)
	_, perr := g.api.Step(ctx, g.cfg.ID, cluster.Command{Op: cluster.OpMigrateCancel, Slot: mg.Slot, Error: err.Error()})
	if perr == nil {
		g.stats.cancels.Add(1)
	}
	if perr != nil {
		g.log.Warn("cannot cancel the slot move", "slot", mg.Slot, "err", perr)
	}
	return errors.Is(perr, cluster.ErrMigratorLease)
}

// step checks one move against the nodes' statuses (probe): the op it is
// ready for (OpMigrateCutover, OpMigrateDone, "" for none yet); an error
// cancels the attempt.
func (g *Migrator) step(mp *cluster.Map, mg *cluster.Migration, p *moveProgress, statuses map[string]nodeStatus) (string, error) {
	from, to := mp.Shards[mg.From], mp.Shards[mg.To]
	if from == nil || to == nil {
		return "", errors.New("a shard of the move is gone")
	}
	if from.Epoch != mg.FromEpoch || to.Epoch != mg.ToEpoch {
		return "", errors.New("a shard of the move failed over")
	}
	tlsOn := g.cfg.NodeTLS != nil
	srcAddr, dstAddr := mp.PeerAddr(from.Primary, tlsOn), mp.PeerAddr(to.Primary, tlsOn)
	src, err := statuses[srcAddr].of(srcAddr, mg.Slot)
	if err != nil {
		return "", patience(mg, p, fmt.Errorf("source %s: %w", srcAddr, err))
	}
	dst, err := statuses[dstAddr].of(dstAddr, mg.Slot)
	if err != nil {
		return "", patience(mg, p, fmt.Errorf("target %s: %w", dstAddr, err))
	}
	if dst.ident != cluster.MoveIdent(mg) {
		// The target has not installed this attempt's map yet.
		dst.state, dst.applied = "none", 0
	}
	if dst.state == "failed" {
		if p.failedSince.IsZero() {
			p.failedSince = time.Now()
		} else if time.Since(p.failedSince) > importFailGrace {
			return "", fmt.Errorf("import failed: %s", dst.err)
		}
	} else {
		p.failedSince = time.Time{}
	}
	switch mg.State {
	case cluster.MigrateCopying:
		if dst.state == "streaming" && dst.applied+cutoverLag >= src.lsn {
			return cluster.OpMigrateCutover, nil
		}
		if time.Since(p.since) > copyTimeout {
			return "", fmt.Errorf("copy not caught up after %s (target %s at %d, slot at %d)", copyTimeout, dst.state, dst.applied, src.lsn)
		}
	case cluster.MigrateCutover:
		if src.fenced && dst.state == "streaming" && dst.applied >= src.lsn {
			return cluster.OpMigrateDone, nil
		}
		if time.Since(p.since) > cutoverTimeout {
			return "", fmt.Errorf("cutover not done after %s (source fenced %v at %d, target %s at %d)", cutoverTimeout, src.fenced, src.lsn, dst.state, dst.applied)
		}
	}
	return "", nil
}

// patience turns a failed status query into a cancel only once the
// phase has lasted its limit (a node restarting is often back soon).
func patience(mg *cluster.Migration, p *moveProgress, err error) error {
	limit := copyTimeout
	if mg.State == cluster.MigrateCutover {
		limit = cutoverTimeout
	}
	if time.Since(p.since) > limit {
		return err
	}
	return nil
}

type moveStatus struct {
	epoch   uint64
	lsn     uint64
	fenced  bool
	state   string
	applied uint64
	err     string
	ident   string // the attempt the import is for (cluster.MoveIdent)
}

// nodeStatus is one node's answers to a tick's status queries.
type nodeStatus struct {
	moves map[int]moveStatus // by slot
	err   error              // the node could not be asked
}

func (n nodeStatus) of(addr string, slot int) (moveStatus, error) {
	if addr == "" {
		return moveStatus{}, errors.New("no address")
	}
	if n.err != nil {
		return moveStatus{}, n.err
	}
	st, ok := n.moves[slot]
	if !ok {
		return st, errors.New("not asked")
	}
	return st, nil
}

// statusConn is a connection to a node for status queries, kept from
// tick to tick (a connection per query per tick cost a TCP handshake per
// move and node every 50 ms).
type statusConn struct {
	nc     net.Conn
	br     *bufio.Reader
	idents map[string]string // readCompactStatus's interned move idents
}

// probe asks every node in want (address → slots) CLUSTER MIGRATION for
// its slots: in one command to a node in multi, else one per slot,
// pipelined on the node's connection; the nodes in parallel. A node whose
// kept connection fails is asked once more on a new one (it may have
// restarted since the last tick).
func (g *Migrator) probe(want map[string][]int, multi map[string]bool, closeOthers bool) map[string]nodeStatus {
	out := make(map[string]nodeStatus, len(want))
	var mu sync.Mutex
	var wg sync.WaitGroup
	for addr, slots := range want {
		if addr == "" {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			st, err := g.probeNode(addr, slots, multi[addr])
			mu.Lock()
			out[addr] = nodeStatus{moves: st, err: err}
			mu.Unlock()
		}()
	}
	wg.Wait()
	if !closeOthers {
		return out
	}
	// Connections to nodes no longer asked about are closed.
	g.connMu.Lock()
	for addr, c := range g.conns {
		if _, ok := want[addr]; !ok {
			c.nc.Close()
			delete(g.conns, addr)
		}
	}
	g.connMu.Unlock()
	return out
}

func (g *Migrator) probeNode(addr string, slots []int, multi bool) (st map[int]moveStatus, err error) {
	err = g.onConn(addr, func(c *statusConn) error {
		st, err = migrationStatuses(c, slots, multi)
		return err
	})
	return st, err
}

// roundTrip sends one command to addr and returns its reply.
func (g *Migrator) roundTrip(addr string, args []string) (r resp.Reply, err error) {
	err = g.onConn(addr, func(c *statusConn) error {
		_ = c.nc.SetDeadline(time.Now().Add(2 * time.Second))
		if _, err := c.nc.Write(resp.AppendCommand(nil, args...)); err != nil {
			return err
		}
		r, err = resp.ReadReply(c.br, 0)
		return err
	})
	return r, err
}

// onConn runs fn on the node's kept connection (dialled if none; its
// own while fn runs). A kept connection that fails is replaced once:
// the node may have restarted since it was last used.
func (g *Migrator) onConn(addr string, fn func(c *statusConn) error) error {
	var err error
	for try := 0; try < 2; try++ {
		g.connMu.Lock()
		c := g.conns[addr]
		delete(g.conns, addr) // this goroutine's while in use
		g.connMu.Unlock()
		fresh := c == nil
		if fresh {
			nc, derr := acl.Dial(addr, g.cfg.NodeAuth, g.cfg.NodeTLS, time.Second)
			if derr != nil {
				return derr
			}
			c = &statusConn{nc: nc, br: bufio.NewReaderSize(nc, 16<<10)}
		}
		if err = fn(c); err == nil {
			g.connMu.Lock()
			if g.conns == nil {
				g.conns = map[string]*statusConn{}
			}
			if old := g.conns[addr]; old != nil {
				old.nc.Close()
			}
			g.conns[addr] = c
			g.connMu.Unlock()
			return nil
		}
		c.nc.Close()
		if fresh {
			break
		}
	}
	return err
}

// closeConns closes the kept status connections (Run's end).
func (g *Migrator) closeConns() {
	g.connMu.Lock()
	for addr, c := range g.conns {
		c.nc.Close()
		delete(g.conns, addr)
	}
	g.connMu.Unlock()
}

// migrationStatuses asks c CLUSTER MIGRATION for slots: with multi, one
// command for all of them; else one per slot, then reads the replies in
// order.
func migrationStatuses(c *statusConn, slots []int, multi bool) (map[int]moveStatus, error) {
	_ = c.nc.SetDeadline(time.Now().Add(2 * time.Second))
	if multi && len(slots) > 1 {
		return migrationStatusesOnce(c, slots)
	}
	var req []byte
	for _, slot := range slots {
		req = resp.AppendCommand(req, "CLUSTER", "MIGRATION", strconv.Itoa(slot))
	}
	if _, err := c.nc.Write(req); err != nil {
		return nil, err
	}
	out := make(map[int]moveStatus, len(slots))
	for _, slot := range slots {
		r, err := resp.ReadReply(c.br, 0)
		if err != nil {
			return nil, err
		}
		st, err := parseMigrationStatus(r)
		if err != nil {
			return nil, err
		}
		out[slot] = st
	}
	return out, nil
}

// migrationStatusesOnce is CLUSTER MIGRATION slot slot ...: [map_epoch,
// [slot, slot_lsn, fenced, import_state, import_applied, import_keys,
// import_error, import_move], ...].
func migrationStatusesOnce(c *statusConn, slots []int) (map[int]moveStatus, error) {
	args := make([]string, 0, 2+len(slots))
	args = append(args, "CLUSTER", "MIGRATION")
	for _, slot := range slots {
		args = append(args, strconv.Itoa(slot))
	}
	return askStatus(c, args, len(slots))
}

// askStatus sends args, a command answered by the compact status of n
// slots (CLUSTER MIGRATION of several slots, CLUSTER MOVEFENCE), and
// reads it.
func askStatus(c *statusConn, args []string, n int) (map[int]moveStatus, error) {
	if _, err := c.nc.Write(resp.AppendCommand(nil, args...)); err != nil {
		return nil, err
	}
	return readCompactStatus(c, n)
}

// parseMigrationStatus reads a CLUSTER MIGRATION reply.
func parseMigrationStatus(r resp.Reply) (moveStatus, error) {
	var st moveStatus
	if r.Kind == '-' {
		return st, errors.New(r.Str)
	}
	for i := 0; i+1 < len(r.Elems); i += 2 {
		v := r.Elems[i+1]
		switch r.Elems[i].Str {
		case "map_epoch":
			st.epoch = uint64(v.Int)
		case "slot_lsn":
			st.lsn = uint64(v.Int)
		case "fenced":
			st.fenced = v.Int == 1
		case "import_state":
			st.state = v.Str
		case "import_applied":
			st.applied = uint64(v.Int)
		case "import_error":
			st.err = v.Str
		case "import_move":
			st.ident = v.Str
		}
	}
	return st, nil
}

func (g *Migrator) countStep(op string, n int) {
	switch op {
	case cluster.OpMigrateCutover:
		g.stats.cutovers.Add(uint64(n))
	case cluster.OpMigrateDone:
		g.stats.done.Add(uint64(n))
	}
}

// Stats is what a migrator reports on its admin port.
type Stats struct {
	ID         string
	MapOK      bool // the last map request succeeded
	Holding    bool // it holds the migrator lease now
	Window     int64
	Queued     int64
	Cutovers   uint64
	Done       uint64
	Cancels    uint64
	LeaseTaken uint64
	LeaseLost  uint64
	// PushedFences, PushedFlips: slots CLUSTER MOVEFENCE found fenced
	// and slots CLUSTER MOVEDONE flipped (once per node).
	PushedFences, PushedFlips uint64
}

// Stats returns the migrator's counters (any goroutine).
func (g *Migrator) Stats() Stats {
	return Stats{
		ID: g.cfg.ID, MapOK: g.stats.mapOK.Load(), Holding: g.holding(),
		Window: g.stats.window.Load(), Queued: g.stats.queued.Load(),
		Cutovers: g.stats.cutovers.Load(), Done: g.stats.done.Load(), Cancels: g.stats.cancels.Load(),
		LeaseTaken: g.stats.leaseTaken.Load(), LeaseLost: g.stats.leaseLost.Load(),
		PushedFences: g.stats.pushedFences.Load(), PushedFlips: g.stats.pushedFlips.Load(),
	}
}

// Ready is the standalone migrator's readiness: it reaches a manager
// leader (its last map request succeeded).
func (g *Migrator) Ready() error {
	if !g.stats.mapOK.Load() {
		return errors.New("no cluster map from the managers")
	}
	return nil
}

// Collector exports Stats as Prometheus metrics (docs/metrics.md,
// "shoal migrator").
func (g *Migrator) Collector() prometheus.Collector { return collector{g} }

type collector struct{ g *Migrator }

var (
	descHolding    = prometheus.NewDesc("shoal_migrator_lease_held", "1 while this migrator holds the migrator lease (drives the moves)", nil, nil)
	descMapOK      = prometheus.NewDesc("shoal_migrator_map_ok", "1 if the last cluster map request to the managers succeeded", nil, nil)
	descWindow     = prometheus.NewDesc("shoal_migrator_window_moves", "moves stepped in the last tick (the window the targets import)", nil, nil)
	descQueued     = prometheus.NewDesc("shoal_migrator_queued_moves", "moves in the cluster map at the last tick, paused ones included", nil, nil)
	descCutovers   = prometheus.NewDesc("shoal_migrator_cutovers_total", "moves this migrator took to cutover", nil, nil)
	descDone       = prometheus.NewDesc("shoal_migrator_moves_done_total", "moves this migrator finished (the slot's owner flipped)", nil, nil)
	descCancels    = prometheus.NewDesc("shoal_migrator_cancels_total", "move attempts this migrator cancelled (timeouts, failed imports, failovers)", nil, nil)
	descLeaseTaken = prometheus.NewDesc("shoal_migrator_lease_taken_total", "times this migrator took the lease (renewals not counted)", nil, nil)
	descLeaseLost  = prometheus.NewDesc("shoal_migrator_lease_lost_total", "times this migrator found its lease lost", nil, nil)
	descPushed     = prometheus.NewDesc("shoal_migrator_pushed_total", "slots found fenced on their source by this migrator's CLUSTER MOVEFENCE (step cutover) and flipped by its CLUSTER MOVEDONE (step done, once per node), ahead of the cluster map", []string{"step"}, nil)
	descLeaseSecs  = prometheus.NewDesc("shoal_migrator_lease_seconds", "the lease this migrator takes (--lease): how long its moves wait for a standby after it dies", nil, nil)
)

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descHolding, descMapOK, descWindow, descQueued, descCutovers, descDone, descCancels, descLeaseTaken, descLeaseLost, descPushed, descLeaseSecs} {
		ch <- d
	}
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	st := c.g.Stats()
	b := func(v bool) float64 {
		if v {
			return 1
		}
		return 0
	}
	ch <- prometheus.MustNewConstMetric(descHolding, prometheus.GaugeValue, b(st.Holding))
	ch <- prometheus.MustNewConstMetric(descMapOK, prometheus.GaugeValue, b(st.MapOK))
	ch <- prometheus.MustNewConstMetric(descWindow, prometheus.GaugeValue, float64(st.Window))
	ch <- prometheus.MustNewConstMetric(descQueued, prometheus.GaugeValue, float64(st.Queued))
	ch <- prometheus.MustNewConstMetric(descCutovers, prometheus.CounterValue, float64(st.Cutovers))
	ch <- prometheus.MustNewConstMetric(descDone, prometheus.CounterValue, float64(st.Done))
	ch <- prometheus.MustNewConstMetric(descCancels, prometheus.CounterValue, float64(st.Cancels))
	ch <- prometheus.MustNewConstMetric(descLeaseTaken, prometheus.CounterValue, float64(st.LeaseTaken))
	ch <- prometheus.MustNewConstMetric(descLeaseLost, prometheus.CounterValue, float64(st.LeaseLost))
	ch <- prometheus.MustNewConstMetric(descPushed, prometheus.CounterValue, float64(st.PushedFences), "cutover")
	ch <- prometheus.MustNewConstMetric(descPushed, prometheus.CounterValue, float64(st.PushedFlips), "done")
	ch <- prometheus.MustNewConstMetric(descLeaseSecs, prometheus.GaugeValue, c.g.cfg.Lease.Seconds())
}
