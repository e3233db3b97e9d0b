package proxy_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"shoal/internal/resp"
	tu "shoal/internal/testutil"
)

// TestProxyTransactions runs MULTI/EXEC/WATCH through the proxy: pinned
// to one shard, an exact error and EXECABORT across shards.
func TestProxyTransactions(t *testing.T) {
	c := newTCluster(t, 3, 0, nil)
	p := c.startProxy(10 * time.Second)
	ids := c.shardIDs()
	ctx := context.Background()
	a, a2 := c.keyIn(ids[0], "txa"), c.keyIn(ids[0], "txa2-")
	b := c.keyIn(ids[1], "txb")
	rdb := redis.NewClient(&redis.Options{Addr: p.Addr(), Protocol: 2})
	defer rdb.Close()

	t.Run("go-redis TxPipelined on one shard", func(t *testing.T) {
		cmds, err := rdb.TxPipelined(ctx, func(pipe redis.Pipeliner) error {
			pipe.Set(ctx, a, "1", 0)
			pipe.Incr(ctx, a)
			pipe.Set(ctx, a2, "x", 0)
			pipe.Get(ctx, a2)
			pipe.Ping(ctx)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if got := cmds[1].(*redis.IntCmd).Val(); got != 2 {
			t.Errorf("INCR in the transaction: %d", got)
		}
		if got := cmds[3].(*redis.StringCmd).Val(); got != "x" {
			t.Errorf("GET in the transaction: %q", got)
		}
		if got := direct(t, c.primary(ids[0]).addr, "GET", a); got != `"2"` {
			t.Errorf("on the shard: %s", got)
		}
	})

	t.Run("go-redis TxPipelined across shards", func(t *testing.T) {
		_, err := rdb.TxPipelined(ctx, func(pipe redis.Pipeliner) error {
			pipe.Set(ctx, a, "10", 0)
			pipe.Set(ctx, b, "20", 0)
			return nil
		})
		if err == nil || !strings.Contains(err.Error(), "CROSSSLOT") && !strings.Contains(err.Error(), "EXECABORT") {
			t.Fatalf("cross-shard transaction: %v", err)
		}
		if got := direct(t, c.primary(ids[0]).addr, "GET", a); got != `"2"` {
			t.Errorf("a discarded transaction wrote: %s", got)
		}
		// The connection is usable afterwards.
		if err := rdb.Set(ctx, b, "ok", 0).Err(); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("go-redis Watch", func(t *testing.T) {
		incr := func(tx *redis.Tx) error {
			n, err := tx.Get(ctx, a).Int()
			if err != nil && err != redis.Nil {
				return err
			}
			_, err = tx.TxPipelined(ctx, func(pipe redis.Pipeliner) error {
				pipe.Set(ctx, a, n+1, 0)
				pipe.Set(ctx, a2, "w", 0)
				return nil
			})
			return err
		}
		if err := rdb.Watch(ctx, incr, a, a2); err != nil {
			t.Fatal(err)
		}
		if got := rdb.Get(ctx, a).Val(); got != "3" {
			t.Errorf("after the watched increment: %q", got)
		}
		// A write by another client between WATCH and EXEC: EXEC is nil.
		other := redis.NewClient(&redis.Options{Addr: p.Addr(), Protocol: 2})
		defer other.Close()
		err := rdb.Watch(ctx, func(tx *redis.Tx) error {
			if err := other.Set(ctx, a, "100", 0).Err(); err != nil {
				return err
			}
			_, err := tx.TxPipelined(ctx, func(pipe redis.Pipeliner) error {
				pipe.Set(ctx, a, "lost", 0)
				return nil
			})
			return err
		}, a)
		if !errors.Is(err, redis.TxFailedErr) {
			t.Fatalf("WATCH conflict: %v", err)
		}
		if got := rdb.Get(ctx, a).Val(); got != "100" {
			t.Errorf("after the failed transaction: %q", got)
		}
		// WATCH across shards is an error.
		err = rdb.Watch(ctx, func(tx *redis.Tx) error { return nil }, a, b)
		if err == nil || !strings.Contains(err.Error(), "CROSSSLOT") {
			t.Errorf("WATCH across shards: %v", err)
		}
	})

	t.Run("raw protocol", func(t *testing.T) {
		cl := tu.Dial(t, p.Addr())
		tu.Run(t, cl, []tu.Case{
			{tu.C("EXEC"), "(error) ERR EXEC without MULTI"},
			{tu.C("DISCARD"), "(error) ERR DISCARD without MULTI"},
			{tu.C("MULTI"), "OK"},
			{tu.C("MULTI"), "(error) ERR MULTI calls can not be nested"},
			{tu.C("EXEC"), "[]"},
			// Keyless commands before the first key are held, then sent.
			{tu.C("MULTI"), "OK"},
			{tu.C("PING"), "QUEUED"},
			{[]string{"SET", a, "v"}, "QUEUED"},
			{tu.C("ECHO e"), "QUEUED"},
			{[]string{"GET", a}, "QUEUED"},
			{tu.C("EXEC"), `[PONG OK "e" "v"]`},
			// Only keyless commands: run on some shard.
			{tu.C("MULTI"), "OK"},
			{tu.C("PING x"), "QUEUED"},
			{tu.C("EXEC"), `["x"]`},
			{tu.C("MULTI"), "OK"},
			{[]string{"SET", a, "d"}, "QUEUED"},
			{tu.C("DISCARD"), "OK"},
			{[]string{"GET", a}, `"v"`},
			// Errors while queueing doom the transaction.
			{tu.C("MULTI"), "OK"},
			{[]string{"SET", a, "z"}, "QUEUED"},
			{[]string{"SET", b, "z"}, "(error) " + "CROSSSLOT Keys in request don't hash to the same shard (the shoal proxy runs a transaction on one shard; the transaction is discarded)"},
			{tu.C("EXEC"), "(error) EXECABORT Transaction discarded because of previous errors."},
			{[]string{"GET", a}, `"v"`},
			{tu.C("MULTI"), "OK"},
			{tu.C("NOSUCH"), "(error) ERR unknown command 'NOSUCH'"},
			{tu.C("EXEC"), "(error) EXECABORT Transaction discarded because of previous errors."},
			{tu.C("MULTI"), "OK"},
			{tu.C("KEYS *"), "(error) ERR 'keys' is not supported inside MULTI by the shoal proxy (the transaction is discarded)"},
			{tu.C("DISCARD"), "OK"},
			{tu.C("MULTI"), "OK"},
			{[]string{"WATCH", a}, "(error) ERR WATCH inside MULTI is not allowed"},
			{tu.C("DISCARD"), "OK"},
			{tu.C("UNWATCH"), "OK"},
			{[]string{"WATCH", a}, "OK"},
			{tu.C("UNWATCH"), "OK"},
			{[]string{"WATCH", a, b}, "(error) " + "CROSSSLOT Keys in request don't hash to the same shard (the shoal proxy cannot run this command across shards)"},
			{tu.C("PING"), "PONG"},
		})
	})

	t.Run("pipelined order around a transaction", func(t *testing.T) {
		cl := tu.Dial(t, p.Addr())
		var buf []byte
		buf = resp.AppendCommand(buf, "SET", a, "1")
		buf = resp.AppendCommand(buf, "SET", b, "1")
		buf = resp.AppendCommand(buf, "MULTI")
		buf = resp.AppendCommand(buf, "INCR", a)
		buf = resp.AppendCommand(buf, "INCR", a)
		buf = resp.AppendCommand(buf, "EXEC")
		buf = resp.AppendCommand(buf, "INCR", a)
		buf = resp.AppendCommand(buf, "GET", b)
		buf = resp.AppendCommand(buf, "WATCH", a)
		buf = resp.AppendCommand(buf, "GET", a)
		buf = resp.AppendCommand(buf, "GET", b)
		buf = resp.AppendCommand(buf, "MULTI")
		buf = resp.AppendCommand(buf, "SET", a, "w")
		buf = resp.AppendCommand(buf, "EXEC")
		buf = resp.AppendCommand(buf, "GET", a)
		cl.Send(buf)
		want := []string{"OK", "OK", "OK", "QUEUED", "QUEUED", "[(integer) 2 (integer) 3]", "(integer) 4", `"1"`,
			"OK", `"4"`, `"1"`, "OK", "QUEUED", "[OK]", `"w"`}
		for i, w := range want {
			r, err := cl.Read()
			if err != nil {
				t.Fatalf("reply %d: %v", i, err)
			}
			if r.String() != w {
				t.Fatalf("reply %d: got %s, want %s", i, r, w)
			}
		}
	})

	t.Run("client gone in a transaction", func(t *testing.T) {
		cl := tu.Dial(t, p.Addr())
		tu.Run(t, cl, []tu.Case{{tu.C("MULTI"), "OK"}, {[]string{"SET", a, "never"}, "QUEUED"}})
		cl.C.Close()
		cl = tu.Dial(t, p.Addr())
		tu.Run(t, cl, []tu.Case{{[]string{"GET", a}, `"w"`}})
	})
}
