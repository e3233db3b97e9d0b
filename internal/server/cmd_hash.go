package server

import (
	"math"
	"math/big"
	"strconv"
	"strings"

	"shoal/internal/cluster"
	"shoal/internal/engine"
	"shoal/internal/glob"
)

func init() {
	register("hset", func(c *Ctx) { cmdHSet(c, false) })
	register("hmset", func(c *Ctx) { cmdHSet(c, true) })
	register("hsetnx", cmdHSetNX)
	register("hget", cmdHGet)
	register("hmget", cmdHMGet)
	register("hdel", cmdHDel)
	register("hexists", cmdHExists)
	register("hlen", cmdHLen)
	register("hstrlen", cmdHStrLen)
	register("hkeys", func(c *Ctx) { cmdHGetAll(c, true, false) })
	register("hvals", func(c *Ctx) { cmdHGetAll(c, false, true) })
	register("hgetall", func(c *Ctx) { cmdHGetAll(c, true, true) })
	register("hincrby", cmdHIncrBy)
	register("hincrbyfloat", cmdHIncrByFloat)
	register("hscan", cmdHScan)
	register("hrandfield", cmdHRandField)
}

const (
	errHashNotInt   = "ERR hash value is not an integer"
	errHashNotFloat = "ERR hash value is not a float"
)

// readHash returns key's hash for reading; ok is false (and the reply
// written) on WRONGTYPE. A missing key is (nil, true).
func (c *Ctx) readHash(key []byte) (*engine.Hash, bool) {
	e := c.db.Lookup(c.slot(key), key)
	if e == nil {
		return nil, true
	}
	if e.Type != engine.TypeHash {
		c.w.Error(errWrongType)
		return nil, false
	}
	return e.Obj.(*engine.Hash), true
}

// writeHash returns key's entry for writing (nil if missing) and its slot;
// ok is false (and the reply written) on WRONGTYPE.
func (c *Ctx) writeHash(key []byte) (*engine.Entry, *engine.Slot, bool) {
	sl := c.slot(key)
	e := c.db.LookupWrite(sl, key)
	if e != nil && e.Type != engine.TypeHash {
		c.w.Error(errWrongType)
		return nil, nil, false
	}
	return e, sl, true
}

// setHashFields sets field/value pairs on key, creating the hash if needed,
// and returns the number of new fields. e is key's current entry (or nil).
func (c *Ctx) setHashFields(sl *engine.Slot, key []byte, e *engine.Entry, pairs [][]byte) int64 {
	var n int64
	if e == nil {
		h := engine.NewHash()
		for i := 0; i+1 < len(pairs); i += 2 {
			if h.Set(pairs[i], pairs[i+1]) {
				n++
			}
		}
		c.db.Add(sl, key, &engine.Entry{Type: engine.TypeHash, Obj: h})
		return n
	}
	h := e.Obj.(*engine.Hash)
	old := e.MemSize()
	for i := 0; i+1 < len(pairs); i += 2 {
		if h.Set(pairs[i], pairs[i+1]) {
			n++
		}
	}
	c.db.Resized(sl, old, e)
	return n
}

func cmdHSet(c *Ctx, hmset bool) {
	if len(c.args)%2 != 0 {
		c.w.Error(errArity(c.spec.Name))
		return
	}
	e, sl, ok := c.writeHash(c.args[1])
	if !ok {
		return
	}
	n := c.setHashFields(sl, c.args[1], e, c.args[2:])
	if hmset {
		c.w.OK()
	} else {
		c.w.Int(n)
	}
}

func cmdHSetNX(c *Ctx) {
	e, sl, ok := c.writeHash(c.args[1])
	if !ok {
		return
	}
	if e != nil {
		if _, exists := e.Obj.(*engine.Hash).Get(c.args[2]); exists {
			c.w.Int(0)
			return
		}
	}
	c.setHashFields(sl, c.args[1], e, c.args[2:4])
	c.w.Int(1)
}

