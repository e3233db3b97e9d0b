package memcache

import (
	"bytes"
	"encoding/base64"
	"strings"
)

// Op is a parsed command.
type Op uint8

const (
	OpNone  Op = iota
	OpError    // a reply-only outcome: write Command.Err (see Close, Swallow)
	OpGet
	OpGets
	OpGat
	OpGats
	OpTouch
	OpSet
	OpAdd
	OpReplace
	OpAppend
	OpPrepend
	OpCas
	OpDelete
	OpIncr
	OpDecr
	OpFlushAll
	OpVersion
	OpVerbosity
	OpQuit
	OpStats
	OpMetaGet
	OpMetaSet
	OpMetaDelete
	OpMetaArith
	OpMetaNoop
	OpMetaDebug
)

// Protocol limits (memcached's).
const (
	MaxKeyLen = 250
	// RelativeExpiryLimit: an exptime above it is an absolute unix time.
	RelativeExpiryLimit = 60 * 60 * 24 * 30
	maxTokens           = 24 // memcached's MAX_TOKENS for non-retrieval lines
)

// Limits bound what a request may announce or send.
type Limits struct {
	MaxLine     int // command line, without its retrieval key lists (memcached: 2048)
	MaxGetLine  int // get/gets/gat/gats line
	MaxItemSize int // largest data block
}

// DefaultLimits are memcached's defaults (-I 1m).
var DefaultLimits = Limits{MaxLine: 2048, MaxGetLine: 2 << 20, MaxItemSize: 1 << 20}

// Meta holds a meta command's flags.
type Meta struct {
	Has    uint64   // bit per flag letter present (see Flag)
	Tokens [][]byte // flag tokens in request order: letter + argument
	Opaque []byte   // O
	TTL    int64    // T
	Vivify int64    // N
	CASIn  uint64   // C
	CASNew uint64   // E
	Flags  uint32   // F
	Mode   byte     // M (first letter of the token)
	Delta  uint64   // D (default 1)
	Init   uint64   // J
	Recach int64    // R
}

func flagBit(c byte) uint64 {
	switch {
	case c >= 'A' && c <= 'Z':
		return 1 << (c - 'A')
	case c >= 'a' && c <= 'z':
		return 1 << (c - 'a' + 26)
	}
	return 0
}

// Flag reports whether meta flag c was given.
func (m *Meta) Flag(c byte) bool { return m.Has&flagBit(c) != 0 }

// Command is one parsed request. Byte slices alias the parsed buffer and
// are valid until it is reused; Parse resets every field it uses.
type Command struct {
	Op      Op
	Name    []byte // the command word
	Key     []byte // the key (decoded for meta b); for retrieval commands see NextKey
	RawKey  []byte // the key as sent (base64 for meta b)
	Flags   uint32
	Exptime int64
	CAS     uint64
	Delta   uint64
	Data    []byte
	NoReply bool
	Args    [][]byte // stats arguments
	Meta    Meta

	// Err is the reply line (without CRLF) when Op == OpError. Close asks
	// for the connection to be closed after it; Swallow is a number of
	// input bytes after the consumed ones to discard unread (the data
	// block of a too-large item). DeleteKey asks to delete Key (memcached
	// drops the old value when a set is refused as too large).
	Err       string
	Close     bool
	Swallow   int
	DeleteKey bool
	// Need is, when Parse returns 0, the number of bytes the buffer must
	// hold before it is worth parsing again (0: unknown, wait for a line).
	Need int

	keys   []byte // remaining retrieval key list
	toks   [maxTokens + 1][]byte
	keyBuf [MaxKeyLen]byte
	metaTk [maxTokens][]byte
}

// NextKey returns the next key of a retrieval command, or nil when done.
func (c *Command) NextKey() []byte {
	k := c.keys
	i := 0
	for i < len(k) && k[i] == ' ' {
		i++
	}
	k = k[i:]
	if len(k) == 0 {
		c.keys = nil
		return nil
	}
	j := bytes.IndexByte(k, ' ')
	if j < 0 {
		j = len(k)
	}
	c.keys = k[j:]
	return k[:j]
}

