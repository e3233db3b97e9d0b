package proxy_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"shoal/internal/acl"
	"shoal/internal/cluster"
	"shoal/internal/config"
	"shoal/internal/manager"
	"shoal/internal/proxy"
	"shoal/internal/server"
	"shoal/internal/testcert"
	tu "shoal/internal/testutil"
)

// An in-process cluster for the proxy's tests: one manager and
// shards × (1+replicas) storage nodes on free loopback ports (RESP and
// memcached), the shards created and every replica synced. It follows
// internal/server/failover_test.go's newTCluster, without the fault layer.

type tnode struct {
	key, dir, addr string
	port, mcport   int
	srv            *server.Server
}

type tcluster struct {
	t     *testing.T
	mgr   *manager.Manager
	nodes []*tnode
	// nodeArgs are extra directives of every node; auth is what test
	// helpers send first on their direct connections (AUTH ...).
	nodeArgs   []string
	auth       []string
	adminToken string          // the manager's; c.client() sends it
	clientTLS  *tls.Config     // c.client()'s HTTPS configuration (nil: HTTP)
	certs      *testcert.Files // set: every node serves a tls-port and replicates over TLS
}

// tclusterOpts are newTClusterOpts's security settings.
type tclusterOpts struct {
	nodeArgs                 []string        // extra directives of every node
	cred                     acl.Credentials // nodes' password: the manager's NodeAuth and the helpers' AUTH
	adminToken, clusterToken string          // the manager's tokens (nodes get --manager-token themselves, in nodeArgs)
	mgrTLS, clientTLS        *tls.Config     // the manager's HTTPS, and c.client()'s trust of it
	certs                    *testcert.Files // nodes with tls-port, tls-auth-clients yes, tls-replication; the manager probes them over TLS
	nodeTLS                  *tls.Config     // the manager's NodeTLS
}

