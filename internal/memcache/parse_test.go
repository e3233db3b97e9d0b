package memcache

import (
	"strings"
	"testing"
)

func parseAll(t *testing.T, in string, lim Limits) []Command {
	t.Helper()
	var out []Command
	buf := []byte(in)
	for len(buf) > 0 {
		var c Command
		n := Parse(buf, &c, lim)
		if n == 0 {
			break
		}
		out = append(out, c)
		buf = buf[n:]
		if c.Swallow > 0 {
			buf = buf[min(c.Swallow, len(buf)):]
		}
	}
	return out
}

func TestParse(t *testing.T) {
	lim := Limits{MaxLine: 2048, MaxGetLine: 4096, MaxItemSize: 16}
	cases := []struct {
		in   string
		op   Op
		key  string
		data string
		err  string
	}{
		{"set k 1 2 3\r\nabc\r\n", OpSet, "k", "abc", ""},
		{"set k 1 2 3 noreply\r\nabc\r\n", OpSet, "k", "abc", ""},
		{"set  k  1 2 3\nabc\r\n", OpSet, "k", "abc", ""},
		{"set k 1 2 3\r\nabcd\r\n", OpError, "", "", ErrBadChunk},
		{"set k 1 2 100\r\n", OpError, "", "", ErrTooLarge},
		{"set k 1 2\r\n", OpError, "", "", ErrGeneric},
		{"set k x 2 3\r\nabc\r\n", OpError, "", "", ErrBadFormat},
		{"set k 1 2 -1\r\n", OpError, "", "", ErrBadFormat},
		{"set k 4294967296 0 1\r\n", OpError, "", "", ErrBadFormat},
		{"set " + strings.Repeat("k", 251) + " 0 0 1\r\n", OpError, "", "", ErrBadFormat},
		{"set k\x01 0 0 1\r\n", OpError, "", "", ErrBadFormat},
		{"cas k 0 0 1 77\r\nx\r\n", OpCas, "k", "x", ""},
		{"cas k 0 0 1\r\nx\r\n", OpError, "", "", ErrGeneric},
		{"get a b c\r\n", OpGet, "", "", ""},
		{"get\r\n", OpError, "", "", ErrGeneric},
		{"gat 10 a\r\n", OpGat, "", "", ""},
		{"gat x a\r\n", OpError, "", "", ErrBadExptime},
		{"incr k 5\r\n", OpIncr, "k", "", ""},
		{"incr k -5\r\n", OpError, "", "", ErrBadDelta},
		{"delete k 1\r\n", OpError, "", "", ErrDeleteFormat},
		{"touch k x\r\n", OpError, "", "", ErrBadExptime},
		{"flush_all x\r\n", OpError, "", "", ErrBadExptime},
		{"bogus\r\n", OpError, "", "", ErrGeneric},
		{"\r\n", OpError, "", "", ErrGeneric},
		{"mg k v t\r\n", OpMetaGet, "k", "", ""},
		{"mg k v v\r\n", OpError, "", "", ErrDupFlag},
		{"mg k x\r\n", OpError, "", "", ErrInvalidFlag},
		{"mg k Tx\r\n", OpError, "", "", ErrBadToken},
		{"mg Zm9v b\r\n", OpMetaGet, "foo", "", ""},
		{"mg !!! b\r\n", OpError, "", "", ErrDecodeKey},
		{"ms k 2 T5 F3\r\nhi\r\n", OpMetaSet, "k", "hi", ""},
		{"ms k 2 x\r\nhi\r\nmn\r\n", OpError, "", "", ErrInvalidFlag},
		{"ms k 99\r\n", OpError, "", "", ErrTooLarge},
		{"mn\r\n", OpMetaNoop, "", "", ""},
	}
	for _, tc := range cases {
		got := parseAll(t, tc.in, lim)
		if len(got) == 0 {
			t.Errorf("%q: incomplete", tc.in)
			continue
		}
		c := got[0]
		if c.Op != tc.op || c.Err != tc.err || (tc.key != "" && string(c.Key) != tc.key) || string(c.Data) != tc.data {
			t.Errorf("%q: got op %d key %q data %q err %q", tc.in, c.Op, c.Key, c.Data, c.Err)
		}
	}
}

