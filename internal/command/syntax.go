package command

import (
	"fmt"
	"strings"
	"sync"
)

// Doc is a command's documentation as COMMAND DOCS reports it. The
// arguments are written the way redis.io shows a command's syntax (Redis
// 7.2), e.g. "key value [NX | XX] [GET] [EX seconds | PX milliseconds]",
// and ParseSyntax turns that into COMMAND DOCS's argument tree.
type Doc struct {
	Summary    string
	Since      string
	Group      string
	Complexity string
	// Syntax is the argument list without the command name.
	Syntax string
	// Types overrides the argument types guessed from the names:
	// "name:type ..." (for every argument of that name in the command).
	Types string
	// Names renames oneof, block and pure-token arguments whose names do not
	// appear in the syntax: "default=name ...", where default is the name
	// ParseSyntax gives (the lower-case token of a pure token or tokened
	// oneof, otherwise the children's names joined by "_"). A repeated
	// default renames the occurrences in order.
	Names string
	// DeprecatedSince and ReplacedBy describe a deprecated command.
	DeprecatedSince, ReplacedBy string
	// DocFlags are COMMAND DOCS's doc_flags besides "deprecated".
	DocFlags []string
}

// Argument types of COMMAND DOCS.
const (
	ArgKey       = "key"
	ArgString    = "string"
	ArgInteger   = "integer"
	ArgDouble    = "double"
	ArgPattern   = "pattern"
	ArgUnixTime  = "unix-time"
	ArgPureToken = "pure-token"
	ArgOneof     = "oneof"
	ArgBlock     = "block"
)

// Arg is one argument in COMMAND DOCS's tree.
type Arg struct {
	Name          string
	Type          string
	Token         string // literal keyword before the value (the keyword itself for a pure token)
	Optional      bool
	Multiple      bool
	MultipleToken bool // the token repeats with every value: "GET pattern [GET pattern ...]"
	Args          []*Arg
}

// Flags are the argument's COMMAND DOCS flags.
func (a *Arg) Flags() []string {
	var f []string
	if a.Optional {
		f = append(f, "optional")
	}
	if a.Multiple {
		f = append(f, "multiple")
	}
	if a.MultipleToken {
		f = append(f, "multiple_token")
	}
	return f
}

// Syntax renders the argument the way redis.io does; ParseSyntax is its
// inverse.
func (a *Arg) Syntax() string {
	var body string
	switch a.Type {
	case ArgPureToken:
	case ArgBlock:
		body = joinSyntax(a.Args, " ")
	case ArgOneof:
		body = joinSyntax(a.Args, " | ")
	default:
		body = a.Name
	}
	var b strings.Builder
	if a.Optional {
		b.WriteByte('[')
	}
	if a.Token != "" {
		b.WriteString(a.Token)
		if a.Type != ArgPureToken {
			b.WriteByte(' ')
		}
	}
	angle := a.Type == ArgOneof && (!a.Optional || a.Token != "")
	if angle {
		b.WriteByte('<')
	}
	b.WriteString(body)
	if angle {
		b.WriteByte('>')
	}
	if a.Multiple {
		b.WriteString(" [")
		if a.MultipleToken {
			b.WriteString(a.Token + " ")
		}
		b.WriteString(body + " ...]")
	}
	if a.Optional {
		b.WriteByte(']')
	}
	return b.String()
}

func joinSyntax(args []*Arg, sep string) string {
	parts := make([]string, len(args))
	for i, a := range args {
		parts[i] = a.Syntax()
	}
	return strings.Join(parts, sep)
}

// SyntaxString renders a whole argument list.
func SyntaxString(args []*Arg) string { return joinSyntax(args, " ") }

// ParseSyntax parses a redis.io syntax string into COMMAND DOCS arguments.
//
//	word        an argument named word (lower case); its type is guessed
//	            from the name (key, count, seconds, pattern...)
//	WORD        a literal token: alone a pure-token argument, followed by
//	            one argument that argument's token, followed by several a
//	            block introduced by the token
//	[ ... ]     optional
//	< a | b >   one of the alternatives; an alternative of several
//	            arguments is a block
//	x [x ...]   x repeats (multiple); "T x [T x ...]" repeats the token too
//	            (multiple_token); "a b [a b ...]" makes a repeated block
//
// Arguments get their default names and types; Doc.Arguments applies a
// doc's overrides.
func ParseSyntax(s string) ([]*Arg, error) {
	args, err := parseSyntax(s)
	if err != nil {
		return nil, err
	}
	nameArgs(args, nil, nil)
	return args, nil
}

func parseSyntax(s string) ([]*Arg, error) {
	p := &syntaxParser{toks: lexSyntax(s)}
	args, err := p.seq(false)
	if err != nil {
		return nil, err
	}
	if p.pos < len(p.toks) {
		return nil, fmt.Errorf("syntax %q: unexpected %q", s, p.toks[p.pos])
	}
	return args, nil
}

// lexSyntax splits a syntax string into words and the punctuation
// [ ] < > |.
func lexSyntax(s string) []string {
	var toks []string
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ':
			i++
		case c == '[' || c == ']' || c == '<' || c == '>' || c == '|':
			toks = append(toks, s[i:i+1])
			i++
		default:
			j := i
			for j < len(s) && !strings.ContainsRune(" []<>|", rune(s[j])) {
				j++
			}
			toks = append(toks, s[i:j])
			i = j
		}
	}
	return toks
}

type syntaxParser struct {
	toks []string
	pos  int
}

func (p *syntaxParser) peek() string {
	if p.pos < len(p.toks) {
		return p.toks[p.pos]
	}
	return ""
}

// isToken reports a literal keyword: upper case, no lower-case letters.
func isToken(w string) bool {
	if w == "..." || strings.ContainsAny(w, "[]<>|") {
		return false
	}
	hasUpper := false
	for _, c := range w {
		if c >= 'a' && c <= 'z' {
			return false
		}
		if c >= 'A' && c <= 'Z' {
			hasUpper = true
		}
	}
	return hasUpper
}

// seq parses alternatives up to a closing bracket or the end. In a group
// (inside brackets or one alternative of several) a leading token
// belongs to the whole group.
func (p *syntaxParser) seq(group bool) ([]*Arg, error) {
	var alts [][]*Arg
	for {
		units, err := p.units(group)
		if err != nil {
			return nil, err
		}
		alts = append(alts, units)
		if p.peek() != "|" {
			break
		}
		p.pos++
		group = true
	}
	if len(alts) == 1 {
		return alts[0], nil
	}
	one := &Arg{Type: ArgOneof}
	for _, u := range alts {
		if len(u) == 0 {
			return nil, fmt.Errorf("empty alternative")
		}
		one.Args = append(one.Args, single(u))
	}
	return []*Arg{one}, nil
}

// single makes one argument of a group's arguments (a block if several).
func single(units []*Arg) *Arg {
	if len(units) == 1 {
		return units[0]
	}
	return &Arg{Type: ArgBlock, Args: units}
}

// units parses arguments up to '|', a closing bracket or the end.
func (p *syntaxParser) units(group bool) ([]*Arg, error) {
	var out []*Arg
	lead := ""
	if group && isToken(p.peek()) {
		lead = p.toks[p.pos]
		p.pos++
	}
	for {
		t := p.peek()
		switch {
		case endOfUnits(t):
			return applyLead(lead, out), nil
		case t == "[" && p.repetition():
			p.pos++
			rep, err := p.seq(true)
			if err != nil {
				return nil, err
			}
			if p.peek() != "..." {
				return nil, fmt.Errorf("expected ...")
			}
			p.pos += 2 // "..." "]"
			n := len(rep)
			if n == 0 || n > len(out) {
				return nil, fmt.Errorf("repetition of %d arguments after %d", n, len(out))
			}
			if n > 1 {
				blk := &Arg{Type: ArgBlock, Multiple: true, Args: append([]*Arg(nil), out[len(out)-n:]...)}
				out = append(out[:len(out)-n], blk)
				continue
			}
			prev := out[len(out)-1]
			prev.Multiple = true
			if tok := rep[0].Token; tok != "" {
				switch {
				case prev.Token == tok:
					prev.MultipleToken = true
				case lead == tok && len(out) == 1:
					// "[T x [T x ...]]": the group's token repeats
					prev.Token, lead = tok, ""
					prev.MultipleToken = true
				}
			}
		case t == "[" || t == "<":
			a, err := p.group()
			if err != nil {
				return nil, err
			}
			out = append(out, a)
		case isToken(t):
			p.pos++
			nt := p.peek()
			if endOfUnits(nt) || isToken(nt) || nt == "[" {
				// "[FOO [bar]]" would be a token on an optional argument,
				// rendered "[FOO bar]": this is a pure token
				out = append(out, &Arg{Type: ArgPureToken, Token: t})
				continue
			}
			var a *Arg
			if nt == "<" {
				var err error
				if a, err = p.group(); err != nil {
					return nil, err
				}
			} else {
				p.pos++
				a = &Arg{Name: nt}
			}
			a.Token = t
			out = append(out, a)
		default:
			p.pos++
			out = append(out, &Arg{Name: t})
		}
	}
}

func endOfUnits(t string) bool { return t == "" || t == "|" || t == "]" || t == ">" || t == "..." }

// applyLead gives a group's leading token to its argument: alone it is a
// pure token, before several arguments (or one with its own token) it
// introduces a block.
func applyLead(lead string, out []*Arg) []*Arg {
	switch {
	case lead == "":
		return out
	case len(out) == 0:
		return []*Arg{{Type: ArgPureToken, Token: lead}}
	case len(out) == 1 && out[0].Token == "":
		out[0].Token = lead
		return out
	default:
		return []*Arg{{Type: ArgBlock, Token: lead, Args: out}}
	}
}

// group parses "[ ... ]" (optional) or "< ... >" at the current position.
func (p *syntaxParser) group() (*Arg, error) {
	open := p.toks[p.pos]
	p.pos++
	inner, err := p.seq(true)
	if err != nil {
		return nil, err
	}
	want := "]"
	if open == "<" {
		want = ">"
	}
	if p.peek() != want {
		return nil, fmt.Errorf("expected %s", want)
	}
	p.pos++
	if len(inner) == 0 {
		return nil, fmt.Errorf("empty group")
	}
	a := single(inner)
	if open == "[" {
		if a.Optional {
			a = &Arg{Type: ArgBlock, Args: []*Arg{a}}
		}
		a.Optional = true
	}
	return a, nil
}

