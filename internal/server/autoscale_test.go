package server_test

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"shoal/internal/cluster"
	"shoal/internal/manager"
)

// The autoscaler by itself: 2 shards (primary + replica) and 2 standby
// nodes; INCR load past the scale-out threshold forms a 3rd shard of the
// standby nodes and moves its share onto it (only onto it), with no
// client error and every acknowledged INCR kept; with the load gone,
// scale-in drains a shard (only its slots move) and its nodes go back to
// the standby pool. Low thresholds and short periods; the shard nodes
// weigh 50 and the standby ones 1, so the new shard's share is ~160
// slots (seconds, not minutes, on a loaded 2-core machine).
func TestAutoscaleOutAndIn(t *testing.T) {
	if testing.Short() {
		t.Skip("in-process cluster")
	}
	opts := manager.DefaultAutoscaleOptions()
	opts.Enabled = true
	opts.Interval = 50 * time.Millisecond
	opts.Smoothing = 300 * time.Millisecond
	opts.MoveBatch = 1024
	p := &opts.Pilot
	p.Balance = false // TestAutoscaleRebalancesHotSlots
	p.Scale.ScaleOutOpsPerShard, p.Scale.ScaleInOpsPerShard = 150, 40
	p.Scale.Sustain, p.Scale.Cooldown = 400*time.Millisecond, 300*time.Millisecond
	p.Scale.MinShards, p.Scale.MaxShards = 2, 3
	logw := &tWriter{t: t}
	c := newTClusterWith(t, 1, 2, 1, func(cfg *manager.Config) {
		cfg.Autoscale = opts
		cfg.Logger = slog.New(slog.NewTextHandler(logw, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}, "--cluster-weight", "50")
	defer logw.stop()
	mc := c.client()
	ctx := context.Background()
	var standby []string
	for i := 0; i < 2; i++ {
		standby = append(standby, c.startNode(fmt.Sprintf("s%d", i+1), t.TempDir(), 0, "--standby").addr)
	}
	waitUntil(t, "the standby nodes in the pool", func() bool {
		st, err := mc.Autoscale(ctx)
		return err == nil && len(st.Pool) == 2
	})
	if st := c.status(); len(st.Standby) != 2 || len(st.Shards) != 2 {
		t.Fatalf("status: standby %v, %d shards", st.Standby, len(st.Shards))
	}
	m0, err := mc.Map(ctx, 0, 0)
	if err != nil {
		t.Fatal(err)
	}

	var seeds []string
	for _, n := range c.nodes {
		seeds = append(seeds, n.addr)
	}
	rc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: seeds, MaxRedirects: 32,
		MinRetryBackoff: 2 * time.Millisecond, MaxRetryBackoff: 50 * time.Millisecond})
	defer rc.Close()
	const keys = 400 // over many slots
	key := func(i int) string { return "as:" + strconv.Itoa(i) }
	var mu sync.Mutex
	acked := make([]int64, keys)
	var errs []error
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; ; i = (i + 4) % keys {
				select {
				case <-stop:
					return
				default:
				}
				err := rc.Incr(ctx, key(i)).Err()
				mu.Lock()
				if err == nil {
					acked[i]++
				} else {
					errs = append(errs, fmt.Errorf("INCR %s: %w", key(i), err))
				}
				mu.Unlock()
			}
		}()
	}
	halt := func() {
		select {
		case <-stop:
		default:
			close(stop)
		}
		wg.Wait()
	}
	defer halt()

	// Scale-out: a 3rd shard of the two standby nodes, filled.
	var m1 *cluster.Map
	waitUntilFor(t, 90*time.Second, "the autoscaler formed a 3rd shard and filled it", func() bool {
		m, err := mc.Map(ctx, 0, 0)
		if err != nil || len(m.Shards) != 3 || len(m.Migrations) > 0 {
			return false
		}
		tg := cluster.Targets(m)
		if m.Slots.Count(3) != tg[3] {
			return false
		}
		m1 = m
		return true
	})
	s3 := m1.Shards[3]
	got := []string{m1.Addr(s3.Primary), m1.Addr(s3.Replicas[0])}
	slices.Sort(got)
	slices.Sort(standby)
	if !slices.Equal(got, standby) {
		t.Fatalf("shard 3 is %v, the standby nodes were %v", got, standby)
	}
	for s := 0; s < cluster.NumSlots; s++ {
		if a, b := m0.Slots[s], m1.Slots[s]; a != b && b != 3 {
			t.Fatalf("scale-out moved slot %d from shard %d to %d, not to the new shard", s, a, b)
		}
	}
	t.Logf("scale-out: shard 3 holds %d slots", m1.Slots.Count(3))

	halt()
	mu.Lock()
	for i, err := range errs {
		if i < 5 {
			t.Errorf("client error: %v", err)
		}
	}
	if len(errs) > 0 {
		t.Fatalf("%d client errors", len(errs))
	}
	mu.Unlock()
	// Every acknowledged INCR must be readable (checked after each step;
	// the scenario goes on, the losses fail the test at the end).
	var lost []string
	check := func(when string) {
		t.Helper()
		var total int64
		for i := 0; i < keys; i++ {
			got, err := rc.Get(ctx, key(i)).Int64()
			if acked[i] == 0 && err == redis.Nil {
				continue
			}
			if err != nil || got != acked[i] {
				sl := cluster.SlotString(key(i))
				lost = append(lost, fmt.Sprintf("%s: %s (slot %d: shard %d, then %d) = %d (%v), %d INCRs acknowledged",
					when, key(i), sl, m0.Slots[sl], m1.Slots[sl], got, err, acked[i]))
				continue
			}
			total += got
		}
		t.Logf("%s: %d acknowledged INCRs read back", when, total)
	}
	check("after scale-out")

	// Scale-in: idle now, a shard drained and its nodes released.
	var m2 *cluster.Map
	waitUntilFor(t, 90*time.Second, "the autoscaler drained a shard and released its nodes", func() bool {
		m, err := mc.Map(ctx, 0, 0)
		if err != nil || len(m.Shards) != 2 || len(m.Migrations) > 0 {
			return false
		}
		m2 = m
		return true
	})
	gone := 0
	for id := range m1.Shards {
		if m2.Shards[id] == nil {
			gone = id
		}
	}
	for s := 0; s < cluster.NumSlots; s++ {
		if a, b := m1.Slots[s], m2.Slots[s]; a != b && int(a) != gone {
			t.Fatalf("scale-in of shard %d moved slot %d from shard %d", gone, s, a)
		}
	}
	released := m1.Shards[gone]
	for _, id := range append([]string{released.Primary}, released.Replicas...) {
		if n := m2.Nodes[id]; n == nil || n.State != cluster.NodeStandby || n.Shard != 0 {
			t.Fatalf("node %s of the drained shard: %+v", id, n)
		}
	}
	check("after scale-in")

	st, err := mc.Autoscale(ctx)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, d := range st.Decisions {
		seen[d.Action] = true
		if d.Error != "" {
			t.Errorf("decision error: %+v", d)
		}
	}
	for _, a := range []string{cluster.ActionScaleOut, cluster.ActionScaleIn, "release", "done"} {
		if !seen[a] {
			t.Errorf("no %q in the decisions %+v", a, st.Decisions)
		}
	}
	waitUntil(t, "the released nodes live in the pool", func() bool {
		st, err := mc.Autoscale(ctx)
		return err == nil && len(st.Pool) == 2
	})
	t.Logf("scale-in drained shard %d; %d decisions", gone, len(st.Decisions))
	if len(lost) > 0 {
		for _, l := range lost {
			t.Log("LOST: " + l)
		}
		t.Fatalf("%d keys lost acknowledged INCRs", len(lost))
	}
}