func cmdHGet(c *Ctx) {
	h, ok := c.readHash(c.args[1])
	if !ok {
		return
	}
	if h != nil {
		if v, found := h.Get(c.args[2]); found {
			c.w.Bulk(v)
			return
		}
	}
	c.w.Null()
}

func cmdHMGet(c *Ctx) {
	h, ok := c.readHash(c.args[1])
	if !ok {
		return
	}
	c.w.Array(len(c.args) - 2)
	for _, f := range c.args[2:] {
		if h != nil {
			if v, found := h.Get(f); found {
				c.w.Bulk(v)
				continue
			}
		}
		c.w.Null()
	}
}

func cmdHDel(c *Ctx) {
	key := c.args[1]
	e, sl, ok := c.writeHash(key)
	if !ok {
		return
	}
	if e == nil {
		c.w.Int(0)
		return
	}
	h := e.Obj.(*engine.Hash)
	old := e.MemSize()
	var n int64
	for _, f := range c.args[2:] {
		if h.Del(f) {
			n++
		}
	}
	c.db.Resized(sl, old, e)
	if h.Len() == 0 {
		c.db.Delete(sl, key)
	}
	c.w.Int(n)
}

func cmdHExists(c *Ctx) {
	h, ok := c.readHash(c.args[1])
	if !ok {
		return
	}
	found := false
	if h != nil {
		_, found = h.Get(c.args[2])
	}
	c.w.Int(b2i(found))
}

