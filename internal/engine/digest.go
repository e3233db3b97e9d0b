package engine

import (
	"encoding/binary"
	"math"

	"github.com/cespare/xxhash/v2"
)

// Digest returns a 64-bit hash of the slot's contents (the slot locked):
// the XOR of one hash per key over its name, type, expiry, memcached
// flags and value. XOR makes it independent of iteration order and lets
// a key's contribution be added or removed on its own; hashes and sets
// combine their elements the same way, lists and sorted sets in order.
// An empty slot digests to 0. Keys past their expiry that are still held
// count (a replica holds them until its primary's DEL arrives).
func (db *DB) Digest(s *Slot) uint64 {
	var d uint64
	var scratch []byte
	s.tab.each(func(e *Entry) bool {
		d ^= entryDigest(e.Key(), e, &scratch)
		return true
	})
	return d
}

func entryDigest(k string, e *Entry, scratch *[]byte) uint64 {
	b := (*scratch)[:0]
	b = binary.AppendUvarint(b, uint64(len(k)))
	b = append(b, k...)
	b = append(b, e.Type)
	b = binary.LittleEndian.AppendUint64(b, uint64(e.ExpireAt))
	b = binary.LittleEndian.AppendUint32(b, e.Flags)
	switch e.Type {
	case TypeString:
		b = append(b, e.Bytes()...)
	case TypeList:
		l := e.Obj.(*List)
		l.Range(0, l.Len(), func(v []byte) bool {
			b = binary.AppendUvarint(b, uint64(len(v)))
			b = append(b, v...)
			return true
		})
	case TypeZSet:
		e.Obj.(*ZSet).Iter(0, false, func(m string, sc float64) bool {
			b = binary.AppendUvarint(b, uint64(len(m)))
			b = append(b, m...)
			b = binary.LittleEndian.AppendUint64(b, math.Float64bits(sc))
			return true
		})
	case TypeHash:
		var x uint64
		var fb []byte
		for f, v := range e.Obj.(*Hash).M {
			fb = binary.AppendUvarint(fb[:0], uint64(len(f)))
			fb = append(fb, f...)
			fb = append(fb, v...)
			x ^= xxhash.Sum64(fb)
		}
		b = binary.LittleEndian.AppendUint64(b, x)
	case TypeSet:
		var x uint64
		for m := range e.Obj.(*Set).M {
			x ^= xxhash.Sum64String(m)
		}
		b = binary.LittleEndian.AppendUint64(b, x)
	}
	*scratch = b
	return xxhash.Sum64(b)
}
