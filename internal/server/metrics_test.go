package server_test

import (
	"bufio"
	"context"
	"net"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"shoal/internal/cluster"
	tu "shoal/internal/testutil"
)

// scrape is one /metrics answer.
type scrape struct {
	t    *testing.T
	body string
}

func scrapeMetrics(t *testing.T, addr string) scrape {
	t.Helper()
	code, body := tu.HTTPGet(t, "http://"+addr+"/metrics")
	if code != 200 {
		t.Fatalf("/metrics on %s: %d %s", addr, code, body)
	}
	return scrape{t, body}
}

// names are the metric families of a prefix in the scrape.
func (s scrape) names(prefix string) map[string]bool {
	out := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^# TYPE (`+prefix+`\w+) `).FindAllStringSubmatch(s.body, -1) {
		out[m[1]] = true
	}
	return out
}

// value is one series' value; ok false if absent.
func (s scrape) lookup(series string) (float64, bool) {
	for _, l := range strings.Split(s.body, "\n") {
		if v, ok := strings.CutPrefix(l, series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				s.t.Fatalf("%s: %q", series, v)
			}
			return f, true
		}
	}
	return 0, false
}

func (s scrape) value(series string) float64 {
	s.t.Helper()
	v, ok := s.lookup(series)
	if !ok {
		s.t.Fatalf("no series %s in:\n%s", series, s.body)
	}
	return v
}

