package proxy

import (
	"bytes"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"shoal/internal/acl"
	"shoal/internal/cluster"
	"shoal/internal/command"
	"shoal/internal/resp"
	"shoal/internal/server"
)

// Routing classes (docs/proxy.md):
//   - keyed, all keys on one shard: forwarded as is to its primary;
//   - MGET, MSET, DEL, UNLINK, EXISTS, TOUCH over several shards: split
//     per shard, sent in parallel, merged in the client's order;
//   - other multi-key commands over several shards: CROSSSLOT error;
//   - keyless: answered by the proxy (PING, ECHO, ...), fanned out to
//     every primary (DBSIZE, FLUSHALL, KEYS, SCAN) or sent to any one
//     (COMMAND); anything else is not supported.

func errLine(msg string) []byte { return []byte("-" + msg + "\r\n") }

func notSupported(name string) []byte {
	return errLine("ERR '" + strings.ToLower(name) + "' is not supported by the shoal proxy")
}

const errCrossShard = "CROSSSLOT Keys in request don't hash to the same shard (the shoal proxy cannot run this command across shards)"

// handle serves one request; false stops reading (QUIT, or the writer is gone).
func (c *conn) handle(args [][]byte) bool {
	c.curStart = c.batchStart
	var lower [32]byte
	name := args[0]
	if len(name) <= len(lower) {
		for i, ch := range name {
			if ch >= 'A' && ch <= 'Z' {
				ch += 'a' - 'A'
			}
			lower[i] = ch
		}
		name = lower[:len(name)]
	}
	spec := command.Lookup(name)
	if spec == nil {
		if !c.authed {
			c.queueError()
			return c.local(errLine(errNoAuth))
		}
		if isShoal(name) && c.tx == nil && (c.sub == nil || c.sub.count() == 0) {
			c.curCmd = int32(cmdShoal + 1)
			return c.shoalCommand(args)
		}
		c.curCmd = int32(cmdUnknown + 1)
		c.queueError()
		return c.local(errLine("ERR unknown command '" + printable(args[0]) + "'"))
	}
	c.curCmd = int32(spec.ID + 1)
	if !c.authed && spec.Flags&command.NoAuth == 0 {
		c.queueError()
		return c.local(errLine(errNoAuth))
	}
	if !spec.ArityOK(len(args)) {
		c.queueError()
		return c.local(errLine("ERR wrong number of arguments for '" + spec.Name + "' command"))
	}
	// ACL: one predictable branch while no user is restricted.
	if c.p.acl.Restricted() {
		if p := c.user.Perms(); !p.Unrestricted {
			if msg := p.Check(c.user.Name, spec, args); msg != "" {
				c.queueError()
				return c.local(errLine(msg))
			}
		}
	}
	if c.sampled() {
		c.countRESP(spec, args)
	}
	if hc := c.p.hot.cache; hc != nil {
		if ok, handled := c.cacheRESP(hc, spec, args); handled {
			return ok
		}
	}
	if c.sub != nil && !c.proto3 && c.sub.count() > 0 {
		// RESP2 subscribed mode (RESP3 clients may run any command).
		if ok, handled := c.subscribed(spec, args); handled {
			return ok
		}
	}
	if c.tx != nil && spec.Flags&command.NoMulti == 0 {
		if ok, handled := c.txQueued(spec, args, !c.tx.multi); handled {
			return ok
		}
	}
	switch spec.Name {
	case "ping":
		if len(args) > 2 {
			return c.local(errLine("ERR wrong number of arguments for 'ping' command"))
		}
		if len(args) == 2 {
			return c.local(bulk(nil, args[1]))
		}
		return c.local([]byte("+PONG\r\n"))
	case "echo":
		return c.local(bulk(nil, args[1]))
	case "quit":
		r := &req{close: true}
		ok := c.push(r)
		r.complete([]byte("+OK\r\n"))
		_ = ok
		return false
	case "select":
		if string(args[1]) == "0" {
			return c.local([]byte("+OK\r\n"))
		}
		return c.local(errLine("ERR SELECT of a database other than 0 is not supported by the shoal proxy"))
	case "auth":
		return c.auth(args)
	case "acl":
		return c.aclCmd(args)
	case "hello":
		return c.hello(args)
	case "client":
		return c.client(args)
	case "time":
		now := time.Now()
		w := resp.Writer{Proto: 2}
		w.Array(2)
		w.BulkInt(now.Unix())
		w.BulkInt(int64(now.Nanosecond() / 1000))
		return c.local(w.B)
	case "info":
		w := resp.Writer{Proto: c.proto()}
		w.Verbatim(c.p.info())
		return c.local(w.B)
	case "command":
		rt := c.p.table.Load()
		if len(rt.shards) == 0 {
			return c.local(errLine("CLUSTERDOWN The cluster is down"))
		}
		return c.forwardShard(args, rt.shards[0], true)
	case "dbsize":
		return c.fanAll(args, sumInts)
	case "flushall", "flushdb":
		return c.fanAll(args, allOK)
	case "keys":
		return c.fanAll(args, concatArrays)
	case "scan":
		return c.scan(args)
	}
	if spec.Flags&(command.Blocking|command.PubSub|command.NoMulti|command.Admin|command.AllSlots) != 0 {
		switch spec.Name {
		case "multi", "exec", "discard", "watch", "unwatch":
			return c.txCommand(spec, args)
		}
		if spec.Flags&command.Blocking != 0 {
			return c.blocking(spec, args)
		}
		if spec.Flags&command.PubSub != 0 {
			return c.pubsub(spec, args)
		}
		return c.local(notSupported(spec.Name))
	}
	keys := spec.KeyIndexes(args, nil)
	if len(keys) == 0 {
		return c.local(notSupported(spec.Name))
	}
	rt := c.p.table.Load()
	readonly := spec.Flags&command.ReadOnly != 0 || idempotent(spec.Name, args)
	first := cluster.Slot(args[keys[0]])
	shard := rt.slots[first]
	same := true
	for _, k := range keys[1:] {
		if rt.slots[cluster.Slot(args[k])] != shard {
			same = false
			break
		}
	}
	rep := c.p.replicaRead && spec.Flags&command.ReadOnly != 0
	if same {
		if rep {
			return c.forwardRead(args, first)
		}
		return c.forward(args, first, readonly)
	}
	switch spec.Name {
	case "mget":
		return c.split(args, rt, 1, readonly, rep, mergeMGET)
	case "mset":
		return c.split(args, rt, 2, readonly, false, ignorePos(allOK))
	case "del", "unlink", "exists", "touch":
		return c.split(args, rt, 1, readonly, rep, ignorePos(sumInts))
	}
	return c.local(errLine(errCrossShard))
}

