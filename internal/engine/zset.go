package engine

import (
	"hash/maphash"
	"math/rand/v2"
	"slices"
)

// ZSet is a sorted set: a skip list ordered by (score, member bytes) whose
// links carry spans (the number of elements they jump over), so rank
// lookups and rank ranges cost O(log n), plus a member → score map for
// O(1) ZSCORE. The member string is shared by the map key and the node.
//
// Every range operation reduces to a half-open rank interval: score and
// lex bounds are turned into ranks with one descent each (Count*, *Ranks),
// then Iter walks from a rank in either direction.
type ZSet struct {
	dict   map[string]float64
	header *zsetNode
	tail   *zsetNode
	length int
	level  int
	bytes  int64
}

const (
	zsetMaxLevel = 32
	// zsetElemOverhead approximates one element's cost beyond its member
	// bytes: the node with its average 1.33 levels, the map slot and the
	// string header. A constant (not the node's real level) keeps the
	// accounted size independent of the random levels, so a Clone
	// accounts exactly what its original does.
	zsetElemOverhead = 112
	zsetHeaderSize   = 64 + zsetMaxLevel*16
)

type zsetNode struct {
	member   string
	score    float64
	backward *zsetNode
	level    []zsetLink
}

type zsetLink struct {
	forward *zsetNode
	span    int
}

// NewZSet returns an empty sorted set.
func NewZSet() *ZSet {
	return &ZSet{
		dict:   make(map[string]float64),
		header: &zsetNode{level: make([]zsetLink, zsetMaxLevel)},
		level:  1,
	}
}

func (z *ZSet) Len() int       { return z.length }
func (z *ZSet) MemSize() int64 { return z.bytes + zsetHeaderSize }

// Score returns member's score.
func (z *ZSet) Score(member []byte) (float64, bool) {
	s, ok := z.dict[string(member)]
	return s, ok
}

// MaxMemberLen is the longest member (for OBJECT ENCODING).
func (z *ZSet) MaxMemberLen() int {
	m := 0
	for k := range z.dict {
		m = max(m, len(k))
	}
	return m
}

// Clone returns a deep copy (member strings are immutable and shared).
func (z *ZSet) Clone() *ZSet {
	n := NewZSet()
	for x := z.header.level[0].forward; x != nil; x = x.level[0].forward {
		n.insert(x.member, x.score)
	}
	return n
}

// less orders (score, member) pairs.
func zless(s1 float64, m1 string, s2 float64, m2 string) bool {
	return s1 < s2 || (s1 == s2 && m1 < m2)
}

// Nodes and their level arrays share one allocation (like Redis's
// flexible array member): a walk then touches one cache line per node
// instead of two. Levels are rounded up to the next of these sizes.
type (
	zNode1 struct {
		n zsetNode
		l [1]zsetLink
	}
	zNode2 struct {
		n zsetNode
		l [2]zsetLink
	}
	zNode4 struct {
		n zsetNode
		l [4]zsetLink
	}
	zNode8 struct {
		n zsetNode
		l [8]zsetLink
	}
)

func newZNode(member string, score float64, lvl int) *zsetNode {
	var n *zsetNode
	switch {
	case lvl <= 1:
		b := new(zNode1)
		n = &b.n
		n.level = b.l[:lvl]
	case lvl <= 2:
		b := new(zNode2)
		n = &b.n
		n.level = b.l[:lvl]
	case lvl <= 4:
		b := new(zNode4)
		n = &b.n
		n.level = b.l[:lvl]
	case lvl <= 8:
		b := new(zNode8)
		n = &b.n
		n.level = b.l[:lvl]
	default:
		n = &zsetNode{level: make([]zsetLink, lvl)}
	}
	n.member, n.score = member, score
	return n
}

func zslRandomLevel() int {
	// p = 1/4 per extra level, as Redis: two random bits per level.
	l := 1
	for r := rand.Uint64(); l < zsetMaxLevel && r&3 == 0; r >>= 2 {
		l++
	}
	return l
}

