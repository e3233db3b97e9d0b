package server_test

import (
	"strings"
	"testing"

	"shoal/internal/command"
	"shoal/internal/resp"
	tu "shoal/internal/testutil"
)

// field returns a map field of a reply (a RESP3 map or RESP2's flat
// array of pairs).
func field(r resp.Reply, key string) (resp.Reply, bool) {
	for i := 0; i+1 < len(r.Elems); i += 2 {
		if r.Elems[i].Str == key {
			return r.Elems[i+1], true
		}
	}
	return resp.Reply{}, false
}

// docArgs rebuilds COMMAND DOCS's argument tree, checking the shape of
// every argument map.
func docArgs(t *testing.T, where string, r resp.Reply) []*command.Arg {
	t.Helper()
	var out []*command.Arg
	for _, e := range r.Elems {
		a := &command.Arg{}
		name, _ := field(e, "name")
		typ, _ := field(e, "type")
		a.Name, a.Type = name.Str, typ.Str
		if a.Name == "" || a.Type == "" {
			t.Errorf("%s: argument without name or type: %s", where, e)
		}
		if tok, ok := field(e, "token"); ok {
			a.Token = tok.Str
		}
		if ks, ok := field(e, "key_spec_index"); ok && (a.Type != command.ArgKey || ks.Kind != ':') {
			t.Errorf("%s: key_spec_index on %s", where, e)
		}
		if flags, ok := field(e, "flags"); ok {
			for _, f := range flags.Elems {
				switch f.Str {
				case "optional":
					a.Optional = true
				case "multiple":
					a.Multiple = true
				case "multiple_token":
					a.MultipleToken = true
				default:
					t.Errorf("%s: flag %q", where, f.Str)
				}
			}
		}
		sub, ok := field(e, "arguments")
		if nested := a.Type == command.ArgOneof || a.Type == command.ArgBlock; ok != nested {
			t.Errorf("%s: %s has arguments: %v", where, a.Type, ok)
		}
		if ok {
			a.Args = docArgs(t, where, sub)
		}
		out = append(out, a)
	}
	return out
}

func TestCommandDocsArguments(t *testing.T) {
	n := tu.StartServer(t)
	for _, proto := range []string{"2", "3"} {
		c := tu.Dial(t, n.Addr)
		c.Do("HELLO", proto)
		r, err := c.DoReply("COMMAND", "DOCS", "get")
		if err != nil {
			t.Fatal(err)
		}
		if len(r.Elems) != 2 || r.Elems[0].Str != "get" {
			t.Fatalf("RESP%s: COMMAND DOCS get = %s", proto, r)
		}
		if proto == "3" && (r.Kind != '%' || r.Elems[1].Kind != '%') {
			t.Errorf("RESP3 DOCS is not a map: %s", r)
		}
		doc := r.Elems[1]
		for key, want := range map[string]string{"summary": "Get the value of a key", "since": "1.0.0", "group": "string"} {
			if got, _ := field(doc, key); got.Str != want {
				t.Errorf("RESP%s: %s = %q, want %q", proto, key, got.Str, want)
			}
		}
		args, ok := field(doc, "arguments")
		if !ok || len(args.Elems) != 1 {
			t.Fatalf("RESP%s: get arguments = %s", proto, args)
		}
		want := "{name:key type:key key_spec_index:(integer) 0}"
		if proto == "2" {
			want = "[name key type key key_spec_index (integer) 0]"
		}
		if got := strings.ReplaceAll(args.Elems[0].String(), `"`, ""); got != want {
			t.Errorf("RESP%s: get's key argument = %s, want %s", proto, got, want)
		}

		// flags are a set of simple strings, nested arguments are lists
		r, _ = c.DoReply("COMMAND", "DOCS", "SET")
		set := docArgs(t, "set", mustField(t, r.Elems[1], "arguments"))
		if got, want := command.SyntaxString(set), command.Docs["set"].Syntax; got != want {
			t.Errorf("RESP%s: SET arguments render as %q, want %q", proto, got, want)
		}

		// a subcommand by its full name
		r, _ = c.DoReply("COMMAND", "DOCS", "client|kill")
		if len(r.Elems) != 2 || r.Elems[0].Str != "client|kill" {
			t.Fatalf("RESP%s: COMMAND DOCS client|kill = %s", proto, r)
		}
		kill := docArgs(t, "client|kill", mustField(t, r.Elems[1], "arguments"))
		if got := command.SyntaxString(kill); !strings.Contains(got, "[SKIPME <YES | NO>]") {
			t.Errorf("CLIENT KILL arguments: %s", got)
		}
	}
}

