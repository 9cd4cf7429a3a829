package registry_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rosterhq/roster/fsm"
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

// TestCloseUnderMixedLoad closes a leader while every kind of request is
// in flight at once: writes, pipelined batches, grants with keep-alives,
// linearizable reads and snapshots. Close must return, and every caller
// must get an answer (each loop ends on its first error).
func TestCloseUnderMixedLoad(t *testing.T) {
	for round := 0; round < 10; round++ {
		n := openSoleVoter(t)
		testutil.Eventually(t, 10*time.Second, "node ready", func() bool { return n.Ready() == nil })
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		var callers sync.WaitGroup
		busy := make(chan struct{}, 16)
		run := func(step func(i int) error) {
			callers.Add(1)
			go func() {
				defer callers.Done()
				for i := 0; ; i++ {
					if err := step(i); err != nil {
						return
					}
					if i == 2 {
						busy <- struct{}{}
					}
				}
			}()
		}
		for w := 0; w < 3; w++ {
			run(func(i int) error {
				_, err := n.Put(ctx, fsm.Put{Key: fmt.Sprintf("/mix/%d/%d", w, i), Value: []byte("v")})
				return err
			})
		}
		run(func(i int) error {
			res := n.Batch(ctx, []fsm.Command{fsm.Put{Key: "/mix/b", Value: []byte("1")}, fsm.Delete{Key: "/mix/b"}})
			return res[len(res)-1].Err
		})
		for k := 0; k < 2; k++ {
			run(func(int) error {
				l, err := n.Grant(ctx, 30, "", 0)
				if err != nil {
					return err
				}
				_, _, err = n.KeepAlive(ctx, []int64{l.ID})
				return err
			})
		}
		for r := 0; r < 3; r++ {
			run(func(int) error {
				_, err := n.Read(ctx, false)
				return err
			})
		}
		run(func(int) error {
			_, err := n.Snapshot(ctx)
			return err
		})
		for i := 0; i < 10; i++ {
			<-busy
		}
		closed := make(chan struct{})
		go func() { _ = n.Close(); close(closed) }()
		select {
		case <-closed:
		case <-time.After(20 * time.Second):
			t.Fatalf("round %d: Close has not returned after 20 s", round)
		}
		answered := make(chan struct{})
		go func() { callers.Wait(); close(answered) }()
		select {
		case <-answered:
		case <-time.After(20 * time.Second):
			t.Fatalf("round %d: a caller still waits 20 s after Close", round)
		}
		cancel()
	}
}
