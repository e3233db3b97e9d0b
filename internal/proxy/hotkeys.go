package proxy

import (
	"bytes"
	"container/heap"
	"hash/maphash"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// Hot keys (docs/proxy.md, "Hot keys").
//
// Counting: one keyed command in Config.HotKeySample (chosen by a
// per-client xorshift, so a client cycling over a few keys cannot alias
// with the sampling) records its keys in a count-min sketch (4 rows ×
// 2048 counters, conservative update) and a min-heap of the hottest
// candidates (at most hotCandidates, keys up to maxHotKeyLen bytes).
// Every Config.HotKeyHalfLife all counters are halved, so the ranking
// follows the recent load: a key read r times per second scores about
// r..2r. The sketch's mutex is taken only by sampled commands.
//
// Cache (Config.HotKeyCache N, off by default): the N hottest keys are
// published as an immutable map (hash → entry) read without a lock.
// GET and memcached get of a published key are answered from its entry
// while the value is younger than the TTL; a miss goes to the primary
// and its reply fills the entry. Writes through this proxy invalidate
// twice: when the command is routed (before it is sent) and when its
// reply arrives. Each invalidation bumps the generation of the key's
// stripe (a hash of the key), and a fill is kept only if the generation
// did not move between the read's send and its reply: a read that may
// have run before a write never outlives it in the cache. Writes through
// other proxies or straight to the nodes are seen once the entry
// expires: the staleness bound is the TTL.

const (
	cmsDepth      = 4
	cmsBits       = 11
	cmsWidth      = 1 << cmsBits // cmsDepth*cmsBits <= 64: each row its own hash bits
	maxHotKeyLen  = 1024         // longer keys are counted in the sketch, never listed or cached
	hotCandidates = 128          // minimum candidates kept (2 × the cache size when larger)
	cacheStripes  = 4096         // a power of two

	// Cache bounds: a value larger than maxCacheValue is not cached, nor
	// one that would take the cache past maxCacheBytes.
	maxCacheValue = 64 << 10
	maxCacheBytes = 16 << 20
)

// A hotCand is a candidate of the top-k.
type hotCand struct {
	key   string
	count uint32
	idx   int // position in the heap
}

// candHeap is a min-heap of candidates by count.
type candHeap []*hotCand

func (h candHeap) Len() int           { return len(h) }
func (h candHeap) Less(i, j int) bool { return h[i].count < h[j].count }
func (h candHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].idx, h[j].idx = i, j
}
func (h *candHeap) Push(x any) {
	c := x.(*hotCand)
	c.idx = len(*h)
	*h = append(*h, c)
}
func (h *candHeap) Pop() any {
	old := *h
	c := old[len(old)-1]
	*h = old[:len(old)-1]
	return c
}

// HotKey is one entry of the hot-key ranking.
type HotKey struct {
	Key   string
	Score int64 // decayed access count, sampling corrected
}

// hotTracker counts key accesses (sampled) and ranks the hottest.
type hotTracker struct {
	sample   uint32 // a power of two; 1 = every command
	halfLife time.Duration
	k        int // candidates kept
	seed     maphash.Seed
	now      func() time.Time // injectable for tests
	cache    *hotCache        // nil when the cache is off

	mu struct {
		sync.Mutex
		cms  [cmsDepth][cmsWidth]uint32
		cand map[string]*hotCand
		heap candHeap
		last time.Time // last decay
		// The published cache set: its smallest count and whether it
		// is full; a candidate above pubMin not in it republishes.
		pubMin  uint32
		pubFull bool
	}
	recorded atomic.Int64 // sampled key accesses
}

func newHotTracker(sample int, halfLife time.Duration, cacheN int, ttl time.Duration) *hotTracker {
	t := &hotTracker{sample: uint32(max(sample, 1)), halfLife: halfLife, k: max(hotCandidates, 2*cacheN), seed: maphash.MakeSeed(), now: time.Now}
	t.mu.cand = map[string]*hotCand{}
	if cacheN > 0 {
		t.cache = &hotCache{n: cacheN, ttl: ttl}
	}
	return t
}

func (t *hotTracker) hash(key []byte) uint64 { return maphash.Bytes(t.seed, key) }

