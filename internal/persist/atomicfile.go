package persist

import (
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
)

// AtomicFile is a file written under a temporary name in its directory
// and renamed over its path only once complete and durable (fsync of the
// file, rename, fsync of the directory): path always holds either the old
// contents or the new ones. Snapshots, a replica's copy of its primary's
// snapshot and the replication state are written this way.
type AtomicFile struct {
	fsys FS
	f    File
	tmp  string
	path string
	done bool
}

var tempSeq atomic.Int64

// CreateAtomic starts writing path.
func CreateAtomic(fsys FS, path string) (*AtomicFile, error) {
	if fsys == nil {
		fsys = OS
	}
	tmp := filepath.Join(filepath.Dir(path), fmt.Sprintf("temp-%d-%d.shoal", os.Getpid(), tempSeq.Add(1)))
	f, err := fsys.Create(tmp)
	if err != nil {
		return nil, fmt.Errorf("create %q: %w", tmp, err)
	}
	return &AtomicFile{fsys: fsys, f: f, tmp: tmp, path: path}, nil
}

// Write writes to the temporary file.
func (a *AtomicFile) Write(p []byte) (int, error) { return a.f.Write(p) }

// Commit makes the written contents path's, durably. On error the
// temporary file is removed and path is unchanged (unless only the final
// directory fsync failed: the rename happened).
func (a *AtomicFile) Commit() error {
	if err := a.f.Sync(); err != nil {
		a.Abort()
		return fmt.Errorf("fsync %q: %w", a.tmp, err)
	}
	err := a.f.Close()
	a.done = true
	if err != nil {
		_ = a.fsys.Remove(a.tmp)
		return fmt.Errorf("close %q: %w", a.tmp, err)
	}
	if err := a.fsys.Rename(a.tmp, a.path); err != nil {
		_ = a.fsys.Remove(a.tmp)
		return fmt.Errorf("rename %q to %q: %w", a.tmp, a.path, err)
	}
	dir := filepath.Dir(a.path)
	if err := a.fsys.SyncDir(dir); err != nil {
		return fmt.Errorf("fsync directory %q: %w", dir, err)
	}
	return nil
}

// Abort drops the temporary file (no-op after Commit).
func (a *AtomicFile) Abort() {
	if a.done {
		return
	}
	a.done = true
	_ = a.f.Close()
	_ = a.fsys.Remove(a.tmp)
}
