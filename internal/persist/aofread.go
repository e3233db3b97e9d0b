package persist

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"path/filepath"
)

// LogCorruptError reports a log that cannot be replayed: the segment file,
// the offset of the bad record and what is wrong.
type LogCorruptError struct {
	Path   string
	Offset int64
	Reason string
}

func (e *LogCorruptError) Error() string {
	return fmt.Sprintf("corrupt log segment %q at offset %d: %s", e.Path, e.Offset, e.Reason)
}

func (e *LogCorruptError) Is(target error) bool { return target == ErrCorrupt }

// TornTail is an incomplete last record: the crash happened while it was
// being written. Everything from Offset on is cut.
type TornTail struct {
	Path   string
	Offset int64 // where the valid part of the file ends
	Size   int64 // the file's size
}

// LogInfo describes what ReadLog found.
type LogInfo struct {
	Segments    []int
	Records     uint64
	First, Last uint64 // LSNs of the first and last record (0, 0: none)
	Next        uint64 // the LSN the next record must get
	Bytes       int64
	Torn        *TornTail
}

// ReadLog reads every segment of base in dir in order and calls fn with
// each record's LSN and payload (valid until fn returns). Checksums, the
// payload structure and LSN continuity are verified. An incomplete last
// record of the last segment is reported in Torn (not an error: the
// caller cuts it); any other damage is a *LogCorruptError.
func ReadLog(fsys FS, dir, base string, fn func(lsn uint64, payload []byte) error) (LogInfo, error) {
	if fsys == nil {
		fsys = OS
	}
	segs, err := Segments(fsys, dir, base)
	if err != nil {
		return LogInfo{}, err
	}
	info := LogInfo{Segments: segs}
	var expect uint64 // next LSN expected; 0 = take the first header's
	for i, s := range segs {
		path := filepath.Join(dir, SegmentName(base, s))
		last := i == len(segs)-1
		st, err := readSegment(fsys, path, expect, last, fn)
		info.Bytes += st.valid
		if info.First == 0 && st.records > 0 {
			info.First = st.first
		}
		info.Records += st.records
		expect = st.next
		if err != nil {
			if info.Records > 0 {
				info.Last = expect - 1
			}
			return info, err
		}
		if st.torn != nil {
			info.Torn = st.torn
		}
	}
	info.Next = expect
	if info.Records > 0 {
		info.Last = expect - 1
	}
	return info, nil
}

type segStats struct {
	first, next uint64
	records     uint64
	valid       int64
	torn        *TornTail
}

