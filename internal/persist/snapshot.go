package persist

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"sync/atomic"
	"time"

	"shoal/internal/cluster"
	"shoal/internal/engine"
)

// DumpStats describe a finished dump.
type DumpStats struct {
	Keys     uint64
	Sections uint32
	Bytes    int64
	Duration time.Duration
}

// DumpOptions tune Dump. The zero value is ready to use.
type DumpOptions struct {
	// Base is the log's last sequence number when the dump starts (read
	// before the first slot is locked): every record up to it is in the
	// image of every slot.
	Base uint64
	// Mark returns the sequence number of the last record applied to
	// slot i; it is called with the slot locked. nil records Base. An
	// empty slot whose mark is above Base gets an empty section carrying
	// the mark, so recovery does not replay records its image holds.
	Mark func(slot int) uint64
	// FS is the file system SaveFile writes through (nil: the real one).
	FS FS
	// All includes keys past their expiry that are still held (a full
	// copy for a replica: the stream's DELs remove them, and the
	// replica's clock must not decide which keys exist).
	All bool
}

// Dump writes a snapshot of db to w without stopping writes: each slot is
// locked only while its keys are serialised into memory; writing to w
// happens with no lock held.
func Dump(db *engine.DB, w io.Writer, opt DumpOptions) (DumpStats, error) {
	start := time.Now()
	wr, err := NewWriter(w, start, opt.Base)
	if err != nil {
		return DumpStats{}, err
	}
	var enc SectionEncoder
	for i := 0; i < cluster.NumSlots; i++ {
		sl := db.Slot(i)
		db.Lock(i)
		mark := opt.Base
		if opt.Mark != nil {
			mark = max(opt.Mark(i), opt.Base)
		}
		if sl.Len() == 0 {
			db.Unlock(i)
			if mark > opt.Base {
				enc.Reset(i, mark)
				enc.keepEmpty = true
				if err := wr.WriteSection(&enc); err != nil {
					return DumpStats{}, err
				}
			}
			continue
		}
		enc.Reset(i, mark)
		each := db.ForEach
		if opt.All {
			each = db.ForEachHeld
		}
		each(sl, func(k string, e *engine.Entry) bool {
			enc.Add(k, e)
			return true
		})
		db.Unlock(i)
		if err := wr.WriteSection(&enc); err != nil {
			return DumpStats{}, err
		}
	}
	if err := wr.Close(); err != nil {
		return DumpStats{}, err
	}
	return DumpStats{Keys: wr.Keys(), Sections: wr.Sections(), Bytes: wr.Size(), Duration: time.Since(start)}, nil
}

// SaveFile dumps db to path crash-safely (an AtomicFile: path is always
// either the old snapshot or the new one).
func SaveFile(db *engine.DB, path string, opt DumpOptions) (DumpStats, error) {
	a, err := CreateAtomic(opt.FS, path)
	if err != nil {
		return DumpStats{}, err
	}
	st, err := Dump(db, bufio.NewWriterSize(a, 1<<20), opt)
	if err != nil {
		a.Abort()
		return st, fmt.Errorf("write %q: %w", a.tmp, err)
	}
	return st, a.Commit()
}

// LoadStats describe a finished load.
type LoadStats struct {
	Keys     uint64 // loaded
	Expired  uint64 // skipped: already expired
	Sections uint32
	Bytes    int64
	Created  time.Time
	Base     uint64 // the log sequence number the dump started at
	Duration time.Duration
}

// LoadOptions tune Load. The zero value is ready to use.
type LoadOptions struct {
	// Now is the unix ms time keys are checked for expiry against
	// (0: the current time).
	Now int64
	// Progress, if set, receives the bytes read so far (INFO loading_*).
	Progress *atomic.Int64
	// KeyDelay, if set, runs after each key (Redis's key-load-delay test
	// hook; it runs with the slot locked).
	KeyDelay func()
	// OnSection, if set, is called for each verified section before its
	// entries are loaded (the slot is locked).
	OnSection func(slot int, mark uint64)
	// KeepExpired loads keys whose expiry has passed: needed when a log
	// is replayed on top (a record may still change such a key; the log
	// holds the delete that expired it, if it happened before the crash).
	KeepExpired bool
	// FS is the file system LoadFile reads through (nil: the real one).
	FS FS
}

type countingReader struct {
	r io.Reader
	n *atomic.Int64
}

