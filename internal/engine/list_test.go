package engine

import (
	"bytes"
	"fmt"
	"math/rand"
	"slices"
	"strings"
	"testing"
)

func listItems(l *List) [][]byte {
	out := make([][]byte, l.Len())
	for i := range out {
		out[i] = l.At(i)
	}
	return out
}

// checkList verifies the node invariants: no empty node, node limits
// kept, counts adding up, Range and RangeRev agreeing with At.
func checkList(t *testing.T, l *List) {
	t.Helper()
	n := 0
	for k := 0; k < l.nn; k++ {
		nd := l.node(k)
		c := nd.count()
		if c <= 0 || c > listNodeElems || (c > 1 && nd.used() > listNodeBytes) {
			t.Fatalf("node %d of %d: %d elements, %d bytes", k, l.nn, c, nd.used())
		}
		n += c
	}
	if n != l.n {
		t.Fatalf("nodes hold %d elements, list says %d", n, l.n)
	}
	if len(l.nodes) > listMinCap && l.nn*4 < len(l.nodes)/2 {
		t.Fatalf("ring not shrunk: %d nodes in %d", l.nn, len(l.nodes))
	}
	var fwd, rev [][]byte
	l.Range(0, l.n, func(v []byte) bool { fwd = append(fwd, v); return true })
	l.RangeRev(0, l.n, func(v []byte) bool { rev = append(rev, v); return true })
	slices.Reverse(rev)
	items := listItems(l)
	if !slices.EqualFunc(fwd, items, bytes.Equal) || !slices.EqualFunc(rev, items, bytes.Equal) {
		t.Fatalf("Range/RangeRev differ from At")
	}
}

func modelBytes(m [][]byte) int64 {
	var b int64
	for _, v := range m {
		b += int64(len(v)) + listElemOverhead
	}
	return b + listHeader
}

func TestListBasic(t *testing.T) {
	l := NewList()
	if l.PopFront() != nil || l.PopBack() != nil || l.Len() != 0 {
		t.Fatal("empty list pops")
	}
	for i := 0; i < 10; i++ {
		l.PushBack([]byte{byte('a' + i)})
	}
	l.PushFront([]byte("z"))
	if got := string(l.At(0)) + string(l.At(10)); got != "zj" {
		t.Fatalf("ends %q", got)
	}
	if i, ok := l.Index(-1); !ok || i != 10 {
		t.Fatalf("Index(-1) = %d %v", i, ok)
	}
	if _, ok := l.Index(11); ok {
		t.Fatal("Index(11) in range")
	}
	l.Insert(3, []byte("X"))
	l.Remove(0)
	var s string
	for _, v := range listItems(l) {
		s += string(v)
	}
	if s != "abXcdefghij" {
		t.Fatalf("got %q", s)
	}
	c := l.Clone()
	c.Set(0, []byte("changed"))
	if string(l.At(0)) != "a" || c.MemSize() == l.MemSize() {
		t.Fatal("clone shares storage or accounting")
	}
	if n := l.Rem([]byte("X"), 0); n != 1 {
		t.Fatalf("Rem = %d", n)
	}
	l.Trim(2, 3)
	if l.Len() != 5 || string(l.At(0)) != "c" || string(l.At(4)) != "g" {
		t.Fatalf("trim: %q", listItems(l))
	}
	l.Trim(3, 3)
	if l.Len() != 0 || l.MemSize() != listHeader {
		t.Fatalf("trim all: len %d mem %d", l.Len(), l.MemSize())
	}
}

func TestListPushCopies(t *testing.T) {
	l := NewList()
	b := []byte("abc")
	l.PushBack(b)
	l.PushFront(b)
	l.Insert(1, b)
	l.Set(2, b)
	b[0] = 'X'
	for _, v := range listItems(l) {
		if string(v) != "abc" {
			t.Fatalf("element aliases caller buffer: %q", v)
		}
	}
}

