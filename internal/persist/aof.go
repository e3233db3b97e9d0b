package persist

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// The append-only log.
//
// A record is one atomic unit of change (a command, a transaction, an
// expiry) as a list of effects, each bound to one slot:
//
//	segment = header record*
//	header  = magic "SHOALAOF" (8) | version uint32 | first LSN uint64 |
//	          crc uint32 (of the 20 bytes before)
//	record  = length uint32 (of payload) | crc uint32 (of lsn and payload) |
//	          lsn uint64 | payload
//	payload = uvarint n | n × effect
//	effect  = uvarint slot+1 (0: every slot) | uvarint nargs |
//	          nargs × (uvarint len, bytes)
//
// Sequence numbers (LSNs) are consecutive within and across segments.
// Segments are named <base>.<6-digit index> in the log directory; a new
// one starts at every snapshot (and at every start-up), and the ones
// before it are removed once the snapshot is durable.

// Fsync policies (appendfsync).
const (
	FsyncAlways = iota
	FsyncEverySec
	FsyncNo
)

// ParseFsync maps appendfsync's values to a policy.
func ParseFsync(s string) (int, bool) {
	switch strings.ToLower(s) {
	case "always":
		return FsyncAlways, true
	case "everysec":
		return FsyncEverySec, true
	case "no":
		return FsyncNo, true
	}
	return 0, false
}

const (
	logMagic        = "SHOALAOF"
	LogVersion      = 1
	logHeaderLen    = 8 + 4 + 8 + 4
	RecordHeaderLen = 4 + 4 + 8
	// MaxRecord bounds one record's payload (a transaction of huge values
	// may approach it; the reader refuses larger lengths as corruption).
	MaxRecord = 1<<32 - 1
)

// SegmentName is the file name of segment index idx.
func SegmentName(base string, idx int) string { return fmt.Sprintf("%s.%06d", base, idx) }

// ParseSegmentName returns the index of a segment file name of base.
func ParseSegmentName(base, name string) (int, bool) {
	rest, ok := strings.CutPrefix(name, base+".")
	if !ok || len(rest) < 6 {
		return 0, false
	}
	n, err := strconv.Atoi(rest)
	if err != nil || n <= 0 {
		return 0, false
	}
	return n, true
}

// Segments lists the segment indexes of base in dir, ascending.
func Segments(fsys FS, dir, base string) ([]int, error) {
	if fsys == nil {
		fsys = OS
	}
	names, err := fsys.List(dir)
	if err != nil {
		return nil, err
	}
	var out []int
	for _, n := range names {
		if i, ok := ParseSegmentName(base, n); ok {
			out = append(out, i)
		}
	}
	return out, nil
}

// AppendEffect appends one effect to a payload under construction.
func AppendEffect(b []byte, slot int, args ...[]byte) []byte {
	b = binary.AppendUvarint(b, uint64(slot+1))
	b = binary.AppendUvarint(b, uint64(len(args)))
	for _, a := range args {
		b = binary.AppendUvarint(b, uint64(len(a)))
		b = append(b, a...)
	}
	return b
}

// AllSlots is the slot of an effect on the whole keyspace (FLUSHALL).
const AllSlots = -1

// Log writes records to the current segment. Append is called by the
// writers (with their slots locked, so the LSN order of the records of
// one slot is the order their effects were applied); a flusher goroutine
// writes the buffered records and fsyncs as the policy says.
//
// Disk errors: a failed write or fsync sets Err (the server then refuses
// writes) and keeps every byte not known to be durable in memory; the
// flusher retries, truncating the segment back to its last durable size
// and writing those bytes again, so nothing that was reported written is
// ever lost to a failed fsync, and Err clears once the disk works again.
type ctlReq struct {
	rotate bool
	reply  chan error
}

