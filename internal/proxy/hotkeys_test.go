package proxy

import (
	"math/rand"
	"strconv"
	"testing"
	"time"

	"shoal/internal/command"
)

// fakeClock is an injected clock for the sketch's decay.
type fakeClock struct{ t time.Time }

func (f *fakeClock) now() time.Time { return f.t }

func newTestTracker(cacheN int) (*hotTracker, *fakeClock) {
	t := newHotTracker(1, time.Second, cacheN, time.Hour)
	clk := &fakeClock{t: time.Unix(1000, 0)}
	t.now = clk.now
	return t, clk
}

// TestHotKeysTopK: a Zipf-like load over many keys; the heaviest are
// ranked first, in order, and the candidates stay bounded.
func TestHotKeysTopK(t *testing.T) {
	tr, _ := newTestTracker(0)
	rng := rand.New(rand.NewSource(7))
	// Keys hot0..hot4 get 2000, 1600, 1200, 800, 400 accesses; 50000
	// other accesses are spread over 20000 distinct keys.
	var ops []string
	for i := 0; i < 5; i++ {
		for j := 0; j < 2000-400*i; j++ {
			ops = append(ops, "hot"+strconv.Itoa(i))
		}
	}
	for j := 0; j < 50000; j++ {
		ops = append(ops, "cold"+strconv.Itoa(rng.Intn(20000)))
	}
	rng.Shuffle(len(ops), func(i, j int) { ops[i], ops[j] = ops[j], ops[i] })
	for _, k := range ops {
		tr.record([]byte(k))
	}
	top := tr.top(5)
	for i, k := range top {
		if k.Key != "hot"+strconv.Itoa(i) {
			t.Fatalf("rank %d: %+v (top %+v)", i, k, top)
		}
	}
	// Count-min overestimates, never under.
	if want := int64(2000); top[0].Score < want || top[0].Score > want+200 {
		t.Errorf("hot0 score %d, want about %d", top[0].Score, want)
	}
	tr.mu.Lock()
	n := len(tr.mu.cand)
	tr.mu.Unlock()
	if n > tr.k {
		t.Errorf("%d candidates kept, bound %d", n, tr.k)
	}
	if len(tr.top(1000)) > tr.k {
		t.Errorf("top(1000) longer than the candidates")
	}
}

// TestHotKeysDecay: scores halve every half-life, so a key that was hot
// and went quiet is overtaken by a key that is hot now.
func TestHotKeysDecay(t *testing.T) {
	tr, clk := newTestTracker(0)
	for i := 0; i < 1000; i++ {
		tr.record([]byte("old"))
	}
	clk.t = clk.t.Add(time.Second)
	if got := tr.top(1)[0].Score; got != 500 {
		t.Fatalf("after one half-life: %d, want 500", got)
	}
	clk.t = clk.t.Add(3 * time.Second)
	for i := 0; i < 100; i++ {
		tr.record([]byte("new"))
	}
	top := tr.top(2)
	if top[0].Key != "new" || top[0].Score != 100 || top[1].Key != "old" || top[1].Score != 62 {
		t.Fatalf("after four half-lives: %+v", top)
	}
	clk.t = clk.t.Add(time.Minute)
	if top := tr.top(10); len(top) != 0 {
		t.Fatalf("after a minute of silence: %+v", top)
	}
}

// TestHotKeysLongKeys: keys past maxHotKeyLen are counted but never
// listed (memory bound of the candidates).
func TestHotKeysLongKeys(t *testing.T) {
	tr, _ := newTestTracker(1)
	long := make([]byte, maxHotKeyLen+1)
	for i := 0; i < 10; i++ {
		tr.record(long)
	}
	if top := tr.top(10); len(top) != 0 {
		t.Fatalf("a long key was listed: %d", len(top))
	}
}

