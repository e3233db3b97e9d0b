package server_test

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"shoal/internal/cluster"
)

// TestSlotMoveCrashes kills each party of a move (the source's primary,
// the target's primary, the manager leader) at each step (copying,
// cutover, right after done), in sync mode (sync_replicas 1), while a
// writer offers every write to every node. It checks that the move ends
// (resumed, or retried from the new primary), that at no time two shards
// accept writes to the slot (never two in one round, and never the
// source again once the target has), that no acknowledged write is
// lost, that the owner's replica (the killed node, when it was the
// target's primary) ends up with the owner's copy of the slot (key count
// and DEBUG DIGEST-SLOT), and that every node of the shard that lost the
// slot (the killed one too, once back) ends up without its keys.
func TestSlotMoveCrashes(t *testing.T) {
	if testing.Short() {
		t.Skip("nine cluster scenarios")
	}
	for _, party := range []string{"source", "target", "leader"} {
		for _, step := range []string{"copying", "cutover", "done"} {
			t.Run(party+"/"+step, func(t *testing.T) { runMoveCrash(t, party, step) })
		}
	}
}

// crashWriter offers write i to every node in turn; it records the
// acknowledged writes and the shards that accepted them.
type crashWriter struct {
	nodes  atomic.Pointer[[]*fnode]
	shards map[string]int // node key → shard
	prefix string

	mu       sync.Mutex
	acked    []int
	lastBy   int    // shard that accepted the last acknowledged write
	violated string // the first two-owner observation
	stop     chan struct{}
	done     chan struct{}
}

func (w *crashWriter) run() {
	defer close(w.done)
	for i := 0; ; i++ {
		select {
		case <-w.stop:
			return
		default:
		}
		by := 0
		for _, n := range *w.nodes.Load() {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			err := n.rdb.Set(ctx, w.prefix+strconv.Itoa(i), "v"+strconv.Itoa(i), 0).Err()
			cancel()
			if err != nil {
				continue
			}
			sh := w.shards[n.key]
			w.mu.Lock()
			// Two owners at once show as the source accepting a write
			// after the target accepted one (the writer is sequential, so
			// the order of acceptances is their order in time). The
			// source and then the target accepting the same write is the
			// handover between two of its requests: the other nodes'
			// requests between them can take long (go-redis retries one
			// to the restarting victim with a backoff), time enough for a
			// whole cutover. That case was once reported as "accepted by
			// shards 1 and 2", with the slot ending on shard 2. A write
			// the target accepted and that a cancel then lost fails the
			// check of the acknowledged writes below.
			if w.lastBy == 2 && sh == 1 && w.violated == "" {
				w.violated = fmt.Sprintf("write %d accepted by the source after the target accepted writes", i)
			}
			if by == 0 {
				w.acked = append(w.acked, i)
			}
			w.lastBy, by = sh, sh
			w.mu.Unlock()
		}
		if by == 0 {
			time.Sleep(5 * time.Millisecond) // nobody accepts now (failover, cutover): no event to await
		}
	}
}

func (w *crashWriter) count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.acked)
}

