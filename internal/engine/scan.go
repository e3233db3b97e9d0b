package engine

import (
	"math/rand/v2"
	"slices"
	"sort"
)

// Cursor scans of hashes and sets (HSCAN, SSCAN).
//
// Every element has a fixed 63-bit scan position: FNV-1a of its name,
// shifted into [1, 2^63]. A page returns the elements whose position lies in
// [cursor, next) in position order, and the reply's cursor is next (0 when
// the end is reached). The ranges of successive calls partition the whole
// position space, so an element present for the whole scan is returned
// exactly once, whatever is added or removed in between; elements added or
// removed meanwhile may or may not be returned. Elements with equal
// positions are never split across pages, so a page may hold a few more
// than COUNT elements.
//
// The sorted index is built on the first scan and kept until the
// collection gains or loses an element; it is transient and not accounted
// in MemSize.
type scanIndex struct {
	pos  []uint64
	keys []string
}

// ScanPos is an element's scan position (never 0).
func ScanPos(k string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(k); i++ {
		h ^= uint64(k[i])
		h *= 1099511628211
	}
	return h>>1 + 1
}

func buildScanIndex[V any](m map[string]V) *scanIndex {
	type pk struct {
		p uint64
		k string
	}
	all := make([]pk, 0, len(m))
	for k := range m {
		all = append(all, pk{ScanPos(k), k})
	}
	slices.SortFunc(all, func(a, b pk) int {
		switch {
		case a.p < b.p:
			return -1
		case a.p > b.p:
			return 1
		case a.k < b.k:
			return -1
		case a.k > b.k:
			return 1
		}
		return 0
	})
	ix := &scanIndex{pos: make([]uint64, len(all)), keys: make([]string, len(all))}
	for i, e := range all {
		ix.pos[i], ix.keys[i] = e.p, e.k
	}
	return ix
}

// page returns the elements from cursor on, at least count of them unless
// the end is reached, and the next cursor (0 at the end).
func (ix *scanIndex) page(cursor uint64, count int) ([]string, uint64) {
	n := len(ix.pos)
	i := sort.Search(n, func(i int) bool { return ix.pos[i] >= cursor })
	j := i + max(count, 1)
	if j >= n {
		return ix.keys[i:], 0
	}
	for j < n && ix.pos[j] == ix.pos[j-1] {
		j++
	}
	if j >= n {
		return ix.keys[i:], 0
	}
	return ix.keys[i:j], ix.pos[j]
}

// smallPick is the size up to which random picks walk the map to an
// exactly uniform index; larger maps use Go's randomised iteration start
// (approximately uniform, like Redis's dictGetRandomKey).
const smallPick = 256

func randomKey[V any](m map[string]V) string {
	if n := len(m); n <= smallPick {
		k := rand.IntN(n)
		for f := range m {
			if k == 0 {
				return f
			}
			k--
		}
	}
	for f := range m {
		return f
	}
	return ""
}

func keysOf[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// randomDistinct returns min(count, len(m)) distinct random keys.
func randomDistinct[V any](m map[string]V, count int) []string {
	n := len(m)
	if count >= n {
		return keysOf(m)
	}
	if count <= 0 {
		return nil
	}
	if n <= smallPick || count*3 > n {
		all := keysOf(m)
		for i := 0; i < count; i++ {
			j := i + rand.IntN(n-i)
			all[i], all[j] = all[j], all[i]
		}
		return all[:count]
	}
	seen := make(map[string]struct{}, count)
	out := make([]string, 0, count)
	for len(out) < count {
		k := randomKey(m)
		if _, dup := seen[k]; !dup {
			seen[k] = struct{}{}
			out = append(out, k)
		}
	}
	return out
}

// randomRepeat calls fn with count random keys, possibly repeated (m must
// not be empty). It does not collect them, so a huge count costs no memory
// here.
func randomRepeat[V any](m map[string]V, count int, fn func(string)) {
	if n := len(m); n <= smallPick || count/4 >= n {
		all := keysOf(m)
		for ; count > 0; count-- {
			fn(all[rand.IntN(n)])
		}
		return
	}
	for ; count > 0; count-- {
		fn(randomKey(m))
	}
}
