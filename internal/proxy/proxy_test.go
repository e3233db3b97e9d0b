package proxy_test

import (
	"math/rand"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"shoal/internal/resp"
	tu "shoal/internal/testutil"
)

// TestProxyRESP runs the RESP routing classes against a 3-shard cluster.
func TestProxyRESP(t *testing.T) {
	c := newTCluster(t, 3, 0, nil)
	p := c.startProxy(10 * time.Second)
	ids := c.shardIDs()
	if len(ids) != 3 {
		t.Fatalf("shards %v", ids)
	}

	t.Run("single key on every shard", func(t *testing.T) {
		cl := tu.Dial(t, p.Addr())
		for _, id := range ids {
			k := c.keyIn(id, "single")
			tu.Run(t, cl, []tu.Case{
				{[]string{"SET", k, "v" + strconv.Itoa(id)}, "OK"},
				{[]string{"GET", k}, strconv.Quote("v" + strconv.Itoa(id))},
				{[]string{"INCR", k + "n"}, "(integer) 1"},
			})
			// It landed on the owning primary.
			if got := direct(t, c.primary(id).addr, "GET", k); got != strconv.Quote("v"+strconv.Itoa(id)) {
				t.Errorf("shard %d primary has %s", id, got)
			}
		}
	})

	t.Run("multi-key commands across shards", func(t *testing.T) {
		cl := tu.Dial(t, p.Addr())
		var keys []string
		for i := 0; i < 4; i++ {
			for _, id := range ids {
				keys = append(keys, c.keyIn(id, "mk"+strconv.Itoa(i)+"-"))
			}
		}
		mset := []string{"MSET"}
		want := []string{}
		for i, k := range keys {
			mset = append(mset, k, "val"+strconv.Itoa(i))
			want = append(want, strconv.Quote("val"+strconv.Itoa(i)))
		}
		tu.Run(t, cl, []tu.Case{{mset, "OK"}})
		mget := append([]string{"MGET"}, keys...)
		mget = append(mget, "missing-key")
		tu.Run(t, cl, []tu.Case{
			{mget, "[" + strings.Join(want, " ") + " (nil)]"},
			{append([]string{"EXISTS"}, append(keys, keys[0], "nope")...), "(integer) " + strconv.Itoa(len(keys)+1)},
			{append([]string{"TOUCH"}, keys...), "(integer) " + strconv.Itoa(len(keys))},
			{append([]string{"UNLINK"}, keys[:3]...), "(integer) 3"},
			{append([]string{"DEL"}, keys...), "(integer) " + strconv.Itoa(len(keys)-3)},
			{mget[:4], "[(nil) (nil) (nil)]"},
		})
		// All-or-nothing commands across shards: an error; on one shard: forwarded.
		a, b := c.keyIn(ids[0], "nx"), c.keyIn(ids[1], "nx")
		a2 := c.keyIn(ids[0], "nx2-")
		r := cl.Do("MSETNX", a, "1", b, "2")
		if !strings.HasPrefix(r, "(error) CROSSSLOT") {
			t.Errorf("MSETNX across shards: %s", r)
		}
		tu.Run(t, cl, []tu.Case{
			{[]string{"MSETNX", a, "1", a2, "2"}, "(integer) 1"},
			{[]string{"MGET", a, b, a2}, `["1" (nil) "2"]`},
		})
		if r := cl.Do("RENAME", a, b); !strings.HasPrefix(r, "(error) CROSSSLOT") {
			t.Errorf("RENAME across shards: %s", r)
		}
	})

	t.Run("pipeline order across shards", func(t *testing.T) {
		cl := tu.Dial(t, p.Addr())
		rng := rand.New(rand.NewSource(1))
		var buf []byte
		var want []string
		model := map[string]int{}
		for i := 0; i < 1000; i++ {
			k := c.keyIn(ids[rng.Intn(3)], "pl"+strconv.Itoa(rng.Intn(20))+"-")
			switch rng.Intn(4) {
			case 0:
				buf = resp.AppendCommand(buf, "SET", k, strconv.Itoa(i))
				model[k] = i
				want = append(want, "OK")
			case 1:
				buf = resp.AppendCommand(buf, "GET", k)
				if v, ok := model[k]; ok {
					want = append(want, strconv.Quote(strconv.Itoa(v)))
				} else {
					want = append(want, "(nil)")
				}
			case 2:
				buf = resp.AppendCommand(buf, "PING", "p"+strconv.Itoa(i))
				want = append(want, strconv.Quote("p"+strconv.Itoa(i)))
			case 3:
				k2 := c.keyIn(ids[rng.Intn(3)], "pl"+strconv.Itoa(rng.Intn(20))+"-")
				buf = resp.AppendCommand(buf, "MGET", k, k2)
				w := "["
				for j, kk := range []string{k, k2} {
					if j > 0 {
						w += " "
					}
					if v, ok := model[kk]; ok {
						w += strconv.Quote(strconv.Itoa(v))
					} else {
						w += "(nil)"
					}
				}
				want = append(want, w+"]")
			}
		}
		cl.Send(buf)
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

	t.Run("keyless commands", func(t *testing.T) {
		cl := tu.Dial(t, p.Addr())
		tu.Run(t, cl, []tu.Case{
			{tu.C("FLUSHALL"), "OK"},
			{tu.C("PING"), "PONG"},
			{tu.C("PING hi"), `"hi"`},
			{tu.C("ECHO hello"), `"hello"`},
			{tu.C("SELECT 0"), "OK"},
			{tu.C("CLIENT GETNAME"), "(nil)"},
			{tu.C("CLIENT SETNAME app1"), "OK"},
			{tu.C("CLIENT GETNAME"), `"app1"`},
			{tu.C("DBSIZE"), "(integer) 0"},
			{tu.C("CONFIG GET save"), "(error) ERR 'config' is not supported by the shoal proxy"},
		})
		if r := cl.Do("SELECT", "1"); !strings.HasPrefix(r, "(error) ERR SELECT") {
			t.Errorf("SELECT 1: %s", r)
		}
		if r := cl.Do("CLIENT", "ID"); !strings.HasPrefix(r, "(integer) ") {
			t.Errorf("CLIENT ID: %s", r)
		}
		if r := cl.Do("TIME"); !strings.HasPrefix(r, "[\"") {
			t.Errorf("TIME: %s", r)
		}
		if r := cl.Do("COMMAND", "COUNT"); !strings.HasPrefix(r, "(integer) ") {
			t.Errorf("COMMAND COUNT: %s", r)
		}
		if r := cl.Do("INFO"); !strings.Contains(r, "cluster_shards:3") || !strings.Contains(r, "connected_clients:") {
			t.Errorf("INFO: %s", r)
		}
		var all []string
		for i := 0; i < 60; i++ {
			k := "sk" + strconv.Itoa(i)
			all = append(all, k)
			cl.Do("SET", k, "x")
		}
		tu.Run(t, cl, []tu.Case{{tu.C("DBSIZE"), "(integer) 60"}})
		sort.Strings(all)
		r, err := cl.DoReply("KEYS", "sk*")
		if err != nil {
			t.Fatal(err)
		}
		if got := replyStrings(r); strings.Join(got, ",") != strings.Join(all, ",") {
			t.Errorf("KEYS: %v", got)
		}
		// SCAN with a small COUNT walks every shard exactly once.
		var seen []string
		cur := "0"
		for n := 0; ; n++ {
			if n > 1000 {
				t.Fatal("SCAN does not end")
			}
			r, err := cl.DoReply("SCAN", cur, "MATCH", "sk*", "COUNT", "7")
			if err != nil || len(r.Elems) != 2 {
				t.Fatalf("SCAN: %v %v", r, err)
			}
			seen = append(seen, replyStrings(r.Elems[1])...)
			cur = r.Elems[0].Str
			if cur == "0" {
				break
			}
		}
		sort.Strings(seen)
		if strings.Join(seen, ",") != strings.Join(all, ",") {
			t.Errorf("SCAN saw %v", seen)
		}
		tu.Run(t, cl, []tu.Case{{tu.C("FLUSHALL"), "OK"}, {tu.C("DBSIZE"), "(integer) 0"}, {tu.C("QUIT"), "OK"}})
		if !cl.Closed(5 * time.Second) {
			t.Error("QUIT did not close the connection")
		}
	})

	t.Run("bad input", func(t *testing.T) {
		cl := tu.Dial(t, p.Addr())
		cl.Send([]byte("*1\r\n$x\r\n"))
		r, err := cl.Read()
		if err != nil || !strings.HasPrefix(r.String(), "(error) ERR Protocol error") {
			t.Errorf("malformed frame: %v %v", r, err)
		}
		if !cl.Closed(5 * time.Second) {
			t.Error("not closed after a protocol error")
		}
		cl = tu.Dial(t, p.Addr())
		tu.Run(t, cl, []tu.Case{
			{tu.C("NOSUCHCMD a"), "(error) ERR unknown command 'NOSUCHCMD'"},
			{tu.C("GET"), "(error) ERR wrong number of arguments for 'get' command"},
			{tu.C("PING"), "PONG"},
		})
	})
}

func replyStrings(r resp.Reply) []string {
	var out []string
	for _, e := range r.Elems {
		out = append(out, e.Str)
	}
	sort.Strings(out)
	return out
}
