package engine

import (
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"testing"
)

type zsetElem struct {
	m string
	s float64
}

func zsetCmpElem(a, b zsetElem) int {
	switch {
	case zless(a.s, a.m, b.s, b.m):
		return -1
	case zless(b.s, b.m, a.s, a.m):
		return 1
	}
	return 0
}

// elems lists z in rank order via Iter.
func zsetElems(z *ZSet) []zsetElem {
	var out []zsetElem
	z.Iter(0, false, func(m string, s float64) bool {
		out = append(out, zsetElem{m, s})
		return true
	})
	return out
}

// check verifies the skip list's links and spans against its length.
func zsetCheck(t *testing.T, z *ZSet) {
	t.Helper()
	for i := 0; i < z.level; i++ {
		pos := 0
		x := z.header
		for x.level[i].forward != nil {
			pos += x.level[i].span
			x = x.level[i].forward
		}
		if pos > z.length {
			t.Fatalf("level %d spans sum to %d > len %d", i, pos, z.length)
		}
		if i == 0 && pos != z.length {
			t.Fatalf("level 0 covers %d of %d", pos, z.length)
		}
	}
	var prev *zsetNode
	n := 0
	for x := z.header.level[0].forward; x != nil; x = x.level[0].forward {
		if x.backward != prev {
			t.Fatalf("bad backward link at %q", x.member)
		}
		if prev != nil && !zless(prev.score, prev.member, x.score, x.member) {
			t.Fatalf("out of order: %q before %q", prev.member, x.member)
		}
		if z.dict[x.member] != x.score {
			t.Fatalf("dict score of %q is %v, node has %v", x.member, z.dict[x.member], x.score)
		}
		prev = x
		n++
	}
	if z.tail != prev || n != len(z.dict) || n != z.length {
		t.Fatalf("tail/len mismatch: n=%d dict=%d len=%d", n, len(z.dict), z.length)
	}
}

func TestZSetBasic(t *testing.T) {
	z := NewZSet()
	empty := z.MemSize()
	if !z.Add([]byte("b"), 2) || !z.Add([]byte("a"), 1) || !z.Add([]byte("c"), 2) {
		t.Fatal("Add of new members reported existing")
	}
	if z.Add([]byte("a"), 3) {
		t.Fatal("Add of existing member reported new")
	}
	zsetCheck(t, z)
	if got := zsetElems(z); !slices.Equal(got, []zsetElem{{"b", 2}, {"c", 2}, {"a", 3}}) {
		t.Fatalf("order %v", got)
	}
	if r, s, ok := z.Rank([]byte("c")); !ok || r != 1 || s != 2 {
		t.Fatalf("Rank c = %d %v %v", r, s, ok)
	}
	if _, _, ok := z.Rank([]byte("x")); ok {
		t.Fatal("Rank of missing member")
	}
	if m, s := z.At(2); m != "a" || s != 3 {
		t.Fatalf("At(2) = %q %v", m, s)
	}
	if z.MaxMemberLen() != 1 || z.Len() != 3 {
		t.Fatal("MaxMemberLen/Len")
	}
	c := z.Clone()
	if c.MemSize() != z.MemSize() {
		t.Fatalf("clone size %d != %d", c.MemSize(), z.MemSize())
	}
	z.Remove([]byte("a"))
	if c.Len() != 3 || z.Len() != 2 {
		t.Fatal("clone shares state")
	}
	for _, m := range []string{"b", "c", "nope"} {
		z.Remove([]byte(m))
	}
	zsetCheck(t, z)
	if z.Len() != 0 || z.MemSize() != empty {
		t.Fatalf("after removing all: len %d size %d (empty %d)", z.Len(), z.MemSize(), empty)
	}
}

