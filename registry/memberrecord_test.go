package registry

import (
	"errors"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// TestAddMemberAnswersTheChangeMade: a member is added once the
// configuration holding it commits; the leader then records its
// metadata. When leadership moves between the two, the record is refused
// (not proposed), but the member was added: the answer must not be
// no_leader, which promises that nothing changed (a caller that believes
// it would think the quorum unchanged). The member's record is written
// later (its own metadata keeper asks the leader).
func TestAddMemberAnswersTheChangeMade(t *testing.T) {
	var nodes []*Node
	var armed atomic.Bool
	tc := startCluster(t, 3, clusterOpts{hooks: func(i int) *testHooks {
		return &testHooks{proposing: func(name string) {
			if name == "member" && armed.CompareAndSwap(true, false) {
				for _, n := range nodes {
					if n.IsLeader() {
						if err := n.raft.LeadershipTransfer().Error(); err != nil {
							t.Errorf("leadership transfer: %v", err)
						}
					}
				}
			}
		}}
	}})
	nodes = tc.nodes
	leader := tc.leader()
	armed.Store(true)
	req := JoinRequest{ID: "n4", RaftAddr: "127.0.0.1:1", HTTPAddr: "127.0.0.1:14"} // a non-voter, not started
	err := leader.AddMember(ctxT(t, 20*time.Second), req)
	if armed.Load() {
		t.Fatal("the member's record was never proposed")
	}
	cf := leader.raft.GetConfiguration()
	if cf.Error() != nil {
		t.Fatal(cf.Error())
	}
	added := slices.ContainsFunc(cf.Configuration().Servers, func(s raft.Server) bool { return s.ID == "n4" })
	if !added {
		t.Fatalf("n4 not in the configuration after AddMember (%v)", err)
	}
	if errors.Is(err, ErrNoLeader) {
		t.Fatalf("AddMember answered %v, though the member was added", err)
	}
	if err != nil {
		t.Fatalf("AddMember: %v", err)
	}
}
