package persist_test

import (
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"shoal/internal/persist"
	"shoal/internal/persist/faultfs"
)

func payload(i int) (int, []byte) {
	return 1, persist.AppendEffect(nil, i%16384, []byte("set"), []byte(fmt.Sprintf("key:%d", i)), []byte(fmt.Sprint(i)))
}

func readAll(t *testing.T, fsys persist.FS, dir string) (persist.LogInfo, []string, error) {
	t.Helper()
	var got []string
	info, err := persist.ReadLog(fsys, dir, "appendonly.aof", func(lsn uint64, p []byte) error {
		return persist.ForEachEffect(p, nil, func(slot int, args [][]byte) error {
			got = append(got, fmt.Sprintf("%d:%s=%s", lsn, args[1], args[2]))
			return nil
		})
	})
	return info, got, err
}

func TestLogRoundTrip(t *testing.T) {
	for _, policy := range []int{persist.FsyncAlways, persist.FsyncEverySec, persist.FsyncNo} {
		t.Run(fmt.Sprint(policy), func(t *testing.T) {
			dir := t.TempDir()
			l, err := persist.OpenLog(nil, dir, "appendonly.aof", 1, policy)
			if err != nil {
				t.Fatal(err)
			}
			for i := 1; i <= 1000; i++ {
				if lsn := l.Append(payload(i)); lsn != uint64(i) {
					t.Fatalf("lsn %d for record %d", lsn, i)
				}
				if i == 500 {
					if _, err := l.Rotate(); err != nil {
						t.Fatal(err)
					}
				}
			}
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			info, got, err := readAll(t, nil, dir)
			if err != nil {
				t.Fatal(err)
			}
			if info.Records != 1000 || info.First != 1 || info.Last != 1000 || len(info.Segments) != 2 || info.Torn != nil {
				t.Fatalf("info %+v", info)
			}
			if got[999] != "1000:key:1000=1000" {
				t.Fatalf("last record %q", got[999])
			}
		})
	}
}

func TestLogRemoveBefore(t *testing.T) {
	dir := t.TempDir()
	l, _ := persist.OpenLog(nil, dir, "appendonly.aof", 10, persist.FsyncEverySec)
	l.Append(payload(1))
	seg, err := l.Rotate()
	if err != nil {
		t.Fatal(err)
	}
	l.Append(payload(2))
	if err := l.RemoveBefore(seg); err != nil {
		t.Fatal(err)
	}
	l.Close()
	info, got, err := readAll(t, nil, dir)
	if err != nil || len(got) != 1 || info.First != 11 || len(info.Segments) != 1 {
		t.Fatalf("info %+v got %v err %v", info, got, err)
	}
}

// A crash in the middle of a record leaves a torn tail that is reported
// (not an error), cut, and the log is readable up to it.
func TestLogTornTail(t *testing.T) {
	for cut := 1; cut < 40; cut += 3 {
		fsys := faultfs.New()
		l, _ := persist.OpenLog(fsys, "/d", "appendonly.aof", 1, persist.FsyncAlways)
		for i := 1; i <= 3; i++ {
			l.Append(payload(i))
			l.Sync()
		}
		l.SetPolicy(persist.FsyncNo)
		l.Append(payload(4))
		l.Sync() // written, not fsynced
		crashed := fsys.Crash(func(string, int) int { return cut })
		info, got, err := readAll(t, crashed, "/d")
		if err != nil {
			t.Fatal(err)
		}
		if len(got) == 4 {
			continue // the whole record survived
		}
		if len(got) != 3 || info.Torn == nil {
			t.Fatalf("cut %d: got %v torn %+v", cut, got, info.Torn)
		}
		if err := persist.CutTorn(crashed, info.Torn); err != nil {
			t.Fatal(err)
		}
		info, got, err = readAll(t, crashed, "/d")
		if err != nil || info.Torn != nil || len(got) != 3 {
			t.Fatalf("after cut: %+v %v %v", info, got, err)
		}
		l.Close()
	}
}

// fiveRecords writes a segment of five records on a fault-injecting FS
// and returns it, the segment's path and its bytes.
func fiveRecords(t *testing.T) (*faultfs.FS, string, []byte) {
	t.Helper()
	fsys := faultfs.New()
	l, err := persist.OpenLog(fsys, "/d", "appendonly.aof", 1, persist.FsyncAlways)
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 5; i++ {
		l.Append(payload(i))
	}
	l.Close()
	name := filepath.Join("/d", persist.SegmentName("appendonly.aof", 1))
	data, _ := fsys.ReadFile(name)
	return fsys, name, data
}

