package server

import (
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"shoal/internal/cluster"
	"shoal/internal/engine"
	"shoal/internal/glob"
	"shoal/internal/resp"
)

func init() {
	register("zadd", cmdZAdd)
	register("zincrby", cmdZIncrBy)
	register("zrem", cmdZRem)
	register("zscore", cmdZScore)
	register("zmscore", cmdZMScore)
	register("zcard", cmdZCard)
	register("zcount", cmdZCount)
	register("zlexcount", cmdZLexCount)
	register("zrange", func(c *Ctx) { cmdZRange(c, zrAuto, false, false) })
	register("zrangebyscore", func(c *Ctx) { cmdZRange(c, zrScore, false, true) })
	register("zrevrangebyscore", func(c *Ctx) { cmdZRange(c, zrScore, true, true) })
	register("zrangebylex", func(c *Ctx) { cmdZRange(c, zrLex, false, true) })
	register("zrevrangebylex", func(c *Ctx) { cmdZRange(c, zrLex, true, true) })
	register("zrevrange", func(c *Ctx) { cmdZRange(c, zrRank, true, true) })
	register("zrangestore", cmdZRangeStore)
	register("zrank", func(c *Ctx) { cmdZRank(c, false) })
	register("zrevrank", func(c *Ctx) { cmdZRank(c, true) })
	register("zpopmin", func(c *Ctx) { cmdZPop(c, false) })
	register("zpopmax", func(c *Ctx) { cmdZPop(c, true) })
	register("bzpopmin", func(c *Ctx) { cmdBZPop(c, false) })
	register("bzpopmax", func(c *Ctx) { cmdBZPop(c, true) })
	register("zmpop", func(c *Ctx) { cmdZMPop(c, false) })
	register("bzmpop", func(c *Ctx) { cmdZMPop(c, true) })
	register("zunionstore", func(c *Ctx) { cmdZSetOp(c, zopUnion, true) })
	register("zinterstore", func(c *Ctx) { cmdZSetOp(c, zopInter, true) })
	register("zdiffstore", func(c *Ctx) { cmdZSetOp(c, zopDiff, true) })
	register("zunion", func(c *Ctx) { cmdZSetOp(c, zopUnion, false) })
	register("zinter", func(c *Ctx) { cmdZSetOp(c, zopInter, false) })
	register("zdiff", func(c *Ctx) { cmdZSetOp(c, zopDiff, false) })
	register("zintercard", cmdZInterCard)
	register("zremrangebyscore", func(c *Ctx) { cmdZRemRange(c, zrScore) })
	register("zremrangebyrank", func(c *Ctx) { cmdZRemRange(c, zrRank) })
	register("zremrangebylex", func(c *Ctx) { cmdZRemRange(c, zrLex) })
	register("zscan", cmdZScan)
	register("zrandmember", cmdZRandMember)
}

const (
	errZNaN      = "ERR resulting score is not a number (NaN)"
	errZMinMax   = "ERR min or max is not a float"
	errZLexRange = "ERR min or max not valid string range item"
	errZPositive = "ERR value is out of range, must be positive"
	errZNumKeys  = "ERR numkeys should be greater than 0"
)

// zsetOf returns key's sorted set for a read (nil if missing); on a key of
// another type it writes WRONGTYPE and returns ok=false.
func (c *Ctx) zsetOf(key []byte) (*engine.ZSet, bool) {
	e := c.db.Lookup(c.slot(key), key)
	if e == nil {
		return nil, true
	}
	if e.Type != engine.TypeZSet {
		c.w.Error(errWrongType)
		return nil, false
	}
	return e.Obj.(*engine.ZSet), true
}

// zsetForWrite is zsetOf for commands that modify the set in place.
func (c *Ctx) zsetForWrite(key []byte) (*engine.Entry, bool) {
	e := c.db.LookupWrite(c.slot(key), key)
	if e != nil && e.Type != engine.TypeZSet {
		c.w.Error(errWrongType)
		return nil, false
	}
	return e, true
}

// zsetDone accounts a mutation of e (size before: old) and deletes the key
// if the set became empty.
func (c *Ctx) zsetDone(key []byte, e *engine.Entry, old int64) {
	sl := c.slot(key)
	c.db.Resized(sl, old, e)
	if e.Len() == 0 {
		c.db.Delete(sl, key)
	}
}

// storeZSet replaces dst (any type) with z, or deletes it if z is empty.
func (c *Ctx) storeZSet(dst []byte, z *engine.ZSet) {
	sl := c.slot(dst)
	c.db.Delete(sl, dst)
	if z.Len() > 0 {
		c.db.Add(sl, dst, &engine.Entry{Type: engine.TypeZSet, Obj: z})
	}
}

// Element replies. With scores, RESP3 nests [member, score] pairs while
// RESP2 flattens them; nested forces pairs in RESP2 too (ZMPOP).

