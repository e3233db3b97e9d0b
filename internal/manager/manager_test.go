package manager

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"shoal/internal/cluster"
)

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startManagers starts n managers: the first bootstraps, the others join it.
func startManagers(t *testing.T, n int) []*Manager {
	t.Helper()
	return startManagersWith(t, n, func(*Config) {})
}

// startManagersWith is startManagers with a configuration edit.
func startManagersWith(t *testing.T, n int, edit func(*Config)) []*Manager {
	t.Helper()
	var ms []*Manager
	for i := 0; i < n; i++ {
		cfg := Config{ID: fmt.Sprintf("m%d", i+1), RaftAddr: freeAddr(t), HTTPAddr: "127.0.0.1:0", Dir: t.TempDir(),
			Bootstrap: i == 0}
		edit(&cfg)
		if i > 0 {
			cfg.Join = []string{ms[0].HTTPAddr()}
		}
		m, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if err := m.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { m.Close() })
		ms = append(ms, m)
		if i == 0 {
			waitFor(t, "first leader", func() bool { return m.IsLeader() && m.Map().Managers["m1"] != "" })
		}
	}
	return ms
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func clientOf(ms ...*Manager) *Client {
	c := &Client{}
	for _, m := range ms {
		c.Addrs = append(c.Addrs, m.HTTPAddr())
	}
	return c
}

// fakeNode heartbeats like a storage node would and keeps its lease.
type fakeNode struct {
	hb    cluster.Heartbeat
	lease time.Time
	mp    *cluster.Map
}

func (f *fakeNode) beat(ctx context.Context, c *Client) error {
	sent := time.Now()
	f.hb.MapEpoch = 0
	if f.mp != nil {
		f.hb.MapEpoch = f.mp.Epoch
	}
	r, err := c.Heartbeat(ctx, &f.hb)
	if err != nil {
		return err
	}
	if r.Map != nil {
		f.mp = r.Map
	}
	role, s := f.mp.Role(f.hb.Node.ID)
	f.hb.Role = role
	if s != nil {
		f.hb.ShardEpoch = s.Epoch
	}
	if r.LeaseMs > 0 && role == cluster.RolePrimary {
		f.lease = sent.Add(time.Duration(r.LeaseMs) * time.Millisecond)
	} else {
		f.lease = time.Time{}
	}
	return nil
}

func TestManagersReplicateAndForward(t *testing.T) {
	ms := startManagers(t, 3)
	waitFor(t, "3 managers in the map", func() bool { return len(ms[0].Map().Managers) == 3 })
	// A follower forwards writes to the leader.
	follower := clientOf(ms[2])
	nodes := []*fakeNode{}
	for i := 0; i < 4; i++ {
		n := &fakeNode{hb: cluster.Heartbeat{Node: cluster.Node{ID: fmt.Sprintf("n%d", i), Addr: fmt.Sprintf("127.0.0.1:%d", 7000+i)}}}
		if err := n.beat(context.Background(), follower); err != nil {
			t.Fatal(err)
		}
		nodes = append(nodes, n)
	}
	for _, m := range ms {
		t.Logf("%s leader=%v leaderHTTP=%q", m.cfg.ID, m.IsLeader(), m.leaderHTTP())
	}
	st, err := follower.Create(context.Background(), 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Shards) != 2 || st.Shards[0].Slots+st.Shards[1].Slots != cluster.NumSlots || len(st.Shards[0].Replicas) != 1 {
		t.Fatalf("status after create: %+v", st.Shards)
	}
	epoch := ms[0].Map().Epoch
	for _, m := range ms {
		waitFor(t, "map on every manager", func() bool { return m.Map().Epoch == epoch })
	}
	// Kill the leader: another takes over with the same map.
	var leader *Manager
	var rest []*Manager
	for _, m := range ms {
		if m.IsLeader() {
			leader = m
		} else {
			rest = append(rest, m)
		}
	}
	leader.Close()
	waitFor(t, "a new leader", func() bool { return rest[0].IsLeader() || rest[1].IsLeader() })
	c := clientOf(rest...)
	if _, err := c.SetConfig(context.Background(), "sync_replicas", 1); err != nil {
		t.Fatal(err)
	}
	for _, m := range rest {
		waitFor(t, "config on survivors", func() bool { return m.Map().Settings.SyncReplicas == 1 && len(m.Map().Shards) == 2 })
	}
	if _, err := c.SetConfig(context.Background(), "lease_ms", 1); err == nil {
		t.Fatal("a lease shorter than two heartbeats was accepted")
	}
	var ae *APIError
	if _, err := c.AddShard(context.Background(), []string{"nope"}); !errors.As(err, &ae) || ae.Status != 400 {
		t.Fatalf("add-shard of an unknown node: %v", err)
	}
}

