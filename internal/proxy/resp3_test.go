package proxy_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"shoal/internal/proxy"
	"shoal/internal/resp"
	tu "shoal/internal/testutil"
)

// TestProxyRESP3: HELLO 3 through the proxy gives RESP3-typed replies
// (maps, sets, doubles, nulls, pushes), with go-redis Protocol 3 and
// raw frames; a RESP2 client of the same proxy keeps RESP2 replies.
func TestProxyRESP3(t *testing.T) {
	c := newTCluster(t, 2, 1, nil)
	p := c.startProxy(10 * time.Second)
	ids := c.shardIDs()
	ctx := context.Background()
	h, z, s := c.keyIn(ids[0], "h"), c.keyIn(ids[1], "z"), c.keyIn(ids[0], "s")
	other := c.keyIn(ids[1], "nokey")

	raw2 := tu.Dial(t, p.Addr())
	tu.Run(t, raw2, []tu.Case{
		{[]string{"HSET", h, "f1", "v1", "f2", "v2"}, "(integer) 2"},
		{[]string{"ZADD", z, "1.5", "m"}, "(integer) 1"},
		{[]string{"SADD", s, "a"}, "(integer) 1"},
	})

	t.Run("raw frames", func(t *testing.T) {
		raw3 := tu.Dial(t, p.Addr())
		kind := func(cl *tu.Conn, args ...string) resp.Reply {
			t.Helper()
			r, err := cl.DoReply(args...)
			if err != nil {
				t.Fatal(err)
			}
			return r
		}
		if r := kind(raw3, "HELLO", "3"); r.Kind != '%' {
			t.Fatalf("HELLO 3: %c %s", r.Kind, r.String())
		}
		cases := []struct {
			args   []string
			k2, k3 byte
		}{
			{[]string{"HGETALL", h}, '*', '%'},
			{[]string{"ZSCORE", z, "m"}, '$', ','},
			{[]string{"SMEMBERS", s}, '*', '~'},
			{[]string{"GET", other}, '$', '_'},
			{[]string{"CLIENT", "GETNAME"}, '$', '_'},
			{[]string{"INFO"}, '$', '='},
			{[]string{"PUBSUB", "NUMSUB", "x", "y"}, '*', '%'},
		}
		for _, tc := range cases {
			if r := kind(raw3, tc.args...); r.Kind != tc.k3 {
				t.Errorf("RESP3 %v: %c %s", tc.args, r.Kind, r.String())
			}
			if r := kind(raw2, tc.args...); r.Kind != tc.k2 {
				t.Errorf("RESP2 %v: %c %s", tc.args, r.Kind, r.String())
			}
		}
		// Split across shards: MGET's miss is a RESP3 null inside the array.
		if r := kind(raw3, "MGET", h+"x", other); r.Kind != '*' || len(r.Elems) != 2 || r.Elems[1].Kind != '_' {
			t.Errorf("MGET: %s", r.String())
		}
		// A transaction on a RESP3 dedicated connection.
		kind(raw3, "MULTI")
		kind(raw3, "HGETALL", h)
		kind(raw3, "ZSCORE", c.keyIn(ids[0], "zz"), "m")
		if r := kind(raw3, "EXEC"); r.Kind != '*' || len(r.Elems) != 2 || r.Elems[0].Kind != '%' || r.Elems[1].Kind != '_' {
			t.Errorf("EXEC: %s", r.String())
		}
		// A blocking command that times out: a RESP3 null.
		if r := kind(raw3, "BLPOP", other, "0.01"); r.Kind != '_' {
			t.Errorf("BLPOP timeout: %c %s", r.Kind, r.String())
		}
		// Back to RESP2.
		if r := kind(raw3, "HELLO", "2"); r.Kind != '*' {
			t.Fatalf("HELLO 2: %s", r.String())
		}
		if r := kind(raw3, "HGETALL", h); r.Kind != '*' {
			t.Errorf("HGETALL after HELLO 2: %s", r.String())
		}
		if r := kind(raw3, "HELLO", "4"); r.Kind != '-' || !strings.HasPrefix(r.Str, "NOPROTO") {
			t.Errorf("HELLO 4: %s", r.String())
		}
	})

	t.Run("replica reads", func(t *testing.T) {
		// Replica pools of RESP3 clients say HELLO 3 and READONLY.
		pr := c.startProxyWith(func(cfg *proxy.Config) { cfg.ReadFrom = "replica-preferred" })
		cl := tu.Dial(t, pr.Addr())
		cl.Do("HELLO", "3")
		waitUntil(t, "the replica to have the hash", func() bool {
			r, err := cl.DoReply("HGETALL", h)
			return err == nil && r.Kind == '%' && len(r.Elems) == 4
		})
		if r, _ := cl.DoReply("ZSCORE", z, "m"); r.Kind != ',' {
			t.Errorf("ZSCORE from a replica: %s", r.String())
		}
		// Served by the replica (it counts them), not redirected.
		rep := c.replicaOf(ids[0]).addr
		before := commandsProcessed(t, rep)
		for i := 0; i < 20; i++ {
			if r, _ := cl.DoReply("HGETALL", h); r.Kind != '%' {
				t.Fatalf("HGETALL: %s", r.String())
			}
		}
		if n := commandsProcessed(t, rep) - before; n < 20 {
			t.Errorf("the replica ran %d commands for 20 reads", n)
		}
	})

	t.Run("go-redis", func(t *testing.T) {
		rdb := redis.NewClient(&redis.Options{Addr: p.Addr(), Protocol: 3})
		defer rdb.Close()
		m, err := rdb.HGetAll(ctx, h).Result()
		if err != nil || m["f1"] != "v1" || m["f2"] != "v2" {
			t.Fatalf("HGETALL: %v %v", m, err)
		}
		if f, err := rdb.ZScore(ctx, z, "m").Result(); err != nil || f != 1.5 {
			t.Fatalf("ZSCORE: %v %v", f, err)
		}
		if _, err := rdb.Get(ctx, other).Result(); err != redis.Nil {
			t.Fatalf("GET missing: %v", err)
		}
		// A RESP2 go-redis client on the same proxy is unaffected.
		rdb2 := redis.NewClient(&redis.Options{Addr: p.Addr(), Protocol: 2})
		defer rdb2.Close()
		if m, err := rdb2.HGetAll(ctx, h).Result(); err != nil || len(m) != 2 {
			t.Fatalf("RESP2 HGETALL: %v %v", m, err)
		}
		if f, err := rdb2.ZScore(ctx, z, "m").Result(); err != nil || f != 1.5 {
			t.Fatalf("RESP2 ZSCORE: %v %v", f, err)
		}

		// Pub/sub: messages arrive as RESP3 pushes on channels of both
		// shards and a pattern; the subscribed RESP3 client may still
		// run ordinary commands.
		ch1, ch2 := c.keyIn(ids[0], "chan"), c.keyIn(ids[1], "chan")
		sub := rdb.Subscribe(ctx, ch1, ch2)
		defer sub.Close()
		if err := sub.PSubscribe(ctx, "pat*"); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 3; i++ { // the confirmations
			if _, err := sub.ReceiveTimeout(ctx, 10*time.Second); err != nil {
				t.Fatal(err)
			}
		}
		for _, ch := range []string{ch1, ch2, "pattern"} {
			if n, err := rdb2.Publish(ctx, ch, "hi "+ch).Result(); err != nil || n != 1 {
				t.Fatalf("PUBLISH %s: %d %v", ch, n, err)
			}
			msg, err := sub.ReceiveTimeout(ctx, 10*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			m, ok := msg.(*redis.Message)
			if !ok || m.Channel != ch || m.Payload != "hi "+ch {
				t.Fatalf("received %#v", msg)
			}
		}
		raw3 := tu.Dial(t, p.Addr())
		raw3.Do("HELLO", "3")
		if r, _ := raw3.DoReply("SUBSCRIBE", ch1); r.Kind != '>' {
			t.Fatalf("SUBSCRIBE confirmation: %c %s", r.Kind, r.String())
		}
		if got := raw3.Do("HGET", h, "f1"); got != `"v1"` {
			t.Fatalf("HGET while subscribed (RESP3): %s", got)
		}
		rdb2.Publish(ctx, ch1, "x")
		if r, err := raw3.Read(); err != nil || r.Kind != '>' || len(r.Elems) != 3 {
			t.Fatalf("message: %v %s", err, r.String())
		}
	})
}
