package resp

import (
	"bufio"
	"bytes"
	"errors"
	"runtime"
	"strings"
	"testing"
)

func argStrings(args [][]byte) []string {
	out := make([]string, len(args))
	for i, a := range args {
		out[i] = string(a)
	}
	return out
}

func sameArgs(a [][]byte, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if string(a[i]) != b[i] {
			return false
		}
	}
	return true
}

func TestParseComplete(t *testing.T) {
	cases := []struct {
		in   string
		want []string
	}{
		{"*1\r\n$4\r\nPING\r\n", []string{"PING"}},
		{"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$0\r\n\r\n", []string{"SET", "k", ""}},
		{"*2\r\n$3\r\nGET\r\n$4\r\na\r\nb\r\n", []string{"GET", "a\r\nb"}},
		{"*2\r\n$3\r\nGET\r\n$3\r\na\x00b\r\n", []string{"GET", "a\x00b"}},
		{"*2\r\n$3\r\nGET\r\n$2\r\n\r\n\r\n", []string{"GET", "\r\n"}},
		{"PING\r\n", []string{"PING"}},
		{"PING\n", []string{"PING"}},
		{"  SET  k   v \r\n", []string{"SET", "k", "v"}},
		{"SET k \"a b\\r\\n\\x41\"\r\n", []string{"SET", "k", "a b\r\nA"}},
		{"SET k 'it\\'s'\r\n", []string{"SET", "k", "it's"}},
		{"SET k \"\"\r\n", []string{"SET", "k", ""}},
		{"SET k ab\"c d\"\r\n", []string{"SET", "k", "abc d"}},
	}
	for _, tc := range cases {
		args, n, _, err := Parse([]byte(tc.in), nil, DefaultLimits)
		if err != nil || n != len(tc.in) || !sameArgs(args, tc.want) {
			t.Errorf("Parse(%q) = %q, %d, %v; want %q, %d", tc.in, argStrings(args), n, err, tc.want, len(tc.in))
		}
	}
}

func TestParseEmpty(t *testing.T) {
	for _, in := range []string{"\r\n", "\n", "*0\r\n", "*-1\r\n", "   \r\n"} {
		args, n, _, err := Parse([]byte(in), nil, DefaultLimits)
		if err != nil || n != len(in) || len(args) != 0 {
			t.Errorf("Parse(%q) = %q, %d, %v; want no args, %d consumed", in, argStrings(args), n, err, len(in))
		}
	}
}

// Every strict prefix of a valid frame is incomplete: n == 0, no error,
// and need is more than what is buffered but no more than the full frame.
func TestParseIncomplete(t *testing.T) {
	frames := []string{
		"*1\r\n$4\r\nPING\r\n",
		"*3\r\n$3\r\nSET\r\n$10\r\n0123456789\r\n$0\r\n\r\n",
		"*2\r\n$3\r\nGET\r\n$2\r\n\r\n\r\n",
		"PING\r\n",
		"SET k \"a b\"\r\n",
	}
	for _, f := range frames {
		for k := 0; k < len(f); k++ {
			args, n, need, err := Parse([]byte(f[:k]), nil, DefaultLimits)
			if err != nil || n != 0 || len(args) != 0 {
				t.Errorf("Parse(%q) = %q, n=%d, err=%v; want incomplete", f[:k], argStrings(args), n, err)
				continue
			}
			if need <= k || need > len(f) {
				t.Errorf("Parse(%q): need=%d, want in (%d, %d]", f[:k], need, k, len(f))
			}
		}
	}
}

// A huge announced bulk asks for the whole bulk at once instead of making
// the caller re-parse on every read.
func TestParseNeedBigBulk(t *testing.T) {
	in := []byte("*2\r\n$3\r\nGET\r\n$1000000\r\nabc")
	_, n, need, err := Parse(in, nil, DefaultLimits)
	if err != nil || n != 0 {
		t.Fatalf("n=%d err=%v", n, err)
	}
	if want := len("*2\r\n$3\r\nGET\r\n$1000000\r\n") + 1000000 + 2; need != want {
		t.Fatalf("need=%d want %d", need, want)
	}
	// A wide request: the remaining elements are at least 6 bytes each.
	_, _, need, _ = Parse([]byte("*1000\r\n"), nil, DefaultLimits)
	if need < 1000*6 {
		t.Fatalf("need=%d for 1000 announced args", need)
	}
}

