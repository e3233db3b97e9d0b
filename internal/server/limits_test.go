package server_test

import (
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"shoal/internal/resp"
	tu "shoal/internal/testutil"
)

// waitFor polls cond (a cheap query against the server) until it holds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestMaxClients(t *testing.T) {
	n := tu.StartServer(t, "maxclients", "2")
	c1 := tu.Dial(t, n.Addr)
	c2 := tu.Dial(t, n.Addr)
	steps(t, c1, "PING", "PONG")
	steps(t, c2, "PING", "PONG")
	c3 := tu.Dial(t, n.Addr)
	r, err := c3.Read()
	if err != nil || r.String() != "(error) ERR max number of clients reached" {
		t.Fatalf("third client got %v, %v", r, err)
	}
	if !c3.Closed(5 * time.Second) {
		t.Errorf("rejected client not closed")
	}
	if got := infoInt(t, c1, "stats", "rejected_connections"); got != 1 {
		t.Errorf("rejected_connections = %d", got)
	}
	// A slot frees up when a client leaves.
	c2.C.Close()
	waitFor(t, "client count to drop", func() bool { return infoInt(t, c1, "clients", "connected_clients") == 1 })
	c4 := tu.Dial(t, n.Addr)
	steps(t, c4, "PING", "PONG")
	// maxclients can change at runtime.
	steps(t, c1, "CONFIG SET maxclients 3", "OK")
	c5 := tu.Dial(t, n.Addr)
	steps(t, c5, "PING", "PONG")
}

func TestIdleTimeout(t *testing.T) {
	n := tu.StartServer(t, "timeout", "1")
	idle := tu.Dial(t, n.Addr)
	sub := tu.Dial(t, n.Addr)
	steps(t, idle, "PING", "PONG")
	steps(t, sub, "SUBSCRIBE ch", `["subscribe" "ch" (integer) 1]`)
	start := time.Now()
	if !idle.Closed(10 * time.Second) {
		t.Fatal("idle client not closed")
	}
	if el := time.Since(start); el < 900*time.Millisecond {
		t.Errorf("idle client closed after %v, before the 1 s timeout", el)
	}
	// Subscribers are exempt, as in Redis: the same cron pass saw it idle.
	steps(t, sub, "PING", `["pong" ""]`)
}

func TestProtoMaxBulkLen(t *testing.T) {
	n := tu.StartServer(t, "proto-max-bulk-len", "1mb")
	ok := tu.Dial(t, n.Addr)
	if got := ok.Do("SET", "k", strings.Repeat("x", 1<<20)); got != "OK" {
		t.Fatalf("SET of 1mb: %s", got)
	}
	c := tu.Dial(t, n.Addr)
	c.Send([]byte("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1048577\r\n"))
	r, err := c.Read()
	if err != nil || r.String() != "(error) ERR Protocol error: invalid bulk length" {
		t.Fatalf("got %v, %v", r, err)
	}
	if !c.Closed(5 * time.Second) {
		t.Errorf("connection not closed after protocol error")
	}
	steps(t, ok, "STRLEN k", "(integer) 1048576")
}

func TestProtoMaxMultibulkLen(t *testing.T) {
	n := tu.StartServer(t, "proto-max-multibulk-len", "5")
	ok := tu.Dial(t, n.Addr)
	steps(t, ok, "MSET a 1 b 2", "OK")
	c := tu.Dial(t, n.Addr)
	c.Send([]byte("*7\r\n$4\r\nMSET\r\n"))
	r, err := c.Read()
	if err != nil || r.String() != "(error) ERR Protocol error: invalid multibulk length" {
		t.Fatalf("got %v, %v", r, err)
	}
	if !c.Closed(5 * time.Second) {
		t.Errorf("connection not closed after protocol error")
	}
	steps(t, ok, "MGET a b", `["1" "2"]`)
}