func TestZSetRanges(t *testing.T) {
	z := NewZSet()
	for i, m := range []string{"a", "b", "c", "d", "e"} {
		z.Add([]byte(m), float64(i))
	}
	inf := math.Inf(1)
	for _, tc := range []struct {
		r          ScoreRange
		start, end int
	}{
		{ScoreRange{Min: -inf, Max: inf}, 0, 5},
		{ScoreRange{Min: 1, Max: 3}, 1, 4},
		{ScoreRange{Min: 1, Max: 3, MinEx: true}, 2, 4},
		{ScoreRange{Min: 1, Max: 3, MaxEx: true}, 1, 3},
		{ScoreRange{Min: 2, Max: 2}, 2, 3},
		{ScoreRange{Min: 2, Max: 2, MinEx: true}, 0, 0},
		{ScoreRange{Min: 3, Max: 1}, 0, 0},
		{ScoreRange{Min: 10, Max: inf}, 5, 5},
		{ScoreRange{Min: 1.5, Max: 1.7}, 2, 2},
	} {
		s, e := z.ScoreRanks(tc.r)
		if s != tc.start || e != tc.end {
			t.Errorf("ScoreRanks(%+v) = %d,%d want %d,%d", tc.r, s, e, tc.start, tc.end)
		}
	}
	z2 := NewZSet()
	for _, m := range []string{"a", "b", "bb", "c", "d"} {
		z2.Add([]byte(m), 0)
	}
	lb := func(s string) LexBound {
		switch s {
		case "-":
			return LexBound{Inf: -1}
		case "+":
			return LexBound{Inf: 1}
		}
		return LexBound{S: s[1:], Ex: s[0] == '('}
	}
	for _, tc := range []struct {
		min, max   string
		start, end int
	}{
		{"-", "+", 0, 5},
		{"[b", "[c", 1, 4},
		{"(b", "[c", 2, 4},
		{"[b", "(c", 1, 3},
		{"[bb", "[bb", 2, 3},
		{"(bb", "[bb", 0, 0},
		{"+", "-", 0, 0},
		{"-", "-", 0, 0},
		{"+", "+", 0, 0},
		{"[z", "+", 5, 5},
		{"[c", "[a", 0, 0},
	} {
		s, e := z2.LexRanks(LexRange{lb(tc.min), lb(tc.max)})
		if s != tc.start || e != tc.end {
			t.Errorf("LexRanks(%s %s) = %d,%d want %d,%d", tc.min, tc.max, s, e, tc.start, tc.end)
		}
	}
	if n := z.RemoveRanks(1, 3); n != 2 {
		t.Fatalf("RemoveRanks removed %d", n)
	}
	zsetCheck(t, z)
	if got := zsetElems(z); !slices.Equal(got, []zsetElem{{"a", 0}, {"d", 3}, {"e", 4}}) {
		t.Fatalf("after RemoveRanks: %v", got)
	}
	var rev []string
	z.Iter(2, true, func(m string, _ float64) bool { rev = append(rev, m); return true })
	if !slices.Equal(rev, []string{"e", "d", "a"}) {
		t.Fatalf("reverse Iter %v", rev)
	}
}

func TestZSetScan(t *testing.T) {
	for _, n := range []int{0, 5, 128, 129, 1000} {
		z := NewZSet()
		for i := 0; i < n; i++ {
			z.Add([]byte("m"+strconv.Itoa(i)), float64(i))
		}
		seen := map[string]int{}
		cur := uint64(0)
		calls := 0
		for {
			cur = z.Scan(cur, 10, func(m string, s float64) { seen[m]++ })
			calls++
			// Mutate between calls: members added or removed mid-scan
			// must not make stable members disappear.
			z.Add([]byte("new"+strconv.Itoa(calls)), -1)
			if cur == 0 {
				break
			}
			if calls > 1000 {
				t.Fatal("scan does not terminate")
			}
		}
		for i := 0; i < n; i++ {
			if seen["m"+strconv.Itoa(i)] != 1 {
				t.Fatalf("n=%d: member m%d seen %d times", n, i, seen["m"+strconv.Itoa(i)])
			}
		}
	}
}

