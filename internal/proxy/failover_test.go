package proxy_test

import (
	"os"
	"runtime/pprof"
	"strconv"
	"sync"
	"testing"
	"time"

	tu "shoal/internal/testutil"
)

// TestProxyPrimaryKill writes through the proxy while a primary is killed
// (sync-replicas 1, two replicas per shard): the client sees no error, only latency, and every
// acknowledged write is readable afterwards.
func TestProxyPrimaryKill(t *testing.T) {
	c := newTCluster(t, 2, 2, map[string]int{"sync_replicas": 1}) // two replicas: one is left to confirm writes after the failover
	p := c.startProxy(30 * time.Second)
	ids := c.shardIDs()
	victim := c.primary(ids[0])
	cl := tu.Dial(t, p.Addr())

	var mu sync.Mutex
	acked := 0
	stop := make(chan struct{})
	done := make(chan struct{})
	var failure string
	go func() {
		defer close(done)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			k := "w" + strconv.Itoa(i)
			r, err := cl.DoReply("SET", k, strconv.Itoa(i))
			if err != nil || r.String() != "OK" {
				mu.Lock()
				failure = k + ": " + r.String()
				if err != nil {
					failure += " " + err.Error()
				}
				mu.Unlock()
				return
			}
			mu.Lock()
			acked = i + 1
			mu.Unlock()
		}
	}()
	count := func() int { mu.Lock(); defer mu.Unlock(); return acked }
	waitUntil(t, "writes before the kill", func() bool { return count() > 50 || isDone(done) })
	epoch := c.mgr.Map().Epoch
	victim.srv.Close()
	waitUntil(t, "a failover", func() bool { return c.primary(ids[0]) != victim || isDone(done) })
	after := count()
	waitUntil(t, "writes after the failover", func() bool { return count() > after+100 || isDone(done) })
	close(stop)
	<-done
	if failure != "" {
		pprof.Lookup("goroutine").WriteTo(os.Stderr, 1)
		t.Fatalf("the client saw an error: %s", failure)
	}
	if c.mgr.Map().Epoch == epoch {
		t.Fatal("no new map")
	}
	n := count()
	rd := tu.Dial(t, p.Addr())
	for i := 0; i < n; i++ {
		if got := rd.Do("GET", "w"+strconv.Itoa(i)); got != strconv.Quote(strconv.Itoa(i)) {
			t.Fatalf("acknowledged w%d lost: %s", i, got)
		}
	}
	t.Logf("%d writes, %d before the failover", n, after)
}

func isDone(ch chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}
