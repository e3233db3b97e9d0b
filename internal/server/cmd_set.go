package server

import (
	"math"
	"slices"
	"strconv"

	"shoal/internal/cluster"
	"shoal/internal/engine"
	"shoal/internal/glob"
)

func init() {
	register("sadd", cmdSAdd)
	register("srem", cmdSRem)
	register("smembers", cmdSMembers)
	register("sismember", cmdSIsMember)
	register("smismember", cmdSMIsMember)
	register("scard", cmdSCard)
	register("spop", cmdSPop)
	register("srandmember", cmdSRandMember)
	register("smove", cmdSMove)
	register("sinter", func(c *Ctx) { cmdSetOp(c, opInter, false) })
	register("sunion", func(c *Ctx) { cmdSetOp(c, opUnion, false) })
	register("sdiff", func(c *Ctx) { cmdSetOp(c, opDiff, false) })
	register("sinterstore", func(c *Ctx) { cmdSetOp(c, opInter, true) })
	register("sunionstore", func(c *Ctx) { cmdSetOp(c, opUnion, true) })
	register("sdiffstore", func(c *Ctx) { cmdSetOp(c, opDiff, true) })
	register("sintercard", cmdSInterCard)
	register("sscan", cmdSScan)
}

const errRangeLong = "ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807"

// readSet returns key's set for reading; ok is false (and the reply
// written) on WRONGTYPE. A missing key is (nil, true).
func (c *Ctx) readSet(key []byte) (*engine.Set, bool) {
	e := c.db.Lookup(c.slot(key), key)
	if e == nil {
		return nil, true
	}
	if e.Type != engine.TypeSet {
		c.w.Error(errWrongType)
		return nil, false
	}
	return e.Obj.(*engine.Set), true
}

// writeSet returns key's entry for writing (nil if missing) and its slot;
// ok is false (and the reply written) on WRONGTYPE.
func (c *Ctx) writeSet(key []byte) (*engine.Entry, *engine.Slot, bool) {
	sl := c.slot(key)
	e := c.db.LookupWrite(sl, key)
	if e != nil && e.Type != engine.TypeSet {
		c.w.Error(errWrongType)
		return nil, nil, false
	}
	return e, sl, true
}

// removeMembers removes members from e's set, accounts the change and
// deletes the key if the set became empty.
func (c *Ctx) removeMembers(sl *engine.Slot, key []byte, e *engine.Entry, members []string) {
	s := e.Obj.(*engine.Set)
	old := e.MemSize()
	for _, m := range members {
		s.RemoveString(m)
	}
	c.db.Resized(sl, old, e)
	if s.Len() == 0 {
		c.db.Delete(sl, key)
	}
}

func cmdSAdd(c *Ctx) {
	key := c.args[1]
	e, sl, ok := c.writeSet(key)
	if !ok {
		return
	}
	var n int64
	if e == nil {
		s := engine.NewSet()
		for _, m := range c.args[2:] {
			if s.Add(m) {
				n++
			}
		}
		c.db.Add(sl, key, &engine.Entry{Type: engine.TypeSet, Obj: s})
		c.w.Int(n)
		return
	}
	s := e.Obj.(*engine.Set)
	old := e.MemSize()
	for _, m := range c.args[2:] {
		if s.Add(m) {
			n++
		}
	}
	c.db.Resized(sl, old, e)
	c.w.Int(n)
}

func cmdSRem(c *Ctx) {
	key := c.args[1]
	e, sl, ok := c.writeSet(key)
	if !ok {
		return
	}
	if e == nil {
		c.w.Int(0)
		return
	}
	s := e.Obj.(*engine.Set)
	old := e.MemSize()
	var n int64
	for _, m := range c.args[2:] {
		if s.Remove(m) {
			n++
		}
	}
	c.db.Resized(sl, old, e)
	if s.Len() == 0 {
		c.db.Delete(sl, key)
	}
	c.w.Int(n)
}

func cmdSMembers(c *Ctx) {
	s, ok := c.readSet(c.args[1])
	if !ok {
		return
	}
	if s == nil {
		c.w.Set(0)
		return
	}
	c.w.Set(s.Len())
	for m := range s.M {
		c.w.BulkString(m)
	}
}

func cmdSIsMember(c *Ctx) {
	s, ok := c.readSet(c.args[1])
	if !ok {
		return
	}
	c.w.Int(b2i(s != nil && s.Has(c.args[2])))
}

func cmdSMIsMember(c *Ctx) {
	s, ok := c.readSet(c.args[1])
	if !ok {
		return
	}
	c.w.Array(len(c.args) - 2)
	for _, m := range c.args[2:] {
		c.w.Int(b2i(s != nil && s.Has(m)))
	}
}

