package persist

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"time"

	"github.com/klauspost/compress/s2"

	"shoal/internal/cluster"
	"shoal/internal/engine"
)

// CorruptError reports a snapshot that cannot be loaded: what is wrong and
// the byte offset in the file where it was found.
type CorruptError struct {
	Offset int64
	Reason string
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("corrupt snapshot at offset %d: %s", e.Offset, e.Reason)
}

// ErrCorrupt matches every *CorruptError with errors.Is.
var ErrCorrupt = errors.New("corrupt snapshot")

func (e *CorruptError) Is(target error) bool { return target == ErrCorrupt }

func corrupt(off int64, format string, a ...any) error {
	return &CorruptError{Offset: off, Reason: fmt.Sprintf(format, a...)}
}

// Header is a snapshot's header.
type Header struct {
	Version int
	Created time.Time
	// Base is the log sequence number when the dump started: every
	// record up to it is in every slot's image (0 in version 1 files).
	Base uint64
}

// Section is one slot section read and checksum-verified; Body is valid
// until the next call to Next.
type Section struct {
	Slot   int
	Mark   uint64
	Count  int
	Offset int64 // file offset of the section's tag
	Body   []byte
	bodyAt int64
	// maxValue bounds a decompressed value (defends against garbage
	// declaring huge lengths).
	maxValue int
}

// Reader reads a snapshot stream section by section, verifying every
// checksum. After the last section Next returns io.EOF, and only after the
// trailer has been verified: a truncated file is an error, never a short
// snapshot.
type Reader struct {
	r        *bufio.Reader
	off      int64
	hdr      Header
	chain    uint32
	prevSlot int
	sections uint32
	keys     uint64
	buf      []byte
	done     bool
	sec      Section

	// MaxValue is the largest decompressed value accepted (default 4 GiB).
	MaxValue int
}

// NewReader reads and checks the header.
func NewReader(r io.Reader) (*Reader, error) {
	br, ok := r.(*bufio.Reader)
	if !ok {
		br = bufio.NewReaderSize(r, 1<<20)
	}
	rd := &Reader{r: br, prevSlot: -1, MaxValue: math.MaxUint32}
	var h [headerLen]byte
	if err := rd.readFull(h[:12], "header"); err != nil {
		return nil, err
	}
	if string(h[:8]) != Magic {
		return nil, corrupt(0, "bad magic %q: not a Shoal snapshot", h[:8])
	}
	v := binary.LittleEndian.Uint32(h[8:])
	hl := headerLen
	switch v {
	case 1:
		hl = headerLenV1
	case Version:
	default:
		return nil, corrupt(8, "unsupported format version %d (this build reads versions 1 and %d)", v, Version)
	}
	if err := rd.readFull(h[12:hl], "header"); err != nil {
		return nil, err
	}
	c := crc32.Checksum(h[:hl-4], castagnoli)
	if c != binary.LittleEndian.Uint32(h[hl-4:]) {
		return nil, corrupt(0, "header checksum mismatch")
	}
	rd.hdr = Header{Version: int(v), Created: time.UnixMilli(int64(binary.LittleEndian.Uint64(h[12:])))}
	if v >= 2 {
		rd.hdr.Base = binary.LittleEndian.Uint64(h[20:])
	}
	rd.chainAdd(c)
	return rd, nil
}

func (r *Reader) chainAdd(c uint32) {
	var b [4]byte
	binary.LittleEndian.PutUint32(b[:], c)
	r.chain = crc32.Update(r.chain, castagnoli, b[:])
}

// readFull reads len(b) bytes; a short read is corruption (truncation).
func (r *Reader) readFull(b []byte, what string) error {
	n, err := io.ReadFull(r.r, b)
	r.off += int64(n)
	if err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return corrupt(r.off, "truncated file: unexpected end in %s", what)
		}
		return fmt.Errorf("read at offset %d: %w", r.off, err)
	}
	return nil
}

// Header returns the snapshot's header.
func (r *Reader) Header() Header { return r.hdr }

// Offset is the number of bytes consumed so far.
func (r *Reader) Offset() int64 { return r.off }