// insert adds a member that must not be present.
func (z *ZSet) insert(member string, score float64) {
	z.insertNode(newZNode(member, score, zslRandomLevel()))
}

// insertNode links n (with its level array set, links ignored) at its
// score's position.
func (z *ZSet) insertNode(n *zsetNode) {
	member, score := n.member, n.score
	var update [zsetMaxLevel]*zsetNode
	var rank [zsetMaxLevel]int
	x := z.header
	for i := z.level - 1; i >= 0; i-- {
		if i < z.level-1 {
			rank[i] = rank[i+1]
		}
		for f := x.level[i].forward; f != nil && zless(f.score, f.member, score, member); f = x.level[i].forward {
			rank[i] += x.level[i].span
			x = f
		}
		update[i] = x
	}
	lvl := len(n.level)
	if lvl > z.level {
		for i := z.level; i < lvl; i++ {
			rank[i] = 0
			update[i] = z.header
			update[i].level[i].span = z.length
		}
		z.level = lvl
	}
	n.backward = nil
	for i := 0; i < lvl; i++ {
		n.level[i].forward = update[i].level[i].forward
		update[i].level[i].forward = n
		n.level[i].span = update[i].level[i].span - (rank[0] - rank[i])
		update[i].level[i].span = rank[0] - rank[i] + 1
	}
	for i := lvl; i < z.level; i++ {
		update[i].level[i].span++
	}
	if update[0] != z.header {
		n.backward = update[0]
	}
	if n.level[0].forward != nil {
		n.level[0].forward.backward = n
	} else {
		z.tail = n
	}
	z.length++
	z.dict[member] = score
	z.bytes += int64(len(member)) + zsetElemOverhead
}

// unlink removes the node for (score, member), which must be present, and
// returns the stored member string.
func (z *ZSet) unlink(member string, score float64) string {
	x, update := z.find(member, score)
	z.deleteNode(x, &update)
	return x.member
}

// find returns member's node and, per level, the last node before it.
func (z *ZSet) find(member string, score float64) (*zsetNode, [zsetMaxLevel]*zsetNode) {
	var update [zsetMaxLevel]*zsetNode
	x := z.header
	for i := z.level - 1; i >= 0; i-- {
		for f := x.level[i].forward; f != nil && zless(f.score, f.member, score, member); f = x.level[i].forward {
			x = f
		}
		update[i] = x
	}
	x = x.level[0].forward
	if x == nil || x.score != score || x.member != member {
		panic("BUG: zset node missing for " + member)
	}
	return x, update
}

// deleteNode unlinks x given the predecessors find returned.
func (z *ZSet) deleteNode(x *zsetNode, update *[zsetMaxLevel]*zsetNode) {
	for i := 0; i < z.level; i++ {
		if update[i].level[i].forward == x {
			update[i].level[i].span += x.level[i].span - 1
			update[i].level[i].forward = x.level[i].forward
		} else {
			update[i].level[i].span--
		}
	}
	if x.level[0].forward != nil {
		x.level[0].forward.backward = x.backward
	} else {
		z.tail = x.backward
	}
	for z.level > 1 && z.header.level[z.level-1].forward == nil {
		z.level--
	}
	z.length--
	delete(z.dict, x.member)
	z.bytes -= int64(len(x.member)) + zsetElemOverhead
}

// Add sets member's score, adding the member if needed (member is copied).
// It reports whether the member is new.
func (z *ZSet) Add(member []byte, score float64) bool {
	old, ok := z.dict[string(member)]
	if ok {
		if old != score {
			z.updateScore(string(member), old, score)
		}
		return false
	}
	z.insert(string(member), score)
	return true
}

// Remove deletes member and reports whether it was present.
func (z *ZSet) Remove(member []byte) bool {
	s, ok := z.dict[string(member)]
	if !ok {
		return false
	}
	z.unlink(string(member), s)
	return true
}

