// Package repl holds the pieces of primary→replica replication that do
// not depend on the server: the backlog of encoded records that replicas
// read from, and the framing of a full copy on the wire.
package repl

import (
	"errors"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"

	"shoal/internal/persist"
)

// The backlog keeps the most recent records of the replication stream,
// encoded as in the append-only log (persist.AppendRecord), in blocks of
// blockSize bytes. It is fed in LSN order, either by the log's tee or by
// Append when the log is off, and read by one Cursor per replica.
//
// Readers get slices of blocks, which are never written again below the
// length they were given, so a sender writes them to its socket with no
// lock held. When the backlog holds more than its limit, the oldest
// blocks are dropped; a cursor still inside a dropped block finishes it
// and then finds that the next record is gone (ErrBehind): the replica
// fell out of the backlog and needs a full copy. A replica's output
// buffer is therefore the shared backlog itself: a slow replica costs at
// most the one block it is reading, never a copy of the stream.

const blockSize = 2 << 20

// ErrBehind is returned to a cursor whose next record left the backlog.
var ErrBehind = errors.New("the replica fell out of the backlog")

type freeBuf struct{ buf, mapping []byte }

type block struct {
	first uint64 // LSN of the block's first record
	start int64  // stream byte offset of the block's first byte
	buf   []byte // records; bytes below n are immutable
	n     int    // bytes in use (under Backlog.mu)
	last  uint64 // LSN of the block's last record (under Backlog.mu)

	// Recycling (under Backlog.mu): a block dropped from the backlog is
	// reused (or unmapped) once no cursor is inside it; a cursor is done
	// with the slices it got from a block when it moves to the next.
	readers int
	dropped bool
	mapping []byte // the mmap'd region holding buf (nil: Go heap)
}

// Backlog is a bounded, shared buffer of the newest records.
type Backlog struct {
	mu       sync.Mutex
	blocks   []*block
	size     int64  // bytes in blocks
	limit    int64  // repl-backlog-size
	next     uint64 // LSN the next record must have
	total    int64  // bytes ever appended (stream byte offset of the end)
	subs     []chan struct{}
	notified uint64    // last LSN at the last Notify
	free     []freeBuf // mapped block buffers ready for reuse

	last  atomic.Uint64 // LSN of the last record
	first atomic.Uint64 // LSN of the oldest record held (0: none)
}

// New returns an empty backlog whose first record will be next.
func New(limit int64, next uint64) *Backlog {
	b := &Backlog{limit: max(limit, blockSize), next: next}
	b.last.Store(next - 1)
	return b
}

// SetLimit changes repl-backlog-size (takes effect at the next append).
func (b *Backlog) SetLimit(limit int64) {
	b.mu.Lock()
	b.limit = max(limit, blockSize)
	b.mu.Unlock()
}

// Append encodes and appends a record with the next LSN and returns it
// (used when the append-only log is off).
func (b *Backlog) Append(n int, effects []byte) uint64 {
	size := persist.RecordHeaderLen + uvarintLen(uint64(n)) + len(effects)
	b.mu.Lock()
	lsn := b.next
	cur := b.roomLocked(lsn, size)
	// Encoded in place: the block has room for it (no intermediate copy).
	persist.AppendRecord(cur.buf[cur.n:cur.n:cur.n+size], lsn, n, effects)
	b.placedLocked(cur, lsn, size)
	b.mu.Unlock()
	return lsn
}

func uvarintLen(v uint64) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}

// AppendEncoded appends an encoded record, whose LSN must be the next one.
func (b *Backlog) AppendEncoded(rec []byte) error {
	lsn := persist.RecordLSN(rec)
	b.mu.Lock()
	defer b.mu.Unlock()
	if lsn != b.next {
		return fmt.Errorf("record %d appended to the backlog where %d is next", lsn, b.next)
	}
	b.addLocked(lsn, rec)
	return nil
}

// Tee is the log's tee (persist.Log.SetTee): records the log numbered.
// A record out of sequence (never expected) resets the backlog to it.
func (b *Backlog) Tee(rec []byte) {
	lsn := persist.RecordLSN(rec)
	b.mu.Lock()
	if lsn != b.next {
		b.resetLocked(lsn)
	}
	b.addLocked(lsn, rec)
	b.mu.Unlock()
}

// Reset empties the backlog; the next record will be next (a replica
// that took a full copy continues its primary's numbering).
func (b *Backlog) Reset(next uint64) {
	b.mu.Lock()
	b.resetLocked(next)
	b.mu.Unlock()
}

