package persist

import (
	"bufio"
	"encoding/binary"
	"hash/crc32"
	"io"
	"math"
	"time"

	"github.com/klauspost/compress/s2"

	"shoal/internal/engine"
)

// Format constants; see doc.go.
const (
	Magic   = "SHOALSNP"
	Version = 2

	headerLenV1      = 8 + 4 + 8 + 4
	headerLen        = 8 + 4 + 8 + 8 + 4
	sectionHeaderLen = 1 + 2 + 8 + 4 + 4
	trailerLen       = 1 + 4 + 8 + 4

	tagSection = 'S'
	tagTrailer = 'E'

	kindTypeMask   = 0x07
	kindExpire     = 0x80
	kindFlags      = 0x40
	kindCompressed = 0x20
	kindReserved   = 0x18

	// CompressMin is the plain value size above which compression is tried.
	CompressMin = 1024

	// maxChunk is the body size after which a slot's section is split (at
	// an entry boundary), so section lengths stay far from uint32's limit
	// and the reader's buffer stays bounded by the largest key.
	maxChunk = 64 << 20
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// SectionEncoder serialises one slot's entries into memory. The dumper
// fills it while holding the slot's lock and writes it out after
// releasing the lock. Reuse it across slots: its buffers are kept.
type SectionEncoder struct {
	slot      int
	mark      uint64
	keepEmpty bool // write an empty section if no entry is added
	body      []byte
	chunks    []chunk // entry-boundary split points of body
	count     int     // entries in the current chunk
	plain     []byte  // scratch: a collection's plain encoding before compression
	comp      []byte  // scratch: compressed bytes
}

type chunk struct{ end, count int }

// Reset starts a section for slot with sequence mark mark.
func (e *SectionEncoder) Reset(slot int, mark uint64) {
	e.slot, e.mark, e.keepEmpty = slot, mark, false
	e.body = e.body[:0]
	e.chunks = e.chunks[:0]
	e.count = 0
	// Do not keep a huge buffer from one big slot for the rest of the dump.
	if cap(e.body) > 4*maxChunk {
		e.body = nil
	}
}

// Len is the number of entries added since Reset.
func (e *SectionEncoder) Len() int {
	n := e.count
	for _, c := range e.chunks {
		n += c.count
	}
	return n
}

// Add appends one key. Empty collections are skipped (the engine never
// holds them; a file never carries them).
func (e *SectionEncoder) Add(key string, en *engine.Entry) {
	if en.Type != engine.TypeString && en.Len() == 0 {
		return
	}
	start := len(e.body)
	if start > 0 && e.count > 0 && start-e.chunkStart() >= maxChunk {
		e.chunks = append(e.chunks, chunk{end: start, count: e.count})
		e.count = 0
	}
	kind := en.Type
	if en.ExpireAt != 0 {
		kind |= kindExpire
	}
	if en.Flags != 0 {
		kind |= kindFlags
	}
	kindAt := len(e.body)
	b := append(e.body, kind)
	b = binary.AppendUvarint(b, uint64(len(key)))
	b = append(b, key...)
	if en.ExpireAt != 0 {
		b = binary.LittleEndian.AppendUint64(b, uint64(en.ExpireAt))
	}
	if en.Flags != 0 {
		b = binary.LittleEndian.AppendUint32(b, en.Flags)
	}
	var raw []byte
	if en.Type == engine.TypeString {
		raw = en.Bytes()
		if len(raw) <= CompressMin {
			b = binary.AppendUvarint(b, uint64(len(raw)))
			b = append(b, raw...)
			e.body = b
			e.count++
			return
		}
	} else {
		e.plain = appendPlain(e.plain[:0], en)
		raw = e.plain
	}
	if len(raw) > CompressMin {
		e.comp = s2.Encode(e.comp[:cap(e.comp)], raw)
		if len(e.comp) <= len(raw)-len(raw)/8 {
			b[kindAt] |= kindCompressed
			b = binary.AppendUvarint(b, uint64(len(raw)))
			b = binary.AppendUvarint(b, uint64(len(e.comp)))
			b = append(b, e.comp...)
			e.body = b
			e.count++
			e.trimScratch()
			return
		}
	}
	if en.Type == engine.TypeString {
		b = binary.AppendUvarint(b, uint64(len(raw)))
	}
	b = append(b, raw...)
	e.body = b
	e.count++
	e.trimScratch()
}

func (e *SectionEncoder) chunkStart() int {
	if len(e.chunks) == 0 {
		return 0
	}
	return e.chunks[len(e.chunks)-1].end
}

// trimScratch drops scratch buffers grown by one huge value.
func (e *SectionEncoder) trimScratch() {
	if cap(e.plain) > maxChunk {
		e.plain = nil
	}
	if cap(e.comp) > maxChunk {
		e.comp = nil
	}
}

func appendBytes(b, v []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(v)))
	return append(b, v...)
}

func appendString(b []byte, v string) []byte {
	b = binary.AppendUvarint(b, uint64(len(v)))
	return append(b, v...)
}

