package engine

// Placeholder until list.go lands: delete this file when adding List.
type List struct {
	n     int
	bytes int64
}

func (l *List) Len() int       { return l.n }
func (l *List) MemSize() int64 { return l.bytes }
func (l *List) Clone() *List   { c := *l; return &c }
