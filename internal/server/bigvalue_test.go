package server_test

import (
	"bytes"
	"testing"

	"shoal/internal/resp"
	tu "shoal/internal/testutil"
)

// Requests above 1 MiB take the large-request path (own buffer, values
// kept without a copy); pipelined requests around them must be intact.
func TestLargeValuesPipelined(t *testing.T) {
	n := tu.StartServer(t)
	c := tu.Dial(t, n.Addr)
	a := bytes.Repeat([]byte("a"), 3<<20)
	b := bytes.Repeat([]byte("b"), 5<<20+7)
	var req []byte
	req = resp.AppendCommand(req, "SET", "big:a", string(a))
	req = resp.AppendCommand(req, "SET", "big:b", string(b))
	req = resp.AppendCommand(req, "SET", "small", "x")
	req = resp.AppendCommand(req, "STRLEN", "big:a")
	// Sent in pieces so the server sees partial requests.
	for off := 0; off < len(req); off += 700 << 10 {
		c.Send(req[off:min(off+700<<10, len(req))])
	}
	for i, want := range []string{"OK", "OK", "OK", "(integer) 3145728"} {
		r, err := c.Read()
		if err != nil || r.String() != want {
			t.Fatalf("reply %d = %v %v, want %s", i, r, err, want)
		}
	}
	for key, want := range map[string][]byte{"big:a": a, "big:b": b, "small": []byte("x")} {
		r, err := c.DoReply("GET", key)
		if err != nil || r.Str != string(want) {
			t.Fatalf("GET %s: %d bytes, err %v; want %d bytes", key, len(r.Str), err, len(want))
		}
	}
	// Overwrite a kept value: the old buffer must not be reused by the next request.
	c.Do("SET", "big:a", string(b))
	if r, _ := c.DoReply("GET", "big:b"); r.Str != string(b) {
		t.Fatal("big:b changed after big:a was overwritten")
	}
}
