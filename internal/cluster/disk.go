package cluster

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// Disk is a small tmpfs mounted for one member's data directory, so a test
// can fill it up and then make room again.
type Disk struct {
	Dir string
}

// SmallDisk mounts a tmpfs of size bytes on a new directory and unmounts
// it at cleanup. Mounting needs root (CAP_SYS_ADMIN) and a kernel that
// lets this process mount, which a CI container may not: then the test is
// skipped, saying why.
func SmallDisk(t testing.TB, size int64) *Disk {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "disk")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatalf("cluster: %v", err)
	}
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, fmt.Sprintf("size=%d,mode=0700", size)); err != nil {
		t.Skipf("full-disk test skipped: mounting a %d-byte tmpfs is not allowed here (needs root with CAP_SYS_ADMIN): %v", size, err)
	}
	t.Cleanup(func() { _ = syscall.Unmount(dir, syscall.MNT_DETACH) })
	return &Disk{Dir: dir}
}

// Resize grows (or shrinks) the tmpfs in place; the files stay.
func (d *Disk) Resize(size int64) error {
	return syscall.Mount("tmpfs", d.Dir, "tmpfs", syscall.MS_REMOUNT, fmt.Sprintf("size=%d", size))
}

// Free is the space left on the disk, in bytes.
func (d *Disk) Free() (int64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(d.Dir, &st); err != nil {
		return 0, err
	}
	return int64(st.Bavail) * int64(st.Bsize), nil
}
