package server_test

import (
	"strings"
	"sync"
	"testing"
	"time"

	"shoal/internal/resp"
	tu "shoal/internal/testutil"
)

// cases turns "command" / "want" pairs into table cases.
func cases(pairs ...string) []tu.Case {
	out := make([]tu.Case, 0, len(pairs)/2)
	for i := 0; i+1 < len(pairs); i += 2 {
		out = append(out, tu.Case{Cmd: tu.C(pairs[i]), Want: pairs[i+1]})
	}
	return out
}

// rawFirstLine sends a command and returns the first line of the raw
// reply, to tell *-1 from $-1 from _ (they all render as (nil)). Use it
// only for replies that are one line.
func rawFirstLine(t *testing.T, c *tu.Conn, args ...string) string {
	t.Helper()
	c.Send(resp.AppendCommand(nil, args...))
	c.C.SetReadDeadline(time.Now().Add(10 * time.Second))
	defer c.C.SetReadDeadline(time.Time{})
	line, err := c.R.ReadString('\n')
	if err != nil {
		t.Fatalf("%q: %v", args, err)
	}
	return strings.TrimRight(line, "\r\n")
}

func TestListCommands(t *testing.T) {
	n := tu.StartServer(t)
	for _, proto := range []string{"2", "3"} {
		t.Run("resp"+proto, func(t *testing.T) {
			c := tu.Dial(t, n.Addr)
			c.Do("HELLO", proto)
			c.Do("FLUSHALL")
			tu.Run(t, c, cases(
				// push / len / range
				"LPUSH l a b c", "(integer) 3",
				"RPUSH l d e", "(integer) 5",
				"LRANGE l 0 -1", `["c" "b" "a" "d" "e"]`,
				"LRANGE l 1 2", `["b" "a"]`,
				"LRANGE l -2 100", `["d" "e"]`,
				"LRANGE l 3 1", `[]`,
				"LRANGE l 10 20", `[]`,
				"LRANGE l -100 0", `["c"]`,
				"LRANGE nokey 0 -1", `[]`,
				"LRANGE l x 1", "(error) ERR value is not an integer or out of range",
				"LRANGE l 0 y", "(error) ERR value is not an integer or out of range",
				"LLEN l", "(integer) 5",
				"LLEN nokey", "(integer) 0",
				"LPUSHX nokey a", "(integer) 0",
				"RPUSHX nokey a", "(integer) 0",
				"EXISTS nokey", "(integer) 0",
				"LPUSHX l z", "(integer) 6",
				"RPUSHX l y x", "(integer) 8",
				"LRANGE l 0 -1", `["z" "c" "b" "a" "d" "e" "y" "x"]`,
				"LPUSH l", "(error) ERR wrong number of arguments for 'lpush' command",
				"TYPE l", "list",
				// pops
				"LPOP l", `"z"`,
				"RPOP l", `"x"`,
				"LPOP l 2", `["c" "b"]`,
				"RPOP l 2", `["y" "e"]`,
				"LPOP l 0", `[]`,
				"LPOP nokey", "(nil)",
				"LPOP nokey 0", "(nil)",
				"LPOP nokey 3", "(nil)",
				"LPOP l -1", "(error) ERR value is out of range, must be positive",
				"LPOP l abc", "(error) ERR value is out of range, must be positive",
				"LPOP l 1 2", "(error) ERR wrong number of arguments for 'lpop' command",
				"RPOP l 10", `["d" "a"]`,
				"EXISTS l", "(integer) 0",
				"RPUSH l a", "(integer) 1",
				"RPOP l", `"a"`,
				"EXISTS l", "(integer) 0",
				// index / set
				"RPUSH l a b c", "(integer) 3",
				"LINDEX l 0", `"a"`,
				"LINDEX l -1", `"c"`,
				"LINDEX l 3", "(nil)",
				"LINDEX l -4", "(nil)",
				"LINDEX l x", "(error) ERR value is not an integer or out of range",
				"LINDEX nokey x", "(nil)",
				"LSET l 1 B", "OK",
				"LSET l -1 C", "OK",
				"LRANGE l 0 -1", `["a" "B" "C"]`,
				"LSET l 3 x", "(error) ERR index out of range",
				"LSET l -4 x", "(error) ERR index out of range",
				"LSET l x x", "(error) ERR value is not an integer or out of range",
				"LSET nokey 0 x", "(error) ERR no such key",
				// insert
				"LINSERT l BEFORE B x", "(integer) 4",
				"LINSERT l after C y", "(integer) 5",
				"LINSERT l AFTER a z", "(integer) 6",
				"LRANGE l 0 -1", `["a" "z" "x" "B" "C" "y"]`,
				"LINSERT l BEFORE nopivot v", "(integer) -1",
				"LINSERT nokey BEFORE a v", "(integer) 0",
				"EXISTS nokey", "(integer) 0",
				"LINSERT l MIDDLE a v", "(error) ERR syntax error",
				// rem
				"DEL l", "(integer) 1",
				"RPUSH l a b a c a b a", "(integer) 7",
				"LREM l 2 a", "(integer) 2",
				"LRANGE l 0 -1", `["b" "c" "a" "b" "a"]`,
				"LREM l -1 b", "(integer) 1",
				"LRANGE l 0 -1", `["b" "c" "a" "a"]`,
				"LREM l 0 a", "(integer) 2",
				"LREM l 0 zz", "(integer) 0",
				"LREM nokey 0 a", "(integer) 0",
				"LREM l x a", "(error) ERR value is not an integer or out of range",
				"LREM l 0 b", "(integer) 1",
				"LREM l 0 c", "(integer) 1",
				"EXISTS l", "(integer) 0",
				// trim
				"RPUSH l a b c d e", "(integer) 5",
				"LTRIM l 1 -2", "OK",
				"LRANGE l 0 -1", `["b" "c" "d"]`,
				"LTRIM l -100 100", "OK",
				"LLEN l", "(integer) 3",
				"LTRIM l 1 1", "OK",
				"LRANGE l 0 -1", `["c"]`,
				"LTRIM l x 1", "(error) ERR value is not an integer or out of range",
				"LTRIM nokey 0 1", "OK",
				"LTRIM l 5 10", "OK",
				"EXISTS l", "(integer) 0",
				"RPUSH l a b", "(integer) 2",
				"LTRIM l 1 0", "OK",
				"EXISTS l", "(integer) 0",
				// lpos
				"RPUSH l a b c 1 2 3 c c", "(integer) 8",
				"LPOS l c", "(integer) 2",
				"LPOS l c RANK 2", "(integer) 6",
				"LPOS l c RANK -1", "(integer) 7",
				"LPOS l c RANK -3", "(integer) 2",
				"LPOS l c RANK 4", "(nil)",
				"LPOS l c COUNT 0", "[(integer) 2 (integer) 6 (integer) 7]",
				"LPOS l c COUNT 2", "[(integer) 2 (integer) 6]",
				"LPOS l c COUNT 2 RANK -1", "[(integer) 7 (integer) 6]",
				"LPOS l c COUNT 0 MAXLEN 7", "[(integer) 2 (integer) 6]",
				"LPOS l c RANK -1 MAXLEN 1 COUNT 0", "[(integer) 7]",
				"LPOS l c MAXLEN 2", "(nil)",
				"LPOS l zz", "(nil)",
				"LPOS l zz COUNT 1", "[]",
				"LPOS nokey a", "(nil)",
				"LPOS nokey a COUNT 1", "[]",
				"LPOS l c RANK 0", "(error) ERR RANK can't be zero: use 1 to start from the first match, 2 from the second ... or use negative to start from the end of the list",
				"LPOS l c RANK x", "(error) ERR value is not an integer or out of range",
				"LPOS l c COUNT -1", "(error) ERR COUNT can't be negative",
				"LPOS l c COUNT x", "(error) ERR COUNT can't be negative",
				"LPOS l c MAXLEN -1", "(error) ERR MAXLEN can't be negative",
				"LPOS l c RANK", "(error) ERR syntax error",
				"LPOS l c FOO 1", "(error) ERR syntax error",
				// lmove / rpoplpush
				"DEL l", "(integer) 1",
				"RPUSH l a b c", "(integer) 3",
				"LMOVE l d LEFT RIGHT", `"a"`,
				"LMOVE l d RIGHT LEFT", `"c"`,
				"LRANGE d 0 -1", `["c" "a"]`,
				"RPOPLPUSH l d", `"b"`,
				"EXISTS l", "(integer) 0",
				"LRANGE d 0 -1", `["b" "c" "a"]`,
				"LMOVE d d LEFT RIGHT", `"b"`,
				"LRANGE d 0 -1", `["c" "a" "b"]`,
				"RPOPLPUSH d d", `"b"`,
				"LRANGE d 0 -1", `["b" "c" "a"]`,
				"LMOVE nokey d LEFT LEFT", "(nil)",
				"RPOPLPUSH nokey d", "(nil)",
				"LMOVE d x UP LEFT", "(error) ERR syntax error",
				"LMOVE d x LEFT DOWN", "(error) ERR syntax error",
				// lmpop
				"LMPOP 2 nokey d LEFT", `["d" ["b"]]`,
				"LMPOP 1 d RIGHT COUNT 5", `["d" ["a" "c"]]`,
				"LMPOP 1 d LEFT", "(nil)",
				"LMPOP 0 d LEFT", "(error) ERR numkeys should be greater than 0",
				"LMPOP x d LEFT", "(error) ERR numkeys should be greater than 0",
				"LMPOP 2 d LEFT", "(error) ERR syntax error",
				"LMPOP 1 d MIDDLE", "(error) ERR syntax error",
				"LMPOP 1 d LEFT COUNT 0", "(error) ERR count should be greater than 0",
				"LMPOP 1 d LEFT COUNT x", "(error) ERR count should be greater than 0",
				"LMPOP 1 d LEFT COUNT 1 COUNT 1", "(error) ERR syntax error",
				"LMPOP 1 d LEFT FOO", "(error) ERR syntax error",
				// blocking commands that need not block
				"RPUSH l a b c", "(integer) 3",
				"BLPOP nokey l 0", `["l" "a"]`,
				"BRPOP l 0.5", `["l" "c"]`,
				"BLMOVE l d LEFT LEFT 0", `"b"`,
				"RPUSH l a b c", "(integer) 3",
				"BRPOPLPUSH l d 0", `"c"`,
				"BLMPOP 0 2 nokey l LEFT COUNT 9", `["l" ["a" "b"]]`,
				"BLPOP l x", "(error) ERR timeout is not a float or out of range",
				"BLPOP l -1", "(error) ERR timeout is negative",
				"BLMOVE l d LEFT LEFT x", "(error) ERR timeout is not a float or out of range",
				"BLMOVE l d UP LEFT 0", "(error) ERR syntax error",
				"BLMPOP -1 1 l LEFT", "(error) ERR timeout is negative",
				"BLMPOP 0 0 l LEFT", "(error) ERR numkeys should be greater than 0",
				"BLPOP l 0.01", "(nil)",
				"BLMPOP 0.01 1 l LEFT", "(nil)",
				"BLMOVE l d LEFT LEFT 0.01", "(nil)",
				// wrong types
				"SET s v", "OK",
				"LPUSH s a", wrongType,
				"LPUSHX s a", wrongType,
				"LPOP s", wrongType,
				"LLEN s", wrongType,
				"LRANGE s 0 1", wrongType,
				"LINDEX s 0", wrongType,
				"LSET s 0 a", wrongType,
				"LINSERT s BEFORE a b", wrongType,
				"LREM s 0 a", wrongType,
				"LTRIM s 0 1", wrongType,
				"LPOS s a", wrongType,
				"LMOVE s d LEFT LEFT", wrongType,
				"LMOVE d s LEFT LEFT", wrongType,
				"LMOVE nokey s LEFT LEFT", "(nil)",
				"LMPOP 2 nokey s LEFT", wrongType,
				"BLPOP s 0", wrongType,
				"BLPOP d s 0", `["d" "c"]`,
				"BLMOVE s d LEFT LEFT 0", wrongType,
				"BLMPOP 0 1 s LEFT", wrongType,
				"LRANGE d 0 -1", `["b"]`,
			))
		})
	}
}