func zElemsHeader(w *resp.Writer, n int, withScores, nested bool) {
	if withScores && !nested && w.Proto < 3 {
		w.Array(2 * n)
	} else {
		w.Array(n)
	}
}

func zElem(w *resp.Writer, m string, s float64, withScores, nested bool) {
	if !withScores {
		w.BulkString(m)
		return
	}
	if nested || w.Proto >= 3 {
		w.Array(2)
	}
	w.BulkString(m)
	w.Double(s)
}

// ---- ZADD, ZINCRBY, ZREM, ZSCORE, ZMSCORE, ZCARD -------------------------

func cmdZAdd(c *Ctx) {
	var nx, xx, gt, lt, ch, incr bool
	i := 2
	for ; i < len(c.args); i++ {
		a := c.args[i]
		switch {
		case eq(a, "nx"):
			nx = true
		case eq(a, "xx"):
			xx = true
		case eq(a, "gt"):
			gt = true
		case eq(a, "lt"):
			lt = true
		case eq(a, "ch"):
			ch = true
		case eq(a, "incr"):
			incr = true
		default:
			goto flagsDone
		}
	}
flagsDone:
	elems := len(c.args) - i
	if elems == 0 || elems%2 != 0 {
		c.w.Error(errSyntax)
		return
	}
	if nx && xx {
		c.w.Error("ERR XX and NX options at the same time are not compatible")
		return
	}
	if (gt && nx) || (lt && nx) || (gt && lt) {
		c.w.Error("ERR GT, LT, and/or NX options at the same time are not compatible")
		return
	}
	if incr && elems > 2 {
		c.w.Error("ERR INCR option supports a single increment-element pair")
		return
	}
	scores := make([]float64, elems/2)
	for j := range scores {
		f, ok := c.floatArg(i + 2*j)
		if !ok {
			return
		}
		scores[j] = f
	}
	key := c.args[1]
	e, ok := c.zsetForWrite(key)
	if !ok {
		return
	}
	added, updated, processed := 0, 0, 0
	score := 0.0
	reply := func() {
		switch {
		case !incr && ch:
			c.w.Int(int64(added + updated))
		case !incr:
			c.w.Int(int64(added))
		case processed > 0:
			c.w.Double(score)
		default:
			c.w.Null()
		}
	}
	if e == nil && xx {
		reply()
		return
	}
	var z *engine.ZSet
	var old int64
	if e == nil {
		z = engine.NewZSet()
	} else {
		z = e.Obj.(*engine.ZSet)
		old = e.MemSize()
	}
	for j, s := range scores {
		m := c.args[i+2*j+1]
		cur, exists := z.Score(m)
		if !exists {
			if xx {
				continue
			}
			z.Add(m, s)
			added++
			processed++
			score = s
			continue
		}
		if nx {
			continue
		}
		ns := s
		if incr {
			ns = cur + s
			if math.IsNaN(ns) {
				c.w.Error(errZNaN)
				// Only one element with INCR: nothing was changed.
				return
			}
		}
		if (gt && ns <= cur) || (lt && ns >= cur) {
			continue
		}
		if ns != cur {
			z.Add(m, ns)
			updated++
		}
		processed++
		score = ns
	}
	if e == nil {
		if z.Len() > 0 {
			c.db.Add(c.slot(key), key, &engine.Entry{Type: engine.TypeZSet, Obj: z})
		}
	} else {
		c.db.Resized(c.slot(key), old, e)
	}
	reply()
}

func cmdZIncrBy(c *Ctx) {
	incr, ok := c.floatArg(2)
	if !ok {
		return
	}
	key, m := c.args[1], c.args[3]
	e, ok := c.zsetForWrite(key)
	if !ok {
		return
	}
	if e == nil {
		z := engine.NewZSet()
		z.Add(m, incr)
		c.db.Add(c.slot(key), key, &engine.Entry{Type: engine.TypeZSet, Obj: z})
		c.effect(cluster.Slot(key), []byte("zadd"), key, logScore(incr), m)
		c.w.Double(incr)
		return
	}
	z := e.Obj.(*engine.ZSet)
	cur, _ := z.Score(m)
	ns := cur + incr
	if math.IsNaN(ns) {
		c.w.Error(errZNaN)
		return
	}
	old := e.MemSize()
	z.Add(m, ns)
	c.db.Resized(c.slot(key), old, e)
	c.effect(cluster.Slot(key), []byte("zadd"), key, logScore(ns), m)
	c.w.Double(ns)
}

func cmdZRem(c *Ctx) {
	key := c.args[1]
	e, ok := c.zsetForWrite(key)
	if !ok {
		return
	}
	if e == nil {
		c.w.Int(0)
		return
	}
	z := e.Obj.(*engine.ZSet)
	old := e.MemSize()
	n := 0
	for _, m := range c.args[2:] {
		if z.Remove(m) {
			n++
		}
	}
	c.zsetDone(key, e, old)
	c.w.Int(int64(n))
}

