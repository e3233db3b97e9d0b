package persist_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"path/filepath"
	"runtime/metrics"
	"testing"

	"shoal/internal/persist"
	"shoal/internal/persist/faultfs"
)

// The log reader faces files written by a process that may have crashed
// at any byte, on disks that may return garbage: its length fields are
// untrusted. FuzzReadLog checks that no segment makes it panic, allocate
// more than a bound proportional to the file, or fail with anything but
// a *persist.LogCorruptError (a torn tail is reported, not an error; the
// in-memory file system has no I/O errors), and that what it reports is
// consistent: consecutive sequence numbers, a torn tail that once cut
// leaves a clean log with the same records, and the same segment followed
// by another one reading as damage where it was a torn tail.

const (
	fuzzDir  = "/d"
	fuzzBase = "appendonly.aof"
	segHdr   = 24 // magic, version, first LSN, crc
	recHdr   = 16 // length, crc, lsn
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// segHeader is a valid segment header whose first record is first.
func segHeader(first uint64) []byte {
	h := make([]byte, segHdr)
	copy(h, "SHOALAOF")
	binary.LittleEndian.PutUint32(h[8:], persist.LogVersion)
	binary.LittleEndian.PutUint64(h[12:], first)
	binary.LittleEndian.PutUint32(h[20:], crc32.Checksum(h[:20], castagnoli))
	return h
}

// fixChecksums returns seg with the header's and every complete record's
// checksum recomputed, so that mutated payloads get past the checksums to
// the payload decoder.
func fixChecksums(seg []byte) []byte {
	seg = bytes.Clone(seg)
	if len(seg) < segHdr || string(seg[:8]) != "SHOALAOF" {
		return seg
	}
	binary.LittleEndian.PutUint32(seg[20:], crc32.Checksum(seg[:20], castagnoli))
	for off := segHdr; off+recHdr <= len(seg); {
		plen := int(binary.LittleEndian.Uint32(seg[off:]))
		end := off + recHdr + plen
		if plen > len(seg) || end > len(seg) {
			break
		}
		c := crc32.Update(crc32.Checksum(seg[off+8:off+16], castagnoli), castagnoli, seg[off+recHdr:end])
		binary.LittleEndian.PutUint32(seg[off+4:], c)
		off = end
	}
	return seg
}

// fuzzSeeds are segments written by the log itself, and damaged copies.
func fuzzSeeds(tb testing.TB) map[string][]byte {
	fsys := faultfs.New()
	l, err := persist.OpenLog(fsys, fuzzDir, fuzzBase, 1, persist.FsyncAlways)
	if err != nil {
		tb.Fatal(err)
	}
	l.Append(1, persist.AppendEffect(nil, 7, []byte("set"), []byte("k"), []byte("v")))
	two := persist.AppendEffect(nil, 100, []byte("lpush"), []byte("l"), []byte("a"), []byte("b"))
	two = persist.AppendEffect(two, 200, []byte("del"), []byte("x"))
	l.Append(2, two)
	l.Append(1, persist.AppendEffect(nil, persist.AllSlots, []byte("\x00flush")))
	l.Append(1, persist.AppendEffect(nil, 16383, []byte("\x00put"), bytes.Repeat([]byte("z"), 40)))
	l.Append(1, persist.AppendEffect(nil, 0, []byte("incr"), []byte("n")))
	if err := l.Close(); err != nil {
		tb.Fatal(err)
	}
	valid, _ := fsys.ReadFile(filepath.Join(fuzzDir, persist.SegmentName(fuzzBase, 1)))
	if len(valid) < 150 {
		tb.Fatalf("seed segment of %d bytes", len(valid))
	}
	// Offsets of the records.
	var offs []int
	for off := segHdr; off < len(valid); off += recHdr + int(binary.LittleEndian.Uint32(valid[off:])) {
		offs = append(offs, off)
	}
	flipped := bytes.Clone(valid)
	flipped[offs[1]+recHdr+3] ^= 0x40
	huge := append(bytes.Clone(valid), 0xf0, 0xff, 0xff, 0xff, 1, 2, 3, 4, 6, 0, 0, 0, 0, 0, 0, 0, 'x')
	hugeMid := bytes.Clone(valid)
	binary.LittleEndian.PutUint32(hugeMid[offs[2]:], 0xffffffff)
	// A record with a valid checksum whose payload claims 2^62 effects
	// and then an argument count of 2^62.
	bogus := binary.AppendUvarint(nil, 1)
	bogus = binary.AppendUvarint(bogus, 1)
	bogus = binary.AppendUvarint(bogus, 1<<62)
	bogus = append(bogus, 1, 'a')
	rec := make([]byte, recHdr)
	binary.LittleEndian.PutUint32(rec, uint32(len(bogus)))
	binary.LittleEndian.PutUint64(rec[8:], uint64(len(offs)+1))
	rec = append(rec, bogus...)
	bogusArgs := fixChecksums(append(bytes.Clone(valid), rec...))
	return map[string][]byte{
		"valid-multi-record":  valid,
		"records-only":        valid[segHdr:], // the target prepends a header
		"torn-tail":           valid[:len(valid)-5],
		"torn-header":         valid[:offs[len(offs)-1]+7],
		"flipped-byte":        flipped,
		"zero-filled-tail":    append(bytes.Clone(valid), make([]byte, 200)...),
		"huge-length":         huge,
		"huge-length-middle":  hugeMid,
		"huge-argument-count": bogusArgs,
		"short-header":        valid[:12],
	}
}

func FuzzReadLog(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		seg := data
		if !bytes.HasPrefix(data, []byte("SHOALAOF")) {
			seg = append(segHeader(1), data...)
		}
		checkSegment(t, seg)
		checkSegment(t, fixChecksums(seg))
	})
}