// TestServerMetrics scrapes a primary with the log on and its replica:
// /healthz, /readyz, and /metrics with exactly the shoal_server_ names
// docs/metrics.md lists (between the two); the values follow what the
// clients did.
func TestServerMetrics(t *testing.T) {
	mcPort := tu.FreePort(t)
	p := tu.StartServer(t, "admin-addr", "127.0.0.1:0", "appendonly", "yes", "maxmemory", "64mb",
		"memcached-port", strconv.Itoa(mcPort))
	pa := p.Srv.AdminAddr()
	if pa == "" {
		t.Fatal("no admin endpoint")
	}
	if code, body := tu.HTTPGet(t, "http://"+pa+"/healthz"); code != 200 || body != "ok\n" {
		t.Fatalf("/healthz: %d %q", code, body)
	}
	if code, body := tu.HTTPGet(t, "http://"+pa+"/readyz"); code != 200 {
		t.Fatalf("/readyz: %d %q", code, body)
	}
	c := tu.Dial(t, p.Addr)
	c.Do("SET", "k", "v")
	for i := 0; i < 5; i++ {
		c.Do("GET", "k")
	}
	c.Do("GET", "nosuchkey")
	if r := c.Do("INCR", "k"); !strings.HasPrefix(r, "ERR") && !strings.HasPrefix(r, "(error)") {
		t.Fatalf("INCR on a string: %q", r)
	}
	mc, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(mcPort))
	if err != nil {
		t.Fatal(err)
	}
	defer mc.Close()
	if _, err := mc.Write([]byte("get k nokey\r\n")); err != nil {
		t.Fatal(err)
	}
	var got []byte
	br := bufio.NewReader(mc)
	for !strings.HasSuffix(string(got), "END\r\n") {
		l, err := br.ReadBytes('\n')
		if err != nil {
			t.Fatalf("memcached get: %v after %q", err, got)
		}
		got = append(got, l...)
	}
	if string(got) != "VALUE k 0 1\r\nv\r\nEND\r\n" {
		t.Fatalf("memcached get: %q", got)
	}
	c.Do("SET", "e", "v", "PX", "1")
	waitUntil(t, "e expires", func() bool { return c.Do("EXISTS", "e") == "(integer) 0" })

	host, port, _ := strings.Cut(p.Addr, ":")
	r := tu.StartServer(t, "admin-addr", "127.0.0.1:0", "replicaof", host+" "+port)
	ra := r.Srv.AdminAddr()
	waitUntil(t, "the replica is ready", func() bool {
		code, _ := tu.HTTPGet(t, "http://"+ra+"/readyz")
		return code == 200
	})
	waitUntil(t, "the replica catches up", func() bool { return r.Srv.ReplOffset() == p.Srv.ReplOffset() })

	ps, rs := scrapeMetrics(t, pa), scrapeMetrics(t, ra)
	seen := ps.names("shoal_server_")
	for n := range rs.names("shoal_server_") {
		seen[n] = true
	}
	tu.CheckDocumentedMetrics(t, "shoal_server_", seen)

	want := map[string]float64{
		`shoal_server_command_duration_seconds_count{command="get"}`:            6,
		`shoal_server_command_duration_seconds_bucket{command="get",le="+Inf"}`: 6,
		`shoal_server_command_duration_seconds_count{command="set"}`:            2,
		`shoal_server_commands_failed_total{command="incr"}`:                    1,
		`shoal_server_commands_rejected_total{command="get"}`:                   0,
		`shoal_server_keys`:                                    1,
		`shoal_server_memory_max_bytes`:                        64 << 20,
		`shoal_server_aof_enabled`:                             1,
		`shoal_server_aof_last_write_ok`:                       1,
		`shoal_server_replication_role{role="primary"}`:        1,
		`shoal_server_connected_replicas`:                      1,
		`shoal_server_loading`:                                 0,
		`shoal_server_memcached_commands_total{command="get"}`: 2,
		`shoal_server_memcached_commands_total{command="set"}`: 0,
		`shoal_server_memcached_get_hits_total`:                1,
		`shoal_server_memcached_get_misses_total`:              1,
		`shoal_server_memcached_connections`:                   1,
	}
	for series, v := range want {
		if got := ps.value(series); got != v {
			t.Errorf("primary: %s = %v, want %v", series, got, v)
		}
	}
	if ps.value(`shoal_server_keyspace_hits_total`) < 5 || ps.value(`shoal_server_keyspace_misses_total`) < 1 {
		t.Error("hits/misses")
	}
	if ps.value(`shoal_server_expired_keys_total`) < 1 {
		t.Error("expired_keys_total")
	}
	if ps.value(`shoal_server_memory_used_bytes`) <= 0 || ps.value(`shoal_server_connected_clients`) < 1 {
		t.Error("memory used or clients")
	}
	if ps.value(`shoal_server_command_duration_seconds_sum{command="get"}`) <= 0 {
		t.Error("no time summed for get")
	}
	// The buckets are cumulative, in increasing bounds, and end at the count.
	var prev float64
	n := 0
	for _, m := range regexp.MustCompile(`(?m)^shoal_server_command_duration_seconds_bucket\{command="get",le="([^"]+)"\} (\S+)$`).FindAllStringSubmatch(ps.body, -1) {
		v, _ := strconv.ParseFloat(m[2], 64)
		if v < prev {
			t.Errorf("bucket le=%s: %v after %v", m[1], v, prev)
		}
		prev = v
		n++
	}
	if n != 22 || prev != 6 {
		t.Errorf("get histogram: %d buckets ending at %v", n, prev)
	}
	off := ps.value(`shoal_server_replication_offset`)
	if off == 0 {
		t.Error("primary offset 0 after writes")
	}
	// The replica's series, as the primary sees it and as itself.
	lines := regexp.MustCompile(`(?m)^shoal_server_replica_offset\{replica="([^"]+)"\} (\S+)$`).FindAllStringSubmatch(ps.body, -1)
	if len(lines) != 1 {
		t.Fatalf("replica_offset series: %v", lines)
	}
	lag := ps.value(`shoal_server_replica_lag_records{replica="` + lines[0][1] + `"}`)
	if lag < 0 || lag > off {
		t.Errorf("lag_records %v (offset %v)", lag, off)
	}
	for series, v := range map[string]float64{
		`shoal_server_replication_role{role="replica"}`: 1,
		`shoal_server_replication_link_up`:              1,
		`shoal_server_replication_offset`:               off,
		`shoal_server_keys`:                             1,
	} {
		if got := rs.value(series); got != v {
			t.Errorf("replica: %s = %v, want %v", series, got, v)
		}
	}
	if _, ok := ps.lookup(`shoal_server_replication_link_up`); ok {
		t.Error("a primary exports replication_link_up")
	}
}

// TestServerAdminOff: without admin-port or admin-addr nothing listens.
func TestServerAdminOff(t *testing.T) {
	n := tu.StartServer(t)
	if a := n.Srv.AdminAddr(); a != "" {
		t.Fatalf("admin endpoint on %s", a)
	}
}