// TestHeartbeatFailover: the primary stops heartbeating; its lease ends
// before the manager promotes the replica, and the replica then gets a
// lease; the old primary, back, learns it is a replica and gets none.
func TestHeartbeatFailover(t *testing.T) {
	ms := startManagers(t, 1)
	c := clientOf(ms[0])
	ctx := context.Background()
	a := &fakeNode{hb: cluster.Heartbeat{Node: cluster.Node{ID: "a", Addr: "127.0.0.1:1"}, ReplID: "r1", Offset: 10}}
	b := &fakeNode{hb: cluster.Heartbeat{Node: cluster.Node{ID: "b", Addr: "127.0.0.1:2"}, ReplID: "r1", Offset: 10, Synced: true}}
	for _, n := range []*fakeNode{a, b} {
		if err := n.beat(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.Create(ctx, 1); err != nil {
		t.Fatal(err)
	}
	for _, n := range []*fakeNode{a, b} {
		n.beat(ctx, c)
		n.beat(ctx, c)
	}
	if a.hb.Role != cluster.RolePrimary || a.lease.IsZero() || b.hb.Role != cluster.RoleReplica || !b.lease.IsZero() {
		t.Fatalf("roles a=%s b=%s, leases %v %v", a.hb.Role, b.hb.Role, a.lease, b.lease)
	}
	// Stop a; keep b beating until it is primary with a lease.
	aLease := a.lease
	deadline := time.Now().Add(10 * time.Second)
	for b.hb.Role != cluster.RolePrimary || b.lease.IsZero() {
		if time.Now().After(deadline) {
			t.Fatal("no failover")
		}
		if err := b.beat(ctx, c); err != nil {
			t.Fatal(err)
		}
		if b.hb.Role == cluster.RolePrimary && time.Now().Before(aLease) {
			t.Fatalf("b promoted at %v while a's lease runs until %v", time.Now(), aLease)
		}
		time.Sleep(50 * time.Millisecond)
	}
	st, _ := c.Status(ctx)
	if len(st.Failovers) != 1 || st.Failovers[0].ToNode != "b" || st.Shards[0].Epoch != 2 {
		t.Fatalf("status: %+v %+v", st.Failovers, st.Shards)
	}
	// a returns: it is a replica now and gets no lease.
	a.beat(ctx, c)
	a.beat(ctx, c)
	if a.hb.Role != cluster.RoleReplica || !a.lease.IsZero() {
		t.Fatalf("returning old primary: role %s lease %v", a.hb.Role, a.lease)
	}
}

// TestGracefulFailover: the primary is fenced, the replica catches up,
// then the map flips.
func TestGracefulFailover(t *testing.T) {
	ms := startManagers(t, 1)
	c := clientOf(ms[0])
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	a := &fakeNode{hb: cluster.Heartbeat{Node: cluster.Node{ID: "a", Addr: "127.0.0.1:1"}, ReplID: "r1", Offset: 100}}
	b := &fakeNode{hb: cluster.Heartbeat{Node: cluster.Node{ID: "b", Addr: "127.0.0.1:2"}, ReplID: "r1", Offset: 90, Synced: true}}
	a.beat(ctx, c)
	b.beat(ctx, c)
	if _, err := c.Create(ctx, 1); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		a.beat(ctx, c)
		b.beat(ctx, c)
	}
	done := make(chan error, 1)
	go func() {
		_, err := c.Failover(ctx, 1, 10*time.Second)
		done <- err
	}()
	// Beat until the manager fences a; a then reports Fenced, b catches up.
	for i := 0; ; i++ {
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
			b.beat(ctx, c)
			if b.hb.Role != cluster.RolePrimary {
				t.Fatalf("b is %s", b.hb.Role)
			}
			if b.hb.Offset < 101 {
				t.Fatalf("promoted before catching up: %d", b.hb.Offset)
			}
			return
		case <-time.After(20 * time.Millisecond):
		}
		r, err := c.Heartbeat(ctx, &a.hb)
		if err != nil {
			t.Fatal(err)
		}
		if r.Fence {
			if r.LeaseMs != 0 {
				t.Fatal("a fenced primary was granted a lease")
			}
			a.hb.Fenced, a.hb.Offset = true, 101
		}
		if a.hb.Fenced && b.hb.Offset < 101 {
			b.hb.Offset++
		}
		b.beat(ctx, c)
		if i > 500 {
			t.Fatal("graceful failover did not finish")
		}
	}
}

