package resp

import (
	"bufio"
	"bytes"
	"errors"
	"strings"
	"testing"
)

// fuzzLimits keep announced sizes small so the fuzzer explores the limit
// checks instead of waiting for gigabytes that never come.
var fuzzLimits = Limits{MaxBulkLen: 1 << 20, MaxMultibulkLen: 1 << 16, MaxInlineLen: 4 << 10}

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"*1\r\n$4\r\nPING\r\n",
		"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\na\r\n\x00b\r\n",
		"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n*1\r\n$4\r\nPING\r\n",
		"*0\r\n", "*-1\r\n", "*1\r\n$-1\r\n", "*1\r\n$99999999999999999999\r\n",
		"*1\r\n*1\r\n*1\r\n", "*1\r\nx", "*100000\r\n", "*2\r\n$3\r\nGET\r\n$100\r\nab",
		"PING\r\n", "SET k \"a\\x41\\n\" 'b\\'c'\r\n", "SET k \"abc\r\n", "\r\n", "a\"b c\"d\n",
		"GET k\n*1\r\n$4\r\nPING\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, buf []byte) {
		args, n, need, err := Parse(buf, nil, fuzzLimits)
		if n < 0 || n > len(buf) {
			t.Fatalf("consumed %d of %d", n, len(buf))
		}
		if err != nil {
			if !IsProtocolError(err) {
				t.Fatalf("non-protocol error %v", err)
			}
			if n != 0 || len(args) != 0 {
				t.Fatalf("error %v with n=%d args=%q", err, n, args)
			}
			return
		}
		if n == 0 {
			if len(args) != 0 {
				t.Fatalf("incomplete with args %q", args)
			}
			if need <= len(buf) {
				t.Fatalf("incomplete with need=%d <= %d buffered", need, len(buf))
			}
			return
		}
		strs := make([]string, len(args))
		total := 0
		for i, a := range args {
			strs[i] = string(a)
			total += len(a)
		}
		if total > n {
			t.Fatalf("%d argument bytes from %d consumed", total, n)
		}
		// Parsing exactly the consumed bytes gives the same request, and
		// every strict prefix of them is incomplete (never an error: bytes
		// arriving in pieces must not change the outcome).
		args2, n2, _, err2 := Parse(buf[:n], nil, fuzzLimits)
		if err2 != nil || n2 != n || !sameArgs(args2, strs) {
			t.Fatalf("re-parse of the frame: %q n=%d err=%v, want %q n=%d", args2, n2, err2, strs, n)
		}
		if n <= 512 {
			for k := 0; k < n; k++ {
				pa, pn, pneed, perr := Parse(buf[:k], nil, fuzzLimits)
				if perr != nil || pn != 0 || len(pa) != 0 {
					t.Fatalf("prefix %q of frame %q: %q n=%d err=%v", buf[:k], buf[:n], pa, pn, perr)
				}
				if pneed <= k || pneed > n {
					t.Fatalf("prefix %q of frame %q: need=%d outside (%d, %d]", buf[:k], buf[:n], pneed, k, n)
				}
			}
		}
		if len(args) == 0 {
			return
		}
		// Re-encoding gives a multibulk frame that parses to the same args.
		enc := AppendCommand(nil, strs...)
		args3, n3, _, err3 := Parse(enc, nil, Limits{})
		if err3 != nil || n3 != len(enc) || !sameArgs(args3, strs) {
			t.Fatalf("round trip of %q: %q n=%d/%d err=%v", strs, args3, n3, len(enc), err3)
		}
	})
}

