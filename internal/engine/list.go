package engine

import "bytes"

// List is a deque of byte strings packed into nodes, as redis's quicklist:
// each node holds up to listNodeElems elements (listNodeBytes bytes) back
// to back in one byte slice, with their boundaries in a uint32 slice. A
// node's two slices hold no pointers, so a list of millions of elements is
// a few thousand objects for the garbage collector instead of millions, and
// a push copies the element into free room of the end node instead of
// allocating it.
//
// Nodes fill from both ends (the head node grows towards the front, the
// tail node towards the back), so push and pop at either end are O(1).
// Access by index walks nodes from the nearer end (O(n/listNodeElems));
// Range iterates in order. Changes in the middle (LSET with another
// length, LINSERT, LREM) repack the one node they touch.
//
// Slices returned by At, Range and Pop point into the list's storage: they
// are valid until the list is next changed by anything but a pop.
type List struct {
	nodes []*listNode // ring of nodes; len is 0 or a power of two
	nhead int         // index in nodes of node 0
	nn    int         // number of nodes
	n     int         // number of elements
	bytes int64       // payload bytes + per-element overhead
}

// listNode holds elements lo..hi-1: element i is data[offs[i]:offs[i+1]].
// Free room lies in data[:offs[lo]] / offs[:lo] (front) and beyond
// offs[hi] / hi+1 (back).
type listNode struct {
	data   []byte
	offs   []uint32
	lo, hi int
}

const (
	// listElemOverhead approximates one element's cost beyond its bytes:
	// its boundary, free room and its share of the node.
	listElemOverhead = 8
	listHeader       = 48
	listNodeElems    = 128
	listNodeBytes    = 8 << 10
	listMinCap       = 4
)

// NewList returns an empty list.
func NewList() *List { return &List{} }

func (l *List) Len() int { return l.n }

// MemSize is the accounted size of the list's value.
func (l *List) MemSize() int64 { return l.bytes + listHeader }

func elemCost(v []byte) int64 { return int64(len(v)) + listElemOverhead }

func (nd *listNode) count() int { return nd.hi - nd.lo }

func (nd *listNode) used() int { return int(nd.offs[nd.hi] - nd.offs[nd.lo]) }

func (nd *listNode) at(j int) []byte {
	return nd.data[nd.offs[nd.lo+j]:nd.offs[nd.lo+j+1]:nd.offs[nd.lo+j+1]]
}

// fits reports whether v may join the node (an empty node takes anything).
func (nd *listNode) fits(v []byte) bool {
	c := nd.count()
	return c == 0 || (c < listNodeElems && nd.used()+len(v) <= listNodeBytes)
}

// newListNode returns a node holding elems, with room for `room` more
// bytes and `slots` more elements at the front or at the back.
func newListNode(elems [][]byte, room, slots int, front bool) *listNode {
	nd := &listNode{}
	nd.fill(elems, room, slots, front)
	return nd
}

func (nd *listNode) fill(elems [][]byte, room, slots int, front bool) {
	size := 0
	for _, v := range elems {
		size += len(v)
	}
	nb := len(elems) + 1 + max(0, min(slots, listNodeElems-len(elems)))
	data, offs := make([]byte, size+room), make([]uint32, nb)
	lo, hi, pos := 0, len(elems), 0
	if front {
		lo, hi, pos = nb-1-len(elems), nb-1, room
	}
	for i, v := range elems {
		offs[lo+i] = uint32(pos)
		pos += copy(data[pos:], v)
	}
	offs[hi] = uint32(pos)
	*nd = listNode{data: data, offs: offs, lo: lo, hi: hi}
}

// elems returns the node's elements (slices into its data).
func (nd *listNode) elems() [][]byte {
	out := make([][]byte, nd.count())
	for j := range out {
		out[j] = nd.at(j)
	}
	return out
}

// regrow moves the node's elements into fresh slices with room for at
// least need bytes and one boundary on the given side.
func (nd *listNode) regrow(need int, front bool) {
	used, c := nd.used(), nd.count()
	room := max(need, used, 16)
	room = min(room, max(need, listNodeBytes-used))
	nd.fill(nd.elems(), room, max(c, 3), front)
}