// record counts one (sampled) access of key.
func (t *hotTracker) record(key []byte) {
	h := t.hash(key)
	t.recorded.Add(1)
	t.mu.Lock()
	defer t.mu.Unlock()
	t.decayLocked()
	// Conservative update: raise only the counters at the minimum.
	// Each row takes its own 11 bits of the 64-bit hash (4 rows × 11 =
	// 44 bits): two keys share every counter only if 44 bits agree.
	// (Double hashing, lo + r·hi, collided in all rows whenever lo and
	// hi agreed mod the width: 1 in 2^22 per pair, a cold key ranked
	// among the hot ones in ~2 % of test runs.)
	est := ^uint32(0)
	var idx [cmsDepth]uint32
	for r := range idx {
		idx[r] = uint32(h>>(r*cmsBits)) & (cmsWidth - 1)
		est = min(est, t.mu.cms[r][idx[r]])
	}
	if est == ^uint32(0) {
		return // saturated
	}
	est++
	for r, i := range idx {
		if t.mu.cms[r][i] < est {
			t.mu.cms[r][i] = est
		}
	}
	if len(key) > maxHotKeyLen {
		return
	}
	c := t.mu.cand[string(key)]
	switch {
	case c != nil:
		c.count = est
		heap.Fix(&t.mu.heap, c.idx)
	case len(t.mu.heap) < t.k:
		c = &hotCand{key: string(key), count: est}
		t.mu.cand[c.key] = c
		heap.Push(&t.mu.heap, c)
	case est > t.mu.heap[0].count:
		c = t.mu.heap[0]
		delete(t.mu.cand, c.key)
		c.key, c.count = string(key), est
		t.mu.cand[c.key] = c
		heap.Fix(&t.mu.heap, 0)
	default:
		return
	}
	// A key joins the cache's set when it passes the set's coldest by
	// an eighth (hysteresis: keys of about equal rates at the boundary
	// would otherwise republish on every sampled access); the decay
	// republishes the exact top N every half-life anyway.
	if t.cache != nil && (!t.mu.pubFull || est > t.mu.pubMin+t.mu.pubMin/8+1) && !t.cache.published(h, key) {
		t.republishLocked()
	}
}

// decayLocked halves every count once per elapsed half-life.
func (t *hotTracker) decayLocked() {
	now := t.now()
	if t.mu.last.IsZero() {
		t.mu.last = now
		return
	}
	n := now.Sub(t.mu.last) / t.halfLife
	if n <= 0 {
		return
	}
	t.mu.last = t.mu.last.Add(n * t.halfLife)
	sh := uint(min(n, 32)) // a uint32 shifted by 32 is 0
	for r := range t.mu.cms {
		row := &t.mu.cms[r]
		for i := range row {
			row[i] >>= sh
		}
	}
	kept := t.mu.heap[:0]
	for _, c := range t.mu.heap {
		c.count >>= sh
		if c.count == 0 {
			delete(t.mu.cand, c.key)
			continue
		}
		kept = append(kept, c)
	}
	for i := len(kept); i < len(t.mu.heap); i++ {
		t.mu.heap[i] = nil
	}
	t.mu.heap = kept
	for i, c := range t.mu.heap {
		c.idx = i
	}
	heap.Init(&t.mu.heap)
	if t.cache != nil {
		t.republishLocked()
	}
}

// rankedLocked returns the candidates, hottest first (ties by key).
func (t *hotTracker) rankedLocked() []*hotCand {
	cs := append([]*hotCand(nil), t.mu.heap...)
	sort.Slice(cs, func(i, j int) bool {
		if cs[i].count != cs[j].count {
			return cs[i].count > cs[j].count
		}
		return cs[i].key < cs[j].key
	})
	return cs
}

// top returns the n hottest keys.
func (t *hotTracker) top(n int) []HotKey {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.decayLocked()
	cs := t.rankedLocked()
	if len(cs) > n {
		cs = cs[:n]
	}
	out := make([]HotKey, len(cs))
	for i, c := range cs {
		out[i] = HotKey{Key: c.key, Score: int64(c.count) * int64(t.sample)}
	}
	return out
}

// republishLocked publishes the cache's key set: the N hottest
// candidates, keeping the entries (and cached values) of keys that stay.
func (t *hotTracker) republishLocked() {
	hc := t.cache
	cs := t.rankedLocked()
	if len(cs) > hc.n {
		cs = cs[:hc.n]
	}
	old := hc.hot.Load()
	m := make(map[uint64]*hotEntry, len(cs))
	for _, c := range cs {
		h := maphash.String(t.seed, c.key)
		if old != nil {
			if e := (*old)[h]; e != nil && e.key == c.key {
				m[h] = e
				continue
			}
		}
		m[h] = &hotEntry{key: c.key}
	}
	hc.hot.Store(&m)
	if old != nil {
		for h, e := range *old {
			if m[h] != e {
				hc.drop(e)
			}
		}
	}
	t.mu.pubFull = len(cs) == hc.n
	t.mu.pubMin = 0
	if len(cs) > 0 {
		t.mu.pubMin = cs[len(cs)-1].count
	}
}

// hotCache holds the replies of the hottest keys' reads (docs above).
type hotCache struct {
	n   int
	ttl time.Duration

	hot      atomic.Pointer[map[uint64]*hotEntry] // the published set
	stripes  [cacheStripes]atomic.Uint64          // write generations by key hash
	flushGen atomic.Uint64                        // bumped by FLUSHALL / flush_all
	bytes    atomic.Int64

	hits, misses, fills, invalidations atomic.Int64
}

