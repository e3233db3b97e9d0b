package engine

import "bytes"

// List is a deque of byte strings: a ring buffer whose capacity is a power
// of two, so push and pop at both ends and access by index are O(1).
// Insertion and removal in the middle move the shorter side. The ring
// halves when it is a quarter full, so a drained list gives memory back.
type List struct {
	buf   [][]byte // len(buf) is 0 or a power of two
	head  int      // index in buf of element 0
	n     int
	bytes int64 // payload bytes + per-element overhead
}

const (
	// listElemOverhead approximates one element's cost beyond its bytes:
	// its slot in the ring and allocator rounding.
	listElemOverhead = 16
	listHeader       = 48
	listMinCap       = 4
)

// NewList returns an empty list.
func NewList() *List { return &List{} }

func (l *List) Len() int { return l.n }

// MemSize is the accounted size of the list's value.
func (l *List) MemSize() int64 { return l.bytes + listHeader }

func (l *List) idx(i int) int { return (l.head + i) & (len(l.buf) - 1) }

// At returns element i (0 <= i < Len). The slice is owned by the list.
func (l *List) At(i int) []byte { return l.buf[l.idx(i)] }

// Index resolves a Redis index (negative counts from the tail) and reports
// whether it is in range.
func (l *List) Index(i int64) (int, bool) {
	if i < 0 {
		i += int64(l.n)
	}
	if i < 0 || i >= int64(l.n) {
		return 0, false
	}
	return int(i), true
}

// resize moves the elements into a fresh ring of capacity c (>= n).
func (l *List) resize(c int) {
	nb := make([][]byte, c)
	if l.n > 0 {
		if l.head+l.n <= len(l.buf) {
			copy(nb, l.buf[l.head:l.head+l.n])
		} else {
			k := copy(nb, l.buf[l.head:])
			copy(nb[k:], l.buf[:l.n-k])
		}
	}
	l.buf = nb
	l.head = 0
}

func (l *List) grow() {
	if l.n == len(l.buf) {
		l.resize(max(listMinCap, 2*len(l.buf)))
	}
}

func (l *List) shrink() {
	if len(l.buf) > listMinCap && l.n <= len(l.buf)/4 {
		l.resize(max(listMinCap, len(l.buf)/2))
	}
}

func elemCost(v []byte) int64 { return int64(len(v)) + listElemOverhead }

// PushFront prepends a copy of v.
func (l *List) PushFront(v []byte) {
	l.grow()
	l.head = (l.head - 1) & (len(l.buf) - 1)
	l.buf[l.head] = append([]byte(nil), v...)
	l.n++
	l.bytes += elemCost(v)
}

// PushBack appends a copy of v.
func (l *List) PushBack(v []byte) {
	l.grow()
	l.buf[l.idx(l.n)] = append([]byte(nil), v...)
	l.n++
	l.bytes += elemCost(v)
}

// Push adds a copy of v at the head (front true) or the tail.
func (l *List) Push(v []byte, front bool) {
	if front {
		l.PushFront(v)
	} else {
		l.PushBack(v)
	}
}

// PopFront removes and returns the first element (nil if empty). The
// caller owns the returned slice.
func (l *List) PopFront() []byte {
	if l.n == 0 {
		return nil
	}
	v := l.buf[l.head]
	l.buf[l.head] = nil
	l.head = (l.head + 1) & (len(l.buf) - 1)
	l.n--
	l.bytes -= elemCost(v)
	l.shrink()
	return v
}

// PopBack removes and returns the last element (nil if empty).
func (l *List) PopBack() []byte {
	if l.n == 0 {
		return nil
	}
	i := l.idx(l.n - 1)
	v := l.buf[i]
	l.buf[i] = nil
	l.n--
	l.bytes -= elemCost(v)
	l.shrink()
	return v
}

// Pop removes an element from the head (front true) or the tail.
func (l *List) Pop(front bool) []byte {
	if front {
		return l.PopFront()
	}
	return l.PopBack()
}

// Set replaces element i (0 <= i < Len) with a copy of v.
func (l *List) Set(i int, v []byte) {
	j := l.idx(i)
	old := l.buf[j]
	l.bytes += int64(len(v) - len(old))
	if cap(old) >= len(v) && cap(old) <= 2*len(v)+16 {
		l.buf[j] = append(old[:0], v...)
		return
	}
	l.buf[j] = append([]byte(nil), v...)
}