// Damage before the end of the log stops replay with the file and offset.
func TestLogCorruptMiddle(t *testing.T) {
	fsys, name, data := fiveRecords(t)
	data[60] ^= 0xff // inside the second record
	fsys.WriteFile(name, data)
	_, _, err := readAll(t, fsys, "/d")
	var ce *persist.LogCorruptError
	if !errors.As(err, &ce) || ce.Path != name || ce.Offset == 0 || !errors.Is(err, persist.ErrCorrupt) {
		t.Fatalf("err %v", err)
	}
}

// A full disk sets the error, keeps the records and writes them once
// space returns: nothing lost, nothing doubled.
func TestLogDiskFull(t *testing.T) {
	fsys := faultfs.New()
	l, _ := persist.OpenLog(fsys, "/d", "appendonly.aof", 1, persist.FsyncAlways)
	l.Append(payload(1))
	if err := l.Sync(); err != nil {
		t.Fatal(err)
	}
	fsys.SetFull(true)
	for i := 2; i <= 10; i++ {
		l.Append(payload(i))
	}
	if err := l.Sync(); err == nil || l.Err() == nil {
		t.Fatal("no error on a full disk")
	}
	if l.Acked() != 1 {
		t.Fatalf("acked %d with a full disk", l.Acked())
	}
	fsys.SetFull(false)
	deadline := time.Now().Add(10 * time.Second)
	for l.Err() != nil || l.Acked() != 10 {
		if time.Now().After(deadline) {
			t.Fatalf("no recovery: err %v acked %d", l.Err(), l.Acked())
		}
		l.Sync()
	}
	l.Close()
	info, got, err := readAll(t, fsys.Crash(nil), "/d")
	if err != nil || info.Records != 10 || len(got) != 10 {
		t.Fatalf("%+v %v %v", info, got, err)
	}
}

// A failed fsync is not trusted: the bytes are written again.
func TestLogFsyncFailureRewrites(t *testing.T) {
	fsys := faultfs.New()
	l, _ := persist.OpenLog(fsys, "/d", "appendonly.aof", 1, persist.FsyncAlways)
	l.Append(payload(1))
	l.Sync()
	ops := fsys.Ops()
	fsys.CrashAt(ops + 2) // the write succeeds, the fsync fails
	l.Append(payload(2))
	if err := l.Sync(); err == nil {
		t.Fatal("fsync failure not reported")
	}
	if l.Acked() != 1 {
		t.Fatalf("acked %d after a failed fsync", l.Acked())
	}
}

// A damaged length field in the last segment is not mistaken for a torn
// tail when valid records follow it.
func TestLogDamagedLengthIsNotTorn(t *testing.T) {
	fsys, name, data := fiveRecords(t)
	// The second record starts after the header (24) and the first record.
	first := 24 + 16 + int(data[24])
	data[first+3] = 0x7f // its length now runs past the end
	fsys.WriteFile(name, data)
	info, _, err := readAll(t, fsys, "/d")
	var ce *persist.LogCorruptError
	if !errors.As(err, &ce) || ce.Offset != int64(first) || info.Torn != nil {
		t.Fatalf("err %v torn %+v", err, info.Torn)
	}
}

// Event loops calling WriteNow / SyncNow while the flusher fsyncs: every
// record ends up in the file once, in order (the flusher's fsync runs
// without the write lock; a settle meanwhile must not be repeated).
func TestLogConcurrentSyncNow(t *testing.T) {
	for _, policy := range []int{persist.FsyncAlways, persist.FsyncEverySec} {
		dir := t.TempDir()
		l, err := persist.OpenLog(nil, dir, "appendonly.aof", 1, policy)
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		for g := 0; g < 3; g++ {
			go func() {
				defer func() { done <- struct{}{} }()
				for i := 0; i < 300; i++ {
					l.Append(payload(i))
					if g == 0 {
						l.SyncNow()
					} else {
						l.WriteNow()
					}
					if i%50 == 0 {
						l.Sync()
					}
				}
			}()
		}
		for range 3 {
			<-done
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		info, got, err := readAll(t, nil, dir)
		if err != nil || info.Records != 900 || len(got) != 900 {
			t.Fatalf("policy %d: %+v, %d records, %v", policy, info, len(got), err)
		}
	}
}
