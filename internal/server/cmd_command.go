package server

import (
	"sort"
	"strings"

	"shoal/internal/acl"
	"shoal/internal/command"
	"shoal/internal/glob"
	"shoal/internal/resp"
)

func init() { register("command", cmdCommand) }

// subSpec is a subcommand as COMMAND reports it: Redis 7 lists container
// commands' subcommands (config|get...) with their own arity.
type subSpec struct {
	name  string
	arity int
}

// subcommands of the container commands Shoal implements.
var subcommands = map[string][]subSpec{
	"acl": {{"cat", -2}, {"deluser", -3}, {"dryrun", -4}, {"genpass", -2}, {"getuser", 3}, {"help", 2}, {"list", 2},
		{"load", 2}, {"save", 2}, {"setuser", -3}, {"users", 2}, {"whoami", 2}},
	"client": {{"getname", 2}, {"help", 2}, {"id", 2}, {"info", 2}, {"kill", -3}, {"list", -2},
		{"no-evict", 3}, {"no-touch", 3}, {"setinfo", 4}, {"setname", 3}},
	"cluster": {{"countkeysinslot", 3}, {"getkeysinslot", 4}, {"help", 2}, {"info", 2}, {"keyslot", 3}, {"migration", -3}, {"movedone", -6}, {"movefence", -5}, {"movesync", -3}, {"movewait", -6}, {"myid", 2},
		{"nodes", 2}, {"shards", 2}, {"slots", 2}, {"slotsync", 3}},
	"command": {{"count", 2}, {"docs", -2}, {"getkeys", -3}, {"help", 2}, {"info", -2}, {"list", -2}},
	"config":  {{"get", -3}, {"help", 2}, {"resetstat", 2}, {"rewrite", 2}, {"set", -4}},
	"latency": {{"doctor", 2}, {"graph", 3}, {"help", 2}, {"histogram", -2}, {"history", 3}, {"latest", 2}, {"reset", -2}},
	"memory":  {{"doctor", 2}, {"help", 2}, {"malloc-stats", 2}, {"purge", 2}, {"stats", 2}, {"usage", -3}},
	"object":  {{"encoding", 3}, {"freq", 3}, {"help", 2}, {"idletime", 3}, {"refcount", 3}},
	"pubsub":  {{"channels", -2}, {"help", 2}, {"numpat", 2}, {"numsub", -2}},
	"slowlog": {{"get", -2}, {"help", 2}, {"len", 2}, {"reset", 2}},
}

// groups maps the table's first category to COMMAND DOCS's group.
var groups = map[string]string{
	"keyspace": "generic", "string": "string", "bitmap": "bitmap", "hash": "hash", "list": "list",
	"set": "set", "sortedset": "sorted-set", "transaction": "transactions", "pubsub": "pubsub",
	"connection": "connection", "admin": "server", "dangerous": "server", "fast": "server",
}

