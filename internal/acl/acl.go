// Package acl holds Redis 6+ style users: who may connect (on/off,
// passwords), which commands they may run (categories and single
// commands, over the command table) and which keys and pub/sub channels
// they may touch (glob patterns). The storage node and the proxy share it.
//
// The state is read on every command, so it is built for lock-free reads:
// a User is a name and an atomic pointer to immutable Perms; ACL SETUSER
// builds new Perms and swaps them in, so connections authenticated as the
// user see the change at their next command (as Redis does). The Registry
// keeps a single Restricted flag, false while every user may run
// everything: the command path checks that flag first and pays nothing
// more when no ACL is configured.
package acl

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"unsafe"

	"shoal/internal/command"
	"shoal/internal/glob"
)

// DefaultUser is the user connections start as, and the one requirepass
// sets the password of.
const DefaultUser = "default"

// Redis's exact error texts.
const (
	ErrWrongPass = "WRONGPASS invalid username-password pair or user is disabled."
	ErrNoPermKey = "NOPERM No permissions to access a key"
	ErrNoPermCh  = "NOPERM No permissions to access a channel"
)

// NoPermCommand is the error for a command the user may not run.
func NoPermCommand(user, cmd string) string {
	return "NOPERM User " + user + " has no permissions to run the '" + cmd + "' command"
}

// Categories lists the ACL categories (ACL CAT), in Redis's order.
var Categories = []string{
	"keyspace", "read", "write", "set", "sortedset", "list", "hash", "string", "bitmap",
	"hyperloglog", "geo", "stream", "pubsub", "admin", "fast", "slow", "blocking",
	"dangerous", "connection", "transaction", "scripting",
}

// subcommand is a container command's subcommand with categories of its
// own (Redis gives CLIENT INFO @connection, CLIENT KILL @admin
// @dangerous). Its permission bit follows the command table's IDs.
type subcommand struct {
	name string // "client|info"
	cats []string
	id   int
}

var (
	slowConn  = []string{"@slow", "@connection"}
	slowOnly  = []string{"@slow"}
	adminCats = []string{"@admin", "@slow", "@dangerous"}
	// subcommands lists the subcommands whose categories differ from
	// their container's; containerDefault gives a container's other
	// subcommands their categories when they differ from the table's.
	subcommands = []*subcommand{
		{name: "acl|whoami", cats: slowOnly}, {name: "acl|cat", cats: slowOnly},
		{name: "acl|genpass", cats: slowOnly}, {name: "acl|help", cats: slowOnly},
		{name: "client|id", cats: slowConn}, {name: "client|info", cats: slowConn},
		{name: "client|getname", cats: slowConn}, {name: "client|setname", cats: slowConn},
		{name: "client|setinfo", cats: slowConn}, {name: "client|no-touch", cats: slowConn},
		{name: "client|help", cats: slowConn},
		{name: "cluster|info", cats: slowOnly}, {name: "cluster|nodes", cats: slowOnly},
		{name: "cluster|slots", cats: slowOnly}, {name: "cluster|shards", cats: slowOnly},
		{name: "cluster|myid", cats: slowOnly}, {name: "cluster|keyslot", cats: slowOnly},
		{name: "cluster|countkeysinslot", cats: slowOnly}, {name: "cluster|getkeysinslot", cats: slowOnly},
		{name: "cluster|help", cats: slowOnly},
	}
	containerDefault = map[string][]string{"cluster": adminCats}
	subByName        = map[string]*subcommand{}
	hasSubs          = map[string]bool{}
	nbits            int
)

func init() {
	nbits = len(command.ByID)
	for _, sc := range subcommands {
		sc.id = nbits
		nbits++
		subByName[sc.name] = sc
		hasSubs[sc.name[:strings.IndexByte(sc.name, '|')]] = true
	}
}

// categories of a command as the ACL sees it (containerDefault applied).
func specCategories(sp *command.Spec) []string {
	if c, ok := containerDefault[sp.Name]; ok {
		return c
	}
	return sp.ACLCategories()
}

// SubcommandCategories are the ACL categories of "container|sub"
// (COMMAND INFO).
func SubcommandCategories(container *command.Spec, sub string) []string {
	if sc := subByName[container.Name+"|"+sub]; sc != nil {
		return sc.cats
	}
	return specCategories(container)
}

