package cluster

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Fault is one kind of failure a Nemesis injects.
type Fault string

// The faults. Kills are SIGKILL (no clean shutdown) followed by a restart
// on the same data directory; pauses are SIGSTOP then SIGCONT; network
// faults need the cluster's Net (StartNet). Stops are SIGTERM: the
// graceful path, where in-flight writes meet a closing node.
const (
	KillOne         Fault = "kill-one"         // a random member
	KillLeader      Fault = "kill-leader"      // the leader
	KillAll         Fault = "kill-all"         // every member at once
	StopOne         Fault = "stop-one"         // SIGTERM (graceful) a random member
	StopLeader      Fault = "stop-leader"      // SIGTERM the leader: it hands leadership over first
	PauseOne        Fault = "pause-one"        // SIGSTOP a random member
	PauseLeader     Fault = "pause-leader"     // SIGSTOP the leader
	IsolateLeader   Fault = "isolate-leader"   // cut the leader off, both ways
	PartitionHalf   Fault = "partition"        // random minority | majority, cut
	BlackholeOne    Fault = "blackhole"        // a random member black-holed, both ways
	OneWayLeader    Fault = "one-way-leader"   // the leader's outgoing links cut; it still hears the others
	DelayLinks      Fault = "delay"            // every link delayed by a random 5-150 ms
	FlakyBridge     Fault = "bridge"           // two halves joined only through one member
	PauseMinority   Fault = "pause-minority"   // SIGSTOP a minority at once
	IsolateFollower Fault = "isolate-follower" // cut one follower off, both ways
)

// AllFaults lists every fault.
func AllFaults() []Fault { return append(append([]Fault(nil), ProcessFaults...), NetFaults...) }

// ProcessFaults need no Net; NetFaults do.
var (
	ProcessFaults = []Fault{KillOne, KillLeader, KillAll, StopOne, StopLeader, PauseOne, PauseLeader, PauseMinority}
	NetFaults     = []Fault{IsolateLeader, IsolateFollower, PartitionHalf, BlackholeOne, OneWayLeader, DelayLinks, FlakyBridge}
)

// Nemesis injects random faults into a cluster, one at a time: it picks a
// fault, holds it for a while, heals everything (restarts killed members,
// resumes paused ones, heals the network) and waits until every member is
// ready again before the next. It runs in the test's goroutine (it fails
// the test when the cluster does not recover); the workload runs beside it.
type Nemesis struct {
	C      *Cluster
	Rand   *rand.Rand
	Faults []Fault
	// Hold bounds how long a fault lasts: uniform in [Hold[0], Hold[1]].
	Hold [2]time.Duration
	// Calm bounds the pause after recovery, before the next fault.
	Calm [2]time.Duration
	// Recover bounds the wait for every member to be ready after a heal.
	Recover time.Duration

	mu     sync.Mutex
	counts map[Fault]int
	log    []string
}

// NewNemesis returns a nemesis over c with every fault c supports, seeded
// with seed (log it: the same seed gives the same choices).
func NewNemesis(c *Cluster, seed uint64) *Nemesis {
	faults := append([]Fault(nil), ProcessFaults...)
	if c.Net != nil {
		faults = append(faults, NetFaults...)
	}
	return &Nemesis{
		C: c, Rand: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), Faults: faults,
		Hold: [2]time.Duration{time.Second, 3 * time.Second}, Calm: [2]time.Duration{300 * time.Millisecond, time.Second},
		Recover: 60 * time.Second, counts: map[Fault]int{},
	}
}

// RunFor injects faults until d has passed (finishing the one under way).
func (n *Nemesis) RunFor(d time.Duration) {
	n.C.t.Helper()
	end := time.Now().Add(d)
	for time.Now().Before(end) {
		n.Step()
	}
}

// Step injects one random fault, holds it, heals and waits for recovery.
func (n *Nemesis) Step() {
	c := n.C
	c.t.Helper()
	f := n.Faults[n.Rand.IntN(len(n.Faults))]
	// A step that hangs (a process that will not die, a stuck proxy) would
	// otherwise show nothing until the test's timeout: dump every
	// goroutine and the network's state once it has run far too long.
	watchdog := time.AfterFunc(n.Hold[1]+n.Recover+2*time.Minute, func() {
		buf := make([]byte, 4<<20)
		k := runtime.Stack(buf, true)
		net := "no Net"
		if c.Net != nil {
			net = c.Net.String()
		}
		c.t.Logf("cluster: nemesis step %q still running; links: %s; goroutines:\n%s", f, net, buf[:k])
	})
	defer watchdog.Stop()
	what := n.inject(f)
	n.record(f, what)
	time.Sleep(n.between(n.Hold))
	n.Heal()
	n.record("", "healed")
	time.Sleep(n.between(n.Calm))
}

func (n *Nemesis) between(r [2]time.Duration) time.Duration {
	if r[1] <= r[0] {
		return r[0]
	}
	return r[0] + time.Duration(n.Rand.Int64N(int64(r[1]-r[0])))
}

