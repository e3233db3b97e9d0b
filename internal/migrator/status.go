package migrator

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strconv"

	"shoal/internal/cluster"
)

// readCompactStatus reads the compact status of n slots (CLUSTER
// MIGRATION of several slots, CLUSTER MOVEFENCE) from c straight into
// the statuses: the migrator asks every node of the window about up to
// 1024 slots every tick, and a reply decoded into generic values first
// was ~9,000 allocations and most of the migrator's CPU during a move.
// The states and the attempts' idents are interned (c.idents).
func readCompactStatus(c *statusConn, n int) (map[int]moveStatus, error) {
	rd := statusReader{br: c.br}
	k, err := rd.arrayLen()
	if err != nil {
		return nil, err
	}
	if k != 1+n {
		return nil, fmt.Errorf("slot statuses of %d slots: a reply of %d elements", n, k)
	}
	epoch, err := rd.int()
	if err != nil {
		return nil, err
	}
	if c.idents == nil || len(c.idents) > 1<<14 {
		c.idents = map[string]string{}
	}
	out := make(map[int]moveStatus, n)
	for range n {
		if k, err := rd.arrayLen(); err != nil || k != 8 {
			if err == nil {
				err = fmt.Errorf("CLUSTER MIGRATION: a slot's status of %d elements", k)
			}
			return nil, err
		}
		// slot, slot_lsn, fenced, import_state, import_applied,
		// import_keys, import_error, import_move; a bulk string is taken
		// before the next read reuses its buffer.
		var f [5]int64
		var state, errMsg, ident string
		for i, dst := range []*int64{&f[0], &f[1], &f[2], nil, &f[3], &f[4], nil, nil} {
			if dst != nil {
				if *dst, err = rd.int(); err != nil {
					return nil, err
				}
				continue
			}
			b, err := rd.bulk()
			if err != nil {
				return nil, err
			}
			switch {
			case i == 3:
				state = cluster.Intern(b, importStates)
			case i == 6 && len(b) > 0:
				errMsg = string(b)
			case i == 7 && len(b) > 0:
				s, ok := c.idents[string(b)]
				if !ok {
					s = string(b)
					c.idents[s] = s
				}
				ident = s
			}
		}
		out[int(f[0])] = moveStatus{epoch: uint64(epoch), lsn: uint64(f[1]), fenced: f[2] == 1, state: state,
			applied: uint64(f[3]), err: errMsg, ident: ident}
	}
	return out, nil
}

// importStates are the states a node reports of an import.
var importStates = []string{"none", "connecting", "image", "streaming", "failed"}

// statusReader reads RESP2 headers, integers and bulk strings; a bulk
// string is valid until the next read.
type statusReader struct {
	br  *bufio.Reader
	buf []byte
}

// line returns the next line without its CRLF; an error reply is an error.
func (r *statusReader) line() ([]byte, error) {
	l, err := r.br.ReadSlice('\n')
	if err != nil {
		return nil, err
	}
	if len(l) < 3 || l[len(l)-2] != '\r' {
		return nil, errors.New("malformed reply line")
	}
	l = l[:len(l)-2]
	if l[0] == '-' {
		return nil, errors.New(string(l[1:]))
	}
	return l, nil
}

func (r *statusReader) header(kind byte) (int64, error) {
	l, err := r.line()
	if err != nil {
		return 0, err
	}
	if l[0] != kind {
		return 0, fmt.Errorf("a reply of type %q, want %q", l[0], kind)
	}
	return strconv.ParseInt(string(l[1:]), 10, 64)
}

func (r *statusReader) arrayLen() (int, error) {
	n, err := r.header('*')
	return int(n), err
}

func (r *statusReader) int() (int64, error) { return r.header(':') }

func (r *statusReader) bulk() ([]byte, error) {
	n, err := r.header('$')
	if err != nil {
		return nil, err
	}
	if n < 0 || n > 1<<20 {
		return nil, fmt.Errorf("a bulk string of %d bytes in a status", n)
	}
	if cap(r.buf) < int(n)+2 {
		r.buf = make([]byte, n+2)
	}
	b := r.buf[:n+2]
	if _, err := io.ReadFull(r.br, b); err != nil {
		return nil, err
	}
	return b[:n], nil
}
