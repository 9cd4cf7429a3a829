//go:build !linux

package boltmap

// release does nothing where madvise is not wired up: the pages stay
// mapped, which costs resident memory and nothing else.
func release(addr uintptr, size int64) error { return nil }
