//go:build !amd64

package engine

import "unsafe"

// prefetch is a no-op where no assembly version exists.
func prefetch(p unsafe.Pointer) {}

// prefetchDeref is a no-op where no assembly version exists.
func prefetchDeref(p unsafe.Pointer) {}
