package server

import (
	"bytes"
	"math"
	"strconv"
	"time"

	"shoal/internal/cluster"
	"shoal/internal/engine"
	"shoal/internal/resp"
)

func init() {
	register("lpush", func(c *Ctx) { cmdPush(c, true, false) })
	register("rpush", func(c *Ctx) { cmdPush(c, false, false) })
	register("lpushx", func(c *Ctx) { cmdPush(c, true, true) })
	register("rpushx", func(c *Ctx) { cmdPush(c, false, true) })
	register("lpop", func(c *Ctx) { cmdPop(c, true) })
	register("rpop", func(c *Ctx) { cmdPop(c, false) })
	register("llen", cmdLLen)
	register("lrange", cmdLRange)
	register("lindex", cmdLIndex)
	register("lset", cmdLSet)
	register("linsert", cmdLInsert)
	register("lrem", cmdLRem)
	register("ltrim", cmdLTrim)
	register("lpos", cmdLPos)
	register("lmove", cmdLMove)
	register("rpoplpush", cmdRPopLPush)
	register("lmpop", func(c *Ctx) { cmdMPop(c, 1, false) })
	register("blpop", func(c *Ctx) { cmdBPop(c, true) })
	register("brpop", func(c *Ctx) { cmdBPop(c, false) })
	register("blmove", cmdBLMove)
	register("brpoplpush", cmdBRPopLPush)
	register("blmpop", func(c *Ctx) { cmdMPop(c, 2, true) })
}

const (
	errMustBePositive = "ERR value is out of range, must be positive"
	errRankZero       = "ERR RANK can't be zero: use 1 to start from the first match, 2 from the second ... or use negative to start from the end of the list"
)

// readList looks key up for a read. A missing key is (nil, true); a key of
// another type gets WRONGTYPE and ok false.
func (c *Ctx) readList(key []byte) (*engine.Entry, bool) {
	e := c.db.Lookup(c.slot(key), key)
	if e != nil && e.Type != engine.TypeList {
		c.w.Error(errWrongType)
		return nil, false
	}
	return e, true
}

// writeList is readList for a command that may modify the list.
func (c *Ctx) writeList(key []byte) (*engine.Entry, bool) {
	e := c.db.LookupWrite(c.slot(key), key)
	if e != nil && e.Type != engine.TypeList {
		c.w.Error(errWrongType)
		return nil, false
	}
	return e, true
}

// listChanged accounts a mutation of key's list (old = its MemSize before)
// and deletes the key when the list became empty, as Redis does.
func (c *Ctx) listChanged(sl *engine.Slot, key []byte, e *engine.Entry, old int64) {
	c.db.Resized(sl, old, e)
	if e.Len() == 0 {
		c.db.Delete(sl, key)
	}
}

// parseWhere parses LEFT|RIGHT; true means the head.
func parseWhere(b []byte) (front, ok bool) {
	switch {
	case eq(b, "left"):
		return true, true
	case eq(b, "right"):
		return false, true
	}
	return false, false
}

func listOf(e *engine.Entry) *engine.List { return e.Obj.(*engine.List) }

func cmdPush(c *Ctx, front, onlyExisting bool) {
	key := c.args[1]
	sl := c.slot(key)
	e, ok := c.writeList(key)
	if !ok {
		return
	}
	if e == nil {
		if onlyExisting {
			c.w.Int(0)
			return
		}
		l := engine.NewList()
		for _, v := range c.args[2:] {
			l.Push(v, front)
		}
		c.db.Add(sl, key, &engine.Entry{Type: engine.TypeList, Obj: l})
		c.w.Int(int64(l.Len()))
		return
	}
	l := listOf(e)
	old := e.MemSize()
	for _, v := range c.args[2:] {
		l.Push(v, front)
	}
	c.db.Resized(sl, old, e)
	c.w.Int(int64(l.Len()))
}

// cmdPop is LPOP/RPOP key [count]: a bulk without count, an array with it
// (a null array when the key is missing).
func cmdPop(c *Ctx, front bool) {
	if len(c.args) > 3 {
		c.w.Error(errArity(c.spec.Name))
		return
	}
	hasCount := len(c.args) == 3
	var count int64
	if hasCount {
		n, ok := parseInt(c.args[2])
		if !ok || n < 0 {
			c.w.Error(errMustBePositive)
			return
		}
		count = n
	}
	key := c.args[1]
	e, ok := c.writeList(key)
	if !ok {
		return
	}
	if e == nil {
		if hasCount {
			c.w.NullArray()
		} else {
			c.w.Null()
		}
		return
	}
	if hasCount && count == 0 {
		c.w.Array(0)
		return
	}
	sl := c.slot(key)
	l := listOf(e)
	old := e.MemSize()
	if !hasCount {
		c.w.Bulk(l.Pop(front))
	} else {
		n := int(min(count, int64(l.Len())))
		c.w.Array(n)
		for range n {
			c.w.Bulk(l.Pop(front))
		}
	}
	c.listChanged(sl, key, e, old)
}