// TestHotCacheGenerations: the cache's fill rules without sockets.
func TestHotCacheGenerations(t *testing.T) {
	tr, _ := newTestTracker(2)
	hc := tr.cache
	key := []byte("k")
	h := tr.hash(key)
	if e, _ := hc.lookup(h, key, false); e != nil {
		t.Fatal("published before any access")
	}
	tr.record(key)
	e, v := hc.lookup(h, key, false)
	if e == nil || v != nil {
		t.Fatalf("after an access: entry %v value %q", e != nil, v)
	}
	// A read sent, then a write routed before its reply: no fill.
	tk := hc.ticket(e, h, false)
	hc.invalidate(h)
	hc.fill(tk, []byte("$3\r\nold\r\n"))
	if _, v := hc.lookup(h, key, false); v != nil {
		t.Fatalf("a read older than a write was cached: %q", v)
	}
	// A clean read fills; a RESP3 null is stored in RESP2 form.
	hc.fill(hc.ticket(e, h, false), []byte("_\r\n"))
	if _, v := hc.lookup(h, key, false); string(v) != "$-1\r\n" {
		t.Fatalf("cached %q", v)
	}
	// Errors and other replies are not cached.
	hc.invalidate(h)
	hc.fill(hc.ticket(e, h, false), []byte("-WRONGTYPE x\r\n"))
	if _, v := hc.lookup(h, key, false); v != nil {
		t.Fatalf("an error was cached: %q", v)
	}
	// A flush forbids fills of reads sent before it.
	tk = hc.ticket(e, h, true)
	hc.invalidateAll()
	hc.fill(tk, []byte("END\r\n"))
	if _, v := hc.lookup(h, key, true); v != nil {
		t.Fatalf("a read older than a flush was cached")
	}
	hc.fill(hc.ticket(e, h, true), []byte("VALUE k 0 1\r\nx\r\nEND\r\n"))
	if _, v := hc.lookup(h, key, true); string(v) != "VALUE k 0 1\r\nx\r\nEND\r\n" {
		t.Fatalf("memcached value %q", v)
	}
	if hc.bytes.Load() != int64(len("VALUE k 0 1\r\nx\r\nEND\r\n")) {
		t.Fatalf("bytes %d", hc.bytes.Load())
	}
	// Two hotter keys push k out of a 2-key cache: its entry is dropped
	// with its value.
	for i := 0; i < 5; i++ {
		tr.record([]byte("a"))
		tr.record([]byte("b"))
	}
	if e, _ := hc.lookup(h, key, true); e != nil {
		t.Fatal("k still published")
	}
	if hc.bytes.Load() != 0 {
		t.Fatalf("bytes %d after the drop", hc.bytes.Load())
	}
	// An oversized value is not cached.
	a := []byte("a")
	ha := tr.hash(a)
	ea, _ := hc.lookup(ha, a, false)
	big := append([]byte("$70000\r\n"), make([]byte, 70002)...)
	hc.fill(hc.ticket(ea, ha, false), big)
	if _, v := hc.lookup(ha, a, false); v != nil {
		t.Fatal("an oversized value was cached")
	}
}

// BenchmarkHotKeyRecord is the cost of one sampled access (the sketch
// update under its mutex).
func BenchmarkHotKeyRecord(b *testing.B) {
	tr := newHotTracker(1, time.Second, 0, 0)
	keys := make([][]byte, 4096)
	for i := range keys {
		keys[i] = []byte("key:" + strconv.Itoa(i*i%1000))
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		tr.record(keys[i&4095])
	}
}

// BenchmarkHotKeyCount is the per-command cost on the client reader
// with the default sampling (1 in 8): the sampling draw, and for one
// command in eight the key extraction and the sketch update.
func BenchmarkHotKeyCount(b *testing.B) {
	p := &Proxy{hot: newHotTracker(8, time.Second, 0, 0)}
	c := &conn{p: p, rng: 0x9e3779b97f4a7c15}
	spec := command.Table["get"]
	args := make([][][]byte, 4096)
	for i := range args {
		args[i] = [][]byte{[]byte("GET"), []byte("key:" + strconv.Itoa(i*i%1000))}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if c.sampled() {
			c.countRESP(spec, args[i&4095])
		}
	}
}

// BenchmarkHotCacheHit is a cache hit's lookup (hash, published map,
// freshness).
func BenchmarkHotCacheHit(b *testing.B) {
	tr := newHotTracker(1, time.Second, 1, time.Hour)
	key := []byte("hot:key")
	tr.record(key)
	h := tr.hash(key)
	e, _ := tr.cache.lookup(h, key, false)
	tr.cache.fill(tr.cache.ticket(e, h, false), []byte("$5\r\nvalue\r\n"))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, v := tr.cache.lookup(tr.hash(key), key, false); v == nil {
			b.Fatal("miss")
		}
	}
}

// TestHotKeyAllocs: the per-command paths allocate nothing (the sampling
// draw and counting of a known key, a cache hit, a latency observation).
func TestHotKeyAllocs(t *testing.T) {
	tr := newHotTracker(1, time.Hour, 1, time.Hour)
	key := []byte("k")
	tr.record(key)
	h := tr.hash(key)
	e, _ := tr.cache.lookup(h, key, false)
	tr.cache.fill(tr.cache.ticket(e, h, false), []byte("$1\r\nv\r\n"))
	p := &Proxy{hot: tr}
	p.met = newMetrics(p)
	c := &conn{p: p, rng: 1}
	spec := command.Table["get"]
	args := [][]byte{[]byte("GET"), key}
	p.met.observe(spec.ID, time.Millisecond) // creates the series
	if n := testing.AllocsPerRun(100, func() {
		if c.sampled() {
			c.countRESP(spec, args)
		}
		if _, v := tr.cache.lookup(tr.hash(key), key, false); v == nil {
			t.Fatal("miss")
		}
		p.met.observe(spec.ID, time.Millisecond)
	}); n != 0 {
		t.Fatalf("%v allocations per command", n)
	}
}

// BenchmarkMetricsObserve is the per-command cost of the latency
// histogram (two clock reads and an observation by command id).
func BenchmarkMetricsObserve(b *testing.B) {
	p := &Proxy{hot: newHotTracker(8, time.Second, 0, 0), t0: time.Now()}
	p.met = newMetrics(p)
	id := command.Table["get"].ID
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		start := time.Since(p.t0)
		p.met.observe(id, time.Since(p.t0)-start)
	}
}
