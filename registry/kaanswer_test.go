package registry

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/rosterhq/roster/fsm"
)

// TestForwardedKeepAliveOfLongNamedLeases: a batch keep-alive through a
// follower answers like the leader however long the leases' names are.
// The leader's answer to the forwarded batch carried every lease's name,
// which no keep-alive answer shows: 5,000 leases named with 1 KiB made it
// larger than the forwarding channel's frames, and the follower answered
// 504 (outcome unknown) for renewals that had been made.
func TestForwardedKeepAliveOfLongNamedLeases(t *testing.T) {
	const maxValue = 64 << 10 // frames: 4 × 64 KiB + 4 MiB
	tc := startCluster(t, 2, clusterOpts{cfg: func(_ int, c *Config) { c.MaxValue = maxValue }})
	l := tc.leader()
	f := tc.followers(l)[0]
	const leases, perTxn = 5000, 200
	var ids []int64
	for len(ids) < leases {
		var ops []fsm.Command
		for i := 0; i < perTxn; i++ {
			name := fmt.Sprintf("/svc/%05d/", len(ids)+i) + strings.Repeat("n", fsm.MaxNameLen-12)
			ops = append(ops, fsm.Grant{TTL: 60, Name: name})
		}
		res, err := l.Txn(ctxT(t, 20*time.Second), ops)
		if err != nil {
			t.Fatalf("grants: %v", err)
		}
		for _, r := range res.Ops {
			ids = append(ids, r.Lease.ID)
		}
	}
	renewed, notFound, err := f.KeepAlive(ctxT(t, 20*time.Second), ids)
	if err != nil {
		t.Fatalf("keep-alive of %d leases through the follower: %v", len(ids), err)
	}
	if len(renewed) != leases || len(notFound) != 0 {
		t.Fatalf("keep-alive through the follower: %d renewed, %d not found; want %d renewed", len(renewed), len(notFound), leases)
	}
	for i, st := range renewed {
		if st.ID != ids[i] || st.TTL != 60 || st.Remaining < 1 || st.Remaining > 60 {
			t.Fatalf("renewal %d: %+v", i, st)
		}
	}
}