func cmdLLen(c *Ctx) {
	e, ok := c.readList(c.args[1])
	if !ok {
		return
	}
	if e == nil {
		c.w.Int(0)
		return
	}
	c.w.Int(int64(e.Len()))
}

func cmdLRange(c *Ctx) {
	start, ok := c.intArg(2)
	if !ok {
		return
	}
	end, ok := c.intArg(3)
	if !ok {
		return
	}
	e, ok := c.readList(c.args[1])
	if !ok {
		return
	}
	if e == nil {
		c.w.Array(0)
		return
	}
	l := listOf(e)
	s, t := strRange(start, end, l.Len())
	c.w.Array(t - s)
	l.Range(s, t, func(v []byte) bool {
		c.w.Bulk(v)
		return true
	})
}

func cmdLIndex(c *Ctx) {
	e, ok := c.readList(c.args[1])
	if !ok {
		return
	}
	if e == nil {
		c.w.Null()
		return
	}
	idx, ok := c.intArg(2)
	if !ok {
		return
	}
	l := listOf(e)
	if i, ok := l.Index(idx); ok {
		c.w.Bulk(l.At(i))
	} else {
		c.w.Null()
	}
}

func cmdLSet(c *Ctx) {
	key := c.args[1]
	e, ok := c.writeList(key)
	if !ok {
		return
	}
	if e == nil {
		c.w.Error(errNoSuchKey)
		return
	}
	idx, ok := c.intArg(2)
	if !ok {
		return
	}
	l := listOf(e)
	i, ok := l.Index(idx)
	if !ok {
		c.w.Error(errIndexRange)
		return
	}
	old := e.MemSize()
	l.Set(i, c.args[3])
	c.db.Resized(c.slot(key), old, e)
	c.w.OK()
}

func cmdLInsert(c *Ctx) {
	var after bool
	switch {
	case eq(c.args[2], "after"):
		after = true
	case eq(c.args[2], "before"):
	default:
		c.w.Error(errSyntax)
		return
	}
	key := c.args[1]
	e, ok := c.writeList(key)
	if !ok {
		return
	}
	if e == nil {
		c.w.Int(0)
		return
	}
	l := listOf(e)
	pivot := c.args[3]
	at, i := -1, 0
	l.Range(0, l.Len(), func(v []byte) bool {
		if bytes.Equal(v, pivot) {
			at = i
			return false
		}
		i++
		return true
	})
	if i = at; i >= 0 {
		if after {
			i++
		}
		old := e.MemSize()
		l.Insert(i, c.args[4])
		c.db.Resized(c.slot(key), old, e)
		c.w.Int(int64(l.Len()))
		return
	}
	c.w.Int(-1)
}

func cmdLRem(c *Ctx) {
	count, ok := c.intArg(2)
	if !ok {
		return
	}
	key := c.args[1]
	e, ok := c.writeList(key)
	if !ok {
		return
	}
	if e == nil {
		c.w.Int(0)
		return
	}
	old := e.MemSize()
	n := listOf(e).Rem(c.args[3], count)
	c.listChanged(c.slot(key), key, e, old)
	c.w.Int(int64(n))
}

func cmdLTrim(c *Ctx) {
	start, ok := c.intArg(2)
	if !ok {
		return
	}
	end, ok := c.intArg(3)
	if !ok {
		return
	}
	key := c.args[1]
	e, ok := c.writeList(key)
	if !ok {
		return
	}
	if e == nil {
		c.w.OK()
		return
	}
	l := listOf(e)
	n := int64(l.Len())
	if start < 0 {
		start += n
	}
	if end < 0 {
		end += n
	}
	start = max(start, 0)
	var left, right int64
	if start > end || start >= n {
		left, right = n, 0
	} else {
		end = min(end, n-1)
		left, right = start, n-end-1
	}
	old := e.MemSize()
	l.Trim(int(left), int(right))
	c.listChanged(c.slot(key), key, e, old)
	c.w.OK()
}

