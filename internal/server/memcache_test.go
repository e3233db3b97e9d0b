package server_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bradfitz/gomemcache/memcache"

	tu "shoal/internal/testutil"
)

// startMC starts a server with the memcached port enabled and returns it
// with the memcached address.
func startMC(t *testing.T, directives ...string) (*tu.Node, string) {
	t.Helper()
	port := tu.FreePort(t)
	n := tu.StartServer(t, append([]string{"memcached-port", strconv.Itoa(port)}, directives...)...)
	return n, "127.0.0.1:" + strconv.Itoa(port)
}

type mcClient struct {
	c net.Conn
	r *bufio.Reader
}

func mcDial(t *testing.T, addr string) *mcClient {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &mcClient{c: c, r: bufio.NewReader(c)}
}

// do sends req followed by a meta no-op and returns every reply line
// before its MN, with CRLF shown as "|".
func (m *mcClient) do(t *testing.T, req string) string {
	t.Helper()
	m.c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := m.c.Write([]byte(req + "mn\r\n")); err != nil {
		t.Fatalf("write %q: %v", req, err)
	}
	var sb strings.Builder
	for {
		l, err := m.r.ReadString('\n')
		if err != nil {
			t.Fatalf("%q: read after %q: %v", req, sb.String(), err)
		}
		if l == "MN\r\n" {
			return strings.ReplaceAll(sb.String(), "\r\n", "|")
		}
		sb.WriteString(l)
	}
}

type mcCase struct{ req, want string }

func mcRun(t *testing.T, m *mcClient, cases []mcCase) {
	t.Helper()
	for _, c := range cases {
		if got := m.do(t, c.req); got != c.want {
			t.Errorf("%q:\n got  %s\n want %s", c.req, got, c.want)
		}
	}
}