func FuzzSplitArgs(f *testing.F) {
	for _, s := range []string{
		"", "a b c", `"a\x4a\x4" b`, `"\n\r\t\b\a\\\"\z"`, `'a\'b' 'c\d'`, `"a`, `'a`, `"a"b`,
		`a"b c"d`, `a"b c" d`, `""`, "\t a\t", `"\x`, `"\`, `'\`, `a'b'`, "a\vb\fc", "'a'\v",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		got, err := SplitArgs(line, nil)
		if bytes.IndexByte(line, 0) >= 0 {
			// sdssplitargs works on C strings and stops at NUL; Shoal
			// keeps NUL as data. Only require no panic here.
			return
		}
		want, werr := sdsSplitArgs(line)
		if (err != nil) != (werr != nil) {
			t.Fatalf("SplitArgs(%q): err=%v, sdssplitargs err=%v (%q)", line, err, werr, want)
		}
		if err == nil && !sameArgs(got, want) {
			t.Fatalf("SplitArgs(%q) = %q, sdssplitargs = %q", line, got, want)
		}
	})
}

func FuzzReadReply(f *testing.F) {
	for _, s := range []string{
		"+OK\r\n", "-ERR x\r\n", ":42\r\n", "$3\r\nfoo\r\n", "$-1\r\n", "*2\r\n$1\r\na\r\n:1\r\n", "*-1\r\n",
		"%1\r\n+k\r\n+v\r\n", "~1\r\n+m\r\n", "_\r\n", ",1.5\r\n", "#t\r\n", "=7\r\ntxt:abc\r\n",
		">2\r\n+message\r\n+x\r\n", "(123\r\n", "!3\r\nerr\r\n", "$500000000\r\nabc", "*16000000\r\n",
		"*1\r\n*1\r\n*1\r\n*1\r\n:1\r\n", "=2\r\nab\r\n", ":x\r\n", "+OK\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		r := bufio.NewReader(bytes.NewReader(in))
		for i := 0; i < 8; i++ {
			rp, err := ReadReply(r, 0)
			if err != nil {
				return
			}
			_ = rp.String()
		}
	})
}

var errRefUnbalanced = errors.New("unbalanced")

// sdsSplitArgs is a line-by-line port of redis-server's sdssplitargs
// (src/sds.c), the reference for inline requests. The input must not
// contain NUL (C strings end there).
func sdsSplitArgs(line []byte) ([]string, error) {
	at := func(i int) byte {
		if i < len(line) {
			return line[i]
		}
		return 0
	}
	isspace := func(c byte) bool {
		return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r'
	}
	ishex := func(c byte) bool { _, ok := hexVal(c); return ok }
	var out []string
	p := 0
	for {
		for at(p) != 0 && isspace(at(p)) {
			p++
		}
		if at(p) == 0 {
			return out, nil
		}
		inq, insq, done := false, false, false
		var cur strings.Builder
		for !done {
			c := at(p)
			switch {
			case inq:
				if c == '\\' && at(p+1) == 'x' && ishex(at(p+2)) && ishex(at(p+3)) {
					h, _ := hexVal(at(p + 2))
					l, _ := hexVal(at(p + 3))
					cur.WriteByte(h<<4 | l)
					p += 3
				} else if c == '\\' && at(p+1) != 0 {
					p++
					switch at(p) {
					case 'n':
						cur.WriteByte('\n')
					case 'r':
						cur.WriteByte('\r')
					case 't':
						cur.WriteByte('\t')
					case 'b':
						cur.WriteByte('\b')
					case 'a':
						cur.WriteByte('\a')
					default:
						cur.WriteByte(at(p))
					}
				} else if c == '"' {
					if at(p+1) != 0 && !isspace(at(p+1)) {
						return nil, errRefUnbalanced
					}
					done = true
				} else if c == 0 {
					return nil, errRefUnbalanced
				} else {
					cur.WriteByte(c)
				}
			case insq:
				if c == '\\' && at(p+1) == '\'' {
					p++
					cur.WriteByte('\'')
				} else if c == '\'' {
					if at(p+1) != 0 && !isspace(at(p+1)) {
						return nil, errRefUnbalanced
					}
					done = true
				} else if c == 0 {
					return nil, errRefUnbalanced
				} else {
					cur.WriteByte(c)
				}
			default:
				switch c {
				case ' ', '\n', '\r', '\t', 0:
					done = true
				case '"':
					inq = true
				case '\'':
					insq = true
				default:
					cur.WriteByte(c)
				}
			}
			if at(p) != 0 {
				p++
			}
		}
		out = append(out, cur.String())
	}
}
