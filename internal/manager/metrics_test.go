package manager

import (
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	cl := &http.Client{Timeout: 10 * time.Second}
	r, err := cl.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	b, _ := io.ReadAll(r.Body)
	return r.StatusCode, string(b)
}

// metricValue is a series' value in a /metrics answer (fails if absent).
func metricValue(t *testing.T, body, series string) float64 {
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

// A manager that knows no leader is not ready; a follower is, and its
// metrics say it follows (the leader-only gauges read 0 there).
// TestClusterMetrics (internal/server) checks the leader's metrics
// against docs/metrics.md.
func TestManagerReadyAndFollowerMetrics(t *testing.T) {
	lone, err := New(Config{ID: "x1", RaftAddr: freeAddr(t), HTTPAddr: "127.0.0.1:0", Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if err := lone.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lone.Close() })
	if code, body := get(t, "http://"+lone.HTTPAddr()+"/readyz"); code != 503 || !strings.Contains(body, "no Raft leader") {
		t.Fatalf("/readyz without a leader: %d %q", code, body)
	}
	_, body := get(t, "http://"+lone.HTTPAddr()+"/metrics")
	for series, want := range map[string]float64{
		"shoal_manager_raft_leader": 0, "shoal_manager_raft_has_leader": 0, "shoal_manager_raft_last_contact_seconds": -1,
	} {
		if got := metricValue(t, body, series); got != want {
			t.Errorf("lone manager: %s = %v, want %v", series, got, want)
		}
	}

	ms := startManagers(t, 2)
	f := ms[1]
	waitFor(t, "the follower has the map with both managers", func() bool { return f.Map().Managers["m2"] != "" })
	if code, body := get(t, "http://"+f.HTTPAddr()+"/readyz"); code != 200 {
		t.Fatalf("follower /readyz: %d %q", code, body)
	}
	_, body = get(t, "http://"+f.HTTPAddr()+"/metrics")
	for series, want := range map[string]float64{
		"shoal_manager_raft_leader": 0, "shoal_manager_raft_has_leader": 1,
		"shoal_manager_shards_unhealthy": 0, "shoal_manager_primaries_without_lease": 0,
	} {
		if got := metricValue(t, body, series); got != want {
			t.Errorf("follower: %s = %v, want %v", series, got, want)
		}
	}
	if c := metricValue(t, body, "shoal_manager_raft_last_contact_seconds"); c < 0 || c > 10 {
		t.Errorf("follower last contact %v s", c)
	}
	if e := metricValue(t, body, "shoal_manager_map_epoch"); e != float64(f.Map().Epoch) || e == 0 {
		t.Errorf("follower map epoch %v (map %d)", e, f.Map().Epoch)
	}
}