func runMoveCrash(t *testing.T, party, step string) {
	g := &moveGate{}
	g.cutover.Store(step == "copying")
	g.done.Store(step == "cutover")
	nMgrs := 1
	if party == "leader" {
		nMgrs = 3
	}
	c := newTClusterWith(t, nMgrs, 2, 1, g.config)
	mc := c.client()
	ctx := context.Background()
	if _, err := mc.SetConfig(ctx, "sync_replicas", 1); err != nil {
		t.Fatal(err)
	}
	tag := c.keyIn(1, "crash")
	slot := cluster.SlotString(tag)
	src, _ := c.shard(1)
	dst, _ := c.shard(2)
	w := &crashWriter{shards: map[string]int{}, prefix: "{" + tag + "}:", stop: make(chan struct{}), done: make(chan struct{})}
	for _, s := range c.status().Shards {
		for _, n := range append([]string{s.Primary}, s.Replicas...) {
			w.shards[c.byAddr(n).key] = s.ID
		}
	}
	nodes := append([]*fnode(nil), c.nodes...)
	w.nodes.Store(&nodes)
	waitWritable(t, src, w.prefix+"first")
	go w.run()
	defer func() {
		select {
		case <-w.stop:
		default:
			close(w.stop)
		}
		<-w.done
	}()
	waitUntil(t, "acknowledged writes", func() bool { return w.count() >= 20 })

	if _, err := mc.Migrate(ctx, []int{slot}, 2); err != nil {
		t.Fatal(err)
	}
	switch step {
	case "copying":
		waitUntil(t, "the target streams", func() bool { return migStatus(dst, slot)["import_state"] == "streaming" })
	case "cutover":
		waitUntil(t, "the source fenced", func() bool { return migStatus(src, slot)["fenced"] == "1" })
	case "done":
		waitUntil(t, "the flip", func() bool {
			mp, err := mc.Map(ctx, 0, 0)
			return err == nil && int(mp.Slots[slot]) == 2
		})
	}
	before := w.count()
	var victim *fnode
	var victimShard int
	switch party {
	case "source":
		victim, victimShard = src, 1
	case "target":
		victim, victimShard = dst, 2
	case "leader":
		for _, m := range c.mgrs {
			if m.IsLeader() {
				m.Close()
			}
		}
	}
	if victim != nil {
		victim.kill()
	}
	t.Logf("killed the %s at %s after %d acknowledged writes", party, step, before)
	g.cutover.Store(false)
	g.done.Store(false)
	if victim != nil {
		waitUntil(t, "a failover of the victim's shard", func() bool {
			st, err := mc.Status(ctx)
			if err != nil {
				return false
			}
			for _, s := range st.Shards {
				if s.ID == victimShard {
					return s.Primary != victim.addr
				}
			}
			return false
		})
		// The victim returns (a replica now): its shard has two members again.
		c.startNode(victim.key, victim.dir, victim.port)
		nodes := append([]*fnode(nil), c.nodes...)
		w.nodes.Store(&nodes)
	}
	var final *cluster.Map
	waitUntil(t, "the move to end", func() bool {
		mp, err := mc.Map(ctx, 0, 0)
		if err != nil || mp.Migrations[slot] != nil {
			return false
		}
		final = mp
		return true
	})
	owner := int(final.Slots[slot])
	t.Logf("the slot ended on shard %d", owner)
	c.waitHealthy()
	n := w.count()
	waitUntil(t, "writes after the move", func() bool { return w.count() >= n+20 })
	close(w.stop)
	<-w.done
	if w.violated != "" {
		t.Fatal(w.violated)
	}
	p, reps := c.shard(owner)
	for _, i := range w.acked {
		k := w.prefix + strconv.Itoa(i)
		if v, err := p.rdb.Get(ctx, k).Result(); err != nil || v != "v"+strconv.Itoa(i) {
			t.Fatalf("acknowledged write %s missing on shard %d's primary: %q %v", k, owner, v, err)
		}
	}
	// The owner's replica (the killed node, when it was the target's
	// primary) converges to it: the same keys and values in the slot.
	replicaSame := func() bool {
		a, b := digestSlot(p, slot), digestSlot(reps[0], slot)
		return a != "" && a == b && countInSlot(p, slot) == countInSlot(reps[0], slot)
	}
	for deadline := time.Now().Add(60 * time.Second); !replicaSame(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the owner's replica %s holds %d keys of slot %d (digest %s), its primary %d (%s)", reps[0].addr,
				countInSlot(reps[0], slot), slot, digestSlot(reps[0], slot), countInSlot(p, slot), digestSlot(p, slot))
		}
	}
	other := 3 - owner
	op, oreps := c.shard(other)
	for _, n := range append([]*fnode{op}, oreps...) {
		waitUntil(t, "shard "+strconv.Itoa(other)+"'s node "+n.addr+" drops the slot", func() bool { return countInSlot(n, slot) == 0 })
	}
	t.Logf("%d acknowledged writes, all on shard %d", len(w.acked), owner)
}

// digestSlot is DEBUG DIGEST-SLOT slot on n ("" on an error).
func digestSlot(n *fnode, slot int) string {
	d, err := n.rdb.Do(context.Background(), "DEBUG", "DIGEST-SLOT", slot).Text()
	if err != nil {
		return ""
	}
	return d
}
