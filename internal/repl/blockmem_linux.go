package repl

import "syscall"

// allocBlock returns n bytes for a block and, for a mapped one, the whole
// mapping to free it with. Full-size blocks are mapped outside the Go
// heap, 2 MiB-aligned, with MADV_HUGEPAGE: the stream writes into fresh
// memory all the time (the backlog only recycles once full), and on this
// machine a 4 KiB page fault cost ~9 µs, about 130 ns per small record on
// each node; one huge page per block makes that negligible. The
// collector never scans them (they hold no pointers).
//
// The mapping is twice the block so that an aligned block fits in it;
// the unused part is address space only (never touched). syscall.Munmap
// accepts only the exact slice Mmap returned, so that is what is kept.
func allocBlock(n int) (buf, mapping []byte) {
	if n != blockSize {
		return make([]byte, n), nil
	}
	m, err := syscall.Mmap(-1, 0, 2*n, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_PRIVATE|syscall.MAP_ANON)
	if err != nil {
		return make([]byte, n), nil
	}
	addr := uintptrOf(m)
	skip := int((uintptr(n) - addr%uintptr(n)) % uintptr(n))
	b := m[skip : skip+n : skip+n]
	_ = syscall.Madvise(b, 14) // MADV_HUGEPAGE
	return b, m
}

// freeBlock returns a mapping to the system.
func freeBlock(mapping []byte) {
	if mapping != nil {
		_ = syscall.Munmap(mapping)
	}
}
