package persist

import (
	"strconv"
	"strings"
	"testing"

	"shoal/internal/cluster"
	"shoal/internal/engine"
)

// Every value, big or small, split into parts of at most the limit (plus
// one element), reassembles to itself.
func TestEntryPartsRoundTrip(t *testing.T) {
	db := engine.New(engine.Hooks{})
	sample(db)
	l, h, s, z := engine.NewList(), engine.NewHash(), engine.NewSet(), engine.NewZSet()
	for i := 0; i < 5000; i++ {
		v := []byte("element-" + strconv.Itoa(i))
		l.PushBack(v)
		h.Set(v, []byte(strings.Repeat("v", i%50)))
		s.Add(v)
		z.Add(v, float64(i%97)/3)
	}
	add(db, "biglist", &engine.Entry{Type: engine.TypeList, Obj: l})
	add(db, "bighash", &engine.Entry{Type: engine.TypeHash, Obj: h})
	add(db, "bigset", &engine.Entry{Type: engine.TypeSet, Obj: s})
	bz := &engine.Entry{Type: engine.TypeZSet, Obj: z, Flags: 7, ExpireAt: 1 << 50}
	add(db, "bigzset", bz)
	add(db, "bigstring", str(strings.Repeat("0123456789", 100000)))

	const limit = 4096
	const maxElem = 64 // the largest element's encoding above (+ its field)
	back := engine.New(engine.Hooks{})
	multi := 0
	for i := 0; i < cluster.NumSlots; i++ {
		db.Lock(i)
		db.ForEachHeld(db.Slot(i), func(k string, e *engine.Entry) bool {
			var whole *engine.Entry
			n := 0
			err := EncodeEntryParts(k, e, limit, func(part []byte) error {
				n++
				if len(part) > limit+maxElem {
					t.Errorf("%q: part of %d bytes (limit %d)", k, len(part), limit)
				}
				key, pe, err := DecodeEntry(part)
				if err != nil {
					return err
				}
				if string(key) != k {
					t.Fatalf("part of %q names %q", k, key)
				}
				if whole == nil {
					whole = pe
					return nil
				}
				return MergeEntryPart(whole, pe)
			})
			if err != nil {
				t.Fatalf("%q: %v", k, err)
			}
			if n > 1 {
				multi++
			}
			if whole != nil { // an empty collection has no parts (and no key, once loaded)
				add(back, k, whole)
			} else if e.Len() != 0 {
				t.Errorf("%q: no parts", k)
			}
			return true
		})
		db.Unlock(i)
	}
	if multi < 5 {
		t.Fatalf("only %d values were split", multi)
	}
	for _, k := range []string{"emptylist", "emptyhash", "emptyset", "emptyzset"} {
		i := cluster.SlotString(k)
		db.Lock(i)
		db.Delete(db.Slot(i), []byte(k))
		db.Unlock(i)
	}
	if a, b := canon(db), canon(back); a != b {
		t.Fatalf("reassembled keyspace differs:\n%.2000s\n---\n%.2000s", a, b)
	}
	// A part of another value is refused.
	if err := MergeEntryPart(&engine.Entry{Type: engine.TypeZSet, Obj: engine.NewZSet()}, str("x")); err == nil {
		t.Fatal("merged a string part into a zset")
	}
}