// EachKey calls fn for each key of a retrieval command NextKey has not
// returned yet, without consuming them; it stops when fn returns false.
func (c *Command) EachKey(fn func(key []byte) bool) {
	saved := c.keys
	for k := c.NextKey(); k != nil; k = c.NextKey() {
		if !fn(k) {
			break
		}
	}
	c.keys = saved
}

// Error strings (memcached's).
const (
	ErrGeneric      = "ERROR"
	ErrBadFormat    = "CLIENT_ERROR bad command line format"
	ErrBadChunk     = "CLIENT_ERROR bad data chunk"
	ErrLineTooLong  = "CLIENT_ERROR line too long"
	ErrTooLarge     = "SERVER_ERROR object too large for cache"
	ErrOOM          = "SERVER_ERROR out of memory storing object"
	ErrNonNumeric   = "CLIENT_ERROR cannot increment or decrement non-numeric value"
	ErrBadDelta     = "CLIENT_ERROR invalid numeric delta argument"
	ErrBadExptime   = "CLIENT_ERROR invalid exptime argument"
	ErrInvalidFlag  = "CLIENT_ERROR invalid flag"
	ErrDupFlag      = "CLIENT_ERROR duplicate flag"
	ErrBadToken     = "CLIENT_ERROR bad token in command line format"
	ErrDecodeKey    = "CLIENT_ERROR error decoding key"
	ErrBadMSMode    = "CLIENT_ERROR invalid mode for ms M token"
	ErrBadMAMode    = "CLIENT_ERROR invalid mode for ma M token"
	ErrDeleteFormat = "CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]"
)

var retrievalPrefixes = [][]byte{[]byte("get "), []byte("gets "), []byte("gat "), []byte("gats ")}

func isRetrieval(b []byte) bool {
	for _, p := range retrievalPrefixes {
		if bytes.HasPrefix(b, p) {
			return true
		}
	}
	return false
}

// ValidKey reports whether k is a legal key: 1..250 bytes, no spaces or
// control characters.
func ValidKey(k []byte) bool {
	if len(k) == 0 || len(k) > MaxKeyLen {
		return false
	}
	for _, c := range k {
		if c <= ' ' || c == 0x7f {
			return false
		}
	}
	return true
}

