package proxy

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"strconv"

	"shoal/internal/cluster"
	"shoal/internal/memcache"
	"shoal/internal/server"
)

// The memcached side: the text protocol's data commands are routed by
// the slot of their key to the primary's memcached port (Node.MCAddr);
// get/gets/gat/gats with keys on several shards are split and merged in
// the client's order. Requests are re-encoded without noreply (the proxy
// must pair every backend reply), and a noreply client gets nothing back.
// Meta commands (mg, ms, md, ma, me) are routed by key the same way;
// mn is answered locally.

// serveMemcache runs one memcached client connection until it closes.
func (p *Proxy) serveMemcache(nc net.Conn) {
	c := p.newConn(nc)
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		c.writeLoop()
	}()
	c.readMemcache()
	c.endOutput()
	c.forget()
}

func (c *conn) readMemcache() {
	defer c.fs.flush()
	lim := memcache.DefaultLimits
	buf := make([]byte, 0, 16<<10)
	var cmd memcache.Command
	off, swallow := 0, 0
	for {
		for off < len(buf) {
			if swallow > 0 {
				k := min(swallow, len(buf)-off)
				off += k
				swallow -= k
				continue
			}
			n := memcache.Parse(buf[off:], &cmd, lim)
			if n == 0 {
				break
			}
			off += n
			swallow = cmd.Swallow
			if !c.handleMC(&cmd) {
				return
			}
		}
		c.fs.flush()
		var err error
		if buf, off, err = c.readMore(buf, off); err != nil {
			return
		}
	}
}

func mcLine(s string) []byte { return []byte(s + "\r\n") }

// handleMC serves one memcached request; false stops reading.
func (c *conn) handleMC(cmd *memcache.Command) bool {
	c.curStart, c.curCmd = c.batchStart, int32(mcCmdID(cmd.Op)+1)
	if ok, handled := c.hotMC(cmd); handled {
		return ok
	}
	switch cmd.Op {
	case memcache.OpError:
		r := &req{close: cmd.Close}
		if !c.push(r) {
			return false
		}
		r.complete(mcLine(cmd.Err))
		return !cmd.Close
	case memcache.OpQuit:
		r := &req{close: true}
		c.push(r)
		r.complete(nil)
		return false
	case memcache.OpVersion:
		return c.local(mcLine("VERSION " + server.ShoalVersion + "-proxy"))
	case memcache.OpVerbosity:
		return c.mcReply(cmd, mcLine("OK"))
	case memcache.OpStats:
		b := memcache.AppendStatInt(nil, "curr_connections", int64(c.p.clientCount()))
		b = memcache.AppendStatInt(b, "total_connections", c.p.stats.conns.Load())
		b = memcache.AppendStat(b, "version", server.ShoalVersion+"-proxy")
		return c.local(append(b, "END\r\n"...))
	case memcache.OpFlushAll:
		body := []byte("flush_all\r\n")
		if cmd.Exptime != 0 {
			body = []byte("flush_all " + strconv.FormatInt(cmd.Exptime, 10) + "\r\n")
		}
		r := &req{}
		if !c.push(r) {
			return false
		}
		rt := c.p.table.Load()
		calls := make([]*shardCall, len(rt.shards))
		for i, id := range rt.shards {
			calls[i] = &shardCall{call: call{pin: int(c.id)}, body: body, slot: -1, shard: id, mc: true}
		}
		noreply := cmd.NoReply
		c.fan(r, calls, func(replies [][]byte) []byte {
			for _, rp := range replies {
				if !bytes.Equal(rp, []byte("OK\r\n")) {
					return rp
				}
			}
			if noreply {
				return nil
			}
			return mcLine("OK")
		})
		return true
	case memcache.OpGet, memcache.OpGets, memcache.OpGat, memcache.OpGats:
		return c.mcGet(cmd)
	case memcache.OpSet, memcache.OpAdd, memcache.OpReplace, memcache.OpAppend, memcache.OpPrepend, memcache.OpCas:
		b := append([]byte(nil), cmd.Name...)
		b = append(b, ' ')
		b = append(b, cmd.Key...)
		b = append(b, ' ')
		b = strconv.AppendUint(b, uint64(cmd.Flags), 10)
		b = append(b, ' ')
		b = strconv.AppendInt(b, cmd.Exptime, 10)
		b = append(b, ' ')
		b = strconv.AppendInt(b, int64(len(cmd.Data)), 10)
		if cmd.Op == memcache.OpCas {
			b = append(b, ' ')
			b = strconv.AppendUint(b, cmd.CAS, 10)
		}
		b = append(b, '\r', '\n')
		b = append(b, cmd.Data...)
		b = append(b, '\r', '\n')
		return c.mcForward(cmd, b, cmd.Op == memcache.OpSet)
	case memcache.OpDelete:
		return c.mcForward(cmd, []byte("delete "+string(cmd.Key)+"\r\n"), false)
	case memcache.OpIncr, memcache.OpDecr:
		return c.mcForward(cmd, []byte(string(cmd.Name)+" "+string(cmd.Key)+" "+strconv.FormatUint(cmd.Delta, 10)+"\r\n"), false)
	case memcache.OpTouch:
		return c.mcForward(cmd, []byte("touch "+string(cmd.Key)+" "+strconv.FormatInt(cmd.Exptime, 10)+"\r\n"), false)
	case memcache.OpMetaNoop:
		// Every earlier reply is ahead of it in the client's order.
		return c.local(mcLine("MN"))
	case memcache.OpMetaGet, memcache.OpMetaSet, memcache.OpMetaDelete, memcache.OpMetaArith, memcache.OpMetaDebug:
		return c.mcMeta(cmd)
	}
	return c.local(mcLine("SERVER_ERROR '" + printable(cmd.Name) + "' is not supported by the shoal proxy"))
}