func (nd *listNode) pushFront(v []byte) {
	if nd.lo == 0 || int(nd.offs[nd.lo]) < len(v) {
		nd.regrow(len(v), true)
	}
	start := int(nd.offs[nd.lo]) - len(v)
	copy(nd.data[start:], v)
	nd.lo--
	nd.offs[nd.lo] = uint32(start)
}

func (nd *listNode) pushBack(v []byte) {
	if nd.hi+1 >= len(nd.offs) || len(nd.data)-int(nd.offs[nd.hi]) < len(v) {
		nd.regrow(len(v), false)
	}
	end := int(nd.offs[nd.hi])
	copy(nd.data[end:], v)
	nd.hi++
	nd.offs[nd.hi] = uint32(end + len(v))
}

// node k (0 <= k < nn) of the ring.
func (l *List) node(k int) *listNode { return l.nodes[(l.nhead+k)&(len(l.nodes)-1)] }

func (l *List) setNode(k int, nd *listNode) { l.nodes[(l.nhead+k)&(len(l.nodes)-1)] = nd }

func (l *List) resizeRing(c int) {
	nb := make([]*listNode, c)
	for k := 0; k < l.nn; k++ {
		nb[k] = l.node(k)
	}
	l.nodes, l.nhead = nb, 0
}

func (l *List) growRing() {
	if l.nn == len(l.nodes) {
		l.resizeRing(max(listMinCap, 2*len(l.nodes)))
	}
}

func (l *List) shrinkRing() {
	if len(l.nodes) > listMinCap && l.nn <= len(l.nodes)/4 {
		l.resizeRing(max(listMinCap, len(l.nodes)/2))
	}
}

// insertNode puts nd before node k (0 <= k <= nn).
func (l *List) insertNode(k int, nd *listNode) {
	l.growRing()
	if k < l.nn/2 {
		l.nhead = (l.nhead - 1) & (len(l.nodes) - 1)
		l.nn++
		for i := 0; i < k; i++ {
			l.setNode(i, l.node(i+1))
		}
	} else {
		l.nn++
		for i := l.nn - 1; i > k; i-- {
			l.setNode(i, l.node(i-1))
		}
	}
	l.setNode(k, nd)
}

// removeNode deletes node k.
func (l *List) removeNode(k int) {
	if k < l.nn/2 {
		for i := k; i > 0; i-- {
			l.setNode(i, l.node(i-1))
		}
		l.setNode(0, nil)
		l.nhead = (l.nhead + 1) & (len(l.nodes) - 1)
	} else {
		for i := k; i < l.nn-1; i++ {
			l.setNode(i, l.node(i+1))
		}
		l.setNode(l.nn-1, nil)
	}
	l.nn--
	if l.nn == 0 {
		l.nodes, l.nhead = nil, 0
		return
	}
	l.shrinkRing()
}

// locate returns the node holding element i and i's index in it.
func (l *List) locate(i int) (k, j int) {
	if i < l.n/2 {
		for k = 0; ; k++ {
			c := l.node(k).count()
			if i < c {
				return k, i
			}
			i -= c
		}
	}
	i = l.n - 1 - i // position from the tail
	for k = l.nn - 1; ; k-- {
		c := l.node(k).count()
		if i < c {
			return k, c - 1 - i
		}
		i -= c
	}
}

// At returns element i (0 <= i < Len).
func (l *List) At(i int) []byte {
	k, j := l.locate(i)
	return l.node(k).at(j)
}

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

// Range calls fn with elements start..end-1 in order until fn returns
// false.
func (l *List) Range(start, end int, fn func(v []byte) bool) {
	if start >= end {
		return
	}
	k, j := l.locate(start)
	for i := start; i < end; {
		nd := l.node(k)
		for ; j < nd.count() && i < end; j, i = j+1, i+1 {
			if !fn(nd.at(j)) {
				return
			}
		}
		k, j = k+1, 0
	}
}

