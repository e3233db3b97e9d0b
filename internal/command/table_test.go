package command

import (
	"reflect"
	"strings"
	"testing"
)

func args(s string) [][]byte {
	var out [][]byte
	for _, f := range strings.Fields(s) {
		out = append(out, []byte(f))
	}
	return out
}

func TestKeyIndexes(t *testing.T) {
	cases := []struct {
		cmd  string
		want []int
	}{
		{"GET k", []int{1}},
		{"MSET a 1 b 2", []int{1, 3}},
		{"DEL a b c", []int{1, 2, 3}},
		{"BLPOP a b 0", []int{1, 2}},
		{"ZUNIONSTORE d 2 a b WEIGHTS 1 2", []int{1, 3, 4}},
		{"ZUNIONSTORE d 5 a b", nil}, // numkeys beyond the arguments: malformed
		{"SINTERCARD 2 a b LIMIT 1", []int{2, 3}},
		{"BLMPOP 0 2 a b LEFT", []int{3, 4}},
		{"MEMORY USAGE k", []int{2}},
		{"OBJECT ENCODING k", []int{2}},
		{"PING", nil},
	}
	for _, c := range cases {
		a := args(c.cmd)
		spec := Lookup(a[0])
		if spec == nil {
			t.Fatalf("%s: not in table", a[0])
		}
		if got := spec.KeyIndexes(a, nil); !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: keys %v, want %v", c.cmd, got, c.want)
		}
	}
}

func TestLookupAndArity(t *testing.T) {
	if Lookup([]byte("GeT")) == nil || Lookup([]byte("nosuch")) != nil {
		t.Fatal("case-insensitive lookup")
	}
	if Lookup([]byte(strings.Repeat("x", 100))) != nil {
		t.Fatal("long name")
	}
	get := Table["get"]
	if !get.ArityOK(2) || get.ArityOK(3) {
		t.Fatal("GET arity")
	}
	del := Table["del"]
	if del.ArityOK(1) || !del.ArityOK(5) {
		t.Fatal("DEL arity")
	}
	for name, s := range Table {
		if s.Name != name || s.Arity == 0 {
			t.Errorf("bad spec %q: %+v", name, s)
		}
		if s.Flags&Write != 0 && s.Flags&ReadOnly != 0 {
			t.Errorf("%s is both write and readonly", name)
		}
	}
}

func TestIDs(t *testing.T) {
	if len(ByID) != len(Table) {
		t.Fatalf("ByID has %d specs, Table %d", len(ByID), len(Table))
	}
	for i, s := range ByID {
		if s.ID != i || Table[s.Name] != s {
			t.Fatalf("spec %q: ID %d at %d", s.Name, s.ID, i)
		}
	}
}