func TestMemcacheText(t *testing.T) {
	_, addr := startMC(t)
	m := mcDial(t, addr)
	mcRun(t, m, []mcCase{
		{"set a 5 0 2\r\n10\r\n", "STORED|"},
		{"get a nope\r\n", "VALUE a 5 2|10|END|"},
		{"set b 0 0 2 noreply\r\nxy\r\n", ""},
		{"append b 0 0 1\r\nz\r\nprepend b 0 0 1\r\nw\r\nget b\r\n", "STORED|STORED|VALUE b 0 4|wxyz|END|"},
		{"append zz 0 0 1\r\nz\r\nprepend zz 0 0 1\r\nz\r\n", "NOT_STORED|NOT_STORED|"},
		{"add a 0 0 1\r\nx\r\nadd c 3 0 1\r\nx\r\nget c\r\n", "NOT_STORED|STORED|VALUE c 3 1|x|END|"},
		{"replace nope 0 0 1\r\nx\r\nreplace c 4 0 1\r\ny\r\nget c\r\n", "NOT_STORED|STORED|VALUE c 4 1|y|END|"},
		{"cas b 0 0 1 999\r\nq\r\ncas zz 0 0 1 1\r\nq\r\n", "EXISTS|NOT_FOUND|"},
		{"incr a 5\r\ndecr a 100\r\nincr a 18446744073709551615\r\nincr a 1\r\n", "15|0|18446744073709551615|0|"},
		{"incr a x\r\nincr nope 1\r\ndecr nope 1\r\n", "CLIENT_ERROR invalid numeric delta argument|NOT_FOUND|NOT_FOUND|"},
		{"incr b 1\r\n", "CLIENT_ERROR cannot increment or decrement non-numeric value|"},
		{"touch b 100\r\ntouch zz 10\r\n", "TOUCHED|NOT_FOUND|"},
		{"gat 0 b zz\r\n", "VALUE b 0 4|wxyz|END|"},
		{"delete b\r\ndelete b\r\ndelete b 0\r\ndelete b 5\r\ndelete b noreply\r\n",
			"DELETED|NOT_FOUND|NOT_FOUND|CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]|"},
		{"version\r\n", "VERSION 1.6.21|"},
		{"verbosity 1\r\nverbosity 1 noreply\r\nverbosity\r\n", "OK|ERROR|"},
		{"bogus\r\n\r\nget\r\nincr\r\ntouch b\r\n", "ERROR|ERROR|ERROR|ERROR|ERROR|"},
		{"set a 0 0 z\r\nset a 0 0 -1\r\nset a 0 0\r\n", "CLIENT_ERROR bad command line format|CLIENT_ERROR bad command line format|ERROR|"},
		{"set a 0 0 2\r\nabcd\r\n", "CLIENT_ERROR bad data chunk|ERROR|"},
		{"set " + strings.Repeat("k", 251) + " 0 0 1\r\nx\r\n", "CLIENT_ERROR bad command line format|ERROR|"},
		{"get " + strings.Repeat("k", 251) + "\r\n", "CLIENT_ERROR bad command line format|"},
		{"set k\x01y 0 0 1\r\nx\r\n", "CLIENT_ERROR bad command line format|ERROR|"},
		{"set a 0 0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25\r\n", "ERROR|"},
		{"flush_all\r\nget a c\r\nflush_all 0\r\nflush_all noreply\r\nflush_all x\r\n", "OK|END|OK|CLIENT_ERROR invalid exptime argument|"},
		// Expiry: negative = gone at once, absolute past time = gone.
		{"set e 0 -1 1\r\nx\r\nget e\r\n", "STORED|END|"},
		{"set e 0 1000000000 1\r\nx\r\nget e\r\n", "STORED|END|"},
		{"set e 0 100 1\r\nx\r\ntouch e -1\r\nget e\r\n", "STORED|TOUCHED|END|"},
		{"stats foo\r\n", "ERROR|"},
		{"stats reset\r\n", "RESET|"},
	})
	// gets/gats return the cas unique, which changes on every write.
	got := m.do(t, "set g 0 0 1\r\nx\r\ngets g\r\n")
	f := strings.Split(got, "|")
	if len(f) < 2 || !strings.HasPrefix(f[1], "VALUE g 0 1 ") {
		t.Fatalf("gets: %s", got)
	}
	cas := strings.TrimPrefix(f[1], "VALUE g 0 1 ")
	mcRun(t, m, []mcCase{
		{"cas g 7 0 1 " + cas + "\r\ny\r\ncas g 7 0 1 " + cas + "\r\nz\r\nget g\r\n", "STORED|EXISTS|VALUE g 7 1|y|END|"},
	})
	// absolute expiry in the future, and gat with an absolute time.
	future := strconv.FormatInt(time.Now().Unix()+3600, 10)
	mcRun(t, m, []mcCase{
		{"set f 0 " + future + " 1\r\nx\r\nmg f t\r\n", "STORED|HD t3600|"},
		{"gat 100 f\r\nmg f t\r\n", "VALUE f 0 1|x|END|HD t100|"},
	})
	stats := m.do(t, "stats\r\n")
	for _, want := range []string{"STAT cmd_get ", "STAT get_hits ", "STAT curr_items ", "STAT bytes ", "STAT limit_maxbytes 0|", "STAT curr_connections ", "END|"} {
		if !strings.Contains(stats, want) {
			t.Errorf("stats lacks %q: %s", want, stats)
		}
	}
	for _, g := range []string{"settings", "items", "slabs"} {
		if s := m.do(t, "stats "+g+"\r\n"); !strings.HasSuffix(s, "END|") {
			t.Errorf("stats %s: %s", g, s)
		}
	}
	// quit closes the connection after earlier replies.
	m.c.Write([]byte("version\r\nquit\r\nversion\r\n"))
	if data, closed := readAll(m.c, 5*time.Second); data != "VERSION 1.6.21\r\n" || !closed {
		t.Fatalf("quit: %q closed=%v", data, closed)
	}
}

