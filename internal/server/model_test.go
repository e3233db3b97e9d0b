package server_test

import (
	"flag"
	"fmt"
	"math/rand"
	"strconv"
	"strings"
	"testing"
	"time"

	"shoal/internal/resp"
	tu "shoal/internal/testutil"
)

var modelSeed = flag.Int64("model.seed", 0, "seed for TestModel (0: time based)")

// modelVal is a key in the reference model: a string and whether it has
// a TTL (all TTLs are far in the future, so nothing expires in the test).
type modelVal struct {
	s      string
	hasTTL bool
	ttl    int64 // seconds, as last set
}

type model map[string]*modelVal

const (
	mNil      = "(nil)"
	mOK       = "OK"
	mNotInt   = "(error) ERR value is not an integer or out of range"
	mOverflow = "(error) ERR increment or decrement would overflow"
	mNoKey    = "(error) ERR no such key"
	mTTLSet   = "(integer) >0" // a positive TTL, compared by category
)

func mInt(n int64) string     { return "(integer) " + strconv.FormatInt(n, 10) }
func mBulk(s string) string   { return strconv.Quote(s) }
func mArr(xs []string) string { return "[" + strings.Join(xs, " ") + "]" }

// redisInt parses like redis-server's string2ll: no '+', no leading
// zeros, no spaces, "-0" rejected, at most 20 characters.
func redisInt(s string) (int64, bool) {
	if s == "0" {
		return 0, true
	}
	if len(s) == 0 || len(s) > 20 {
		return 0, false
	}
	d := s
	if d[0] == '-' {
		d = d[1:]
	}
	if len(d) == 0 || d[0] < '1' || d[0] > '9' {
		return 0, false
	}
	for _, c := range d {
		if c < '0' || c > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil
}

// apply runs one command on the model and returns the expected reply.
func (m model) apply(args []string) string {
	cmd, a := strings.ToUpper(args[0]), args[1:]
	switch cmd {
	case "GET":
		if v := m[a[0]]; v != nil {
			return mBulk(v.s)
		}
		return mNil
	case "SET":
		var nx, xx, get bool
		var ttl int64
		for i := 2; i < len(a); i++ {
			switch strings.ToUpper(a[i]) {
			case "NX":
				nx = true
			case "XX":
				xx = true
			case "GET":
				get = true
			case "EX":
				i++
				ttl, _ = strconv.ParseInt(a[i], 10, 64)
			}
		}
		old := m[a[0]]
		reply := mOK
		if get {
			reply = mNil
			if old != nil {
				reply = mBulk(old.s)
			}
		}
		if (nx && old != nil) || (xx && old == nil) {
			if !get {
				reply = mNil
			}
			return reply
		}
		m[a[0]] = &modelVal{s: a[1], hasTTL: ttl > 0, ttl: ttl}
		return reply
	case "SETNX":
		if m[a[0]] != nil {
			return mInt(0)
		}
		m[a[0]] = &modelVal{s: a[1]}
		return mInt(1)
	case "GETSET":
		old := m[a[0]]
		m[a[0]] = &modelVal{s: a[1]}
		if old == nil {
			return mNil
		}
		return mBulk(old.s)
	case "DEL":
		n := int64(0)
		for _, k := range a {
			if m[k] != nil {
				delete(m, k)
				n++
			}
		}
		return mInt(n)
	case "EXISTS":
		n := int64(0)
		for _, k := range a {
			if m[k] != nil {
				n++
			}
		}
		return mInt(n)
	case "INCR", "DECR", "INCRBY", "DECRBY":
		by := int64(1)
		if len(a) > 1 {
			var ok bool
			if by, ok = redisInt(a[1]); !ok {
				return mNotInt
			}
		}
		if cmd == "DECRBY" && by == -1<<63 {
			return "(error) ERR decrement would overflow"
		}
		if cmd == "DECR" || cmd == "DECRBY" {
			by = -by
		}
		v := m[a[0]]
		cur := int64(0)
		if v != nil {
			var ok bool
			if cur, ok = redisInt(v.s); !ok {
				return mNotInt
			}
		}
		if (by > 0 && cur > 1<<63-1-by) || (by < 0 && cur < -1<<63-by) {
			return mOverflow
		}
		cur += by
		if v == nil {
			v = &modelVal{}
			m[a[0]] = v
		}
		v.s = strconv.FormatInt(cur, 10)
		return mInt(cur)
	case "APPEND":
		v := m[a[0]]
		if v == nil {
			v = &modelVal{}
			m[a[0]] = v
		}
		v.s += a[1]
		return mInt(int64(len(v.s)))
	case "STRLEN":
		if v := m[a[0]]; v != nil {
			return mInt(int64(len(v.s)))
		}
		return mInt(0)
	case "MSET":
		for i := 0; i+1 < len(a); i += 2 {
			m[a[i]] = &modelVal{s: a[i+1]}
		}
		return mOK
	case "MSETNX":
		for i := 0; i+1 < len(a); i += 2 {
			if m[a[i]] != nil {
				return mInt(0)
			}
		}
		for i := 0; i+1 < len(a); i += 2 {
			m[a[i]] = &modelVal{s: a[i+1]}
		}
		return mInt(1)
	case "MGET":
		out := make([]string, len(a))
		for i, k := range a {
			out[i] = mNil
			if v := m[k]; v != nil {
				out[i] = mBulk(v.s)
			}
		}
		return mArr(out)
	case "GETDEL":
		v := m[a[0]]
		if v == nil {
			return mNil
		}
		delete(m, a[0])
		return mBulk(v.s)
	case "RENAME", "RENAMENX":
		v := m[a[0]]
		if v == nil {
			return mNoKey
		}
		if cmd == "RENAMENX" {
			if m[a[1]] != nil {
				return mInt(0)
			}
			delete(m, a[0])
			m[a[1]] = v
			return mInt(1)
		}
		delete(m, a[0])
		m[a[1]] = v
		return mOK
	case "EXPIRE":
		v := m[a[0]]
		secs, _ := strconv.ParseInt(a[1], 10, 64)
		if v == nil {
			return mInt(0)
		}
		if len(a) > 2 {
			switch strings.ToUpper(a[2]) {
			case "NX":
				if v.hasTTL {
					return mInt(0)
				}
			case "XX":
				if !v.hasTTL {
					return mInt(0)
				}
			}
		}
		if secs <= 0 {
			delete(m, a[0])
			return mInt(1)
		}
		v.hasTTL, v.ttl = true, secs
		return mInt(1)
	case "PERSIST":
		v := m[a[0]]
		if v == nil || !v.hasTTL {
			return mInt(0)
		}
		v.hasTTL = false
		return mInt(1)
	case "TTL":
		v := m[a[0]]
		switch {
		case v == nil:
			return mInt(-2)
		case !v.hasTTL:
			return mInt(-1)
		}
		return mTTLSet
	case "TYPE":
		if m[a[0]] != nil {
			return "string"
		}
		return "none"
	case "DBSIZE":
		return mInt(int64(len(m)))
	}
	panic("model: unknown command " + cmd)
}

// normalize maps a server reply to the model's rendering: a positive TTL
// becomes a category, checked against the last TTL set.
func normalize(args []string, r resp.Reply, m model) string {
	s := r.String()
	if strings.EqualFold(args[0], "TTL") && r.Kind == ':' && r.Int > 0 {
		if v := m[args[1]]; v != nil && v.hasTTL && r.Int <= v.ttl && r.Int >= v.ttl-60 {
			return mTTLSet
		}
		return s + " (outside the expected range)"
	}
	return s
}

type modelGen struct {
	rng  *rand.Rand
	keys []string
	vals []string
}

func newModelGen(rng *rand.Rand) *modelGen {
	g := &modelGen{rng: rng}
	for i := 0; i < 12; i++ {
		g.keys = append(g.keys, "k"+strconv.Itoa(i))
	}
	g.keys = append(g.keys, "", "bin\x00\r\n", "{tag}a", "{tag}b")
	g.vals = []string{"0", "1", "-5", "42", "9223372036854775807", "-9223372036854775808", "9223372036854775806",
		"abc", "007", "-0", "+1", " 1", "12a", "", "x\r\ny\x00", strings.Repeat("long", 50), "3.5", "1e3",
		"99999999999999999999"}
	return g
}

func (g *modelGen) key() string { return g.keys[g.rng.Intn(len(g.keys))] }
func (g *modelGen) val() string {
	if g.rng.Intn(4) == 0 {
		return strconv.Itoa(g.rng.Intn(2000) - 1000)
	}
	return g.vals[g.rng.Intn(len(g.vals))]
}
func (g *modelGen) ttl() string { return strconv.Itoa(100000 + g.rng.Intn(100000)) }
func (g *modelGen) keyList(min int) []string {
	ks := make([]string, min+g.rng.Intn(4))
	for i := range ks {
		ks[i] = g.key()
	}
	return ks
}

func (g *modelGen) next() []string {
	r := g.rng
	switch r.Intn(24) {
	case 0, 1, 2:
		args := []string{"SET", g.key(), g.val()}
		if r.Intn(2) == 0 {
			args = append(args, []string{"NX", "XX"}[r.Intn(2)])
		}
		if r.Intn(3) == 0 {
			args = append(args, "GET")
		}
		if r.Intn(3) == 0 {
			args = append(args, "EX", g.ttl())
		}
		r.Shuffle(len(args)-3, func(i, j int) { args[3+i], args[3+j] = args[3+j], args[3+i] })
		// EX must be followed by its value: put the pair back together.
		for i := 3; i < len(args); i++ {
			if args[i] == "EX" && (i+1 >= len(args) || args[i+1] == "NX" || args[i+1] == "XX" || args[i+1] == "GET") {
				return g.next()
			}
		}
		return args
	case 3, 4:
		return []string{"GET", g.key()}
	case 5:
		return append([]string{"DEL"}, g.keyList(1)...)
	case 6:
		return append([]string{"EXISTS"}, g.keyList(1)...)
	case 7, 8:
		return []string{"INCR", g.key()}
	case 9:
		return []string{[]string{"DECR", "INCRBY", "DECRBY"}[r.Intn(3)], g.key(), g.val()}[:2+min(1, r.Intn(3))]
	case 10:
		return []string{"APPEND", g.key(), g.val()}
	case 11:
		args := []string{"MSET"}
		for i := 0; i < 1+r.Intn(3); i++ {
			args = append(args, g.key(), g.val())
		}
		return args
	case 12:
		return append([]string{"MGET"}, g.keyList(1)...)
	case 13:
		return []string{"GETDEL", g.key()}
	case 14:
		return []string{[]string{"RENAME", "RENAMENX"}[r.Intn(2)], g.key(), g.key()}
	case 15:
		return []string{"STRLEN", g.key()}
	case 16, 17:
		args := []string{"EXPIRE", g.key(), g.ttl()}
		switch r.Intn(6) {
		case 0:
			args[2] = strconv.Itoa(-r.Intn(3))
		case 1:
			args = append(args, "NX")
		case 2:
			args = append(args, "XX")
		}
		return args
	case 18:
		return []string{"PERSIST", g.key()}
	case 19, 20:
		return []string{"TTL", g.key()}
	case 21:
		return []string{"SETNX", g.key(), g.val()}
	case 22:
		return []string{"GETSET", g.key(), g.val()}
	default:
		return []string{[]string{"TYPE", "DBSIZE", "MSETNX"}[r.Intn(3)], g.key(), g.val()}[:1+r.Intn(3)]
	}
}

// fixArity turns generated commands whose arity the generator left loose
// into valid ones.
func fixArity(args []string) []string {
	switch args[0] {
	case "DECR":
		return args[:2]
	case "INCRBY", "DECRBY":
		if len(args) < 3 {
			return append(args, "3")
		}
	case "TYPE":
		if len(args) < 2 {
			return append(args, "k0")
		}
		return args[:2]
	case "DBSIZE":
		return args[:1]
	case "MSETNX":
		if len(args) < 3 {
			return []string{"MSETNX", "k1", "v"}
		}
	}
	return args
}

// TestModel runs random sequences of string and key commands against the
// server and a map-based model; every reply must match. Reproduce with
// go test -run TestModel -model.seed=N.
func TestModel(t *testing.T) {
	n := tu.StartServer(t)
	seed := *modelSeed
	if seed == 0 {
		seed = time.Now().UnixNano()
	}
	t.Logf("seed %d (rerun with -model.seed=%d)", seed, seed)
	for round, proto := range []string{"2", "3", "2"} {
		c := tu.Dial(t, n.Addr)
		if r := c.Do("HELLO", proto); strings.HasPrefix(r, "(error)") {
			t.Fatal(r)
		}
		c.Do("FLUSHALL")
		rng := rand.New(rand.NewSource(seed + int64(round)))
		g := newModelGen(rng)
		m := model{}
		var history []string
		for step := 0; step < 4000; {
			// A batch of pipelined commands, then their replies in order.
			batch := make([][]string, 1+rng.Intn(16))
			var out []byte
			for i := range batch {
				batch[i] = fixArity(g.next())
				out = resp.AppendCommand(out, batch[i]...)
			}
			c.Send(out)
			for _, args := range batch {
				step++
				want := m.apply(args)
				rp, err := c.Read()
				if err != nil {
					t.Fatalf("round %d step %d %q: %v", round, step, args, err)
				}
				got := normalize(args, rp, m)
				history = append(history, fmt.Sprintf("%q -> %s", args, got))
				if len(history) > 20 {
					history = history[1:]
				}
				if got != want {
					t.Fatalf("seed %d round %d (RESP%s) step %d: %q\n got  %s\n want %s\nlast commands:\n  %s",
						seed, round, proto, step, args, got, want, strings.Join(history, "\n  "))
				}
			}
		}
		// Final state: every key, its value and whether it has a TTL.
		for _, k := range g.keys {
			for _, args := range [][]string{{"GET", k}, {"TTL", k}} {
				rp, err := c.DoReply(args...)
				if err != nil {
					t.Fatal(err)
				}
				if got, want := normalize(args, rp, m), m.apply(args); got != want {
					t.Fatalf("seed %d round %d final %q: got %s want %s", seed, round, args, got, want)
				}
			}
		}
		if got, want := c.Do("DBSIZE"), mInt(int64(len(m))); got != want {
			t.Fatalf("seed %d round %d: DBSIZE %s, model has %s", seed, round, got, want)
		}
	}
}

// Integers are parsed as redis-server's string2ll does (checked against
// redis-server 7.0): "-0", leading zeros, '+' and spaces are not integers.
func TestIntegerStrictness(t *testing.T) {
	n := tu.StartServer(t)
	c := tu.Dial(t, n.Addr)
	for _, v := range []string{"-0", "007", "+1", " 1", "1 ", "99999999999999999999", "-", ""} {
		c.Do("SET", "x", v)
		if got := c.Do("INCR", "x"); got != mNotInt {
			t.Errorf("INCR of %q: %s", v, got)
		}
		if got := c.Do("INCRBY", "y", v); got != mNotInt {
			t.Errorf("INCRBY y %q: %s", v, got)
		}
	}
	tu.Run(t, c, []tu.Case{
		{Cmd: []string{"SET", "x", "0"}, Want: "OK"},
		{Cmd: []string{"INCRBY", "x", "-9223372036854775808"}, Want: "(integer) -9223372036854775808"},
		{Cmd: []string{"SET", "x", "-10"}, Want: "OK"},
		{Cmd: []string{"INCR", "x"}, Want: "(integer) -9"},
	})
}