// flood writes chunk to conn until the server closes it; it returns the
// bytes written. Writing stops at limit (a failure: the server kept
// buffering).
func flood(conn net.Conn, head, chunk []byte, limit int64) int64 {
	var sent int64
	conn.SetWriteDeadline(time.Now().Add(20 * time.Second))
	if _, err := conn.Write(head); err != nil {
		return 0
	}
	for sent < limit {
		n, err := conn.Write(chunk)
		sent += int64(n)
		if err != nil {
			break
		}
	}
	return sent
}

func TestQueryBufferLimitEndless(t *testing.T) {
	n := tu.StartServer(t, "client-query-buffer-limit", "1mb")
	other := tu.Dial(t, n.Addr)
	chunk := []byte(strings.Repeat("a", 64<<10))
	const limit = 256 << 20
	cases := []struct{ name, head string }{
		// A bulk announced bigger than the query buffer limit (but under
		// proto-max-bulk-len) whose bytes keep coming.
		{"big bulk", "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$500000000\r\n"},
		// A request announcing a huge number of arguments.
		{"many args", "*10000000\r\n"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := tu.Dial(t, n.Addr)
			body := chunk
			if tc.name == "many args" {
				body = []byte(strings.Repeat("$1\r\na\r\n", 8<<10))
			}
			sent := flood(c.C, []byte(tc.head), body, limit)
			if sent >= limit {
				t.Fatalf("server accepted %d bytes of an endless request", sent)
			}
			if !c.Closed(5 * time.Second) {
				t.Errorf("flooding client not closed")
			}
			steps(t, other, "PING", "PONG")
		})
	}
	// An endless inline request (no newline) is cut at 64 KiB.
	c := tu.Dial(t, n.Addr)
	c.Send([]byte(strings.Repeat("x", 70<<10)))
	r, err := c.Read()
	if err != nil || r.String() != "(error) ERR Protocol error: too big inline request" {
		t.Fatalf("inline flood got %v, %v", r, err)
	}
	if !c.Closed(5 * time.Second) {
		t.Errorf("inline flooder not closed")
	}
	steps(t, other, "PING", "PONG")
}

func TestOutputBufferLimitPubsub(t *testing.T) {
	n := tu.StartServer(t, "client-output-buffer-limit", "pubsub 256kb 0 0")
	sub := tu.Dial(t, n.Addr)
	steps(t, sub, "SUBSCRIBE flood", `["subscribe" "flood" (integer) 1]`)
	// A well-behaved subscriber on another channel.
	good := tu.Dial(t, n.Addr)
	steps(t, good, "SUBSCRIBE calm", `["subscribe" "calm" (integer) 1]`)

	pub := tu.Dial(t, n.Addr)
	msg := strings.Repeat("m", 16<<10)
	batch := resp.AppendCommand(nil, "PUBLISH", "flood", msg)
	var req []byte
	for i := 0; i < 64; i++ {
		req = append(req, batch...)
	}
	var published int64
	disconnected := false
	for published < 512<<20 && !disconnected {
		pub.Send(req)
		for i := 0; i < 64; i++ {
			r, err := pub.Read()
			if err != nil {
				t.Fatal(err)
			}
			if r.String() == "(integer) 0" {
				disconnected = true
			}
		}
		published += int64(len(req))
	}
	if !disconnected {
		t.Fatalf("subscriber never disconnected after %d bytes", published)
	}
	if !sub.Closed(10 * time.Second) {
		t.Errorf("slow subscriber still connected")
	}
	steps(t, pub, "PUBLISH calm hi", "(integer) 1", "PING", "PONG")
	if r, err := good.Read(); err != nil || r.String() != `["message" "calm" "hi"]` {
		t.Errorf("good subscriber got %v, %v", r, err)
	}
}

