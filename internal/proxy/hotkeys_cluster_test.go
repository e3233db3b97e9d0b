package proxy_test

import (
	"bufio"
	"context"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"shoal/internal/proxy"
	tu "shoal/internal/testutil"
)

// infoStr returns one INFO field of the proxy.
func infoStr(t *testing.T, cl *tu.Conn, name string) string {
	t.Helper()
	r, err := cl.DoReply("INFO")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(r.Str, "\r\n") {
		if v, ok := strings.CutPrefix(l, name+":"); ok {
			return v
		}
	}
	return ""
}

// TestProxyHotKeys: the ranking through SHOAL HOTKEYS and INFO, and the
// hot-key cache: hits, invalidation by every kind of write through the
// proxy (RESP and memcached, multi-key, transactions, flush), staleness
// of writes made elsewhere bounded by the TTL.
func TestProxyHotKeys(t *testing.T) {
	c := newTCluster(t, 3, 0, nil)
	ids := c.shardIDs()
	p := c.startProxyWith(func(cfg *proxy.Config) {
		cfg.RetryBudget = 10 * time.Second
		cfg.HotKeySample = 1
		cfg.HotKeyHalfLife = time.Hour // no decay during the test
		cfg.HotKeyCache, cfg.HotKeyCacheTTL = 2, time.Minute
	})
	cl := tu.Dial(t, p.Addr())
	hot, warm := c.keyIn(ids[0], "hot"), c.keyIn(ids[1], "warm")
	other := c.keyIn(ids[2], "other")
	prim := c.primary(ids[0]).addr

	t.Run("ranking", func(t *testing.T) {
		tu.Run(t, cl, []tu.Case{{[]string{"SET", hot, "v1"}, "OK"}})
		for i := 0; i < 30; i++ {
			cl.Do("GET", hot)
			if i%2 == 0 {
				cl.Do("GET", warm)
			}
		}
		cl.Do("MGET", other, hot)
		if got := cl.Do("SHOAL", "HOTKEYS", "2"); got != `[["`+hot+`" (integer) 32] ["`+warm+`" (integer) 15]]` {
			t.Fatalf("SHOAL HOTKEYS 2: %s", got)
		}
		if got := infoStr(t, cl, "hotkey0"); got != "key="+hot+",score=32" {
			t.Fatalf("INFO hotkey0: %q", got)
		}
		if got := cl.Do("SHOAL", "HOTKEYS", "0"); !strings.HasPrefix(got, "(error) ERR") {
			t.Fatalf("SHOAL HOTKEYS 0: %s", got)
		}
		if got := cl.Do("SHOAL", "NOPE"); !strings.HasPrefix(got, "(error) ERR unknown subcommand") {
			t.Fatalf("SHOAL NOPE: %s", got)
		}
		got := p.HotKeys(10)
		if len(got) != 3 || got[2].Key != other {
			t.Fatalf("HotKeys: %+v", got)
		}
	})

	// get reads hot through the proxy.
	get := func() string { return cl.Do("GET", hot) }
	// behind changes hot straight on its primary: the proxy does not see it.
	behind := func(v string) {
		if got := direct(t, prim, "SET", hot, v); got != "OK" {
			t.Fatalf("direct SET: %s", got)
		}
	}

	t.Run("cache", func(t *testing.T) {
		get() // fills
		hits := infoField(t, cl, "hotkey_cache_hits")
		behind("elsewhere")
		if got := get(); got != `"v1"` {
			t.Fatalf("a cached key read %s: not served from the cache", got)
		}
		if infoField(t, cl, "hotkey_cache_hits") == hits {
			t.Fatal("no cache hit counted")
		}
		// Every write through the proxy invalidates before it is sent.
		writes := [][]string{
			{"SET", hot, "v2"},
			{"APPEND", hot, "x"},
			{"MSET", other, "1", hot, "v3", warm, "2"}, // split across shards
			{"EXPIRE", hot, "1000"},
			{"DEL", hot, warm},
		}
		for _, w := range writes {
			cl.Do("GET", hot) // cached again
			behind("stale")   // invisible until the write below
			if got := cl.Do(w...); strings.HasPrefix(got, "(error)") {
				t.Fatalf("%v: %s", w, got)
			}
			want := direct(t, prim, "GET", hot)
			if got := get(); got != want {
				t.Fatalf("after %v: proxy %s, primary %s", w, got, want)
			}
		}
		// A transaction's writes invalidate when EXEC answers.
		get()
		tu.Run(t, cl, []tu.Case{
			{[]string{"MULTI"}, "OK"},
			{[]string{"SET", hot, "tx"}, "QUEUED"},
			{[]string{"GET", hot}, "QUEUED"},
			{[]string{"EXEC"}, `[OK "tx"]`},
			{[]string{"GET", hot}, `"tx"`},
		})
		// FLUSHALL empties the cache.
		get()
		tu.Run(t, cl, []tu.Case{
			{[]string{"FLUSHALL"}, "OK"},
			{[]string{"GET", hot}, "(nil)"},
		})
		// A cached miss: the key's absence is cached too.
		get()
		behind("late")
		if got := get(); got != "(nil)" {
			t.Fatalf("cached miss: %s", got)
		}
		tu.Run(t, cl, []tu.Case{{[]string{"SET", hot, "v4"}, "OK"}, {[]string{"GET", hot}, `"v4"`}})
	})

	t.Run("memcached", func(t *testing.T) {
		nc, err := net.Dial("tcp", p.MCAddr())
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		r := bufio.NewReader(nc)
		if got := mcRoundTrip(t, nc, r, "set "+hot+" 7 0 2\r\nm1\r\n", 1); got != "STORED\r\n" {
			t.Fatal(got)
		}
		want := "VALUE " + hot + " 7 2\r\nm1\r\nEND\r\n"
		for i := 0; i < 2; i++ { // a fill, then a hit
			if got := mcRoundTrip(t, nc, r, "get "+hot+"\r\n", 3); got != want {
				t.Fatalf("get: %q", got)
			}
		}
		behind("zz")
		if got := mcRoundTrip(t, nc, r, "get "+hot+"\r\n", 3); got != want {
			t.Fatalf("get of a cached key: %q", got)
		}
		// A RESP write invalidates the memcached entry and the reverse.
		tu.Run(t, cl, []tu.Case{{[]string{"SET", hot, "r1"}, "OK"}})
		if got := mcRoundTrip(t, nc, r, "get "+hot+"\r\n", 3); got != "VALUE "+hot+" 0 2\r\nr1\r\nEND\r\n" {
			t.Fatalf("get after a RESP SET: %q", got)
		}
		get()
		if got := mcRoundTrip(t, nc, r, "delete "+hot+"\r\n", 1); got != "DELETED\r\n" {
			t.Fatal(got)
		}
		if got := get(); got != "(nil)" {
			t.Fatalf("GET after a memcached delete: %s", got)
		}
		if got := mcRoundTrip(t, nc, r, "get "+hot+"\r\n", 1); got != "END\r\n" {
			t.Fatalf("get after delete: %q", got)
		}
		if got := mcRoundTrip(t, nc, r, "ms "+hot+" 2\r\nms\r\n", 1); got != "HD\r\n" {
			t.Fatal(got)
		}
		if got := mcRoundTrip(t, nc, r, "get "+hot+"\r\n", 3); got != "VALUE "+hot+" 0 2\r\nms\r\nEND\r\n" {
			t.Fatalf("get after ms: %q", got)
		}
	})

	t.Run("expiry", func(t *testing.T) {
		// A short TTL: a write made elsewhere shows once the entry expires.
		p2 := c.startProxyWith(func(cfg *proxy.Config) {
			cfg.HotKeySample = 1
			cfg.HotKeyCache, cfg.HotKeyCacheTTL = 1, 20*time.Millisecond
		})
		cl2 := tu.Dial(t, p2.Addr())
		behind("before")
		cl2.Do("GET", hot)
		behind("after")
		waitUntil(t, "the cached value to expire", func() bool { return cl2.Do("GET", hot) == `"after"` })
	})

	t.Run("read your writes under concurrency", func(t *testing.T) {
		// Clients INCR the hot key and read it back: a read after an
		// acknowledged INCR never sees an older count, although other
		// clients' reads keep filling the cache.
		rdb := redis.NewClient(&redis.Options{Addr: p.Addr(), Protocol: 2, PoolSize: 8})
		defer rdb.Close()
		ctx := context.Background()
		ctr := c.keyIn(ids[1], "ctr")
		for i := 0; i < 3; i++ {
			rdb.Get(ctx, ctr) // make it the hottest
		}
		var wg sync.WaitGroup
		errs := make(chan string, 8)
		for w := 0; w < 4; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < 200; i++ {
					n, err := rdb.Incr(ctx, ctr).Result()
					if err != nil {
						errs <- err.Error()
						return
					}
					g, err := rdb.Get(ctx, ctr).Int64()
					if err != nil || g < n {
						errs <- "INCR " + strconv.FormatInt(n, 10) + " then GET " + strconv.FormatInt(g, 10)
						return
					}
				}
			}()
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < 400; i++ {
					rdb.Get(ctx, ctr)
				}
			}()
		}
		wg.Wait()
		close(errs)
		for e := range errs {
			t.Error(e)
		}
		if infoField(t, cl, "hotkey_cache_hits") == 0 {
			t.Error("no cache hit at all")
		}
	})
}