// TestListNullShapes checks the wire form of the replies that render as
// (nil): Redis 7 uses null arrays for some and null bulks for others.
func TestListNullShapes(t *testing.T) {
	n := tu.StartServer(t)
	for _, tc := range []struct {
		proto string
		arr   string // null array
		bulk  string // null bulk
	}{{"2", "*-1", "$-1"}, {"3", "_", "_"}} {
		t.Run("resp"+tc.proto, func(t *testing.T) {
			c := tu.Dial(t, n.Addr)
			c.Do("HELLO", tc.proto)
			c.Do("FLUSHALL")
			c.Do("RPUSH", "l", "a")
			for _, x := range []struct {
				cmd  string
				want string
			}{
				{"LPOP nokey", tc.bulk},
				{"LPOP nokey 0", tc.arr},
				{"LPOP nokey 2", tc.arr},
				{"LPOP l 0", "*0"},
				{"RPOP nokey 1", tc.arr},
				{"LINDEX nokey 0", tc.bulk},
				{"LINDEX l 5", tc.bulk},
				{"LPOS nokey a", tc.bulk},
				{"LPOS l zz", tc.bulk},
				{"LPOS l zz COUNT 1", "*0"},
				{"LMOVE nokey d LEFT LEFT", tc.bulk},
				{"LMPOP 1 nokey LEFT", tc.arr},
				{"BLPOP nokey 0.01", tc.arr},
				{"BRPOP nokey 0.01", tc.arr},
				{"BLMPOP 0.01 1 nokey LEFT", tc.arr},
				{"BLMOVE nokey d LEFT LEFT 0.01", tc.arr},
				{"BRPOPLPUSH nokey d 0.01", tc.arr},
			} {
				if got := rawFirstLine(t, c, tu.C(x.cmd)...); got != x.want {
					t.Errorf("%s: got %q want %q", x.cmd, got, x.want)
				}
			}
			// Inside MULTI blocking commands do not block: they reply as
			// on timeout, except BLMOVE/BRPOPLPUSH which give a null bulk.
			c.Do("MULTI")
			for _, cmd := range []string{"BLPOP nokey 0", "BLMOVE nokey d LEFT LEFT 0", "BRPOPLPUSH nokey d 0", "BLMPOP 0 1 nokey LEFT"} {
				c.Do(tu.C(cmd)...)
			}
			c.Send(resp.AppendCommand(nil, "EXEC"))
			var lines []string
			for range 5 {
				line, err := c.R.ReadString('\n')
				if err != nil {
					t.Fatal(err)
				}
				lines = append(lines, strings.TrimRight(line, "\r\n"))
			}
			want := []string{"*4", tc.arr, tc.bulk, tc.bulk, tc.arr}
			if strings.Join(lines, " ") != strings.Join(want, " ") {
				t.Errorf("EXEC: got %q want %q", lines, want)
			}
		})
	}
}

