package migrator

import (
	"bufio"
	"strings"
	"testing"
)

func statusConnOf(s string) *statusConn {
	return &statusConn{br: bufio.NewReader(strings.NewReader(s))}
}

// A compact status reply as a node writes it (CLUSTER MIGRATION of two
// slots), the interning of its states and idents, and the refusals.
func TestReadCompactStatus(t *testing.T) {
	reply := "*3\r\n:42\r\n" +
		"*8\r\n:5\r\n:100\r\n:1\r\n$9\r\nstreaming\r\n:99\r\n:7\r\n$0\r\n\r\n$10\r\n5/cut/1/2/0\r\n" +
		"*8\r\n:6\r\n:0\r\n:0\r\n$4\r\nnone\r\n:0\r\n:0\r\n$4\r\noops\r\n$0\r\n\r\n"
	// The ident above is 11 bytes: a short $10 must be refused below;
	// here the right length.
	ok := strings.Replace(reply, "$10\r\n5/cut", "$11\r\n5/cut", 1)
	c := statusConnOf(ok + ok)
	for round := 0; round < 2; round++ {
		st, err := readCompactStatus(c, 2)
		if err != nil {
			t.Fatal(err)
		}
		a, b := st[5], st[6]
		if a.epoch != 42 || a.lsn != 100 || !a.fenced || a.state != "streaming" || a.applied != 99 || a.err != "" || a.ident != "5/cut/1/2/0" {
			t.Fatalf("slot 5: %+v", a)
		}
		if b.state != "none" || b.err != "oops" || b.ident != "" || b.fenced {
			t.Fatalf("slot 6: %+v", b)
		}
	}
	if len(c.idents) != 1 {
		t.Fatalf("%d interned idents, want 1", len(c.idents))
	}
	for _, bad := range []string{
		"-ERR no\r\n",
		"*2\r\n:1\r\n",             // wrong count for 2 slots
		"*3\r\n:1\r\n*7\r\n",       // a short status
		"*3\r\n:x\r\n",             // a bad integer
		"*3\r\n:1\r\n*8\r\n$1\r\n", // a bulk where an integer goes
		reply,                      // a bulk shorter than its data
		"*3\r\n:1\r\n*8\r\n:5\r\n:1\r\n:1\r\n$99999999\r\n",
		"*3\n",
	} {
		if _, err := readCompactStatus(statusConnOf(bad), 2); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func FuzzReadCompactStatus(f *testing.F) {
	f.Add("*2\r\n:42\r\n*8\r\n:5\r\n:100\r\n:1\r\n$9\r\nstreaming\r\n:99\r\n:7\r\n$0\r\n\r\n$3\r\nabc\r\n", 1)
	f.Add("-ERR x\r\n", 3)
	f.Fuzz(func(t *testing.T, s string, n int) {
		if n < 0 || n > 64 {
			return
		}
		st, err := readCompactStatus(statusConnOf(s), n)
		if err == nil && len(st) > n {
			t.Fatalf("%d statuses for %d slots", len(st), n)
		}
	})
}