func cmdZScore(c *Ctx) {
	z, ok := c.zsetOf(c.args[1])
	if !ok {
		return
	}
	if z != nil {
		if s, ok := z.Score(c.args[2]); ok {
			c.w.Double(s)
			return
		}
	}
	c.w.Null()
}

func cmdZMScore(c *Ctx) {
	z, ok := c.zsetOf(c.args[1])
	if !ok {
		return
	}
	c.w.Array(len(c.args) - 2)
	for _, m := range c.args[2:] {
		if z != nil {
			if s, ok := z.Score(m); ok {
				c.w.Double(s)
				continue
			}
		}
		c.w.Null()
	}
}

func cmdZCard(c *Ctx) {
	z, ok := c.zsetOf(c.args[1])
	if !ok {
		return
	}
	if z == nil {
		c.w.Int(0)
		return
	}
	c.w.Int(int64(z.Len()))
}

// ---- ranges ---------------------------------------------------------------

// zParseRangeFloat parses a score bound's number the way Redis's strtod
// does: leading spaces allowed, "" is 0, out-of-range values saturate to
// ±inf or 0, NaN refused.
func zParseRangeFloat(b []byte) (float64, bool) {
	s := strings.TrimLeft(string(b), " \t\n\v\f\r")
	if s == "" {
		return 0, true
	}
	switch strings.ToLower(s) {
	case "inf", "+inf", "infinity", "+infinity":
		return math.Inf(1), true
	case "-inf", "-infinity":
		return math.Inf(-1), true
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		if ne, ok := err.(*strconv.NumError); !ok || ne.Err != strconv.ErrRange {
			return 0, false
		}
	}
	if math.IsNaN(f) {
		return 0, false
	}
	return f, true
}

func zParseScoreRange(min, max []byte) (engine.ScoreRange, bool) {
	var r engine.ScoreRange
	var ok bool
	if len(min) > 0 && min[0] == '(' {
		r.MinEx, min = true, min[1:]
	}
	if len(max) > 0 && max[0] == '(' {
		r.MaxEx, max = true, max[1:]
	}
	if r.Min, ok = zParseRangeFloat(min); !ok {
		return r, false
	}
	r.Max, ok = zParseRangeFloat(max)
	return r, ok
}

func zParseLexBound(b []byte) (engine.LexBound, bool) {
	if len(b) == 0 {
		return engine.LexBound{}, false
	}
	switch b[0] {
	case '+', '-':
		if len(b) != 1 {
			return engine.LexBound{}, false
		}
		if b[0] == '+' {
			return engine.LexBound{Inf: 1}, true
		}
		return engine.LexBound{Inf: -1}, true
	case '(', '[':
		return engine.LexBound{S: string(b[1:]), Ex: b[0] == '('}, true
	}
	return engine.LexBound{}, false
}

func zParseLexRange(min, max []byte) (engine.LexRange, bool) {
	a, ok1 := zParseLexBound(min)
	b, ok2 := zParseLexBound(max)
	return engine.LexRange{Min: a, Max: b}, ok1 && ok2
}

const (
	zrAuto = iota
	zrRank
	zrScore
	zrLex
)

// zrange is a parsed ZRANGE-family request.
type zrange struct {
	kind          int
	rev           bool
	withScores    bool
	offset, limit int64 // limit < 0: no limit
	start, stop   int64 // zrRank
	score         engine.ScoreRange
	lex           engine.LexRange
}

// parseZRange parses "<min> <max> [options]" starting at args[at]. fixed
// marks the legacy commands (ZRANGEBYSCORE...) whose kind and direction
// are given by their name.
func (c *Ctx) parseZRange(at int, kind int, rev, fixed, store bool) (*zrange, bool) {
	q := &zrange{kind: kind, rev: rev, limit: -1}
	dirSet := fixed
	hasLimit := false
	for j := at + 2; j < len(c.args); j++ {
		a := c.args[j]
		left := len(c.args) - j - 1
		switch {
		case !store && eq(a, "withscores"):
			q.withScores = true
		case eq(a, "limit") && left >= 2:
			off, ok := c.intArg(j + 1)
			if !ok {
				return nil, false
			}
			lim, ok := c.intArg(j + 2)
			if !ok {
				return nil, false
			}
			q.offset, q.limit, hasLimit = off, lim, true
			j += 2
		case !dirSet && eq(a, "rev"):
			q.rev, dirSet = true, true
		case q.kind == zrAuto && eq(a, "bylex"):
			q.kind = zrLex
		case q.kind == zrAuto && eq(a, "byscore"):
			q.kind = zrScore
		default:
			c.w.Error(errSyntax)
			return nil, false
		}
	}
	if q.kind == zrAuto {
		q.kind = zrRank
	}
	if hasLimit && q.kind == zrRank {
		c.w.Error("ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX")
		return nil, false
	}
	if q.withScores && q.kind == zrLex {
		c.w.Error("ERR syntax error, WITHSCORES not supported in combination with BYLEX")
		return nil, false
	}
	lo, hi := c.args[at], c.args[at+1]
	if q.rev && q.kind != zrRank {
		lo, hi = hi, lo // given as max min
	}
	var ok bool
	switch q.kind {
	case zrRank:
		if q.start, ok = c.intArg(at); !ok {
			return nil, false
		}
		if q.stop, ok = c.intArg(at + 1); !ok {
			return nil, false
		}
	case zrScore:
		if q.score, ok = zParseScoreRange(lo, hi); !ok {
			c.w.Error(errZMinMax)
			return nil, false
		}
	case zrLex:
		if q.lex, ok = zParseLexRange(lo, hi); !ok {
			c.w.Error(errZLexRange)
			return nil, false
		}
	}
	return q, true
}

