package proxy_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"shoal/internal/acl"
	"shoal/internal/cluster"
	"shoal/internal/manager"
	"shoal/internal/proxy"
	"shoal/internal/testcert"
	tu "shoal/internal/testutil"
	"shoal/internal/tlsconf"
)

// TestProxyAuth: nodes with requirepass (replicas log in with
// masterauth), a proxy with its own users that logs in to the nodes with
// backend credentials on its pooled, dedicated (MULTI, BLPOP) and
// pub/sub connections.
func TestProxyAuth(t *testing.T) {
	c := newTClusterAuth(t, 2, 1, nil,
		[]string{"--requirepass", "nodepw", "--masterauth", "nodepw"}, acl.Credentials{Pass: "nodepw"})
	p := c.startProxyWith(func(cfg *proxy.Config) {
		cfg.RetryBudget = 10 * time.Second
		cfg.RequirePass = "clientpw"
		cfg.Users = []string{"alice on >apw ~app:* &news.* +@all -@dangerous"}
		cfg.Backend = acl.Credentials{Pass: "nodepw"}
	})
	ids := c.shardIDs()
	k0, k1 := c.keyIn(ids[0], "app:a"), c.keyIn(ids[1], "app:b")

	cl := tu.Dial(t, p.Addr())
	steps(t, cl,
		"GET x", "(error) NOAUTH Authentication required.",
		"SHOAL HOTKEYS", "(error) NOAUTH Authentication required.",
		"HELLO 3", "(error) NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time",
		"AUTH wrong", "(error) WRONGPASS invalid username-password pair or user is disabled.",
		"AUTH clientpw", "OK",
		"ACL WHOAMI", `"default"`,
		"SET "+k0+" 1", "OK",
		"SET "+k1+" 2", "OK",
		"MGET "+k0+" "+k1, `["1" "2"]`,
		"DBSIZE", "(integer) 2",
		"ACL SETUSER bob on", "(error) ERR the shoal proxy's users come from its --user and --requirepass flags: ACL SETUSER is not supported",
		"ACL USERS", `["alice" "default"]`,
	)

	a := tu.Dial(t, p.Addr())
	steps(t, a,
		"AUTH alice wrong", "(error) WRONGPASS invalid username-password pair or user is disabled.",
		"AUTH alice apw", "OK",
		"ACL WHOAMI", `"alice"`,
		"GET "+k0, `"1"`,
		"SET other 1", "(error) NOPERM No permissions to access a key",
		"MGET "+k0+" other", "(error) NOPERM No permissions to access a key",
		"FLUSHALL", "(error) NOPERM User alice has no permissions to run the 'flushall' command",
		"KEYS *", "(error) NOPERM User alice has no permissions to run the 'keys' command",
		"PUBLISH sport x", "(error) NOPERM No permissions to access a channel",
		"ACL SETUSER bob on", "(error) NOPERM User alice has no permissions to run the 'acl' command",
		// A transaction on a dedicated backend connection.
		"MULTI", "OK",
		"INCR "+k0, "QUEUED",
		"SET other 1", "(error) NOPERM No permissions to access a key",
		"EXEC", "(error) EXECABORT Transaction discarded because of previous errors.",
		"MULTI", "OK",
		"INCR "+k0, "QUEUED",
		"EXEC", "[(integer) 2]",
		// A blocking command on a dedicated connection.
		"RPUSH "+k1+"l 9", "(integer) 1",
		"BLPOP "+k1+"l 1", `["`+k1+`l" "9"]`,
	)

	// Pub/sub through the proxy's own (authenticated) node connections.
	sub := tu.Dial(t, p.Addr())
	steps(t, sub, "AUTH alice apw", "OK", "SUBSCRIBE news.1", `["subscribe" "news.1" (integer) 1]`)
	waitUntil(t, "the message to arrive", func() bool {
		return a.Do("PUBLISH", "news.1", "hello") == "(integer) 1"
	})
	if m, err := sub.Read(); err != nil || m.String() != `["message" "news.1" "hello"]` {
		t.Fatalf("message %v %v", m.String(), err)
	}

	// go-redis with Username/Password, RESP2 and RESP3.
	ctx := context.Background()
	for _, proto := range []int{2, 3} {
		rdb := redis.NewClient(&redis.Options{Addr: p.Addr(), Username: "alice", Password: "apw", Protocol: proto})
		if err := rdb.Set(ctx, k1, "g", 0).Err(); err != nil {
			t.Fatalf("RESP%d: %v", proto, err)
		}
		if v, err := rdb.Get(ctx, k1).Result(); err != nil || v != "g" {
			t.Errorf("RESP%d get: %q %v", proto, v, err)
		}
		if err := rdb.Set(ctx, "other", "v", 0).Err(); err == nil || err.Error() != "NOPERM No permissions to access a key" {
			t.Errorf("RESP%d set other: %v", proto, err)
		}
		rdb.Close()
	}
}

