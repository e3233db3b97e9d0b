package server_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"math/rand"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"shoal/internal/config"
	"shoal/internal/engine"
	"shoal/internal/persist"
	"shoal/internal/persist/faultfs"
	"shoal/internal/resp"
	"shoal/internal/server"
	tu "shoal/internal/testutil"
)

// canonDB renders the keyspace in a canonical order (engine.Canonical).
func canonDB(db *engine.DB) string { return db.Canonical() }

// node is a server started (and restarted) on a given directory and file
// system.
type node struct {
	srv  *server.Server
	addr string
}

func startNode(t *testing.T, dir string, fsys persist.FS, directives ...string) *node {
	t.Helper()
	n, err := startNodeErr(t, dir, fsys, directives...)
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	return n
}

// startNodeErr is startNode returning the start-up error.
func startNodeErr(t *testing.T, dir string, fsys persist.FS, directives ...string) (*node, error) {
	t.Helper()
	for attempt := 0; ; attempt++ {
		port := tu.FreePort(t)
		cfg := config.Default()
		args := []string{"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--dir", dir}
		for i := 0; i+1 < len(directives); i += 2 {
			args = append(args, "--"+directives[i], directives[i+1])
		}
		if err := cfg.ParseArgs(args); err != nil {
			if attempt < 5 && strings.Contains(err.Error(), "must differ from port") {
				continue // the free port picked equals the memcached port given
			}
			t.Fatal(err)
		}
		log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
		srv, err := server.NewWithOptions(cfg, log, server.Options{FS: fsys})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err = srv.Start(ctx)
		cancel()
		if err != nil {
			if attempt < 5 && strings.Contains(err.Error(), "address already in use") {
				continue
			}
			return nil, err
		}
		return &node{srv: srv, addr: "127.0.0.1:" + strconv.Itoa(port)}, nil
	}
}

// TestLogReplayReproducesState runs a random workload over every kind of
// write (with a snapshot taken in the middle, while writing), restarts on
// the same directory and compares the whole keyspace: the effect records
// replayed over the snapshot must rebuild exactly what was there.
func TestLogReplayReproducesState(t *testing.T) {
	for _, policy := range []string{"always", "everysec", "no"} {
		t.Run(policy, func(t *testing.T) {
			dir := t.TempDir()
			n := startNode(t, dir, nil, "appendonly", "yes", "appendfsync", policy)
			c := tu.Dial(t, n.addr)
			rng := rand.New(rand.NewSource(int64(len(policy))))
			for i := 0; i < 3000; i++ {
				if i == 1500 {
					if r := c.Do("BGSAVE"); !strings.Contains(r, "started") {
						t.Fatalf("BGSAVE: %s", r)
					}
				}
				args := randomWrite(rng, i)
				if r, err := c.DoReply(args...); err != nil {
					t.Fatalf("%q: %v (%v)", args, err, r)
				}
			}
			waitBgsave(t, c)
			// The keys set with PX 1 may be gone or still there before
			// the restart, and are gone after it: both states leave out
			// what expires within the next second (every other TTL here
			// is 500 s or more).
			cut := time.Now().Add(time.Second).UnixMilli()
			want := n.srv.DB().CanonicalLive(cut)
			n.srv.Close()
			n2 := startNode(t, dir, nil, "appendonly", "yes", "appendfsync", policy)
			defer n2.srv.Close()
			got := n2.srv.DB().CanonicalLive(cut)
			if got != want {
				t.Fatalf("state after replay differs:\n%s", diffLines(want, got))
			}
			// The snapshot truncated the log: the first segment is gone.
			segs, _ := persist.Segments(nil, filepath.Join(dir, "appendonlydir"), "appendonly.aof")
			if len(segs) == 0 || segs[0] == 1 {
				t.Fatalf("segments after a snapshot: %v", segs)
			}
		})
	}
}

func diffLines(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var out []string
	ws := map[string]bool{}
	for _, l := range w {
		ws[l] = true
	}
	gs := map[string]bool{}
	for _, l := range g {
		gs[l] = true
		if !ws[l] {
			out = append(out, "+ "+l)
		}
	}
	for _, l := range w {
		if !gs[l] {
			out = append(out, "- "+l)
		}
	}
	if len(out) > 40 {
		out = append(out[:40], "...")
	}
	return strings.Join(out, "\n")
}