func TestMemcacheMeta(t *testing.T) {
	_, addr := startMC(t)
	m := mcDial(t, addr)
	mcRun(t, m, []mcCase{
		{"ms k2 2 T30 F7\r\nhi\r\nmg k2 v t f s k O123\r\n", "HD|VA 2 t30 f7 s2 kk2 O123|hi|"},
		{"mg k2\r\nmg k2 q\r\nmg missing v q\r\nmg missing v k Ox\r\n", "HD|HD|EN kmissing Ox|"},
		{"md k2 q\r\nmd k2\r\nmd k2 q\r\n", "NF|NF|"},
		{"ma cnt\r\nma cnt N0 J5 v\r\nma cnt v MD D10\r\nma cnt v t MI D18446744073709551615\r\n", "NF|VA 1|5|VA 1|0|VA 20 t-1|18446744073709551615|"},
		{"ma cnt q\r\nmg cnt v\r\nma cnt MX\r\n", "VA 1|0|CLIENT_ERROR invalid mode for ma M token|"},
		{"mg cnt x\r\nmg cnt v v\r\nmg cnt Tx\r\n", "CLIENT_ERROR invalid flag|CLIENT_ERROR duplicate flag|CLIENT_ERROR bad token in command line format|"},
		// ms modes
		{"ms m 1 MA\r\nx\r\nms m 1 ME\r\nz\r\nms m 1 MA\r\ny\r\nms m 1 MP\r\nw\r\nmg m v\r\n", "NS|HD|HD|HD|VA 3|wzy|"},
		{"ms m 1 MR q\r\nr\r\nms nope 1 MR q\r\nr\r\nms m 1 MX\r\nr\r\nmg m v\r\n", "NS|CLIENT_ERROR invalid mode for ms M token|VA 1|r|"},
		{"ms viv 1 MA N30\r\nx\r\nmg viv v t\r\n", "HD|VA 1 t30|x|"},
		// flag errors on ms swallow the data block
		{"ms e 1 Q\r\nx\r\nmg e\r\n", "CLIENT_ERROR invalid flag|EN|"},
		// base64 keys
		{"ms Zm9v 2 b k\r\nhi\r\nmg Zm9v b k v\r\nget foo\r\nmg !!! b v\r\n", "HD kZm9v b|VA 2 kZm9v b|hi|VALUE foo 0 2|hi|END|CLIENT_ERROR error decoding key|"},
		// vivify on miss: one winner, then Z
		{"mg v1 N30 v t\r\nmg v1 N30 v t\r\n", "VA 0 t30 W||VA 0 t30 Z||"},
		// recache: TTL under R wins once
		{"set r 0 100 1\r\nx\r\nmg r R200 v t\r\nmg r R200 v t\r\nmg r R50 v\r\n", "STORED|VA 1 t100 W|x|VA 1 t100 Z|x|VA 1 Z|x|"},
		// invalidate: stale value served with X, one W
		{"ms a 2\r\nhi\r\nmd a I T30\r\nmg a v t\r\nmg a v t\r\nms a 3 C1\r\nnew\r\nmg a v\r\n", "HD|HD|VA 2 t30 X W|hi|VA 2 t30 Z X|hi|EX|VA 2 Z X|hi|"},
		{"ms a 3\r\nnew\r\nmg a v\r\n", "HD|VA 3|new|"},
		// T touches before t is reported; T-1 serves once then removes
		{"set tt 0 100 1\r\nx\r\nmg tt T5 t v\r\nmg tt T0 t\r\nmg tt T-1 t\r\nmg tt t\r\n", "STORED|VA 1 t5|x|HD t-1|HD t-1|EN|"},
		// md variants
		{"set d 3 0 1\r\nx\r\nmd d C999999\r\nmd d x\r\nmg d v f s\r\nmd d q k O5\r\nmg d\r\n", "STORED|EX|HD|VA 0 f3 s0||EN|"},
		{"me nope\r\n", "EN|"},
		// hit before (h), size (s)
		{"set h 0 0 1\r\nx\r\nmg h h\r\nmg h h\r\n", "STORED|HD h0|HD h1|"},
		// E sets the cas; C compares it
		{"ms ce 1 E555 c\r\nx\r\nmg ce c\r\nms ce 1 C554\r\ny\r\nms ce 1 C555 c E600\r\ny\r\nmd ce C600\r\nmg ce\r\n", "HD c555|HD c555|EX|HD c600|HD|EN|"},
	})
	if got := m.do(t, "set md 0 0 1\r\nx\r\nme md\r\n"); !strings.HasPrefix(got, "STORED|ME md exp=-1 la=") {
		t.Errorf("me: %s", got)
	}
}