// Parse parses the first request in buf into c and returns the bytes it
// consumed; 0 means the request is incomplete (see c.Need). It never
// fails: a bad request comes back as Op == OpError with the reply in Err.
func Parse(buf []byte, c *Command, lim Limits) int {
	c.Op, c.Err, c.Close, c.Swallow, c.DeleteKey, c.Need = OpNone, "", false, 0, false, 0
	c.Key, c.RawKey, c.Data, c.NoReply, c.Args, c.keys = nil, nil, nil, false, nil, nil
	c.Flags, c.Exptime, c.CAS, c.Delta = 0, 0, 0, 0
	nl := bytes.IndexByte(buf, '\n')
	limit := lim.MaxLine
	if isRetrieval(buf) {
		limit = lim.MaxGetLine
	}
	if nl < 0 {
		if len(buf) > limit {
			return c.fail(len(buf), ErrLineTooLong, true)
		}
		return 0
	}
	if nl > limit {
		return c.fail(nl+1, ErrLineTooLong, true)
	}
	line := buf[:nl]
	if len(line) > 0 && line[len(line)-1] == '\r' {
		line = line[:len(line)-1]
	}
	n := nl + 1
	// The command word.
	i := 0
	for i < len(line) && line[i] == ' ' {
		i++
	}
	j := i
	for j < len(line) && line[j] != ' ' {
		j++
	}
	c.Name = line[i:j]
	rest := line[j:]
	switch string(c.Name) {
	case "get":
		return c.retrieval(OpGet, rest, n, false)
	case "gets":
		return c.retrieval(OpGets, rest, n, false)
	case "gat":
		return c.retrieval(OpGat, rest, n, true)
	case "gats":
		return c.retrieval(OpGats, rest, n, true)
	}
	toks, ok := c.tokenize(line)
	if !ok {
		return c.fail(n, ErrGeneric, false)
	}
	switch string(c.Name) {
	case "set":
		return c.storage(OpSet, toks, buf, n, lim)
	case "add":
		return c.storage(OpAdd, toks, buf, n, lim)
	case "replace":
		return c.storage(OpReplace, toks, buf, n, lim)
	case "append":
		return c.storage(OpAppend, toks, buf, n, lim)
	case "prepend":
		return c.storage(OpPrepend, toks, buf, n, lim)
	case "cas":
		return c.storage(OpCas, toks, buf, n, lim)
	case "delete":
		// delete <key> [0] [noreply]
		if len(toks) < 2 || len(toks) > 4 {
			return c.fail(n, ErrGeneric, false)
		}
		if !ValidKey(toks[1]) {
			return c.fail(n, ErrBadFormat, false)
		}
		c.Op, c.Key = OpDelete, toks[1]
		extra := toks[2:]
		if len(extra) > 0 && string(extra[len(extra)-1]) == "noreply" {
			c.NoReply = true
			extra = extra[:len(extra)-1]
		}
		if len(extra) > 1 || (len(extra) == 1 && string(extra[0]) != "0") {
			return c.fail(n, ErrDeleteFormat, false)
		}
		return n
	case "incr", "decr":
		if len(toks) != 3 && len(toks) != 4 {
			return c.fail(n, ErrGeneric, false)
		}
		if !ValidKey(toks[1]) {
			return c.fail(n, ErrBadFormat, false)
		}
		c.Op, c.Key = OpIncr, toks[1]
		if c.Name[0] == 'd' {
			c.Op = OpDecr
		}
		c.NoReply = c.noreply(toks, 4)
		d, ok := ParseUint(toks[2])
		if !ok {
			return c.fail(n, ErrBadDelta, false)
		}
		c.Delta = d
		return n
	case "touch":
		if len(toks) != 3 && len(toks) != 4 {
			return c.fail(n, ErrGeneric, false)
		}
		if !ValidKey(toks[1]) {
			return c.fail(n, ErrBadFormat, false)
		}
		c.Op, c.Key = OpTouch, toks[1]
		c.NoReply = c.noreply(toks, 4)
		e, ok := ParseInt(toks[2])
		if !ok {
			return c.fail(n, ErrBadExptime, false)
		}
		c.Exptime = e
		return n
	case "flush_all":
		if len(toks) > 3 {
			return c.fail(n, ErrGeneric, false)
		}
		c.Op = OpFlushAll
		args := toks[1:]
		if len(args) > 0 && string(args[len(args)-1]) == "noreply" {
			c.NoReply = true
			args = args[:len(args)-1]
		}
		if len(args) > 1 {
			return c.fail(n, ErrGeneric, false)
		}
		if len(args) == 1 {
			e, ok := ParseInt(args[0])
			if !ok {
				return c.fail(n, ErrBadExptime, false)
			}
			c.Exptime = e
		}
		return n
	case "version":
		c.Op = OpVersion // memcached ignores any arguments
		return n
	case "quit":
		if len(toks) != 1 {
			return c.fail(n, ErrGeneric, false)
		}
		c.Op = OpQuit
		return n
	case "verbosity":
		if len(toks) != 2 && len(toks) != 3 {
			return c.fail(n, ErrGeneric, false)
		}
		c.Op = OpVerbosity
		c.NoReply = string(toks[len(toks)-1]) == "noreply"
		return n
	case "stats":
		c.Op, c.Args = OpStats, toks[1:]
		return n
	case "mn":
		c.Op = OpMetaNoop
		return n
	case "me":
		if len(toks) < 2 {
			return c.fail(n, ErrBadFormat, false)
		}
		c.Op = OpMetaDebug
		if !c.metaKey(toks[1], len(toks) > 2 && string(toks[2]) == "b") {
			return c.fail(n, c.Err, false)
		}
		return n
	case "mg":
		return c.meta(OpMetaGet, toks, 2, "bcfhklOqstuvENRT", buf, n, lim)
	case "ms":
		return c.meta(OpMetaSet, toks, 3, "bcCEFIkOqsSTMN", buf, n, lim)
	case "md":
		return c.meta(OpMetaDelete, toks, 2, "bCEIkOqTx", buf, n, lim)
	case "ma":
		return c.meta(OpMetaArith, toks, 2, "bCENJDTMqOtcvk", buf, n, lim)
	}
	return c.fail(n, ErrGeneric, false)
}