// TestClusterMetrics runs a slot move and a failover in a cluster and
// scrapes the nodes (moves, promotions, /readyz) and the manager (its
// /metrics with exactly the shoal_manager_ names docs/metrics.md lists).
func TestClusterMetrics(t *testing.T) {
	c := newTClusterWith(t, 1, 2, 1, nil, "--admin-addr", "127.0.0.1:0")
	mc := c.client()
	ctx := context.Background()
	for _, n := range c.nodes {
		// A replica is ready once its link to the primary is up (it may
		// still be connecting right after the cluster formed).
		waitUntil(t, n.key+" /readyz 200", func() bool {
			code, _ := tu.HTTPGet(t, "http://"+n.srv.AdminAddr()+"/readyz")
			return code == 200
		})
	}
	tag := c.keyIn(1, "met")
	slot := cluster.SlotString(tag)
	src, _ := c.shard(1)
	dst, _ := c.shard(2)
	waitWritable(t, src, "{"+tag+"}:0")
	for i := 0; i < 50; i++ {
		if err := src.set("{"+tag+"}:"+strconv.Itoa(i), "v"); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := mc.Migrate(ctx, []int{slot}, 2); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the move ends", func() bool {
		mp := c.leaderMap()
		return mp.Migrations[slot] == nil && int(mp.Slots[slot]) == 2
	})
	// Each side counts the slot once it installs the map with the flip.
	var sent, recv float64
	waitUntil(t, "both sides count the slot", func() bool {
		sent = scrapeMetrics(t, src.srv.AdminAddr()).value(`shoal_server_migration_sent_slots_total`)
		recv = scrapeMetrics(t, dst.srv.AdminAddr()).value(`shoal_server_migration_received_slots_total`)
		return sent >= 1 && recv >= 1
	})
	if sent != 1 || recv != 1 {
		t.Errorf("slots sent %v, received %v", sent, recv)
	}
	ss, ds := scrapeMetrics(t, src.srv.AdminAddr()), scrapeMetrics(t, dst.srv.AdminAddr())
	if v := ss.value(`shoal_server_migration_sent_keys_total`); v != 50 {
		t.Errorf("sent keys %v", v)
	}
	if v := ds.value(`shoal_server_migration_received_keys_total`); v != 50 {
		t.Errorf("received keys %v", v)
	}
	if s, r := ss.value(`shoal_server_migration_sent_bytes_total`), ds.value(`shoal_server_migration_received_bytes_total`); s == 0 || r == 0 || r > s {
		t.Errorf("bytes sent %v, received %v", s, r)
	}
	if ds.value(`shoal_server_cluster_map_epoch`) == 0 {
		t.Error("no map epoch")
	}
	waitUntil(t, "the source primary reports its lease", func() bool {
		return scrapeMetrics(t, src.srv.AdminAddr()).value(`shoal_server_cluster_lease_seconds`) > 0
	})

	to, err := mc.Failover(ctx, 1, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	nw := c.byAddr(c.leaderMap().Addr(to))
	if nw == nil || nw == src {
		t.Fatalf("failover to %s: no new node", to)
	}
	waitUntil(t, "the new primary counts its promotion", func() bool {
		v, _ := scrapeMetrics(t, nw.srv.AdminAddr()).lookup(`shoal_server_promotions_total`)
		return v == 1
	})

	ms := scrapeMetrics(t, c.mgrs[0].HTTPAddr())
	tu.CheckDocumentedMetrics(t, "shoal_manager_", ms.names("shoal_manager_"))
	if code, body := tu.HTTPGet(t, "http://"+c.mgrs[0].HTTPAddr()+"/readyz"); code != 200 {
		t.Fatalf("manager /readyz: %d %q", code, body)
	}
	for series, v := range map[string]float64{
		`shoal_manager_raft_leader`:            1,
		`shoal_manager_raft_has_leader`:        1,
		`shoal_manager_shards`:                 2,
		`shoal_manager_nodes{state="active"}`:  4,
		`shoal_manager_nodes{state="idle"}`:    0,
		`shoal_manager_failovers_total`:        1,
		`shoal_manager_migrations_done_total`:  1,
		`shoal_manager_migrations_in_progress`: 0,
		`shoal_manager_map_epoch`:              float64(c.leaderMap().Epoch),
		`shoal_manager_unassigned_slots`:       0,
	} {
		if got := ms.value(series); got != v {
			t.Errorf("manager: %s = %v, want %v", series, got, v)
		}
	}
	if ms.value(`shoal_manager_raft_term`) < 1 || ms.value(`shoal_manager_raft_applied_index`) < 1 ||
		ms.value(`shoal_manager_raft_commit_index`) < ms.value(`shoal_manager_raft_applied_index`) {
		t.Error("raft indexes")
	}
}