// readSegment reads one segment; expect is the LSN its first record must
// carry (0: whatever its header says).
func readSegment(fsys FS, path string, expect uint64, last bool, fn func(uint64, []byte) error) (segStats, error) {
	st := segStats{next: expect}
	size, err := fsys.Size(path)
	if err != nil {
		return st, err
	}
	rc, err := fsys.Open(path)
	if err != nil {
		return st, err
	}
	defer rc.Close()
	// The buffer is no larger than the segment: reading many small
	// segments (or a short damaged one) costs what they hold.
	r := bufio.NewReaderSize(rc, int(min(size, 1<<20)))
	bad := func(off int64, format string, a ...any) error {
		return &LogCorruptError{Path: path, Offset: off, Reason: fmt.Sprintf(format, a...)}
	}
	var h [logHeaderLen]byte
	if size < logHeaderLen {
		if last {
			// Crash while the segment was being created.
			st.torn = &TornTail{Path: path, Offset: 0, Size: size}
			return st, nil
		}
		return st, bad(0, "segment shorter than its header (%d bytes)", size)
	}
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return st, fmt.Errorf("read %q: %w", path, err)
	}
	if string(h[:8]) != logMagic {
		return st, bad(0, "bad magic %q: not a Shoal log segment", h[:8])
	}
	if crc32.Checksum(h[:20], castagnoli) != binary.LittleEndian.Uint32(h[20:]) {
		return st, bad(0, "header checksum mismatch")
	}
	if v := binary.LittleEndian.Uint32(h[8:]); v != LogVersion {
		return st, bad(8, "unsupported log version %d (this build reads version %d)", v, LogVersion)
	}
	first := binary.LittleEndian.Uint64(h[12:])
	if expect != 0 && first != expect {
		return st, bad(12, "segment starts at sequence number %d, the previous one ended before %d: records are missing", first, expect)
	}
	st.first, st.next = first, first
	off := int64(logHeaderLen)
	st.valid = off
	var buf []byte
	var scratch [][]byte
	for off < size {
		torn := func(why string) (segStats, error) {
			if !last {
				return st, bad(off, "%s in a segment that is not the last", why)
			}
			st.torn = &TornTail{Path: path, Offset: off, Size: size}
			return st, nil
		}
		if size-off < RecordHeaderLen {
			return torn("incomplete record header")
		}
		var rh [RecordHeaderLen]byte
		if _, err := io.ReadFull(r, rh[:]); err != nil {
			return st, fmt.Errorf("read %q: %w", path, err)
		}
		plen := int64(binary.LittleEndian.Uint32(rh[0:]))
		if off+RecordHeaderLen+plen > size {
			if zeros(rh[:]) {
				return torn("zero-filled tail")
			}
			// A damaged length field also runs past the end: if a valid
			// record with the next sequence number follows, this is damage
			// in the middle, and cutting here would drop records that were
			// on disk (and acknowledged).
			rest, err := io.ReadAll(io.LimitReader(r, size-off-RecordHeaderLen))
			if err != nil {
				return st, fmt.Errorf("read %q: %w", path, err)
			}
			if at := findRecord(rest, st.next+1); at >= 0 {
				return st, bad(off, "record length %d runs past the end of the file, but a valid record %d follows at offset %d: the length is damaged",
					plen, st.next+1, off+RecordHeaderLen+int64(at))
			}
			return torn("record runs past the end of the file")
		}
		// Read the payload in steps: a garbage length cannot make the
		// buffer larger than the bytes that are there.
		buf = buf[:0]
		for int64(len(buf)) < plen {
			step := min(plen-int64(len(buf)), max(int64(len(buf)), 1<<20))
			l := len(buf)
			buf = append(buf, make([]byte, step)...)
			if _, err := io.ReadFull(r, buf[l:]); err != nil {
				return st, fmt.Errorf("read %q: %w", path, err)
			}
		}
		lsn := binary.LittleEndian.Uint64(rh[8:])
		c := crc32.Update(crc32.Checksum(rh[8:16], castagnoli), castagnoli, buf)
		if c != binary.LittleEndian.Uint32(rh[4:]) {
			end := off + RecordHeaderLen + plen
			if end == size {
				return torn("checksum mismatch in the last record")
			}
			if zeros(rh[:]) && zeros(buf) && restZero(r) {
				return torn("zero-filled tail")
			}
			return st, bad(off, "checksum mismatch in record of %d bytes (sequence number %d expected)", plen, st.next)
		}
		if lsn != st.next {
			return st, bad(off, "sequence number %d where %d was expected", lsn, st.next)
		}
		if err := checkPayload(buf, &scratch); err != nil {
			return st, bad(off, "record %d: %v", lsn, err)
		}
		if err := fn(lsn, buf); err != nil {
			return st, fmt.Errorf("apply record %d at offset %d of %q: %w", lsn, off, path, err)
		}
		st.next++
		st.records++
		off += RecordHeaderLen + plen
		st.valid = off
	}
	return st, nil
}

// findRecord returns the offset in b of a complete record with sequence
// number lsn and a valid checksum, or -1.
func findRecord(b []byte, lsn uint64) int {
	var want [8]byte
	binary.LittleEndian.PutUint64(want[:], lsn)
	for p := 0; p+RecordHeaderLen <= len(b); p++ {
		i := bytes.Index(b[p+8:], want[:])
		if i < 0 {
			return -1
		}
		p += i
		plen := int(binary.LittleEndian.Uint32(b[p:]))
		if end := p + RecordHeaderLen + plen; end <= len(b) && end >= p {
			c := crc32.Checksum(b[p+8:end], castagnoli)
			if c == binary.LittleEndian.Uint32(b[p+4:]) {
				return p
			}
		}
	}
	return -1
}