func TestRequirePass(t *testing.T) {
	n := tu.StartServer(t, "requirepass", "secret")
	c := tu.Dial(t, n.Addr)
	steps(t, c,
		"GET x", "(error) NOAUTH Authentication required.",
		"AUTH wrong", "(error) WRONGPASS invalid username-password pair or user is disabled.",
		"AUTH default wrong", "(error) WRONGPASS invalid username-password pair or user is disabled.",
		"HELLO 3", "(error) NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time",
		"PING", "(error) NOAUTH Authentication required.",
		"AUTH secret", "OK",
		"GET x", "(nil)",
		"AUTH default secret", "OK",
	)
	h := tu.Dial(t, n.Addr)
	steps(t, h, "HELLO 3 AUTH default wrong", "(error) WRONGPASS invalid username-password pair or user is disabled.")
	if got := h.Do("HELLO", "3", "AUTH", "default", "secret"); !strings.Contains(got, `"proto":(integer) 3`) {
		t.Errorf("HELLO 3 AUTH = %s", got)
	}
	steps(t, h, "GET x", "(nil)")
	// Changing the password at runtime applies to new connections.
	steps(t, c, "CONFIG SET requirepass", "(error) ERR wrong number of arguments for 'config|set' command")
	if got := c.Do("CONFIG", "SET", "requirepass", ""); got != "OK" {
		t.Fatalf("clear requirepass: %s", got)
	}
	open := tu.Dial(t, n.Addr)
	steps(t, open, "GET x", "(nil)",
		"AUTH x", "(error) ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?")
	steps(t, c, "CONFIG SET requirepass other", "OK")
	again := tu.Dial(t, n.Addr)
	steps(t, again, "GET x", "(error) NOAUTH Authentication required.", "AUTH other", "OK", "GET x", "(nil)")
}

const value10k = 10 << 10

// fill sets keys prefix0..prefix<n-1> to 10 KiB values (with extra SET
// options) and returns the first error reply, or "".
func fill(t *testing.T, c *tu.Conn, prefix string, n int, opts ...string) (string, int) {
	t.Helper()
	v := strings.Repeat("v", value10k)
	for i := 0; i < n; i++ {
		args := append([]string{"SET", prefix + strconv.Itoa(i), v}, opts...)
		if got := c.Do(args...); got != "OK" {
			return got, i
		}
	}
	return "", n
}

func TestMaxmemoryNoEviction(t *testing.T) {
	n := tu.StartServer(t, "maxmemory", "1mb", "maxmemory-policy", "noeviction")
	c := tu.Dial(t, n.Addr)
	got, at := fill(t, c, "k", 1000)
	if got != "(error) OOM command not allowed when used memory > 'maxmemory'." {
		t.Fatalf("after %d keys: %q", at, got)
	}
	if at < 50 || at > 110 {
		t.Errorf("OOM after %d keys of 10 KiB with maxmemory 1mb", at)
	}
	// Reads and deletes still work; a deny-oom command in MULTI aborts EXEC.
	steps(t, c,
		"GET k0", `"`+strings.Repeat("v", value10k)+`"`,
		"MULTI", "OK", "SET x 1", "QUEUED",
		"EXEC", "(error) EXECABORT Transaction discarded because of: command not allowed when used memory > 'maxmemory'.",
		"DEL k0 k1 k2", "(integer) 3",
		"SET small 1", "OK",
	)
	if got := infoInt(t, c, "stats", "evicted_keys"); got != 0 {
		t.Errorf("evicted_keys = %d under noeviction", got)
	}
	if got := infoField(t, c, "memory", "maxmemory_policy"); got != "noeviction" {
		t.Errorf("maxmemory_policy = %s", got)
	}
}

func TestMaxmemoryAllKeysLRU(t *testing.T) {
	n := tu.StartServer(t, "maxmemory", "1mb", "maxmemory-policy", "allkeys-lru")
	c := tu.Dial(t, n.Addr)
	if got, at := fill(t, c, "k", 500); got != "" {
		t.Fatalf("SET %d: %s", at, got)
	}
	used, max := infoInt(t, c, "memory", "used_memory"), infoInt(t, c, "memory", "maxmemory")
	if max != 1<<20 || used > max+2*value10k {
		t.Errorf("used_memory %d with maxmemory %d", used, max)
	}
	ev := infoInt(t, c, "stats", "evicted_keys")
	keys := c.Do("DBSIZE")
	k, _ := strconv.Atoi(strings.TrimPrefix(keys, "(integer) "))
	if k < 50 || k > 110 || int64(k)+ev != 500 {
		t.Errorf("DBSIZE %s, evicted_keys %d", keys, ev)
	}
	// The most recent write survives.
	if got := c.Do("EXISTS", "k499"); got != "(integer) 1" {
		t.Errorf("last key evicted")
	}
}