func TestParsePipelined(t *testing.T) {
	var buf []byte
	want := [][]string{{"SET", "a", "1"}, {"GET", "a"}, {"PING"}, {"INCR", "x\r\n"}, {"ECHO", "hi"}}
	for i, cmd := range want {
		if i == 2 {
			buf = append(buf, "PING\r\n"...)
			continue
		}
		if i == 4 {
			buf = append(buf, "ECHO 'hi'\n"...)
			continue
		}
		buf = AppendCommand(buf, cmd...)
	}
	pos := 0
	for i, w := range want {
		args, n, _, err := Parse(buf[pos:], nil, DefaultLimits)
		if err != nil || n == 0 || !sameArgs(args, w) {
			t.Fatalf("command %d: %q n=%d err=%v, want %q", i, argStrings(args), n, err, w)
		}
		pos += n
	}
	if pos != len(buf) {
		t.Fatalf("consumed %d of %d", pos, len(buf))
	}
	// Trailing partial frame after complete ones.
	args, n, _, err := Parse(append(AppendCommand(nil, "PING"), "*2\r\n$3"...), nil, DefaultLimits)
	if err != nil || n != 14 || !sameArgs(args, []string{"PING"}) {
		t.Fatalf("got %q n=%d err=%v", argStrings(args), n, err)
	}
}

func TestParseErrors(t *testing.T) {
	const (
		mbulk    = "Protocol error: invalid multibulk length"
		bulk     = "Protocol error: invalid bulk length"
		inline   = "Protocol error: too big inline request"
		quotes   = "Protocol error: unbalanced quotes in request"
		mbulkBig = "Protocol error: too big mbulk count string"
		bulkBig  = "Protocol error: too big bulk count string"
	)
	cases := []struct{ in, want string }{
		{"*x\r\n", mbulk},
		{"*1x\r\n", mbulk},
		{"*+1\r\n", mbulk},
		{"*\r\n", mbulk},
		{"*99999999999999999999999\r\n", mbulk},
		{"*1\n", mbulk},
		{"*1073741825\r\n", mbulk}, // over DefaultLimits.MaxMultibulkLen
		{"*1\r\n$-1\r\n", bulk},
		{"*1\r\n$-100\r\n", bulk},
		{"*1\r\n$abc\r\n", bulk},
		{"*1\r\n$\r\n", bulk},
		{"*1\r\n$1x\r\n", bulk},
		{"*1\r\n$536870913\r\n", bulk}, // over proto-max-bulk-len
		{"*1\r\n$99999999999999999999\r\n", bulk},
		{"*1\r\n$4\nPING\r\n", bulk},
		{"*1\r\n$4\r\nPINGxx", bulk},
		{"*1\r\nx", "Protocol error: expected '$', got 'x'"},
		{"*2\r\n$1\r\na\r\n:1\r\n", "Protocol error: expected '$', got ':'"},
		{"*1\r\n*1\r\n*1\r\n", "Protocol error: expected '$', got '*'"},
		{"*1\r\n\x01", "Protocol error: expected '$', got '\\x01'"},
		{"SET k \"abc\r\n", quotes},
		{"SET k 'abc\r\n", quotes},
		{"SET k \"a\"b\r\n", quotes},
		{"SET k 'a'b\r\n", quotes},
		{"SET k \"ab\\\"\r\n", quotes},
		{strings.Repeat("a", 64<<10+1), inline},
		{strings.Repeat("a", 64<<10+1) + "\r\n", inline},
		{"*" + strings.Repeat("1", 64<<10+1), mbulkBig},
		{"*1\r\n$" + strings.Repeat("1", 64<<10+1), bulkBig},
	}
	for _, tc := range cases {
		args, n, _, err := Parse([]byte(tc.in), nil, DefaultLimits)
		var pe *ProtocolError
		if !errors.As(err, &pe) {
			t.Errorf("Parse(%.40q) = %q, n=%d, err=%v; want %q", tc.in, argStrings(args), n, err, tc.want)
			continue
		}
		if pe.Msg != tc.want {
			t.Errorf("Parse(%.40q): %q, want %q", tc.in, pe.Msg, tc.want)
		}
		if n != 0 || len(args) != 0 {
			t.Errorf("Parse(%.40q): error with n=%d args=%q", tc.in, n, argStrings(args))
		}
		if !IsProtocolError(err) {
			t.Errorf("IsProtocolError(%v) = false", err)
		}
	}
}