// waitBlocked waits until exactly n clients of node are blocked.
func waitBlocked(t *testing.T, node *tu.Node, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for node.Srv.BlockedClients() != n {
		if time.Now().After(deadline) {
			t.Fatalf("blocked clients: %d, want %d", node.Srv.BlockedClients(), n)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestListBlocking(t *testing.T) {
	n := tu.StartServer(t)
	for _, proto := range []string{"2", "3"} {
		t.Run("resp"+proto, func(t *testing.T) {
			ctl := tu.Dial(t, n.Addr)
			ctl.Do("FLUSHALL")
			dial := func() *tu.Conn {
				c := tu.Dial(t, n.Addr)
				c.Do("HELLO", proto)
				return c
			}

			t.Run("blpop woken by lpush", func(t *testing.T) {
				b := dial()
				b.Send(resp.AppendCommand(nil, "BLPOP", "q1", "0"))
				waitBlocked(t, n, 1)
				if got := ctl.Do("LPUSH", "q1", "a", "b", "c"); got != "(integer) 3" {
					t.Fatalf("LPUSH: %s", got)
				}
				r, err := b.Read()
				if err != nil || r.String() != `["q1" "c"]` {
					t.Fatalf("BLPOP: %v %v", r, err)
				}
				if got := ctl.Do("LRANGE", "q1", "0", "-1"); got != `["b" "a"]` {
					t.Fatalf("after serve: %s", got)
				}
				ctl.Do("DEL", "q1")
			})

			t.Run("timeout", func(t *testing.T) {
				b := dial()
				start := time.Now()
				if got := b.Do("BRPOP", "q2", "0.05"); got != "(nil)" {
					t.Fatalf("BRPOP: %s", got)
				}
				if time.Since(start) < 50*time.Millisecond {
					t.Fatalf("returned after %v", time.Since(start))
				}
			})

			t.Run("multiple keys", func(t *testing.T) {
				b := dial()
				b.Send(resp.AppendCommand(nil, "BRPOP", "k1", "k2", "k3", "0"))
				waitBlocked(t, n, 1)
				ctl.Do("RPUSH", "k2", "x", "y")
				r, err := b.Read()
				if err != nil || r.String() != `["k2" "y"]` {
					t.Fatalf("BRPOP: %v %v", r, err)
				}
				ctl.Do("DEL", "k2")
			})

			t.Run("blmpop woken", func(t *testing.T) {
				b := dial()
				b.Send(resp.AppendCommand(nil, "BLMPOP", "0", "2", "m1", "m2", "RIGHT", "COUNT", "2"))
				waitBlocked(t, n, 1)
				ctl.Do("RPUSH", "m2", "a", "b", "c")
				r, err := b.Read()
				if err != nil || r.String() != `["m2" ["c" "b"]]` {
					t.Fatalf("BLMPOP: %v %v", r, err)
				}
				ctl.Do("DEL", "m2")
			})

			t.Run("blmove woken", func(t *testing.T) {
				b := dial()
				b.Send(resp.AppendCommand(nil, "BLMOVE", "src", "dst", "RIGHT", "LEFT", "0"))
				waitBlocked(t, n, 1)
				ctl.Do("RPUSH", "src", "a", "b")
				r, err := b.Read()
				if err != nil || r.String() != `"b"` {
					t.Fatalf("BLMOVE: %v %v", r, err)
				}
				if got := ctl.Do("LRANGE", "dst", "0", "-1"); got != `["b"]` {
					t.Fatalf("dst: %s", got)
				}
				if got := ctl.Do("LRANGE", "src", "0", "-1"); got != `["a"]` {
					t.Fatalf("src: %s", got)
				}
				ctl.Do("DEL", "src", "dst")
			})

			t.Run("blmove feeds a blpop on its destination", func(t *testing.T) {
				b1, b2 := dial(), dial()
				b2.Send(resp.AppendCommand(nil, "BLPOP", "dst", "0"))
				waitBlocked(t, n, 1)
				b1.Send(resp.AppendCommand(nil, "BRPOPLPUSH", "src", "dst", "0"))
				waitBlocked(t, n, 2)
				ctl.Do("RPUSH", "src", "v")
				if r, err := b1.Read(); err != nil || r.String() != `"v"` {
					t.Fatalf("BRPOPLPUSH: %v %v", r, err)
				}
				if r, err := b2.Read(); err != nil || r.String() != `["dst" "v"]` {
					t.Fatalf("BLPOP: %v %v", r, err)
				}
				if got := ctl.Do("EXISTS", "src", "dst"); got != "(integer) 0" {
					t.Fatalf("keys left: %s", got)
				}
			})

			t.Run("fifo", func(t *testing.T) {
				for _, cmd := range [][]string{
					{"BLPOP", "f", "0"},
					{"BLMOVE", "f", "fdst", "LEFT", "LEFT", "0"},
				} {
					var bs []*tu.Conn
					for i := range 3 {
						b := dial()
						b.Send(resp.AppendCommand(nil, cmd...))
						waitBlocked(t, n, i+1)
						bs = append(bs, b)
					}
					ctl.Do("RPUSH", "f", "1", "2", "3")
					for i, b := range bs {
						r, err := b.Read()
						if err != nil {
							t.Fatal(err)
						}
						got := r.String()
						if want := string(rune('1' + i)); !strings.Contains(got, `"`+want+`"`) {
							t.Errorf("%s client %d got %s, want element %s", cmd[0], i, got, want)
						}
					}
					ctl.Do("DEL", "f", "fdst")
				}
			})

			t.Run("closed while blocked", func(t *testing.T) {
				b := dial()
				b.Send(resp.AppendCommand(nil, "BLPOP", "cq", "0"))
				waitBlocked(t, n, 1)
				b.C.Close()
				waitBlocked(t, n, 0)
				b2 := dial()
				b2.Send(resp.AppendCommand(nil, "BLPOP", "cq", "0"))
				waitBlocked(t, n, 1)
				ctl.Do("RPUSH", "cq", "x")
				if r, err := b2.Read(); err != nil || r.String() != `["cq" "x"]` {
					t.Fatalf("BLPOP: %v %v", r, err)
				}
				// A closed BLMOVE waiter must not keep the key from others.
				b3 := dial()
				b3.Send(resp.AppendCommand(nil, "BLMOVE", "cq", "cd", "LEFT", "LEFT", "0"))
				waitBlocked(t, n, 1)
				b3.C.Close()
				waitBlocked(t, n, 0)
				ctl.Do("RPUSH", "cq", "y")
				if got := ctl.Do("LRANGE", "cq", "0", "-1"); got != `["y"]` {
					t.Fatalf("cq: %s", got)
				}
				ctl.Do("DEL", "cq", "cd")
			})

			t.Run("pipelined command runs after unblocking", func(t *testing.T) {
				b := dial()
				var buf []byte
				buf = resp.AppendCommand(buf, "BLPOP", "pq", "0")
				buf = resp.AppendCommand(buf, "LLEN", "pq")
				buf = resp.AppendCommand(buf, "PING")
				b.Send(buf)
				waitBlocked(t, n, 1)
				ctl.Do("RPUSH", "pq", "a", "b")
				for _, want := range []string{`["pq" "a"]`, "(integer) 1", "PONG"} {
					r, err := b.Read()
					if err != nil || r.String() != want {
						t.Fatalf("got %v %v, want %s", r, err, want)
					}
				}
				ctl.Do("DEL", "pq")
			})

			t.Run("wrong type pushed then list", func(t *testing.T) {
				b := dial()
				b.Send(resp.AppendCommand(nil, "BLPOP", "wq", "0"))
				waitBlocked(t, n, 1)
				ctl.Do("SET", "wq", "str")
				ctl.Do("DEL", "wq")
				ctl.Do("RPUSH", "wq", "z")
				if r, err := b.Read(); err != nil || r.String() != `["wq" "z"]` {
					t.Fatalf("BLPOP: %v %v", r, err)
				}
			})
		})
	}
}

// TestListBlockingConcurrent pushes and pops from many clients at once
// (run with -race): every pushed element is popped exactly once.
func TestListBlockingConcurrent(t *testing.T) {
	n := tu.StartServer(t)
	const poppers, each = 8, 50
	var wg sync.WaitGroup
	got := make(chan string, poppers*each)
	for range poppers {
		c := tu.Dial(t, n.Addr)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				r, err := c.DoReply("BLPOP", "cc1", "cc2", "5")
				if err != nil || len(r.Elems) != 2 {
					t.Errorf("BLPOP: %v %v", r, err)
					return
				}
				got <- r.Elems[1].Str
			}
		}()
	}
	for p := range 4 {
		c := tu.Dial(t, n.Addr)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range poppers * each / 4 {
				key := "cc1"
				if i%2 == 1 {
					key = "cc2"
				}
				if _, err := c.DoReply("RPUSH", key, string(rune('a'+p))+"-"+strings.Repeat("x", i%3)+string(rune(i))); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(got)
	seen := map[string]int{}
	for v := range got {
		seen[v]++
	}
	total := 0
	for v, k := range seen {
		if k != 1 {
			t.Errorf("%q popped %d times", v, k)
		}
		total += k
	}
	if total != poppers*each {
		t.Errorf("popped %d, want %d", total, poppers*each)
	}
}

func TestExecServesBlockedClientsAfterTransaction(t *testing.T) {
	n := tu.StartServer(t)
	blocked := tu.Dial(t, n.Addr)
	c := tu.Dial(t, n.Addr)
	blocked.Send(resp.AppendCommand(nil, "BLPOP", "q", "0"))
	waitBlocked(t, n, 1)
	tu.Run(t, c, []tu.Case{
		{tu.C("MULTI"), "OK"},
		{tu.C("RPUSH q a b"), "QUEUED"},
		{tu.C("LPOP q"), "QUEUED"},
		{tu.C("EXEC"), `[(integer) 2 "a"]`},
	})
	r, err := blocked.Read()
	if err != nil || r.String() != `["q" "b"]` {
		t.Fatalf("blocked client got %v %v, want [q b]", r, err)
	}
}
