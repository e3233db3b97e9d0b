//go:build !linux

package repl

func allocBlock(n int) ([]byte, bool) { return make([]byte, n), false }

func freeBlock([]byte) {}