type Log struct {
	fsys FS
	dir  string
	base string

	policy     atomic.Int32
	groupDelay atomic.Int64 // ns the flusher waits before an always-fsync (SetGroupCommitDelay)

	mu     sync.Mutex
	buf    []byte // records not yet taken by the flusher
	bufHi  uint64 // last LSN in buf
	bufLo  uint64 // first LSN in buf
	next   uint64 // next LSN to assign
	closed bool
	kick   chan struct{}
	tee    func(rec []byte) // SetTee

	last    atomic.Uint64 // last LSN assigned
	written atomic.Uint64 // highest LSN handed to the OS (write returned)
	durable atomic.Uint64 // highest LSN fsynced
	err     atomic.Pointer[error]
	size    atomic.Int64 // bytes of the current segment, as written
	total   atomic.Int64 // bytes of all segments
	seg     atomic.Int64 // current segment index
	errs    atomic.Int64 // failed writes / fsyncs so far

	// OnProgress is called (from the flusher) after written or durable
	// advanced; the server wakes clients waiting for their records.
	OnProgress func()

	// State guarded by wmu (the flusher, and event loops in WriteNow).
	// The batches taken from buf are kept, not
	// copied, until they are durable (fsynced; written under "no"), so a
	// failed write or fsync can write them again.
	wmu       sync.Mutex
	f         File
	fileOff   int64    // bytes of the segment known good (durable for always/everysec, written for no)
	pend      blockBuf // the bytes after fileOff, not known durable (written or not)
	pendHi    uint64   // LSN of the last record in pend
	nWrit     int      // bytes of pend written to the file (valid unless dirtyFile)
	dirtyFile bool     // the file may hold bytes past fileOff that must be cut
	gen       int      // bumped when the file is cut back
	settles   int      // bumped by every settle
	lastSync  time.Time
	spare     []byte // the other half of the Append double buffer

	ctl  chan ctlReq
	stop chan struct{}
	done chan struct{}
}

// OpenLog starts a new segment (index after every existing one) whose
// first record will get sequence number next, and starts the flusher.
func OpenLog(fsys FS, dir, base string, next uint64, policy int) (*Log, error) {
	if fsys == nil {
		fsys = OS
	}
	if err := fsys.MkdirAll(dir); err != nil {
		return nil, fmt.Errorf("create log directory %q: %w", dir, err)
	}
	segs, err := Segments(fsys, dir, base)
	if err != nil {
		return nil, fmt.Errorf("list log directory %q: %w", dir, err)
	}
	l := &Log{fsys: fsys, dir: dir, base: base, next: next, kick: make(chan struct{}, 1),
		ctl: make(chan ctlReq), stop: make(chan struct{}), done: make(chan struct{})}
	l.policy.Store(int32(policy))
	l.written.Store(next - 1)
	l.last.Store(next - 1)
	l.durable.Store(next - 1)
	idx := 1
	var total int64
	for _, s := range segs {
		idx = s + 1
		if n, err := fsys.Size(filepath.Join(dir, SegmentName(base, s))); err == nil {
			total += n
		}
	}
	if err := l.startSegment(idx); err != nil {
		return nil, err
	}
	l.total.Store(total + logHeaderLen)
	l.lastSync = time.Now()
	go l.flusher()
	return l, nil
}

