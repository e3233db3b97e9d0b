package server

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"

	"shoal/internal/cluster"
	"shoal/internal/engine"
	"shoal/internal/glob"
	"shoal/internal/persist"
)

func init() {
	register("del", cmdDel)
	register("unlink", cmdDel)
	register("exists", cmdExists)
	register("touch", cmdExists)
	register("type", cmdType)
	register("expire", func(c *Ctx) { cmdExpire(c, 1000, false) })
	register("pexpire", func(c *Ctx) { cmdExpire(c, 1, false) })
	register("expireat", func(c *Ctx) { cmdExpire(c, 1000, true) })
	register("pexpireat", func(c *Ctx) { cmdExpire(c, 1, true) })
	register("ttl", func(c *Ctx) { cmdTTL(c, 1000, false) })
	register("pttl", func(c *Ctx) { cmdTTL(c, 1, false) })
	register("expiretime", func(c *Ctx) { cmdTTL(c, 1000, true) })
	register("pexpiretime", func(c *Ctx) { cmdTTL(c, 1, true) })
	register("persist", cmdPersist)
	register("rename", func(c *Ctx) { cmdRename(c, false) })
	register("renamenx", func(c *Ctx) { cmdRename(c, true) })
	register("keys", cmdKeys)
	register("scan", cmdScan)
	register("randomkey", cmdRandomKey)
	register("dbsize", func(c *Ctx) { c.w.Int(c.db.KeyCount()) })
	register("flushdb", cmdFlush)
	register("flushall", cmdFlush)
	register("object", cmdObject)
	register("copy", cmdCopy)
}

func cmdDel(c *Ctx) {
	n := 0
	for _, k := range c.args[1:] {
		if c.db.Delete(c.slot(k), k) {
			n++
		}
	}
	c.w.Int(int64(n))
}

// cmdExists also serves TOUCH (same reply: how many of the keys exist,
// duplicates counted; both update access time).
func cmdExists(c *Ctx) {
	n := 0
	for _, k := range c.args[1:] {
		if e := c.db.Peek(c.slot(k), k); e != nil {
			n++
		}
	}
	c.w.Int(int64(n))
}

func cmdType(c *Ctx) {
	e := c.db.Peek(c.slot(c.args[1]), c.args[1])
	if e == nil {
		c.w.Simple("none")
		return
	}
	c.w.Simple(engine.TypeName(e.Type))
}

func cmdExpire(c *Ctx, unit int64, abs bool) {
	key := c.args[1]
	v, ok := c.intArg(2)
	if !ok {
		return
	}
	var nx, xx, gt, lt bool
	for _, a := range c.args[3:] {
		switch {
		case eq(a, "nx"):
			nx = true
		case eq(a, "xx"):
			xx = true
		case eq(a, "gt"):
			gt = true
		case eq(a, "lt"):
			lt = true
		default:
			c.w.Error("ERR Unsupported option " + string(a))
			return
		}
	}
	if nx && (xx || gt || lt) {
		c.w.Error("ERR NX and XX, GT or LT options at the same time are not compatible")
		return
	}
	if gt && lt {
		c.w.Error("ERR GT and LT options at the same time are not compatible")
		return
	}
	if v > math.MaxInt64/unit || v < math.MinInt64/unit {
		c.w.Error(fmt.Sprintf(errExpire, c.spec.Name))
		return
	}
	at := v * unit
	if !abs {
		now := c.db.Now()
		if (at > 0 && at > math.MaxInt64-now) || (at < 0 && at < math.MinInt64+now) {
			c.w.Error(fmt.Sprintf(errExpire, c.spec.Name))
			return
		}
		at += now
	}
	sl := c.slot(key)
	e := c.db.LookupWrite(sl, key)
	if e == nil {
		c.w.Int(0)
		return
	}
	cur := e.ExpireAt
	switch {
	case nx && cur != 0, xx && cur == 0:
		c.w.Int(0)
		return
	case gt && (cur == 0 || at <= cur):
		c.w.Int(0)
		return
	case lt && cur != 0 && at >= cur:
		c.w.Int(0)
		return
	}
	if at <= c.db.Now() {
		c.db.Delete(sl, key)
		c.w.Int(1)
		return
	}
	c.db.SetExpire(sl, key, e, at)
	c.w.Int(1)
}

func cmdTTL(c *Ctx, unit int64, absolute bool) {
	e := c.db.Lookup(c.slot(c.args[1]), c.args[1])
	switch {
	case e == nil:
		c.w.Int(-2)
	case e.ExpireAt == 0:
		c.w.Int(-1)
	case absolute:
		c.w.Int(e.ExpireAt / unit)
	default:
		ms := e.ExpireAt - c.db.Now()
		if ms < 0 {
			ms = 0
		}
		if unit == 1000 {
			c.w.Int((ms + 500) / 1000)
		} else {
			c.w.Int(ms)
		}
	}
}

