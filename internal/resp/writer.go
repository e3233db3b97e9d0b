package resp

import (
	"math"
	"strconv"
)

// Writer appends replies to B in the protocol version Proto (2 or 3).
// It never allocates except to grow B.
type Writer struct {
	B     []byte
	Proto int
}

func (w *Writer) Simple(s string) { w.B = append(append(append(w.B, '+'), s...), '\r', '\n') }
func (w *Writer) OK()             { w.B = append(w.B, "+OK\r\n"...) }

// Error writes an error line; msg must carry its prefix (ERR, WRONGTYPE, ...).
// CR and LF in msg are replaced by spaces so the frame stays valid.
func (w *Writer) Error(msg string) {
	w.B = append(w.B, '-')
	for i := 0; i < len(msg); i++ {
		c := msg[i]
		if c == '\r' || c == '\n' {
			c = ' '
		}
		w.B = append(w.B, c)
	}
	w.B = append(w.B, '\r', '\n')
}

func (w *Writer) Int(v int64) {
	w.B = append(w.B, ':')
	w.B = strconv.AppendInt(w.B, v, 10)
	w.B = append(w.B, '\r', '\n')
}

func (w *Writer) Bulk(b []byte) {
	w.B = append(w.B, '$')
	w.B = strconv.AppendInt(w.B, int64(len(b)), 10)
	w.B = append(w.B, '\r', '\n')
	w.B = append(w.B, b...)
	w.B = append(w.B, '\r', '\n')
}

func (w *Writer) BulkString(s string) {
	w.B = append(w.B, '$')
	w.B = strconv.AppendInt(w.B, int64(len(s)), 10)
	w.B = append(w.B, '\r', '\n')
	w.B = append(w.B, s...)
	w.B = append(w.B, '\r', '\n')
}

// BulkInt writes an integer as a bulk string (e.g. INCRBYFLOAT-like replies).
func (w *Writer) BulkInt(v int64) {
	var tmp [24]byte
	w.Bulk(strconv.AppendInt(tmp[:0], v, 10))
}

// Null is the null bulk string ($-1) in RESP2, _ in RESP3.
func (w *Writer) Null() {
	if w.Proto >= 3 {
		w.B = append(w.B, "_\r\n"...)
	} else {
		w.B = append(w.B, "$-1\r\n"...)
	}
}

// NullArray is *-1 in RESP2, _ in RESP3.
func (w *Writer) NullArray() {
	if w.Proto >= 3 {
		w.B = append(w.B, "_\r\n"...)
	} else {
		w.B = append(w.B, "*-1\r\n"...)
	}
}

func (w *Writer) header(c byte, n int) {
	w.B = append(w.B, c)
	w.B = strconv.AppendInt(w.B, int64(n), 10)
	w.B = append(w.B, '\r', '\n')
}

func (w *Writer) Array(n int) { w.header('*', n) }

// Map announces n key/value pairs (2n elements in RESP2).
func (w *Writer) Map(n int) {
	if w.Proto >= 3 {
		w.header('%', n)
	} else {
		w.header('*', 2*n)
	}
}

func (w *Writer) Set(n int) {
	if w.Proto >= 3 {
		w.header('~', n)
	} else {
		w.header('*', n)
	}
}

// Push announces an out-of-band message (pub/sub) of n elements.
func (w *Writer) Push(n int) {
	if w.Proto >= 3 {
		w.header('>', n)
	} else {
		w.header('*', n)
	}
}

// Double writes a float: a bulk string in RESP2, ',' in RESP3.
func (w *Writer) Double(f float64) {
	var tmp [32]byte
	b := AppendFloat(tmp[:0], f)
	if w.Proto >= 3 {
		w.B = append(w.B, ',')
		w.B = append(w.B, b...)
		w.B = append(w.B, '\r', '\n')
		return
	}
	w.Bulk(b)
}

func (w *Writer) Bool(v bool) {
	if w.Proto >= 3 {
		if v {
			w.B = append(w.B, "#t\r\n"...)
		} else {
			w.B = append(w.B, "#f\r\n"...)
		}
		return
	}
	if v {
		w.B = append(w.B, ":1\r\n"...)
	} else {
		w.B = append(w.B, ":0\r\n"...)
	}
}

// Verbatim writes a verbatim string (RESP3 "=", format "txt") or a bulk string.
func (w *Writer) Verbatim(s string) {
	if w.Proto >= 3 {
		w.header('=', len(s)+4)
		w.B = append(w.B, "txt:"...)
		w.B = append(w.B, s...)
		w.B = append(w.B, '\r', '\n')
		return
	}
	w.BulkString(s)
}

// Raw appends pre-encoded bytes.
func (w *Writer) Raw(b []byte) { w.B = append(w.B, b...) }

// AppendFloat formats f the way Redis does for replies: shortest
// representation that round-trips, "inf"/"-inf", integers without ".0".
func AppendFloat(b []byte, f float64) []byte {
	switch {
	case math.IsInf(f, 1):
		return append(b, "inf"...)
	case math.IsInf(f, -1):
		return append(b, "-inf"...)
	case math.IsNaN(f):
		return append(b, "nan"...)
	}
	return strconv.AppendFloat(b, f, 'g', -1, 64)
}
