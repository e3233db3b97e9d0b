package proxy

import (
	"strconv"
	"strings"

	"shoal/internal/cluster"
	"shoal/internal/command"
	"shoal/internal/memcache"
	"shoal/internal/resp"
)

// The client side of hot keys (hotkeys.go): sampling, the cache's read
// and invalidation hooks for RESP and memcached, SHOAL HOTKEYS, INFO.

var getID = command.Table["get"].ID

// sampled reports whether this command is counted in the hot-key
// sketch: one in HotKeySample, by a per-client xorshift (no shared
// state on the hot path; a fixed stride could alias with a client
// cycling over a few keys).
func (c *conn) sampled() bool { return c.p.hot.sampled(&c.rng) }

// sampled advances a client's xorshift state rng and reports whether
// its command is one of the HotKeySample counted (both client kinds).
func (t *hotTracker) sampled(rng *uint64) bool {
	s := t.sample
	if s <= 1 {
		return true
	}
	x := *rng
	x ^= x << 13
	x ^= x >> 7
	x ^= x << 17
	*rng = x
	return uint32(x>>32)&(s-1) == 0
}

// sampleSeed is a client's first xorshift state (never 0).
func sampleSeed(id int64) uint64 { return uint64(id)*0x9e3779b97f4a7c15 | 1 }

// countRESP records the keys of a sampled command.
func (c *conn) countRESP(spec *command.Spec, args [][]byte) {
	if spec.FirstKey == 0 && spec.Keys == nil {
		return
	}
	var buf [8]int
	for _, i := range spec.KeyIndexes(args, buf[:0]) {
		c.p.hot.record(args[i])
	}
}

// cacheRESP applies the hot-key cache to a RESP command: a write
// invalidates its keys now and again when its reply arrives; a GET of a
// published key is answered from the cache or fills it. handled: the
// command was served here.
func (c *conn) cacheRESP(hc *hotCache, spec *command.Spec, args [][]byte) (ok, handled bool) {
	hk := c.p.hot
	switch {
	case spec.ID == getID:
		if c.tx != nil || c.sub != nil && c.sub.count() > 0 {
			// WATCH/MULTI read through the pinned connection: a
			// check-and-set must not act on a cached value. A
			// subscribed client takes the ordinary path.
			return true, false
		}
		h := hk.hash(args[1])
		e, v := hc.lookup(h, args[1], false)
		if v != nil {
			if c.proto3 && len(v) == len(nullBulk) && v[1] == '-' {
				v = []byte("_\r\n")
			}
			return c.local(v), true
		}
		if e == nil {
			return true, false
		}
		tk := hc.ticket(e, h, false)
		r := &req{}
		if !c.push(r) {
			return false, true
		}
		c.p.start(&shardCall{call: call{pin: int(c.id)}, body: resp.AppendCommandBytes(nil, args...), slot: cluster.Slot(args[1]), readonly: true, r3: c.proto3,
			finish: func(reply []byte) {
				hc.fill(tk, reply)
				r.complete(reply)
			}}, &c.fs)
		return true, true
	case spec.Flags&command.ReadOnly != 0:
		return true, false
	case spec.Name == "flushall" || spec.Name == "flushdb":
		hc.invalidateAll()
		c.invalAll = true
	case spec.Name == "exec":
		if c.tx != nil {
			// The queued writes run now: their keys are invalidated
			// again when EXEC's reply arrives.
			c.inval = append(c.inval, c.tx.inval...)
		}
	case spec.FirstKey != 0 || spec.Keys != nil:
		var buf [8]int
		for _, i := range spec.KeyIndexes(args, buf[:0]) {
			h := hk.hash(args[i])
			hc.invalidate(h)
			c.inval = append(c.inval, h)
			if c.tx != nil && c.tx.multi {
				c.tx.inval = append(c.tx.inval, h)
			}
		}
	}
	return true, false
}

// hotMC applies hot-key counting and the cache to a memcached request.
// handled: served here (a cache hit or a hot get sent with a fill).
func (c *conn) hotMC(cmd *memcache.Command) (ok, handled bool) {
	hk := c.p.hot
	retrieval := false
	switch cmd.Op {
	case memcache.OpGet, memcache.OpGets, memcache.OpGat, memcache.OpGats:
		retrieval = true
	}
	if c.sampled() {
		if retrieval {
			cmd.EachKey(func(k []byte) bool { hk.record(k); return true })
		} else if len(cmd.Key) > 0 {
			hk.record(cmd.Key)
		}
	}
	hc := hk.cache
	if hc == nil {
		return true, false
	}
	switch cmd.Op {
	case memcache.OpGet:
		var key []byte
		n := 0
		cmd.EachKey(func(k []byte) bool { key = k; n++; return n < 2 })
		if n != 1 {
			return true, false
		}
		h := hk.hash(key)
		e, v := hc.lookup(h, key, true)
		if v != nil {
			return c.local(v), true
		}
		if e == nil {
			return true, false
		}
		tk := hc.ticket(e, h, true)
		r := &req{}
		if !c.push(r) {
			return false, true
		}
		body := append(append([]byte("get "), key...), '\r', '\n')
		c.p.start(&shardCall{call: call{pin: int(c.id), mcGet: true}, body: body, slot: cluster.Slot(key), readonly: true, mc: true,
			finish: func(reply []byte) {
				hc.fill(tk, reply)
				r.complete(reply)
			}}, &c.fs)
		return true, true
	case memcache.OpGets, memcache.OpMetaDebug, memcache.OpMetaNoop, memcache.OpVersion, memcache.OpVerbosity,
		memcache.OpStats, memcache.OpQuit, memcache.OpError:
	case memcache.OpMetaGet:
		if m := &cmd.Meta; m.Flag('T') || m.Flag('N') || m.Flag('R') {
			c.mcInvalidate(hc, cmd.Key)
		}
	case memcache.OpFlushAll:
		hc.invalidateAll()
		c.invalAll = true
	case memcache.OpGat, memcache.OpGats:
		cmd.EachKey(func(k []byte) bool { c.mcInvalidate(hc, k); return true })
	default:
		if len(cmd.Key) > 0 {
			c.mcInvalidate(hc, cmd.Key)
		}
	}
	return true, false
}

