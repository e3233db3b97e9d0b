package e2e

import (
	"context"
	"fmt"
	"strconv"
	"testing"

	"github.com/bradfitz/gomemcache/memcache"
	"github.com/redis/go-redis/v9"
)

// The built binary with --memcached-port serves gomemcache and go-redis on
// one keyspace.
func TestGomemcacheAgainstBinary(t *testing.T) {
	mport := freePort(t)
	p := startShoal(t, "--memcached-port", strconv.Itoa(mport))
	mc := memcache.New("127.0.0.1:" + strconv.Itoa(mport))
	rc := redis.NewClient(&redis.Options{Addr: p.addr})
	defer rc.Close()
	ctx := context.Background()

	if err := mc.Ping(); err != nil {
		t.Fatalf("ping: %v", err)
	}
	if err := mc.Set(&memcache.Item{Key: "mk", Value: []byte("hello"), Flags: 42}); err != nil {
		t.Fatal(err)
	}
	it, err := mc.Get("mk")
	if err != nil || string(it.Value) != "hello" || it.Flags != 42 {
		t.Fatalf("get: %+v %v", it, err)
	}
	// Same data over RESP, both ways.
	if v, err := rc.Get(ctx, "mk").Result(); err != nil || v != "hello" {
		t.Fatalf("RESP GET of a memcached item: %q %v", v, err)
	}
	rc.Set(ctx, "rk", "from-redis", 0)
	if it, err := mc.Get("rk"); err != nil || string(it.Value) != "from-redis" || it.Flags != 0 {
		t.Fatalf("memcached get of a RESP key: %+v %v", it, err)
	}
	// CAS conflict caused by a RESP write.
	it, _ = mc.Get("mk")
	rc.Append(ctx, "mk", "!")
	it.Value = []byte("lost")
	if err := mc.CompareAndSwap(it); err != memcache.ErrCASConflict {
		t.Fatalf("CAS after a RESP write: %v, want conflict", err)
	}
	it, _ = mc.Get("mk")
	it.Value = []byte("won")
	if err := mc.CompareAndSwap(it); err != nil {
		t.Fatalf("CAS: %v", err)
	}
	// Multi-get of 100 keys.
	keys := make([]string, 100)
	for i := range keys {
		keys[i] = fmt.Sprintf("multi:%d", i)
		mc.Set(&memcache.Item{Key: keys[i], Value: []byte(strconv.Itoa(i))})
	}
	got, err := mc.GetMulti(keys)
	if err != nil || len(got) != 100 || string(got["multi:57"].Value) != "57" {
		t.Fatalf("GetMulti: %d items, %v", len(got), err)
	}
	// Counters are shared with INCR.
	mc.Set(&memcache.Item{Key: "ctr", Value: []byte("10")})
	if n, err := mc.Increment("ctr", 5); err != nil || n != 15 {
		t.Fatalf("incr: %d %v", n, err)
	}
	if n, err := rc.IncrBy(ctx, "ctr", 5).Result(); err != nil || n != 20 {
		t.Fatalf("RESP INCRBY after memcached incr: %d %v", n, err)
	}
	if n, err := mc.Decrement("ctr", 100); err != nil || n != 0 {
		t.Fatalf("decr below zero: %d %v", n, err)
	}
	if err := mc.Touch("mk", 100); err != nil {
		t.Fatal(err)
	}
	if ttl, _ := rc.TTL(ctx, "mk").Result(); ttl.Seconds() < 99 {
		t.Fatalf("TTL after touch: %v", ttl)
	}
	if err := mc.Delete("mk"); err != nil {
		t.Fatal(err)
	}
	if n, _ := rc.Exists(ctx, "mk").Result(); n != 0 {
		t.Fatal("deleted over memcached, still there over RESP")
	}
	if err := mc.FlushAll(); err != nil {
		t.Fatal(err)
	}
	if n, _ := rc.DBSize(ctx).Result(); n != 0 {
		t.Fatalf("flush_all left %d keys", n)
	}
}
