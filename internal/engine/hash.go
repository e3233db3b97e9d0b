package engine

// Hash is a field → value map.
type Hash struct {
	M     map[string][]byte
	bytes int64
}

const hashFieldOverhead = 48

func NewHash() *Hash { return &Hash{M: make(map[string][]byte)} }

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
	return true
}

// MaxFieldLen is the longest field or value (for OBJECT ENCODING).
func (h *Hash) MaxFieldLen() int {
	m := 0
	for f, v := range h.M {
		m = max(m, len(f), len(v))
	}
	return m
}

// Clone returns a deep copy.
func (h *Hash) Clone() *Hash {
	n := &Hash{M: make(map[string][]byte, len(h.M)), bytes: h.bytes}
	for f, v := range h.M {
		n.M[f] = append([]byte(nil), v...)
	}
	return n
}
