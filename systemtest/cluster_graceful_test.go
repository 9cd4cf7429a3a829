package systemtest

import (
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rosterhq/roster/internal/cluster"
)

// electionTimeout is rosterd's default -raft-election-timeout.
const electionTimeout = time.Second

// watchLeaderChange polls the given members for a leader other than old
// and records when one is first reported; stop ends the polling.
func watchLeaderChange(c *cluster.Cluster, old *cluster.Member, ms []*cluster.Member) (seen func() (string, time.Time), stop func()) {
	var at atomic.Int64
	var who atomic.Value
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		for {
			for _, m := range ms {
				if info, err := c.ClusterInfo(m); err == nil && info.Leader != nil && info.Leader.ID != old.ID {
					who.Store(info.Leader.ID)
					at.Store(time.Now().UnixNano())
					return
				}
			}
			select {
			case <-done:
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	}()
	seen = func() (string, time.Time) {
		ns := at.Load()
		if ns == 0 {
			return "", time.Time{}
		}
		return who.Load().(string), time.Unix(0, ns)
	}
	var once atomic.Bool
	stop = func() {
		if once.CompareAndSwap(false, true) {
			close(done)
		}
		<-finished
	}
	return seen, stop
}

// TestGracefulStopTransfersLeadership stops the leader with SIGTERM: it
// hands leadership over before it exits (its log says so), a new leader is
// known well within one election timeout, and writes go on.
func TestGracefulStopTransfersLeadership(t *testing.T) {
	c := cluster.Start(t, 3, "-tick", "100ms")
	leader := c.Leader(10 * time.Second)
	followers := c.Followers(leader)
	seen, stopWatch := watchLeaderChange(c, leader, followers)
	defer stopWatch()

	termAt := time.Now()
	leader.Stop()
	stopped := time.Since(termAt)
	c.Eventually(10*time.Second, "a new leader after SIGTERM", func() bool {
		id, _ := seen()
		return id != ""
	})
	id, at := seen()
	took := at.Sub(termAt)
	t.Logf("GRACEFUL: new leader %s reported %v after SIGTERM of leader %s (process exited after %v)",
		id, took.Round(time.Millisecond), leader.ID, stopped.Round(time.Millisecond))
	if !strings.Contains(leader.Logs(), "leadership transferred") {
		t.Fatalf("the stopped leader's log does not say it transferred leadership")
	}
	// Without a transfer the followers would wait out a heartbeat timeout
	// (1 s) and then an election (another 1 s or more).
	if took >= electionTimeout {
		t.Fatalf("new leader only after %v: no faster than an election", took)
	}
	for _, m := range followers {
		if code, b := do(t, "PUT", m.URL("/v1/kv/graceful/"+m.ID), []byte("x")); code != 200 {
			t.Fatalf("write via %s after the graceful stop: %d %s", m.ID, code, b)
		}
	}
	// It restarts into the cluster.
	leader.Restart()
	c.WaitReady(30*time.Second, leader)
	c.WaitVoters(10*time.Second, 3)
}

// TestRollingRestartUnderLoad restarts every member in turn with SIGTERM
// (twice over) while 4 writers write through all of them: no acknowledged write is
// lost, and at the end every member holds every one of them.
func TestRollingRestartUnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("rolling restart under load: slow; skipped with -short")
	}
	c := cluster.Start(t, 3, "-tick", "100ms")
	load := startWriters(t, 4, "/roll", 90*time.Second, endpointsOf(c.Members...))
	load.waitAcks(c, 20*time.Second, 100)
	// Two passes: six restarts, several of them of the leader.
	for round := range 6 {
		m := c.Members[round%3]
		wasLeader := c.Leader(20*time.Second) == m
		start := time.Now()
		m.Stop()
		if wasLeader && !strings.Contains(m.Logs(), "leadership transferred") {
			t.Errorf("leader %s did not transfer leadership on SIGTERM", m.ID)
		}
		m.Restart()
		c.WaitReady(30*time.Second, m)
		c.WaitVoters(30*time.Second, 3)
		t.Logf("round %d: restarted %s (leader: %v) in %v", round+1, m.ID, wasLeader, time.Since(start).Round(time.Millisecond))
		// The cluster makes progress before the next member goes down.
		load.waitAcks(c, 20*time.Second, 100)
	}
	acked, attempted, failed := load.result()
	t.Logf("writes: %d acknowledged, %d attempted, %d failed", len(acked), len(attempted), failed)
	c.WaitCaughtUp(30 * time.Second)
	for _, m := range c.Members {
		checkHasAll(t, m, "/roll/", acked, attempted)
	}
	// The three restarts changed nothing about who is in the cluster.
	for _, m := range c.Members {
		info := clusterView(t, c, m)
		if got := fmt.Sprint(memberIDs(info)); got != "[n1 n2 n3]" {
			t.Fatalf("members as seen by %s: %s", m.ID, got)
		}
	}
}