// startSegment creates segment idx with its header, durably.
func (l *Log) startSegment(idx int) error {
	path := filepath.Join(l.dir, SegmentName(l.base, idx))
	f, err := l.fsys.Create(path)
	if err != nil {
		return fmt.Errorf("create log segment %q: %w", path, err)
	}
	var h [logHeaderLen]byte
	copy(h[:], logMagic)
	binary.LittleEndian.PutUint32(h[8:], LogVersion)
	l.mu.Lock()
	first := l.next
	if len(l.buf) > 0 {
		first = l.bufLo // appended after the old segment's last flush
	}
	l.mu.Unlock()
	binary.LittleEndian.PutUint64(h[12:], first)
	binary.LittleEndian.PutUint32(h[20:], crc32.Checksum(h[:20], castagnoli))
	if _, err := f.Write(h[:]); err != nil {
		f.Close()
		l.fsys.Remove(path)
		return fmt.Errorf("write log segment %q: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		l.fsys.Remove(path)
		return fmt.Errorf("fsync log segment %q: %w", path, err)
	}
	if err := l.fsys.SyncDir(l.dir); err != nil {
		f.Close()
		return fmt.Errorf("fsync log directory %q: %w", l.dir, err)
	}
	l.f = f
	l.fileOff = logHeaderLen
	l.dirtyFile = false
	l.seg.Store(int64(idx))
	l.size.Store(logHeaderLen)
	return nil
}

// Append adds a record of n effects (encoded with AppendEffect, back to
// back) and returns its LSN.
func (l *Log) Append(n int, effects []byte) uint64 {
	l.mu.Lock()
	lsn := l.next
	at := len(l.buf)
	l.buf = AppendRecord(l.buf, lsn, n, effects)
	l.addedLocked(lsn, at)
	l.mu.Unlock()
	// The flusher is not woken here: the event loops write (WriteNow) or
	// write and fsync (SyncNow, under always) the records of each loop
	// iteration before they answer; the flusher fsyncs every second,
	// retries after errors and catches up records no client waits for
	// (expiries) every 100 ms. (Waking it per record as well cost 6-22%
	// of throughput under always: its fsyncs competed with the loops'.)
	return lsn
}

// AppendEncoded appends a record encoded elsewhere (a replica logging
// its primary's records as received): its LSN must be the next one.
func (l *Log) AppendEncoded(rec []byte) (uint64, error) {
	lsn := RecordLSN(rec)
	l.mu.Lock()
	if lsn != l.next {
		next := l.next
		l.mu.Unlock()
		return 0, fmt.Errorf("record %d appended where record %d is next", lsn, next)
	}
	at := len(l.buf)
	l.buf = append(l.buf, rec...)
	l.addedLocked(lsn, at)
	l.mu.Unlock()
	return lsn, nil
}

// addedLocked accounts record lsn, just put at buf[at:] (mu held).
func (l *Log) addedLocked(lsn uint64, at int) {
	l.next = lsn + 1
	if at == 0 {
		l.bufLo = lsn
	}
	l.bufHi = lsn
	l.last.Store(lsn)
	if l.tee != nil {
		l.tee(l.buf[at:])
	}
}

// SetTee makes every appended record also go to fn (called with the
// log's lock held, in LSN order; fn must copy what it keeps). onSet, if
// not nil, is called under the same lock with the LSN of the last record
// appended before fn was set. A nil fn removes the tee.
func (l *Log) SetTee(fn func(rec []byte), onSet func(last uint64)) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.tee = fn
	if onSet != nil {
		onSet(l.next - 1)
	}
}

// AppendRecord appends one encoded record (header and payload) to b.
func AppendRecord(b []byte, lsn uint64, n int, effects []byte) []byte {
	var cnt [binary.MaxVarintLen64]byte
	cn := binary.PutUvarint(cnt[:], uint64(n))
	plen := cn + len(effects)
	at := len(b)
	b = append(b, make([]byte, RecordHeaderLen)...)
	b = append(b, cnt[:cn]...)
	b = append(b, effects...)
	h := b[at:]
	binary.LittleEndian.PutUint32(h[0:], uint32(plen))
	binary.LittleEndian.PutUint64(h[8:], lsn)
	binary.LittleEndian.PutUint32(h[4:], crc32.Checksum(h[8:RecordHeaderLen+plen], castagnoli))
	return b
}

// RecordLSN is the LSN in an encoded record's header.
func RecordLSN(rec []byte) uint64 { return binary.LittleEndian.Uint64(rec[8:]) }

// RecordLen is the total length of the encoded record at the start of
// b (header included), or 0 if b does not hold a whole header.
func RecordLen(b []byte) int {
	if len(b) < RecordHeaderLen {
		return 0
	}
	return RecordHeaderLen + int(binary.LittleEndian.Uint32(b))
}

