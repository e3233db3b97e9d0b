package proxy

import (
	"bufio"
	"bytes"
	"testing"
)

// FuzzReplyFraming checks the backend reply framers against each other
// replyLen (byte slices, used to split fan-out replies) and readRaw
// (streaming, used on backend connections) must agree on where a reply
// ends. Scalars are not validated (the backend is a Shoal node); framing is.
func FuzzReplyFraming(f *testing.F) {
	for _, s := range []string{
		"+OK\r\n", "-ERR x\r\n", ":12\r\n", "$3\r\nabc\r\n", "$-1\r\n", "*-1\r\n",
		"*2\r\n$1\r\na\r\n*1\r\n:1\r\n", "%1\r\n+a\r\n:2\r\n", "~1\r\n_\r\n", ",1.5\r\n#t\r\n",
		"*3\r\n$1\r\n", "$5\r\nab\r\n", "*1\r\n*1\r\n*1\r\n+x\r\n+next\r\n", "$0\r\n\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		n, err := replyLen(b, 1<<20)
		raw, rerr := readRaw(bufio.NewReaderSize(bytes.NewReader(b), 16), nil)
		if err == nil && n > 0 {
			if rerr != nil || len(raw) != n || !bytes.Equal(raw, b[:n]) {
				t.Fatalf("replyLen %d, readRaw %q %v", n, raw, rerr)
			}
			elems, ok := arrayElems(b[:n], nil)
			if ok {
				total := 0
				for _, e := range elems {
					total += len(e)
				}
				if total > n {
					t.Fatalf("elements overrun the reply")
				}
			}
		}
		if rerr == nil && (err != nil || n == 0) {
			t.Fatalf("readRaw accepted %q that replyLen does not (%d, %v)", raw, n, err)
		}
	})
}

// FuzzMCValues: the memcached retrieval reply splitter never panics and
// its blocks tile the reply; the streaming framer (VALUE blocks, meta VA
// replies) never panics.
func FuzzMCValues(f *testing.F) {
	for _, s := range []string{"END\r\n", "VALUE k 0 1\r\nx\r\nEND\r\n", "VALUE k 0 5\r\nx\r\nEND\r\n", "SERVER_ERROR x\r\n", "VALUE k 0 -1\r\n",
		"VA 1 f5\r\nx\r\n", "VA\r\n", "VA x\r\n", "VA 2\r\nabXY", "VA -3\r\n", "HD O1\r\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		readMCReply(bufio.NewReaderSize(bytes.NewReader(b), 16), nil, &call{}) // meta replies
		blocks, ok := mcValues(b)
		if !ok {
			return
		}
		total := 0
		for _, bl := range blocks {
			total += len(bl)
			_ = mcValueKey(bl)
		}
		if total+len("END\r\n") > len(b) {
			t.Fatal("blocks overrun the reply")
		}
		readMCReply(bufio.NewReaderSize(bytes.NewReader(b), 16), nil, &call{mcGet: true})
	})
}