// cmdLPos is LPOS key element [RANK rank] [COUNT num] [MAXLEN len].
func cmdLPos(c *Ctx) {
	rank, count, maxlen := int64(1), int64(-1), int64(0)
	for j := 3; j < len(c.args); j++ {
		more := j+1 < len(c.args)
		switch {
		case eq(c.args[j], "rank") && more:
			j++
			v, ok := c.intArg(j)
			if !ok {
				return
			}
			if v == 0 {
				c.w.Error(errRankZero)
				return
			}
			if v == math.MinInt64 {
				v = -1 // redis 7.0 negates LONG_MIN to itself: the first match from the tail
			}
			rank = v
		case eq(c.args[j], "count") && more:
			j++
			v, ok := parseInt(c.args[j])
			if !ok || v < 0 {
				c.w.Error("ERR COUNT can't be negative")
				return
			}
			count = v
		case eq(c.args[j], "maxlen") && more:
			j++
			v, ok := parseInt(c.args[j])
			if !ok || v < 0 {
				c.w.Error("ERR MAXLEN can't be negative")
				return
			}
			maxlen = v
		default:
			c.w.Error(errSyntax)
			return
		}
	}
	e, ok := c.readList(c.args[1])
	if !ok {
		return
	}
	if e == nil {
		if count != -1 {
			c.w.Array(0)
		} else {
			c.w.Null()
		}
		return
	}
	l := listOf(e)
	n := l.Len()
	fromTail := rank < 0
	if fromTail {
		rank = -rank
	}
	elem := c.args[2]
	var found []int64
	matches := int64(0)
	k := 0
	visit := func(v []byte) bool {
		if maxlen != 0 && int64(k) >= maxlen {
			return false
		}
		i := k
		if fromTail {
			i = n - 1 - k
		}
		k++
		if !bytes.Equal(v, elem) {
			return true
		}
		matches++
		if matches < rank {
			return true
		}
		found = append(found, int64(i))
		return count != -1 && (count == 0 || int64(len(found)) < count)
	}
	if fromTail {
		l.RangeRev(0, n, visit)
	} else {
		l.Range(0, n, visit)
	}
	if count == -1 {
		if len(found) == 0 {
			c.w.Null()
		} else {
			c.w.Int(found[0])
		}
		return
	}
	c.w.Array(len(found))
	for _, i := range found {
		c.w.Int(i)
	}
}

// lmove pops from src and pushes onto dst (the slots of both locked). It
// replies with the element, or a null when src is missing.
func (c *Ctx) lmove(src, dst []byte, fromFront, toFront bool) {
	c.effectNone()
	ssl := c.slot(src)
	se, ok := c.writeList(src)
	if !ok {
		return
	}
	if se == nil {
		c.w.Null()
		return
	}
	dsl := c.slot(dst)
	de, ok := c.writeList(dst)
	if !ok {
		return
	}
	sl := listOf(se)
	old := se.MemSize()
	v := sl.Pop(fromFront)
	c.effect(cluster.Slot(src), popName(fromFront), src)
	c.effect(cluster.Slot(dst), pushName(toFront), dst, v)
	if de == se {
		sl.Push(v, toFront)
		c.db.Resized(ssl, old, se)
		c.w.Bulk(v)
		return
	}
	c.listChanged(ssl, src, se, old)
	if de == nil {
		l := engine.NewList()
		l.Push(v, toFront)
		c.db.Add(dsl, dst, &engine.Entry{Type: engine.TypeList, Obj: l})
	} else {
		dold := de.MemSize()
		listOf(de).Push(v, toFront)
		c.db.Resized(dsl, dold, de)
	}
	c.w.Bulk(v)
}

func cmdLMove(c *Ctx) {
	from, ok1 := parseWhere(c.args[3])
	to, ok2 := parseWhere(c.args[4])
	if !ok1 || !ok2 {
		c.w.Error(errSyntax)
		return
	}
	c.lmove(c.args[1], c.args[2], from, to)
}

func cmdRPopLPush(c *Ctx) { c.lmove(c.args[1], c.args[2], false, true) }

// popRangeReply pops up to count elements and writes [key, [elements]]
// (the LMPOP / BLMPOP reply).
func popRangeReply(w *resp.Writer, key []byte, l *engine.List, front bool, count int64) {
	n := int(min(count, int64(l.Len())))
	w.Array(2)
	w.Bulk(key)
	w.Array(n)
	for range n {
		w.Bulk(l.Pop(front))
	}
}

// popName and pushName are the commands a pop or push is logged as.
func popName(front bool) []byte {
	if front {
		return []byte("lpop")
	}
	return []byte("rpop")
}

func pushName(front bool) []byte {
	if front {
		return []byte("lpush")
	}
	return []byte("rpush")
}