// queueError dooms an open MULTI after a command it could not queue
// (unknown, wrong arity), as Redis does.
func (c *conn) queueError() {
	if c.tx != nil && c.tx.multi {
		c.tx.doomed = true
	}
}

// idempotent reports whether running args twice leaves the same state
// and gives the same reply as running it once, so that it may be resent
// after a backend connection dropped with the request in flight (its
// outcome unknown). The price, documented in docs/proxy.md: a resent SET
// may overwrite a write another client made between the two attempts.
func idempotent(name string, args [][]byte) bool {
	switch name {
	case "set":
		for _, a := range args[3:] {
			switch strings.ToLower(string(a)) {
			case "nx", "xx", "get", "keepttl":
				return false
			}
		}
		return true
	case "setex", "psetex", "mset", "hmset", "lset":
		return true
	}
	return false
}

func printable(b []byte) string {
	if len(b) > 64 {
		b = b[:64]
	}
	s := []byte(string(b))
	for i, ch := range s {
		if ch < 0x20 || ch >= 0x7f {
			s[i] = '?'
		}
	}
	return string(s)
}

func bulk(b, v []byte) []byte {
	b = append(b, '$')
	b = strconv.AppendInt(b, int64(len(v)), 10)
	b = append(b, '\r', '\n')
	b = append(b, v...)
	return append(b, '\r', '\n')
}

// forward sends the request unchanged to the primary of slot.
func (c *conn) forward(args [][]byte, slot int, readonly bool) bool {
	f := &fwd{}
	r := &f.r
	if !c.push(r) {
		return false
	}
	f.sc = shardCall{call: call{pin: int(c.id)}, r3: c.proto3, body: resp.AppendCommandBytes(nil, args...), slot: slot, readonly: readonly, fin: r}
	c.p.start(&f.sc, &c.fs)
	return true
}