func (b *Backlog) resetLocked(next uint64) {
	for _, bl := range b.blocks {
		b.dropLocked(bl)
	}
	b.blocks = nil
	b.size = 0
	b.next = next
	b.notified = next - 1
	b.last.Store(next - 1)
	b.first.Store(0)
	b.total += blockSize // cursors' byte positions can never match again
}

func (b *Backlog) addLocked(lsn uint64, rec []byte) {
	cur := b.roomLocked(lsn, len(rec))
	copy(cur.buf[cur.n:], rec)
	b.placedLocked(cur, lsn, len(rec))
}

// roomLocked returns the block record lsn of size bytes goes into,
// starting a new one (and dropping the oldest past the limit) if the
// current one lacks room.
func (b *Backlog) roomLocked(lsn uint64, size int) *block {
	var cur *block
	if len(b.blocks) > 0 {
		cur = b.blocks[len(b.blocks)-1]
	}
	if cur == nil || cur.n+size > len(cur.buf) {
		cur = &block{first: lsn, start: b.total}
		if n := len(b.free); n > 0 && size <= blockSize {
			cur.buf, cur.mapping = b.free[n-1].buf, b.free[n-1].mapping
			b.free = b.free[:n-1]
		} else {
			cur.buf, cur.mapping = allocBlock(max(blockSize, size))
		}
		b.blocks = append(b.blocks, cur)
		b.size += int64(len(cur.buf))
		for b.size > b.limit && len(b.blocks) > 1 {
			old := b.blocks[0]
			b.blocks[0] = nil
			b.blocks = b.blocks[1:]
			b.size -= int64(len(old.buf))
			b.dropLocked(old)
		}
		b.first.Store(b.blocks[0].first)
	}
	return cur
}

// placedLocked accounts record lsn of size bytes written at cur.buf[cur.n:].
func (b *Backlog) placedLocked(cur *block, lsn uint64, size int) {
	cur.n += size
	cur.last = lsn
	b.total += int64(size)
	b.next = lsn + 1
	b.last.Store(lsn)
	if b.first.Load() == 0 {
		b.first.Store(lsn)
	}
}

// Notify wakes every cursor's Wait channel. Appends do not: the writer
// notifies once per batch of records (an event-loop iteration), so an
// idle sender wakes once per batch, not once per record.
func (b *Backlog) Notify() {
	b.mu.Lock()
	b.notified = max(b.notified, b.next-1)
	for _, c := range b.subs {
		select {
		case c <- struct{}{}:
		default:
		}
	}
	b.mu.Unlock()
}

// MarkNotified records that every cursor was served or woken up to
// record upTo (by its owner, per cursor).
func (b *Backlog) MarkNotified(upTo uint64) {
	b.mu.Lock()
	b.notified = max(b.notified, upTo)
	b.mu.Unlock()
}

// Wake wakes this cursor's Wait channel.
func (c *Cursor) Wake() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// Unnotified reports whether records were appended since the last Notify.
func (b *Backlog) Unnotified() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.notified != b.next-1
}

// dropLocked marks a block gone from the backlog and recycles it unless a
// cursor is still inside it.
func (b *Backlog) dropLocked(bl *block) {
	bl.dropped = true
	if bl.readers == 0 {
		b.recycleLocked(bl)
	}
}

func (b *Backlog) recycleLocked(bl *block) {
	if bl.mapping == nil {
		return // the collector takes it
	}
	f := freeBuf{bl.buf, bl.mapping}
	bl.buf, bl.mapping = nil, nil
	if len(b.free) < 2 {
		b.free = append(b.free, f)
	} else {
		freeBlock(f.mapping)
	}
}

// setBlock moves cursor c to block bl (nil: none), releasing the previous.
func (b *Backlog) setBlockLocked(c *Cursor, bl *block) {
	if c.blk == bl {
		return
	}
	if old := c.blk; old != nil {
		old.readers--
		if old.dropped && old.readers == 0 {
			b.recycleLocked(old)
		}
	}
	if bl != nil {
		bl.readers++
	}
	c.blk = bl
}

// Last is the LSN of the last record (the primary's offset).
func (b *Backlog) Last() uint64 { return b.last.Load() }

// First is the LSN of the oldest record held, 0 when empty.
func (b *Backlog) First() uint64 { return b.first.Load() }

// Stats returns the bytes held, the limit and the bytes ever appended.
func (b *Backlog) Stats() (held, limit, total int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, bl := range b.blocks {
		held += int64(bl.n)
	}
	return held, b.limit, b.total
}