func cmdSCard(c *Ctx) {
	s, ok := c.readSet(c.args[1])
	if !ok {
		return
	}
	if s == nil {
		c.w.Int(0)
		return
	}
	c.w.Int(int64(s.Len()))
}

func cmdSPop(c *Ctx) {
	c.effectNone()
	key := c.args[1]
	if len(c.args) > 3 {
		c.w.Error(errSyntax)
		return
	}
	if len(c.args) == 2 {
		e, sl, ok := c.writeSet(key)
		if !ok {
			return
		}
		if e == nil {
			c.w.Null()
			return
		}
		m := e.Obj.(*engine.Set).Random()
		c.effect(cluster.Slot(key), []byte("srem"), key, []byte(m))
		c.removeMembers(sl, key, e, []string{m})
		c.w.BulkString(m)
		return
	}
	l, ok := parseInt(c.args[2])
	if !ok || l < 0 {
		c.w.Error("ERR value is out of range, must be positive")
		return
	}
	e, sl, ok := c.writeSet(key)
	if !ok {
		return
	}
	if e == nil || l == 0 {
		c.w.Set(0)
		return
	}
	s := e.Obj.(*engine.Set)
	var popped []string
	if l >= int64(s.Len()) {
		popped = s.Members()
		c.db.Delete(sl, key)
		c.effect(cluster.Slot(key), opDel, key)
	} else {
		popped = s.RandomDistinct(int(l))
		if c.sink != nil {
			// The members removed, not the random draw.
			args := make([][]byte, 0, len(popped)+2)
			args = append(args, []byte("srem"), key)
			for _, m := range popped {
				args = append(args, []byte(m))
			}
			c.effect(cluster.Slot(key), args...)
		}
		c.removeMembers(sl, key, e, popped)
	}
	c.w.Set(len(popped))
	for _, m := range popped {
		c.w.BulkString(m)
	}
}

func cmdSRandMember(c *Ctx) {
	if len(c.args) > 3 {
		c.w.Error(errSyntax)
		return
	}
	if len(c.args) == 2 {
		s, ok := c.readSet(c.args[1])
		if !ok {
			return
		}
		if s == nil {
			c.w.Null()
			return
		}
		c.w.BulkString(s.Random())
		return
	}
	l, ok := c.intArg(2)
	if !ok {
		return
	}
	if l == math.MinInt64 {
		c.w.Error(errRangeLong)
		return
	}
	if !c.randCountOK(l) {
		return
	}
	s, ok := c.readSet(c.args[1])
	if !ok {
		return
	}
	if s == nil || l == 0 {
		c.w.Array(0)
		return
	}
	if l < 0 {
		c.w.Array(int(-l))
		s.RandomRepeat(int(-l), func(m string) { c.w.BulkString(m) })
		return
	}
	ms := s.RandomDistinct(int(min(l, int64(s.Len()))))
	c.w.Array(len(ms))
	for _, m := range ms {
		c.w.BulkString(m)
	}
}

func cmdSMove(c *Ctx) {
	c.effectNone()
	src, dst, m := c.args[1], c.args[2], c.args[3]
	ssl, dsl := c.slot(src), c.slot(dst)
	se := c.db.LookupWrite(ssl, src)
	if se == nil {
		c.w.Int(0)
		return
	}
	de := c.db.LookupWrite(dsl, dst)
	if se.Type != engine.TypeSet || (de != nil && de.Type != engine.TypeSet) {
		c.w.Error(errWrongType)
		return
	}
	s := se.Obj.(*engine.Set)
	if !s.Has(m) {
		c.w.Int(0)
		return
	}
	if string(src) == string(dst) {
		c.w.Int(1)
		return
	}
	c.effect(cluster.Slot(src), []byte("srem"), src, m)
	c.effect(cluster.Slot(dst), []byte("sadd"), dst, m)
	c.removeMembers(ssl, src, se, []string{string(m)})
	if de == nil {
		ns := engine.NewSet()
		ns.Add(m)
		c.db.Add(dsl, dst, &engine.Entry{Type: engine.TypeSet, Obj: ns})
	} else {
		old := de.MemSize()
		de.Obj.(*engine.Set).Add(m)
		c.db.Resized(dsl, old, de)
	}
	c.w.Int(1)
}

type setOp int

const (
	opInter setOp = iota
	opUnion
	opDiff
)

// lookupSets returns the sets of keys (nil for a missing key); ok is false
// (and WRONGTYPE written) if any key holds another type.
func (c *Ctx) lookupSets(keys [][]byte) ([]*engine.Set, bool) {
	sets := make([]*engine.Set, len(keys))
	for i, k := range keys {
		s, ok := c.readSet(k)
		if !ok {
			return nil, false
		}
		sets[i] = s
	}
	return sets, true
}

