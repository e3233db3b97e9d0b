package command

import (
	"fmt"
	"strings"
	"testing"
)

// dump renders an argument tree compactly: name:type, then token, flags
// and nested arguments.
func dump(args []*Arg) string {
	parts := make([]string, len(args))
	for i, a := range args {
		s := a.Name + ":" + a.Type
		if a.Token != "" {
			s += " T=" + a.Token
		}
		if f := a.Flags(); len(f) > 0 {
			s += " " + strings.Join(f, ",")
		}
		if len(a.Args) > 0 {
			s += " (" + dump(a.Args) + ")"
		}
		parts[i] = s
	}
	return strings.Join(parts, "; ")
}

func parseDoc(t *testing.T, d *Doc) []*Arg {
	t.Helper()
	args, err := d.Arguments()
	if err != nil {
		t.Fatalf("%q: %v", d.Syntax, err)
	}
	return args
}

func TestParseSyntaxTrees(t *testing.T) {
	for _, tc := range []struct {
		syntax, types, names string
		want                 string
	}{
		{syntax: "key", want: "key:key"},
		{syntax: "key [key ...]", want: "key:key multiple"},
		{syntax: "key value [NX | XX] [GET] [EX seconds | PX milliseconds | EXAT unix-time-seconds | PXAT unix-time-milliseconds | KEEPTTL]",
			names: "nx_xx=condition seconds_milliseconds_unix-time-seconds_unix-time-milliseconds_keepttl=expiration",
			want: "key:key; value:string; condition:oneof optional (nx:pure-token T=NX; xx:pure-token T=XX); " +
				"get:pure-token T=GET optional; expiration:oneof optional (seconds:integer T=EX; milliseconds:integer T=PX; " +
				"unix-time-seconds:unix-time T=EXAT; unix-time-milliseconds:unix-time T=PXAT; keepttl:pure-token T=KEEPTTL)"},
		{syntax: "numkeys key [key ...] [WEIGHTS weight [weight ...]] [AGGREGATE <SUM | MIN | MAX>] [WITHSCORES]",
			want: "numkeys:integer; key:key multiple; weight:integer T=WEIGHTS optional,multiple; " +
				"aggregate:oneof T=AGGREGATE optional (sum:pure-token T=SUM; min:pure-token T=MIN; max:pure-token T=MAX); " +
				"withscores:pure-token T=WITHSCORES optional"},
		{syntax: "key value [key value ...]", want: "key_value:block multiple (key:key; value:string)"},
		{syntax: "key [NX | XX] [GT | LT] [CH] [INCR] score member [score member ...]", names: "ch=change",
			want: "key:key; nx_xx:oneof optional (nx:pure-token T=NX; xx:pure-token T=XX); gt_lt:oneof optional (gt:pure-token T=GT; lt:pure-token T=LT); " +
				"change:pure-token T=CH optional; incr:pure-token T=INCR optional; score_member:block multiple (score:double; member:string)"},
		{syntax: "key start stop [BYSCORE | BYLEX] [REV] [LIMIT offset count] [WITHSCORES]", types: "start:string stop:string",
			want: "key:key; start:string; stop:string; byscore_bylex:oneof optional (byscore:pure-token T=BYSCORE; bylex:pure-token T=BYLEX); " +
				"rev:pure-token T=REV optional; offset_count:block T=LIMIT optional (offset:integer; count:integer); withscores:pure-token T=WITHSCORES optional"},
		{syntax: "key [BY pattern] [GET pattern [GET pattern ...]]",
			want: "key:key; pattern:pattern T=BY optional; pattern:pattern T=GET optional,multiple,multiple_token"},
		{syntax: "key bit [start [end [BYTE | BIT]]]",
			want: "key:key; bit:integer; start_end_byte_bit:block optional (start:integer; end_byte_bit:block optional (end:integer; byte_bit:oneof optional (byte:pure-token T=BYTE; bit:pure-token T=BIT)))"},
		{syntax: "source destination <LEFT | RIGHT> <LEFT | RIGHT> timeout", names: "left_right=wherefrom left_right=whereto",
			want: "source:key; destination:key; wherefrom:oneof (left:pure-token T=LEFT; right:pure-token T=RIGHT); " +
				"whereto:oneof (left:pure-token T=LEFT; right:pure-token T=RIGHT); timeout:double"},
		{syntax: "[protover [AUTH username password] [SETNAME clientname]]",
			want: "protover_username_password_clientname:block optional (protover:integer; username_password:block T=AUTH optional (username:string; password:string); clientname:string T=SETNAME optional)"},
		{syntax: "<ip:port | <[ID client-id] | [SKIPME <YES | NO>]> [[ID client-id] | [SKIPME <YES | NO>] ...]>",
			want: "ip:port_client-id_skipme:oneof (ip:port:string; client-id_skipme:oneof multiple (client-id:integer T=ID optional; " +
				"skipme:oneof T=SKIPME optional (yes:pure-token T=YES; no:pure-token T=NO)))"},
		{syntax: "<LIB-NAME libname | LIB-VER libver>",
			want: "libname_libver:oneof (libname:string T=LIB-NAME; libver:string T=LIB-VER)"},
		{syntax: "[TYPE <NORMAL | PUBSUB>] [ID client-id [client-id ...]]",
			want: "type:oneof T=TYPE optional (normal:pure-token T=NORMAL; pubsub:pure-token T=PUBSUB); client-id:integer T=ID optional,multiple"},
		{syntax: "[channel [channel ...]]", want: "channel:string optional,multiple"},
		{syntax: "parameter value [parameter value ...]", want: "parameter_value:block multiple (parameter:string; value:string)"},
	} {
		d := &Doc{Syntax: tc.syntax, Types: tc.types, Names: tc.names}
		args := parseDoc(t, d)
		if got := dump(args); got != tc.want {
			t.Errorf("%q:\n got  %s\n want %s", tc.syntax, got, tc.want)
		}
		if got := SyntaxString(args); got != tc.syntax {
			t.Errorf("%q renders back as %q", tc.syntax, got)
		}
	}
}