// TestAdvertisedNames: managers that advertise DNS names (as on
// Kubernetes, where a pod's IP changes on restart) keep those names in
// the Raft configuration and the map, and a restarted manager is reached
// by its name again.
func TestAdvertisedNames(t *testing.T) {
	named := func(id string, raftAddr, httpAddr string) Config {
		_, rp, _ := net.SplitHostPort(raftAddr)
		_, hp, _ := net.SplitHostPort(httpAddr)
		return Config{ID: id, RaftAddr: raftAddr, HTTPAddr: httpAddr,
			RaftAdvertise: "localhost:" + rp, HTTPAdvertise: "localhost:" + hp}
	}
	start := func(cfg Config) *Manager {
		t.Helper()
		m, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if err := m.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { m.Close() })
		return m
	}
	c1 := named("m1", freeAddr(t), freeAddr(t))
	c1.Dir, c1.Bootstrap = t.TempDir(), true
	m1 := start(c1)
	waitFor(t, "first leader", func() bool { return m1.IsLeader() && m1.Map().Managers["m1"] == c1.HTTPAdvertise })
	c2 := named("m2", freeAddr(t), freeAddr(t))
	c2.Dir, c2.Join = t.TempDir(), []string{c1.HTTPAdvertise}
	m2 := start(c2)
	waitFor(t, "m2 in the map", func() bool { return m1.Map().Managers["m2"] == c2.HTTPAdvertise })
	f := m1.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, s := range f.Configuration().Servers {
		got[string(s.ID)] = string(s.Address)
	}
	if got["m1"] != c1.RaftAdvertise || got["m2"] != c2.RaftAdvertise {
		t.Fatalf("raft configuration %v, want the advertised names", got)
	}
	// m2 restarts from its state (no join): m1 reaches it by name again.
	m2.Close()
	c2.Join = nil
	m2 = start(c2)
	if _, err := clientOf(m1).SetConfig(context.Background(), "replicas_per_shard", 2); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the restarted manager to apply a new entry", func() bool { return m2.Map().Settings.ReplicasPerShard == 2 })
}

// GET /v1/map?view=window serves the map's window view, view=routes its
// routes view (cluster.Map.RoutesView: no moves); another view is
// refused.
func TestMapWindowView(t *testing.T) {
	ms := startManagers(t, 1)
	c := NewClient(ms[0].HTTPAddr())
	ctx := context.Background()
	full, err := c.Map(ctx, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	v, err := c.WindowMap(ctx, 0, 0)
	if err != nil || v.Epoch != full.Epoch {
		t.Fatalf("window view: %v, epoch %d, want %d", err, v.Epoch, full.Epoch)
	}
	v, err = c.WindowMap(ctx, full.Epoch-1, time.Second)
	if err != nil || v.Epoch != full.Epoch {
		t.Fatalf("window view, long poll: %v", err)
	}
	r, err := c.RoutesMap(ctx, 0, 0)
	if err != nil || r.Epoch != full.Epoch || r.Slots != full.Slots || len(r.Nodes) != len(full.Nodes) {
		t.Fatalf("routes view: %v, epoch %d, want %d", err, r.Epoch, full.Epoch)
	}
	r, err = c.RoutesMap(ctx, full.Epoch-1, time.Second)
	if err != nil || r.Epoch != full.Epoch {
		t.Fatalf("routes view, long poll: %v", err)
	}
	resp, err := http.Get("http://" + ms[0].HTTPAddr() + "/v1/map?view=all")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(b), "view must be window, routes or absent") {
		t.Fatalf("view=all: status %d, %s", resp.StatusCode, b)
	}
}