// interSets calls fn for each member of the intersection of sets until fn
// returns false. Missing sets (nil) make it empty.
func interSets(sets []*engine.Set, fn func(m string) bool) {
	if len(sets) == 0 || slices.Contains(sets, nil) {
		return
	}
	sorted := slices.Clone(sets)
	slices.SortFunc(sorted, func(a, b *engine.Set) int { return a.Len() - b.Len() })
	first, rest := sorted[0], sorted[1:]
	for m := range first.M {
		in := true
		for _, s := range rest {
			if s != first {
				if _, ok := s.M[m]; !ok {
					in = false
					break
				}
			}
		}
		if in && !fn(m) {
			return
		}
	}
}

// computeSetOp returns the result of op over sets as a new set.
func computeSetOp(op setOp, sets []*engine.Set) *engine.Set {
	out := engine.NewSet()
	switch op {
	case opInter:
		interSets(sets, func(m string) bool { out.AddString(m); return true })
	case opUnion:
		for _, s := range sets {
			if s != nil {
				for m := range s.M {
					out.AddString(m)
				}
			}
		}
	case opDiff:
		if sets[0] == nil {
			break
		}
		for m := range sets[0].M {
			in := false
			for _, s := range sets[1:] {
				if s == sets[0] {
					in = true
					break
				}
				if s != nil {
					if _, ok := s.M[m]; ok {
						in = true
						break
					}
				}
			}
			if !in {
				out.AddString(m)
			}
		}
	}
	return out
}

// cmdSetOp serves SINTER, SUNION, SDIFF and their STORE variants, which
// overwrite the destination whatever its type and delete it when the
// result is empty.
func cmdSetOp(c *Ctx, op setOp, store bool) {
	keys := c.args[1:]
	if store {
		keys = c.args[2:]
	}
	sets, ok := c.lookupSets(keys)
	if !ok {
		return
	}
	res := computeSetOp(op, sets)
	if !store {
		c.w.Set(res.Len())
		for m := range res.M {
			c.w.BulkString(m)
		}
		return
	}
	dst := c.args[1]
	dsl := c.slot(dst)
	if c.db.LookupWrite(dsl, dst) != nil {
		c.db.Delete(dsl, dst)
	}
	if res.Len() > 0 {
		c.db.Add(dsl, dst, &engine.Entry{Type: engine.TypeSet, Obj: res})
	}
	c.w.Int(int64(res.Len()))
}

func cmdSInterCard(c *Ctx) {
	n, ok := parseInt(c.args[1])
	if !ok || n <= 0 {
		c.w.Error("ERR numkeys should be greater than 0")
		return
	}
	if n > int64(len(c.args)-2) {
		c.w.Error("ERR Number of keys can't be greater than number of args")
		return
	}
	keys := c.args[2 : 2+n]
	limit := int64(0)
	for i := 2 + int(n); i < len(c.args); i++ {
		if eq(c.args[i], "limit") && i+1 < len(c.args) {
			v, ok := parseInt(c.args[i+1])
			if !ok || v < 0 {
				c.w.Error("ERR LIMIT can't be negative")
				return
			}
			limit = v
			i++
			continue
		}
		c.w.Error(errSyntax)
		return
	}
	sets, ok := c.lookupSets(keys)
	if !ok {
		return
	}
	var card int64
	interSets(sets, func(string) bool {
		card++
		return limit == 0 || card < limit
	})
	c.w.Int(card)
}

// SSCAN pages like HSCAN (see cmdHScan); small sets, and int-only sets of
// up to 512 members (Redis's intset), come back whole with cursor 0.
func cmdSScan(c *Ctx) {
	cur, ok := parseScanCursor(c.args[2])
	if !ok {
		c.w.Error("ERR invalid cursor")
		return
	}
	s, ok := c.readSet(c.args[1])
	if !ok {
		return
	}
	if s == nil {
		c.emptyScan()
		return
	}
	pat, count, _, ok := c.scanArgs(false)
	if !ok {
		return
	}
	var ms []string
	next := uint64(0)
	if s.Len() <= smallScan || (s.AllInts() && s.Len() <= 512) {
		ms = s.Members()
	} else {
		ms, next = s.ScanPage(cur, count)
	}
	out := ms
	if pat != "" {
		out = make([]string, 0, len(ms))
		for _, m := range ms {
			if glob.Match(pat, m) {
				out = append(out, m)
			}
		}
	}
	c.w.Array(2)
	c.w.BulkString(strconv.FormatUint(next, 10))
	c.w.Array(len(out))
	for _, m := range out {
		c.w.BulkString(m)
	}
}
