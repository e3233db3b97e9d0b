package server

import (
	"fmt"
	"math"
	"math/bits"
	"strconv"

	"shoal/internal/engine"
	"shoal/internal/resp"
)

func init() {
	register("get", cmdGet)
	register("set", cmdSet)
	register("setnx", cmdSetNX)
	register("setex", func(c *Ctx) { setWithUnit(c, 1000) })
	register("psetex", func(c *Ctx) { setWithUnit(c, 1) })
	register("getset", cmdGetSet)
	register("getdel", cmdGetDel)
	register("getex", cmdGetEx)
	register("mget", cmdMGet)
	register("mset", cmdMSet)
	register("msetnx", cmdMSetNX)
	register("append", cmdAppend)
	register("strlen", cmdStrlen)
	register("incr", func(c *Ctx) { incrBy(c, 1) })
	register("decr", func(c *Ctx) { incrBy(c, -1) })
	register("incrby", func(c *Ctx) {
		if v, ok := c.intArg(2); ok {
			incrBy(c, v)
		}
	})
	register("decrby", func(c *Ctx) {
		if v, ok := c.intArg(2); ok {
			if v == math.MinInt64 {
				c.w.Error("ERR decrement would overflow")
				return
			}
			incrBy(c, -v)
		}
	})
	register("incrbyfloat", cmdIncrByFloat)
	register("getrange", cmdGetRange)
	register("substr", cmdGetRange)
	register("setrange", cmdSetRange)
	register("setbit", cmdSetBit)
	register("getbit", cmdGetBit)
	register("bitcount", cmdBitCount)
	register("bitpos", cmdBitPos)
	register("bitop", cmdBitOp)
	register("lcs", cmdLCS)
}

// getString returns key's string entry for reading; ok is false (and the
// reply written) on WRONGTYPE. A missing key is (nil, true).
func (c *Ctx) getString(key []byte) (*engine.Entry, bool) {
	e := c.db.Lookup(c.slot(key), key)
	if e != nil && e.Type != engine.TypeString {
		c.w.Error(errWrongType)
		return nil, false
	}
	return e, true
}

func cmdGet(c *Ctx) {
	e, ok := c.getString(c.args[1])
	if !ok {
		return
	}
	if e == nil {
		c.w.Null()
		return
	}
	c.w.Bulk(e.Bytes())
}

// expireArg converts a relative or absolute time argument to unix ms.
// unit is 1000 for seconds, 1 for ms; abs for EXAT/PXAT.
func (c *Ctx) expireArg(b []byte, unit int64, abs bool) (int64, bool) {
	v, ok := parseInt(b)
	if !ok {
		c.w.Error(errNotInt)
		return 0, false
	}
	if v <= 0 || v > math.MaxInt64/unit {
		c.w.Error(fmt.Sprintf(errExpire, c.spec.Name))
		return 0, false
	}
	ms := v * unit
	if !abs {
		now := c.db.Now()
		if ms > math.MaxInt64-now {
			c.w.Error(fmt.Sprintf(errExpire, c.spec.Name))
			return 0, false
		}
		ms += now
	}
	return ms, true
}

// isExpireOpt reports whether a is one of SET/GETEX's EX PX EXAT PXAT.
func isExpireOpt(a []byte) bool {
	return eq(a, "ex") || eq(a, "px") || eq(a, "exat") || eq(a, "pxat")
}

// expireOpt parses the expire option at args[i] with its value at i+1
// into an absolute unix ms time.
func (c *Ctx) expireOpt(i int) (int64, bool) {
	a := c.args[i]
	unit := int64(1000)
	if a[0] == 'p' || a[0] == 'P' {
		unit = 1
	}
	return c.expireArg(c.args[i+1], unit, len(a) == 4)
}

