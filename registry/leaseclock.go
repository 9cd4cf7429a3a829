package registry

import (
	"time"

	"github.com/hashicorp/raft"
	"github.com/rosterhq/roster/fsm"
)

// Ticks follow lease deadlines, so the replicated lease clock can stand
// still for as long as the shortest lease lives. Reads extrapolate it from
// the leader's wall clock recorded by the last tick (fsm.Tick.WallMs): the
// clock read State.Clock() at State.TickWall(), so now it reads that plus
// the wall time since, on every member, restarted ones included (to the
// members' clock skew). Only while a leader is known: a leaderless gap is
// not counted against leases, so a read must not count it either.
// Remaining TTLs then stay exact to the contract's rounding between ticks;
// the replicated state itself never sees this.
func (n *Node) readClock(st *fsm.State) int64 {
	if st.TickWall() == 0 {
		return st.Clock()
	}
	if addr, _ := n.raft.LeaderWithID(); addr == "" && n.raft.State() != raft.Leader {
		return st.Clock()
	}
	return st.Clock() + max(0, time.Now().UnixMilli()-st.TickWall())
}
