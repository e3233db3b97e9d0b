package proxy

import (
	"bytes"
	"errors"
)

// Backend replies are forwarded as raw bytes: the proxy only needs to know
// where one reply ends (to pair it with its request) and, for fan-out
// merges, where the elements of an array reply begin and end.

var errBadReply = errors.New("proxy: malformed backend reply")

// maxReplyDepth bounds nesting so a hostile backend cannot overflow the stack.
const maxReplyDepth = 64

// replyLen returns the length of the first complete reply in b, 0 if b
// holds only a prefix of one, or errBadReply. maxBulk bounds announced
// lengths.
func replyLen(b []byte, maxBulk int64) (int, error) {
	return replyLenAt(b, 0, maxBulk, 0)
}

func replyLenAt(b []byte, pos int, maxBulk int64, depth int) (int, error) {
	if depth > maxReplyDepth {
		return 0, errBadReply
	}
	if pos >= len(b) {
		return 0, nil
	}
	nl := bytes.IndexByte(b[pos:], '\n')
	if nl < 0 {
		if len(b)-pos > 64<<10 {
			return 0, errBadReply
		}
		return 0, nil
	}
	end := pos + nl + 1 // first byte after the line
	if nl < 2 || b[end-2] != '\r' {
		return 0, errBadReply
	}
	kind, arg := b[pos], b[pos+1:end-2]
	switch kind {
	case '+', '-', ':', ',', '(', '#', '_':
		return end - pos, nil
	case '$', '=', '!':
		n, ok := atoi(arg)
		if !ok || n > maxBulk {
			return 0, errBadReply
		}
		if n < 0 {
			return end - pos, nil
		}
		total := end + int(n) + 2
		if total > len(b) {
			return 0, nil
		}
		if b[total-2] != '\r' || b[total-1] != '\n' {
			return 0, errBadReply
		}
		return total - pos, nil
	case '*', '~', '>', '%', '|':
		n, ok := atoi(arg)
		if !ok || n > 1<<24 {
			return 0, errBadReply
		}
		if kind == '%' || kind == '|' {
			n *= 2
		}
		at := end
		for i := int64(0); i < n; i++ {
			l, err := replyLenAt(b, at, maxBulk, depth+1)
			if l == 0 || err != nil {
				return 0, err
			}
			at += l
		}
		return at - pos, nil
	}
	return 0, errBadReply
}

// atoi parses a signed decimal (at most 18 digits).
func atoi(b []byte) (int64, bool) {
	neg := false
	if len(b) > 0 && b[0] == '-' {
		neg, b = true, b[1:]
	}
	if len(b) == 0 || len(b) > 18 {
		return 0, false
	}
	var v int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + int64(c-'0')
	}
	if neg {
		v = -v
	}
	return v, true
}

// arrayElems splits a complete array reply into its elements (raw bytes,
// aliasing r). ok is false when r is not an array (an error, a null array).
func arrayElems(r []byte, dst [][]byte) ([][]byte, bool) {
	if len(r) == 0 || (r[0] != '*' && r[0] != '~') {
		return dst, false
	}
	nl := bytes.IndexByte(r, '\n')
	if nl < 2 {
		return dst, false
	}
	n, ok := atoi(r[1 : nl-1])
	if !ok || n < 0 {
		return dst, false
	}
	at := nl + 1
	for i := int64(0); i < n; i++ {
		l, err := replyLenAt(r, at, 1<<62, 1)
		if l == 0 || err != nil {
			return dst, false
		}
		dst = append(dst, r[at:at+l])
		at += l
	}
	return dst, true
}

// replyInt returns the value of an integer reply.
func replyInt(r []byte) (int64, bool) {
	if len(r) < 4 || r[0] != ':' {
		return 0, false
	}
	return atoi(r[1 : len(r)-2])
}

// isErr reports whether r is an error reply.
func isErr(r []byte) bool { return len(r) > 0 && r[0] == '-' }