func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func quietLog() *slog.Logger {
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

func newTCluster(t *testing.T, shards, replicas int, settings map[string]int) *tcluster {
	t.Helper()
	return newTClusterAuth(t, shards, replicas, settings, nil, acl.Credentials{})
}

// newTClusterAuth is newTCluster with extra node directives (requirepass,
// user, masterauth...) and the AUTH the helpers' direct connections send.
func newTClusterAuth(t *testing.T, shards, replicas int, settings map[string]int, nodeArgs []string, cred acl.Credentials) *tcluster {
	t.Helper()
	return newTClusterOpts(t, shards, replicas, settings, tclusterOpts{nodeArgs: nodeArgs, cred: cred})
}

func newTClusterOpts(t *testing.T, shards, replicas int, settings map[string]int, o tclusterOpts) *tcluster {
	t.Helper()
	c := &tcluster{t: t, nodeArgs: o.nodeArgs, auth: o.cred.AuthArgs(), adminToken: o.adminToken, clientTLS: o.clientTLS, certs: o.certs}
	m, err := manager.New(manager.Config{ID: "m1", RaftAddr: freeAddr(t), HTTPAddr: "127.0.0.1:0", Dir: t.TempDir(), Bootstrap: true,
		NodeAuth: o.cred, AdminToken: o.adminToken, ClusterToken: o.clusterToken, TLS: o.mgrTLS, NodeTLS: o.nodeTLS})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	c.mgr = m
	waitUntil(t, "the manager leads", m.IsLeader)
	mc := c.client()
	if _, err := mc.SetConfig(context.Background(), "replicas_per_shard", replicas); err != nil {
		t.Fatal(err)
	}
	for k, v := range settings {
		if _, err := mc.SetConfig(context.Background(), k, v); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < shards*(1+replicas); i++ {
		c.startNode(fmt.Sprintf("n%d", i+1), t.TempDir())
	}
	waitUntil(t, "all nodes registered", func() bool {
		st, err := mc.Status(context.Background())
		return err == nil && len(st.Nodes) == len(c.nodes)
	})
	if _, err := mc.Create(context.Background(), shards); err != nil {
		t.Fatal(err)
	}
	c.waitHealthy()
	c.waitServing()
	return c
}

// waitServing waits until every shard's primary serves a key of its own
// (it has installed the map and its write lease): tests of paths without
// retries (transactions) then start from a settled cluster.
func (c *tcluster) waitServing() {
	c.t.Helper()
	for _, id := range c.shardIDs() {
		addr, k := c.primary(id).addr, c.keyIn(id, "serving")
		waitUntil(c.t, "the primaries serve", func() bool {
			r := c.direct(addr, "GET", k)
			return !strings.HasPrefix(r, "(error)")
		})
	}
}

func (c *tcluster) client() *manager.Client {
	return &manager.Client{Addrs: []string{c.mgr.HTTPAddr()}, Token: c.adminToken, TLS: c.clientTLS}
}

func (c *tcluster) startNode(key, dir string) *tnode {
	t := c.t
	t.Helper()
	for attempt := 0; ; attempt++ {
		port, mcport := tu.FreePort(t), tu.FreePort(t)
		if port == mcport {
			continue
		}
		cfg := config.Default()
		args := []string{"--port", strconv.Itoa(port), "--memcached-port", strconv.Itoa(mcport), "--bind", "127.0.0.1", "--dir", dir,
			"--save", "", "--appendonly", "yes", "--manager", c.mgr.HTTPAddr()}
		args = append(args, c.nodeArgs...)
		if f := c.certs; f != nil {
			args = append(args, "--tls-port", strconv.Itoa(tu.FreePort(t)), "--tls-cert-file", f.ServerCert, "--tls-key-file", f.ServerKey,
				"--tls-ca-cert-file", f.CA, "--tls-replication", "yes")
		}
		if err := cfg.ParseArgs(args); err != nil {
			t.Fatal(err)
		}
		srv, err := server.New(cfg, quietLog())
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err = srv.Start(ctx)
		cancel()
		if err != nil {
			if attempt < 5 {
				continue
			}
			t.Fatal(err)
		}
		n := &tnode{key: key, dir: dir, port: port, mcport: mcport, addr: "127.0.0.1:" + strconv.Itoa(port), srv: srv}
		t.Cleanup(func() { srv.Close() })
		c.nodes = append(c.nodes, n)
		return n
	}
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

func (c *tcluster) byAddr(addr string) *tnode {
	for _, n := range c.nodes {
		if n.addr == addr {
			return n
		}
	}
	c.t.Fatalf("no node at %s", addr)
	return nil
}

// primary returns the primary of shard id.
func (c *tcluster) primary(id int) *tnode {
	st, err := c.client().Status(context.Background())
	if err != nil {
		c.t.Fatal(err)
	}
	for _, s := range st.Shards {
		if s.ID == id {
			return c.byAddr(s.Primary)
		}
	}
	c.t.Fatalf("no shard %d", id)
	return nil
}

// keyIn returns a key whose slot shard owns.
func (c *tcluster) keyIn(shard int, prefix string) string {
	mp := c.mgr.Map()
	for i := 0; ; i++ {
		k := prefix + strconv.Itoa(i)
		if int(mp.Slots[cluster.SlotString(k)]) == shard {
			return k
		}
	}
}

func (c *tcluster) shardIDs() []int { return c.mgr.Map().ShardIDs() }

// startProxy starts a proxy in front of c (RESP and memcached).
func (c *tcluster) startProxy(budget time.Duration) *proxy.Proxy {
	return c.startProxyWith(func(cfg *proxy.Config) { cfg.RetryBudget = budget })
}

// startProxyWith starts a proxy whose configuration edit adjusts.
func (c *tcluster) startProxyWith(edit func(*proxy.Config)) *proxy.Proxy {
	c.t.Helper()
	cfg := proxy.DefaultConfig()
	cfg.Managers = c.mgr.HTTPAddr()
	cfg.MCPort = 0
	cfg.Log = quietLog()
	edit(&cfg)
	p, err := proxy.New(cfg)
	if err != nil {
		c.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := p.Start(ctx); err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(func() { p.Close() })
	return p
}

// direct runs one command on a node directly (reading with READONLY).
func direct(t *testing.T, addr string, args ...string) string {
	cl := tu.Dial(t, addr)
	defer cl.C.Close()
	return cl.Do(args...)
}

// direct is direct after the cluster's AUTH.
func (c *tcluster) direct(addr string, args ...string) string {
	cl := tu.Dial(c.t, addr)
	defer cl.C.Close()
	if c.auth != nil {
		if r := cl.Do(c.auth...); r != "OK" {
			c.t.Fatalf("AUTH on %s: %s", addr, r)
		}
	}
	return cl.Do(args...)
}

func contextWithTimeout(d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), d)
}