func (c *conn) mcReply(cmd *memcache.Command, b []byte) bool {
	if cmd.NoReply {
		b = nil
	}
	return c.local(b)
}

// mcForward sends a single-key request to the primary of its key's slot.
func (c *conn) mcForward(cmd *memcache.Command, body []byte, idem bool) bool {
	r := &req{}
	if !c.push(r) {
		return false
	}
	finish := r.complete
	if cmd.NoReply {
		// Errors still reach the client, as the server does for routing errors.
		finish = func(b []byte) {
			if bytes.HasPrefix(b, []byte("SERVER_ERROR")) || bytes.HasPrefix(b, []byte("CLIENT_ERROR")) {
				r.complete(b)
				return
			}
			r.complete(nil)
		}
	}
	c.p.start(&shardCall{call: call{pin: int(c.id)}, body: body, slot: cluster.Slot(cmd.Key), readonly: idem, mc: true, finish: finish}, &c.fs)
	return true
}

// mcMeta forwards a meta command (mg, ms, md, ma, me) to the primary of
// its key's slot (the decoded key for base64 keys). The request is sent
// without q: the proxy must pair every backend reply; a quiet client
// then gets nothing for what memcached's q hides (mg's EN miss, the HD
// of a successful ms, md, ma).
func (c *conn) mcMeta(cmd *memcache.Command) bool {
	m := &cmd.Meta
	b := append([]byte(nil), cmd.Name...)
	b = append(b, ' ')
	b = append(b, cmd.RawKey...)
	if cmd.Op == memcache.OpMetaDebug && !bytes.Equal(cmd.Key, cmd.RawKey) {
		b = append(b, " b"...)
	}
	if cmd.Op == memcache.OpMetaSet {
		b = append(b, ' ')
		b = strconv.AppendInt(b, int64(len(cmd.Data)), 10)
	}
	quiet := false
	for _, t := range m.Tokens {
		if t[0] == 'q' {
			quiet = true
			continue
		}
		b = append(b, ' ')
		b = append(b, t...)
	}
	b = append(b, '\r', '\n')
	if cmd.Op == memcache.OpMetaSet {
		b = append(b, cmd.Data...)
		b = append(b, '\r', '\n')
	}
	// Safe to resend after a dropped connection: a plain read (no touch,
	// vivify or recache flag) and a plain set (no CAS, invalidate or mode).
	idem := false
	switch cmd.Op {
	case memcache.OpMetaGet, memcache.OpMetaDebug:
		idem = !m.Flag('T') && !m.Flag('N') && !m.Flag('R')
	case memcache.OpMetaSet:
		idem = !m.Flag('C') && !m.Flag('I') && (!m.Flag('M') || m.Mode == 'S' || m.Mode == 's')
	}
	r := &req{}
	if !c.push(r) {
		return false
	}
	finish := r.complete
	if quiet {
		op := cmd.Op
		finish = func(rp []byte) {
			if (op == memcache.OpMetaGet && bytes.Equal(rp, []byte("EN\r\n"))) ||
				(op != memcache.OpMetaGet && (bytes.HasPrefix(rp, []byte("HD ")) || bytes.HasPrefix(rp, []byte("HD\r")))) {
				rp = nil
			}
			r.complete(rp)
		}
	}
	replica := c.p.replicaRead && idem && (cmd.Op == memcache.OpMetaGet || cmd.Op == memcache.OpMetaDebug)
	c.p.start(&shardCall{call: call{pin: int(c.id)}, body: b, slot: cluster.Slot(cmd.Key), readonly: idem, replica: replica, mc: true, finish: finish}, &c.fs)
	return true
}