// fwd holds a forwarded request's reply slot and its backend call in
// one allocation.
type fwd struct {
	r  req
	sc shardCall
}

// forwardRead sends a read-only request to a replica of slot's shard
// (--read-from replica-preferred; the primary when it has none, and on
// every retry).
func (c *conn) forwardRead(args [][]byte, slot int) bool {
	f := &fwd{}
	r := &f.r
	if !c.push(r) {
		return false
	}
	f.sc = shardCall{call: call{pin: int(c.id)}, r3: c.proto3, body: resp.AppendCommandBytes(nil, args...), slot: slot, readonly: true, replica: true, fin: r}
	c.p.start(&f.sc, &c.fs)
	return true
}

func (c *conn) forwardShard(args [][]byte, shard int, readonly bool) bool {
	f := &fwd{}
	r := &f.r
	if !c.push(r) {
		return false
	}
	f.sc = shardCall{call: call{pin: int(c.id)}, r3: c.proto3, body: resp.AppendCommandBytes(nil, args...), slot: -1, shard: shard, readonly: readonly, fin: r}
	c.p.start(&f.sc, &c.fs)
	return true
}

// fan sends calls in parallel and completes r with merge of their replies
// (in calls' order) once all are in.
func (c *conn) fan(r *req, calls []*shardCall, merge func([][]byte) []byte) {
	if len(calls) == 0 {
		r.complete(merge(nil))
		return
	}
	replies := make([][]byte, len(calls))
	var left atomic.Int32
	left.Store(int32(len(calls)))
	for i, sc := range calls {
		sc.finish = func(b []byte) {
			replies[i] = b
			if left.Add(-1) == 0 {
				r.complete(merge(replies))
			}
		}
	}
	for _, sc := range calls {
		c.p.start(sc, &c.fs)
	}
}

// fanAll sends args to every shard's primary.
func (c *conn) fanAll(args [][]byte, merge func([][]byte) []byte) bool {
	r := &req{}
	if !c.push(r) {
		return false
	}
	rt := c.p.table.Load()
	body := resp.AppendCommandBytes(nil, args...)
	calls := make([]*shardCall, len(rt.shards))
	for i, id := range rt.shards {
		calls[i] = &shardCall{call: call{pin: int(c.id)}, r3: c.proto3, body: body, slot: -1, shard: id}
	}
	c.fan(r, calls, merge)
	return true
}

// split sends one request per shard with that shard's keys (groups of
// width arguments: 1 for keys, 2 for key-value pairs), and merges.
// Merge functions that need positions (MGET) get them from the order of
// the groups, recorded in the request header below.
func (c *conn) split(args [][]byte, rt *route, width int, readonly, rep bool, merge func(pos [][]int, replies [][]byte) []byte) bool {
	r := &req{}
	if !c.push(r) {
		return false
	}
	var order []uint16
	groups := map[uint16][]int{} // shard → key indexes (into args)
	slotOf := map[uint16]int{}
	for i := 1; i+width-1 < len(args); i += width {
		sl := cluster.Slot(args[i])
		s := rt.slots[sl]
		if _, ok := groups[s]; !ok {
			order = append(order, s)
			slotOf[s] = sl
		}
		groups[s] = append(groups[s], i)
	}
	calls := make([]*shardCall, len(order))
	pos := make([][]int, len(order))
	for gi, s := range order {
		idx := groups[s]
		sub := make([][]byte, 0, 1+len(idx)*width)
		sub = append(sub, args[0])
		for _, i := range idx {
			sub = append(sub, args[i:i+width]...)
			pos[gi] = append(pos[gi], (i-1)/width)
		}
		calls[gi] = &shardCall{call: call{pin: int(c.id)}, r3: c.proto3, body: resp.AppendCommandBytes(nil, sub...), slot: slotOf[s], readonly: readonly,
			replica: rep}
	}
	c.fan(r, calls, func(replies [][]byte) []byte { return merge(pos, replies) })
	return true
}

func ignorePos(f func([][]byte) []byte) func([][]int, [][]byte) []byte {
	return func(_ [][]int, r [][]byte) []byte { return f(r) }
}

func firstErr(replies [][]byte) []byte {
	for _, rp := range replies {
		if isErr(rp) {
			return rp
		}
	}
	return nil
}

