package server

import (
	"bytes"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"shoal/internal/resp"
)

// The move stream's frame reader: frames split across reads of any size,
// big frames past its buffer, a status line, an error reply, and the end.
func TestMoveFrameReader(t *testing.T) {
	big := bytes.Repeat([]byte("v"), 600<<10)
	var in []byte
	in = append(in, "+OK\r\n"...)
	in = resp.AppendCommandBytes(in, []byte("image"), []byte("7"), []byte("0"))
	in = resp.AppendCommandBytes(in, []byte("put"), big)
	in = resp.AppendCommandBytes(in, []byte("eff"), []byte("12"), []byte("7"), []byte("SET"), []byte("k"), []byte(""))
	in = append(in, "-ERR the slot moved\r\n"...)
	for _, r := range []io.Reader{bytes.NewReader(in), iotest.OneByteReader(bytes.NewReader(in)), iotest.HalfReader(bytes.NewReader(in))} {
		f := &frameReader{r: r, buf: make([]byte, 16)}
		want := []string{"OK", "image 7 0", "put " + string(big), "eff 12 7 SET k "}
		for _, w := range want {
			args, err := f.next()
			if err != nil {
				t.Fatalf("frame %.20q: %v", w, err)
			}
			if got := string(bytes.Join(args, []byte(" "))); got != w {
				t.Fatalf("frame %.40q, want %.40q", got, w)
			}
		}
		if _, err := f.next(); err == nil || !strings.Contains(err.Error(), "ERR the slot moved") {
			t.Fatalf("after the error reply: %v", err)
		}
	}
	f := &frameReader{r: strings.NewReader("*2\r\n$3\r\npos\r\n$2\r\n1"), buf: make([]byte, 16)}
	if _, err := f.next(); err != io.EOF {
		t.Fatalf("a frame cut short: %v, want EOF", err)
	}
	f = &frameReader{r: strings.NewReader("*2\r\n$999999999999\r\n"), buf: make([]byte, 16)}
	if _, err := f.next(); err == nil {
		t.Fatal("a frame announcing 1 TB: no error")
	}
}
