package registry

import (
	"testing"
	"time"

	"github.com/rosterhq/roster/fsm"
	"github.com/rosterhq/roster/internal/testutil"
)

// TestForwardedWriteSurvivesLeaderLoss: a follower forwarded writes to the
// leader, which loses leadership with them in flight. The follower keeps
// its channel to the former leader open for the answers while new
// requests go to the new leader, so the client gets the known outcome: the
// committed result, or, for a write the next leader replaced, the
// follower's one retry on the new leader (applied once).
func TestForwardedWriteSurvivesLeaderLoss(t *testing.T) {
	for _, tt := range []struct {
		name string
		mode cutMode
	}{{"committed", cutLoseReplies}, {"truncated", cutDrop}} {
		t.Run(tt.name, func(t *testing.T) {
			tc, cuts := startCutCluster(t)
			l := tc.leader()
			f := tc.followers(l)[0]
			ctx := ctxT(t, 30*time.Second)
			var put, incr writeOutcome
			loseLeadership(t, tc, cuts, l, tt.mode,
				func() { put.res, put.err = f.Put(ctx, fsm.Put{Key: "/f/put", Value: []byte("v")}) },
				func() { incr.res, incr.err = f.Incr(ctx, "/f/ctr", 1) })
			next := tc.leader()
			for _, c := range []struct {
				key string
				o   writeOutcome
				val string
			}{{"/f/put", put, "v"}, {"/f/ctr", incr, "1"}} {
				if c.o.err != nil {
					t.Errorf("%s through %s: %v; want the known outcome", c.key, f.ID(), c.o.err)
					continue
				}
				kv, ok := readKV(t, next, c.key)
				if !ok || string(kv.Value) != c.val || kv.ModRevision != c.o.res.Revision || kv.Version != 1 {
					t.Errorf("%s answered revision %d; the key is %+v (found %v), want value %q written once",
						c.key, c.o.res.Revision, kv, ok, c.val)
				}
			}
			if incr.err == nil && incr.res.Value != 1 {
				t.Errorf("incr answered %d, want 1", incr.res.Value)
			}
			// Every answer is in: the retired connection has closed.
			testutil.Eventually(t, 10*time.Second, "the channel to the former leader to close", func() bool {
				f.peers.mu.Lock()
				defer f.peers.mu.Unlock()
				return len(f.peers.retired) == 0
			})
		})
	}
}