// cmdMPop is LMPOP numkeys key [key ...] LEFT|RIGHT [COUNT count] and,
// with block, BLMPOP timeout numkeys ... (numkeys at args[nkIdx]).
func cmdMPop(c *Ctx, nkIdx int, block bool) {
	c.effectNone()
	numkeys, ok := parseInt(c.args[nkIdx])
	if !ok || numkeys <= 0 {
		c.w.Error("ERR numkeys should be greater than 0")
		return
	}
	whereIdx := int64(nkIdx) + numkeys + 1
	if whereIdx >= int64(len(c.args)) {
		c.w.Error(errSyntax)
		return
	}
	front, ok := parseWhere(c.args[whereIdx])
	if !ok {
		c.w.Error(errSyntax)
		return
	}
	count := int64(-1)
	for j := int(whereIdx) + 1; j < len(c.args); j++ {
		if count == -1 && eq(c.args[j], "count") && j+1 < len(c.args) {
			j++
			v, ok := parseInt(c.args[j])
			if !ok || v <= 0 {
				c.w.Error("ERR count should be greater than 0")
				return
			}
			count = v
			continue
		}
		c.w.Error(errSyntax)
		return
	}
	if count == -1 {
		count = 1
	}
	keys := c.args[nkIdx+1 : whereIdx]
	var timeout time.Duration
	if block {
		d, msg := parseTimeout(c.args[1])
		if msg != "" {
			c.w.Error(msg)
			return
		}
		timeout = d
	}
	for _, key := range keys {
		e, ok := c.writeList(key)
		if !ok {
			return
		}
		if e == nil {
			continue
		}
		old := e.MemSize()
		c.effect(cluster.Slot(key), popName(front), key, strconv.AppendInt(nil, min(count, int64(listOf(e).Len())), 10))
		popRangeReply(c.w, key, listOf(e), front, count)
		c.listChanged(c.slot(key), key, e, old)
		return
	}
	if !block || !c.canBlock() {
		c.w.NullArray()
		return
	}
	c.block(keys, engine.TypeList, timeout,
		func(wc *Ctx, key []byte, e *engine.Entry, w *resp.Writer) {
			wc.effect(cluster.Slot(key), popName(front), key, strconv.AppendInt(nil, min(count, int64(listOf(e).Len())), 10))
			popRangeReply(w, key, listOf(e), front, count)
		},
		func(w *resp.Writer) { w.NullArray() })
}

// cmdBPop is BLPOP/BRPOP key [key ...] timeout.
func cmdBPop(c *Ctx, front bool) {
	c.effectNone()
	d, msg := parseTimeout(c.args[len(c.args)-1])
	if msg != "" {
		c.w.Error(msg)
		return
	}
	keys := c.args[1 : len(c.args)-1]
	for _, key := range keys {
		e, ok := c.writeList(key)
		if !ok {
			return
		}
		if e == nil {
			continue
		}
		old := e.MemSize()
		c.effect(cluster.Slot(key), popName(front), key)
		c.w.Array(2)
		c.w.Bulk(key)
		c.w.Bulk(listOf(e).Pop(front))
		c.listChanged(c.slot(key), key, e, old)
		return
	}
	if !c.canBlock() {
		c.w.NullArray()
		return
	}
	c.block(keys, engine.TypeList, d,
		func(wc *Ctx, key []byte, e *engine.Entry, w *resp.Writer) {
			wc.effect(cluster.Slot(key), popName(front), key)
			w.Array(2)
			w.Bulk(key)
			w.Bulk(listOf(e).Pop(front))
		},
		func(w *resp.Writer) { w.NullArray() })
}

// blmove moves at once when src has elements, else blocks. A blocked
// BLMOVE is retried as a whole when src gets a value (serve nil): the move
// needs dst's slot too, which the pusher does not hold.
func (c *Ctx) blmove(fromFront, toFront bool, timeoutArg []byte) {
	d, msg := parseTimeout(timeoutArg)
	if msg != "" {
		c.w.Error(msg)
		return
	}
	src := c.args[1]
	e, ok := c.writeList(src)
	if !ok {
		return
	}
	if e != nil {
		c.lmove(src, c.args[2], fromFront, toFront)
		return
	}
	if !c.canBlock() {
		c.w.Null()
		return
	}
	c.block(c.args[1:2], engine.TypeList, d, nil, func(w *resp.Writer) { w.NullArray() })
}

func cmdBLMove(c *Ctx) {
	from, ok1 := parseWhere(c.args[3])
	to, ok2 := parseWhere(c.args[4])
	if !ok1 || !ok2 {
		c.w.Error(errSyntax)
		return
	}
	c.blmove(from, to, c.args[5])
}

func cmdBRPopLPush(c *Ctx) { c.blmove(false, true, c.args[3]) }