type readResult struct {
	info    persist.LogInfo
	err     error
	lsns    []uint64
	effects int
}

func readFuzzLog(t *testing.T, fsys persist.FS) readResult {
	var res readResult
	var args [][]byte
	res.info, res.err = persist.ReadLog(fsys, fuzzDir, fuzzBase, func(lsn uint64, p []byte) error {
		res.lsns = append(res.lsns, lsn)
		// ReadLog verified the payload: decoding it again must work.
		if err := persist.ForEachEffect(p, args, func(slot int, a [][]byte) error {
			args = a
			if slot < persist.AllSlots || slot >= 16384 || len(a) == 0 {
				t.Fatalf("record %d: effect on slot %d with %d arguments", lsn, slot, len(a))
			}
			res.effects++
			return nil
		}); err != nil {
			t.Fatalf("record %d passed the reader's check but does not decode: %v", lsn, err)
		}
		return nil
	})
	if res.err != nil {
		var ce *persist.LogCorruptError
		if !errors.As(res.err, &ce) || !errors.Is(res.err, persist.ErrCorrupt) {
			t.Fatalf("error is not a LogCorruptError: %T %v", res.err, res.err)
		}
	}
	return res
}

// allocated is the bytes allocated so far by the process.
func allocated() uint64 {
	s := []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

func checkSegment(t *testing.T, seg []byte) {
	path1 := filepath.Join(fuzzDir, persist.SegmentName(fuzzBase, 1))
	fsys := faultfs.New()
	fsys.WriteFile(path1, seg)

	var res readResult
	read := func() uint64 {
		before := allocated()
		res = readFuzzLog(t, fsys)
		return allocated() - before
	}
	// The payload buffer and the argument slices grow only with what is
	// in the file (24 bytes of slice header per one-byte argument); the
	// in-memory file system copies the file once more on open, and a
	// zero-filled tail is checked through a 64 KiB buffer. The counter is
	// the process's: an excess is confirmed by reading again (the fuzzing
	// engine's own goroutines allocate now and then).
	limit := uint64(64*len(seg) + 128<<10)
	got := read()
	for i := 0; i < 3 && got > limit; i++ {
		got = min(got, read())
	}
	if got > limit {
		t.Fatalf("reading a segment of %d bytes allocated %d bytes (limit %d)", len(seg), got, limit)
	}

	info, err := res.info, res.err
	var ce *persist.LogCorruptError
	if err != nil {
		errors.As(err, &ce)
		if ce.Path != path1 || ce.Offset < 0 || ce.Offset > int64(len(seg)) {
			t.Fatalf("damage reported at %q offset %d in a file of %d bytes", ce.Path, ce.Offset, len(seg))
		}
	}
	if uint64(len(res.lsns)) != info.Records {
		t.Fatalf("%d records seen, %d reported", len(res.lsns), info.Records)
	}
	for i := 1; i < len(res.lsns); i++ {
		if res.lsns[i] != res.lsns[i-1]+1 {
			t.Fatalf("sequence numbers %d then %d", res.lsns[i-1], res.lsns[i])
		}
	}
	if len(res.lsns) > 0 && (info.First != res.lsns[0] || info.Last != res.lsns[len(res.lsns)-1]) {
		t.Fatalf("first/last %d/%d, records %d..%d", info.First, info.Last, res.lsns[0], res.lsns[len(res.lsns)-1])
	}
	if info.Bytes < 0 || info.Bytes > int64(len(seg)) {
		t.Fatalf("%d valid bytes in a file of %d", info.Bytes, len(seg))
	}
	if err == nil && info.Torn == nil && info.Bytes != int64(len(seg)) {
		t.Fatalf("clean log of %d bytes, %d valid", len(seg), info.Bytes)
	}
	if torn := info.Torn; torn != nil {
		if err != nil {
			t.Fatalf("torn tail and an error: %v", err)
		}
		if torn.Path != path1 || torn.Size != int64(len(seg)) || torn.Offset < 0 || torn.Offset >= torn.Size ||
			torn.Offset != info.Bytes {
			t.Fatalf("torn tail %+v in a file of %d bytes (%d valid)", *torn, len(seg), info.Bytes)
		}
	}

	// CheckLog on the file alone agrees with ReadLog.
	ci, cerr := persist.CheckLog(fsys, path1, fuzzBase)
	if (cerr == nil) != (err == nil) || ci.Records != info.Records || (ci.Torn == nil) != (info.Torn == nil) {
		t.Fatalf("CheckLog: %d records, torn %v, err %v; ReadLog: %d records, torn %v, err %v",
			ci.Records, ci.Torn, cerr, info.Records, info.Torn, err)
	}

	// The same segment followed by another: a torn tail is damage now
	// (at the same offset), damage stays the same, a clean segment stays
	// clean.
	two := faultfs.New()
	two.WriteFile(path1, seg)
	two.WriteFile(filepath.Join(fuzzDir, persist.SegmentName(fuzzBase, 2)), segHeader(info.Next))
	res2 := readFuzzLog(t, two)
	var ce2 *persist.LogCorruptError
	switch {
	case info.Torn != nil:
		if !errors.As(res2.err, &ce2) || ce2.Path != path1 || ce2.Offset != info.Torn.Offset {
			t.Fatalf("torn tail at %d of a segment that is not the last: %v", info.Torn.Offset, res2.err)
		}
	case err != nil:
		if !errors.As(res2.err, &ce2) || *ce2 != *ce {
			t.Fatalf("damage %v in the last segment, %v in the same one followed by another", err, res2.err)
		}
	default:
		if res2.err != nil || res2.info.Torn != nil || res2.info.Records != info.Records {
			t.Fatalf("clean segment followed by an empty one: %+v %v", res2.info, res2.err)
		}
	}
	if uint64(len(res2.lsns)) != info.Records {
		t.Fatalf("%d records with a second segment, %d alone", len(res2.lsns), info.Records)
	}

	// Cutting a torn tail leaves a clean log with the same records.
	if info.Torn != nil {
		if err := persist.CutTorn(fsys, info.Torn); err != nil {
			t.Fatal(err)
		}
		res3 := readFuzzLog(t, fsys)
		if res3.err != nil || res3.info.Torn != nil || res3.info.Records != info.Records || res3.effects != res.effects {
			t.Fatalf("after cutting the torn tail: %+v %v (before: %d records)", res3.info, res3.err, info.Records)
		}
	}
}