// TestZSetModel runs random operations against the skip list and a sorted
// slice and compares every observable result.
func TestZSetModel(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	z := NewZSet()
	var model []zsetElem
	find := func(m string) int {
		return slices.IndexFunc(model, func(e zsetElem) bool { return e.m == m })
	}
	// Few distinct scores so ties (ordering by member) are common.
	score := func() float64 {
		switch rng.IntN(10) {
		case 0:
			return math.Inf(-1)
		case 1:
			return math.Inf(1)
		}
		return float64(rng.IntN(20)) / 2
	}
	member := func() string { return strconv.Itoa(rng.IntN(300)) }
	for step := 0; step < 20000; step++ {
		switch op := rng.IntN(10); {
		case op < 4:
			m, s := member(), score()
			i := find(m)
			if z.Add([]byte(m), s) != (i < 0) {
				t.Fatalf("step %d: Add(%s) new mismatch", step, m)
			}
			if i >= 0 {
				model = slices.Delete(model, i, i+1)
			}
			model = append(model, zsetElem{m, s})
			slices.SortFunc(model, zsetCmpElem)
		case op < 6:
			m := member()
			i := find(m)
			if z.Remove([]byte(m)) != (i >= 0) {
				t.Fatalf("step %d: Remove(%s) mismatch", step, m)
			}
			if i >= 0 {
				model = slices.Delete(model, i, i+1)
			}
		case op == 6:
			m := member()
			i := find(m)
			r, s, ok := z.Rank([]byte(m))
			if ok != (i >= 0) || (ok && (r != i || s != model[i].s)) {
				t.Fatalf("step %d: Rank(%s) = %d %v %v, model %d", step, m, r, s, ok, i)
			}
		case op == 7:
			r := ScoreRange{Min: score(), Max: score(), MinEx: rng.IntN(2) == 0, MaxEx: rng.IntN(2) == 0}
			s, e := z.ScoreRanks(r)
			ws, we := 0, 0
			first := true
			for i, el := range model {
				if r.aboveMin(el.s) && r.belowMax(el.s) {
					if first {
						ws, first = i, false
					}
					we = i + 1
				}
			}
			if first {
				if e > s {
					t.Fatalf("step %d: ScoreRanks(%+v) = %d,%d want empty", step, r, s, e)
				}
			} else if s != ws || e != we {
				t.Fatalf("step %d: ScoreRanks(%+v) = %d,%d want %d,%d", step, r, s, e, ws, we)
			}
		case op == 8:
			if len(model) > 0 {
				a := rng.IntN(len(model))
				b := a + rng.IntN(5)
				n := z.RemoveRanks(a, b)
				b = min(b, len(model))
				if n != b-a {
					t.Fatalf("step %d: RemoveRanks(%d,%d) = %d", step, a, b, n)
				}
				model = slices.Delete(model, a, b)
			}
		default:
			if len(model) > 0 {
				r := rng.IntN(len(model))
				rev := rng.IntN(2) == 0
				var got []zsetElem
				z.Iter(r, rev, func(m string, s float64) bool {
					got = append(got, zsetElem{m, s})
					return len(got) < 7
				})
				var want []zsetElem
				for i := r; i >= 0 && i < len(model) && len(want) < 7; {
					want = append(want, model[i])
					if rev {
						i--
					} else {
						i++
					}
				}
				if !slices.Equal(got, want) {
					t.Fatalf("step %d: Iter(%d,%v) = %v want %v", step, r, rev, got, want)
				}
			}
		}
		if z.Len() != len(model) {
			t.Fatalf("step %d: len %d want %d", step, z.Len(), len(model))
		}
		if step%1000 == 0 {
			zsetCheck(t, z)
			if !slices.Equal(zsetElems(z), model) {
				t.Fatalf("step %d: contents differ", step)
			}
			var want int64 = zsetHeaderSize
			for _, e := range model {
				want += int64(len(e.m)) + zsetElemOverhead
			}
			if z.MemSize() != want {
				t.Fatalf("step %d: MemSize %d want %d", step, z.MemSize(), want)
			}
		}
	}
}