func TestMaxmemoryVolatileTTL(t *testing.T) {
	n := tu.StartServer(t, "maxmemory", "1mb", "maxmemory-policy", "volatile-ttl")
	c := tu.Dial(t, n.Addr)
	if got, at := fill(t, c, "p", 40); got != "" {
		t.Fatalf("persistent SET %d: %s", at, got)
	}
	if got, at := fill(t, c, "v", 200, "EX", "1000"); got != "" {
		t.Fatalf("volatile SET %d: %s", at, got)
	}
	if ev := infoInt(t, c, "stats", "evicted_keys"); ev == 0 {
		t.Errorf("nothing evicted")
	}
	for i := 0; i < 40; i++ {
		if got := c.Do("EXISTS", "p"+strconv.Itoa(i)); got != "(integer) 1" {
			t.Fatalf("persistent key p%d evicted under volatile-ttl", i)
		}
	}
	// Once no key has a TTL, writes get OOM.
	got, at := fill(t, c, "q", 1000)
	if got != "(error) OOM command not allowed when used memory > 'maxmemory'." {
		t.Fatalf("after %d more persistent keys: %q", at, got)
	}
	if v := infoField(t, c, "keyspace", "db0"); !strings.Contains(v, "expires=0") {
		t.Errorf("volatile keys left at OOM: %s", v)
	}
	for i := 0; i < 40; i++ {
		if got := c.Do("EXISTS", "p"+strconv.Itoa(i)); got != "(integer) 1" {
			t.Fatalf("persistent key p%d evicted under volatile-ttl", i)
		}
	}
}

func TestMaxmemoryRuntime(t *testing.T) {
	n := tu.StartServer(t)
	c := tu.Dial(t, n.Addr)
	if got, at := fill(t, c, "k", 100); got != "" {
		t.Fatalf("SET %d: %s", at, got)
	}
	steps(t, c, "CONFIG SET maxmemory 500kb", "OK",
		"SET x 1", "(error) OOM command not allowed when used memory > 'maxmemory'.",
		"CONFIG SET maxmemory-policy allkeys-random", "OK",
		"SET x 1", "OK")
	// Like Redis, memory may exceed the limit by the last write.
	if used := infoInt(t, c, "memory", "used_memory"); used > 500000+2*value10k {
		t.Errorf("used_memory %d over the new maxmemory", used)
	}
	steps(t, c, "CONFIG SET maxmemory 0 maxmemory-policy noeviction", "OK")
	if got, at := fill(t, c, "z", 100); got != "" {
		t.Fatalf("SET %d after removing the limit: %s", at, got)
	}
	if got := infoField(t, c, "memory", "maxmemory_human"); got != "0B" {
		t.Errorf("maxmemory_human = %s", got)
	}
}

func TestInlineLengthLimitConfigurable(t *testing.T) {
	n := tu.StartServer(t, "proto-max-inline-len", "2kb")
	ok := tu.Dial(t, n.Addr)
	ok.Send([]byte("SET k " + strings.Repeat("v", 1500) + "\r\n"))
	if r, err := ok.Read(); err != nil || r.String() != "OK" {
		t.Fatalf("inline below the limit: %v %v", r, err)
	}
	bad := tu.Dial(t, n.Addr)
	bad.Send([]byte("SET k " + strings.Repeat("v", 3000) + "\r\n"))
	if r, err := bad.Read(); err != nil || r.String() != "(error) ERR Protocol error: too big inline request" {
		t.Fatalf("inline above the limit: %v %v", r, err)
	}
	if !bad.Closed(5 * time.Second) {
		t.Fatal("connection not closed")
	}
	if got := ok.Do("STRLEN", "k"); got != "(integer) 1500" {
		t.Fatalf("other client: %s", got)
	}
}