func cmdCommand(c *Ctx) {
	if len(c.args) == 1 {
		names := implementedCommands()
		c.w.Array(len(names))
		for _, n := range names {
			writeCommandInfo(c.w, defs[n].spec)
		}
		return
	}
	switch strings.ToLower(string(c.args[1])) {
	case "count":
		if c.subArity(2) {
			c.w.Int(int64(len(defs)))
		}
	case "info":
		names := c.args[2:]
		if len(names) == 0 {
			all := implementedCommands()
			c.w.Array(len(all))
			for _, n := range all {
				writeCommandInfo(c.w, defs[n].spec)
			}
			return
		}
		c.w.Array(len(names))
		for _, n := range names {
			if d := c.srv.lookup(n); d != nil {
				writeCommandInfo(c.w, d.spec)
			} else {
				c.w.NullArray()
			}
		}
	case "docs":
		var names []string
		if len(c.args) == 2 {
			names = implementedCommands()
		} else {
			for _, a := range c.args[2:] {
				if d := c.srv.lookup(a); d != nil {
					names = append(names, d.spec.Name)
				} else if sub := subcommandName(a); sub != "" {
					names = append(names, sub)
				}
			}
		}
		c.w.Map(len(names))
		for _, n := range names {
			if parent, sub, ok := strings.Cut(n, "|"); ok {
				writeSubcommandDocs(c.w, defs[parent].spec, sub)
				continue
			}
			c.w.BulkString(n)
			writeCommandDocs(c.w, defs[n].spec)
		}
	case "list":
		commandList(c)
	case "getkeys":
		if !c.subArity(-3) {
			return
		}
		d := c.srv.lookup(c.args[2])
		if d == nil {
			c.w.Error("ERR Invalid command specified")
			return
		}
		args := c.args[2:]
		if !d.spec.ArityOK(len(args)) {
			c.w.Error("ERR Invalid number of arguments specified for command")
			return
		}
		idx := d.spec.KeyIndexes(args, nil)
		if len(idx) == 0 {
			c.w.Error("ERR The command has no key arguments")
			return
		}
		c.w.Array(len(idx))
		for _, i := range idx {
			c.w.Bulk(args[i])
		}
	case "help":
		helpReply(c.w, "COMMAND", []string{
			"(no subcommand)",
			"    Return details about all commands.",
			"COUNT",
			"    Return the total number of commands in this server.",
			"LIST",
			"    Return a list of all commands in this server.",
			"INFO [<command-name> ...]",
			"    Return details about multiple commands.",
			"    If no command names are given, documentation details for all",
			"    commands are returned.",
			"DOCS [<command-name> ...]",
			"    Return documentation details about multiple commands.",
			"    If no command names are given, documentation details for all",
			"    commands are returned.",
			"GETKEYS <full-command>",
			"    Return the keys from a full command.",
		})
	default:
		unknownSubcommand(c)
	}
}

// subcommandName returns "container|sub" for an implemented subcommand
// named that way (any case), "" otherwise.
func subcommandName(b []byte) string {
	parent, sub, ok := strings.Cut(strings.ToLower(string(b)), "|")
	if !ok || defs[parent] == nil {
		return ""
	}
	for _, s := range subcommands[parent] {
		if s.name == sub {
			return parent + "|" + sub
		}
	}
	return ""
}

