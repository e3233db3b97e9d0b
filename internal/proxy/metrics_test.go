package proxy_test

import (
	"bufio"
	"net"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"shoal/internal/proxy"
	tu "shoal/internal/testutil"
)

// TestProxyMetrics scrapes the admin endpoint: /healthz, /readyz, and
// /metrics with exactly the shoal_proxy_ names docs/metrics.md lists;
// per-command counts follow the commands sent.
func TestProxyMetrics(t *testing.T) {
	c := newTCluster(t, 2, 0, nil)
	p := c.startProxyWith(func(cfg *proxy.Config) {
		cfg.AdminAddr = "127.0.0.1:0"
		cfg.HotKeySample = 1
		cfg.HotKeyCache, cfg.HotKeyCacheTTL = 4, time.Second
	})
	base := "http://" + p.AdminAddr()
	if code, body := tu.HTTPGet(t, base+"/healthz"); code != 200 || body != "ok\n" {
		t.Fatalf("/healthz: %d %q", code, body)
	}
	if code, body := tu.HTTPGet(t, base+"/readyz"); code != 200 {
		t.Fatalf("/readyz: %d %q", code, body)
	}
	cl := tu.Dial(t, p.Addr())
	k := c.keyIn(c.shardIDs()[0], "m")
	cl.Do("SET", k, "v")
	for i := 0; i < 5; i++ {
		cl.Do("GET", k)
	}
	cl.Do("NOSUCHCMD")
	cl.Do("SHOAL", "HOTKEYS")
	nc, err := net.Dial("tcp", p.MCAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	mcRoundTrip(t, nc, bufio.NewReader(nc), "get "+k+"\r\n", 3)

	code, body := tu.HTTPGet(t, base+"/metrics")
	if code != 200 {
		t.Fatalf("/metrics: %d", code)
	}
	seen := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^# TYPE (shoal_proxy_\w+) `).FindAllStringSubmatch(body, -1) {
		seen[m[1]] = true
	}
	tu.CheckDocumentedMetrics(t, "shoal_proxy_", seen)
	value := func(series string) float64 {
		t.Helper()
		for _, l := range strings.Split(body, "\n") {
			if v, ok := strings.CutPrefix(l, series+" "); ok {
				f, err := strconv.ParseFloat(v, 64)
				if err != nil {
					t.Fatalf("%s: %q", series, v)
				}
				return f
			}
		}
		t.Fatalf("no series %s in:\n%s", series, body)
		return 0
	}
	checks := map[string]float64{
		`shoal_proxy_command_duration_seconds_count{command="get"}`:                           5,
		`shoal_proxy_command_duration_seconds_count{command="set"}`:                           1,
		`shoal_proxy_command_duration_seconds_count{command="unknown"}`:                       1,
		`shoal_proxy_command_duration_seconds_count{command="shoal"}`:                         1,
		`shoal_proxy_command_duration_seconds_count{command="mc_get"}`:                        1,
		`shoal_proxy_connected_clients`:                                                       2,
		`shoal_proxy_cluster_shards`:                                                          2,
		`shoal_proxy_backend_errors_total{backend="` + c.primary(c.shardIDs()[0]).addr + `"}`: 0,
	}
	for series, want := range checks {
		if got := value(series); got != want {
			t.Errorf("%s = %v, want %v", series, got, want)
		}
	}
	if value(`shoal_proxy_hot_key_top_score`) < 1 {
		t.Error("no hot key score")
	}
	if value(`shoal_proxy_hot_key_cache_hits_total`)+value(`shoal_proxy_hot_key_cache_misses_total`) == 0 {
		t.Error("the hot-key cache saw no read")
	}
	// The latency histogram's buckets are cumulative and end at +Inf.
	if value(`shoal_proxy_command_duration_seconds_bucket{command="get",le="+Inf"}`) != 5 {
		t.Error("+Inf bucket of get")
	}
}