// Totals are the trailer's counts (valid once Next returned io.EOF).
func (r *Reader) Totals() (sections uint32, keys uint64) { return r.sections, r.keys }

// Next returns the next section, or io.EOF after a valid trailer.
func (r *Reader) Next() (*Section, error) {
	if r.done {
		return nil, io.EOF
	}
	start := r.off
	var tag [1]byte
	if err := r.readFull(tag[:], "section tag"); err != nil {
		return nil, err
	}
	switch tag[0] {
	case tagTrailer:
		return nil, r.trailer(start)
	case tagSection:
	default:
		return nil, corrupt(start, "unexpected byte 0x%02x where a section or the trailer should start", tag[0])
	}
	var h [sectionHeaderLen - 1]byte
	if err := r.readFull(h[:], "section header"); err != nil {
		return nil, err
	}
	slot := int(binary.LittleEndian.Uint16(h[0:]))
	mark := binary.LittleEndian.Uint64(h[2:])
	count := binary.LittleEndian.Uint32(h[10:])
	blen := binary.LittleEndian.Uint32(h[14:])
	if slot >= cluster.NumSlots {
		return nil, corrupt(start+1, "slot %d out of range", slot)
	}
	if slot < r.prevSlot {
		return nil, corrupt(start+1, "slot %d after slot %d: sections out of order", slot, r.prevSlot)
	}
	empty := count == 0 && blen == 0 && r.hdr.Version >= 2 // a mark-only section
	if !empty && (count == 0 || uint64(count) > uint64(blen)) {
		return nil, corrupt(start+11, "section of slot %d: bad entry count %d for %d body bytes", slot, count, blen)
	}
	bodyAt := r.off
	body, err := r.readBody(int(blen))
	if err != nil {
		return nil, err
	}
	var cb [4]byte
	if err := r.readFull(cb[:], "section checksum"); err != nil {
		return nil, err
	}
	c := crc32.Update(crc32.Checksum(h[:], castagnoli), castagnoli, body)
	if c != binary.LittleEndian.Uint32(cb[:]) {
		return nil, corrupt(start, "checksum mismatch in section of slot %d (%d bytes)", slot, blen)
	}
	r.chainAdd(c)
	r.prevSlot = slot
	r.sections++
	r.keys += uint64(count)
	r.sec = Section{Slot: slot, Mark: mark, Count: int(count), Offset: start, Body: body, bodyAt: bodyAt, maxValue: r.MaxValue}
	return &r.sec, nil
}

// readBody reads n bytes into the reused buffer, growing it as data
// actually arrives: a garbage length cannot make it allocate gigabytes.
func (r *Reader) readBody(n int) ([]byte, error) {
	if cap(r.buf) >= n {
		r.buf = r.buf[:n]
		return r.buf, r.readFull(r.buf, "section body")
	}
	r.buf = r.buf[:0]
	for len(r.buf) < n {
		step := min(n-len(r.buf), max(len(r.buf), 1<<20))
		l := len(r.buf)
		r.buf = append(r.buf, make([]byte, step)...)
		if err := r.readFull(r.buf[l:], "section body"); err != nil {
			return nil, err
		}
	}
	return r.buf, nil
}

func (r *Reader) trailer(start int64) error {
	var t [trailerLen - 1]byte
	if err := r.readFull(t[:], "trailer"); err != nil {
		return err
	}
	secs := binary.LittleEndian.Uint32(t[0:])
	keys := binary.LittleEndian.Uint64(t[4:])
	c := crc32.Update(r.chain, castagnoli, t[:12])
	if c != binary.LittleEndian.Uint32(t[12:]) {
		return corrupt(start, "trailer checksum mismatch (a section is missing, reordered or altered)")
	}
	if secs != r.sections || keys != r.keys {
		return corrupt(start, "trailer counts %d sections / %d keys, file has %d / %d", secs, keys, r.sections, r.keys)
	}
	var one [1]byte
	if n, _ := r.r.Read(one[:]); n > 0 {
		return corrupt(r.off, "trailing bytes after the trailer")
	}
	r.done = true
	return io.EOF
}

