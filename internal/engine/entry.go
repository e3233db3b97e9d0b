package engine

import "unsafe"

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

// Entry is one key's value and metadata. It is laid out to fit the
// 64-byte size class (a []byte field would push it to 80): the string
// payload is kept as pointer + 32-bit length and capacity, so a value is at
// most 4 GiB (proto-max-bulk-len is capped below that).
type Entry struct {
	str        unsafe.Pointer // TypeString payload; see Bytes / SetBytes
	slen, scap uint32
	Obj        any    // *List, *Hash, *Set or *ZSet for the other types
	ExpireAt   int64  // absolute unix ms; 0 = no expiry
	CAS        uint64 // memcached cas unique; changes on every write
	Flags      uint32 // memcached client flags
	Access     uint32 // LRU clock (seconds) or, under LFU, minutes of last decay
	klen       uint32 // key length (see Key)
	keyKind    uint8  // keyNone, keyInline, keyLong
	Type       uint8
	Freq       uint8 // LFU logarithmic counter
	MC         uint8 // memcached meta state (stale, win token sent, fetched); cleared by every SetString
}

// Bytes returns the string payload (aliasing engine memory: valid while
// the slot is locked and the value unchanged).
func (e *Entry) Bytes() []byte {
	if e.str == nil {
		return noBytes[:] // empty, but not nil: nil means "no value" to callers
	}
	return unsafe.Slice((*byte)(e.str), e.scap)[:e.slen]
}

// SetBytes makes b (not copied: the entry takes ownership) the payload.
func (e *Entry) SetBytes(b []byte) {
	if cap(b) > MaxValueLen {
		panic("BUG: string value above MaxValueLen")
	}
	e.str = unsafe.Pointer(unsafe.SliceData(b))
	e.slen, e.scap = uint32(len(b)), uint32(cap(b))
}

var noBytes [0]byte

// MaxValueLen is the largest string payload an Entry can hold.
const MaxValueLen = 1<<32 - 1

// tableShare approximates one key's share of its slot's table: a 16-byte
// bucket at a load between 3/8 and 3/4.
const tableShare = 24

// KeyCost is what a key of n bytes costs with its entry (the Entry and
// the key share one allocation, see newEntry), not counting the value.
func KeyCost(n int) int64 { return keyedSize(n) + tableShare }

// AllocSize approximates the bytes the Go allocator hands out for an
// n-byte object (its size classes: 16-byte steps up to 256, then steps of
// about an eighth of the size).
func AllocSize(n int) int64 {
	if n == 0 {
		return 0
	}
	if n <= 8 {
		return 8
	}
	step := 16
	if n > 256 {
		p := 256
		for p < n {
			p <<= 1
		}
		step = p / 8
	}
	return int64((n + step - 1) / step * step)
}

// MemSize is the accounted size of the value (not the key).
func (e *Entry) MemSize() int64 {
	switch e.Type {
	case TypeString:
		return AllocSize(int(e.scap))
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
		n.SetBytes(append([]byte(nil), e.Bytes()...))
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