// randomWrite returns a random write command over a small key space so
// that commands meet existing values of every type (errors included).
func randomWrite(rng *rand.Rand, i int) []string {
	k := func(prefix string) string { return fmt.Sprintf("%s%d", prefix, rng.Intn(8)) }
	v := func() string { return strconv.Itoa(rng.Intn(50)) }
	switch rng.Intn(46) {
	case 0:
		return []string{"SET", k("s"), v()}
	case 1:
		return []string{"SET", k("s"), v(), "EX", "1000"}
	case 2:
		return []string{"SET", k("s"), v(), "PX", "1"} // expires during the run
	case 3:
		return []string{"INCR", k("n")}
	case 4:
		return []string{"INCRBYFLOAT", k("n"), "0.1"}
	case 5:
		return []string{"APPEND", k("s"), v()}
	case 6:
		return []string{"SETRANGE", k("s"), strconv.Itoa(rng.Intn(5)), v()}
	case 7:
		return []string{"MSET", k("s"), v(), k("n"), v()}
	case 8:
		return []string{"DEL", k("s"), k("l"), k("h")}
	case 9:
		return []string{"RENAME", k("l"), k("l")}
	case 10:
		return []string{"COPY", k("z"), k("z"), "REPLACE"}
	case 11:
		return []string{"EXPIRE", k("h"), strconv.Itoa(500 + rng.Intn(500))}
	case 12:
		return []string{"PEXPIREAT", k("l"), strconv.FormatInt(time.Now().Add(time.Hour).UnixMilli(), 10)}
	case 13:
		return []string{"PERSIST", k("h")}
	case 14:
		return []string{"GETEX", k("s"), "EX", "700"}
	case 15:
		return []string{"HSET", k("h"), k("f"), v()}
	case 16:
		return []string{"HINCRBY", k("h"), k("c"), "3"}
	case 17:
		return []string{"HINCRBYFLOAT", k("h"), k("c"), "0.25"}
	case 18:
		return []string{"HDEL", k("h"), k("f")}
	case 19:
		return []string{"LPUSH", k("l"), v(), v()}
	case 20:
		return []string{"RPUSH", k("l"), v()}
	case 21:
		return []string{"LPOP", k("l"), "2"}
	case 22:
		return []string{"LMOVE", k("l"), k("l"), "LEFT", "RIGHT"}
	case 23:
		return []string{"LREM", k("l"), "0", v()}
	case 24:
		return []string{"LTRIM", k("l"), "0", "5"}
	case 25:
		return []string{"LINSERT", k("l"), "BEFORE", v(), "ins"}
	case 26:
		return []string{"SADD", k("t"), v(), v(), v()}
	case 27:
		return []string{"SREM", k("t"), v()}
	case 28:
		return []string{"SPOP", k("t")}
	case 29:
		return []string{"SPOP", k("t"), "2"}
	case 30:
		return []string{"SMOVE", k("t"), k("t"), v()}
	case 31:
		return []string{"SUNIONSTORE", k("t"), k("t"), k("t")}
	case 32:
		return []string{"SINTERSTORE", k("t"), k("t"), k("t")}
	case 33:
		return []string{"ZADD", k("z"), v(), k("m")}
	case 34:
		return []string{"ZINCRBY", k("z"), "1.5", k("m")}
	case 35:
		return []string{"ZREM", k("z"), k("m")}
	case 36:
		return []string{"ZPOPMIN", k("z")}
	case 37:
		return []string{"ZREMRANGEBYSCORE", k("z"), "0", "10"}
	case 38:
		return []string{"ZUNIONSTORE", k("z"), "2", k("z"), k("z")}
	case 39:
		return []string{"SETBIT", k("b"), strconv.Itoa(rng.Intn(64)), "1"}
	case 40:
		return []string{"BITOP", "OR", k("b"), k("b"), k("b")}
	case 41:
		return []string{"LMPOP", "2", k("l"), k("l"), "RIGHT", "COUNT", "2"}
	case 42:
		return []string{"ZMPOP", "2", k("z"), k("z"), "MAX"}
	case 43:
		return []string{"BLPOP", k("l"), "0.01"}
	case 44:
		return []string{"RENAMENX", k("s"), k("s")}
	default:
		if i%500 == 499 {
			return []string{"FLUSHALL"}
		}
		return []string{"GETDEL", k("s")}
	}
}