func cmdSet(c *Ctx) {
	key, val := c.args[1], c.args[2]
	var nx, xx, get, keep bool
	var at int64
	seenExp := false
	for i := 3; i < len(c.args); i++ {
		a := c.args[i]
		switch {
		case eq(a, "nx") && !xx:
			nx = true
		case eq(a, "xx") && !nx:
			xx = true
		case eq(a, "get"):
			get = true
		case eq(a, "keepttl") && !seenExp:
			keep = true
		case isExpireOpt(a) && !keep && !seenExp && i+1 < len(c.args):
			v, ok := c.expireOpt(i)
			if !ok {
				return
			}
			at, seenExp = v, true
			i++
		default:
			c.w.Error(errSyntax)
			return
		}
	}
	sl := c.slot(key)
	if !nx && !xx && !get {
		// Fast path: plain SET needs no existence check.
		if c.retainArg(2) {
			c.db.SetStringOwned(sl, key, val, at, keep)
		} else {
			c.db.SetString(sl, key, val, at, keep)
		}
		c.w.OK()
		return
	}
	old := c.db.Peek(sl, key)
	if get && old != nil && old.Type != engine.TypeString {
		c.w.Error(errWrongType)
		return
	}
	var prev []byte
	if get && old != nil {
		prev = old.Bytes()
	}
	if (nx && old != nil) || (xx && old == nil) {
		if get {
			c.replyBulkOrNull(prev)
		} else {
			c.w.Null()
		}
		return
	}
	if get {
		// Write the old value before SetString may reuse its buffer.
		c.replyBulkOrNull(prev)
		c.db.SetString(sl, key, val, at, keep)
		return
	}
	c.db.SetString(sl, key, val, at, keep)
	c.w.OK()
}

func (c *Ctx) replyBulkOrNull(b []byte) {
	if b == nil {
		c.w.Null()
	} else {
		c.w.Bulk(b)
	}
}

func cmdSetNX(c *Ctx) {
	sl := c.slot(c.args[1])
	if c.db.Peek(sl, c.args[1]) != nil {
		c.w.Int(0)
		return
	}
	c.db.SetString(sl, c.args[1], c.args[2], 0, false)
	c.w.Int(1)
}

func setWithUnit(c *Ctx, unit int64) {
	at, ok := c.expireArg(c.args[2], unit, false)
	if !ok {
		return
	}
	c.db.SetString(c.slot(c.args[1]), c.args[1], c.args[3], at, false)
	c.w.OK()
}

func cmdGetSet(c *Ctx) {
	sl := c.slot(c.args[1])
	old := c.db.Lookup(sl, c.args[1])
	if old != nil && old.Type != engine.TypeString {
		c.w.Error(errWrongType)
		return
	}
	if old == nil {
		c.w.Null()
	} else {
		c.w.Bulk(old.Bytes())
	}
	c.db.SetString(sl, c.args[1], c.args[2], 0, false)
}

func cmdGetDel(c *Ctx) {
	sl := c.slot(c.args[1])
	e, ok := c.getString(c.args[1])
	if !ok {
		return
	}
	if e == nil {
		c.w.Null()
		return
	}
	c.w.Bulk(e.Bytes())
	c.db.Delete(sl, c.args[1])
}

func cmdGetEx(c *Ctx) {
	key := c.args[1]
	var at int64
	set, persist := false, false
	for i := 2; i < len(c.args); i++ {
		a := c.args[i]
		switch {
		case eq(a, "persist") && !set && !persist:
			persist = true
		case isExpireOpt(a) && !set && !persist && i+1 < len(c.args):
			v, ok := c.expireOpt(i)
			if !ok {
				return
			}
			at, set = v, true
			i++
		default:
			c.w.Error(errSyntax)
			return
		}
	}
	sl := c.slot(key)
	e, ok := c.getString(key)
	if !ok {
		return
	}
	if e == nil {
		c.w.Null()
		return
	}
	c.w.Bulk(e.Bytes())
	switch {
	case set && at <= c.db.Now():
		c.db.Delete(sl, key)
	case set:
		c.db.SetExpire(sl, key, e, at)
	case persist:
		c.db.SetExpire(sl, key, e, 0)
	}
}

func cmdMGet(c *Ctx) {
	c.w.Array(len(c.args) - 1)
	for _, k := range c.args[1:] {
		e := c.db.Lookup(c.slot(k), k)
		if e == nil || e.Type != engine.TypeString {
			c.w.Null()
			continue
		}
		c.w.Bulk(e.Bytes())
	}
}

func cmdMSet(c *Ctx) {
	if len(c.args)%2 != 1 {
		c.w.Error(errArity(c.spec.Name))
		return
	}
	for i := 1; i < len(c.args); i += 2 {
		c.db.SetString(c.slot(c.args[i]), c.args[i], c.args[i+1], 0, false)
	}
	c.w.OK()
}