func b2i(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

func cmdHLen(c *Ctx) {
	h, ok := c.readHash(c.args[1])
	if !ok {
		return
	}
	if h == nil {
		c.w.Int(0)
		return
	}
	c.w.Int(int64(h.Len()))
}

func cmdHStrLen(c *Ctx) {
	h, ok := c.readHash(c.args[1])
	if !ok {
		return
	}
	var n int
	if h != nil {
		v, _ := h.Get(c.args[2])
		n = len(v)
	}
	c.w.Int(int64(n))
}

// cmdHGetAll serves HKEYS (fields), HVALS (values) and HGETALL (both, a
// map in RESP3).
func cmdHGetAll(c *Ctx, fields, values bool) {
	h, ok := c.readHash(c.args[1])
	if !ok {
		return
	}
	n := 0
	if h != nil {
		n = h.Len()
	}
	if fields && values {
		c.w.Map(n)
	} else {
		c.w.Array(n)
	}
	if h == nil {
		return
	}
	for f, v := range h.M {
		if fields {
			c.w.BulkString(f)
		}
		if values {
			c.w.Bulk(v)
		}
	}
}

func cmdHIncrBy(c *Ctx) {
	by, ok := c.intArg(3)
	if !ok {
		return
	}
	key := c.args[1]
	e, sl, ok := c.writeHash(key)
	if !ok {
		return
	}
	var cur int64
	if e != nil {
		if v, found := e.Obj.(*engine.Hash).Get(c.args[2]); found {
			cur, ok = parseInt(v)
			if !ok {
				c.w.Error(errHashNotInt)
				return
			}
		}
	}
	if (by > 0 && cur > math.MaxInt64-by) || (by < 0 && cur < math.MinInt64-by) {
		c.w.Error(errOverflow)
		return
	}
	cur += by
	var buf [24]byte
	c.setHashFields(sl, key, e, [][]byte{c.args[2], strconv.AppendInt(buf[:0], cur, 10)})
	c.effect(cluster.Slot(key), []byte("hset"), key, c.args[2], strconv.AppendInt(buf[:0], cur, 10))
	c.w.Int(cur)
}

func cmdHIncrByFloat(c *Ctx) {
	by, ok := parseLongDouble(c.args[3])
	if !ok {
		c.w.Error(errNotFloat)
		return
	}
	if by.IsInf() {
		c.w.Error("ERR value is NaN or Infinity")
		return
	}
	key := c.args[1]
	e, sl, ok := c.writeHash(key)
	if !ok {
		return
	}
	cur := new(big.Float).SetPrec(longDoublePrec)
	if e != nil {
		if v, found := e.Obj.(*engine.Hash).Get(c.args[2]); found {
			if cur, ok = parseLongDouble(v); !ok {
				c.w.Error(errHashNotFloat)
				return
			}
		}
	}
	if cur.IsInf() {
		c.w.Error("ERR increment would produce NaN or Infinity")
		return
	}
	cur.Add(cur, by)
	if ldOverflow(cur) {
		c.w.Error("ERR increment would produce NaN or Infinity")
		return
	}
	b := formatLongDouble(cur)
	c.setHashFields(sl, key, e, [][]byte{c.args[2], b})
	c.effect(cluster.Slot(key), []byte("hset"), key, c.args[2], b)
	c.w.Bulk(b)
}

// HINCRBYFLOAT computes in Redis's long double (x87 80-bit: 64-bit
// mantissa) so that results match redis-server digit for digit, e.g.
// 0.1 + 0.2 = "0.3". big.Float with 64 bits of precision rounds the same way.
const (
	longDoublePrec   = 64
	longDoubleMaxExp = 16384 // |x| < 2^16384
)

// parseLongDouble parses b as Redis's string2ld does (decimal, optional
// exponent, "inf"; no spaces; out-of-range values rejected).
func parseLongDouble(b []byte) (*big.Float, bool) {
	if len(b) == 0 || len(b) > 5*1024 {
		return nil, false
	}
	s := string(b)
	switch strings.ToLower(strings.TrimLeft(s, "+-")) {
	case "inf", "infinity":
		return new(big.Float).SetInf(s[0] == '-'), true
	}
	f, _, err := big.ParseFloat(s, 10, longDoublePrec, big.ToNearestEven)
	if err != nil || ldOverflow(f) {
		return nil, false
	}
	return f, true
}

func ldOverflow(f *big.Float) bool {
	return !f.IsInf() && f.Sign() != 0 && f.MantExp(nil) > longDoubleMaxExp
}

// formatLongDouble is Redis's ld2string(LD_STR_HUMAN): "%.17Lf" with
// trailing zeros (and a trailing point) removed, "-0" as "0".
func formatLongDouble(f *big.Float) []byte {
	s := f.Text('f', 17)
	if strings.IndexByte(s, '.') >= 0 {
		s = strings.TrimRight(s, "0")
		s = strings.TrimSuffix(s, ".")
	}
	if s == "-0" {
		s = "0"
	}
	return []byte(s)
}

// scanArgs parses HSCAN/SSCAN options from args[3:]: MATCH, COUNT and
// (hashes only) NOVALUES. It writes the error reply on failure.
func (c *Ctx) scanArgs(allowNoValues bool) (pat string, count int, novalues, ok bool) {
	count = 10
	for i := 3; i < len(c.args); i++ {
		a := c.args[i]
		if allowNoValues && eq(a, "novalues") {
			novalues = true
			continue
		}
		if i+1 >= len(c.args) {
			c.w.Error(errSyntax)
			return "", 0, false, false
		}
		switch {
		case eq(a, "match"):
			pat = string(c.args[i+1])
			if pat == "*" {
				pat = ""
			}
		case eq(a, "count"):
			v, ok := c.intArg(i + 1)
			if !ok {
				return "", 0, false, false
			}
			if v < 1 {
				c.w.Error(errSyntax)
				return "", 0, false, false
			}
			count = int(min(v, math.MaxInt32))
		default:
			c.w.Error(errSyntax)
			return "", 0, false, false
		}
		i++
	}
	return pat, count, novalues, true
}

// parseScanCursor parses a cursor as Redis does (strtoul): an optional
// sign, and a negative value wraps around ("-1" is 2^64-1).
func parseScanCursor(b []byte) (uint64, bool) {
	neg := false
	if len(b) > 0 && (b[0] == '-' || b[0] == '+') {
		neg = b[0] == '-'
		b = b[1:]
	}
	if len(b) == 0 || b[0] < '0' || b[0] > '9' {
		return 0, false
	}
	v, ok := parseUint(b)
	if neg {
		v = -v
	}
	return v, ok
}

// emptyScan replies cursor 0 with no elements.
func (c *Ctx) emptyScan() {
	c.w.Array(2)
	c.w.BulkString("0")
	c.w.Array(0)
}

// smallScan is the size up to which HSCAN and SSCAN return the whole
// collection in one call with cursor 0, as Redis does for its compact
// encodings.
const smallScan = 128

// HSCAN's cursor is a field's scan position: see engine/scan.go. A page
// holds the fields in [cursor, next) by position, so a field present for
// the whole scan is returned exactly once; MATCH filters a page after it
// is chosen, so a page can be empty while the cursor is not 0.
func cmdHScan(c *Ctx) {
	cur, ok := parseScanCursor(c.args[2])
	if !ok {
		c.w.Error("ERR invalid cursor")
		return
	}
	h, ok := c.readHash(c.args[1])
	if !ok {
		return
	}
	if h == nil {
		c.emptyScan()
		return
	}
	pat, count, novalues, ok := c.scanArgs(true)
	if !ok {
		return
	}
	var fields []string
	next := uint64(0)
	if h.Len() <= smallScan {
		fields = make([]string, 0, h.Len())
		for f := range h.M {
			fields = append(fields, f)
		}
	} else {
		fields, next = h.ScanPage(cur, count)
	}
	out := fields
	if pat != "" {
		out = make([]string, 0, len(fields))
		for _, f := range fields {
			if glob.Match(pat, f) {
				out = append(out, f)
			}
		}
	}
	c.w.Array(2)
	c.w.BulkString(strconv.FormatUint(next, 10))
	if novalues {
		c.w.Array(len(out))
	} else {
		c.w.Array(2 * len(out))
	}
	for _, f := range out {
		c.w.BulkString(f)
		if !novalues {
			c.w.Bulk(h.M[f])
		}
	}
}

func cmdHRandField(c *Ctx) {
	if len(c.args) == 2 {
		h, ok := c.readHash(c.args[1])
		if !ok {
			return
		}
		if h == nil {
			c.w.Null()
			return
		}
		c.w.BulkString(h.RandomField())
		return
	}
	l, ok := c.intArg(2)
	if !ok {
		return
	}
	if l == math.MinInt64 {
		c.w.Error("ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807")
		return
	}
	withValues := false
	if len(c.args) > 4 || (len(c.args) == 4 && !eq(c.args[3], "withvalues")) {
		c.w.Error(errSyntax)
		return
	}
	if len(c.args) == 4 {
		withValues = true
		if l < -math.MaxInt64/2 || l > math.MaxInt64/2 {
			c.w.Error("ERR value is out of range")
			return
		}
	}
	if !c.randCountOK(l) {
		return
	}
	h, ok := c.readHash(c.args[1])
	if !ok {
		return
	}
	if h == nil || l == 0 {
		c.w.Array(0)
		return
	}
	// pair writes one field (with its value): RESP3 nests [field, value]
	// arrays, RESP2 flattens them.
	pair := func(f string) {
		if withValues && c.w.Proto >= 3 {
			c.w.Array(2)
		}
		c.w.BulkString(f)
		if withValues {
			c.w.Bulk(h.M[f])
		}
	}
	picks := int(l) // fields to return
	if l < 0 {
		picks = int(-l)
	} else {
		picks = min(picks, h.Len())
	}
	if withValues && c.w.Proto < 3 {
		c.w.Array(2 * picks)
	} else {
		c.w.Array(picks)
	}
	if l < 0 {
		h.RandomFieldsRepeat(picks, pair)
		return
	}
	for _, f := range h.RandomFields(picks) {
		pair(f)
	}
}
