package proxy_test

import (
	"context"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

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
	p := startFakeProxy(t, fakeManagerSplit(t, a.ln.Addr().String(), b.ln.Addr().String(), split), func(cfg *proxy.Config) { cfg.LoopPoolSize = 2 })
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

// TestProxyBackendNotReading: a backend that stops reading its socket
// makes the loop stop appending to its connection past maxOut (4 MB)
// unwritten: the writing client's input is no longer parsed, so past the
// query limit it is disconnected instead of the proxy buffering all it
// sends; other shards' traffic flows, and once the backend reads again
// it gets the parsed requests in order.
func TestProxyBackendNotReading(t *testing.T) {
	gate := make(chan struct{})
	var once sync.Once
	open := func() { once.Do(func() { close(gate) }) }
	defer open()
	var mu sync.Mutex
	var sets []string // the keys node a was asked to SET, in order
	a := startFakeGated(t, func(n *fakeNode, args []string) string {
		if args[0] == "SET" {
			mu.Lock()
			sets = append(sets, args[1])
			mu.Unlock()
			return "+OK\r\n"
		}
		return "$1\r\na\r\n"
	}, gate)
	b := startFake(t, func(n *fakeNode, args []string) string { return "$1\r\nb\r\n" })
	split := cluster.NumSlots / 2
	onA, onB := "", "" // onA: a hash tag of node a's, onB: a key of node b's
	for i := 0; onA == "" || onB == ""; i++ {
		k := "k" + strconv.Itoa(i)
		if cluster.SlotString(k) < split {
			onA = "{" + k + "}"
		} else {
			onB = k
		}
	}
	p := startFakeProxy(t, fakeManagerSplit(t, a.ln.Addr().String(), b.ln.Addr().String(), split), func(cfg *proxy.Config) {
		cfg.ClientOutputLimit = 0
		cfg.ClientQueryLimit = 2 << 20
		cfg.LoopPoolSize = 1 // other's GET below follows the SETs on node a's one connection
	})

	nc, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	val := strings.Repeat("v", 200<<10) // under the loop's 256 KB request size
	done := make(chan int, 1)
	go func() {
		n := 0
		defer func() { done <- n }()
		for ; n < 2000; n++ { // 400 MB if nothing stopped it
			if _, err := nc.Write(resp.AppendCommand(nil, "SET", onA+strconv.Itoa(n), val)); err != nil {
				return
			}
		}
	}()
	waitClosed(t, nc)
	sent := <-done
	if sent >= 2000 {
		t.Fatalf("the client wrote all its %d SETs: the proxy buffered them", sent)
	}
	other := tu.Dial(t, p.Addr())
	other.C.SetDeadline(time.Now().Add(10 * time.Second))
	tu.Run(t, other, []tu.Case{{[]string{"GET", onB}, `"b"`}, {tu.C("PING"), "PONG"}})
	open()
	// On the loop's one connection to node a, after the SETs parsed: its
	// reply comes once node a has answered them all.
	tu.Run(t, other, []tu.Case{{[]string{"GET", onA + "x"}, `"a"`}})
	if n := infoField(t, other, "client_query_limit_disconnects"); n != 1 {
		t.Errorf("client_query_limit_disconnects %d, want 1", n)
	}
	mu.Lock()
	got := append([]string(nil), sets...)
	mu.Unlock()
	for i, k := range got {
		if k != onA+strconv.Itoa(i) {
			t.Fatalf("SET %d on node a is for %s, want %s", i, k, onA+strconv.Itoa(i))
		}
	}
	// Requests parsed before the limit: at most maxOut (4 MB) plus what
	// the sockets held, far below what the client wrote.
	if len(got)*len(val) > 32<<20 {
		t.Errorf("node a got %d SETs (%d MB)", len(got), len(got)*len(val)>>20)
	}
	t.Logf("client wrote %d SETs (%d MB) before it was disconnected; node a got %d", sent, sent*len(val)>>20, len(got))
}

// TestProxyHandoverQueuedOutput: a loop client that has not read its
// replies (megabytes queued for it) and then sends a command of the slow
// path is handed over only once they are written; it then gets every
// reply in order, and is served on the slow path after.
func TestProxyHandoverQueuedOutput(t *testing.T) {
	c := newTCluster(t, 2, 0, nil)
	p := c.startProxyWith(func(cfg *proxy.Config) { cfg.RetryBudget = 10 * time.Second })
	ids := c.shardIDs()
	k1, k2 := c.keyIn(ids[0], "h"), c.keyIn(ids[1], "h")
	setup := tu.Dial(t, p.Addr())
	v1, v2 := strings.Repeat("1", 64<<10), strings.Repeat("2", 32<<10)
	tu.Run(t, setup, []tu.Case{{[]string{"SET", k1, v1}, "OK"}, {[]string{"SET", k2, v2}, "OK"}})

	cl := tu.Dial(t, p.Addr())
	var batch []byte
	const n = 200 // 19 MB of replies: more than the sockets hold
	for i := 0; i < n; i++ {
		batch = resp.AppendCommand(batch, "GET", k1)
		batch = resp.AppendCommand(batch, "GET", k2)
	}
	batch = resp.AppendCommand(batch, "ECHO", "slow path")
	batch = resp.AppendCommand(batch, "GET", k2)
	cl.Send(batch)
	// Let the replies pile up in the proxy before reading any.
	waitUntil(t, "replies queued for the client", func() bool {
		return infoField(t, setup, "client_output_bytes") > 1<<20
	})
	for i := 0; i < n; i++ {
		for _, want := range []string{v1, v2} {
			r, err := cl.Read()
			if err != nil || r.String() != strconv.Quote(want) {
				t.Fatalf("reply %d: %.40v %v", i, r, err)
			}
		}
	}
	for _, want := range []string{`"slow path"`, strconv.Quote(v2)} {
		if r, err := cl.Read(); err != nil || r.String() != want {
			t.Fatalf("after the handover: %.40v %v, want %.20s", r, err, want)
		}
	}
	tu.Run(t, cl, []tu.Case{{[]string{"CLIENT", "GETNAME"}, "(nil)"}, {[]string{"GET", k1}, strconv.Quote(v1)}})
}

// TestProxyLoopConnectCommands: what RESP2 clients send on connecting
// (HELLO 2, CLIENT SETINFO / SETNAME, SELECT 0) and ECHO are answered on
// the event loop, so the client stays there (event_loop_handovers); its
// name and id stay the same once a later command hands it over, and
// go-redis with Protocol 2 is served on the loop.
func TestProxyLoopConnectCommands(t *testing.T) {
	c := newTCluster(t, 2, 0, nil)
	p := c.startProxy(10 * time.Second)
	key := c.keyIn(c.shardIDs()[0], "lc")
	admin := tu.Dial(t, p.Addr())
	handovers := func() int64 { return infoField(t, admin, "event_loop_handovers") }
	base := handovers() // admin's INFO handed admin over

	cl := tu.Dial(t, p.Addr())
	r, err := cl.DoReply("HELLO", "2")
	if err != nil || r.Kind != '*' || !strings.Contains(r.String(), `"proto"`) {
		t.Fatalf("HELLO 2: %v %v", r, err)
	}
	tu.Run(t, cl, []tu.Case{
		{[]string{"CLIENT", "SETINFO", "LIB-NAME", "test"}, "OK"},
		{[]string{"CLIENT", "GETNAME"}, "(nil)"},
		{[]string{"CLIENT", "SETNAME", "app1"}, "OK"},
		{[]string{"CLIENT", "GETNAME"}, `"app1"`},
		{[]string{"SELECT", "0"}, "OK"},
		{[]string{"ECHO", "hi"}, `"hi"`},
		{[]string{"SET", key, "v"}, "OK"},
		{[]string{"GET", key}, `"v"`},
	})
	id := cl.Do("CLIENT", "ID")
	if n := handovers(); n != base {
		t.Fatalf("%d handovers, want %d: a connect command left the loop", n, base)
	}
	// The slow path answers what the loop does not, with the same state.
	tu.Run(t, cl, []tu.Case{
		{[]string{"SELECT", "1"}, "(error) ERR SELECT of a database other than 0 is not supported by the shoal proxy"},
		{[]string{"CLIENT", "GETNAME"}, `"app1"`},
		{[]string{"CLIENT", "ID"}, id},
		{[]string{"GET", key}, `"v"`},
	})
	if n := handovers(); n != base+1 {
		t.Fatalf("%d handovers, want %d", n, base+1)
	}
	// go-redis, RESP2: HELLO 2 and CLIENT SETINFO on every connection.
	rdb := redis.NewClient(&redis.Options{Addr: p.Addr(), Protocol: 2, PoolSize: 4})
	defer rdb.Close()
	ctx := context.Background()
	for i := 0; i < 20; i++ {
		if err := rdb.Set(ctx, key, i, 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	if v, err := rdb.Get(ctx, key).Result(); err != nil || v != "19" {
		t.Fatalf("go-redis GET: %q %v", v, err)
	}
	if n := handovers(); n != base+1 {
		t.Errorf("go-redis (RESP2) clients were handed over: %d handovers, want %d", n, base+1)
	}

	// RESP3 (HELLO 3, go-redis's default) on the loop too: RESP3 types
	// from RESP3 backend connections; the protocol survives a handover.
	h := c.keyIn(c.shardIDs()[1], "lc3")
	tu.Run(t, admin, []tu.Case{{[]string{"HSET", h, "f", "v"}, "(integer) 1"}})
	r3 := tu.Dial(t, p.Addr())
	for _, tc := range []struct {
		args []string
		kind byte
	}{
		{[]string{"HELLO", "3"}, '%'},
		{[]string{"HGETALL", h}, '%'},
		{[]string{"GET", h + "nokey"}, '_'},
		{[]string{"CLIENT", "GETNAME"}, '_'},
		{[]string{"MGET", key, h + "nokey"}, '*'},
		{[]string{"HELLO"}, '%'},
	} {
		if r, err := r3.DoReply(tc.args...); err != nil || r.Kind != tc.kind {
			t.Fatalf("%v: %c %v %v, want %c", tc.args, r.Kind, r, err, tc.kind)
		}
	}
	if n := handovers(); n != base+1 {
		t.Fatalf("a RESP3 client was handed over: %d handovers, want %d", n, base+1)
	}
	if r, err := r3.DoReply("INFO"); err != nil || r.Kind != '=' {
		t.Fatalf("INFO after the handover: %c %v", r.Kind, err)
	}
	if r, err := r3.DoReply("HGETALL", h); err != nil || r.Kind != '%' {
		t.Fatalf("HGETALL after the handover: %c %v", r.Kind, err)
	}
	rdb3 := redis.NewClient(&redis.Options{Addr: p.Addr(), PoolSize: 4})
	defer rdb3.Close()
	if m, err := rdb3.HGetAll(ctx, h).Result(); err != nil || m["f"] != "v" {
		t.Fatalf("go-redis RESP3 HGETALL: %v %v", m, err)
	}
	if n := handovers(); n != base+2 {
		t.Errorf("go-redis (RESP3) clients were handed over: %d handovers, want %d (r3's INFO)", n, base+2)
	}
}