// repetition reports whether the '[' at the current position opens a
// "[... ...]" repetition group.
func (p *syntaxParser) repetition() bool {
	depth := 0
	for i := p.pos; i < len(p.toks); i++ {
		switch p.toks[i] {
		case "[", "<":
			depth++
		case "]", ">":
			depth--
			if depth == 0 {
				return i > 0 && p.toks[i-1] == "..."
			}
		}
	}
	return false
}

// Arguments parses the doc's syntax and names and types its arguments.
func (d *Doc) Arguments() ([]*Arg, error) {
	if d.Syntax == "" {
		return nil, nil
	}
	args, err := parseSyntax(d.Syntax)
	if err != nil {
		return nil, err
	}
	types := map[string]string{}
	for _, f := range strings.Fields(d.Types) {
		name, typ, ok := strings.Cut(f, ":")
		if !ok {
			return nil, fmt.Errorf("bad type override %q", f)
		}
		types[name] = typ
	}
	renames := map[string][]string{}
	for _, f := range strings.Fields(d.Names) {
		from, to, ok := strings.Cut(f, "=")
		if !ok {
			return nil, fmt.Errorf("bad name override %q", f)
		}
		renames[from] = append(renames[from], to)
	}
	nameArgs(args, types, renames)
	for from, left := range renames {
		if len(left) > 0 {
			return nil, fmt.Errorf("name override %s=%s matches no argument", from, left[0])
		}
	}
	return args, nil
}

// nameArgs fills in names and types, children first (a container's
// default name joins its children's).
func nameArgs(args []*Arg, types map[string]string, renames map[string][]string) {
	for _, a := range args {
		nameArgs(a.Args, types, renames)
		switch {
		case a.Type == ArgPureToken:
			a.Name = strings.ToLower(a.Token)
		case a.Type == ArgOneof && a.Token != "":
			a.Name = strings.ToLower(a.Token)
		case a.Type == ArgOneof || a.Type == ArgBlock:
			parts := make([]string, len(a.Args))
			for i, c := range a.Args {
				parts[i] = c.Name
			}
			a.Name = strings.Join(parts, "_")
		default:
			if t, ok := types[a.Name]; ok {
				a.Type = t
			} else {
				a.Type = guessType(a.Name)
			}
		}
		if to := renames[a.Name]; len(to) > 0 && (a.Type == ArgPureToken || a.Type == ArgOneof || a.Type == ArgBlock) {
			renames[a.Name] = to[1:]
			a.Name = to[0]
		}
	}
}

// guessType is an argument's type from its name (Redis's usual names).
func guessType(name string) string {
	switch name {
	case "key", "key1", "key2", "destination", "destkey", "dst", "newkey", "source", "src":
		return ArgKey
	case "bit", "client-id", "count", "cursor", "decrement", "destination-db", "end", "increment",
		"index", "len", "limit", "milliseconds", "num-matches", "numkeys", "offset", "protover",
		"rank", "seconds", "start", "stop", "weight":
		return ArgInteger
	case "score", "timeout":
		return ArgDouble
	case "pattern":
		return ArgPattern
	case "unix-time-seconds", "unix-time-milliseconds":
		return ArgUnixTime
	}
	return ArgString
}

