package engine

// Hash is a field → value map.
type Hash struct {
	M     map[string][]byte
	bytes int64
	peak  int        // largest Len since the map was last rebuilt
	scan  *scanIndex // HSCAN index, dropped when fields are added or removed
}

const hashFieldOverhead = 48

func NewHash() *Hash { return &Hash{M: make(map[string][]byte)} }

// NewHashSize returns an empty hash with room for n fields (snapshot load).
func NewHashSize(n int) *Hash { return &Hash{M: make(map[string][]byte, n)} }

func (h *Hash) Len() int       { return len(h.M) }
func (h *Hash) MemSize() int64 { return h.bytes + 48 }
func (h *Hash) Get(f []byte) ([]byte, bool) {
	v, ok := h.M[string(f)]
	return v, ok
}

// Set stores a copy of v under f and reports whether f is new.
func (h *Hash) Set(f, v []byte) bool {
	old, ok := h.M[string(f)]
	if ok {
		h.bytes += int64(len(v) - len(old))
		if cap(old) >= len(v) {
			h.M[string(f)] = append(old[:0], v...)
			return false
		}
		h.M[string(f)] = append([]byte(nil), v...)
		return false
	}
	h.M[string(f)] = append([]byte(nil), v...)
	h.bytes += int64(len(f)+len(v)) + hashFieldOverhead
	h.scan = nil
	h.peak = max(h.peak, len(h.M))
	return true
}

// Del removes f and reports whether it existed.
func (h *Hash) Del(f []byte) bool {
	old, ok := h.M[string(f)]
	if !ok {
		return false
	}
	delete(h.M, string(f))
	h.bytes -= int64(len(f)+len(old)) + hashFieldOverhead
	h.scan = nil
	if shrinkable(len(h.M), h.peak) {
		m := make(map[string][]byte, len(h.M))
		for k, v := range h.M {
			m[k] = v
		}
		h.M, h.peak = m, len(m)
	}
	return true
}

// shrinkable reports whether a map that once held peak entries and now
// holds n should be rebuilt: Go maps never shrink, and random picks and
// iteration cost grow with the capacity.
func shrinkable(n, peak int) bool { return peak >= 1024 && n < peak/8 }

// MaxFieldLen is the longest field or value (for OBJECT ENCODING).
func (h *Hash) MaxFieldLen() int {
	m := 0
	for f, v := range h.M {
		m = max(m, len(f), len(v))
	}
	return m
}

// RandomField returns a random field (the hash must not be empty).
func (h *Hash) RandomField() string { return randomKey(h.M) }

// RandomFields returns min(count, Len) distinct random fields.
func (h *Hash) RandomFields(count int) []string { return randomDistinct(h.M, count) }

// RandomFieldsRepeat calls fn with count random fields, possibly repeated
// (the hash must not be empty).
func (h *Hash) RandomFieldsRepeat(count int, fn func(string)) { randomRepeat(h.M, count, fn) }

// ScanPage returns the fields of one HSCAN page and the next cursor; see
// scanIndex for the guarantees. The returned slice must not be modified.
func (h *Hash) ScanPage(cursor uint64, count int) ([]string, uint64) {
	if h.scan == nil {
		h.scan = buildScanIndex(h.M)
	}
	return h.scan.page(cursor, count)
}

// Clone returns a deep copy.
func (h *Hash) Clone() *Hash {
	n := &Hash{M: make(map[string][]byte, len(h.M)), bytes: h.bytes, peak: len(h.M)}
	for f, v := range h.M {
		n.M[f] = append([]byte(nil), v...)
	}
	return n
}
