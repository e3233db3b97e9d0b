package proxy_test

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"shoal/internal/proxy"
	tu "shoal/internal/testutil"
)

// commandsProcessed returns a node's total_commands_processed.
func commandsProcessed(t *testing.T, addr string) int {
	info := direct(t, addr, "INFO", "stats")
	i := strings.Index(info, "total_commands_processed:")
	if i < 0 {
		t.Fatalf("no total_commands_processed in %s", info)
	}
	n, _ := strconv.Atoi(strings.SplitN(info[i+len("total_commands_processed:"):], `\r`, 2)[0])
	return n
}

// replicaOf returns the replica of shard id (one replica per shard).
func (c *tcluster) replicaOf(id int) *tnode {
	st, err := c.client().Status(context.Background())
	if err != nil {
		c.t.Fatal(err)
	}
	for _, s := range st.Shards {
		if s.ID == id && len(s.ReplicaIDs) == 1 {
			for _, n := range st.Nodes {
				if n.ID == s.ReplicaIDs[0] {
					return c.byAddr(n.Addr)
				}
			}
		}
	}
	c.t.Fatalf("no single replica for shard %d", id)
	return nil
}

// TestProxyReadFromReplica: with --read-from replica-preferred reads go
// to the shard's replica (READONLY), writes to the primary, and reads
// fall back to the primary when the replica is gone.
func TestProxyReadFromReplica(t *testing.T) {
	c := newTCluster(t, 2, 1, nil)
	p := c.startProxyWith(func(cfg *proxy.Config) { cfg.RetryBudget = 10 * time.Second; cfg.ReadFrom = "replica-preferred" })
	ids := c.shardIDs()
	k, k2 := c.keyIn(ids[0], "rr"), c.keyIn(ids[1], "rr")
	prim, repl := c.primary(ids[0]), c.replicaOf(ids[0])
	cl := tu.Dial(t, p.Addr())
	tu.Run(t, cl, []tu.Case{{[]string{"SET", k, "v"}, "OK"}, {[]string{"SET", k2, "w"}, "OK"}})
	// Both shards' replicas (MGET reads k2 from the other shard's).
	waitUntil(t, "the replicas have the writes", func() bool { return cl.Do("MGET", k, k2) == `["v" "w"]` })
	before, pbefore := commandsProcessed(t, repl.addr), commandsProcessed(t, prim.addr)
	for i := 0; i < 50; i++ {
		tu.Run(t, cl, []tu.Case{{[]string{"GET", k}, `"v"`}, {[]string{"MGET", k, k2}, `["v" "w"]`}})
	}
	if d := commandsProcessed(t, repl.addr) - before; d < 100 {
		t.Errorf("the replica ran %d commands for 100 reads", d)
	}
	if d := commandsProcessed(t, prim.addr) - pbefore; d >= 100 {
		t.Errorf("the primary ran %d commands for reads meant for the replica", d)
	}
	tu.Run(t, cl, []tu.Case{{[]string{"INCR", k + "n"}, "(integer) 1"}})
	// The replica goes away: reads retry on the primary at once.
	repl.srv.Close()
	for i := 0; i < 20; i++ {
		tu.Run(t, cl, []tu.Case{{[]string{"GET", k}, `"v"`}})
	}
}
