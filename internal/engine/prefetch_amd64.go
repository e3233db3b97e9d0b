package engine

import "unsafe"

// prefetch hints the CPU to load p's cache line (PREFETCHT0); it never
// faults and changes nothing.
//
//go:noescape
func prefetch(p unsafe.Pointer)

// prefetchDeref prefetches the line the pointer stored at p points to.
// p must point into a live Go object; the word it holds is read once,
// without synchronisation (it is only a hint: an aligned word read is
// atomic on amd64, so it is some pointer that was stored there, and a
// prefetch never faults).
//
//go:noescape
func prefetchDeref(p unsafe.Pointer)