// CheckRecord verifies a whole encoded record's checksum and returns its
// LSN and payload.
func CheckRecord(rec []byte) (uint64, []byte, error) {
	if len(rec) < RecordHeaderLen || RecordLen(rec) != len(rec) {
		return 0, nil, errors.New("short record")
	}
	if crc32.Checksum(rec[8:], castagnoli) != binary.LittleEndian.Uint32(rec[4:]) {
		return 0, nil, fmt.Errorf("record %d: checksum mismatch", RecordLSN(rec))
	}
	return RecordLSN(rec), rec[RecordHeaderLen:], nil
}

// Last is the LSN of the last record appended.
func (l *Log) Last() uint64 { return l.last.Load() }

// Acked is the highest LSN a client may be told is persisted: fsynced
// under always, handed to the OS otherwise.
func (l *Log) Acked() uint64 {
	if l.policy.Load() == FsyncAlways {
		return l.durable.Load()
	}
	return l.written.Load()
}

// Written and Durable are the highest LSNs written and fsynced.
func (l *Log) Written() uint64 { return l.written.Load() }
func (l *Log) Durable() uint64 { return l.durable.Load() }

// Err is the last disk error, nil once writing works again.
func (l *Log) Err() error {
	if p := l.err.Load(); p != nil {
		return *p
	}
	return nil
}

// SetGroupCommitDelay sets how long the flusher waits, under always,
// between being woken by a record and taking the batch to fsync.
func (l *Log) SetGroupCommitDelay(d time.Duration) { l.groupDelay.Store(int64(d)) }

// Policy is the current appendfsync policy.
func (l *Log) Policy() int { return int(l.policy.Load()) }

// SetPolicy changes appendfsync.
func (l *Log) SetPolicy(p int) {
	l.policy.Store(int32(p))
	l.wake()
	if l.OnProgress != nil {
		// What may be acknowledged changed (always -> everysec: written
		// records no longer wait for their fsync).
		l.OnProgress()
	}
}

// Size is the size of the current segment; TotalSize of all segments.
func (l *Log) Size() int64      { return l.size.Load() }
func (l *Log) TotalSize() int64 { return l.total.Load() }

// Segment is the current segment index.
func (l *Log) Segment() int { return int(l.seg.Load()) }

// Buffered is the number of bytes appended but not yet written.
func (l *Log) Buffered() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.buf)
}

// Errors counts failed writes and fsyncs.
func (l *Log) Errors() int64 { return l.errs.Load() }

func (l *Log) wake() {
	select {
	case l.kick <- struct{}{}:
	default:
	}
}

func (l *Log) flusher() {
	defer close(l.done)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-l.kick:
		case <-tick.C:
		case req := <-l.ctl:
			if req.rotate {
				req.reply <- l.doRotate()
			} else {
				l.flush(true)
				req.reply <- l.Err()
			}
			continue
		case <-l.stop:
			l.flush(true)
			return
		}
		l.flush(false)
	}
}

