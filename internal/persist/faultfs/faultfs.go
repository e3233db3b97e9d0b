// Package faultfs is an in-memory file system for crash and disk-error
// tests of the persistence layer. It remembers, for every file and
// directory entry, what is durable (fsynced) apart from what is merely
// written, and can:
//
//   - crash at the n-th write or fsync (that operation and every later one
//     fail), after which Crash returns the file system a restarted
//     process would find: durable directory entries, durable file
//     contents plus, optionally, a prefix of what was written but not
//     fsynced (a torn write);
//   - fail writes as a full disk would (SetFull), until space returns.
package faultfs

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"path/filepath"
	"sort"
	"sync"
	"syscall"

	"shoal/internal/persist"
)

// ErrCrashed is returned by every operation after the crash point.
var ErrCrashed = errors.New("faultfs: crashed")

type inode struct {
	data   []byte // current contents
	synced []byte // contents as of the last fsync
}

// FS is the fault-injecting file system. It is safe for concurrent use.
type FS struct {
	mu      sync.Mutex
	names   map[string]*inode // current directory entries (full paths)
	durable map[string]*inode // entries as of the last fsync of their directory
	ops     int               // writes and fsyncs so far
	crashAt int               // 0 = never
	crashed bool
	crashCh chan struct{}
	full    bool
	// Trace, if set, is called with every counted operation.
	Trace func(op int, what, name string)
}

// New returns an empty file system.
func New() *FS {
	return &FS{names: map[string]*inode{}, durable: map[string]*inode{}, crashCh: make(chan struct{})}
}

// CrashAt makes the n-th counted operation (write or fsync, from 1) and
// all after it fail with ErrCrashed; 0 disarms.
func (f *FS) CrashAt(n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.crashAt = n
}

// Ops is the number of counted operations so far.
func (f *FS) Ops() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.ops
}

// Crashed reports whether the crash point was reached.
func (f *FS) Crashed() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.crashed
}

// CrashedCh is closed when the crash point is reached.
func (f *FS) CrashedCh() <-chan struct{} { return f.crashCh }

// SetFull makes writes fail with ENOSPC (true) or work again (false).
func (f *FS) SetFull(full bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.full = full
}

// count registers one write or fsync; it reports the crash.
func (f *FS) count(what, name string) error {
	if f.crashed {
		return ErrCrashed
	}
	f.ops++
	if f.Trace != nil {
		f.Trace(f.ops, what, name)
	}
	if f.crashAt > 0 && f.ops >= f.crashAt {
		f.crashed = true
		close(f.crashCh)
		return ErrCrashed
	}
	return nil
}

// Crash returns what survives a power loss now: durable entries with
// their durable contents, plus for each file the first torn(len) bytes of
// its unsynced extension (torn nil: none of it).
func (f *FS) Crash(torn func(name string, unsynced int) int) *FS {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := New()
	copies := map[*inode]*inode{}
	for name, ino := range f.durable {
		c := copies[ino]
		if c == nil {
			data := bytes.Clone(ino.synced)
			if torn != nil && len(ino.data) > len(ino.synced) && bytes.HasPrefix(ino.data, ino.synced) {
				extra := ino.data[len(ino.synced):]
				k := min(max(torn(name, len(extra)), 0), len(extra))
				data = append(data, extra[:k]...)
			}
			c = &inode{data: data, synced: bytes.Clone(data)}
			copies[ino] = c
		}
		n.names[name] = c
		n.durable[name] = c
	}
	return n
}

// ReadFile returns a file's current contents.
func (f *FS) ReadFile(name string) ([]byte, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	ino := f.names[filepath.Clean(name)]
	if ino == nil {
		return nil, false
	}
	return bytes.Clone(ino.data), true
}

// WriteFile replaces a file's contents, durably (test set-up).
func (f *FS) WriteFile(name string, data []byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	name = filepath.Clean(name)
	ino := &inode{data: bytes.Clone(data), synced: bytes.Clone(data)}
	f.names[name] = ino
	f.durable[name] = ino
}

func notExist(op, name string) error {
	return &fs.PathError{Op: op, Path: name, Err: fs.ErrNotExist}
}

