package server

import (
	"slices"
	"strconv"
	"strings"
	"time"
)

func init() { register("client", cmdClient) }

func cmdClient(c *Ctx) {
	cl := c.cl
	switch strings.ToLower(string(c.args[1])) {
	case "id":
		if c.subArity(2) {
			c.w.Int(int64(cl.id))
		}
	case "setname":
		if !c.subArity(3) {
			return
		}
		name := c.args[2]
		if !validClientName(name) {
			c.w.Error("ERR Client names cannot contain spaces, newlines or special characters.")
			return
		}
		if len(name) == 0 {
			cl.name.Store(nil)
		} else {
			n := string(name)
			cl.name.Store(&n)
		}
		c.w.OK()
	case "getname":
		if !c.subArity(2) {
			return
		}
		if n := cl.name.Load(); n != nil {
			c.w.BulkString(*n)
		} else {
			c.w.Null()
		}
	case "setinfo":
		if !c.subArity(4) {
			return
		}
		attr := strings.ToLower(string(c.args[2]))
		if attr != "lib-name" && attr != "lib-ver" {
			c.w.Error("ERR Unrecognized option '" + string(c.args[2]) + "'")
			return
		}
		if !validClientName(c.args[3]) {
			c.w.Error("ERR " + attr + " cannot contain spaces, newlines or special characters.")
			return
		}
		var v *string
		if len(c.args[3]) > 0 {
			s := string(c.args[3])
			v = &s
		}
		if attr == "lib-name" {
			cl.libName.Store(v)
		} else {
			cl.libVer.Store(v)
		}
		c.w.OK()
	case "info":
		if c.subArity(2) {
			c.w.Verbatim(c.srv.clientLine(cl, cl, "client|info") + "\n")
		}
	case "list":
		clientList(c)
	case "kill":
		clientKill(c)
	case "no-evict", "no-touch":
		if !c.subArity(3) {
			return
		}
		var on bool
		switch {
		case eq(c.args[2], "on"):
			on = true
		case eq(c.args[2], "off"):
		default:
			c.w.Error(errSyntax)
			return
		}
		if eq(c.args[1], "no-evict") {
			cl.noEvict = on
		} else {
			cl.noTouch = on
		}
		c.w.OK()
	case "help":
		helpReply(c.w, "CLIENT", []string{
			"GETNAME",
			"    Return the name of the current connection.",
			"ID",
			"    Return the ID of the current connection.",
			"INFO",
			"    Return information about the current client connection.",
			"KILL <ip:port>",
			"    Kill connection made from <ip:port>.",
			"KILL <option> <value> [<option> <value> [...]]",
			"    Kill connections. Options are:",
			"    * ADDR (<ip:port>|<unixsocket>:0)",
			"      Kill connections made from the specified address",
			"    * LADDR (<ip:port>|<unixsocket>:0)",
			"      Kill connections made to specified local address",
			"    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
			"      Kill connections by type.",
			"    * USER <username>",
			"      Kill connections authenticated by <username>.",
			"    * SKIPME (YES|NO)",
			"      Skip killing current connection (default: yes).",
			"    * ID <client-id>",
			"      Kill connections by client id.",
			"    * MAXAGE <maxage>",
			"      Kill connections older than the specified age.",
			"LIST [options ...]",
			"    Return information about client connections. Options:",
			"    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
			"      Return clients of specified type.",
			"    * ID <client-id> [<client-id> ...]",
			"      Return clients of specified IDs only.",
			"SETNAME <name>",
			"    Assign the name <name> to the current connection.",
			"SETINFO <option> <value>",
			"    Set client meta attr. Options are:",
			"    * LIB-NAME: the client lib name.",
			"    * LIB-VER: the client lib version.",
			"NO-EVICT (ON|OFF)",
			"    Protect current client connection from eviction.",
			"NO-TOUCH (ON|OFF)",
			"    Will not touch LRU/LFU stats when this mode is on.",
		})
	default:
		unknownSubcommand(c)
	}
}

