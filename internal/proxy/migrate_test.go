package proxy_test

import (
	"context"
	"strconv"
	"sync"
	"testing"
	"time"

	"shoal/internal/cluster"
	tu "shoal/internal/testutil"
)

// TestProxySlotMove moves slots between shards while a plain client
// writes and reads keys in them through the proxy: no error reaches the
// client (the cutover's TRYAGAIN and the flip's MOVED are retried inside
// the proxy) and every acknowledged write is read back afterwards.
func TestProxySlotMove(t *testing.T) {
	c := newTCluster(t, 2, 0, nil)
	p := c.startProxy(10 * time.Second)
	ids := c.shardIDs()
	// Three slots of the first shard, with keys in each.
	var slots []int
	var keys []string
	for i := 0; len(slots) < 3; i++ {
		k := c.keyIn(ids[0], "mv"+strconv.Itoa(i)+"-")
		s := cluster.SlotString(k)
		if len(slots) == 0 || slots[len(slots)-1] != s {
			slots = append(slots, s)
			keys = append(keys, k)
		}
	}
	cl := tu.Dial(t, p.Addr())
	var mu sync.Mutex
	var failure string
	acked := map[string]int{}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			k := keys[i%len(keys)]
			r, err := cl.DoReply("INCR", k)
			if err != nil || r.Kind != ':' {
				mu.Lock()
				failure = "INCR " + k + ": " + r.String()
				if err != nil {
					failure += " " + err.Error()
				}
				mu.Unlock()
				return
			}
			mu.Lock()
			acked[k] = int(r.Int)
			mu.Unlock()
		}
	}()
	mc := c.client()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := mc.Migrate(ctx, slots, ids[1]); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the slots moved", func() bool {
		mp := c.mgr.Map()
		for _, s := range slots {
			if int(mp.Slots[s]) != ids[1] || mp.Migrations[s] != nil {
				return false
			}
		}
		return true
	})
	time.Sleep(50 * time.Millisecond) // a few more writes on the new owner (no event to await)
	close(stop)
	<-done
	if failure != "" {
		t.Fatalf("the client saw an error: %s", failure)
	}
	rd := tu.Dial(t, p.Addr())
	for k, n := range acked {
		if got := rd.Do("GET", k); got != strconv.Quote(strconv.Itoa(n)) {
			t.Fatalf("%s = %s, %d INCRs acknowledged", k, got, n)
		}
	}
	dst := c.primary(ids[1])
	for _, k := range keys {
		if got := direct(t, dst.addr, "EXISTS", k); got != "(integer) 1" {
			t.Fatalf("%s not on the target: %s", k, got)
		}
	}
}