// TestProxyBackendAuthMissing: a proxy without (or with wrong) backend
// credentials in front of nodes that require a password passes the
// nodes' refusal on; it never serves data it could not authenticate for.
func TestProxyBackendAuthMissing(t *testing.T) {
	c := newTClusterAuth(t, 1, 0, nil, []string{"--requirepass", "nodepw"}, acl.Credentials{Pass: "nodepw"})
	k := c.keyIn(c.shardIDs()[0], "k")
	none := c.startProxyWith(func(cfg *proxy.Config) { cfg.RetryBudget = 100 * time.Millisecond })
	steps(t, tu.Dial(t, none.Addr()), "GET "+k, "(error) NOAUTH Authentication required.")
	wrong := c.startProxyWith(func(cfg *proxy.Config) {
		cfg.RetryBudget = 100 * time.Millisecond
		cfg.Backend = acl.Credentials{User: "default", Pass: "nope"}
	})
	if r := tu.Dial(t, wrong.Addr()).Do("GET", k); !strings.Contains(r, "WRONGPASS") {
		t.Errorf("wrong backend password: %s", r)
	}
}

// TestSlotMoveAuth: a slot move between nodes that require a password.
// The target logs in to the source (masteruser/masterauth) for the
// CLUSTER SLOTSYNC stream and the manager (NodeAuth) for its CLUSTER
// MIGRATION probes, here as a user limited to what they need (and
// reads, which the test helpers use to see the cluster serving).
func TestSlotMoveAuth(t *testing.T) {
	c := newTClusterAuth(t, 2, 0, nil, []string{"--requirepass", "nodepw",
		"--user", "cluster on >cpw ~* resetchannels -@all +cluster +ping +@read",
		"--masteruser", "cluster", "--masterauth", "cpw"}, acl.Credentials{User: "cluster", Pass: "cpw"})
	ids := c.shardIDs()
	k := c.keyIn(ids[0], "mv")
	src := tu.Dial(t, c.primary(ids[0]).addr)
	steps(t, src, "AUTH nodepw", "OK")
	// The write waits for the source's write lease: waitServing reads
	// (these nodes' cluster user may not write), and a CI run under load
	// once had the lease lapse here (TRYAGAIN Write lease expired).
	waitUntil(t, "the source to take the write", func() bool { return src.Do("SET", k, "moved") == "OK" })
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	slot := cluster.SlotString(k)
	if _, err := c.client().Migrate(ctx, []int{slot}, ids[1]); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the slot moved", func() bool {
		mp := c.mgr.Map()
		return int(mp.Slots[slot]) == ids[1] && mp.Migrations[slot] == nil
	})
	// The target serves the key once it has installed the new map.
	dst := c.primary(ids[1]).addr
	waitUntil(t, "the target to serve the moved key", func() bool { return c.direct(dst, "GET", k) == `"moved"` })
}

// TestManagerTokens: a manager with an admin and a cluster token; the
// nodes (--manager-token) and the proxy (ManagerToken) use the cluster
// token, which cannot administer; a proxy without it cannot start.
func TestManagerTokens(t *testing.T) {
	c := newTClusterOpts(t, 2, 0, nil, tclusterOpts{
		nodeArgs:   []string{"--manager-token", "clu"},
		adminToken: "adm", clusterToken: "clu",
	})
	p := c.startProxyWith(func(cfg *proxy.Config) { cfg.ManagerToken = "clu" })
	k := c.keyIn(c.shardIDs()[1], "tok")
	steps(t, tu.Dial(t, p.Addr()), "SET "+k+" v", "OK", "GET "+k, `"v"`)

	cfg := proxy.DefaultConfig()
	cfg.Managers, cfg.Port, cfg.Log = c.mgr.HTTPAddr(), 0, quietLog()
	bare, err := proxy.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err = bare.Start(ctx)
	if err == nil {
		bare.Close()
		t.Fatal("a proxy without the token started")
	}
	if !strings.Contains(err.Error(), "unauthorized") {
		t.Errorf("proxy without a token: %v", err)
	}
	if ctx.Err() != nil {
		t.Error("the 401 was retried until the deadline")
	}
	clusterOnly := &manager.Client{Addrs: []string{c.mgr.HTTPAddr()}, Token: "clu"}
	if _, err := clusterOnly.Status(context.Background()); err == nil || !strings.Contains(err.Error(), "not valid") {
		t.Errorf("status with the cluster token: %v", err)
	}
}

// TestManagerHTTPSCluster: the manager serves HTTPS; nodes
// (manager-tls-ca-cert-file) and the proxy (ManagerCAFile) trust its CA.
func TestManagerHTTPSCluster(t *testing.T) {
	certs := testcert.New(t)
	srv, err := tlsconf.Server(certs.ServerCert, certs.ServerKey, "", "no")
	if err != nil {
		t.Fatal(err)
	}
	cli, err := tlsconf.Client(certs.CA, "", "")
	if err != nil {
		t.Fatal(err)
	}
	c := newTClusterOpts(t, 2, 0, nil, tclusterOpts{
		nodeArgs: []string{"--manager-tls-ca-cert-file", certs.CA},
		mgrTLS:   srv, clientTLS: cli,
	})
	p := c.startProxyWith(func(cfg *proxy.Config) { cfg.ManagerCAFile = certs.CA })
	k := c.keyIn(c.shardIDs()[0], "https")
	steps(t, tu.Dial(t, p.Addr()), "SET "+k+" v", "OK", "GET "+k, `"v"`)

	cfg := proxy.DefaultConfig()
	cfg.Managers, cfg.Port, cfg.Log = c.mgr.HTTPAddr(), 0, quietLog()
	cfg.ManagerCAFile = certs.OtherCA
	untrusting, err := proxy.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := untrusting.Start(ctx); err == nil {
		untrusting.Close()
		t.Fatal("a proxy trusting another CA reached the manager")
	}
}

