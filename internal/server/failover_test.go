package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"shoal/internal/cluster"
	"shoal/internal/config"
	"shoal/internal/manager"
	"shoal/internal/server"
	tu "shoal/internal/testutil"
)

// An in-process cluster: managers and storage nodes on loopback ports,
// with the nodes' manager traffic going through an injectable fault
// layer (drop or delay the heartbeats of any node: a partition between
// that node and the managers, while clients still reach it).

type faultNet struct {
	mu    sync.Mutex
	drop  map[string]bool
	delay map[string]time.Duration
	hold  map[string]chan struct{} // holdMaps: closed when released
}

type rtFunc func(*http.Request) (*http.Response, error)

func (f rtFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func (f *faultNet) client(key string) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	return &http.Client{Timeout: 5 * time.Second, Transport: rtFunc(func(r *http.Request) (*http.Response, error) {
		f.mu.Lock()
		drop, delay := f.drop[key], f.delay[key]
		f.mu.Unlock()
		if drop {
			return nil, errors.New("injected partition")
		}
		if delay > 0 {
			select {
			case <-time.After(delay):
			case <-r.Context().Done():
				return nil, r.Context().Err()
			}
		}
		resp, err := tr.RoundTrip(r)
		if err != nil {
			return resp, err
		}
		f.mu.Lock()
		hold := f.hold[key]
		f.mu.Unlock()
		switch {
		case hold == nil:
		case strings.HasPrefix(r.URL.Path, "/v1/map"):
			// The map (a long poll's answer) waits for the release.
			select {
			case <-hold:
			case <-r.Context().Done():
				resp.Body.Close()
				return nil, r.Context().Err()
			}
		case r.URL.Path == "/v1/heartbeat":
			// The lease goes through, the map does not.
			b, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil {
				return nil, err
			}
			var reply map[string]json.RawMessage
			if json.Unmarshal(b, &reply) == nil {
				delete(reply, "map")
				b, _ = json.Marshal(reply)
			}
			resp.Body, resp.ContentLength = io.NopCloser(bytes.NewReader(b)), int64(len(b))
			resp.Header.Del("Content-Length")
		}
		return resp, nil
	})}
}

// holdMaps keeps new maps from the node while on (its map watch's
// answers wait, its heartbeat replies carry none; leases still go
// through); off lets them through again.
func (f *faultNet) holdMaps(key string, on bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.hold == nil {
		f.hold = map[string]chan struct{}{}
	}
	switch ch := f.hold[key]; {
	case on && ch == nil:
		f.hold[key] = make(chan struct{})
	case !on && ch != nil:
		close(ch)
		delete(f.hold, key)
	}
}

func (f *faultNet) slow(key string, d time.Duration) {
	f.mu.Lock()
	f.delay[key] = d
	f.mu.Unlock()
}

func (f *faultNet) partition(key string, on bool) {
	f.mu.Lock()
	f.drop[key] = on
	f.mu.Unlock()
}

type fnode struct {
	key  string
	dir  string
	port int
	addr string
	srv  *server.Server
	rdb  *redis.Client
}

type tcluster struct {
	t     *testing.T
	mgrs  []*manager.Manager
	mcfgs []manager.Config // the managers' configs (to restart one)
	nodes []*fnode
	net   *faultNet
	opts  map[string]server.Options // per node key, for startNode (ManagerHTTP is set there)
}

func freeTCP(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// newTCluster starts nManagers managers and shards × (1+replicas) nodes,
// creates the shards and waits until every replica is synced.
func newTCluster(t *testing.T, nManagers, shards, replicas int) *tcluster {
	t.Helper()
	return newTClusterWith(t, nManagers, shards, replicas, nil)
}

// newTClusterWith is newTCluster with each manager's config passed to
// mcfg (when not nil) first, and with extra storage node directives (nodeArgs).
func newTClusterWith(t *testing.T, nManagers, shards, replicas int, mcfg func(*manager.Config), nodeArgs ...string) *tcluster {
	t.Helper()
	return newTClusterOpts(t, nManagers, shards, replicas, mcfg, nil, nodeArgs...)
}

// newTClusterOpts is newTClusterWith with the nodes' server.Options by
// name ("n1", "n2", ...).
func newTClusterOpts(t *testing.T, nManagers, shards, replicas int, mcfg func(*manager.Config), opts map[string]server.Options, nodeArgs ...string) *tcluster {
	t.Helper()
	c := &tcluster{t: t, net: &faultNet{drop: map[string]bool{}, delay: map[string]time.Duration{}}, opts: opts}
	for i := 0; i < nManagers; i++ {
		cfg := manager.Config{ID: fmt.Sprintf("m%d", i+1), RaftAddr: freeTCP(t), HTTPAddr: "127.0.0.1:0", Dir: t.TempDir(), Bootstrap: i == 0}
		if mcfg != nil {
			mcfg(&cfg)
		}
		if i > 0 {
			cfg.Join = []string{c.mgrs[0].HTTPAddr()}
		}
		if mcfg != nil {
			mcfg(&cfg)
		}
		c.mcfgs = append(c.mcfgs, cfg)
		m, err := manager.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if err := m.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { m.Close() })
		c.mgrs = append(c.mgrs, m)
		if i == 0 {
			waitUntil(t, "the first manager leads", func() bool { return m.IsLeader() })
		}
	}
	mc := c.client()
	if _, err := mc.SetConfig(context.Background(), "replicas_per_shard", replicas); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < shards*(1+replicas); i++ {
		c.startNode(fmt.Sprintf("n%d", i+1), t.TempDir(), 0, nodeArgs...)
	}
	waitUntil(t, "all nodes registered", func() bool {
		st, err := mc.Status(context.Background())
		return err == nil && len(st.Nodes) == len(c.nodes)
	})
	if _, err := mc.Create(context.Background(), shards); err != nil {
		t.Fatal(err)
	}
	c.waitHealthy()
	return c
}

