package registry

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/rosterhq/roster/internal/testutil"
)

// TestRemovingItselfWithoutCommitReturns: a leader asked to remove itself
// that loses leadership before the change commits is not removed, so its
// raft never shuts itself down. RemoveMember waited for exactly that
// shutdown (removedItself) as long as the caller's context allowed: with
// no deadline, for ever (seen once as an 8-minute hang of
// TestLeaderRemovingItselfIsForgottenByTheNext on a loaded machine). The
// wait is bounded by ApplyTimeout now, and the member stays a member.
func TestRemovingItselfWithoutCommitReturns(t *testing.T) {
	var cutFrom atomic.Int32 // index of the member whose RPCs are dropped; -1: none
	cutFrom.Store(-1)
	tc := startCluster(t, 3, clusterOpts{
		hooks: func(i int) *testHooks {
			return &testHooks{cut: func(cutRPC) cutMode {
				if int(cutFrom.Load()) == i {
					return cutDrop
				}
				return cutNone
			}}
		},
		cfg: func(i int, c *Config) { c.ApplyTimeout = 3 * time.Second },
	})
	l := tc.leader()
	cutFrom.Store(int32(tc.index(l)))
	done := make(chan error, 1)
	go func() { done <- l.RemoveMember(context.Background(), l.ID()) }()
	var err error
	select {
	case err = <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("RemoveMember of itself, never committed, did not return")
	}
	if err == nil {
		t.Fatal("RemoveMember succeeded though the change could not commit")
	}
	t.Logf("RemoveMember: %v", err)
	cutFrom.Store(-1)
	select {
	case <-l.Done():
		t.Fatalf("the member stopped (%v) though it was not removed", l.Err())
	default:
	}
	testutil.Eventually(t, 20*time.Second, "a leader whose configuration still has "+l.ID(), func() bool {
		for _, n := range tc.nodes {
			if !n.IsLeader() {
				continue
			}
			cf := n.raft.GetConfiguration()
			if cf.Error() != nil {
				return false
			}
			for _, s := range cf.Configuration().Servers {
				if s.ID == raft.ServerID(l.ID()) {
					return true
				}
			}
		}
		return false
	})
}