// zRankRange normalizes Redis start/stop ranks (negative from the end)
// against n elements into [start, end); start >= end means none.
func zRankRange(start, stop int64, n int) (int, int) {
	l := int64(n)
	if start < 0 {
		start += l
	}
	if stop < 0 {
		stop += l
	}
	start = max(start, 0)
	if start > stop || start >= l {
		return 0, 0
	}
	stop = min(stop, l-1)
	return int(start), int(stop) + 1
}

// span resolves q against z: the ascending rank to start from and how
// many elements to walk (downwards if q.rev).
func (q *zrange) span(z *engine.ZSet) (from, n int) {
	switch q.kind {
	case zrRank:
		s, e := zRankRange(q.start, q.stop, z.Len())
		if s >= e {
			return 0, 0
		}
		if q.rev {
			return z.Len() - 1 - s, e - s
		}
		return s, e - s
	}
	var s, e int
	if q.kind == zrScore {
		s, e = z.ScoreRanks(q.score)
	} else {
		s, e = z.LexRanks(q.lex)
	}
	cnt := int64(e - s)
	// A negative offset skips everything, as in Redis.
	if q.offset < 0 || q.offset >= cnt {
		return 0, 0
	}
	cnt -= q.offset
	if q.limit >= 0 {
		cnt = min(cnt, q.limit)
	}
	if q.rev {
		return e - 1 - int(q.offset), int(cnt)
	}
	return s + int(q.offset), int(cnt)
}

func (q *zrange) each(z *engine.ZSet, fn func(m string, s float64)) {
	from, n := q.span(z)
	if n == 0 {
		return
	}
	z.Iter(from, q.rev, func(m string, s float64) bool {
		fn(m, s)
		n--
		return n > 0
	})
}

func cmdZRange(c *Ctx, kind int, rev, fixed bool) {
	q, ok := c.parseZRange(2, kind, rev, fixed, false)
	if !ok {
		return
	}
	z, ok := c.zsetOf(c.args[1])
	if !ok {
		return
	}
	if z == nil {
		c.w.Array(0)
		return
	}
	_, n := q.span(z)
	zElemsHeader(c.w, n, q.withScores, false)
	q.each(z, func(m string, s float64) { zElem(c.w, m, s, q.withScores, false) })
}

func cmdZRangeStore(c *Ctx) {
	q, ok := c.parseZRange(3, zrAuto, false, false, true)
	if !ok {
		return
	}
	z, ok := c.zsetOf(c.args[2])
	if !ok {
		return
	}
	out := engine.NewZSet()
	if z != nil {
		q.each(z, func(m string, s float64) { out.Add([]byte(m), s) })
	}
	c.storeZSet(c.args[1], out)
	c.w.Int(int64(out.Len()))
}

func cmdZCount(c *Ctx) {
	r, ok := zParseScoreRange(c.args[2], c.args[3])
	if !ok {
		c.w.Error(errZMinMax)
		return
	}
	z, ok := c.zsetOf(c.args[1])
	if !ok {
		return
	}
	if z == nil {
		c.w.Int(0)
		return
	}
	s, e := z.ScoreRanks(r)
	c.w.Int(int64(e - s))
}

func cmdZLexCount(c *Ctx) {
	r, ok := zParseLexRange(c.args[2], c.args[3])
	if !ok {
		c.w.Error(errZLexRange)
		return
	}
	z, ok := c.zsetOf(c.args[1])
	if !ok {
		return
	}
	if z == nil {
		c.w.Int(0)
		return
	}
	s, e := z.LexRanks(r)
	c.w.Int(int64(e - s))
}

