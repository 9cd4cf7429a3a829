package systemtest

import (
	"fmt"
	"testing"
	"time"

	"github.com/rosterhq/roster/internal/cluster"
)

// TestJoinWithoutHTTPAddressGetsItRecorded adds a -bootstrap=false member
// through the compatibility POST /join {"id","addr"}, which carries no HTTP
// address: the member then has it recorded itself, so every member's view
// lists it.
func TestJoinWithoutHTTPAddressGetsItRecorded(t *testing.T) {
	c := cluster.Start(t, 2, "-tick", "100ms")
	leader := c.Leader(30 * time.Second)
	n3 := c.Add()
	n3.Start("-bootstrap=false")
	c.WaitServing(30*time.Second, n3) // a new voter must answer to be added
	body := []byte(fmt.Sprintf(`{"id":%q,"addr":%q}`, n3.ID, n3.Raft))
	if code, b := do(t, "POST", c.Followers(leader)[0].URL("/join"), body); code != 200 {
		t.Fatalf("POST /join: %d %s", code, b)
	}
	c.WaitReady(30*time.Second, n3)
	c.Eventually(20*time.Second, "n3's HTTP address recorded in every view", func() bool {
		for _, m := range c.Running() {
			info, err := c.ClusterInfo(m)
			if err != nil {
				return false
			}
			found := false
			for _, mm := range info.Members {
				if mm.ID == n3.ID {
					found = mm.HTTPAddr == n3.HTTP && mm.RaftAddr == n3.Raft && mm.Voter
				}
			}
			if !found {
				return false
			}
		}
		return true
	})
}
