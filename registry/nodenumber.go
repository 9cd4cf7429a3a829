package registry

import (
	"sync"

	"github.com/rosterhq/roster/fsm"
)

// nodeNumbers hands out the snowflake node numbers of members being
// added. Each add reads the state for a free number and then proposes
// the member's record; two adds at once (members joining together) read
// the same state and took the same number. A number stays reserved from
// the moment it is picked until its record is applied (or its proposal
// failed), and the state is read under the lock, so the next add sees
// either the reservation or the record. The lock is never held across the
// proposal.
type nodeNumbers struct {
	mu       sync.Mutex
	reserved map[int64]string // number → member ID
}

// reserve picks a node number for member id that no member and no other
// add in flight uses; release gives it back once the record is applied.
func (r *nodeNumbers) reserve(f *fsm.FSM, id string) int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	members := f.State().Members()
	for num, other := range r.reserved {
		members = append(members, fsm.Member{ID: other, Node: num})
	}
	num := freeNodeNumber(members, id)
	if r.reserved == nil {
		r.reserved = make(map[int64]string)
	}
	r.reserved[num] = id
	return num
}

func (r *nodeNumbers) release(num int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.reserved, num)
}