func cmdPersist(c *Ctx) {
	sl := c.slot(c.args[1])
	e := c.db.Peek(sl, c.args[1])
	if e == nil || e.ExpireAt == 0 {
		c.w.Int(0)
		return
	}
	c.db.LookupWrite(sl, c.args[1])
	c.db.SetExpire(sl, c.args[1], e, 0)
	c.w.Int(1)
}

func cmdRename(c *Ctx, nx bool) {
	src, dst := c.args[1], c.args[2]
	ss, ds := c.slot(src), c.slot(dst)
	e := c.db.Peek(ss, src)
	if e == nil {
		c.w.Error(errNoSuchKey)
		return
	}
	if string(src) == string(dst) {
		if nx {
			c.w.Int(0)
		} else {
			c.w.OK()
		}
		return
	}
	if nx && c.db.Peek(ds, dst) != nil {
		c.w.Int(0)
		return
	}
	c.db.Rename(ss, src, ds, dst)
	if nx {
		c.w.Int(1)
	} else {
		c.w.OK()
	}
}

func hasGlob(p string) bool {
	for i := 0; i < len(p); i++ {
		switch p[i] {
		case '*', '?', '[', '\\':
			return true
		}
	}
	return false
}

func cmdKeys(c *Ctx) {
	pat := string(c.args[1])
	var out []string
	if !hasGlob(pat) {
		id := cluster.SlotString(pat)
		if !c.allLocked {
			c.db.Lock(id)
		}
		if c.db.Peek(c.db.Slot(id), c.args[1]) != nil {
			out = append(out, pat)
		}
		if !c.allLocked {
			c.db.Unlock(id)
		}
	} else {
		all := pat == "*"
		c.forEachSlot(func(_ int, sl *engine.Slot) bool {
			c.db.ForEach(sl, func(k string, _ *engine.Entry) bool {
				if all || glob.Match(pat, k) {
					out = append(out, k)
				}
				return true
			})
			return true
		})
	}
	c.w.Array(len(out))
	for _, k := range out {
		c.w.BulkString(k)
	}
}

// SCAN's cursor is the next slot to visit: each call returns every key of
// whole slots until COUNT keys are collected, so a key present for the
// whole iteration is returned exactly once (slots are never split).
func cmdScan(c *Ctx) {
	cur, ok := parseUint(c.args[1])
	if !ok {
		c.w.Error("ERR invalid cursor")
		return
	}
	count := int64(10)
	pat := ""
	typ := ""
	for i := 2; i < len(c.args); i++ {
		a := c.args[i]
		if i+1 >= len(c.args) {
			c.w.Error(errSyntax)
			return
		}
		switch {
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
		case eq(a, "type"):
			typ = string(c.args[i+1])
		default:
			c.w.Error(errSyntax)
			return
		}
		i++
	}
	var out []string
	next := uint64(0)
	if cur < cluster.NumSlots {
		for i := int(cur); i < cluster.NumSlots; i++ {
			sl := c.db.Slot(i)
			if !c.allLocked {
				c.db.Lock(i)
			}
			c.db.ForEach(sl, func(k string, e *engine.Entry) bool {
				if (pat == "" || glob.Match(pat, k)) && (typ == "" || engine.TypeName(e.Type) == typ) {
					out = append(out, k)
				}
				return true
			})
			if !c.allLocked {
				c.db.Unlock(i)
			}
			// Visited slots count toward COUNT too, so a sparse keyspace
			// does not scan all 16384 slots in one call.
			if int64(len(out)) >= count || int64(i-int(cur)+1) >= count*16 {
				if i+1 < cluster.NumSlots {
					next = uint64(i + 1)
				}
				break
			}
		}
	}
	c.w.Array(2)
	c.w.BulkString(strconv.FormatUint(next, 10))
	c.w.Array(len(out))
	for _, k := range out {
		c.w.BulkString(k)
	}
}

func parseUint(b []byte) (uint64, bool) {
	v, err := strconv.ParseUint(string(b), 10, 64)
	return v, err == nil
}

func cmdRandomKey(c *Ctx) {
	if c.db.KeyCount() == 0 {
		c.w.Null()
		return
	}
	start := rand.IntN(cluster.NumSlots)
	for n := 0; n < cluster.NumSlots; n++ {
		i := (start + n) % cluster.NumSlots
		if n < 64 {
			i = rand.IntN(cluster.NumSlots)
		}
		if !c.allLocked {
			c.db.Lock(i)
		}
		k, ok := c.db.RandomKey(c.db.Slot(i))
		if !c.allLocked {
			c.db.Unlock(i)
		}
		if ok {
			c.w.BulkString(k)
			return
		}
	}
	c.w.Null()
}