func (c countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// Load reads a snapshot into db, which should be empty (a key of the
// snapshot that already exists is replaced). Expired keys are skipped. On
// error, keys of the sections before the bad one stay loaded: callers stop
// start-up (or flush) rather than run on a partial dataset.
func Load(db *engine.DB, r io.Reader, opt LoadOptions) (LoadStats, error) {
	start := time.Now()
	if opt.Progress != nil {
		r = countingReader{r, opt.Progress}
	}
	rd, err := NewReader(r)
	if err != nil {
		return LoadStats{}, err
	}
	now := opt.Now
	if now == 0 {
		now = time.Now().UnixMilli()
	}
	st := LoadStats{Created: rd.Header().Created, Base: rd.Header().Base}
	for {
		sec, err := rd.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return st, err
		}
		sl := db.Slot(sec.Slot)
		db.Lock(sec.Slot)
		if sec.Count > 0 {
			db.Reserve(sl, sec.Count)
		}
		if opt.OnSection != nil {
			opt.OnSection(sec.Slot, sec.Mark)
		}
		err = sec.Entries(func(key []byte, e *engine.Entry) error {
			if cluster.Slot(key) != sec.Slot {
				return fmt.Errorf("key %q belongs to slot %d, found in slot %d", trunc(key), cluster.Slot(key), sec.Slot)
			}
			if !opt.KeepExpired && e.ExpireAt != 0 && e.ExpireAt <= now {
				st.Expired++
				return nil
			}
			if db.Peek(sl, key) != nil {
				db.Delete(sl, key)
			}
			db.Add(sl, key, e)
			st.Keys++
			if opt.KeyDelay != nil {
				opt.KeyDelay()
			}
			return nil
		})
		db.Unlock(sec.Slot)
		if err != nil {
			return st, err
		}
	}
	st.Sections, _ = rd.Totals()
	st.Bytes = rd.Offset()
	st.Duration = time.Since(start)
	return st, nil
}

// LoadFile loads the snapshot at path; errors name the file.
func LoadFile(db *engine.DB, path string, opt LoadOptions) (LoadStats, error) {
	fsys := opt.FS
	if fsys == nil {
		fsys = OS
	}
	f, err := fsys.Open(path)
	if err != nil {
		return LoadStats{}, fmt.Errorf("open snapshot %q: %w", path, err)
	}
	defer f.Close()
	st, err := Load(db, f, opt)
	if err != nil {
		return st, fmt.Errorf("load snapshot %q: %w", path, err)
	}
	return st, nil
}

// SlotReport is one section as Check saw it.
type SlotReport struct {
	Slot  int
	Mark  uint64
	Keys  int
	Bytes int
}

// Report is what Check found in a valid snapshot.
type Report struct {
	Header   Header
	Slots    []SlotReport // one per section, in file order
	Keys     uint64
	Sections uint32
	ByType   [engine.TypeZSet + 1]uint64
	Volatile uint64
	Bytes    int64
}

// Check verifies a snapshot completely (checksums, every entry decoded)
// without loading it anywhere.
func Check(r io.Reader) (Report, error) {
	rd, err := NewReader(r)
	if err != nil {
		return Report{}, err
	}
	rep := Report{Header: rd.Header()}
	for {
		sec, err := rd.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return rep, err
		}
		err = sec.Entries(func(key []byte, e *engine.Entry) error {
			if cluster.Slot(key) != sec.Slot {
				return fmt.Errorf("key %q belongs to slot %d, found in slot %d", trunc(key), cluster.Slot(key), sec.Slot)
			}
			rep.ByType[e.Type]++
			if e.ExpireAt != 0 {
				rep.Volatile++
			}
			return nil
		})
		if err != nil {
			return rep, err
		}
		rep.Slots = append(rep.Slots, SlotReport{Slot: sec.Slot, Mark: sec.Mark, Keys: sec.Count, Bytes: len(sec.Body)})
	}
	rep.Sections, rep.Keys = rd.Totals()
	rep.Bytes = rd.Offset()
	return rep, nil
}

// CheckFile is Check on a file; errors name the file.
func CheckFile(path string) (Report, error) {
	f, err := os.Open(path)
	if err != nil {
		return Report{}, fmt.Errorf("open snapshot %q: %w", path, err)
	}
	defer f.Close()
	rep, err := Check(f)
	if err != nil {
		return rep, fmt.Errorf("snapshot %q: %w", path, err)
	}
	return rep, nil
}

// IsCorrupt reports whether err is a corrupt or truncated snapshot (as
// opposed to an I/O error).
func IsCorrupt(err error) bool { return errors.Is(err, ErrCorrupt) }
