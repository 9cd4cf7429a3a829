package cluster

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// TestFreePortIsClaimedAcrossProcesses: a port handed out stays locked in
// the directory every test process shares, so another test binary (which
// has its own record of the ports it gave) cannot pick it while this one
// lives, even while nothing listens on it (a member down for a restart).
func TestFreePortIsClaimedAcrossProcesses(t *testing.T) {
	addr := freePort(t)
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	// flock locks belong to an open file: a second open of the same file,
	// as another process would make, must find it locked.
	f, err := os.OpenFile(filepath.Join(os.TempDir(), "roster-test-ports", port), os.O_RDWR, 0)
	if err != nil {
		t.Fatalf("the port's claim file: %v", err)
	}
	defer f.Close()
	err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
	if err == nil {
		t.Fatalf("port %s was not claimed: another process could lock it", port)
	}
	if !errors.Is(err, syscall.EWOULDBLOCK) {
		t.Fatalf("locking the claim: %v, want EWOULDBLOCK", err)
	}
}
