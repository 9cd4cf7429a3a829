package registry

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/rosterhq/roster/fsm"
	"github.com/rosterhq/roster/internal/testutil"
)

// TestReadinessIsTiedToTheTerm (issue 8, hole 7): a leader that loses
// leadership and wins it back before its duties notice must not serve
// linearizable reads on the readiness of its old term — its commit index
// may not yet cover what the leader in between committed. The leadership
// watcher of the leader (n1 below) is held, so the stale readiness stays in place while n1
// leads again in a later term.
func TestReadinessIsTiedToTheTerm(t *testing.T) {
	var held atomic.Value // the ID of the member whose watcher is held
	held.Store("")
	release := make(chan struct{})
	hooks := func(i int) *testHooks {
		id := fmt.Sprintf("n%d", i+1)
		return &testHooks{leadership: func(bool) {
			if held.Load() == id {
				<-release
			}
		}}
	}
	tc := startCluster(t, 3, clusterOpts{hooks: hooks})
	var releaseOnce sync.Once
	unhold := func() {
		releaseOnce.Do(func() {
			held.Store("")
			close(release)
		})
	}
	t.Cleanup(unhold) // before the nodes close: a held watcher would block Close
	n1 := tc.leader()
	n2 := tc.followers(n1)[0]
	ctx := ctxT(t, 60*time.Second)
	if _, err := n1.Read(ctx, false); err != nil {
		t.Fatalf("read on the ready leader: %v", err)
	}
	oldTerm := n1.raft.CurrentTerm()

	held.Store(n1.ID())
	if err := n1.raft.LeadershipTransferToServer(raft.ServerID(n2.ID()), raft.ServerAddress(n2.RaftAddr())).Error(); err != nil {
		t.Fatalf("transfer to n2: %v", err)
	}
	testutil.Eventually(t, 10*time.Second, "n2 ready", n2.leaderIsReady)
	if _, err := n2.Put(ctx, fsm.Put{Key: "/written-by-n2", Value: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	if err := n2.raft.LeadershipTransferToServer(raft.ServerID(n1.ID()), raft.ServerAddress(n1.RaftAddr())).Error(); err != nil {
		t.Fatalf("transfer back to n1: %v", err)
	}
	testutil.Eventually(t, 10*time.Second, "n1 leads again", func() bool { return n1.IsLeader() })
	if n1.raft.CurrentTerm() <= oldTerm {
		t.Fatalf("term %d after two transfers, was %d", n1.raft.CurrentTerm(), oldTerm)
	}

	// n1's duties have not run for the new term: it must not answer.
	rctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	_, err := n1.Read(rctx, false)
	cancel()
	if err == nil {
		t.Fatalf("n1 served a linearizable read in term %d on its readiness of term %d", n1.raft.CurrentTerm(), oldTerm)
	}
	if !errors.Is(err, ErrNoLeader) && !errors.Is(err, ErrTimeout) {
		t.Fatalf("read on the not-yet-ready leader: %v", err)
	}
	if err := n1.Ready(); err == nil {
		t.Fatalf("n1 ready before catching up in its new term")
	}

	unhold()
	testutil.Eventually(t, 10*time.Second, "n1 ready in its new term", n1.leaderIsReady)
	st, err := n1.Read(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := st.Get("/written-by-n2"); !ok {
		t.Fatalf("n1's read misses what n2 committed")
	}
}

// TestReadyMeansCaughtUpWithTheLeader (issue 8, hole 4): a member that
// restarts behind the leader catches up in batches, and between batches
// its own commit index equals what it has applied. Ready must compare with
// the leader's commit index instead: whenever it says ready, the member
// has applied everything the leader had committed before it was asked.
func TestReadyMeansCaughtUpWithTheLeader(t *testing.T) {
	tc := startCluster(t, 3, clusterOpts{cfg: func(i int, c *Config) {
		c.SnapshotThreshold = 1 << 20 // catch up from the log, not a snapshot
		c.TrailingLogs = 1 << 20
	}})
	leader := tc.leader()
	f := tc.followers(leader)[0]
	ctx := ctxT(t, 120*time.Second)
	cfg := stopInPlace(t, f)
	// A backlog of many entries, written concurrently.
	errc := make(chan error, 16)
	for w := range 16 {
		go func() {
			for i := range 60 {
				if _, err := leader.Put(ctx, fsm.Put{Key: "/backlog/" + string(rune('a'+w)), Value: make([]byte, 100+i)}); err != nil {
					errc <- err
					return
				}
			}
			errc <- nil
		}()
	}
	for range 16 {
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
	}
	cfg.Bootstrap = false
	f2, err := open(cfg, f.log, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f2.Close() })
	// While it catches up, every "ready" must be true.
	sawNotReady := false
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		commit := leader.raft.CommitIndex()
		err := f2.Ready()
		if err != nil {
			sawNotReady = true
			continue
		}
		if applied := f2.fsm.State().AppliedIndex(); applied < commit {
			t.Fatalf("ready with applied index %d below the leader's commit index %d taken before asking", applied, commit)
		}
		if sawNotReady {
			break
		}
	}
	if !sawNotReady {
		t.Logf("the restarted member was never seen catching up")
	}
	testutil.Eventually(t, 30*time.Second, "restarted member ready", func() bool { return f2.Ready() == nil })
}
