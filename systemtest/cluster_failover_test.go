package systemtest

import (
	"testing"
	"time"

	"github.com/rosterhq/roster/internal/cluster"
)

// TestKillLeaderUnderWriteLoad kills the leader with SIGKILL while 8
// writers put unique keys through every member. Every write acknowledged
// with 200 must be on both survivors, and on the killed member once it has
// restarted and caught up. The time from the kill to the first acknowledged
// write that started after it is logged as "FAILOVER:" (default raft
// timings: 1 s heartbeat and election timeouts).
func TestKillLeaderUnderWriteLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("kill -9 under write load: slow; skipped with -short")
	}
	c := cluster.Start(t, 3, "-tick", "100ms")
	leader := c.Leader(10 * time.Second)
	load := startWriters(t, 8, "/load", 40*time.Second, endpointsOf(c.Members...))
	load.waitAcks(c, 20*time.Second, 300)

	killedAt := load.mark()
	leader.Kill()
	newLeader := c.WaitNewLeader(20*time.Second, leader)
	electedIn := time.Since(killedAt)
	c.Eventually(20*time.Second, "an acknowledged write after the kill", func() bool {
		return !load.firstAck().IsZero()
	})
	failover := load.firstAck().Sub(killedAt)
	t.Logf("FAILOVER: %v from SIGKILL of leader %s to the first acknowledged write (new leader %s seen ready after %v)",
		failover.Round(time.Millisecond), leader.ID, newLeader.ID, electedIn.Round(time.Millisecond))
	// Some writing under the new leader, then stop.
	load.waitAcks(c, 20*time.Second, 300)
	acked, attempted, failed := load.result()
	t.Logf("writes: %d acknowledged, %d attempted, %d failed", len(acked), len(attempted), failed)

	c.WaitCaughtUp(30 * time.Second)
	for _, m := range c.Running() {
		checkHasAll(t, m, "/load/", acked, attempted)
	}

	// The killed member restarts (its data directory makes it rejoin; no
	// -join needed) and catches up with everything written without it.
	leader.Restart()
	c.WaitReady(30*time.Second, leader)
	c.WaitCaughtUp(30*time.Second, leader)
	checkHasAll(t, leader, "/load/", acked, attempted)
	c.WaitVoters(10*time.Second, 3)
}