// Has reports whether a reader wanting record from on can be served:
// every record from `from` to the last is held (from = last+1 is a reader
// that is up to date).
func (b *Backlog) Has(from uint64) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if from == b.next {
		return true
	}
	return len(b.blocks) > 0 && from >= b.blocks[0].first && from < b.next
}

// Cursor reads the backlog from one position on.
type Cursor struct {
	b    *Backlog
	next uint64 // LSN of the next record to read
	blk  *block
	off  int
	pos  int64 // stream byte offset of the next byte to read
	wake chan struct{}
	done bool // closed (under Backlog.mu)
}

// ErrClosed is returned by Next on a closed cursor.
var ErrClosed = errors.New("backlog cursor closed")

// NewCursor returns a cursor whose first record is from; it fails with
// ErrBehind if that record is no longer (or not yet) held.
func (b *Backlog) NewCursor(from uint64) (*Cursor, error) {
	c := &Cursor{b: b, next: from, wake: make(chan struct{}, 1)}
	b.mu.Lock()
	defer b.mu.Unlock()
	if from > b.next {
		return nil, fmt.Errorf("record %d is past the end of the stream (%d)", from, b.next-1)
	}
	if err := c.seekLocked(); err != nil {
		return nil, err
	}
	b.subs = append(b.subs, c.wake)
	return c, nil
}

// seekLocked positions blk/off on record c.next.
func (c *Cursor) seekLocked() error {
	b := c.b
	if c.next == b.next {
		b.setBlockLocked(c, nil)
		c.off, c.pos = 0, b.total
		return nil
	}
	if len(b.blocks) == 0 || c.next < b.blocks[0].first {
		return ErrBehind
	}
	i := sort.Search(len(b.blocks), func(i int) bool { return b.blocks[i].first > c.next }) - 1
	blk := b.blocks[i]
	off := 0
	for off < blk.n {
		if persist.RecordLSN(blk.buf[off:]) == c.next {
			b.setBlockLocked(c, blk)
			c.off, c.pos = off, blk.start+int64(off)
			return nil
		}
		off += persist.RecordLen(blk.buf[off:])
	}
	return fmt.Errorf("record %d not found in the backlog", c.next)
}

// Wait returns a channel that receives after records were appended.
func (c *Cursor) Wait() <-chan struct{} { return c.wake }

// Next returns the next run of whole records (at most max bytes unless
// one record is larger), or nil if the cursor is at the end. The slice
// stays valid and unchanged; the cursor moves past it.
func (c *Cursor) Next(maxBytes int) ([]byte, error) {
	b := c.b
	b.mu.Lock()
	defer b.mu.Unlock()
	if c.done {
		return nil, ErrClosed
	}
	if c.blk == nil || c.off >= c.blk.n {
		if c.next == b.next {
			return nil, nil // up to date
		}
		if c.blk != nil && len(b.blocks) > 0 && c.blk == b.blocks[len(b.blocks)-1] {
			return nil, nil // the rest will be written to this block
		}
		if err := c.seekLocked(); err != nil {
			return nil, err
		}
	}
	blk := c.blk
	if blk == nil || c.off >= blk.n {
		return nil, nil
	}
	end := blk.n
	if end-c.off > maxBytes {
		// Cut at a record boundary.
		end = c.off
		for end < blk.n {
			l := persist.RecordLen(blk.buf[end:])
			if end > c.off && end+l-c.off > maxBytes {
				break
			}
			end += l
		}
	}
	out := blk.buf[c.off:end:end]
	// The LSN after the run: the last record's LSN + 1.
	last := end
	for p := c.off; p < end; {
		last = p
		p += persist.RecordLen(blk.buf[p:])
	}
	c.next = persist.RecordLSN(blk.buf[last:]) + 1
	c.pos += int64(end - c.off)
	c.off = end
	return out, nil
}

// NextLSN is the LSN of the next record the cursor will return.
func (c *Cursor) NextLSN() uint64 { return c.next }

// Lag is the bytes appended that the cursor has not read.
func (c *Cursor) Lag() int64 {
	c.b.mu.Lock()
	defer c.b.mu.Unlock()
	if c.blk == nil && c.next == c.b.next {
		return 0
	}
	return c.b.total - c.pos
}

// Close detaches the cursor.
func (c *Cursor) Close() {
	b := c.b
	b.mu.Lock()
	defer b.mu.Unlock()
	c.done = true
	b.setBlockLocked(c, nil)
	for i, w := range b.subs {
		if w == c.wake {
			b.subs = append(b.subs[:i], b.subs[i+1:]...)
			break
		}
	}
}
