package server_test

import (
	"context"
	"errors"
	"fmt"
	"github.com/prometheus/client_golang/prometheus"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"shoal/internal/cluster"
	"shoal/internal/manager"
	"shoal/internal/migrator"
	tu "shoal/internal/testutil"
)

// killableAPI is a standalone migrator's link to the managers that a
// test cuts, as a crash of the process would: after kill every call
// fails, so the migrator neither steps nor releases its lease.
type killableAPI struct {
	migrator.Manager
	dead atomic.Bool
}

var errKilled = errors.New("migrator killed")

func (k *killableAPI) Map(ctx context.Context) (*cluster.Map, error) {
	if k.dead.Load() {
		return nil, errKilled
	}
	return k.Manager.Map(ctx)
}

func (k *killableAPI) Lease(ctx context.Context, id string, d time.Duration) (*cluster.Map, error) {
	if k.dead.Load() {
		return nil, errKilled
	}
	return k.Manager.Lease(ctx, id, d)
}

func (k *killableAPI) Release(ctx context.Context, id string) error {
	if k.dead.Load() {
		return errKilled
	}
	return k.Manager.Release(ctx, id)
}

func (k *killableAPI) Step(ctx context.Context, id string, c cluster.Command) (*cluster.Map, error) {
	if k.dead.Load() {
		return nil, errKilled
	}
	return k.Manager.Step(ctx, id, c)
}

// Watch runs the map watch of the link it wraps (a killed migrator's
// watch is harmless: its other calls fail).
func (k *killableAPI) Watch(ctx context.Context) {
	if w, ok := k.Manager.(migrator.Watcher); ok {
		w.Watch(ctx)
	}
}

type standalone struct {
	g      *migrator.Migrator
	api    *killableAPI
	cancel context.CancelFunc
	done   chan struct{}
}

// startMigrator runs a standalone migrator against c's managers over HTTP.
func startMigrator(t *testing.T, c *tcluster, id string, lease time.Duration, gate func(string, int) bool) *standalone {
	t.Helper()
	api := &killableAPI{Manager: &manager.RemoteMigrator{C: c.client()}}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	g, err := migrator.New(migrator.Config{ID: id, Lease: lease, Logger: log, MoveGate: gate}, api)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &standalone{g: g, api: api, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		g.Run(ctx)
	}()
	t.Cleanup(s.stop)
	return s
}

// stop ends the migrator cleanly (it releases its lease).
func (s *standalone) stop() {
	s.cancel()
	<-s.done
}

// kill ends it as a crash would: the lease stays until it expires.
func (s *standalone) kill() {
	s.api.dead.Store(true)
	s.stop()
}

// incrLoad runs INCRs through a cluster client on keys until stopped and
// counts the acknowledged ones per key.
type incrLoad struct {
	rc    *redis.ClusterClient
	keys  []string
	acked []atomic.Int64
	errs  atomic.Int64
	first atomic.Value // first error
	stopc chan struct{}
	wg    sync.WaitGroup
}

func startIncrLoad(c *tcluster, keys []string) *incrLoad {
	var seeds []string
	for _, n := range c.nodes {
		seeds = append(seeds, n.addr)
	}
	l := &incrLoad{keys: keys, acked: make([]atomic.Int64, len(keys)), stopc: make(chan struct{}),
		rc: redis.NewClusterClient(&redis.ClusterOptions{Addrs: seeds, MaxRedirects: 64, // ~3 s of TRYAGAIN retries: a cutover on a loaded machine
			MinRetryBackoff: 2 * time.Millisecond, MaxRetryBackoff: 50 * time.Millisecond})}
	for i := range keys {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for {
				select {
				case <-l.stopc:
					return
				default:
				}
				if err := l.rc.Incr(context.Background(), keys[i]).Err(); err != nil {
					l.errs.Add(1)
					l.first.CompareAndSwap(nil, err.Error())
					continue
				}
				l.acked[i].Add(1)
			}
		}()
	}
	return l
}

// finish stops the load and checks every acknowledged INCR is in the
// counters: exactly, or (when some INCRs failed) at least.
func (l *incrLoad) finish(t *testing.T) {
	t.Helper()
	close(l.stopc)
	l.wg.Wait()
	defer l.rc.Close()
	for i, k := range l.keys {
		got, err := l.rc.Get(context.Background(), k).Int64()
		if err != nil {
			t.Fatalf("GET %s: %v", k, err)
		}
		acked := l.acked[i].Load()
		if got < acked || got > acked+l.errs.Load() {
			t.Fatalf("%s = %d, %d INCRs acknowledged, %d failed", k, got, acked, l.errs.Load())
		}
	}
}

// slotsWithKeys returns n slots of shard and one key in each.
func slotsWithKeys(c *tcluster, shard, n int) ([]int, []string) {
	var slots []int
	var keys []string
	seen := map[int]bool{}
	for i := 0; len(slots) < n; i++ {
		k := c.keyIn(shard, "mig"+strconv.Itoa(i)+"-")
		if s := cluster.SlotString(k); !seen[s] {
			seen[s] = true
			slots, keys = append(slots, s), append(keys, k)
		}
	}
	return slots, keys
}