// flush writes what was appended and fsyncs as the policy (or final)
// says; on error it records it and leaves everything to the next try.
func (l *Log) flush(final bool) {
	if d := l.groupDelay.Load(); !final && d > 0 && l.policy.Load() == FsyncAlways {
		// Let the event loops finish the read batch they are in, so that
		// one fsync covers more writers (measured: +10-15% throughput and
		// half the p99 at 50 clients with 100 µs, fsync ~0.5 ms here).
		time.Sleep(time.Duration(d))
	}
	l.wmu.Lock()
	l.takeBatch()
	if l.pend.len() == 0 && l.written.Load() == l.durable.Load() {
		l.wmu.Unlock()
		return
	}
	policy := int(l.policy.Load())
	progressed := false
	if l.nWrit < l.pend.len() || l.dirtyFile {
		if err := l.writeUnsure(); err != nil {
			l.wmu.Unlock()
			l.fail(err)
			return
		}
		progressed = true
	}
	needSync := final || policy == FsyncAlways ||
		policy == FsyncEverySec && time.Since(l.lastSync) >= time.Second
	if needSync && l.durable.Load() < l.written.Load() {
		// The fsync runs without wmu: event loops keep writing (WriteNow)
		// meanwhile; it covers what was written before it started.
		hi, n, f, gen, settles := l.written.Load(), l.nWrit, l.f, l.gen, l.settles
		l.wmu.Unlock()
		err := f.Sync()
		l.wmu.Lock()
		if err != nil {
			// After a failed fsync the kernel may have dropped the dirty
			// pages: the bytes since the last good fsync are written again.
			l.dirtyFile = true
			l.written.Store(l.durable.Load())
			l.wmu.Unlock()
			l.fail(fmt.Errorf("fsync %s: %w", SegmentName(l.base, l.Segment()), err))
			return
		}
		l.lastSync = time.Now()
		if !l.dirtyFile && l.gen == gen {
			// A settle meanwhile (SyncNow on a loop: it fsynced all it
			// had written, which includes these n bytes) already moved
			// them out of pend.
			if l.settles == settles {
				l.settle(n)
			}
			if l.durable.Load() < hi {
				l.durable.Store(hi)
			}
		}
		progressed = true
	} else if policy == FsyncNo {
		// Nothing is kept for a later fsync under "no".
		l.settle(l.nWrit)
	}
	l.wmu.Unlock()
	if l.err.Load() != nil {
		l.err.Store(nil)
	}
	if progressed && l.OnProgress != nil {
		l.OnProgress()
	}
}

// WriteNow writes every record appended so far to the OS, on the
// caller's goroutine (an event loop, before it answers: one write for
// the records of a whole read batch, no hand-off to the flusher). The
// flusher still fsyncs (everysec) and retries after errors.
func (l *Log) WriteNow() error {
	l.wmu.Lock()
	defer l.wmu.Unlock()
	l.takeBatch()
	if l.nWrit < l.pend.len() || l.dirtyFile {
		if err := l.writeUnsure(); err != nil {
			l.fail(err)
			return err
		}
		if l.policy.Load() == FsyncNo {
			l.settle(l.nWrit)
		}
	}
	return nil
}

// SyncNow writes and fsyncs every record appended so far on the caller's
// goroutine (an event loop under always, once per loop iteration: the
// fsync covers every connection of the iteration, as redis-server does in
// its event loop). It returns the disk error, if any.
func (l *Log) SyncNow() error {
	l.wmu.Lock()
	l.takeBatch()
	err := l.syncLocked()
	l.wmu.Unlock()
	if err != nil {
		return err
	}
	if l.OnProgress != nil {
		l.OnProgress() // clients of other loops waiting (served pops)
	}
	return nil
}

// syncLocked writes what pend holds unwritten and fsyncs it, with wmu
// held (SyncNow, and doRotate before it closes a segment). A failed fsync
// makes the bytes since the last good one be written again.
func (l *Log) syncLocked() error {
	if l.nWrit < l.pend.len() || l.dirtyFile {
		if err := l.writeUnsure(); err != nil {
			l.fail(err)
			return err
		}
	}
	if l.durable.Load() >= l.written.Load() {
		return nil
	}
	hi, n := l.written.Load(), l.nWrit
	if err := l.f.Sync(); err != nil {
		l.dirtyFile = true
		l.written.Store(l.durable.Load())
		err = fmt.Errorf("fsync %s: %w", SegmentName(l.base, l.Segment()), err)
		l.fail(err)
		return err
	}
	l.lastSync = time.Now()
	l.settle(n)
	if l.durable.Load() < hi {
		l.durable.Store(hi)
	}
	return nil
}

// takeBatch moves the appended records to pend (wmu held): the Append
// buffer is swapped with a spare, both keep their capacity, and the
// records are copied once into pend, which keeps its capacity too.
func (l *Log) takeBatch() {
	l.mu.Lock()
	batch, hi := l.buf, l.bufHi
	l.buf = l.spare[:0]
	l.mu.Unlock()
	if len(batch) > 0 {
		l.pend.append(batch)
		l.pendHi = hi
	}
	l.spare = batch[:0]
	if cap(l.spare) > 8<<20 {
		l.spare = nil
	}
}

