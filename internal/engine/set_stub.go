package engine

// Placeholder until set.go lands: delete this file when adding Set.
type Set struct {
	n     int
	bytes int64
}

func (s *Set) Len() int          { return s.n }
func (s *Set) MemSize() int64    { return s.bytes }
func (s *Set) Clone() *Set       { c := *s; return &c }
func (s *Set) AllInts() bool     { return false }
func (s *Set) MaxMemberLen() int { return 0 }