// Entries decodes the section's entries in order, calling fn with each
// key (aliasing Body: copy to keep it) and a new entry that owns its
// value. Any inconsistency is a *CorruptError with the entry's offset.
func (s *Section) Entries(fn func(key []byte, e *engine.Entry) error) error {
	d := decoder{b: s.Body, base: s.bodyAt, maxValue: s.maxValue}
	for i := 0; i < s.Count; i++ {
		at := d.pos
		key, e, err := d.entry()
		if err != nil {
			return err
		}
		if err := fn(key, e); err != nil {
			var ce *CorruptError
			if errors.As(err, &ce) {
				return err
			}
			return corrupt(d.base+int64(at), "%v", err)
		}
	}
	if d.pos != len(d.b) {
		return corrupt(d.base+int64(d.pos), "%d stray bytes after the section's %d entries", len(d.b)-d.pos, s.Count)
	}
	return nil
}

type decoder struct {
	b        []byte
	pos      int
	base     int64 // file offset of b[0]
	maxValue int
	scratch  []byte
}

func (d *decoder) fail(format string, a ...any) error {
	return corrupt(d.base+int64(d.pos), format, a...)
}

func (d *decoder) uvarint(what string) (uint64, error) {
	v, n := binary.Uvarint(d.b[d.pos:])
	if n <= 0 {
		return 0, d.fail("bad %s length", what)
	}
	d.pos += n
	return v, nil
}

// bytes returns the next length-prefixed byte string (aliasing d.b).
func (d *decoder) bytes(what string) ([]byte, error) {
	n, err := d.uvarint(what)
	if err != nil {
		return nil, err
	}
	if n > uint64(len(d.b)-d.pos) {
		return nil, d.fail("%s of %d bytes runs past the section", what, n)
	}
	v := d.b[d.pos : d.pos+int(n)]
	d.pos += int(n)
	return v, nil
}

func (d *decoder) fixed(n int, what string) ([]byte, error) {
	if len(d.b)-d.pos < n {
		return nil, d.fail("%s runs past the section", what)
	}
	v := d.b[d.pos : d.pos+n]
	d.pos += n
	return v, nil
}

func (d *decoder) entry() ([]byte, *engine.Entry, error) {
	at := d.pos
	kb, err := d.fixed(1, "entry kind")
	if err != nil {
		return nil, nil, err
	}
	kind := kb[0]
	typ := kind & kindTypeMask
	if typ > engine.TypeZSet || kind&kindReserved != 0 {
		d.pos = at
		return nil, nil, d.fail("unknown entry kind 0x%02x", kind)
	}
	key, err := d.bytes("key")
	if err != nil {
		return nil, nil, err
	}
	e := engine.NewEntry(key, typ)
	if kind&kindExpire != 0 {
		v, err := d.fixed(8, "expiry")
		if err != nil {
			return nil, nil, err
		}
		e.ExpireAt = int64(binary.LittleEndian.Uint64(v))
		if e.ExpireAt <= 0 {
			return nil, nil, d.fail("bad expiry %d for key %q", e.ExpireAt, trunc(key))
		}
	}
	if kind&kindFlags != 0 {
		v, err := d.fixed(4, "flags")
		if err != nil {
			return nil, nil, err
		}
		e.Flags = binary.LittleEndian.Uint32(v)
	}
	if kind&kindCompressed != 0 {
		rawLen, err := d.uvarint("uncompressed value")
		if err != nil {
			return nil, nil, err
		}
		comp, err := d.bytes("compressed value")
		if err != nil {
			return nil, nil, err
		}
		if rawLen > uint64(d.maxValue) {
			return nil, nil, d.fail("value of key %q declares %d bytes", trunc(key), rawLen)
		}
		if n, err := s2.DecodedLen(comp); err != nil || uint64(n) != rawLen {
			return nil, nil, d.fail("compressed value of key %q: bad length", trunc(key))
		}
		var raw []byte
		if typ == engine.TypeString {
			raw = make([]byte, rawLen) // handed to the entry: no copy
		} else {
			if uint64(cap(d.scratch)) < rawLen {
				d.scratch = make([]byte, rawLen)
			}
			raw = d.scratch[:rawLen]
		}
		raw, err = s2.Decode(raw, comp)
		if err != nil || uint64(len(raw)) != rawLen {
			return nil, nil, d.fail("compressed value of key %q: %v", trunc(key), err)
		}
		if typ == engine.TypeString {
			if len(raw) > engine.MaxValueLen {
				return nil, nil, d.fail("string value too long")
			}
			e.SetBytes(raw)
			return key, e, nil
		}
		// Parse the collection from the decompressed bytes, reporting
		// offsets at the compressed value's end.
		sub := decoder{b: raw, base: d.base + int64(d.pos), maxValue: d.maxValue}
		if err := sub.collection(e, key); err != nil {
			return nil, nil, err
		}
		if sub.pos != len(sub.b) {
			return nil, nil, d.fail("stray bytes in compressed value of key %q", trunc(key))
		}
		if cap(d.scratch) > maxChunk {
			d.scratch = nil
		}
		return key, e, nil
	}
	if typ == engine.TypeString {
		v, err := d.bytes("string value")
		if err != nil {
			return nil, nil, err
		}
		e.SetBytes(append([]byte(nil), v...))
		return key, e, nil
	}
	if err := d.collection(e, key); err != nil {
		return nil, nil, err
	}
	return key, e, nil
}