// permBit is the permission bit of a command line: its subcommand's if
// the table above lists it, else the command's.
func permBit(sp *command.Spec, args [][]byte) int {
	if len(args) > 1 && hasSubs[sp.Name] && len(args[1]) < 24 {
		var buf [64]byte
		b := append(buf[:0], sp.Name...)
		b = append(b, '|')
		for _, c := range args[1] {
			if c >= 'A' && c <= 'Z' {
				c += 'a' - 'A'
			}
			b = append(b, c)
		}
		if sc := subByName[string(b)]; sc != nil {
			return sc.id
		}
	}
	return sp.ID
}

// User is one named user; its permissions change atomically.
type User struct {
	Name string
	p    atomic.Pointer[Perms]
}

// Perms returns the user's current permissions.
func (u *User) Perms() *Perms { return u.p.Load() }

// Perms is one immutable version of a user's rules.
type Perms struct {
	Enabled   bool
	NoPass    bool
	Passwords []string // SHA-256 hex digests, in the order added

	// Unrestricted: every command, key and channel (the fast path).
	Unrestricted bool

	allCmds  bool     // +@all was the last reset: commands added later are allowed too
	cmds     []uint64 // allowed command IDs (command.ByID)
	cmdRules []string // the command rules as applied, for ACL LIST / GETUSER

	AllKeys     bool
	Keys        []string
	AllChannels bool
	Channels    []string
}

// newPerms is a new user's state: off, no password, no commands, no keys,
// no channels (Redis 7's acl-pubsub-default resetchannels).
func newPerms() *Perms {
	return &Perms{cmds: make([]uint64, (nbits+63)/64), cmdRules: []string{"-@all"}}
}

func (p *Perms) clone() *Perms {
	q := *p
	q.Passwords = slices.Clone(p.Passwords)
	q.cmds = slices.Clone(p.cmds)
	q.cmdRules = slices.Clone(p.cmdRules)
	q.Keys = slices.Clone(p.Keys)
	q.Channels = slices.Clone(p.Channels)
	return &q
}

// CanRun reports whether the command line (its subcommand, for the
// containers with per-subcommand permissions) may run.
func (p *Perms) CanRun(sp *command.Spec, args [][]byte) bool {
	return p.bit(permBit(sp, args))
}

func (p *Perms) bit(id int) bool { return p.cmds[id>>6]&(1<<(id&63)) != 0 }

// CanKey reports whether the key matches one of the key patterns.
func (p *Perms) CanKey(key []byte) bool {
	if p.AllKeys {
		return true
	}
	s := unsafe.String(unsafe.SliceData(key), len(key)) // Match does not keep it
	for _, pat := range p.Keys {
		if glob.Match(pat, s) {
			return true
		}
	}
	return false
}

// CanChannel reports whether the channel (or, for PSUBSCRIBE, the
// pattern, which must be allowed literally, as Redis checks it) is allowed.
func (p *Perms) CanChannel(ch []byte, isPattern bool) bool {
	if p.AllChannels {
		return true
	}
	s := unsafe.String(unsafe.SliceData(ch), len(ch))
	for _, pat := range p.Channels {
		if isPattern && pat == s || !isPattern && glob.Match(pat, s) {
			return true
		}
	}
	return false
}

// CheckPassword compares pass's digest with each of the user's, in
// constant time per digest.
func (p *Perms) CheckPassword(pass []byte) bool {
	if !p.Enabled {
		return false
	}
	if p.NoPass {
		return true
	}
	sum := sha256.Sum256(pass)
	d := []byte(hex.EncodeToString(sum[:]))
	ok := false
	for _, h := range p.Passwords {
		if subtle.ConstantTimeCompare(d, []byte(h)) == 1 {
			ok = true
		}
	}
	return ok
}

// HashPassword is the digest ACL GETUSER shows and #<hash> takes.
func HashPassword(pass string) string {
	sum := sha256.Sum256([]byte(pass))
	return hex.EncodeToString(sum[:])
}

// inCategory reports whether cats hold the category (without '@').
func inCategory(cats []string, cat string) bool {
	for _, c := range cats {
		if c[1:] == cat {
			return true
		}
	}
	return false
}

func validCategory(cat string) bool { return slices.Contains(Categories, cat) }

// CategoryCommands lists the commands of a category (ACL CAT <category>).
func CategoryCommands(cat string) ([]string, bool) {
	cat = strings.ToLower(cat)
	if !validCategory(cat) {
		return nil, false
	}
	var out []string
	for _, sp := range command.ByID {
		if inCategory(specCategories(sp), cat) {
			out = append(out, sp.Name)
		}
	}
	for _, sc := range subcommands {
		if inCategory(sc.cats, cat) {
			out = append(out, sc.name)
		}
	}
	return out, true
}

