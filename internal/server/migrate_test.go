package server_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"shoal/internal/cluster"
)

// A slot moves between shards while a cluster client writes (INCR, SET,
// RPUSH) and reads keys in it: no error reaches the client, no write is
// lost, the source drops its copy, and the target's replica equals its
// primary slot by slot.
func TestSlotMoveUnderLoad(t *testing.T) {
	c := newTCluster(t, 1, 2, 1)
	mc := c.client()
	ctx := context.Background()

	// Keys in one slot owned by shard 1 (a hash tag).
	tag := c.keyIn(1, "tag")
	slot := cluster.SlotString(tag)
	key := func(i int) string { return "{" + tag + "}:" + strconv.Itoa(i) }
	src, _ := c.shard(1)
	dst, dstReps := c.shard(2)

	var seeds []string
	for _, n := range c.nodes {
		seeds = append(seeds, n.addr)
	}
	rc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: seeds, MaxRedirects: 64, // ~3 s of TRYAGAIN retries: a cutover on a loaded machine
		MinRetryBackoff: 2 * time.Millisecond, MaxRetryBackoff: 50 * time.Millisecond})
	defer rc.Close()
	for i := 0; i < 2000; i++ {
		if err := rc.Set(ctx, key(i), "v"+strconv.Itoa(i), 0).Err(); err != nil {
			t.Fatal(err)
		}
	}

	var incrs, pushes atomic.Int64
	var errs []error
	var mu sync.Mutex
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := 0; w < 3; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				var err error
				switch w {
				case 0:
					if err = rc.Incr(ctx, key(-1)).Err(); err == nil {
						incrs.Add(1)
					}
				case 1:
					if err = rc.RPush(ctx, key(-2), i).Err(); err == nil {
						pushes.Add(1)
					}
				default:
					k := key(i % 2000)
					var v string
					if v, err = rc.Get(ctx, k).Result(); err == nil && v != "v"+strconv.Itoa(i%2000) {
						err = fmt.Errorf("GET %s = %q", k, v)
					}
				}
				if err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
			}
		}()
	}
	time.Sleep(100 * time.Millisecond) // writes before the move (no event to await)
	if _, err := mc.Migrate(ctx, []int{slot}, 2); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the slot moved", func() bool {
		mp, err := mc.Map(ctx, 0, 0)
		return err == nil && int(mp.Slots[slot]) == 2 && mp.Migrations[slot] == nil
	})
	time.Sleep(100 * time.Millisecond) // writes after the move
	close(stop)
	wg.Wait()
	for i, err := range errs {
		if i < 5 {
			t.Errorf("client error: %v", err)
		}
	}
	if len(errs) > 0 {
		t.Fatalf("%d client errors", len(errs))
	}
	if got, err := rc.Get(ctx, key(-1)).Int64(); err != nil || got != incrs.Load() {
		t.Fatalf("counter = %d (%v), %d INCRs acknowledged", got, err, incrs.Load())
	}
	if got, err := rc.LLen(ctx, key(-2)).Result(); err != nil || got != pushes.Load() {
		t.Fatalf("list has %d (%v), %d RPUSHes acknowledged", got, err, pushes.Load())
	}
	if n, err := dst.rdb.Do(ctx, "CLUSTER", "COUNTKEYSINSLOT", slot).Int64(); err != nil || n != 2002 {
		t.Fatalf("target holds %d keys (%v), want 2002", n, err)
	}
	waitUntil(t, "the source dropped the slot", func() bool {
		n, err := src.rdb.Do(ctx, "CLUSTER", "COUNTKEYSINSLOT", slot).Int64()
		return err == nil && n == 0
	})
	ds := strconv.Itoa(slot)
	waitUntil(t, "the target's replica equals it", func() bool {
		a, err1 := dst.rdb.Do(ctx, "DEBUG", "DIGEST-SLOT", ds).Text()
		b, err2 := dstReps[0].rdb.Do(ctx, "DEBUG", "DIGEST-SLOT", ds).Text()
		return errors.Join(err1, err2) == nil && a == b
	})
	t.Logf("moved slot %d: %d INCRs, %d RPUSHes during the move", slot, incrs.Load(), pushes.Load())
}

// Drain and rebalance plans through the manager API (dry runs: the moves
// themselves are TestSlotMoveUnderLoad's).
func TestDrainAndRebalancePlans(t *testing.T) {
	c := newTCluster(t, 1, 2, 0)
	mc := c.client()
	ctx := context.Background()
	plan, err := mc.Drain(ctx, 1, true)
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.Moves) != cluster.NumSlots/2 {
		t.Fatalf("drain plans %d moves, want %d", len(plan.Moves), cluster.NumSlots/2)
	}
	for _, mv := range plan.Moves {
		if mv.From != 1 || mv.To != 2 {
			t.Fatalf("drain move %+v", mv)
		}
	}
	if mp, _ := mc.Map(ctx, 0, 0); len(mp.Migrations) != 0 {
		t.Fatal("a dry run queued moves")
	}
	// Balanced by weight, no load: nothing to do, and it says why.
	reb, err := mc.Rebalance(ctx, true, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(reb.Moves) != 0 || reb.Reason == "" {
		t.Fatalf("rebalance of a balanced cluster: %d moves, reason %q", len(reb.Moves), reb.Reason)
	}
	if _, err := mc.Drain(ctx, 9, true); err == nil {
		t.Fatal("drain of a missing shard accepted")
	}
}
