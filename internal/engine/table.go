package engine

import (
	"hash/maphash"
	"math/rand/v2"
	"sync/atomic"
	"unsafe"

	"shoal/internal/cluster"
)

// The keyspace table of one slot.
//
// A lookup is dominated by dependent cache misses, not by instructions:
// in a server under load the caches are cold between two commands (the
// kernel's socket buffers and 50 connections' state pass through them),
// and each pointer followed costs a trip to memory. A Go map of
// string → *Entry follows six: map header, directory, table, control
// group, the key's bytes, the entry (then the value). This table follows
// three: the slot's bucket array (held in the Slot), the entry, and the
// value; the key's bytes live in the same allocation as the entry (see
// newEntry), and each bucket carries the key's full hash so that almost
// every probe that reaches an entry is a hit.
//
// Open addressing with linear probing, load ≤ 3/4, deletion by backward
// shift (no tombstones, so probe sequences never lengthen with churn).
type table struct {
	b []bucket // nil or a power-of-two length
	n int      // live entries
	// pub is the array's header bucket (b is the array from its second
	// element on; the header's h is the mask) for Prefetch, which reads
	// the table without the slot's lock. Buckets are therefore written
	// with atomic stores (the owner reads them plainly under the lock).
	pub atomic.Pointer[bucket]
}

type bucket struct {
	e *Entry // nil: empty
	h uint64 // hash of e's key
}

func (b *bucket) set(e *Entry, h uint64) {
	atomic.StorePointer((*unsafe.Pointer)(unsafe.Pointer(&b.e)), unsafe.Pointer(e))
	atomic.StoreUint64(&b.h, h)
}

var hashSeed = maphash.MakeSeed()

func keyHash(k []byte) uint64        { return maphash.Bytes(hashSeed, k) }
func keyHashStr(k string) uint64     { return maphash.String(hashSeed, k) }
func (t *table) len() int            { return t.n }
func (t *table) mask() uint64        { return uint64(len(t.b) - 1) }
func (t *table) get(k []byte) *Entry { return t.getHash(k, keyHash(k)) }

func (t *table) getStr(k string) *Entry {
	if t.n == 0 {
		return nil
	}
	h := keyHashStr(k)
	m := t.mask()
	for i := h & m; ; i = (i + 1) & m {
		b := &t.b[i]
		if b.e == nil {
			return nil
		}
		if b.h == h && b.e.Key() == k {
			return b.e
		}
	}
}

func (t *table) getHash(k []byte, h uint64) *Entry {
	if t.n == 0 {
		return nil
	}
	m := t.mask()
	for i := h & m; ; i = (i + 1) & m {
		b := &t.b[i]
		if b.e == nil {
			return nil
		}
		if b.h == h && b.e.Key() == string(k) {
			return b.e
		}
	}
}

// put stores e under its key, which must not be present.
func (t *table) put(e *Entry) {
	if (t.n+1)*4 > len(t.b)*3 {
		t.resize(max(8, len(t.b)*2))
	}
	t.insert(e, keyHashStr(e.Key()))
	t.n++
}

func (t *table) insert(e *Entry, h uint64) {
	m := t.mask()
	i := h & m
	for t.b[i].e != nil {
		i = (i + 1) & m
	}
	t.b[i].set(e, h)
}

// del removes e (present in the table).
func (t *table) del(e *Entry) { t.delHash(e, keyHashStr(e.Key())) }

func (t *table) delHash(e *Entry, h uint64) {
	m := t.mask()
	i := h & m
	for t.b[i].e != e {
		i = (i + 1) & m
	}
	// Backward shift: move later members of the run into the hole when
	// their home position is not inside (hole, their position].
	for j := (i + 1) & m; t.b[j].e != nil; j = (j + 1) & m {
		home := t.b[j].h & m
		if (j > i && (home <= i || home > j)) || (j < i && home <= i && home > j) {
			t.b[i].set(t.b[j].e, t.b[j].h)
			i = j
		}
	}
	t.b[i].set(nil, 0)
	t.n--
	if len(t.b) > 8 && t.n*8 < len(t.b) {
		sz := 8
		for sz*3 < t.n*4*2 { // leave room to grow: load ≤ 3/8 after a shrink
			sz *= 2
		}
		t.resize(sz)
	}
}

