package persist

import (
	"io"
	"os"
	"path/filepath"
	"sort"
)

// FS is the file system the log and the snapshots are written through.
// Production uses OS; crash tests substitute a layer that fails or
// "loses power" at a chosen write or fsync (internal/persist/faultfs).
type FS interface {
	// Create makes a new file for writing (it must not exist).
	Create(name string) (File, error)
	// OpenAppend opens an existing file for writing at its end.
	OpenAppend(name string) (File, error)
	Open(name string) (io.ReadCloser, error)
	Size(name string) (int64, error)
	Rename(from, to string) error
	Remove(name string) error
	// List returns the names (not paths) in dir, sorted.
	List(dir string) ([]string, error)
	MkdirAll(dir string) error
	// SyncDir makes renames, creations and removals in dir durable.
	SyncDir(dir string) error
	Truncate(name string, size int64) error
}

// File is a file open for writing.
type File interface {
	io.Writer
	Sync() error
	// Truncate cuts the file to size; the next Write goes at size.
	Truncate(size int64) error
	Close() error
}

// OS is the real file system.
var OS FS = osFS{}

type osFS struct{}

type osFile struct{ *os.File }

func (f osFile) Truncate(size int64) error {
	if err := f.File.Truncate(size); err != nil {
		return err
	}
	_, err := f.File.Seek(size, io.SeekStart)
	return err
}

func (osFS) Create(name string) (File, error) {
	f, err := os.OpenFile(name, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, err
	}
	return osFile{f}, nil
}

func (osFS) OpenAppend(name string) (File, error) {
	f, err := os.OpenFile(name, os.O_WRONLY, 0)
	if err != nil {
		return nil, err
	}
	if _, err := f.Seek(0, io.SeekEnd); err != nil {
		f.Close()
		return nil, err
	}
	return osFile{f}, nil
}

func (osFS) Open(name string) (io.ReadCloser, error) { return os.Open(name) }

func (osFS) Size(name string) (int64, error) {
	fi, err := os.Stat(name)
	if err != nil {
		return 0, err
	}
	return fi.Size(), nil
}

func (osFS) Rename(from, to string) error { return os.Rename(from, to) }
func (osFS) Remove(name string) error     { return os.Remove(name) }
func (osFS) MkdirAll(dir string) error    { return os.MkdirAll(dir, 0o755) }
func (osFS) SyncDir(dir string) error     { return syncDir(dir) }
func (osFS) Truncate(name string, size int64) error {
	return os.Truncate(name, size)
}

func (osFS) List(dir string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(ents))
	for _, e := range ents {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	return names, nil
}

func syncDir(dir string) error {
	d, err := os.Open(filepath.Clean(dir))
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
