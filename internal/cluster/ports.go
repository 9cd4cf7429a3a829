package cluster

import (
	"errors"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// Ports for members are taken below the kernel's ephemeral range. A port
// reserved with bind(":0") comes from that range, and between the moment
// the test releases it and the moment rosterd binds it, any process on the
// machine (another member dialing a peer, most often) may take it as the
// source port of an outgoing connection; rosterd then fails with "address
// already in use". No outgoing connection uses a port below the range, and
// the ports this process handed out are never handed out again.
//
// Nor are they handed out by another test binary: `go test ./...` runs
// packages in parallel processes, and a port free while its member was
// down for a restart was once taken by another package's member. Each
// port given out is locked (flock) in a directory shared by every test
// process, for the life of this process; the kernel drops the locks when
// it exits, however it exits.
var ports struct {
	sync.Mutex
	given map[int]bool
	locks []*os.File // held open: closing one would release its port
}

// claim locks port p for this process's life against every other test
// process on the machine. It reports false when another holds it.
func claim(p int) bool {
	dir := filepath.Join(os.TempDir(), "roster-test-ports")
	if err := os.MkdirAll(dir, 0o777); err != nil {
		return true // no shared directory: fall back to this process's own record
	}
	f, err := os.OpenFile(filepath.Join(dir, strconv.Itoa(p)), os.O_CREATE|os.O_RDWR, 0o666)
	if err != nil {
		return true
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return !errors.Is(err, syscall.EWOULDBLOCK)
	}
	ports.locks = append(ports.locks, f)
	return true
}

// portRange is where member ports are picked: [lo, hi).
func portRange() (lo, hi int) {
	lo, hi = 20000, 32768
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return lo, hi
	}
	f := strings.Fields(string(b))
	if len(f) == 2 {
		if eph, err := strconv.Atoi(f[0]); err == nil && eph > 2048 {
			hi = eph
			lo = min(lo, hi/2)
		}
	}
	return lo, hi
}

// freePort reserves a free 127.0.0.1 port outside the ephemeral range.
func freePort(t testing.TB) string {
	t.Helper()
	lo, hi := portRange()
	ports.Lock()
	defer ports.Unlock()
	if ports.given == nil {
		ports.given = map[int]bool{}
	}
	for attempt := 0; attempt < 1000; attempt++ {
		p := lo + rand.IntN(hi-lo)
		if ports.given[p] || !claim(p) {
			continue
		}
		addr := "127.0.0.1:" + strconv.Itoa(p)
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			ports.given[p] = true // in use by something else; the claim stays
			continue
		}
		ln.Close()
		ports.given[p] = true
		return addr
	}
	t.Fatalf("cluster: no free port in %d-%d", lo, hi)
	return ""
}