// checkMoved waits until the target's replica equals its primary on each
// slot and the source dropped it.
func checkMoved(t *testing.T, c *tcluster, slots []int) {
	t.Helper()
	ctx := context.Background()
	src, _ := c.shard(1)
	dst, dstReps := c.shard(2)
	for _, slot := range slots {
		ds := strconv.Itoa(slot)
		waitUntil(t, "the source dropped slot "+ds, func() bool { return countInSlot(src, slot) == 0 })
		waitUntil(t, "the target's replica equals it on slot "+ds, func() bool {
			a, err1 := dst.rdb.Do(ctx, "DEBUG", "DIGEST-SLOT", ds).Text()
			b, err2 := dstReps[0].rdb.Do(ctx, "DEBUG", "DIGEST-SLOT", ds).Text()
			return errors.Join(err1, err2) == nil && a == b && countInSlot(dst, slot) > 0
		})
	}
}

// infoLine is a field of an INFO reply ("": missing).
func infoLine(info, field string) string {
	for _, l := range strings.Split(info, "\r\n") {
		if v, ok := strings.CutPrefix(l, field+":"); ok {
			return v
		}
	}
	return ""
}

// infoNum is a numeric INFO field (-1: missing).
func infoNum(info, field string) float64 {
	f, err := strconv.ParseFloat(infoLine(info, field), 64)
	if err != nil {
		return -1
	}
	return f
}

func allMoved(mp *cluster.Map, slots []int, to int) bool {
	for _, s := range slots {
		if int(mp.Slots[s]) != to || mp.Migrations[s] != nil {
			return false
		}
	}
	return true
}

// With the manager's built-in migrator off, a standalone migrator moves
// slots under concurrent INCRs: no client error, every acknowledged INCR
// in the target's copy, the target's replica equal to it.
func TestStandaloneMigratorMovesSlots(t *testing.T) {
	c := newTClusterWith(t, 1, 2, 1, func(cfg *manager.Config) { cfg.DisableMigrator = true })
	mc := c.client()
	ctx := context.Background()
	slots, keys := slotsWithKeys(c, 1, 4)
	load := startIncrLoad(c, keys)
	waitUntil(t, "INCRs acknowledged on every key", func() bool {
		for i := range keys {
			if load.acked[i].Load() == 0 {
				return false
			}
		}
		return true
	})
	if _, err := mc.Migrate(ctx, slots, 2); err != nil {
		t.Fatal(err)
	}
	// The target imports on its own (from the map); nobody steps the
	// moves: the built-in migrator, were it on, would have taken the
	// lease on its first tick (50 ms) after the moves were queued.
	target, _ := c.shard(2)
	waitUntil(t, "the target streams the slots", func() bool {
		for _, s := range slots {
			if migStatus(target, s)["import_state"] != "streaming" {
				return false
			}
		}
		return true
	})
	if mp := c.leaderMap(); mp.MigratorLease != nil || len(mp.Migrations) != len(slots) {
		t.Fatalf("with --migrator=false: lease %+v, %d moves", mp.MigratorLease, len(mp.Migrations))
	}
	s := startMigrator(t, c, "mig-a", time.Second, nil)
	waitUntil(t, "the slots moved", func() bool { return allMoved(c.leaderMap(), slots, 2) })
	if mp := c.leaderMap(); mp.MigratorLease == nil || mp.MigratorLease.Holder != "mig-a" {
		t.Fatalf("lease after the moves: %+v", mp.MigratorLease)
	}
	load.finish(t)
	if n := load.errs.Load(); n > 0 {
		t.Fatalf("%d client errors, the first: %v", n, load.first.Load())
	}
	checkMoved(t, c, slots)
	// The source timed each slot's fence (INFO cluster).
	src, _ := c.shard(1)
	info := src.rdb.Info(ctx, "cluster").Val()
	pauses, maxMs := infoNum(info, "cluster_cutover_pauses"), infoNum(info, "cluster_cutover_pause_max_ms")
	if pauses < float64(len(slots)) || maxMs <= 0 {
		t.Fatalf("source's cutover pauses: %v, max %v ms\n%s", pauses, maxMs, info)
	}
	t.Logf("source: %v cutover pauses, the longest %.1f ms", pauses, maxMs)
	// Its counters and /metrics names (docs/metrics.md, shoal migrator).
	st := s.g.Stats()
	if st.Done < uint64(len(slots)) || st.Cutovers < uint64(len(slots)) || st.LeaseTaken < 1 || !st.Holding || !st.MapOK || s.g.Ready() != nil {
		t.Fatalf("migrator stats after moving %d slots: %+v (ready: %v)", len(slots), st, s.g.Ready())
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(s.g.Collector())
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, mf := range mfs {
		got[mf.GetName()] = true
		if mf.GetName() == "shoal_migrator_moves_done_total" && mf.GetMetric()[0].GetCounter().GetValue() < float64(len(slots)) {
			t.Fatalf("shoal_migrator_moves_done_total %v", mf.GetMetric()[0].GetCounter().GetValue())
		}
	}
	tu.CheckDocumentedMetrics(t, "shoal_migrator_", got)
	// A clean stop gives the lease up at once.
	s.stop()
	if mp := c.leaderMap(); mp.MigratorLease != nil {
		t.Fatalf("lease after a clean stop: %+v", mp.MigratorLease)
	}
	for i := range keys {
		t.Logf("%s: %d INCRs", keys[i], load.acked[i].Load())
	}
}

// A standalone migrator killed mid-move (its slots in cutover, fenced)
// keeps the lease until it expires; then another one takes the moves on
// and finishes them, with every acknowledged INCR kept. A second
// migrator running meanwhile never steps a move.
func TestStandaloneMigratorTakeover(t *testing.T) {
	c := newTClusterWith(t, 1, 2, 1, func(cfg *manager.Config) { cfg.DisableMigrator = true })
	mc := c.client()
	ctx := context.Background()
	slots, keys := slotsWithKeys(c, 1, 3)
	load := startIncrLoad(c, keys)
	// A cuts over but never finishes: killed in cutover.
	const leaseA = 1500 * time.Millisecond
	a := startMigrator(t, c, "mig-a", leaseA, func(op string, _ int) bool { return op != cluster.OpMigrateDone })
	if _, err := mc.Migrate(ctx, slots, 2); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "A cuts the moves over", func() bool {
		mp := c.leaderMap()
		for _, s := range slots {
			if !mp.Fenced(s) {
				return false
			}
		}
		return mp.MigratorLease != nil && mp.MigratorLease.Holder == "mig-a"
	})
	// B stands by while A holds the lease: it takes nothing over.
	var bSteps atomic.Int64
	b := startMigrator(t, c, "mig-b", time.Second, func(op string, _ int) bool { bSteps.Add(1); return true })
	a.kill()
	untilA := c.leaderMap().MigratorLease.Until
	waitUntil(t, "B finishes the moves", func() bool { return allMoved(c.leaderMap(), slots, 2) })
	mp := c.leaderMap()
	if mp.MigratorLease == nil || mp.MigratorLease.Holder != "mig-b" {
		t.Fatalf("lease after the takeover: %+v", mp.MigratorLease)
	}
	// B's lease began (its expiry less its length, renewals only push
	// the expiry later) no earlier than A's ended.
	if mp.MigratorLease.Until-time.Second.Milliseconds() < untilA {
		t.Fatalf("B's lease (until %d) began before A's ended (%d)", mp.MigratorLease.Until, untilA)
	}
	if bSteps.Load() == 0 {
		t.Fatal("B never stepped a move")
	}
	load.finish(t)
	checkMoved(t, c, slots)
	b.stop()
	t.Logf("takeover: %d INCRs failed while the slots stayed fenced (A killed in cutover); first: %v", load.errs.Load(), load.first.Load())
}

