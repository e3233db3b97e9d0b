package server_test

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"

	tu "shoal/internal/testutil"
)

const wrongType = "(error) WRONGTYPE Operation against a key holding the wrong kind of value"

func TestHashes(t *testing.T) {
	n := tu.StartServer(t)
	forProtocols(t, n.Addr, func(t *testing.T, c *tu.Conn, r3 bool) {
		emptyMap := pick(r3, "[]", "{}")
		runSteps(t, c, [][2]string{
			{"SET str x", "OK"},
			// HSET / HMSET / HSETNX
			{"HSET h a", "(error) ERR wrong number of arguments for 'hset' command"},
			{"HSET h a 1 b", "(error) ERR wrong number of arguments for 'hset' command"},
			{"HMSET h a", "(error) ERR wrong number of arguments for 'hmset' command"},
			{"HMSET h a 1 b", "(error) ERR wrong number of arguments for 'hmset' command"},
			{"HSET h a 1 b 2", "(integer) 2"},
			{"HSET h a 10 c 3", "(integer) 1"},
			{"HMSET h d 4", "OK"},
			{"HSETNX h a x", "(integer) 0"},
			{"HSETNX h e 5", "(integer) 1"},
			{"HSETNX h2 a 1", "(integer) 1"},
			{"HSET str a 1", wrongType},
			{"HMSET str a 1", wrongType},
			{"HSETNX str a 1", wrongType},
			{"TYPE h", "hash"},
			// reads
			{"HGET h a", `"10"`},
			{"HGET h zz", "(nil)"},
			{"HGET nokey a", "(nil)"},
			{"HGET str a", wrongType},
			{"HMGET h a zz b", `["10" (nil) "2"]`},
			{"HMGET nokey a b", `[(nil) (nil)]`},
			{"HMGET str a", wrongType},
			{"HEXISTS h a", "(integer) 1"},
			{"HEXISTS h zz", "(integer) 0"},
			{"HEXISTS nokey a", "(integer) 0"},
			{"HEXISTS str a", wrongType},
			{"HLEN h", "(integer) 5"},
			{"HLEN nokey", "(integer) 0"},
			{"HLEN str", wrongType},
			{"HSTRLEN h a", "(integer) 2"},
			{"HSTRLEN h zz", "(integer) 0"},
			{"HSTRLEN nokey a", "(integer) 0"},
			{"HSTRLEN str a", wrongType},
			{"~HKEYS h", `["a" "b" "c" "d" "e"]`},
			{"HKEYS nokey", "[]"},
			{"HKEYS str", wrongType},
			{"~HVALS h", `["10" "2" "3" "4" "5"]`},
			{"HVALS nokey", "[]"},
			{"HVALS str", wrongType},
			{"%HGETALL h", pick(r3, `["a" "10" "b" "2" "c" "3" "d" "4" "e" "5"]`,
				`{"a":"10" "b":"2" "c":"3" "d":"4" "e":"5"}`)},
			{"HGETALL nokey", emptyMap},
			{"HGETALL str", wrongType},
			// HDEL
			{"HDEL h a zz b", "(integer) 2"},
			{"HDEL nokey a", "(integer) 0"},
			{"HDEL str a", wrongType},
			{"HDEL h c d e", "(integer) 3"},
			{"EXISTS h", "(integer) 0"},
			// HINCRBY
			{"HINCRBY h n 5", "(integer) 5"},
			{"HINCRBY h n -7", "(integer) -2"},
			{"HINCRBY h n x", "(error) ERR value is not an integer or out of range"},
			{"HINCRBY h n 1.5", "(error) ERR value is not an integer or out of range"},
			{"HSET h s abc big 9223372036854775807 small -9223372036854775808 f 1.5", "(integer) 4"},
			{"HINCRBY h s 1", "(error) ERR hash value is not an integer"},
			{"HINCRBY h f 1", "(error) ERR hash value is not an integer"},
			{"HINCRBY h big 1", "(error) ERR increment or decrement would overflow"},
			{"HINCRBY h small -1", "(error) ERR increment or decrement would overflow"},
			{"HINCRBY h big -1", "(integer) 9223372036854775806"},
			{"HINCRBY str a 1", wrongType},
			{"HGET h n", `"-2"`},
			// HINCRBYFLOAT (long double arithmetic, Redis formatting)
			{"HINCRBYFLOAT h x 0.1", `"0.1"`},
			{"HINCRBYFLOAT h x 0.2", `"0.3"`},
			{"HINCRBYFLOAT h f 1", `"2.5"`},
			{"HINCRBYFLOAT h n 3.0e3", `"2998"`},
			{"HINCRBYFLOAT h y 1.10", `"1.1"`},
			{"HINCRBYFLOAT h y -1.1", `"0"`},
			{"HINCRBYFLOAT h z 5e-5", `"0.00005"`},
			{"HINCRBYFLOAT h s 1", "(error) ERR hash value is not a float"},
			{"HINCRBYFLOAT h f abc", "(error) ERR value is not a valid float"},
			{"HINCRBYFLOAT h f inf", "(error) ERR value is NaN or Infinity"},
			{"HSET h huge 1e4932", "(integer) 1"},
			{"HINCRBYFLOAT h huge 1e4932", "(error) ERR increment would produce NaN or Infinity"},
			{"HSET h sci 1e3", "(integer) 1"},
			{"HINCRBYFLOAT h sci 1", `"1001"`},
			{"HINCRBYFLOAT str a 1", wrongType},
			{"HGET h x", `"0.3"`},
			// HRANDFIELD argument checks
			{"HRANDFIELD nokey", "(nil)"},
			{"HRANDFIELD nokey 3", "[]"},
			{"HRANDFIELD nokey 3 WITHVALUES", "[]"},
			{"HRANDFIELD str", wrongType},
			{"HRANDFIELD str 1", wrongType},
			{"HRANDFIELD h x", "(error) ERR value is not an integer or out of range"},
			{"HRANDFIELD h 1 foo", "(error) ERR syntax error"},
			{"HRANDFIELD h 1 WITHVALUES x", "(error) ERR syntax error"},
			{"HRANDFIELD h -9223372036854775808", "(error) ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807"},
			{"HRANDFIELD h -9223372036854775807 WITHVALUES", "(error) ERR value is out of range"},
			{"HRANDFIELD h 4611686018427387904 WITHVALUES", "(error) ERR value is out of range"},
			{"HRANDFIELD h 0", "[]"},
			{"HRANDFIELD h 0 WITHVALUES", "[]"},
			// HSCAN argument checks
			{"HSCAN h x", "(error) ERR invalid cursor"},
			{"HSCAN h +", "(error) ERR invalid cursor"},
			{"HSCAN h 18446744073709551616", "(error) ERR invalid cursor"},
			{"HSCAN h 0 COUNT 0", "(error) ERR syntax error"},
			{"HSCAN h 0 COUNT x", "(error) ERR value is not an integer or out of range"},
			{"HSCAN h 0 COUNT", "(error) ERR syntax error"},
			{"HSCAN h 0 FOO 1", "(error) ERR syntax error"},
			{"HSCAN nokey 0", `["0" []]`},
			{"HSCAN str 0", wrongType},
			{"DEL h", "(integer) 1"},
			{"HSET h a 1 b 2 c 3", "(integer) 3"},
			{"^%HSCAN h 0", `["0" ["a" "1" "b" "2" "c" "3"]]`},
			{"^%HSCAN h 0 MATCH b*", `["0" ["b" "2"]]`},
			{"^HSCAN h 0 NOVALUES", `["0" ["a" "b" "c"]]`}, // Redis 7.4
			{"^%HSCAN h -1", `["0" ["a" "1" "b" "2" "c" "3"]]`},
			{"^%HSCAN h 0 COUNT 1", `["0" ["a" "1" "b" "2" "c" "3"]]`},
		})

		// HRANDFIELD shapes.
		c.Do("DEL", "r")
		c.Do("HSET", "r", "a", "1", "b", "2", "c", "3")
		want := map[string]string{"a": "1", "b": "2", "c": "3"}
		for _, count := range []int{1, 2, 3, 5, -1, -5, -10} {
			r, err := c.DoReply("HRANDFIELD", "r", strconv.Itoa(count))
			if err != nil {
				t.Fatal(err)
			}
			wantN := min(count, 3)
			if count < 0 {
				wantN = -count
			}
			if r.Kind != '*' || len(r.Elems) != wantN {
				t.Fatalf("HRANDFIELD r %d: %s", count, r)
			}
			seen := map[string]bool{}
			for _, e := range r.Elems {
				if _, ok := want[e.Str]; !ok {
					t.Fatalf("HRANDFIELD r %d: unknown field in %s", count, r)
				}
				if count > 0 && seen[e.Str] {
					t.Fatalf("HRANDFIELD r %d: repeated field in %s", count, r)
				}
				seen[e.Str] = true
			}
			r, _ = c.DoReply("HRANDFIELD", "r", strconv.Itoa(count), "WITHVALUES")
			if r3 {
				if len(r.Elems) != wantN {
					t.Fatalf("HRANDFIELD WITHVALUES %d: %s", count, r)
				}
				for _, p := range r.Elems {
					if p.Kind != '*' || len(p.Elems) != 2 || want[p.Elems[0].Str] != p.Elems[1].Str {
						t.Fatalf("HRANDFIELD WITHVALUES %d: %s", count, r)
					}
				}
			} else {
				if len(r.Elems) != 2*wantN {
					t.Fatalf("HRANDFIELD WITHVALUES %d: %s", count, r)
				}
				for i := 0; i < len(r.Elems); i += 2 {
					if want[r.Elems[i].Str] != r.Elems[i+1].Str {
						t.Fatalf("HRANDFIELD WITHVALUES %d: %s", count, r)
					}
				}
			}
		}
		if got := c.Do("HRANDFIELD", "r"); got != `"a"` && got != `"b"` && got != `"c"` {
			t.Fatalf("HRANDFIELD r = %s", got)
		}
	})
}