func trunc(k []byte) string {
	if len(k) > 64 {
		return string(k[:64]) + "..."
	}
	return string(k)
}

// collection decodes a plain collection encoding into e.Obj.
func (d *decoder) collection(e *engine.Entry, key []byte) error {
	n, err := d.uvarint("element count")
	if err != nil {
		return err
	}
	if n == 0 {
		return d.fail("empty %s for key %q", engine.TypeName(e.Type), trunc(key))
	}
	if n > uint64(len(d.b)-d.pos) {
		return d.fail("%d elements cannot fit in %d bytes", n, len(d.b)-d.pos)
	}
	switch e.Type {
	case engine.TypeList:
		l := engine.NewList()
		for i := uint64(0); i < n; i++ {
			v, err := d.bytes("list element")
			if err != nil {
				return err
			}
			l.PushBack(v)
		}
		e.Obj = l
	case engine.TypeHash:
		h := engine.NewHashSize(int(n))
		for i := uint64(0); i < n; i++ {
			f, err := d.bytes("hash field")
			if err != nil {
				return err
			}
			v, err := d.bytes("hash value")
			if err != nil {
				return err
			}
			if !h.Set(f, v) {
				return d.fail("duplicate field %q in hash %q", trunc(f), trunc(key))
			}
		}
		e.Obj = h
	case engine.TypeSet:
		s := engine.NewSetSize(int(n))
		for i := uint64(0); i < n; i++ {
			m, err := d.bytes("set member")
			if err != nil {
				return err
			}
			if !s.Add(m) {
				return d.fail("duplicate member %q in set %q", trunc(m), trunc(key))
			}
		}
		e.Obj = s
	case engine.TypeZSet:
		z := engine.NewZSet()
		for i := uint64(0); i < n; i++ {
			m, err := d.bytes("zset member")
			if err != nil {
				return err
			}
			sb, err := d.fixed(8, "score")
			if err != nil {
				return err
			}
			score := math.Float64frombits(binary.LittleEndian.Uint64(sb))
			if math.IsNaN(score) {
				return d.fail("NaN score in zset %q", trunc(key))
			}
			if !z.Add(m, score) {
				return d.fail("duplicate member %q in zset %q", trunc(m), trunc(key))
			}
		}
		e.Obj = z
	}
	return nil
}

// DecodeEntry decodes what EncodeEntry produced; the key aliases b, the
// entry owns its value.
func DecodeEntry(b []byte) ([]byte, *engine.Entry, error) {
	d := decoder{b: b, maxValue: math.MaxUint32}
	key, e, err := d.entry()
	if err != nil {
		return nil, nil, err
	}
	if d.pos != len(b) {
		return nil, nil, fmt.Errorf("%d stray bytes after the entry", len(b)-d.pos)
	}
	return key, e, nil
}
