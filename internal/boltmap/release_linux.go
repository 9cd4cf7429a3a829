package boltmap

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// release advises the kernel that the size bytes mapped at addr are not
// needed. The address stays a uintptr: the mapping is not Go memory.
func release(addr uintptr, size int64) error {
	if addr == 0 || size <= 0 {
		return nil
	}
	_, _, errno := unix.Syscall(unix.SYS_MADVISE, addr, uintptr(size), unix.MADV_DONTNEED)
	if errno != 0 {
		return fmt.Errorf("boltmap: madvise of %d bytes: %w", size, errno)
	}
	return nil
}
