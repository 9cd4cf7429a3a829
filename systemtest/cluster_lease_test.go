package systemtest

import (
	"fmt"
	"testing"
	"time"

	"github.com/rosterhq/roster/internal/cluster"
	"github.com/rosterhq/roster/internal/testutil"
)

// TestLeaseTTLSurvivesLeaderChange grants a 20 s lease, lets about 3 s of
// it pass and kills the leader (SIGKILL): on the new leader the lease's
// remaining TTL still reflects the time that had passed (it is not reset to
// the TTL), and it has not lost more than the wall time since the grant.
// Then it kills the new leader and freezes a second member for several
// seconds, so that no leader exists for that time: that leaderless gap is
// not counted against the lease.
func TestLeaseTTLSurvivesLeaderChange(t *testing.T) {
	c := cluster.Start(t, 3, "-tick", "100ms")
	leader := c.Leader(10 * time.Second)

	granted := time.Now()
	l := grant(t, leader.URL(""), 20, "/svc/ttl")
	code, b := do(t, "PUT", leader.URL("/v1/kv/svc/ttl/a?lease="+l.ID), []byte("x"))
	if code != 200 {
		t.Fatalf("put with lease: %d %s", code, b)
	}
	c.Eventually(10*time.Second, "3 s of the lease to pass on the leader", func() bool {
		return staleLease(t, leader, l.ID).Remaining <= 17
	})

	// Phase 1: a plain leader failure.
	before := staleLease(t, leader, l.ID).Remaining
	leader.Kill()
	leader2 := c.WaitNewLeader(20*time.Second, leader)
	var after leaseJSON
	code, b = do(t, "GET", leader2.URL("/v1/leases/"+l.ID), nil)
	mustJSON(t, code, b, &after)
	sinceGrant := time.Since(granted)
	t.Logf("lease remaining: %d s before killing %s, %d s on new leader %s, %v after the grant",
		before, leader.ID, after.Remaining, leader2.ID, sinceGrant.Round(time.Millisecond))
	if after.TTL != 20 || after.Remaining > 17 || after.Remaining <= 10 {
		t.Fatalf("after failover the lease has %+v; want ttl 20 and 10 < remaining <= 17 (time passed is kept, not reset)", after)
	}
	if floor := 20 - int64(sinceGrant.Seconds()) - 1; after.Remaining < floor {
		t.Fatalf("after failover remaining %d s < %d s: the lease lost more than the wall time since the grant", after.Remaining, floor)
	}
	if after.Remaining > before {
		t.Fatalf("remaining went up from %d to %d across the failover", before, after.Remaining)
	}

	// The killed member comes back, so that three members run again.
	leader.Restart()
	c.WaitReady(30*time.Second, leader)
	c.WaitCaughtUp(30 * time.Second)

	// Phase 2: a long leaderless gap. Kill the leader and freeze one of the
	// two others: the last one alone has no quorum, so no leader exists
	// until the frozen one resumes.
	leader2 = c.Leader(10 * time.Second)
	before2 := staleLease(t, leader2, l.ID).Remaining
	followers := c.Followers(leader2)
	frozen, lonely := followers[0], followers[1]
	gapStart := time.Now()
	leader2.Kill()
	frozen.Freeze()
	const gap = 4 * time.Second
	// The lone member must not find a leader to serve with.
	testutil.Hold(t, gap-time.Since(gapStart), "no leader without quorum", func() error {
		if info, err := c.ClusterInfo(lonely); err == nil && info.Leader != nil && info.Leader.ID == lonely.ID && c.Ready(lonely) {
			return fmt.Errorf("member %s became a ready leader alone", lonely.ID)
		}
		return nil
	})
	frozen.Thaw()
	leader3 := c.Leader(20 * time.Second)
	var after2 leaseJSON
	code, b = do(t, "GET", leader3.URL("/v1/leases/"+l.ID), nil)
	mustJSON(t, code, b, &after2)
	wall := time.Since(gapStart)
	t.Logf("lease remaining: %d s before killing %s, %d s on new leader %s after %v without a ready leader (wall %v since the grant)",
		before2, leader2.ID, after2.Remaining, leader3.ID, wall.Round(time.Millisecond), time.Since(granted).Round(time.Millisecond))
	// The gap lasted more than 4 s of wall time; counted, it would take at
	// least 4 s off. Only the time under a leader counts: the last ticks of
	// the old leader and the first ones of the new, well under 2 s.
	if after2.Remaining < before2-2 {
		t.Fatalf("remaining fell from %d to %d s over a %v leaderless gap: the gap was counted", before2, after2.Remaining, wall)
	}
	if after2.Remaining > before2 {
		t.Fatalf("remaining went up from %d to %d across the failover", before2, after2.Remaining)
	}
	// The lease and its key are still alive on every member.
	c.WaitCaughtUp(30 * time.Second)
	for _, m := range c.Running() {
		kvs, _ := staleKVs(t, m, "/svc/ttl/")
		if kv, ok := kvs["/svc/ttl/a"]; !ok || kv.Lease != l.ID {
			t.Fatalf("member %s lost the leased key: %+v", m.ID, kvs)
		}
	}
}