func (t *table) resize(n int) {
	old := t.b
	t.alloc(n)
	for _, b := range old {
		if b.e != nil {
			t.insert(b.e, b.h)
		}
	}
}

// alloc installs an empty array of n buckets (a power of two).
func (t *table) alloc(n int) {
	arr := make([]bucket, n+1)
	arr[0].h = uint64(n - 1)
	t.b = arr[1:]
	t.pub.Store(&arr[0])
}

// reserve makes room for n entries in an empty table.
func (t *table) reserve(n int) {
	if t.n != 0 {
		return
	}
	sz := 8
	for sz*3 < n*4 {
		sz *= 2
	}
	if sz > len(t.b) {
		t.alloc(sz)
	}
}

func (t *table) clear() {
	t.b, t.n = nil, 0
	t.pub.Store(nil)
}

// each calls fn for every entry in bucket order until it returns false.
// fn must not add or delete entries.
func (t *table) each(fn func(e *Entry) bool) {
	for i := range t.b {
		if e := t.b[i].e; e != nil && !fn(e) {
			return
		}
	}
}

// eachFromRandom is each starting at a random bucket (sampling for
// eviction and RANDOMKEY: approximately uniform, like Redis's
// dictGetRandomKey, slightly favouring keys after a run of empties).
func (t *table) eachFromRandom(fn func(e *Entry) bool) {
	if t.n == 0 {
		return
	}
	m := t.mask()
	start := rand.Uint64() & m
	for k := uint64(0); k <= m; k++ {
		if e := t.b[(start+k)&m].e; e != nil && !fn(e) {
			return
		}
	}
}

// Keyed entries. An entry in the keyspace is allocated together with its
// key: the key's bytes follow the Entry in one object of one of the types
// below (chosen by the key's length), so comparing the key touches the
// entry's own memory. Longer keys are held as a string beside the Entry.
// Entry is always the first field, so *Entry and the object's address are
// the same; Key() finds the bytes from keyKind and klen.
const (
	keyNone   = iota // an Entry not yet in a table (a caller's &Entry{})
	keyInline        // the key's bytes follow the Entry
	keyLong          // entryLong
)

const maxInlineKey = 128

type (
	entryK8 struct {
		Entry
		k [8]byte
	}
	entryK16 struct {
		Entry
		k [16]byte
	}
	entryK24 struct {
		Entry
		k [24]byte
	}
	entryK32 struct {
		Entry
		k [32]byte
	}
	entryK48 struct {
		Entry
		k [48]byte
	}
	entryK64 struct {
		Entry
		k [64]byte
	}
	entryK96 struct {
		Entry
		k [96]byte
	}
	entryK128 struct {
		Entry
		k [128]byte
	}
	entryLong struct {
		Entry
		k string
	}
)

// newEntry allocates an entry holding key (copied).
func newEntry(key []byte) *Entry {
	var e *Entry
	var dst []byte
	switch n := len(key); {
	case n <= 8:
		p := new(entryK8)
		e, dst = &p.Entry, p.k[:]
	case n <= 16:
		p := new(entryK16)
		e, dst = &p.Entry, p.k[:]
	case n <= 24:
		p := new(entryK24)
		e, dst = &p.Entry, p.k[:]
	case n <= 32:
		p := new(entryK32)
		e, dst = &p.Entry, p.k[:]
	case n <= 48:
		p := new(entryK48)
		e, dst = &p.Entry, p.k[:]
	case n <= 64:
		p := new(entryK64)
		e, dst = &p.Entry, p.k[:]
	case n <= 96:
		p := new(entryK96)
		e, dst = &p.Entry, p.k[:]
	case n <= maxInlineKey:
		p := new(entryK128)
		e, dst = &p.Entry, p.k[:]
	default:
		p := &entryLong{k: string(key)}
		p.keyKind, p.klen = keyLong, uint32(n)
		return &p.Entry
	}
	copy(dst, key)
	e.keyKind, e.klen = keyInline, uint32(len(key))
	return e
}