func TestParseSyntaxErrors(t *testing.T) {
	for _, s := range []string{
		"[key",
		"<A | B",
		"key]",
		"[... ...]",
		"[a | ]",
		"[]",
		"key [a b c ...]", // repeats more arguments than precede it
	} {
		if args, err := ParseSyntax(s); err == nil {
			t.Errorf("%q parsed as %s", s, dump(args))
		}
	}
	for _, d := range []*Doc{
		{Syntax: "key", Types: "key"},
		{Syntax: "key", Names: "nosuch=x"},
		{Syntax: "key", Names: "x"},
	} {
		if _, err := d.Arguments(); err == nil {
			t.Errorf("%+v: no error", d)
		}
	}
}

// Every command in the table is documented, every syntax parses and
// renders back unchanged (the parser loses nothing), and containers
// document no arguments of their own.
func TestEveryCommandDocumented(t *testing.T) {
	for name, sp := range Table {
		d := Docs[name]
		if d == nil {
			t.Errorf("%s: no doc", name)
			continue
		}
		if d.Summary == "" || d.Since == "" || d.Group == "" {
			t.Errorf("%s: summary, since or group missing: %+v", name, d)
		}
		if sp.Arity == 1 && d.Syntax != "" {
			t.Errorf("%s takes no arguments but documents %q", name, d.Syntax)
		}
	}
	for name, d := range Docs {
		parent, _, sub := strings.Cut(name, "|")
		if sub && Table[parent] == nil || !sub && Table[name] == nil {
			t.Errorf("doc %s has no command", name)
		}
		args := parseDoc(t, d)
		if got := SyntaxString(args); got != d.Syntax {
			t.Errorf("%s: %q renders back as %q", name, d.Syntax, got)
		}
		if d.Syntax != "" && len(DocArgs(name)) != len(args) {
			t.Errorf("%s: DocArgs disagrees", name)
		}
		checkTypes(t, name, args)
	}
}

func checkTypes(t *testing.T, name string, args []*Arg) {
	for _, a := range args {
		switch a.Type {
		case ArgKey, ArgString, ArgInteger, ArgDouble, ArgPattern, ArgUnixTime:
			if a.Name == "" || a.Token != "" && strings.ToUpper(a.Token) != a.Token {
				t.Errorf("%s: bad argument %+v", name, a)
			}
		case ArgPureToken:
			if a.Token == "" {
				t.Errorf("%s: pure token without token: %+v", name, a)
			}
		case ArgOneof, ArgBlock:
			if len(a.Args) == 0 {
				t.Errorf("%s: empty %s", name, a.Type)
			}
			checkTypes(t, name, a.Args)
		default:
			t.Errorf("%s: argument %s has type %q", name, a.Name, a.Type)
		}
	}
}

func ExampleParseSyntax() {
	args, _ := ParseSyntax("key [EX seconds | KEEPTTL]")
	for _, a := range args {
		fmt.Println(a.Name, a.Type, a.Optional, len(a.Args))
	}
	// Output:
	// key key false 0
	// seconds_keepttl oneof true 2
}
