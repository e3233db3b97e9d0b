package engine

import (
	"fmt"
	"sort"
	"strings"
)

// Canonical renders the whole keyspace (live keys with type, absolute
// expiry, memcached flags and value) in a canonical order, one key per
// line: two keyspaces hold the same data exactly when their renderings
// are equal. For tests and debugging (it locks each slot in turn).
func (db *DB) Canonical() string { return db.CanonicalLive(0) }

// CanonicalLive is Canonical without the keys whose expiry is at or
// before cut (unix ms; 0: every key): the keys that an expiry may or may
// not have removed yet, which two states compared later must leave out.
func (db *DB) CanonicalLive(cut int64) string {
	var lines []string
	for i := range db.slots {
		db.Lock(i)
		db.ForEach(&db.slots[i], func(k string, e *Entry) bool {
			if cut != 0 && e.ExpireAt != 0 && e.ExpireAt <= cut {
				return true
			}
			lines = append(lines, fmt.Sprintf("%q %s exp=%d flags=%d %s", k, TypeName(e.Type), e.ExpireAt, e.Flags, canonValue(e)))
			return true
		})
		db.Unlock(i)
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

func canonValue(e *Entry) string {
	var parts []string
	switch e.Type {
	case TypeString:
		return fmt.Sprintf("%q", e.Bytes())
	case TypeList:
		l := e.Obj.(*List)
		l.Range(0, l.Len(), func(v []byte) bool {
			parts = append(parts, fmt.Sprintf("%q", v))
			return true
		})
		return "[" + strings.Join(parts, " ") + "]"
	case TypeHash:
		for f, v := range e.Obj.(*Hash).M {
			parts = append(parts, fmt.Sprintf("%q=%q", f, v))
		}
	case TypeSet:
		for m := range e.Obj.(*Set).M {
			parts = append(parts, fmt.Sprintf("%q", m))
		}
	case TypeZSet:
		e.Obj.(*ZSet).Iter(0, false, func(m string, s float64) bool {
			parts = append(parts, fmt.Sprintf("%q:%v", m, s))
			return true
		})
		return "[" + strings.Join(parts, " ") + "]"
	}
	sort.Strings(parts)
	return "{" + strings.Join(parts, " ") + "}"
}
