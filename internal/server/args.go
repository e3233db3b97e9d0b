package server

import (
	"math"
	"strconv"
	"strings"
)

// parseInt parses a Redis integer argument: optional '-', digits, no
// spaces or '+', fits in int64 (string2ll semantics).
func parseInt(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 20 {
		return 0, false
	}
	neg := false
	i := 0
	if b[0] == '-' {
		neg = true
		i = 1
		if len(b) == 1 {
			return 0, false
		}
	}
	if b[i] == '0' && (len(b) > i+1 || neg) {
		return 0, false // no leading zeros and no "-0", as Redis
	}
	var v uint64
	for ; i < len(b); i++ {
		c := b[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		if v > (math.MaxUint64-uint64(c-'0'))/10 {
			return 0, false
		}
		v = v*10 + uint64(c-'0')
	}
	if neg {
		if v > 1<<63 {
			return 0, false
		}
		return -int64(v), true
	}
	if v > math.MaxInt64 {
		return 0, false
	}
	return int64(v), true
}

// parseFloat parses a Redis float argument ("inf", "-inf" allowed, NaN not).
func parseFloat(b []byte) (float64, bool) {
	if len(b) == 0 || len(b) > 256 {
		return 0, false
	}
	s := string(b)
	if s[0] == ' ' || s[len(s)-1] == ' ' {
		return 0, false
	}
	switch strings.ToLower(s) {
	case "inf", "+inf", "infinity", "+infinity":
		return math.Inf(1), true
	case "-inf", "-infinity":
		return math.Inf(-1), true
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(f) {
		if ne, ok := err.(*strconv.NumError); ok && ne.Err == strconv.ErrRange {
			return 0, false
		}
		return 0, false
	}
	return f, true
}

// intArg parses args[i] as an integer or writes the standard error.
func (c *Ctx) intArg(i int) (int64, bool) {
	v, ok := parseInt(c.args[i])
	if !ok {
		c.w.Error(errNotInt)
	}
	return v, ok
}

func (c *Ctx) floatArg(i int) (float64, bool) {
	v, ok := parseFloat(c.args[i])
	if !ok {
		c.w.Error(errNotFloat)
	}
	return v, ok
}

// eq compares an argument case-insensitively with an ASCII lower-case word.
func eq(b []byte, lower string) bool {
	if len(b) != len(lower) {
		return false
	}
	for i := range b {
		c := b[i]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

// randCountOK bounds the reply of a random-with-repeats command
// (SRANDMEMBER, HRANDFIELD, ZRANDMEMBER with a negative count): redis
// streams such replies, Shoal builds them in memory, so their element
// count is capped by proto-max-multibulk-len like a request's.
func (c *Ctx) randCountOK(count int64) bool {
	if count < 0 && -count > c.srv.limits.Load().proto.MaxMultibulkLen {
		c.w.Error("ERR value is out of range: a negative count may ask for at most proto-max-multibulk-len elements")
		return false
	}
	return true
}
