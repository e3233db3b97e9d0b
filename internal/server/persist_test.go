package server_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"shoal/internal/cluster"
	"shoal/internal/config"
	"shoal/internal/server"
	tu "shoal/internal/testutil"
)

// keyspaceDump renders the whole keyspace through commands, canonically
// (keys, members and fields sorted; a TTL rendered as present or not).
func keyspaceDump(t *testing.T, c *tu.Conn) string {
	t.Helper()
	keys, err := c.DoReply("KEYS", "*")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, k := range keys.Elems {
		names = append(names, k.Str)
	}
	sort.Strings(names)
	var b strings.Builder
	for _, k := range names {
		typ := c.Do("TYPE", k)
		ttl := "persist"
		if r, _ := c.DoReply("PTTL", k); r.Int > 0 {
			ttl = "volatile"
		}
		var val string
		switch typ {
		case "string":
			val = c.Do("GET", k)
		case "list":
			val = c.Do("LRANGE", k, "0", "-1")
		case "zset":
			val = c.Do("ZRANGE", k, "0", "-1", "WITHSCORES")
		case "hash", "set":
			cmd := "HGETALL"
			if typ == "set" {
				cmd = "SMEMBERS"
			}
			r, _ := c.DoReply(cmd, k)
			var parts []string
			for i := 0; i < len(r.Elems); i++ {
				if typ == "hash" {
					parts = append(parts, strconv.Quote(r.Elems[i].Str)+"="+strconv.Quote(r.Elems[i+1].Str))
					i++
				} else {
					parts = append(parts, strconv.Quote(r.Elems[i].Str))
				}
			}
			sort.Strings(parts)
			val = strings.Join(parts, " ")
		}
		fmt.Fprintf(&b, "%q %s %s %s\n", k, typ, ttl, val)
	}
	return b.String()
}

func fillAllTypes(t *testing.T, c *tu.Conn) {
	t.Helper()
	big := strings.Repeat("compress me ", 1000)
	cmds := [][]string{
		{"SET", "s", "v"},
		{"SET", "bin\x00key\r\n", "\x00\xff"},
		{"SET", "big", big},
		{"SET", "ttl", "x", "EX", "1000"},
		{"SET", "n", "42"},
		{"RPUSH", "l", "a", "b", "", "c"},
		{"HSET", "h", "f1", "v1", "f2", "", "f\x003", "v3"},
		{"SADD", "set", "1", "2", "3"},
		{"SADD", "set2", "a", "b"},
		{"ZADD", "z", "1", "a", "2.5", "b", "-inf", "c"},
		{"EXPIRE", "h", "1000"},
		{"RPUSH", "gone", "x"}, {"LPOP", "gone"}, // emptied: deleted
	}
	for i := 0; i < 300; i++ {
		cmds = append(cmds, []string{"HSET", "bighash", "field" + strconv.Itoa(i), strings.Repeat("v", i%40)})
		cmds = append(cmds, []string{"ZADD", "bigz", strconv.Itoa(i % 13), "m" + strconv.Itoa(i)})
	}
	for _, cmd := range cmds {
		if r, _ := c.DoReply(cmd...); r.Kind == '-' {
			t.Fatalf("%q: %s", cmd, r.Str)
		}
	}
}