func TestParseIncompleteAndLimits(t *testing.T) {
	lim := Limits{MaxLine: 64, MaxGetLine: 128, MaxItemSize: 1 << 20}
	var c Command
	if n := Parse([]byte("set k 0 0 10\r\nabc"), &c, lim); n != 0 || c.Need != 14+12 {
		t.Fatalf("partial block: n=%d need=%d", n, c.Need)
	}
	if n := Parse([]byte("get k"), &c, lim); n != 0 || c.Need != 0 {
		t.Fatalf("partial line: n=%d need=%d", n, c.Need)
	}
	long := strings.Repeat("x", 65)
	if n := Parse([]byte(long), &c, lim); n == 0 || c.Err != ErrLineTooLong || !c.Close {
		t.Fatalf("long line: n=%d %+v", n, c.Err)
	}
	getLine := "get " + strings.Repeat("k ", 50) + "\r\n" // longer than MaxLine, fine for get
	if n := Parse([]byte(getLine), &c, lim); n == 0 || c.Op != OpGet {
		t.Fatalf("get line: %d %q", c.Op, c.Err)
	}
	keys := 0
	for k := c.NextKey(); k != nil; k = c.NextKey() {
		keys++
	}
	if keys != 50 {
		t.Fatalf("keys %d", keys)
	}
	if n := Parse([]byte("get "+strings.Repeat("k ", 100)), &c, lim); n == 0 || c.Err != ErrLineTooLong {
		t.Fatalf("long get line: %q", c.Err)
	}
	if n := Parse([]byte("set k 0 0 2000000\r\n"), &c, lim); n != 19 || c.Swallow != 2000002 || !c.DeleteKey {
		t.Fatalf("too large: n=%d swallow=%d", n, c.Swallow)
	}
}

func TestParseAllocs(t *testing.T) {
	var c Command
	in := []byte("get key:000000000001\r\nset key:000000000001 0 0 3\r\nabc\r\nmg key v f t c\r\n")
	allocs := testing.AllocsPerRun(100, func() {
		b := in
		for len(b) > 0 {
			n := Parse(b, &c, DefaultLimits)
			for k := c.NextKey(); k != nil; k = c.NextKey() {
			}
			b = b[n:]
		}
	})
	if allocs != 0 {
		t.Fatalf("Parse allocates %.1f times per run", allocs)
	}
}

// FuzzMemcacheParse: Parse never panics, consumes within bounds, reports
// sane Need values and keeps every key within the rules.
func FuzzMemcacheParse(f *testing.F) {
	for _, s := range []string{
		"get a b c\r\n", "gets a\r\n", "gat 10 a b\r\n", "set k 0 0 3\r\nabc\r\n", "cas k 0 0 1 5 noreply\r\nx\r\n",
		"append k 0 0 1\r\nx\r\n", "incr k 1\r\n", "delete k 0 noreply\r\n", "touch k -1\r\n", "flush_all 10 noreply\r\n",
		"stats settings\r\n", "mg k v f t c k O1 q\r\n", "ms Zm9v 2 b T5 MA N10\r\nhi\r\n", "md k I T30 q\r\n",
		"ma k N0 J5 D3 MD v\r\n", "mn\r\n", "me k\r\n", "set k 0 0 99999999\r\n", "set k 0 0 3\r\nabcd\r\n",
	} {
		f.Add([]byte(s))
	}
	lim := Limits{MaxLine: 256, MaxGetLine: 1024, MaxItemSize: 64}
	f.Fuzz(func(t *testing.T, in []byte) {
		var c Command
		b := in
		for steps := 0; len(b) > 0 && steps < 1000; steps++ {
			n := Parse(b, &c, lim)
			if n < 0 || n > len(b) {
				t.Fatalf("consumed %d of %d", n, len(b))
			}
			if n == 0 {
				if c.Need != 0 && (c.Need <= len(b) || c.Need > len(b)+lim.MaxLine+lim.MaxItemSize+2) {
					t.Fatalf("need %d with %d buffered", c.Need, len(b))
				}
				return
			}
			if c.Op == OpError && c.Err == "" {
				t.Fatal("error without a message")
			}
			if c.Op == OpSet && len(c.Data) > lim.MaxItemSize {
				t.Fatal("item over the limit accepted")
			}
			if c.Key != nil && c.Op != OpError && (len(c.Key) == 0 || len(c.Key) > MaxKeyLen) {
				t.Fatalf("bad key %q", c.Key)
			}
			for k := c.NextKey(); k != nil; k = c.NextKey() {
				if !ValidKey(k) {
					t.Fatalf("invalid key %q", k)
				}
			}
			b = b[n:]
			if c.Swallow > 0 {
				b = b[min(c.Swallow, len(b)):]
			}
		}
	})
}
