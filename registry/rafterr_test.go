package registry

import (
	"errors"
	"fmt"
	"testing"

	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rosterhq/roster/internal/logging/logtest"
)

// Only what raft refuses before appending an entry may be answered as a
// refusal (503, nothing changed); everything else after proposing is an
// unknown outcome (504).
func TestMapProposeErr(t *testing.T) {
	n, err := Open(Config{ID: "n1", DataDir: t.TempDir(), RaftAddr: "127.0.0.1:0", Bootstrap: true, NodeNumber: -1},
		logtest.ForTest(t), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	for _, tc := range []struct {
		err     error
		refusal bool
	}{
		{raft.ErrNotLeader, true},
		{raft.ErrEnqueueTimeout, true},
		{raft.ErrLeadershipTransferInProgress, true},
		{raft.ErrLeadershipLost, false},
		{raft.ErrRaftShutdown, false},
		{fmt.Errorf("disk on fire"), false},
	} {
		got := n.mapProposeErr(tc.err)
		if errors.Is(got, ErrNoLeader) != tc.refusal || errors.Is(got, ErrTimeout) == tc.refusal {
			t.Errorf("mapProposeErr(%v) = %v; refusal %v", tc.err, got, tc.refusal)
		}
		if !tc.refusal && !errors.Is(got, tc.err) {
			t.Errorf("mapProposeErr(%v) = %v loses the cause", tc.err, got)
		}
	}
}