func (c *conn) mcInvalidate(hc *hotCache, key []byte) {
	h := c.p.hot.hash(key)
	hc.invalidate(h)
	c.inval = append(c.inval, h)
}

// isShoal reports whether a lower-cased command name is SHOAL (the
// proxy's own command; not in the command table).
func isShoal(name []byte) bool { return string(name) == "shoal" }

// shoalCommand serves SHOAL HOTKEYS [N]: the N (default 10, at most the
// candidates kept) hottest keys, hottest first, as an array of
// [key, score] pairs.
func (c *conn) shoalCommand(args [][]byte) bool {
	if len(args) < 2 {
		return c.local(errLine("ERR wrong number of arguments for 'shoal' command"))
	}
	switch strings.ToLower(string(args[1])) {
	case "hotkeys":
		n := 10
		if len(args) > 3 {
			return c.local(errLine("ERR wrong number of arguments for 'shoal|hotkeys' command"))
		}
		if len(args) == 3 {
			v, err := strconv.Atoi(string(args[2]))
			if err != nil || v < 1 {
				return c.local(errLine("ERR value is out of range, must be positive"))
			}
			n = v
		}
		hot := c.p.hot.top(n)
		w := resp.Writer{Proto: 2}
		w.Array(len(hot))
		for _, k := range hot {
			w.Array(2)
			w.BulkString(k.Key)
			w.Int(k.Score)
		}
		return c.local(w.B)
	case "help":
		w := resp.Writer{Proto: 2}
		w.Array(3)
		w.Simple("SHOAL <subcommand>. Subcommands are:")
		w.Simple("HOTKEYS [<count>]")
		w.Simple("    The hottest keys seen by this proxy (default 10), with their decayed access counts.")
		return c.local(w.B)
	}
	return c.local(errLine("ERR unknown subcommand '" + printable(args[1]) + "'. Try SHOAL HELP."))
}

// HotKeys returns the n hottest keys this proxy has seen.
func (p *Proxy) HotKeys(n int) []HotKey { return p.hot.top(n) }

// hotInfo is INFO's Hotkeys section.
func (p *Proxy) hotInfo(b *strings.Builder) {
	hk := p.hot
	b.WriteString("\r\n# Hotkeys\r\n")
	b.WriteString("hotkey_sample_rate:" + strconv.Itoa(int(hk.sample)) + "\r\n")
	b.WriteString("hotkey_half_life_ms:" + strconv.FormatInt(hk.halfLife.Milliseconds(), 10) + "\r\n")
	b.WriteString("hotkey_sampled_accesses:" + strconv.FormatInt(hk.recorded.Load(), 10) + "\r\n")
	if hc := hk.cache; hc != nil {
		b.WriteString("hotkey_cache_keys:" + strconv.Itoa(hc.n) + "\r\n")
		b.WriteString("hotkey_cache_ttl_ms:" + strconv.FormatInt(hc.ttl.Milliseconds(), 10) + "\r\n")
		b.WriteString("hotkey_cache_entries:" + strconv.Itoa(hc.entries()) + "\r\n")
		b.WriteString("hotkey_cache_bytes:" + strconv.FormatInt(hc.bytes.Load(), 10) + "\r\n")
		b.WriteString("hotkey_cache_hits:" + strconv.FormatInt(hc.hits.Load(), 10) + "\r\n")
		b.WriteString("hotkey_cache_misses:" + strconv.FormatInt(hc.misses.Load(), 10) + "\r\n")
		b.WriteString("hotkey_cache_fills:" + strconv.FormatInt(hc.fills.Load(), 10) + "\r\n")
		b.WriteString("hotkey_cache_invalidations:" + strconv.FormatInt(hc.invalidations.Load(), 10) + "\r\n")
	} else {
		b.WriteString("hotkey_cache_keys:0\r\n")
	}
	for i, k := range hk.top(10) {
		b.WriteString("hotkey" + strconv.Itoa(i) + ":key=" + printable([]byte(k.Key)) + ",score=" + strconv.FormatInt(k.Score, 10) + "\r\n")
	}
}