// TestLogTransactionAndBlockedPop: a transaction and a pop served to a
// blocked client survive a restart.
func TestLogTransactionAndBlockedPop(t *testing.T) {
	dir := t.TempDir()
	n := startNode(t, dir, nil, "appendonly", "yes", "appendfsync", "always")
	a, b := tu.Dial(t, n.addr), tu.Dial(t, n.addr)
	a.Send(resp.AppendCommand(nil, "BLPOP", "q", "0"))
	for !strings.Contains(b.Do("INFO", "clients"), "blocked_clients:1") {
		time.Sleep(time.Millisecond)
	}
	if r := b.Do("RPUSH", "q", "x", "y"); r != "(integer) 2" {
		t.Fatal(r)
	}
	if r, _ := a.Read(); r.String() != `["q" "x"]` {
		t.Fatalf("BLPOP got %v", r)
	}
	b.Do("MULTI")
	b.Do("INCR", "ctr")
	b.Do("LPUSH", "q", "z")
	b.Do("HSET", "{q}h", "f", "v")
	if r := b.Do("EXEC"); r != "[(integer) 1 (integer) 2 (integer) 1]" {
		t.Fatalf("EXEC %s", r)
	}
	want := canonDB(n.srv.DB())
	n.srv.Close()
	n2 := startNode(t, dir, nil, "appendonly", "yes")
	defer n2.srv.Close()
	if got := canonDB(n2.srv.DB()); got != want || !strings.Contains(got, `"q" list exp=0 flags=0 ["z" "y"]`) {
		t.Fatalf("after restart:\n%s\nwant\n%s", got, want)
	}
}

// TestMemcachedWritesLogged: memcached writes (flags, expiry, counters,
// deletes) are logged like RESP ones.
func TestMemcachedWritesLogged(t *testing.T) {
	dir := t.TempDir()
	mport := tu.FreePort(t)
	n := startNode(t, dir, nil, "appendonly", "yes", "memcached-port", strconv.Itoa(mport))
	conn, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", mport))
	if err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(conn)
	do := func(cmd, want string) {
		t.Helper()
		fmt.Fprint(conn, cmd)
		line, err := r.ReadString('\n')
		if err != nil || strings.TrimSpace(line) != want {
			t.Fatalf("%q: got %q %v, want %q", cmd, line, err, want)
		}
	}
	do("set a 42 1000 2\r\nhi\r\n", "STORED")
	do("set n 0 0 1\r\n5\r\n", "STORED")
	do("incr n 10\r\n", "15")
	do("append a 0 0 1\r\n!\r\n", "STORED")
	do("set gone 0 0 1\r\nx\r\n", "STORED")
	do("delete gone\r\n", "DELETED")
	do("ms m 2 F7 T0\r\nok\r\n", "HD")
	conn.Close()
	want := canonDB(n.srv.DB())
	n.srv.Close()
	n2 := startNode(t, dir, nil, "appendonly", "yes")
	defer n2.srv.Close()
	got := canonDB(n2.srv.DB())
	if got != want || !strings.Contains(got, `"a" string`) || !strings.Contains(got, `flags=42 "hi!"`) || !strings.Contains(got, `"15"`) {
		t.Fatalf("after restart:\n%s\nwant\n%s", got, want)
	}
}

