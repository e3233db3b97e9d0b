package engine

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"unsafe"
)

// The Entry must stay in the 64-byte size class (memory per key).
func TestEntrySize(t *testing.T) {
	if s := unsafe.Sizeof(Entry{}); s != 64 {
		t.Fatalf("Entry is %d bytes, want 64", s)
	}
}

// Keys of every length, inline and long, read back as written.
func TestNewEntryKeys(t *testing.T) {
	for n := 0; n <= 300; n++ {
		k := []byte(strings.Repeat("k", n))
		if n > 0 {
			k[n-1] = byte(n)
		}
		e := newEntry(k)
		if e.Key() != string(k) {
			t.Fatalf("len %d: Key() = %q", n, e.Key())
		}
		if keyedSize(n) < int64(unsafe.Sizeof(Entry{}))+int64(min(n, maxInlineKey)) {
			t.Fatalf("len %d: keyedSize %d too small", n, keyedSize(n))
		}
	}
	if (&Entry{}).Key() != "" {
		t.Fatal("unkeyed entry has a key")
	}
}

// The table against a map model under random puts and deletes, through
// growth and shrinking, checking every key's presence after each step.
func TestTableModel(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, space := range []int{5, 40, 1000} {
		var tab table
		model := map[string]*Entry{}
		for step := 0; step < 20000; step++ {
			k := fmt.Sprintf("key:%d", r.IntN(space))
			if e := model[k]; e != nil {
				if tab.getStr(k) != e {
					t.Fatalf("step %d: %q not found", step, k)
				}
				tab.del(e)
				delete(model, k)
			} else {
				if tab.get([]byte(k)) != nil {
					t.Fatalf("step %d: deleted %q found", step, k)
				}
				e := newEntry([]byte(k))
				tab.put(e)
				model[k] = e
			}
			if tab.len() != len(model) {
				t.Fatalf("step %d: len %d, model %d", step, tab.len(), len(model))
			}
			if step%97 == 0 {
				for k, e := range model {
					if tab.getStr(k) != e {
						t.Fatalf("step %d: %q lost", step, k)
					}
				}
				seen := 0
				tab.each(func(e *Entry) bool { seen++; return model[e.Key()] == e || t.Failed() })
				if seen != len(model) {
					t.Fatalf("step %d: each saw %d of %d", step, seen, len(model))
				}
				if len(tab.b) > 0 && (tab.n*4 > len(tab.b)*3 || (len(tab.b) > 8 && tab.n*8 < len(tab.b))) {
					t.Fatalf("step %d: %d entries in %d buckets", step, tab.n, len(tab.b))
				}
			}
		}
	}
}

// Colliding home buckets (equal low hash bits) with wrap-around at the
// end of the array: backward-shift deletion keeps every run reachable.
func TestTableWrapDelete(t *testing.T) {
	var tab table
	tab.resize(8)
	var es []*Entry
	for i := 0; i < 6; i++ {
		e := newEntry([]byte{byte(i)})
		es = append(es, e)
		tab.insert(e, uint64(7-i%2)) // homes 7 and 6: runs wrap to 0, 1...
		tab.n++
	}
	find := func(e *Entry) bool {
		for _, b := range tab.b {
			if b.e == e {
				return true
			}
		}
		return false
	}
	m := tab.mask()
	for _, victim := range []int{0, 3, 1} {
		tab.delHash(es[victim], uint64(7-victim%2))
		if find(es[victim]) {
			t.Fatalf("victim %d still present", victim)
		}
		es[victim] = nil
		for k, e := range es {
			if e == nil {
				continue
			}
			// Reachable from its home without crossing an empty bucket.
			h := uint64(7 - k%2)
			found := false
			for i := h & m; tab.b[i].e != nil; i = (i + 1) & m {
				if tab.b[i].e == e {
					found = true
					break
				}
			}
			if !found {
				t.Fatalf("after deleting %d, entry %d unreachable: %v", victim, k, tab.b)
			}
		}
	}
	if tab.len() != 3 {
		t.Fatalf("len %d, want 3", tab.len())
	}
}
