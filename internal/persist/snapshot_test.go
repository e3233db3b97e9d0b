package persist

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"shoal/internal/cluster"
	"shoal/internal/engine"
)

var update = flag.Bool("update", false, "rewrite golden files")

// canon renders the whole keyspace canonically (sorted), for comparisons.
func canon(db *engine.DB) string { return db.Canonical() }

func add(db *engine.DB, key string, e *engine.Entry) {
	k := []byte(key)
	i := cluster.Slot(k)
	db.Lock(i)
	db.Add(db.Slot(i), k, e)
	db.Unlock(i)
}

func str(v string) *engine.Entry {
	e := &engine.Entry{Type: engine.TypeString}
	e.SetBytes([]byte(v))
	return e
}

// sample fills db with every type, expiries, flags, binary keys, and
// values large enough to be compressed.
func sample(db *engine.DB) {
	add(db, "s", str("hello"))
	add(db, "", str("empty key"))
	add(db, "bin\x00\xff\r\n", str("\x00\x01\x02"))
	add(db, "emptyval", str(""))
	big := strings.Repeat("abcdefgh", 4096)
	add(db, "bigstr", str(big))
	rnd := make([]byte, 5000)
	for i := range rnd {
		rnd[i] = byte(i*7919>>3) ^ byte(i>>5*31)
	}
	add(db, "incompressible", str(string(rnd)))
	e := str("with ttl")
	e.ExpireAt = time.Now().Add(time.Hour).UnixMilli()
	add(db, "ttl", e)
	mc := str("memcached")
	mc.Flags = 0xdeadbeef
	add(db, "mc", mc)

	l := engine.NewList()
	for _, v := range []string{"a", "", "b\x00", "c"} {
		l.PushBack([]byte(v))
	}
	add(db, "list", &engine.Entry{Type: engine.TypeList, Obj: l})
	bl := engine.NewList()
	for i := 0; i < 2000; i++ {
		bl.PushBack([]byte(fmt.Sprintf("element-%d", i)))
	}
	le := &engine.Entry{Type: engine.TypeList, Obj: bl, ExpireAt: time.Now().Add(time.Hour).UnixMilli()}
	add(db, "biglist", le)

	h := engine.NewHash()
	h.Set([]byte("f1"), []byte("v1"))
	h.Set([]byte("f\x002"), []byte(""))
	add(db, "hash", &engine.Entry{Type: engine.TypeHash, Obj: h})
	bh := engine.NewHash()
	for i := 0; i < 1000; i++ {
		bh.Set([]byte(fmt.Sprintf("field-%d", i)), []byte(strings.Repeat("v", i%50)))
	}
	add(db, "bighash", &engine.Entry{Type: engine.TypeHash, Obj: bh})

	s := engine.NewSet()
	for _, m := range []string{"1", "2", "x"} {
		s.Add([]byte(m))
	}
	add(db, "set", &engine.Entry{Type: engine.TypeSet, Obj: s})
	bs := engine.NewSet()
	for i := 0; i < 1000; i++ {
		bs.Add([]byte(fmt.Sprint(i)))
	}
	add(db, "bigset", &engine.Entry{Type: engine.TypeSet, Obj: bs})

	z := engine.NewZSet()
	z.Add([]byte("a"), 1.5)
	z.Add([]byte("b"), math.Inf(-1))
	z.Add([]byte("c"), math.Inf(1))
	z.Add([]byte("d"), -0.25)
	add(db, "zset", &engine.Entry{Type: engine.TypeZSet, Obj: z})
	bz := engine.NewZSet()
	for i := 0; i < 1000; i++ {
		bz.Add([]byte(fmt.Sprintf("m%d", i)), float64(i%17)/3)
	}
	add(db, "bigzset", &engine.Entry{Type: engine.TypeZSet, Obj: bz})

	// Collections that became empty are not stored.
	add(db, "emptylist", &engine.Entry{Type: engine.TypeList, Obj: engine.NewList()})
	add(db, "emptyset", &engine.Entry{Type: engine.TypeSet, Obj: engine.NewSet()})
}

