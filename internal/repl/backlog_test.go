package repl

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"syscall"
	"testing"

	"shoal/internal/persist"
)

// ---- helpers ----------------------------------------------------------

// rin is the input of one Append: a count of effects and the effects.
type rin struct {
	n   int
	eff []byte
}

// effectInput builds a realistic record input (one SET-like effect) for
// lsn whose value has vlen bytes derived from lsn.
func effectInput(lsn uint64, vlen int) rin {
	val := make([]byte, vlen)
	for i := range val {
		val[i] = byte(lsn*131 + uint64(i)*7)
	}
	key := fmt.Appendf(nil, "key:%d", lsn)
	return rin{n: 1, eff: persist.AppendEffect(nil, int(lsn%16384), []byte("SET"), key, val)}
}

// sizedInput builds an input whose encoded record is exactly total bytes
// (total >= RecordHeaderLen+1); the effects are opaque filler.
func sizedInput(lsn uint64, total int) rin {
	eff := make([]byte, total-persist.RecordHeaderLen-1) // uvarint(1) is one byte
	for i := range eff {
		eff[i] = byte(lsn*17 + uint64(i)*3)
	}
	return rin{n: 1, eff: eff}
}

func encode(lsn uint64, in rin) []byte { return persist.AppendRecord(nil, lsn, in.n, in.eff) }

// recs checks that chunk is a run of whole, valid records, consecutive
// from want, each equal to expect(lsn); it returns the LSN after the run
// and the number of records.
func checkChunk(t *testing.T, chunk []byte, want uint64, expect func(uint64) []byte) (uint64, int) {
	t.Helper()
	if len(chunk) == 0 {
		t.Fatalf("empty non-nil chunk at %d", want)
	}
	next, n, err := walkChunk(chunk, want, expect)
	if err != nil {
		t.Fatal(err)
	}
	return next, n
}

// walkChunk checks that chunk is whole records want, want+1, ... with
// good checksums and, if expect is set, exactly expect(lsn)'s bytes; it
// returns the LSN after them and their count (usable off the test
// goroutine: it reports instead of failing).
func walkChunk(chunk []byte, want uint64, expect func(uint64) []byte) (uint64, int, error) {
	n := 0
	for off := 0; off < len(chunk); {
		l := persist.RecordLen(chunk[off:])
		if l == 0 || off+l > len(chunk) {
			return want, n, fmt.Errorf("partial record at LSN %d: offset %d, record length %d, chunk length %d", want, off, l, len(chunk))
		}
		lsn, _, err := persist.CheckRecord(chunk[off : off+l])
		if err != nil {
			return want, n, fmt.Errorf("record at offset %d (want LSN %d): %v", off, want, err)
		}
		if lsn != want {
			return want, n, fmt.Errorf("record LSN %d, want %d", lsn, want)
		}
		if expect != nil {
			if e := expect(lsn); !bytes.Equal(chunk[off:off+l], e) {
				return want, n, fmt.Errorf("record %d differs from persist.AppendRecord output (len %d vs %d)", lsn, l, len(e))
			}
		}
		off += l
		want++
		n++
	}
	return want, n, nil
}

// drain reads c to the end (Next returns nil) with maxBytes, checking
// every chunk; it returns the chunks read.
func drain(t *testing.T, c *Cursor, maxBytes int, expect func(uint64) []byte) [][]byte {
	t.Helper()
	var out [][]byte
	for {
		want := c.NextLSN()
		chunk, err := c.Next(maxBytes)
		if err != nil {
			t.Fatalf("Next at %d: %v", want, err)
		}
		if chunk == nil {
			return out
		}
		after, n := checkChunk(t, chunk, want, expect)
		if len(chunk) > maxBytes && n != 1 {
			t.Fatalf("chunk of %d bytes (%d records) exceeds maxBytes %d", len(chunk), n, maxBytes)
		}
		if cap(chunk) != len(chunk) {
			t.Fatalf("chunk cap %d != len %d: appending to it would write into the backlog", cap(chunk), len(chunk))
		}
		if c.NextLSN() != after {
			t.Fatalf("NextLSN %d after a chunk ending at %d", c.NextLSN(), after-1)
		}
		out = append(out, chunk)
	}
}

func mustCursor(t *testing.T, b *Backlog, from uint64) *Cursor {
	t.Helper()
	c, err := b.NewCursor(from)
	if err != nil {
		t.Fatalf("NewCursor(%d): %v", from, err)
	}
	return c
}