// Rank returns member's 0-based rank in ascending order and its score.
func (z *ZSet) Rank(member []byte) (int, float64, bool) {
	s, ok := z.dict[string(member)]
	if !ok {
		return 0, 0, false
	}
	r := z.countWhile(func(n *zsetNode) bool { return zless(n.score, n.member, s, string(member)) })
	return r, s, true
}

// countWhile returns how many leading elements satisfy pred, which must
// hold for a prefix of the order and fail for the rest.
func (z *ZSet) countWhile(pred func(n *zsetNode) bool) int {
	r := 0
	x := z.header
	for i := z.level - 1; i >= 0; i-- {
		for f := x.level[i].forward; f != nil && pred(f); f = x.level[i].forward {
			r += x.level[i].span
			x = f
		}
	}
	return r
}

// nodeAt returns the node of 0-based rank r (0 <= r < Len).
func (z *ZSet) nodeAt(r int) *zsetNode {
	r++ // spans count 1-based positions
	t := 0
	x := z.header
	for i := z.level - 1; i >= 0; i-- {
		for x.level[i].forward != nil && t+x.level[i].span <= r {
			t += x.level[i].span
			x = x.level[i].forward
		}
		if t == r {
			return x
		}
	}
	return nil
}

// At returns the element of 0-based ascending rank r.
func (z *ZSet) At(r int) (string, float64) {
	n := z.nodeAt(r)
	return n.member, n.score
}

// Iter calls fn for the elements from ascending rank r on, towards higher
// ranks or, with rev, towards lower ranks, until fn returns false.
func (z *ZSet) Iter(r int, rev bool, fn func(member string, score float64) bool) {
	if r < 0 || r >= z.length {
		return
	}
	for x := z.nodeAt(r); x != nil; {
		if !fn(x.member, x.score) {
			return
		}
		if rev {
			x = x.backward
		} else {
			x = x.level[0].forward
		}
	}
}

// ScoreRange is a score interval; Ex bounds are exclusive.
type ScoreRange struct {
	Min, Max     float64
	MinEx, MaxEx bool
}

func (r *ScoreRange) aboveMin(s float64) bool {
	if r.MinEx {
		return s > r.Min
	}
	return s >= r.Min
}

func (r *ScoreRange) belowMax(s float64) bool {
	if r.MaxEx {
		return s < r.Max
	}
	return s <= r.Max
}

// ScoreRanks returns the ascending rank interval [start, end) of the
// elements whose score is in r (start >= end: none).
func (z *ZSet) ScoreRanks(r ScoreRange) (start, end int) {
	if r.Min > r.Max || (r.Min == r.Max && (r.MinEx || r.MaxEx)) {
		return 0, 0
	}
	start = z.countWhile(func(n *zsetNode) bool { return !r.aboveMin(n.score) })
	end = z.countWhile(func(n *zsetNode) bool { return r.belowMax(n.score) })
	return start, max(start, end)
}

// LexBound is one end of a lex range: Inf -1 is "-" (below everything),
// +1 is "+" (above everything), 0 means S with Ex telling exclusive.
type LexBound struct {
	S   string
	Inf int
	Ex  bool
}

// LexRange is a member interval, meaningful when all scores are equal.
type LexRange struct{ Min, Max LexBound }

// lexCmpBound compares member with bound b's value: -1, 0, +1.
func lexCmpBound(m string, b *LexBound) int {
	switch {
	case b.Inf < 0:
		return 1
	case b.Inf > 0:
		return -1
	case m < b.S:
		return -1
	case m > b.S:
		return 1
	}
	return 0
}

func (r *LexRange) aboveMin(m string) bool {
	c := lexCmpBound(m, &r.Min)
	return c > 0 || (c == 0 && !r.Min.Ex)
}

func (r *LexRange) belowMax(m string) bool {
	c := lexCmpBound(m, &r.Max)
	return c < 0 || (c == 0 && !r.Max.Ex)
}

func (r *LexRange) empty() bool {
	a, b := r.Min, r.Max
	if a.Inf > 0 || b.Inf < 0 {
		return true
	}
	if a.Inf < 0 || b.Inf > 0 {
		return false
	}
	return a.S > b.S || (a.S == b.S && (a.Ex || b.Ex))
}

