package server_test

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"testing"

	tu "shoal/internal/testutil"
)

func TestSets(t *testing.T) {
	n := tu.StartServer(t)
	forProtocols(t, n.Addr, func(t *testing.T, c *tu.Conn, r3 bool) {
		set := func(elems string) string { return pick(r3, "["+elems+"]", "("+elems+")") }
		runSteps(t, c, [][2]string{
			{"SET str x", "OK"},
			// SADD / SREM / SCARD / SISMEMBER / SMISMEMBER / SMEMBERS
			{"SADD s a b c a", "(integer) 3"},
			{"SADD s c d", "(integer) 1"},
			{"SADD str a", wrongType},
			{"TYPE s", "set"},
			{"SCARD s", "(integer) 4"},
			{"SCARD nokey", "(integer) 0"},
			{"SCARD str", wrongType},
			{"SISMEMBER s a", "(integer) 1"},
			{"SISMEMBER s z", "(integer) 0"},
			{"SISMEMBER nokey a", "(integer) 0"},
			{"SISMEMBER str a", wrongType},
			{"SMISMEMBER s a z d", "[(integer) 1 (integer) 0 (integer) 1]"},
			{"SMISMEMBER nokey a", "[(integer) 0]"},
			{"SMISMEMBER str a", wrongType},
			{"~SMEMBERS s", set(`"a" "b" "c" "d"`)},
			{"SMEMBERS nokey", set("")},
			{"SMEMBERS str", wrongType},
			{"SREM s a z", "(integer) 1"},
			{"SREM nokey a", "(integer) 0"},
			{"SREM str a", wrongType},
			{"SREM s b c d", "(integer) 3"},
			{"EXISTS s", "(integer) 0"},
			// SPOP
			{"SPOP nokey", "(nil)"},
			{"SPOP nokey 2", set("")},
			{"SPOP str", wrongType},
			{"SPOP str 1", wrongType},
			{"SADD p a", "(integer) 1"},
			{"SPOP p -1", "(error) ERR value is out of range, must be positive"},
			{"SPOP p x", "(error) ERR value is out of range, must be positive"},
			{"SPOP p 1 2", "(error) ERR syntax error"},
			{"SPOP p 0", set("")},
			{"SPOP p", `"a"`},
			{"EXISTS p", "(integer) 0"},
			{"SADD p a b c", "(integer) 3"},
			{"~SPOP p 10", set(`"a" "b" "c"`)},
			{"EXISTS p", "(integer) 0"},
			{"SADD p a", "(integer) 1"},
			{"SPOP p 1", set(`"a"`)},
			// SRANDMEMBER
			{"SRANDMEMBER nokey", "(nil)"},
			{"SRANDMEMBER nokey 3", "[]"},
			{"SRANDMEMBER nokey -3", "[]"},
			{"SRANDMEMBER str", wrongType},
			{"SRANDMEMBER str 1", wrongType},
			{"SADD r a", "(integer) 1"},
			{"SRANDMEMBER r x", "(error) ERR value is not an integer or out of range"},
			{"SRANDMEMBER r 1 2", "(error) ERR syntax error"},
			{"SRANDMEMBER r -9223372036854775808", "(error) ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807"},
			{"SRANDMEMBER r", `"a"`},
			{"SRANDMEMBER r 0", "[]"},
			{"SRANDMEMBER r 5", `["a"]`},
			{"SRANDMEMBER r -3", `["a" "a" "a"]`},
			// SMOVE
			{"SADD m1 a b", "(integer) 2"},
			{"SMOVE m1 str a", wrongType},
			{"SMOVE str m1 a", wrongType},
			{"SMOVE nokey str a", "(integer) 0"},
			{"SMOVE m1 str z", wrongType},
			{"SMOVE m1 m1 a", "(integer) 1"},
			{"SMOVE m1 m1 z", "(integer) 0"},
			{"SMOVE m1 m2 z", "(integer) 0"},
			{"SMOVE m1 m2 a", "(integer) 1"},
			{"SMOVE m1 m2 b", "(integer) 1"},
			{"EXISTS m1", "(integer) 0"},
			{"~SMEMBERS m2", set(`"a" "b"`)},
			{"SADD m3 a c", "(integer) 2"},
			{"SMOVE m2 m3 a", "(integer) 1"},
			{"~SMEMBERS m3", set(`"a" "c"`)},
			{"SMEMBERS m2", set(`"b"`)},
			// SINTER / SUNION / SDIFF
			{"DEL m2 m3", "(integer) 2"},
			{"SADD s1 a b c d", "(integer) 4"},
			{"SADD s2 b c e", "(integer) 3"},
			{"SADD s3 c d f", "(integer) 3"},
			{"~SINTER s1 s2", set(`"b" "c"`)},
			{"~SINTER s1 s2 s3", set(`"c"`)},
			{"~SINTER s1", set(`"a" "b" "c" "d"`)},
			{"~SINTER s1 s1", set(`"a" "b" "c" "d"`)},
			{"SINTER s1 nokey", set("")},
			{"SINTER nokey str", wrongType},
			{"SINTER s1 str", wrongType},
			{"~SUNION s1 s2 nokey", set(`"a" "b" "c" "d" "e"`)},
			{"SUNION nokey", set("")},
			{"SUNION s1 str", wrongType},
			{"~SDIFF s1 s2", set(`"a" "d"`)},
			{"~SDIFF s1 s2 s3", set(`"a"`)},
			{"~SDIFF s1 nokey", set(`"a" "b" "c" "d"`)},
			{"SDIFF s1 s1", set("")},
			{"SDIFF nokey s1", set("")},
			{"SDIFF nokey str", wrongType},
			// STORE variants overwrite any type and delete on empty
			{"SINTERSTORE dst s1 s2", "(integer) 2"},
			{"~SMEMBERS dst", set(`"b" "c"`)},
			{"SUNIONSTORE dst s2 s3", "(integer) 5"},
			{"SDIFFSTORE dst s1 s2", "(integer) 2"},
			{"~SMEMBERS dst", set(`"a" "d"`)},
			{"SINTERSTORE dst dst s1", "(integer) 2"},
			{"SET sdst x EX 100", "OK"},
			{"SUNIONSTORE sdst s1", "(integer) 4"},
			{"TYPE sdst", "set"},
			{"TTL sdst", "(integer) -1"},
			{"SINTERSTORE sdst s1 nokey", "(integer) 0"},
			{"EXISTS sdst", "(integer) 0"},
			{"SDIFFSTORE dst s1 s1", "(integer) 0"},
			{"EXISTS dst", "(integer) 0"},
			{"SINTERSTORE dst s1 str", wrongType},
			{"SUNIONSTORE dst s1 str", wrongType},
			{"SDIFFSTORE dst s1 str", wrongType},
			{"SUNIONSTORE str s1", "(integer) 4"},
			{"TYPE str", "set"},
			{"SET str x", "OK"},
			// SINTERCARD
			{"SINTERCARD 0 s1", "(error) ERR numkeys should be greater than 0"},
			{"SINTERCARD -1 s1", "(error) ERR numkeys should be greater than 0"},
			{"SINTERCARD x s1", "(error) ERR numkeys should be greater than 0"},
			{"SINTERCARD 3 s1 s2", "(error) ERR Number of keys can't be greater than number of args"},
			{"SINTERCARD 2 s1 s2 LIMIT -1", "(error) ERR LIMIT can't be negative"},
			{"SINTERCARD 2 s1 s2 LIMIT x", "(error) ERR LIMIT can't be negative"},
			{"SINTERCARD 2 s1 s2 LIMIT", "(error) ERR syntax error"},
			{"SINTERCARD 2 s1 s2 FOO 1", "(error) ERR syntax error"},
			{"SINTERCARD 2 s1 str", wrongType},
			{"SINTERCARD 2 nokey str", wrongType},
			{"SINTERCARD 2 s1 s2", "(integer) 2"},
			{"SINTERCARD 2 s1 s2 LIMIT 1", "(integer) 1"},
			{"SINTERCARD 2 s1 s2 LIMIT 0", "(integer) 2"},
			{"SINTERCARD 2 s1 s2 LIMIT 0 LIMIT 1", "(integer) 1"},
			{"SINTERCARD 1 s1", "(integer) 4"},
			{"SINTERCARD 1 nokey", "(integer) 0"},
			{"SINTERCARD 3 s1 s2 s3", "(integer) 1"},
			// SSCAN
			{"SSCAN s1 x", "(error) ERR invalid cursor"},
			{"SSCAN s1 0 COUNT 0", "(error) ERR syntax error"},
			{"SSCAN s1 0 COUNT x", "(error) ERR value is not an integer or out of range"},
			{"SSCAN s1 0 MATCH", "(error) ERR syntax error"},
			{"SSCAN s1 0 NOVALUES", "(error) ERR syntax error"},
			{"SSCAN nokey 0", `["0" []]`},
			{"SSCAN str 0", wrongType},
			{"^SSCAN s1 0", `["0" ["a" "b" "c" "d"]]`},
			{"^SSCAN s1 0 MATCH [ab] COUNT 1", `["0" ["a" "b"]]`},
			// OBJECT ENCODING follows Redis's thresholds
			{"SADD ints 1 2 -3", "(integer) 3"},
			{"OBJECT ENCODING ints", `"intset"`},
			{"SADD ints -0", "(integer) 1"},
			{"OBJECT ENCODING ints", `"listpack"`},
			{"SREM ints -0", "(integer) 1"},
			{"OBJECT ENCODING ints", `"listpack"`}, // never converted back
		})

		// SRANDMEMBER / SPOP counts on a larger set.
		c.Do("DEL", "big")
		members := map[string]bool{}
		args := []string{"SADD", "big"}
		for i := 0; i < 300; i++ {
			members[fmt.Sprintf("m%d", i)] = true
			args = append(args, fmt.Sprintf("m%d", i))
		}
		c.Do(args...)
		for _, count := range []int{1, 10, 150, 299, 300, 500, -1, -10, -1000} {
			r, err := c.DoReply("SRANDMEMBER", "big", strconv.Itoa(count))
			if err != nil {
				t.Fatal(err)
			}
			wantN := min(count, 300)
			if count < 0 {
				wantN = -count
			}
			if r.Kind != '*' || len(r.Elems) != wantN {
				t.Fatalf("SRANDMEMBER big %d: %d elements, kind %c", count, len(r.Elems), r.Kind)
			}
			seen := map[string]bool{}
			for _, e := range r.Elems {
				if !members[e.Str] || (count > 0 && seen[e.Str]) {
					t.Fatalf("SRANDMEMBER big %d: bad or repeated %q", count, e.Str)
				}
				seen[e.Str] = true
			}
		}
		popped := map[string]bool{}
		for _, count := range []string{"100", "150"} {
			r, _ := c.DoReply("SPOP", "big", count)
			if r.Kind != pick(r3, "*", "~")[0] {
				t.Fatalf("SPOP kind %c", r.Kind)
			}
			for _, e := range r.Elems {
				if !members[e.Str] || popped[e.Str] {
					t.Fatalf("SPOP: bad or repeated %q", e.Str)
				}
				popped[e.Str] = true
			}
		}
		if got := c.Do("SCARD", "big"); got != "(integer) 50" || len(popped) != 250 {
			t.Fatalf("after SPOP: %s, %d popped", got, len(popped))
		}
		for c.Do("SCARD", "big") != "(integer) 0" {
			r, _ := c.DoReply("SPOP", "big")
			if !members[r.Str] || popped[r.Str] {
				t.Fatalf("SPOP: bad or repeated %q", r.Str)
			}
			popped[r.Str] = true
		}
		if len(popped) != 300 {
			t.Fatalf("popped %d", len(popped))
		}
	})
}

