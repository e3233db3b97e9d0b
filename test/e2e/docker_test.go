package e2e

import (
	"bytes"
	"context"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"shoal/internal/manager"
)

// TestDockerPartition runs a manager and 2 shards × (primary + replica)
// as containers of a FROM-scratch image on a private Docker network,
// writes through go-redis ClusterClient with sync-replicas 1, and cuts a
// primary off the network with `docker network disconnect` (a partition:
// it still runs, but reaches neither the manager nor its clients). The
// replica must take over, every acknowledged write must survive, and the
// old primary, reconnected, must rejoin as a replica with the same data.
func TestDockerPartition(t *testing.T) {
	if testing.Short() {
		t.Skip("needs docker; ~30 s")
	}
	if err := exec.Command("docker", "info").Run(); err != nil {
		t.Skip("docker is not available")
	}
	tag := fmt.Sprintf("shoal-e2e-%d", rand.Intn(1<<30))
	subnet := rand.Intn(200) + 20
	ip := func(host int) string { return fmt.Sprintf("172.29.%d.%d", subnet, host) }
	docker := func(args ...string) string {
		t.Helper()
		out, err := exec.Command("docker", args...).CombinedOutput()
		if err != nil {
			t.Fatalf("docker %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return strings.TrimSpace(string(out))
	}

	// A static binary in a FROM-scratch image.
	dir := t.TempDir()
	build := exec.Command("go", "build", "-o", filepath.Join(dir, "shoal"), "./cmd/shoal")
	build.Dir = repoRoot(t)
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("static build: %v\n%s", err, out)
	}
	os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte("FROM scratch\nCOPY shoal /shoal\nENTRYPOINT [\"/shoal\"]\n"), 0o644)
	docker("build", "-q", "-t", tag, dir)
	t.Cleanup(func() { exec.Command("docker", "rmi", "-f", tag).Run() })
	docker("network", "create", "--subnet", ip(0)+"/24", tag)
	var containers []string
	t.Cleanup(func() {
		if t.Failed() {
			for _, c := range containers {
				out, _ := exec.Command("docker", "logs", "--tail", "30", c).CombinedOutput()
				t.Logf("--- %s\n%s", c, out)
			}
		}
		for _, c := range containers {
			exec.Command("docker", "rm", "-f", c).Run()
		}
		exec.Command("docker", "network", "rm", tag).Run()
	})
	run := func(name, addr string, args ...string) {
		c := tag + "-" + name
		containers = append(containers, c)
		docker(append([]string{"run", "-d", "--name", c, "--network", tag, "--ip", addr, "--tmpfs", "/data", tag}, args...)...)
	}
	mgr := ip(10) + ":7000"
	run("m1", ip(10), "manager", "--id", "m1", "--bootstrap", "--http-addr", mgr, "--raft-addr", ip(10)+":7001", "--dir", "/data/m1")
	mc := manager.NewClient(mgr)
	mc.Retry = 30 * time.Second
	ctx := context.Background()
	if _, err := mc.SetConfig(ctx, "sync_replicas", 1); err != nil {
		t.Fatal(err)
	}
	var nodes []string
	for i := 0; i < 4; i++ {
		a := ip(11 + i)
		run(fmt.Sprintf("n%d", i+1), a, "server", "--port", "6379", "--bind", "0.0.0.0", "--protected-mode", "no",
			"--dir", "/data", "--cluster-announce-ip", a, "--manager", mgr)
		nodes = append(nodes, a+":6379")
	}
	waitE2E(t, "4 nodes registered", 60*time.Second, func() bool {
		st, err := mc.Status(ctx)
		return err == nil && len(st.Nodes) == 4
	})
	if _, err := mc.Create(ctx, 2); err != nil {
		t.Fatal(err)
	}
	waitE2E(t, "a healthy cluster", 60*time.Second, func() bool {
		st, err := mc.Status(ctx)
		if err != nil || !st.Healthy {
			return false
		}
		for _, n := range st.Nodes {
			if !n.Alive || (n.Role == "replica" && !n.Synced) {
				return false
			}
		}
		return true
	})

	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: nodes, MaxRetries: 12, MaxRedirects: 8,
		MinRetryBackoff: 20 * time.Millisecond, MaxRetryBackoff: 300 * time.Millisecond,
		DialTimeout: 500 * time.Millisecond, ReadTimeout: time.Second, WriteTimeout: time.Second})
	defer cc.Close()
	wctx, stop := context.WithCancel(ctx)
	var mu sync.Mutex
	acked := map[string]string{}
	var wg sync.WaitGroup
	for w := 0; w < 3; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; wctx.Err() == nil; i++ {
				k := fmt.Sprintf("dk:%d:%d", w, i)
				if cc.Set(ctx, k, "v", 0).Err() == nil {
					mu.Lock()
					acked[k] = "v"
					mu.Unlock()
				}
			}
		}()
	}
	time.Sleep(time.Second)
	st, err := mc.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	victim := st.Shards[0]
	var victimC string
	for i, n := range nodes {
		if n == victim.Primary {
			victimC = tag + fmt.Sprintf("-n%d", i+1)
		}
	}
	cut := time.Now()
	docker("network", "disconnect", tag, victimC)
	waitE2E(t, "the replica promoted", 20*time.Second, func() bool {
		st, err := mc.Status(ctx)
		return err == nil && st.Shards[0].Primary != victim.Primary
	})
	promoted := time.Since(cut)
	time.Sleep(2 * time.Second) // writes go on against the new primary
	stop()
	wg.Wait()
	t.Logf("partitioned primary replaced after %v; %d acknowledged writes", promoted, len(acked))
	docker("network", "connect", "--ip", strings.Split(victim.Primary, ":")[0], tag, victimC)

	lost := 0
	for k, v := range acked {
		if got, err := cc.Get(ctx, k).Result(); err != nil || got != v {
			lost++
		}
	}
	if lost > 0 {
		t.Fatalf("%d of %d acknowledged writes lost", lost, len(acked))
	}
	// The old primary rejoins as a replica of the new one, with its data.
	old := redis.NewClient(&redis.Options{Addr: victim.Primary, MaxRetries: -1, DialTimeout: time.Second})
	defer old.Close()
	newP := redis.NewClient(&redis.Options{Addr: mustStatus(t, mc).Shards[0].Primary})
	defer newP.Close()
	waitE2E(t, "the old primary resynced as a replica", 60*time.Second, func() bool {
		role, err := old.Do(ctx, "ROLE").Slice()
		if err != nil || len(role) == 0 || role[0] != "slave" {
			return false
		}
		a, err1 := old.Do(ctx, "DEBUG", "DIGEST").Text()
		b, err2 := newP.Do(ctx, "DEBUG", "DIGEST").Text()
		return err1 == nil && err2 == nil && a == b
	})
}

func mustStatus(t *testing.T, mc *manager.Client) *manager.Status {
	t.Helper()
	st, err := mc.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func waitE2E(t *testing.T, what string, limit time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func repoRoot(t *testing.T) string {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Dir(string(bytes.TrimSpace(out)))
}
