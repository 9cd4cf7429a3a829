package systemtest

import (
	"fmt"
	"testing"
	"time"

	"github.com/rosterhq/roster/internal/cluster"
	"github.com/rosterhq/roster/internal/testutil"
)

// TestIsolatedLeaderCannotExpireLeases approximates a partition on
// loopback: both followers of a three-member cluster are frozen (SIGSTOP),
// so the leader loses its quorum. Its ticks cannot commit, so a 3 s lease
// outlives its TTL on the leader's own replica; the leader steps down and
// acknowledges no write. Once the followers resume, the cluster elects a
// leader again and the lease expires everywhere.
func TestIsolatedLeaderCannotExpireLeases(t *testing.T) {
	c := cluster.Start(t, 3, "-tick", "100ms")
	leader := c.Leader(10 * time.Second)

	l := grant(t, leader.URL(""), 3, "/svc/iso")
	code, b := do(t, "PUT", leader.URL("/v1/kv/svc/iso/a?lease="+l.ID), []byte("x"))
	if code != 200 {
		t.Fatalf("put with lease: %d %s", code, b)
	}
	frozeAt := time.Now()
	followers := c.Followers(leader)
	for _, f := range followers {
		f.Freeze()
	}

	// A write on the isolated leader is not acknowledged (it answers an
	// error once it has stepped down, or the client gives up).
	if code, b, err := tryWith(fastClient, "PUT", leader.URL("/v1/kv/svc/iso/w"), []byte("w")); err == nil && code == 200 {
		t.Fatalf("isolated leader acknowledged a write: %d %s", code, b)
	}
	t.Logf("write on the isolated leader refused after %v", time.Since(frozeAt).Round(time.Millisecond))
	// It notices it lost its quorum and stops calling itself the leader.
	c.Eventually(10*time.Second, "the isolated leader to step down", func() bool {
		info, err := c.ClusterInfo(leader)
		return err == nil && (info.Leader == nil || info.Leader.ID != leader.ID)
	})
	t.Logf("isolated leader stepped down after %v", time.Since(frozeAt).Round(time.Millisecond))
	// Well past the TTL, the lease and its key are still on its replica.
	testutil.Hold(t, 5*time.Second-time.Since(frozeAt), "the leased key on the isolated leader", func() error {
		kvs, _ := staleKVs(t, leader, "/svc/iso/")
		if _, ok := kvs["/svc/iso/a"]; !ok {
			return fmt.Errorf("it vanished %v after its followers froze", time.Since(frozeAt))
		}
		return nil
	})
	if got := staleLease(t, leader, l.ID); got.Remaining <= 0 {
		t.Fatalf("lease on the isolated leader: %+v", got)
	}

	for _, f := range followers {
		f.Thaw()
	}
	thawed := time.Now()
	c.Leader(20 * time.Second)
	t.Logf("leader again %v after the thaw", time.Since(thawed).Round(time.Millisecond))
	// With a leader again the lease runs out (no keep-alive), everywhere.
	for _, m := range c.Members {
		c.Eventually(15*time.Second, "the lease to expire on "+m.ID, func() bool {
			code, _, err := try("GET", m.URL("/v1/leases/"+l.ID+"?stale=true"), nil)
			return err == nil && code == 404
		})
		t.Logf("lease gone on %s %v after the thaw", m.ID, time.Since(thawed).Round(time.Millisecond))
		if kvs, _ := staleKVs(t, m, "/svc/iso/a"); len(kvs) != 0 {
			t.Fatalf("member %s still holds %v after the lease expired", m.ID, kvs)
		}
	}
}