// Limits are configurable; zero means unlimited.
func TestParseLimits(t *testing.T) {
	lim := Limits{MaxBulkLen: 10, MaxMultibulkLen: 3, MaxInlineLen: 8}
	if _, _, _, err := Parse([]byte("*4\r\n"), nil, lim); !IsProtocolError(err) {
		t.Errorf("4 args over a limit of 3: err=%v", err)
	}
	if _, n, _, err := Parse([]byte("*3\r\n"), nil, lim); err != nil || n != 0 {
		t.Errorf("3 args: n=%d err=%v", n, err)
	}
	if _, _, _, err := Parse([]byte("*1\r\n$11\r\n"), nil, lim); !IsProtocolError(err) {
		t.Errorf("bulk over limit: err=%v", err)
	}
	if _, _, _, err := Parse([]byte("123456789\r\n"), nil, lim); !IsProtocolError(err) {
		t.Errorf("inline over limit: err=%v", err)
	}
	if args, _, _, err := Parse([]byte("*1\r\n$11\r\nhello world\r\n"), nil, Limits{}); err != nil || len(args) != 1 {
		t.Errorf("no limits: %q %v", argStrings(args), err)
	}
}

// Arguments alias the input buffer and must not be able to grow into it.
func TestParseArgsAlias(t *testing.T) {
	buf := []byte("*2\r\n$1\r\na\r\n$1\r\nb\r\n")
	args, _, _, err := Parse(buf, nil, DefaultLimits)
	if err != nil {
		t.Fatal(err)
	}
	_ = append(args[0], 'X')
	if !bytes.Equal(buf, []byte("*2\r\n$1\r\na\r\n$1\r\nb\r\n")) {
		t.Fatalf("append to an argument overwrote the buffer: %q", buf)
	}
}

func TestSplitArgs(t *testing.T) {
	cases := []struct {
		in   string
		want []string
		err  bool
	}{
		{"", nil, false},
		{"a b  c", []string{"a", "b", "c"}, false},
		{`"a\x4a\x4" b`, []string{"aJx4", "b"}, false},
		{`"\n\r\t\b\a\\\"\z"`, []string{"\n\r\t\b\a\\\"z"}, false},
		{`'a\'b' 'c\d'`, []string{"a'b", `c\d`}, false},
		{`"a`, nil, true},
		{`'a`, nil, true},
		{`"a"b`, nil, true},
		{`"a" b`, []string{"a", "b"}, false},
		{`a"b c"d`, nil, true},
		{`a"b c" d`, []string{"ab c", "d"}, false},
		{`""`, []string{""}, false},
		{"\t a\t", []string{"a"}, false},
		{"\v a\vb\f \f", []string{"a\vb\f"}, false}, // \v \f only separate leading/trailing
	}
	for _, tc := range cases {
		args, err := SplitArgs([]byte(tc.in), nil)
		if (err != nil) != tc.err {
			t.Errorf("SplitArgs(%q): err=%v want err=%v", tc.in, err, tc.err)
			continue
		}
		if !tc.err && !sameArgs(args, tc.want) {
			t.Errorf("SplitArgs(%q) = %q want %q", tc.in, argStrings(args), tc.want)
		}
		if ref, rerr := sdsSplitArgs([]byte(tc.in)); (rerr != nil) != tc.err || (!tc.err && !sameArgs(args, ref)) {
			t.Errorf("reference sdssplitargs(%q) = %q, %v", tc.in, ref, rerr)
		}
	}
}

func TestReadReply(t *testing.T) {
	in := "+OK\r\n-ERR x\r\n:42\r\n$3\r\nfoo\r\n$-1\r\n*2\r\n$1\r\na\r\n:1\r\n*-1\r\n" +
		"%1\r\n+k\r\n+v\r\n~1\r\n+m\r\n_\r\n,1.5\r\n#t\r\n=7\r\ntxt:abc\r\n>2\r\n+message\r\n+x\r\n(123\r\n"
	want := []string{"OK", "(error) ERR x", "(integer) 42", `"foo"`, "(nil)", `["a" (integer) 1]`, "(nil)",
		"{k:v}", "(m)", "(nil)", "(double) 1.5", "(true)", `"abc"`, ">[message x]", "(bignum) 123"}
	r := bufio.NewReader(strings.NewReader(in))
	for i, w := range want {
		rp, err := ReadReply(r, 0)
		if err != nil || rp.String() != w {
			t.Errorf("reply %d: %s, %v; want %s", i, rp, err, w)
		}
	}
}

// Huge announced lengths must fail or read incrementally, never allocate
// what a (possibly hostile) peer merely announced.
func TestReadReplyHugeAnnounce(t *testing.T) {
	for _, in := range []string{"$500000000\r\nabc", "*16000000\r\n:1\r\n", "%8000000\r\n", "~16777216\r\n"} {
		r := bufio.NewReader(strings.NewReader(in))
		before := totalAlloc()
		_, err := ReadReply(r, 0)
		if err == nil {
			t.Errorf("ReadReply(%q): no error on a truncated reply", in)
		}
		if d := totalAlloc() - before; d > 64<<20 {
			t.Errorf("ReadReply(%q) allocated %d MB", in, d>>20)
		}
	}
}

func totalAlloc() uint64 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.TotalAlloc
}
