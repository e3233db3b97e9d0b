package proxy_test

import (
	"strconv"
	"strings"
	"testing"
	"time"

	tu "shoal/internal/testutil"
)

// waitProxyPrimary waits until the proxy routes shard id to addr.
func waitProxyPrimary(t *testing.T, cl *tu.Conn, id int, addr string) {
	t.Helper()
	waitUntil(t, "the proxy to learn the new primary", func() bool {
		return strings.Contains(cl.Do("INFO"), "shard"+strconv.Itoa(id)+":primary="+addr+",")
	})
}

// TestProxyTxFailover: a transaction pinned to a primary that stops
// being primary before EXEC (a graceful failover, then a kill) gets a
// clear -EXECABORT at EXEC instead of a hang or a half-applied
// transaction, and the client goes on.
func TestProxyTxFailover(t *testing.T) {
	c := newTCluster(t, 1, 2, nil)
	p := c.startProxy(10 * time.Second)
	id := c.shardIDs()[0]
	k, w := c.keyIn(id, "txk"), c.keyIn(id, "txw")
	a := tu.Dial(t, p.Addr())
	info := tu.Dial(t, p.Addr())
	ctx, cancel := contextWithTimeout(60 * time.Second)
	defer cancel()

	t.Run("graceful failover inside MULTI", func(t *testing.T) {
		old := c.primary(id)
		tu.Run(t, a, []tu.Case{
			{[]string{"MULTI"}, "OK"},
			{[]string{"SET", k, "lost"}, "QUEUED"},
		})
		if _, err := c.client().Failover(ctx, id, 10*time.Second); err != nil {
			t.Fatal(err)
		}
		nw := c.primary(id)
		if nw == old {
			t.Fatal("no new primary")
		}
		waitProxyPrimary(t, info, id, nw.addr)
		if got := a.Do("EXEC"); !strings.HasPrefix(got, "(error) EXECABORT") || !strings.Contains(got, "failover") {
			t.Fatalf("EXEC after the failover: %s", got)
		}
		waitUntil(t, "the new primary to serve", func() bool {
			return !strings.HasPrefix(direct(t, nw.addr, "GET", k), "(error)")
		})
		if got := direct(t, nw.addr, "GET", k); got != "(nil)" {
			t.Fatalf("the discarded transaction wrote: %s", got)
		}
		tu.Run(t, a, []tu.Case{
			{[]string{"MULTI"}, "OK"},
			{[]string{"SET", k, "ok"}, "QUEUED"},
			{[]string{"EXEC"}, "[OK]"},
			{[]string{"GET", k}, `"ok"`},
		})
	})

	t.Run("primary killed after WATCH", func(t *testing.T) {
		old := c.primary(id)
		tu.Run(t, a, []tu.Case{{[]string{"WATCH", w}, "OK"}})
		old.srv.Close()
		waitUntil(t, "a new primary", func() bool {
			st, err := c.client().Status(ctx)
			return err == nil && len(st.Shards) == 1 && st.Shards[0].Primary != old.addr && st.Shards[0].Primary != ""
		})
		nw := c.primary(id)
		waitProxyPrimary(t, info, id, nw.addr)
		// The WATCH is gone with the node: the transaction cannot run.
		tu.Run(t, a, []tu.Case{
			{[]string{"MULTI"}, "OK"},
			{[]string{"SET", w, "x"}, "QUEUED"},
		})
		if got := a.Do("EXEC"); !strings.HasPrefix(got, "(error) EXECABORT") {
			t.Fatalf("EXEC after a lost WATCH: %s", got)
		}
		waitUntil(t, "the new primary to serve", func() bool {
			return !strings.HasPrefix(direct(t, nw.addr, "GET", w), "(error)")
		})
		if got := direct(t, nw.addr, "GET", w); got != "(nil)" {
			t.Fatalf("the aborted transaction wrote: %s", got)
		}
		tu.Run(t, a, []tu.Case{
			{[]string{"WATCH", w}, "OK"},
			{[]string{"MULTI"}, "OK"},
			{[]string{"SET", w, "y"}, "QUEUED"},
			{[]string{"EXEC"}, "[OK]"},
		})
	})
}
