package cluster

import (
	"fmt"
	"net"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Mode is what a directed link between two members does with the bytes
// one sends the other.
type Mode int

const (
	// OK relays bytes (after the link's Delay, if any).
	OK Mode = iota
	// Cut closes and refuses: the connections the sender dialed to the
	// receiver are closed, new ones are accepted and closed at once (the
	// dialer fails fast), and bytes it sends on connections the receiver
	// dialed (its answers) are dropped.
	Cut
	// Blackhole accepts and reads everything the sender sends and drops
	// it: nothing is answered, nothing fails fast, the sender times out.
	Blackhole
)

func (m Mode) String() string {
	switch m {
	case OK:
		return "ok"
	case Cut:
		return "cut"
	case Blackhole:
		return "blackhole"
	}
	return fmt.Sprintf("Mode(%d)", int(m))
}

// Link is the state of the directed link from one member to another.
type Link struct {
	Mode  Mode
	Delay time.Duration // added to every byte relayed (Mode OK)
}

// Net is the network between the members of a cluster, as the test sees
// it: a TCP proxy in front of each member's Raft port and one in front of
// its HTTP port. Each member advertises its proxies (-advertise-raft,
// -advertise-http), so every connection one member opens to another, Raft
// or HTTP forwarding alike, passes through the test.
//
// Links are directed and controlled one by one: the proxy learns which
// member dialed each connection by finding the process that owns the
// connection's other end (Linux /proc, see dialer.go), so each member
// needs only one proxy per port and the partition is exact per link. A
// connection from anything that is not a member (the test's own clients)
// is always relayed. Test clients usually talk to a member's real HTTP
// address directly anyway: the client is on every side of a partition.
type Net struct {
	t       testing.TB
	mu      sync.Mutex
	links   map[[2]string]Link
	conns   map[*pconn]struct{}
	members []*Member
	proxies []*proxy
	closed  chan struct{}
	wg      sync.WaitGroup

	refused      atomic.Int64
	droppedBytes atomic.Int64
}

// NetAvailable reports whether Net can tell who dialed a connection here
// (it needs Linux's /proc); tests that need partitions skip without it.
func NetAvailable() error { return procAvailable() }

// newNet returns an empty network; Cluster.Add puts its members on it.
func newNet(t testing.TB) *Net {
	n := &Net{t: t, links: map[[2]string]Link{}, conns: map[*pconn]struct{}{}, closed: make(chan struct{})}
	t.Cleanup(n.close)
	return n
}

// attach opens m's two proxies and records their addresses on m.
func (n *Net) attach(m *Member) {
	n.t.Helper()
	m.RaftProxy = n.listen(m, func() string { return m.Raft })
	m.HTTPProxy = n.listen(m, func() string { return m.HTTP })
	n.mu.Lock()
	n.members = append(n.members, m)
	n.mu.Unlock()
}

func (n *Net) listen(m *Member, target func() string) string {
	n.t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		n.t.Fatalf("cluster: proxy for %s: %v", m.ID, err)
	}
	p := &proxy{net: n, to: m, target: target, ln: ln}
	n.mu.Lock()
	n.proxies = append(n.proxies, p)
	n.mu.Unlock()
	n.wg.Add(1)
	go p.serve()
	return ln.Addr().String()
}

// close stops every proxy and connection and waits for their goroutines.
func (n *Net) close() {
	n.mu.Lock()
	select {
	case <-n.closed:
		n.mu.Unlock()
		return
	default:
	}
	close(n.closed)
	for _, p := range n.proxies {
		p.ln.Close()
	}
	for c := range n.conns {
		c.close()
	}
	n.mu.Unlock()
	n.wg.Wait()
}

func (n *Net) track(c *pconn) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	select {
	case <-n.closed:
		return false
	default:
	}
	n.conns[c] = struct{}{}
	return true
}

func (n *Net) untrack(c *pconn) {
	n.mu.Lock()
	delete(n.conns, c)
	n.mu.Unlock()
}

// link is the current state of from→to; "" (not a member) is always OK.
func (n *Net) link(from, to string) Link {
	if from == "" || to == "" {
		return Link{}
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.links[[2]string{from, to}]
}

// SetLink sets the directed link from→to. Cutting it closes the
// connections from dialed to to at once; making it OK again closes every
// connection between the two that lost bytes, since their streams have a
// hole (the members dial again, as after any network failure).
func (n *Net) SetLink(from, to *Member, l Link) {
	n.mu.Lock()
	defer n.mu.Unlock()
	key := [2]string{from.ID, to.ID}
	if l == (Link{}) {
		delete(n.links, key)
	} else {
		n.links[key] = l
	}
	for c := range n.conns {
		between := c.from == from.ID && c.to == to.ID || c.from == to.ID && c.to == from.ID
		switch {
		case !between:
		case l.Mode == Cut && c.from == from.ID:
			c.close()
		case l.Mode == OK && c.dropped.Load():
			c.close()
		}
	}
}

// SetBoth sets the links a→b and b→a.
func (n *Net) SetBoth(a, b *Member, l Link) {
	n.SetLink(a, b, l)
	n.SetLink(b, a, l)
}

// Partition splits the members into the given groups: every link between
// two groups gets mode (Cut or Blackhole) in both directions; links inside
// a group are left as they are. Members in no group keep their links.
func (n *Net) Partition(mode Mode, groups ...[]*Member) {
	for i, g := range groups {
		for _, h := range groups[i+1:] {
			for _, a := range g {
				for _, b := range h {
					n.SetBoth(a, b, Link{Mode: mode})
				}
			}
		}
	}
}

// Isolate cuts m off from every other member, both ways.
func (n *Net) Isolate(mode Mode, m *Member) {
	for _, o := range n.others(m) {
		n.SetBoth(m, o, Link{Mode: mode})
	}
}

// Heal makes every link OK again.
func (n *Net) Heal() {
	n.mu.Lock()
	ms := append([]*Member(nil), n.members...)
	n.mu.Unlock()
	for _, a := range ms {
		for _, b := range ms {
			if a != b {
				n.SetLink(a, b, Link{})
			}
		}
	}
}

func (n *Net) others(m *Member) []*Member {
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []*Member
	for _, o := range n.members {
		if o != m {
			out = append(out, o)
		}
	}
	return out
}

// String describes the links that are not OK, for test logs.
func (n *Net) String() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	var parts []string
	for k, l := range n.links {
		s := k[0] + "->" + k[1] + " " + l.Mode.String()
		if l.Delay > 0 {
			s += " +" + l.Delay.String()
		}
		parts = append(parts, s)
	}
	sort.Strings(parts)
	if len(parts) == 0 {
		return "all links ok"
	}
	return strings.Join(parts, ", ")
}

// Stats are the proxies' counters: connections refused on cut links and
// bytes dropped on cut or black-holed links.
func (n *Net) Stats() (refused, droppedBytes int64) {
	return n.refused.Load(), n.droppedBytes.Load()
}

// dialerOf names the member that dialed c ("" for anyone else).
func (n *Net) dialerOf(c net.Conn) string {
	n.mu.Lock()
	ms := append([]*Member(nil), n.members...)
	n.mu.Unlock()
	pids := map[int]string{}
	for _, m := range ms {
		if pid := m.Pid(); pid > 0 {
			pids[pid] = m.ID
		}
	}
	return dialerMember(c, pids)
}
