package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// TestDevScaleOutUnderLoad: `shoal dev` with two shards and one standby
// node, the autoscaler on (scale out above 500 ops/s per shard for 2 s);
// writers through the proxy push the load past it. The autoscaler must
// form a shard of the standby node and move slots onto it while the
// writers run: no client error, every acknowledged write readable
// afterwards, and the new shard holding keys. It logs how long the new
// shard took to serve traffic and the writers' throughput and p99 before
// and during the moves (bench/scaleout.sh measures the same at a fixed
// rate).
func TestDevScaleOutUnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("a process cluster")
	}
	d := startDev(t, "--shards", "2", "--replicas", "0", "--standby", "1", "--memcached=false", "--appendonly=false",
		"--autoscale", "--manager-flags", "--scale-out-ops 500 --scale-in-ops 0 --autoscale-sustain 2s --load-smoothing 2s "+
			"--autoscale-scale-in=false --autoscale-rebalance=false")
	ctx := context.Background()
	rc := redis.NewClient(&redis.Options{Addr: d.proxy, PoolSize: 16, MaxRetries: -1})
	defer rc.Close()

	type sample struct {
		at  time.Time
		lat time.Duration
	}
	const writers, keysPer = 8, 500
	var mu sync.Mutex
	acked := make([][]int, writers) // writer → key → last acknowledged version
	var errs []error
	var samples []sample
	stop := make(chan struct{})
	var wg sync.WaitGroup
	start := time.Now()
	for w := 0; w < writers; w++ {
		acked[w] = make([]int, keysPer)
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []sample
			defer func() {
				mu.Lock()
				samples = append(samples, mine...)
				mu.Unlock()
			}()
			for v := 1; ; v++ {
				for k := 0; k < keysPer; k++ {
					select {
					case <-stop:
						return
					default:
					}
					t0 := time.Now()
					err := rc.Set(ctx, fmt.Sprintf("so:%d:%d", w, k), v, 0).Err()
					mine = append(mine, sample{t0, time.Since(t0)})
					mu.Lock()
					if err != nil {
						errs = append(errs, fmt.Errorf("SET so:%d:%d: %w", w, k, err))
					} else {
						acked[w][k] = v
					}
					mu.Unlock()
				}
			}
		}()
	}

	// The autoscaler's shard: formed, owning slots, then no move left.
	var serving, done time.Time
	deadline := time.Now().Add(3 * time.Minute)
	for done.IsZero() {
		if time.Now().After(deadline) {
			close(stop)
			wg.Wait()
			out, _ := d.ctl(t, "autoscale", "status")
			t.Fatalf("no scale-out within 3 min:\n%s", out)
		}
		st := d.status(t)
		out, err := d.ctl(t, "status", "--json")
		if err != nil {
			t.Fatal(err)
		}
		var as struct {
			Autoscale struct {
				InFlight string `json:"in_flight"`
			} `json:"autoscale"`
		}
		if err := json.Unmarshal(out, &as); err != nil {
			t.Fatal(err)
		}
		if len(st.Shards) == 3 && st.Shards[2].Slots > 0 {
			if serving.IsZero() {
				serving = time.Now()
			}
			if as.Autoscale.InFlight == "" {
				done = time.Now()
			}
		}
		time.Sleep(100 * time.Millisecond) // polling the manager's status
	}
	close(stop)
	wg.Wait()

	if len(errs) > 0 {
		t.Fatalf("%d client errors through the proxy during the scale-out, the first: %v", len(errs), errs[0])
	}
	for w := range acked {
		for k, v := range acked[w] {
			got, err := rc.Get(ctx, fmt.Sprintf("so:%d:%d", w, k)).Result()
			if v == 0 {
				continue
			}
			if err != nil || got != strconv.Itoa(v) {
				t.Fatalf("so:%d:%d = %q (%v), last acknowledged %d", w, k, got, err, v)
			}
		}
	}
	st := d.status(t)
	if len(st.Shards) != 3 || st.Shards[2].Slots == 0 {
		t.Fatalf("shards after the scale-out: %+v", st.Shards)
	}
	nc := redis.NewClient(&redis.Options{Addr: st.Shards[2].Primary})
	defer nc.Close()
	n, err := nc.DBSize(ctx).Result()
	if err != nil || n == 0 {
		t.Fatalf("the new shard's primary holds %d keys (%v)", n, err)
	}

	phase := func(from, to time.Time) string {
		var lat []time.Duration
		for _, s := range samples {
			if !s.at.Before(from) && s.at.Before(to) {
				lat = append(lat, s.lat)
			}
		}
		if len(lat) == 0 {
			return "no requests"
		}
		slices.Sort(lat)
		return fmt.Sprintf("%.0f writes/s, p99 %v", float64(len(lat))/to.Sub(from).Seconds(), lat[len(lat)*99/100])
	}
	t.Logf("new shard serving after %.1f s, moves done after %.1f s (%d slots, %d keys on it); before the moves: %s; during: %s",
		serving.Sub(start).Seconds(), done.Sub(start).Seconds(), st.Shards[2].Slots, n,
		phase(start, serving), phase(serving, done))
}
