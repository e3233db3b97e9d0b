package e2e

import (
	"context"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// TestDevProxy drives shoal dev's proxy with plain (non-cluster) clients:
// redis-cli, go-redis, redis-benchmark and a raw memcached exchange.
func TestDevProxy(t *testing.T) {
	d := startDev(t, "--shards", "3", "--replicas", "0")
	if d.proxy == "" || d.proxyMC == "" {
		t.Fatalf("no proxy lines:\n%s", d.log.String())
	}
	host, port, _ := strings.Cut(d.proxy, ":")
	rcli := func(args ...string) string {
		t.Helper()
		out, err := exec.Command(needTool(t, "redis-cli"), append([]string{"-h", host, "-p", port}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("redis-cli %q: %v\n%s", args, err, out)
		}
		return strings.TrimRight(string(out), "\n")
	}
	if got := rcli("MSET", "a", "1", "b", "2", "c", "3", "d", "4"); got != "OK" {
		t.Fatalf("MSET: %q", got)
	}
	if got := rcli("MGET", "d", "c", "nope", "a"); got != "4\n3\n\n1" {
		t.Fatalf("MGET: %q", got)
	}
	if got := rcli("DBSIZE"); got != "4" {
		t.Fatalf("DBSIZE: %q", got)
	}

	rdb := redis.NewClient(&redis.Options{Addr: d.proxy})
	defer rdb.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := rdb.Set(ctx, "gr", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if v, err := rdb.Get(ctx, "gr").Result(); err != nil || v != "v" {
		t.Fatalf("go-redis GET: %q %v", v, err)
	}
	pipe := rdb.Pipeline()
	for i := 0; i < 100; i++ {
		pipe.Incr(ctx, "ctr")
	}
	if _, err := pipe.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	if v := rdb.Get(ctx, "ctr").Val(); v != "100" {
		t.Fatalf("ctr %q", v)
	}

	out, err := exec.Command(needTool(t, "redis-benchmark"), "-h", host, "-p", port, "-n", "2000", "-c", "10", "-P", "4", "-q", "-t", "set,get,mset").CombinedOutput()
	if err != nil || strings.Contains(string(out), "rror") || !strings.Contains(string(out), "MSET") {
		t.Fatalf("redis-benchmark: %v\n%s", err, out)
	}
	t.Logf("redis-benchmark through the proxy:\n%s", out)

	if got := rawExchange(t, d.proxyMC, "set mk 5 0 2\r\nhi\r\nget mk nokey a\r\n"); got != "STORED\r\nVALUE mk 5 2\r\nhi\r\nVALUE a 0 1\r\n1\r\nEND\r\n" {
		t.Fatalf("memcached: %q", got)
	}

	// The admin ports (the proxy's, every node's, the manager's) and the
	// hot keys.
	checkHTTP := func(base, path, want string) {
		t.Helper()
		r, err := http.Get(base + path)
		if err != nil {
			t.Fatalf("%s%s: %v", base, path, err)
		}
		body, _ := io.ReadAll(r.Body)
		r.Body.Close()
		if r.StatusCode != 200 || !strings.Contains(string(body), want) {
			t.Fatalf("%s%s: %d %.300s", base, path, r.StatusCode, body)
		}
	}
	for path, want := range map[string]string{
		"/readyz":  "ready",
		"/healthz": "ok",
		"/metrics": `shoal_proxy_command_duration_seconds_count{command="mset"}`,
	} {
		checkHTTP(d.admin, path, want)
	}
	if len(d.nodeAdmin) != len(d.nodes) {
		t.Fatalf("node-admin lines %v for nodes %v", d.nodeAdmin, d.nodes)
	}
	for _, a := range d.nodeAdmin {
		checkHTTP(a, "/readyz", "ready")
		checkHTTP(a, "/metrics", `shoal_server_replication_role{role=`)
	}
	checkHTTP("http://"+d.manager, "/readyz", "ready")
	checkHTTP("http://"+d.manager, "/metrics", "shoal_manager_raft_leader 1")
	out, err = exec.Command(shoalBin, "ctl", "hotkeys", "--proxy", d.proxy, "-n", "20").CombinedOutput()
	if err != nil || !strings.Contains(string(out), `"ctr"`) {
		t.Fatalf("shoal ctl hotkeys: %v\n%s", err, out)
	}
}