// A key is one keyspace: memcached and RESP see the same items, and the
// cas unique follows writes from either side.
func TestMemcacheCrossProtocol(t *testing.T) {
	n, addr := startMC(t)
	m := mcDial(t, addr)
	r := tu.Dial(t, n.Addr)
	if got := r.Do("SET", "k", "from-resp"); got != "OK" {
		t.Fatal(got)
	}
	got := m.do(t, "gets k\r\n")
	var cas string
	if _, err := fmt.Sscanf(got, "VALUE k 0 9 %s", &cas); err != nil {
		t.Fatalf("gets after RESP SET: %s", got)
	}
	cas = strings.TrimSuffix(strings.SplitN(cas, "|", 2)[0], "|")
	// A RESP write changes the cas unique: memcached's cas then fails.
	r.Do("APPEND", "k", "!")
	if got := m.do(t, "cas k 0 0 1 "+cas+"\r\nx\r\n"); got != "EXISTS|" {
		t.Fatalf("cas after RESP APPEND: %s", got)
	}
	got = m.do(t, "gets k\r\n")
	f := strings.Fields(strings.Split(got, "|")[0])
	if len(f) != 5 || f[4] == cas {
		t.Fatalf("gets: %s (old cas %s)", got, cas)
	}
	if got := m.do(t, "cas k 9 0 2 "+f[4]+"\r\nmc\r\n"); got != "STORED|" {
		t.Fatalf("cas with fresh unique: %s", got)
	}
	if got := r.Do("GET", "k"); got != `"mc"` {
		t.Fatalf("GET after memcached cas: %s", got)
	}
	if got := r.Do("TYPE", "k"); got != "string" {
		t.Fatalf("TYPE: %s", got)
	}
	// RESP SET resets the client flags.
	r.Do("SET", "k", "v2")
	if got := m.do(t, "get k\r\n"); got != "VALUE k 0 2|v2|END|" {
		t.Fatalf("get after SET: %s", got)
	}
	// TTL set over memcached is visible over RESP.
	m.do(t, "set t 0 100 1\r\nx\r\n")
	if got := r.Do("TTL", "t"); got != "(integer) 100" && got != "(integer) 99" {
		t.Fatalf("TTL: %s", got)
	}
	// incr over memcached on a RESP counter, and INCR on a memcached one.
	r.Do("SET", "n", "41")
	if got := m.do(t, "incr n 1\r\n"); got != "42|" {
		t.Fatalf("incr: %s", got)
	}
	if got := r.Do("INCR", "n"); got != "(integer) 43" {
		t.Fatalf("INCR: %s", got)
	}
	// Other types: invisible to reads and conditional writes, replaced by set.
	r.Do("RPUSH", "l", "a")
	mcRun(t, m, []mcCase{
		{"get l\r\nincr l 1\r\ntouch l 10\r\n", "END|NOT_FOUND|NOT_FOUND|"},
		{"append l 0 0 1\r\nx\r\nreplace l 0 0 1\r\nx\r\nadd l 0 0 1\r\nx\r\nmg l v\r\n", "NOT_STORED|NOT_STORED|NOT_STORED|EN|"},
	})
	if got := r.Do("LLEN", "l"); got != "(integer) 1" {
		t.Fatalf("list changed: %s", got)
	}
	if got := m.do(t, "set l 0 0 1\r\nx\r\nget l\r\n"); got != "STORED|VALUE l 0 1|x|END|" {
		t.Fatalf("set over a list: %s", got)
	}
	// WATCH sees memcached writes.
	r.Do("WATCH", "w")
	r.Do("MULTI")
	r.Do("SET", "w", "resp")
	m.do(t, "set w 0 0 1\r\nx\r\n")
	if got := r.Do("EXEC"); got != "(nil)" && got != "[]" {
		// nil array in RESP2
		if !strings.Contains(got, "nil") {
			t.Fatalf("EXEC after a memcached write to a watched key: %s", got)
		}
	}
}

func TestMemcacheMaxmemory(t *testing.T) {
	_, addr := startMC(t, "maxmemory", "1mb", "memcached-max-item-size", "2kb")
	m := mcDial(t, addr)
	val := strings.Repeat("v", 1000)
	var got string
	for i := 0; i < 3000; i++ {
		got = m.do(t, fmt.Sprintf("set k%d 0 0 %d\r\n%s\r\n", i, len(val), val))
		if got != "STORED|" {
			break
		}
	}
	if got != "SERVER_ERROR out of memory storing object|" {
		t.Fatalf("noeviction over maxmemory: %s", got)
	}
	// reads and deletes still work
	if got := m.do(t, "get k0\r\ndelete k0\r\n"); !strings.HasSuffix(got, "END|DELETED|") {
		t.Fatalf("%s", got)
	}
	// too large: refused, swallowed, old value dropped
	big := strings.Repeat("b", 3000)
	if got := m.do(t, "set k1 0 0 3000\r\n"+big+"\r\nget k1\r\n"); got != "SERVER_ERROR object too large for cache|END|" {
		t.Fatalf("too large: %s", got)
	}
}