// keyedSize is the allocation an entry with an n-byte key takes.
func keyedSize(n int) int64 {
	es := int(unsafe.Sizeof(Entry{}))
	switch {
	case n <= 8:
		return AllocSize(es + 8)
	case n <= 16:
		return AllocSize(es + 16)
	case n <= 24:
		return AllocSize(es + 24)
	case n <= 32:
		return AllocSize(es + 32)
	case n <= 48:
		return AllocSize(es + 48)
	case n <= 64:
		return AllocSize(es + 64)
	case n <= 96:
		return AllocSize(es + 96)
	case n <= maxInlineKey:
		return AllocSize(es + 128)
	}
	return AllocSize(es+16) + AllocSize(n)
}

// Key is the entry's key ("" for an entry not in the keyspace). The
// string aliases the entry's memory, which never changes: an entry keeps
// its key for life (RENAME makes a new entry).
func (e *Entry) Key() string {
	switch e.keyKind {
	case keyInline:
		return unsafe.String((*byte)(unsafe.Add(unsafe.Pointer(e), unsafe.Sizeof(Entry{}))), e.klen)
	case keyLong:
		return (*entryLong)(unsafe.Pointer(e)).k
	}
	return ""
}

// NewEntry returns an empty entry of type typ allocated for key, to fill
// and pass to DB.Add (which then stores it without a copy).
func NewEntry(key []byte, typ uint8) *Entry {
	e := newEntry(key)
	e.Type = typ
	return e
}

// maxPrefetch is the most keys one Prefetch call prepares.
const maxPrefetch = 32

// Prefetch starts loading into the CPU caches what looking up keys will
// touch: each key's slot, its bucket, its entry with the key's bytes and
// a string value's first bytes.
// A lookup in a loaded server waits on three or four memory accesses in
// a row (~100 ns each here); the event loop calls Prefetch for the keys
// of a whole read batch before executing it, so those waits overlap
// across commands instead of adding up. It takes no lock and changes
// nothing: it reads the tables with atomic loads, and what it reads only
// chooses addresses to prefetch (a stale bucket costs a useless load).
func (db *DB) Prefetch(keys [][]byte) {
	n := min(len(keys), maxPrefetch)
	var hs [maxPrefetch]uint64
	var ps [maxPrefetch]unsafe.Pointer
	for i := 0; i < n; i++ {
		s := &db.slots[cluster.Slot(keys[i])]
		ps[i] = unsafe.Pointer(s)
		// A Slot (136 bytes) spans two or three lines: the lock and the
		// table first, the flags, watchers and LSN last (the last line
		// is where a replica's apply and every write's LSN land; without
		// it ~30 % of a replica's apply time was that miss).
		prefetch(ps[i])
		prefetch(unsafe.Add(ps[i], 64))
		prefetch(unsafe.Add(ps[i], unsafe.Sizeof(Slot{})-1))
		hs[i] = keyHash(keys[i])
	}
	for i := 0; i < n; i++ {
		hd := (*Slot)(ps[i]).tab.pub.Load()
		ps[i] = unsafe.Pointer(hd)
		if hd != nil {
			prefetch(unsafe.Pointer(hd))
		}
	}
	for i := 0; i < n; i++ {
		if ps[i] == nil {
			continue
		}
		hd := (*bucket)(ps[i])
		b := unsafe.Add(ps[i], (1+atomic.LoadUint64(&hd.h)&hs[i])*uint64(unsafe.Sizeof(bucket{})))
		ps[i] = b
		prefetch(b)
	}
	for i := 0; i < n; i++ {
		if ps[i] == nil {
			continue
		}
		b := (*bucket)(ps[i])
		if atomic.LoadUint64(&b.h) != hs[i] {
			ps[i] = nil
			continue
		}
		e := atomic.LoadPointer((*unsafe.Pointer)(unsafe.Pointer(&b.e)))
		ps[i] = e
		if e != nil {
			prefetch(e)
			prefetch(unsafe.Add(e, unsafe.Sizeof(Entry{})))
		}
	}
	// The string value's first line (Entry.str is the entry's first word).
	for i := 0; i < n; i++ {
		if ps[i] != nil {
			prefetchDeref(ps[i])
		}
	}
}