func mustField(t *testing.T, r resp.Reply, key string) resp.Reply {
	t.Helper()
	v, ok := field(r, key)
	if !ok {
		t.Fatalf("no %q in %s", key, r)
	}
	return v
}

// Every command in COMMAND LIST has a DOCS entry whose arguments match
// its documented syntax: none for a command that takes no arguments
// (arity 1) or for a container, whose subcommands are documented instead
// (arguments unless the subcommand takes none).
func TestCommandDocsEveryCommand(t *testing.T) {
	n := tu.StartServer(t)
	for _, proto := range []string{"2", "3"} {
		c := tu.Dial(t, n.Addr)
		c.Do("HELLO", proto)
		list, err := c.DoReply("COMMAND", "LIST")
		if err != nil || len(list.Elems) == 0 {
			t.Fatalf("COMMAND LIST: %s %v", list, err)
		}
		all, err := c.DoReply("COMMAND", "DOCS")
		if err != nil {
			t.Fatal(err)
		}
		if len(all.Elems) != 2*len(list.Elems) {
			t.Errorf("RESP%s: DOCS has %d entries, COMMAND LIST %d", proto, len(all.Elems)/2, len(list.Elems))
		}
		for _, e := range list.Elems {
			name := e.Str
			doc, ok := field(all, name)
			if !ok {
				t.Errorf("RESP%s: no DOCS entry for %s", proto, name)
				continue
			}
			info, _ := c.DoReply("COMMAND", "INFO", name)
			entry := info.Elems[0]
			arity := entry.Elems[1].Int
			subs := entry.Elems[9].Elems
			args, hasArgs := field(doc, "arguments")
			switch {
			case arity == 1 || len(subs) > 0 || name == "debug" || name == "quit":
				// QUIT ignores arguments; DEBUG documents none (Redis 7)
				if hasArgs {
					t.Errorf("RESP%s: %s documents arguments %s", proto, name, args)
				}
			case !hasArgs:
				t.Errorf("RESP%s: %s (arity %d) has no arguments", proto, name, arity)
			default:
				got := command.SyntaxString(docArgs(t, name, args))
				if want := command.Docs[name].Syntax; got != want {
					t.Errorf("RESP%s: %s arguments render as %q, want %q", proto, name, got, want)
				}
			}
			if len(subs) == 0 {
				continue
			}
			subDocs, ok := field(doc, "subcommands")
			if !ok || len(subDocs.Elems) != 2*len(subs) {
				t.Errorf("RESP%s: %s subcommands docs %s, info lists %d", proto, name, subDocs, len(subs))
				continue
			}
			for _, s := range subs {
				sub, subArity := s.Elems[0].Str, s.Elems[1].Int
				sd, ok := field(subDocs, sub)
				if !ok {
					t.Errorf("RESP%s: no docs for %s", proto, sub)
					continue
				}
				args, hasArgs := field(sd, "arguments")
				if hasArgs != (subArity != 2) {
					t.Errorf("RESP%s: %s (arity %d) arguments: %s", proto, sub, subArity, args)
				}
				if hasArgs {
					got := command.SyntaxString(docArgs(t, sub, args))
					if want := command.Docs[sub].Syntax; got != want {
						t.Errorf("RESP%s: %s arguments render as %q, want %q", proto, sub, got, want)
					}
				}
			}
		}
	}
}