func (p *Perms) setCmd(id int, on bool) {
	if on {
		p.cmds[id>>6] |= 1 << (id & 63)
	} else {
		p.cmds[id>>6] &^= 1 << (id & 63)
	}
}

// apply applies one rule to p (a private copy).
func (p *Perms) apply(rule string) error {
	low := strings.ToLower(rule)
	switch {
	case low == "on":
		p.Enabled = true
	case low == "off":
		p.Enabled = false
	case low == "nopass":
		p.NoPass, p.Passwords = true, nil
	case low == "resetpass":
		p.NoPass, p.Passwords = false, nil
	case low == "allkeys" || rule == "~*":
		p.AllKeys, p.Keys = true, nil
	case low == "resetkeys":
		p.AllKeys, p.Keys = false, nil
	case low == "allchannels" || rule == "&*":
		p.AllChannels, p.Channels = true, nil
	case low == "resetchannels":
		p.AllChannels, p.Channels = false, nil
	case low == "allcommands" || low == "+@all":
		p.allCmds = true
		for i := 0; i < nbits; i++ {
			p.setCmd(i, true)
		}
		p.cmdRules = []string{"+@all"}
	case low == "nocommands" || low == "-@all":
		p.allCmds = false
		clear(p.cmds)
		p.cmdRules = []string{"-@all"}
	case low == "reset":
		*p = *newPerms()
	case rule[0] == '>':
		h := HashPassword(rule[1:])
		if !slices.Contains(p.Passwords, h) {
			p.Passwords = append(p.Passwords, h)
		}
		p.NoPass = false
	case rule[0] == '<':
		h := HashPassword(rule[1:])
		if !slices.Contains(p.Passwords, h) {
			return errors.New("no such password")
		}
		p.Passwords = slices.DeleteFunc(p.Passwords, func(x string) bool { return x == h })
	case rule[0] == '#' || rule[0] == '!':
		h := strings.ToLower(rule[1:])
		if _, err := hex.DecodeString(h); err != nil || len(h) != 64 {
			return errors.New("The password hash must be exactly 64 characters and contain only lowercase hexadecimal characters")
		}
		if rule[0] == '#' {
			if !slices.Contains(p.Passwords, h) {
				p.Passwords = append(p.Passwords, h)
			}
			p.NoPass = false
		} else {
			if !slices.Contains(p.Passwords, h) {
				return errors.New("no such password")
			}
			p.Passwords = slices.DeleteFunc(p.Passwords, func(x string) bool { return x == h })
		}
	case rule[0] == '~':
		if p.AllKeys {
			return errors.New("Adding a pattern after the * pattern (or the 'allkeys' flag) is not valid and does not have any effect. Try 'resetkeys' to start with an empty list of patterns")
		}
		if !slices.Contains(p.Keys, rule[1:]) {
			p.Keys = append(p.Keys, rule[1:])
		}
	case rule[0] == '&':
		if p.AllChannels {
			return errors.New("Adding a pattern after the * pattern (or the 'allchannels' flag) is not valid and does not have any effect. Try 'resetchannels' to start with an empty list of channels")
		}
		if !slices.Contains(p.Channels, rule[1:]) {
			p.Channels = append(p.Channels, rule[1:])
		}
	case rule[0] == '+' || rule[0] == '-':
		on := rule[0] == '+'
		name := low[1:]
		if strings.HasPrefix(name, "@") {
			cat := name[1:]
			if !validCategory(cat) {
				return errors.New("Unknown command or category name in ACL")
			}
			for _, sp := range command.ByID {
				if inCategory(specCategories(sp), cat) {
					p.setCmd(sp.ID, on)
				}
			}
			for _, sc := range subcommands {
				if inCategory(sc.cats, cat) {
					p.setCmd(sc.id, on)
				}
			}
		} else if sc := subByName[name]; sc != nil {
			p.setCmd(sc.id, on)
		} else {
			if strings.ContainsRune(name, '|') {
				return errors.New("Shoal's ACLs allow or deny single subcommands only for " + subcommandNames())
			}
			sp := command.Table[name]
			if sp == nil {
				return errors.New("Unknown command or category name in ACL")
			}
			// The whole command: its subcommands too.
			p.setCmd(sp.ID, on)
			for _, sc := range subcommands {
				if strings.HasPrefix(sc.name, name+"|") {
					p.setCmd(sc.id, on)
				}
			}
		}
		if !on {
			p.allCmds = false
		}
		p.cmdRules = append(p.cmdRules, low)
	default:
		return errors.New("Syntax error")
	}
	return nil
}