func sumInts(replies [][]byte) []byte {
	if e := firstErr(replies); e != nil {
		return e
	}
	var n int64
	for _, rp := range replies {
		v, ok := replyInt(rp)
		if !ok {
			return errLine("ERR shoal proxy: unexpected backend reply")
		}
		n += v
	}
	return append(strconv.AppendInt([]byte{':'}, n, 10), '\r', '\n')
}

func allOK(replies [][]byte) []byte {
	if e := firstErr(replies); e != nil {
		return e
	}
	return []byte("+OK\r\n")
}

func concatArrays(replies [][]byte) []byte {
	if e := firstErr(replies); e != nil {
		return e
	}
	var elems [][]byte
	for _, rp := range replies {
		var ok bool
		if elems, ok = arrayElems(rp, elems); !ok {
			return errLine("ERR shoal proxy: unexpected backend reply")
		}
	}
	out := strconv.AppendInt([]byte{'*'}, int64(len(elems)), 10)
	out = append(out, '\r', '\n')
	for _, e := range elems {
		out = append(out, e...)
	}
	return out
}

func mergeMGET(pos [][]int, replies [][]byte) []byte {
	if e := firstErr(replies); e != nil {
		return e
	}
	n := 0
	for _, p := range pos {
		n += len(p)
	}
	vals := make([][]byte, n)
	var elems [][]byte
	for gi, rp := range replies {
		var ok bool
		elems, ok = arrayElems(rp, elems[:0])
		if !ok || len(elems) != len(pos[gi]) {
			return errLine("ERR shoal proxy: unexpected backend reply")
		}
		for j, e := range elems {
			vals[pos[gi][j]] = e
		}
	}
	out := strconv.AppendInt([]byte{'*'}, int64(n), 10)
	out = append(out, '\r', '\n')
	for _, v := range vals {
		out = append(out, v...)
	}
	return out
}

const errNoAuth = "NOAUTH Authentication required."

// auth serves AUTH [user] password against the proxy's users.
func (c *conn) auth(args [][]byte) bool {
	if len(args) > 3 {
		return c.local(errLine("ERR syntax error"))
	}
	user, pass := acl.DefaultUser, args[1]
	if len(args) == 3 {
		user, pass = string(args[1]), args[2]
	} else if c.p.acl.Default().Perms().NoPass {
		return c.local(errLine("ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?"))
	}
	u, ok := c.p.acl.Authenticate(user, pass)
	if !ok {
		return c.local(errLine(acl.ErrWrongPass))
	}
	c.user, c.authed = u, true
	return c.local([]byte("+OK\r\n"))
}

// acl serves the read-only ACL subcommands; the proxy's users come from
// its configuration (--user, --requirepass), so they do not change.
func (c *conn) aclCmd(args [][]byte) bool {
	w := resp.Writer{Proto: c.proto()}
	switch strings.ToLower(string(args[1])) {
	case "whoami":
		w.BulkString(c.user.Name)
	case "users":
		names := c.p.acl.Names()
		w.Array(len(names))
		for _, n := range names {
			w.BulkString(n)
		}
	case "cat":
		if len(args) == 2 {
			w.Array(len(acl.Categories))
			for _, cat := range acl.Categories {
				w.BulkString(cat)
			}
			break
		}
		cmds, ok := acl.CategoryCommands(string(args[2]))
		if !ok {
			return c.local(errLine("ERR Unknown category '" + printable(args[2]) + "'"))
		}
		w.Array(len(cmds))
		for _, n := range cmds {
			w.BulkString(n)
		}
	case "setuser", "deluser", "load", "save":
		return c.local(errLine("ERR the shoal proxy's users come from its --user and --requirepass flags: ACL " + strings.ToUpper(string(args[1])) + " is not supported"))
	default:
		return c.local(notSupported("acl|" + strings.ToLower(printable(args[1]))))
	}
	return c.local(w.B)
}

// proto is the client's protocol version (HELLO).
func (c *conn) proto() int {
	if c.proto3 {
		return 3
	}
	return 2
}