// TestDiskFullRefusesWrites: a full disk makes writes fail with MISCONF
// (reads go on), the write in flight is not acknowledged until its record
// is on disk, and everything works again once space returns.
func TestDiskFullRefusesWrites(t *testing.T) {
	ffs := faultfs.New()
	n := startNode(t, "/data", ffs, "appendonly", "yes", "appendfsync", "always")
	defer n.srv.Close()
	c := tu.Dial(t, n.addr)
	if r := c.Do("SET", "before", "1"); r != "OK" {
		t.Fatal(r)
	}
	big := strings.Repeat("b", 4096)
	c.Do("SET", "big", big)
	ffs.SetFull(true)
	held := tu.Dial(t, n.addr)
	held.Send(resp.AppendCommand(nil, "SET", "during", "1"))
	// Pipelined reads behind the held write: their replies wait too, and
	// past 4 MiB of them the input waits (memory stays bounded).
	var gets []byte
	for range 2000 {
		gets = resp.AppendCommand(gets, "GET", "big")
	}
	go held.C.Write(gets)
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(c.Do("INFO", "persistence"), "aof_last_write_status:err") {
		if time.Now().After(deadline) {
			t.Fatal("no write error reported on a full disk")
		}
		time.Sleep(2 * time.Millisecond)
	}
	for {
		r := c.Do("SET", "x", "1")
		if strings.HasPrefix(r, "(error) MISCONF Errors writing to the AOF file") {
			if !strings.Contains(r, "No space left on device") {
				t.Fatalf("error text %q", r)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("writes not refused on a full disk: %q", r)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if r := c.Do("GET", "before"); r != `"1"` {
		t.Fatalf("read during disk full: %q", r)
	}
	if r := c.Do("INFO", "persistence"); !strings.Contains(r, "aof_last_write_status:err") {
		t.Fatal("aof_last_write_status not err")
	}
	if held.Closed(50 * time.Millisecond) {
		t.Fatal("held client closed")
	}
	ffs.SetFull(false)
	if r, err := held.Read(); err != nil || r.String() != "OK" {
		t.Fatalf("held write after recovery: %v %v", r, err)
	}
	for i := range 2000 {
		if r, err := held.Read(); err != nil || r.Str != big {
			t.Fatalf("pipelined GET %d after recovery: %v", i, err)
		}
	}
	for {
		r := c.Do("SET", "after", "1")
		if r == "OK" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("writes still refused after space returned: %q", r)
		}
		time.Sleep(5 * time.Millisecond)
	}
	// Power loss now: every acknowledged write is on disk.
	crashed := ffs.Crash(nil)
	n.srv.Close()
	n2 := startNode(t, "/data", crashed, "appendonly", "yes")
	defer n2.srv.Close()
	c2 := tu.Dial(t, n2.addr)
	for _, k := range []string{"before", "during", "after"} {
		if r := c2.Do("GET", k); r != `"1"` {
			t.Fatalf("%s after crash: %q", k, r)
		}
	}
}

// TestLogDamageAtStart: a torn last record is cut and start-up goes on; a
// damaged record before the end stops start-up with the file and offset.
func TestLogDamageAtStart(t *testing.T) {
	dir := t.TempDir()
	n := startNode(t, dir, nil, "appendonly", "yes", "appendfsync", "always")
	c := tu.Dial(t, n.addr)
	for i := 0; i < 5; i++ {
		c.Do("SET", fmt.Sprint("k", i), "v")
	}
	n.srv.Close()
	seg := filepath.Join(dir, "appendonlydir", persist.SegmentName("appendonly.aof", 1))
	data, err := os.ReadFile(seg)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(seg, append(bytes.Clone(data), 40, 0, 0, 0, 7, 7), 0o644) // a record cut short
	n2 := startNode(t, dir, nil, "appendonly", "yes")
	if r := tu.Dial(t, n2.addr).Do("DBSIZE"); r != "(integer) 5" {
		t.Fatalf("after a torn tail: %s", r)
	}
	n2.srv.Close()
	if fi, _ := os.Stat(seg); fi.Size() != int64(len(data)) {
		t.Fatalf("torn tail not cut: %d bytes, want %d", fi.Size(), len(data))
	}
	data[40] ^= 0xff // inside the second record
	os.WriteFile(seg, data, 0o644)
	_, err = startNodeErr(t, dir, nil, "appendonly", "yes")
	if err == nil || !strings.Contains(err.Error(), seg) || !strings.Contains(err.Error(), "offset") {
		t.Fatalf("start on a damaged log: %v", err)
	}
}

// A write that changes nothing (SADD of a member already there, LPOP of
// a missing key) is not logged.
func TestNoopWritesNotLogged(t *testing.T) {
	n := startNode(t, t.TempDir(), nil, "appendonly", "yes")
	defer n.srv.Close()
	c := tu.Dial(t, n.addr)
	lsn := func() string { return infoField(t, c, "persistence", "aof_last_lsn") }
	c.Do("SADD", "s", "a")
	before := lsn()
	for _, cmd := range [][]string{{"SADD", "s", "a"}, {"SREM", "s", "zz"}, {"LPOP", "nolist"}, {"HDEL", "h", "f"}, {"SETNX", "s", "x"}} {
		c.Do(cmd...)
	}
	if after := lsn(); after != before || before == "" {
		t.Fatalf("no-op writes were logged: %s -> %s", before, after)
	}
	c.Do("SADD", "s", "b")
	if lsn() == before {
		t.Fatal("a real SADD was not logged")
	}
}
