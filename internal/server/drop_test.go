package server

import (
	"context"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

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

// The cleanups begun together (a window's 1024 slots) run in one
// goroutine, in order, each after its slot's previous cleanup: a
// goroutine each had the event loops wait behind a thousand runnable
// goroutines at every flip.
func TestCleanupsRunInOneGoroutinePerBatch(t *testing.T) {
	var mv migrations
	var mu sync.Mutex
	var ran []string
	note := func(s string) { mu.Lock(); ran = append(ran, s); mu.Unlock() }
	gate := make(chan struct{})
	mv.mu.Lock()
	mv.cleanupLocked(7, func() { <-gate; note("7a") })
	mv.startCleanupsLocked()
	before := runtime.NumGoroutine()
	var others sync.WaitGroup
	others.Add(1000)
	for i := 0; i < 1000; i++ {
		mv.cleanupLocked(1000+i, func() { note("other"); others.Done() })
	}
	mv.cleanupLocked(7, func() { note("7b") })
	last := mv.cleaning[7]
	mv.startCleanupsLocked()
	mv.mu.Unlock()
	if n := runtime.NumGoroutine() - before; n > 10 { // 1, and some slack for other goroutines
		t.Fatalf("%d goroutines started for a batch of 1001 cleanups", n)
	}
	// The other slots' cleanups do not wait for slot 7's first one.
	othersDone := make(chan struct{})
	go func() { others.Wait(); close(othersDone) }()
	select {
	case <-othersDone:
	case <-time.After(10 * time.Second):
		mu.Lock()
		defer mu.Unlock()
		t.Fatalf("%d of 1000 cleanups ran while slot 7's first one waited", len(ran))
	}
	close(gate)
	<-last
	if got := ran[1000:]; len(got) != 2 || got[0] != "7a" || got[1] != "7b" {
		t.Fatalf("slot 7's cleanups ran as %v", got)
	}
}

// importStatuses and importsReady over the slots of two importers (each
// locked once for all its slots): a slot's own error before its
// importer's, the applied position advanced to the acknowledged marks,
// and readiness only for the same attempt, streaming, at or past lsn.
func TestImportStatusesOfManySlots(t *testing.T) {
	s := &Server{}
	a := &importer{s: s, marks: []posMark{{pos: 10, local: 5}}}
	b := &importer{s: s, err: "source gone"}
	mk := func(im *importer, slot int, state *string) *slotImport {
		si := &slotImport{im: im, slot: slot, ident: "1/1/2/0"}
		si.state.Store(state)
		im.slots = append(im.slots, si)
		return si
	}
	a1, a2, b3 := mk(a, 1, &impStreaming), mk(a, 2, &impStreaming), mk(b, 3, &impFailed)
	a2.err = "bad frame"
	a1.keys.Store(7)
	st := importStatuses([]*slotImport{a1, nil, a2, b3})
	want := []importStatus{
		{state: impStreaming, applied: 10, keys: 7},
		{},
		{state: impStreaming, applied: 10, err: "bad frame"},
		{state: impFailed, err: "source gone"},
	}
	if !slices.Equal(st, want) {
		t.Fatalf("statuses %+v, want %+v", st, want)
	}
	if len(a.marks) != 0 {
		t.Fatalf("marks left after the advance: %v", a.marks)
	}
	s.moves.imports = map[int]*slotImport{1: a1, 2: a2, 3: b3}
	slots := []int{1, 2, 3, 4, 1}
	idents := []string{"1/1/2/0", "1/1/2/0", "1/1/2/0", "1/1/2/0", "1/1/2/9"}
	ready := make([]bool, len(slots))
	if s.importsReady(slots, idents, []uint64{10, 11, 0, 0, 0}, ready) {
		t.Fatal("all ready")
	}
	if want := []bool{true, false, false, false, false}; !slices.Equal(ready, want) {
		t.Fatalf("ready %v, want %v", ready, want)
	}
	// A slot found ready stays so; the others are asked again.
	a.applied.Store(11)
	ready = []bool{true, false, true, true, true}
	if !s.importsReady(slots, idents, []uint64{99, 11, 0, 0, 0}, ready) {
		t.Fatalf("not all ready: %v", ready)
	}
}
