package registry

import (
	"time"

	"github.com/hashicorp/raft"
)

// Ticks follow lease deadlines, so the replicated lease clock can stand
// still for as long as the shortest lease lives. Reads extrapolate it:
// every member notes when its applied clock last moved, and reads see the
// clock advanced by the real time since (only while a leader is known: a
// leaderless gap is not counted against leases, so a read must not count
// it either). Remaining TTLs then stay exact to the contract's rounding
// between ticks; the replicated state itself never sees this.

type clockMark struct {
	clock int64     // applied lease clock (ms)
	at    time.Time // local time it was first seen applied
}

// watchClock notes each change of the applied lease clock.
func (n *Node) watchClock() {
	defer n.wg.Done()
	for {
		changed := n.fsm.Changed()
		if c := n.fsm.State().Clock(); n.clockSeen.Load() == nil || n.clockSeen.Load().clock != c {
			n.clockSeen.Store(&clockMark{clock: c, at: time.Now()})
		}
		select {
		case <-n.stop:
			return
		case <-changed:
		}
	}
}

// readClock is the lease clock a read at this moment should use for a
// state whose applied clock is applied.
func (n *Node) readClock(applied int64) int64 {
	m := n.clockSeen.Load()
	if m == nil || m.clock != applied {
		return applied // just moved: nothing to add
	}
	if addr, _ := n.raft.LeaderWithID(); addr == "" && n.raft.State() != raft.Leader {
		return applied
	}
	return applied + time.Since(m.at).Milliseconds()
}