func cmdMSetNX(c *Ctx) {
	if len(c.args)%2 != 1 {
		c.w.Error(errArity(c.spec.Name))
		return
	}
	for i := 1; i < len(c.args); i += 2 {
		if c.db.Peek(c.slot(c.args[i]), c.args[i]) != nil {
			c.w.Int(0)
			return
		}
	}
	for i := 1; i < len(c.args); i += 2 {
		c.db.SetString(c.slot(c.args[i]), c.args[i], c.args[i+1], 0, false)
	}
	c.w.Int(1)
}

// maxStringLen is proto-max-bulk-len, the largest value a string may grow to.
func (c *Ctx) maxStringLen() int64 { return c.srv.limits.Load().proto.MaxBulkLen }

const errStringTooBig = "ERR string exceeds maximum allowed size (proto-max-bulk-len)"

// writeString returns key's string entry for writing, creating an empty
// one if missing; nil (reply written) on WRONGTYPE.
func (c *Ctx) writeString(key []byte) (*engine.Entry, *engine.Slot, bool) {
	sl := c.slot(key)
	e := c.db.LookupWrite(sl, key)
	if e == nil {
		return nil, sl, true
	}
	if e.Type != engine.TypeString {
		c.w.Error(errWrongType)
		return nil, sl, false
	}
	return e, sl, true
}

func cmdAppend(c *Ctx) {
	e, sl, ok := c.writeString(c.args[1])
	if !ok {
		return
	}
	if e == nil {
		c.db.SetString(sl, c.args[1], c.args[2], 0, false)
		c.w.Int(int64(len(c.args[2])))
		return
	}
	if int64(len(e.Bytes())+len(c.args[2])) > c.maxStringLen() {
		c.w.Error(errStringTooBig)
		return
	}
	old := e.MemSize()
	e.SetBytes(append(e.Bytes(), c.args[2]...))
	c.db.Resized(sl, old, e)
	c.w.Int(int64(len(e.Bytes())))
}

func cmdStrlen(c *Ctx) {
	e, ok := c.getString(c.args[1])
	if !ok {
		return
	}
	if e == nil {
		c.w.Int(0)
		return
	}
	c.w.Int(int64(len(e.Bytes())))
}

func incrBy(c *Ctx, by int64) {
	key := c.args[1]
	e, sl, ok := c.writeString(key)
	if !ok {
		return
	}
	var cur int64
	if e != nil {
		v, ok := parseInt(e.Bytes())
		if !ok {
			c.w.Error(errNotInt)
			return
		}
		cur = v
	}
	if (by > 0 && cur > math.MaxInt64-by) || (by < 0 && cur < math.MinInt64-by) {
		c.w.Error(errOverflow)
		return
	}
	cur += by
	var tmp [24]byte
	b := strconv.AppendInt(tmp[:0], cur, 10)
	if e == nil {
		c.db.SetString(sl, key, b, 0, false)
	} else {
		old := e.MemSize()
		if cap(e.Bytes()) >= len(b) {
			e.SetBytes(append(e.Bytes()[:0], b...))
		} else {
			e.SetBytes(append(make([]byte, 0, 24), b...))
		}
		c.db.Resized(sl, old, e)
	}
	c.w.Int(cur)
}

func cmdIncrByFloat(c *Ctx) {
	key := c.args[1]
	by, ok := c.floatArg(2)
	if !ok {
		return
	}
	e, sl, ok := c.writeString(key)
	if !ok {
		return
	}
	var cur float64
	if e != nil {
		v, ok := parseFloat(e.Bytes())
		if !ok {
			c.w.Error(errNotFloat)
			return
		}
		cur = v
	}
	cur += by
	if math.IsNaN(cur) || math.IsInf(cur, 0) {
		c.w.Error("ERR increment would produce NaN or Infinity")
		return
	}
	b := resp.AppendFloat(nil, cur)
	if e == nil {
		c.db.SetString(sl, key, b, 0, false)
	} else {
		c.db.SetString(sl, key, b, 0, true)
	}
	c.w.Bulk(b)
}