func isReady(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// ---- tests ------------------------------------------------------------

func TestAppendAssignsLSNs(t *testing.T) {
	for _, start := range []uint64{1, 2, 1000, 1 << 40} {
		b := New(64<<20, start)
		if b.First() != 0 || b.Last() != start-1 {
			t.Fatalf("start %d: empty backlog First %d Last %d, want 0 and %d", start, b.First(), b.Last(), start-1)
		}
		if !b.Has(start) || b.Has(start-1) || b.Has(start+1) {
			t.Fatalf("start %d: Has on an empty backlog is wrong", start)
		}
		var total int64
		for i := range uint64(500) {
			in := effectInput(start+i, int(i%50))
			lsn := b.Append(in.n, in.eff)
			if lsn != start+i {
				t.Fatalf("Append #%d returned %d, want %d", i, lsn, start+i)
			}
			total += int64(len(encode(lsn, in)))
			if b.Last() != lsn || b.First() != start {
				t.Fatalf("after %d: First %d Last %d, want %d and %d", lsn, b.First(), b.Last(), start, lsn)
			}
		}
		held, limit, tot := b.Stats()
		if held != total || tot != total || limit != 64<<20 {
			t.Fatalf("Stats = %d, %d, %d; want %d, %d, %d", held, limit, tot, total, 64<<20, total)
		}
		for _, lsn := range []uint64{start, start + 250, start + 499, start + 500} {
			if !b.Has(lsn) {
				t.Fatalf("Has(%d) false", lsn)
			}
		}
		if b.Has(start-1) || b.Has(start+501) {
			t.Fatalf("Has outside [%d, %d] true", start, start+500)
		}
	}
}

func TestNewLimitAtLeastOneBlock(t *testing.T) {
	for _, l := range []int64{-1, 0, 1, blockSize - 1} {
		if _, limit, _ := New(l, 1).Stats(); limit != blockSize {
			t.Fatalf("New(%d): limit %d, want %d", l, limit, blockSize)
		}
	}
	b := New(8<<20, 1)
	b.SetLimit(3)
	if _, limit, _ := b.Stats(); limit != blockSize {
		t.Fatalf("SetLimit(3): limit %d, want %d", limit, blockSize)
	}
}

// TestCursorReadsEverything writes ~20 MiB of records of varied sizes
// (small, medium, exactly one block, larger than a block, one that fills
// a block to the byte) and reads them back with a range of maxBytes,
// interleaving reads and writes.
func TestCursorReadsEverything(t *testing.T) {
	const start = 7
	r := rand.New(rand.NewPCG(1, 2))
	b := New(1<<30, start)
	var expected [][]byte // by lsn-start
	expect := func(lsn uint64) []byte { return expected[lsn-start] }

	// Simulated fill of the current block, to craft a record that fills
	// one to the last byte.
	fill, capacity := 0, 0
	appendOne := func(in rin) {
		lsn := uint64(start + len(expected))
		rec := encode(lsn, in)
		expected = append(expected, rec)
		if got := b.Append(in.n, in.eff); got != lsn {
			t.Fatalf("Append returned %d, want %d", got, lsn)
		}
		if fill+len(rec) > capacity {
			fill, capacity = 0, max(blockSize, len(rec))
		}
		fill += len(rec)
	}
	special := map[int]func(lsn uint64) rin{
		100:  func(lsn uint64) rin { return sizedInput(lsn, blockSize) },             // exactly one block
		101:  func(lsn uint64) rin { return effectInput(lsn, 3) },                    // small after it
		700:  func(lsn uint64) rin { return sizedInput(lsn, blockSize+blockSize/2) }, // 1.5 blocks
		701:  func(lsn uint64) rin { return sizedInput(lsn, 3*blockSize+5) },         // two huge in a row
		1500: func(lsn uint64) rin { return sizedInput(lsn, blockSize+1) },
	}
	gen := func(i int) rin {
		lsn := uint64(start + len(expected))
		if f, ok := special[i]; ok {
			return f(lsn)
		}
		if i%250 == 249 && capacity-fill >= persist.RecordHeaderLen+1 {
			return sizedInput(lsn, capacity-fill) // fills the current block exactly
		}
		switch p := r.IntN(100); {
		case p < 88:
			return effectInput(lsn, r.IntN(300))
		case p < 98:
			return effectInput(lsn, 1024+r.IntN(64<<10))
		default:
			return effectInput(lsn, 64<<10+r.IntN(400<<10))
		}
	}
	maxes := []int{1, persist.RecordHeaderLen, 100, 4096, 65536, blockSize - 1, blockSize, 1 << 30}

	c := mustCursor(t, b, start)
	defer c.Close()
	if chunk, err := c.Next(1 << 20); chunk != nil || err != nil {
		t.Fatalf("Next on an empty backlog: %d bytes, %v", len(chunk), err)
	}
	var chunks [][]byte
	i := 0
	for phase := range 8 {
		for range 250 {
			appendOne(gen(i))
			i++
		}
		chunks = append(chunks, drain(t, c, maxes[phase%len(maxes)], expect)...)
		if c.NextLSN() != b.Last()+1 {
			t.Fatalf("phase %d: cursor stopped at %d, last is %d", phase, c.NextLSN(), b.Last())
		}
		if c.Lag() != 0 {
			t.Fatalf("phase %d: Lag %d for an up-to-date cursor", phase, c.Lag())
		}
	}
	// Every chunk handed out is still intact, and together they are the
	// stream, byte for byte.
	got := bytes.Join(chunks, nil)
	want := bytes.Join(expected, nil)
	if !bytes.Equal(got, want) {
		t.Fatalf("stream read back differs: %d bytes read, %d written", len(got), len(want))
	}
	held, _, total := b.Stats()
	if held != int64(len(want)) || total != int64(len(want)) {
		t.Fatalf("Stats held %d total %d, want %d", held, total, len(want))
	}
	if total < 16<<20 {
		t.Fatalf("test wrote only %d bytes; meant to span many blocks", total)
	}

	// Fresh cursors from various points, each maxBytes.
	for _, mb := range maxes {
		for _, from := range []uint64{start, start + 100, start + 701, start + 1234, b.Last(), b.Last() + 1} {
			c2 := mustCursor(t, b, from)
			var n int
			for _, ch := range drain(t, c2, mb, expect) {
				n += len(ch)
			}
			var w int
			for lsn := from; lsn <= b.Last(); lsn++ {
				w += len(expect(lsn))
			}
			if n != w || c2.NextLSN() != b.Last()+1 {
				t.Fatalf("cursor from %d, maxBytes %d: read %d bytes to %d, want %d to %d", from, mb, n, c2.NextLSN(), w, b.Last()+1)
			}
			c2.Close()
		}
	}
}

// TestNextMaxBytes checks the cut of a run: records are never split, a
// run never exceeds maxBytes unless it is one record, and a run holds
// as many records as fit (within a block).
func TestNextMaxBytes(t *testing.T) {
	b := New(1<<30, 1)
	sizes := []int{100, 100, 100, 50, 300, 20, 20, 20, 20, 5000, 17, 17}
	var expected [][]byte
	for i, s := range sizes {
		in := sizedInput(uint64(i+1), s)
		expected = append(expected, encode(uint64(i+1), in))
		b.Append(in.n, in.eff)
	}
	expect := func(lsn uint64) []byte { return expected[lsn-1] }
	for mb := -1; mb <= 6000; mb++ {
		c := mustCursor(t, b, 1)
		for c.NextLSN() <= b.Last() {
			from := c.NextLSN()
			chunk, err := c.Next(mb)
			if err != nil || chunk == nil {
				t.Fatalf("maxBytes %d at %d: %d bytes, %v", mb, from, len(chunk), err)
			}
			after, n := checkChunk(t, chunk, from, expect)
			if len(chunk) > mb && n != 1 {
				t.Fatalf("maxBytes %d: %d records in %d bytes", mb, n, len(chunk))
			}
			// Greedy: the next record would not have fitted.
			if after <= b.Last() && len(chunk)+len(expect(after)) <= mb {
				t.Fatalf("maxBytes %d: run from %d stopped at %d (%d bytes) though %d more bytes fit", mb, from, after, len(chunk), len(expect(after)))
			}
		}
		if chunk, err := c.Next(mb); chunk != nil || err != nil {
			t.Fatalf("maxBytes %d: Next at the end: %d bytes, %v", mb, len(chunk), err)
		}
		c.Close()
	}
}

func TestCursorAtEndWaits(t *testing.T) {
	b := New(4<<20, 1)
	// On an empty backlog.
	c0 := mustCursor(t, b, 1)
	if chunk, err := c0.Next(1 << 20); chunk != nil || err != nil {
		t.Fatalf("empty: Next = %d bytes, %v", len(chunk), err)
	}
	if _, err := b.NewCursor(2); err == nil {
		t.Fatalf("NewCursor past the end of an empty backlog succeeded")
	}

	for i := range 3 {
		in := effectInput(uint64(i+1), 10)
		b.Append(in.n, in.eff)
	}
	if isReady(c0.Wait()) {
		t.Fatalf("Append woke a cursor by itself (writers notify once per batch)")
	}
	if !b.Unnotified() {
		t.Fatalf("Unnotified false after appends")
	}
	b.Notify()
	if b.Unnotified() {
		t.Fatalf("Unnotified true after Notify")
	}
	if !isReady(c0.Wait()) {
		t.Fatalf("cursor created before Append was not woken by Notify")
	}
	if isReady(c0.Wait()) {
		t.Fatalf("Wait channel holds more than one wake-up")
	}

	c := mustCursor(t, b, b.Last()+1)
	if isReady(c.Wait()) {
		t.Fatalf("new cursor's Wait ready before any Append")
	}
	for range 3 {
		if chunk, err := c.Next(1 << 20); chunk != nil || err != nil {
			t.Fatalf("up-to-date cursor: Next = %d bytes, %v", len(chunk), err)
		}
	}
	if c.Lag() != 0 {
		t.Fatalf("Lag %d at the end", c.Lag())
	}
	if _, err := b.NewCursor(b.Last() + 2); err == nil {
		t.Fatalf("NewCursor(Last()+2) succeeded")
	}

	in := effectInput(4, 123)
	if lsn := b.Append(in.n, in.eff); lsn != 4 {
		t.Fatalf("Append = %d", lsn)
	}
	b.Notify()
	select {
	case <-c.Wait():
	default:
		t.Fatalf("Wait did not receive after Append")
	}
	chunk, err := c.Next(1 << 20)
	if err != nil || !bytes.Equal(chunk, encode(4, in)) {
		t.Fatalf("Next after Append: %v, %d bytes, want record 4", err, len(chunk))
	}
	if chunk, err := c.Next(1 << 20); chunk != nil || err != nil {
		t.Fatalf("Next again: %d bytes, %v", len(chunk), err)
	}

	// A closed cursor is not woken.
	c.Close()
	in = effectInput(5, 1)
	b.Append(in.n, in.eff)
	b.Notify()
	if isReady(c.Wait()) {
		t.Fatalf("closed cursor was woken")
	}
	// Closing twice is harmless, the others still are woken.
	c.Close()
	isReady(c0.Wait())
	in = effectInput(6, 1)
	b.Append(in.n, in.eff)
	b.Notify()
	if !isReady(c0.Wait()) {
		t.Fatalf("remaining cursor not woken after another cursor closed")
	}
}

// TestBacklogDropsOldBlocks writes ~10 MiB into a 2 MiB backlog.
func TestBacklogDropsOldBlocks(t *testing.T) {
	const recLen = 10000
	const limit = 2 << 20
	perBlock := uint64(blockSize / recLen)
	b := New(limit, 1)
	expect := func(lsn uint64) []byte { return encode(lsn, sizedInput(lsn, recLen)) }
	add := func() uint64 {
		lsn := b.Last() + 1
		in := sizedInput(lsn, recLen)
		return b.Append(in.n, in.eff)
	}

	add()
	slow := mustCursor(t, b, 1)
	defer slow.Close()
	chunk, err := slow.Next(1)
	if err != nil {
		t.Fatal(err)
	}
	checkChunk(t, chunk, 1, expect)
	keep := mustCursor(t, b, 2) // keeps up with every append
	defer keep.Close()
	lazy := mustCursor(t, b, 1) // positioned, never read before the drop
	defer lazy.Close()

	for b.Last()*recLen < 10<<20 {
		add()
		drain(t, keep, 1<<20, expect)
		if keep.NextLSN() != b.Last()+1 {
			t.Fatalf("keeping-up cursor at %d, last %d", keep.NextLSN(), b.Last())
		}
		held, _, _ := b.Stats()
		if held > limit {
			t.Fatalf("backlog holds %d bytes, limit %d", held, limit)
		}
	}
	first, last := b.First(), b.Last()
	if first <= perBlock {
		t.Fatalf("First %d: the first block was not dropped", first)
	}
	held, lim, total := b.Stats()
	if lim != limit || total != int64(last)*recLen {
		t.Fatalf("Stats limit %d total %d", lim, total)
	}
	if held != int64(last-first+1)*recLen {
		t.Fatalf("held %d bytes, but records %d..%d are %d bytes", held, first, last, (last-first+1)*recLen)
	}
	if held <= limit-blockSize-recLen {
		t.Fatalf("held only %d bytes of a %d limit: dropped too much", held, limit)
	}

	// The slow cursor finishes the (dropped) block it holds, then falls
	// out of the backlog.
	next := uint64(2)
	for {
		chunk, err := slow.Next(3 * recLen)
		if err != nil {
			if !errors.Is(err, ErrBehind) {
				t.Fatalf("slow cursor: %v, want ErrBehind", err)
			}
			break
		}
		if chunk == nil {
			t.Fatalf("slow cursor: nil chunk at %d, want ErrBehind", next)
		}
		next, _ = checkChunk(t, chunk, next, expect)
	}
	if next != perBlock+1 {
		t.Fatalf("slow cursor read up to %d before ErrBehind; its block ended at %d", next-1, perBlock)
	}
	if next >= first {
		t.Fatalf("ErrBehind at %d though records from %d are held", next, first)
	}
	if b.Has(next) {
		t.Fatalf("Has(%d) true but the cursor fell behind there", next)
	}
	if _, err := slow.Next(1 << 20); !errors.Is(err, ErrBehind) {
		t.Fatalf("slow cursor, second time: %v, want ErrBehind", err)
	}
	// The lazy cursor also got to read its block.
	lazyRead := drainUntilErr(t, lazy, expect)
	if lazyRead != perBlock+1 {
		t.Fatalf("lazy cursor read to %d, want %d", lazyRead-1, perBlock)
	}

	for _, from := range []uint64{1, 2, perBlock + 1, first - 1} {
		if _, err := b.NewCursor(from); !errors.Is(err, ErrBehind) {
			t.Fatalf("NewCursor(%d) with First %d: %v, want ErrBehind", from, first, err)
		}
		if b.Has(from) {
			t.Fatalf("Has(%d) true with First %d", from, first)
		}
	}
	for _, from := range []uint64{first, first + 1, (first + last) / 2, last, last + 1} {
		if !b.Has(from) {
			t.Fatalf("Has(%d) false with First %d Last %d", from, first, last)
		}
		c := mustCursor(t, b, from)
		drain(t, c, 100000, expect)
		if c.NextLSN() != last+1 {
			t.Fatalf("cursor from %d stopped at %d", from, c.NextLSN())
		}
		c.Close()
	}
	if b.Has(last + 2) {
		t.Fatalf("Has(Last+2) true")
	}
}

// drainUntilErr reads c until ErrBehind and returns the LSN it wanted.
func drainUntilErr(t *testing.T, c *Cursor, expect func(uint64) []byte) uint64 {
	t.Helper()
	for {
		want := c.NextLSN()
		chunk, err := c.Next(1 << 20)
		if errors.Is(err, ErrBehind) {
			return want
		}
		if err != nil || chunk == nil {
			t.Fatalf("at %d: %d bytes, %v; want records then ErrBehind", want, len(chunk), err)
		}
		checkChunk(t, chunk, want, expect)
	}
}

// TestCursorSurvivesDropOfItsBlock: a cursor inside the oldest block
// when it is dropped finishes it and goes on, since the next block is
// still held.
func TestCursorSurvivesDropOfItsBlock(t *testing.T) {
	const recLen = 3000
	b := New(2<<20, 1)
	expect := func(lsn uint64) []byte { return encode(lsn, sizedInput(lsn, recLen)) }
	add := func() {
		lsn := b.Last() + 1
		in := sizedInput(lsn, recLen)
		b.Append(in.n, in.eff)
	}
	for range 10 {
		add()
	}
	c := mustCursor(t, b, 1)
	defer c.Close()
	chunk, err := c.Next(2 * recLen)
	if err != nil {
		t.Fatal(err)
	}
	checkChunk(t, chunk, 1, expect)
	for b.First() == 1 {
		add()
	}
	if b.Has(1) {
		t.Fatalf("Has(1) after the first block was dropped")
	}
	if _, err := b.NewCursor(3); !errors.Is(err, ErrBehind) {
		t.Fatalf("NewCursor(3): %v, want ErrBehind", err)
	}
	drain(t, c, 50000, expect)
	if c.NextLSN() != b.Last()+1 {
		t.Fatalf("cursor stopped at %d, last %d", c.NextLSN(), b.Last())
	}
}

// TestHugeRecordOverLimit: a record larger than the limit is kept alone
// until the next one.
func TestHugeRecordOverLimit(t *testing.T) {
	b := New(blockSize, 1)
	small := effectInput(1, 10)
	b.Append(small.n, small.eff)
	c := mustCursor(t, b, 1)
	defer c.Close()
	big := sizedInput(2, 3*blockSize)
	b.Append(big.n, big.eff)
	if b.First() != 2 || b.Last() != 2 {
		t.Fatalf("First %d Last %d, want 2 2", b.First(), b.Last())
	}
	if held, _, _ := b.Stats(); held != 3*blockSize {
		t.Fatalf("held %d", held)
	}
	// c holds record 1's block (dropped) and finishes it.
	chunk, err := c.Next(1)
	if err != nil || !bytes.Equal(chunk, encode(1, small)) {
		t.Fatalf("record 1: %v", err)
	}
	chunk, err = c.Next(1)
	if err != nil || !bytes.Equal(chunk, encode(2, big)) {
		t.Fatalf("record 2: %v, %d bytes", err, len(chunk))
	}
	small3 := effectInput(3, 10)
	b.Append(small3.n, small3.eff)
	if b.First() != 3 || b.Has(2) {
		t.Fatalf("after a small record: First %d, Has(2) %v", b.First(), b.Has(2))
	}
	chunk, err = c.Next(1 << 20)
	if err != nil || !bytes.Equal(chunk, encode(3, small3)) {
		t.Fatalf("record 3: %v", err)
	}
}

func TestSetLimitDrops(t *testing.T) {
	const recLen = 50000
	b := New(64<<20, 1)
	for b.Last()*recLen < 8<<20 {
		in := sizedInput(b.Last()+1, recLen)
		b.Append(in.n, in.eff)
	}
	if b.First() != 1 {
		t.Fatalf("dropped under a 64 MiB limit: First %d", b.First())
	}
	b.SetLimit(blockSize)
	if b.First() != 1 {
		t.Fatalf("SetLimit dropped before the next append")
	}
	for b.First() == 1 {
		in := sizedInput(b.Last()+1, recLen)
		b.Append(in.n, in.eff)
	}
	held, limit, _ := b.Stats()
	if limit != blockSize || held > blockSize {
		t.Fatalf("held %d limit %d", held, limit)
	}
	if b.First() != b.Last() {
		t.Fatalf("one-block backlog just after a new block: First %d Last %d", b.First(), b.Last())
	}
}

func TestAppendEncodedAndTee(t *testing.T) {
	b := New(4<<20, 10)
	in := effectInput(0, 20)
	for _, wrong := range []uint64{9, 11, 0, 1 << 50} {
		if err := b.AppendEncoded(encode(wrong, in)); err == nil {
			t.Fatalf("AppendEncoded of record %d where 10 is next succeeded", wrong)
		}
	}
	if b.Last() != 9 || b.First() != 0 {
		t.Fatalf("rejected records changed the backlog: First %d Last %d", b.First(), b.Last())
	}
	c := mustCursor(t, b, 10)
	defer c.Close()
	rec10 := encode(10, in)
	orig := bytes.Clone(rec10)
	if err := b.AppendEncoded(rec10); err != nil {
		t.Fatalf("AppendEncoded(10): %v", err)
	}
	for i := range rec10 { // the backlog must have copied it
		rec10[i] = 0xEE
	}
	if b.Last() != 10 || b.First() != 10 {
		t.Fatalf("First %d Last %d after record 10", b.First(), b.Last())
	}
	if err := b.AppendEncoded(orig); err == nil {
		t.Fatalf("AppendEncoded of record 10 twice succeeded")
	}
	// Append continues the numbering.
	in11 := effectInput(11, 5)
	if lsn := b.Append(in11.n, in11.eff); lsn != 11 {
		t.Fatalf("Append after AppendEncoded = %d", lsn)
	}
	// Tee in sequence.
	rec12 := encode(12, effectInput(12, 7))
	b.Tee(rec12)
	rec12c := bytes.Clone(rec12)
	rec12[len(rec12)-1] ^= 0xFF
	want := [][]byte{orig, encode(11, in11), rec12c}
	chunk, err := c.Next(1 << 20)
	if err != nil || !bytes.Equal(chunk, bytes.Join(want, nil)) {
		t.Fatalf("records 10-12 read back wrong: %v", err)
	}
	if b.First() != 10 || b.Last() != 12 {
		t.Fatalf("First %d Last %d", b.First(), b.Last())
	}

	// Tee with a gap resets the backlog to the new LSN.
	rec20 := encode(20, effectInput(20, 9))
	b.Tee(rec20)
	if b.First() != 20 || b.Last() != 20 {
		t.Fatalf("after a gap: First %d Last %d, want 20 20", b.First(), b.Last())
	}
	if held, _, _ := b.Stats(); held != int64(len(rec20)) {
		t.Fatalf("after a gap: held %d, want %d", held, len(rec20))
	}
	for _, lsn := range []uint64{10, 12, 13, 19} {
		if b.Has(lsn) {
			t.Fatalf("Has(%d) after a reset to 20", lsn)
		}
		if _, err := b.NewCursor(lsn); !errors.Is(err, ErrBehind) {
			t.Fatalf("NewCursor(%d) after reset to 20: %v, want ErrBehind", lsn, err)
		}
	}
	if _, err := c.Next(1 << 20); !errors.Is(err, ErrBehind) {
		t.Fatalf("cursor waiting for 13 after reset to 20: %v, want ErrBehind", err)
	}
	c20 := mustCursor(t, b, 20)
	chunk, err = c20.Next(1 << 20)
	if err != nil || !bytes.Equal(chunk, rec20) {
		t.Fatalf("record 20: %v", err)
	}
	c20.Close()
	if err := b.AppendEncoded(encode(21, in)); err != nil {
		t.Fatalf("AppendEncoded(21) after reset: %v", err)
	}
	// A tee going backwards resets as well.
	rec5 := encode(5, effectInput(5, 1))
	b.Tee(rec5)
	if b.First() != 5 || b.Last() != 5 || b.Has(20) {
		t.Fatalf("after a backward tee: First %d Last %d", b.First(), b.Last())
	}
	c5 := mustCursor(t, b, 5)
	chunk, err = c5.Next(1 << 20)
	if err != nil || !bytes.Equal(chunk, rec5) {
		t.Fatalf("record 5: %v", err)
	}
	c5.Close()
}

func TestReset(t *testing.T) {
	b := New(4<<20, 1)
	for i := range 100 {
		in := effectInput(uint64(i+1), 1000)
		b.Append(in.n, in.eff)
	}
	old := mustCursor(t, b, 101) // up to date
	defer old.Close()
	b.Reset(500)
	if b.First() != 0 || b.Last() != 499 {
		t.Fatalf("after Reset: First %d Last %d", b.First(), b.Last())
	}
	if held, _, _ := b.Stats(); held != 0 {
		t.Fatalf("after Reset: held %d", held)
	}
	if !b.Has(500) || b.Has(1) || b.Has(100) || b.Has(101) || b.Has(501) {
		t.Fatalf("Has wrong after Reset(500)")
	}
	if _, err := b.NewCursor(1); !errors.Is(err, ErrBehind) {
		t.Fatalf("NewCursor(1) after Reset: %v, want ErrBehind", err)
	}
	if _, err := b.NewCursor(499); !errors.Is(err, ErrBehind) {
		t.Fatalf("NewCursor(499) after Reset: %v, want ErrBehind", err)
	}
	if _, err := b.NewCursor(501); err == nil {
		t.Fatalf("NewCursor(501) after Reset(500) succeeded")
	}
	c := mustCursor(t, b, 500)
	defer c.Close()
	if chunk, err := c.Next(1 << 20); chunk != nil || err != nil {
		t.Fatalf("empty after Reset: %d bytes, %v", len(chunk), err)
	}
	if c.Lag() != 0 {
		t.Fatalf("Lag %d on an empty backlog", c.Lag())
	}
	in := effectInput(500, 10)
	if lsn := b.Append(in.n, in.eff); lsn != 500 {
		t.Fatalf("Append after Reset(500) = %d", lsn)
	}
	if b.First() != 500 || b.Last() != 500 {
		t.Fatalf("First %d Last %d", b.First(), b.Last())
	}
	if c.Lag() != int64(len(encode(500, in))) {
		t.Fatalf("Lag %d, want %d", c.Lag(), len(encode(500, in)))
	}
	chunk, err := c.Next(1 << 20)
	if err != nil || !bytes.Equal(chunk, encode(500, in)) {
		t.Fatalf("record 500: %v", err)
	}
	if c.Lag() != 0 {
		t.Fatalf("Lag %d after reading", c.Lag())
	}
	// The cursor that waited for 101 cannot continue.
	if _, err := old.Next(1 << 20); !errors.Is(err, ErrBehind) {
		t.Fatalf("cursor at 101 after Reset(500): %v, want ErrBehind", err)
	}
}

func TestLag(t *testing.T) {
	b := New(1<<30, 1)
	c := mustCursor(t, b, 1)
	defer c.Close()
	if c.Lag() != 0 {
		t.Fatalf("Lag %d on an empty backlog", c.Lag())
	}
	var lens []int64
	var sum int64
	add := func(size int) {
		lsn := b.Last() + 1
		in := sizedInput(lsn, size)
		b.Append(in.n, in.eff)
		lens = append(lens, int64(size))
		sum += int64(size)
		if c.Lag() != sum {
			t.Fatalf("after appending %d: Lag %d, want %d", lsn, c.Lag(), sum)
		}
	}
	for _, s := range []int{100, 200, 5000} {
		add(s)
	}
	// Read one record at a time.
	chunk, err := c.Next(1)
	if err != nil || len(chunk) != 100 {
		t.Fatalf("Next(1): %d bytes, %v", len(chunk), err)
	}
	sum -= 100
	if c.Lag() != sum {
		t.Fatalf("Lag %d, want %d", c.Lag(), sum)
	}
	// Appends spanning several blocks.
	for range 12 {
		add(300 << 10)
	}
	add(2 * blockSize)
	add(50)
	// A cursor from record 3 lags by the bytes from record 3 on.
	c3 := mustCursor(t, b, 3)
	var from3 int64
	for _, l := range lens[2:] {
		from3 += l
	}
	if c3.Lag() != from3 {
		t.Fatalf("cursor from 3: Lag %d, want %d", c3.Lag(), from3)
	}
	c3.Close()
	for sum > 0 {
		chunk, err := c.Next(200 << 10)
		if err != nil || chunk == nil {
			t.Fatalf("Next: %d bytes, %v with Lag %d", len(chunk), err, sum)
		}
		sum -= int64(len(chunk))
		if c.Lag() != sum {
			t.Fatalf("Lag %d, want %d", c.Lag(), sum)
		}
	}
	if sum != 0 || c.NextLSN() != b.Last()+1 {
		t.Fatalf("read past the end: sum %d, next %d", sum, c.NextLSN())
	}
	// Up to date, holding the last block: Lag 0, and it grows again.
	add(77)
	add(88)
}

// TestConcurrentAppendAndRead: one writer, two readers blocked on Wait,
// one goroutine polling the read-only accessors (for -race).
func TestConcurrentAppendAndRead(t *testing.T) {
	const start = 1000
	n := uint64(200_000)
	if testing.Short() {
		n = 20_000
	}
	last := start + n - 1
	input := func(lsn uint64) rin { // small records, deterministic in lsn
		return effectInput(lsn, int(lsn*7919%97))
	}
	b := New(1<<30, start)

	var readers []*Cursor
	for range 2 {
		readers = append(readers, mustCursor(t, b, start))
	}
	var wg sync.WaitGroup
	errc := make(chan error, 8)
	for ri, c := range readers {
		maxBytes := []int{1, 16 << 10}[ri]
		wg.Go(func() {
			defer c.Close()
			var kept [][]byte
			want := uint64(start)
			for want <= last {
				chunk, err := c.Next(maxBytes)
				if err != nil {
					errc <- fmt.Errorf("reader %d at %d: %v", ri, want, err)
					return
				}
				if chunk == nil {
					<-c.Wait()
					continue
				}
				if want, _, err = walkChunk(chunk, want, func(lsn uint64) []byte { return encode(lsn, input(lsn)) }); err != nil {
					errc <- fmt.Errorf("reader %d: %v", ri, err)
					return
				}
				if len(chunk) > maxBytes && persist.RecordLen(chunk) != len(chunk) {
					errc <- fmt.Errorf("reader %d: %d bytes > maxBytes %d", ri, len(chunk), maxBytes)
					return
				}
				if c.NextLSN() != want {
					errc <- fmt.Errorf("reader %d: NextLSN %d, want %d", ri, c.NextLSN(), want)
					return
				}
				kept = append(kept, chunk)
			}
			// Nothing handed out was overwritten meanwhile.
			want = start
			for _, chunk := range kept {
				for off := 0; off < len(chunk); {
					l := persist.RecordLen(chunk[off:])
					if lsn, _, err := persist.CheckRecord(chunk[off : off+l]); err != nil || lsn != want {
						errc <- fmt.Errorf("reader %d: kept chunk changed at %d: %v", ri, want, err)
						return
					}
					off += l
					want++
				}
			}
			if c.Lag() != 0 {
				errc <- fmt.Errorf("reader %d: Lag %d at the end", ri, c.Lag())
			}
		})
	}
	stop := make(chan struct{})
	var pollers sync.WaitGroup
	pollers.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			f, l := b.First(), b.Last()
			if f != 0 && (f != start || l < f-1) {
				errc <- fmt.Errorf("poller: First %d Last %d", f, l)
				return
			}
			if !b.Has(start) {
				errc <- fmt.Errorf("poller: Has(%d) false", start)
				return
			}
			b.Stats()
		}
	})
	wg.Go(func() {
		for lsn := uint64(start); lsn <= last; lsn++ {
			in := input(lsn)
			if got := b.Append(in.n, in.eff); got != lsn {
				errc <- fmt.Errorf("writer: Append = %d, want %d", got, lsn)
				return
			}
			if lsn%64 == 0 || lsn == last {
				b.Notify() // once per batch, as the event loops do
			}
		}
	})
	wg.Wait()
	close(stop)
	pollers.Wait()
	close(errc)
	for err := range errc {
		t.Error(err)
	}
	if b.Last() != last {
		t.Fatalf("Last %d, want %d", b.Last(), last)
	}
	var total int64
	for lsn := uint64(start); lsn <= last; lsn++ {
		total += int64(len(encode(lsn, input(lsn))))
	}
	if _, _, tot := b.Stats(); tot != total {
		t.Fatalf("total %d, want %d", tot, total)
	}
}

