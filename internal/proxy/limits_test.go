package proxy_test

import (
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"shoal/internal/cluster"
	"shoal/internal/proxy"
	"shoal/internal/resp"
	tu "shoal/internal/testutil"
)

func infoField(t *testing.T, cl *tu.Conn, name string) int64 {
	t.Helper()
	info := cl.Do("INFO")
	i := strings.Index(info, name+":")
	if i < 0 {
		t.Fatalf("no %s in INFO", name)
	}
	v := info[i+len(name)+1:]
	if j := strings.Index(v, `\r`); j >= 0 {
		v = v[:j]
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		t.Fatalf("%s: %q", name, v)
	}
	return n
}

// waitClosed reads nc until the proxy has closed it (after whatever it
// sent before); it fails the test if that takes 30 s.
func waitClosed(t *testing.T, nc net.Conn) {
	t.Helper()
	nc.SetReadDeadline(time.Now().Add(30 * time.Second))
	buf := make([]byte, 1<<20)
	for {
		if _, err := nc.Read(buf); err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				t.Fatal("the client was not disconnected")
			}
			return
		}
	}
}

// TestProxyClientOutputLimit: a client that pipelines 100k GETs of a
// 64 KB value and never reads is disconnected at the output limit; the
// proxy's held reply bytes stay bounded and other clients are served.
func TestProxyClientOutputLimit(t *testing.T) {
	c := newTCluster(t, 2, 0, nil)
	const limit = 1 << 20
	p := c.startProxyWith(func(cfg *proxy.Config) { cfg.RetryBudget = 10 * time.Second; cfg.ClientOutputLimit = limit })
	ids := c.shardIDs()
	big := c.keyIn(ids[0], "big")
	other := tu.Dial(t, p.Addr())
	val := strings.Repeat("v", 64<<10)
	tu.Run(t, other, []tu.Case{{[]string{"SET", big, val}, "OK"}})

	nc, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.(*net.TCPConn).SetReadBuffer(4 << 10) // let the proxy's writes block early
	wrote := make(chan error, 1)
	go func() {
		var batch []byte
		for i := 0; i < 1000; i++ {
			batch = resp.AppendCommand(batch, "GET", big)
		}
		for i := 0; i < 100; i++ { // 100k GETs, never reading a reply
			if _, err := nc.Write(batch); err != nil {
				wrote <- err
				return
			}
		}
		wrote <- nil
	}()
	var peak int64
	waitUntil(t, "the client disconnected at the limit", func() bool {
		peak = max(peak, infoField(t, other, "client_output_bytes"))
		return infoField(t, other, "client_output_limit_disconnects") == 1
	})
	if err := <-wrote; err == nil {
		t.Log("all 100k requests fit in the socket buffers before the disconnect")
	}
	// The proxy stopped reading at MaxPending outstanding requests: it
	// sent the node a few thousand GETs at most, not 100k.
	if n := infoField(t, other, "total_backend_requests"); n > 10000 {
		t.Errorf("%d backend requests: the proxy kept reading", n)
	}
	// The reply that would cross the limit is dropped with the client.
	if peak > limit {
		t.Errorf("held %d reply bytes, limit %d", peak, limit)
	}
	waitUntil(t, "its replies released", func() bool { return infoField(t, other, "client_output_bytes") == 0 })
	waitClosed(t, nc)
	// Other clients are unaffected.
	tu.Run(t, other, []tu.Case{{[]string{"STRLEN", big}, "(integer) " + strconv.Itoa(len(val))}, {tu.C("PING"), "PONG"}})
}

