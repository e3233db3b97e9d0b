package resp

import (
	"bytes"
	"errors"
)

// Limits bound what one request may announce; zero fields mean "no limit".
type Limits struct {
	MaxBulkLen      int64 // proto-max-bulk-len
	MaxMultibulkLen int64 // max number of arguments in one request
	MaxInlineLen    int   // longest inline request line
}

// DefaultLimits are redis-server 7's defaults.
var DefaultLimits = Limits{MaxBulkLen: 512 << 20, MaxMultibulkLen: 1024 * 1024 * 1024, MaxInlineLen: 64 << 10}

// ProtocolError is a malformed request. The server replies with "-ERR " + the
// message and closes the connection, as redis-server does.
type ProtocolError struct{ Msg string }

func (e *ProtocolError) Error() string { return e.Msg }

var (
	errInvalidMultibulk = &ProtocolError{"Protocol error: invalid multibulk length"}
	errInvalidBulk      = &ProtocolError{"Protocol error: invalid bulk length"}
	errTooBigInline     = &ProtocolError{"Protocol error: too big inline request"}
	errTooBigMultibulk  = &ProtocolError{"Protocol error: too big mbulk count string"}
	errTooBigBulkCount  = &ProtocolError{"Protocol error: too big bulk count string"}
	errUnbalancedQuotes = &ProtocolError{"Protocol error: unbalanced quotes in request"}
)

// IsProtocolError reports whether err is a malformed-request error.
func IsProtocolError(err error) bool {
	var pe *ProtocolError
	return errors.As(err, &pe)
}

// Parse reads one request from buf. It returns the arguments (appended to
// args[:0]), the number of bytes consumed, and need: when the request is
// incomplete (n == 0, err == nil) need is a lower bound on the total bytes
// buf must hold before parsing can make progress, so callers with a very
// large announced bulk do not re-parse on every read.
//
// An empty inline line (a bare "\r\n") consumes its bytes and returns no
// arguments; callers skip it.
func Parse(buf []byte, args [][]byte, lim Limits) (out [][]byte, n int, need int, err error) {
	args = args[:0]
	if len(buf) == 0 {
		return args, 0, 1, nil
	}
	if buf[0] != '*' {
		return parseInline(buf, args, lim)
	}
	// Multibulk header.
	nl := bytes.IndexByte(buf, '\n')
	if nl < 0 {
		if len(buf) > 64*1024 {
			return args, 0, 0, errTooBigMultibulk
		}
		return args, 0, len(buf) + 1, nil
	}
	if nl < 2 || buf[nl-1] != '\r' {
		return args, 0, 0, errInvalidMultibulk
	}
	count, ok := parseInt(buf[1 : nl-1])
	if !ok || (lim.MaxMultibulkLen > 0 && count > lim.MaxMultibulkLen) {
		return args, 0, 0, errInvalidMultibulk
	}
	pos := nl + 1
	if count <= 0 {
		return args, pos, 0, nil
	}
	for i := int64(0); i < count; i++ {
		// Lower bound on the bytes still to come: every remaining element
		// is at least "$0\r\n\r\n". It keeps re-parsing of a wide request
		// that arrives in many reads near O(n log n) instead of O(n²).
		rest := int(count-i-1) * 6
		if pos >= len(buf) {
			return args[:0], 0, pos + 6 + rest, nil
		}
		if buf[pos] != '$' {
			return args[:0], 0, 0, &ProtocolError{"Protocol error: expected '$', got '" + printable(buf[pos]) + "'"}
		}
		nl = bytes.IndexByte(buf[pos:], '\n')
		if nl < 0 {
			if len(buf)-pos > 64*1024 {
				return args[:0], 0, 0, errTooBigBulkCount
			}
			return args[:0], 0, len(buf) + 3 + rest, nil
		}
		nl += pos
		if buf[nl-1] != '\r' {
			return args[:0], 0, 0, errInvalidBulk
		}
		l, ok := parseInt(buf[pos+1 : nl-1])
		if !ok || l < 0 || (lim.MaxBulkLen > 0 && l > lim.MaxBulkLen) {
			return args[:0], 0, 0, errInvalidBulk
		}
		start := nl + 1
		end := start + int(l)
		if end+2 > len(buf) {
			return args[:0], 0, end + 2 + rest, nil
		}
		if buf[end] != '\r' || buf[end+1] != '\n' {
			return args[:0], 0, 0, errInvalidBulk
		}
		args = append(args, buf[start:end:end])
		pos = end + 2
	}
	return args, pos, 0, nil
}

func printable(b byte) string {
	if b >= 0x20 && b < 0x7f {
		return string([]byte{b})
	}
	const hex = "0123456789abcdef"
	return "\\x" + string([]byte{hex[b>>4], hex[b&15]})
}