func TestMemcacheEviction(t *testing.T) {
	n, addr := startMC(t, "maxmemory", "1mb", "maxmemory-policy", "allkeys-lru")
	m := mcDial(t, addr)
	val := strings.Repeat("v", 1000)
	for i := 0; i < 3000; i++ {
		if got := m.do(t, fmt.Sprintf("set k%d 0 0 %d\r\n%s\r\n", i, len(val), val)); got != "STORED|" {
			t.Fatalf("set %d: %s", i, got)
		}
	}
	if used := n.Srv.DB().UsedMemory(); used > 1<<20+4096 {
		t.Fatalf("used %d over maxmemory", used)
	}
	if s := m.do(t, "stats\r\n"); strings.Contains(s, "STAT evictions 0|") {
		t.Fatalf("no evictions reported: %s", s)
	}
}

// Bad framing: every client gets memcached's error or a closed
// connection; the server keeps serving others with bounded memory.
func TestMemcacheBadInput(t *testing.T) {
	n, addr := startMC(t)
	by := startBystander(t, n.Addr)
	good := mcDial(t, addr)
	cases := []struct {
		name, in, want string
		closed         bool
	}{
		{"line too long", strings.Repeat("x", 5000), "CLIENT_ERROR line too long\r\n", true},
		{"long set line", "set " + strings.Repeat("k", 3000) + " 0 0 1\r\n", "CLIENT_ERROR line too long\r\n", true},
		{"short block", "set k 0 0 10\r\nabc\r\n", "", false},
		{"long block", "set k 0 0 1\r\nabc\r\nversion\r\n", "CLIENT_ERROR bad data chunk\r\nERROR\r\nVERSION 1.6.21\r\n", false},
		{"huge announced", "set k 0 0 2000000000\r\nabc", "SERVER_ERROR object too large for cache\r\n", false},
		{"key with space", "get a\x00b\r\n", "CLIENT_ERROR bad command line format\r\n", false},
		{"binary junk", "\x00\xff\xfe\r\n", "ERROR\r\n", false},
		{"meta no key", "mg\r\n", "CLIENT_ERROR bad command line format\r\n", false},
	}
	for _, tc := range cases {
		c := mcDial(t, addr)
		c.c.Write([]byte(tc.in))
		data, closed := readAll(c.c, 300*time.Millisecond)
		if data != tc.want || closed != tc.closed {
			t.Errorf("%s: got %q closed=%v, want %q closed=%v", tc.name, data, closed, tc.want, tc.closed)
		}
		if got := good.do(t, "version\r\n"); got != "VERSION 1.6.21|" {
			t.Fatalf("after %s: %s", tc.name, got)
		}
	}
	// A swallowed block may arrive in pieces; the connection stays usable.
	c := mcDial(t, addr)
	c.c.Write([]byte("set k 0 0 3000000\r\n"))
	for i := 0; i < 30; i++ {
		c.c.Write([]byte(strings.Repeat("x", 100000)))
	}
	if got := c.do(t, "\r\nversion\r\n"); got != "SERVER_ERROR object too large for cache|VERSION 1.6.21|" {
		t.Fatalf("after swallow: %s", got)
	}
	// 10k keys in one get.
	var sb strings.Builder
	sb.WriteString("set key0 0 0 1\r\nx\r\nget")
	for i := 0; i < 10000; i++ {
		fmt.Fprintf(&sb, " key%d", i)
	}
	sb.WriteString("\r\n")
	if got := c.do(t, sb.String()); got != "STORED|VALUE key0 0 1|x|END|" {
		t.Fatalf("10k-key get: %.200s", got)
	}
	// Announced-but-unsent data is not preallocated beyond the item limit.
	before := heapInUse()
	var conns []*mcClient
	for i := 0; i < 8; i++ {
		c := mcDial(t, addr)
		c.c.Write([]byte("set big 0 0 1000000\r\n" + strings.Repeat("x", 500000)))
		conns = append(conns, c)
	}
	if got := good.do(t, "version\r\n"); got != "VERSION 1.6.21|" {
		t.Fatal(got)
	}
	if after := heapInUse(); after > before && after-before > 64<<20 {
		t.Fatalf("heap grew by %d MB", (after-before)>>20)
	}
	by.finish(t)
}