// strRange converts Redis start/end (inclusive, negative from the end) to
// a half-open range over n elements; empty when start > end.
func strRange(start, end int64, n int) (int, int) {
	ln := int64(n)
	if start < 0 {
		start += ln
	}
	if end < 0 {
		end += ln
	}
	if start < 0 {
		start = 0
	}
	if end < 0 {
		end = -1
	}
	if end >= ln {
		end = ln - 1
	}
	if start > end || ln == 0 {
		return 0, 0
	}
	return int(start), int(end + 1)
}

func cmdGetRange(c *Ctx) {
	start, ok := c.intArg(2)
	if !ok {
		return
	}
	end, ok := c.intArg(3)
	if !ok {
		return
	}
	e, ok := c.getString(c.args[1])
	if !ok {
		return
	}
	if e == nil {
		c.w.BulkString("")
		return
	}
	if start < 0 && end < 0 && start > end {
		c.w.BulkString("")
		return
	}
	s, t := strRange(start, end, len(e.Bytes()))
	c.w.Bulk(e.Bytes()[s:t])
}

func cmdSetRange(c *Ctx) {
	off, ok := c.intArg(2)
	if !ok {
		return
	}
	if off < 0 {
		c.w.Error("ERR offset is out of range")
		return
	}
	val := c.args[3]
	e, sl, ok := c.writeString(c.args[1])
	if !ok {
		return
	}
	cur := 0
	if e != nil {
		cur = len(e.Bytes())
	}
	if len(val) == 0 {
		c.w.Int(int64(cur))
		return
	}
	if off+int64(len(val)) > c.maxStringLen() {
		c.w.Error(errStringTooBig)
		return
	}
	need := int(off) + len(val)
	if e == nil {
		buf := make([]byte, need)
		copy(buf[off:], val)
		c.db.SetString(sl, c.args[1], buf, 0, false)
		c.w.Int(int64(need))
		return
	}
	old := e.MemSize()
	if need > len(e.Bytes()) {
		e.SetBytes(append(e.Bytes(), make([]byte, need-len(e.Bytes()))...))
	}
	copy(e.Bytes()[off:], val)
	c.db.Resized(sl, old, e)
	c.w.Int(int64(len(e.Bytes())))
}

func (c *Ctx) bitOffset(i int) (int64, bool) {
	v, ok := parseInt(c.args[i])
	if !ok || v < 0 || v >= c.maxStringLen()*8 {
		c.w.Error("ERR bit offset is not an integer or out of range")
		return 0, false
	}
	return v, true
}

func cmdSetBit(c *Ctx) {
	off, ok := c.bitOffset(2)
	if !ok {
		return
	}
	var bit byte
	switch string(c.args[3]) {
	case "0":
	case "1":
		bit = 1
	default:
		c.w.Error("ERR bit is not an integer or out of range")
		return
	}
	e, sl, ok := c.writeString(c.args[1])
	if !ok {
		return
	}
	byteIdx := int(off >> 3)
	if e == nil {
		e = c.db.SetString(sl, c.args[1], nil, 0, false)
	}
	old := e.MemSize()
	if byteIdx >= len(e.Bytes()) {
		e.SetBytes(append(e.Bytes(), make([]byte, byteIdx+1-len(e.Bytes()))...))
	}
	mask := byte(1) << (7 - uint(off&7))
	prev := 0
	if e.Bytes()[byteIdx]&mask != 0 {
		prev = 1
	}
	if bit == 1 {
		e.Bytes()[byteIdx] |= mask
	} else {
		e.Bytes()[byteIdx] &^= mask
	}
	c.db.Resized(sl, old, e)
	c.w.Int(int64(prev))
}

func cmdGetBit(c *Ctx) {
	off, ok := c.bitOffset(2)
	if !ok {
		return
	}
	e, ok := c.getString(c.args[1])
	if !ok {
		return
	}
	if e == nil || int(off>>3) >= len(e.Bytes()) {
		c.w.Int(0)
		return
	}
	if e.Bytes()[off>>3]&(1<<(7-uint(off&7))) != 0 {
		c.w.Int(1)
	} else {
		c.w.Int(0)
	}
}