// appendPlain appends a collection's plain value encoding.
func appendPlain(b []byte, en *engine.Entry) []byte {
	switch en.Type {
	case engine.TypeList:
		l := en.Obj.(*engine.List)
		b = binary.AppendUvarint(b, uint64(l.Len()))
		l.Range(0, l.Len(), func(v []byte) bool {
			b = appendBytes(b, v)
			return true
		})
	case engine.TypeHash:
		h := en.Obj.(*engine.Hash)
		b = binary.AppendUvarint(b, uint64(len(h.M)))
		for f, v := range h.M {
			b = appendString(b, f)
			b = appendBytes(b, v)
		}
	case engine.TypeSet:
		s := en.Obj.(*engine.Set)
		b = binary.AppendUvarint(b, uint64(len(s.M)))
		for m := range s.M {
			b = appendString(b, m)
		}
	case engine.TypeZSet:
		z := en.Obj.(*engine.ZSet)
		b = binary.AppendUvarint(b, uint64(z.Len()))
		z.Iter(0, false, func(m string, score float64) bool {
			b = appendString(b, m)
			b = binary.LittleEndian.AppendUint64(b, math.Float64bits(score))
			return true
		})
	default:
		panic("BUG: appendPlain of type " + engine.TypeName(en.Type))
	}
	return b
}

// Writer writes a snapshot stream: NewWriter writes the header,
// WriteSection each slot, Close the trailer. It buffers; the caller owns
// (syncs, closes) the underlying writer.
type Writer struct {
	w        *bufio.Writer
	chain    uint32 // running CRC for the trailer
	sections uint32
	keys     uint64
	n        int64
	err      error
}

// NewWriter writes the header for a dump started at created, when the
// log's last sequence number was base.
func NewWriter(w io.Writer, created time.Time, base uint64) (*Writer, error) {
	bw, ok := w.(*bufio.Writer)
	if !ok {
		bw = bufio.NewWriterSize(w, 1<<20)
	}
	wr := &Writer{w: bw}
	var h [headerLen]byte
	copy(h[:], Magic)
	binary.LittleEndian.PutUint32(h[8:], Version)
	binary.LittleEndian.PutUint64(h[12:], uint64(created.UnixMilli()))
	binary.LittleEndian.PutUint64(h[20:], base)
	c := crc32.Checksum(h[:28], castagnoli)
	binary.LittleEndian.PutUint32(h[28:], c)
	wr.chainAdd(c)
	wr.write(h[:])
	return wr, wr.err
}

func (w *Writer) chainAdd(c uint32) {
	var b [4]byte
	binary.LittleEndian.PutUint32(b[:], c)
	w.chain = crc32.Update(w.chain, castagnoli, b[:])
}

func (w *Writer) write(b []byte) {
	if w.err != nil {
		return
	}
	n, err := w.w.Write(b)
	w.n += int64(n)
	w.err = err
}

// WriteSection writes what e holds. An empty encoder writes nothing,
// unless it was Reset with keepEmpty: then an empty section records the
// slot's mark.
func (w *Writer) WriteSection(e *SectionEncoder) error {
	if e.keepEmpty && e.count == 0 && len(e.chunks) == 0 {
		w.writeChunk(e, nil, 0)
		return w.err
	}
	start := 0
	for _, c := range e.chunks {
		w.writeChunk(e, e.body[start:c.end], c.count)
		start = c.end
	}
	if e.count > 0 {
		w.writeChunk(e, e.body[start:], e.count)
	}
	return w.err
}

func (w *Writer) writeChunk(e *SectionEncoder, body []byte, count int) {
	var h [sectionHeaderLen]byte
	h[0] = tagSection
	binary.LittleEndian.PutUint16(h[1:], uint16(e.slot))
	binary.LittleEndian.PutUint64(h[3:], e.mark)
	binary.LittleEndian.PutUint32(h[11:], uint32(count))
	binary.LittleEndian.PutUint32(h[15:], uint32(len(body)))
	c := crc32.Update(crc32.Checksum(h[1:], castagnoli), castagnoli, body)
	var cb [4]byte
	binary.LittleEndian.PutUint32(cb[:], c)
	w.write(h[:])
	w.write(body)
	w.write(cb[:])
	w.chainAdd(c)
	w.sections++
	w.keys += uint64(count)
}

// Close writes the trailer and flushes. It returns the first error of
// the stream.
func (w *Writer) Close() error {
	var t [trailerLen]byte
	t[0] = tagTrailer
	binary.LittleEndian.PutUint32(t[1:], w.sections)
	binary.LittleEndian.PutUint64(t[5:], w.keys)
	c := crc32.Update(w.chain, castagnoli, t[1:13])
	binary.LittleEndian.PutUint32(t[13:], c)
	w.write(t[:])
	if w.err == nil {
		w.err = w.w.Flush()
	}
	return w.err
}

// Keys is the number of entries written so far.
func (w *Writer) Keys() uint64 { return w.keys }

// Sections is the number of sections written so far.
func (w *Writer) Sections() uint32 { return w.sections }

// Size is the number of bytes written so far (buffered ones included).
func (w *Writer) Size() int64 { return w.n }

// EncodeEntry returns one entry's encoding (the snapshot's, key included),
// valid until the encoder is used again: the log's "put" effect.
func (e *SectionEncoder) EncodeEntry(key string, en *engine.Entry) []byte {
	e.Reset(0, 0)
	e.Add(key, en)
	e.trimScratch()
	return e.body
}