func dump(t testing.TB, db *engine.DB) []byte {
	t.Helper()
	var buf bytes.Buffer
	if _, err := Dump(db, &buf, DumpOptions{}); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestRoundTrip(t *testing.T) {
	src := engine.New(engine.Hooks{})
	sample(src)
	data := dump(t, src)
	dst := engine.New(engine.Hooks{})
	st, err := Load(dst, bytes.NewReader(data), LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := canon(src)
	want = strings.ReplaceAll(want, "\n\"emptylist\" list exp=0 flags=0 []", "")
	want = strings.ReplaceAll(want, "\n\"emptyset\" set exp=0 flags=0 {}", "")
	if got := canon(dst); got != want {
		t.Fatalf("round trip differs:\n got %s\nwant %s", got, want)
	}
	if st.Keys != uint64(src.KeyCount()-2) || dst.KeyCount() != src.KeyCount()-2 {
		t.Fatalf("loaded %d keys (db %d), source has %d (2 empty)", st.Keys, dst.KeyCount(), src.KeyCount())
	}
	if dst.UsedMemory() <= 0 || dst.VolatileCount() != 2 {
		t.Fatalf("accounting after load: used %d volatile %d", dst.UsedMemory(), dst.VolatileCount())
	}
	// Large values were compressed: the file is much smaller than them.
	if len(data) > 60000 {
		t.Fatalf("snapshot is %d bytes: large values not compressed?", len(data))
	}
	rep, err := Check(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if rep.Keys != st.Keys || int(rep.Sections) != len(rep.Slots) || rep.ByType[engine.TypeZSet] != 2 || rep.Volatile != 2 {
		t.Fatalf("check report %+v", rep)
	}
}

func TestExpiredKeysSkipped(t *testing.T) {
	src := engine.New(engine.Hooks{})
	e := str("soon")
	e.ExpireAt = time.Now().Add(time.Minute).UnixMilli()
	add(src, "k", e)
	add(src, "keep", str("v"))
	data := dump(t, src)
	dst := engine.New(engine.Hooks{})
	st, err := Load(dst, bytes.NewReader(data), LoadOptions{Now: time.Now().Add(2 * time.Minute).UnixMilli()})
	if err != nil {
		t.Fatal(err)
	}
	if st.Keys != 1 || st.Expired != 1 || dst.KeyCount() != 1 {
		t.Fatalf("stats %+v, keys %d", st, dst.KeyCount())
	}
}

func TestEmptySnapshot(t *testing.T) {
	data := dump(t, engine.New(engine.Hooks{}))
	if len(data) != headerLen+trailerLen {
		t.Fatalf("empty snapshot is %d bytes", len(data))
	}
	rep, err := Check(bytes.NewReader(data))
	if err != nil || rep.Keys != 0 {
		t.Fatalf("%+v %v", rep, err)
	}
}

// goldenDB is deterministic: single-element collections only, fixed expiry.
func goldenDB() *engine.DB {
	db := engine.New(engine.Hooks{})
	add(db, "str", str("value"))
	e := str("ttl")
	e.ExpireAt = 4102444800000 // 2100-01-01
	e.Flags = 7
	add(db, "bin\x00key", e)
	l := engine.NewList()
	l.PushBack([]byte("x"))
	l.PushBack([]byte("y"))
	add(db, "list", &engine.Entry{Type: engine.TypeList, Obj: l})
	h := engine.NewHash()
	h.Set([]byte("f"), []byte("v"))
	add(db, "hash", &engine.Entry{Type: engine.TypeHash, Obj: h})
	s := engine.NewSet()
	s.Add([]byte("m"))
	add(db, "set", &engine.Entry{Type: engine.TypeSet, Obj: s})
	z := engine.NewZSet()
	z.Add([]byte("a"), 1)
	z.Add([]byte("b"), 2.5)
	add(db, "zset", &engine.Entry{Type: engine.TypeZSet, Obj: z})
	add(db, "big", str(strings.Repeat("0123456789", 200)))
	return db
}

// TestGolden pins the on-disk format: a change that alters the bytes
// must bump Version (and keep reading old files) or update the golden
// file deliberately with -update.
func TestGolden(t *testing.T) {
	db := goldenDB()
	var buf bytes.Buffer
	wr, _ := NewWriter(&buf, time.UnixMilli(1700000000000), 7)
	var enc SectionEncoder
	for i := 0; i < cluster.NumSlots; i++ {
		if db.Slot(i).Len() == 0 {
			if i == 9 { // a mark-only section of an empty slot
				enc.Reset(i, 9)
				enc.keepEmpty = true
				wr.WriteSection(&enc)
			}
			continue
		}
		enc.Reset(i, uint64(i)) // nonzero marks, to pin their position
		db.ForEach(db.Slot(i), func(k string, e *engine.Entry) bool { enc.Add(k, e); return true })
		wr.WriteSection(&enc)
	}
	if err := wr.Close(); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join("testdata", "golden-v2.shoal")
	if *update {
		os.WriteFile(path, buf.Bytes(), 0o644)
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf.Bytes(), want) {
		t.Fatalf("encoding changed (%d bytes, golden %d): bump Version or run with -update", buf.Len(), len(want))
	}
	dst := engine.New(engine.Hooks{})
	if _, err := Load(dst, bytes.NewReader(want), LoadOptions{}); err != nil {
		t.Fatal(err)
	}
	if canon(dst) != canon(db) {
		t.Fatalf("golden file loads as\n%s\nwant\n%s", canon(dst), canon(db))
	}
	rd, _ := NewReader(bytes.NewReader(want))
	for {
		sec, err := rd.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if sec.Mark != uint64(sec.Slot) {
			t.Fatalf("slot %d mark %d", sec.Slot, sec.Mark)
		}
	}
	if rd.Header().Base != 7 || rd.Header().Version != 2 {
		t.Fatalf("header %+v", rd.Header())
	}
}

// TestReadsVersion1 keeps files written before the log existed loadable.
func TestReadsVersion1(t *testing.T) {
	want, err := os.ReadFile(filepath.Join("testdata", "golden-v1.shoal"))
	if err != nil {
		t.Fatal(err)
	}
	dst := engine.New(engine.Hooks{})
	st, err := Load(dst, bytes.NewReader(want), LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if canon(dst) != canon(goldenDB()) || st.Base != 0 {
		t.Fatalf("version 1 file loads as\n%s", canon(dst))
	}
}

// Every truncation and every single-byte change is detected (never
// loaded as data, never a panic), with an offset inside the file.
func TestCorruptionDetected(t *testing.T) {
	data := dump(t, goldenDB())
	for n := 0; n < len(data); n++ {
		_, err := Check(bytes.NewReader(data[:n]))
		var ce *CorruptError
		if !errors.As(err, &ce) || ce.Offset > int64(n) {
			t.Fatalf("truncated to %d: %v", n, err)
		}
	}
	for i := range data {
		bad := append([]byte(nil), data...)
		bad[i] ^= 0x5a
		_, err := Check(bytes.NewReader(bad))
		if !IsCorrupt(err) {
			t.Fatalf("byte %d flipped: %v", i, err)
		}
	}
	db := engine.New(engine.Hooks{})
	for i := 0; i < len(data); i += 5 {
		bad := append([]byte(nil), data...)
		bad[i] ^= 0x01
		if _, err := Load(db, bytes.NewReader(bad), LoadOptions{}); !IsCorrupt(err) {
			t.Fatalf("byte %d flipped, load: %v", i, err)
		}
	}
	if _, err := Check(bytes.NewReader(append(data, 0))); !IsCorrupt(err) {
		t.Fatalf("trailing byte: %v", err)
	}
}

// A section whose checksum is right but whose entries are inconsistent
// (a writer bug) is reported at the entry's offset.
func TestBadEntryOffset(t *testing.T) {
	var buf bytes.Buffer
	wr, _ := NewWriter(&buf, time.Now(), 0)
	enc := SectionEncoder{}
	enc.Reset(0, 0)
	enc.body = append(enc.body, 0x07) // unknown type
	enc.count = 1
	wr.WriteSection(&enc)
	wr.Close()
	_, err := Check(bytes.NewReader(buf.Bytes()))
	var ce *CorruptError
	if !errors.As(err, &ce) || ce.Offset != headerLen+sectionHeaderLen || !strings.Contains(ce.Reason, "unknown entry kind") {
		t.Fatalf("%v", err)
	}
}

func TestSaveFileAtomic(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "dump.shoal")
	db := goldenDB()
	st, err := SaveFile(db, path, DumpOptions{})
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Size() != st.Bytes || st.Keys != 7 {
		t.Fatalf("stat %v %v, stats %+v", fi, err, st)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Fatalf("leftover files: %v", ents)
	}
	if _, err := SaveFile(db, filepath.Join(dir, "missing", "dump.shoal"), DumpOptions{}); err == nil {
		t.Fatal("save into a missing directory succeeded")
	}
	dst := engine.New(engine.Hooks{})
	if _, err := LoadFile(dst, path, LoadOptions{}); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(path, []byte("SHOALSNPgarbage"), 0o644)
	_, err = LoadFile(engine.New(engine.Hooks{}), path, LoadOptions{})
	if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "offset") {
		t.Fatalf("error does not name file and offset: %v", err)
	}
}

// Large slots are split into several sections at entry boundaries.
func TestSectionSplit(t *testing.T) {
	db := engine.New(engine.Hooks{})
	// Keys of one slot via a hash tag; incompressible values.
	val := make([]byte, 1<<20)
	x := uint32(1)
	for i := range val {
		x = x*1664525 + 1013904223
		val[i] = byte(x >> 24)
	}
	for i := 0; i < 80; i++ {
		add(db, fmt.Sprintf("{tag}%d", i), str(string(val)))
	}
	data := dump(t, db)
	rep, err := Check(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if rep.Sections < 2 || rep.Keys != 80 || rep.Slots[0].Slot != rep.Slots[1].Slot {
		t.Fatalf("sections %d keys %d", rep.Sections, rep.Keys)
	}
	dst := engine.New(engine.Hooks{})
	if _, err := Load(dst, bytes.NewReader(data), LoadOptions{}); err != nil || dst.KeyCount() != 80 {
		t.Fatal(err, dst.KeyCount())
	}
}

func FuzzReader(f *testing.F) {
	f.Add(dump(f, goldenDB()))
	f.Add(dump(f, engine.New(engine.Hooks{})))
	f.Add([]byte(Magic))
	f.Fuzz(func(t *testing.T, data []byte) {
		rd, err := NewReader(bytes.NewReader(data))
		if err != nil {
			return
		}
		rd.MaxValue = 1 << 20
		for {
			sec, err := rd.Next()
			if err != nil {
				return
			}
			_ = sec.Entries(func([]byte, *engine.Entry) error { return nil })
		}
	})
}

// FuzzSection feeds garbage to the entry decoder directly (FuzzReader's
// inputs rarely get past the checksums).
func FuzzSection(f *testing.F) {
	data := dump(f, goldenDB())
	rd, _ := NewReader(bytes.NewReader(data))
	for {
		sec, err := rd.Next()
		if err != nil {
			break
		}
		f.Add(uint8(sec.Count), append([]byte(nil), sec.Body...))
	}
	var enc SectionEncoder
	enc.Reset(0, 0)
	db := engine.New(engine.Hooks{})
	sample(db)
	for i := 0; i < cluster.NumSlots; i++ {
		db.ForEach(db.Slot(i), func(k string, e *engine.Entry) bool {
			enc.Reset(0, 0)
			enc.Add(k, e)
			if len(enc.body) < 4096 {
				f.Add(uint8(1), append([]byte(nil), enc.body...))
			}
			return true
		})
	}
	f.Fuzz(func(t *testing.T, count uint8, body []byte) {
		sec := Section{Count: int(count), Body: body, maxValue: 1 << 20}
		_ = sec.Entries(func([]byte, *engine.Entry) error { return nil })
	})
}