// bitRange parses optional start end [BYTE|BIT] at args[i:] and returns a
// bit range [from, to) over a string of n bytes.
func (c *Ctx) bitRange(i int, n int, isPos bool) (from, to int64, explicitEnd bool, ok bool) {
	total := int64(n) * 8
	if len(c.args) <= i {
		return 0, total, false, true
	}
	start, ok1 := parseInt(c.args[i])
	if !ok1 {
		c.w.Error(errNotInt)
		return 0, 0, false, false
	}
	end := int64(-1)
	bitMode := false
	if len(c.args) > i+1 {
		v, ok2 := parseInt(c.args[i+1])
		if !ok2 {
			c.w.Error(errNotInt)
			return 0, 0, false, false
		}
		end, explicitEnd = v, true
		if len(c.args) > i+2 {
			switch {
			case eq(c.args[i+2], "bit"):
				bitMode = true
			case eq(c.args[i+2], "byte"):
			default:
				c.w.Error(errSyntax)
				return 0, 0, false, false
			}
			if len(c.args) > i+3 {
				c.w.Error(errSyntax)
				return 0, 0, false, false
			}
		}
	} else if !isPos {
		c.w.Error(errSyntax)
		return 0, 0, false, false
	}
	ln := int64(n)
	if bitMode {
		ln = total
	}
	if start < 0 {
		start += ln
	}
	if end < 0 {
		end += ln
	}
	if start < 0 {
		start = 0
	}
	if end < 0 {
		end = -1
	}
	if end >= ln {
		end = ln - 1
	}
	if start > end {
		return 0, 0, explicitEnd, true
	}
	if bitMode {
		return start, end + 1, explicitEnd, true
	}
	return start * 8, (end + 1) * 8, explicitEnd, true
}

func cmdBitCount(c *Ctx) {
	e, ok := c.getString(c.args[1])
	if !ok {
		return
	}
	var s []byte
	if e != nil {
		s = e.Bytes()
	}
	from, to, _, ok := c.bitRange(2, len(s), false)
	if !ok {
		return
	}
	c.w.Int(countBits(s, from, to))
}

func countBits(s []byte, from, to int64) int64 {
	var n int64
	for b := from; b < to; {
		if b&7 == 0 && to-b >= 8 {
			n += int64(bits.OnesCount8(s[b>>3]))
			b += 8
			continue
		}
		if s[b>>3]&(1<<(7-uint(b&7))) != 0 {
			n++
		}
		b++
	}
	return n
}

func cmdBitPos(c *Ctx) {
	var bit byte
	switch string(c.args[2]) {
	case "0":
	case "1":
		bit = 1
	default:
		c.w.Error("ERR The bit argument must be 1 or 0.")
		return
	}
	e, ok := c.getString(c.args[1])
	if !ok {
		return
	}
	if e == nil {
		if bit == 1 {
			c.w.Int(-1)
		} else {
			c.w.Int(0)
		}
		return
	}
	from, to, explicitEnd, ok := c.bitRange(3, len(e.Bytes()), true)
	if !ok {
		return
	}
	for b := from; b < to; b++ {
		v := byte(0)
		if e.Bytes()[b>>3]&(1<<(7-uint(b&7))) != 0 {
			v = 1
		}
		if v == bit {
			c.w.Int(b)
			return
		}
	}
	if bit == 0 && !explicitEnd && from < to {
		// Looking for a clear bit with no end given: the string is padded
		// with zeros on the right.
		c.w.Int(to)
		return
	}
	c.w.Int(-1)
}

func cmdBitOp(c *Ctx) {
	op := c.args[1]
	var kind int
	switch {
	case eq(op, "and"):
		kind = 0
	case eq(op, "or"):
		kind = 1
	case eq(op, "xor"):
		kind = 2
	case eq(op, "not"):
		kind = 3
		if len(c.args) != 4 {
			c.w.Error("ERR BITOP NOT must be called with a single source key.")
			return
		}
	default:
		c.w.Error(errSyntax)
		return
	}
	srcs := make([][]byte, 0, len(c.args)-3)
	maxLen := 0
	for _, k := range c.args[3:] {
		e := c.db.Lookup(c.slot(k), k)
		if e != nil && e.Type != engine.TypeString {
			c.w.Error(errWrongType)
			return
		}
		var s []byte
		if e != nil {
			s = e.Bytes()
		}
		srcs = append(srcs, s)
		if len(s) > maxLen {
			maxLen = len(s)
		}
	}
	dst := c.args[2]
	sl := c.slot(dst)
	if maxLen == 0 {
		c.db.Delete(sl, dst)
		c.w.Int(0)
		return
	}
	out := make([]byte, maxLen)
	for i := range out {
		var v byte
		for j, s := range srcs {
			var b byte
			if i < len(s) {
				b = s[i]
			}
			switch {
			case j == 0:
				v = b
			case kind == 0:
				v &= b
			case kind == 1:
				v |= b
			case kind == 2:
				v ^= b
			}
		}
		if kind == 3 {
			v = ^v
		}
		out[i] = v
	}
	c.db.SetString(sl, dst, out, 0, false)
	c.w.Int(int64(maxLen))
}

