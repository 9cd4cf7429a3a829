package registry

import (
	"fmt"
	"testing"
	"time"

	"github.com/rosterhq/roster/fsm"
)

// TestLeaderLossAnswersEveryCommittedWriteOfABatch: a batch of several
// writes (a Redis pipeline), made on the leader or forwarded by a
// follower, is in flight when the leader loses leadership; the next
// leader commits them all. Every write of the batch gets its own committed
// result, not only the first.
func TestLeaderLossAnswersEveryCommittedWriteOfABatch(t *testing.T) {
	for _, viaFollower := range []bool{false, true} {
		t.Run(fmt.Sprintf("via_follower=%v", viaFollower), func(t *testing.T) {
			tc, cuts := startCutCluster(t)
			l := tc.leader()
			on := l
			if viaFollower {
				on = tc.followers(l)[0]
			}
			ctx := ctxT(t, 30*time.Second)
			const size = 4
			cmds := make([]fsm.Command, size)
			for i := range cmds {
				cmds[i] = fsm.Put{Key: fmt.Sprintf("/b/%d", i), Value: []byte("v")}
			}
			var out []BatchResult
			loseLeadership(t, tc, cuts, l, cutLoseReplies, func() { out = on.Batch(ctx, cmds) })
			next := tc.leader()
			for i, r := range out {
				if r.Err != nil {
					t.Errorf("write %d of the batch: %v; want its committed result", i, r.Err)
					continue
				}
				kv, ok := readKV(t, next, fmt.Sprintf("/b/%d", i))
				if !ok || kv.ModRevision != r.Result.Revision || kv.Version != 1 {
					t.Errorf("write %d answered revision %d; the key is %+v (found %v), want it written once", i, r.Result.Revision, kv, ok)
				}
			}
		})
	}
}