func cmdZRemRange(c *Ctx, kind int) {
	var start, stop int64
	var sr engine.ScoreRange
	var lr engine.LexRange
	ok := true
	switch kind {
	case zrRank:
		if start, ok = c.intArg(2); !ok {
			return
		}
		if stop, ok = c.intArg(3); !ok {
			return
		}
	case zrScore:
		if sr, ok = zParseScoreRange(c.args[2], c.args[3]); !ok {
			c.w.Error(errZMinMax)
			return
		}
	case zrLex:
		if lr, ok = zParseLexRange(c.args[2], c.args[3]); !ok {
			c.w.Error(errZLexRange)
			return
		}
	}
	key := c.args[1]
	e, ok := c.zsetForWrite(key)
	if !ok {
		return
	}
	if e == nil {
		c.w.Int(0)
		return
	}
	z := e.Obj.(*engine.ZSet)
	var s, t int
	switch kind {
	case zrRank:
		s, t = zRankRange(start, stop, z.Len())
	case zrScore:
		s, t = z.ScoreRanks(sr)
	case zrLex:
		s, t = z.LexRanks(lr)
	}
	old := e.MemSize()
	n := z.RemoveRanks(s, t)
	c.zsetDone(key, e, old)
	c.w.Int(int64(n))
}

func cmdZRank(c *Ctx, rev bool) {
	if len(c.args) > 4 {
		c.w.Error(errArity(c.spec.Name))
		return
	}
	withScore := false
	if len(c.args) == 4 {
		if !eq(c.args[3], "withscore") {
			c.w.Error(errSyntax)
			return
		}
		withScore = true
	}
	null := func() {
		if withScore {
			c.w.NullArray()
		} else {
			c.w.Null()
		}
	}
	z, ok := c.zsetOf(c.args[1])
	if !ok {
		return
	}
	if z == nil {
		null()
		return
	}
	r, s, ok := z.Rank(c.args[2])
	if !ok {
		null()
		return
	}
	if rev {
		r = z.Len() - 1 - r
	}
	if withScore {
		c.w.Array(2)
		c.w.Int(int64(r))
		c.w.Double(s)
		return
	}
	c.w.Int(int64(r))
}

// ---- pops -----------------------------------------------------------------

func cmdZPop(c *Ctx, max bool) {
	if len(c.args) > 3 {
		c.w.Error(errSyntax)
		return
	}
	count := int64(1)
	hasCount := len(c.args) == 3
	if hasCount {
		v, ok := parseInt(c.args[2])
		if !ok || v < 0 {
			c.w.Error(errZPositive)
			return
		}
		count = v
	}
	key := c.args[1]
	e, ok := c.zsetForWrite(key)
	if !ok {
		return
	}
	if e == nil || count == 0 {
		c.w.Array(0)
		return
	}
	z := e.Obj.(*engine.ZSet)
	n := int(min(count, int64(z.Len())))
	old := e.MemSize()
	if !hasCount {
		// Without COUNT the reply is one flat pair in RESP3 too.
		m, s := z.Pop(max)
		c.w.Array(2)
		c.w.BulkString(m)
		c.w.Double(s)
	} else {
		zElemsHeader(c.w, n, true, false)
		for i := 0; i < n; i++ {
			m, s := z.Pop(max)
			zElem(c.w, m, s, true, false)
		}
	}
	c.zsetDone(key, e, old)
}

// bzpopServe pops one element for a client blocked in BZPOPMIN/MAX.
func bzpopServe(max bool) serveFunc {
	return func(c *Ctx, key []byte, e *engine.Entry, w *resp.Writer) {
		c.effect(cluster.Slot(key), zpopName(max), key)
		m, s := e.Obj.(*engine.ZSet).Pop(max)
		w.Array(3)
		w.Bulk(key)
		w.BulkString(m)
		w.Double(s)
	}
}

// zpopName is the command a pop is logged as.
func zpopName(max bool) []byte {
	if max {
		return []byte("zpopmax")
	}
	return []byte("zpopmin")
}

func cmdBZPop(c *Ctx, max bool) {
	c.effectNone()
	timeout, msg := parseTimeout(c.args[len(c.args)-1])
	if msg != "" {
		c.w.Error(msg)
		return
	}
	keys := c.args[1 : len(c.args)-1]
	for _, k := range keys {
		e, ok := c.zsetForWrite(k)
		if !ok {
			return
		}
		if e != nil {
			old := e.MemSize()
			bzpopServe(max)(c, k, e, c.w)
			c.zsetDone(k, e, old)
			return
		}
	}
	if !c.canBlock() {
		c.w.NullArray()
		return
	}
	c.block(keys, engine.TypeZSet, timeout, bzpopServe(max), func(w *resp.Writer) { w.NullArray() })
}