func cmdLCS(c *Ctx) {
	var sa, sb []byte
	for i, k := range c.args[1:3] {
		e, ok := c.getString(k)
		if !ok {
			return
		}
		if e != nil {
			if i == 0 {
				sa = e.Bytes()
			} else {
				sb = e.Bytes()
			}
		}
	}
	getLen, getIdx, withLen := false, false, false
	minLen := int64(0)
	for i := 3; i < len(c.args); i++ {
		switch a := c.args[i]; {
		case eq(a, "len"):
			getLen = true
		case eq(a, "idx"):
			getIdx = true
		case eq(a, "withmatchlen"):
			withLen = true
		case eq(a, "minmatchlen") && i+1 < len(c.args):
			v, ok := c.intArg(i + 1)
			if !ok {
				return
			}
			if v < 0 {
				v = 0
			}
			minLen = v
			i++
		default:
			c.w.Error(errSyntax)
			return
		}
	}
	if getLen && getIdx {
		c.w.Error("ERR If you want both the length and indexes, please just use IDX.")
		return
	}
	if int64(len(sa)+1)*int64(len(sb)+1) > 1<<28 {
		c.w.Error("ERR Insufficient memory, transient memory for LCS exceeds proto-max-bulk-len")
		return
	}
	// Dynamic programming table of LCS lengths, as Redis computes it.
	cols := len(sb) + 1
	dp := make([]uint32, (len(sa)+1)*cols)
	for i := 1; i <= len(sa); i++ {
		for j := 1; j <= len(sb); j++ {
			if sa[i-1] == sb[j-1] {
				dp[i*cols+j] = dp[(i-1)*cols+j-1] + 1
			} else if dp[(i-1)*cols+j] > dp[i*cols+j-1] {
				dp[i*cols+j] = dp[(i-1)*cols+j]
			} else {
				dp[i*cols+j] = dp[i*cols+j-1]
			}
		}
	}
	total := dp[len(sa)*cols+len(sb)]
	if getLen {
		c.w.Int(int64(total))
		return
	}
	res := make([]byte, total)
	type match struct{ a0, a1, b0, b1 int }
	var matches []match
	i, j, idx := len(sa), len(sb), int(total)
	cur := match{-1, -1, -1, -1}
	flush := func() {
		if cur.a0 >= 0 && int64(cur.a1-cur.a0+1) >= minLen {
			matches = append(matches, cur)
		}
		cur = match{-1, -1, -1, -1}
	}
	for i > 0 && j > 0 {
		if sa[i-1] == sb[j-1] {
			idx--
			res[idx] = sa[i-1]
			if cur.a0 >= 0 && cur.a0 == i && cur.b0 == j {
				cur.a0, cur.b0 = i-1, j-1
			} else {
				flush()
				cur = match{i - 1, i - 1, j - 1, j - 1}
			}
			i--
			j--
		} else if dp[(i-1)*cols+j] > dp[i*cols+j-1] {
			i--
		} else {
			j--
		}
	}
	flush()
	if !getIdx {
		c.w.Bulk(res)
		return
	}
	c.w.Map(2)
	c.w.BulkString("matches")
	c.w.Array(len(matches))
	for _, m := range matches {
		if withLen {
			c.w.Array(3)
		} else {
			c.w.Array(2)
		}
		c.w.Array(2)
		c.w.Int(int64(m.a0))
		c.w.Int(int64(m.a1))
		c.w.Array(2)
		c.w.Int(int64(m.b0))
		c.w.Int(int64(m.b1))
		if withLen {
			c.w.Int(int64(m.a1 - m.a0 + 1))
		}
	}
	c.w.BulkString("len")
	c.w.Int(int64(total))
}