// TestSRandMemberDistribution checks that single random picks reach every
// member with roughly equal frequency (a loose bound, not timing based).
func TestSRandMemberDistribution(t *testing.T) {
	n := tu.StartServer(t)
	c := tu.Dial(t, n.Addr)
	args := []string{"SADD", "d"}
	for i := 0; i < 20; i++ {
		args = append(args, strconv.Itoa(i*7))
	}
	c.Do(args...)
	counts := map[string]int{}
	for i := 0; i < 4000; i++ {
		r, _ := c.DoReply("SRANDMEMBER", "d")
		counts[r.Str]++
	}
	for m, k := range counts {
		if k < 100 || k > 320 { // expected 200 each
			t.Errorf("member %s picked %d times of 4000", m, k)
		}
	}
	if len(counts) != 20 {
		t.Errorf("%d distinct members picked", len(counts))
	}
}

// TestSScanLarge checks SSCAN pagination with churn between calls.
func TestSScanLarge(t *testing.T) {
	n := tu.StartServer(t)
	c := tu.Dial(t, n.Addr)
	const total = 2000
	args := []string{"SADD", "big"}
	for i := 0; i < total; i++ {
		args = append(args, fmt.Sprintf("m%d", i))
	}
	c.Do(args...)
	seen := map[string]int{}
	cursor := "0"
	calls := 0
	for {
		r, err := c.DoReply("SSCAN", "big", cursor, "COUNT", "50")
		if err != nil {
			t.Fatal(err)
		}
		calls++
		cursor = r.Elems[0].Str
		for _, e := range r.Elems[1].Elems {
			seen[e.Str]++
		}
		c.Do("SADD", "big", fmt.Sprintf("x%d", calls))
		c.Do("SREM", "big", fmt.Sprintf("m%d", total-calls))
		if cursor == "0" {
			break
		}
		if calls > total {
			t.Fatal("scan does not terminate")
		}
	}
	if calls < 20 {
		t.Fatalf("only %d calls: not paginated", calls)
	}
	for i := 0; i < total-calls; i++ {
		if m := fmt.Sprintf("m%d", i); seen[m] != 1 {
			t.Errorf("%s returned %d times", m, seen[m])
		}
	}
	for m, k := range seen {
		if k > 1 {
			t.Errorf("%s returned %d times", m, k)
		}
	}
}