// TestProxySlowBackend: a backend that stops answering stalls only the
// requests sent to it; traffic to the other shard flows.
func TestProxySlowBackend(t *testing.T) {
	release := make(chan struct{})
	a := startFake(t, func(n *fakeNode, args []string) string {
		if strings.Join(args, " ") == "GET stall" {
			<-release
		}
		return "$1\r\na\r\n"
	})
	b := startFake(t, func(n *fakeNode, args []string) string { return "$1\r\nb\r\n" })
	var once sync.Once
	unstall := func() { once.Do(func() { close(release) }) }
	defer unstall()
	// Shard 1 (a) owns the slots below "stall"'s + 1, shard 2 (b) the rest.
	split := cluster.SlotString("stall") + 1
	var onB string
	for i := 0; ; i++ {
		if k := "k" + strconv.Itoa(i); cluster.SlotString(k) >= split {
			onB = k
			break
		}
	}
	cfg := proxy.DefaultConfig()
	cfg.Managers = fakeManagerSplit(t, a.ln.Addr().String(), b.ln.Addr().String(), split)
	cfg.Log = quietLog()
	p, err := proxy.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := contextWithTimeout(30 * time.Second)
	defer cancel()
	if err := p.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	stalled := make([]*tu.Conn, 4)
	for i := range stalled {
		stalled[i] = tu.Dial(t, p.Addr()) // ids spread over both pool connections
		stalled[i].Send(resp.AppendCommand(nil, "GET", "stall"))
	}
	// The node serves a connection's requests in order: each of the
	// proxy's two pooled connections to it is now stuck.
	waitUntil(t, "both pool connections stalled", func() bool { return a.count("GET stall") == 2 })
	for i := 0; i < 4; i++ {
		cl := tu.Dial(t, p.Addr())
		cl.C.SetDeadline(time.Now().Add(10 * time.Second))
		tu.Run(t, cl, []tu.Case{{[]string{"GET", onB}, `"b"`}, {tu.C("PING"), "PONG"}})
		cl.C.Close()
	}
	// A stalled client's later replies wait for its stalled one (order).
	stalled[0].Send(resp.AppendCommand(nil, "GET", onB))
	unstall()
	for _, w := range []string{`"a"`, `"b"`} {
		r, err := stalled[0].Read()
		if err != nil || r.String() != w {
			t.Fatalf("stalled client: %v %v, want %s", r, err, w)
		}
	}
}

// TestProxyClientQueryLimit: an event-loop client that pipelines GETs and
// never reads waits at MaxPending (its replies cannot be written); the
// loop keeps reading its socket, and past the query buffer limit the
// client is disconnected while other clients are served.
func TestProxyClientQueryLimit(t *testing.T) {
	c := newTCluster(t, 2, 0, nil)
	const limit = 1 << 20
	p := c.startProxyWith(func(cfg *proxy.Config) {
		cfg.RetryBudget = 10 * time.Second
		cfg.ClientOutputLimit = 0 // the query limit, not the output limit, ends it
		cfg.ClientQueryLimit = limit
	})
	ids := c.shardIDs()
	key := c.keyIn(ids[0], "q")
	other := tu.Dial(t, p.Addr())
	val := strings.Repeat("v", 4<<10)
	tu.Run(t, other, []tu.Case{{[]string{"SET", key, val}, "OK"}})

	nc, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.(*net.TCPConn).SetReadBuffer(4 << 10)
	go func() {
		var batch []byte
		for i := 0; i < 1000; i++ {
			batch = resp.AppendCommand(batch, "GET", key)
		}
		for i := 0; i < 300; i++ { // ~10 MB of requests, never reading a reply
			if _, err := nc.Write(batch); err != nil {
				return
			}
		}
	}()
	waitUntil(t, "the client disconnected at the query limit", func() bool {
		return infoField(t, other, "client_query_limit_disconnects") == 1
	})
	waitClosed(t, nc)
	tu.Run(t, other, []tu.Case{{[]string{"STRLEN", key}, "(integer) " + strconv.Itoa(len(val))}, {tu.C("PING"), "PONG"}})
	bad := proxy.DefaultConfig()
	bad.Managers, bad.ClientQueryLimit = "127.0.0.1:1", 512<<10
	if err := bad.Validate(); err == nil || !strings.Contains(err.Error(), "query buffer limit") {
		t.Errorf("a 512kb query limit: %v", err)
	}
}