func (c *Command) fail(n int, msg string, close bool) int {
	c.Op, c.Err, c.Close = OpError, msg, close
	c.keys = nil // a failed command has no keys to serve (NextKey returns nil)
	return n
}

// tokenize splits line on spaces into c.toks; false when there are more
// than memcached accepts.
func (c *Command) tokenize(line []byte) ([][]byte, bool) {
	toks := c.toks[:0]
	i := 0
	for i < len(line) {
		if line[i] == ' ' {
			i++
			continue
		}
		j := i
		for j < len(line) && line[j] != ' ' {
			j++
		}
		if len(toks) == maxTokens {
			return nil, false
		}
		toks = append(toks, line[i:j])
		i = j
	}
	return toks, true
}

func (c *Command) noreply(toks [][]byte, at int) bool {
	return len(toks) == at && string(toks[at-1]) == "noreply"
}

func (c *Command) retrieval(op Op, rest []byte, n int, withExp bool) int {
	c.Op = op
	if withExp {
		i := 0
		for i < len(rest) && rest[i] == ' ' {
			i++
		}
		j := i
		for j < len(rest) && rest[j] != ' ' {
			j++
		}
		if i == j {
			return c.fail(n, ErrGeneric, false)
		}
		e, ok := ParseInt(rest[i:j])
		if !ok {
			return c.fail(n, ErrBadExptime, false)
		}
		c.Exptime = e
		rest = rest[j:]
	}
	// Validate every key before any is served: a bad key anywhere fails
	// the whole command (memcached may have answered the keys before it).
	c.keys = rest
	nk := 0
	for k := c.NextKey(); k != nil; k = c.NextKey() {
		if !ValidKey(k) {
			return c.fail(n, ErrBadFormat, false)
		}
		nk++
	}
	if nk == 0 {
		return c.fail(n, ErrGeneric, false)
	}
	c.keys = rest
	return n
}

// storage parses set/add/replace/append/prepend/cas and their data block.
func (c *Command) storage(op Op, toks [][]byte, buf []byte, n int, lim Limits) int {
	want := 5
	if op == OpCas {
		want = 6
	}
	if len(toks) != want && len(toks) != want+1 {
		return c.fail(n, ErrGeneric, false)
	}
	c.Op = op
	c.NoReply = c.noreply(toks, want+1)
	if len(toks) == want+1 && !c.NoReply {
		return c.fail(n, ErrGeneric, false)
	}
	fl, ok1 := ParseUint(toks[2])
	exp, ok2 := ParseInt(toks[3])
	size, ok3 := ParseInt(toks[4])
	if !ok1 || !ok2 || !ok3 || fl > 1<<32-1 || size < 0 || size > 1<<31-3 || !ValidKey(toks[1]) {
		return c.fail(n, ErrBadFormat, false)
	}
	if op == OpCas {
		cas, ok := ParseUint(toks[5])
		if !ok {
			return c.fail(n, ErrBadFormat, false)
		}
		c.CAS = cas
	}
	c.Key, c.RawKey, c.Flags, c.Exptime = toks[1], toks[1], uint32(fl), exp
	return c.dataBlock(buf, n, int(size), lim, op == OpSet)
}

// dataBlock reads the size-byte block after the line (n bytes).
func (c *Command) dataBlock(buf []byte, n, size int, lim Limits, dropOnTooLarge bool) int {
	if size > lim.MaxItemSize {
		c.Op, c.Err, c.Swallow, c.DeleteKey = OpError, ErrTooLarge, size+2, dropOnTooLarge
		return n
	}
	total := n + size + 2
	if len(buf) < total {
		c.Need = total
		return 0
	}
	if buf[total-2] != '\r' || buf[total-1] != '\n' {
		c.Op, c.Err = OpError, ErrBadChunk
		return total
	}
	c.Data = buf[n : n+size]
	return total
}

