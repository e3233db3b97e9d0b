package proxy_test

import (
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"shoal/internal/cluster"
	"shoal/internal/proxy"
	"shoal/internal/resp"
	tu "shoal/internal/testutil"
)

// fakeNode is a scripted RESP backend: handle returns the raw reply, or
// "" to drop the connection without answering.
type fakeNode struct {
	ln     net.Listener
	mu     sync.Mutex
	seen   []string // every command received, "ASKING" included
	handle func(n *fakeNode, args []string) string
	// gate, if set, holds every connection unread until it is closed (a
	// backend that stops reading its socket).
	gate chan struct{}
}

func startFake(t *testing.T, handle func(n *fakeNode, args []string) string) *fakeNode {
	return startFakeGated(t, handle, nil)
}

// startFakeGated is startFake with a gate (fakeNode.gate).
func startFakeGated(t *testing.T, handle func(n *fakeNode, args []string) string, gate chan struct{}) *fakeNode {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	n := &fakeNode{ln: ln, handle: handle, gate: gate}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go n.serve(c)
		}
	}()
	return n
}

func (n *fakeNode) serve(c net.Conn) {
	defer c.Close()
	if n.gate != nil {
		<-n.gate
	}
	var buf []byte
	tmp := make([]byte, 4096)
	for {
		m, err := c.Read(tmp)
		if err != nil {
			return
		}
		buf = append(buf, tmp[:m]...)
		for {
			args, used, _, err := resp.Parse(buf, nil, resp.DefaultLimits)
			if err != nil || used == 0 {
				break
			}
			buf = buf[used:]
			s := make([]string, len(args))
			for i, a := range args {
				s[i] = string(a)
			}
			n.mu.Lock()
			n.seen = append(n.seen, strings.Join(s, " "))
			n.mu.Unlock()
			reply := n.handle(n, s)
			if reply == "" {
				return
			}
			c.Write([]byte(reply))
		}
	}
}

// startFakeProxy starts a proxy whose managers serve the fake map
// managers (fakeManager...), with edit applied to its config; it is closed
// when the test ends.
func startFakeProxy(t *testing.T, managers string, edit func(*proxy.Config)) *proxy.Proxy {
	t.Helper()
	cfg := proxy.DefaultConfig()
	cfg.Managers = managers
	cfg.Log = quietLog()
	if edit != nil {
		edit(&cfg)
	}
	p, err := proxy.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := contextWithTimeout(30 * time.Second)
	defer cancel()
	if err := p.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

func (n *fakeNode) count(cmd string) int {
	n.mu.Lock()
	defer n.mu.Unlock()
	k := 0
	for _, s := range n.seen {
		if s == cmd {
			k++
		}
	}
	return k
}

// movesFetches counts the fake managers' requests for a map with its
// moves (the whole map or its window view, not the routes view).
var movesFetches atomic.Int64

// fakeManager serves a fixed map: shard 1 (node a) owns every slot,
// shard 2 (node b) none. A long poll waits until the proxy gives up.
func fakeManager(t *testing.T, a, b string) string {
	return fakeManagerSplit(t, a, b, cluster.NumSlots)
}

// fakeManagerSplit is fakeManager with shard 1 owning the slots below
// split and shard 2 the others.
func fakeManagerSplit(t *testing.T, a, b string, split int) string {
	m := cluster.NewMap()
	m.Epoch = 7
	m.Nodes["a"] = &cluster.Node{ID: "a", Addr: a, Shard: 1, State: cluster.NodeActive}
	m.Nodes["b"] = &cluster.Node{ID: "b", Addr: b, Shard: 2, State: cluster.NodeActive}
	m.Shards[1] = &cluster.Shard{ID: 1, Primary: "a", Replicas: []string{}, Epoch: 1}
	m.Shards[2] = &cluster.Shard{ID: 2, Primary: "b", Replicas: []string{}, Epoch: 1}
	for i := range m.Slots {
		m.Slots[i] = 1
		if i >= split {
			m.Slots[i] = 2
		}
	}
	body, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/map" && r.URL.Query().Get("view") != "routes" {
			movesFetches.Add(1)
		}
		if r.URL.Query().Get("wait") != "" {
			<-r.Context().Done()
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(body)
	}))
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().String()
}

// A proxy whose managers do not serve the routes view yet (an older
// version, during a rolling upgrade) takes the window view instead.
func TestProxyMapFromOlderManagers(t *testing.T) {
	a := startFake(t, func(n *fakeNode, args []string) string {
		if strings.Join(args, " ") == "GET k" {
			return "$1\r\na\r\n"
		}
		return "-ERR unexpected\r\n"
	})
	m := cluster.NewMap()
	m.Epoch = 3
	m.Nodes["a"] = &cluster.Node{ID: "a", Addr: a.ln.Addr().String(), Shard: 1, State: cluster.NodeActive}
	m.Shards[1] = &cluster.Shard{ID: 1, Primary: "a", Replicas: []string{}, Epoch: 1}
	for i := range m.Slots {
		m.Slots[i] = 1
	}
	body, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	var routes, window atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Query().Get("view") {
		case "routes":
			routes.Add(1)
			w.WriteHeader(http.StatusBadRequest)
			w.Write([]byte(`{"error":"view must be window or absent"}`))
			return
		case "window":
			window.Add(1)
		}
		if r.URL.Query().Get("wait") != "" {
			<-r.Context().Done()
			return
		}
		w.Write(body)
	}))
	t.Cleanup(srv.Close)
	p := startFakeProxy(t, srv.Listener.Addr().String(), nil)
	tu.Run(t, tu.Dial(t, p.Addr()), []tu.Case{{Cmd: tu.C("GET k"), Want: `"a"`}})
	if routes.Load() != 1 || window.Load() < 1 {
		t.Fatalf("routes view asked %d times, window view %d", routes.Load(), window.Load())
	}
}

