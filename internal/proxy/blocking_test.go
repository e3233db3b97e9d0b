package proxy_test

import (
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"shoal/internal/resp"
	tu "shoal/internal/testutil"
)

// blocked returns the blocked_clients count of the node at addr.
func blocked(t *testing.T, addr string) int {
	info := direct(t, addr, "INFO", "clients")
	i := strings.Index(info, "blocked_clients:")
	if i < 0 {
		t.Fatalf("no blocked_clients in %s", info)
	}
	n, _ := strconv.Atoi(strings.TrimSpace(strings.SplitN(info[i+len("blocked_clients:"):], `\r`, 2)[0]))
	return n
}

func waitBlocked(t *testing.T, addr string, n int) {
	t.Helper()
	waitUntil(t, "blocked_clients:"+strconv.Itoa(n), func() bool { return blocked(t, addr) == n })
}

// TestProxyBlocking runs blocking commands through the proxy: each
// blocked client on a dedicated backend connection, woken by another
// client's push, its later commands held until the reply.
func TestProxyBlocking(t *testing.T) {
	c := newTCluster(t, 2, 0, nil)
	p := c.startProxy(10 * time.Second)
	ids := c.shardIDs()
	node := c.primary(ids[0]).addr

	t.Run("timeouts", func(t *testing.T) {
		cl := tu.Dial(t, p.Addr())
		l, l2 := c.keyIn(ids[0], "bt"), c.keyIn(ids[0], "bt2-")
		z := c.keyIn(ids[1], "bz")
		start := time.Now()
		tu.Run(t, cl, []tu.Case{
			{[]string{"BLPOP", l, l2, "0.1"}, "(nil)"},
			{[]string{"BRPOP", l, "0.05"}, "(nil)"},
			{[]string{"BLMOVE", l, l2, "LEFT", "RIGHT", "0.05"}, "(nil)"},
			{[]string{"BRPOPLPUSH", l, l2, "0.05"}, "(nil)"},
			{[]string{"BZPOPMIN", z, "0.05"}, "(nil)"},
			{[]string{"BZPOPMAX", z, "0.05"}, "(nil)"},
			{[]string{"BLMPOP", "0.05", "1", l, "LEFT"}, "(nil)"},
			{[]string{"BZMPOP", "0.05", "1", z, "MIN"}, "(nil)"},
			{[]string{"ZADD", z, "1", "m1", "2", "m2"}, "(integer) 2"},
			{[]string{"BZPOPMAX", z, "0"}, `["` + z + `" "m2" "2"]`},
			{[]string{"RPUSH", l, "a", "b"}, "(integer) 2"},
			{[]string{"BLMOVE", l, l2, "LEFT", "RIGHT", "0"}, `"a"`},
			{[]string{"BLMPOP", "0", "2", "nokey", l, "RIGHT"}, "(error) " + "CROSSSLOT Keys in request don't hash to the same shard (the shoal proxy cannot run this command across shards)"},
			{[]string{"BLMPOP", "0", "1", l, "RIGHT"}, `["` + l + `" ["b"]]`},
		})
		if d := time.Since(start); d < 100*time.Millisecond {
			t.Errorf("timeouts returned after %v", d)
		}
		if r := cl.Do("BLPOP", l, c.keyIn(ids[1], "other"), "0"); !strings.HasPrefix(r, "(error) CROSSSLOT") {
			t.Errorf("BLPOP across shards: %s", r)
		}
		for _, bad := range [][]string{{"BLMPOP", "0", "0", "LEFT"}, {"BLPOP", l, "soon"}, {"BLPOP", l, "-1"}, {"BZMPOP", "0", "1", z, "SIDEWAYS"}} {
			if r := cl.Do(bad...); !strings.HasPrefix(r, "(error) ") {
				t.Errorf("%v: %s", bad, r)
			}
		}
	})

	t.Run("woken by another client, later commands held", func(t *testing.T) {
		l, k := c.keyIn(ids[0], "bw"), c.keyIn(ids[1], "after")
		a := tu.Dial(t, p.Addr())
		var buf []byte
		buf = resp.AppendCommand(buf, "BLPOP", l, "0")
		buf = resp.AppendCommand(buf, "SET", k, "after")
		buf = resp.AppendCommand(buf, "GET", k)
		a.Send(buf)
		waitBlocked(t, node, 1)
		b := tu.Dial(t, p.Addr())
		// The SET pipelined after the BLPOP has not run.
		tu.Run(t, b, []tu.Case{{[]string{"GET", k}, "(nil)"}, {[]string{"RPUSH", l, "x"}, "(integer) 1"}})
		for i, w := range []string{`["` + l + `" "x"]`, "OK", `"after"`} {
			r, err := a.Read()
			if err != nil || r.String() != w {
				t.Fatalf("reply %d: %v %v, want %s", i, r, err, w)
			}
		}
		waitBlocked(t, node, 0)
	})

	t.Run("many blocked clients at once", func(t *testing.T) {
		const n = 20
		var wg sync.WaitGroup
		errs := make(chan string, n)
		var keys []string
		for i := 0; i < n; i++ {
			keys = append(keys, c.keyIn(ids[0], "many"+strconv.Itoa(i)+"-"))
		}
		for i := 0; i < n; i++ {
			cl := tu.Dial(t, p.Addr())
			wg.Add(1)
			go func() {
				defer wg.Done()
				r, err := cl.DoReply("BRPOP", keys[i], "0")
				if err != nil || r.String() != `["`+keys[i]+`" "v`+strconv.Itoa(i)+`"]` {
					errs <- r.String()
				}
			}()
		}
		waitBlocked(t, node, n)
		b := tu.Dial(t, p.Addr())
		for i := n - 1; i >= 0; i-- { // the last blocked is served first
			tu.Run(t, b, []tu.Case{{[]string{"LPUSH", keys[i], "v" + strconv.Itoa(i)}, "(integer) 1"}})
		}
		wg.Wait()
		close(errs)
		for e := range errs {
			t.Error(e)
		}
		waitBlocked(t, node, 0)
	})

	t.Run("client gone while blocked", func(t *testing.T) {
		l := c.keyIn(ids[0], "gone")
		a := tu.Dial(t, p.Addr())
		a.Send(resp.AppendCommand(nil, "BLPOP", l, "0"))
		waitBlocked(t, node, 1)
		a.C.Close()
		waitBlocked(t, node, 0)
		b := tu.Dial(t, p.Addr())
		tu.Run(t, b, []tu.Case{
			{[]string{"RPUSH", l, "kept"}, "(integer) 1"},
			{[]string{"LRANGE", l, "0", "-1"}, `["kept"]`},
		})
	})

	t.Run("inside MULTI it does not block", func(t *testing.T) {
		l := c.keyIn(ids[1], "txb")
		cl := tu.Dial(t, p.Addr())
		tu.Run(t, cl, []tu.Case{
			{tu.C("MULTI"), "OK"},
			{[]string{"BLPOP", l, "0"}, "QUEUED"},
			{tu.C("EXEC"), "[(nil)]"},
		})
	})
}

// TestProxyBlockingFailover: a client blocked in BLPOP while its shard
// fails over gracefully is redirected (-MOVED from the demoted primary)
// and blocks again on the new primary, where a later push serves it.
func TestProxyBlockingFailover(t *testing.T) {
	c := newTCluster(t, 1, 1, nil)
	p := c.startProxy(10 * time.Second)
	id := c.shardIDs()[0]
	old := c.primary(id)
	l := c.keyIn(id, "fo")
	a := tu.Dial(t, p.Addr())
	a.Send(resp.AppendCommand(nil, "BLPOP", l, "0"))
	waitBlocked(t, old.addr, 1)
	ctx, cancel := contextWithTimeout(30 * time.Second)
	defer cancel()
	if _, err := c.client().Failover(ctx, id, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	nw := c.primary(id)
	if nw == old {
		t.Fatal("no new primary")
	}
	waitBlocked(t, nw.addr, 1)
	b := tu.Dial(t, p.Addr())
	tu.Run(t, b, []tu.Case{{[]string{"RPUSH", l, "x"}, "(integer) 1"}})
	r, err := a.Read()
	if err != nil || r.String() != `["`+l+`" "x"]` {
		t.Fatalf("BLPOP across the failover: %v %v", r, err)
	}
}