// settle makes the first n written bytes of pend part of the known-good
// file (wmu held).
func (l *Log) settle(n int) {
	l.settles++
	l.fileOff += int64(n)
	l.pend.drop(n)
	l.nWrit -= n
}

// writeUnsure writes the bytes of pend not yet written: only the new ones
// normally, all of them (after cutting the file back) following an error.
func (l *Log) writeUnsure() error {
	name := SegmentName(l.base, l.Segment())
	if l.dirtyFile {
		if err := l.f.Truncate(l.fileOff); err != nil {
			return fmt.Errorf("truncate %s: %w", name, err)
		}
		l.dirtyFile = false
		l.gen++ // an fsync running now does not cover what is written next
		l.total.Add(l.fileOff - l.size.Load())
		l.size.Store(l.fileOff)
		l.nWrit = 0
	}
	if l.nWrit == l.pend.len() {
		return nil
	}
	err := l.pend.each(l.nWrit, func(b []byte) error {
		n, err := l.f.Write(b)
		l.size.Add(int64(n))
		l.total.Add(int64(n))
		if err == nil && n < len(b) {
			err = errors.New("short write")
		}
		return err
	})
	if err != nil {
		l.dirtyFile = true
		return fmt.Errorf("write %s: %w", name, err)
	}
	l.nWrit = l.pend.len()
	l.written.Store(l.pendHi)
	return nil
}

func (l *Log) fail(err error) {
	l.errs.Add(1)
	l.err.Store(&err)
}

// Rotate finishes the current segment (written and fsynced) and starts
// the next; it returns the new segment's index. Every record appended
// before Rotate was called is in an older segment.
func (l *Log) Rotate() (int, error) {
	reply := make(chan error, 1)
	select {
	case l.ctl <- ctlReq{rotate: true, reply: reply}:
	case <-l.done:
		return 0, errors.New("log closed")
	}
	if err := <-reply; err != nil {
		return 0, err
	}
	return l.Segment(), nil
}

func (l *Log) doRotate() error {
	l.flush(true)
	l.wmu.Lock()
	defer l.wmu.Unlock()
	// Records a loop wrote during the final flush's fsync belong to the
	// old segment too: they must be durable before it is closed.
	if l.Err() == nil && l.pend.len() > 0 {
		if err := l.syncLocked(); err != nil {
			return err
		}
	}
	if l.Err() != nil || l.pend.len() > 0 {
		return fmt.Errorf("cannot finish log segment: %w", l.Err())
	}
	old := l.f
	if err := l.startSegment(l.Segment() + 1); err != nil {
		l.fail(err)
		return err
	}
	l.total.Add(logHeaderLen)
	old.Close()
	return nil
}

// RemoveBefore deletes the segments with an index below idx (their
// records are all in a durable snapshot).
func (l *Log) RemoveBefore(idx int) error {
	segs, err := Segments(l.fsys, l.dir, l.base)
	if err != nil {
		return err
	}
	var firstErr error
	for _, s := range segs {
		if s >= idx {
			continue
		}
		path := filepath.Join(l.dir, SegmentName(l.base, s))
		n, _ := l.fsys.Size(path)
		if err := l.fsys.Remove(path); err != nil && firstErr == nil {
			firstErr = err
			continue
		}
		l.total.Add(-n)
	}
	if err := l.fsys.SyncDir(l.dir); err != nil && firstErr == nil {
		firstErr = err
	}
	return firstErr
}

// Close writes and fsyncs everything appended, stops the flusher and
// closes the segment. It returns the disk error, if writing failed.
func (l *Log) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	l.mu.Unlock()
	close(l.stop)
	<-l.done
	err := l.Err()
	if cerr := l.f.Close(); err == nil {
		err = cerr
	}
	return err
}

// Sync flushes and fsyncs now (SHUTDOWN, tests); it returns the disk error.
func (l *Log) Sync() error {
	reply := make(chan error, 1)
	select {
	case l.ctl <- ctlReq{reply: reply}:
	case <-l.done:
		return errors.New("log closed")
	}
	return <-reply
}