// sortedClients snapshots the registry, by id.
func (s *Server) sortedClients() []*Client {
	s.clientsMu.Lock()
	out := make([]*Client, 0, len(s.clients))
	for _, cl := range s.clients {
		out = append(out, cl)
	}
	s.clientsMu.Unlock()
	slices.SortFunc(out, func(a, b *Client) int { return int(a.id) - int(b.id) })
	return out
}

func clientType(cl *Client) string {
	if cl.nsubs.Load() > 0 {
		return "pubsub"
	}
	return "normal"
}

func clientList(c *Ctx) {
	var typ string
	var ids map[uint64]bool
	for i := 2; i < len(c.args); i++ {
		switch {
		case eq(c.args[i], "type") && i+1 < len(c.args):
			typ = strings.ToLower(string(c.args[i+1]))
			if typ == "slave" {
				typ = "replica"
			}
			if typ != "normal" && typ != "master" && typ != "replica" && typ != "pubsub" {
				c.w.Error("ERR Unknown client type '" + string(c.args[i+1]) + "'")
				return
			}
			i++
		case eq(c.args[i], "id") && i+1 < len(c.args):
			ids = map[uint64]bool{}
			for i++; i < len(c.args); i++ {
				id, err := strconv.ParseUint(string(c.args[i]), 10, 64)
				if err != nil || id == 0 {
					c.w.Error("ERR Invalid client ID")
					return
				}
				ids[id] = true
			}
		default:
			c.w.Error(errSyntax)
			return
		}
	}
	var b strings.Builder
	for _, other := range c.srv.sortedClients() {
		if typ != "" && clientType(other) != typ {
			continue
		}
		if ids != nil && !ids[other.id] {
			continue
		}
		b.WriteString(c.srv.clientLine(c.cl, other, "client|list"))
		b.WriteByte('\n')
	}
	c.w.Verbatim(b.String())
}

// clientLine renders one CLIENT LIST line for cl as seen by self (running
// selfCmd). Fields
// only cl's own loop may read (the query buffer) are exact for self and 0
// for others.
func (s *Server) clientLine(self, cl *Client, selfCmd string) string {
	now := time.Now().UnixMilli()
	str := func(p *string) string {
		if p == nil {
			return ""
		}
		return *p
	}
	flags := ""
	if cl.nsubs.Load() > 0 {
		flags += "P"
	}
	ml := cl.multiLen.Load()
	if ml > 0 {
		flags += "x"
	}
	if cl.isBlocked() {
		flags += "b"
	}
	if cl.watchDirty.Load() {
		flags += "d"
	}
	if cl.killed.Load() || (cl == self && cl.closeAfterReply) {
		flags += "c"
	}
	if cl == self && cl.readonly {
		flags += "r"
	}
	if cl == self && cl.noEvict {
		flags += "e"
	}
	if cl == self && cl.noTouch {
		flags += "T"
	}
	if flags == "" {
		flags = "N"
	}
	var subs, psubs, qbuf, fd int
	if cl == self {
		subs, psubs = len(cl.subs), len(cl.psubs)
		qbuf = cl.conn.InboundBuffered()
	} else {
		subs = int(cl.nsubs.Load()) // channels and patterns are not told apart off-loop
	}
	fd = cl.conn.Fd()
	cmd := "NULL"
	if p := cl.lastCmdName.Load(); p != nil {
		cmd = *p
	}
	if cl == self {
		cmd = selfCmd
	}
	omem := cl.outBytes.Load()
	resp := cl.protoShared.Load()
	var b strings.Builder
	b.Grow(320)
	w := func(k, v string) {
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(v)
	}
	itoa := func(n int64) string { return strconv.FormatInt(n, 10) }
	w("id", itoa(int64(cl.id)))
	w("addr", cl.addr)
	w("laddr", cl.laddr)
	w("fd", itoa(int64(fd)))
	w("name", str(cl.name.Load()))
	w("age", itoa((now-cl.created)/1000))
	w("idle", itoa((now-cl.lastCmd.Load())/1000))
	w("flags", flags)
	w("db", "0")
	w("sub", itoa(int64(subs)))
	w("psub", itoa(int64(psubs)))
	w("ssub", "0")
	w("multi", itoa(int64(ml-1)))
	w("qbuf", itoa(int64(qbuf)))
	w("qbuf-free", "0")
	w("argv-mem", "0")
	w("multi-mem", "0")
	w("rbs", "0")
	w("rbp", "0")
	w("obl", "0")
	w("oll", "0")
	w("omem", itoa(omem))
	w("tot-mem", itoa(omem+int64(qbuf)))
	w("events", "r")
	w("cmd", cmd)
	w("user", cl.userName())
	w("redir", "-1")
	w("resp", itoa(int64(resp)))
	w("lib-name", str(cl.libName.Load()))
	w("lib-ver", str(cl.libVer.Load()))
	return b.String()
}