// hello serves HELLO [2|3] [SETNAME name]: HELLO 3 switches the client
// to RESP3. Its later commands go to backend connections that said
// HELLO 3 (so nodes answer maps, sets, doubles, nulls in RESP3); the
// switch waits until the earlier ones are answered, since they went to
// other connections and must not be overtaken.
func (c *conn) hello(args [][]byte) bool {
	proto := c.proto()
	if len(args) >= 2 {
		v, err := strconv.Atoi(string(args[1]))
		if err != nil {
			return c.local(errLine("ERR Protocol version is not an integer or out of range"))
		}
		if v < 2 || v > 3 {
			return c.local(errLine("NOPROTO unsupported protocol version"))
		}
		proto = v
		var name []byte
		for i := 2; i < len(args); i++ {
			switch opt := strings.ToLower(string(args[i])); {
			case opt == "setname" && i+1 < len(args):
				name = args[i+1]
				i++
			case opt == "auth" && i+2 < len(args):
				// A nopass user accepts any password, as in Redis.
				u, ok := c.p.acl.Authenticate(string(args[i+1]), args[i+2])
				if !ok {
					return c.local(errLine(acl.ErrWrongPass))
				}
				c.user, c.authed = u, true
				i += 2
			default:
				return c.local(errLine("ERR Syntax error in HELLO option '" + printable(args[i]) + "'"))
			}
		}
		if name != nil && c.authed {
			c.name = string(name)
		}
	}
	if !c.authed {
		return c.local(errLine("NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time"))
	}
	if (proto == 3) != c.proto3 {
		if c.tx != nil {
			// The pinned connection speaks the protocol it started with.
			return c.local(errLine("ERR shoal proxy: HELLO cannot change the protocol during WATCH"))
		}
		if !c.barrier() {
			return false
		}
		c.proto3 = proto == 3
		c.push3.Store(c.proto3)
	}
	return c.local(helloReply(proto, c.id))
}

// helloReply is HELLO's answer to client id in protocol proto.
func helloReply(proto int, id int64) []byte {
	w := resp.Writer{Proto: proto}
	w.Map(7)
	w.BulkString("server")
	w.BulkString("redis")
	w.BulkString("version")
	w.BulkString(server.RedisVersion)
	w.BulkString("proto")
	w.Int(int64(proto))
	w.BulkString("id")
	w.Int(id)
	w.BulkString("mode")
	w.BulkString("standalone")
	w.BulkString("role")
	w.BulkString("master")
	w.BulkString("modules")
	w.Array(0)
	return w.B
}

func (c *conn) client(args [][]byte) bool {
	if len(args) < 2 {
		return c.local(errLine("ERR wrong number of arguments for 'client' command"))
	}
	switch strings.ToLower(string(args[1])) {
	case "setname":
		if len(args) != 3 {
			return c.local(errLine("ERR wrong number of arguments for 'client|setname' command"))
		}
		if !validClientName(args[2]) {
			return c.local(errLine("ERR Client names cannot contain spaces, newlines or special characters."))
		}
		c.name = string(args[2])
		return c.local([]byte("+OK\r\n"))
	case "getname":
		if c.name == "" {
			w := resp.Writer{Proto: c.proto()}
			w.Null()
			return c.local(w.B)
		}
		return c.local(bulk(nil, []byte(c.name)))
	case "id":
		return c.local(append(strconv.AppendInt([]byte{':'}, c.id, 10), '\r', '\n'))
	case "setinfo":
		return c.local([]byte("+OK\r\n"))
	}
	return c.local(notSupported("client " + string(args[1])))
}

func validClientName(b []byte) bool { return !bytes.ContainsAny(b, " \n") }

// scan walks the shards in order with a proxy-side cursor:
// backend cursor << scanShardBits | shard index.
const scanShardBits = 10

