package server

import (
	"crypto/rand"
	"encoding/hex"
	"strconv"
	"strings"

	"shoal/internal/acl"
	"shoal/internal/command"
	"shoal/internal/config"
)

func init() {
	register("acl", cmdACL)
}

// aclCheck is the slow path of the ACL check in dispatch: "" or the
// error reply.
func (s *Server) aclCheck(cl *Client, spec *command.Spec, args [][]byte) string {
	u := cl.user.Load()
	p := u.Perms()
	if p.Unrestricted {
		return ""
	}
	return p.Check(u.Name, spec, args)
}

// nodeCredentials is what this node sends to other nodes (its primary,
// a slot move's source): masteruser / masterauth.
func (s *Server) nodeCredentials() acl.Credentials {
	var c acl.Credentials
	s.cfg.Read(func(cf *config.Config) { c = acl.Credentials{User: cf.MasterUser, Pass: cf.MasterAuth} })
	return c
}

// aclLines are the users as config "user" lines (CONFIG REWRITE): every
// user but an untouched default one (on nopass ~* &* +@all), which needs
// no line, and whose password requirepass carries.
func (s *Server) aclLines() []string {
	var out []string
	for _, n := range s.acl.Names() {
		u := s.acl.Get(n)
		if u == nil {
			continue
		}
		d := strings.TrimPrefix(u.Describe(), "user ")
		if n == acl.DefaultUser && s.defaultIsRequirePass(u) {
			continue
		}
		out = append(out, d)
	}
	if out == nil {
		out = []string{}
	}
	return out
}

// defaultIsRequirePass reports whether the default user is what
// requirepass alone makes of it (on, all permissions, requirepass's
// password or nopass): then the requirepass line says everything.
func (s *Server) defaultIsRequirePass(u *acl.User) bool {
	p := u.Perms()
	if !p.Enabled || !p.Unrestricted {
		return false
	}
	s.aclMu.Lock()
	pass := s.aclPass
	s.aclMu.Unlock()
	if pass == "" {
		return p.NoPass
	}
	return !p.NoPass && len(p.Passwords) == 1 && p.Passwords[0] == acl.HashPassword(pass)
}

// userName is the connection's user (CLIENT LIST, CLIENT KILL USER).
func (cl *Client) userName() string {
	if u := cl.user.Load(); u != nil {
		return u.Name
	}
	return acl.DefaultUser
}