// TestHScanLarge checks HSCAN pagination on a hash too large to be
// returned whole: every field present for the whole scan comes back
// exactly once, even when fields are added and removed between calls.
func TestHScanLarge(t *testing.T) {
	n := tu.StartServer(t)
	c := tu.Dial(t, n.Addr)
	const total = 1000
	args := []string{"HSET", "big"}
	for i := 0; i < total; i++ {
		args = append(args, fmt.Sprintf("f%d", i), strconv.Itoa(i))
	}
	c.Do(args...)
	seen := map[string]int{}
	cursor := "0"
	calls := 0
	for {
		r, err := c.DoReply("HSCAN", "big", cursor, "COUNT", "25")
		if err != nil {
			t.Fatal(err)
		}
		calls++
		if len(r.Elems) != 2 {
			t.Fatalf("reply %s", r)
		}
		cursor = r.Elems[0].Str
		kv := r.Elems[1].Elems
		if len(kv)%2 != 0 || (cursor != "0" && len(kv) < 2*25) {
			t.Fatalf("page of %d elements, cursor %s", len(kv), cursor)
		}
		for i := 0; i < len(kv); i += 2 {
			seen[kv[i].Str]++
			if want := strings.TrimPrefix(kv[i].Str, "f"); !strings.HasPrefix(kv[i].Str, "x") && kv[i+1].Str != want {
				t.Fatalf("field %s has value %s", kv[i].Str, kv[i+1].Str)
			}
		}
		// Churn: fields x* come and go, f0..f99 are deleted (those may or
		// may not be returned), the rest must be returned exactly once.
		c.Do("HSET", "big", fmt.Sprintf("x%d", calls), "v")
		c.Do("HDEL", "big", fmt.Sprintf("x%d", calls-1), fmt.Sprintf("f%d", calls))
		if cursor == "0" {
			break
		}
		if calls > total {
			t.Fatal("scan does not terminate")
		}
	}
	if calls < 10 {
		t.Fatalf("only %d calls: not paginated", calls)
	}
	for i := 0; i < total; i++ {
		f := fmt.Sprintf("f%d", i)
		if i >= 1 && i <= calls {
			if seen[f] > 1 {
				t.Errorf("%s returned %d times", f, seen[f])
			}
			continue
		}
		if seen[f] != 1 {
			t.Errorf("%s returned %d times", f, seen[f])
		}
	}

	// MATCH filters pages; NOVALUES drops values.
	cursor = "0"
	var got []string
	for {
		r, _ := c.DoReply("HSCAN", "big", cursor, "MATCH", "f99*", "COUNT", "100", "NOVALUES")
		cursor = r.Elems[0].Str
		for _, e := range r.Elems[1].Elems {
			got = append(got, e.Str)
		}
		if cursor == "0" {
			break
		}
	}
	slices.Sort(got)
	if want := []string{"f99", "f990", "f991", "f992", "f993", "f994", "f995", "f996", "f997", "f998", "f999"}; !slices.Equal(got, want) {
		t.Fatalf("MATCH f99*: %v", got)
	}
}

