package server_test

import (
	"slices"
	"strings"
	"testing"

	"shoal/internal/resp"
	tu "shoal/internal/testutil"
)

// runSteps runs a table of {command, want} steps on c. Replies whose order
// is unspecified are normalised by a prefix on the command:
//
//	~  sort the reply's elements (sets, HKEYS, SMEMBERS)
//	%  sort the reply's pairs (HGETALL as a map or a flat RESP2 array)
//	^  sort the element list of a [cursor, elements] scan reply
//	^% sort the pairs of a [cursor, field value ...] scan reply
func runSteps(t *testing.T, c *tu.Conn, steps [][2]string) {
	t.Helper()
	for i, st := range steps {
		cmd := st[0]
		mode := ""
		for strings.HasPrefix(cmd, "~") || strings.HasPrefix(cmd, "%") || strings.HasPrefix(cmd, "^") {
			mode += cmd[:1]
			cmd = cmd[1:]
		}
		r, err := c.DoReply(tu.C(cmd)...)
		if err != nil {
			t.Fatalf("step %d %q: %v", i, cmd, err)
		}
		r = normalise(r, mode)
		if got := r.String(); got != st[1] {
			t.Errorf("step %d %q:\n got  %s\n want %s", i, cmd, got, st[1])
		}
	}
}

func normalise(r resp.Reply, mode string) resp.Reply {
	switch mode {
	case "~":
		slices.SortFunc(r.Elems, func(a, b resp.Reply) int { return strings.Compare(a.String(), b.String()) })
	case "%":
		r.Elems = sortPairs(r.Elems)
	case "^", "^%":
		if len(r.Elems) == 2 {
			r.Elems[1] = normalise(r.Elems[1], map[string]string{"^": "~", "^%": "%"}[mode])
		}
	}
	return r
}

func sortPairs(e []resp.Reply) []resp.Reply {
	type kv struct{ k, v resp.Reply }
	ps := make([]kv, 0, len(e)/2)
	for i := 0; i+1 < len(e); i += 2 {
		ps = append(ps, kv{e[i], e[i+1]})
	}
	slices.SortFunc(ps, func(a, b kv) int { return strings.Compare(a.k.String(), b.k.String()) })
	out := make([]resp.Reply, 0, len(e))
	for _, p := range ps {
		out = append(out, p.k, p.v)
	}
	return out
}

// forProtocols runs fn on a fresh connection in RESP2 and in RESP3 after
// FLUSHALL.
func forProtocols(t *testing.T, addr string, fn func(t *testing.T, c *tu.Conn, resp3 bool)) {
	for _, proto := range []string{"2", "3"} {
		t.Run("resp"+proto, func(t *testing.T) {
			c := tu.Dial(t, addr)
			c.Do("HELLO", proto)
			c.Do("FLUSHALL")
			fn(t, c, proto == "3")
		})
	}
}

// pick returns r2 in RESP2 and r3 in RESP3.
func pick(resp3 bool, r2, r3 string) string {
	if resp3 {
		return r3
	}
	return r2
}