// A hotEntry caches one hot key's GET reply (RESP2 form) and memcached
// get reply. mu orders fills against invalidations; reads are lock-free.
type hotEntry struct {
	key  string
	mu   sync.Mutex
	dead bool                      // dropped from the published set
	v    [2]atomic.Pointer[hotVal] // [0] RESP, [1] memcached
}

type hotVal struct {
	b   []byte
	exp time.Time
}

func (hc *hotCache) published(h uint64, key []byte) bool {
	m := hc.hot.Load()
	if m == nil {
		return false
	}
	e := (*m)[h]
	return e != nil && e.key == string(key)
}

// lookup returns key's entry when key is published, and its cached
// reply when it has a fresh one.
func (hc *hotCache) lookup(h uint64, key []byte, mc bool) (*hotEntry, []byte) {
	m := hc.hot.Load()
	if m == nil {
		return nil, nil
	}
	e := (*m)[h]
	if e == nil || e.key != string(key) {
		return nil, nil
	}
	if v := e.v[b2i(mc)].Load(); v != nil && time.Now().Before(v.exp) {
		hc.hits.Add(1)
		return e, v.b
	}
	hc.misses.Add(1)
	return e, nil
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// A fillTicket is what a read of a hot key remembers when it is sent.
type fillTicket struct {
	e     *hotEntry
	h     uint64
	gen   uint64
	flush uint64
	mc    bool
}

func (hc *hotCache) ticket(e *hotEntry, h uint64, mc bool) fillTicket {
	return fillTicket{e: e, h: h, gen: hc.stripes[h&(cacheStripes-1)].Load(), flush: hc.flushGen.Load(), mc: mc}
}

// fill caches reply for tk's key unless a write through this proxy may
// have run since the read was sent (its stripe's generation moved), the
// entry left the published set, or the reply is not a plain value.
func (hc *hotCache) fill(tk fillTicket, reply []byte) {
	if len(reply) > maxCacheValue || !cacheable(reply, tk.mc) {
		return
	}
	if !tk.mc && len(reply) == 3 && reply[0] == '_' {
		reply = nullBulk // a RESP3 backend's null: stored in RESP2 form
	}
	e := tk.e
	v := &hotVal{b: append([]byte(nil), reply...), exp: time.Now().Add(hc.ttl)}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.dead || hc.stripes[tk.h&(cacheStripes-1)].Load() != tk.gen || hc.flushGen.Load() != tk.flush {
		return
	}
	if hc.bytes.Load()+int64(len(v.b)) > maxCacheBytes {
		return
	}
	hc.fills.Add(1)
	hc.bytes.Add(int64(len(v.b)))
	if old := e.v[b2i(tk.mc)].Swap(v); old != nil {
		hc.bytes.Add(-int64(len(old.b)))
	}
}

var nullBulk = []byte("$-1\r\n")

// cacheable: a RESP bulk string or null (GET's replies), or a memcached
// get reply (VALUE block and END, or END alone).
func cacheable(r []byte, mc bool) bool {
	if mc {
		return bytes.HasSuffix(r, []byte("END\r\n")) && (len(r) == 5 || bytes.HasPrefix(r, []byte("VALUE ")))
	}
	return len(r) > 0 && (r[0] == '$' || (r[0] == '_' && len(r) == 3))
}

// clearLocked forgets e's values; e.mu is held.
func (hc *hotCache) clearLocked(e *hotEntry) bool {
	cleared := false
	for i := range e.v {
		if old := e.v[i].Swap(nil); old != nil {
			hc.bytes.Add(-int64(len(old.b)))
			cleared = true
		}
	}
	return cleared
}

func (hc *hotCache) drop(e *hotEntry) {
	e.mu.Lock()
	e.dead = true
	hc.clearLocked(e)
	e.mu.Unlock()
}

// invalidate marks a write of the key with hash h (routed now, or
// answered now).
func (hc *hotCache) invalidate(h uint64) {
	hc.stripes[h&(cacheStripes-1)].Add(1)
	m := hc.hot.Load()
	if m == nil {
		return
	}
	if e := (*m)[h]; e != nil {
		e.mu.Lock()
		if hc.clearLocked(e) {
			hc.invalidations.Add(1)
		}
		e.mu.Unlock()
	}
}

// invalidateAll marks a flush of every key.
func (hc *hotCache) invalidateAll() {
	hc.flushGen.Add(1)
	m := hc.hot.Load()
	if m == nil {
		return
	}
	for _, e := range *m {
		e.mu.Lock()
		if hc.clearLocked(e) {
			hc.invalidations.Add(1)
		}
		e.mu.Unlock()
	}
}

// entries counts the published keys with a cached value.
func (hc *hotCache) entries() int {
	m := hc.hot.Load()
	if m == nil {
		return 0
	}
	n := 0
	for _, e := range *m {
		if e.v[0].Load() != nil || e.v[1].Load() != nil {
			n++
		}
	}
	return n
}