// implementedCommands are the commands with a handler, sorted.
func implementedCommands() []string {
	names := make([]string, 0, len(defs))
	for n := range defs {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func commandList(c *Ctx) {
	names := implementedCommands()
	if len(c.args) > 2 {
		if len(c.args) != 5 || !eq(c.args[2], "filterby") {
			c.w.Error(errSyntax)
			return
		}
		val := string(c.args[4])
		var keep func(sp *command.Spec) bool
		switch {
		case eq(c.args[3], "module"):
			keep = func(*command.Spec) bool { return false }
		case eq(c.args[3], "aclcat"):
			cat := strings.ToLower(strings.TrimPrefix(val, "@"))
			keep = func(sp *command.Spec) bool {
				for _, cc := range sp.ACLCategories() {
					if cc == "@"+cat {
						return true
					}
				}
				return false
			}
		case eq(c.args[3], "pattern"):
			keep = func(sp *command.Spec) bool { return glob.Match(strings.ToLower(val), sp.Name) }
		default:
			c.w.Error(errSyntax)
			return
		}
		var out []string
		for _, n := range names {
			if keep(defs[n].spec) {
				out = append(out, n)
			}
		}
		names = out
	}
	c.w.Array(len(names))
	for _, n := range names {
		c.w.BulkString(n)
	}
}

// commandFlags are COMMAND's flag names for a spec.
func commandFlags(sp *command.Spec) []string {
	f := sp.Flags
	var out []string
	add := func(cond bool, name string) {
		if cond {
			out = append(out, name)
		}
	}
	add(f&command.Write != 0, "write")
	add(f&command.ReadOnly != 0, "readonly")
	add(f&command.DenyOOM != 0, "denyoom")
	add(f&command.Admin != 0, "admin")
	add(f&command.PubSub != 0, "pubsub")
	add(f&command.Admin != 0 || f&command.NoMulti != 0, "noscript")
	add(f&command.Blocking != 0, "blocking")
	add(f&command.Loading != 0, "loading")
	add(f&command.Loading != 0, "stale")
	add(f&command.Fast != 0, "fast")
	add(f&command.NoAuth != 0, "no_auth")
	add(sp.Name == "shutdown", "no_multi")
	add(sp.Keys != nil, "movablekeys")
	return out
}

// writeCommandInfo writes one COMMAND INFO entry: name, arity, flags,
// first/last/step, ACL categories, tips, key specs, subcommands.
func writeCommandInfo(w *resp.Writer, sp *command.Spec) {
	w.Array(10)
	w.BulkString(sp.Name)
	w.Int(int64(sp.Arity))
	flags := commandFlags(sp)
	w.Set(len(flags))
	for _, f := range flags {
		w.Simple(f)
	}
	first, last, step := sp.FirstKey, sp.LastKey, sp.Step
	if sp.Keys != nil {
		first, last, step = 0, 0, 0
	}
	w.Int(int64(first))
	w.Int(int64(last))
	w.Int(int64(step))
	cats := sp.ACLCategories()
	w.Set(len(cats))
	for _, c := range cats {
		w.Simple(c)
	}
	w.Array(0) // tips
	writeKeySpecs(w, sp)
	subs := subcommands[sp.Name]
	w.Array(len(subs))
	for _, s := range subs {
		writeSubcommandInfo(w, sp, s)
	}
}

func writeSubcommandInfo(w *resp.Writer, parent *command.Spec, s subSpec) {
	w.Array(10)
	w.BulkString(parent.Name + "|" + s.name)
	w.Int(int64(s.arity))
	flags := commandFlags(parent)
	w.Set(len(flags))
	for _, f := range flags {
		w.Simple(f)
	}
	first := 0
	if parent.Name == "memory" && s.name == "usage" || parent.Name == "object" && s.name != "help" {
		first = 2
	}
	w.Int(int64(first))
	w.Int(int64(first))
	if first > 0 {
		w.Int(1)
	} else {
		w.Int(0)
	}
	cats := acl.SubcommandCategories(parent, s.name)
	w.Set(len(cats))
	for _, c := range cats {
		w.Simple(c)
	}
	w.Array(0)
	if first > 0 {
		writeRangeKeySpec(w, []string{"RO"}, first, 0, 1)
	} else {
		w.Array(0)
	}
	w.Array(0)
}

// writeKeySpecs describes the simple key positions as one Redis 7 key
// spec (begin_search index, find_keys range). Commands whose keys depend
// on a numkeys argument get none: their keys come from COMMAND GETKEYS.
func writeKeySpecs(w *resp.Writer, sp *command.Spec) {
	if sp.Keys != nil || sp.FirstKey == 0 {
		w.Array(0)
		return
	}
	flags := []string{"RO", "ACCESS"}
	if sp.Flags&command.Write != 0 {
		flags = []string{"RW", "UPDATE"}
	}
	last := sp.LastKey
	if last >= 0 {
		last -= sp.FirstKey
	}
	w.Array(1)
	writeKeySpecBody(w, flags, sp.FirstKey, last, sp.Step)
}

func writeRangeKeySpec(w *resp.Writer, flags []string, index, last, step int) {
	w.Array(1)
	writeKeySpecBody(w, flags, index, last, step)
}

func writeKeySpecBody(w *resp.Writer, flags []string, index, last, step int) {
	w.Map(3)
	w.BulkString("flags")
	w.Set(len(flags))
	for _, f := range flags {
		w.Simple(f)
	}
	w.BulkString("begin_search")
	w.Map(2)
	w.BulkString("type")
	w.BulkString("index")
	w.BulkString("spec")
	w.Map(1)
	w.BulkString("index")
	w.Int(int64(index))
	w.BulkString("find_keys")
	w.Map(2)
	w.BulkString("type")
	w.BulkString("range")
	w.BulkString("spec")
	w.Map(3)
	w.BulkString("lastkey")
	w.Int(int64(last))
	w.BulkString("keystep")
	w.Int(int64(step))
	w.BulkString("limit")
	w.Int(0)
}

// writeCommandDocs writes one COMMAND DOCS entry as Redis 7 does:
// summary, since, group, complexity, deprecation, the argument tree
// (redis-cli builds its input hints from it) and the subcommands of
// containers.
func writeCommandDocs(w *resp.Writer, sp *command.Spec) {
	subs := subcommands[sp.Name]
	var subDocs []string
	for _, s := range subs {
		if command.Docs[sp.Name+"|"+s.name] != nil {
			subDocs = append(subDocs, s.name)
		}
	}
	// Shoal's COMMAND INFO reports one key spec covering every key
	// argument of the simple commands.
	keySpec := sp.Keys == nil && sp.FirstKey != 0
	extra := 0
	if len(subDocs) > 0 {
		extra = 1
	}
	writeDoc(w, sp.Name, keySpec, extra)
	if len(subDocs) > 0 {
		w.BulkString("subcommands")
		w.Map(len(subDocs))
		for _, s := range subDocs {
			writeSubcommandDocs(w, sp, s)
		}
	}
}

// writeSubcommandDocs writes "container|sub" and its docs.
func writeSubcommandDocs(w *resp.Writer, parent *command.Spec, sub string) {
	full := parent.Name + "|" + sub
	w.BulkString(full)
	keySpec := parent.Name == "memory" && sub == "usage" || parent.Name == "object" && sub != "help"
	writeDoc(w, full, keySpec, 0)
}

// writeDoc writes the documentation map of a command or subcommand;
// extra counts fields the caller appends.
func writeDoc(w *resp.Writer, name string, keySpec bool, extra int) {
	d := command.Docs[name]
	if d == nil {
		d = &command.Doc{Summary: strings.ToUpper(strings.ReplaceAll(name, "|", " ")) + " command", Since: "1.0.0", Group: "server"}
	}
	args := command.DocArgs(name)
	docFlags := d.DocFlags
	if d.DeprecatedSince != "" {
		docFlags = append([]string{"deprecated"}, docFlags...)
	}
	n := 3 + extra
	for _, present := range []bool{d.Complexity != "", len(docFlags) > 0, d.DeprecatedSince != "", d.ReplacedBy != "", len(args) > 0} {
		if present {
			n++
		}
	}
	w.Map(n)
	w.BulkString("summary")
	w.BulkString(d.Summary)
	w.BulkString("since")
	w.BulkString(d.Since)
	w.BulkString("group")
	w.BulkString(d.Group)
	if d.Complexity != "" {
		w.BulkString("complexity")
		w.BulkString(d.Complexity)
	}
	if len(docFlags) > 0 {
		w.BulkString("doc_flags")
		w.Set(len(docFlags))
		for _, f := range docFlags {
			w.Simple(f)
		}
	}
	if d.DeprecatedSince != "" {
		w.BulkString("deprecated_since")
		w.BulkString(d.DeprecatedSince)
	}
	if d.ReplacedBy != "" {
		w.BulkString("replaced_by")
		w.BulkString(d.ReplacedBy)
	}
	if len(args) > 0 {
		w.BulkString("arguments")
		writeDocArgs(w, args, keySpec)
	}
}

// writeDocArgs writes an argument list: each argument a map of name,
// type, key_spec_index (keys covered by the command's key spec), token,
// flags and the nested arguments of oneof and block.
func writeDocArgs(w *resp.Writer, args []*command.Arg, keySpec bool) {
	w.Array(len(args))
	for _, a := range args {
		isKey := keySpec && a.Type == command.ArgKey
		flags := a.Flags()
		nested := a.Type == command.ArgOneof || a.Type == command.ArgBlock
		n := 2
		for _, present := range []bool{isKey, a.Token != "", len(flags) > 0, nested} {
			if present {
				n++
			}
		}
		w.Map(n)
		w.BulkString("name")
		w.BulkString(a.Name)
		w.BulkString("type")
		w.BulkString(a.Type)
		if isKey {
			w.BulkString("key_spec_index")
			w.Int(0)
		}
		if a.Token != "" {
			w.BulkString("token")
			w.BulkString(a.Token)
		}
		if len(flags) > 0 {
			w.BulkString("flags")
			w.Set(len(flags))
			for _, f := range flags {
				w.Simple(f)
			}
		}
		if nested {
			w.BulkString("arguments")
			writeDocArgs(w, a.Args, keySpec)
		}
	}
}