func (c *tcluster) client() *manager.Client {
	mc := &manager.Client{}
	for _, m := range c.mgrs {
		mc.Addrs = append(mc.Addrs, m.HTTPAddr())
	}
	return mc
}

func (c *tcluster) startNode(key, dir string, port int, extra ...string) *fnode {
	t := c.t
	t.Helper()
	for attempt := 0; ; attempt++ {
		p := port
		if p == 0 {
			p = tu.FreePort(t)
		}
		var addrs []string
		for _, m := range c.mgrs {
			addrs = append(addrs, m.HTTPAddr())
		}
		cfg := config.Default()
		args := []string{"--port", strconv.Itoa(p), "--bind", "127.0.0.1", "--dir", dir, "--save", "",
			"--appendonly", "yes", "--manager", joinComma(addrs)}
		args = append(args, extra...)
		if err := cfg.ParseArgs(args); err != nil {
			t.Fatal(err)
		}
		log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
		opts := c.opts[key]
		opts.ManagerHTTP = c.net.client(key)
		srv, err := server.NewWithOptions(cfg, log, opts)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err = srv.Start(ctx)
		cancel()
		if err != nil {
			if attempt < 5 && port == 0 {
				continue
			}
			t.Fatal(err)
		}
		n := &fnode{key: key, dir: dir, port: p, addr: "127.0.0.1:" + strconv.Itoa(p), srv: srv,
			rdb: redis.NewClient(&redis.Options{Addr: "127.0.0.1:" + strconv.Itoa(p), MaxRetries: -1, DialTimeout: time.Second, ReadTimeout: 2 * time.Second,
				// Reads from replicas too (cluster mode redirects them otherwise).
				OnConnect: func(ctx context.Context, cn *redis.Conn) error { return cn.ReadOnly(ctx).Err() }})}
		t.Cleanup(func() { n.rdb.Close(); srv.Close() })
		replaced := false
		for i, o := range c.nodes {
			if o.key == key {
				c.nodes[i], replaced = n, true
			}
		}
		if !replaced {
			c.nodes = append(c.nodes, n)
		}
		return n
	}
}

func joinComma(a []string) string {
	out := ""
	for i, s := range a {
		if i > 0 {
			out += ","
		}
		out += s
	}
	return out
}

func (c *tcluster) status() *manager.Status {
	st, err := c.client().Status(context.Background())
	if err != nil {
		c.t.Fatal(err)
	}
	return st
}

// waitHealthy waits until every shard has a live primary and synced replicas.
func (c *tcluster) waitHealthy() {
	c.t.Helper()
	waitUntil(c.t, "a healthy cluster", func() bool {
		st, err := c.client().Status(context.Background())
		if err != nil || !st.Healthy {
			return false
		}
		byID := map[string]manager.NodeStatus{}
		for _, n := range st.Nodes {
			byID[n.ID] = n
		}
		for _, s := range st.Shards {
			if p := byID[s.PrimaryID]; !p.Alive || p.Role != cluster.RolePrimary {
				return false
			}
			for _, r := range s.ReplicaIDs {
				if n := byID[r]; !n.Alive || !n.Synced {
					return false
				}
			}
		}
		return true
	})
}

func (c *tcluster) byAddr(addr string) *fnode {
	for _, n := range c.nodes {
		if n.addr == addr {
			return n
		}
	}
	c.t.Fatalf("no node at %s", addr)
	return nil
}

// shard returns shard id's primary and replicas as the map has them.
func (c *tcluster) shard(id int) (*fnode, []*fnode) {
	st := c.status()
	for _, s := range st.Shards {
		if s.ID == id {
			var reps []*fnode
			for _, r := range s.Replicas {
				reps = append(reps, c.byAddr(r))
			}
			return c.byAddr(s.Primary), reps
		}
	}
	c.t.Fatalf("no shard %d", id)
	return nil, nil
}