// subcommandNames lists the subcommands rules may name.
func subcommandNames() string {
	names := make([]string, len(subcommands))
	for i, sc := range subcommands {
		names[i] = sc.name
	}
	return strings.Join(names, ", ")
}

// finish recomputes the derived flags.
func (p *Perms) finish() {
	all := true
	for i := 0; i < nbits; i++ {
		if !p.bit(i) {
			all = false
			break
		}
	}
	p.Unrestricted = all && p.AllKeys && p.AllChannels
}

// Apply returns p with the rules applied; p is unchanged. A failing rule
// fails the whole call (nothing is applied), as ACL SETUSER.
func (p *Perms) Apply(rules []string) (*Perms, error) {
	q := p.clone()
	for _, r := range rules {
		if r == "" {
			return nil, &RuleError{Rule: r, Err: errors.New("Syntax error")}
		}
		if err := q.apply(r); err != nil {
			return nil, &RuleError{Rule: r, Err: err}
		}
	}
	q.finish()
	return q, nil
}

// RuleError is a rule ACL SETUSER (or a user directive) refused.
type RuleError struct {
	Rule string
	Err  error
}

func (e *RuleError) Error() string {
	return fmt.Sprintf("Error in ACL SETUSER modifier '%s': %v", e.Rule, e.Err)
}

// Flags are the user's flags as ACL GETUSER lists them.
func (p *Perms) Flags() []string {
	f := []string{"off"}
	if p.Enabled {
		f[0] = "on"
	}
	if p.NoPass {
		f = append(f, "nopass")
	}
	return f
}

// CommandRules is the command part of the description ("+@all -set").
func (p *Perms) CommandRules() string { return strings.Join(p.cmdRules, " ") }

// KeyRules is the key part ("~*", "~a:* ~b", "" for none).
func (p *Perms) KeyRules() string {
	if p.AllKeys {
		return "~*"
	}
	parts := make([]string, len(p.Keys))
	for i, k := range p.Keys {
		parts[i] = "~" + k
	}
	return strings.Join(parts, " ")
}

// ChannelRules is the channel part ("&*", "&news.*", "" for none).
func (p *Perms) ChannelRules() string {
	if p.AllChannels {
		return "&*"
	}
	parts := make([]string, len(p.Channels))
	for i, k := range p.Channels {
		parts[i] = "&" + k
	}
	return strings.Join(parts, " ")
}

// Describe is the user as ACL LIST shows it; applying the rules after
// the name to a new user rebuilds the same permissions.
func (u *User) Describe() string {
	p := u.Perms()
	parts := []string{"user", u.Name}
	parts = append(parts, p.Flags()...)
	for _, h := range p.Passwords {
		parts = append(parts, "#"+h)
	}
	if k := p.KeyRules(); k != "" {
		parts = append(parts, k)
	} else {
		parts = append(parts, "resetkeys")
	}
	if c := p.ChannelRules(); c != "" {
		parts = append(parts, c)
	} else {
		parts = append(parts, "resetchannels")
	}
	parts = append(parts, p.cmdRules...)
	return strings.Join(parts, " ")
}

// Registry is the set of users. Reads (Get, Restricted) take no lock.
type Registry struct {
	mu         sync.Mutex                       // serializes changes
	users      atomic.Pointer[map[string]*User] // replaced whole on add/delete
	restricted atomic.Bool
}

// NewRegistry holds the default user: on, nopass, every command, key and
// channel.
func NewRegistry() *Registry {
	r := &Registry{}
	u := &User{Name: DefaultUser}
	p, err := newPerms().Apply([]string{"on", "nopass", "~*", "&*", "+@all"})
	if err != nil {
		panic("BUG: default user rules: " + err.Error())
	}
	u.p.Store(p)
	m := map[string]*User{DefaultUser: u}
	r.users.Store(&m)
	return r
}

// Restricted reports whether any user is limited in commands, keys or
// channels: while false, every authenticated connection may run anything
// and the command path skips the checks.
func (r *Registry) Restricted() bool { return r.restricted.Load() }

// Get returns the user, or nil.
func (r *Registry) Get(name string) *User { return (*r.users.Load())[name] }

// Default returns the default user.
func (r *Registry) Default() *User { return r.Get(DefaultUser) }

