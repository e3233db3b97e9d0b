package memcache

import "strconv"

// Reply appenders. Each appends one complete reply element to b.

// AppendLine appends s and CRLF.
func AppendLine(b []byte, s string) []byte { return append(append(b, s...), '\r', '\n') }

// AppendValue appends one "VALUE <key> <flags> <bytes> [<cas>]" item with
// its data block (get/gets/gat/gats).
func AppendValue(b, key []byte, flags uint32, data []byte, cas uint64, withCAS bool) []byte {
	b = append(b, "VALUE "...)
	b = append(b, key...)
	b = append(b, ' ')
	b = strconv.AppendUint(b, uint64(flags), 10)
	b = append(b, ' ')
	b = strconv.AppendInt(b, int64(len(data)), 10)
	if withCAS {
		b = append(b, ' ')
		b = strconv.AppendUint(b, cas, 10)
	}
	b = append(b, '\r', '\n')
	b = append(b, data...)
	return append(b, '\r', '\n')
}

// AppendUint appends a decimal number line (incr/decr).
func AppendUint(b []byte, v uint64) []byte {
	b = strconv.AppendUint(b, v, 10)
	return append(b, '\r', '\n')
}

// AppendStat appends "STAT <name> <value>".
func AppendStat(b []byte, name, value string) []byte {
	b = append(b, "STAT "...)
	b = append(b, name...)
	b = append(b, ' ')
	b = append(b, value...)
	return append(b, '\r', '\n')
}

// AppendStatInt appends "STAT <name> <n>".
func AppendStatInt(b []byte, name string, v int64) []byte {
	b = append(b, "STAT "...)
	b = append(b, name...)
	b = append(b, ' ')
	b = strconv.AppendInt(b, v, 10)
	return append(b, '\r', '\n')
}

// AppendFlag appends a meta return flag: " <c><v>".
func AppendFlag(b []byte, c byte, v []byte) []byte {
	return append(append(b, ' ', c), v...)
}

// AppendFlagUint appends " <c><n>".
func AppendFlagUint(b []byte, c byte, v uint64) []byte {
	return strconv.AppendUint(append(b, ' ', c), v, 10)
}

// AppendFlagInt appends " <c><n>".
func AppendFlagInt(b []byte, c byte, v int64) []byte {
	return strconv.AppendInt(append(b, ' ', c), v, 10)
}