// parseInt parses a signed decimal that fits in int64; no leading '+'.
func parseInt(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 20 {
		return 0, false
	}
	neg := false
	if b[0] == '-' {
		neg = true
		b = b[1:]
		if len(b) == 0 {
			return 0, false
		}
	}
	var v int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		d := int64(c - '0')
		if v > (1<<63-1-d)/10 {
			return 0, false
		}
		v = v*10 + d
	}
	if neg {
		v = -v
	}
	return v, true
}

func parseInline(buf []byte, args [][]byte, lim Limits) ([][]byte, int, int, error) {
	nl := bytes.IndexByte(buf, '\n')
	if nl < 0 {
		if lim.MaxInlineLen > 0 && len(buf) > lim.MaxInlineLen {
			return args, 0, 0, errTooBigInline
		}
		return args, 0, len(buf) + 1, nil
	}
	if lim.MaxInlineLen > 0 && nl > lim.MaxInlineLen {
		return args, 0, 0, errTooBigInline
	}
	line := buf[:nl]
	if len(line) > 0 && line[len(line)-1] == '\r' {
		line = line[:len(line)-1]
	}
	args, err := SplitArgs(line, args)
	if err != nil {
		return args[:0], 0, 0, err
	}
	return args, nl + 1, 0, nil
}

// SplitArgs splits an inline request line the way redis-server's
// sdssplitargs does: whitespace separates words, "double quotes" accept
// \n \r \t \b \a \\ \" and \xHH escapes, 'single quotes' accept \'.
// Unquoted words alias line; quoted words are copied.
func SplitArgs(line []byte, args [][]byte) ([][]byte, error) {
	i := 0
	for {
		for i < len(line) && isSpace(line[i]) {
			i++
		}
		if i >= len(line) {
			return args, nil
		}
		if line[i] != '"' && line[i] != '\'' {
			start := i
			for i < len(line) && !isWordEnd(line[i]) && line[i] != '"' && line[i] != '\'' {
				i++
			}
			if i < len(line) && !isWordEnd(line[i]) {
				// a quote glued to a word: fall back to the general path
				w, ni, err := quotedWord(line, start)
				if err != nil {
					return args, err
				}
				args = append(args, w)
				i = ni
				continue
			}
			args = append(args, line[start:i:i])
			continue
		}
		w, ni, err := quotedWord(line, i)
		if err != nil {
			return args, err
		}
		args = append(args, w)
		i = ni
	}
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'
}

// isWordEnd reports whether c ends an unquoted word. As in sdssplitargs,
// \v and \f are skipped between words but belong to a word they occur in.
func isWordEnd(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func hexVal(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// quotedWord reads one word starting at i that may contain quoted parts.
func quotedWord(line []byte, i int) ([]byte, int, error) {
	var w []byte
	inq, insq := false, false
	w = make([]byte, 0, 16)
	for {
		if i >= len(line) {
			if inq || insq {
				return nil, 0, errUnbalancedQuotes
			}
			return w, i, nil
		}
		c := line[i]
		switch {
		case inq:
			if c == '\\' && i+3 < len(line) && line[i+1] == 'x' {
				if h, ok := hexVal(line[i+2]); ok {
					if l, ok2 := hexVal(line[i+3]); ok2 {
						w = append(w, h<<4|l)
						i += 4
						continue
					}
				}
			}
			if c == '\\' && i+1 < len(line) {
				i++
				switch line[i] {
				case 'n':
					w = append(w, '\n')
				case 'r':
					w = append(w, '\r')
				case 't':
					w = append(w, '\t')
				case 'b':
					w = append(w, '\b')
				case 'a':
					w = append(w, '\a')
				default:
					w = append(w, line[i])
				}
				i++
				continue
			}
			if c == '"' {
				// closing quote must be followed by a space or the end
				if i+1 < len(line) && !isSpace(line[i+1]) {
					return nil, 0, errUnbalancedQuotes
				}
				return w, i + 1, nil
			}
			w = append(w, c)
			i++
		case insq:
			if c == '\\' && i+1 < len(line) && line[i+1] == '\'' {
				w = append(w, '\'')
				i += 2
				continue
			}
			if c == '\'' {
				if i+1 < len(line) && !isSpace(line[i+1]) {
					return nil, 0, errUnbalancedQuotes
				}
				return w, i + 1, nil
			}
			w = append(w, c)
			i++
		default:
			if isWordEnd(c) {
				return w, i, nil
			}
			if c == '"' {
				inq = true
			} else if c == '\'' {
				insq = true
			} else {
				w = append(w, c)
			}
			i++
		}
	}
}