// zmpopServe pops up to count elements for ZMPOP/BZMPOP:
// [key, [[member, score], ...]] in both protocols.
func zmpopServe(max bool, count int64) serveFunc {
	return func(c *Ctx, key []byte, e *engine.Entry, w *resp.Writer) {
		z := e.Obj.(*engine.ZSet)
		n := int(min(count, int64(z.Len())))
		c.effect(cluster.Slot(key), zpopName(max), key, strconv.AppendInt(nil, int64(n), 10))
		w.Array(2)
		w.Bulk(key)
		w.Array(n)
		for i := 0; i < n; i++ {
			m, s := z.Pop(max)
			zElem(w, m, s, true, true)
		}
	}
}

// cmdZMPop runs ZMPOP numkeys key... MIN|MAX [COUNT n] and BZMPOP, which
// has a timeout first. The timeout is parsed last, as Redis does.
func cmdZMPop(c *Ctx, blocking bool) {
	c.effectNone()
	at := 1
	if blocking {
		at = 2
	}
	nk, ok := parseInt(c.args[at])
	if !ok || nk < 1 {
		c.w.Error(errZNumKeys)
		return
	}
	if nk > int64(len(c.args)-at-1) {
		c.w.Error(errSyntax)
		return
	}
	keys := c.args[at+1 : at+1+int(nk)]
	j := at + 1 + int(nk)
	if j >= len(c.args) {
		c.w.Error(errSyntax)
		return
	}
	var max bool
	switch {
	case eq(c.args[j], "min"):
	case eq(c.args[j], "max"):
		max = true
	default:
		c.w.Error(errSyntax)
		return
	}
	count := int64(-1)
	for j++; j < len(c.args); j++ {
		if count == -1 && eq(c.args[j], "count") && j+1 < len(c.args) {
			v, ok := parseInt(c.args[j+1])
			if !ok || v < 1 {
				c.w.Error("ERR count should be greater than 0")
				return
			}
			count = v
			j++
			continue
		}
		c.w.Error(errSyntax)
		return
	}
	if count == -1 {
		count = 1
	}
	var timeout time.Duration
	if blocking {
		t, msg := parseTimeout(c.args[1])
		if msg != "" {
			c.w.Error(msg)
			return
		}
		timeout = t
	}
	serve := zmpopServe(max, count)
	for _, k := range keys {
		e, ok := c.zsetForWrite(k)
		if !ok {
			return
		}
		if e != nil {
			old := e.MemSize()
			serve(c, k, e, c.w)
			c.zsetDone(k, e, old)
			return
		}
	}
	if !blocking || !c.canBlock() {
		c.w.NullArray()
		return
	}
	c.block(keys, engine.TypeZSet, timeout, serve, func(w *resp.Writer) { w.NullArray() })
}

// ---- set algebra ----------------------------------------------------------

const (
	zopUnion = iota
	zopInter
	zopDiff
)

// zsrc is one input of ZUNION & co: a sorted set or a plain set (every
// member scored 1), or nil for a missing key.
type zsrc struct {
	z      *engine.ZSet
	set    zSetInput
	weight float64
}

// zSetInput is what a plain set offers as an input of ZUNIONSTORE and
// friends (every member scores 1, times its weight).
type zSetInput interface {
	Len() int
	Has(member string) bool
	ForEachMember(fn func(member string) bool)
}

func (s *zsrc) len() int {
	switch {
	case s.z != nil:
		return s.z.Len()
	case s.set != nil:
		return s.set.Len()
	}
	return 0
}

func (s *zsrc) score(m string) (float64, bool) {
	switch {
	case s.z != nil:
		return s.z.ScoreOf(m)
	case s.set != nil:
		if s.set.Has(m) {
			return 1, true
		}
	}
	return 0, false
}

func (s *zsrc) each(fn func(m string, sc float64) bool) {
	switch {
	case s.z != nil:
		s.z.Iter(0, false, fn)
	case s.set != nil:
		s.set.ForEachMember(func(m string) bool { return fn(m, 1) })
	}
}

// zsetSource looks key up as an input; ok=false after writing WRONGTYPE.
func (c *Ctx) zsetSource(key []byte) (zsrc, bool) {
	e := c.db.Lookup(c.slot(key), key)
	src := zsrc{weight: 1}
	if e == nil {
		return src, true
	}
	switch e.Type {
	case engine.TypeZSet:
		src.z = e.Obj.(*engine.ZSet)
		return src, true
	case engine.TypeSet:
		src.set = setInput{e.Obj.(*engine.Set)}
		return src, true
	}
	c.w.Error(errWrongType)
	return src, false
}

const (
	zAggSum = iota
	zAggMin
	zAggMax
)

func zAggregate(agg int, acc, v float64) float64 {
	switch agg {
	case zAggMin:
		return min(acc, v)
	case zAggMax:
		return max(acc, v)
	}
	if s := acc + v; !math.IsNaN(s) {
		return s
	}
	return 0 // inf + -inf, as Redis
}

func zWeighted(w, s float64) float64 {
	if v := w * s; !math.IsNaN(v) {
		return v
	}
	return 0 // 0 * inf, as Redis
}