func clientKill(c *Ctx) {
	if len(c.args) < 3 {
		c.subArity(-3)
		return
	}
	s := c.srv
	if len(c.args) == 3 {
		// Old style: CLIENT KILL ip:port.
		addr := string(c.args[2])
		for _, cl := range s.sortedClients() {
			if cl.addr == addr {
				c.killClient(cl)
				c.w.OK()
				return
			}
		}
		c.w.Error("ERR No such client")
		return
	}
	if len(c.args)%2 != 0 {
		c.w.Error(errSyntax)
		return
	}
	var (
		id                 uint64
		addr, laddr, typ   string
		user               string
		hasUser            bool
		skipMe             = true
		maxAge             int64
		hasType, hasMaxAge bool
	)
	for i := 2; i+1 < len(c.args); i += 2 {
		opt, val := c.args[i], string(c.args[i+1])
		switch {
		case eq(opt, "id"):
			v, err := strconv.ParseInt(val, 10, 64)
			if err != nil || v <= 0 {
				c.w.Error("ERR client-id should be greater than 0")
				return
			}
			id = uint64(v)
		case eq(opt, "addr"):
			addr = val
		case eq(opt, "laddr"):
			laddr = val
		case eq(opt, "type"):
			typ = strings.ToLower(val)
			if typ == "slave" {
				typ = "replica"
			}
			if typ != "normal" && typ != "master" && typ != "replica" && typ != "pubsub" {
				c.w.Error("ERR Unknown client type '" + val + "'")
				return
			}
			hasType = true
		case eq(opt, "user"):
			user, hasUser = val, true
		case eq(opt, "skipme"):
			switch strings.ToLower(val) {
			case "yes":
				skipMe = true
			case "no":
				skipMe = false
			default:
				c.w.Error(errSyntax)
				return
			}
		case eq(opt, "maxage"):
			v, err := strconv.ParseInt(val, 10, 64)
			if err != nil || v < 0 {
				c.w.Error(errSyntax)
				return
			}
			maxAge, hasMaxAge = v, true
		default:
			c.w.Error(errSyntax)
			return
		}
	}
	now := time.Now().UnixMilli()
	killed := 0
	for _, cl := range s.sortedClients() {
		switch {
		case id != 0 && cl.id != id,
			addr != "" && cl.addr != addr,
			laddr != "" && cl.laddr != laddr,
			hasType && clientType(cl) != typ,
			hasUser && user != cl.userName(),
			hasMaxAge && (now-cl.created)/1000 < maxAge,
			skipMe && cl == c.cl:
			continue
		}
		c.killClient(cl)
		killed++
	}
	c.w.Int(int64(killed))
}

// killClient closes cl; the calling client itself is closed after its
// reply, as Redis does.
func (c *Ctx) killClient(cl *Client) {
	if cl == c.cl {
		cl.closeAfterReply = true
		return
	}
	cl.kill()
}
