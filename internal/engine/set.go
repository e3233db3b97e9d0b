package engine

// Set is an unordered set of distinct members.
type Set struct {
	M      map[string]struct{}
	bytes  int64
	nonInt bool       // a non-integer member was ever added (sticky, as Redis never converts back to an intset)
	peak   int        // largest Len since the map was last rebuilt
	scan   *scanIndex // SSCAN index, dropped when members are added or removed
}

const setMemberOverhead = 32

func NewSet() *Set { return &Set{M: make(map[string]struct{})} }

// NewSetSize returns an empty set with room for n members (snapshot load).
func NewSetSize(n int) *Set { return &Set{M: make(map[string]struct{}, n)} }

func (s *Set) Len() int       { return len(s.M) }
func (s *Set) MemSize() int64 { return s.bytes + 48 }

// Has reports whether m is a member.
func (s *Set) Has(m []byte) bool {
	_, ok := s.M[string(m)]
	return ok
}

// Add inserts m (copied) and reports whether it was new.
func (s *Set) Add(m []byte) bool {
	if _, ok := s.M[string(m)]; ok {
		return false
	}
	s.add(string(m))
	return true
}

// AddString is Add for a string member.
func (s *Set) AddString(m string) bool {
	if _, ok := s.M[m]; ok {
		return false
	}
	s.add(m)
	return true
}

func (s *Set) add(m string) {
	s.M[m] = struct{}{}
	s.bytes += int64(len(m)) + setMemberOverhead
	if !s.nonInt && !isInt(m) {
		s.nonInt = true
	}
	s.scan = nil
	s.peak = max(s.peak, len(s.M))
}

// Remove deletes m and reports whether it was a member.
func (s *Set) Remove(m []byte) bool {
	if _, ok := s.M[string(m)]; !ok {
		return false
	}
	s.remove(string(m))
	return true
}

// RemoveString is Remove for a string member.
func (s *Set) RemoveString(m string) bool {
	if _, ok := s.M[m]; !ok {
		return false
	}
	s.remove(m)
	return true
}

func (s *Set) remove(m string) {
	delete(s.M, m)
	s.bytes -= int64(len(m)) + setMemberOverhead
	s.scan = nil
	if shrinkable(len(s.M), s.peak) {
		n := make(map[string]struct{}, len(s.M))
		for k := range s.M {
			n[k] = struct{}{}
		}
		s.M, s.peak = n, len(n)
	}
}

// AllInts reports whether every member ever added is an integer Redis
// would keep in an intset. Like Redis's encoding conversion it is sticky:
// removing the non-integer members does not make the set an intset again.
func (s *Set) AllInts() bool { return !s.nonInt }

// MaxMemberLen is the longest member (for OBJECT ENCODING).
func (s *Set) MaxMemberLen() int {
	n := 0
	for m := range s.M {
		n = max(n, len(m))
	}
	return n
}

// Members returns the members in no particular order.
func (s *Set) Members() []string { return keysOf(s.M) }

// Random returns a random member (the set must not be empty).
func (s *Set) Random() string { return randomKey(s.M) }

// RandomDistinct returns min(count, Len) distinct random members.
func (s *Set) RandomDistinct(count int) []string { return randomDistinct(s.M, count) }

// RandomRepeat calls fn with count random members, possibly repeated (the
// set must not be empty).
func (s *Set) RandomRepeat(count int, fn func(string)) { randomRepeat(s.M, count, fn) }

// ScanPage returns the members of one SSCAN page and the next cursor; see
// scanIndex for the guarantees. The returned slice must not be modified.
func (s *Set) ScanPage(cursor uint64, count int) ([]string, uint64) {
	if s.scan == nil {
		s.scan = buildScanIndex(s.M)
	}
	return s.scan.page(cursor, count)
}

// Clone returns a deep copy.
func (s *Set) Clone() *Set {
	n := &Set{M: make(map[string]struct{}, len(s.M)), bytes: s.bytes, nonInt: s.nonInt, peak: len(s.M)}
	for m := range s.M {
		n.M[m] = struct{}{}
	}
	return n
}

// isInt reports whether m is the canonical decimal form of an int64, as
// Redis's string2ll requires for intset members (no sign on zero, no
// leading zeros, no '+', no spaces).
func isInt(m string) bool {
	if len(m) == 0 || len(m) > 20 {
		return false
	}
	if m == "0" {
		return true
	}
	i := 0
	neg := m[0] == '-'
	if neg {
		i = 1
	}
	if i >= len(m) || m[i] < '1' || m[i] > '9' {
		return false
	}
	var v uint64
	for ; i < len(m); i++ {
		c := m[i]
		if c < '0' || c > '9' {
			return false
		}
		d := uint64(c - '0')
		if v > (1<<64-1-d)/10 {
			return false
		}
		v = v*10 + d
	}
	if neg {
		return v <= 1<<63
	}
	return v <= 1<<63-1
}
