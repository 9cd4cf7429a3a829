package systemtest

import (
	"fmt"
	"testing"
	"time"

	"github.com/rosterhq/roster/internal/cluster"
)

// TestThreeMembersFormAndForward starts three members (the third joins
// through a follower), writes through every member and reads each write
// linearizably through another member.
func TestThreeMembersFormAndForward(t *testing.T) {
	c := cluster.New(t, "-tick", "100ms")
	first := c.Add()
	first.Start()
	c.WaitReady(30*time.Second, first)
	second := c.Add()
	second.Start("-join", first.HTTP)
	c.WaitReady(30*time.Second, second)
	third := c.Add()
	third.Start("-join", second.HTTP) // a follower: it forwards to the leader
	c.WaitReady(30*time.Second, third)
	c.WaitVoters(30*time.Second, 3)

	for i, m := range c.Members {
		key := fmt.Sprintf("/v1/kv/smoke/k%d", i)
		if code, b := do(t, "PUT", m.URL(key), []byte(m.ID)); code != 200 {
			t.Fatalf("put via %s: %d %s", m.ID, code, b)
		}
		other := c.Members[(i+1)%3]
		var kv kvJSON
		code, b := do(t, "GET", other.URL(key), nil)
		mustJSON(t, code, b, &kv)
		if kv.Value != m.ID {
			t.Fatalf("read via %s of a write via %s: %q", other.ID, m.ID, kv.Value)
		}
	}
	// Each member's view is its own applied state: the record of the last
	// member to join reaches the others a moment after the join answered.
	for _, m := range c.Members {
		var info cluster.Info
		var err error
		c.Eventually(10*time.Second, "every member's record on "+m.ID, func() bool {
			info, err = c.ClusterInfo(m)
			if err != nil || info.Leader == nil || len(info.Members) != 3 {
				return false
			}
			for _, mm := range info.Members {
				if mm.HTTPAddr == "" || !mm.Voter {
					return false
				}
			}
			return true
		})
	}
}