func TestSnapshotRoundTripRestart(t *testing.T) {
	dir := t.TempDir()
	n := tu.StartServer(t, "dir", dir)
	c := tu.Dial(t, n.Addr)
	fillAllTypes(t, c)
	before := keyspaceDump(t, c)
	if got := infoField(t, c, "persistence", "rdb_changes_since_last_save"); got == "0" {
		t.Fatalf("changes since last save: %s", got)
	}
	last0 := c.Do("LASTSAVE")
	steps(t, c, "SAVE", "OK")
	wantInfo(t, c, "persistence", "rdb_changes_since_last_save", "0")
	wantInfo(t, c, "persistence", "rdb_saves", "1")
	if last := c.Do("LASTSAVE"); last < last0 {
		t.Fatalf("LASTSAVE went back: %s < %s", last, last0)
	}
	n.Srv.Close()

	n2 := tu.StartServer(t, "dir", dir)
	c2 := tu.Dial(t, n2.Addr)
	if after := keyspaceDump(t, c2); after != before {
		t.Fatalf("after restart:\n%s\nbefore:\n%s", after, before)
	}
	wantInfo(t, c2, "persistence", "rdb_last_load_keys_loaded", "12")
	// The restored keys are fully functional.
	steps(t, c2, "INCR n", "(integer) 43", "LPUSH l z", "(integer) 5", "OBJECT ENCODING set", `"intset"`)

	// DEBUG RELOAD: save + flush + load, on the running server.
	before = keyspaceDump(t, c2)
	steps(t, c2, "DEBUG RELOAD", "OK")
	if after := keyspaceDump(t, c2); after != before {
		t.Fatalf("after DEBUG RELOAD:\n%s\nbefore:\n%s", after, before)
	}
}

// A BGSAVE while writers run loads without error; after a quiescent
// save every counter is exact.
func TestBgsaveDuringWrites(t *testing.T) {
	dir := t.TempDir()
	n := tu.StartServer(t, "dir", dir)
	c := tu.Dial(t, n.Addr)
	for i := 0; i < 2000; i++ { // enough keys for the dump to overlap the writers
		c.Send([]byte(fmt.Sprintf("SET filler:%d %s\r\n", i, strings.Repeat("x", 100))))
	}
	for i := 0; i < 2000; i++ {
		c.Read()
	}
	var stop atomic.Bool
	var wg sync.WaitGroup
	var counts [4]atomic.Int64
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			w := tu.Dial(t, n.Addr)
			for i := 0; !stop.Load(); i++ {
				key := "hot:" + strconv.Itoa((g+i)%8)
				if r, err := w.DoReply("INCR", key); err != nil || r.Kind == '-' {
					t.Errorf("INCR: %v %v", r, err)
					return
				}
				counts[g].Add(1)
			}
		}(g)
	}
	for counts[0].Load() < 50 {
		time.Sleep(time.Millisecond)
	}
	steps(t, c, "BGSAVE", "Background saving started")
	waitBgsave(t, c)
	// Let the writers run a little beyond the save, then stop.
	base := counts[0].Load()
	for counts[0].Load() < base+50 {
		time.Sleep(time.Millisecond)
	}
	stop.Store(true)
	wg.Wait()
	wantInfo(t, c, "persistence", "rdb_last_bgsave_status", "ok")
	// The snapshot taken during writes loads and holds per-slot states.
	n.Srv.Close()
	n2 := tu.StartServer(t, "dir", dir)
	c2 := tu.Dial(t, n2.Addr)
	if got := c2.Do("DBSIZE"); got != "(integer) 2008" {
		t.Fatalf("DBSIZE after restart: %s", got)
	}
	// Quiescent: exact.
	want := map[string]string{}
	for i := 0; i < 8; i++ {
		k := "hot:" + strconv.Itoa(i)
		want[k] = c2.Do("INCRBY", k, "1000")
	}
	steps(t, c2, "BGSAVE", "Background saving started")
	waitBgsave(t, c2)
	n2.Srv.Close()
	n3 := tu.StartServer(t, "dir", dir)
	c3 := tu.Dial(t, n3.Addr)
	for k, v := range want {
		if got := c3.Do("GET", k); got != `"`+strings.TrimPrefix(v, "(integer) ")+`"` {
			t.Fatalf("%s = %s after restart, want %s", k, got, v)
		}
	}
}

