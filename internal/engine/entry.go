package engine

// Value types, as TYPE reports them.
const (
	TypeString uint8 = iota
	TypeList
	TypeHash
	TypeSet
	TypeZSet
)

// TypeName is the name TYPE replies with.
func TypeName(t uint8) string {
	switch t {
	case TypeString:
		return "string"
	case TypeList:
		return "list"
	case TypeHash:
		return "hash"
	case TypeSet:
		return "set"
	case TypeZSet:
		return "zset"
	}
	return "none"
}

// Entry is one key's value and metadata. Field order keeps it at 72 bytes.
type Entry struct {
	Str      []byte // TypeString payload
	Obj      any    // *List, *Hash, *Set or *ZSet for the other types
	ExpireAt int64  // absolute unix ms; 0 = no expiry
	CAS      uint64 // memcached cas unique; changes on every write
	Flags    uint32 // memcached client flags
	Access   uint32 // LRU clock (seconds) or, under LFU, minutes of last decay
	Type     uint8
	Freq     uint8 // LFU logarithmic counter
}

// entryOverhead approximates the bytes one key costs beyond its key and
// value payload: the Entry struct, the map slot and the key's string header.
const entryOverhead = 72 + 32

// MemSize is the accounted size of the value (not the key).
func (e *Entry) MemSize() int64 {
	switch e.Type {
	case TypeString:
		return int64(cap(e.Str))
	case TypeList:
		return e.Obj.(*List).MemSize()
	case TypeHash:
		return e.Obj.(*Hash).MemSize()
	case TypeSet:
		return e.Obj.(*Set).MemSize()
	case TypeZSet:
		return e.Obj.(*ZSet).MemSize()
	}
	return 0
}

// Len is the number of elements of a collection (1 for strings).
func (e *Entry) Len() int {
	switch e.Type {
	case TypeList:
		return e.Obj.(*List).Len()
	case TypeHash:
		return e.Obj.(*Hash).Len()
	case TypeSet:
		return e.Obj.(*Set).Len()
	case TypeZSet:
		return e.Obj.(*ZSet).Len()
	}
	return 1
}

// CloneEntry deep-copies e's value and expiry (for COPY); the copy gets
// fresh access metadata when added.
func CloneEntry(e *Entry) *Entry {
	n := &Entry{Type: e.Type, ExpireAt: e.ExpireAt, Flags: e.Flags}
	switch e.Type {
	case TypeString:
		n.Str = append([]byte(nil), e.Str...)
	case TypeList:
		n.Obj = e.Obj.(*List).Clone()
	case TypeHash:
		n.Obj = e.Obj.(*Hash).Clone()
	case TypeSet:
		n.Obj = e.Obj.(*Set).Clone()
	case TypeZSet:
		n.Obj = e.Obj.(*ZSet).Clone()
	}
	return n
}