// TestHashModel runs random hash commands against a Go map.
func TestHashModel(t *testing.T) {
	n := tu.StartServer(t)
	c := tu.Dial(t, n.Addr)
	rng := rand.New(rand.NewPCG(1, 2))
	model := map[string]map[string]string{}
	keys := []string{"h1", "h2", "h3"}
	fields := []string{"a", "b", "c", "d", "e", "f", "g", "h"}
	for step := 0; step < 3000; step++ {
		k := keys[rng.IntN(len(keys))]
		f := fields[rng.IntN(len(fields))]
		m := model[k]
		var cmd []string
		var want string
		switch op := rng.IntN(8); op {
		case 0, 1:
			v := strconv.Itoa(rng.IntN(100))
			cmd = []string{"HSET", k, f, v}
			if m == nil {
				m = map[string]string{}
				model[k] = m
			}
			_, exists := m[f]
			m[f] = v
			want = fmt.Sprintf("(integer) %d", b2i(!exists))
		case 2:
			cmd = []string{"HDEL", k, f}
			_, exists := m[f]
			delete(m, f)
			if len(m) == 0 {
				delete(model, k)
			}
			want = fmt.Sprintf("(integer) %d", b2i(exists))
		case 3:
			cmd = []string{"HGET", k, f}
			want = "(nil)"
			if v, ok := m[f]; ok {
				want = strconv.Quote(v)
			}
		case 4:
			cmd = []string{"HLEN", k}
			want = fmt.Sprintf("(integer) %d", len(m))
		case 5:
			by := rng.IntN(21) - 10
			cmd = []string{"HINCRBY", k, f, strconv.Itoa(by)}
			if m == nil {
				m = map[string]string{}
				model[k] = m
			}
			cur, _ := strconv.Atoi(m[f])
			m[f] = strconv.Itoa(cur + by)
			want = fmt.Sprintf("(integer) %d", cur+by)
		case 6:
			cmd = []string{"HSETNX", k, f, "7"}
			_, exists := m[f]
			if !exists {
				if m == nil {
					m = map[string]string{}
					model[k] = m
				}
				m[f] = "7"
			}
			want = fmt.Sprintf("(integer) %d", b2i(!exists))
		case 7:
			cmd = []string{"EXISTS", k}
			want = fmt.Sprintf("(integer) %d", b2i(m != nil))
		}
		if got := c.Do(cmd...); got != want {
			t.Fatalf("step %d %q: got %s want %s", step, cmd, got, want)
		}
	}
	for k, m := range model {
		r, _ := c.DoReply("HGETALL", k)
		if len(r.Elems) != 2*len(m) {
			t.Fatalf("HGETALL %s: %s, model %v", k, r, m)
		}
		for i := 0; i < len(r.Elems); i += 2 {
			if m[r.Elems[i].Str] != r.Elems[i+1].Str {
				t.Fatalf("HGETALL %s: %s, model %v", k, r, m)
			}
		}
	}
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}
