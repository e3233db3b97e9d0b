package persist

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"shoal/internal/engine"
)

// Big values in parts (a slot move's image, internal/server/migrate.go):
// a value is sent as several entry encodings of the same key, type,
// expiry and flags, each holding some of a collection's elements (in
// order for a list) or a byte range of a string, so no frame of the move
// is much larger than the part limit however big the value. The receiver
// merges the parts aside (MergeEntryPart) and installs the value whole
// once the last has arrived: it is never half visible.

// EncodeEntryParts encodes en (key's entry) as parts of about limit bytes
// each (more only for a single element above limit) and calls emit with
// each, in order; the slice passed is valid only during the call. Parts
// are plain encodings (never compressed), each one decodable by
// DecodeEntry. An empty collection has no parts.
func EncodeEntryParts(key string, en *engine.Entry, limit int, emit func(part []byte) error) error {
	limit = max(limit, 64)
	kind := en.Type
	if en.ExpireAt != 0 {
		kind |= kindExpire
	}
	if en.Flags != 0 {
		kind |= kindFlags
	}
	head := []byte{kind}
	head = binary.AppendUvarint(head, uint64(len(key)))
	head = append(head, key...)
	if en.ExpireAt != 0 {
		head = binary.LittleEndian.AppendUint64(head, uint64(en.ExpireAt))
	}
	if en.Flags != 0 {
		head = binary.LittleEndian.AppendUint32(head, en.Flags)
	}
	var part, elems []byte
	if en.Type == engine.TypeString {
		v := en.Bytes()
		for off := 0; off == 0 || off < len(v); {
			n := min(limit, len(v)-off)
			part = append(append(part[:0], head...), binary.AppendUvarint(nil, uint64(n))...)
			part = append(part, v[off:off+n]...)
			if err := emit(part); err != nil {
				return err
			}
			off += n
			if n == 0 {
				break
			}
		}
		return nil
	}
	count := 0
	flush := func() error {
		if count == 0 {
			return nil
		}
		part = append(part[:0], head...)
		part = binary.AppendUvarint(part, uint64(count))
		part = append(part, elems...)
		elems, count = elems[:0], 0
		return emit(part)
	}
	add := func() error {
		count++
		if len(elems) >= limit-len(head)-binary.MaxVarintLen64 {
			return flush()
		}
		return nil
	}
	var err error
	switch en.Type {
	case engine.TypeList:
		l := en.Obj.(*engine.List)
		for i := 0; i < l.Len() && err == nil; i++ {
			elems = appendBytes(elems, l.At(i))
			err = add()
		}
	case engine.TypeHash:
		for f, v := range en.Obj.(*engine.Hash).M {
			elems = appendString(elems, f)
			elems = appendBytes(elems, v)
			if err = add(); err != nil {
				break
			}
		}
	case engine.TypeSet:
		for m := range en.Obj.(*engine.Set).M {
			elems = appendString(elems, m)
			if err = add(); err != nil {
				break
			}
		}
	case engine.TypeZSet:
		en.Obj.(*engine.ZSet).Iter(0, false, func(m string, score float64) bool {
			elems = appendString(elems, m)
			elems = binary.LittleEndian.AppendUint64(elems, math.Float64bits(score))
			err = add()
			return err == nil
		})
	default:
		return fmt.Errorf("EncodeEntryParts: type %d", en.Type)
	}
	if err != nil {
		return err
	}
	return flush()
}

// MergeEntryPart adds part's elements (or bytes) to dst, both decoded
// parts of the key named key: the same type, expiry and flags.
func MergeEntryPart(dst, part *engine.Entry) error {
	if dst.Type != part.Type || dst.ExpireAt != part.ExpireAt || dst.Flags != part.Flags {
		return errors.New("a part of another value")
	}
	switch dst.Type {
	case engine.TypeString:
		v := dst.Bytes()
		if uint64(len(v))+uint64(len(part.Bytes())) > engine.MaxValueLen {
			return errors.New("string parts above the largest value")
		}
		if len(v) == 0 {
			v = nil // Bytes of an empty string is a shared zero-length array
		}
		dst.SetBytes(append(v, part.Bytes()...))
	case engine.TypeList:
		l, p := dst.Obj.(*engine.List), part.Obj.(*engine.List)
		for i := 0; i < p.Len(); i++ {
			l.PushBack(p.At(i))
		}
	case engine.TypeHash:
		h := dst.Obj.(*engine.Hash)
		for f, v := range part.Obj.(*engine.Hash).M {
			if !h.Set([]byte(f), v) {
				return fmt.Errorf("field %q in two parts", f)
			}
		}
	case engine.TypeSet:
		s := dst.Obj.(*engine.Set)
		for m := range part.Obj.(*engine.Set).M {
			if !s.AddString(m) {
				return fmt.Errorf("member %q in two parts", m)
			}
		}
	case engine.TypeZSet:
		z := dst.Obj.(*engine.ZSet)
		var err error
		part.Obj.(*engine.ZSet).Iter(0, false, func(m string, score float64) bool {
			if !z.Add([]byte(m), score) {
				err = fmt.Errorf("member %q in two parts", m)
			}
			return err == nil
		})
		return err
	default:
		return fmt.Errorf("MergeEntryPart: type %d", dst.Type)
	}
	return nil
}