// TestListModel runs random operations against a plain slice.
func TestListModel(t *testing.T) {
	for seed := int64(1); seed <= 20; seed++ {
		rng := rand.New(rand.NewSource(seed))
		l := NewList()
		var m [][]byte
		val := func() []byte { return []byte(fmt.Sprint(rng.Intn(8))) }
		if seed > 10 {
			// Elements of up to 3.5 KiB: nodes split by bytes, not count.
			val = func() []byte {
				d := rng.Intn(8)
				return []byte(fmt.Sprint(d) + strings.Repeat("x", d*500))
			}
		}
		for step := 0; step < 3000; step++ {
			op := rng.Intn(12)
			// Bias towards growth early and shrinkage later so the ring
			// both grows and shrinks.
			if step > 2000 && op < 3 {
				op += 3
			}
			switch op {
			case 0, 1:
				v := val()
				l.PushBack(v)
				m = append(m, v)
			case 2:
				v := val()
				l.PushFront(v)
				m = slices.Insert(m, 0, v)
			case 3, 4:
				got := l.PopFront()
				var want []byte
				if len(m) > 0 {
					want, m = m[0], m[1:]
				}
				if !bytes.Equal(got, want) {
					t.Fatalf("seed %d step %d PopFront %q want %q", seed, step, got, want)
				}
			case 5:
				got := l.PopBack()
				var want []byte
				if len(m) > 0 {
					want, m = m[len(m)-1], m[:len(m)-1]
				}
				if !bytes.Equal(got, want) {
					t.Fatalf("seed %d step %d PopBack %q want %q", seed, step, got, want)
				}
			case 6:
				i := rng.Intn(len(m) + 1)
				v := val()
				l.Insert(i, v)
				m = slices.Insert(m, i, v)
			case 7:
				if len(m) > 0 {
					i := rng.Intn(len(m))
					l.Remove(i)
					m = slices.Delete(m, i, i+1)
				}
			case 8:
				if len(m) > 0 {
					i := rng.Intn(len(m))
					v := []byte(fmt.Sprint("long-value-", rng.Intn(100)))
					l.Set(i, v)
					m[i] = v
				}
			case 9:
				v := val()
				count := int64(rng.Intn(5) - 2)
				got := l.Rem(v, count)
				want := 0
				if count >= 0 {
					var k [][]byte
					for _, e := range m {
						if bytes.Equal(e, v) && (count == 0 || int64(want) < count) {
							want++
							continue
						}
						k = append(k, e)
					}
					m = k
				} else {
					var k [][]byte
					for i := len(m) - 1; i >= 0; i-- {
						if bytes.Equal(m[i], v) && int64(want) < -count {
							want++
							continue
						}
						k = append(k, m[i])
					}
					slices.Reverse(k)
					m = k
				}
				if got != want {
					t.Fatalf("seed %d step %d Rem %q %d = %d want %d", seed, step, v, count, got, want)
				}
			case 10:
				if rng.Intn(10) == 0 {
					left, right := rng.Intn(len(m)+2), rng.Intn(3)
					l.Trim(left, right)
					if left+right >= len(m) {
						m = nil
					} else {
						m = m[left : len(m)-right]
					}
				}
			case 11:
				c := l.Clone()
				if !slices.EqualFunc(listItems(c), m, bytes.Equal) || c.MemSize() != l.MemSize() {
					t.Fatalf("seed %d step %d clone differs", seed, step)
				}
			}
			if l.Len() != len(m) {
				t.Fatalf("seed %d step %d len %d want %d", seed, step, l.Len(), len(m))
			}
			if l.MemSize() != modelBytes(m) {
				t.Fatalf("seed %d step %d MemSize %d want %d", seed, step, l.MemSize(), modelBytes(m))
			}
			if step%50 == 0 || l.Len() < 10 {
				if !slices.EqualFunc(listItems(l), m, bytes.Equal) {
					t.Fatalf("seed %d step %d contents %q want %q", seed, step, listItems(l), m)
				}
			}
			if step%50 == 0 || l.Len() < 10 {
				checkList(t, l)
			}
		}
	}
}