// zsetOp computes op over srcs (for an intersection, none empty).
func zsetOp(op, agg int, srcs []zsrc) *engine.ZSet {
	out := engine.NewZSet()
	var buf []byte
	add := func(m string, s float64) {
		buf = append(buf[:0], m...)
		out.Add(buf, s)
	}
	switch op {
	case zopUnion:
		acc := make(map[string]float64)
		for i := range srcs {
			src := &srcs[i]
			src.each(func(m string, s float64) bool {
				v := zWeighted(src.weight, s)
				if cur, ok := acc[m]; ok {
					acc[m] = zAggregate(agg, cur, v)
				} else {
					acc[m] = v
				}
				return true
			})
		}
		for m, s := range acc {
			add(m, s)
		}
	case zopInter:
		small := 0
		for i := range srcs {
			if srcs[i].len() < srcs[small].len() {
				small = i
			}
		}
		srcs[small].each(func(m string, _ float64) bool {
			var acc float64
			for i := range srcs {
				s, ok := srcs[i].score(m)
				if !ok {
					return true
				}
				v := zWeighted(srcs[i].weight, s)
				if i == 0 {
					acc = v
				} else {
					acc = zAggregate(agg, acc, v)
				}
			}
			add(m, acc)
			return true
		})
	case zopDiff:
		srcs[0].each(func(m string, s float64) bool {
			for i := 1; i < len(srcs); i++ {
				if _, ok := srcs[i].score(m); ok {
					return true
				}
			}
			add(m, s)
			return true
		})
	}
	return out
}

// zNumKeys reads the numkeys argument at args[at] of a set-algebra
// command: keys follow it.
func (c *Ctx) zNumKeys(at int) (int, bool) {
	n, ok := c.intArg(at)
	if !ok {
		return 0, false
	}
	if n < 1 {
		c.w.Error("ERR at least 1 input key is needed for '" + c.spec.Name + "' command")
		return 0, false
	}
	if n > int64(len(c.args)-at-1) {
		c.w.Error(errSyntax)
		return 0, false
	}
	return int(n), true
}

// cmdZSetOp runs Z{UNION,INTER,DIFF}[STORE].
func cmdZSetOp(c *Ctx, op int, store bool) {
	at := 1
	if store {
		at = 2
	}
	n, ok := c.zNumKeys(at)
	if !ok {
		return
	}
	srcs := make([]zsrc, n)
	for i := range srcs {
		if srcs[i], ok = c.zsetSource(c.args[at+1+i]); !ok {
			return
		}
	}
	agg := zAggSum
	withScores := false
	for j := at + 1 + n; j < len(c.args); j++ {
		a := c.args[j]
		left := len(c.args) - j
		switch {
		case op != zopDiff && left >= n+1 && eq(a, "weights"):
			for i := range srcs {
				j++
				f, ok := parseFloat(c.args[j])
				if !ok {
					c.w.Error("ERR weight value is not a float")
					return
				}
				srcs[i].weight = f
			}
		case op != zopDiff && left >= 2 && eq(a, "aggregate"):
			j++
			switch {
			case eq(c.args[j], "sum"):
				agg = zAggSum
			case eq(c.args[j], "min"):
				agg = zAggMin
			case eq(c.args[j], "max"):
				agg = zAggMax
			default:
				c.w.Error(errSyntax)
				return
			}
		case !store && eq(a, "withscores"):
			withScores = true
		default:
			c.w.Error(errSyntax)
			return
		}
	}
	var out *engine.ZSet
	if op == zopDiff && srcs[0].len() == 0 || op == zopInter && zAnyEmpty(srcs) {
		out = engine.NewZSet()
	} else {
		out = zsetOp(op, agg, srcs)
	}
	if store {
		c.storeZSet(c.args[1], out)
		c.w.Int(int64(out.Len()))
		return
	}
	zElemsHeader(c.w, out.Len(), withScores, false)
	out.Iter(0, false, func(m string, s float64) bool {
		zElem(c.w, m, s, withScores, false)
		return true
	})
}

func zAnyEmpty(srcs []zsrc) bool {
	for i := range srcs {
		if srcs[i].len() == 0 {
			return true
		}
	}
	return false
}