// Insert puts a copy of v before element i (0 <= i <= Len).
func (l *List) Insert(i int, v []byte) {
	if i < l.n/2 {
		l.PushFront(v) // old element j is now at j+1: move 1..i down to 0..i-1
		nv := l.At(0)
		for k := 0; k < i; k++ {
			l.buf[l.idx(k)] = l.buf[l.idx(k+1)]
		}
		l.buf[l.idx(i)] = nv
		return
	}
	l.PushBack(v) // move i..n-2 up to i+1..n-1
	nv := l.At(l.n - 1)
	for k := l.n - 1; k > i; k-- {
		l.buf[l.idx(k)] = l.buf[l.idx(k-1)]
	}
	l.buf[l.idx(i)] = nv
}

// Remove deletes element i (0 <= i < Len).
func (l *List) Remove(i int) {
	v := l.At(i)
	if i < l.n/2 {
		for k := i; k > 0; k-- {
			l.buf[l.idx(k)] = l.buf[l.idx(k-1)]
		}
		l.buf[l.head] = v
		l.PopFront()
		return
	}
	for k := i; k < l.n-1; k++ {
		l.buf[l.idx(k)] = l.buf[l.idx(k+1)]
	}
	l.buf[l.idx(l.n-1)] = v
	l.PopBack()
}

// Rem removes elements equal to v: the first count from the head when
// count > 0, the last -count from the tail when count < 0, all when 0.
// It returns how many were removed. One pass, compacting in place.
func (l *List) Rem(v []byte, count int64) int {
	limit := count
	if limit < 0 {
		limit = -limit
	}
	removed := 0
	keep := func(e []byte) bool {
		if (limit == 0 || int64(removed) < limit) && bytes.Equal(e, v) {
			removed++
			l.bytes -= elemCost(e)
			return false
		}
		return true
	}
	if count >= 0 {
		w := 0
		for r := 0; r < l.n; r++ {
			if e := l.At(r); keep(e) {
				l.buf[l.idx(w)] = e
				w++
			}
		}
		for k := w; k < l.n; k++ {
			l.buf[l.idx(k)] = nil
		}
		l.n = w
	} else {
		w := l.n - 1
		for r := l.n - 1; r >= 0; r-- {
			if e := l.At(r); keep(e) {
				l.buf[l.idx(w)] = e
				w--
			}
		}
		for k := 0; k <= w; k++ {
			l.buf[l.idx(k)] = nil
		}
		if len(l.buf) > 0 {
			l.head = l.idx(w + 1)
		}
		l.n -= w + 1
	}
	l.shrink()
	return removed
}

// Trim removes left elements from the head and right from the tail.
func (l *List) Trim(left, right int) {
	if left+right >= l.n {
		l.Clear()
		return
	}
	for ; left > 0; left-- {
		v := l.buf[l.head]
		l.buf[l.head] = nil
		l.head = (l.head + 1) & (len(l.buf) - 1)
		l.n--
		l.bytes -= elemCost(v)
	}
	for ; right > 0; right-- {
		i := l.idx(l.n - 1)
		l.bytes -= elemCost(l.buf[i])
		l.buf[i] = nil
		l.n--
	}
	for len(l.buf) > listMinCap && l.n <= len(l.buf)/4 {
		l.shrink()
	}
}

// Clear removes every element.
func (l *List) Clear() {
	l.buf = nil
	l.head, l.n, l.bytes = 0, 0, 0
}

// MaxElemLen is the longest element.
func (l *List) MaxElemLen() int {
	m := 0
	for i := 0; i < l.n; i++ {
		m = max(m, len(l.At(i)))
	}
	return m
}

// Clone returns a deep copy.
func (l *List) Clone() *List {
	c := &List{bytes: l.bytes, n: l.n}
	if l.n > 0 {
		c.buf = make([][]byte, len(l.buf))
		for i := 0; i < l.n; i++ {
			c.buf[i] = append([]byte(nil), l.At(i)...)
		}
	}
	return c
}
