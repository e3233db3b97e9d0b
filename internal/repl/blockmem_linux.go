package repl

import "syscall"

// allocBlock returns n bytes for a block. Full-size blocks are mapped
// outside the Go heap, 2 MiB-aligned, with MADV_HUGEPAGE: the stream
// writes into fresh memory all the time (the backlog only recycles once
// full), and on this machine a 4 KiB page fault cost ~9 µs, about 130 ns
// per small record on each node; one huge page per block makes that
// negligible. The collector never scans them (they hold no pointers).
func allocBlock(n int) ([]byte, bool) {
	if n != blockSize {
		return make([]byte, n), false
	}
	m, err := syscall.Mmap(-1, 0, 2*n, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_PRIVATE|syscall.MAP_ANON)
	if err != nil {
		return make([]byte, n), false
	}
	// Keep the 2 MiB-aligned part, unmap the rest.
	addr := uintptrOf(m)
	skip := int((uintptr(n) - addr%uintptr(n)) % uintptr(n))
	if skip > 0 {
		_ = syscall.Munmap(m[:skip])
	}
	if tail := m[skip+n:]; len(tail) > 0 {
		_ = syscall.Munmap(tail)
	}
	b := m[skip : skip+n : skip+n]
	_ = syscall.Madvise(b, 14) // MADV_HUGEPAGE
	return b, true
}

// freeBlock returns a mapped block's memory to the system.
func freeBlock(b []byte) { _ = syscall.Munmap(b) }