// The leader's built-in migrator and a standalone one: one holds the
// lease and drives the moves, the other stands by; the standalone takes
// the moves on only once the built-in one's lease is released or expires.
func TestBuiltinAndStandaloneMigratorExclusive(t *testing.T) {
	var builtinSteps, standaloneSteps atomic.Int64
	c := newTClusterWith(t, 1, 2, 1, func(cfg *manager.Config) {
		cfg.MigratorLease = time.Second
		cfg.MoveGate = func(string, int) bool { builtinSteps.Add(1); return true }
	})
	mc := c.client()
	ctx := context.Background()
	slots, keys := slotsWithKeys(c, 1, 2)
	load := startIncrLoad(c, keys)
	startMigrator(t, c, "mig-s", time.Second, func(string, int) bool { standaloneSteps.Add(1); return true })
	if _, err := mc.Migrate(ctx, slots, 2); err != nil {
		t.Fatal(err)
	}
	var holders sync.Map
	waitUntil(t, "the slots moved", func() bool {
		mp := c.leaderMap()
		if mp.MigratorLease != nil {
			holders.Store(mp.MigratorLease.Holder, true)
		}
		return allMoved(mp, slots, 2)
	})
	load.finish(t)
	if n := load.errs.Load(); n > 0 {
		t.Fatalf("%d client errors, the first: %v", n, load.first.Load())
	}
	checkMoved(t, c, slots)
	var names []string
	holders.Range(func(k, _ any) bool { names = append(names, fmt.Sprint(k)); return true })
	h := c.leaderMap().MigratorLease
	if h == nil {
		t.Fatal("no lease after the moves")
	}
	// The holder drove every step; the other stood by.
	driver, idle := builtinSteps.Load(), standaloneSteps.Load()
	if h.Holder == "mig-s" {
		driver, idle = idle, driver
	}
	if len(names) != 1 || driver == 0 || idle != 0 {
		t.Fatalf("holders %v, %s stepped %d times, the other %d", names, h.Holder, driver, idle)
	}
	t.Logf("%s drove the moves (%d steps ready), the other stood by", h.Holder, driver)
}