func zeros(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

func restZero(r *bufio.Reader) bool {
	buf := make([]byte, 64<<10)
	for {
		n, err := r.Read(buf)
		if !zeros(buf[:n]) {
			return false
		}
		if err != nil {
			return errors.Is(err, io.EOF)
		}
	}
}

// checkPayload verifies a payload's structure.
func checkPayload(p []byte, scratch *[][]byte) error {
	return ForEachEffectBuf(p, scratch, func(int, [][]byte) error { return nil })
}

// ForEachEffect decodes a payload and calls fn with each effect's slot
// (AllSlots for the whole keyspace) and arguments, which alias p and are
// collected in args (reused).
func ForEachEffect(p []byte, args [][]byte, fn func(slot int, args [][]byte) error) error {
	return ForEachEffectBuf(p, &args, fn)
}

// ForEachEffectBuf is ForEachEffect collecting the arguments in *scratch,
// which keeps its grown capacity for the next call (replay of millions of
// records without an allocation each).
func ForEachEffectBuf(p []byte, scratch *[][]byte, fn func(slot int, args [][]byte) error) error {
	args := (*scratch)[:0]
	defer func() { *scratch = args[:0] }()
	n, k := binary.Uvarint(p)
	if k <= 0 {
		return errors.New("bad effect count")
	}
	p = p[k:]
	if n == 0 || n > uint64(len(p)) {
		return fmt.Errorf("bad effect count %d", n)
	}
	for range n {
		s, k := binary.Uvarint(p)
		if k <= 0 || s > 16384 {
			return errors.New("bad effect slot")
		}
		p = p[k:]
		na, k := binary.Uvarint(p)
		if k <= 0 || na == 0 || na > uint64(len(p)) {
			return errors.New("bad argument count")
		}
		p = p[k:]
		args = args[:0]
		for range na {
			l, k := binary.Uvarint(p)
			if k <= 0 || l > uint64(len(p)-k) {
				return errors.New("argument runs past the record")
			}
			args = append(args, p[k:k+int(l)])
			p = p[k+int(l):]
		}
		if err := fn(int(s)-1, args); err != nil {
			return err
		}
	}
	if len(p) != 0 {
		return fmt.Errorf("%d stray bytes after the effects", len(p))
	}
	return nil
}

// CutTorn truncates the file of a torn tail at its offset (removing a
// segment that has not even a complete header).
func CutTorn(fsys FS, t *TornTail) error {
	if fsys == nil {
		fsys = OS
	}
	if t.Offset == 0 {
		if err := fsys.Remove(t.Path); err != nil {
			return err
		}
	} else if err := fsys.Truncate(t.Path, t.Offset); err != nil {
		return err
	}
	return fsys.SyncDir(filepath.Dir(t.Path))
}

// CheckLog verifies a log: path is the log directory (every segment of
// base, in order) or one segment file (checked on its own). It reports
// what a start-up would see: a torn tail in Torn, damage as a
// *LogCorruptError.
func CheckLog(fsys FS, path, base string) (LogInfo, error) {
	if fsys == nil {
		fsys = OS
	}
	if _, err := fsys.List(path); err == nil {
		return ReadLog(fsys, path, base, func(uint64, []byte) error { return nil })
	}
	st, err := readSegment(fsys, path, 0, true, func(uint64, []byte) error { return nil })
	info := LogInfo{Records: st.records, Bytes: st.valid, Torn: st.torn, Next: st.next}
	if st.records > 0 {
		info.First, info.Last = st.first, st.next-1
	}
	return info, err
}

// RepairLog cuts the log at a damage: the damaged segment is truncated at
// the bad record and every later segment is removed (their records would
// follow a gap). It returns the files removed. Records after the damage
// are lost: this is the operator's explicit choice (check-aof --fix).
func RepairLog(fsys FS, dir, base string, ce *LogCorruptError) ([]string, error) {
	if fsys == nil {
		fsys = OS
	}
	if err := fsys.Truncate(ce.Path, ce.Offset); err != nil {
		return nil, err
	}
	segs, err := Segments(fsys, dir, base)
	if err != nil {
		return nil, err
	}
	idx, _ := ParseSegmentName(base, filepath.Base(ce.Path))
	var removed []string
	for _, s := range segs {
		if s > idx && idx > 0 {
			p := filepath.Join(dir, SegmentName(base, s))
			if err := fsys.Remove(p); err != nil {
				return removed, err
			}
			removed = append(removed, p)
		}
	}
	return removed, fsys.SyncDir(dir)
}
