package registry_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rosterhq/roster/internal/logging/logtest"
	"github.com/rosterhq/roster/internal/testutil"
	"github.com/rosterhq/roster/registry"
)

// TestCloseRightAfterElection closes a sole voter the moment it leads,
// again and again. Its first duty as leader is a raft barrier, which may
// still sit in raft's apply queue when Close shuts raft down; raft never
// answers a future left there (BatchApplyCh), so a leader that waited on
// the barrier alone kept Close waiting forever. rosterd hung that way on
// exit when its HTTP port turned out to be taken.
func TestCloseRightAfterElection(t *testing.T) {
	for round := 0; round < 100; round++ {
		n := openSoleVoter(t)
		testutil.Eventually(t, 10*time.Second, "the node leads", n.IsLeader)
		closed := make(chan error, 1)
		go func() { closed <- n.Close() }()
		select {
		case err := <-closed:
			if err != nil {
				t.Fatalf("round %d: close: %v", round, err)
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("round %d: Close has not returned after 20 s", round)
		}
	}
}

// TestCloseWithReadsInFlight closes a leader while linearizable reads keep
// arriving. A read round waits for raft to confirm leadership, and raft
// leaves a confirmation still queued at shutdown unanswered; a round that
// waited on it alone kept Close waiting forever.
func TestCloseWithReadsInFlight(t *testing.T) {
	for round := 0; round < 20; round++ {
		n := openSoleVoter(t)
		testutil.Eventually(t, 10*time.Second, "node ready", func() bool { return n.Ready() == nil })
		var readers sync.WaitGroup
		reading := make(chan struct{}, 8)
		for r := 0; r < 8; r++ {
			readers.Add(1)
			go func() {
				defer readers.Done()
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				for i := 0; ; i++ {
					if _, err := n.Read(ctx, false); err != nil {
						return
					}
					if i == 0 {
						reading <- struct{}{}
					}
				}
			}()
		}
		for r := 0; r < 8; r++ {
			<-reading
		}
		closed := make(chan error, 1)
		go func() { closed <- n.Close() }()
		select {
		case <-closed:
		case <-time.After(20 * time.Second):
			t.Fatalf("round %d: Close has not returned after 20 s", round)
		}
		readers.Wait()
	}
}

// openSoleVoter opens a new one-member node; the test closes it.
func openSoleVoter(t *testing.T) *registry.Node {
	t.Helper()
	n, err := registry.Open(registry.Config{
		ID: "n1", DataDir: t.TempDir(), RaftAddr: "127.0.0.1:0", Bootstrap: true, NodeNumber: -1,
		Tick: 50 * time.Millisecond, HTTPAdvertise: "127.0.0.1:1",
	}, logtest.ForTest(t), prometheus.NewRegistry())
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	return n
}
