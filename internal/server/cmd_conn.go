package server

import (
	"strconv"
	"strings"
	"time"

	"shoal/internal/acl"
	"shoal/internal/config"
)

func init() {
	register("ping", cmdPing)
	register("echo", func(c *Ctx) { c.w.Bulk(c.args[1]) })
	register("quit", func(c *Ctx) { c.w.OK(); c.cl.closeAfterReply = true })
	register("reset", cmdReset)
	register("select", cmdSelect)
	register("auth", cmdAuth)
	register("hello", cmdHello)
	register("time", cmdTime)
}

func cmdPing(c *Ctx) {
	if len(c.args) > 2 {
		c.w.Error(errArity("ping"))
		return
	}
	if c.cl.nsubs.Load() > 0 && c.cl.proto == 2 {
		c.w.Array(2)
		c.w.BulkString("pong")
		if len(c.args) == 2 {
			c.w.Bulk(c.args[1])
		} else {
			c.w.BulkString("")
		}
		return
	}
	if len(c.args) == 2 {
		c.w.Bulk(c.args[1])
		return
	}
	c.w.Simple("PONG")
}

func cmdReset(c *Ctx) {
	cl := c.cl
	cl.resetMulti()
	c.srv.unwatchAll(cl)
	c.srv.hub.removeClient(cl)
	cl.subs, cl.psubs = nil, nil
	cl.nsubs.Store(0)
	cl.setProto(2)
	cl.name.Store(nil)
	cl.noEvict = false
	cl.noTouch = false
	cl.readonly, cl.asking = false, false
	def := c.srv.acl.Default()
	dp := def.Perms()
	cl.user.Store(def)
	cl.authed = dp.NoPass && dp.Enabled
	c.w.Simple("RESET")
}

func (cl *Client) setProto(p int) {
	cl.proto = p
	cl.w.Proto = p
	cl.protoShared.Store(int32(p))
}

func cmdSelect(c *Ctx) {
	n, err := strconv.Atoi(string(c.args[1]))
	if err != nil {
		c.w.Error(errNotInt)
		return
	}
	var dbs int
	c.srv.cfg.Read(func(cf *config.Config) { dbs = cf.Databases })
	if n < 0 || n >= dbs {
		c.w.Error("ERR DB index is out of range")
		return
	}
	if n != 0 {
		c.w.Error("ERR Shoal serves a single database: only SELECT 0 is supported")
		return
	}
	c.w.OK()
}

// authenticate checks user (nil: the default user) and pass against the
// users and, on success, makes the connection that user.
func (c *Ctx) authenticate(user, pass []byte) bool {
	name := acl.DefaultUser
	if user != nil {
		name = string(user)
	}
	u, ok := c.srv.acl.Authenticate(name, pass)
	if !ok {
		return false
	}
	c.cl.user.Store(u)
	c.cl.authed = true
	return true
}

func cmdAuth(c *Ctx) {
	if len(c.args) > 3 {
		c.w.Error(errSyntax)
		return
	}
	var user []byte
	pass := c.args[1]
	if len(c.args) == 3 {
		user, pass = c.args[1], c.args[2]
	} else if c.srv.acl.Default().Perms().NoPass {
		c.w.Error("ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?")
		return
	}
	if !c.authenticate(user, pass) {
		c.w.Error(acl.ErrWrongPass)
		return
	}
	c.w.OK()
}

func cmdHello(c *Ctx) {
	cl := c.cl
	proto := cl.proto
	i := 1
	if len(c.args) > 1 {
		v, err := strconv.Atoi(string(c.args[1]))
		if err != nil {
			c.w.Error("ERR Protocol version is not an integer or out of range")
			return
		}
		if v < 2 || v > 3 {
			c.w.Error("NOPROTO unsupported protocol version")
			return
		}
		proto = v
		i = 2
	}
	var setName []byte
	for ; i < len(c.args); i++ {
		opt := strings.ToLower(string(c.args[i]))
		switch {
		case opt == "auth" && i+2 < len(c.args):
			// A nopass user (the default user without requirepass)
			// accepts any password, as in Redis.
			if !c.authenticate(c.args[i+1], c.args[i+2]) {
				c.w.Error(acl.ErrWrongPass)
				return
			}
			i += 2
		case opt == "setname" && i+1 < len(c.args):
			setName = c.args[i+1]
			if !validClientName(setName) {
				c.w.Error("ERR Client names cannot contain spaces, newlines or special characters.")
				return
			}
			i++
		default:
			c.w.Error("ERR Syntax error in HELLO option '" + string(c.args[i]) + "'")
			return
		}
	}
	if !cl.authed {
		c.w.Error("NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time")
		return
	}
	if setName != nil {
		n := string(setName)
		cl.name.Store(&n)
	}
	cl.setProto(proto)
	w := c.w
	w.Map(7)
	w.BulkString("server")
	w.BulkString("redis")
	w.BulkString("version")
	w.BulkString(RedisVersion)
	w.BulkString("proto")
	w.Int(int64(proto))
	w.BulkString("id")
	w.Int(int64(cl.id))
	w.BulkString("mode")
	w.BulkString("standalone")
	w.BulkString("role")
	if c.srv.repl.isReplica.Load() {
		w.BulkString("replica")
	} else {
		w.BulkString("master")
	}
	w.BulkString("modules")
	w.Array(0)
}

func validClientName(b []byte) bool {
	for _, ch := range b {
		if ch < '!' || ch > '~' {
			return false
		}
	}
	return true
}

func cmdTime(c *Ctx) {
	now := time.Now()
	c.w.Array(2)
	c.w.BulkInt(now.Unix())
	c.w.BulkInt(int64(now.Nanosecond() / 1000))
}
