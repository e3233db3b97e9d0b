package engine

// Placeholder until zset.go lands: delete this file when adding ZSet.
type ZSet struct {
	n     int
	bytes int64
}

func (z *ZSet) Len() int          { return z.n }
func (z *ZSet) MemSize() int64    { return z.bytes }
func (z *ZSet) Clone() *ZSet      { c := *z; return &c }
func (z *ZSet) MaxMemberLen() int { return 0 }