func waitBgsave(t *testing.T, c *tu.Conn) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for infoField(t, c, "persistence", "rdb_bgsave_in_progress") != "0" {
		if time.Now().After(deadline) {
			t.Fatal("BGSAVE did not finish")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// One background save at a time: a second BGSAVE and a SAVE are refused
// while one runs (held here by locking a slot the dump must visit).
func TestBgsaveInProgress(t *testing.T) {
	n := tu.StartServer(t)
	c := tu.Dial(t, n.Addr)
	steps(t, c, "SET a 1", "OK")
	last := cluster.NumSlots - 1
	n.Srv.DB().Lock(last)
	steps(t, c, "BGSAVE", "Background saving started",
		"BGSAVE", "(error) ERR Background save already in progress",
		"SAVE", "(error) ERR Background save already in progress",
		"BGSAVE SCHEDULE", "Background saving scheduled",
		"BGSAVE x", "(error) ERR syntax error")
	wantInfo(t, c, "persistence", "rdb_bgsave_in_progress", "1")
	n.Srv.DB().Unlock(last)
	// The scheduled one runs after: two saves in all.
	deadline := time.Now().Add(10 * time.Second)
	for infoField(t, c, "persistence", "rdb_saves") != "2" {
		if time.Now().After(deadline) {
			t.Fatal("scheduled BGSAVE did not run")
		}
		time.Sleep(5 * time.Millisecond)
	}
	steps(t, c, "MULTI", "OK", "SAVE", "(error) ERR Command not allowed inside a transaction", "DISCARD", "OK")
}

// Disk errors are reported (status err, SAVE error), never a crash.
func TestSaveDiskError(t *testing.T) {
	n := tu.StartServer(t, "dir", filepath.Join(t.TempDir(), "missing"))
	c := tu.Dial(t, n.Addr)
	steps(t, c, "SET a 1", "OK", "SAVE", "(error) ERR")
	wantInfo(t, c, "persistence", "rdb_last_bgsave_status", "err")
	steps(t, c, "BGSAVE", "Background saving started")
	waitBgsave(t, c)
	wantInfo(t, c, "persistence", "rdb_last_bgsave_status", "err")
	wantInfo(t, c, "persistence", "rdb_changes_since_last_save", "1")
	steps(t, c, "GET a", `"1"`)
}

func newServer(t *testing.T, directives ...string) (*server.Server, string) {
	t.Helper()
	port := tu.FreePort(t)
	cfg := config.Default()
	args := []string{"--port", strconv.Itoa(port), "--bind", "127.0.0.1"}
	args = append(args, directives...)
	if err := cfg.ParseArgs(args); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	srv, err := server.New(cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	return srv, "127.0.0.1:" + strconv.Itoa(port)
}

func saveSample(t *testing.T, dir string, keys int) string {
	t.Helper()
	n := tu.StartServer(t, "dir", dir)
	c := tu.Dial(t, n.Addr)
	for i := 0; i < keys; i++ {
		c.Send([]byte(fmt.Sprintf("SET key:%d value-%d\r\n", i, i)))
	}
	for i := 0; i < keys; i++ {
		c.Read()
	}
	steps(t, c, "SAVE", "OK")
	n.Srv.Close()
	return filepath.Join(dir, "dump.shoal")
}

// A damaged snapshot stops start-up with an error naming the file and
// the offset.
func TestCorruptSnapshotStopsStart(t *testing.T) {
	for _, tc := range []struct {
		name   string
		damage func([]byte) []byte
		want   string
	}{
		{"flipped", func(b []byte) []byte { b[len(b)/2] ^= 0xff; return b }, "corrupt snapshot at offset"},
		{"truncated", func(b []byte) []byte { return b[:len(b)-10] }, "truncated"},
		{"not a snapshot", func(b []byte) []byte { return []byte("REDIS0011 not ours, but long enough") }, "bad magic"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := saveSample(t, dir, 500)
			data, _ := os.ReadFile(path)
			os.WriteFile(path, tc.damage(data), 0o644)
			srv, _ := newServer(t, "--dir", dir)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			err := srv.Start(ctx)
			if err == nil {
				srv.Close()
				t.Fatal("start-up succeeded on a damaged snapshot")
			}
			msg := err.Error()
			if !strings.Contains(msg, path) || !strings.Contains(msg, "offset") || !strings.Contains(msg, tc.want) {
				t.Fatalf("error %q should name %s, an offset and %q", msg, path, tc.want)
			}
			srv.Close() // harmless after a failed start
		})
	}
}

// While the snapshot loads, clients get -LOADING except for commands
// allowed during loading; INFO reports loading:1.
func TestLoadingReply(t *testing.T) {
	dir := t.TempDir()
	saveSample(t, dir, 200)
	// 200 keys × 50 ms: far longer than the test needs; it lifts the delay.
	mport := tu.FreePort(t)
	srv, addr := newServer(t, "--dir", dir, "--key-load-delay", "50000", "--memcached-port", strconv.Itoa(mport))
	started := make(chan error, 1)
	go func() { started <- srv.Start(context.Background()) }()
	t.Cleanup(func() { srv.Close() })
	var c *tu.Conn
	for c == nil {
		if d, err := dialOnce(addr); err == nil {
			d.Close()
			c = tu.Dial(t, addr)
		} else {
			time.Sleep(2 * time.Millisecond)
		}
	}
	steps(t, c, "GET key:1", "(error) LOADING Redis is loading the dataset in memory",
		"PING", "PONG",
		"MULTI", "OK", "SET x 1", "(error) LOADING Redis is loading the dataset in memory", "DISCARD", "OK")
	m := mcDial(t, "127.0.0.1:"+strconv.Itoa(mport))
	mcRun(t, m, []mcCase{
		{"get key:1\r\n", "SERVER_ERROR LOADING Redis is loading the dataset in memory|"},
		{"set k 0 0 1\r\nv\r\n", "SERVER_ERROR LOADING Redis is loading the dataset in memory|"},
		{"version\r\n", "VERSION 1.6.21|"},
	})
	wantInfo(t, c, "persistence", "loading", "1")
	if got := infoField(t, c, "persistence", "loading_total_bytes"); got == "0" {
		t.Fatalf("loading_total_bytes %s", got)
	}
	steps(t, c, "CONFIG SET key-load-delay 0", "OK")
	if err := <-started; err != nil {
		t.Fatal(err)
	}
	steps(t, c, "GET key:1", `"value-1"`, "DBSIZE", "(integer) 200")
	wantInfo(t, c, "persistence", "loading", "0")
}

// The save policy triggers a background save; SHUTDOWN saves by default
// when a policy is set, NOSAVE does not.
func TestSavePolicyAndShutdown(t *testing.T) {
	dir := t.TempDir()
	n := tu.StartServer(t, "dir", dir, "save", "0 3")
	c := tu.Dial(t, n.Addr)
	steps(t, c, "CONFIG GET save", `["save" "0 3"]`, "SET a 1", "OK", "SET b 2", "OK")
	wantInfo(t, c, "persistence", "rdb_saves", "0")
	steps(t, c, "SET c 3", "OK")
	deadline := time.Now().Add(10 * time.Second)
	for infoField(t, c, "persistence", "rdb_saves") != "1" {
		if time.Now().After(deadline) {
			t.Fatal("save policy did not trigger")
		}
		time.Sleep(10 * time.Millisecond)
	}
	waitBgsave(t, c)
	steps(t, c, "SET d 4", "OK")
	if _, err := c.DoReply("SHUTDOWN"); err == nil {
		t.Fatal("SHUTDOWN replied")
	}
	<-n.Srv.ShutdownRequested()
	n.Srv.Close()
	n2 := tu.StartServer(t, "dir", dir)
	c2 := tu.Dial(t, n2.Addr)
	steps(t, c2, "DBSIZE", "(integer) 4")
	if got := c2.Do("CONFIG", "SET", "save", "60 1"); got != "OK" {
		t.Fatal(got)
	}
	steps(t, c2, "SET e 5", "OK")
	if _, err := c2.DoReply("SHUTDOWN", "NOSAVE"); err == nil {
		t.Fatal("SHUTDOWN NOSAVE replied")
	}
	<-n2.Srv.ShutdownRequested()
	n2.Srv.Close()
	n3 := tu.StartServer(t, "dir", dir)
	steps(t, tu.Dial(t, n3.Addr), "DBSIZE", "(integer) 4")
}