// gomemcache (the chosen Go client) against the server, every operation.
func TestMemcacheGomemcache(t *testing.T) {
	n, addr := startMC(t)
	mc := memcache.New(addr)
	mc.Timeout = 5 * time.Second
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(mc.Ping())
	must(mc.Set(&memcache.Item{Key: "a", Value: []byte("1"), Flags: 42, Expiration: 100}))
	it, err := mc.Get("a")
	must(err)
	if string(it.Value) != "1" || it.Flags != 42 {
		t.Fatalf("Get: %+v", it)
	}
	keys := make([]string, 100)
	for i := range keys {
		keys[i] = fmt.Sprintf("multi:%d", i)
		must(mc.Set(&memcache.Item{Key: keys[i], Value: []byte(keys[i])}))
	}
	got, err := mc.GetMulti(append(keys, "missing"))
	must(err)
	if len(got) != 100 || string(got["multi:7"].Value) != "multi:7" {
		t.Fatalf("GetMulti: %d items", len(got))
	}
	if err := mc.Add(&memcache.Item{Key: "a", Value: []byte("x")}); err != memcache.ErrNotStored {
		t.Fatalf("Add existing: %v", err)
	}
	must(mc.Add(&memcache.Item{Key: "b", Value: []byte("x")}))
	if err := mc.Replace(&memcache.Item{Key: "nope", Value: []byte("x")}); err != memcache.ErrNotStored {
		t.Fatalf("Replace missing: %v", err)
	}
	must(mc.Replace(&memcache.Item{Key: "b", Value: []byte("y")}))
	must(mc.Append(&memcache.Item{Key: "b", Value: []byte("z")}))
	must(mc.Prepend(&memcache.Item{Key: "b", Value: []byte("x")}))
	it, err = mc.Get("b")
	must(err)
	if string(it.Value) != "xyz" {
		t.Fatalf("Append/Prepend: %q", it.Value)
	}
	// CompareAndSwap with a conflict from another client (and from RESP).
	it, err = mc.Get("b")
	must(err)
	must(mc.Set(&memcache.Item{Key: "b", Value: []byte("other")}))
	it.Value = []byte("mine")
	if err := mc.CompareAndSwap(it); err != memcache.ErrCASConflict {
		t.Fatalf("CAS after conflict: %v", err)
	}
	it, err = mc.Get("b")
	must(err)
	it.Value = []byte("mine")
	must(mc.CompareAndSwap(it))
	it, _ = mc.Get("b")
	tu.Dial(t, n.Addr).Do("SET", "b", "resp")
	it.Value = []byte("again")
	if err := mc.CompareAndSwap(it); err != memcache.ErrCASConflict {
		t.Fatalf("CAS after RESP SET: %v", err)
	}
	must(mc.Delete("b"))
	if err := mc.Delete("b"); err != memcache.ErrCacheMiss {
		t.Fatalf("Delete missing: %v", err)
	}
	must(mc.Touch("a", 10))
	if err := mc.Touch("nope", 10); err != memcache.ErrCacheMiss {
		t.Fatalf("Touch missing: %v", err)
	}
	v, err := mc.Increment("a", 10)
	must(err)
	if v != 11 {
		t.Fatalf("Increment: %d", v)
	}
	v, err = mc.Decrement("a", 100)
	must(err)
	if v != 0 {
		t.Fatalf("Decrement: %d", v)
	}
	if _, err := mc.Increment("nope", 1); err != memcache.ErrCacheMiss {
		t.Fatalf("Increment missing: %v", err)
	}
	must(mc.FlushAll())
	if _, err := mc.Get("a"); err != memcache.ErrCacheMiss {
		t.Fatalf("Get after FlushAll: %v", err)
	}
	must(mc.DeleteAll())
}

// memcapable (libmemcached-tools) runs its protocol conformance checks.
func TestMemcacheMemcapable(t *testing.T) {
	bin, err := exec.LookPath("memcapable")
	if err != nil {
		if bin, err = exec.LookPath("memccapable"); err != nil {
			t.Skip("memcapable not installed")
		}
	}
	_, addr := startMC(t)
	host, port, _ := net.SplitHostPort(addr)
	// -a: ASCII protocol only (Shoal has no binary protocol).
	out, err := exec.Command(bin, "-h", host, "-p", port, "-a", "-t", "5").CombinedOutput()
	t.Logf("%s", out)
	if err != nil {
		t.Fatalf("memcapable: %v", err)
	}
	_ = io.Discard
}
