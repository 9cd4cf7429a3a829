package registry

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rosterhq/roster/fsm"
	"github.com/rosterhq/roster/internal/logging/logtest"
	"github.com/rosterhq/roster/internal/testutil"
)

// TestWriteRaftRefusedAtShutdownIsARefusal: a write whose entry raft
// refuses at its door because it has just shut down (a leader that
// committed its own removal, or a Close) appended nothing: it is refused
// (503, the client tries another member), not an unknown outcome (504).
// Raft picks at random between refusing the entry and queueing it (then
// never answering it: unknown), so the test makes several tries, and
// without the fix every one is unknown.
func TestWriteRaftRefusedAtShutdownIsARefusal(t *testing.T) {
	refused := 0
	for try := range 10 {
		var n *Node
		var armed atomic.Bool
		h := &testHooks{proposing: func(string) {
			if armed.Load() {
				n.raft.Shutdown()
			}
		}}
		cfg := Config{ID: "n1", DataDir: t.TempDir(), RaftAddr: "127.0.0.1:0", Bootstrap: true, NodeNumber: -1}
		fastRaft(&cfg)
		var err error
		n, err = open(cfg, logtest.ForTest(t), prometheus.NewRegistry(), h)
		if err != nil {
			t.Fatal(err)
		}
		testutil.Eventually(t, 10*time.Second, "n1 ready", func() bool { return n.Ready() == nil })
		armed.Store(true)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err = n.Put(ctx, fsm.Put{Key: "/k", Value: []byte("v")})
		cancel()
		n.Close()
		switch {
		case errors.Is(err, ErrClosed) || errors.Is(err, ErrNoLeader):
			refused++
		case errors.Is(err, ErrTimeout):
			t.Logf("try %d: %v", try, err)
		default:
			t.Fatalf("try %d: a write proposed as raft shut down: %v", try, err)
		}
	}
	if refused == 0 {
		t.Fatal("no write that raft refused at its door was answered as a refusal")
	}
	t.Logf("%d of 10 refused", refused)
}
