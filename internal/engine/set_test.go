package engine

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

func TestIsInt(t *testing.T) {
	for s, want := range map[string]bool{
		"0": true, "1": true, "-1": true, "9223372036854775807": true, "-9223372036854775808": true,
		"9223372036854775808": false, "-9223372036854775809": false, "-0": false, "007": false,
		"+1": false, " 1": false, "1 ": false, "": false, "-": false, "1a": false, "99999999999999999999": false,
	} {
		if got := isInt(s); got != want {
			t.Errorf("isInt(%q) = %v, want %v", s, got, want)
		}
	}
}

func TestSetAccounting(t *testing.T) {
	s := NewSet()
	base := s.MemSize()
	if !s.Add([]byte("abc")) || s.Add([]byte("abc")) || !s.AddString("12") {
		t.Fatal("Add results")
	}
	if want := base + 3 + 2 + 2*setMemberOverhead; s.MemSize() != want {
		t.Fatalf("MemSize %d, want %d", s.MemSize(), want)
	}
	if s.AllInts() || s.MaxMemberLen() != 3 || s.Len() != 2 {
		t.Fatalf("AllInts %v MaxMemberLen %d Len %d", s.AllInts(), s.MaxMemberLen(), s.Len())
	}
	cl := s.Clone()
	if !s.Remove([]byte("abc")) || s.Remove([]byte("abc")) {
		t.Fatal("Remove results")
	}
	if s.AllInts() || s.MemSize() != base+2+setMemberOverhead {
		t.Fatalf("after Remove: AllInts %v MemSize %d", s.AllInts(), s.MemSize())
	}
	if cl.Len() != 2 || !cl.Has([]byte("abc")) || cl.MemSize() != base+5+2*setMemberOverhead || cl.AllInts() {
		t.Fatal("Clone shares state with the original")
	}
	s.RemoveString("12")
	if s.MemSize() != base || s.Len() != 0 {
		t.Fatalf("empty set MemSize %d", s.MemSize())
	}
}

func TestSetShrinks(t *testing.T) {
	s := NewSet()
	for i := 0; i < 5000; i++ {
		s.AddString(fmt.Sprint(i))
	}
	for i := 0; i < 4900; i++ {
		s.RemoveString(fmt.Sprint(i))
	}
	if s.peak >= 5000 || s.Len() != 100 {
		t.Fatalf("peak %d len %d: map not rebuilt", s.peak, s.Len())
	}
	for i := 4900; i < 5000; i++ {
		if !s.Has([]byte(fmt.Sprint(i))) {
			t.Fatalf("lost %d", i)
		}
	}
}

func TestHashAccounting(t *testing.T) {
	h := NewHash()
	base := h.MemSize()
	h.Set([]byte("f"), []byte("value"))
	h.Set([]byte("f"), []byte("v"))
	if want := base + 1 + 1 + hashFieldOverhead; h.MemSize() != want {
		t.Fatalf("MemSize %d, want %d", h.MemSize(), want)
	}
	cl := h.Clone()
	h.Del([]byte("f"))
	if h.MemSize() != base || cl.MemSize() != base+2+hashFieldOverhead {
		t.Fatal("Del or Clone accounting")
	}
}

func TestRandomPicks(t *testing.T) {
	for _, n := range []int{1, 5, 300, 2000} {
		s := NewSet()
		for i := 0; i < n; i++ {
			s.AddString(fmt.Sprint(i))
		}
		for _, count := range []int{0, 1, 3, n / 2, n - 1, n, n + 5} {
			got := s.RandomDistinct(count)
			if len(got) != min(count, n) {
				t.Fatalf("n %d count %d: %d picks", n, count, len(got))
			}
			seen := map[string]bool{}
			for _, m := range got {
				if seen[m] || !s.Has([]byte(m)) {
					t.Fatalf("n %d count %d: bad pick %q", n, count, m)
				}
				seen[m] = true
			}
		}
		k := 0
		s.RandomRepeat(3*n, func(m string) {
			if !s.Has([]byte(m)) {
				t.Fatalf("bad repeat pick %q", m)
			}
			k++
		})
		if k != 3*n {
			t.Fatalf("RandomRepeat called %d times", k)
		}
		if m := s.Random(); !s.Has([]byte(m)) {
			t.Fatalf("Random %q", m)
		}
	}
}

// TestScanIndex checks the scan guarantee directly: with random adds and
// removes between pages, every element present throughout is returned
// exactly once, and pages hold at least count elements until the end.
func TestScanIndex(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for round := 0; round < 20; round++ {
		s := NewSet()
		n := 50 + rng.IntN(2000)
		for i := 0; i < n; i++ {
			s.AddString(fmt.Sprint("m", i))
		}
		stable := map[string]bool{}
		for m := range s.M {
			stable[m] = true
		}
		seen := map[string]int{}
		cur := uint64(0)
		count := 1 + rng.IntN(100)
		for calls := 0; ; calls++ {
			page, next := s.ScanPage(cur, count)
			if next != 0 && len(page) < count {
				t.Fatalf("short page %d < %d", len(page), count)
			}
			for _, m := range page {
				seen[m]++
			}
			for j := 0; j < 3; j++ {
				m := fmt.Sprint("m", rng.IntN(2*n))
				if rng.IntN(2) == 0 {
					s.AddString(m)
				} else {
					s.RemoveString(m)
					delete(stable, m)
				}
			}
			if next == 0 {
				break
			}
			if next <= cur {
				t.Fatalf("cursor went from %d to %d", cur, next)
			}
			cur = next
		}
		for m := range stable {
			if seen[m] != 1 {
				t.Fatalf("round %d: %s seen %d times", round, m, seen[m])
			}
		}
		for m, k := range seen {
			if k != 1 {
				t.Fatalf("round %d: %s seen %d times", round, m, k)
			}
		}
	}
}

func TestScanIndexCollisions(t *testing.T) {
	// Equal positions are never split across pages.
	ix := &scanIndex{pos: []uint64{1, 5, 5, 5, 9}, keys: []string{"a", "b", "c", "d", "e"}}
	page, next := ix.page(0, 2)
	if !slices.Equal(page, []string{"a", "b", "c", "d"}) || next != 9 {
		t.Fatalf("page %v next %d", page, next)
	}
	page, next = ix.page(next, 2)
	if !slices.Equal(page, []string{"e"}) || next != 0 {
		t.Fatalf("page %v next %d", page, next)
	}
	if ScanPos("") == 0 || ScanPos("x") == 0 {
		t.Fatal("scan position 0 is reserved for the start")
	}
}