// mcGet splits a retrieval command per shard and merges the hits in the
// order of the requested keys.
func (c *conn) mcGet(cmd *memcache.Command) bool {
	r := &req{}
	if !c.push(r) {
		return false
	}
	rt := c.p.table.Load()
	var keys [][]byte
	var shardOf []int // group index per key
	var order []uint16
	group := map[uint16]int{}
	var bodies [][]byte
	var slots []int
	for k := cmd.NextKey(); k != nil; k = cmd.NextKey() {
		sl := cluster.Slot(k)
		s := rt.slots[sl]
		gi, ok := group[s]
		if !ok {
			gi = len(order)
			group[s] = gi
			order = append(order, s)
			b := append([]byte(nil), cmd.Name...)
			if cmd.Op == memcache.OpGat || cmd.Op == memcache.OpGats {
				b = append(b, ' ')
				b = strconv.AppendInt(b, cmd.Exptime, 10)
			}
			bodies = append(bodies, b)
			slots = append(slots, sl)
		}
		bodies[gi] = append(append(bodies[gi], ' '), k...)
		keys = append(keys, append([]byte(nil), k...))
		shardOf = append(shardOf, gi)
	}
	calls := make([]*shardCall, len(order))
	for gi := range order {
		read := cmd.Op == memcache.OpGet || cmd.Op == memcache.OpGets
		calls[gi] = &shardCall{call: call{pin: int(c.id), mcGet: true}, body: append(bodies[gi], '\r', '\n'), slot: slots[gi],
			readonly: read, replica: read && c.p.replicaRead, mc: true}
	}
	c.fan(r, calls, func(replies [][]byte) []byte {
		if len(replies) == 1 {
			return replies[0]
		}
		blocks := make([][][]byte, len(replies))
		for gi, rp := range replies {
			var ok bool
			if blocks[gi], ok = mcValues(rp); !ok {
				return rp // an error line
			}
		}
		var out []byte
		next := make([]int, len(replies))
		for i, k := range keys {
			gi := shardOf[i]
			if next[gi] < len(blocks[gi]) && bytes.Equal(mcValueKey(blocks[gi][next[gi]]), k) {
				out = append(out, blocks[gi][next[gi]]...)
				next[gi]++
			}
		}
		return append(out, "END\r\n"...)
	})
	return true
}

// mcValues splits a retrieval reply into its VALUE blocks; ok is false
// when it is not one (an error line).
func mcValues(rp []byte) (blocks [][]byte, ok bool) {
	for len(rp) > 0 {
		nl := bytes.IndexByte(rp, '\n')
		if nl < 0 {
			return nil, false
		}
		line := rp[:nl+1]
		if bytes.Equal(line, []byte("END\r\n")) {
			return blocks, true
		}
		n, ok := valueLen(line)
		if !ok || nl+1+n+2 > len(rp) {
			return nil, false
		}
		blocks = append(blocks, rp[:nl+1+n+2])
		rp = rp[nl+1+n+2:]
	}
	return nil, false
}

// valueLen returns the data length a "VALUE key flags bytes [cas]" line announces.
func valueLen(line []byte) (int, bool) {
	if !bytes.HasPrefix(line, []byte("VALUE ")) {
		return 0, false
	}
	f := bytes.Fields(line)
	if len(f) < 4 {
		return 0, false
	}
	n, err := strconv.Atoi(string(f[3]))
	if err != nil || n < 0 || n > 1<<30 {
		return 0, false
	}
	return n, true
}

func mcValueKey(block []byte) []byte {
	f := bytes.Fields(block[:bytes.IndexByte(block, '\n')])
	return f[1]
}

// readMCReply reads one memcached reply to c from r into dst: for
// retrievals VALUE blocks up to END (or an error line), otherwise one line.
func readMCReply(r *bufio.Reader, dst []byte, c *call) ([]byte, error) {
	for {
		start := len(dst)
		var err error
		if dst, err = appendLine(r, dst); err != nil {
			return dst, err
		}
		line := dst[start:]
		if bytes.HasPrefix(line, []byte("VA ")) { // meta value: one data block
			f := bytes.Fields(line)
			if len(f) < 2 {
				return dst, errBadReply
			}
			n, ok := atoi(f[1])
			if !ok || n < 0 || n > maxBackendBulk {
				return dst, errBadReply
			}
			at := len(dst)
			dst = append(dst, make([]byte, n+2)...)
			if _, err := io.ReadFull(r, dst[at:]); err != nil {
				return dst, err
			}
			if dst[len(dst)-2] != '\r' || dst[len(dst)-1] != '\n' {
				return dst, errBadReply
			}
			return dst, nil
		}
		if !c.mcGet || !bytes.HasPrefix(line, []byte("VALUE ")) {
			return dst, nil // END, an error, or a single-line reply
		}
		n, ok := valueLen(line)
		if !ok || n > maxBackendBulk {
			return dst, errBadReply
		}
		at := len(dst)
		dst = append(dst, make([]byte, n+2)...)
		if _, err := io.ReadFull(r, dst[at:]); err != nil {
			return dst, err
		}
	}
}

func (p *Proxy) clientCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.mu.clients) + len(p.mu.lconns)
}