// keyIn returns a key whose slot shard owns.
func (c *tcluster) keyIn(shard int, prefix string) string {
	mp := c.mgrs[0].Map()
	for _, m := range c.mgrs {
		if m.IsLeader() {
			mp = m.Map()
		}
	}
	for i := 0; ; i++ {
		k := prefix + strconv.Itoa(i)
		if int(mp.Slots[cluster.SlotString(k)]) == shard {
			return k
		}
	}
}

func (n *fnode) set(key, val string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return n.rdb.Set(ctx, key, val, 0).Err()
}

func (n *fnode) kill() {
	n.rdb.Close()
	n.srv.Close()
}

// fwriter writes key on node n until stopped, recording the time of the
// last accepted write (and of the first).
type fwriter struct {
	mu          sync.Mutex
	first, last time.Time
	n           int
	stop        chan struct{}
	done        chan struct{}
}

func startFWriter(n *fnode, key string) *fwriter {
	w := &fwriter{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		for i := 0; ; i++ {
			select {
			case <-w.stop:
				return
			default:
			}
			if err := n.set(key, strconv.Itoa(i)); err == nil {
				now := time.Now()
				w.mu.Lock()
				if w.first.IsZero() {
					w.first = now
				}
				w.last, w.n = now, w.n+1
				w.mu.Unlock()
			} else {
				time.Sleep(2 * time.Millisecond)
			}
		}
	}()
	return w
}

func (w *fwriter) halt() (first, last time.Time, n int) {
	close(w.stop)
	<-w.done
	return w.first, w.last, w.n
}

func waitWritable(t *testing.T, n *fnode, key string) time.Duration {
	t.Helper()
	start := time.Now()
	waitUntil(t, n.addr+" writable", func() bool { return n.set(key, "x") == nil })
	return time.Since(start)
}

func TestClusterFailoverScenarios(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster scenarios take ~30 s")
	}
	cases := []struct {
		name string
		run  func(t *testing.T, c *tcluster)
	}{
		{"primary crash", func(t *testing.T, c *tcluster) {
			p, reps := c.shard(1)
			k := c.keyIn(1, "crash")
			if err := p.set(k, "before"); err != nil {
				t.Fatal(err)
			}
			waitUntil(t, "the replica has the write", func() bool { return reps[0].rdb.Get(context.Background(), k).Val() == "before" })
			p.kill()
			took := waitWritable(t, reps[0], k)
			t.Logf("failover: slots writable again after %v", took)
			if v := reps[0].rdb.Get(context.Background(), k).Val(); v != "x" {
				t.Fatalf("value %q", v)
			}
			// The returning old primary becomes a replica of the new one.
			back := c.startNode(p.key, p.dir, p.port)
			waitUntil(t, "the old primary follows", func() bool { return back.rdb.Get(context.Background(), k).Val() == "x" })
			if err := back.set(k, "y"); err == nil {
				t.Fatal("the returned old primary accepted a write")
			}
			c.waitHealthy()
		}},
		{"primary partitioned from the manager, not from clients", func(t *testing.T, c *tcluster) {
			p, reps := c.shard(1)
			k := c.keyIn(1, "part")
			wOld := startFWriter(p, k)
			waitUntil(t, "writes on the primary", func() bool { wOld.mu.Lock(); defer wOld.mu.Unlock(); return wOld.n > 0 })
			c.net.partition(p.key, true)
			wNew := startFWriter(reps[0], k)
			waitUntil(t, "writes on the new primary", func() bool { wNew.mu.Lock(); defer wNew.mu.Unlock(); return wNew.n > 0 })
			_, lastOld, _ := wOld.halt()
			firstNew, _, _ := wNew.halt()
			if !lastOld.Before(firstNew) {
				t.Fatalf("two writable primaries: old accepted a write at %v, new accepted one at %v", lastOld, firstNew)
			}
			t.Logf("old primary's last write %v before the new primary's first", firstNew.Sub(lastOld))
			c.net.partition(p.key, false)
			waitUntil(t, "the old primary rejoins as a replica", func() bool {
				return p.rdb.Get(context.Background(), k).Val() == reps[0].rdb.Get(context.Background(), k).Val() && p.set(k, "z") != nil
			})
			c.waitHealthy()
		}},
		{"replica crash", func(t *testing.T, c *tcluster) {
			p, reps := c.shard(2)
			reps[0].kill()
			k := c.keyIn(2, "rc")
			for i := 0; i < 20; i++ {
				if err := p.set(k, strconv.Itoa(i)); err != nil {
					t.Fatalf("the primary stopped writing when its replica died: %v", err)
				}
			}
			st := c.status()
			if st.Shards[1].PrimaryID == "" || st.Shards[1].Primary != p.addr {
				t.Fatalf("the primary changed: %+v", st.Shards[1])
			}
			back := c.startNode(reps[0].key, reps[0].dir, reps[0].port)
			waitUntil(t, "the replica catches up", func() bool { return back.rdb.Get(context.Background(), k).Val() == "19" })
		}},
		{"graceful failover loses no write", func(t *testing.T, c *tcluster) {
			p, reps := c.shard(1)
			var mu sync.Mutex
			acked := map[string]bool{}
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
					k := c.keyIn(1, "g"+strconv.Itoa(i)+"-")
					if p.set(k, "v") == nil {
						mu.Lock()
						acked[k] = true
						mu.Unlock()
					}
				}
			}()
			waitUntil(t, "some writes", func() bool { mu.Lock(); defer mu.Unlock(); return len(acked) > 20 })
			to, err := c.client().Failover(context.Background(), 1, 10*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			close(stop)
			<-done
			np, _ := c.shard(1)
			if np != reps[0] || to == "" {
				t.Fatalf("new primary %s", np.addr)
			}
			waitWritable(t, np, c.keyIn(1, "after"))
			mu.Lock()
			defer mu.Unlock()
			for k := range acked {
				if v := np.rdb.Get(context.Background(), k).Val(); v != "v" {
					t.Fatalf("acknowledged %s missing on the new primary (%q)", k, v)
				}
			}
			if err := p.set(c.keyIn(1, "old"), "v"); err == nil {
				t.Fatal("the old primary still accepts writes")
			}
		}},
		{"two failures in a row", func(t *testing.T, c *tcluster) {
			p, reps := c.shard(1)
			k := c.keyIn(1, "two")
			p.kill()
			waitWritable(t, reps[0], k)
			np, nreps := c.shard(1)
			if np != reps[0] || len(nreps) != 1 {
				t.Fatalf("after the first failover: primary %s", np.addr)
			}
			back := c.startNode(p.key, p.dir, p.port)
			waitUntil(t, "the old primary resyncs", func() bool { return back.rdb.Get(context.Background(), k).Val() == "x" })
			c.waitHealthy()
			np.kill()
			waitWritable(t, back, k)
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := newTCluster(t, 1, 2, 1)
			tc.run(t, c)
		})
	}
}