func cmdFlush(c *Ctx) {
	if len(c.args) > 2 || (len(c.args) == 2 && !eq(c.args[1], "async") && !eq(c.args[1], "sync")) {
		c.w.Error(errSyntax)
		return
	}
	if c.sink != nil {
		// Logged as one effect on every slot: all slots are locked so
		// that no write lands in a flushed slot before the record.
		if !c.allLocked {
			c.db.LockAll()
		}
		for i := 0; i < cluster.NumSlots; i++ {
			c.db.Flush(c.db.Slot(i))
		}
		c.effect(persist.AllSlots, opFlush)
		if !c.allLocked {
			if lsn := c.srv.emit(c.sink); lsn > 0 {
				c.cl.walLSN = lsn
			}
			c.db.UnlockAll()
		}
		c.w.OK()
		return
	}
	c.forEachSlot(func(_ int, sl *engine.Slot) bool {
		c.db.Flush(sl)
		return true
	})
	c.w.OK()
}

// encodingName mirrors the encodings redis-server reports for the same
// sizes (its default *-max-listpack-* thresholds).
func encodingName(e *engine.Entry) string {
	switch e.Type {
	case engine.TypeString:
		if len(e.Bytes()) <= 20 {
			if _, ok := parseInt(e.Bytes()); ok {
				return "int"
			}
		}
		if len(e.Bytes()) <= 44 {
			return "embstr"
		}
		return "raw"
	case engine.TypeList:
		if e.Len() <= 128 && e.MemSize() <= 8192 {
			return "listpack"
		}
		return "quicklist"
	case engine.TypeHash:
		if e.Len() <= 128 && e.Obj.(*engine.Hash).MaxFieldLen() <= 64 {
			return "listpack"
		}
		return "hashtable"
	case engine.TypeSet:
		s := e.Obj.(*engine.Set)
		if s.AllInts() && s.Len() <= 512 {
			return "intset"
		}
		if s.Len() <= 128 && s.MaxMemberLen() <= 64 {
			return "listpack"
		}
		return "hashtable"
	case engine.TypeZSet:
		if e.Len() <= 128 && e.Obj.(*engine.ZSet).MaxMemberLen() <= 64 {
			return "listpack"
		}
		return "skiplist"
	}
	return "unknown"
}

func cmdObject(c *Ctx) {
	sub := c.args[1]
	if eq(sub, "help") {
		helpReply(c.w, "OBJECT", []string{
			"ENCODING <key>", "    Return the kind of internal representation used in order to store the value",
			"    associated with a <key>.",
			"FREQ <key>", "    Return the access frequency index of the <key>. The returned integer is",
			"    proportional to the logarithm of the recent access frequency of the key.",
			"IDLETIME <key>", "    Return the idle time of the <key>, that is the approximated number of",
			"    seconds elapsed since the last access to the key.",
			"REFCOUNT <key>", "    Return the number of references of the value associated with the specified",
			"    <key>.",
		})
		return
	}
	if len(c.args) != 3 {
		unknownSubcommand(c)
		return
	}
	e := c.db.Peek(c.slot(c.args[2]), c.args[2])
	lfu := c.db.Policy() == engine.PolicyAllKeysLFU || c.db.Policy() == engine.PolicyVolatileLFU
	switch {
	case eq(sub, "encoding"), eq(sub, "freq"), eq(sub, "idletime"), eq(sub, "refcount"):
		if e == nil {
			c.w.Null()
			return
		}
	default:
		unknownSubcommand(c)
		return
	}
	switch {
	case eq(sub, "encoding"):
		c.w.BulkString(encodingName(e))
	case eq(sub, "refcount"):
		c.w.Int(1)
	case eq(sub, "freq"):
		if !lfu {
			c.w.Error("ERR An LFU maxmemory policy is not selected, access frequency not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust.")
			return
		}
		c.w.Int(int64(e.Freq))
	case eq(sub, "idletime"):
		if lfu {
			c.w.Error("ERR An LFU maxmemory policy is selected, idle time not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust.")
			return
		}
		idle := int64(c.db.LRUClock()) - int64(e.Access)
		if idle < 0 {
			idle = 0
		}
		c.w.Int(idle)
	}
}

func cmdCopy(c *Ctx) {
	src, dst := c.args[1], c.args[2]
	replace := false
	for i := 3; i < len(c.args); i++ {
		switch {
		case eq(c.args[i], "replace"):
			replace = true
		case eq(c.args[i], "db") && i+1 < len(c.args):
			if string(c.args[i+1]) != "0" {
				c.w.Error("ERR Shoal serves a single database: only DB 0 is supported")
				return
			}
			i++
		default:
			c.w.Error(errSyntax)
			return
		}
	}
	if string(src) == string(dst) {
		c.w.Error("ERR source and destination objects are the same")
		return
	}
	ss, ds := c.slot(src), c.slot(dst)
	e := c.db.Peek(ss, src)
	if e == nil {
		c.w.Int(0)
		return
	}
	if c.db.Peek(ds, dst) != nil {
		if !replace {
			c.w.Int(0)
			return
		}
		c.db.Delete(ds, dst)
	}
	ne := engine.CloneEntry(e)
	c.db.Add(ds, dst, ne)
	c.w.Int(1)
}
