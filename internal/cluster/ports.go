package cluster

import (
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// Ports for members are taken below the kernel's ephemeral range. A port
// reserved with bind(":0") comes from that range, and between the moment
// the test releases it and the moment rosterd binds it, any process on the
// machine (another member dialing a peer, most often) may take it as the
// source port of an outgoing connection; rosterd then fails with "address
// already in use". No outgoing connection uses a port below the range, and
// the ports this process handed out are never handed out again.
var ports struct {
	sync.Mutex
	given map[int]bool
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
		if ports.given[p] {
			continue
		}
		addr := "127.0.0.1:" + strconv.Itoa(p)
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			continue
		}
		ln.Close()
		ports.given[p] = true
		return addr
	}
	t.Fatalf("cluster: no free port in %d-%d", lo, hi)
	return ""
}