func BenchmarkListPushPop(b *testing.B) {
	l := NewList()
	v := []byte("value")
	for i := 0; i < b.N; i++ {
		l.PushBack(v)
		if l.Len() > 1000 {
			l.PopFront()
		}
	}
}

// TestListLarge pushes at both ends past many nodes and checks indexed
// access, ranges from the middle and the node count (elements are packed,
// not one object each).
func TestListLarge(t *testing.T) {
	l := NewList()
	var m [][]byte
	const n = 50000
	for i := 0; i < n; i++ {
		v := []byte(fmt.Sprint(i))
		if i%3 == 0 {
			l.PushFront(v)
			m = append(m, nil)
			copy(m[1:], m)
			m[0] = v
		} else {
			l.PushBack(v)
			m = append(m, v)
		}
	}
	if l.nn > 2*n/listNodeElems+2 {
		t.Fatalf("%d elements in %d nodes", n, l.nn)
	}
	rng := rand.New(rand.NewSource(1))
	for range 1000 {
		i := rng.Intn(n)
		if !bytes.Equal(l.At(i), m[i]) {
			t.Fatalf("At(%d) = %q want %q", i, l.At(i), m[i])
		}
	}
	s := rng.Intn(n - 500)
	var got [][]byte
	l.Range(s, s+300, func(v []byte) bool { got = append(got, v); return true })
	if !slices.EqualFunc(got, m[s:s+300], bytes.Equal) {
		t.Fatal("Range from the middle differs")
	}
	got = got[:0]
	l.RangeRev(s, s+300, func(v []byte) bool { got = append(got, v); return true })
	slices.Reverse(got)
	if !slices.EqualFunc(got, m[s:s+300], bytes.Equal) {
		t.Fatal("RangeRev from the middle differs")
	}
	l.Trim(1000, 2000)
	m = m[1000 : len(m)-2000]
	if l.MemSize() != modelBytes(m) {
		t.Fatalf("MemSize %d want %d", l.MemSize(), modelBytes(m))
	}
	checkList(t, l)
	for l.Len() > 0 {
		l.PopBack()
	}
	if l.nn != 0 || l.nodes != nil || l.MemSize() != listHeader {
		t.Fatalf("drained list keeps %d nodes", l.nn)
	}
}

// TestListPopThenPush: the slice a pop returns stays intact when the same
// list is pushed to (LMOVE/RPOPLPUSH on one list push what they popped).
func TestListPopThenPush(t *testing.T) {
	for _, tc := range []struct{ from, to bool }{{true, true}, {true, false}, {false, true}, {false, false}} {
		l := NewList()
		for i := range 300 {
			l.PushBack([]byte(fmt.Sprint("e", i)))
		}
		want := listItems(l)
		want = slices.Clone(want)
		for i := range 1000 {
			v := l.Pop(tc.from)
			l.Push(v, tc.to)
			var exp []byte
			if tc.from {
				exp = want[0]
				want = want[1:]
			} else {
				exp = want[len(want)-1]
				want = want[:len(want)-1]
			}
			if !bytes.Equal(v, exp) {
				t.Fatalf("%v step %d: popped %q, after push %q", tc, i, exp, v)
			}
			if tc.to {
				want = append([][]byte{exp}, want...)
			} else {
				want = append(want, exp)
			}
		}
		if !slices.EqualFunc(listItems(l), want, bytes.Equal) {
			t.Fatalf("%v: contents differ", tc)
		}
		checkList(t, l)
	}
}

// BenchmarkListPushFrontGrowing is LPUSH onto one list that keeps
// growing (redis-benchmark's LPUSH).
func BenchmarkListPushFrontGrowing(b *testing.B) {
	l := NewList()
	v := []byte("xxx")
	b.ReportAllocs()
	for b.Loop() {
		l.PushFront(v)
	}
}