// TestClusterTLS: every node serves a tls-port requiring client
// certificates; replicas follow their primaries over TLS, a slot move's
// stream runs over TLS, the manager probes the move over TLS and the
// proxy reaches the nodes over TLS only (with a password on top).
func TestClusterTLS(t *testing.T) {
	certs := testcert.New(t)
	nodeTLS, err := tlsconf.Client(certs.CA, certs.ClientCert, certs.ClientKey)
	if err != nil {
		t.Fatal(err)
	}
	c := newTClusterOpts(t, 2, 1, nil, tclusterOpts{
		nodeArgs: []string{"--requirepass", "nodepw", "--masterauth", "nodepw"},
		cred:     acl.Credentials{Pass: "nodepw"},
		certs:    &certs, nodeTLS: nodeTLS,
	})
	for _, n := range c.mgr.Map().Nodes {
		if n.TLSAddr == "" || n.TLSAddr == n.Addr {
			t.Fatalf("node %s registered no TLS address: %+v", n.ID, n)
		}
	}
	front, err := tlsconf.Server(certs.ServerCert, certs.ServerKey, certs.CA, "yes")
	if err != nil {
		t.Fatal(err)
	}
	p := c.startProxyWith(func(cfg *proxy.Config) {
		cfg.Backend = acl.Credentials{Pass: "nodepw"}
		cfg.BackendTLS = nodeTLS
		cfg.TLSPort, cfg.TLS = 0, front
	})
	ids := c.shardIDs()
	k := c.keyIn(ids[0], "tlsmove")
	cl := tu.Dial(t, p.Addr())
	steps(t, cl, "SET "+k+" v", "OK", "GET "+k, `"v"`, "DBSIZE", "(integer) 1")
	sub := tu.Dial(t, p.Addr())
	steps(t, sub, "SUBSCRIBE ch", `["subscribe" "ch" (integer) 1]`)
	waitUntil(t, "a message through TLS backends", func() bool { return cl.Do("PUBLISH", "ch", "m") == "(integer) 1" })
	if m, err := sub.Read(); err != nil || m.String() != `["message" "ch" "m"]` {
		t.Fatalf("message %v %v", m.String(), err)
	}
	// The proxy's own TLS port: a client certificate is required.
	rdb := redis.NewClient(&redis.Options{Addr: p.TLSAddr(), TLSConfig: nodeTLS})
	defer rdb.Close()
	if v, err := rdb.Get(context.Background(), k).Result(); err != nil || v != "v" {
		t.Fatalf("GET through the proxy's TLS port: %q %v", v, err)
	}
	noCert, err := tlsconf.Client(certs.CA, "", "")
	if err != nil {
		t.Fatal(err)
	}
	anon := redis.NewClient(&redis.Options{Addr: p.TLSAddr(), TLSConfig: noCert, MaxRetries: -1})
	defer anon.Close()
	if err := anon.Ping(context.Background()).Err(); err == nil {
		t.Error("the proxy's TLS port served a client without a certificate")
	}
	slot := cluster.SlotString(k)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := c.client().Migrate(ctx, []int{slot}, ids[1]); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the slot moved over TLS", func() bool {
		mp := c.mgr.Map()
		return int(mp.Slots[slot]) == ids[1] && mp.Migrations[slot] == nil
	})
	steps(t, cl, "GET "+k, `"v"`)
	target := c.primary(ids[1]).addr
	waitUntil(t, "the target to serve the moved key", func() bool { return c.direct(target, "GET", k) == `"v"` })
	// A proxy that trusts another CA gets the certificate error.
	other, err := tlsconf.Client(certs.OtherCA, certs.ClientCert, certs.ClientKey)
	if err != nil {
		t.Fatal(err)
	}
	wrong := c.startProxyWith(func(cfg *proxy.Config) {
		cfg.RetryBudget = 100 * time.Millisecond
		cfg.Backend = acl.Credentials{Pass: "nodepw"}
		cfg.BackendTLS = other
	})
	if r := tu.Dial(t, wrong.Addr()).Do("GET", k); !strings.Contains(r, "certificate") {
		t.Errorf("a proxy trusting another CA: %s", r)
	}
}

func steps(t *testing.T, c *tu.Conn, pairs ...string) {
	t.Helper()
	for i := 0; i+1 < len(pairs); i += 2 {
		if got := c.Do(tu.C(pairs[i])...); got != pairs[i+1] {
			t.Errorf("%s:\n got  %s\n want %s", pairs[i], got, pairs[i+1])
		}
	}
}
