package server_test

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"shoal/internal/cluster"
	"shoal/internal/server"
)

// Slots moved from shard 1 to shard 2 under INCR load, then back with no
// load: every acknowledged INCR must be there after each. It caught the
// source streaming its own drop of the slot (journaled deletes after the
// flip) to the target, which deleted the keys it had just received (~1
// run in 4 under -race before sendSlot ended the stream at the flip).
//
// The "slotsync" run has every node report protocol 1: the targets then
// move each slot on a stream of its own (CLUSTER SLOTSYNC, the frames of
// protocol 1) instead of one stream per source (CLUSTER MOVESYNC). The
// "protocol2" run has every node report protocol 2: the migrator pushes
// no fence or flip (CLUSTER MOVEFENCE, MOVEDONE), the maps alone step
// the moves; in the "protocol3" run it pushes them and polls the targets
// for the catch-up; in the "movesync" run (protocol 4) it pushes them
// and awaits the catch-up with CLUSTER MOVEWAIT.
func TestSlotMovesThereAndBackKeepWrites(t *testing.T) {
	if testing.Short() {
		t.Skip("in-process cluster")
	}
	for _, proto := range []string{"movesync", "slotsync", "protocol2", "protocol3"} {
		t.Run(proto, func(t *testing.T) {
			var opts map[string]server.Options
			if p := map[string]int{"slotsync": 1, "protocol2": 2, "protocol3": 3}[proto]; p > 0 {
				opts = map[string]server.Options{}
				for i := 1; i <= 4; i++ {
					opts["n"+strconv.Itoa(i)] = server.Options{Protocol: p}
				}
			}
			slotMovesThereAndBack(t, newTClusterOpts(t, 1, 2, 1, nil, opts), proto)
		})
	}
}

func slotMovesThereAndBack(t *testing.T, c *tcluster, proto string) {
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
	// The targets chose the stream by the protocol the map records.
	for id, n := range c.leaderMap().Nodes {
		if legacy := n.Protocol < 2; legacy != (proto == "slotsync") {
			t.Errorf("node %s has protocol %d in the map: not a %s run", id, n.Protocol, proto)
		}
	}
	// The migrator pushed the steps to nodes of protocol 3 or later only,
	// and awaited the catch-up with MOVEWAIT on protocol 4 only.
	var fences, flips, waited float64
	for _, n := range c.nodes {
		info := n.rdb.Info(ctx, "cluster").Val()
		fences += infoNum(info, "cluster_cutover_pushed_fences")
		flips += infoNum(info, "cluster_cutover_pushed_flips")
		waited += infoNum(info, "cluster_cutover_waited_slots")
	}
	if pushed := fences+flips > 0; pushed != (proto == "movesync" || proto == "protocol3") {
		t.Errorf("%s run: the nodes took %v pushed fences and %v pushed flips", proto, fences, flips)
	}
	if (waited > 0) != (proto == "movesync") {
		t.Errorf("%s run: the targets found %v slots applied for CLUSTER MOVEWAIT", proto, waited)
	}
}