func (f *FS) Create(name string) (persist.File, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	name = filepath.Clean(name)
	if f.crashed {
		return nil, ErrCrashed
	}
	if _, ok := f.names[name]; ok {
		return nil, &fs.PathError{Op: "create", Path: name, Err: fs.ErrExist}
	}
	ino := &inode{}
	f.names[name] = ino
	return &file{fs: f, ino: ino, name: name}, nil
}

func (f *FS) OpenAppend(name string) (persist.File, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	name = filepath.Clean(name)
	ino := f.names[name]
	if ino == nil {
		return nil, notExist("open", name)
	}
	return &file{fs: f, ino: ino, name: name, off: int64(len(ino.data))}, nil
}

func (f *FS) Open(name string) (io.ReadCloser, error) {
	data, ok := f.ReadFile(name)
	if !ok {
		return nil, notExist("open", name)
	}
	return io.NopCloser(bytes.NewReader(data)), nil
}

func (f *FS) Size(name string) (int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	ino := f.names[filepath.Clean(name)]
	if ino == nil {
		return 0, notExist("stat", name)
	}
	return int64(len(ino.data)), nil
}

func (f *FS) Rename(from, to string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.crashed {
		return ErrCrashed
	}
	from, to = filepath.Clean(from), filepath.Clean(to)
	ino := f.names[from]
	if ino == nil {
		return notExist("rename", from)
	}
	delete(f.names, from)
	f.names[to] = ino
	return nil
}

func (f *FS) Remove(name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.crashed {
		return ErrCrashed
	}
	name = filepath.Clean(name)
	if _, ok := f.names[name]; !ok {
		return notExist("remove", name)
	}
	delete(f.names, name)
	return nil
}

func (f *FS) List(dir string) ([]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	dir = filepath.Clean(dir)
	if _, ok := f.names[dir]; ok {
		// A file, not a directory (as os.ReadDir fails on one).
		return nil, &fs.PathError{Op: "readdirent", Path: dir, Err: syscall.ENOTDIR}
	}
	var out []string
	for name := range f.names {
		if filepath.Dir(name) == dir {
			out = append(out, filepath.Base(name))
		}
	}
	sort.Strings(out)
	return out, nil
}

func (f *FS) MkdirAll(string) error { return nil }

// SyncDir makes the directory's entries durable: creations, renames and
// removals in it.
func (f *FS) SyncDir(dir string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	dir = filepath.Clean(dir)
	if err := f.count("fsyncdir", dir); err != nil {
		return err
	}
	for name := range f.durable {
		if filepath.Dir(name) == dir {
			delete(f.durable, name)
		}
	}
	for name, ino := range f.names {
		if filepath.Dir(name) == dir {
			f.durable[name] = ino
		}
	}
	return nil
}

func (f *FS) Truncate(name string, size int64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.crashed {
		return ErrCrashed
	}
	ino := f.names[filepath.Clean(name)]
	if ino == nil {
		return notExist("truncate", name)
	}
	if int64(len(ino.data)) > size {
		ino.data = ino.data[:size]
	}
	return nil
}

type file struct {
	fs   *FS
	ino  *inode
	name string
	off  int64
}

func (w *file) Write(p []byte) (int, error) {
	f := w.fs
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.count("write", w.name); err != nil {
		return 0, err
	}
	if f.full {
		// A full disk takes part of the write, as write(2) may.
		n := len(p) / 2
		w.put(p[:n])
		return n, &fs.PathError{Op: "write", Path: w.name, Err: syscall.ENOSPC}
	}
	w.put(p)
	return len(p), nil
}

func (w *file) put(p []byte) {
	d := w.ino.data
	if int64(len(d)) < w.off {
		d = append(d, make([]byte, w.off-int64(len(d)))...)
	}
	end := w.off + int64(len(p))
	if int64(len(d)) < end {
		d = append(d[:w.off], p...)
	} else {
		copy(d[w.off:], p)
	}
	w.ino.data = d
	w.off = end
}

func (w *file) Sync() error {
	f := w.fs
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.count("fsync", w.name); err != nil {
		return err
	}
	w.ino.synced = bytes.Clone(w.ino.data)
	return nil
}

func (w *file) Truncate(size int64) error {
	f := w.fs
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.crashed {
		return ErrCrashed
	}
	if int64(len(w.ino.data)) > size {
		w.ino.data = w.ino.data[:size]
	}
	w.off = size
	return nil
}

func (w *file) Close() error { return nil }