// TestSetModel runs random set commands against Go maps.
func TestSetModel(t *testing.T) {
	n := tu.StartServer(t)
	c := tu.Dial(t, n.Addr)
	rng := rand.New(rand.NewPCG(3, 4))
	model := map[string]map[string]bool{}
	// {tag} keeps every key in one slot, as multi-key commands on one
	// node do not need that, but it mirrors cluster usage.
	keys := []string{"{s}1", "{s}2", "{s}3", "{s}4"}
	members := []string{"a", "b", "c", "d", "e", "1", "2", "3"}
	sorted := func(m map[string]bool) []string {
		out := make([]string, 0, len(m))
		for k := range m {
			out = append(out, k)
		}
		slices.Sort(out)
		return out
	}
	setOf := func(ks []string, op string) map[string]bool {
		res := map[string]bool{}
		switch op {
		case "inter":
			for m := range model[ks[0]] {
				in := true
				for _, k := range ks[1:] {
					in = in && model[k][m]
				}
				if in {
					res[m] = true
				}
			}
		case "union":
			for _, k := range ks {
				for m := range model[k] {
					res[m] = true
				}
			}
		case "diff":
			for m := range model[ks[0]] {
				in := false
				for _, k := range ks[1:] {
					in = in || model[k][m]
				}
				if !in {
					res[m] = true
				}
			}
		}
		return res
	}
	put := func(k string, s map[string]bool) {
		if len(s) == 0 {
			delete(model, k)
		} else {
			model[k] = s
		}
	}
	for step := 0; step < 4000; step++ {
		k := keys[rng.IntN(len(keys))]
		k2 := keys[rng.IntN(len(keys))]
		m := members[rng.IntN(len(members))]
		var cmd []string
		var want string
		switch rng.IntN(10) {
		case 0, 1:
			cmd = []string{"SADD", k, m}
			s := model[k]
			if s == nil {
				s = map[string]bool{}
			}
			want = fmt.Sprintf("(integer) %d", b2i(!s[m]))
			s[m] = true
			put(k, s)
		case 2:
			cmd = []string{"SREM", k, m}
			want = fmt.Sprintf("(integer) %d", b2i(model[k][m]))
			if s := model[k]; s != nil {
				delete(s, m)
				put(k, s)
			}
		case 3:
			cmd = []string{"SISMEMBER", k, m}
			want = fmt.Sprintf("(integer) %d", b2i(model[k][m]))
		case 4:
			cmd = []string{"SCARD", k}
			want = fmt.Sprintf("(integer) %d", len(model[k]))
		case 5:
			cmd = []string{"SMOVE", k, k2, m}
			moved := model[k][m]
			want = fmt.Sprintf("(integer) %d", b2i(moved))
			if moved && k != k2 {
				delete(model[k], m)
				put(k, model[k])
				s := model[k2]
				if s == nil {
					s = map[string]bool{}
				}
				s[m] = true
				put(k2, s)
			}
		case 6, 7:
			op := []string{"inter", "union", "diff"}[rng.IntN(3)]
			ks := []string{k, k2, keys[rng.IntN(len(keys))]}[:1+rng.IntN(3)]
			res := setOf(ks, op)
			dst := keys[rng.IntN(len(keys))]
			cmd = append([]string{"S" + op + "STORE", dst}, ks...)
			want = fmt.Sprintf("(integer) %d", len(res))
			put(dst, res)
		case 8:
			ks := []string{k, k2}
			cmd = []string{"SINTERCARD", "2", k, k2}
			want = fmt.Sprintf("(integer) %d", len(setOf(ks, "inter")))
		case 9:
			cmd = []string{"SPOP", k}
			r, err := c.DoReply(cmd...)
			if err != nil {
				t.Fatal(err)
			}
			if model[k] == nil {
				if !r.Null {
					t.Fatalf("step %d SPOP %s on missing key: %s", step, k, r)
				}
				continue
			}
			if !model[k][r.Str] {
				t.Fatalf("step %d SPOP %s: %q not a member of %v", step, k, r.Str, sorted(model[k]))
			}
			delete(model[k], r.Str)
			put(k, model[k])
			continue
		}
		if got := c.Do(cmd...); got != want {
			t.Fatalf("step %d %q: got %s want %s", step, cmd, got, want)
		}
	}
	for _, k := range keys {
		r, _ := c.DoReply("SMEMBERS", k)
		var got []string
		for _, e := range r.Elems {
			got = append(got, e.Str)
		}
		slices.Sort(got)
		if want := sorted(model[k]); !slices.Equal(got, want) && len(got)+len(want) > 0 {
			t.Fatalf("SMEMBERS %s: %v, model %v", k, got, want)
		}
	}
}