// tWriter passes log lines to t.Log (shown on failure or with -v) until stop.
type tWriter struct {
	mu   sync.Mutex
	t    *testing.T
	done bool
}

func (w *tWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(strings.TrimSpace(string(p)))
	}
	return len(p), nil
}

func (w *tWriter) stop() {
	w.mu.Lock()
	w.done = true
	w.mu.Unlock()
}

func waitUntilFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Load rebalancing by itself: INCRs on keys of four slots of shard 1
// only; the autoscaler moves hot slots (measured per slot from the
// heartbeats) to shard 2, and only those: no other slot changes owner.
func TestAutoscaleRebalancesHotSlots(t *testing.T) {
	if testing.Short() {
		t.Skip("in-process cluster")
	}
	opts := manager.DefaultAutoscaleOptions()
	opts.Enabled = true
	opts.Interval = 50 * time.Millisecond
	opts.Smoothing = 500 * time.Millisecond
	p := &opts.Pilot
	p.ScaleOut, p.ScaleIn = false, false
	p.Rebalance.Threshold, p.Rebalance.MinOpsPerSec, p.Rebalance.MaxMoves = 0.2, 50, 8
	p.BalanceSustain, p.Scale.Cooldown = 300*time.Millisecond, 300*time.Millisecond
	logw := &tWriter{t: t}
	c := newTClusterWith(t, 1, 2, 0, func(cfg *manager.Config) {
		cfg.Autoscale = opts
		cfg.Logger = slog.New(slog.NewTextHandler(logw, &slog.HandlerOptions{Level: slog.LevelInfo}))
	})
	defer logw.stop()
	mc := c.client()
	ctx := context.Background()
	m0, err := mc.Map(ctx, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	// Four tags in four distinct slots of shard 1.
	var tags []string
	hot := map[int]bool{}
	for i := 0; len(tags) < 4; i++ {
		tag := c.keyIn(1, "hot"+strconv.Itoa(i)+"-")
		if s := cluster.SlotString(tag); !hot[s] {
			hot[s] = true
			tags = append(tags, tag)
		}
	}
	var seeds []string
	for _, n := range c.nodes {
		seeds = append(seeds, n.addr)
	}
	rc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: seeds, MaxRedirects: 32,
		MinRetryBackoff: 2 * time.Millisecond, MaxRetryBackoff: 50 * time.Millisecond})
	defer rc.Close()
	var mu sync.Mutex
	acked := map[string]int64{}
	var errs []error
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range tags {
		wg.Add(1)
		go func() {
			defer wg.Done()
			k := "{" + tags[w] + "}:n"
			for {
				select {
				case <-stop:
					return
				default:
				}
				err := rc.Incr(ctx, k).Err()
				mu.Lock()
				if err == nil {
					acked[k]++
				} else {
					errs = append(errs, err)
				}
				mu.Unlock()
			}
		}()
	}
	halt := func() {
		select {
		case <-stop:
		default:
			close(stop)
		}
		wg.Wait()
	}
	defer halt()
	var m1 *cluster.Map
	waitUntilFor(t, 60*time.Second, "hot slots moved to shard 2", func() bool {
		m, err := mc.Map(ctx, 0, 0)
		if err != nil || len(m.Migrations) > 0 {
			return false
		}
		for s := range hot {
			if m.Slots[s] == 2 {
				m1 = m
				return true
			}
		}
		return false
	})
	halt()
	moved := 0
	for s := 0; s < cluster.NumSlots; s++ {
		if a, b := m0.Slots[s], m1.Slots[s]; a != b {
			if !hot[s] || a != 1 || b != 2 {
				t.Fatalf("slot %d moved from shard %d to %d (the hot slots: %v)", s, a, b, hot)
			}
			moved++
		}
	}
	if len(errs) > 0 {
		t.Fatalf("%d client errors, first %v", len(errs), errs[0])
	}
	var lost []string
	for k, n := range acked {
		if got, err := rc.Get(ctx, k).Int64(); err != nil || got != n {
			lost = append(lost, fmt.Sprintf("%s = %d (%v), %d INCRs acknowledged", k, got, err, n))
		}
	}
	st, err := mc.Autoscale(ctx)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, d := range st.Decisions {
		if d.Action == cluster.ActionBalance {
			found = true
			t.Logf("decision: %s", d.Reason)
		}
	}
	if !found {
		t.Fatalf("no rebalance decision in %+v", st.Decisions)
	}
	t.Logf("%d hot slots moved to shard 2", moved)
	if len(lost) > 0 {
		for _, l := range lost {
			t.Log("LOST: " + l)
		}
		t.Fatalf("%d keys lost acknowledged INCRs", len(lost))
	}
}