// TestProxyRetryRules drives the retry rules against scripted backends.
func TestProxyRetryRules(t *testing.T) {
	var mu sync.Mutex
	tries := map[string]int{}
	try := func(k string) int { mu.Lock(); defer mu.Unlock(); tries[k]++; return tries[k] }
	var bAddr string
	a := startFake(t, func(n *fakeNode, args []string) string {
		cmd := strings.Join(args, " ")
		switch cmd {
		case "GET moved":
			return "-MOVED " + strconv.Itoa(cluster.SlotString("moved")) + " " + bAddr + "\r\n"
		case "GET asked":
			return "-ASK " + strconv.Itoa(cluster.SlotString("asked")) + " " + bAddr + "\r\n"
		case "SET cut v":
			// The source took the flip before the target (the migrator
			// pushes it to both at once).
			return "-MOVED " + strconv.Itoa(cluster.SlotString("cut")) + " " + bAddr + "\r\n"
		case "SET t v":
			if try(cmd) == 1 {
				return "-TRYAGAIN wait for the manager\r\n"
			}
			return "+OK\r\n"
		case "GET drop":
			if try(cmd) == 1 {
				return "" // read-only: resent
			}
			return "$2\r\nok\r\n"
		case "INCR drop":
			try(cmd)
			return "" // not idempotent: an error, not resent
		case "SET drop v":
			if try(cmd) == 1 {
				return "" // plain SET is idempotent: resent
			}
			return "+OK\r\n"
		case "GET forever":
			return "-TRYAGAIN still not\r\n"
		}
		return "-ERR unexpected " + cmd + "\r\n"
	})
	b := startFake(t, func(n *fakeNode, args []string) string {
		switch strings.Join(args, " ") {
		case "ASKING":
			return "+OK\r\n"
		case "GET moved":
			return "$1\r\nb\r\n"
		case "GET asked":
			n.mu.Lock()
			defer n.mu.Unlock()
			if len(n.seen) < 2 || n.seen[len(n.seen)-2] != "ASKING" {
				return "-ASK expected ASKING first\r\n"
			}
			return "$5\r\nasked\r\n"
		case "SET cut v":
			if try("b "+strings.Join(args, " ")) <= 2 {
				return "-TRYAGAIN Slot " + strconv.Itoa(cluster.SlotString("cut")) + " is moving to another shard: retry shortly\r\n"
			}
			return "+OK\r\n"
		}
		return "-ERR unexpected\r\n"
	})
	bAddr = b.ln.Addr().String()
	p := startFakeProxy(t, fakeManager(t, a.ln.Addr().String(), bAddr), func(cfg *proxy.Config) { cfg.RetryBudget = time.Second })
	cl := tu.Dial(t, p.Addr())
	tu.Run(t, cl, []tu.Case{
		{tu.C("GET moved"), `"b"`},
		{tu.C("GET asked"), `"asked"`},
		{tu.C("SET t v"), "OK"},
		{tu.C("GET drop"), `"ok"`},
		{tu.C("SET drop v"), "OK"},
		{tu.C("SET cut v"), "OK"},
	})
	// A cutover's TRYAGAIN from the node a MOVED named is asked of that
	// node again, not bounced through the source (whose MOVED the map
	// would lead to until the proxy has the flip).
	if na, nb := a.count("SET cut v"), b.count("SET cut v"); na != 1 || nb != 3 {
		t.Errorf("SET during a cutover: sent %d times to the source, %d to the target; want 1 and 3", na, nb)
	}
	if r := cl.Do("INCR", "drop"); !strings.Contains(r, "may have been applied") {
		t.Errorf("INCR on a dropped connection: %s", r)
	}
	if n := a.count("INCR drop"); n != 1 {
		t.Errorf("INCR sent %d times", n)
	}
	start := time.Now()
	if r := cl.Do("GET", "forever"); r != "(error) TRYAGAIN still not" {
		t.Errorf("after the budget: %s", r)
	}
	if d := time.Since(start); d < time.Second {
		t.Errorf("gave up after %v, before the budget", d)
	}
	// Every redirect above asked for a fresh map: the routes view, never
	// a map with the moves (the window's or every queued one).
	if n := movesFetches.Load(); n != 0 {
		t.Errorf("the proxy fetched a map with its moves %d times", n)
	}
}