// RangeRev calls fn with elements end-1 down to start until fn returns
// false.
func (l *List) RangeRev(start, end int, fn func(v []byte) bool) {
	if start >= end {
		return
	}
	k, j := l.locate(end - 1)
	for i := end - 1; i >= start; {
		nd := l.node(k)
		for ; j >= 0 && i >= start; j, i = j-1, i-1 {
			if !fn(nd.at(j)) {
				return
			}
		}
		k--
		if k >= 0 {
			j = l.node(k).count() - 1
		}
	}
}

// PushFront prepends a copy of v.
func (l *List) PushFront(v []byte) {
	if l.nn == 0 || !l.node(0).fits(v) {
		l.insertNode(0, l.endNode(l.node0(), v, true))
	}
	l.node(0).pushFront(v)
	l.n++
	l.bytes += elemCost(v)
}

// PushBack appends a copy of v.
func (l *List) PushBack(v []byte) {
	if l.nn == 0 || !l.node(l.nn-1).fits(v) {
		var last *listNode
		if l.nn > 0 {
			last = l.node(l.nn - 1)
		}
		l.insertNode(l.nn, l.endNode(last, v, false))
	}
	l.node(l.nn - 1).pushBack(v)
	l.n++
	l.bytes += elemCost(v)
}

func (l *List) node0() *listNode {
	if l.nn == 0 {
		return nil
	}
	return l.node(0)
}

