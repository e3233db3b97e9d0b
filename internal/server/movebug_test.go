package server_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"shoal/internal/cluster"
)

// Slots moved from shard 1 to shard 2 under INCR load, then back with no
// load: every acknowledged INCR must be there after each. A reproducer
// of a slot-move bug that loses acknowledged writes now and then (seen
// in ~1 run of 4 under -race at 3dc13bc, before the autoscaler: "there:
// as:349 (slot 8048) = 6, 14 acked", "back: as:295 (slot 8080) = 0
// (redis: nil), 13 acked"). Skipped unless SHOAL_REPRO_MOVE_LOSS=1 until
// it is fixed (internal/server/migrate.go, internal/manager/migrator.go).
func TestSlotMovesThereAndBackKeepWrites(t *testing.T) {
	if os.Getenv("SHOAL_REPRO_MOVE_LOSS") == "" {
		t.Skip("known bug: slot moves lose acknowledged writes intermittently; SHOAL_REPRO_MOVE_LOSS=1 to run")
	}
	c := newTCluster(t, 1, 2, 1)
	mc := c.client()
	ctx := context.Background()
	var seeds []string
	for _, n := range c.nodes {
		seeds = append(seeds, n.addr)
	}
	rc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: seeds, MaxRedirects: 32,
		MinRetryBackoff: 2 * time.Millisecond, MaxRetryBackoff: 50 * time.Millisecond})
	defer rc.Close()
	const keys = 400
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
	var slots []int
	for s := 8030; s < 8192; s++ {
		slots = append(slots, s)
	}
	time.Sleep(time.Second) // load before the moves (no event to await)
	if _, err := mc.Migrate(ctx, slots, 2); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "moved", func() bool {
		m, err := mc.Map(ctx, 0, 0)
		return err == nil && len(m.Migrations) == 0 && m.Slots[8100] == 2
	})
	time.Sleep(time.Second) // load after them
	close(stop)
	wg.Wait()
	check := func(when string) {
		for i := 0; i < keys; i++ {
			got, err := rc.Get(ctx, key(i)).Int64()
			if err != nil || got != acked[i] {
				t.Fatalf("%s: %s (slot %d) = %d (%v), %d acked", when, key(i), cluster.SlotString(key(i)), got, err, acked[i])
			}
		}
	}
	if len(errs) > 0 {
		t.Fatalf("%d errors: %v", len(errs), errs[0])
	}
	check("there")
	if _, err := mc.Migrate(ctx, slots, 1); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "moved back", func() bool {
		m, err := mc.Map(ctx, 0, 0)
		return err == nil && len(m.Migrations) == 0 && m.Slots[8100] == 1
	})
	check("back")
}