// TestClusterTwoReplicas: with two replicas, the one left after a
// failover follows the new primary incrementally (PSYNC2), and heartbeats
// slowed below the lease cause no failover.
func TestClusterTwoReplicas(t *testing.T) {
	if testing.Short() {
		t.Skip("slow")
	}
	c := newTCluster(t, 1, 1, 2)
	p, reps := c.shard(1)
	k := c.keyIn(1, "tr")
	waitWritable(t, p, k) // the primary has its first lease grant
	// Heartbeats delayed by 300 ms (lease 1000 ms): no failover.
	c.net.slow(p.key, 300*time.Millisecond)
	epoch := c.status().Shards[0].Epoch
	for i := 0; i < 20; i++ {
		if err := p.set(k, strconv.Itoa(i)); err != nil {
			t.Fatalf("a primary with slow heartbeats stopped writing: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if e := c.status().Shards[0].Epoch; e != epoch {
		t.Fatalf("slow heartbeats caused a failover (epoch %d -> %d)", epoch, e)
	}
	c.net.slow(p.key, 0)
	p.kill()
	waitWritable(t, reps[0], k)
	np, rest := c.shard(1)
	if len(rest) != 2 {
		t.Fatalf("replicas after failover: %d", len(rest))
	}
	var other *fnode
	for _, r := range reps {
		if r != np {
			other = r
		}
	}
	if err := np.set(k, "after"); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the other replica follows the new primary", func() bool {
		return other.rdb.Get(context.Background(), k).Val() == "after"
	})
	info, err := np.rdb.Do(context.Background(), "INFO", "stats").Text()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(info, "sync_full:0\r") || strings.Contains(info, "sync_partial_ok:0\r") {
		t.Fatalf("the other replica did not resync incrementally: %q", info)
	}
}

// TestClusterManagerLeaderCrash: three managers; a primary dies and the
// manager leader dies right after: the new leader waits a whole lease +
// margin, then fails the shard over.
func TestClusterManagerLeaderCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("slow")
	}
	c := newTCluster(t, 3, 1, 1)
	waitUntil(t, "three managers", func() bool { return len(c.mgrs[0].Map().Managers) == 3 })
	p, reps := c.shard(1)
	k := c.keyIn(1, "mgr")
	p.kill()
	for _, m := range c.mgrs {
		if m.IsLeader() {
			m.Close()
		}
	}
	took := waitWritable(t, reps[0], k)
	t.Logf("failover with a manager leader change: %v", took)
}