func (c *conn) scan(args [][]byte) bool {
	cur, err := strconv.ParseUint(string(args[1]), 10, 64)
	if err != nil {
		return c.local(errLine("ERR invalid cursor"))
	}
	rt := c.p.table.Load()
	idx := int(cur & (1<<scanShardBits - 1))
	back := cur >> scanShardBits
	if idx >= len(rt.shards) {
		return c.local([]byte("*2\r\n$1\r\n0\r\n*0\r\n"))
	}
	r := &req{}
	if !c.push(r) {
		return false
	}
	sub := append([][]byte{args[0], strconv.AppendUint(nil, back, 10)}, args[2:]...)
	nshards := len(rt.shards)
	c.p.start(&shardCall{call: call{pin: int(c.id)}, r3: c.proto3, body: resp.AppendCommandBytes(nil, sub...), slot: -1, shard: rt.shards[idx], readonly: true, finish: func(rp []byte) {
		elems, ok := arrayElems(rp, nil)
		if isErr(rp) {
			r.complete(rp)
			return
		}
		if !ok || len(elems) != 2 {
			r.complete(errLine("ERR shoal proxy: unexpected backend reply"))
			return
		}
		nb, err := parseBulkUint(elems[0])
		if err != nil || nb >= 1<<(64-scanShardBits) {
			r.complete(errLine("ERR shoal proxy: backend cursor out of range"))
			return
		}
		next := uint64(0)
		switch {
		case nb != 0:
			next = nb<<scanShardBits | uint64(idx)
		case idx+1 < nshards:
			next = uint64(idx + 1)
		}
		out := []byte("*2\r\n")
		out = bulk(out, strconv.AppendUint(nil, next, 10))
		r.complete(append(out, elems[1]...))
	}}, &c.fs)
	return true
}

func parseBulkUint(b []byte) (uint64, error) {
	i := bytes.IndexByte(b, '\n')
	if i < 0 || len(b) < i+3 {
		return 0, strconv.ErrSyntax
	}
	return strconv.ParseUint(string(b[i+1:len(b)-2]), 10, 64)
}

func (p *Proxy) info() string {
	rt := p.table.Load()
	clients := p.clientCount()
	outBytes := p.outputBytes()
	var b strings.Builder
	b.WriteString("# Server\r\n")
	b.WriteString("redis_version:" + server.RedisVersion + "\r\n")
	b.WriteString("shoal_version:" + server.ShoalVersion + "\r\n")
	b.WriteString("shoal_role:proxy\r\n")
	b.WriteString("tcp_port:" + portOf(p.Addr()) + "\r\n")
	b.WriteString("uptime_in_seconds:" + strconv.FormatInt(int64(time.Since(p.started).Seconds()), 10) + "\r\n")
	b.WriteString("\r\n# Clients\r\nconnected_clients:" + strconv.Itoa(clients) + "\r\n")
	b.WriteString("client_output_bytes:" + strconv.FormatInt(outBytes, 10) + "\r\n")
	b.WriteString("client_output_limit:" + strconv.FormatInt(p.cfg.ClientOutputLimit, 10) + "\r\n")
	b.WriteString("client_output_limit_disconnects:" + strconv.FormatInt(p.stats.outputLimitDrops.Load(), 10) + "\r\n")
	b.WriteString("client_query_limit_disconnects:" + strconv.FormatInt(p.stats.queryLimitDisconnects.Load(), 10) + "\r\n")
	b.WriteString("event_loop_handovers:" + strconv.FormatInt(p.stats.loopHandovers.Load(), 10) + "\r\n")
	b.WriteString("\r\n# Stats\r\n")
	b.WriteString("total_connections_received:" + strconv.FormatInt(p.stats.conns.Load(), 10) + "\r\n")
	b.WriteString("total_backend_requests:" + strconv.FormatInt(p.stats.cmds.Load(), 10) + "\r\n")
	b.WriteString("total_retries:" + strconv.FormatInt(p.stats.retries.Load(), 10) + "\r\n")
	b.WriteString("total_backend_errors:" + strconv.FormatInt(p.stats.backendErrs.Load(), 10) + "\r\n")
	p.hotInfo(&b)
	b.WriteString("\r\n# Cluster\r\n")
	b.WriteString("cluster_epoch:" + strconv.FormatUint(rt.epoch, 10) + "\r\n")
	b.WriteString("cluster_shards:" + strconv.Itoa(len(rt.shards)) + "\r\n")
	for _, id := range rt.shards {
		b.WriteString("shard" + strconv.Itoa(id) + ":primary=" + rt.addr(id, false) + ",slots=" + strconv.Itoa(countSlots(rt, id)) + "\r\n")
	}
	return b.String()
}

func countSlots(rt *route, shard int) int {
	n := 0
	for _, s := range rt.slots {
		if int(s) == shard {
			n++
		}
	}
	return n
}

func portOf(addr string) string {
	if i := strings.LastIndexByte(addr, ':'); i >= 0 {
		return addr[i+1:]
	}
	return addr
}