// LexRanks returns the ascending rank interval [start, end) of the
// members in r.
func (z *ZSet) LexRanks(r LexRange) (start, end int) {
	if r.empty() {
		return 0, 0
	}
	start = z.countWhile(func(n *zsetNode) bool { return !r.aboveMin(n.member) })
	end = z.countWhile(func(n *zsetNode) bool { return r.belowMax(n.member) })
	return start, max(start, end)
}

// RemoveRanks deletes the elements of ascending ranks [start, end) and
// returns how many it removed.
func (z *ZSet) RemoveRanks(start, end int) int {
	start = max(start, 0)
	end = min(end, z.length)
	if start >= end {
		return 0
	}
	type elem struct {
		m string
		s float64
	}
	del := make([]elem, 0, end-start)
	z.Iter(start, false, func(m string, s float64) bool {
		del = append(del, elem{m, s})
		return len(del) < end-start
	})
	for _, e := range del {
		z.unlink(e.m, e.s)
	}
	return len(del)
}

// zsetScanSeed makes scan cursors stable for the life of the process.
var zsetScanSeed = maphash.MakeSeed()

// zsetScanHash orders members for Scan: 63 bits, so cursor = hash+1 fits.
func zsetScanHash(m string) uint64 { return maphash.String(zsetScanSeed, m) >> 1 }

// Scan calls fn for a batch of elements and returns the cursor of the next
// batch (0: done). Elements are visited in the order of a hash of the
// member, and the cursor is the next hash to visit, so an element present
// for the whole iteration is returned exactly once whatever is added or
// removed in between. Each call costs O(n log n); to bound the whole
// iteration it returns at least Len/16 elements per call.
func (z *ZSet) Scan(cursor uint64, count int, fn func(member string, score float64)) uint64 {
	if z.length <= 128 && cursor == 0 {
		// Small sets (Redis's listpack encoding) come back in one call.
		for x := z.header.level[0].forward; x != nil; x = x.level[0].forward {
			fn(x.member, x.score)
		}
		return 0
	}
	type hm struct {
		h uint64
		m string
	}
	from := uint64(0)
	if cursor > 0 {
		from = cursor - 1
	}
	var cand []hm
	for m := range z.dict {
		if h := zsetScanHash(m); h >= from {
			cand = append(cand, hm{h, m})
		}
	}
	slices.SortFunc(cand, func(a, b hm) int {
		switch {
		case a.h < b.h:
			return -1
		case a.h > b.h:
			return 1
		}
		return 0
	})
	n := max(count, z.length/16, 1)
	i := 0
	for ; i < len(cand) && (i < n || cand[i].h == cand[i-1].h); i++ {
		fn(cand[i].m, z.dict[cand[i].m])
	}
	if i == len(cand) {
		return 0
	}
	return cand[i].h + 1
}

// ScoreOf is Score for a string member.
func (z *ZSet) ScoreOf(member string) (float64, bool) {
	s, ok := z.dict[member]
	return s, ok
}

// Pop removes and returns the lowest (or, with max, the highest) element.
// The set must not be empty.
func (z *ZSet) Pop(max bool) (string, float64) {
	x := z.header.level[0].forward
	if max {
		x = z.tail
	}
	z.unlink(x.member, x.score)
	return x.member, x.score
}

// updateScore moves member from score old to score with one walk when the
// node keeps its position (its neighbours still order around it), as
// Redis's zslUpdateScore does, and relinks it otherwise.
func (z *ZSet) updateScore(member string, old, score float64) {
	x, update := z.find(member, old)
	if (x.backward == nil || zless(x.backward.score, x.backward.member, score, member)) &&
		(x.level[0].forward == nil || zless(score, member, x.level[0].forward.score, x.level[0].forward.member)) {
		x.score = score
		z.dict[x.member] = score
		return
	}
	// Relink the same node (no allocation): delete, rescore, insert.
	z.deleteNode(x, &update)
	x.score = score
	z.insertNode(x)
}
