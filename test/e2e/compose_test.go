package e2e

import (
	"context"
	"fmt"
	"io"
	"math/rand"
	"net/http"
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

// TestCompose brings up deploy/docker-compose.yml (3 managers, 3 shards ×
// 2 nodes, 2 proxies; image built FROM scratch by scripts/docker-image.sh)
// on a private network of its own, writes through a proxy with
// sync-replicas 1, stops a primary's container (the cluster must heal:
// its replica takes over), then starts the container again: it must
// return as the replica of its old shard with the same data, and no
// acknowledged write may be lost. With sync-replicas 1 and one replica
// per shard, the promoted primary has no replica until the old one is
// back: it refuses writes (NOREPLICAS after sync-timeout) and reads of
// unconfirmed data rather than acknowledge what a second failure would
// lose; those refusals (and TRYAGAIN from the promoted node before its
// lease, once the proxy's retry budget is spent) are the only client
// errors allowed: each says the write was not applied.
func TestCompose(t *testing.T) {
	if testing.Short() {
		t.Skip("needs docker and docker-compose; ~40 s")
	}
	if err := exec.Command("docker", "info").Run(); err != nil {
		t.Skip("docker is not available")
	}
	if _, err := exec.LookPath("docker-compose"); err != nil {
		t.Skip("docker-compose is not installed")
	}
	root := repoRoot(t)
	tag := fmt.Sprintf("shoal-compose-%d", rand.Intn(1<<30))
	image := tag + ":test"
	if out, err := exec.Command(filepath.Join(root, "scripts/docker-image.sh"), image).CombinedOutput(); err != nil {
		t.Fatalf("image: %v\n%s", err, out)
	}
	t.Cleanup(func() { exec.Command("docker", "rmi", "-f", image).Run() })
	net := fmt.Sprintf("172.30.%d", rand.Intn(200)+20)
	p1 := freePort(t)
	env := append(os.Environ(), "SHOAL_IMAGE="+image, "SHOAL_NET="+net,
		fmt.Sprintf("SHOAL_P1_PORT=%d", p1), fmt.Sprintf("SHOAL_P2_PORT=%d", freePort(t)),
		fmt.Sprintf("SHOAL_P1_MC_PORT=%d", freePort(t)), fmt.Sprintf("SHOAL_P2_MC_PORT=%d", freePort(t)))
	compose := func(args ...string) (string, error) {
		cmd := exec.Command("docker-compose", append([]string{"-p", tag, "-f", filepath.Join(root, "deploy/docker-compose.yml")}, args...)...)
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	must := func(args ...string) {
		t.Helper()
		if out, err := compose(args...); err != nil {
			t.Fatalf("docker-compose %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	t.Cleanup(func() {
		if t.Failed() {
			out, _ := compose("logs", "--tail", "20")
			t.Logf("logs:\n%s", out)
		}
		compose("down", "-v", "--timeout", "2")
	})
	must("up", "-d")

	mc := manager.NewClient(net + ".11:7000," + net + ".12:7000," + net + ".13:7000")
	mc.Retry = 30 * time.Second
	ctx := context.Background()
	healthy := func() bool {
		st, err := mc.Status(ctx)
		if err != nil || !st.Healthy || len(st.Shards) != 3 {
			return false
		}
		for _, n := range st.Nodes {
			if !n.Alive || (n.Role == "replica" && !n.Synced) {
				return false
			}
		}
		return len(st.Nodes) == 6
	}
	waitE2E(t, "3 healthy shards made by the init service", 120*time.Second, healthy)
	if _, err := mc.SetConfig(ctx, "sync_replicas", 1); err != nil {
		t.Fatal(err)
	}

	// Writers through proxy p1, a plain (non-cluster) client.
	rc := redis.NewClient(&redis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", p1), MaxRetries: -1,
		ReadTimeout: 15 * time.Second, WriteTimeout: 15 * time.Second})
	defer rc.Close()
	waitE2E(t, "the proxy serving", 30*time.Second, func() bool { return rc.Set(ctx, "probe", "1", 0).Err() == nil })

	// Metrics: every node's and proxy's admin port (9121), the managers'
	// HTTP addresses.
	scrape := func(addr, path, want string) {
		t.Helper()
		hc := &http.Client{Timeout: 10 * time.Second}
		r, err := hc.Get("http://" + addr + path)
		if err != nil {
			t.Fatalf("%s%s: %v", addr, path, err)
		}
		body, _ := io.ReadAll(r.Body)
		r.Body.Close()
		if r.StatusCode != 200 || !strings.Contains(string(body), want) {
			t.Fatalf("%s%s: %d %.300s", addr, path, r.StatusCode, body)
		}
	}
	for i := 1; i <= 6; i++ {
		a := fmt.Sprintf("%s.2%d:9121", net, i)
		scrape(a, "/readyz", "ready")
		scrape(a, "/metrics", "shoal_server_cluster_map_epoch")
	}
	for _, a := range []string{net + ".31:9121", net + ".32:9121"} {
		scrape(a, "/metrics", "shoal_proxy_connected_clients")
	}
	scrape(net+".11:7000", "/readyz", "ready")
	scrape(net+".11:7000", "/metrics", "shoal_manager_shards 3")
	wctx, stop := context.WithCancel(ctx)
	var mu sync.Mutex
	acked := map[string]bool{}
	var errs []string
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; wctx.Err() == nil; i++ {
				k := fmt.Sprintf("ck:%d:%d", w, i)
				err := rc.Set(ctx, k, k, 0).Err()
				mu.Lock()
				if err == nil {
					acked[k] = true
				} else {
					errs = append(errs, err.Error())
				}
				mu.Unlock()
			}
		}()
	}
	time.Sleep(time.Second)

	// Stop shard 1's primary container.
	st := mustStatus(t, mc)
	victim := st.Shards[0]
	service := ""
	for i := 1; i <= 6; i++ {
		if victim.Primary == fmt.Sprintf("%s.2%d:6379", net, i) {
			service = fmt.Sprintf("s%d", i)
		}
	}
	if service == "" {
		t.Fatalf("primary %s is not a compose storage node", victim.Primary)
	}
	must("stop", "--timeout", "0", service)
	waitE2E(t, "the replica promoted", 30*time.Second, func() bool {
		st, err := mc.Status(ctx)
		return err == nil && st.Shards[0].Primary != victim.Primary && st.Shards[0].Primary != ""
	})
	time.Sleep(time.Second) // writes go on against the new primary
	stop()
	wg.Wait()
	for _, e := range errs {
		if !strings.HasPrefix(e, "NOREPLICAS") && !strings.HasPrefix(e, "TRYAGAIN") {
			t.Errorf("client error through the proxy during the failover: %q", e)
		}
	}

	// The stopped container returns as the replica of its shard.
	must("start", service)
	newPrimary := mustStatus(t, mc).Shards[0].Primary
	old := redis.NewClient(&redis.Options{Addr: victim.Primary, MaxRetries: -1, DialTimeout: time.Second})
	defer old.Close()
	np := redis.NewClient(&redis.Options{Addr: newPrimary})
	defer np.Close()
	waitE2E(t, "the old primary back as a synced replica", 60*time.Second, func() bool {
		role, err := old.Do(ctx, "ROLE").Slice()
		if err != nil || len(role) == 0 || role[0] != "slave" {
			return false
		}
		a, err1 := old.Do(ctx, "DEBUG", "DIGEST").Text()
		b, err2 := np.Do(ctx, "DEBUG", "DIGEST").Text()
		return err1 == nil && err2 == nil && a == b
	})
	waitE2E(t, "the cluster healthy again", 60*time.Second, healthy)
	lost := 0
	for k := range acked {
		if v, err := rc.Get(ctx, k).Result(); err != nil || v != k {
			lost++
		}
	}
	if lost > 0 {
		t.Fatalf("%d of %d acknowledged writes lost", lost, len(acked))
	}
	t.Logf("%d acknowledged writes through the proxy (%d refused), none lost", len(acked), len(errs))
}