func cmdACL(c *Ctx) {
	s := c.srv
	w := c.w
	switch strings.ToLower(string(c.args[1])) {
	case "whoami":
		if !c.subArity(2) {
			return
		}
		w.BulkString(c.cl.userName())
	case "users":
		if !c.subArity(2) {
			return
		}
		names := s.acl.Names()
		w.Array(len(names))
		for _, n := range names {
			w.BulkString(n)
		}
	case "list":
		if !c.subArity(2) {
			return
		}
		names := s.acl.Names()
		w.Array(len(names))
		for _, n := range names {
			if u := s.acl.Get(n); u != nil {
				w.BulkString(u.Describe())
			} else {
				w.BulkString("user " + n + " off resetkeys resetchannels -@all") // deleted meanwhile
			}
		}
	case "getuser":
		if !c.subArity(3) {
			return
		}
		u := s.acl.Get(string(c.args[2]))
		if u == nil {
			w.Null()
			return
		}
		p := u.Perms()
		w.Map(6)
		w.BulkString("flags")
		flags := p.Flags()
		w.Array(len(flags))
		for _, f := range flags {
			w.BulkString(f)
		}
		w.BulkString("passwords")
		w.Array(len(p.Passwords))
		for _, h := range p.Passwords {
			w.BulkString(h)
		}
		w.BulkString("commands")
		w.BulkString(p.CommandRules())
		w.BulkString("keys")
		w.BulkString(p.KeyRules())
		w.BulkString("channels")
		w.BulkString(p.ChannelRules())
		w.BulkString("selectors")
		w.Array(0)
	case "setuser":
		if !c.subArity(-3) {
			return
		}
		rules := make([]string, 0, len(c.args)-3)
		for _, a := range c.args[3:] {
			rules = append(rules, string(a))
		}
		if err := s.acl.SetUser(string(c.args[2]), rules); err != nil {
			w.Error("ERR " + err.Error())
			return
		}
		w.OK()
	case "deluser":
		if !c.subArity(-3) {
			return
		}
		names := make([]string, 0, len(c.args)-2)
		for _, a := range c.args[2:] {
			names = append(names, string(a))
		}
		gone, err := s.acl.DelUser(names...)
		if err != nil {
			w.Error("ERR " + err.Error())
			return
		}
		// Redis closes the connections of deleted users.
		s.clientsMu.Lock()
		var victims []*Client
		for _, cl := range s.clients {
			for _, u := range gone {
				if cl.user.Load() == u {
					victims = append(victims, cl)
				}
			}
		}
		s.clientsMu.Unlock()
		for _, cl := range victims {
			c.killClient(cl)
		}
		w.Int(int64(len(gone)))
	case "cat":
		if !c.subArity(-2) {
			return
		}
		if len(c.args) == 2 {
			w.Array(len(acl.Categories))
			for _, cat := range acl.Categories {
				w.BulkString(cat)
			}
			return
		}
		if len(c.args) > 3 {
			c.subArity(3)
			return
		}
		cmds, ok := acl.CategoryCommands(string(c.args[2]))
		if !ok {
			w.Error("ERR Unknown category '" + string(c.args[2]) + "'")
			return
		}
		w.Array(len(cmds))
		for _, n := range cmds {
			w.BulkString(n)
		}
	case "dryrun":
		if !c.subArity(-4) {
			return
		}
		u := s.acl.Get(string(c.args[2]))
		if u == nil {
			w.Error("ERR User '" + string(c.args[2]) + "' not found")
			return
		}
		args := c.args[3:]
		sp := command.Lookup(args[0])
		if sp == nil {
			w.Error("ERR Command '" + string(args[0]) + "' not found")
			return
		}
		if !sp.ArityOK(len(args)) {
			w.Error(errArity(sp.Name))
			return
		}
		if msg := u.Perms().Check(u.Name, sp, args); msg != "" {
			// Redis answers DRYRUN's refusal as a bulk string, not an error.
			w.BulkString(dryrunReply(msg, sp.Name))
			return
		}
		w.OK()
	case "genpass":
		bits := 256
		if len(c.args) == 3 {
			n, err := strconv.Atoi(string(c.args[2]))
			if err != nil || n <= 0 || n > 4096 {
				w.Error("ERR ACL GENPASS argument must be the number of bits for the output password, a positive number up to 4096")
				return
			}
			bits = n
		} else if !c.subArity(2) {
			return
		}
		b := make([]byte, (bits+7)/8)
		if _, err := rand.Read(b); err != nil {
			w.Error("ERR " + err.Error())
			return
		}
		out := hex.EncodeToString(b)
		w.BulkString(out[:(bits+3)/4])
	case "load", "save":
		w.Error("ERR This Redis instance is not configured to use an ACL file. You may want to specify users via the ACL SETUSER command and then issue a CONFIG REWRITE (assuming you have a Redis configuration file set) in order to store users in the Redis configuration.")
	case "help":
		helpReply(w, "ACL", []string{
			"CAT [<category>]",
			"    List all commands that belong to <category>, or all command categories",
			"    when no category is specified.",
			"DELUSER <username> [<username> ...]",
			"    Delete a list of users.",
			"DRYRUN <username> <command> [<arg> ...]",
			"    Returns whether the user can execute the given command without executing the command.",
			"GETUSER <username>",
			"    Get the user's details.",
			"GENPASS [<bits>]",
			"    Generate a secure 256-bit user password. The optional `bits` argument can",
			"    be used to specify a different size.",
			"LIST",
			"    Show users details in config file format.",
			"SETUSER <username> <attribute> [<attribute> ...]",
			"    Create or modify a user with the specified attributes.",
			"USERS",
			"    List all the registered usernames.",
			"WHOAMI",
			"    Return the current connection username.",
		})
	default:
		unknownSubcommand(c)
	}
}

// dryrunReply words a refusal as ACL DRYRUN does.
func dryrunReply(msg, cmd string) string {
	switch msg {
	case acl.ErrNoPermKey:
		return "This user has no permissions to access a key"
	case acl.ErrNoPermCh:
		return "This user has no permissions to access a channel"
	}
	return "This user has no permissions to run the '" + cmd + "' command"
}