// Names lists the user names, sorted.
func (r *Registry) Names() []string {
	m := *r.users.Load()
	out := make([]string, 0, len(m))
	for n := range m {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

// Authenticate returns the user if it exists, is enabled and pass is one
// of its passwords (or it has nopass).
func (r *Registry) Authenticate(name string, pass []byte) (*User, bool) {
	u := r.Get(name)
	if u == nil {
		// Spend the same hashing work as a known user (no user
		// enumeration by timing).
		sha256.Sum256(pass)
		return nil, false
	}
	if !u.Perms().CheckPassword(pass) {
		return nil, false
	}
	return u, true
}

// SetUser creates the user (off, no permissions) if needed and applies the
// rules, all or nothing.
func (r *Registry) SetUser(name string, rules []string) error {
	if name == "" || strings.ContainsAny(name, " \t\r\n") {
		return errors.New("Usernames can't contain spaces or null characters")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	u := r.Get(name)
	base := newPerms()
	if u != nil {
		base = u.Perms()
	}
	p, err := base.Apply(rules)
	if err != nil {
		return err
	}
	if u == nil {
		u = &User{Name: name}
		u.p.Store(p)
		old := *r.users.Load()
		m := make(map[string]*User, len(old)+1)
		for k, v := range old {
			m[k] = v
		}
		m[name] = u
		r.users.Store(&m)
	} else {
		u.p.Store(p)
	}
	r.updateLocked()
	return nil
}

// ErrDeleteDefault refuses ACL DELUSER default.
var ErrDeleteDefault = errors.New("The 'default' user cannot be removed")

// DelUser deletes users and returns those that existed (their
// connections must be closed by the caller, as Redis does).
func (r *Registry) DelUser(names ...string) ([]*User, error) {
	if slices.Contains(names, DefaultUser) {
		return nil, ErrDeleteDefault
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	old := *r.users.Load()
	m := make(map[string]*User, len(old))
	for k, v := range old {
		m[k] = v
	}
	var gone []*User
	for _, n := range names {
		if u := m[n]; u != nil {
			gone = append(gone, u)
			delete(m, n)
			// A connection still holding the user must be refused
			// from now on, whatever it tries.
			off, _ := u.Perms().Apply([]string{"reset"})
			u.p.Store(off)
		}
	}
	r.users.Store(&m)
	r.updateLocked()
	return gone, nil
}

func (r *Registry) updateLocked() {
	restricted := false
	for _, u := range *r.users.Load() {
		if !u.Perms().Unrestricted {
			restricted = true
		}
	}
	r.restricted.Store(restricted)
}

// SetDefaultPassword makes pass the default user's only password, or
// makes it nopass when pass is "" (requirepass).
func (r *Registry) SetDefaultPassword(pass string) {
	rules := []string{"nopass"}
	if pass != "" {
		rules = []string{"resetpass", ">" + pass}
	}
	if err := r.SetUser(DefaultUser, rules); err != nil {
		panic("BUG: requirepass rules: " + err.Error())
	}
}

// ParseUserLine parses a "user" directive's value: a name and its rules
// ("alice on >secret ~* +@all").
func ParseUserLine(line string) (name string, rules []string, err error) {
	f := strings.Fields(line)
	if len(f) == 0 {
		return "", nil, errors.New("user directive needs a name")
	}
	return f[0], f[1:], nil
}

// Check is the whole permission check of one command: the command, then
// its keys (at the key positions of the command table), then pub/sub
// channels. It returns "" or the error reply.
func (p *Perms) Check(user string, sp *command.Spec, args [][]byte) string {
	// A disabled user's connections keep working (as in Redis: "off"
	// only stops new authentications); a deleted user's were closed.
	// AUTH, HELLO, QUIT, RESET (no-auth commands) are always allowed,
	// as in Redis: a user can always switch users.
	if sp.Flags&command.NoAuth == 0 && !p.CanRun(sp, args) {
		name := sp.Name
		if id := permBit(sp, args); id != sp.ID {
			name = subcommands[id-len(command.ByID)].name
		}
		return NoPermCommand(user, name)
	}
	if !p.AllKeys {
		var buf [16]int
		for _, i := range sp.KeyIndexes(args, buf[:0]) {
			if i < len(args) && !p.CanKey(args[i]) {
				return ErrNoPermKey
			}
		}
	}
	if !p.AllChannels && sp.Flags&command.PubSub != 0 {
		switch sp.Name {
		case "publish":
			if len(args) > 1 && !p.CanChannel(args[1], false) {
				return ErrNoPermCh
			}
		case "subscribe", "psubscribe", "ssubscribe":
			for _, ch := range args[1:] {
				if !p.CanChannel(ch, sp.Name == "psubscribe") {
					return ErrNoPermCh
				}
			}
		}
	}
	return ""
}