// Docs holds every command's documentation; a container's subcommands are
// under "container|sub". Summaries, complexities and argument names are
// Redis 7.0's COMMAND DOCS; the syntax is redis.io's for 7.2 (ZRANK
// WITHSCORE, CLIENT NO-TOUCH and SETINFO, SKIPME <YES | NO>...).
var Docs = map[string]*Doc{
	"append": {
		Summary:    "Append a value to a key",
		Since:      "2.0.0",
		Group:      "string",
		Complexity: "O(1). The amortized time complexity is O(1) assuming the appended value is small and the already present value is of any size, since the dynamic string library used by Redis will double the free space available on every reallocation.",
		Syntax:     "key value",
	},
	"asking": {
		Summary:    "Sent by cluster clients after an -ASK redirect",
		Since:      "3.0.0",
		Group:      "cluster",
		Complexity: "O(1)",
	},
	"auth": {
		Summary:    "Authenticate to the server",
		Since:      "1.0.0",
		Group:      "connection",
		Complexity: "O(N) where N is the number of passwords defined for the user",
		Syntax:     "[username] password",
	},
	"bitcount": {
		Summary:    "Count set bits in a string",
		Since:      "2.6.0",
		Group:      "bitmap",
		Complexity: "O(N)",
		Syntax:     "key [start end [BYTE | BIT]]",
		Names:      "byte_bit=index_unit start_end_index_unit=index",
	},
	"bitop": {
		Summary:    "Perform bitwise operations between strings",
		Since:      "2.6.0",
		Group:      "bitmap",
		Complexity: "O(N)",
		Syntax:     "operation destkey key [key ...]",
	},
	"bitpos": {
		Summary:    "Find first bit set or clear in a string",
		Since:      "2.8.7",
		Group:      "bitmap",
		Complexity: "O(N)",
		Syntax:     "key bit [start [end [BYTE | BIT]]]",
		Names:      "byte_bit=index_unit end_index_unit=end_index start_end_index=index",
	},
	"blmove": {
		Summary:    "Pop an element from a list, push it to another list and return it; or block until one is available",
		Since:      "6.2.0",
		Group:      "list",
		Complexity: "O(1)",
		Syntax:     "source destination <LEFT | RIGHT> <LEFT | RIGHT> timeout",
		Names:      "left_right=wherefrom left_right=whereto",
	},
	"blmpop": {
		Summary:    "Pop elements from a list, or block until one is available",
		Since:      "7.0.0",
		Group:      "list",
		Complexity: "O(N+M) where N is the number of provided keys and M is the number of elements returned.",
		Syntax:     "timeout numkeys key [key ...] <LEFT | RIGHT> [COUNT count]",
		Names:      "left_right=where",
	},
	"blpop": {
		Summary:    "Remove and get the first element in a list, or block until one is available",
		Since:      "2.0.0",
		Group:      "list",
		Complexity: "O(N) where N is the number of provided keys.",
		Syntax:     "key [key ...] timeout",
	},
	"brpop": {
		Summary:    "Remove and get the last element in a list, or block until one is available",
		Since:      "2.0.0",
		Group:      "list",
		Complexity: "O(N) where N is the number of provided keys.",
		Syntax:     "key [key ...] timeout",
	},
	"brpoplpush": {
		Summary:         "Pop an element from a list, push it to another list and return it; or block until one is available",
		Since:           "2.2.0",
		Group:           "list",
		Complexity:      "O(1)",
		Syntax:          "source destination timeout",
		DeprecatedSince: "6.2.0",
		ReplacedBy:      "`BLMOVE` with the `RIGHT` and `LEFT` arguments",
	},
	"bzmpop": {
		Summary:    "Remove and return members with scores in a sorted set or block until one is available",
		Since:      "7.0.0",
		Group:      "sorted-set",
		Complexity: "O(K) + O(M*log(N)) where K is the number of provided keys, N being the number of elements in the sorted set, and M being the number of elements popped.",
		Syntax:     "timeout numkeys key [key ...] <MIN | MAX> [COUNT count]",
		Names:      "min_max=where",
	},
	"bzpopmax": {
		Summary:    "Remove and return the member with the highest score from one or more sorted sets, or block until one is available",
		Since:      "5.0.0",
		Group:      "sorted-set",
		Complexity: "O(log(N)) with N being the number of elements in the sorted set.",
		Syntax:     "key [key ...] timeout",
	},
	"bzpopmin": {
		Summary:    "Remove and return the member with the lowest score from one or more sorted sets, or block until one is available",
		Since:      "5.0.0",
		Group:      "sorted-set",
		Complexity: "O(log(N)) with N being the number of elements in the sorted set.",
		Syntax:     "key [key ...] timeout",
	},
	"client": {
		Summary:    "A container for client connection commands",
		Since:      "2.4.0",
		Group:      "connection",
		Complexity: "Depends on subcommand.",
	},
	"client|getname": {
		Summary:    "Get the current connection name",
		Since:      "2.6.9",
		Group:      "connection",
		Complexity: "O(1)",
	},
	"client|help": {
		Summary:    "Show helpful text about the different subcommands",
		Since:      "5.0.0",
		Group:      "connection",
		Complexity: "O(1)",
	},
	"client|id": {
		Summary:    "Returns the client ID for the current connection",
		Since:      "5.0.0",
		Group:      "connection",
		Complexity: "O(1)",
	},
	"client|info": {
		Summary:    "Returns information about the current client connection.",
		Since:      "6.2.0",
		Group:      "connection",
		Complexity: "O(1)",
	},
	"client|kill": {
		Summary:    "Kill the connection of a client",
		Since:      "2.4.0",
		Group:      "connection",
		Complexity: "O(N) where N is the number of client connections",
		Syntax:     "<ip:port | <[ID client-id] | [TYPE <NORMAL | MASTER | SLAVE | REPLICA | PUBSUB>] | [USER username] | [ADDR ip:port] | [LADDR ip:port] | [SKIPME <YES | NO>]> [[ID client-id] | [TYPE <NORMAL | MASTER | SLAVE | REPLICA | PUBSUB>] | [USER username] | [ADDR ip:port] | [LADDR ip:port] | [SKIPME <YES | NO>] ...]>",
		Names:      "type=normal_master_slave_pubsub client-id_normal_master_slave_pubsub_username_ip:port_ip:port_skipme=new-format ip:port_new-format=filter",
	},
	"client|list": {
		Summary:    "Get the list of client connections",
		Since:      "2.4.0",
		Group:      "connection",
		Complexity: "O(N) where N is the number of client connections",
		Syntax:     "[TYPE <NORMAL | MASTER | REPLICA | PUBSUB>] [ID client-id [client-id ...]]",
		Names:      "type=normal_master_replica_pubsub",
	},
	"client|no-evict": {
		Summary:    "Set client eviction mode for the current connection",
		Since:      "7.0.0",
		Group:      "connection",
		Complexity: "O(1)",
		Syntax:     "<ON | OFF>",
		Names:      "on_off=enabled",
	},
	"client|no-touch": {
		Summary:    "Controls whether commands sent by the client will alter the LRU/LFU of the keys they access.",
		Since:      "7.2.0",
		Group:      "connection",
		Complexity: "O(1)",
		Syntax:     "<ON | OFF>",
		Names:      "on_off=enabled",
	},
	"client|setinfo": {
		Summary:    "Sets information specific to the client or connection.",
		Since:      "7.2.0",
		Group:      "connection",
		Complexity: "O(1)",
		Syntax:     "<LIB-NAME libname | LIB-VER libver>",
		Names:      "libname_libver=attr",
	},
	"client|setname": {
		Summary:    "Set the current connection name",
		Since:      "2.6.9",
		Group:      "connection",
		Complexity: "O(1)",
		Syntax:     "connection-name",
	},
	"cluster": {
		Summary:    "A container for Redis Cluster commands",
		Since:      "3.0.0",
		Group:      "cluster",
		Complexity: "Depends on subcommand.",
	},
	"cluster|countkeysinslot": {
		Summary:    "Return the number of local keys in the specified hash slot",
		Since:      "3.0.0",
		Group:      "cluster",
		Complexity: "O(1)",
		Syntax:     "slot",
		Types:      "slot:integer",
	},
	"cluster|getkeysinslot": {
		Summary:    "Return local key names in the specified hash slot",
		Since:      "3.0.0",
		Group:      "cluster",
		Complexity: "O(N) where N is the number of requested keys",
		Syntax:     "slot count",
		Types:      "slot:integer",
	},
	"cluster|help": {
		Summary:    "Show helpful text about the different subcommands",
		Since:      "5.0.0",
		Group:      "cluster",
		Complexity: "O(1)",
	},
	"cluster|info": {
		Summary:    "Provides info about Redis Cluster node state",
		Since:      "3.0.0",
		Group:      "cluster",
		Complexity: "O(1)",
	},
	"cluster|keyslot": {
		Summary:    "Returns the hash slot of the specified key",
		Since:      "3.0.0",
		Group:      "cluster",
		Complexity: "O(N) where N is the number of bytes in the key",
		Syntax:     "key",
		Types:      "key:string",
	},
	"cluster|migration": {
		Summary:    "Shoal: the state of slot moves on this node (map epoch, the slot's last change, fence, import progress)",
		Since:      "0.1.0",
		Group:      "cluster",
		Complexity: "O(N) where N is the number of slots",
		Syntax:     "slot [slot ...]",
		Types:      "slot:integer",
	},
	"cluster|movefence": {
		Summary:    "Shoal: the migrator's news of a committed cutover: fence the slots' writes before the map arrives, and report their status",
		Since:      "0.2.0",
		Group:      "cluster",
		Complexity: "O(N) where N is the number of slots",
		Syntax:     "epoch slot ident [slot ident ...]",
		Types:      "epoch:integer slot:integer ident:string",
	},
	"cluster|movedone": {
		Summary:    "Shoal: the migrator's news of a committed slot move: flip the slots' owner before the map arrives",
		Since:      "0.2.0",
		Group:      "cluster",
		Complexity: "O(N) where N is the number of slots",
		Syntax:     "epoch slot ident lsn [slot ident lsn ...]",
		Types:      "epoch:integer slot:integer ident:string lsn:integer",
	},
	"cluster|movewait": {
		Summary:    "Shoal: wait until this node, the target of slot moves, has applied each slot's changes up to an LSN of its source (the cutover's catch-up)",
		Since:      "0.2.0",
		Group:      "cluster",
		Complexity: "O(N) where N is the number of slots",
		Syntax:     "timeout slot ident lsn [slot ident lsn ...]",
		Types:      "timeout:integer slot:integer ident:string lsn:integer",
	},
	"cluster|slotsync": {
		Summary:    "Shoal: stream a slot's image and changes to the target of a slot move (takes the connection over)",
		Since:      "0.1.0",
		Group:      "cluster",
		Complexity: "O(N) where N is the number of keys in the slot",
		Syntax:     "slot",
		Types:      "slot:integer",
	},
	"cluster|movesync": {
		Summary:    "Shoal: stream several slots' images and changes to the target of their moves (takes the connection over)",
		Since:      "0.2.0",
		Group:      "cluster",
		Complexity: "O(N) where N is the number of keys in the slots",
		Syntax:     "slot [slot ...]",
		Types:      "slot:integer",
	},
	"cluster|myid": {
		Summary:    "Return the node id",
		Since:      "3.0.0",
		Group:      "cluster",
		Complexity: "O(1)",
	},
	"cluster|nodes": {
		Summary:    "Get Cluster config for the node",
		Since:      "3.0.0",
		Group:      "cluster",
		Complexity: "O(N) where N is the total number of Cluster nodes",
	},
	"cluster|shards": {
		Summary:    "Get array of cluster slots to node mappings",
		Since:      "7.0.0",
		Group:      "cluster",
		Complexity: "O(N) where N is the total number of cluster nodes",
	},
	"cluster|slots": {
		Summary:         "Get array of Cluster slot to node mappings",
		Since:           "3.0.0",
		Group:           "cluster",
		Complexity:      "O(N) where N is the total number of Cluster nodes",
		DeprecatedSince: "7.0.0",
		ReplacedBy:      "`CLUSTER SHARDS`",
	},
	"command": {
		Summary:    "Get array of Redis command details",
		Since:      "2.8.13",
		Group:      "server",
		Complexity: "O(N) where N is the total number of Redis commands",
	},
	"command|count": {
		Summary:    "Get total number of Redis commands",
		Since:      "2.8.13",
		Group:      "server",
		Complexity: "O(1)",
	},
	"command|docs": {
		Summary:    "Get array of specific Redis command documentation",
		Since:      "7.0.0",
		Group:      "server",
		Complexity: "O(N) where N is the number of commands to look up",
		Syntax:     "[command-name [command-name ...]]",
	},
	"command|getkeys": {
		Summary:    "Extract keys given a full Redis command",
		Since:      "2.8.13",
		Group:      "server",
		Complexity: "O(N) where N is the number of arguments to the command",
		Syntax:     "command [arg [arg ...]]",
	},
	"command|help": {
		Summary:    "Show helpful text about the different subcommands",
		Since:      "5.0.0",
		Group:      "server",
		Complexity: "O(1)",
	},
	"command|info": {
		Summary:    "Get array of specific Redis command details, or all when no argument is given.",
		Since:      "2.8.13",
		Group:      "server",
		Complexity: "O(N) where N is the number of commands to look up",
		Syntax:     "[command-name [command-name ...]]",
	},
	"command|list": {
		Summary:    "Get an array of Redis command names",
		Since:      "7.0.0",
		Group:      "server",
		Complexity: "O(N) where N is the total number of Redis commands",
		Syntax:     "[FILTERBY <MODULE module-name | ACLCAT category | PATTERN pattern>]",
	},
	"acl": {
		Summary:    "A container for Access List Control commands",
		Since:      "6.0.0",
		Group:      "server",
		Complexity: "Depends on subcommand.",
	},
	"acl|cat": {
		Summary:    "Lists the ACL categories, or the commands inside a category",
		Since:      "6.0.0",
		Group:      "server",
		Complexity: "O(1) since the categories and commands are a fixed set.",
		Syntax:     "[category]",
	},
	"acl|deluser": {
		Summary:    "Deletes ACL users, and terminates their connections",
		Since:      "6.0.0",
		Group:      "server",
		Complexity: "O(1) amortized time considering the typical user.",
		Syntax:     "username [username ...]",
	},
	"acl|dryrun": {
		Summary:    "Simulates the execution of a command by a user, without executing the command",
		Since:      "7.0.0",
		Group:      "server",
		Complexity: "O(1).",
		Syntax:     "username command [arg [arg ...]]",
	},
	"acl|genpass": {
		Summary:    "Generates a pseudorandom, secure password that can be used to identify ACL users",
		Since:      "6.0.0",
		Group:      "server",
		Complexity: "O(1)",
		Syntax:     "[bits]",
	},
	"acl|getuser": {
		Summary:    "Lists the ACL rules of a user",
		Since:      "6.0.0",
		Group:      "server",
		Complexity: "O(N). Where N is the number of password, command and pattern rules that the user has.",
		Syntax:     "username",
	},
	"acl|help": {
		Summary:    "Returns helpful text about the different subcommands",
		Since:      "6.0.0",
		Group:      "server",
		Complexity: "O(1)",
	},
	"acl|list": {
		Summary:    "Dumps the effective rules in ACL file format",
		Since:      "6.0.0",
		Group:      "server",
		Complexity: "O(N). Where N is the number of configured users.",
	},
	"acl|load": {
		Summary:    "Reloads the rules from the configured ACL file",
		Since:      "6.0.0",
		Group:      "server",
		Complexity: "O(N). Where N is the number of configured users.",
	},
	"acl|save": {
		Summary:    "Saves the effective ACL rules in the configured ACL file",
		Since:      "6.0.0",
		Group:      "server",
		Complexity: "O(N). Where N is the number of configured users.",
	},
	"acl|setuser": {
		Summary:    "Creates and modifies an ACL user and its rules",
		Since:      "6.0.0",
		Group:      "server",
		Complexity: "O(N). Where N is the number of rules provided.",
		Syntax:     "username [rule [rule ...]]",
	},
	"acl|users": {
		Summary:    "Lists all ACL users",
		Since:      "6.0.0",
		Group:      "server",
		Complexity: "O(N). Where N is the number of configured users.",
	},
	"acl|whoami": {
		Summary:    "Returns the authenticated username of the current connection",
		Since:      "6.0.0",
		Group:      "server",
		Complexity: "O(1)",
	},
	"config": {
		Summary:    "A container for server configuration commands",
		Since:      "2.0.0",
		Group:      "server",
		Complexity: "Depends on subcommand.",
	},
	"config|get": {
		Summary:    "Get the values of configuration parameters",
		Since:      "2.0.0",
		Group:      "server",
		Complexity: "O(N) when N is the number of configuration parameters provided",
		Syntax:     "parameter [parameter ...]",
	},
	"config|help": {
		Summary:    "Show helpful text about the different subcommands",
		Since:      "5.0.0",
		Group:      "server",
		Complexity: "O(1)",
	},
	"config|resetstat": {
		Summary:    "Reset the stats returned by INFO",
		Since:      "2.0.0",
		Group:      "server",
		Complexity: "O(1)",
	},
	"config|rewrite": {
		Summary:    "Rewrite the configuration file with the in memory configuration",
		Since:      "2.8.0",
		Group:      "server",
		Complexity: "O(1)",
	},
	"config|set": {
		Summary:    "Set configuration parameters to the given values",
		Since:      "2.0.0",
		Group:      "server",
		Complexity: "O(N) when N is the number of configuration parameters provided",
		Syntax:     "parameter value [parameter value ...]",
	},
	"copy": {
		Summary:    "Copy a key",
		Since:      "6.2.0",
		Group:      "generic",
		Complexity: "O(N) worst case for collections, where N is the number of nested items. O(1) for string values.",
		Syntax:     "source destination [DB destination-db] [REPLACE]",
	},
	"dbsize": {
		Summary:    "Return the number of keys in the selected database",
		Since:      "1.0.0",
		Group:      "server",
		Complexity: "O(1)",
	},
	"debug": {
		Summary:    "A container for debugging commands",
		Since:      "1.0.0",
		Group:      "server",
		Complexity: "Depends on subcommand.",
		DocFlags:   []string{"syscmd"},
	},
	"decr": {
		Summary:    "Decrement the integer value of a key by one",
		Since:      "1.0.0",
		Group:      "string",
		Complexity: "O(1)",
		Syntax:     "key",
	},
	"decrby": {
		Summary:    "Decrement the integer value of a key by the given number",
		Since:      "1.0.0",
		Group:      "string",
		Complexity: "O(1)",
		Syntax:     "key decrement",
	},
	"del": {
		Summary:    "Delete a key",
		Since:      "1.0.0",
		Group:      "generic",
		Complexity: "O(N) where N is the number of keys that will be removed. When a key to remove holds a value other than a string, the individual complexity for this key is O(M) where M is the number of elements in the list, set, sorted set or hash. Removing a single key that holds a string value is O(1).",
		Syntax:     "key [key ...]",
	},
	"discard": {
		Summary:    "Discard all commands issued after MULTI",
		Since:      "2.0.0",
		Group:      "transactions",
		Complexity: "O(N), when N is the number of queued commands",
	},
	"echo": {
		Summary:    "Echo the given string",
		Since:      "1.0.0",
		Group:      "connection",
		Complexity: "O(1)",
		Syntax:     "message",
	},
	"exec": {
		Summary:    "Execute all commands issued after MULTI",
		Since:      "1.2.0",
		Group:      "transactions",
		Complexity: "Depends on commands in the transaction",
	},
	"exists": {
		Summary:    "Determine if a key exists",
		Since:      "1.0.0",
		Group:      "generic",
		Complexity: "O(N) where N is the number of keys to check.",
		Syntax:     "key [key ...]",
	},
	"expire": {
		Summary:    "Set a key's time to live in seconds",
		Since:      "1.0.0",
		Group:      "generic",
		Complexity: "O(1)",
		Syntax:     "key seconds [NX | XX | GT | LT]",
		Names:      "nx_xx_gt_lt=condition",
	},
	"expireat": {
		Summary:    "Set the expiration for a key as a UNIX timestamp",
		Since:      "1.2.0",
		Group:      "generic",
		Complexity: "O(1)",
		Syntax:     "key unix-time-seconds [NX | XX | GT | LT]",
		Names:      "nx_xx_gt_lt=condition",
	},
	"expiretime": {
		Summary:    "Get the expiration Unix timestamp for a key",
		Since:      "7.0.0",
		Group:      "generic",
		Complexity: "O(1)",
		Syntax:     "key",
	},
	"flushall": {
		Summary:    "Remove all keys from all databases",
		Since:      "1.0.0",
		Group:      "server",
		Complexity: "O(N) where N is the total number of keys in all databases",
		Syntax:     "[ASYNC | SYNC]",
		Names:      "async_sync=async",
	},
	"flushdb": {
		Summary:    "Remove all keys from the current database",
		Since:      "1.0.0",
		Group:      "server",
		Complexity: "O(N) where N is the number of keys in the selected database",
		Syntax:     "[ASYNC | SYNC]",
		Names:      "async_sync=async",
	},
	"get": {
		Summary:    "Get the value of a key",
		Since:      "1.0.0",
		Group:      "string",
		Complexity: "O(1)",
		Syntax:     "key",
	},
	"getbit": {
		Summary:    "Returns the bit value at offset in the string value stored at key",
		Since:      "2.2.0",
		Group:      "bitmap",
		Complexity: "O(1)",
		Syntax:     "key offset",
	},
	"getdel": {
		Summary:    "Get the value of a key and delete the key",
		Since:      "6.2.0",
		Group:      "string",
		Complexity: "O(1)",
		Syntax:     "key",
	},
	"getex": {
		Summary:    "Get the value of a key and optionally set its expiration",
		Since:      "6.2.0",
		Group:      "string",
		Complexity: "O(1)",
		Syntax:     "key [EX seconds | PX milliseconds | EXAT unix-time-seconds | PXAT unix-time-milliseconds | PERSIST]",
		Names:      "seconds_milliseconds_unix-time-seconds_unix-time-milliseconds_persist=expiration",
	},
	"getrange": {
		Summary:    "Get a substring of the string stored at a key",
		Since:      "2.4.0",
		Group:      "string",
		Complexity: "O(N) where N is the length of the returned string. The complexity is ultimately determined by the returned length, but because creating a substring from an existing string is very cheap, it can be considered O(1) for small strings.",
		Syntax:     "key start end",
	},
	"getset": {
		Summary:         "Set the string value of a key and return its old value",
		Since:           "1.0.0",
		Group:           "string",
		Complexity:      "O(1)",
		Syntax:          "key value",
		DeprecatedSince: "6.2.0",
		ReplacedBy:      "`SET` with the `!GET` argument",
	},
	"hdel": {
		Summary:    "Delete one or more hash fields",
		Since:      "2.0.0",
		Group:      "hash",
		Complexity: "O(N) where N is the number of fields to be removed.",
		Syntax:     "key field [field ...]",
	},
	"hello": {
		Summary:    "Handshake with Redis",
		Since:      "6.0.0",
		Group:      "connection",
		Complexity: "O(1)",
		Syntax:     "[protover [AUTH username password] [SETNAME clientname]]",
		Names:      "protover_username_password_clientname=arguments",
	},
	"hexists": {
		Summary:    "Determine if a hash field exists",
		Since:      "2.0.0",
		Group:      "hash",
		Complexity: "O(1)",
		Syntax:     "key field",
	},
	"hget": {
		Summary:    "Get the value of a hash field",
		Since:      "2.0.0",
		Group:      "hash",
		Complexity: "O(1)",
		Syntax:     "key field",
	},
	"hgetall": {
		Summary:    "Get all the fields and values in a hash",
		Since:      "2.0.0",
		Group:      "hash",
		Complexity: "O(N) where N is the size of the hash.",
		Syntax:     "key",
	},
	"hincrby": {
		Summary:    "Increment the integer value of a hash field by the given number",
		Since:      "2.0.0",
		Group:      "hash",
		Complexity: "O(1)",
		Syntax:     "key field increment",
	},
	"hincrbyfloat": {
		Summary:    "Increment the float value of a hash field by the given amount",
		Since:      "2.6.0",
		Group:      "hash",
		Complexity: "O(1)",
		Syntax:     "key field increment",
		Types:      "increment:double",
	},
	"hkeys": {
		Summary:    "Get all the fields in a hash",
		Since:      "2.0.0",
		Group:      "hash",
		Complexity: "O(N) where N is the size of the hash.",
		Syntax:     "key",
	},
	"hlen": {
		Summary:    "Get the number of fields in a hash",
		Since:      "2.0.0",
		Group:      "hash",
		Complexity: "O(1)",
		Syntax:     "key",
	},
	"hmget": {
		Summary:    "Get the values of all the given hash fields",
		Since:      "2.0.0",
		Group:      "hash",
		Complexity: "O(N) where N is the number of fields being requested.",
		Syntax:     "key field [field ...]",
	},
	"hmset": {
		Summary:         "Set multiple hash fields to multiple values",
		Since:           "2.0.0",
		Group:           "hash",
		Complexity:      "O(N) where N is the number of fields being set.",
		Syntax:          "key field value [field value ...]",
		DeprecatedSince: "4.0.0",
		ReplacedBy:      "`HSET` with multiple field-value pairs",
	},
	"hrandfield": {
		Summary:    "Get one or multiple random fields from a hash",
		Since:      "6.2.0",
		Group:      "hash",
		Complexity: "O(N) where N is the number of fields returned",
		Syntax:     "key [count [WITHVALUES]]",
		Names:      "count_withvalues=options",
	},
	"hscan": {
		Summary:    "Incrementally iterate hash fields and associated values",
		Since:      "2.8.0",
		Group:      "hash",
		Complexity: "O(1) for every call. O(N) for a complete iteration, including enough command calls for the cursor to return back to 0. N is the number of elements inside the collection..",
		Syntax:     "key cursor [MATCH pattern] [COUNT count]",
	},
	"hset": {
		Summary:    "Set the string value of a hash field",
		Since:      "2.0.0",
		Group:      "hash",
		Complexity: "O(1) for each field/value pair added, so O(N) to add N field/value pairs when the command is called with multiple field/value pairs.",
		Syntax:     "key field value [field value ...]",
	},
	"hsetnx": {
		Summary:    "Set the value of a hash field, only if the field does not exist",
		Since:      "2.0.0",
		Group:      "hash",
		Complexity: "O(1)",
		Syntax:     "key field value",
	},
	"hstrlen": {
		Summary:    "Get the length of the value of a hash field",
		Since:      "3.2.0",
		Group:      "hash",
		Complexity: "O(1)",
		Syntax:     "key field",
	},
	"hvals": {
		Summary:    "Get all the values in a hash",
		Since:      "2.0.0",
		Group:      "hash",
		Complexity: "O(N) where N is the size of the hash.",
		Syntax:     "key",
	},
	"incr": {
		Summary:    "Increment the integer value of a key by one",
		Since:      "1.0.0",
		Group:      "string",
		Complexity: "O(1)",
		Syntax:     "key",
	},
	"incrby": {
		Summary:    "Increment the integer value of a key by the given amount",
		Since:      "1.0.0",
		Group:      "string",
		Complexity: "O(1)",
		Syntax:     "key increment",
	},
	"incrbyfloat": {
		Summary:    "Increment the float value of a key by the given amount",
		Since:      "2.6.0",
		Group:      "string",
		Complexity: "O(1)",
		Syntax:     "key increment",
		Types:      "increment:double",
	},
	"info": {
		Summary:    "Get information and statistics about the server",
		Since:      "1.0.0",
		Group:      "server",
		Complexity: "O(1)",
		Syntax:     "[section [section ...]]",
	},
	"keys": {
		Summary:    "Find all keys matching the given pattern",
		Since:      "1.0.0",
		Group:      "generic",
		Complexity: "O(N) with N being the number of keys in the database, under the assumption that the key names in the database and the given pattern have limited length.",
		Syntax:     "pattern",
	},
	"save": {
		Summary:    "Synchronously saves the database(s) to disk",
		Since:      "1.0.0",
		Group:      "server",
		Complexity: "O(N) where N is the total number of keys in all databases",
	},
	"bgrewriteaof": {
		Summary:    "Asynchronously rewrites the append-only file to disk",
		Since:      "1.0.0",
		Group:      "server",
		Complexity: "O(1)",
	},
	"bgsave": {
		Summary:    "Asynchronously saves the database(s) to disk",
		Since:      "1.0.0",
		Group:      "server",
		Complexity: "O(1)",
		Syntax:     "[SCHEDULE]",
	},
	"lastsave": {
		Summary:    "Get the UNIX time stamp of the last successful save to disk",
		Since:      "1.0.0",
		Group:      "server",
		Complexity: "O(1)",
	},
	"latency": {
		Summary:    "A container for latency diagnostics commands",
		Since:      "2.8.13",
		Group:      "server",
		Complexity: "Depends on subcommand.",
	},
	"latency|doctor": {
		Summary:    "Return a human readable latency analysis report.",
		Since:      "2.8.13",
		Group:      "server",
		Complexity: "O(1)",
	},
	"latency|graph": {
		Summary:    "Return a latency graph for the event.",
		Since:      "2.8.13",
		Group:      "server",
		Complexity: "O(1)",
		Syntax:     "event",
	},
	"latency|help": {
		Summary:    "Show helpful text about the different subcommands.",
		Since:      "2.8.13",
		Group:      "server",
		Complexity: "O(1)",
	},
	"latency|histogram": {
		Summary:    "Return the cumulative distribution of latencies of a subset of commands or all.",
		Since:      "7.0.0",
		Group:      "server",
		Complexity: "O(N) where N is the number of commands with latency information being retrieved.",
		Syntax:     "[command [command ...]]",
	},
	"latency|history": {
		Summary:    "Return timestamp-latency samples for the event.",
		Since:      "2.8.13",
		Group:      "server",
		Complexity: "O(1)",
		Syntax:     "event",
	},
	"latency|latest": {
		Summary:    "Return the latest latency samples for all events.",
		Since:      "2.8.13",
		Group:      "server",
		Complexity: "O(1)",
	},
	"latency|reset": {
		Summary:    "Reset latency data for one or more events.",
		Since:      "2.8.13",
		Group:      "server",
		Complexity: "O(1)",
		Syntax:     "[event [event ...]]",
	},
	"lcs": {
		Summary:    "Find longest common substring",
		Since:      "7.0.0",
		Group:      "string",
		Complexity: "O(N*M) where N and M are the lengths of s1 and s2, respectively",
		Syntax:     "key1 key2 [LEN] [IDX] [MINMATCHLEN len] [WITHMATCHLEN]",
	},
	"lindex": {
		Summary:    "Get an element from a list by its index",
		Since:      "1.0.0",
		Group:      "list",
		Complexity: "O(N) where N is the number of elements to traverse to get to the element at index. This makes asking for the first or the last element of the list O(1).",
		Syntax:     "key index",
	},
	"linsert": {
		Summary:    "Insert an element before or after another element in a list",
		Since:      "2.2.0",
		Group:      "list",
		Complexity: "O(N) where N is the number of elements to traverse before seeing the value pivot. This means that inserting somewhere on the left end on the list (head) can be considered O(1) and inserting somewhere on the right end (tail) is O(N).",
		Syntax:     "key <BEFORE | AFTER> pivot element",
		Names:      "before_after=where",
	},
	"llen": {
		Summary:    "Get the length of a list",
		Since:      "1.0.0",
		Group:      "list",
		Complexity: "O(1)",
		Syntax:     "key",
	},
	"lmove": {
		Summary:    "Pop an element from a list, push it to another list and return it",
		Since:      "6.2.0",
		Group:      "list",
		Complexity: "O(1)",
		Syntax:     "source destination <LEFT | RIGHT> <LEFT | RIGHT>",
		Names:      "left_right=wherefrom left_right=whereto",
	},
	"lmpop": {
		Summary:    "Pop elements from a list",
		Since:      "7.0.0",
		Group:      "list",
		Complexity: "O(N+M) where N is the number of provided keys and M is the number of elements returned.",
		Syntax:     "numkeys key [key ...] <LEFT | RIGHT> [COUNT count]",
		Names:      "left_right=where",
	},
	"lpop": {
		Summary:    "Remove and get the first elements in a list",
		Since:      "1.0.0",
		Group:      "list",
		Complexity: "O(N) where N is the number of elements returned",
		Syntax:     "key [count]",
	},
	"lpos": {
		Summary:    "Return the index of matching elements on a list",
		Since:      "6.0.6",
		Group:      "list",
		Complexity: "O(N) where N is the number of elements in the list, for the average case. When searching for elements near the head or the tail of the list, or when the MAXLEN option is provided, the command may run in constant time.",
		Syntax:     "key element [RANK rank] [COUNT num-matches] [MAXLEN len]",
	},
	"lpush": {
		Summary:    "Prepend one or multiple elements to a list",
		Since:      "1.0.0",
		Group:      "list",
		Complexity: "O(1) for each element added, so O(N) to add N elements when the command is called with multiple arguments.",
		Syntax:     "key element [element ...]",
	},
	"lpushx": {
		Summary:    "Prepend an element to a list, only if the list exists",
		Since:      "2.2.0",
		Group:      "list",
		Complexity: "O(1) for each element added, so O(N) to add N elements when the command is called with multiple arguments.",
		Syntax:     "key element [element ...]",
	},
	"lrange": {
		Summary:    "Get a range of elements from a list",
		Since:      "1.0.0",
		Group:      "list",
		Complexity: "O(S+N) where S is the distance of start offset from HEAD for small lists, from nearest end (HEAD or TAIL) for large lists; and N is the number of elements in the specified range.",
		Syntax:     "key start stop",
	},
	"lrem": {
		Summary:    "Remove elements from a list",
		Since:      "1.0.0",
		Group:      "list",
		Complexity: "O(N+M) where N is the length of the list and M is the number of elements removed.",
		Syntax:     "key count element",
	},
	"lset": {
		Summary:    "Set the value of an element in a list by its index",
		Since:      "1.0.0",
		Group:      "list",
		Complexity: "O(N) where N is the length of the list. Setting either the first or the last element of the list is O(1).",
		Syntax:     "key index element",
	},
	"ltrim": {
		Summary:    "Trim a list to the specified range",
		Since:      "1.0.0",
		Group:      "list",
		Complexity: "O(N) where N is the number of elements to be removed by the operation.",
		Syntax:     "key start stop",
	},
	"memory": {
		Summary:    "A container for memory diagnostics commands",
		Since:      "4.0.0",
		Group:      "server",
		Complexity: "Depends on subcommand.",
	},
	"memory|doctor": {
		Summary:    "Outputs memory problems report",
		Since:      "4.0.0",
		Group:      "server",
		Complexity: "O(1)",
	},
	"memory|help": {
		Summary:    "Show helpful text about the different subcommands",
		Since:      "4.0.0",
		Group:      "server",
		Complexity: "O(1)",
	},
	"memory|malloc-stats": {
		Summary:    "Show allocator internal stats",
		Since:      "4.0.0",
		Group:      "server",
		Complexity: "Depends on how much memory is allocated, could be slow",
	},
	"memory|purge": {
		Summary:    "Ask the allocator to release memory",
		Since:      "4.0.0",
		Group:      "server",
		Complexity: "Depends on how much memory is allocated, could be slow",
	},
	"memory|stats": {
		Summary:    "Show memory usage details",
		Since:      "4.0.0",
		Group:      "server",
		Complexity: "O(1)",
	},
	"memory|usage": {
		Summary:    "Estimate the memory usage of a key",
		Since:      "4.0.0",
		Group:      "server",
		Complexity: "O(N) where N is the number of samples.",
		Syntax:     "key [SAMPLES count]",
	},
	"mget": {
		Summary:    "Get the values of all the given keys",
		Since:      "1.0.0",
		Group:      "string",
		Complexity: "O(N) where N is the number of keys to retrieve.",
		Syntax:     "key [key ...]",
	},
	"mset": {
		Summary:    "Set multiple keys to multiple values",
		Since:      "1.0.1",
		Group:      "string",
		Complexity: "O(N) where N is the number of keys to set.",
		Syntax:     "key value [key value ...]",
	},
	"msetnx": {
		Summary:    "Set multiple keys to multiple values, only if none of the keys exist",
		Since:      "1.0.1",
		Group:      "string",
		Complexity: "O(N) where N is the number of keys to set.",
		Syntax:     "key value [key value ...]",
	},
	"multi": {
		Summary:    "Mark the start of a transaction block",
		Since:      "1.2.0",
		Group:      "transactions",
		Complexity: "O(1)",
	},
	"object": {
		Summary:    "A container for object introspection commands",
		Since:      "2.2.3",
		Group:      "generic",
		Complexity: "Depends on subcommand.",
	},
	"object|encoding": {
		Summary:    "Inspect the internal encoding of a Redis object",
		Since:      "2.2.3",
		Group:      "generic",
		Complexity: "O(1)",
		Syntax:     "key",
	},
	"object|freq": {
		Summary:    "Get the logarithmic access frequency counter of a Redis object",
		Since:      "4.0.0",
		Group:      "generic",
		Complexity: "O(1)",
		Syntax:     "key",
	},
	"object|help": {
		Summary:    "Show helpful text about the different subcommands",
		Since:      "6.2.0",
		Group:      "generic",
		Complexity: "O(1)",
	},
	"object|idletime": {
		Summary:    "Get the time since a Redis object was last accessed",
		Since:      "2.2.3",
		Group:      "generic",
		Complexity: "O(1)",
		Syntax:     "key",
	},
	"object|refcount": {
		Summary:    "Get the number of references to the value of the key",
		Since:      "2.2.3",
		Group:      "generic",
		Complexity: "O(1)",
		Syntax:     "key",
	},
	"persist": {
		Summary:    "Remove the expiration from a key",
		Since:      "2.2.0",
		Group:      "generic",
		Complexity: "O(1)",
		Syntax:     "key",
	},
	"pexpire": {
		Summary:    "Set a key's time to live in milliseconds",
		Since:      "2.6.0",
		Group:      "generic",
		Complexity: "O(1)",
		Syntax:     "key milliseconds [NX | XX | GT | LT]",
		Names:      "nx_xx_gt_lt=condition",
	},
	"pexpireat": {
		Summary:    "Set the expiration for a key as a UNIX timestamp specified in milliseconds",
		Since:      "2.6.0",
		Group:      "generic",
		Complexity: "O(1)",
		Syntax:     "key unix-time-milliseconds [NX | XX | GT | LT]",
		Names:      "nx_xx_gt_lt=condition",
	},
	"pexpiretime": {
		Summary:    "Get the expiration Unix timestamp for a key in milliseconds",
		Since:      "7.0.0",
		Group:      "generic",
		Complexity: "O(1)",
		Syntax:     "key",
	},
	"ping": {
		Summary:    "Ping the server",
		Since:      "1.0.0",
		Group:      "connection",
		Complexity: "O(1)",
		Syntax:     "[message]",
	},
	"psetex": {
		Summary:    "Set the value and expiration in milliseconds of a key",
		Since:      "2.6.0",
		Group:      "string",
		Complexity: "O(1)",
		Syntax:     "key milliseconds value",
	},
	"psubscribe": {
		Summary:    "Listen for messages published to channels matching the given patterns",
		Since:      "2.0.0",
		Group:      "pubsub",
		Complexity: "O(N) where N is the number of patterns the client is already subscribed to.",
		Syntax:     "pattern [pattern ...]",
	},
	"pttl": {
		Summary:    "Get the time to live for a key in milliseconds",
		Since:      "2.6.0",
		Group:      "generic",
		Complexity: "O(1)",
		Syntax:     "key",
	},
	"publish": {
		Summary:    "Post a message to a channel",
		Since:      "2.0.0",
		Group:      "pubsub",
		Complexity: "O(N+M) where N is the number of clients subscribed to the receiving channel and M is the total number of subscribed patterns (by any client).",
		Syntax:     "channel message",
	},
	"pubsub": {
		Summary:    "A container for Pub/Sub commands",
		Since:      "2.8.0",
		Group:      "pubsub",
		Complexity: "Depends on subcommand.",
	},
	"pubsub|channels": {
		Summary:    "List active channels",
		Since:      "2.8.0",
		Group:      "pubsub",
		Complexity: "O(N) where N is the number of active channels, and assuming constant time pattern matching (relatively short channels and patterns)",
		Syntax:     "[pattern]",
	},
	"pubsub|help": {
		Summary:    "Show helpful text about the different subcommands",
		Since:      "6.2.0",
		Group:      "pubsub",
		Complexity: "O(1)",
	},
	"pubsub|numpat": {
		Summary:    "Get the count of unique patterns pattern subscriptions",
		Since:      "2.8.0",
		Group:      "pubsub",
		Complexity: "O(1)",
	},
	"pubsub|numsub": {
		Summary:    "Get the count of subscribers for channels",
		Since:      "2.8.0",
		Group:      "pubsub",
		Complexity: "O(N) for the NUMSUB subcommand, where N is the number of requested channels",
		Syntax:     "[channel [channel ...]]",
	},
	"punsubscribe": {
		Summary:    "Stop listening for messages posted to channels matching the given patterns",
		Since:      "2.0.0",
		Group:      "pubsub",
		Complexity: "O(N+M) where N is the number of patterns the client is already subscribed and M is the number of total patterns subscribed in the system (by any client).",
		Syntax:     "[pattern [pattern ...]]",
	},
	"quit": {
		Summary:    "Close the connection",
		Since:      "1.0.0",
		Group:      "connection",
		Complexity: "O(1)",
	},
	"randomkey": {
		Summary:    "Return a random key from the keyspace",
		Since:      "1.0.0",
		Group:      "generic",
		Complexity: "O(1)",
	},
	"readonly": {
		Summary:    "Enables read queries for a connection to a cluster replica node",
		Since:      "3.0.0",
		Group:      "cluster",
		Complexity: "O(1)",
	},
	"readwrite": {
		Summary:    "Disables read queries for a connection to a cluster replica node",
		Since:      "3.0.0",
		Group:      "cluster",
		Complexity: "O(1)",
	},
	"rename": {
		Summary:    "Rename a key",
		Since:      "1.0.0",
		Group:      "generic",
		Complexity: "O(1)",
		Syntax:     "key newkey",
	},
	"renamenx": {
		Summary:    "Rename a key, only if the new key does not exist",
		Since:      "1.0.0",
		Group:      "generic",
		Complexity: "O(1)",
		Syntax:     "key newkey",
	},
	"reset": {
		Summary:    "Reset the connection",
		Since:      "6.2.0",
		Group:      "connection",
		Complexity: "O(1)",
	},
	"replicaof": {
		Summary:    "Configure a server as replica of another, or promote it to a master",
		Since:      "5.0.0",
		Group:      "server",
		Complexity: "O(1)",
		Syntax:     "<host port | NO ONE>",
	},
	"slaveof": {
		Summary:         "Sets a Redis server as a replica of another, or promotes it to being a master",
		Since:           "1.0.0",
		Group:           "server",
		Complexity:      "O(1)",
		Syntax:          "<host port | NO ONE>",
		DeprecatedSince: "5.0.0",
		ReplacedBy:      "`REPLICAOF`",
	},
	"wait": {
		Summary:    "Blocks until the asynchronous replication of all preceding write commands sent by the connection is completed",
		Since:      "3.0.0",
		Group:      "generic",
		Complexity: "O(1)",
		Syntax:     "numreplicas timeout",
	},
	"replconf": {
		Summary:    "An internal command for configuring the replication stream",
		Since:      "3.0.0",
		Group:      "server",
		Complexity: "O(1)",
		Syntax:     "[option value [option value ...]]",
		DocFlags:   []string{"syscmd"},
	},
	"psync": {
		Summary:  "An internal command used in replication",
		Since:    "2.8.0",
		Group:    "server",
		Syntax:   "replicationid offset",
		DocFlags: []string{"syscmd"},
	},
	"sync": {
		Summary:  "An internal command used in replication",
		Since:    "1.0.0",
		Group:    "server",
		DocFlags: []string{"syscmd"},
	},
	"role": {
		Summary:    "Return the role of the instance in the context of replication",
		Since:      "2.8.12",
		Group:      "server",
		Complexity: "O(1)",
	},
	"rpop": {
		Summary:    "Remove and get the last elements in a list",
		Since:      "1.0.0",
		Group:      "list",
		Complexity: "O(N) where N is the number of elements returned",
		Syntax:     "key [count]",
	},
	"rpoplpush": {
		Summary:         "Remove the last element in a list, prepend it to another list and return it",
		Since:           "1.2.0",
		Group:           "list",
		Complexity:      "O(1)",
		Syntax:          "source destination",
		DeprecatedSince: "6.2.0",
		ReplacedBy:      "`LMOVE` with the `RIGHT` and `LEFT` arguments",
	},
	"rpush": {
		Summary:    "Append one or multiple elements to a list",
		Since:      "1.0.0",
		Group:      "list",
		Complexity: "O(1) for each element added, so O(N) to add N elements when the command is called with multiple arguments.",
		Syntax:     "key element [element ...]",
	},
	"rpushx": {
		Summary:    "Append an element to a list, only if the list exists",
		Since:      "2.2.0",
		Group:      "list",
		Complexity: "O(1) for each element added, so O(N) to add N elements when the command is called with multiple arguments.",
		Syntax:     "key element [element ...]",
	},
	"sadd": {
		Summary:    "Add one or more members to a set",
		Since:      "1.0.0",
		Group:      "set",
		Complexity: "O(1) for each element added, so O(N) to add N elements when the command is called with multiple arguments.",
		Syntax:     "key member [member ...]",
	},
	"scan": {
		Summary:    "Incrementally iterate the keys space",
		Since:      "2.8.0",
		Group:      "generic",
		Complexity: "O(1) for every call. O(N) for a complete iteration, including enough command calls for the cursor to return back to 0. N is the number of elements inside the collection.",
		Syntax:     "cursor [MATCH pattern] [COUNT count] [TYPE type]",
	},
	"scard": {
		Summary:    "Get the number of members in a set",
		Since:      "1.0.0",
		Group:      "set",
		Complexity: "O(1)",
		Syntax:     "key",
	},
	"sdiff": {
		Summary:    "Subtract multiple sets",
		Since:      "1.0.0",
		Group:      "set",
		Complexity: "O(N) where N is the total number of elements in all given sets.",
		Syntax:     "key [key ...]",
	},
	"sdiffstore": {
		Summary:    "Subtract multiple sets and store the resulting set in a key",
		Since:      "1.0.0",
		Group:      "set",
		Complexity: "O(N) where N is the total number of elements in all given sets.",
		Syntax:     "destination key [key ...]",
	},
	"select": {
		Summary:    "Change the selected database for the current connection",
		Since:      "1.0.0",
		Group:      "connection",
		Complexity: "O(1)",
		Syntax:     "index",
	},
	"set": {
		Summary:    "Set the string value of a key",
		Since:      "1.0.0",
		Group:      "string",
		Complexity: "O(1)",
		Syntax:     "key value [NX | XX] [GET] [EX seconds | PX milliseconds | EXAT unix-time-seconds | PXAT unix-time-milliseconds | KEEPTTL]",
		Names:      "nx_xx=condition seconds_milliseconds_unix-time-seconds_unix-time-milliseconds_keepttl=expiration",
	},
	"setbit": {
		Summary:    "Sets or clears the bit at offset in the string value stored at key",
		Since:      "2.2.0",
		Group:      "bitmap",
		Complexity: "O(1)",
		Syntax:     "key offset value",
		Types:      "value:integer",
	},
	"setex": {
		Summary:    "Set the value and expiration of a key",
		Since:      "2.0.0",
		Group:      "string",
		Complexity: "O(1)",
		Syntax:     "key seconds value",
	},
	"setnx": {
		Summary:    "Set the value of a key, only if the key does not exist",
		Since:      "1.0.0",
		Group:      "string",
		Complexity: "O(1)",
		Syntax:     "key value",
	},
	"setrange": {
		Summary:    "Overwrite part of a string at key starting at the specified offset",
		Since:      "2.2.0",
		Group:      "string",
		Complexity: "O(1), not counting the time taken to copy the new string in place. Usually, this string is very small so the amortized complexity is O(1). Otherwise, complexity is O(M) with M being the length of the value argument.",
		Syntax:     "key offset value",
	},
	"shutdown": {
		Summary:    "Synchronously save the dataset to disk and then shut down the server",
		Since:      "1.0.0",
		Group:      "server",
		Complexity: "O(N) when saving, where N is the total number of keys in all databases when saving data, otherwise O(1)",
		Syntax:     "[NOSAVE | SAVE] [NOW] [FORCE] [ABORT]",
	},
	"sinter": {
		Summary:    "Intersect multiple sets",
		Since:      "1.0.0",
		Group:      "set",
		Complexity: "O(N*M) worst case where N is the cardinality of the smallest set and M is the number of sets.",
		Syntax:     "key [key ...]",
	},
	"sintercard": {
		Summary:    "Intersect multiple sets and return the cardinality of the result",
		Since:      "7.0.0",
		Group:      "set",
		Complexity: "O(N*M) worst case where N is the cardinality of the smallest set and M is the number of sets.",
		Syntax:     "numkeys key [key ...] [LIMIT limit]",
	},
	"sinterstore": {
		Summary:    "Intersect multiple sets and store the resulting set in a key",
		Since:      "1.0.0",
		Group:      "set",
		Complexity: "O(N*M) worst case where N is the cardinality of the smallest set and M is the number of sets.",
		Syntax:     "destination key [key ...]",
	},
	"sismember": {
		Summary:    "Determine if a given value is a member of a set",
		Since:      "1.0.0",
		Group:      "set",
		Complexity: "O(1)",
		Syntax:     "key member",
	},
	"slowlog": {
		Summary:    "A container for slow log commands",
		Since:      "2.2.12",
		Group:      "server",
		Complexity: "Depends on subcommand.",
	},
	"slowlog|get": {
		Summary:    "Get the slow log's entries",
		Since:      "2.2.12",
		Group:      "server",
		Complexity: "O(N) where N is the number of entries returned",
		Syntax:     "[count]",
	},
	"slowlog|help": {
		Summary:    "Show helpful text about the different subcommands",
		Since:      "6.2.0",
		Group:      "server",
		Complexity: "O(1)",
	},
	"slowlog|len": {
		Summary:    "Get the slow log's length",
		Since:      "2.2.12",
		Group:      "server",
		Complexity: "O(1)",
	},
	"slowlog|reset": {
		Summary:    "Clear all entries from the slow log",
		Since:      "2.2.12",
		Group:      "server",
		Complexity: "O(N) where N is the number of entries in the slowlog",
	},
	"smembers": {
		Summary:    "Get all the members in a set",
		Since:      "1.0.0",
		Group:      "set",
		Complexity: "O(N) where N is the set cardinality.",
		Syntax:     "key",
	},
	"smismember": {
		Summary:    "Returns the membership associated with the given elements for a set",
		Since:      "6.2.0",
		Group:      "set",
		Complexity: "O(N) where N is the number of elements being checked for membership",
		Syntax:     "key member [member ...]",
	},
	"smove": {
		Summary:    "Move a member from one set to another",
		Since:      "1.0.0",
		Group:      "set",
		Complexity: "O(1)",
		Syntax:     "source destination member",
	},
	"spop": {
		Summary:    "Remove and return one or multiple random members from a set",
		Since:      "1.0.0",
		Group:      "set",
		Complexity: "Without the count argument O(1), otherwise O(N) where N is the value of the passed count.",
		Syntax:     "key [count]",
	},
	"srandmember": {
		Summary:    "Get one or multiple random members from a set",
		Since:      "1.0.0",
		Group:      "set",
		Complexity: "Without the count argument O(1), otherwise O(N) where N is the absolute value of the passed count.",
		Syntax:     "key [count]",
	},
	"srem": {
		Summary:    "Remove one or more members from a set",
		Since:      "1.0.0",
		Group:      "set",
		Complexity: "O(N) where N is the number of members to be removed.",
		Syntax:     "key member [member ...]",
	},
	"sscan": {
		Summary:    "Incrementally iterate Set elements",
		Since:      "2.8.0",
		Group:      "set",
		Complexity: "O(1) for every call. O(N) for a complete iteration, including enough command calls for the cursor to return back to 0. N is the number of elements inside the collection..",
		Syntax:     "key cursor [MATCH pattern] [COUNT count]",
	},
	"strlen": {
		Summary:    "Get the length of the value stored in a key",
		Since:      "2.2.0",
		Group:      "string",
		Complexity: "O(1)",
		Syntax:     "key",
	},
	"subscribe": {
		Summary:    "Listen for messages published to the given channels",
		Since:      "2.0.0",
		Group:      "pubsub",
		Complexity: "O(N) where N is the number of channels to subscribe to.",
		Syntax:     "channel [channel ...]",
	},
	"substr": {
		Summary:         "Get a substring of the string stored at a key",
		Since:           "1.0.0",
		Group:           "string",
		Complexity:      "O(N) where N is the length of the returned string. The complexity is ultimately determined by the returned length, but because creating a substring from an existing string is very cheap, it can be considered O(1) for small strings.",
		Syntax:          "key start end",
		DeprecatedSince: "2.0.0",
		ReplacedBy:      "`GETRANGE`",
	},
	"sunion": {
		Summary:    "Add multiple sets",
		Since:      "1.0.0",
		Group:      "set",
		Complexity: "O(N) where N is the total number of elements in all given sets.",
		Syntax:     "key [key ...]",
	},
	"sunionstore": {
		Summary:    "Add multiple sets and store the resulting set in a key",
		Since:      "1.0.0",
		Group:      "set",
		Complexity: "O(N) where N is the total number of elements in all given sets.",
		Syntax:     "destination key [key ...]",
	},
	"time": {
		Summary:    "Return the current server time",
		Since:      "2.6.0",
		Group:      "server",
		Complexity: "O(1)",
	},
	"touch": {
		Summary:    "Alters the last access time of a key(s). Returns the number of existing keys specified.",
		Since:      "3.2.1",
		Group:      "generic",
		Complexity: "O(N) where N is the number of keys that will be touched.",
		Syntax:     "key [key ...]",
	},
	"ttl": {
		Summary:    "Get the time to live for a key in seconds",
		Since:      "1.0.0",
		Group:      "generic",
		Complexity: "O(1)",
		Syntax:     "key",
	},
	"type": {
		Summary:    "Determine the type stored at key",
		Since:      "1.0.0",
		Group:      "generic",
		Complexity: "O(1)",
		Syntax:     "key",
	},
	"unlink": {
		Summary:    "Delete a key asynchronously in another thread. Otherwise it is just as DEL, but non blocking.",
		Since:      "4.0.0",
		Group:      "generic",
		Complexity: "O(1) for each key removed regardless of its size. Then the command does O(N) work in a different thread in order to reclaim memory, where N is the number of allocations the deleted objects where composed of.",
		Syntax:     "key [key ...]",
	},
	"unsubscribe": {
		Summary:    "Stop listening for messages posted to the given channels",
		Since:      "2.0.0",
		Group:      "pubsub",
		Complexity: "O(N) where N is the number of clients already subscribed to a channel.",
		Syntax:     "[channel [channel ...]]",
	},
	"unwatch": {
		Summary:    "Forget about all watched keys",
		Since:      "2.2.0",
		Group:      "transactions",
		Complexity: "O(1)",
	},
	"watch": {
		Summary:    "Watch the given keys to determine execution of the MULTI/EXEC block",
		Since:      "2.2.0",
		Group:      "transactions",
		Complexity: "O(1) for every key.",
		Syntax:     "key [key ...]",
	},
	"zadd": {
		Summary:    "Add one or more members to a sorted set, or update its score if it already exists",
		Since:      "1.2.0",
		Group:      "sorted-set",
		Complexity: "O(log(N)) for each item added, where N is the number of elements in the sorted set.",
		Syntax:     "key [NX | XX] [GT | LT] [CH] [INCR] score member [score member ...]",
		Names:      "nx_xx=condition gt_lt=comparison ch=change incr=increment",
	},
	"zcard": {
		Summary:    "Get the number of members in a sorted set",
		Since:      "1.2.0",
		Group:      "sorted-set",
		Complexity: "O(1)",
		Syntax:     "key",
	},
	"zcount": {
		Summary:    "Count the members in a sorted set with scores within the given values",
		Since:      "2.0.0",
		Group:      "sorted-set",
		Complexity: "O(log(N)) with N being the number of elements in the sorted set.",
		Syntax:     "key min max",
		Types:      "min:double max:double",
	},
	"zdiff": {
		Summary:    "Subtract multiple sorted sets",
		Since:      "6.2.0",
		Group:      "sorted-set",
		Complexity: "O(L + (N-K)log(N)) worst case where L is the total number of elements in all the sets, N is the size of the first set, and K is the size of the result set.",
		Syntax:     "numkeys key [key ...] [WITHSCORES]",
	},
	"zdiffstore": {
		Summary:    "Subtract multiple sorted sets and store the resulting sorted set in a new key",
		Since:      "6.2.0",
		Group:      "sorted-set",
		Complexity: "O(L + (N-K)log(N)) worst case where L is the total number of elements in all the sets, N is the size of the first set, and K is the size of the result set.",
		Syntax:     "destination numkeys key [key ...]",
	},
	"zincrby": {
		Summary:    "Increment the score of a member in a sorted set",
		Since:      "1.2.0",
		Group:      "sorted-set",
		Complexity: "O(log(N)) where N is the number of elements in the sorted set.",
		Syntax:     "key increment member",
	},
	"zinter": {
		Summary:    "Intersect multiple sorted sets",
		Since:      "6.2.0",
		Group:      "sorted-set",
		Complexity: "O(N*K)+O(M*log(M)) worst case with N being the smallest input sorted set, K being the number of input sorted sets and M being the number of elements in the resulting sorted set.",
		Syntax:     "numkeys key [key ...] [WEIGHTS weight [weight ...]] [AGGREGATE <SUM | MIN | MAX>] [WITHSCORES]",
	},
	"zintercard": {
		Summary:    "Intersect multiple sorted sets and return the cardinality of the result",
		Since:      "7.0.0",
		Group:      "sorted-set",
		Complexity: "O(N*K) worst case with N being the smallest input sorted set, K being the number of input sorted sets.",
		Syntax:     "numkeys key [key ...] [LIMIT limit]",
	},
	"zinterstore": {
		Summary:    "Intersect multiple sorted sets and store the resulting sorted set in a new key",
		Since:      "2.0.0",
		Group:      "sorted-set",
		Complexity: "O(N*K)+O(M*log(M)) worst case with N being the smallest input sorted set, K being the number of input sorted sets and M being the number of elements in the resulting sorted set.",
		Syntax:     "destination numkeys key [key ...] [WEIGHTS weight [weight ...]] [AGGREGATE <SUM | MIN | MAX>]",
	},
	"zlexcount": {
		Summary:    "Count the number of members in a sorted set between a given lexicographical range",
		Since:      "2.8.9",
		Group:      "sorted-set",
		Complexity: "O(log(N)) with N being the number of elements in the sorted set.",
		Syntax:     "key min max",
	},
	"zmpop": {
		Summary:    "Remove and return members with scores in a sorted set",
		Since:      "7.0.0",
		Group:      "sorted-set",
		Complexity: "O(K) + O(M*log(N)) where K is the number of provided keys, N being the number of elements in the sorted set, and M being the number of elements popped.",
		Syntax:     "numkeys key [key ...] <MIN | MAX> [COUNT count]",
		Names:      "min_max=where",
	},
	"zmscore": {
		Summary:    "Get the score associated with the given members in a sorted set",
		Since:      "6.2.0",
		Group:      "sorted-set",
		Complexity: "O(N) where N is the number of members being requested.",
		Syntax:     "key member [member ...]",
	},
	"zpopmax": {
		Summary:    "Remove and return members with the highest scores in a sorted set",
		Since:      "5.0.0",
		Group:      "sorted-set",
		Complexity: "O(log(N)*M) with N being the number of elements in the sorted set, and M being the number of elements popped.",
		Syntax:     "key [count]",
	},
	"zpopmin": {
		Summary:    "Remove and return members with the lowest scores in a sorted set",
		Since:      "5.0.0",
		Group:      "sorted-set",
		Complexity: "O(log(N)*M) with N being the number of elements in the sorted set, and M being the number of elements popped.",
		Syntax:     "key [count]",
	},
	"zrandmember": {
		Summary:    "Get one or multiple random elements from a sorted set",
		Since:      "6.2.0",
		Group:      "sorted-set",
		Complexity: "O(N) where N is the number of elements returned",
		Syntax:     "key [count [WITHSCORES]]",
		Names:      "count_withscores=options",
	},
	"zrange": {
		Summary:    "Return a range of members in a sorted set",
		Since:      "1.2.0",
		Group:      "sorted-set",
		Complexity: "O(log(N)+M) with N being the number of elements in the sorted set and M the number of elements returned.",
		Syntax:     "key start stop [BYSCORE | BYLEX] [REV] [LIMIT offset count] [WITHSCORES]",
		Types:      "start:string stop:string",
		Names:      "byscore_bylex=sortby",
	},
	"zrangebylex": {
		Summary:         "Return a range of members in a sorted set, by lexicographical range",
		Since:           "2.8.9",
		Group:           "sorted-set",
		Complexity:      "O(log(N)+M) with N being the number of elements in the sorted set and M the number of elements being returned. If M is constant (e.g. always asking for the first 10 elements with LIMIT), you can consider it O(log(N)).",
		Syntax:          "key min max [LIMIT offset count]",
		DeprecatedSince: "6.2.0",
		ReplacedBy:      "`ZRANGE` with the `BYLEX` argument",
	},
	"zrangebyscore": {
		Summary:         "Return a range of members in a sorted set, by score",
		Since:           "1.0.5",
		Group:           "sorted-set",
		Complexity:      "O(log(N)+M) with N being the number of elements in the sorted set and M the number of elements being returned. If M is constant (e.g. always asking for the first 10 elements with LIMIT), you can consider it O(log(N)).",
		Syntax:          "key min max [WITHSCORES] [LIMIT offset count]",
		Types:           "min:double max:double",
		DeprecatedSince: "6.2.0",
		ReplacedBy:      "`ZRANGE` with the `BYSCORE` argument",
	},
	"zrangestore": {
		Summary:    "Store a range of members from sorted set into another key",
		Since:      "6.2.0",
		Group:      "sorted-set",
		Complexity: "O(log(N)+M) with N being the number of elements in the sorted set and M the number of elements stored into the destination key.",
		Syntax:     "dst src min max [BYSCORE | BYLEX] [REV] [LIMIT offset count]",
		Names:      "byscore_bylex=sortby",
	},
	"zrank": {
		Summary:    "Determine the index of a member in a sorted set",
		Since:      "2.0.0",
		Group:      "sorted-set",
		Complexity: "O(log(N))",
		Syntax:     "key member [WITHSCORE]",
	},
	"zrem": {
		Summary:    "Remove one or more members from a sorted set",
		Since:      "1.2.0",
		Group:      "sorted-set",
		Complexity: "O(M*log(N)) with N being the number of elements in the sorted set and M the number of elements to be removed.",
		Syntax:     "key member [member ...]",
	},
	"zremrangebylex": {
		Summary:    "Remove all members in a sorted set between the given lexicographical range",
		Since:      "2.8.9",
		Group:      "sorted-set",
		Complexity: "O(log(N)+M) with N being the number of elements in the sorted set and M the number of elements removed by the operation.",
		Syntax:     "key min max",
	},
	"zremrangebyrank": {
		Summary:    "Remove all members in a sorted set within the given indexes",
		Since:      "2.0.0",
		Group:      "sorted-set",
		Complexity: "O(log(N)+M) with N being the number of elements in the sorted set and M the number of elements removed by the operation.",
		Syntax:     "key start stop",
	},
	"zremrangebyscore": {
		Summary:    "Remove all members in a sorted set within the given scores",
		Since:      "1.2.0",
		Group:      "sorted-set",
		Complexity: "O(log(N)+M) with N being the number of elements in the sorted set and M the number of elements removed by the operation.",
		Syntax:     "key min max",
		Types:      "min:double max:double",
	},
	"zrevrange": {
		Summary:         "Return a range of members in a sorted set, by index, with scores ordered from high to low",
		Since:           "1.2.0",
		Group:           "sorted-set",
		Complexity:      "O(log(N)+M) with N being the number of elements in the sorted set and M the number of elements returned.",
		Syntax:          "key start stop [WITHSCORES]",
		DeprecatedSince: "6.2.0",
		ReplacedBy:      "`ZRANGE` with the `REV` argument",
	},
	"zrevrangebylex": {
		Summary:         "Return a range of members in a sorted set, by lexicographical range, ordered from higher to lower strings.",
		Since:           "2.8.9",
		Group:           "sorted-set",
		Complexity:      "O(log(N)+M) with N being the number of elements in the sorted set and M the number of elements being returned. If M is constant (e.g. always asking for the first 10 elements with LIMIT), you can consider it O(log(N)).",
		Syntax:          "key max min [LIMIT offset count]",
		DeprecatedSince: "6.2.0",
		ReplacedBy:      "`ZRANGE` with the `REV` and `BYLEX` arguments",
	},
	"zrevrangebyscore": {
		Summary:         "Return a range of members in a sorted set, by score, with scores ordered from high to low",
		Since:           "2.2.0",
		Group:           "sorted-set",
		Complexity:      "O(log(N)+M) with N being the number of elements in the sorted set and M the number of elements being returned. If M is constant (e.g. always asking for the first 10 elements with LIMIT), you can consider it O(log(N)).",
		Syntax:          "key max min [WITHSCORES] [LIMIT offset count]",
		Types:           "max:double min:double",
		DeprecatedSince: "6.2.0",
		ReplacedBy:      "`ZRANGE` with the `REV` and `BYSCORE` arguments",
	},
	"zrevrank": {
		Summary:    "Determine the index of a member in a sorted set, with scores ordered from high to low",
		Since:      "2.0.0",
		Group:      "sorted-set",
		Complexity: "O(log(N))",
		Syntax:     "key member [WITHSCORE]",
	},
	"zscan": {
		Summary:    "Incrementally iterate sorted sets elements and associated scores",
		Since:      "2.8.0",
		Group:      "sorted-set",
		Complexity: "O(1) for every call. O(N) for a complete iteration, including enough command calls for the cursor to return back to 0. N is the number of elements inside the collection..",
		Syntax:     "key cursor [MATCH pattern] [COUNT count]",
	},
	"zscore": {
		Summary:    "Get the score associated with the given member in a sorted set",
		Since:      "1.2.0",
		Group:      "sorted-set",
		Complexity: "O(1)",
		Syntax:     "key member",
	},
	"zunion": {
		Summary:    "Add multiple sorted sets",
		Since:      "6.2.0",
		Group:      "sorted-set",
		Complexity: "O(N)+O(M*log(M)) with N being the sum of the sizes of the input sorted sets, and M being the number of elements in the resulting sorted set.",
		Syntax:     "numkeys key [key ...] [WEIGHTS weight [weight ...]] [AGGREGATE <SUM | MIN | MAX>] [WITHSCORES]",
	},
	"zunionstore": {
		Summary:    "Add multiple sorted sets and store the resulting sorted set in a new key",
		Since:      "2.0.0",
		Group:      "sorted-set",
		Complexity: "O(N)+O(M log(M)) with N being the sum of the sizes of the input sorted sets, and M being the number of elements in the resulting sorted set.",
		Syntax:     "destination numkeys key [key ...] [WEIGHTS weight [weight ...]] [AGGREGATE <SUM | MIN | MAX>]",
	},
}

var docArgs struct {
	once sync.Once
	args map[string][]*Arg
}

// DocArgs returns the parsed arguments of a documented command or
// subcommand ("get", "client|kill"); nil when it takes none. The result is
// shared: do not modify it.
func DocArgs(name string) []*Arg {
	docArgs.once.Do(func() {
		docArgs.args = make(map[string][]*Arg, len(Docs))
		for n, d := range Docs {
			if args, err := d.Arguments(); err == nil {
				docArgs.args[n] = args
			}
		}
	})
	return docArgs.args[name]
}