func cmdZInterCard(c *Ctx) {
	n, ok := c.zNumKeys(1)
	if !ok {
		return
	}
	srcs := make([]zsrc, n)
	for i := range srcs {
		if srcs[i], ok = c.zsetSource(c.args[2+i]); !ok {
			return
		}
	}
	limit := int64(0)
	for j := 2 + n; j < len(c.args); j++ {
		if eq(c.args[j], "limit") && j+1 < len(c.args) {
			v, ok := parseInt(c.args[j+1])
			if !ok {
				c.w.Error("ERR LIMIT can't be negative")
				return
			}
			if v < 0 {
				c.w.Error("ERR LIMIT can't be negative")
				return
			}
			limit = v
			j++
			continue
		}
		c.w.Error(errSyntax)
		return
	}
	if zAnyEmpty(srcs) {
		c.w.Int(0)
		return
	}
	small := 0
	for i := range srcs {
		if srcs[i].len() < srcs[small].len() {
			small = i
		}
	}
	cnt := int64(0)
	srcs[small].each(func(m string, _ float64) bool {
		for i := range srcs {
			if _, ok := srcs[i].score(m); !ok {
				return true
			}
		}
		cnt++
		return limit == 0 || cnt < limit
	})
	c.w.Int(cnt)
}

// ---- ZSCAN, ZRANDMEMBER -----------------------------------------------------

func cmdZScan(c *Ctx) {
	cur, ok := parseUint(c.args[2])
	if !ok {
		c.w.Error("ERR invalid cursor")
		return
	}
	z, ok := c.zsetOf(c.args[1])
	if !ok {
		return
	}
	if z == nil {
		c.w.Array(2)
		c.w.BulkString("0")
		c.w.Array(0)
		return
	}
	count := int64(10)
	pat := ""
	for i := 3; i < len(c.args); i++ {
		if i+1 >= len(c.args) {
			c.w.Error(errSyntax)
			return
		}
		switch a := c.args[i]; {
		case eq(a, "match"):
			pat = string(c.args[i+1])
		case eq(a, "count"):
			v, ok := c.intArg(i + 1)
			if !ok {
				return
			}
			if v < 1 {
				c.w.Error(errSyntax)
				return
			}
			count = v
		default:
			c.w.Error(errSyntax)
			return
		}
		i++
	}
	var out []string
	var scores []float64
	next := z.Scan(cur, int(min(count, 1<<30)), func(m string, s float64) {
		if pat == "" || glob.Match(pat, m) {
			out = append(out, m)
			scores = append(scores, s)
		}
	})
	c.w.Array(2)
	c.w.BulkString(strconv.FormatUint(next, 10))
	c.w.Array(2 * len(out))
	var tmp [32]byte
	for i, m := range out {
		c.w.BulkString(m)
		// Scores are bulk strings here in RESP3 too, as in Redis.
		c.w.Bulk(resp.AppendFloat(tmp[:0], scores[i]))
	}
}

func cmdZRandMember(c *Ctx) {
	if len(c.args) == 2 {
		z, ok := c.zsetOf(c.args[1])
		if !ok {
			return
		}
		if z == nil {
			c.w.Null()
			return
		}
		m, _ := z.At(rand.IntN(z.Len()))
		c.w.BulkString(m)
		return
	}
	count, ok := c.intArg(2)
	if !ok {
		return
	}
	if len(c.args) > 4 || (len(c.args) == 4 && !eq(c.args[3], "withscores")) {
		c.w.Error(errSyntax)
		return
	}
	withScores := len(c.args) == 4
	if withScores && (count < -math.MaxInt64/2 || count > math.MaxInt64/2) {
		c.w.Error("ERR value is out of range")
		return
	}
	if !c.randCountOK(count) {
		return
	}
	z, ok := c.zsetOf(c.args[1])
	if !ok {
		return
	}
	if z == nil || count == 0 {
		c.w.Array(0)
		return
	}
	n := z.Len()
	emit := func(r int) {
		m, s := z.At(r)
		zElem(c.w, m, s, withScores, false)
	}
	switch {
	case count < 0: // repeats allowed
		k := int(-count)
		zElemsHeader(c.w, k, withScores, false)
		for i := 0; i < k; i++ {
			emit(rand.IntN(n))
		}
	case count >= int64(n): // the whole set
		zElemsHeader(c.w, n, withScores, false)
		z.Iter(0, false, func(m string, s float64) bool {
			zElem(c.w, m, s, withScores, false)
			return true
		})
	case count*3 > int64(n): // a large share: shuffle all ranks
		perm := rand.Perm(n)[:count]
		zElemsHeader(c.w, len(perm), withScores, false)
		for _, r := range perm {
			emit(r)
		}
	default: // a small share: draw distinct ranks
		k := int(count)
		picked := make(map[int]struct{}, k)
		zElemsHeader(c.w, k, withScores, false)
		for len(picked) < k {
			r := rand.IntN(n)
			if _, dup := picked[r]; dup {
				continue
			}
			picked[r] = struct{}{}
			emit(r)
		}
	}
}

// setInput adapts an engine.Set to zSetInput.
type setInput struct{ s *engine.Set }

func (si setInput) Len() int { return si.s.Len() }

func (si setInput) Has(member string) bool {
	_, ok := si.s.M[member]
	return ok
}

func (si setInput) ForEachMember(fn func(member string) bool) {
	for m := range si.s.M {
		if !fn(m) {
			return
		}
	}
}