// endNode returns an empty node for a push of v at one end. Next to a
// full node (a list that keeps growing) it is sized like that node, so it
// fills without regrowing; the first node of a list starts small.
func (l *List) endNode(full *listNode, v []byte, front bool) *listNode {
	if full == nil || full.count() < listNodeElems/2 {
		return newListNode(nil, max(len(v), min(listNodeBytes/8, 4*len(v))), 3, front)
	}
	room := max(len(v), min(listNodeBytes, full.used()+full.used()/8))
	return newListNode(nil, room, listNodeElems, front)
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
// slice is valid until the list is next pushed to or changed.
func (l *List) PopFront() []byte {
	if l.n == 0 {
		return nil
	}
	nd := l.node(0)
	v := nd.at(0)
	nd.lo++
	if nd.count() == 0 {
		l.removeNode(0)
	}
	l.n--
	l.bytes -= elemCost(v)
	return v
}

// PopBack removes and returns the last element (nil if empty).
func (l *List) PopBack() []byte {
	if l.n == 0 {
		return nil
	}
	nd := l.node(l.nn - 1)
	v := nd.at(nd.count() - 1)
	nd.hi--
	if nd.count() == 0 {
		l.removeNode(l.nn - 1)
	}
	l.n--
	l.bytes -= elemCost(v)
	return v
}

// Pop removes an element from the head (front true) or the tail.
func (l *List) Pop(front bool) []byte {
	if front {
		return l.PopFront()
	}
	return l.PopBack()
}

// repack replaces node k by nodes holding elems (none when empty), split
// where the node limits say.
func (l *List) repack(k int, elems [][]byte) {
	l.removeNode(k)
	for len(elems) > 0 {
		n, size := 0, 0
		for n < len(elems) && n < listNodeElems && (n == 0 || size+len(elems[n]) <= listNodeBytes) {
			size += len(elems[n])
			n++
		}
		l.insertNode(k, newListNode(elems[:n], 0, 0, false))
		k++
		elems = elems[n:]
	}
}

// Set replaces element i (0 <= i < Len) with a copy of v.
func (l *List) Set(i int, v []byte) {
	k, j := l.locate(i)
	nd := l.node(k)
	old := nd.at(j)
	l.bytes += int64(len(v) - len(old))
	if len(old) == len(v) {
		copy(old, v)
		return
	}
	es := nd.elems()
	es[j] = v
	l.repack(k, es)
}

// Insert puts a copy of v before element i (0 <= i <= Len).
func (l *List) Insert(i int, v []byte) {
	switch {
	case i == 0:
		l.PushFront(v)
		return
	case i == l.n:
		l.PushBack(v)
		return
	}
	k, j := l.locate(i)
	es := l.node(k).elems()
	es = append(es[:j], append([][]byte{v}, es[j:]...)...)
	l.repack(k, es)
	l.n++
	l.bytes += elemCost(v)
}

// Remove deletes element i (0 <= i < Len).
func (l *List) Remove(i int) {
	k, j := l.locate(i)
	nd := l.node(k)
	v := nd.at(j)
	switch j {
	case 0:
		nd.lo++
	case nd.count() - 1:
		nd.hi--
	default:
		es := nd.elems()
		l.repack(k, append(es[:j], es[j+1:]...))
	}
	if nd.count() == 0 {
		l.removeNode(k)
	}
	l.n--
	l.bytes -= elemCost(v)
}

// Rem removes elements equal to v: the first count from the head when
// count > 0, the last -count from the tail when count < 0, all when 0.
// It returns how many were removed. Only nodes holding a removed element
// are repacked.
func (l *List) Rem(v []byte, count int64) int {
	limit := count
	if limit < 0 {
		limit = -limit
	}
	removed := 0
	done := func() bool { return limit != 0 && int64(removed) >= limit }
	visit := func(k int) {
		nd := l.node(k)
		var keep [][]byte
		hit := false
		for j := 0; j < nd.count(); j++ {
			e := nd.at(j)
			if !done() && bytes.Equal(e, v) {
				if !hit {
					keep = append(make([][]byte, 0, nd.count()), nd.elems()[:j]...)
					hit = true
				}
				removed++
				l.n--
				l.bytes -= elemCost(e)
				continue
			}
			if hit {
				keep = append(keep, e)
			}
		}
		if hit {
			l.repack(k, keep)
		}
	}
	if count >= 0 {
		for k := 0; k < l.nn && !done(); {
			before := l.nn
			visit(k)
			k += 1 + l.nn - before // skip the nodes a repack made
		}
	} else {
		for k := l.nn - 1; k >= 0 && !done(); k-- {
			// A node is visited tail first: collect its matches from the back.
			nd := l.node(k)
			es := nd.elems()
			hit := false
			for j := len(es) - 1; j >= 0 && !done(); j-- {
				if bytes.Equal(es[j], v) {
					removed++
					l.n--
					l.bytes -= elemCost(es[j])
					es = append(es[:j], es[j+1:]...)
					hit = true
				}
			}
			if hit {
				l.repack(k, es)
			}
		}
	}
	return removed
}

// Trim removes left elements from the head and right from the tail.
func (l *List) Trim(left, right int) {
	if left+right >= l.n {
		l.Clear()
		return
	}
	for left > 0 {
		nd := l.node(0)
		if c := nd.count(); c <= left {
			l.bytes -= int64(nd.used()) + int64(c)*listElemOverhead
			l.n -= c
			left -= c
			l.removeNode(0)
			continue
		}
		for ; left > 0; left-- {
			l.bytes -= elemCost(nd.at(0))
			nd.lo++
			l.n--
		}
	}
	for right > 0 {
		nd := l.node(l.nn - 1)
		if c := nd.count(); c <= right {
			l.bytes -= int64(nd.used()) + int64(c)*listElemOverhead
			l.n -= c
			right -= c
			l.removeNode(l.nn - 1)
			continue
		}
		for ; right > 0; right-- {
			l.bytes -= elemCost(nd.at(nd.count() - 1))
			nd.hi--
			l.n--
		}
	}
}

// Clear removes every element.
func (l *List) Clear() {
	l.nodes = nil
	l.nhead, l.nn, l.n, l.bytes = 0, 0, 0, 0
}

// MaxElemLen is the longest element.
func (l *List) MaxElemLen() int {
	m := 0
	l.Range(0, l.n, func(v []byte) bool {
		m = max(m, len(v))
		return true
	})
	return m
}

// Clone returns a deep copy.
func (l *List) Clone() *List {
	c := &List{bytes: l.bytes, n: l.n, nn: l.nn}
	if l.nn > 0 {
		c.nodes = make([]*listNode, len(l.nodes))
		for k := 0; k < l.nn; k++ {
			c.nodes[k] = newListNode(l.node(k).elems(), 0, 0, false)
		}
	}
	return c
}