// inject applies f and describes what it did.
func (n *Nemesis) inject(f Fault) string {
	c := n.C
	c.t.Helper()
	ms := c.Members
	pick := func() *Member { return ms[n.Rand.IntN(len(ms))] }
	leader := c.CurrentLeader()
	if leader == nil {
		leader = pick()
	}
	// one is the leader for the leader's variant of a fault, else anyone.
	one := func(leaderVariant Fault) *Member {
		if f == leaderVariant {
			return leader
		}
		return pick()
	}
	minority := func() []*Member {
		perm := n.Rand.Perm(len(ms))
		k := 1 + n.Rand.IntN((len(ms)-1)/2)
		out := make([]*Member, k)
		for i := range out {
			out[i] = ms[perm[i]]
		}
		return out
	}
	switch f {
	case KillOne, KillLeader:
		m := one(KillLeader)
		m.Kill()
		return "killed " + m.ID
	case StopOne, StopLeader:
		m := one(StopLeader)
		m.Stop()
		return "stopped " + m.ID
	case KillAll:
		for _, m := range ms {
			m.Kill()
		}
		return "killed all"
	case PauseOne, PauseLeader:
		m := one(PauseLeader)
		m.Freeze()
		return "paused " + m.ID
	case PauseMinority:
		min := minority()
		for _, m := range min {
			m.Freeze()
		}
		return "paused " + ids(min)
	case IsolateLeader:
		c.Net.Isolate(Cut, leader)
		return "isolated leader " + leader.ID
	case IsolateFollower:
		m := pick()
		for m == leader && len(ms) > 1 {
			m = pick()
		}
		c.Net.Isolate(Cut, m)
		return "isolated " + m.ID
	case PartitionHalf:
		min := minority()
		c.Net.Partition(Cut, min, without(ms, min))
		return "partition " + ids(min) + " | " + ids(without(ms, min))
	case BlackholeOne:
		m := pick()
		c.Net.Isolate(Blackhole, m)
		return "black-holed " + m.ID
	case OneWayLeader:
		for _, o := range without(ms, []*Member{leader}) {
			c.Net.SetLink(leader, o, Link{Mode: Cut})
		}
		return "cut " + leader.ID + "'s outgoing links"
	case DelayLinks:
		for _, a := range ms {
			for _, b := range ms {
				if a != b {
					c.Net.SetLink(a, b, Link{Delay: time.Duration(5+n.Rand.IntN(146)) * time.Millisecond})
				}
			}
		}
		return "delayed every link"
	case FlakyBridge:
		if len(ms) < 3 {
			c.Net.Isolate(Cut, leader)
			return "isolated " + leader.ID
		}
		perm := n.Rand.Perm(len(ms))
		bridge := ms[perm[0]]
		var a, b []*Member
		for i, p := range perm[1:] {
			if i%2 == 0 {
				a = append(a, ms[p])
			} else {
				b = append(b, ms[p])
			}
		}
		c.Net.Partition(Cut, a, b)
		return "bridge " + ids(a) + " <" + bridge.ID + "> " + ids(b)
	}
	c.t.Fatalf("cluster: nemesis: unknown fault %q", f)
	return ""
}

// Heal undoes every fault: restarts members that do not run, resumes
// paused ones, heals the network; then waits until every member is ready.
func (n *Nemesis) Heal() {
	c := n.C
	c.t.Helper()
	if c.Net != nil {
		c.Net.Heal()
	}
	for _, m := range c.Members {
		if m.Running() {
			_ = m.Signal(syscall.SIGCONT)
		} else {
			m.Restart()
		}
	}
	c.WaitReady(n.Recover, c.Members...)
}

func (n *Nemesis) record(f Fault, what string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if f != "" {
		n.counts[f]++
	}
	n.log = append(n.log, time.Now().Format("15:04:05.000")+" "+what)
}

// Count is the number of faults injected so far.
func (n *Nemesis) Count() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	total := 0
	for _, k := range n.counts {
		total += k
	}
	return total
}

// Summary counts the faults by kind ("kill-one=3 partition=2 ...").
func (n *Nemesis) Summary() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	var parts []string
	for f, k := range n.counts {
		parts = append(parts, fmt.Sprintf("%s=%d", f, k))
	}
	sort.Strings(parts)
	return strings.Join(parts, " ")
}

// History lists every fault injected, with its time.
func (n *Nemesis) History() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]string(nil), n.log...)
}

func ids(ms []*Member) string {
	var s []string
	for _, m := range ms {
		s = append(s, m.ID)
	}
	return "{" + strings.Join(s, ",") + "}"
}

func without(ms, drop []*Member) []*Member {
	var out []*Member
outer:
	for _, m := range ms {
		for _, d := range drop {
			if m == d {
				continue outer
			}
		}
		out = append(out, m)
	}
	return out
}
