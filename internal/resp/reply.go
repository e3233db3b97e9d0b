package resp

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
)

// Reply is a decoded server reply, for clients, tests and (later) the
// proxy. Kind is the RESP type byte: '+', '-', ':', '$', '*', '%', '~',
// '>', '_', ',', '#', '=', '(' ; Null is set for $-1, *-1 and _.
type Reply struct {
	Kind  byte
	Str   string // simple, error, bulk, verbatim, double, big number
	Int   int64
	Elems []Reply // array, set, push; map as k1 v1 k2 v2 ...
	Null  bool
}

// ReadReply reads one reply; maxBulk bounds announced lengths (0 = 512 MiB).
func ReadReply(r *bufio.Reader, maxBulk int64) (Reply, error) {
	if maxBulk == 0 {
		maxBulk = 512 << 20
	}
	return readReply(r, maxBulk, 0)
}

func readLine(r *bufio.Reader) (string, error) {
	line, err := r.ReadString('\n')
	if err != nil {
		return "", err
	}
	if len(line) < 2 || line[len(line)-2] != '\r' {
		return "", errors.New("resp: line not terminated by CRLF")
	}
	return line[:len(line)-2], nil
}

func readReply(r *bufio.Reader, maxBulk int64, depth int) (Reply, error) {
	if depth > 64 {
		return Reply{}, errors.New("resp: reply nested too deep")
	}
	line, err := readLine(r)
	if err != nil {
		return Reply{}, err
	}
	if len(line) == 0 {
		return Reply{}, errors.New("resp: empty line")
	}
	k, rest := line[0], line[1:]
	rp := Reply{Kind: k}
	switch k {
	case '+', '-', ',', '(':
		rp.Str = rest
	case ':':
		rp.Int, err = strconv.ParseInt(rest, 10, 64)
	case '#':
		if rest == "t" {
			rp.Int = 1
		}
	case '_':
		rp.Null = true
	case '$', '=', '!':
		n, perr := strconv.ParseInt(rest, 10, 64)
		if perr != nil || n > maxBulk {
			return rp, fmt.Errorf("resp: bad bulk length %q", rest)
		}
		if n < 0 {
			rp.Null = true
			return rp, nil
		}
		buf, err := readBulk(r, n+2)
		if err != nil {
			return rp, err
		}
		if buf[n] != '\r' || buf[n+1] != '\n' {
			return rp, errors.New("resp: bulk not terminated by CRLF")
		}
		rp.Str = string(buf[:n])
		if k == '=' && len(rp.Str) >= 4 {
			rp.Str = rp.Str[4:]
		}
	case '*', '~', '>', '%':
		n, perr := strconv.ParseInt(rest, 10, 64)
		if perr != nil || n > 1<<24 {
			return rp, fmt.Errorf("resp: bad aggregate length %q", rest)
		}
		if n < 0 {
			rp.Null = true
			return rp, nil
		}
		if k == '%' {
			n *= 2
		}
		// Grow with what arrives, not with what the peer announced.
		rp.Elems = make([]Reply, 0, min(n, 1024))
		for i := int64(0); i < n; i++ {
			e, err := readReply(r, maxBulk, depth+1)
			if err != nil {
				return rp, err
			}
			rp.Elems = append(rp.Elems, e)
		}
	default:
		return rp, fmt.Errorf("resp: unknown reply type %q", k)
	}
	return rp, err
}

// readBulk reads exactly n bytes. Large bulks are read in steps so that
// memory follows the bytes received, not an announced length.
func readBulk(r *bufio.Reader, n int64) ([]byte, error) {
	const step = 1 << 20
	if n <= step {
		buf := make([]byte, n)
		_, err := io.ReadFull(r, buf)
		return buf, err
	}
	buf := make([]byte, 0, step)
	for int64(len(buf)) < n {
		k := min(n-int64(len(buf)), int64(len(buf))+step)
		buf = slices.Grow(buf, int(k))
		m, err := io.ReadFull(r, buf[len(buf):len(buf)+int(k)])
		buf = buf[:len(buf)+m]
		if err != nil {
			return nil, err
		}
	}
	return buf, nil
}

// String renders a reply compactly for tests: "OK", "(error) ERR ...",
// "(integer) 3", "\"bulk\"", "(nil)", "[a b]" (arrays), "{k:v}" (maps),
// "(double) 1.5", "(true)".
func (r Reply) String() string {
	switch {
	case r.Null:
		return "(nil)"
	}
	switch r.Kind {
	case '+':
		return r.Str
	case '-':
		return "(error) " + r.Str
	case ':':
		return "(integer) " + strconv.FormatInt(r.Int, 10)
	case '$', '=':
		return strconv.Quote(r.Str)
	case ',':
		return "(double) " + r.Str
	case '(':
		return "(bignum) " + r.Str
	case '#':
		if r.Int == 1 {
			return "(true)"
		}
		return "(false)"
	case '%':
		var b strings.Builder
		b.WriteByte('{')
		for i := 0; i+1 < len(r.Elems); i += 2 {
			if i > 0 {
				b.WriteByte(' ')
			}
			b.WriteString(r.Elems[i].String())
			b.WriteByte(':')
			b.WriteString(r.Elems[i+1].String())
		}
		b.WriteByte('}')
		return b.String()
	default: // arrays, sets, pushes
		var b strings.Builder
		open, close := byte('['), byte(']')
		if r.Kind == '~' {
			open, close = '(', ')'
		} else if r.Kind == '>' {
			b.WriteString(">")
		}
		b.WriteByte(open)
		for i, e := range r.Elems {
			if i > 0 {
				b.WriteByte(' ')
			}
			b.WriteString(e.String())
		}
		b.WriteByte(close)
		return b.String()
	}
}

// AppendCommand encodes a request as a multibulk frame.
func AppendCommand(b []byte, args ...string) []byte { return appendCommand(b, args) }

// AppendCommandBytes is AppendCommand for arguments held as byte slices.
func AppendCommandBytes(b []byte, args ...[]byte) []byte { return appendCommand(b, args) }

func appendCommand[T string | []byte](b []byte, args []T) []byte {
	b = append(b, '*')
	b = strconv.AppendInt(b, int64(len(args)), 10)
	b = append(b, '\r', '\n')
	for _, a := range args {
		b = append(b, '$')
		b = strconv.AppendInt(b, int64(len(a)), 10)
		b = append(b, '\r', '\n')
		b = append(b, a...)
		b = append(b, '\r', '\n')
	}
	return b
}