// metaKey sets Key (base64-decoded when b64) and RawKey.
func (c *Command) metaKey(k []byte, b64 bool) bool {
	c.RawKey = k
	if !b64 {
		if !ValidKey(k) {
			c.Err = ErrBadFormat
			return false
		}
		c.Key = k
		return true
	}
	if len(k) > base64.StdEncoding.EncodedLen(MaxKeyLen) {
		c.Err = ErrBadFormat
		return false
	}
	m, err := base64.StdEncoding.Decode(c.keyBuf[:], k)
	if err != nil || m == 0 {
		c.Err = ErrDecodeKey
		return false
	}
	c.Key = c.keyBuf[:m]
	return true
}

// meta parses mg/ms/md/ma: key, for ms the data length, then flags.
func (c *Command) meta(op Op, toks [][]byte, first int, allowed string, buf []byte, n int, lim Limits) int {
	m := &c.Meta
	*m = Meta{Tokens: c.metaTk[:0], Delta: 1}
	c.Op = op
	if len(toks) < first {
		return c.fail(n, ErrBadFormat, false)
	}
	size := -1
	if op == OpMetaSet {
		s, ok := ParseInt(toks[2])
		if !ok || s < 0 || s > 1<<31-3 {
			return c.fail(n, ErrBadChunk, false)
		}
		size = int(s)
	}
	// Flag errors on ms still consume the data block (memcached swallows it).
	bad := func(msg string) int {
		if size >= 0 {
			if size > lim.MaxItemSize {
				c.Op, c.Err, c.Swallow = OpError, msg, size+2
				return n
			}
			total := n + size + 2
			if len(buf) < total {
				c.Op, c.Need = OpNone, total
				return 0
			}
			return c.fail(total, msg, false)
		}
		return c.fail(n, msg, false)
	}
	b64 := false
	for _, t := range toks[first:] {
		if len(t) == 0 {
			continue
		}
		bit := flagBit(t[0])
		if bit == 0 || strings.IndexByte(allowed, t[0]) < 0 {
			return bad(ErrInvalidFlag)
		}
		if m.Has&bit != 0 {
			return bad(ErrDupFlag)
		}
		m.Has |= bit
		m.Tokens = append(m.Tokens, t)
		arg := t[1:]
		ok := true
		switch t[0] {
		case 'b':
			b64 = true
		case 'O':
			if len(arg) > 32 {
				ok = false
			}
			m.Opaque = arg
		case 'T':
			m.TTL, ok = ParseInt(arg)
		case 'N':
			m.Vivify, ok = ParseInt(arg)
		case 'R':
			m.Recach, ok = ParseInt(arg)
		case 'C':
			m.CASIn, ok = ParseUint(arg)
		case 'E':
			m.CASNew, ok = ParseUint(arg)
		case 'F':
			var f uint64
			f, ok = ParseUint(arg)
			ok = ok && f <= 1<<32-1
			m.Flags = uint32(f)
		case 'D':
			m.Delta, ok = ParseUint(arg)
		case 'J':
			m.Init, ok = ParseUint(arg)
		case 'M':
			ok = len(arg) > 0
			if ok {
				m.Mode = arg[0]
			}
		}
		if !ok {
			return bad(ErrBadToken)
		}
	}
	if !c.metaKey(toks[1], b64) {
		return bad(c.Err)
	}
	c.NoReply = m.Flag('q')
	if size >= 0 {
		return c.dataBlock(buf, n, size, lim, false)
	}
	return n
}

// ParseUint parses a decimal uint64 (digits only).
func ParseUint(b []byte) (uint64, bool) {
	if len(b) == 0 || len(b) > 20 {
		return 0, false
	}
	var v uint64
	for _, ch := range b {
		if ch < '0' || ch > '9' {
			return 0, false
		}
		d := uint64(ch - '0')
		if v > (1<<64-1-d)/10 {
			return 0, false
		}
		v = v*10 + d
	}
	return v, true
}

// ParseInt parses a decimal int64 with an optional sign.
func ParseInt(b []byte) (int64, bool) {
	neg := false
	if len(b) > 0 && (b[0] == '-' || b[0] == '+') {
		neg = b[0] == '-'
		b = b[1:]
	}
	u, ok := ParseUint(b)
	if !ok || u > 1<<63 || (!neg && u == 1<<63) {
		return 0, false
	}
	if neg {
		return -int64(u), true
	}
	return int64(u), true
}