// TestConcurrentSmallBacklog: readers on a small backlog either keep up
// or get ErrBehind, never a wrong or partial record, never another error.
func TestConcurrentSmallBacklog(t *testing.T) {
	const start = 1
	const n = 30_000
	input := func(lsn uint64) rin { return effectInput(lsn, int(lsn%1500)) }
	b := New(blockSize, start)
	var wg sync.WaitGroup
	errc := make(chan error, 8)
	for ri := range 3 {
		c := mustCursor(t, b, start)
		wg.Go(func() {
			defer func() { c.Close() }()
			want := uint64(start)
			for want < start+n {
				chunk, err := c.Next([]int{1, 4096, 1 << 20}[ri])
				if errors.Is(err, ErrBehind) {
					// Start over from the oldest record held.
					c.Close()
					for {
						f := b.First()
						nc, err := b.NewCursor(f)
						if err == nil {
							c = nc
							want = f
							break
						}
						if !errors.Is(err, ErrBehind) {
							errc <- fmt.Errorf("reader %d: NewCursor(%d): %v", ri, f, err)
							return
						}
					}
					continue
				}
				if err != nil {
					errc <- fmt.Errorf("reader %d at %d: %v", ri, want, err)
					return
				}
				if chunk == nil {
					<-c.Wait()
					continue
				}
				if want, _, err = walkChunk(chunk, want, func(lsn uint64) []byte { return encode(lsn, input(lsn)) }); err != nil {
					errc <- fmt.Errorf("reader %d: %v", ri, err)
					return
				}
			}
		})
	}
	wg.Go(func() {
		for lsn := uint64(start); lsn < start+n; lsn++ {
			in := input(lsn)
			b.Append(in.n, in.eff)
			if lsn%64 == 0 || lsn == start+n-1 {
				b.Notify()
			}
		}
	})
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Error(err)
	}
}

func TestClosedCursorRefusesNext(t *testing.T) {
	b := New(1<<20, 1)
	c := mustCursor(t, b, 1)
	in := effectInput(1, 10)
	b.Append(in.n, in.eff)
	c.Close()
	if chunk, err := c.Next(1 << 20); chunk != nil || err != ErrClosed {
		t.Fatalf("Next after Close = %d bytes, %v; want ErrClosed", len(chunk), err)
	}
}

func TestMappedBlocksAreFreed(t *testing.T) {
	buf, mapping := allocBlock(blockSize)
	if len(buf) != blockSize {
		t.Fatalf("block of %d bytes", len(buf))
	}
	buf[0], buf[blockSize-1] = 1, 2
	if mapping == nil {
		t.Skip("no mmap here: blocks come from the Go heap")
	}
	if uintptrOf(buf)%blockSize != 0 {
		t.Fatalf("block not %d-aligned", blockSize)
	}
	if err := syscall.Munmap(mapping); err != nil {
		t.Fatalf("unmapping a block's mapping: %v", err)
	}
}
