package server

import (
	"context"
	"strconv"
	"sync"
	"testing"

	"github.com/redis/go-redis/v9"

	"shoal/internal/cluster"
	"shoal/internal/persist"
)

// TestDropQueuedOneSlotAtATime: the cleanups of many slots that moved
// away at once (a window of a move) drop their keys one slot after the
// other (dropQueued), not all at once: in the log, each slot's deletes
// form one run. Each call returns once its own slot is empty.
func TestDropQueuedOneSlotAtATime(t *testing.T) {
	s, addr := startOwnRecordsNode(t, t.TempDir(), "appendfsync", "always")
	ctx := context.Background()
	c := redis.NewClient(&redis.Options{Addr: addr})
	defer c.Close()
	const slots, perSlot = 48, 700 // two batches of deletes a slot
	var tags []string
	seen := map[int]bool{}
	for i := 0; len(tags) < slots; i++ {
		tag := "t" + strconv.Itoa(i)
		if sl := cluster.Slot([]byte(tag)); !seen[sl] {
			seen[sl] = true
			tags = append(tags, tag)
		}
	}
	p := c.Pipeline()
	for _, tag := range tags {
		for i := 0; i < perSlot; i++ {
			p.Set(ctx, "{"+tag+"}:"+strconv.Itoa(i), "v", 0)
		}
	}
	if _, err := p.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	before := s.lastLSN()

	var wg sync.WaitGroup
	errs := make(chan string, slots)
	for _, tag := range tags {
		slot := cluster.Slot([]byte(tag))
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.dropQueued(slot, "test")
			s.db.Lock(slot)
			n := s.db.Slot(slot).Len()
			s.db.Unlock(slot)
			if n != 0 {
				errs <- "slot " + strconv.Itoa(slot) + " holds " + strconv.Itoa(n) + " keys after its drop returned"
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	if n, err := c.DBSize(ctx).Result(); err != nil || n != 0 {
		t.Fatalf("dbsize %d, %v after the drops", n, err)
	}
	s.writeLogNow()

	// The deletes in the log: one run per slot.
	dir, base := s.logPaths()
	var order []int
	done := map[int]bool{}
	deletes := 0
	_, err := persist.ReadLog(s.fsys, dir, base, func(lsn uint64, rec []byte) error {
		if lsn <= before {
			return nil
		}
		return persist.ForEachEffect(rec, nil, func(slot int, args [][]byte) error {
			deletes++
			if len(order) == 0 || order[len(order)-1] != slot {
				if done[slot] {
					t.Errorf("slot %d's deletes resume after another slot's (record %d)", slot, lsn)
				}
				done[slot] = true
				order = append(order, slot)
			}
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	if deletes != slots*perSlot || len(order) != slots {
		t.Errorf("%d deletes over %d slots in the log, want %d over %d", deletes, len(order), slots*perSlot, slots)
	}
}
